"""Clusters: list, detail, create with a live template editor, delete, checkpoints, host moves.

Hanami cannot report a cluster's template or host (Q-K3); the console remembers what passed
through it (see ``memory``). Other pages read the template with ``known_template``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import NoMatchFound

from webconsole.hanami.client import HanamiAPI
from webconsole.hanami.errors import InputError, PolicyDenied
from webconsole.protocol.template import (
    EXAMPLE_CSV_TEMPLATE,
    EXAMPLE_MNIST_TEMPLATE,
    ClusterTemplate,
    TemplateError,
    parse_template,
)
from webconsole.web.core.deps import client_address
from webconsole.web.clusters.brick_layout import BrickLayout, brick_layout
from webconsole.web.clusters.busy import unfinished_tasks
from webconsole.web.clusters.memory import (
    checkpoint_origin,
    checkpoint_origins,
    clusters_by_host,
    forget_cluster,
    forget_template,
    known_host,
    known_template,
    name_hosts,
    remember_checkpoint_origin,
    remember_host,
    remember_task,
    remember_template,
    resolve_host,
)
from webconsole.web.core.deps import CurrentSession, Hanami, resource_router
from webconsole.web.core.listing import paginate
from webconsole.web.core.render import render, url_path
from webconsole.web.core.once import submitted_once

__all__ = ["router", "known_template", "valid_name", "UUID_RE", "require_uuid"]

router = resource_router()

NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z_0-9 ]*")
UUID_RE = re.compile(r"[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}")
_SEMANTIC = re.compile(r"unkown (?:settings|brick)-field '(.*)'|(refractory_time) must be >= 1")
EXAMPLES = {"mnist": EXAMPLE_MNIST_TEMPLATE, "csv": EXAMPLE_CSV_TEMPLATE}


def valid_name(name: str) -> str | None:
    """Hanami's NAME rule (§1.6): an error message, or None when the name is acceptable."""
    if not NAME_RE.fullmatch(name):
        return "Start with a letter; then letters, digits, '_' and spaces only."
    if not 4 <= len(name.encode("utf-8")) <= 256:
        return "Between 4 and 256 characters."
    return None


def tasks_url(request: Request, cluster_uuid: str) -> str | None:
    """The tasks page's region for a cluster (route ``cluster_tasks`` of tasks.py), if it exists.

    Checked here rather than with the templates' ``has_route``, which cannot see routes that
    need path parameters.
    """
    try:
        return url_path(request, "cluster_tasks", cluster_uuid=cluster_uuid)
    except NoMatchFound:
        return None


def require_uuid(value: str) -> str:
    """Path uuids are checked here so a malformed one is a plain 404, not a backend 400."""
    if not UUID_RE.fullmatch(value):
        raise HTTPException(404, "There is no such item.")
    return value


@dataclass
class TemplateCheck:
    """The result of checking a template text: Hanami's parser error, console checks, drawing."""

    text: str
    error: TemplateError | None = None
    template: ClusterTemplate | None = None
    layout: BrickLayout | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.template is not None and not self.problems

    @property
    def where(self) -> tuple[int, int | None]:
        """(line, column) to show the user.

        Hanami reports an unknown key (or a bad refractory_time) at the token *after* the line
        that holds it (see protocol.template); users need the key's own line, so we look back
        for it. Syntax errors are shown where Hanami reports them.
        """
        if self.error is None:
            return (0, None)
        match = _SEMANTIC.fullmatch(self.error.message)
        if match:
            key = match.group(1) or match.group(2)
            lines = self.text.split("\n")
            for number in range(min(self.error.line, len(lines)), 0, -1):
                stripped = lines[number - 1].replace("\t", " ").lstrip(" ")
                if re.match(re.escape(key) + r" *:", stripped):
                    return (number, len(lines[number - 1]) - len(stripped) + 1)
        return (self.error.line, self.error.column)

    @property
    def line(self) -> int:
        return self.where[0]

    @property
    def column(self) -> int | None:
        return self.where[1]

    @property
    def hanami_location_differs(self) -> bool:
        return self.error is not None and self.where != (self.error.line, self.error.column)

    @property
    def error_line_text(self) -> str:
        lines = self.text.split("\n")
        return lines[self.line - 1].replace("\t", " ") if 0 < self.line <= len(lines) else ""

    @property
    def caret(self) -> str:
        return " " * (self.column - 1) + "^" if self.column is not None else ""


