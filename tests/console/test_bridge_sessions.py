"""A direct-IO bridge ends with its session at once, whichever replica the logout reached, and when
the session expires; the cluster goes back to task mode."""

from __future__ import annotations

import time
from typing import AsyncIterator

import pytest

from tests.conftest import ConsoleServer, console_settings
from tests.console.test_direct_io import Admin, Browser, closed
from webconsole.hanami.errors import Conflict


@pytest.fixture
async def replicas(emulator, shared_store_url: str) -> AsyncIterator[tuple[ConsoleServer, ConsoleServer]]:
    """Two console processes' worth of apps on one shared store (the session works on both)."""
    servers = [ConsoleServer(console_settings(emulator.url, session_store_url=shared_store_url)).start()
               for _ in range(2)]
    yield servers[0], servers[1]
    for server in servers:
        server.stop()


async def test_logout_on_another_replica_closes_the_bridge_at_once(replicas, emulator) -> None:
    first, second = replicas
    here = await Browser(first).login()
    there = Browser(second)
    there.http.cookies.update(here.http.cookies)
    there.csrf = here.csrf
    try:
        uuid = await here.create_cluster()
        ws, _ = await here.bridge(uuid)
        logged_out = time.monotonic()
        answer = await there.http.post("/logout", data={"csrf_token": there.csrf})
        assert answer.status_code == 303
        final = await closed(ws, timeout=10)
        assert time.monotonic() - logged_out < 5  # the watch interval, not the 15 s housekeeping
        assert "session ended" in final["message"] and final["task_mode"] is True
        async with Admin(emulator.url) as api:
            with pytest.raises(Conflict):  # it is in TASK already: the bridge returned it
                await api.set_mode(uuid, "TASK")
            await api.delete_cluster(uuid)
    finally:
        await here.aclose()
        await there.aclose()


async def test_session_expiry_closes_the_bridge(emulator, shared_store_url: str) -> None:
    server = ConsoleServer(console_settings(emulator.url, session_store_url=shared_store_url,
                                            session_idle_timeout=4, session_absolute_timeout=4)).start()
    browser = await Browser(server).login()
    try:
        uuid = await browser.create_cluster()
        ws, _ = await browser.bridge(uuid)
        final = await closed(ws, timeout=15)
        assert "session ended" in final["message"] and final["task_mode"] is True
        async with Admin(emulator.url) as api:
            await api.delete_cluster(uuid)
    finally:
        await browser.aclose()
        server.stop()
