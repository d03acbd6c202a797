"""Interactive direct IO: a page per cluster whose websocket the console bridges to Hanami's.

Pages:
* GET  /clusters/{uuid}/direct                 the drawing canvas / input form, chart, replay
* WS   /clusters/{uuid}/direct/ws              the bridge (see webconsole.web.direct_io.bridge)
* POST /clusters/{uuid}/direct/task-mode       "Return to task mode" (409 = already there)
* POST /clusters/{uuid}/direct/replay          upload an MNIST idx pair or a CSV to replay
* POST /clusters/{uuid}/direct/template        tell the console the template of a cluster it did not create
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
from pathlib import Path
from types import SimpleNamespace

from fastapi import APIRouter, FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.datastructures import URL, UploadFile
from starlette.formparsers import MultiPartException

from webconsole.protocol.idx import DataFormatError, validate_mnist_pair
from webconsole.protocol.template import TemplateError, parse_template
from webconsole.sessions import read_record
from webconsole.web.core.deps import client_address
from webconsole.web.clusters.memory import (
    bricks_seen,
    known_template,
    remember_declared_template,
    template_declaration,
)
from webconsole.web.core.errors import Forbidden
from webconsole.web.direct_io.shape import disagreement
from webconsole.web.direct_io.bridge import Bridge, BridgeRegistry
from webconsole.web.direct_io.protocol import cluster_template, layout_problem
from webconsole.web.direct_io.replay import (
    REPLAY_PREFIX,
    REPLAY_TTL,
    forget_session_replays,
    last_replay_key,
    replay_dir,
    sweep_replays,
)
from webconsole.web.direct_io.locks import (
    LOCK_PREFIX,
    MODE_PREFIX,
    return_to_task_mode,
    session_hash,
    sweep_left_in_direct,
)
from webconsole.web.core.cleanup import register_sweep
from webconsole.web.core.deps import SESSION_COOKIE, CurrentSession, Hanami, origin_allowed, resource_router
from webconsole.web.core.render import render, url_path

router = resource_router()
socket_router = APIRouter()  # no CSRF dependency: the bridge checks origin, cookie and CSRF itself

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _check_uuid(uuid: str) -> None:
    if not UUID.fullmatch(uuid):
        raise HTTPException(404, "There is no cluster with that id.")


@router.get("/clusters/{uuid}/direct", name="direct_io_page")
async def page(
    request: Request, uuid: str, session: CurrentSession, api: Hanami,
    template_error: str = "", template_text: str = "", status_code: int = 200,
) -> Response:
    _check_uuid(uuid)
    cluster = await api.get_cluster(uuid)
    store = request.app.state.store
    template, note = await cluster_template(store, uuid)
    holder = await read_record(store, LOCK_PREFIX + uuid)
    left_direct = await read_record(store, MODE_PREFIX + uuid)
    declaration = await template_declaration(store, uuid) if template is not None else None
    problem = layout_problem(template) if template is not None else ""
    inputs = [{"name": b.input_name, "size": b.neurons} for b in template.input_bricks] if template else []
    outputs = [{"name": b.output_name, "size": b.neurons} for b in template.output_bricks] if template else []
    config = {
        "ws": url_path(request, "direct_io_ws", uuid=uuid),
        "csrf": session.csrf_token,
        "replay": url_path(request, "direct_io_replay", uuid=uuid),
        "known": template is not None,
        "inputs": inputs,
        "outputs": outputs,
    }
    return await render(
        request,
        "direct_io/page.html",
        {
            "cluster": cluster,
            "uuid": uuid,
            "template_known": template is not None,
            "template_note": note,
            "problem": problem,
            "inputs": inputs,
            "outputs": outputs,
            "holder": holder,
            "left_direct": left_direct if holder is None else None,
            "config": config,
            "idle_timeout": request.app.state.settings.direct_io_idle_timeout,
            "template_error": template_error,
            "template_text": template_text,
            "declaration": declaration,
            "may_replace": declaration is not None and (
                declaration.get("user_id") == session.user_id or session.is_admin),
            "seen": await bricks_seen(store, uuid),
        },
        status_code=status_code,
    )


@router.post("/clusters/{uuid}/direct/template", name="direct_io_template")
async def declare_template(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    """Remember the template of a cluster made outside the console, so its bricks can be checked.

    Hanami has no API to read a cluster's template (Q-K3) and never answers a message for a brick
    the cluster does not have (Q-W1), so the bridge only sends brick names from a template.
    """
    _check_uuid(uuid)
    await api.get_cluster(uuid)
    store = request.app.state.store
    declaration = await template_declaration(store, uuid)
    if await known_template(store, uuid) is not None:
        if declaration is None:
            # What the console created or restored is the truth; a declaration must never replace it.
            raise HTTPException(409, "The console already knows this cluster's template; it cannot be replaced.")
        if declaration.get("user_id") != session.user_id and not session.is_admin:
            raise Forbidden(f"The template of this cluster was declared by {declaration.get('user_name', 'another user')}; "
                            "only they or an admin can replace it.")
    form = await request.form()
    text = str(form.get("template", "")).replace("\r\n", "\n")
    try:
        template = parse_template(text)
    except TemplateError as exc:
        where = f"line {exc.line}" + (f", column {exc.column}" if exc.column else "")
        return await page(request, uuid, session, api, template_error=f"{exc.message} ({where})",
                          template_text=text, status_code=422)
    problem = layout_problem(template) or await disagreement(api, store, uuid, template)
    if problem:
        return await page(request, uuid, session, api, template_error=problem, template_text=text,
                          status_code=422)
    await remember_declared_template(store, uuid, text, session.user_id, session.user_name)
    await request.app.state.audit.record(
        session.user_id, "direct_io_template", f"cluster {uuid}" + (" (replaced)" if declaration else ""),
        client_address(request),
    )
    session.flash("The console now knows this cluster's bricks.", "success")
    await request.app.state.sessions.save(session)
    return RedirectResponse(url_path(request, "direct_io_page", uuid=uuid), status_code=303)


@router.post("/clusters/{uuid}/direct/task-mode", name="direct_io_task_mode")
async def task_mode(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    """Return a cluster to task mode (after a console crash or a lost bridge)."""
    _check_uuid(uuid)
    store = request.app.state.store
    target = url_path(request, "direct_io_page", uuid=uuid)
    holder = await read_record(store, LOCK_PREFIX + uuid)
    if holder is not None:
        session.flash(
            f"Direct IO is open on this cluster ({holder.get('user_name', 'another user')}); "
            "it returns to task mode when that bridge closes.",
            "error",
        )
    else:
        await api.get_cluster(uuid)
        if await return_to_task_mode(api, store, uuid):
            session.flash("The cluster is in task mode: queued tasks can run.", "success")
            await request.app.state.audit.record(
                session.user_id, "direct_io_task_mode", f"cluster {uuid}", client_address(request)
            )
        else:
            session.flash("Hanami did not switch the cluster to task mode; try again in a moment.", "error")
    await request.app.state.sessions.save(session)
    return RedirectResponse(target, status_code=303)


def _upload(form: object, name: str) -> UploadFile | None:
    value = form.get(name)  # type: ignore[attr-defined]
    return value if isinstance(value, UploadFile) and value.filename else None


def _save(source: UploadFile, target: Path, limit: int) -> None:
    source.file.seek(0)
    # readable by the console's OS user only, whatever the umask
    with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        while chunk := source.file.read(1 << 20):
            out.write(chunk)
            if out.tell() > limit:
                raise DataFormatError(f"{source.filename}: the file is larger than the allowed upload size")


@router.post("/clusters/{uuid}/direct/replay", name="direct_io_replay")
async def replay_upload(request: Request, uuid: str, session: CurrentSession) -> Response:
    """Keep an uploaded MNIST pair or CSV for the bridge to replay; answers JSON for the page."""
    _check_uuid(uuid)
    settings = request.app.state.settings
    try:
        # the page's form has three file fields (images, labels, csv); empty ones count too
        form = await request.form(max_files=3, max_fields=10)
    except MultiPartException as exc:
        return JSONResponse({"error": f"The upload could not be read: {exc.message}"}, status_code=422)
    except HTTPException as exc:  # Starlette wraps multipart errors in a 400
        return JSONResponse({"error": f"The upload could not be read: {exc.detail}"}, status_code=422)
    kind = form.get("kind")
    files = {name: _upload(form, name) for name in ("images", "labels", "csv")}
    if kind not in ("mnist", "csv"):
        return JSONResponse({"error": "Choose MNIST or CSV."}, status_code=422)
    needed = ("images", "labels") if kind == "mnist" else ("csv",)
    if any(files[name] is None for name in needed):
        what = "an images file and a labels file" if kind == "mnist" else "a CSV file"
        return JSONResponse({"error": f"Choose {what}."}, status_code=422)
    replay_id = secrets.token_urlsafe(16)
    folder = replay_dir(settings) / replay_id
    folder.mkdir(mode=0o700)
    record: dict[str, object] = {
        "kind": kind, "session": session_hash(session.id), "cluster": uuid, "dir": str(folder),
    }
    try:
        if kind == "mnist":
            images, labels = folder / "images.idx", folder / "labels.idx"
            await asyncio.to_thread(_save, files["images"], images, settings.max_upload_bytes)  # type: ignore[arg-type]
            await asyncio.to_thread(_save, files["labels"], labels, settings.max_upload_bytes)  # type: ignore[arg-type]
            info = await asyncio.to_thread(validate_mnist_pair, images, labels)
            record.update(images=str(images), labels=str(labels), samples=info.count)
            summary = f"{info.count} MNIST digits"
        else:
            from webconsole.protocol.csvdata import validate_csv

            path = folder / "data.csv"
            await asyncio.to_thread(_save, files["csv"], path, settings.max_upload_bytes)  # type: ignore[arg-type]
            csv_info = await asyncio.to_thread(validate_csv, path)
            record.update(csv=str(path), samples=csv_info.lines, columns=csv_info.columns)
            summary = f"{csv_info.lines} CSV rows, columns {', '.join(csv_info.columns)}"
    except DataFormatError as exc:
        await asyncio.to_thread(shutil.rmtree, folder, True)
        return JSONResponse({"error": exc.message}, status_code=422)
    store = request.app.state.store
    # one kept upload per session: the previous one (if never replayed and closed) goes now,
    # and so do the files of sessions that ended without logging out
    await forget_session_replays(store, session.id)
    await sweep_replays(store, settings)
    last_key = last_replay_key(session.id)
    await store.set(REPLAY_PREFIX + replay_id, json.dumps(record).encode(), REPLAY_TTL)
    await store.set(last_key, replay_id.encode(), REPLAY_TTL)
    await request.app.state.audit.record(
        session.user_id, "direct_io_replay_upload", f"cluster {uuid}: {summary}", client_address(request)
    )
    return JSONResponse({"id": replay_id, "kind": kind, "samples": record["samples"], "summary": summary})


def _origin_ok(websocket: WebSocket, settings: object) -> bool:
    """deps.origin_allowed, with this socket's ws/wss base compared as http/https."""
    base = URL(str(websocket.base_url))
    scheme = {"ws": "http", "wss": "https"}.get(base.scheme, base.scheme)
    shim = SimpleNamespace(base_url=base.replace(scheme=scheme))
    return origin_allowed(websocket.headers.get("origin"), shim, settings)  # type: ignore[arg-type]