def normalise(text: str) -> str:
    # Browsers submit textarea line breaks as CRLF; Hanami rejects '\r' (§6.2).
    return text.replace("\r\n", "\n")


def check_template(text: str) -> TemplateCheck:
    """Parse with Hanami's rules, then refuse what Hanami accepts but later misbehaves on (§6.4)."""
    check = TemplateCheck(text=text)
    if not text.strip():
        check.problems.append("The template is empty. Start from an example.")
        return check
    try:
        check.template = parse_template(text)
    except TemplateError as exc:
        check.error = exc
        return check
    check.layout = brick_layout(check.template)
    template = check.template
    if not template.input_bricks:
        check.problems.append("No input brick: give one brick an 'input: <name>' line.")
    if not template.output_bricks:
        check.problems.append("No output brick: give one brick an 'output: <name>' line.")
    positions = [brick.position for brick in template.bricks]
    for position in sorted({p for p in positions if positions.count(p) > 1}):
        check.problems.append(f"Two bricks share the position {','.join(map(str, position))}.")
    for brick in template.input_bricks + template.output_bricks:
        if brick.neurons <= 0:
            check.problems.append(f"Brick '{brick.name}' needs number_of_neurons of at least 1.")
    return check


async def _optional(table_call: Any) -> list[dict[str, Any]] | None:
    """A listing the page can do without: None when the policy refuses it for this role."""
    try:
        return (await table_call).records()
    except PolicyDenied:
        return None


async def _form_context(check: TemplateCheck, name: str = "", errors: dict | None = None,
                        backend_error: str = "") -> dict[str, Any]:
    return {"check": check, "name": name, "errors": errors or {}, "backend_error": backend_error}


# ------------------------------------------------------------------------------------------ list


@router.get("/clusters", name="clusters_list")
async def list(request: Request, session: CurrentSession, api: Hanami) -> Response:
    """Every cluster, or with ``?host=<uuid>`` (the hosts page's "more" link) those on one host."""
    host_uuid = request.query_params.get("host", "")
    host: dict[str, Any] | None = None
    if host_uuid:
        clusters_table, hosts = await asyncio.gather(api.list_clusters(), _optional(api.list_hosts()))
        clusters = clusters_table.records()
        name_hosts(hosts or [])
        host = next((known for known in hosts or [] if known.get("uuid") == host_uuid), None)
        if host is not None:
            clusters = (await clusters_by_host(request.app.state.store, hosts or [], clusters))[host_uuid]
    else:
        clusters = (await api.list_clusters()).records()
    page = paginate(
        request, clusters,
        search=("name", "owner_id", "project_id", "uuid"),
        sortable=("name", "owner_id", "project_id", "uuid"), default_sort="name",
        extra_params=("host",) if host is not None else (),
    )
    context = {"page": page, "host": host, "host_gone": bool(host_uuid) and host is None}
    return await render(request, "clusters/list.html", context, block="list_region")


# ------------------------------------------------------------------------------- create + editor


@router.get("/clusters/new", name="clusters_new")
async def new(request: Request, session: CurrentSession) -> Response:
    example = request.query_params.get("example", "")
    check = check_template(EXAMPLES[example]) if example in EXAMPLES else TemplateCheck(text="")
    name = request.query_params.get("name", "")
    return await render(request, "clusters/new.html", await _form_context(check, name))


@router.post("/clusters/new/check", name="clusters_check")
async def check(request: Request, session: CurrentSession) -> Response:
    """The editor's live check (htmx: just the feedback block; without JS: the whole form)."""
    form = await request.form()
    check = check_template(normalise(str(form.get("template", ""))))
    context = await _form_context(check, str(form.get("name", "")).strip())
    return await render(request, "clusters/new.html", context, block="template_feedback")


