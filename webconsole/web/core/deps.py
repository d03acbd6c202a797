"""Named dependencies every page uses: the session, the token-bound Hanami API, CSRF, admin checks."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request

from webconsole.hanami.client import HanamiAPI, HanamiClient
from webconsole.hanami.errors import HanamiError, TokenExpired
from webconsole.sessions import Session, SessionManager
from webconsole.settings import Settings
from webconsole.web.core.errors import Forbidden, LoginRequired
from webconsole.web.core.render import is_poll

log = logging.getLogger("webconsole.auth")

SESSION_COOKIE = "hanami_console_session"
PRE_SESSION_COOKIE = "hanami_console_pre"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def client_address(request: Request) -> str:
    """The browser's address as uvicorn saw it (after trusted proxy headers)."""
    return request.client.host if request.client else "unknown"


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_sessions(request: Request) -> SessionManager:
    return request.app.state.sessions


def get_client(request: Request) -> HanamiClient:
    return request.app.state.hanami


async def optional_session(request: Request) -> Session | None:
    """The session behind the cookie, if any (background polls do not count as activity)."""
    if hasattr(request.state, "session"):
        return request.state.session
    manager: SessionManager = request.app.state.sessions
    session = await manager.load(request.cookies.get(SESSION_COOKIE), touch=not is_poll(request))
    request.state.session = session
    return session


async def require_session(session: Annotated[Session | None, Depends(optional_session)]) -> Session:
    """A logged-in session, or a redirect to the login page that comes back here."""
    if session is None:
        raise LoginRequired()
    return session


CurrentSession = Annotated[Session, Depends(require_session)]


async def require_admin(session: CurrentSession) -> Session:
    """Admin-only sections are refused on the server, whatever the page showed."""
    if not session.is_admin:
        raise Forbidden("This section is for Hanami admins only.")
    return session


AdminSession = Annotated[Session, Depends(require_admin)]


async def hanami_api(request: Request, session: CurrentSession) -> HanamiAPI:
    """The Hanami API bound to this session's token, renewed while the user is active.

    Renewal needs a still-valid token (contract §14), so it happens ``token_renew_margin``
    seconds before expiry, and only on user activity: an idle browser polling a task list
    lets its token run out like its session.
    """
    if session.token_expires_at <= time.time():
        # Hanami would refuse the token, and its renewal too: no call is made, only a login helps
        raise TokenExpired()
    renewed = None if is_poll(request) else await renew_token_if_due(request.app, session)
    return renewed or request.app.state.hanami.api(session.token)


async def renew_token_if_due(app: FastAPI, session: Session) -> HanamiAPI | None:
    """Renew the session's Hanami token when it expires within ``token_renew_margin`` seconds.

    Returns the API bound to the new token (the session is saved with it), or None when no renewal
    was due or it failed for a passing reason. ``TokenExpired`` propagates: only a login helps then.
    """
    settings: Settings = app.state.settings
    if session.token_expires_at - time.time() >= settings.token_renew_margin:
        return None
    client: HanamiClient = app.state.hanami
    try:
        renewed = await client.api(session.token).renew(session.project_id)
    except TokenExpired:
        raise
    except HanamiError as exc:
        # Renewal is an optimisation; the current token still works for a while.
        log.warning("token renewal failed", extra={"error": type(exc).__name__})
        return None
    session.token = renewed.token
    session.token_expires_at = renewed.expires_at
    await app.state.sessions.save(session)
    return client.api(session.token)


Hanami = Annotated[HanamiAPI, Depends(hanami_api)]


def origin_allowed(request_origin: str | None, request: Request, settings: Settings) -> bool:
    """Same-origin (scheme, host and port of this request) or explicitly allowed."""
    if not request_origin:
        return True
    origin = request_origin.rstrip("/")
    if origin in settings.allowed_origins:
        return True
    own = urlsplit(str(request.base_url))
    seen = urlsplit(origin)
    return (seen.scheme, seen.netloc) == (own.scheme, own.netloc)


async def _submitted_csrf(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def csrf_protect(
    request: Request, session: Annotated[Session | None, Depends(optional_session)]
) -> None:
    """Refuse a state change without this session's CSRF token or from a foreign origin."""
    if request.method not in UNSAFE_METHODS:
        return
    settings: Settings = request.app.state.settings
    origin = request.headers.get("origin")
    if origin is None and request.headers.get("referer"):
        parts = urlsplit(request.headers["referer"])
        origin = f"{parts.scheme}://{parts.netloc}"
    if not origin_allowed(origin, request, settings):
        raise Forbidden("This request came from another site and was refused.")
    expected = session.csrf_token if session else request.cookies.get(PRE_SESSION_COOKIE, "")
    submitted = await _submitted_csrf(request)
    if not expected or not submitted or not secrets.compare_digest(expected.encode(), submitted.encode()):
        raise Forbidden(
            "The form was out of date or did not come from this console. Reload the page and try again."
        )


def resource_router(**kwargs: object) -> APIRouter:
    """An APIRouter whose every state-changing route is CSRF- and origin-checked."""
    return APIRouter(dependencies=[Depends(csrf_protect)], **kwargs)  # type: ignore[arg-type]
