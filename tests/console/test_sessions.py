"""The session store: expiry, rotation, encryption at rest, and the KV operations all backends share."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from webconsole.sessions import SessionManager, open_store

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjEsInVzZXIiOiJ4In0.c2lnbmF0dXJlLXNlY3JldC1wYXJ0"
FIELDS = dict(
    user_id="alice", user_name="Alice", is_admin=False, is_project_admin=False, project_id="proj_a",
    role="member", token=TOKEN, token_expires_at=time.time() + 3600,
)


@pytest.fixture
def store_url(any_store_url: str) -> str:
    """Every store users run (tests/conftest.py): a new store must pass this whole file."""
    return any_store_url


async def test_session_round_trip_keeps_every_field(store_url: str) -> None:
    store = open_store(store_url)
    manager = SessionManager(store, "k" * 40, idle_timeout=60, absolute_timeout=600)
    session = await manager.create(**FIELDS)
    loaded = await manager.load(session.id)
    assert loaded is not None
    assert (loaded.user_id, loaded.project_id, loaded.token, loaded.csrf_token) == (
        "alice", "proj_a", TOKEN, session.csrf_token)
    await store.aclose()


async def test_raw_store_never_contains_the_token_or_the_session_id(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    manager = SessionManager(store, "k" * 40, idle_timeout=60, absolute_timeout=600)
    session = await manager.create(**FIELDS)
    keys = await store.keys("")
    assert keys and all(session.id not in key for key in keys)
    for key in keys:
        raw = await store.get(key)
        assert raw is not None and TOKEN.encode() not in raw
        assert TOKEN.split(".")[1].encode() not in raw
    if store_url.startswith("sqlite"):
        assert TOKEN.encode() not in (tmp_path / "sessions.db").read_bytes()
    await store.aclose()


async def test_a_session_under_another_secret_is_not_valid(store_url: str) -> None:
    store = open_store(store_url)
    session = await SessionManager(store, "a" * 40, 60, 600).create(**FIELDS)
    assert await SessionManager(store, "b" * 40, 60, 600).load(session.id) is None
    await store.aclose()


async def test_idle_timeout_ends_the_session(store_url: str) -> None:
    manager = SessionManager(open_store(store_url), "k" * 40, idle_timeout=1, absolute_timeout=600)
    session = await manager.create(**FIELDS)
    session.last_active -= 2  # as if the user had been away for two seconds
    # Writing the aged session makes the manager see it as expired and delete it.
    await manager.save(session)
    assert await manager.load(session.id) is None


async def test_absolute_timeout_ends_even_an_active_session(store_url: str) -> None:
    manager = SessionManager(open_store(store_url), "k" * 40, idle_timeout=60, absolute_timeout=120)
    session = await manager.create(**FIELDS)
    session.created_at -= 121
    session.last_active = time.time()
    await manager.save(session)
    assert await manager.load(session.id) is None


async def test_polling_does_not_extend_the_idle_time(store_url: str) -> None:
    manager = SessionManager(open_store(store_url), "k" * 40, idle_timeout=60, absolute_timeout=600)
    session = await manager.create(**FIELDS)
    session.last_active -= 30
    await manager.save(session)
    polled = await manager.load(session.id, touch=False)
    assert polled is not None and polled.last_active == pytest.approx(session.last_active)
    active = await manager.load(session.id, touch=True)
    assert active is not None and active.last_active > session.last_active + 25


async def test_rotation_gives_a_new_id_and_ends_the_old_one(store_url: str) -> None:
    store = open_store(store_url)
    manager = SessionManager(store, "k" * 40, 60, 600)
    session = await manager.create(**FIELDS)
    old_id, old_csrf = session.id, session.csrf_token
    rotated = await manager.rotate(session)
    assert rotated.id != old_id and rotated.csrf_token != old_csrf
    assert await manager.load(old_id) is None
    assert (await manager.load(rotated.id)) is not None
    await store.aclose()


async def test_destroy_ends_the_session(store_url: str) -> None:
    store = open_store(store_url)
    manager = SessionManager(store, "k" * 40, 60, 600)
    session = await manager.create(**FIELDS)
    await manager.destroy(session.id)
    assert await manager.load(session.id) is None
    assert await manager.active_count() == 0
    await store.aclose()


async def test_add_is_a_lock_and_incr_counts(store_url: str) -> None:
    store = open_store(store_url)
    assert await store.add("lock:a", b"one", 30)
    assert not await store.add("lock:a", b"two", 30)
    assert await store.get("lock:a") == b"one"
    await store.delete("lock:a")
    assert await store.add("lock:a", b"three", 30)
    assert [await store.incr("count", 30) for _ in range(3)] == [1, 2, 3]
    results = await asyncio.gather(*(store.incr("race", 30) for _ in range(20)))
    assert sorted(results) == list(range(1, 21))
    await store.aclose()


async def test_a_counter_reads_back_as_bytes_like_every_value(store_url: str) -> None:
    # The login rate limit reads its counters with get: on SQLite a TEXT counter made get raise.
    store = open_store(store_url)
    await store.incr("counter", 30)
    assert await store.get("counter") == b"1"
    assert await store.incr("counter", 30) == 2
    assert await store.get("counter") == b"2"
    assert [await store.get(key) for key in await store.keys("count")] == [b"2"]
    await store.aclose()


async def test_expired_entries_are_invisible(store_url: str) -> None:
    store = open_store(store_url)
    await store.set("short", b"x", 0.05)
    assert await store.get("short") == b"x"
    deadline = time.monotonic() + 5
    while await store.get("short") is not None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert await store.add("short", b"y", 30)
    await store.aclose()


async def test_activity_is_written_back_at_most_every_touch_interval() -> None:
    """A page view does not rewrite its session each time: at most every idle_timeout/30 (≤ 60 s)."""
    manager = SessionManager(open_store("memory://"), "k" * 40, idle_timeout=60, absolute_timeout=600)
    assert manager.touch_interval == 2
    session = await manager.create(**FIELDS)
    session.last_active -= 1  # one second ago: within the interval
    await manager.save(session)
    viewed = await manager.load(session.id, touch=True)
    assert viewed is not None
    stored = await manager.load(session.id, touch=False)
    assert stored is not None and stored.last_active == pytest.approx(session.last_active)


async def test_get_many_reads_several_keys_in_order(store_url: str) -> None:
    store = open_store(store_url)
    assert await store.get_many([]) == []
    await store.set("many:a", b"1", 30)
    await store.set("many:c", b"3", 30)
    await store.set("many:gone", b"x", 0.05)
    await store.incr("many:n", 30)
    deadline = time.monotonic() + 5
    while await store.get("many:gone") is not None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    keys = ["many:c", "many:b", "many:a", "many:gone", "many:n", "many:a"]
    assert await store.get_many(keys) == [b"3", None, b"1", None, b"1", b"1"]
    wide = [f"many:wide{i}" for i in range(1200)]  # more than one SQL statement's parameters
    for key in wide[::100]:
        await store.set(key, key.encode(), 30)
    assert await store.get_many(wide) == [key.encode() if i % 100 == 0 else None for i, key in enumerate(wide)]
    await store.aclose()