@router.post("/clusters", name="clusters_create")
@submitted_once
async def create(request: Request, session: CurrentSession, api: Hanami) -> Response:
    form = await request.form()
    name = str(form.get("name", ""))
    check = check_template(normalise(str(form.get("template", ""))))
    errors: dict[str, str] = {}
    if message := valid_name(name):
        errors["name"] = message
    if not check.ok:
        errors["template"] = "Fix the template first: the problem is shown next to the template."
    if errors:
        return await render(request, "clusters/new.html", await _form_context(check, name, errors),
                            status_code=422)
    try:
        cluster = await api.create_cluster(name, check.text)
    except InputError as exc:  # 400 (template refused: ASCII table) or 409 (name exists)
        context = await _form_context(check, name, backend_error=exc.message)
        return await render(request, "clusters/new.html", context, status_code=422)
    await remember_template(request.app.state.store, cluster["uuid"], check.text)
    session.flash(f"Cluster '{name}' created. It runs on the first cpu host, in task mode.", "success")
    await request.app.state.sessions.save(session)
    return RedirectResponse(url_path(request, "clusters_detail", uuid=cluster["uuid"]), status_code=303)


# ---------------------------------------------------------------------------------------- detail


async def _detail_context(request: Request, api: HanamiAPI, uuid: str) -> dict[str, Any]:
    store = request.app.state.store
    cluster = await api.get_cluster(uuid)  # 404 -> the error mapper
    hosts, checkpoints, template, host_uuid = await asyncio.gather(
        _optional(api.list_hosts()), _optional(api.list_checkpoints()),
        known_template(store, uuid), known_host(store, uuid),
    )
    checkpoints_denied, checkpoints = checkpoints is None, checkpoints or []
    name_hosts(hosts or [])
    origins = await checkpoint_origins(store, [str(c["uuid"]) for c in checkpoints])
    made_here = [c for c, origin in zip(checkpoints, origins) if origin and origin.get("cluster_uuid") == uuid]
    return {
        "cluster": cluster,
        "template_text": template,
        "check": check_template(template) if template else None,
        "hosts": hosts,
        "hosts_denied": hosts is None,
        "checkpoints_denied": checkpoints_denied,
        "host": resolve_host(hosts or [], host_uuid),
        "host_known": host_uuid is not None,
        "checkpoints": sorted(checkpoints, key=lambda c: str(c.get("name", "")).lower()),
        "made_here": made_here,
        "errors": {},
        "values": {},
        "tasks_url": tasks_url(request, uuid),
    }


async def _detail_with_errors(request: Request, api: HanamiAPI, uuid: str, errors: dict[str, str],
                              values: dict[str, str], backend_error: str = "") -> Response:
    context = await _detail_context(request, api, uuid)
    context.update(errors=errors, values=values, backend_error=backend_error)
    return await render(request, "clusters/detail.html", context, status_code=422)


async def _back_to_detail(request: Request, session: Any, uuid: str, message: str) -> Response:
    session.flash(message, "success")
    await request.app.state.sessions.save(session)
    return RedirectResponse(url_path(request, "clusters_detail", uuid=uuid), status_code=303)


