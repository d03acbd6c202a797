"""What every replica knows about a dataset upload: its state, as JSON in the shared store.

The task sending an upload to Hanami (``upload_task``) writes ``upload:<id>`` as it goes, so the
status page works on every replica; ``upload-cancel:<id>`` is a cancel request for that task. An
upload is visible only to the session that started it (``session_key``), and one whose state stops
changing while it runs is ``stale``: the console process that ran it is gone (the sending task writes
a heartbeat every second, so that shows within seconds).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi import Request

from webconsole.sessions import Session
from webconsole.web.core.humanize import human_bytes, human_duration

STATE_PREFIX = "upload:"
CANCEL_PREFIX = "upload-cancel:"
STATE_TTL = 3600.0
STALE_AFTER = 8.0  # a sending upload whose state is older than this lost its console
VALIDATING_STALE_AFTER = 120.0  # files are checked in the request, which writes no heartbeat
RUNNING = ("validating", "sending", "finalising")


PENDING_DELETE = ("Hanami could not be reached to delete the half-made dataset: the console deletes it as "
                  "soon as Hanami answers again.")
DELETED_LATER = "The half-made dataset was deleted once Hanami answered again."


def session_key(session: Session) -> str:
    """Who may see an upload: a hash of the session id (the id itself never goes into the store)."""
    return hashlib.sha256(session.id.encode()).hexdigest()


@dataclass
class UploadState:
    """What every replica knows about one upload (JSON in the shared store)."""

    id: str
    owner: str  # session_key() of the session that started it
    user_id: str
    kind: str  # "mnist" | "csv"
    name: str
    files: list[str]
    phase: str = "validating"
    bytes_sent: int = 0
    bytes_total: int = 0
    started_at: float = field(default_factory=time.time)
    sending_started_at: float = 0.0
    updated_at: float = field(default_factory=time.time)
    finished_at: float = 0.0
    error: str = ""
    dataset_uuid: str = ""
    lines: int = 0
    inputs: int = 0
    columns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # What became of the dataset Hanami made for a failed, cancelled or lost upload:
    # "" none was made (or it is the finished dataset), "deleted" at once, "pending" still to delete
    # (Hanami could not be reached), "deleted later" by the sweep.
    half_dataset: str = ""

    @property
    def running(self) -> bool:
        return self.phase in RUNNING and not self.stale

    @property
    def stale(self) -> bool:
        """The console process that ran it stopped (crash, kill) without recording an end."""
        if self.phase == "lost":
            return True
        limit = VALIDATING_STALE_AFTER if self.phase == "validating" else STALE_AFTER
        return self.phase in RUNNING and time.time() - self.updated_at > limit

    @property
    def fraction(self) -> float:
        if self.phase == "done":
            return 1.0
        return self.bytes_sent / self.bytes_total if self.bytes_total else 0.0

    @property
    def rate(self) -> float:
        """Bytes per second of the console -> Hanami leg so far."""
        if not self.sending_started_at or not self.bytes_sent:
            return 0.0
        end = self.finished_at or self.updated_at
        return self.bytes_sent / max(end - self.sending_started_at, 1e-3)

    @property
    def seconds_left(self) -> float | None:
        rate = self.rate
        if not self.running or rate <= 0:
            return None
        return (self.bytes_total - self.bytes_sent) / rate

    @property
    def rate_text(self) -> str:
        return f"{human_bytes(self.rate)}/s" if self.rate else "—"

    @property
    def sent_text(self) -> str:
        return human_bytes(self.bytes_sent)

    @property
    def total_text(self) -> str:
        return human_bytes(self.bytes_total)

    @property
    def time_left_text(self) -> str:
        left = self.seconds_left
        return human_duration(left) if left is not None else "—"


async def load_state(request: Request, upload_id: str) -> UploadState | None:
    return await read_state(request.app.state.store, upload_id)


async def read_state(store: Any, upload_id: str) -> UploadState | None:
    raw = await store.get(STATE_PREFIX + upload_id)
    return UploadState(**json.loads(raw)) if raw else None


async def save_state(store: Any, state: UploadState) -> None:
    state.updated_at = time.time()
    await store.set(STATE_PREFIX + state.id, json.dumps(asdict(state)).encode(), STATE_TTL)
