"""Dataset uploads: browser -> console (multipart, spooled to disk), strict validation, then a
background task that sends the files to Hanami while any replica can show its progress.

Two legs, each with its own progress bar:

1. browser -> console: a normal multipart form POST (XMLHttpRequest with upload progress when
   JavaScript is on). Starlette spools each file to disk beyond 1 MB; the files are copied to
   named files in a private folder (the validators and the client read paths) and checked with
   Hanami's rules in a thread. A broken file re-renders the form (422) and nothing reaches Hanami.
2. console -> Hanami: an asyncio task of this process runs ``api.upload_mnist`` /
   ``api.upload_csv``. Its state lives in the shared store under ``upload:<id>`` so the status page
   works on every replica; a cancel request sets ``upload-cancel:<id>``, which the owning task
   watches (and cancels at once when the request lands on the owning replica).

This module holds the form and the routes; ``upload_state`` the shared state, ``upload_task`` the
send task.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from webconsole.hanami.client import HanamiAPI
from webconsole.protocol.csvdata import validate_csv
from webconsole.protocol.idx import DataFormatError, validate_mnist_pair
from webconsole.sessions import Session
from webconsole.web.core.deps import client_address
from webconsole.web.core.deps import CurrentSession, Hanami, csrf_protect, require_session, resource_router
from webconsole.web.core.once import submitted_once
from webconsole.web.core.render import is_htmx, render, url_path
from webconsole.web.core.security import BodyTooLarge
from webconsole.web.datasets.contents import DatasetContents, read_contents, read_csv_values
from webconsole.web.datasets.upload_state import (
    CANCEL_PREFIX,
    STATE_PREFIX,
    STATE_TTL,
    UploadState,
    load_state,
    save_state,
    session_key,
)
from webconsole.web.datasets.upload_task import start_upload, upload_tasks

log = logging.getLogger("webconsole.uploads")

router = resource_router()
# The upload POST parses its multipart body with tight limits BEFORE the CSRF check reads the
# token from it (the shared check would otherwise parse it first, with Starlette's loose
# defaults). The CSRF and origin check still runs, as the route's second dependency.
upload_router = APIRouter()

COPY_BUFFER = 1 << 20

# Hanami's NAME rule (contract §1.6), 4-256 bytes.
NAME_RULE = re.compile(r"[a-zA-Z][a-zA-Z_0-9 ]*")
# Stored names that Hanami reads back as booleans break every later call (Q-G4).
BOOLEAN_WORDS = {"true", "True", "TRUE", "false", "False", "FALSE"}
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._ -]+")


def check_dataset_name(name: str) -> str | None:
    """The reason ``name`` would be refused by Hanami (or break it), or None."""
    size = len(name.encode())
    if size < 4:
        return "The name needs at least 4 characters."
    if size > 256:
        return "The name can have at most 256 characters."
    if not NAME_RULE.fullmatch(name):
        return ("The name must start with a letter and may only contain letters, digits, "
                "underscores and spaces.")
    if name in BOOLEAN_WORDS:
        return "Hanami cannot store a dataset named true or false; choose another name."
    return None


async def visible_upload(request: Request, session: Session, upload_id: str) -> UploadState:
    """The upload if this session started it; anyone else learns nothing (404)."""
    state = await load_state(request, upload_id) if re.fullmatch(r"[A-Za-z0-9_-]{16,64}", upload_id) else None
    if state is None or not secrets.compare_digest(state.owner, session_key(session)):
        raise NotFoundPage("No such upload: it finished more than an hour ago, or it is not yours.")
    return state


class NotFoundPage(Exception):
    """Rendered as a 404 page by the handler installed in setup()."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- browser -> console -------------------------------------------------------------------------


async def parse_upload_form(request: Request) -> None:
    """Parse the multipart body with tight limits (spooled to disk past 1 MB per file).

    Its size is bounded before it reaches the route: ``BodyLimitMiddleware`` stops reading a logged-in
    session's multipart body past two files of ``max_upload_bytes`` plus 1 MB of fields and framing
    (also a chunked one without a Content-Length), so nothing larger ever sits on disk.
    """
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadUpload("The upload must be sent as a multipart form.")
    try:
        await request.form(max_files=2, max_fields=10)
    except BodyTooLarge:
        raise
    except HTTPException as exc:  # Starlette's answer to a form past its limits or malformed
        raise BadUpload(f"The upload could not be read: {exc.detail}") from None
    except ClientDisconnect:
        # the browser cancelled (or lost its connection) mid-upload: normal, not an error
        log.info("upload aborted by the browser")
        raise BadUpload("The browser stopped sending the upload.") from None


