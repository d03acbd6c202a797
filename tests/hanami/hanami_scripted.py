"""A tiny scripted Hanami stand-in on 127.0.0.1 for the client's wire-level tests.

``ScriptedHTTP`` is a real HTTP/1.1 server (asyncio streams, one request per connection like
Hanami) that answers canned status/body per (method, path) and records every raw request.
``ScriptedWS`` is a real websocket server whose behaviour per message is a test-supplied function.

Neither swallows its own failures: an exception in a connection handler (a test's handler that
raises, a reply that cannot be encoded) is kept and raised again by ``stop()``, so the test that
caused it fails in its teardown instead of passing with a server that silently stopped answering.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

#: the admin of the emulator the integration tests start
EMU_ADMIN = ("hanami_admin", "Hanami Admin", "admin-password-1")

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 409: "Conflict",
           418: "I'm a teapot", 500: "Internal Server Error"}


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict | None = None  # dict -> compact JSON
    action: str | None = None  # "close": close without reply; "hang": never answer
    delay: float = 0.0  # seconds before answering

    def payload(self) -> tuple[bytes, str]:
        if isinstance(self.body, dict):
            return json.dumps(self.body, separators=(",", ":"), sort_keys=True).encode(), "text/json"
        body = self.body.encode() if isinstance(self.body, str) else (self.body or b"")
        return body, ("text/json" if self.status == 200 else "text/plain")


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ScriptedHTTP:
    routes: dict[tuple[str, str], list[Reply]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def on(self, method: str, path: str, *replies: Reply | dict) -> None:
        """Answer ``method path`` with the replies in turn (the last one repeats)."""
        self.routes[(method, path)] = [r if isinstance(r, Reply) else Reply(200, r) for r in replies]

    def requests(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        return [s for s in self.seen if (method is None or s.method == method) and (path is None or s.path == path)]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        raise_handler_errors(self.errors)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            seen = Seen(method, target, headers, body)
            self.seen.append(seen)
            queue = self.routes.get((method, seen.path))
            if queue is None:
                reply = Reply(404, f"no matching endpoint found for path '{seen.path}'")
            else:
                reply = queue.pop(0) if len(queue) > 1 else queue[0]
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if reply.action == "close":
                return
            if reply.action == "hang":
                await asyncio.sleep(3600)
                return
            payload, ctype = reply.payload()
            writer.write(
                f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'X')}\r\nServer: ToriiGateway\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client went away or the server stops: nothing to report
        except Exception as exc:  # noqa: BLE001 - kept for stop(), which raises it in the test
            self.errors.append(exc)
        finally:
            writer.close()


Handler = Callable[[dict[str, Any] | None, bytes], Awaitable[bytes | None]]


@dataclass
class ScriptedWS:
    """Websocket server: ``init`` answers the JSON init message, ``handler`` each later frame.

    A handler returning ``None`` sends no reply (like Hanami for unknown bricks).
    """

    init_reply: dict[str, Any] = field(default_factory=lambda: {"success": True, "uuid": "conn"})
    handler: Callable[[bytes], Awaitable[bytes | None]] | None = None
    inits: list[dict[str, Any]] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    open_now: int = 0
    open_peak: int = 0
    closed: int = 0
    errors: list[BaseException] = field(default_factory=list)
    port: int = 0
    _server: Any = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None, ping_interval=None)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()
        raise_handler_errors(self.errors)

    async def _handle(self, ws: ServerConnection) -> None:
        self.open_now += 1
        self.open_peak = max(self.open_peak, self.open_now)
        try:
            first = await ws.recv()
            self.inits.append(json.loads(first))
            if self.init_reply.get("action") == "close":
                return
            await ws.send(json.dumps(self.init_reply, sort_keys=True).encode())  # binary, like Hanami
            async for frame in ws:
                data = frame if isinstance(frame, bytes) else frame.encode()
                self.frames.append(data)
                reply = await self.handler(data) if self.handler else None
                if reply is not None:
                    await ws.send(reply)
        except ConnectionClosed:
            pass  # the client closed (or dropped) the socket: a normal end
        except Exception as exc:  # noqa: BLE001 - kept for stop(), which raises it in the test
            self.errors.append(exc)
        finally:
            self.open_now -= 1
            self.closed += 1


def raise_handler_errors(errors: list[BaseException]) -> None:
    """Raise the first error a connection handler hit (the others are named in its message)."""
    if errors:
        first, others = errors[0], errors[1:]
        raise AssertionError(f"the scripted server's handler failed: {first!r}"
                             + (f" (and {len(others)} more: {others!r})" if others else "")) from first


def free_port_refused() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_token(user_id: str = "alice@example", project_id: str = "proj", *, is_admin: bool = False,
               expires_in: int = 3600, key: bytes = b"k" * 32) -> str:
    """A Hanami-shaped JWT: HS256, claims ``exp`` and ``user`` (a JSON *string*)."""
    user = {"creator_id": "MISAKI", "id": user_id, "is_admin": is_admin, "is_project_admin": False,
            "name": "Alice", "project_id": project_id, "role": "member"}
    payload = {"exp": int(time.time()) + expires_in, "user": json.dumps(user, sort_keys=True)}
    return jwt.encode(payload, key, algorithm="HS256")