@router.get("/clusters/{uuid}", name="clusters_detail")
async def detail(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    context = await _detail_context(request, api, require_uuid(uuid))
    # htmx (when the cluster's tasks end) gets the checkpoint and host panels only
    return await render(request, "clusters/detail.html", context, block="cluster_actions")


# ---------------------------------------------------------------------------------------- delete


@router.get("/clusters/{uuid}/delete", name="clusters_delete_confirm")
async def delete_confirm(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    cluster, unfinished = await asyncio.gather(api.get_cluster(require_uuid(uuid)), unfinished_tasks(api, uuid))
    return await render(request, "clusters/delete.html", {"cluster": cluster, "unfinished": unfinished})


@router.post("/clusters/{uuid}/delete", name="clusters_delete")
async def delete(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    cluster, unfinished = await asyncio.gather(api.get_cluster(require_uuid(uuid)), unfinished_tasks(api, uuid))
    if unfinished:  # refused before Hanami sees it: deleting under running tasks can crash it
        return await render(request, "clusters/delete.html", {"cluster": cluster, "unfinished": unfinished},
                            status_code=409)
    await api.delete_cluster(uuid)
    await forget_cluster(request.app.state.store, uuid)
    await request.app.state.audit.record(
        session.user_id, "delete cluster", f"{cluster.get('name')} ({uuid})", client_address(request)
    )
    session.flash(f"Cluster '{cluster.get('name')}' deleted, with its task history. Its checkpoints remain.",
                  "success")
    await request.app.state.sessions.save(session)
    return RedirectResponse(url_path(request, "clusters_list"), status_code=303)


# ------------------------------------------------------------------------- checkpoints and hosts


@router.post("/clusters/{uuid}/save", name="clusters_save")
@submitted_once
async def save(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    form = await request.form()
    name = str(form.get("checkpoint_name", ""))
    if message := valid_name(name):
        return await _detail_with_errors(request, api, require_uuid(uuid), {"checkpoint_name": message},
                                         {"checkpoint_name": name})
    cluster = await api.get_cluster(require_uuid(uuid))
    try:
        task = await api.save_checkpoint(uuid, name)
    except InputError as exc:
        return await _detail_with_errors(request, api, uuid, {}, {"checkpoint_name": name}, exc.message)
    store = request.app.state.store
    await remember_checkpoint_origin(
        store, task["uuid"], uuid, str(cluster.get("name", "")), await known_template(store, uuid)
    )
    await remember_task(store, task["uuid"], {"name": f"Save checkpoint {name}", "type": "checkpoint save",
                                               "cluster_uuid": uuid})
    return await _back_to_detail(
        request, session, uuid,
        f"Saving checkpoint '{name}' is queued as a task of this cluster. The checkpoint appears in "
        "the checkpoint list once that task has run (after the tasks queued before it).",
    )


@router.post("/clusters/{uuid}/restore", name="clusters_restore")
async def restore(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    form = await request.form()
    checkpoint_uuid = str(form.get("checkpoint_uuid", ""))
    require_uuid(uuid)
    listed = {c["uuid"]: c for c in (await api.list_checkpoints()).records()}
    if checkpoint_uuid not in listed:
        # Hanami accepts unknown checkpoints and silently does nothing (Q-K1): only offer listed ones.
        return await _detail_with_errors(request, api, uuid, {"checkpoint_uuid": "Choose a checkpoint from the list."}, {})
    task = await restore_into(request, api, uuid, checkpoint_uuid)
    if task.get("uuid"):
        await remember_task(request.app.state.store, str(task["uuid"]), {
            "name": f"Restore checkpoint {listed[checkpoint_uuid].get('name')}", "type": "checkpoint restore",
            "cluster_uuid": uuid})
    return await _back_to_detail(
        request, session, uuid,
        f"Restoring checkpoint '{listed[checkpoint_uuid].get('name')}' is queued as a task of this cluster.",
    )


async def restore_into(request: Request, api: HanamiAPI, cluster_uuid: str, checkpoint_uuid: str) -> dict:
    """Queue a restore; the cluster's template becomes the checkpoint's (a restore replaces the whole
    network, bricks included). A checkpoint saved outside the console has an unknown template, so the
    cluster's is forgotten: direct IO must not send the old bricks' names (Q-W1)."""
    result = await api.restore_checkpoint(cluster_uuid, checkpoint_uuid)
    store = request.app.state.store
    origin = await checkpoint_origin(store, checkpoint_uuid)
    if origin and origin.get("template"):
        await remember_template(store, cluster_uuid, origin["template"])
    else:
        await forget_template(store, cluster_uuid)
    return result


@router.post("/clusters/{uuid}/host", name="clusters_switch_host")
async def switch_host(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    form = await request.form()
    host_uuid = str(form.get("host_uuid", ""))
    require_uuid(uuid)
    listed = (await api.list_hosts()).records()
    name_hosts(listed)
    hosts = {h["uuid"]: h for h in listed}
    if host_uuid not in hosts:
        return await _detail_with_errors(request, api, uuid, {"host_uuid": "Choose a host from the list."}, {})
    await api.switch_host(uuid, host_uuid)
    await remember_host(request.app.state.store, uuid, host_uuid)
    return await _back_to_detail(
        request, session, uuid, f"Cluster moved to {hosts[host_uuid]['label']} (id {host_uuid})."
    )
