"""ASGI middleware: request ids, security headers and the access log (pure ASGI, so it streams)."""

from __future__ import annotations

import contextvars
import logging
import time
import uuid
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("webconsole.access")

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


# Set in the task serving a websocket handshake once its refusal went out as a complete HTTP response.
_REFUSAL_SENT: contextvars.ContextVar[bool] = contextvars.ContextVar("websocket_refusal_sent", default=False)


class _RefusedHandshakeFilter(logging.Filter):
    """uvicorn's websocket protocol logs a refusal sent as an HTTP response (the denial-response
    extension) as an ERROR, "returned without completing handshake", after the app returned. The
    refusal is deliberate and complete: that line is dropped, for such handshakes only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_REFUSAL_SENT.get() and record.getMessage().startswith(
            "ASGI callable returned without completing handshake"))


_REFUSED_HANDSHAKE_FILTER = _RefusedHandshakeFilter()


class SecurityHeadersMiddleware:
    """Adds a request id, the security headers, and no-store on everything but static files."""

    def __init__(self, app: ASGIApp, static_prefix: str = "/static/") -> None:
        self.app = app
        self.static_prefix = static_prefix
        logging.getLogger("uvicorn.error").addFilter(_REFUSED_HANDSHAKE_FILTER)  # once: same object

    @staticmethod
    def _websocket_send(scope: Scope, send: Send) -> Send:
        """A handshake refused before accept is an HTTP response: give it the same strict headers.

        When the server supports the denial-response extension, a close before accept becomes an
        explicit 403 carrying the headers (otherwise the server answers a bare 403 of its own).
        """
        can_respond = "websocket.http.response" in (scope.get("extensions") or {})
        state = {"accepted": False}

        def strict(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
            mutable = MutableHeaders(raw=list(headers))
            for name, value in SECURITY_HEADERS.items():
                mutable.setdefault(name, value)
            mutable["Cache-Control"] = "no-store"
            return mutable.raw

        async def send_ws(message: Message) -> None:
            kind = message["type"]
            if kind == "websocket.accept":
                state["accepted"] = True
            elif kind == "websocket.close" and not state["accepted"] and can_respond:
                state["accepted"] = True
                await send({"type": "websocket.http.response.start", "status": 403,
                            "headers": strict([(b"content-type", b"text/plain; charset=utf-8"),
                                               (b"content-length", b"0")])})
                await send({"type": "websocket.http.response.body", "body": b"", "more_body": False})
                _REFUSAL_SENT.set(True)
                return
            elif kind == "websocket.http.response.start":
                state["accepted"] = True
                message = {**message, "headers": strict(list(message.get("headers") or []))}
            await send(message)
            if kind == "websocket.http.response.body" and not message.get("more_body", False):
                _REFUSAL_SENT.set(True)

        return send_ws

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        if scope["type"] == "websocket":
            await self.app(scope, receive, self._websocket_send(scope, send))
            return
        started = time.perf_counter()
        path: str = scope.get("path", "")
        # Only the static mount itself (under the root path, if any), never any path that merely
        # contains "/static/": a page served there would be publicly cacheable (cache deception).
        root = scope.get("root_path", "")
        is_static = path.startswith(self.static_prefix) or bool(root) and path.startswith(root + self.static_prefix)
        status_holder: dict[str, Any] = {"status": 0}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                headers["X-Request-ID"] = request_id
                if is_static and message["status"] < 400:
                    headers.setdefault("Cache-Control", "public, max-age=3600")
                else:
                    headers["Cache-Control"] = "no-store"
                    headers.add_vary_header("HX-Request")
                if scope.get("scheme") == "https":
                    headers.setdefault("Strict-Transport-Security", "max-age=63072000")
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if not is_static:
                log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope.get("method"),
                        "path": path,
                        "status": status_holder["status"],
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    },
                )


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` once a request body passes its limit (rendered as a 413 page)."""

    def __init__(self) -> None:
        super().__init__(413, "The request is larger than the console accepts.")


class BodyLimitMiddleware:
    """Stop reading a request body at its limit, whether or not it declared a Content-Length.

    Upload routes check sizes too, but only after Starlette has spooled the whole multipart body to
    disk; a chunked body (no Content-Length) would otherwise be read to the end, however large.
    Multipart bodies of a logged-in session may carry two files of ``max_upload_bytes`` plus 1 MiB
    of form; any other body (urlencoded forms, JSON, anonymous multipart) at most 1 MiB.
    """

    SMALL_LIMIT = 1 << 20

    def __init__(self, app: ASGIApp, max_upload_bytes: int) -> None:
        self.app = app
        self.multipart_limit = 2 * max_upload_bytes + (1 << 20)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        multipart = headers.get("content-type", "").startswith("multipart/form-data")
        # Large (file) bodies only from a live session: FastAPI parses a route's form before any
        # dependency runs, so an anonymous client could otherwise make any POST spool gigabytes.
        limit = self.multipart_limit if multipart and await self._logged_in(scope) else self.SMALL_LIMIT
        declared = headers.get("content-length", "")
        started = {"response": False}

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started["response"] = True
            await send(message)

        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, tracking_send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # raised outside a route's exception handling: answer here if nothing was sent yet
            if started["response"]:
                raise
            await self._refuse(scope, receive, tracking_send)

    @staticmethod
    async def _logged_in(scope: Scope) -> bool:
        from webconsole.web.core.deps import SESSION_COOKIE

        app = scope.get("app")
        sessions = getattr(getattr(app, "state", None), "sessions", None)
        cookie = Request(scope).cookies.get(SESSION_COOKIE)
        if sessions is None or not cookie:
            return False
        return await sessions.load(cookie, touch=False) is not None

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = PlainTextResponse("The request is larger than the console accepts.", status_code=413,
                                     headers={"Connection": "close"})
        await response(scope, receive, send)
