"""Tasks: create train/request tasks (also "train N times"), a cluster's live task list, one task, abort/delete.

The rows (sorted by queue time, with the names the console remembers) come from ``rows``.
A task's state is always read from the list: ``GET v1/task`` on a deleted task answers 500
(Q-T1), so the console never asks for a task the list does not show.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Form, HTTPException, Request
from fastapi.responses import Response
from starlette.routing import NoMatchFound

from webconsole.hanami.client import HanamiAPI
from webconsole.hanami.errors import BackendError, InputError, NotFound
from webconsole.web.core.deps import client_address
from webconsole.web.core.render import safe_next
from webconsole.web.clusters.busy import UNFINISHED
from webconsole.web.clusters.memory import dataset_facts, known_template, label_datasets
from webconsole.web.core.deps import CurrentSession, Hanami, resource_router
from webconsole.web.core.render import is_htmx, is_poll, redirect, render, url_path
from webconsole.web.core.once import submitted_once
from webconsole.web.tasks.fit import refusal
from webconsole.web.tasks.rows import any_running, cluster_task_rows, remember_task

router = resource_router()

UUID_RE = re.compile(r"[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}")
NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z_0-9 ]*")
NAME_MESSAGE = "4 to 256 letters, digits, underscores or spaces, starting with a letter."
MAX_REPEAT = 100
STOP_POLLING = 286  # htmx: swap this answer, then stop polling
UNREADABLE_500 = "Hanami could not read this dataset (error 500). Is its upload finished?"
CSV_500 = ("Hanami could not use this CSV dataset with this cluster (error 500): the CSV needs a column named "
           "like the cluster's input brick and, for training, one named like its output brick. "
           "An unfinished upload has the same effect.")


def checked_uuid(value: str) -> str:
    """A uuid from the URL; anything else is a 404 that never reaches the backend (Q-G7)."""
    if not UUID_RE.fullmatch(value):
        raise HTTPException(status_code=404, detail="There is no such page.")
    return value


def name_error(name: str) -> str | None:
    """Hanami's NAME rule (contract §1.6): regex first, then 4–256 bytes."""
    if not NAME_RE.fullmatch(name) or not 4 <= len(name.encode()) <= 256:
        return NAME_MESSAGE
    return None


def repeat_names(name: str, count: int) -> list[str]:
    """Names for "train N times": "<name> 1 of N" … ("/" is not allowed by the NAME rule)."""
    if count == 1:
        return [name]
    return [f"{name} {i} of {count}" for i in range(1, count + 1)]


def cluster_context(request: Request, cluster_uuid: str, cluster: dict[str, Any]) -> dict[str, Any]:
    """``cluster`` for the templates, with a link to the clusters page when that module is present."""
    try:
        url = url_path(request, "clusters_detail", uuid=cluster_uuid)
    except NoMatchFound:
        url = ""
    return {"uuid": cluster_uuid, "name": cluster.get("name", ""), "url": url}


def _embedding_page(request: Request) -> str:
    """The same-site page that loaded this list with htmx (e.g. the cluster page), to come back to."""
    current = urlsplit(request.headers.get("HX-Current-URL", ""))
    if not is_htmx(request) or current.netloc != request.url.netloc:
        return ""
    path = current.path + ("?" + current.query if current.query else "")
    return safe_next(path) if path != request.url.path else ""



# -- a cluster's tasks --------------------------------------------------------------------------------

@router.get("/clusters/{cluster_uuid}/tasks", name="cluster_tasks")
async def cluster_tasks(request: Request, cluster_uuid: str, session: CurrentSession, api: Hanami) -> Response:
    """The page, or for htmx (the cluster page's hx-get and the polls) the ``tasks/_cluster_tasks.html`` region."""
    checked_uuid(cluster_uuid)
    if is_htmx(request):  # the region needs no name; task/all already answers 404 for a gone cluster
        try:
            rows = await cluster_task_rows(request, api, cluster_uuid)
        except NotFound:
            if not is_poll(request):
                raise
            # The cluster went away under a polling page: say so once and stop, instead of an error a second.
            context = {"cluster": {"uuid": cluster_uuid, "name": "", "url": ""}, "tasks": [], "gone": True,
                       "running": False}
            return await render(request, "tasks/_cluster_tasks.html", context, status_code=STOP_POLLING)
        cluster = {}
    else:
        cluster, rows = await asyncio.gather(
            api.get_cluster(cluster_uuid), cluster_task_rows(request, api, cluster_uuid))
    running = any_running(rows)
    context = {"cluster": cluster_context(request, cluster_uuid, cluster), "tasks": rows, "running": running,
               "back": _embedding_page(request), "first_load": is_htmx(request) and not is_poll(request)}
    if is_htmx(request):
        ended = is_poll(request) and not running
        # The last poll tells the page its tasks ended, so panels waiting on them (the cluster page's
        # checkpoint lists after a save or restore) refresh themselves.
        return await render(request, "tasks/_cluster_tasks.html", context,
                            status_code=STOP_POLLING if ended else 200,
                            headers={"HX-Trigger": "tasks-ended"} if ended else None)
    return await render(request, "tasks/list.html", context)


