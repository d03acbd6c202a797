"""Login, logout, expired tokens, project switching, rate limits — in-process against the emulator,
on every session store users run (memory, SQLite, Redis)."""

from __future__ import annotations

import asyncio
import html as htmllib
import re
import secrets
import time
from typing import AsyncIterator

import httpx
import pytest

from tests.conftest import (
    ADMIN_ID,
    ADMIN_PASSWORD,
    csrf_from,
    in_process_console,
    login,
    start_emulator,
)
from webconsole.hanami.client import HanamiClient
from webconsole.web.core.deps import SESSION_COOKIE


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


async def make_console(backend_url: str, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_console(backend_url, **overrides) as client:
        yield client


@pytest.fixture
def app_client(store_app_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Every test here runs on each session store users run (memory, SQLite, Redis)."""
    return store_app_client


async def test_login_page_renders_with_a_form(app_client: httpx.AsyncClient) -> None:
    page = await app_client.get("/login")
    assert page.status_code == 200
    assert 'name="user_id"' in page.text and 'type="password"' in page.text


async def test_pages_need_a_login_and_come_back_afterwards(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/?tab=x&page=2")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/%3Ftab%3Dx%26page%3D2"
    form = await app_client.get(response.headers["location"])
    # The way back is the one the form carries (not one the test makes up): query string included.
    assert next_field(form.text) == "/?tab=x&page=2"
    done = await app_client.post("/login", data={
        "user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "next": next_field(form.text),
        "csrf_token": csrf_from(form.text)})
    assert done.status_code == 303 and done.headers["location"] == "/?tab=x&page=2"


def next_field(html: str) -> str:
    """The hidden ``next`` of the login form, unescaped as the browser would send it."""
    match = re.search(r'<input type="hidden" name="next" value="([^"]*)">', html)
    assert match, "no next field in the login form"
    return htmllib.unescape(match.group(1))


async def test_an_htmx_request_without_login_comes_back_to_its_page_with_the_query(
    app_client: httpx.AsyncClient,
) -> None:
    """A fragment's own URL is no page to return to: the page that asked for it (HX-Current-URL) is."""
    response = await app_client.get("/clusters", headers={
        "HX-Request": "true", "HX-Current-URL": "http://console.test/datasets?q=digits&sort=name"})
    target = response.headers.get("HX-Redirect") or response.headers["location"]
    assert target == "/login?next=/datasets%3Fq%3Ddigits%26sort%3Dname"
    form = await app_client.get(target)
    assert next_field(form.text) == "/datasets?q=digits&sort=name"
    done = await app_client.post("/login", data={
        "user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "next": next_field(form.text),
        "csrf_token": csrf_from(form.text)})
    assert done.headers["location"] == "/datasets?q=digits&sort=name"


async def test_login_sets_an_opaque_httponly_cookie_and_no_token_reaches_the_page(
    app_client: httpx.AsyncClient,
) -> None:
    form = await app_client.get("/login")
    response = await app_client.post("/login", data={
        "user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "next": "/", "csrf_token": csrf_from(form.text)})
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(SESSION_COOKIE + "=")
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    session_id = app_client.cookies[SESSION_COOKIE]
    assert not session_id.startswith("eyJ")  # not a JWT
    home = await app_client.get("/")
    assert home.status_code == 200 and ADMIN_ID in home.text
    session = await app_client.app.state.sessions.load(session_id)  # type: ignore[attr-defined]
    assert session.token not in home.text and session.token not in str(home.headers)
    assert "eyJ" not in home.text


@pytest.mark.parametrize("user_id, password", [
    (ADMIN_ID, "wrong-password"),
    ("nobody_here", ADMIN_PASSWORD),
    ("x", "short"),
])
async def test_failed_login_gives_one_message_that_does_not_say_which_part_was_wrong(
    app_client: httpx.AsyncClient, user_id: str, password: str
) -> None:
    form = await app_client.get("/login")
    response = await app_client.post("/login", data={
        "user_id": user_id, "password": password, "next": "/", "csrf_token": csrf_from(form.text)})
    assert response.status_code == 401
    assert "Wrong user id or password." in response.text
    assert SESSION_COOKIE not in response.cookies


async def test_logins_are_rate_limited_per_user_id(backend, any_store_url: str) -> None:
    async for client in make_console(backend.url, login_rate_limit=3, session_store_url=any_store_url):
        for _ in range(3):
            form = await client.get("/login")
            bad = await client.post("/login", data={
                "user_id": ADMIN_ID, "password": "not-the-password", "csrf_token": csrf_from(form.text)})
            assert bad.status_code == 401
        form = await client.get("/login")
        # Even the right password is refused now: the limit protects the account.
        refused = await client.post("/login", data={
            "user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "csrf_token": csrf_from(form.text)})
        assert refused.status_code == 429 and "Too many failed attempts" in refused.text


async def test_a_wrong_password_does_not_break_the_next_login_on_the_default_store(backend, any_store_url) -> None:
    """SQLite is the store of ``serve`` and ``demo``: one failed login once made every later one a 500."""
    async for client in make_console(backend.url, session_store_url=any_store_url):
        form = await client.get("/login")
        bad = await client.post("/login", data={
            "user_id": ADMIN_ID, "password": "not-the-password", "csrf_token": csrf_from(form.text)})
        assert bad.status_code == 401 and "Wrong user id or password." in bad.text
        form = await client.get("/login")
        good = await client.post("/login", data={
            "user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "next": "/", "csrf_token": csrf_from(form.text)})
        assert good.status_code == 303 and good.headers["location"] == "/"
        assert (await client.get("/")).status_code == 200
        store = client.app.state.store  # type: ignore[attr-defined]
        assert await store.get(f"ratelimit:login:user:{ADMIN_ID.lower()}") == b"1"


async def test_logout_ends_the_session_on_the_server(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    old_cookie = app_client.cookies[SESSION_COOKIE]
    out = await app_client.post("/logout", data={"csrf_token": csrf})
    assert out.status_code == 303
    app_client.cookies.set(SESSION_COOKIE, old_cookie)  # a copy of the cookie is worth nothing now
    again = await app_client.get("/")
    assert again.status_code == 303 and "/login" in again.headers["location"]
    assert await app_client.app.state.sessions.load(old_cookie) is None  # type: ignore[attr-defined]


async def test_project_switch_renews_the_token_and_rotates_the_session(
    app_client: httpx.AsyncClient, backend
) -> None:
    project = unique("proj")
    async with HanamiClient(backend.url) as hanami:
        admin = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
        await admin.create_project(project, "Switch Test")
        await admin.assign_project(ADMIN_ID, project, "member", False)
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    before = app_client.cookies[SESSION_COOKIE]
    switched = await app_client.post("/project", data={"project_id": project, "csrf_token": csrf})
    assert switched.status_code == 303
    after = app_client.cookies[SESSION_COOKIE]
    assert after != before
    home = await app_client.get("/")
    assert f"project <strong>{project}</strong>" in home.text and "role member" in home.text
    assert await app_client.app.state.sessions.load(before) is None  # type: ignore[attr-defined]


async def test_switching_to_an_unassigned_project_says_so(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    response = await app_client.post("/project", data={"project_id": "not_mine_at_all", "csrf_token": csrf})
    assert response.status_code == 303
    home = await app_client.get("/")
    assert "not assigned to the project" in home.text and "project <strong>admin</strong>" in home.text


async def test_expired_token_sends_the_user_to_login_and_back(tmp_path, any_store_url: str) -> None:
    backend = start_emulator(tmp_path / "short-tokens", token_expire=2)
    try:
        async for client in make_console(backend.url, token_renew_margin=0, session_store_url=any_store_url):
            await login(client, ADMIN_ID, ADMIN_PASSWORD)
            session = await client.app.state.sessions.load(client.cookies[SESSION_COOKIE])  # type: ignore[attr-defined]
            while time.time() <= session.token_expires_at + 0.5:  # wait for the backend's clock
                await asyncio.sleep(0.1)
            page = await client.get("/?from=expired")
            assert page.status_code == 303
            assert page.headers["location"] == "/login?next=/%3Ffrom%3Dexpired"
            form = await client.get(page.headers["location"])
            back = await client.post("/login", data={
                "user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "next": next_field(form.text),
                "csrf_token": csrf_from(form.text)})
            assert back.headers["location"] == "/?from=expired"
    finally:
        backend.stop()


async def test_active_users_get_their_token_renewed_before_it_expires(tmp_path, any_store_url: str) -> None:
    backend = start_emulator(tmp_path / "renew", token_expire=60)
    try:
        async for client in make_console(backend.url, token_renew_margin=3600, session_store_url=any_store_url):
            await login(client, ADMIN_ID, ADMIN_PASSWORD)
            sessions = client.app.state.sessions  # type: ignore[attr-defined]
            first = await sessions.load(client.cookies[SESSION_COOKIE], touch=False)
            while int(time.time()) == int(first.token_expires_at - 60):  # a new exp needs a new second
                await asyncio.sleep(0.05)
            polled = await client.get("/", headers={"X-Console-Poll": "1"})
            assert polled.status_code == 200
            unchanged = await sessions.load(client.cookies[SESSION_COOKIE], touch=False)
            assert unchanged.token == first.token  # background polling never renews
            await client.get("/")
            renewed = await sessions.load(client.cookies[SESSION_COOKIE], touch=False)
            assert renewed.token != first.token and renewed.token_expires_at > first.token_expires_at
    finally:
        backend.stop()


async def test_open_redirects_are_refused(app_client: httpx.AsyncClient) -> None:
    form = await app_client.get("/login")
    done = await app_client.post("/login", data={
        "user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "next": "//evil.example/x",
        "csrf_token": csrf_from(form.text)})
    assert done.headers["location"] == "/"


async def test_health_and_readiness(app_client: httpx.AsyncClient) -> None:
    assert (await app_client.get("/healthz")).json() == {"status": "ok"}
    ready = await app_client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"store": "ok", "backend": "ok", "hosts": "ok"}


async def test_readiness_fails_when_the_backend_is_down() -> None:
    from tests.conftest import free_port

    async for client in make_console(f"http://127.0.0.1:{free_port()}"):
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["backend"] == "failed: BackendUnavailable"
        form = await client.get("/login")
        down = await client.post("/login", data={
            "user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "csrf_token": csrf_from(form.text)})
        assert down.status_code == 503 and "cannot be reached" in down.text