class BadUpload(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _safe_filename(filename: str | None, fallback: str) -> str:
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE_FILENAME.sub("_", base).strip(" .")[:120]
    return base or fallback


def _copy_to(source: UploadFile, target: Path) -> int:
    """Copy a spooled upload to a named file (in a thread: blocking I/O), 1 MB at a time."""
    source.file.seek(0)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        shutil.copyfileobj(source.file, out, COPY_BUFFER)
        return out.tell()


async def _same_name(api: HanamiAPI, name: str, owner: str) -> tuple[bool, int]:
    """Would a CSV upload under ``name`` overwrite one of the owner's CSV datasets (Q-D3)? And how
    many listed datasets already carry this name (a second one is allowed, but worth a warning)."""
    same = [r for r in (await api.list_datasets()).records() if r.get("name") == name]
    return any(r.get("type") == "csv" and r.get("owner_id") == owner for r in same), len(same)


def _file_field(form: FormData, name: str) -> UploadFile | None:
    value = form.get(name)
    if isinstance(value, UploadFile) and value.filename:
        return value
    return None


# -- routes -------------------------------------------------------------------------------------


async def _form_error(request: Request, kind: str, name: str, errors: dict[str, str]) -> Response:
    return await render(
        request, "datasets/upload.html",
        {"form_kind": kind, "values": {"name": name}, "errors": errors},
        block="upload_forms", status_code=422,
    )


@upload_router.post(
    "/datasets/upload", name="datasets_upload_create",
    # order matters: refuse anonymous posts before reading the body, read it, then check CSRF
    dependencies=[Depends(require_session), Depends(parse_upload_form), Depends(csrf_protect)],
)
@submitted_once
async def create(request: Request, session: CurrentSession, api: Hanami) -> Response:
    form = await request.form()
    kind = form.get("kind")
    kind = kind if kind in ("mnist", "csv") else "csv"
    name = str(form.get("name") or "").strip()
    fields = ("images", "labels") if kind == "mnist" else ("csv",)
    uploads = {key: _file_field(form, key) for key in fields}
    errors: dict[str, str] = {}
    problem = check_dataset_name(name)
    if problem:
        errors["name"] = problem
    for key, upload in uploads.items():
        if upload is None:
            errors[key] = "Choose a file."
        elif upload.size is not None and upload.size > request.app.state.settings.max_upload_bytes:
            errors[key] = f"The file is larger than {request.app.state.settings.max_upload_bytes} bytes."
    if errors:
        await form.close()
        return await _form_error(request, kind, name, errors)

    settings = request.app.state.settings
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="hanami-upload-", dir=settings.upload_dir))
    handed_over = False
    try:
        paths = []
        for key, upload in uploads.items():
            assert upload is not None
            target = folder / key / _safe_filename(upload.filename, f"{key}.data")
            await asyncio.to_thread(_copy_to, upload, target)
            paths.append(target)
        await form.close()
        state = UploadState(id=secrets.token_urlsafe(18), owner=session_key(session), user_id=session.user_id,
                            kind=kind, name=name, files=[p.name for p in paths],
                            bytes_total=sum(p.stat().st_size for p in paths))
        await save_state(request.app.state.store, state)
        request.app.state.metrics.upload_bytes.labels("browser").inc(state.bytes_total)
        contents: DatasetContents | None = None
        try:
            if kind == "mnist":
                info = await asyncio.to_thread(validate_mnist_pair, paths[0], paths[1])
                state.lines, state.inputs = info.count, info.inputs
                # Kept once Hanami names the dataset: what runs and results need to show the mistakes.
                contents = await asyncio.to_thread(read_contents, paths[0], paths[1], info.count)
            else:
                csv_info = await asyncio.to_thread(validate_csv, paths[0])
                state.lines, state.columns = csv_info.lines, csv_info.columns
                values = await asyncio.to_thread(read_csv_values, paths[0], csv_info.lines, len(csv_info.columns))
                contents = DatasetContents(csv_values=values) if values is not None else None
                if csv_info.unusable_columns:
                    state.warnings.append(
                        "These columns can never match a brick name (only letters, digits and _): "
                        + ", ".join(csv_info.unusable_columns))
        except DataFormatError as exc:
            await request.app.state.store.delete(STATE_PREFIX + state.id)
            target_field = "labels" if exc.message.startswith("The label file") else fields[0]
            await request.app.state.audit.record(session.user_id, "dataset upload",
                                                 f"{kind} dataset '{name}' refused: {exc.message}",
                                                 client_address(request), "refused")
            return await _form_error(request, kind, name, {target_field: exc.message})
        # Only a valid file costs the backend a call (Q-D3: Hanami stores CSV data per name and owner)
        clash, namesakes = await _same_name(api, name, session.user_id)
        if clash and kind == "csv":
            await request.app.state.store.delete(STATE_PREFIX + state.id)
            return await _form_error(request, kind, name, {"name": (
                f"You already have a CSV dataset named '{name}'. Hanami keeps CSV data per name and "
                "owner, so the old one would be overwritten: choose another name.")})
        if namesakes:
            state.warnings.append(
                f"{namesakes} other dataset{'s are' if namesakes > 1 else ' is'} already called '{name}'. "
                "The lists show each with its size and upload date so you can tell them apart; "
                "a more telling name helps, and you can delete the old one on the datasets page.")
        if await request.is_disconnected():
            # the browser cancelled while the files were checked: start nothing
            await request.app.state.store.delete(STATE_PREFIX + state.id)
            return Response(status_code=204)
        state.phase = "sending"  # what the first status answer shows; the task takes it from here
        start_upload(request, api, state, paths, contents)
        handed_over = True
    finally:
        if not handed_over:
            await form.close()
            await asyncio.to_thread(shutil.rmtree, folder, True)
    status_url = url_path(request, "datasets_upload_status", upload_id=state.id)
    if is_htmx(request):
        return await render(request, "datasets/status.html", {"upload": state}, block="upload_status",
                            headers={"HX-Replace-Url": status_url, "X-Upload-Status": status_url})
    return RedirectResponse(status_url, status_code=303)


