"""Train-and-evaluate runs: start one from a cluster, watch its learning curve grow, keep the best
pass, see what it gets wrong, compare runs, export them.

The run's record (``records``) is advanced by whoever looks at it (``engine.advance``): the run page
while it polls, and the cluster's runs panel. A result checked outside a run can be analysed too
(``/results/<uuid>/mistakes``) when the console kept the labels of the dataset.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from typing import Annotated, Any

from fastapi import Form, HTTPException, Request
from fastapi.responses import Response

from webconsole.hanami.client import HanamiAPI
from webconsole.hanami.errors import BackendError, HanamiError, InputError, NotFound
from webconsole.protocol.template import TemplateError, parse_template
from webconsole.sessions import Session
from webconsole.web.clusters.memory import known_template, remember_checkpoint_origin
from webconsole.web.clusters.pages import restore_into
from webconsole.web.core.deps import CurrentSession, Hanami, client_address, resource_router
from webconsole.web.core.humanize import human_duration
from webconsole.web.core.listing import paginate
from webconsole.web.core.render import is_htmx, is_poll, redirect, render, url_path
from webconsole.web.datasets.contents import images_meta, known_csv_values, known_images, known_labels
from webconsole.web.runs import analysis
from webconsole.web.runs.engine import advance, best_step, step_names, stop
from webconsole.web.runs.records import (
    ACTIVE,
    all_runs,
    claim_run,
    delete_run,
    load_predictions,
    load_run,
    new_run_id,
    save_run,
    valid_run_id,
)
from webconsole.web.tasks.fit import refusal
from webconsole.web.tasks.pages import STOP_POLLING, checked_uuid, name_error
from webconsole.web.tasks.rows import remember_task, task_metas

router = resource_router()

MAX_PASSES = 100
POLL_MS = 1500


# -- helpers ------------------------------------------------------------------------------------------

def _visible(session: Session, run: dict[str, Any]) -> bool:
    """A run belongs to the project it was started in; there, its owner and admins see it."""
    return run.get("project_id") == session.project_id and (run.get("user_id") == session.user_id or session.is_admin)


async def _run_or_404(request: Request, session: Session, run_id: str) -> dict[str, Any]:
    run = await load_run(request.app.state.store, run_id)
    if run is None or not _visible(session, run):
        raise HTTPException(status_code=404, detail="There is no such run.")
    return run


def template_brief(text: str | None) -> str:
    """The neurons per brick, e.g. ``784-400-10``; "" for a template the console does not know."""
    if not text:
        return ""
    try:
        template = parse_template(text)
    except TemplateError:
        return ""
    return "-".join(str(brick.neurons) for brick in template.bricks)


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """One row of the runs table (and of the cluster's panel)."""
    best = best_step(run)
    done = [s for s in run["steps"] if s.get("accuracy") is not None]
    end = run.get("ended_at") or (time.time() if run["state"] in ACTIVE else run.get("updated_at") or run["created_at"])
    return {
        "id": run["id"], "name": run["name"], "cluster_name": run["cluster_name"], "cluster_uuid": run["cluster_uuid"],
        "template": run.get("template_brief", ""), "train_name": run["train_name"], "test_name": run["test_name"],
        "passes": run["passes"], "done": len(done), "state": run["state"],
        "best_accuracy": best["accuracy"] if best else None, "best_pass": best["pass"] if best else None,
        "seconds": max(0.0, end - run["created_at"]), "created_at": run["created_at"],
        "time": human_duration(max(0.0, end - run["created_at"])),
    }


def curve(run: dict[str, Any]) -> dict[str, Any]:
    """What static/js/runs.js draws: accuracy per pass, the best pass marked."""
    best = best_step(run)
    points = [s for s in run["steps"] if s.get("accuracy") is not None]
    return {"labels": [s["pass"] for s in points], "values": [round(s["accuracy"], 3) for s in points],
            "best": best["pass"] if best else None, "passes": run["passes"]}


def _step_rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    best = best_step(run)
    rows = []
    for step in run["steps"]:
        seen = step.get("checked_at")
        rows.append({**step, "best": step is best,
                     "seen_after": seen - run["created_at"] if seen else None})
    return rows


async def _analysis(store: Any, dataset_uuid: str, predictions: list[int] | None) -> dict[str, Any]:
    """Confusion matrix, per-class accuracy, confused pairs and a gallery, as far as the console can."""
    labels = await known_labels(store, dataset_uuid)
    if labels is None:
        return {"labels_known": False}
    if predictions is None:
        return {"labels_known": True, "predictions": False}
    if len(predictions) != len(labels):
        return {"labels_known": True, "predictions": True, "mismatch": (len(predictions), len(labels))}
    matrix = analysis.confusion_matrix(predictions, labels)
    wrong = analysis.misclassified(predictions, labels)
    meta = await images_meta(store, dataset_uuid)
    gallery = []
    if meta is not None:
        images = await known_images(store, dataset_uuid, [w["index"] for w in wrong])
        for item in wrong:
            if item["index"] in images:
                rows, cols, pixels = images[item["index"]]
                gallery.append({**item, "src": analysis.png_data_uri(rows, cols, pixels)})
    return {"labels_known": True, "predictions": True, "summary": analysis.summary(matrix),
            "images_known": meta is not None, "gallery": gallery,
            "wrong": analysis.count_wrong(predictions, labels), "count": len(labels)}


# -- the cluster's runs panel, the new-run form --------------------------------------------------------

def _cluster_runs(runs: list[dict[str, Any]], session: Session, cluster_uuid: str) -> list[dict[str, Any]]:
    mine = [r for r in runs if r.get("cluster_uuid") == cluster_uuid and _visible(session, r)]
    return sorted(mine, key=lambda r: -r["created_at"])


@router.get("/clusters/{cluster_uuid}/runs", name="cluster_runs")
async def cluster_runs(request: Request, cluster_uuid: str, session: CurrentSession, api: Hanami) -> Response:
    """The cluster page's runs panel (htmx); it advances the cluster's running runs while it polls."""
    checked_uuid(cluster_uuid)
    if not is_htmx(request):
        await api.get_cluster(cluster_uuid)  # a 404 page for a cluster that is not there
    store = request.app.state.store
    runs = _cluster_runs(await all_runs(store), session, cluster_uuid)
    runs = [await advance(api, store, run) if run["state"] == "running" else run for run in runs]
    running = any(r["state"] in ACTIVE for r in runs)
    context = {"cluster_uuid": cluster_uuid, "runs": [run_summary(r) for r in runs], "running": running}
    status = STOP_POLLING if is_poll(request) and not running else 200
    return await render(request, "runs/cluster.html", context, block="cluster_runs", status_code=status)


async def _datasets(api: HanamiAPI) -> list[dict[str, Any]]:
    rows = (await api.list_datasets()).records()
    return sorted(rows, key=lambda d: (d.get("type") != "mnist", str(d.get("name", "")).lower()))


async def _form(request: Request, api: HanamiAPI, cluster: dict[str, Any], values: dict[str, Any],
                errors: dict[str, str] | None = None, backend_error: str = "", status_code: int = 200) -> Response:
    template = await known_template(request.app.state.store, str(cluster.get("uuid")))
    context = {"cluster": cluster, "values": values, "errors": errors or {}, "backend_error": backend_error,
               "datasets": await _datasets(api), "max_passes": MAX_PASSES, "template_known": template is not None}
    return await render(request, "runs/new.html", context, status_code=status_code)


@router.get("/clusters/{cluster_uuid}/runs/new", name="runs_new")
async def new(request: Request, cluster_uuid: str, session: CurrentSession, api: Hanami) -> Response:
    cluster = await api.get_cluster(checked_uuid(cluster_uuid))
    values = {"run_id": new_run_id(), "name": "", "train_uuid": "", "test_uuid": "", "passes": "10",
              "patience": "0", "keep_results": False, "checkpoints": True}
    return await _form(request, api, {**cluster, "uuid": cluster_uuid}, values)


def _validate(values: dict[str, Any], datasets: list[dict[str, Any]]) -> tuple[dict[str, str], int, int]:
    errors: dict[str, str] = {}
    try:
        passes = int(values["passes"])
    except ValueError:
        passes = 0
    if not 1 <= passes <= MAX_PASSES:
        errors["passes"] = f"A whole number from 1 to {MAX_PASSES}."
    try:
        patience = int(values["patience"] or "0")
    except ValueError:
        patience = -1
    if patience < 0 or (patience and patience >= passes):
        errors["patience"] = "0 (never stop early), or fewer passes than the run has."
    if message := name_error(values["name"]):
        errors["name"] = message
    elif len(step_names(values["name"], MAX_PASSES)["train"].encode()) > 256:
        errors["name"] = "Too long: the task names add \" pass 100 train\"."
    by_uuid = {d.get("uuid"): d for d in datasets}
    for field, what in (("train_uuid", "train on"), ("test_uuid", "evaluate on")):
        dataset = by_uuid.get(values[field])
        # Never send an unlisted dataset uuid: the real backend crashes on it (Q-C2).
        if dataset is None:
            errors[field] = f"Choose one of the listed datasets to {what}."
        elif dataset.get("type") != "mnist":
            errors[field] = "Runs measure accuracy, which Hanami computes for MNIST datasets only (Q-D8)."
    return errors, passes, patience


@router.post("/clusters/{cluster_uuid}/runs", name="runs_create")
async def create(
    request: Request, cluster_uuid: str, session: CurrentSession, api: Hanami,
    run_id: Annotated[str, Form()] = "", name: Annotated[str, Form()] = "",
    train_uuid: Annotated[str, Form()] = "", test_uuid: Annotated[str, Form()] = "",
    passes: Annotated[str, Form()] = "10", patience: Annotated[str, Form()] = "0",
    keep_results: Annotated[str, Form()] = "", checkpoints: Annotated[str, Form()] = "",
) -> Response:
    checked_uuid(cluster_uuid)
    store = request.app.state.store
    if not valid_run_id(run_id):
        run_id = new_run_id()
    existing = await load_run(store, run_id)
    if existing is not None and _visible(session, existing):
        # The same form sent twice: one run, and the second answer shows it.
        return redirect(request, url_path(request, "run_detail", run_id=run_id))
    cluster = {**await api.get_cluster(cluster_uuid), "uuid": cluster_uuid}
    values = {"run_id": run_id, "name": name.strip(), "train_uuid": train_uuid, "test_uuid": test_uuid,
              "passes": passes.strip(), "patience": patience.strip(), "keep_results": bool(keep_results),
              "checkpoints": bool(checkpoints)}
    datasets = await _datasets(api)
    errors, count, wait = _validate(values, datasets)
    by_uuid = {d.get("uuid"): d for d in datasets}
    template = await known_template(store, cluster_uuid)
    if not errors:
        # The pairings that end a real Hanami, refused before anything is queued (tasks.fit).
        for field, kind in (("train_uuid", "train"), ("test_uuid", "request")):
            if problem := await refusal(store, api, kind, template, by_uuid[values[field]]):
                errors[field] = problem
    if errors:
        return await _form(request, api, cluster, values, errors, status_code=422)
    run: dict[str, Any] = {
        "id": run_id, "name": values["name"], "cluster_uuid": cluster_uuid, "cluster_name": cluster.get("name", ""),
        "template_brief": template_brief(template), "train_uuid": train_uuid,
        "train_name": by_uuid[train_uuid].get("name", ""), "test_uuid": test_uuid,
        "test_name": by_uuid[test_uuid].get("name", ""), "passes": count, "patience": wait,
        "keep_results": values["keep_results"], "checkpoints": values["checkpoints"],
        "user_id": session.user_id, "project_id": session.project_id, "created_at": time.time(),
        "updated_at": time.time(), "ended_at": None, "state": "queuing", "note": "", "steps": [],
        "best_checkpoint": None,
    }
    if not await claim_run(store, run):
        return redirect(request, url_path(request, "run_detail", run_id=run_id))
    try:
        await _queue(request, api, run, template)
    except (InputError, BackendError) as exc:
        # Take back what was queued, forget the run, and show the form again with Hanami's answer.
        await _unqueue(api, run)
        await delete_run(store, run_id)
        message = exc.message if isinstance(exc, InputError) else (
            f"Hanami could not queue the run (error {exc.status}). Is the upload of both datasets finished?")
        return await _form(request, api, cluster, {**values, "run_id": new_run_id()},
                           backend_error=message, status_code=422)
    run["state"] = "running"
    await save_run(store, run)
    await request.app.state.audit.record(
        session.user_id, "start run",
        f"'{run['name']}': {count} passes on cluster {cluster_uuid}", client_address(request))
    session.flash(f"Run {run['name']} queued: {count} passes of train then check.", "success")
    await request.app.state.sessions.save(session)
    return redirect(request, url_path(request, "run_detail", run_id=run_id))


async def _queue(request: Request, api: HanamiAPI, run: dict[str, Any], template: str | None) -> None:
    """Queue train, request[, save] for every pass at once; Hanami runs them in this order."""
    store = request.app.state.store
    for number in range(1, run["passes"] + 1):
        names = step_names(run["name"], number)
        step: dict[str, Any] = {"pass": number, "state": "queued", "accuracy": None, "save": None, "checkpoint": None,
                                "train_seconds": None, "request_seconds": None, "checked_at": None}
        run["steps"].append(step)
        train = await api.create_task(names["train"], "train", run["cluster_uuid"], run["train_uuid"])
        step["train"] = str(train["uuid"])
        request_task = await api.create_task(names["request"], "request", run["cluster_uuid"], run["test_uuid"])
        step["request"] = str(request_task["uuid"])
        if run["checkpoints"]:
            save = await api.save_checkpoint(run["cluster_uuid"], names["save"])
            step["save"] = str(save["uuid"])
            await remember_checkpoint_origin(store, step["save"], run["cluster_uuid"], run["cluster_name"], template)
        for key, dataset in (("train", run["train_name"]), ("request", run["test_name"])):
            await remember_task(request, step[key], {
                "name": names[key], "type": key, "cluster_uuid": run["cluster_uuid"],
                "dataset_uuid": run[f"{'train' if key == 'train' else 'test'}_uuid"], "dataset_name": dataset,
                "run_id": run["id"]})
        await save_run(store, run)


async def _unqueue(api: HanamiAPI, run: dict[str, Any]) -> None:
    """Remove the train and request tasks queued so far (never a queued save: see engine._remove_rest)."""
    for step in run["steps"]:
        for key in ("train", "request"):
            if step.get(key):
                try:
                    await api.delete_task(step[key], run["cluster_uuid"])
                except HanamiError:
                    pass


# -- one run ------------------------------------------------------------------------------------------

async def _detail_context(request: Request, run: dict[str, Any]) -> dict[str, Any]:
    store = request.app.state.store
    best = best_step(run)
    context: dict[str, Any] = {
        "run": run, "summary": run_summary(run), "steps": _step_rows(run), "curve": curve(run), "best": best,
        "running": run["state"] in ACTIVE, "poll_ms": POLL_MS,
    }
    if not context["running"]:
        stored = await load_predictions(store, run["id"])
        predictions = stored.get("data") if stored and best and stored.get("pass") == best["pass"] else None
        context["analysis"] = await _analysis(store, run["test_uuid"], predictions)
        if best and best.get("confusion") and not predictions:
            context["analysis"]["summary"] = analysis.summary(best["confusion"])
    return context


@router.get("/runs/{run_id}", name="run_detail")
async def detail(request: Request, run_id: str, session: CurrentSession, api: Hanami) -> Response:
    run = await _run_or_404(request, session, run_id)
    was_running = run["state"] in ACTIVE
    run = await advance(api, request.app.state.store, run)
    context = await _detail_context(request, run)
    if is_htmx(request) and is_poll(request) and not context["running"]:
        # The run has ended: reload the page once, which adds the analysis of the best pass.
        headers = {"HX-Refresh": "true"} if was_running else None
        return await render(request, "runs/detail.html", context, block="run_status",
                            status_code=STOP_POLLING, headers=headers)
    return await render(request, "runs/detail.html", context, block="run_status")


@router.post("/runs/{run_id}/stop", name="run_stop")
async def stop_run(request: Request, run_id: str, session: CurrentSession, api: Hanami) -> Response:
    run = await _run_or_404(request, session, run_id)
    if run["state"] != "running":
        session.flash("This run is not running any more; nothing to stop.", "info")
    elif await stop(api, request.app.state.store, run):
        await request.app.state.audit.record(session.user_id, "stop run", f"'{run['name']}'", client_address(request))
        session.flash("The passes not run yet were removed from the queue.", "success")
    else:
        session.flash("The run is being updated right now; try again in a moment.", "info")
    await request.app.state.sessions.save(session)
    return redirect(request, url_path(request, "run_detail", run_id=run_id))


@router.post("/runs/{run_id}/restore", name="run_restore")
async def restore(request: Request, run_id: str, session: CurrentSession, api: Hanami) -> Response:
    """One click: the cluster gets the network of the run's best pass back."""
    run = await _run_or_404(request, session, run_id)
    checkpoint = run.get("best_checkpoint")
    listed = checkpoint and (await api.list_checkpoints()).find("uuid", checkpoint) is not None
    if not listed:
        # Hanami accepts an unknown checkpoint and silently does nothing (Q-K1): never send one.
        session.flash("The best pass's checkpoint is not listed any more (deleted outside this run?).", "error")
    else:
        try:
            await restore_into(request, api, run["cluster_uuid"], checkpoint)
        except NotFound:
            session.flash("The run's cluster no longer exists: restore the checkpoint into another cluster "
                          "from the checkpoint's page.", "error")
        else:
            best = best_step(run)
            await request.app.state.audit.record(
                session.user_id, "restore run checkpoint", f"'{run['name']}' pass {best['pass'] if best else '?'}",
                client_address(request))
            session.flash(f"Restoring the checkpoint of pass {best['pass'] if best else '?'} is queued as a task "
                          "of the cluster.", "success")
    await request.app.state.sessions.save(session)
    return redirect(request, url_path(request, "run_detail", run_id=run_id))


def _export_name(run: dict[str, Any], extension: str) -> str:
    stem = "".join(c if c.isalnum() or c in "_-" else "_" for c in run["name"]).strip("_") or "run"
    return f"run-{stem}-{run['id'][:8]}.{extension}"


@router.get("/runs/{run_id}/export.json", name="run_export_json")
async def export_json(request: Request, run_id: str, session: CurrentSession) -> Response:
    run = await _run_or_404(request, session, run_id)
    body = {**{k: v for k, v in run.items() if k != "steps"}, "best_pass": (best_step(run) or {}).get("pass"),
            "passes_done": [{k: v for k, v in s.items()} for s in run["steps"]]}
    return Response(json.dumps(body, indent=1), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{_export_name(run, "json")}"'})


@router.get("/runs/{run_id}/export.csv", name="run_export_csv")
async def export_csv(request: Request, run_id: str, session: CurrentSession) -> Response:
    run = await _run_or_404(request, session, run_id)
    best = best_step(run)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["pass", "state", "accuracy", "best", "train_seconds", "request_seconds", "seen_after_seconds",
                     "checkpoint"])
    for step in run["steps"]:
        seen = step.get("checked_at")
        writer.writerow([step["pass"], step["state"], "" if step.get("accuracy") is None else step["accuracy"],
                         "yes" if step is best else "", _blank(step.get("train_seconds")),
                         _blank(step.get("request_seconds")), "" if not seen else round(seen - run["created_at"], 3),
                         step.get("checkpoint") or ""])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{_export_name(run, "csv")}"'})


def _blank(value: Any) -> Any:
    return "" if value is None else value


# -- all runs -----------------------------------------------------------------------------------------

@router.get("/runs", name="runs_list")
async def runs_list(request: Request, session: CurrentSession) -> Response:
    runs = [run_summary(r) for r in await all_runs(request.app.state.store) if _visible(session, r)]
    page = paginate(request, runs, search=("name", "cluster_name", "train_name", "test_name", "template", "state"),
                    sortable=("name", "cluster_name", "template", "train_name", "test_name", "passes",
                              "best_accuracy", "seconds", "created_at", "state"),
                    default_sort="created_at", default_order="desc")
    return await render(request, "runs/list.html", {"page": page}, block="runs_table")


# -- what a result gets wrong -------------------------------------------------------------------------

@router.get("/results/{uuid}/mistakes", name="result_mistakes")
async def result_mistakes(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    """Confusion matrix and misclassified digits of any MNIST result, against a dataset the console kept."""
    checked_uuid(uuid)
    dataset_uuid = request.query_params.get("dataset_uuid", "")
    result, datasets = await asyncio.gather(api.get_result(uuid), _datasets(api))
    dataset = next((d for d in datasets if d.get("uuid") == dataset_uuid), None)
    if dataset is None:
        # Never send an unlisted dataset uuid (Q-C2): offer the listed ones instead.
        context = {"result": {k: v for k, v in result.items() if k != "data"}, "datasets": datasets,
                   "error": "Choose one of the listed datasets." if dataset_uuid else ""}
        return await render(request, "runs/mistakes.html", context, status_code=422 if dataset_uuid else 200)
    predictions = analysis.predictions_of(result.get("data"))
    accuracy = await api.check_dataset(uuid, dataset_uuid) if dataset.get("type") == "mnist" else None
    store = request.app.state.store
    context = {"result": {k: v for k, v in result.items() if k != "data"}, "dataset": dataset,
               "accuracy": accuracy, "analysis": await _analysis(store, dataset_uuid, predictions),
               "kind": "mnist" if predictions is not None else "csv", "csv": None}
    if predictions is None and isinstance(result.get("data"), list) and result["data"]:
        context["csv"] = await _csv_analysis(request, uuid, dataset_uuid, result["data"])
    return await render(request, "runs/mistakes.html", context)


async def _csv_analysis(request: Request, uuid: str, dataset_uuid: str, data: list[Any]) -> dict[str, Any]:
    """Mean absolute error per output column, when the console holds the values and the template."""
    store = request.app.state.store
    values = await known_csv_values(store, dataset_uuid)
    if values is None:
        return {"values_known": False}
    meta = (await task_metas(request, [uuid])).get(uuid, {})
    template_text = await known_template(store, meta["cluster_uuid"]) if meta.get("cluster_uuid") else None
    try:
        template = parse_template(template_text) if template_text else None
    except TemplateError:
        template = None
    if template is None or not template.input_bricks or not template.output_bricks:
        return {"values_known": True, "template_known": False}
    inputs, outputs = template.input_bricks[0], template.output_bricks[0]
    numbers = [float(v) for v in data if isinstance(v, (int, float)) and not isinstance(v, bool)]
    errors = analysis.csv_errors(numbers, values["columns"], values["values"], inputs.neurons,
                                 outputs.name, outputs.neurons)
    return {"values_known": True, "template_known": True, "columns": [errors]}
