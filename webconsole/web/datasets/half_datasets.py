"""Half-made datasets the console still owes Hanami a delete for: one durable record each.

As soon as Hanami has created an upload's dataset, the send task writes ``dataset-delete:<uuid>`` to
the shared store (the dataset uuid, the upload id, the uploader and their token, encrypted like a
session's). A finished upload removes the record. A failed or cancelled one deletes the dataset at
once and removes the record; when Hanami cannot be reached at that moment (it crashed mid-upload),
the record stays, and a sweep run at start and every ``cleanup_interval`` seconds, on every replica,
retries until Hanami answers. An upload whose console was killed leaves its record behind too: the
sweep deletes that dataset once the upload's heartbeat has stopped (``UploadState.stale``).

A record whose token has expired waits for the uploader's next login, which hands it the new token.
"""

from __future__ import annotations

import json
import logging
import time
from fastapi import FastAPI

from webconsole.hanami.errors import NotFound, TokenExpired, Unauthorized
from webconsole.sessions import Session, read_record
from webconsole.web.core.cleanup import register_sweep
from webconsole.web.datasets.upload_state import DELETED_LATER, PENDING_DELETE, read_state, save_state

log = logging.getLogger("webconsole.uploads")

PREFIX = "dataset-delete:"
RECORD_TTL = 30 * 24 * 3600.0


async def remember(app: FastAPI, dataset_uuid: str, upload_id: str, user_id: str, token: str,
                   token_expires_at: float) -> None:
    """Note that ``dataset_uuid`` must be deleted unless the upload finishes."""
    record = {
        "dataset_uuid": dataset_uuid, "upload_id": upload_id, "user_id": user_id,
        "token": app.state.sessions.seal(token), "token_expires_at": token_expires_at, "since": time.time(),
    }
    await app.state.store.set(PREFIX + dataset_uuid, json.dumps(record).encode(), RECORD_TTL)


async def forget(app: FastAPI, dataset_uuid: str) -> None:
    """The upload finished: its dataset is a real one now."""
    await app.state.store.delete(PREFIX + dataset_uuid)


async def delete_now(app: FastAPI, dataset_uuid: str) -> bool:
    """Try the delete once; True when the dataset is gone (deleted now, or already) and the record
    removed, False when Hanami could not do it now (the record stays for the sweep)."""
    store = app.state.store
    record = await read_record(store, PREFIX + dataset_uuid)
    if record is None:
        return True
    token = app.state.sessions.unseal(str(record.get("token", "")))
    if token is None:
        log.debug("half-made dataset %s: its record was sealed under another secret", dataset_uuid)
        return False
    try:
        await app.state.hanami.api(token).delete_dataset(dataset_uuid)
    except NotFound:
        pass  # deleted already (by the upload's own clean-up, or by its owner)
    except (TokenExpired, Unauthorized):
        return False  # kept until the uploader logs in again (see refresh_tokens)
    except Exception as exc:  # Hanami away, or anything else: the record stays for the next sweep
        log.info("half-made dataset %s not deleted yet: %s", dataset_uuid, type(exc).__name__)
        return False
    await store.delete(PREFIX + dataset_uuid)
    log.info("half-made dataset %s deleted", dataset_uuid)
    return True


async def sweep(app: FastAPI) -> int:
    """Delete every recorded half dataset whose upload no longer runs; returns how many went."""
    store = app.state.store
    deleted = 0
    for key in await store.keys(PREFIX):
        record = await read_record(store, key)
        if record is None:
            continue
        upload_id = str(record.get("upload_id", ""))
        state = await read_state(store, upload_id) if upload_id else None
        if state is not None and state.running:
            continue  # its console is alive and sending (the heartbeat is fresh)
        if not await delete_now(app, key.removeprefix(PREFIX)):
            continue
        deleted += 1
        if state is not None:
            if state.phase in ("sending", "finalising", "validating"):
                state.phase = "lost"  # its console died: the state says so for good
            if state.half_dataset == "pending":
                state.half_dataset, state.error = "deleted later", state.error.replace(PENDING_DELETE, DELETED_LATER)
            else:
                state.half_dataset = "deleted"
            await save_state(store, state)
    return deleted


async def refresh_tokens(app: FastAPI, session: Session) -> None:
    """A login of the uploader: give their pending records the new token (an old one may be expired)."""
    store = app.state.store
    for key in await store.keys(PREFIX):
        record = await read_record(store, key)
        if record is None or record.get("user_id") != session.user_id:
            continue
        if float(record.get("token_expires_at", 0)) >= session.token_expires_at:
            continue
        record["token"] = app.state.sessions.seal(session.token)
        record["token_expires_at"] = session.token_expires_at
        await store.set(key, json.dumps(record).encode(), RECORD_TTL)


def setup(app: FastAPI) -> None:
    """Sweep at start and every ``cleanup_interval`` seconds; hand new tokens over at login."""
    register_sweep(app, sweep)
    app.state.login_hooks.append(refresh_tokens)
