"""CSRF and origin checks on every state change, observed by their effect: a refused request never
reaches Hanami (the calls the console made are counted), an accepted one does."""

from __future__ import annotations

from typing import AsyncIterator

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, console_settings, csrf_from, login
from tests.console.effects import BackendCalls
from webconsole.app import create_app
from webconsole.web.core.deps import PRE_SESSION_COOKIE, SESSION_COOKIE

OUT_OF_DATE = "The form was out of date or did not come from this console. Reload the page and try again."
FOREIGN = "This request came from another site and was refused."


@pytest.fixture
async def console(emulator) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(console_settings(emulator.url, allowed_origins="https://proxy.example:8443"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


async def switch(client: httpx.AsyncClient, **kwargs: object) -> httpx.Response:
    """A state change that calls Hanami (PUT v1/token) when it is let through."""
    return await client.post("/project", **kwargs)  # type: ignore[arg-type]


def refused_with(response: httpx.Response, message: str) -> bool:
    return response.status_code == 403 and f"<p>{message}</p>" in response.text


async def test_a_state_change_needs_this_sessions_token(console: httpx.AsyncClient) -> None:
    csrf = await login(console, ADMIN_ID, ADMIN_PASSWORD)
    calls = BackendCalls(console.app)  # type: ignore[attr-defined]
    cases = [
        {"data": {"project_id": "admin"}},  # none
        {"data": {"project_id": "admin", "csrf_token": ""}},  # empty
        {"data": {"project_id": "admin", "csrf_token": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")}},  # wrong
        {"data": {"project_id": "admin"}, "headers": {"X-CSRF-Token": "forged"}},  # wrong header
        # a JSON body carries no form field: only the header counts
        {"json": {"project_id": "admin", "csrf_token": csrf}},
        # a file is no token, whatever its content
        {"data": {"project_id": "admin"}, "files": {"csrf_token": ("token.txt", csrf.encode())}},
    ]
    for case in cases:
        assert refused_with(await switch(console, **case), OUT_OF_DATE), case
    assert calls.writes() == []
    # the token as a form field, as a multipart field, or as the header htmx sends: let through
    # (a switch rotates the session, and its CSRF token with it: each round reads the new one)
    assert (await switch(console, data={"project_id": "admin", "csrf_token": csrf})).status_code == 303
    assert calls.count("PUT v1/token") == 1
    csrf = csrf_from((await console.get("/")).text)
    assert (await switch(console, data={"project_id": "admin", "csrf_token": csrf},
                         files={"unused": ("x.txt", b"x")})).status_code == 303
    assert calls.count("PUT v1/token") == 2
    csrf = csrf_from((await console.get("/")).text)
    header = await switch(console, data={"project_id": "admin"}, headers={"X-CSRF-Token": csrf})
    assert header.status_code == 303 and calls.count("PUT v1/token") == 3
    old = csrf
    csrf = csrf_from((await console.get("/")).text)
    assert refused_with(await switch(console, data={"project_id": "admin", "csrf_token": old}), OUT_OF_DATE)
    assert calls.count("PUT v1/token") == 3  # the token of the session before the rotation is worth nothing


async def test_another_sessions_token_is_refused(console: httpx.AsyncClient) -> None:
    first = await login(console, ADMIN_ID, ADMIN_PASSWORD)
    async with httpx.AsyncClient(transport=console._transport, base_url="http://console.test") as other:
        second = await login(other, ADMIN_ID, ADMIN_PASSWORD)
        assert first != second
        calls = BackendCalls(console.app)  # type: ignore[attr-defined]
        assert refused_with(await switch(other, data={"project_id": "admin", "csrf_token": first}), OUT_OF_DATE)
        assert calls.writes() == []


@pytest.mark.parametrize("headers, allowed", [
    ({"Origin": "http://console.test"}, True),
    ({"Origin": "http://console.test/"}, True),
    ({"Origin": "https://proxy.example:8443"}, True),  # allowed_origins
    ({"Origin": "https://proxy.example:8443/"}, True),
    ({"Referer": "http://console.test/clusters?x=1"}, True),  # no Origin: the Referer's origin
    ({}, True),  # neither: the CSRF token decides
    ({"Origin": "http://evil.example"}, False),
    ({"Origin": "https://console.test"}, False),  # another scheme
    ({"Origin": "http://console.test:8080"}, False),  # another port
    ({"Origin": "https://proxy.example"}, False),  # an allowed host on another port
    ({"Referer": "http://evil.example/page"}, False),
    ({"Origin": "null"}, False),
])
async def test_the_origin_of_a_state_change(console: httpx.AsyncClient, headers: dict, allowed: bool) -> None:
    csrf = await login(console, ADMIN_ID, ADMIN_PASSWORD)
    calls = BackendCalls(console.app)  # type: ignore[attr-defined]
    answer = await switch(console, data={"project_id": "admin", "csrf_token": csrf}, headers=headers)
    if allowed:
        assert answer.status_code == 303 and calls.count("PUT v1/token") == 1
    else:
        assert refused_with(answer, FOREIGN) and calls.writes() == []


async def test_reading_is_never_checked(console: httpx.AsyncClient) -> None:
    await login(console, ADMIN_ID, ADMIN_PASSWORD)
    page = await console.get("/clusters", headers={"Origin": "http://evil.example"})
    assert page.status_code == 200


async def test_the_login_form_is_checked_with_its_pre_session_cookie(console: httpx.AsyncClient) -> None:
    form = await console.get("/login")
    pre = console.cookies[PRE_SESSION_COOKIE]
    assert csrf_from(form.text) == pre
    calls = BackendCalls(console.app)  # type: ignore[attr-defined]
    data = {"user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "next": "/"}
    assert refused_with(await console.post("/login", data={**data, "csrf_token": "forged"}), OUT_OF_DATE)
    console.cookies.delete(PRE_SESSION_COOKIE)
    assert refused_with(await console.post("/login", data={**data, "csrf_token": pre}), OUT_OF_DATE)  # no cookie
    assert calls.calls == [] and SESSION_COOKIE not in console.cookies
    console.cookies.set(PRE_SESSION_COOKIE, pre)
    assert (await console.post("/login", data={**data, "csrf_token": pre})).status_code == 303
    assert calls.count("POST v1/token") == 1