@socket_router.websocket("/clusters/{uuid}/direct/ws", name="direct_io_ws")
async def bridge_socket(websocket: WebSocket, uuid: str) -> None:
    app = websocket.app
    # Refused before accept: the browser sees a failed handshake (HTTP 403).
    if not _origin_ok(websocket, app.state.settings) or not UUID.fullmatch(uuid):
        await websocket.close(code=1008)
        return
    session = await app.state.sessions.load(websocket.cookies.get(SESSION_COOKIE), touch=True)
    if session is None:
        await websocket.close(code=1008)
        return
    await websocket.accept()
    bridge = Bridge(app, websocket, session, uuid)
    open_sockets = app.state.metrics.websockets.labels("browser")
    open_sockets.inc()
    try:
        await bridge.run()
    finally:
        open_sockets.dec()
        # Whatever happened (browser gone, idle, error, cancellation): close and return to TASK.
        await asyncio.shield(bridge.cleanup_task())


def setup(app: FastAPI) -> None:
    settings = app.state.settings
    app.state.direct_io = BridgeRegistry(
        reply_timeout=min(settings.backend_timeout, 30.0), idle_timeout=settings.direct_io_idle_timeout
    )
    app.include_router(socket_router)

    async def close_bridges(app: FastAPI) -> None:
        await app.state.direct_io.shutdown()

    async def report_left_in_direct(app: FastAPI) -> None:
        # No token at start, so nothing can be switched here: the page offers the action instead.
        await app.state.direct_io.report_left_in_direct(app.state.store)

    async def sweep_left_replays(app: FastAPI) -> None:
        await sweep_replays(app.state.store, app.state.settings)

    async def forget_replays_of(app: FastAPI, session: object) -> None:
        await forget_session_replays(app.state.store, session.id)  # type: ignore[attr-defined]

    async def close_bridges_of(app: FastAPI, session: object) -> None:
        app.state.direct_io.close_session_bridges(session.id)  # type: ignore[attr-defined]

    app.state.startup_hooks.append(report_left_in_direct)
    app.state.startup_hooks.append(sweep_left_replays)
    app.state.logout_hooks.append(forget_replays_of)
    app.state.logout_hooks.append(close_bridges_of)
    register_sweep(app, sweep_left_in_direct)
    app.state.shutdown_hooks.append(close_bridges)
