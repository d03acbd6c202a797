"""The one error mapper: each failure class becomes its page (status, title, message), or only the
alert for htmx. Its own console with routes that raise each error (no other test sees them)."""

from __future__ import annotations

import html
import logging
import re
from typing import AsyncIterator

import httpx
import pytest
from fastapi import HTTPException

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, console_settings, login
from webconsole.app import create_app
from webconsole.hanami.errors import (
    AdminOnly,
    BackendError,
    BackendUnavailable,
    BadRequest,
    Conflict,
    LoginFailed,
    NotFound,
    PolicyDenied,
    TokenExpired,
)
from webconsole.web.core.deps import SESSION_COOKIE, CurrentSession
from webconsole.web.core.errors import Forbidden, LoginRequired

# made when raised, not at import (the class under test builds each one)
FAILURES = {
    "policy": lambda: PolicyDenied("Access denied by policy", status=401),
    "admin": lambda: AdminOnly("", status=401),
    "unauthorized": lambda: LoginFailed("nope", status=401),
    "missing": lambda: NotFound("Chekckpoint not found", status=404),
    "bad": lambda: BadRequest("name is wrong", status=400),
    "table": lambda: BadRequest("+---+\n| x |\n+---+", status=400),
    "conflict": lambda: Conflict("Cluster with name 'x' already exist.", status=409),
    "down": lambda: BackendUnavailable("connection refused"),
    "failed": lambda: BackendError("", status=500),
    "forbidden": lambda: Forbidden("Only the holder may do this."),
    "unexpected": lambda: RuntimeError("a bug"),
    "http404": lambda: HTTPException(404, "No such page here."),
    "http405": lambda: HTTPException(405, ""),
    "http413": lambda: HTTPException(413, "Too big."),
    "http429": lambda: HTTPException(429, "Slow down."),
    "http418": lambda: HTTPException(418, "Odd."),
}

# kind -> status, title, message, detail (None: no detail line), detail in <pre>
EXPECTED = {
    "policy": (403, "Not allowed for your role",
               "Your role in the current project does not allow this. Switch project or ask an admin.", None, False),
    "admin": (403, "Admin rights required", "Only a Hanami admin may do this.", None, False),
    "unauthorized": (403, "Admin rights required", "Only a Hanami admin may do this.", None, False),
    "missing": (404, "Not found", "It may have been deleted, or it is not visible in this project.",
                "Chekckpoint not found", False),
    "bad": (422, "The backend refused this", "Hanami did not accept the request:", "name is wrong", False),
    "table": (422, "The backend refused this", "Hanami did not accept the request:", "+---+\n| x |\n+---+", True),
    "conflict": (422, "The backend refused this", "Hanami did not accept the request:",
                 "Cluster with name 'x' already exist.", False),
    "down": (503, "Hanami cannot be reached", "The Hanami backend did not answer. It may be down, restarting or "
             "overloaded; try again in a moment.", None, False),
    "failed": (502, "The backend failed", "Hanami reported an internal error. Quote the request id below when you "
               "report it.", None, False),
    "forbidden": (403, "Not allowed", "Only the holder may do this.", None, False),
    "unexpected": (500, "Something went wrong", "The console hit an unexpected error. Quote the request id below "
                   "when you report it.", None, False),
    "http404": (404, "Page not found", "No such page here.", None, False),
    "http405": (405, "Method not allowed", None, None, False),
    "http413": (413, "Too large", "Too big.", None, False),
    "http429": (429, "Too many requests", "Slow down.", None, False),
    "http418": (418, "Request refused", "Odd.", None, False),
}


@pytest.fixture
async def mapper(emulator) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(console_settings(emulator.url))

    async def fail(kind: str) -> None:
        raise FAILURES[kind]()

    async def expire_without_session() -> None:
        raise TokenExpired("Failed to validate JWT-Token", status=401)

    async def odd_detail() -> None:
        raise HTTPException(400, detail={"field": "name"})

    async def need_login() -> None:
        raise LoginRequired()

    async def expire(session: CurrentSession) -> None:
        raise TokenExpired("Failed to validate JWT-Token", status=401)

    async def number(value: int) -> dict:
        return {"value": value}

    app.add_api_route("/__fail/{kind}", fail, methods=["GET"])
    app.add_api_route("/__login_required", need_login, methods=["GET"])
    app.add_api_route("/__expired", expire, methods=["GET"])
    app.add_api_route("/__number", number, methods=["GET"])
    app.add_api_route("/__expired_anonymous", expire_without_session, methods=["GET"])
    app.add_api_route("/__odd_detail", odd_detail, methods=["GET"])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


def alert(text: str) -> dict[str, object]:
    box = re.search(r'<div class="alert alert-error error-box" role="alert" data-status="(\d+)">(.*?)</div>',
                    text, re.S)
    assert box, text[:1000]
    body = box.group(2)
    message = re.search(r'<h1 class="error-title">[^<]*</h1>\s*<p>([^<]*)</p>', body)
    detail = re.search(r'<(pre|p) class="backend-message">(.*?)</(?:pre|p)>', body, re.S)
    return {
        "status": int(box.group(1)),
        "title": html.unescape(re.search(r'<h1 class="error-title">([^<]*)</h1>', body).group(1)),
        "message": html.unescape(message.group(1)) if message else None,
        "detail": html.unescape(detail.group(2)) if detail else None,
        "pre": bool(detail and detail.group(1) == "pre"),
        "request_id": re.search(r"Request id: <code>([0-9a-f]+)</code>", body) is not None,
    }


