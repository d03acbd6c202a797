"""Server-side sessions: the browser only ever holds an opaque random id.

The store sees a hash of the session id (a leaked store cannot be replayed as cookies) and the
Hanami token encrypted with a key derived from the console's secret (a leaked store does not leak
tokens). Idle and absolute timeouts are enforced here, on every load.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from webconsole.sessions.base import KeyValueStore

SESSION_PREFIX = "session:"


@dataclass
class Session:
    """What the console knows about one logged-in browser."""

    id: str = field(repr=False)  # the cookie value: a credential, like the token and the CSRF token
    user_id: str
    user_name: str
    is_admin: bool
    is_project_admin: bool
    project_id: str
    role: str
    token: str = field(repr=False)
    token_expires_at: float
    csrf_token: str = field(repr=False)
    created_at: float
    last_active: float
    client: str = ""
    flashes: list[tuple[str, str]] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)

    def flash(self, message: str, kind: str = "info") -> None:
        """Queue a message for the next page this session sees."""
        self.flashes.append((kind, message))


def _key_for(session_id: str) -> str:
    return SESSION_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


class SessionManager:
    """Creates, loads, rotates and ends sessions in a :class:`KeyValueStore`."""

    def __init__(self, store: KeyValueStore, secret: str, idle_timeout: int, absolute_timeout: int) -> None:
        self.store = store
        self.idle_timeout = idle_timeout
        self.absolute_timeout = absolute_timeout
        # Activity is written back at most this often (not on every page view): the idle timeout
        # then ends a session up to this much early, one store write per view fewer.
        self.touch_interval = min(60.0, idle_timeout / 30)
        derived = hashlib.sha256(b"hanami-console session token key\0" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, secret: str) -> str:
        """``secret`` (a token) encrypted for a record other than a session, e.g. a pending clean-up."""
        return self._fernet.encrypt(secret.encode()).decode()

    def unseal(self, sealed: str) -> str | None:
        """What :meth:`seal` encrypted, or None when it was sealed under another secret."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except (InvalidToken, ValueError):
            return None

    def _ttl(self, session: Session, now: float) -> float:
        return min(session.last_active + self.idle_timeout, session.created_at + self.absolute_timeout) - now

    def _encode(self, session: Session) -> bytes:
        data: dict[str, Any] = asdict(session)
        del data["id"]
        data["token"] = self._fernet.encrypt(session.token.encode()).decode()
        return json.dumps(data, separators=(",", ":")).encode()

    def _decode(self, session_id: str, raw: bytes) -> Session | None:
        try:
            data = json.loads(raw)
            data["token"] = self._fernet.decrypt(data["token"].encode()).decode()
            data["flashes"] = [tuple(item) for item in data.get("flashes", [])]
            return Session(id=session_id, **data)
        except (InvalidToken, ValueError, KeyError, TypeError):
            # A session written under another secret or an older layout is simply not valid.
            return None

    async def create(self, **fields: Any) -> Session:
        """A new session with a fresh id and CSRF token."""
        now = time.time()
        session = Session(
            id=secrets.token_urlsafe(32),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_active=now,
            **fields,
        )
        await self.save(session)
        return session

    async def load(self, session_id: str | None, *, touch: bool = True) -> Session | None:
        """The live session for a cookie value, or None; ``touch`` records user activity."""
        if not session_id or len(session_id) > 128:
            return None
        raw = await self.store.get(_key_for(session_id))
        if raw is None:
            return None
        session = self._decode(session_id, raw)
        now = time.time()
        if session is None or self._ttl(session, now) <= 0:
            await self.store.delete(_key_for(session_id))
            return None
        if touch and now - session.last_active >= self.touch_interval:
            session.last_active = now
            await self.save(session)
        return session

    async def save(self, session: Session) -> None:
        """Write the session back (its expiry follows the idle and absolute limits)."""
        ttl = self._ttl(session, time.time())
        if ttl <= 0:
            await self.store.delete(_key_for(session.id))
            return
        await self.store.set(_key_for(session.id), self._encode(session), ttl)

    async def rotate(self, session: Session) -> Session:
        """Give the session a new id (after a privilege change) and end the old one."""
        old_id = session.id
        session.id = secrets.token_urlsafe(32)
        session.csrf_token = secrets.token_urlsafe(32)
        await self.save(session)
        await self.store.delete(_key_for(old_id))
        return session

    async def exists(self, session_id: str) -> bool:
        """Whether the session is still live in the store (one read; no decryption, no touch)."""
        return await self.store.get(_key_for(session_id)) is not None

    async def destroy(self, session_id: str) -> None:
        """End a session on the server (logout)."""
        await self.store.delete(_key_for(session_id))

    async def active_count(self) -> int:
        """Sessions alive right now (for /metrics)."""
        return await self.store.count(SESSION_PREFIX)