@router.get("/datasets/uploads/{upload_id}", name="datasets_upload_status")
async def status(request: Request, upload_id: str, session: CurrentSession) -> Response:
    state = await visible_upload(request, session, upload_id)
    return await render(request, "datasets/status.html", {"upload": state}, block="upload_status")


@router.post("/datasets/uploads/{upload_id}/cancel", name="datasets_upload_cancel")
async def cancel(request: Request, upload_id: str, session: CurrentSession) -> Response:
    state = await visible_upload(request, session, upload_id)
    if state.running:
        await request.app.state.store.set(CANCEL_PREFIX + upload_id, b"1", STATE_TTL)
        running = upload_tasks(request.app).get(upload_id)
        if running is not None:
            # Wait for the clean-up (dataset deleted, files removed) so the answer shows the end state.
            await running.cancel(timeout=10)
        state = await visible_upload(request, session, upload_id)
    if is_htmx(request):
        return await render(request, "datasets/status.html", {"upload": state}, block="upload_status")
    return RedirectResponse(url_path(request, "datasets_upload_status", upload_id=upload_id), status_code=303)


async def _not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotFoundPage)
    return await render(
        request, "error.html",
        {"status": 404, "title": "Not found", "message": exc.message, "detail": "", "preformatted": False,
         "request_id": getattr(request.state, "request_id", "")},
        block="alert", status_code=404,
    )


def setup(app: FastAPI) -> None:
    """Register the upload POST (its own dependency order), task bookkeeping and error pages."""
    app.state.dataset_upload_tasks = {}
    app.include_router(upload_router)

    async def bad_upload(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BadUpload)
        return await render(
            request, "error.html",
            {"status": 400, "title": "Upload refused", "message": exc.message, "detail": "",
             "preformatted": False, "request_id": getattr(request.state, "request_id", "")},
            block="alert", status_code=400,
        )

    app.add_exception_handler(BadUpload, bad_upload)
    app.add_exception_handler(NotFoundPage, _not_found)

    async def stop_uploads(app: FastAPI) -> None:
        # Stopping the console cancels running uploads: the client deletes each half dataset.
        running = list(upload_tasks(app).values())
        if running:
            await asyncio.gather(*(item.cancel(timeout=15) for item in running))

    app.state.shutdown_hooks.append(stop_uploads)