@router.get("/clusters/{cluster_uuid}/tasks/{task_uuid}", name="task_detail")
async def detail(request: Request, cluster_uuid: str, task_uuid: str, session: CurrentSession, api: Hanami) -> Response:
    checked_uuid(cluster_uuid), checked_uuid(task_uuid)
    cluster, rows = await asyncio.gather(api.get_cluster(cluster_uuid), cluster_task_rows(request, api, cluster_uuid))
    task = next((row for row in rows if row["uuid"] == task_uuid), None)
    if task is None and is_htmx(request) and is_poll(request):
        # Deleted while its page polls: stop polling with a note (never GET a gone task, Q-T1).
        return await render(request, "tasks/_task_gone.html", {"cluster": cluster_context(request, cluster_uuid, cluster)},
                            status_code=STOP_POLLING)
    if task is None:
        raise HTTPException(
            status_code=404,
            detail="This task is not listed any more: it was deleted, its cluster was deleted, or Hanami restarted.",
        )
    running = task["state"] in UNFINISHED
    context = {"cluster": cluster_context(request, cluster_uuid, cluster), "task": task, "running": running}
    status = STOP_POLLING if is_htmx(request) and is_poll(request) and not running else 200
    return await render(request, "tasks/detail.html", context, block="task_status", status_code=status)


async def _listed_task(api: HanamiAPI, request: Request, cluster_uuid: str, task_uuid: str) -> dict[str, Any] | None:
    rows = await cluster_task_rows(request, api, cluster_uuid)
    return next((row for row in rows if row["uuid"] == task_uuid), None)


@router.get("/clusters/{cluster_uuid}/tasks/{task_uuid}/delete", name="task_delete_confirm")
async def delete_confirm(
    request: Request, cluster_uuid: str, task_uuid: str, session: CurrentSession, api: Hanami
) -> Response:
    checked_uuid(cluster_uuid), checked_uuid(task_uuid)
    cluster = await api.get_cluster(cluster_uuid)
    task = await _listed_task(api, request, cluster_uuid, task_uuid)
    if task is None:
        raise HTTPException(status_code=404, detail="This task is not listed any more.")
    context = {
        "cluster": cluster_context(request, cluster_uuid, cluster), "task": task,
        "next": safe_next(request.query_params.get("next")) if request.query_params.get("next") else "",
    }
    return await render(request, "tasks/delete.html", context)


@router.post("/clusters/{cluster_uuid}/tasks/{task_uuid}/delete", name="task_delete")
async def delete(
    request: Request, cluster_uuid: str, task_uuid: str, session: CurrentSession, api: Hanami,
    next_url: Annotated[str, Form(alias="next")] = "",
) -> Response:
    """Queued/finished: removed. Active: only marked aborted, it runs to the end (Q-T4)."""
    checked_uuid(cluster_uuid), checked_uuid(task_uuid)
    target = safe_next(next_url) if next_url else url_path(request, "cluster_tasks", cluster_uuid=cluster_uuid)
    task = await _listed_task(api, request, cluster_uuid, task_uuid)
    label = (task or {}).get("name") or task_uuid
    if task is None:
        session.flash("That task is no longer listed; nothing to do.", "info")
    elif task["state"] == "aborted":
        # Deleting an aborted task that still runs pulls bookkeeping from under it (§4.26): refuse.
        session.flash(f"Abort of {label} was already requested; remove it once it has finished.", "info")
    elif not task["removable"]:
        session.flash(f"{label} stays in the queue: removing a queued checkpoint save can crash Hanami. "
                      "Delete the checkpoint once it has been saved.", "info")
    else:
        await api.delete_task(task_uuid, cluster_uuid)
        action = "abort task" if task["state"] == "active" else "delete task"
        await request.app.state.audit.record(
            session.user_id, action, f"{label} on cluster {cluster_uuid}", client_address(request)
        )
        if task["state"] == "active":
            session.flash(
                f"Abort requested for {label} — Hanami finishes the current pass: the task keeps running "
                "and ends as finished (a request task still writes its result).", "info",
            )
        elif task["state"] == "queued":
            session.flash(f"Removed {label} from the queue.", "success")
        else:
            session.flash(f"Removed {label} from the task list (its result, if any, is kept).", "success")
    await request.app.state.sessions.save(session)
    return redirect(request, target)


# -- creating tasks -----------------------------------------------------------------------------------

