"""Redis store: shared by every console replica, so a session works on any of them."""

from __future__ import annotations

from redis import asyncio as aioredis

# INCR then set the expiry only on creation, atomically.
_INCR = """
local v = redis.call('INCR', KEYS[1])
if v == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return v
"""


class RedisStore:
    """redis-py's asyncio client; keys are namespaced so one Redis can serve other apps too."""

    def __init__(self, url: str, namespace: str = "hanami-console:") -> None:
        self._redis = aioredis.Redis.from_url(url)
        self._ns = namespace
        self._incr = self._redis.register_script(_INCR)

    def _k(self, key: str) -> str:
        return self._ns + key

    async def get(self, key: str) -> bytes | None:
        return await self._redis.get(self._k(key))

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return list(await self._redis.mget([self._k(key) for key in keys])) if keys else []

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._redis.set(self._k(key), value, px=max(1, int(ttl * 1000)))

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        return bool(await self._redis.set(self._k(key), value, px=max(1, int(ttl * 1000)), nx=True))

    async def delete(self, key: str) -> None:
        await self._redis.delete(self._k(key))

    async def incr(self, key: str, ttl: float) -> int:
        return int(await self._incr(keys=[self._k(key)], args=[max(1, int(ttl * 1000))]))

    async def keys(self, prefix: str) -> list[str]:
        found = []
        async for key in self._redis.scan_iter(match=self._k(prefix) + "*", count=500):
            found.append(key.decode()[len(self._ns):])
        return found

    async def count(self, prefix: str) -> int:
        return len(await self.keys(prefix))

    async def ping(self) -> None:
        await self._redis.ping()

    async def aclose(self) -> None:
        await self._redis.aclose()
