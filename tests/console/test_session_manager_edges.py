"""The session manager at its edges: cookie length, the last second of a session, what load() does
by default, rotation, records of an older layout, and the key the token is encrypted with (every
replica, and the next version, must read the sessions the others wrote)."""

from __future__ import annotations

import base64
import hashlib
import json
import time

from cryptography.fernet import Fernet

from webconsole.sessions import SessionManager, open_store
from webconsole.sessions.manager import SESSION_PREFIX, Session

FIELDS = dict(
    user_id="alice", user_name="Alice", is_admin=False, is_project_admin=False, project_id="proj_a",
    role="member", token="the-hanami-token", token_expires_at=time.time() + 3600,
)
SECRET = "k" * 40


def manager(idle: int = 60, absolute: int = 600) -> SessionManager:
    return SessionManager(open_store("memory://"), SECRET, idle_timeout=idle, absolute_timeout=absolute)


def key_of(session_id: str) -> str:
    return SESSION_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


def session_with_id(session_id: str) -> Session:
    now = time.time()
    return Session(id=session_id, csrf_token="c" * 43, created_at=now, last_active=now, **FIELDS)  # type: ignore[arg-type]


async def test_cookie_values_up_to_128_characters_are_looked_up() -> None:
    sessions = manager()
    for length, found in ((128, True), (129, False)):
        session = session_with_id("i" * length)
        await sessions.save(session)
        assert await sessions.store.get(key_of(session.id)) is not None  # it is stored either way
        assert (await sessions.load(session.id) is not None) is found, length
    assert await sessions.load("") is None and await sessions.load(None) is None


async def test_a_session_lives_to_its_last_second() -> None:
    sessions = manager(idle=1, absolute=600)  # under a second left right after creation
    session = await sessions.create(**FIELDS)
    assert await sessions.store.get(key_of(session.id)) is not None
    assert await sessions.load(session.id, touch=False) is not None
    short = manager(idle=600, absolute=1)
    other = await short.create(**FIELDS)
    assert await short.load(other.id) is not None


async def test_load_counts_as_activity_unless_told_otherwise() -> None:
    sessions = manager()
    session = await sessions.create(**FIELDS)
    session.last_active -= sessions.touch_interval + 1  # last seen longer ago than the write-back interval
    await sessions.save(session)
    untouched = await sessions.load(session.id, touch=False)
    assert untouched is not None and untouched.last_active == session.last_active
    await sessions.load(session.id)  # the default: a user's request
    touched = await sessions.load(session.id, touch=False)
    assert touched is not None and touched.last_active > session.last_active
    await sessions.load(session.id)  # within the interval: activity is not written again
    again = await sessions.load(session.id, touch=False)
    assert again is not None and again.last_active == touched.last_active


async def test_rotation_renews_the_csrf_token_too() -> None:
    sessions = manager()
    session = await sessions.create(**FIELDS)
    old_id, old_csrf = session.id, session.csrf_token
    rotated = await sessions.rotate(session)
    assert rotated.id != old_id and isinstance(rotated.csrf_token, str) and rotated.csrf_token != old_csrf
    assert len(rotated.csrf_token) >= 43 and len(rotated.id) >= 43  # 32 random bytes, base64
    loaded = await sessions.load(rotated.id)
    assert loaded is not None and loaded.csrf_token == rotated.csrf_token


async def test_the_token_is_encrypted_with_the_key_derived_from_the_secret() -> None:
    sessions = manager()
    session = await sessions.create(**FIELDS)
    record = json.loads(await sessions.store.get(key_of(session.id)))
    key = base64.urlsafe_b64encode(hashlib.sha256(b"hanami-console session token key\0" + SECRET.encode()).digest())
    assert Fernet(key).decrypt(record["token"].encode()) == b"the-hanami-token"


async def test_a_record_without_flashes_still_loads() -> None:
    sessions = manager()
    session = await sessions.create(**FIELDS)
    record = json.loads(await sessions.store.get(key_of(session.id)))
    del record["flashes"]  # written before flash messages existed
    await sessions.store.set(key_of(session.id), json.dumps(record).encode(), 60)
    loaded = await sessions.load(session.id)
    assert loaded is not None and loaded.flashes == []


def test_a_flash_is_information_unless_said_otherwise() -> None:
    session = session_with_id("x" * 43)
    session.flash("Saved.")
    session.flash("Broken.", "error")
    assert session.flashes == [("info", "Saved."), ("error", "Broken.")]