@pytest.mark.parametrize("kind", EXPECTED)
async def test_each_failure_has_its_page(mapper: httpx.AsyncClient, kind: str) -> None:
    status, title, message, detail, pre = EXPECTED[kind]
    page = await mapper.get(f"/__fail/{kind}")
    assert page.status_code == status
    assert "<html" in page.text and f"<title>{html.escape(title, quote=False)}" in page.text
    shown = alert(page.text)
    assert (shown["status"], shown["title"], shown["message"], shown["detail"], shown["pre"]) == (
        status, title, message, detail, pre)
    assert shown["request_id"]
    fragment = await mapper.get(f"/__fail/{kind}", headers={"HX-Request": "true"})
    assert fragment.status_code == status and "<html" not in fragment.text
    assert fragment.text.lstrip().startswith('<div class="alert alert-error error-box"')
    assert alert(fragment.text)["title"] == title


async def test_only_an_unreachable_backend_marks_the_page_as_backend_down(mapper: httpx.AsyncClient) -> None:
    down = await mapper.get("/__fail/down")
    failed = await mapper.get("/__fail/failed")
    marker = "The Hanami backend cannot be reached. Pages may be incomplete"
    assert (marker in down.text, marker in failed.text) == (True, False)


async def test_a_malformed_request_is_a_bad_request_page(mapper: httpx.AsyncClient) -> None:
    page = await mapper.get("/__number", params={"value": "not a number"})
    assert page.status_code == 400
    assert (alert(page.text)["title"], alert(page.text)["message"]) == ("Bad request", "The request was malformed.")


async def test_login_required_comes_back_to_the_page(mapper: httpx.AsyncClient) -> None:
    page = await mapper.get("/__login_required", params={"a": "1 2"})
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/__login_required%3Fa%3D1%2B2"
    htmx = await mapper.get("/__login_required", headers={
        "HX-Request": "true", "HX-Current-URL": "http://console.test/clusters?q=x"})
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"] == "/login?next=/clusters%3Fq%3Dx"
    elsewhere = await mapper.get("/__login_required", headers={
        "HX-Request": "true", "HX-Current-URL": "http://evil.example/clusters"})
    assert elsewhere.headers["HX-Redirect"] == "/login?next=/"


async def test_an_expired_token_ends_the_console_session(mapper: httpx.AsyncClient) -> None:
    await login(mapper, ADMIN_ID, ADMIN_PASSWORD)
    session_id = mapper.cookies[SESSION_COOKIE]
    sessions = mapper.app.state.sessions  # type: ignore[attr-defined]
    assert await sessions.load(session_id, touch=False) is not None
    page = await mapper.get("/__expired", params={"p": "2"})
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/__expired%3Fp%3D2"
    assert await sessions.load(session_id, touch=False) is None
    again = await mapper.get("/__expired")  # the session is gone: a login is required first
    assert again.status_code == 303 and again.headers["location"] == "/login?next=/__expired"


async def test_an_expired_token_outside_a_session(mapper: httpx.AsyncClient) -> None:
    page = await mapper.get("/__expired_anonymous")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/__expired_anonymous"


async def test_an_error_detail_that_is_not_text_is_not_shown(mapper: httpx.AsyncClient) -> None:
    page = await mapper.get("/__odd_detail")
    shown = alert(page.text)
    assert (page.status_code, shown["title"], shown["message"]) == (400, "Request refused", None)
    assert "field" not in page.text


async def test_an_unexpected_error_is_logged_with_its_traceback(mapper: httpx.AsyncClient,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "webconsole.errors")
    await mapper.get("/__fail/unexpected")
    (record,) = [r for r in caplog.records if r.name == "webconsole.errors"]
    assert record.getMessage() == "unhandled error" and record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError) and str(record.exc_info[1]) == "a bug"


def test_a_console_refusal_carries_its_message() -> None:
    refusal = Forbidden("Only the holder may do this.")
    assert (refusal.message, str(refusal)) == ("Only the holder may do this.",) * 2


async def test_the_way_back_is_inside_the_prefix(emulator) -> None:
    app = create_app(console_settings(emulator.url, root_path="/console"))

    async def need_login() -> None:
        raise LoginRequired()

    app.add_api_route("/__login_required", need_login, methods=["GET"])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            page = await client.get("/console/__login_required", params={"x": "1"})
    assert page.status_code == 303
    assert page.headers["location"] == "/console/login?next=/__login_required%3Fx%3D1"


async def test_backend_failures_are_logged_with_their_endpoint(mapper: httpx.AsyncClient,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "webconsole.errors")
    await mapper.get("/__fail/down")
    await mapper.get("/__fail/failed")
    logged = [(r.levelname, r.getMessage(), getattr(r, "endpoint", None), getattr(r, "error", None),
               getattr(r, "status", None)) for r in caplog.records if r.name == "webconsole.errors"]
    assert logged == [("WARNING", "backend unavailable", "", "connection refused", None),
                      ("ERROR", "backend error", "", None, 500)]
