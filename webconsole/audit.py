"""The console's own audit trail: logins, uploads, deletions, direct-IO sessions — who, when, where.

Entries live in the shared key-value store so every replica writes to and reads the same trail.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import asdict, dataclass

from webconsole.sessions.base import KeyValueStore

AUDIT_PREFIX = "audit:"
RETENTION_SECONDS = 90 * 24 * 3600
BATCH = 200


@dataclass(frozen=True)
class AuditEntry:
    """One thing done through the console."""

    timestamp: float
    user_id: str
    action: str
    detail: str
    client: str
    outcome: str = "ok"


class AuditTrail:
    """Append-only (entries expire after the retention period)."""

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store

    async def record(self, user_id: str, action: str, detail: str = "", client: str = "", outcome: str = "ok") -> None:
        entry = AuditEntry(time.time(), user_id, action, detail, client, outcome)
        # Keys sort by time: zero-padded nanoseconds, then a random suffix for same-instant entries.
        key = f"{AUDIT_PREFIX}{time.time_ns():020d}:{secrets.token_hex(4)}"
        await self.store.set(key, json.dumps(asdict(entry)).encode(), RETENTION_SECONDS)

    async def entries(self, *, user_id: str | None = None, since: float | None = None,
                      until: float | None = None, limit: int | None = None) -> list[AuditEntry]:
        """Matching entries, newest first (at most ``limit``).

        The time range is applied to the keys (they carry the time) before any value is read, and
        values are read in concurrent batches, so a narrow range stays cheap on Redis too.
        """
        keys = sorted(await self.store.keys(AUDIT_PREFIX), reverse=True)
        keys = [key for key in keys if _key_in_range(key, since, until)]
        found: list[AuditEntry] = []
        for start in range(0, len(keys), BATCH):
            batch = keys[start:start + BATCH]
            for raw in await asyncio.gather(*(self.store.get(key) for key in batch)):
                if raw is None:
                    continue
                entry = AuditEntry(**json.loads(raw))
                if user_id and entry.user_id != user_id:
                    continue
                if since is not None and entry.timestamp < since:
                    continue
                if until is not None and entry.timestamp > until:
                    continue
                found.append(entry)
                if limit is not None and len(found) >= limit:
                    return found
        return found


def _key_in_range(key: str, since: float | None, until: float | None) -> bool:
    try:
        stamp = int(key[len(AUDIT_PREFIX):].split(":", 1)[0]) / 1e9
    except ValueError:
        return True  # not ours to judge: the entry's own timestamp decides
    # One second of slack: the key's clock reading is taken just after the entry's.
    if since is not None and stamp < since - 1:
        return False
    if until is not None and stamp > until + 1:
        return False
    return True
