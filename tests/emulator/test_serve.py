"""`serve(config)` runs the emulator in the caller's event loop (used by the CLI)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import httpx
from tests.emulator.emu_helpers import ADMIN, make_config

from webconsole.emulator import serve


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_serve_until_cancelled(tmp_path):
    port = free_port()
    task = asyncio.create_task(serve(make_config(tmp_path, port=port)))
    try:
        async with httpx.AsyncClient() as client:
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                try:
                    resp = await client.post(f"http://127.0.0.1:{port}/control/v1/token",
                                             content=json.dumps({"id": ADMIN[0], "password": ADMIN[1]}))
                    break
                except httpx.ConnectError:
                    assert asyncio.get_running_loop().time() < deadline
                    await asyncio.sleep(0.02)
            assert resp.status_code == 200
            # the API answers while the loop is shared with the caller
            resp = await client.get(f"http://127.0.0.1:{port}/control/v1/auth",
                                    headers={"X-Auth-Token": resp.json()["token"]})
            assert resp.json()["id"] == ADMIN[0]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.cancelled()
