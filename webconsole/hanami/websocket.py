"""Opening a backend websocket (§5.1, §5.2) and lock-step receiving with a timeout.

Every open websocket holds one of the backend's few worker threads for its whole life, so each
``HanamiClient`` hands them out through one ``asyncio.Semaphore(max_websockets)``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Literal

import websockets
from websockets.asyncio.client import ClientConnection, connect

from .errors import BackendError, BackendUnavailable, BadRequest, NotFound, TokenExpired

log = logging.getLogger("webconsole.hanami")

Target = Literal["cluster", "file_upload"]


class _NoFrameLogging(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The ``websockets`` logger of backend connections, never at DEBUG.

    At DEBUG the library logs every frame, and the first frame of a backend websocket is the init
    message carrying the Hanami token (in the record's arguments, whatever a formatter shows).
    """

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


_FRAME_LOG = _NoFrameLogging(logging.getLogger("websockets.client"), {})


class WebsocketSlots:
    """The per-client limit of simultaneously open backend websockets.

    ``on_change(in_use)`` is told every time a websocket takes or gives back a slot (metrics).
    """

    def __init__(self, limit: int, on_change: Callable[[int], None] | None = None) -> None:
        if limit < 1:
            raise ValueError("max_websockets must be at least 1")
        self.limit = limit
        self._semaphore = asyncio.Semaphore(limit)
        self._on_change = on_change
        self.in_use = 0
        self.peak = 0

    @asynccontextmanager
    async def slot(self, wait: float) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(wait):
                await self._semaphore.acquire()
        except TimeoutError:
            raise BackendUnavailable(
                f"all {self.limit} backend websocket connections are busy, try again later",
                endpoint="websocket",
            ) from None
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)
        self._changed()
        try:
            yield
        finally:
            self.in_use -= 1
            self._semaphore.release()
            self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.in_use)


async def receive(ws: ClientConnection, timeout: float, endpoint: str, what: str) -> bytes:
    """The next frame as bytes (the backend sends binary frames; text is tolerated).

    No reply within ``timeout`` or a connection closed by the backend -> ``BackendUnavailable``.
    """
    try:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation that arrives as
        # the frame does, and a cancelled upload then ran on to the end (its dataset kept)
        async with asyncio.timeout(timeout):
            frame = await ws.recv()
    except TimeoutError:
        raise BackendUnavailable(f"{what} did not answer within {timeout:g} s", endpoint=endpoint) from None
    except websockets.ConnectionClosed:
        raise BackendUnavailable(
            f"the backend closed the websocket without answering ({what})", endpoint=endpoint
        ) from None
    return frame.encode() if isinstance(frame, str) else bytes(frame)


async def send(ws: ClientConnection, data: bytes | str, timeout: float, endpoint: str) -> None:
    """Send one frame; a backend that stops reading (full buffers) -> ``BackendUnavailable``."""
    try:
        async with asyncio.timeout(timeout):  # not wait_for: see receive()
            await ws.send(data)
    except TimeoutError:
        raise BackendUnavailable(f"the backend did not read for {timeout:g} s", endpoint=endpoint) from None
    except websockets.ConnectionClosed:
        raise BackendUnavailable("the backend closed the websocket", endpoint=endpoint) from None


def _init_error(target: str, text: str) -> Exception:
    endpoint = f"websocket {target}"
    if text == "Token invalid":
        return TokenExpired(text, endpoint=endpoint)
    if "not found" in text:
        return NotFound(text, endpoint=endpoint)
    return BadRequest(text or f"the backend refused the websocket for target '{target}'", endpoint=endpoint)


@asynccontextmanager
async def open_backend_websocket(
    *,
    url: str,
    slots: WebsocketSlots,
    ssl_context: ssl.SSLContext | None,
    token: str,
    target: Target,
    uuid: str,
    timeout: float,
) -> AsyncIterator[ClientConnection]:
    """Take a slot, connect, send the init message and check the reply; close on exit."""
    endpoint = f"websocket {target}"
    async with slots.slot(timeout):
        try:
            ws = await connect(
                url,
                ssl=ssl_context,
                proxy=None,
                compression=None,
                ping_interval=None,  # the backend is strictly lock-step; no extra frames
                open_timeout=timeout,
                close_timeout=2,
                max_size=None,
                user_agent_header=None,
                logger=_FRAME_LOG,
            )
        except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
            raise BackendUnavailable(
                f"cannot open a websocket to the Hanami backend: {type(exc).__name__}", endpoint=endpoint
            ) from None
        try:
            init = json.dumps({"token": token, "target": target, "uuid": uuid})
            await send(ws, init, timeout, endpoint)
            raw = await receive(ws, timeout, endpoint, "the backend")
            try:
                reply = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise BackendError("the websocket init reply is not JSON", endpoint=endpoint) from None
            if not isinstance(reply, dict):
                raise BackendError("the websocket init reply is not an object", endpoint=endpoint)
            if reply.get("success") is not True:
                raise _init_error(target, str(reply.get("error") or ""))
            log.debug("websocket %s %s opened", target, uuid)
            yield ws
        finally:
            await ws.close()
            log.debug("websocket %s %s closed", target, uuid)
