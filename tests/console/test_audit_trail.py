"""The console's own audit trail store: newest first, user and time filters, limits."""

from __future__ import annotations

import time

from webconsole.audit import AuditTrail
from webconsole.sessions import open_store


async def test_entries_filter_by_user_time_and_limit() -> None:
    store = open_store("memory://")
    trail = AuditTrail(store)
    try:
        start = time.time()
        for n in range(5):
            await trail.record("alice" if n % 2 == 0 else "bob", "upload", f"file {n}", "127.0.0.1")
        middle = time.time()
        await trail.record("alice", "delete user", "bob", "127.0.0.1", "refused")
        everything = await trail.entries()
        assert [entry.detail for entry in everything] == ["bob", "file 4", "file 3", "file 2", "file 1", "file 0"]
        assert [entry.detail for entry in await trail.entries(user_id="bob")] == ["file 3", "file 1"]
        assert [entry.detail for entry in await trail.entries(since=middle)] == ["bob"]
        assert [entry.outcome for entry in await trail.entries(since=middle)] == ["refused"]
        assert len(await trail.entries(until=middle)) == 5
        assert len(await trail.entries(since=start, limit=2)) == 2
        assert await trail.entries(since=time.time() + 3600) == []
    finally:
        await store.aclose()
