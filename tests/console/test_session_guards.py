"""The guards every page passes before it runs: admin-only sections refused on the server, the
session's Hanami token renewed on activity (and a failed renewal survived), background polls that
do not count as activity, and the client's address in the audit trail. Each test drives the console
in-process over HTTP and asserts the effect: the backend calls made, the session in the store, the
audit row, the log line."""

from __future__ import annotations

import time

import httpx

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, console_settings, csrf_from, in_process_console, login, wait_for
from tests.console.conftest import MEMBER_PASSWORD
from tests.console.effects import BackendCalls, audit_rows, logged
from webconsole.app import create_app
from webconsole.hanami.client import HanamiAPI
from webconsole.web.core.deps import SESSION_COOKIE

async def session_of(client: httpx.AsyncClient):
    return await client.app.state.sessions.load(client.cookies[SESSION_COOKIE], touch=False)  # type: ignore[attr-defined]


async def test_admin_sections_are_refused_to_a_member_on_the_server(backend, member) -> None:
    async with in_process_console(backend.url) as client:
        await login(client, member[0], MEMBER_PASSWORD)
        calls = BackendCalls(client.app)  # type: ignore[attr-defined]
        refused = await client.get("/users")
        assert refused.status_code == 403
        assert "<p>This section is for Hanami admins only.</p>" in refused.text
        assert calls.count("GET v1/user/all") == 0  # refused before the page asked Hanami
    async with in_process_console(backend.url) as client:
        await login(client, ADMIN_ID, ADMIN_PASSWORD)
        calls = BackendCalls(client.app)  # type: ignore[attr-defined]
        listed = await client.get("/users")
        assert listed.status_code == 200 and member[0] in listed.text
        assert calls.count("GET v1/user/all") == 1


async def test_a_failed_renewal_keeps_the_current_token_and_says_why_in_the_log(
    backend, hanami: HanamiAPI, member
) -> None:
    """Renewal is due on every page here; once the member has lost its project, Hanami refuses it
    (401 "not assigned"): the page is still served with the token the session has, and the log says
    the renewal failed and why."""
    user, project = member
    async with in_process_console(backend.url, token_renew_margin=7200) as client:
        await login(client, user, MEMBER_PASSWORD)
        first = await session_of(client)
        await hanami.remove_project(user, project)
        calls = BackendCalls(client.app)  # type: ignore[attr-defined]
        with logged("webconsole.auth") as records:
            page = await client.get("/clusters")
        assert page.status_code == 200
        assert calls.count("PUT v1/token") == 1
        assert (await session_of(client)).token == first.token
        assert [(record.levelname, record.getMessage(), getattr(record, "error", None)) for record in records] == [
            ("WARNING", "token renewal failed", "LoginFailed")]


async def test_a_renewal_is_asked_for_only_when_due_and_never_by_a_poll(backend) -> None:
    async with in_process_console(backend.url, token_renew_margin=0) as client:
        await login(client, ADMIN_ID, ADMIN_PASSWORD)
        calls = BackendCalls(client.app)  # type: ignore[attr-defined]
        assert (await client.get("/clusters")).status_code == 200
        assert calls.count("PUT v1/token") == 0  # an hour left, none of it inside the margin
    async with in_process_console(backend.url, token_renew_margin=7200) as client:
        await login(client, ADMIN_ID, ADMIN_PASSWORD)
        first = await session_of(client)
        calls = BackendCalls(client.app)  # type: ignore[attr-defined]
        assert (await client.get("/clusters", headers={"X-Console-Poll": "1"})).status_code == 200
        assert calls.count("PUT v1/token") == 0 and (await session_of(client)).token == first.token
        # a new exp needs a new second
        await wait_for(lambda: _later_second(first.token_expires_at - 3600), timeout=3, interval=0.05)
        assert (await client.get("/clusters")).status_code == 200
        assert calls.count("PUT v1/token") == 1
        renewed = await session_of(client)
        assert renewed.token != first.token and renewed.token_expires_at > first.token_expires_at


async def _later_second(instant: float) -> bool:
    return int(time.time()) != int(instant)


async def test_an_expired_token_ends_the_session_without_asking_hanami(backend) -> None:
    async with in_process_console(backend.url) as client:
        await login(client, ADMIN_ID, ADMIN_PASSWORD)
        session = await session_of(client)
        session.token_expires_at = time.time() - 1  # as the session holds it once its hour is over
        await client.app.state.sessions.save(session)  # type: ignore[attr-defined]
        calls = BackendCalls(client.app)  # type: ignore[attr-defined]
        page = await client.get("/clusters")
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/clusters"
        assert calls.calls == []
        assert await client.app.state.sessions.load(session.id, touch=False) is None  # type: ignore[attr-defined]


async def test_background_polls_do_not_count_as_activity(backend) -> None:
    """The idle timeout counts from the last thing the user did: a page that polls by itself keeps
    nobody logged in. (30 s of idle timeout: activity is written back at most once a second.)"""
    async with in_process_console(backend.url, session_idle_timeout=30) as client:
        await login(client, ADMIN_ID, ADMIN_PASSWORD)
        first = await session_of(client)
        await wait_for(lambda: _seconds_since(first.last_active, 1.2), timeout=5, interval=0.05)
        assert (await client.get("/clusters", headers={"X-Console-Poll": "1"})).status_code == 200
        assert (await session_of(client)).last_active == first.last_active
        assert (await client.get("/clusters")).status_code == 200
        assert (await session_of(client)).last_active > first.last_active + 1


async def _seconds_since(instant: float, seconds: float) -> bool:
    return time.time() > instant + seconds


async def test_a_browser_without_an_address_is_audited_as_unknown(emulator) -> None:
    """Served on a UNIX socket (uvicorn --uds) a request has no client address: its audit rows and
    its login rate limit say "unknown"."""
    app = create_app(console_settings(emulator.url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=None)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            form = await client.get("/login")
            failed = await client.post("/login", data={
                "user_id": ADMIN_ID, "password": "not-the-password", "csrf_token": csrf_from(form.text)})
            assert failed.status_code == 401
            rows = await audit_rows(app, ADMIN_ID, "login")
            assert [(row.outcome, row.client) for row in rows] == [("failed", "unknown")]
            assert await app.state.store.get("ratelimit:login:client:unknown") == b"1"
