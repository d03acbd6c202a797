"""What the task pages show: Hanami's task list as rows, plus what the console remembers about tasks.

Hanami's ``task/all`` has no names and no types, its cells are strings and its rows are sorted by
uuid (Q-T5). The console records each task it queues (``task-meta:<uuid>`` in the shared key-value
store, so every replica sees it) and sorts by queue time itself, ties in its own creation order.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from fastapi import Request

from webconsole.hanami.client import HanamiAPI
from webconsole.hanami.errors import PolicyDenied
from webconsole.sessions import read_records
from webconsole.web.clusters.busy import UNFINISHED
from webconsole.web.clusters.memory import TASK_PREFIX
from webconsole.web.clusters.memory import remember_task as remember_task_meta
from webconsole.web.core.humanize import human_duration

META_PREFIX = TASK_PREFIX  # tasks do not survive a backend restart anyway (Q-T7)
CHECKPOINT_KINDS = ("checkpoint save", "checkpoint restore")
# Removing a queued checkpoint save stalls the cluster's queue and then ends a real Hanami 0.4.1
# (the faithful emulator drops the connection): such a task waits for its turn. The console knows
# the kind of the tasks it queued only; Hanami's task list does not say it.
KEPT_IN_QUEUE = ("checkpoint save",)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


# -- what the console remembers about tasks ----------------------------------------------------------

async def remember_task(request: Request, task_uuid: str, meta: dict[str, Any]) -> None:
    """Record name, type and dataset of a task queued through the console (``clusters.memory``)."""
    await remember_task_meta(request.app.state.store, task_uuid, meta)


async def task_metas(request: Request, uuids: list[str]) -> dict[str, dict[str, Any]]:
    """What the console remembers about these tasks (absent: queued elsewhere, or too long ago)."""
    store = request.app.state.store
    records = await read_records(store, [META_PREFIX + uuid for uuid in uuids])
    return {uuid: record for uuid, record in zip(uuids, records) if record is not None}


# -- rows -------------------------------------------------------------------------------------------

def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.strptime(str(value), TIME_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def task_row(record: dict[str, Any], meta: dict[str, Any] | None, results: set[str]) -> dict[str, Any]:
    """A list record (all strings) as the page shows it."""
    try:
        fraction = min(1.0, max(0.0, float(record.get("percentage", 0))))
    except (TypeError, ValueError):
        fraction = 0.0
    start, end = _parse_time(record.get("start")), _parse_time(record.get("end"))
    duration = ""
    if start and end:
        duration = human_duration((end - start).total_seconds())
    elif start:
        duration = human_duration(time.time() - start.timestamp()) + " so far"
    meta = meta or {}
    uuid = str(record.get("uuid", ""))
    state = str(record.get("state", ""))
    kind = meta.get("type", "")
    if state == "finished" and fraction == 0.0 and kind not in ("train", "request"):
        # Checkpoint save/restore tasks report 0.0 even when done (§4.24); train/request end at 1.0.
        # The console names the ones it queued; others it cannot tell apart.
        fraction, kind = 1.0, kind if kind in CHECKPOINT_KINDS else "checkpoint save or restore"
    # A train or request task that "finished" without one cycle did nothing (a dataset that does not
    # fit the cluster, §4.23): Hanami calls it finished, the console must not show it as a success.
    did_nothing = state == "finished" and kind in ("train", "request") and fraction == 0.0
    queued_day = str(record.get("queued", ""))[:10]

    def short(value: Any) -> str:
        # Start and end on the queue day show as time only (the full value is in the title).
        text = str(value if value is not None else "-")
        return text[11:] if len(text) == 19 and text[:10] == queued_day else text

    return {
        "uuid": uuid, "state": state, "fraction": fraction,
        "queued": record.get("queued", "-"), "start": record.get("start", "-"), "end": record.get("end", "-"),
        "start_short": short(record.get("start", "-")), "end_short": short(record.get("end", "-")),
        "duration": duration, "name": meta.get("name", ""), "type": kind, "did_nothing": did_nothing,
        "dataset_name": meta.get("dataset_name", ""), "seq": meta.get("seq"),
        "result_uuid": uuid if uuid in results else None,
        "removable": not (state == "queued" and kind in KEPT_IN_QUEUE),
    }


def sort_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """By queue time (the backend sorts by uuid); same-second ties by the console's creation order."""
    return sorted(rows, key=lambda row: (str(row["queued"]), row["seq"] is None, row["seq"] or 0, row["uuid"]))


async def cluster_task_rows(request: Request, api: HanamiAPI, cluster_uuid: str) -> list[dict[str, Any]]:
    records = (await api.list_tasks(cluster_uuid)).records()
    metas = await task_metas(request, [str(record.get("uuid")) for record in records])
    # Only a finished request task has a result: ask for the result list only when one may exist
    # (the list polls every 1.5 s, and the real backend has four worker threads, Q-G6).
    result_uuids: set[str] = set()
    if any(record.get("state") == "finished" and metas.get(str(record.get("uuid")), {}).get("type") != "train"
           for record in records):
        try:
            result_uuids = {str(uuid) for uuid in (await api.list_results()).column("uuid")}
        except PolicyDenied:
            pass  # a role that may not list results still sees its tasks, just without result links
    return sort_rows([task_row(record, metas.get(str(record.get("uuid"))), result_uuids) for record in records])


def any_running(rows: list[dict[str, Any]]) -> bool:
    return any(row["state"] in UNFINISHED for row in rows)  # an aborted task keeps running (Q-T4)
