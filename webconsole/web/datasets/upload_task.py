"""The console -> Hanami leg of a dataset upload: a background task of this process.

``start_upload`` runs ``api.upload_mnist`` / ``api.upload_csv`` in an asyncio task that keeps the
upload's shared state current (progress, a heartbeat while Hanami converts) and watches for a cancel
request made on any replica. However it ends (done, failed, cancelled, console stopping), the task
removes the files, records the outcome in the state and the audit trail, and leaves
``upload_tasks(app)``. Cancelling it makes the client delete the half-made dataset.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

from webconsole.hanami.client import HanamiAPI
from webconsole.hanami.errors import HanamiError
from webconsole.web.clusters.memory import remember_dataset
from webconsole.web.core.deps import client_address
from webconsole.web.datasets import half_datasets
from webconsole.web.datasets.contents import DatasetContents, remember_contents
from webconsole.web.datasets.upload_state import CANCEL_PREFIX, PENDING_DELETE, UploadState, save_state

log = logging.getLogger("webconsole.uploads")

STORE_INTERVAL = 0.25  # seconds between progress writes to the shared store
CANCEL_POLL = 0.5  # seconds between checks for a cancel request made on another replica
HEARTBEAT = 1.0  # seconds between state writes while nothing else changes (see STALE_AFTER)


class UploadCancelled(Exception):
    """A cancel request reached the task (possibly through another replica)."""


@dataclass
class RunningUpload:
    """A send task of this process. ``entered`` is set once its coroutine runs: a task cancelled
    before that never executes its clean-up, so cancelling waits for it first."""

    task: asyncio.Task[None]
    entered: asyncio.Event

    async def cancel(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.entered.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        self.task.cancel()
        await asyncio.wait({self.task}, timeout=timeout)


def upload_tasks(app: FastAPI) -> dict[str, RunningUpload]:
    """The send tasks of this process by upload id (the dict is made by ``uploads.setup``)."""
    return app.state.dataset_upload_tasks


async def _watch_cancel(store: Any, state: UploadState) -> None:
    """Raise UploadCancelled when a cancel request appears; meanwhile keep the state's heartbeat
    fresh, so other replicas can tell a quiet phase (Hanami converting) from a dead console."""
    last_beat = time.monotonic()
    while await store.get(CANCEL_PREFIX + state.id) is None:
        await asyncio.sleep(CANCEL_POLL)
        if time.monotonic() - last_beat >= HEARTBEAT:
            last_beat = time.monotonic()
            await save_state(store, state)
    raise UploadCancelled()


@dataclass
class Uploader:
    """Who sends: their address (for the audit trail) and their token (for a delete owed later)."""

    client: str
    token: str
    token_expires_at: float


async def _send(app: FastAPI, api: HanamiAPI, state: UploadState, paths: list[Path], uploader: Uploader,
                entered: asyncio.Event, contents: DatasetContents | None = None) -> None:
    """The background task: send the validated files, keep the shared state current, clean up."""
    entered.set()
    store = app.state.store
    last_write = 0.0
    created: list[str] = []  # the dataset uuid, once Hanami made it

    async def on_created(dataset_uuid: str) -> None:
        # Durable before any byte is sent: whatever happens to this process, the delete is owed.
        created.append(dataset_uuid)
        await half_datasets.remember(app, dataset_uuid, state.id, state.user_id, uploader.token,
                                     uploader.token_expires_at)

    started = asyncio.Event()  # set once Hanami created the dataset (first progress report)

    backend_bytes = app.state.metrics.upload_bytes.labels("backend")

    async def progress(sent: int, total: int) -> None:
        nonlocal last_write
        started.set()
        backend_bytes.inc(max(0, sent - state.bytes_sent))
        state.bytes_sent, state.bytes_total = sent, total
        now = time.monotonic()
        if sent >= total:
            state.phase = "finalising"
        if now - last_write >= STORE_INTERVAL or sent >= total or sent == 0:
            last_write = now
            await save_state(store, state)

    async def upload() -> str:
        if state.kind == "mnist":
            return await api.upload_mnist(state.name, paths[0], paths[1], progress, on_created=on_created)
        return await api.upload_csv(state.name, paths[0], progress, on_created=on_created)

    outcome, detail = "ok", ""
    try:
        state.phase, state.sending_started_at = "sending", time.time()
        await save_state(store, state)
        uploading = asyncio.ensure_future(upload())
        watcher = asyncio.ensure_future(_watch_cancel(store, state))
        try:
            await asyncio.wait({uploading, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not uploading.done() and not started.is_set():
                # Cancelled while POST init is in flight, the client would never learn the new
                # dataset's uuid and could not delete it: let the init answer arrive first.
                waiter = asyncio.ensure_future(started.wait())
                await asyncio.shield(asyncio.wait({uploading, waiter}, timeout=30,
                                                  return_when=asyncio.FIRST_COMPLETED))
                waiter.cancel()
            # Cancelling the upload makes the client delete the half-made dataset (shielded).
            for future in (uploading, watcher):
                future.cancel()
            await asyncio.gather(uploading, watcher, return_exceptions=True)
        if watcher.done() and not watcher.cancelled() and isinstance(watcher.exception(), UploadCancelled):
            raise UploadCancelled()
        state.dataset_uuid = uploading.result()
        await half_datasets.forget(app, state.dataset_uuid)
        if contents is not None:
            await remember_contents(store, state.dataset_uuid, contents)
        state.phase, state.bytes_sent = "done", state.bytes_total
        await remember_dataset(store, state.dataset_uuid, state.lines, state.columns,
                               time.strftime("%Y-%m-%d %H:%M", time.gmtime()))
        detail = f"{state.kind} dataset '{state.name}' ({state.bytes_total} bytes) -> {state.dataset_uuid}"
    except (UploadCancelled, asyncio.CancelledError):
        state.phase, state.error = "cancelled", "The upload was cancelled; nothing was kept on Hanami."
        outcome, detail = "cancelled", f"{state.kind} dataset '{state.name}' cancelled"
    except HanamiError as exc:
        state.phase = "failed"
        state.error = exc.message or f"Hanami refused the upload ({type(exc).__name__})."
        outcome, detail = "failed", f"{state.kind} dataset '{state.name}': {type(exc).__name__}"
    except Exception as exc:  # a bug or an I/O failure: the user must still see the upload end
        log.exception("upload %s failed", state.id)
        state.phase, state.error = "failed", f"The console failed while sending the files ({type(exc).__name__})."
        outcome, detail = "failed", f"{state.kind} dataset '{state.name}': {type(exc).__name__}"
    finally:
        state.finished_at = time.time()
        await asyncio.shield(_finish(app, state, paths, uploader.client, outcome, detail, created))


async def _settle_half_dataset(app: FastAPI, state: UploadState, created: list[str]) -> None:
    """A failed or cancelled upload: the dataset Hanami made is deleted now, or owed (and said so)."""
    if not created or state.phase == "done":
        return
    if await half_datasets.delete_now(app, created[0]):
        state.half_dataset = "deleted"
        return
    state.half_dataset = "pending"
    if state.phase == "cancelled":
        state.error = "The upload was cancelled. " + PENDING_DELETE
    else:
        state.error = f"{state.error} {PENDING_DELETE}".strip()


async def _finish(app: FastAPI, state: UploadState, paths: list[Path], client: str, outcome: str,
                  detail: str, created: list[str]) -> None:
    store = app.state.store
    try:
        await _settle_half_dataset(app, state, created)
    except Exception:  # the store failed: the sweep retries from the record, if it was written
        log.exception("upload %s: the half-made dataset could not be settled", state.id)
    await asyncio.to_thread(shutil.rmtree, paths[0].parent.parent, True)
    await save_state(store, state)
    await store.delete(CANCEL_PREFIX + state.id)
    await app.state.audit.record(state.user_id, "dataset upload", detail, client, outcome)
    upload_tasks(app).pop(state.id, None)


def start_upload(request: Request, api: HanamiAPI, state: UploadState, paths: list[Path],
                 contents: DatasetContents | None = None) -> None:
    """Hand the validated files over to a send task; from here on the task removes them.
    ``contents`` (labels, small sets' images) is recorded under the dataset's uuid once it has one."""
    app = request.app
    entered = asyncio.Event()
    session = request.state.session
    uploader = Uploader(client_address(request), session.token, session.token_expires_at)
    task = asyncio.create_task(_send(app, api, state, paths, uploader, entered, contents),
                               name=f"dataset-upload-{state.id}")
    upload_tasks(app)[state.id] = RunningUpload(task, entered)
