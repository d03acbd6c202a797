"""The system page: hosts, CPU info in MHz, thread map or "not available", measurement JSON for charts."""

from __future__ import annotations

import secrets

import httpx

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, console_settings, login, wait_for
from tests.console.test_admin import MEMBER_PASSWORD, admin_cleanup, create_member, create_project
from webconsole.app import create_app
from webconsole.emulator import EmulatorConfig, EmulatorServer
from webconsole.web.admin.system import packages_view


def test_speeds_are_converted_from_khz_to_mhz() -> None:
    info = {"packages": [{"id": 0, "power": 12.5, "thermal_spec": 65.0, "cores": [
        {"id": 0, "current_speed": 1200000, "current_minimum_speed": 400000, "current_maximum_speed": 4000000,
         "minimum_speed": 400000, "maximum_speed": 4000000, "threads": [{"id": 0}, {"id": 8}]}]}]}
    core = packages_view(info)[0]["cores"][0]
    assert core["current_speed"] == 1200.0 and core["maximum_speed"] == 4000.0 and core["threads"] == [0, 8]


async def test_system_page_for_a_member(app_client, backend) -> None:
    tag = secrets.token_hex(3)
    project, member = f"sys_{tag}", f"sys_member_{tag}"
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    try:
        await create_project(app_client, csrf, project)
        await create_member(app_client, csrf, member, project)
        async with httpx.AsyncClient(transport=app_client._transport, base_url="http://console.test") as other:
            await login(other, member, MEMBER_PASSWORD)
            async def with_thread_map() -> httpx.Response | None:
                # a Hanami that has just started answers threading with 500 for ~6 s (contract §14)
                shown = await other.get("/system", params={"range": "seconds"})
                assert shown.status_code == 200
                return shown if '<table id="thread-map">' in shown.text else None

            page = await wait_for(with_thread_map, timeout=20, interval=0.5)
            assert '<table id="hosts">' in page.text and "cpu" in page.text
            assert 'id="system-data"' in page.text and "chart-4.6.1.umd.min.js" in page.text
            assert '<a href="/system?range=seconds" data-range="seconds" aria-current="page">' in page.text
            assert "MHz" in page.text
            data = await other.get("/system/measurements.json", headers={"X-Console-Poll": "1"})
            assert data.status_code == 200 and data.headers["content-type"].startswith("application/json")
            series = data.json()
            for key in ("power", "temperature", "speed"):
                assert [len(series[key][name]) for name in ("days", "hours", "minutes", "seconds")] == [365, 24, 60, 60]
    finally:
        await admin_cleanup(backend.url, [member], [project])


async def test_measurements_need_a_session(app_client) -> None:
    response = await app_client.get("/system/measurements.json", headers={"X-Console-Poll": "1"})
    assert response.status_code == 303 and "/login" in response.headers["location"]


async def test_thread_map_not_available_while_hanami_starts(tmp_path) -> None:
    """Threading answers 500 during the backend's start (and always on some installs): the page says so."""
    emulator = EmulatorServer(EmulatorConfig(
        state_dir=tmp_path, port=0, admin_id=ADMIN_ID, admin_name="Test Admin", admin_password=ADMIN_PASSWORD,
        threading_delay=600.0))
    emulator.start()
    try:
        app = create_app(console_settings(emulator.url))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
                await login(client, ADMIN_ID, ADMIN_PASSWORD)
                page = await client.get("/system")
                assert page.status_code == 200
                assert 'data-testid="threading-unavailable"' in page.text
                assert "Not available" in page.text
    finally:
        emulator.stop()


async def test_every_admin_page_against_the_faithful_emulator(emulator_faithful) -> None:
    """Nothing here relies on lenient behaviour: a tour of the pages against Hanami's real quirks."""
    app = create_app(console_settings(emulator_faithful.url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            await login(client, ADMIN_ID, ADMIN_PASSWORD)
            for path in ("/projects", "/users", f"/users/{ADMIN_ID}", "/account", "/audit", "/errors",
                         "/errors?without_user=1", "/system", "/system/measurements.json"):
                response = await client.get(path)
                assert response.status_code == 200, path
