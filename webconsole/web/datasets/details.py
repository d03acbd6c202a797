"""The details the dataset pages show (inputs, outputs, lines), read from Hanami once per dataset.

A finished dataset's details never change, so each is read once (``GET v1/dataset``) and kept in the
shared store under ``dataset-details:<uuid>``, where every replica finds it, with a bounded copy in
this process so that a page's rows cost no store round trip either. A list view then costs its one
listing, whatever the number of rows.

Only rows of the page's own listing are filled, so a kept entry never shows a dataset its viewer
cannot list. A detail read is only sent through ``HanamiAPI.get_datasets``, which takes a listing of
its own right before each round of reads and sends none for a uuid that listing no longer shows: a
dataset another user deleted meanwhile would crash the real backend (Q-C2). An unfinished upload
(listed, but its GET fails, Q-D7) is not kept as finished: this process remembers it as incomplete
for a few seconds, then reads it again.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import Any

from webconsole.hanami.client import HanamiAPI
from webconsole.sessions import KeyValueStore, read_records

DETAILS_PREFIX = "dataset-details:"
DETAILS_TTL = 30 * 86400.0  # a deleted dataset's entry is never used (its uuid is not listed) and expires
INCOMPLETE_SECONDS = 10.0
LOCAL_ENTRIES = 4096
READ_CONCURRENCY = 4  # Hanami has 4 worker threads; never flood it from one list view
COLUMNS = ("inputs", "outputs", "lines")
INCOMPLETE: dict[str, Any] = {"complete": False, **{column: None for column in COLUMNS}}


def _shown(answer: dict[str, Any]) -> dict[str, Any]:
    """What the pages show of a ``GET v1/dataset`` answer."""
    details: dict[str, Any] = {"complete": True}
    for column in COLUMNS:
        value = answer.get(column)
        details[column] = value if isinstance(value, int) and not isinstance(value, bool) else None
    return details


class DatasetDetails:
    """The details of finished datasets, in the shared store and (bounded) in this process."""

    def __init__(self, local_entries: int = LOCAL_ENTRIES) -> None:
        self._local: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._incomplete: OrderedDict[str, float] = OrderedDict()  # uuid -> when to read it again
        self._limit = local_entries

    def _keep(self, uuid: str, details: dict[str, Any]) -> None:
        self._local[uuid] = details
        self._local.move_to_end(uuid)
        while len(self._local) > self._limit:
            self._local.popitem(last=False)

    def _known(self, uuids: list[str], now: float, recheck: bool) -> dict[str, dict[str, Any]]:
        known: dict[str, dict[str, Any]] = {}
        for uuid in uuids:
            details = self._local.get(uuid)
            if details is not None:
                known[uuid] = details
            elif not recheck and self._incomplete.get(uuid, 0.0) > now:
                known[uuid] = INCOMPLETE
        return known

    async def fill(self, store: KeyValueStore, api: HanamiAPI, rows: list[dict[str, Any]], *,
                   recheck: bool = False) -> None:
        """Add ``complete``, ``inputs``, ``outputs`` and ``lines`` to each listed row.

        A row whose read fails keeps None (shown as "—") and ``complete`` False. ``recheck`` reads
        rows remembered as incomplete again at once (one dataset's own page). Token expiry and an
        unreachable backend go to the error mapper.
        """
        now = time.monotonic()
        uuids = list(dict.fromkeys(str(row["uuid"]) for row in rows))
        known = self._known(uuids, now, recheck)
        missing = [uuid for uuid in uuids if uuid not in known]
        records = await read_records(store, [DETAILS_PREFIX + uuid for uuid in missing])
        for uuid, record in zip(missing, records):
            if record is not None and record.get("complete") is True:
                known[uuid] = {"complete": True, **{column: record.get(column) for column in COLUMNS}}
                self._keep(uuid, known[uuid])
        missing = [uuid for uuid in missing if uuid not in known]
        if missing:
            answers = await api.get_datasets(missing, READ_CONCURRENCY)
            for uuid in missing:
                answer = answers.get(uuid)
                if isinstance(answer, dict):
                    known[uuid] = _shown(answer)
                    self._keep(uuid, known[uuid])
                    await store.set(DETAILS_PREFIX + uuid, json.dumps(known[uuid]).encode(), DETAILS_TTL)
                else:
                    known[uuid] = INCOMPLETE
                    self._incomplete[uuid] = now + INCOMPLETE_SECONDS
                    self._incomplete.move_to_end(uuid)
            self._forget_expired(now)
        for row in rows:
            row.update(known[str(row["uuid"])])

    def _forget_expired(self, now: float) -> None:
        while self._incomplete and (len(self._incomplete) > self._limit or next(iter(self._incomplete.values())) <= now):
            self._incomplete.popitem(last=False)