@router.get("/clusters/{cluster_uuid}/queue/delete", name="tasks_delete_queued_confirm")
async def delete_queued_confirm(request: Request, cluster_uuid: str, session: CurrentSession, api: Hanami) -> Response:
    """The queued tasks of a cluster with a check box each (all ticked): choose, then confirm."""
    checked_uuid(cluster_uuid)
    cluster, rows = await asyncio.gather(api.get_cluster(cluster_uuid), cluster_task_rows(request, api, cluster_uuid))
    queued = [row for row in rows if row["state"] == "queued"]
    context = {
        "cluster": cluster_context(request, cluster_uuid, cluster),
        "queued": [row for row in queued if row["removable"]],
        "kept": [row for row in queued if not row["removable"]],
        "next": safe_next(request.query_params.get("next")) if request.query_params.get("next") else "",
    }
    return await render(request, "tasks/delete_queued.html", context)


@router.post("/clusters/{cluster_uuid}/queue/delete", name="tasks_delete_queued")
async def delete_queued(request: Request, cluster_uuid: str, session: CurrentSession, api: Hanami) -> Response:
    """Remove the chosen tasks that are still queued (one that started meanwhile is left alone)."""
    checked_uuid(cluster_uuid)
    form = await request.form()
    chosen = {value for value in form.getlist("task_uuid") if isinstance(value, str) and UUID_RE.fullmatch(value)}
    next_url = form.get("next")
    target = (safe_next(next_url) if isinstance(next_url, str) and next_url
              else url_path(request, "cluster_tasks", cluster_uuid=cluster_uuid))
    rows = await cluster_task_rows(request, api, cluster_uuid)
    still_queued = [row for row in rows if row["uuid"] in chosen and row["state"] == "queued" and row["removable"]]
    removed: list[str] = []
    for row in still_queued:
        try:
            await api.delete_task(row["uuid"], cluster_uuid)
        except NotFound:
            continue  # gone meanwhile: nothing to remove
        removed.append(row.get("name") or row["uuid"])
    if removed:
        await request.app.state.audit.record(
            session.user_id, "delete task", f"{len(removed)} queued tasks on cluster {cluster_uuid}",
            client_address(request),
        )
    skipped = len(chosen) - len(removed)
    message = f"Removed {len(removed)} queued task{'s' if len(removed) != 1 else ''}."
    if skipped:
        message += (f" {skipped} had started, finished or gone meanwhile, or are checkpoint saves that"
                    " must not be removed, and were left as they are.")
    session.flash(message, "success" if removed else "info")
    await request.app.state.sessions.save(session)
    return redirect(request, target)


async def _choices(request: Request, api: HanamiAPI) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    clusters, datasets = await asyncio.gather(api.list_clusters(), api.list_datasets())
    by_name = lambda record: str(record.get("name", "")).lower()  # noqa: E731
    dataset_rows = sorted(datasets.records(), key=by_name)
    facts = await dataset_facts(request.app.state.store, [str(d.get("uuid")) for d in dataset_rows])
    label_datasets(dataset_rows, facts)  # same-named datasets told apart by size and date
    return sorted(clusters.records(), key=by_name), dataset_rows


async def brick_hint(request: Request, cluster_uuid: str) -> dict[str, Any] | None:
    """Input/output brick names of a cluster whose template this console knows, else None."""
    if not UUID_RE.fullmatch(cluster_uuid or ""):
        return None
    text = await known_template(request.app.state.store, cluster_uuid)
    if not text:
        return None
    from webconsole.protocol.template import TemplateError, parse_template

    try:
        template = parse_template(text)
    except TemplateError:
        return None
    return {
        "inputs": [brick.name for brick in template.input_bricks],
        "outputs": [brick.name for brick in template.output_bricks],
    }


async def _form(
    request: Request, api: HanamiAPI, values: dict[str, str], errors: dict[str, str] | None = None,
    backend_error: str = "", status_code: int = 200, block: str | None = None,
) -> Response:
    clusters, datasets = await _choices(request, api)
    dataset = next((d for d in datasets if d.get("uuid") == values.get("dataset_uuid")), None)
    context = {
        "values": values, "errors": errors or {}, "backend_error": backend_error,
        "clusters": clusters, "datasets": datasets, "max_repeat": MAX_REPEAT,
        "selected_dataset": dataset, "has_csv": any(d.get("type") == "csv" for d in datasets),
        "bricks": await brick_hint(request, values.get("cluster_uuid", "")),
    }
    return await render(request, "tasks/new.html", context, block=block, status_code=status_code)


