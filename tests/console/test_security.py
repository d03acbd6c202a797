"""CSRF, origin checks and security headers, on every session store users run."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, csrf_from, login
from webconsole.web.core.deps import SESSION_COOKIE


@pytest.fixture
def app_client(store_app_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Every test here runs on each session store (memory, SQLite, Redis)."""
    return store_app_client


async def test_security_headers_on_every_page(app_client: httpx.AsyncClient) -> None:
    page = await app_client.get("/login")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "HX-Request" in page.headers["vary"]
    assert page.headers["x-request-id"]


async def test_authenticated_pages_are_not_cached_but_static_files_are(app_client: httpx.AsyncClient) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    home = await app_client.get("/")
    assert home.headers["cache-control"] == "no-store"
    script = await app_client.get("/static/js/console.js")
    assert script.status_code == 200 and "max-age" in script.headers["cache-control"]


async def test_no_inline_script_in_pages(app_client: httpx.AsyncClient) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    for path in ("/", "/login"):
        html = (await app_client.get(path)).text
        for chunk in html.split("<script")[1:]:
            assert chunk.lstrip().startswith("src="), f"inline script on {path}"
        assert " onclick=" not in html and " onload=" not in html


async def test_state_change_without_csrf_token_is_refused(app_client: httpx.AsyncClient) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    refused = await app_client.post("/logout", data={})
    assert refused.status_code == 403
    wrong = await app_client.post("/logout", data={"csrf_token": "not-the-token"})
    assert wrong.status_code == 403
    still_in = await app_client.get("/")
    assert still_in.status_code == 200


async def test_csrf_token_in_the_htmx_header_is_accepted(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    done = await app_client.post("/logout", headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert done.status_code == 204 and done.headers["hx-redirect"].endswith("/login")


async def test_foreign_origin_is_refused_even_with_the_token(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    refused = await app_client.post("/logout", data={"csrf_token": csrf},
                                    headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    same = await app_client.post("/logout", data={"csrf_token": csrf},
                                 headers={"Origin": "http://console.test"})
    assert same.status_code == 303


async def test_login_itself_needs_the_form_token(app_client: httpx.AsyncClient) -> None:
    refused = await app_client.post("/login", data={"user_id": ADMIN_ID, "password": ADMIN_PASSWORD})
    assert refused.status_code == 403
    assert SESSION_COOKIE not in app_client.cookies
    form = await app_client.get("/login")
    assert (await app_client.post("/login", data={
        "user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "csrf_token": csrf_from(form.text)})).status_code == 303


async def test_backend_strings_are_escaped(app_client: httpx.AsyncClient) -> None:
    form = await app_client.get("/login")
    page = await app_client.post("/login", data={
        "user_id": "<script>alert(1)</script>", "password": "whatever-123", "csrf_token": csrf_from(form.text)})
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
