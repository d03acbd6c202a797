"""SQLite store: the default, for one console process whose sessions survive a restart."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires);
"""


class SqliteStore:
    """One connection used from worker threads under a lock, so the event loop never blocks on disk."""

    def __init__(self, path: str) -> None:
        if path not in ("", ":memory:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path or ":memory:", check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._writes = 0

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn(self._conn)

        return await asyncio.to_thread(locked)

    def _purge(self, conn: sqlite3.Connection) -> None:
        # Expired rows are invisible to every query; deleting them now and then keeps the file small.
        self._writes += 1
        if self._writes % 200 == 0:
            conn.execute("DELETE FROM kv WHERE expires <= ?", (time.time(),))

    async def get(self, key: str) -> bytes | None:
        def op(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(
                "SELECT value FROM kv WHERE key = ? AND expires > ?", (key, time.time())
            ).fetchone()
            if row is None:
                return None
            value = row[0]
            # Counters written before values were kept as BLOBs everywhere are TEXT rows.
            return value.encode() if isinstance(value, str) else bytes(value)

        return await self._run(op)

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []

        def op(conn: sqlite3.Connection) -> list[bytes | None]:
            found: dict[str, bytes] = {}
            now = time.time()
            for start in range(0, len(keys), 500):  # SQLite allows 999 parameters per statement
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for key, value in conn.execute(
                    f"SELECT key, value FROM kv WHERE key IN ({marks}) AND expires > ?", (*chunk, now)
                ):
                    found[key] = value.encode() if isinstance(value, str) else bytes(value)
            return [found.get(key) for key in keys]

        return await self._run(op)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                (key, value, time.time() + ttl),
            )
            self._purge(conn)

        await self._run(op)

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            now = time.time()
            conn.execute("DELETE FROM kv WHERE key = ? AND expires <= ?", (key, now))
            cur = conn.execute(
                "INSERT OR IGNORE INTO kv (key, value, expires) VALUES (?, ?, ?)", (key, value, now + ttl)
            )
            return cur.rowcount == 1

        return await self._run(op)

    async def delete(self, key: str) -> None:
        await self._run(lambda conn: conn.execute("DELETE FROM kv WHERE key = ?", (key,)))

    async def incr(self, key: str, ttl: float) -> int:
        def op(conn: sqlite3.Connection) -> int:
            now = time.time()
            conn.execute("DELETE FROM kv WHERE key = ? AND expires <= ?", (key, now))
            conn.execute(
                "INSERT INTO kv (key, value, expires) VALUES (?, CAST('0' AS BLOB), ?) ON CONFLICT(key) DO NOTHING",
                (key, now + ttl),
            )
            # The value stays a BLOB, like every other value, so ``get`` reads a counter as bytes.
            conn.execute(
                "UPDATE kv SET value = CAST(CAST(CAST(value AS INTEGER) + 1 AS TEXT) AS BLOB) WHERE key = ?", (key,)
            )
            row: Any = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            return int(row[0])

        return await self._run(op)

    async def keys(self, prefix: str) -> list[str]:
        def op(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT key FROM kv WHERE substr(key, 1, ?) = ? AND expires > ?",
                (len(prefix), prefix, time.time()),
            ).fetchall()
            return [row[0] for row in rows]

        return await self._run(op)

    async def count(self, prefix: str) -> int:
        return len(await self.keys(prefix))

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def aclose(self) -> None:
        await self._run(lambda conn: conn.close())
