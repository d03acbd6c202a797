"""Request results: list, detail with a chart and the samples, downloads, accuracy check, delete.

A result's ``data`` is one class index (integer) per image for MNIST and one float per cycle for
CSV (contract §4.39, §10.12); the list does not say which, so the data's type decides.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import Response, StreamingResponse

from webconsole.hanami.client import HanamiAPI
from webconsole.hanami.errors import BackendError, NotFound
from webconsole.web.clusters.memory import dataset_facts, label_datasets
from webconsole.web.core.deps import client_address
from webconsole.web.core.deps import CurrentSession, Hanami, resource_router
from webconsole.web.core.listing import paginate
from webconsole.web.core.render import redirect, render, url_path
from webconsole.web.tasks.rows import task_metas
from webconsole.web.tasks.pages import checked_uuid

router = resource_router()

MAX_LINE_POINTS = 2000  # a line chart with more points is unreadable and slow; every k-th point is kept


def result_kind(data: list[Any]) -> str:
    """``mnist`` (class indices), ``csv`` (floats) or ``empty``."""
    if not data:
        return "empty"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in data):
        return "mnist"
    return "csv"


def chart_data(data: list[Any], kind: str) -> dict[str, Any]:
    """What static/js/results.js draws: a class histogram (MNIST) or the outputs as a line (CSV)."""
    if kind == "mnist":
        counts = Counter(data)
        classes = list(range(max(9, max(counts)) + 1))
        return {"kind": "bar", "labels": [str(c) for c in classes], "values": [counts.get(c, 0) for c in classes],
                "label": "Predicted digits", "x_title": "Predicted class", "y_title": "Samples"}
    step = max(1, -(-len(data) // MAX_LINE_POINTS))
    indices = range(0, len(data), step)
    return {"kind": "line", "labels": [i for i in indices], "values": [data[i] for i in indices],
            "label": "Output", "x_title": "Sample", "y_title": "Output value", "step": step}


def _safe_filename(result: dict[str, Any], extension: str) -> str:
    """A download name from backend strings, reduced to characters inert in a header value."""
    def clean(text: object) -> str:
        return re.sub(r"[^A-Za-z0-9_-]+", "_", str(text or "")).strip("_")

    stem = clean(result.get("name")) or "result"
    return f"{stem}-{clean(result.get('uuid'))[:8]}.{extension}"



@router.get("/results", name="results_list")
async def results_list(request: Request, session: CurrentSession, api: Hanami) -> Response:
    records = (await api.list_results()).records()
    # A CSV result is named after the input brick (Q-T3): show the task name the console remembers too.
    metas = await task_metas(request, [str(record.get("uuid")) for record in records])
    for record in records:
        task_name = metas.get(str(record.get("uuid")), {}).get("name", "")
        record["task_name"] = task_name if task_name != record.get("name") else ""
    page = paginate(request, records, search=("name", "task_name", "uuid", "owner_id", "project_id"),
                    sortable=("name", "owner_id", "project_id", "visibility", "uuid"), default_sort="name")
    return await render(request, "results/list.html", {"page": page}, block="result_table")


async def _detail_context(request: Request, api: HanamiAPI, uuid: str) -> dict[str, Any]:
    result, datasets = await asyncio.gather(api.get_result(uuid), api.list_datasets())
    data = result.get("data") if isinstance(result.get("data"), list) else []
    kind = result_kind(data)
    samples = paginate(request, [{"index": i, "value": v} for i, v in enumerate(data)],
                       search=(), sortable=("index", "value"), default_sort="index")
    # Offer MNIST datasets first: the check is only meaningful for them (Q-D8).
    dataset_rows = sorted(datasets.records(), key=lambda d: (d.get("type") != "mnist", str(d.get("name", "")).lower()))
    facts = await dataset_facts(request.app.state.store, [str(d.get("uuid")) for d in dataset_rows])
    label_datasets(dataset_rows, facts)
    meta = (await task_metas(request, [uuid])).get(uuid, {})
    # The dataset the request ran on, if the console queued it and it is still listed.
    ran_on = next((d for d in dataset_rows if meta.get("dataset_uuid") and d.get("uuid") == meta["dataset_uuid"]), None)
    return {
        "result": {key: value for key, value in result.items() if key != "data"}, "task": meta,
        "count": len(data), "kind": kind, "chart": chart_data(data, kind) if data else None,
        "samples": samples, "datasets": dataset_rows, "check": None, "errors": {}, "ran_on": ran_on,
    }


@router.get("/results/{uuid}", name="result_detail")
async def detail(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    checked_uuid(uuid)
    context = await _detail_context(request, api, uuid)
    return await render(request, "results/detail.html", context, block="samples")


@router.post("/results/{uuid}/check", name="result_check")
async def check(
    request: Request, uuid: str, session: CurrentSession, api: Hanami,
    dataset_uuid: Annotated[str, Form()] = "",
) -> Response:
    """Accuracy of this result against a dataset (%, MNIST only; ``None`` = unreadable dataset, Q-D4)."""
    checked_uuid(uuid)
    context = await _detail_context(request, api, uuid)
    dataset = next((d for d in context["datasets"] if d.get("uuid") == dataset_uuid), None)
    if dataset is None:
        # Never send an unlisted dataset uuid: the real backend crashes on it (Q-C2).
        context["errors"] = {"dataset_uuid": "Choose one of the listed datasets."}
        return await render(request, "results/detail.html", context, block="check", status_code=422)
    accuracy = await api.check_dataset(uuid, dataset_uuid)
    try:
        lines = (await api.get_dataset(dataset_uuid)).get("lines")
    except (BackendError, NotFound):
        lines = None  # unfinished: the accuracy is None as well and says so
    # Hanami compares sample i with label i: against a dataset of another size the figure means nothing.
    mismatch = isinstance(lines, int) and lines != context["count"]
    context["check"] = {"dataset": dataset, "accuracy": accuracy, "lines": lines, "mismatch": mismatch}
    return await render(request, "results/detail.html", context, block="check")


@router.get("/results/{uuid}/download.json", name="result_download_json")
async def download_json(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    checked_uuid(uuid)
    result = await api.get_result(uuid)
    return Response(
        json.dumps(result, indent=1), media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{_safe_filename(result, "json")}"'},
    )


@router.get("/results/{uuid}/download.csv", name="result_download_csv")
async def download_csv(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    checked_uuid(uuid)
    result = await api.get_result(uuid)
    data = result.get("data") if isinstance(result.get("data"), list) else []

    def lines():
        yield "index,value\n"
        for start in range(0, len(data), 1000):
            yield "".join(f"{i},{json.dumps(v)}\n" for i, v in enumerate(data[start:start + 1000], start))

    return StreamingResponse(
        lines(), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_safe_filename(result, "csv")}"'},
    )


@router.get("/results/{uuid}/delete", name="result_delete_confirm")
async def delete_confirm(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    checked_uuid(uuid)
    result = await api.get_result(uuid)
    return await render(request, "results/delete.html", {"result": result})


@router.post("/results/{uuid}/delete", name="result_delete")
async def delete(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    checked_uuid(uuid)
    result = await api.get_result(uuid)
    await api.delete_result(uuid)
    name = str(result.get("name") or uuid)
    await request.app.state.audit.record(session.user_id, "delete result", f"{name} ({uuid})", client_address(request))
    session.flash(f"Result {name} deleted.", "success")
    await request.app.state.sessions.save(session)
    return redirect(request, url_path(request, "results_list"))