@router.get("/tasks/new", name="tasks_new")
async def new(request: Request, session: CurrentSession, api: Hanami) -> Response:
    """The form; ``?cluster_uuid=&dataset_uuid=&type=`` preselect. htmx gets the CSV brick hint only."""
    query = request.query_params
    values = {
        "name": query.get("name", ""), "type": query.get("type", "train"), "repeat": query.get("repeat", "1"),
        "cluster_uuid": query.get("cluster_uuid", ""), "dataset_uuid": query.get("dataset_uuid", ""),
        "next": safe_next(query["next"]) if query.get("next") else "",
    }
    return await _form(request, api, values, block="csv_hint")


def _validate(values: dict[str, str], clusters: list[dict], datasets: list[dict]) -> tuple[dict[str, str], int]:
    errors: dict[str, str] = {}
    if values["type"] not in ("train", "request"):
        errors["type"] = "Choose train or request."
    try:
        # A request runs once; the form hides the repeat field for it, so its value is ignored.
        repeat = int(values["repeat"] or "1") if values["type"] == "train" else 1
    except ValueError:
        repeat = 0
    if not 1 <= repeat <= MAX_REPEAT:
        errors["repeat"] = f"A whole number from 1 to {MAX_REPEAT}."
    message = name_error(values["name"])
    if message:
        errors["name"] = message
    elif repeat > 1 and len(repeat_names(values["name"], repeat)[-1].encode()) > 256:
        errors["name"] = f"Too long: with the suffix \" {repeat} of {repeat}\" it exceeds 256 characters."
    if not any(c.get("uuid") == values["cluster_uuid"] for c in clusters):
        errors["cluster_uuid"] = "Choose one of your clusters."
    # Never send a dataset uuid that is not listed: the real backend crashes on it (Q-C2).
    if not any(d.get("uuid") == values["dataset_uuid"] for d in datasets):
        errors["dataset_uuid"] = "Choose one of the listed datasets."
    return errors, repeat


@router.post("/tasks/new", name="tasks_create")
@submitted_once
async def create(
    request: Request, session: CurrentSession, api: Hanami,
    name: Annotated[str, Form()] = "", type: Annotated[str, Form()] = "",  # noqa: A002
    cluster_uuid: Annotated[str, Form()] = "", dataset_uuid: Annotated[str, Form()] = "",
    repeat: Annotated[str, Form()] = "1", next_url: Annotated[str, Form(alias="next")] = "",
) -> Response:
    values = {"name": name, "type": type, "cluster_uuid": cluster_uuid, "dataset_uuid": dataset_uuid,
              "repeat": repeat.strip(), "next": safe_next(next_url) if next_url else ""}
    clusters, datasets = await _choices(request, api)
    errors, count = _validate(values, clusters, datasets)
    if errors:
        return await _form(request, api, values, errors, status_code=422, block="task_form")
    dataset = next(d for d in datasets if d.get("uuid") == dataset_uuid)
    store = request.app.state.store
    problem = await refusal(store, api, type, await known_template(store, cluster_uuid), dataset)
    if problem:
        # Refused before anything is queued: Hanami would run it, do nothing, and call it finished.
        return await _form(request, api, values, {"dataset_uuid": problem}, status_code=422, block="task_form")
    queued: list[str] = []
    backend_error = ""
    # "Train N times" is one action: N tasks queued in order, Hanami runs them FIFO (§4.23).
    for task_name in repeat_names(name, count):
        try:
            answer = await api.create_task(task_name, type, cluster_uuid, dataset_uuid)  # type: ignore[arg-type]
        except InputError as exc:
            backend_error = exc.message or str(exc)
            break
        except BackendError as exc:
            # POST task answers an empty 500 for two documented reasons (§4.23 steps 3b and 5).
            if exc.status != 500:
                raise
            backend_error = CSV_500 if dataset.get("type") == "csv" else UNREADABLE_500
            break
        queued.append(task_name)
        await remember_task(request, str(answer.get("uuid")), {
            "name": task_name, "type": type, "cluster_uuid": cluster_uuid,
            "dataset_uuid": dataset_uuid, "dataset_name": dataset.get("name", ""),
        })
    if queued:
        await request.app.state.audit.record(
            session.user_id, "create task", f"{len(queued)} × {type} '{name}' on cluster {cluster_uuid}",
            client_address(request),
        )
    if backend_error:
        if queued:
            backend_error = f"{len(queued)} of {count} tasks were queued, then Hanami refused:\n{backend_error}"
        return await _form(request, api, values, backend_error=backend_error, status_code=422, block="task_form")
    what = f"{count} {type} tasks" if count > 1 else f"{type} task {name}"
    session.flash(f"Queued {what} on the cluster.", "success")
    await request.app.state.sessions.save(session)
    # Back to the page the form was opened from (the cluster page), else to the cluster's task list.
    return redirect(request, values["next"] or url_path(request, "cluster_tasks", cluster_uuid=cluster_uuid))
