"""The one error mapper of the console: every failure becomes a page (or an htmx alert).

Routes never write their own try/except for these; form handlers only catch
``webconsole.hanami.errors.InputError`` (400/409) to show the message on the form.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from webconsole.hanami.errors import (
    AdminOnly,
    BackendError,
    BackendUnavailable,
    BadRequest,
    Conflict,
    HanamiError,
    NotFound,
    PolicyDenied,
    TokenExpired,
    Unauthorized,
)
from webconsole.web.core.render import is_htmx, redirect, render, url_path

log = logging.getLogger("webconsole.errors")


class LoginRequired(Exception):
    """No valid session: send the browser to the login page and back afterwards."""


class Forbidden(Exception):
    """The console itself refuses (admin-only section, another user's bridge, …)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _login_url(request: Request) -> str:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    root = request.scope.get("root_path", "")
    if root and target.startswith(root):
        target = target[len(root):] or "/"
    # An htmx fragment URL is not a page to come back to: return to the page that asked for it.
    if is_htmx(request):
        current = request.headers.get("HX-Current-URL", "")
        base = str(request.base_url).rstrip("/")
        target = current[len(base):] if current.startswith(base) else "/"
    return url_path(request, "login_form") + "?next=" + quote(target or "/", safe="/")



async def _error_page(
    request: Request, status: int, title: str, message: str, *, detail: str = "", preformatted: bool = False
) -> Response:
    request.state.backend_down = status == 503
    return await render(
        request,
        "error.html",
        {
            "status": status,
            "title": title,
            "message": message,
            "detail": detail,
            "preformatted": preformatted,
            "request_id": getattr(request.state, "request_id", ""),
        },
        block="alert",
        status_code=status,
    )


async def _login_required(request: Request, exc: Exception) -> Response:
    return redirect(request, _login_url(request))


async def _token_expired(request: Request, exc: Exception) -> Response:
    # The backend no longer accepts our token: end the console session too, then log in again.
    session = getattr(request.state, "session", None)
    if session is not None:
        await request.app.state.sessions.destroy(session.id)
        request.state.session = None
    return redirect(request, _login_url(request))


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    return await _error_page(request, 403, "Not allowed", exc.message)


async def _hanami_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HanamiError)
    if isinstance(exc, PolicyDenied):
        return await _error_page(
            request, 403, "Not allowed for your role",
            "Your role in the current project does not allow this. Switch project or ask an admin.",
        )
    if isinstance(exc, (AdminOnly, Unauthorized)):
        return await _error_page(request, 403, "Admin rights required", "Only a Hanami admin may do this.")
    if isinstance(exc, NotFound):
        return await _error_page(
            request, 404, "Not found", "It may have been deleted, or it is not visible in this project.",
            detail=exc.message,
        )
    if isinstance(exc, (BadRequest, Conflict)):
        return await _error_page(
            request, 422, "The backend refused this", "Hanami did not accept the request:",
            detail=exc.message, preformatted="\n" in exc.message,
        )
    if isinstance(exc, BackendUnavailable):
        log.warning("backend unavailable", extra={"endpoint": exc.endpoint, "error": exc.message})
        return await _error_page(
            request, 503, "Hanami cannot be reached",
            "The Hanami backend did not answer. It may be down, restarting or overloaded; "
            "try again in a moment.",
        )
    if isinstance(exc, BackendError):
        log.error("backend error", extra={"endpoint": exc.endpoint, "status": exc.status})
    return await _error_page(
        request, 502, "The backend failed",
        "Hanami reported an internal error. Quote the request id below when you report it.",
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    titles = {404: "Page not found", 405: "Method not allowed", 413: "Too large", 429: "Too many requests"}
    message = exc.detail if isinstance(exc.detail, str) else ""
    return await _error_page(
        request, exc.status_code, titles.get(exc.status_code, "Request refused"), message,
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    return await _error_page(request, 400, "Bad request", "The request was malformed.")


CONSOLE_ERROR_PREFIX = "console-error:"
CONSOLE_ERROR_TTL = 14 * 24 * 3600.0
CONSOLE_ERRORS_SHOWN = 200


async def record_console_error(request: Request, exc: Exception) -> None:
    """Keep what an admin needs to find a console 500 in the log: when, which route, the request id
    and the exception's type. Never its message or the request's data (they may hold a token)."""
    route = request.scope.get("route")
    entry = {
        "time": time.time(),
        "method": request.method,
        "route": getattr(route, "path", None) or "(no route)",
        "request_id": getattr(request.state, "request_id", ""),
        "exception": f"{type(exc).__module__}.{type(exc).__qualname__}",
    }
    key = f"{CONSOLE_ERROR_PREFIX}{entry['time']:017.6f}:{secrets.token_hex(4)}"
    try:
        await request.app.state.store.set(key, json.dumps(entry).encode(), CONSOLE_ERROR_TTL)
    except Exception:  # the store itself may be what failed: the page must still be served
        log.warning("the console error could not be recorded in the store")


async def console_errors(store: Any) -> list[dict[str, Any]]:
    """The console's own recorded 500s, newest first (the newest ``CONSOLE_ERRORS_SHOWN``)."""
    keys = sorted(await store.keys(CONSOLE_ERROR_PREFIX), reverse=True)[:CONSOLE_ERRORS_SHOWN]
    entries = []
    for key in keys:
        raw = await store.get(key)
        if raw is not None:
            try:
                entries.append(json.loads(raw))
            except ValueError:
                continue
    return entries


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    await record_console_error(request, exc)
    return await _error_page(
        request, 500, "Something went wrong",
        "The console hit an unexpected error. Quote the request id below when you report it.",
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapper for every failure class the console knows."""
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(TokenExpired, _token_expired)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(HanamiError, _hanami_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
