"""The scripted stand-ins report their own failures: a handler error fails the test that caused it."""

from __future__ import annotations

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.hanami.hanami_scripted import Reply, ScriptedHTTP, ScriptedWS


async def test_a_failing_websocket_handler_is_raised_by_stop() -> None:
    server = ScriptedWS()
    await server.start()

    async def handler(frame: bytes) -> bytes:
        raise ValueError("the test's handler is broken")

    server.handler = handler
    async with connect(server.url) as ws:
        await ws.send(b'{"token": "t", "target": "cluster", "uuid": "u"}')
        await ws.recv()  # the init reply
        await ws.send(b"frame")
        with pytest.raises(ConnectionClosed):
            await ws.recv()  # the handler died: the server closed the socket
    with pytest.raises(AssertionError, match="the test's handler is broken"):
        await server.stop()


async def test_a_normal_close_is_no_error() -> None:
    server = ScriptedWS()
    await server.start()
    async with connect(server.url) as ws:
        await ws.send(b'{"token": "t", "target": "cluster", "uuid": "u"}')
        await ws.recv()
    await server.stop()  # nothing raised
    assert server.errors == [] and server.closed == 1


async def test_a_reply_the_http_server_cannot_send_is_raised_by_stop() -> None:
    server = ScriptedHTTP()
    await server.start()
    server.on("GET", "/control/v1/auth", Reply(200, {"not json": object()}))
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.HTTPError):
            await client.get(f"{server.url}/control/v1/auth")
    with pytest.raises(AssertionError, match="not JSON serializable"):
        await server.stop()
