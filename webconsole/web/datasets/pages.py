"""Datasets: list, detail, delete (with a confirmation page) and the upload page.

The upload machinery (multipart parsing, validation, the background send, status, cancel) is in
``webconsole.web.datasets.uploads``; this module includes its routes so the route table has one entry.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from webconsole.hanami.client import HanamiAPI
from webconsole.hanami.errors import BackendUnavailable, HanamiError, NotFound, TokenExpired
from webconsole.web.clusters.memory import dataset_facts
from webconsole.web.datasets import half_datasets, uploads
from webconsole.web.datasets.contents import forget_contents
from webconsole.web.core.deps import client_address
from webconsole.web.core.deps import CurrentSession, Hanami, resource_router
from webconsole.web.core.listing import paginate
from webconsole.web.core.render import redirect, render, url_path

router = resource_router()

SEARCH = ("name", "type", "owner_id", "project_id", "uuid")
LIST_SORTABLE = ("name", "type", "owner_id", "project_id", "visibility")
DETAIL_COLUMNS = ("inputs", "outputs", "lines")
DETAIL_CONCURRENCY = 4  # Hanami has 4 worker threads; never flood it from one list view


async def _add_details(api: HanamiAPI, rows: list[dict[str, Any]]) -> None:
    """Fill inputs/outputs/lines from GET dataset per row, a few at a time.

    A row whose GET fails keeps None (shown as "—"): an unfinished upload answers 500 on the real
    backend although it is listed (Q-D7). Token expiry and an unreachable backend still go to the
    error mapper.
    """
    # Each GET is guarded by a listing taken right before it (inside get_dataset), not by the page's
    # own list: a dataset another user deleted meanwhile would crash the real backend (Q-C2).
    limit = asyncio.Semaphore(DETAIL_CONCURRENCY)

    async def one(row: dict[str, Any]) -> None:
        async with limit:
            try:
                data = await api.get_dataset(row["uuid"])
            except (TokenExpired, BackendUnavailable):
                raise
            except HanamiError:
                data = {}
        row["complete"] = bool(data)
        for column in DETAIL_COLUMNS:
            value = data.get(column)
            row[column] = value if isinstance(value, int) and not isinstance(value, bool) else None

    await asyncio.gather(*(one(row) for row in rows))


@router.get("/datasets", name="datasets_list")
async def list(request: Request, session: CurrentSession, api: Hanami) -> Response:  # noqa: A001
    records = (await api.list_datasets()).records()
    sort = request.query_params.get("sort", "name")
    if sort in DETAIL_COLUMNS:
        # sorting by a detail column needs every row's details; otherwise only the shown page's
        await _add_details(api, records)
    page = paginate(request, records, search=SEARCH, sortable=LIST_SORTABLE + DETAIL_COLUMNS,
                    default_sort="name")
    if sort not in DETAIL_COLUMNS:
        await _add_details(api, page.rows)
    return await render(request, "datasets/list.html", {"page": page, "any_datasets": bool(records)},
                        block="dataset_table")


@router.get("/datasets/upload", name="datasets_upload")
async def new(request: Request, session: CurrentSession) -> Response:
    kind = request.query_params.get("kind", "mnist")
    return await render(request, "datasets/upload.html",
                        {"form_kind": kind if kind in ("mnist", "csv") else "mnist", "values": {}, "errors": {}})


async def _listed(api: HanamiAPI, uuid: str) -> dict[str, Any]:
    """The list record of a visible dataset, or NotFound (never send Hanami an unknown uuid, Q-C2)."""
    record = (await api.list_datasets()).find("uuid", uuid)
    if record is None:
        raise NotFound(f"Data-set with uuid '{uuid}' not found", status=404, endpoint="GET v1/dataset")
    return record


@router.get("/datasets/{uuid}", name="datasets_detail")
async def detail(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    dataset = dict(await _listed(api, uuid))
    await _add_details(api, [dataset])
    # Hanami reports no CSV column names (inputs and outputs are always 0): what the upload learnt.
    facts = (await dataset_facts(request.app.state.store, [uuid])).get(uuid, {})
    return await render(request, "datasets/detail.html", {"dataset": dataset, "facts": facts})


@router.get("/datasets/{uuid}/delete", name="datasets_delete_confirm")
async def delete_confirm(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    dataset = await _listed(api, uuid)
    return await render(request, "datasets/delete.html", {"dataset": dataset})


@router.post("/datasets/{uuid}/delete", name="datasets_delete")
async def delete(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    dataset = await _listed(api, uuid)
    await api.delete_dataset(uuid)
    await forget_contents(request.app.state.store, uuid)
    await request.app.state.audit.record(
        session.user_id, "dataset delete", f"{dataset.get('type')} dataset '{dataset.get('name')}' ({uuid})",
        client_address(request),
    )
    session.flash(f"Dataset '{dataset.get('name')}' deleted.", "success")
    await request.app.state.sessions.save(session)
    return redirect(request, url_path(request, "datasets_list"))


router.include_router(uploads.router)


def setup(app: FastAPI) -> None:
    uploads.setup(app)
    half_datasets.setup(app)
