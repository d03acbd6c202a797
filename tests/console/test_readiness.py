"""/readyz and a backend that is starting: Hanami answers HTTP before it is usable (its hardware is
initialised about a second later; a cluster created in that window gets a 500) and its threading
map answers 500 for ~6 s (§14). Checked on a freshly started backend of each kind."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import (
    ADMIN_ID,
    ADMIN_NAME,
    ADMIN_PASSWORD,
    BACKENDS,
    free_port,
    in_process_console,
    start_emulator,
)
from tests.real_hanami import RealHanami
from webconsole.emulator import EmulatorConfig
from webconsole.hanami import HanamiClient, HanamiError
from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE
from webconsole.web.ops.health import NO_ACCOUNT


async def test_ready_only_with_a_host_listed(app_client: httpx.AsyncClient) -> None:
    ready = await app_client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": {"store": "ok", "backend": "ok", "hosts": "ok"}}


async def test_not_ready_without_a_readiness_account(backend) -> None:
    async with in_process_console(backend.url, readiness_user_id=None, readiness_password=None) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["hosts"] == NO_ACCOUNT
    assert ready.json()["checks"]["backend"] == "ok"


async def test_not_ready_when_the_readiness_login_is_refused(backend) -> None:
    async with in_process_console(backend.url, readiness_password="not-the-password") as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["hosts"] == "failed: LoginFailed"
        assert "not-the-password" not in ready.text


@pytest.fixture(params=BACKENDS)
def starting_backend(request: pytest.FixtureRequest, tmp_path) -> Iterator[object]:
    """A backend of each kind, started for this test alone (the real one not waited for)."""
    if request.param == "real":
        request.getfixturevalue("real_hanami")  # the shared one: skips (or fails in CI) when not built
        server = RealHanami(tmp_path / "state", free_port(), ADMIN_ID, ADMIN_NAME, ADMIN_PASSWORD)
        server.start(wait=False)
        try:
            yield server
        finally:
            server.stop()
        return
    started_at = time.monotonic()
    emulator = start_emulator(tmp_path / "state", threading_delay=EmulatorConfig.threading_delay)
    emulator.started_at = started_at
    try:
        yield emulator
    finally:
        emulator.stop()


async def _hosts(url: str) -> list | None:
    """The backend's hosts, or None while it does not even answer a login."""
    try:
        async with HanamiClient(url, timeout=2) as client:
            api = client.api((await client.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            return (await api.list_hosts()).records()
    except HanamiError:
        return None


async def test_a_starting_backend_is_ready_only_once_it_lists_a_host(starting_backend) -> None:
    async with in_process_console(starting_backend.url) as console:
        deadline = time.monotonic() + 90
        while True:
            ready = await console.get("/readyz")
            hosts = await _hosts(starting_backend.url)
            if ready.status_code == 200:
                # ready means usable: hosts listed now (and it was checked before this call)
                assert hosts, f"/readyz said ready while the backend lists no host: {ready.json()}"
                break
            assert ready.status_code == 503
            assert time.monotonic() < deadline, f"never ready: {ready.json()}"
            await asyncio.sleep(0.1)
        async with HanamiClient(starting_backend.url, timeout=5) as client:
            api = client.api((await client.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            cluster = await api.create_cluster("ready check", EXAMPLE_CSV_TEMPLATE)  # usable: no 500
            await api.delete_cluster(cluster["uuid"])


async def test_threading_answers_500_while_starting_then_the_map(starting_backend) -> None:
    async with HanamiClient(starting_backend.url, timeout=5) as client:
        while (token := await _token(client)) is None:
            await asyncio.sleep(0.1)
        api = client.api(token)
        answers: list[tuple[float, int]] = []
        deadline = time.monotonic() + 30
        while True:
            elapsed = time.monotonic() - starting_backend.started_at
            try:
                thread_map = await api.threading()
            except HanamiError as exc:
                assert exc.status == 500 and exc.message == "", (exc.status, exc.message)
                answers.append((elapsed, 500))
            else:
                answers.append((elapsed, 200))
                assert thread_map and any(name.startswith("WorkerThread") for name in thread_map), thread_map
                break
            assert time.monotonic() < deadline, answers
            await asyncio.sleep(0.25)
    # the map is never there in the first 4 s after the start, and always by ~6 s
    assert all(status == 500 for elapsed, status in answers if elapsed < 4.0), answers
    assert answers[-1][0] < 12.0, answers


async def _token(client: HanamiClient) -> str | None:
    try:
        return (await client.login(ADMIN_ID, ADMIN_PASSWORD)).token
    except HanamiError:
        return None
