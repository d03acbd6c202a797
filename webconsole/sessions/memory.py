"""In-process store: for tests and a single console process that may forget sessions on restart."""

from __future__ import annotations

import time


class MemoryStore:
    """Dictionary with expiry; every operation is atomic because it never awaits."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float]] = {}

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] <= time.time():
            del self._data[key]
            return None
        return item[0]

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return [self._live(key) for key in keys]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._data[key] = (value, time.time() + ttl)

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        if self._live(key) is not None:
            return False
        self._data[key] = (value, time.time() + ttl)
        return True

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def incr(self, key: str, ttl: float) -> int:
        current = self._live(key)
        if current is None:
            self._data[key] = (b"1", time.time() + ttl)
            return 1
        value = int(current) + 1
        self._data[key] = (str(value).encode(), self._data[key][1])
        return value

    async def keys(self, prefix: str) -> list[str]:
        return [key for key in list(self._data) if key.startswith(prefix) and self._live(key) is not None]

    async def count(self, prefix: str) -> int:
        return len(await self.keys(prefix))

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._data.clear()
