"""The one small interface every session backend implements.

Sessions, login rate limits, direct-IO bridge ownership and upload state all live in a key-value
store with expiry, so that several console replicas sharing one store (Redis) see the same state.
"""

from __future__ import annotations

import json
from typing import Any, Protocol


class KeyValueStore(Protocol):
    """A key-value store whose entries expire after ``ttl`` seconds."""

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        """The values of several keys in one round trip, in order (None where absent or expired)."""

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds, replacing any previous value."""

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store only if absent (or expired); True when stored. Used as a lock."""

    async def delete(self, key: str) -> None:
        """Remove the key (absent keys are fine)."""

    async def incr(self, key: str, ttl: float) -> int:
        """Add one to a counter; a new counter expires ``ttl`` seconds after its creation."""

    async def count(self, prefix: str) -> int:
        """How many live keys start with ``prefix``."""

    async def keys(self, prefix: str) -> list[str]:
        """The live keys that start with ``prefix``."""

    async def ping(self) -> None:
        """Raise if the store cannot be used."""

    async def aclose(self) -> None:
        """Release connections and files."""


def _record(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


async def read_record(store: KeyValueStore, key: str) -> dict[str, Any] | None:
    """A JSON object kept under ``key``; None when absent, expired or not an object."""
    return _record(await store.get(key))


async def read_records(store: KeyValueStore, keys: list[str]) -> list[dict[str, Any] | None]:
    """``read_record`` for several keys in one store round trip (a list page's rows)."""
    return [_record(raw) for raw in await store.get_many(keys)] if keys else []


def open_store(url: str) -> KeyValueStore:
    """Build the store named by a URL: ``memory://``, ``sqlite:///path`` or ``redis://…``."""
    if url.startswith("memory://"):
        from webconsole.sessions.memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite://"):
        from webconsole.sessions.sqlite import SqliteStore

        path = url.removeprefix("sqlite://")
        # sqlite:///relative.db -> "relative.db"; sqlite:////abs/path.db -> "/abs/path.db"
        return SqliteStore(path[1:] if path.startswith("/") else path)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from webconsole.sessions.redis import RedisStore

        return RedisStore(url)
    raise ValueError(f"unknown session store URL {url!r}: use memory://, sqlite:///FILE or redis://HOST")
