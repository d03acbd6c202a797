"""Runs as records in the shared store, so a run survives a reload, a console restart and a move to
another replica:

* ``run:<id>`` — JSON: what was asked (cluster, datasets, passes, early stop, checkpoints), the
  tasks queued for every pass and what each pass measured;
* ``run-predictions:<id>`` — JSON ``{"pass", "data"}``: the predicted classes of the best pass, for
  the confusion matrix and the gallery of mistakes (the result itself is deleted after its check);
* ``run-lock:<id>`` — whoever advances the run holds it (a short TTL, in case it dies holding it),
  so two replicas viewing one run never check or delete twice.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from webconsole.sessions import KeyValueStore, read_record

RUN_PREFIX = "run:"
PREDICTIONS_PREFIX = "run-predictions:"
LOCK_PREFIX = "run-lock:"
RUN_TTL = 365 * 24 * 3600.0
LOCK_TTL = 60.0

ACTIVE = ("queuing", "running")


def new_run_id() -> str:
    return secrets.token_urlsafe(12)


def valid_run_id(value: str) -> bool:
    return 12 <= len(value) <= 32 and all(c.isalnum() or c in "-_" for c in value)


async def load_run(store: KeyValueStore, run_id: str) -> dict[str, Any] | None:
    return await read_record(store, RUN_PREFIX + run_id) if valid_run_id(run_id) else None


async def save_run(store: KeyValueStore, run: dict[str, Any]) -> None:
    await store.set(RUN_PREFIX + run["id"], json.dumps(run).encode(), RUN_TTL)


async def claim_run(store: KeyValueStore, run: dict[str, Any]) -> bool:
    """Create the record only if no run has this id yet (a form submitted twice starts one run)."""
    return await store.add(RUN_PREFIX + run["id"], json.dumps(run).encode(), RUN_TTL)


async def delete_run(store: KeyValueStore, run_id: str) -> None:
    await store.delete(RUN_PREFIX + run_id)
    await store.delete(PREDICTIONS_PREFIX + run_id)


async def all_runs(store: KeyValueStore) -> list[dict[str, Any]]:
    runs = []
    for key in await store.keys(RUN_PREFIX):
        record = await read_record(store, key)
        if record is not None and "id" in record:
            runs.append(record)
    return runs


async def save_predictions(store: KeyValueStore, run_id: str, pass_number: int, data: list[int]) -> None:
    value = json.dumps({"pass": pass_number, "data": data}).encode()
    await store.set(PREDICTIONS_PREFIX + run_id, value, RUN_TTL)


async def load_predictions(store: KeyValueStore, run_id: str) -> dict[str, Any] | None:
    return await read_record(store, PREDICTIONS_PREFIX + run_id)


async def take_lock(store: KeyValueStore, run_id: str) -> str | None:
    token = secrets.token_hex(8)
    return token if await store.add(LOCK_PREFIX + run_id, token.encode(), LOCK_TTL) else None


async def release_lock(store: KeyValueStore, run_id: str, token: str) -> None:
    if await store.get(LOCK_PREFIX + run_id) == token.encode():
        await store.delete(LOCK_PREFIX + run_id)
