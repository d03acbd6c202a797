"""Security review of the whole console: every route, every template, every response kind.

The route lists are not written by hand: they come from the application's own route table, so a
page added later is covered (or makes a test fail) without anyone editing this file.
"""

from __future__ import annotations

import asyncio
import html as html_module
import json
import logging
import re
import secrets
import uuid as uuid_module
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import websockets
from fastapi.routing import APIRoute, APIWebSocketRoute
from websockets.asyncio.client import connect

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, console_settings, csrf_from, login, wait_for
from tests.console.effects import BackendCalls
from webconsole.app import create_app
from webconsole.hanami.client import HanamiClient
from webconsole.hanami.errors import Conflict
from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE
from webconsole.web.core.deps import PRE_SESSION_COOKIE, SESSION_COOKIE, csrf_protect, require_admin

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
EVIL = "https://evil.example"
MEMBER_PASSWORD = "member-password-1"


# -- the route table -------------------------------------------------------------------------------


def _walk(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from _walk(list(nested.routes))
        else:
            yield route


def http_routes(app: Any) -> list[APIRoute]:
    return [route for route in _walk(app.routes) if isinstance(route, APIRoute)]


def websocket_routes(app: Any) -> list[Any]:
    return [route for route in _walk(app.routes)
            if isinstance(route, APIWebSocketRoute) or type(route).__name__ == "WebSocketRoute"]


def unsafe_routes(app: Any) -> list[tuple[str, APIRoute]]:
    return sorted(((method, route) for route in http_routes(app) for method in route.methods & UNSAFE),
                  key=lambda item: (item[1].path, item[0]))


def dependency_calls(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from dependency_calls(sub)


def fill(path: str) -> str:
    """A concrete URL for a route path: well-formed placeholder values that name nothing real."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if "uuid" in name:
            return str(uuid_module.uuid4())
        if name == "upload_id":
            return secrets.token_urlsafe(18)
        if name == "user_id":
            return "nobody_" + secrets.token_hex(3)
        if name == "project_id":
            return "noproject_" + secrets.token_hex(3)
        return "x" + secrets.token_hex(4)
    return re.sub(r"\{([a-z_]+)(?::[a-z]+)?\}", value, path)


def multipart_body(**fields: str) -> tuple[bytes, str]:
    """A multipart form (the strictest parser path: csrf_protect then reads the body itself)."""
    boundary = "review" + secrets.token_hex(8)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
             for name, value in fields.items()]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="csv"; filename="a.csv"\r\n'
        "Content-Type: text/csv\r\n\r\na,b\n1,2\n\r\n"
    )
    body = "".join(parts) + f"--{boundary}--\r\n"
    return body.encode(), f"multipart/form-data; boundary={boundary}"


# -- helpers: users and backend objects ------------------------------------------------------------


@asynccontextmanager
async def backend_admin(backend: Any) -> AsyncIterator[Any]:
    async with HanamiClient(backend.url) as hanami:
        yield hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)


@asynccontextmanager
async def member_account(backend: Any) -> AsyncIterator[str]:
    """A plain member of a fresh project (no Hanami admin rights)."""
    tag = secrets.token_hex(3)
    project, member = f"review_{tag}", f"reviewer_{tag}"
    async with backend_admin(backend) as admin:
        await admin.create_project(project, "Review project")
        await admin.create_user(member, "Reviewer", MEMBER_PASSWORD, False)
        await admin.assign_project(member, project, "member", False)
        try:
            yield member
        finally:
            await admin.delete_user(member)
            await admin.delete_project(project)


async def session_of(client: httpx.AsyncClient) -> Any:
    return await client.app.state.sessions.load(client.cookies.get(SESSION_COOKIE), touch=False)  # type: ignore[attr-defined]


# ================================================================================================
# CSRF and origin checks on every state change
# ================================================================================================


def test_every_state_changing_route_depends_on_the_csrf_check(backend) -> None:
    app = create_app(console_settings(backend.url))
    found = unsafe_routes(app)
    assert len(found) >= 20, "the route table walk found too few POST routes"
    missing = [f"{method} {route.path}" for method, route in found
               if csrf_protect not in set(dependency_calls(route.dependant))]
    assert missing == []


async def test_every_state_changing_route_refuses_a_request_without_the_session_csrf_token(
    app_client: httpx.AsyncClient,
) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    accepted = []
    for method, route in unsafe_routes(app_client.app):  # type: ignore[attr-defined]
        url = fill(route.path)
        for token in (None, "", "not-the-token"):
            fields = {"name": "review", "kind": "csv"}
            if token is not None:
                fields["csrf_token"] = token
            body, content_type = multipart_body(**fields)
            response = await app_client.request(method, url, content=body, headers={"Content-Type": content_type})
            if response.status_code != 403 or "did not come from this console" not in response.text:
                accepted.append(f"{method} {route.path} token={token!r}: {response.status_code}")
        # the same without any body at all, and with an urlencoded form
        for kwargs in ({}, {"data": {"csrf_token": "wrong"}}):
            response = await app_client.request(method, url, **kwargs)
            if response.status_code not in (400, 403):
                accepted.append(f"{method} {route.path} {kwargs}: {response.status_code}")
    assert accepted == []
    assert (await app_client.get("/")).status_code == 200, "the session survived every refused request"


async def test_every_state_changing_route_refuses_a_foreign_origin_even_with_the_token(
    app_client: httpx.AsyncClient,
) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    accepted = []
    for method, route in unsafe_routes(app_client.app):  # type: ignore[attr-defined]
        url = fill(route.path)
        body, content_type = multipart_body(csrf_token=csrf, name="review", kind="csv")
        for headers in ({"Origin": EVIL}, {"Origin": "null"}, {"Referer": EVIL + "/page"},
                        {"Origin": "http://console.test.evil.example"}, {"Origin": "https://console.test"}):
            response = await app_client.request(
                method, url, content=body,
                headers={"Content-Type": content_type, "X-CSRF-Token": csrf, **headers},
            )
            if response.status_code != 403 or "another site" not in response.text:
                accepted.append(f"{method} {route.path} {headers}: {response.status_code}")
    assert accepted == []
    assert (await app_client.get("/")).status_code == 200


async def test_login_form_token_is_bound_to_the_browser(app_client: httpx.AsyncClient) -> None:
    """Before login the token is the pre-session cookie: a token from another browser is refused."""
    other = await app_client.get("/login")
    foreign_token = csrf_from(other.text)
    async with httpx.AsyncClient(transport=app_client._transport, base_url="http://console.test") as victim:
        await victim.get("/login")
        response = await victim.post("/login", data={"user_id": ADMIN_ID, "password": ADMIN_PASSWORD,
                                                     "csrf_token": foreign_token})
        assert response.status_code == 403
        assert SESSION_COOKIE not in response.cookies
        # and the pre-session cookie itself is strict and HttpOnly
    cookie = other.headers["set-cookie"]
    assert cookie.startswith(PRE_SESSION_COOKIE) and "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()


# ================================================================================================
# Websockets: Origin, session cookie and CSRF token, and the headers of their HTTP refusals
# ================================================================================================


def test_the_app_has_exactly_the_websockets_this_review_covers(backend) -> None:
    app = create_app(console_settings(backend.url))
    assert sorted(route.path for route in websocket_routes(app)) == ["/clusters/{uuid}/direct/ws"]


async def _login_on(server: ConsoleServer) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
        return client.cookies[SESSION_COOKIE], csrf


async def test_websockets_refuse_a_foreign_origin_and_a_missing_session(console_server: ConsoleServer) -> None:
    cookie, _csrf = await _login_on(console_server)
    for route in websocket_routes(console_server.app):
        url = "ws://127.0.0.1:%d%s" % (console_server.port, fill(route.path))
        for origin, session_cookie in ((EVIL, cookie), ("null", cookie), (console_server.url, None),
                                       (console_server.url, "forged-" + secrets.token_urlsafe(20))):
            headers = {"Cookie": f"{SESSION_COOKIE}={session_cookie}"} if session_cookie else {}
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with connect(url, origin=origin, additional_headers=headers, open_timeout=10):  # type: ignore[arg-type]
                    pass
            assert refused.value.response.status_code == 403, (route.path, origin)


async def test_websocket_refusals_carry_the_security_headers(console_server: ConsoleServer) -> None:
    """A refused handshake is an HTTP response like any other: it gets the strict headers too."""
    route = websocket_routes(console_server.app)[0]
    url = "ws://127.0.0.1:%d%s" % (console_server.port, fill(route.path))
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(url, origin=EVIL, open_timeout=10):  # type: ignore[arg-type]
            pass
    headers = refused.value.response.headers
    assert refused.value.response.status_code == 403
    assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", "")
    assert headers.get("X-Content-Type-Options") == "nosniff"
    assert headers.get("Cache-Control") == "no-store"


async def test_websocket_without_the_csrf_token_is_closed_before_touching_the_backend(
    console_server: ConsoleServer, backend,
) -> None:
    cookie, csrf = await _login_on(console_server)
    async with backend_admin(backend) as admin:
        cluster = await admin.create_cluster("review_ws_" + secrets.token_hex(3), EXAMPLE_CSV_TEMPLATE)
        try:
            url = "ws://127.0.0.1:%d/clusters/%s/direct/ws" % (console_server.port, cluster["uuid"])
            for hello in ({"op": "open"}, {"op": "open", "csrf": ""}, {"op": "open", "csrf": "x" + csrf[1:]},
                          {"op": "open", "csrf": 12345}):
                async with connect(url, origin=console_server.url,  # type: ignore[arg-type]
                                   additional_headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}) as ws:
                    await ws.send(json.dumps(hello))
                    messages = []
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        while True:
                            messages.append(await asyncio.wait_for(ws.recv(), 10))
                    assert closed.value.rcvd is not None and closed.value.rcvd.code != 1000, hello
                    assert not any("Checking the cluster" in str(m) for m in messages), hello
                    assert not any(csrf in str(m) for m in messages)
            # the cluster was never switched to direct mode: a task-mode switch answers 409
            assert (await admin.get_cluster(cluster["uuid"]))
            with pytest.raises(Conflict):
                await admin.set_mode(cluster["uuid"], "TASK")
        finally:
            await admin.delete_cluster(cluster["uuid"])


# ================================================================================================
# Open redirects: every next= the console accepts
# ================================================================================================

# What browsers do with a URL before resolving it (WHATWG URL: tab and newlines vanish anywhere,
# backslashes count as slashes in http(s) URLs, leading C0 controls and spaces are stripped).
def browser_target(value: str, base: str = "http://console.test/page") -> str:
    from urllib.parse import urljoin

    cleaned = re.sub(r"[\t\n\r]", "", value).lstrip("".join(map(chr, range(0x21)))).replace("\\", "/")
    return urlsplit(urljoin(base, cleaned)).netloc


REDIRECT_PAYLOADS = [
    "//evil.example", "https://evil.example", "/\\evil.example", "\\\\evil.example", "/\t/evil.example",
    "/\n/evil.example", "/\r\n/evil.example", "/\t\\evil.example", " //evil.example", "\t//evil.example",
    "javascript:alert(1)", "/%09/evil.example", "///evil.example", "http:evil.example",
]


def test_safe_next_only_gives_same_site_paths_as_a_browser_reads_them() -> None:
    from webconsole.web.core.render import safe_next

    for payload in REDIRECT_PAYLOADS:
        result = safe_next(payload)
        assert browser_target(result) == "console.test", (payload, result)
    assert safe_next("/clusters?q=a&page=2") == "/clusters?q=a&page=2"


async def test_login_next_never_leads_off_site(app_client: httpx.AsyncClient) -> None:
    for payload in REDIRECT_PAYLOADS:
        page = await app_client.get("/login", params={"next": payload})
        value = re.search(r'name="next" value="([^"]*)"', page.text)
        assert value is not None
        assert browser_target(html_module.unescape(value.group(1))) == "console.test", payload
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    for payload in REDIRECT_PAYLOADS:
        # logged in: GET /login?next= redirects at once
        response = await app_client.get("/login", params={"next": payload})
        assert response.status_code == 303
        assert browser_target(response.headers["location"]) == "console.test", payload
    # the login POST itself, also as htmx (HX-Redirect is followed by script, unencoded)
    async with httpx.AsyncClient(transport=app_client._transport, base_url="http://console.test") as other:
        for payload in REDIRECT_PAYLOADS[:8]:
            other.cookies.clear()
            form = await other.get("/login")
            response = await other.post("/login", headers={"HX-Request": "true"}, data={
                "user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "next": payload, "csrf_token": csrf_from(form.text)})
            target = response.headers.get("hx-redirect") or response.headers.get("location")
            assert target and browser_target(target) == "console.test", (payload, target)
    assert csrf


async def test_task_pages_next_never_leads_off_site(app_client: httpx.AsyncClient) -> None:
    """tasks/new and the task delete confirmation carry ?next= into a form, a link and HX-Redirect."""
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    bad = []
    for payload in REDIRECT_PAYLOADS:
        page = await app_client.get("/tasks/new", params={"next": payload})
        assert page.status_code == 200
        for value in re.findall(r'name="next" value="([^"]*)"', page.text):
            if browser_target(html_module.unescape(value)) != "console.test":
                bad.append((payload, value))
    assert bad == []


# ================================================================================================
# Templates: escaping, no inline script/style/handlers anywhere
# ================================================================================================


def all_templates() -> list[Path]:
    found = sorted(TEMPLATES.rglob("*.html"))
    assert len(found) >= 30
    return found


def test_no_template_turns_off_escaping_or_inlines_script_or_style() -> None:
    problems = []
    checks = {
        r"\|\s*safe\b": "|safe",
        r"\bMarkup\b": "Markup",
        r"autoescape\s+false": "autoescape off",
        r"\{%-?\s*autoescape": "autoescape block",
        r"\sstyle\s*=": "style attribute",
        r"<style[\s>]": "<style> element",
        r"\shx-on[:\-=]": "hx-on",
        r"\son[a-z]+\s*=": "on* handler",
        r"javascript:": "javascript: URL",
        r"hx-vals\s*=\s*['\"]\s*js:": "hx-vals js:",
    }
    for path in all_templates():
        text = path.read_text()
        for pattern, label in checks.items():
            if re.search(pattern, text, re.IGNORECASE):
                problems.append(f"{path.relative_to(ROOT)}: {label}")
        for match in re.finditer(r"<script\b([^>]*)>(.*?)</script>", text, re.DOTALL | re.IGNORECASE):
            attributes, content = match.group(1), match.group(2).strip()
            if 'type="application/json"' in attributes:
                # data islands: only one expression, through |tojson (which escapes <, >, &, ')
                if not re.fullmatch(r"\{\{.*\|\s*tojson\s*\}\}", content, re.DOTALL) or "|safe" in content:
                    problems.append(f"{path.relative_to(ROOT)}: JSON island not built with |tojson")
            elif content or "src=" not in attributes:
                problems.append(f"{path.relative_to(ROOT)}: inline script")
    assert problems == []


def test_python_code_never_marks_backend_text_as_safe_html() -> None:
    problems = []
    for path in sorted((ROOT / "webconsole" / "web").glob("*.py")) + [ROOT / "webconsole" / "app.py"]:
        text = path.read_text()
        for pattern in (r"\bMarkup\(", r"markupsafe", r"autoescape\s*=\s*False", r"HTMLResponse\(\s*f?[\"']",
                        r"\|safe"):
            if re.search(pattern, text):
                problems.append(f"{path.relative_to(ROOT)}: {pattern}")
    assert problems == []


def test_static_scripts_never_evaluate_strings() -> None:
    problems = []
    for path in sorted((ROOT / "static" / "js").glob("*.js")):
        text = path.read_text()
        for pattern in (r"\beval\(", r"new Function\(", r"setTimeout\(\s*['\"]", r"setInterval\(\s*['\"]",
                        r"document\.write\(", r"\.setAttribute\(\s*['\"]on", r"\.style\.cssText"):
            if re.search(pattern, text):
                problems.append(f"{path.name}: {pattern}")
    assert problems == []


async def test_backend_and_user_strings_are_escaped_in_forms_and_errors(app_client: httpx.AsyncClient) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    payload = '<img src=x onerror="alert(1)">'
    # the template editor echoes the broken line (htmx block and full page)
    for headers in ({}, {"HX-Request": "true"}):
        response = await app_client.post("/clusters/new/check", headers=headers, data={
            "template": f"version: 1\nsettings:\n  {payload}\n", "name": payload,
            "csrf_token": (await session_of(app_client)).csrf_token})
        assert "<img src=x" not in response.text
        assert "&lt;img src=x" in response.text
    # error pages that quote the URL or query
    for url in (f"/projects/{payload}", f"/errors?user_id={payload}", f"/results/{payload}",
                f"/clusters?q={payload}", f"/audit?user={payload}&action={payload}"):
        response = await app_client.get(url)
        assert "<img src=x" not in response.text, url


# ================================================================================================
# Strict headers on every response, and the token never anywhere outside the server
# ================================================================================================


def assert_strict_headers(response: httpx.Response, *, static: bool = False) -> None:
    where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
    headers = response.headers
    csp = headers.get("content-security-policy", "")
    directives = {part.strip().split(" ")[0]: part.strip() for part in csp.split(";") if part.strip()}
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp and "*" not in csp, where
    assert directives.get("script-src") == "script-src 'self'", where
    assert directives.get("style-src") == "style-src 'self'", where
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", where
    assert directives.get("object-src") == "object-src 'none'", where
    assert "base-uri" in directives and "form-action" in directives and "default-src" in directives, where
    assert headers.get("x-content-type-options") == "nosniff", where
    assert headers.get("referrer-policy") == "same-origin", where
    assert headers.get("x-frame-options") == "DENY", where
    if not static:
        assert headers.get("cache-control") == "no-store", where


class LogTap(logging.Handler):
    """Every log record of the process, formatted and raw (message, args, extra fields)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[str, str]] = []  # (logger name, everything the record holds)

    def emit(self, record: logging.LogRecord) -> None:
        parts = [repr(record.__dict__)]
        try:
            parts.append(record.getMessage())
        except Exception:  # noqa: BLE001 - a broken record still has its raw fields
            pass
        if record.exc_info:
            import traceback
            parts.append("".join(traceback.format_exception(*record.exc_info)))
        self.records.append((record.name, "\n".join(parts)))

    @property
    def texts(self) -> list[str]:
        return [text for _, text in self.records]

    def holding(self, secret: str) -> set[str]:
        """Loggers whose records contain ``secret``. The emulator runs in this process and is the
        backend, which of course receives the token: its loggers (its own, and the websockets
        server side: the console's browser websockets never carry the Hanami token) are not the
        console's."""
        backend = ("webconsole.emulator", "websockets.server")
        return {name for name, text in self.records if secret in text and not name.startswith(backend)}


@asynccontextmanager
async def tapped_logs() -> AsyncIterator[LogTap]:
    tap = LogTap()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(tap)
    root.setLevel(logging.DEBUG)
    try:
        yield tap
    finally:
        root.removeHandler(tap)
        root.setLevel(old_level)


def crawl_urls(app: Any, real: dict[str, str]) -> list[tuple[str, str]]:
    """(method, url) for every route: GETs with real ids where we have them, POSTs with fake ids."""
    urls: list[tuple[str, str]] = []
    for route in http_routes(app):
        for method in sorted(route.methods - {"HEAD"}):
            if route.name in ("logout", "login", "switch_project"):
                continue
            if method == "GET":
                path = re.sub(r"\{([a-z_]+)\}", lambda m: real.get(m.group(1), "{%s}" % m.group(1)), route.path)
                urls.append((method, fill(path)))
            urls.append((method, fill(route.path)))
    return urls


async def test_every_response_has_strict_headers_and_no_response_or_log_carries_the_token(
    app_client: httpx.AsyncClient, demo_files,
) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    session = await session_of(app_client)
    token = session.token
    secrets_to_find = [token, token.split(".")[-1], session.id]
    name = "review_crawl_" + secrets.token_hex(3)
    created = await app_client.post("/clusters", data={"name": name, "template": EXAMPLE_CSV_TEMPLATE,
                                                       "csrf_token": csrf})
    assert created.status_code == 303
    cluster_uuid = created.headers["location"].rstrip("/").rsplit("/", 1)[-1]
    real = {"uuid": cluster_uuid, "cluster_uuid": cluster_uuid, "user_id": ADMIN_ID}
    responses: list[httpx.Response] = []
    try:
        async with tapped_logs() as tap:
            for method, url in crawl_urls(app_client.app, real):  # type: ignore[attr-defined]
                for hx in ({}, {"HX-Request": "true"}):
                    if method == "GET":
                        responses.append(await app_client.get(url, headers=hx))
                    else:
                        body, content_type = multipart_body(csrf_token=csrf, name="x", kind="csv")
                        responses.append(await app_client.request(
                            method, url, content=body, headers={**hx, "Content-Type": content_type}))
            # the odd ones: static, metrics, health, unknown pages, wrong method, a malformed request
            for method, url in (("GET", "/static/app.css"), ("GET", "/static/nope.js"), ("GET", "/metrics"),
                                ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/no/such/page"),
                                ("GET", "/logout"), ("PUT", "/clusters"), ("GET", "/results?page=x")):
                responses.append(await app_client.request(method, url))
            # an expired backend token: the error path that ends the session
            async with httpx.AsyncClient(transport=app_client._transport, base_url="http://console.test") as anon:
                responses.append(await anon.get("/clusters"))  # anonymous: 303 to the login page
                responses.append(await anon.get("/clusters", headers={"HX-Request": "true"}))
        failures = [f"{r.request.method} {r.request.url} -> {r.status_code}" for r in responses if r.status_code >= 500]
        assert failures == [], "server errors while crawling"
        for response in responses:
            static = response.request.url.path.startswith("/static/") and response.status_code == 200
            assert_strict_headers(response, static=static)
            blob = response.content.decode("utf-8", "replace") + repr(response.headers.raw)
            for secret in secrets_to_find:
                assert secret not in blob, f"secret in {response.request.method} {response.request.url}"
        assert len(tap.records) > 10, "the log tap saw nothing"
        for secret in secrets_to_find[:2]:
            assert tap.holding(secret) == set(), "the Hanami token reached a log record"
    finally:
        await app_client.post(f"/clusters/{cluster_uuid}/delete", data={"csrf_token": csrf})


def test_value_objects_and_errors_never_show_the_token() -> None:
    from webconsole.hanami.errors import BackendError, error_for_status, scrub
    from webconsole.hanami.models import TokenInfo
    from webconsole.sessions.manager import Session

    token = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2VjcmV0LXNpZ25hdHVyZQ"
    info = TokenInfo(id="a", name="b", is_admin=False, token=token, expires_at=1.0)
    session = Session(id="sid", user_id="u", user_name="n", is_admin=False, is_project_admin=False,
                      project_id="p", role="r", token=token, token_expires_at=1.0, csrf_token="c",
                      created_at=0.0, last_active=0.0)
    api = HanamiClient("http://127.0.0.1:1").api(token)
    for thing in (info, session, api):
        assert token not in repr(thing) and token not in str(thing)
    # the session id (the cookie) and the CSRF token are credentials too
    session.id, session.csrf_token = "session-id-" + secrets.token_hex(8), "csrf-" + secrets.token_hex(8)
    assert session.id not in repr(session) and session.csrf_token not in repr(session)
    error = error_for_status(500, scrub(f"boom {token}", token), "GET", "v1/cluster")
    assert isinstance(error, BackendError)
    assert token not in repr(error) and token not in str(error) and token not in error.message


async def test_no_page_with_a_session_in_it_is_publicly_cacheable(app_client: httpx.AsyncClient) -> None:
    """Web cache deception: a logged-in page (it carries the CSRF token) under any "/static/"-looking
    URL must still be no-store; only real static files are cacheable."""
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    for url in ("/clusters/static/x.css", "/x/static/y.js", "/static/nope.js", "/static/../clusters",
                "/datasets/static/a.png"):
        response = await app_client.get(url)
        assert response.headers["cache-control"] == "no-store", url
        if csrf in response.text:
            assert "public" not in response.headers["cache-control"], url
    assert "public" in (await app_client.get("/static/app.css")).headers["cache-control"]


# ================================================================================================
# Sessions: server-side expiry, fixation, logout, cookie flags, the login rate limit
# ================================================================================================


@asynccontextmanager
async def console(backend: Any, base_url: str = "http://console.test", **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(console_settings(backend.url, **overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("10.9.8.7", 5555))
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


async def test_session_cookie_flags_over_https_and_http(backend) -> None:
    for base, secure in (("https://console.test", True), ("http://console.test", False)):
        async with console(backend, base_url=base) as client:
            form = await client.get("/login")
            response = await client.post("/login", data={"user_id": ADMIN_ID, "password": ADMIN_PASSWORD,
                                                         "csrf_token": csrf_from(form.text)})
            assert response.status_code == 303
            cookie = next(v for v in response.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE + "="))
            flags = [part.strip().lower() for part in cookie.split(";")]
            assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
            assert ("secure" in flags) is secure, cookie
            assert not any(flag.startswith(("domain=", "expires=", "max-age=")) for flag in flags), cookie
            value = cookie.split(";")[0].split("=", 1)[1]
            assert len(value) >= 40 and "." not in value  # opaque random id, not a JWT or a signed blob
            if secure:
                assert "max-age=63072000" in (await client.get("/login")).headers["strict-transport-security"]


async def test_login_gives_a_fresh_session_id_whatever_cookie_the_browser_brought(app_client: httpx.AsyncClient) -> None:
    planted = secrets.token_urlsafe(32)
    app_client.cookies.set(SESSION_COOKIE, planted, domain="console.test")
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    first = app_client.cookies[SESSION_COOKIE]
    assert first != planted
    # logging in again from a logged-in browser also gives a new id
    session = await session_of(app_client)
    again = await app_client.post("/login", data={"user_id": ADMIN_ID, "password": ADMIN_PASSWORD,
                                                  "csrf_token": session.csrf_token})
    assert again.status_code == 303
    assert app_client.cookies[SESSION_COOKIE] not in (first, planted)
    # the session the browser had before is over on the server (a copy of its cookie is worthless)
    assert await app_client.app.state.sessions.load(first) is None  # type: ignore[attr-defined]


async def test_project_switch_rotates_the_session_and_the_csrf_token(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    old_cookie = app_client.cookies[SESSION_COOKIE]
    response = await app_client.post("/project", data={"project_id": "admin", "csrf_token": csrf})
    assert response.status_code == 303
    new_cookie = app_client.cookies[SESSION_COOKIE]
    assert new_cookie != old_cookie
    assert await app_client.app.state.sessions.load(old_cookie) is None  # type: ignore[attr-defined]
    # the old CSRF token no longer works
    refused = await app_client.post("/clusters/new/check", data={"template": "", "csrf_token": csrf})
    assert refused.status_code == 403
    new_csrf = (await session_of(app_client)).csrf_token
    assert new_csrf != csrf


async def test_logout_ends_the_session_on_the_server_even_for_a_copied_cookie(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    stolen = app_client.cookies[SESSION_COOKIE]
    response = await app_client.post("/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    cleared = [v for v in response.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE + "=")]
    assert len(cleared) == 1 and cleared[0].startswith(SESSION_COOKIE + '=""'), cleared
    assert "max-age=0" in cleared[0].lower(), cleared
    async with httpx.AsyncClient(transport=app_client._transport, base_url="http://console.test") as thief:
        thief.cookies.set(SESSION_COOKIE, stolen)
        assert (await thief.get("/clusters")).status_code == 303
        assert (await thief.post("/clusters/new/check", data={"csrf_token": csrf})).status_code in (303, 403)


async def test_sessions_expire_on_the_server_when_idle(backend) -> None:
    async with console(backend, session_idle_timeout=2, session_absolute_timeout=3600) as client:
        await login(client, ADMIN_ID, ADMIN_PASSWORD)
        cookie = client.cookies[SESSION_COOKIE]

        async def expired() -> bool:
            # background polls do not count as activity, so they cannot keep the session alive
            response = await client.get("/clusters", headers={"X-Console-Poll": "1"})
            return response.status_code == 303

        await wait_for(expired, timeout=15, interval=0.25)
        assert await client.app.state.sessions.load(cookie) is None  # type: ignore[attr-defined]
        raw_keys = await client.app.state.store.keys("session:")  # type: ignore[attr-defined]
        assert all(cookie not in key for key in raw_keys)


async def test_sessions_end_at_the_absolute_limit_even_when_active(backend) -> None:
    async with console(backend, session_idle_timeout=2, session_absolute_timeout=3) as client:
        await login(client, ADMIN_ID, ADMIN_PASSWORD)

        async def ended() -> bool:
            return (await client.get("/clusters")).status_code == 303  # real activity every time

        await wait_for(ended, timeout=15, interval=0.25)


async def test_login_rate_limit_per_client_address_and_same_message(backend) -> None:
    async with console(backend, login_rate_limit=3) as client:
        messages = set()
        for attempt in range(3):
            form = await client.get("/login")
            response = await client.post("/login", data={
                "user_id": f"someone_{attempt}_{secrets.token_hex(2)}", "password": "wrong-password-x",
                "csrf_token": csrf_from(form.text)})
            assert response.status_code == 401
            messages.add(re.search(r'role="alert">([^<]*)<', response.text).group(1))  # type: ignore[union-attr]
        # a wrong password of a real user reads exactly the same
        assert messages == {"Wrong user id or password."}
        form = await client.get("/login")
        limited = await client.post("/login", data={"user_id": ADMIN_ID, "password": ADMIN_PASSWORD,
                                                    "csrf_token": csrf_from(form.text)})
        assert limited.status_code == 429, "the right password is refused too while the client is limited"
        assert SESSION_COOKIE not in limited.cookies


# ================================================================================================
# Admin-only routes are refused on the server for members
# ================================================================================================

ADMIN_PREFIXES = ("/projects", "/users", "/errors")


def admin_routes(app: Any) -> list[tuple[str, APIRoute]]:
    return sorted(((method, route) for route in http_routes(app) for method in route.methods - {"HEAD"}
                   if require_admin in set(dependency_calls(route.dependant))),
                  key=lambda item: (item[1].path, item[0]))


def test_every_administration_route_depends_on_the_admin_check(backend) -> None:
    app = create_app(console_settings(backend.url))
    guarded = {route.path for _, route in admin_routes(app)}
    sections = {route.path for route in http_routes(app) if route.path.startswith(ADMIN_PREFIXES)}
    assert sections and sections <= guarded, sorted(sections - guarded)


async def test_members_are_refused_every_admin_route_on_the_server(app_client: httpx.AsyncClient, backend) -> None:
    sneaky = "sneaky_" + secrets.token_hex(3)
    async with member_account(backend) as member:
        csrf = await login(app_client, member, MEMBER_PASSWORD)
        home = await app_client.get("/")
        assert 'class="admin-link"' not in home.text
        allowed = []
        for method, route in admin_routes(app_client.app):  # type: ignore[attr-defined]
            url = fill(route.path).replace("nobody_", "zz").replace("noproject_", "zz")
            if "{user_id}" in route.path:
                url = re.sub(r"/users/[^/]+", f"/users/{ADMIN_ID}", url, count=1)
            for hx in ({}, {"HX-Request": "true"}):
                if method == "GET":
                    response = await app_client.get(url, headers=hx)
                else:
                    response = await app_client.post(url, headers=hx, data={
                        "csrf_token": csrf, "id": sneaky, "name": "Sneaky User", "password": "password-123",
                        "is_admin": "1", "project_id": "admin", "role": "admin", "is_project_admin": "1"})
                if response.status_code != 403:
                    allowed.append(f"{method} {url} {hx}: {response.status_code}")
        assert allowed == []
        async with backend_admin(backend) as admin:
            assert sneaky not in {row["id"] for row in (await admin.list_users()).records()}
            assert sneaky not in {row["id"] for row in (await admin.list_projects()).records()}
            assert ADMIN_ID in {row["id"] for row in (await admin.list_users()).records()}


# ================================================================================================
# Uploads: size limits while reading, temp files cleaned, nothing reaches Hanami before validation
# ================================================================================================


def upload_parts(csrf: str, kind: str, name: str, files: dict[str, tuple[str, bytes]]) -> dict[str, Any]:
    return {"data": {"csrf_token": csrf, "kind": kind, "name": name},
            "files": {field: (filename, data, "application/octet-stream") for field, (filename, data) in files.items()}}


def leftovers(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


async def test_broken_or_oversized_uploads_never_reach_hanami_and_leave_no_files(backend, tmp_path: Path, demo_files) -> None:
    upload_dir = tmp_path / "uploads"
    upload_dir.mkdir()
    async with console(backend, upload_dir=str(upload_dir), max_upload_bytes=4096) as client:
        csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
        calls = BackendCalls(client.app)  # type: ignore[attr-defined]
        name = "review upload " + secrets.token_hex(3)
        good_labels = demo_files.small_labels.read_bytes()
        cases = [
            ("mnist", {"images": ("../../evil.idx", b"\x00\x00\x08\x03 not an idx file"),
                       "labels": ("labels.idx", good_labels[:1000])}),
            ("mnist", {"images": ("images.idx", b"\x00" * 10_000), "labels": ("labels.idx", b"\x00" * 16)}),
            ("csv", {"csv": ("../../../evil.csv", b"a,b\n1,2\n3\n")}),
            ("csv", {"csv": ("big.csv", b"a,b\n" + b"1,2\n" * 5000)}),
            ("csv", {"csv": ("crlf.csv", b"a,b\r\n1,2\r\n")}),
        ]
        for kind, files in cases:
            response = await client.post("/datasets/upload", **upload_parts(csrf, kind, name, files))
            assert response.status_code in (400, 413, 422), (kind, list(files), response.status_code)
            assert leftovers(upload_dir) == [], (kind, list(files))
        # a refused name is refused before anything else, too
        response = await client.post("/datasets/upload", **upload_parts(
            csrf, "csv", "true", {"csv": ("ok.csv", b"a,b\n1,2\n")}))
        assert response.status_code == 422
        assert calls.writes() == [], "a refused upload reached Hanami"
        mnist_calls = [call for call in calls.calls if "dataset" in call or "mnist" in call or "csv" in call]
        assert not any(call.startswith(("POST", "PUT", "DELETE")) for call in mnist_calls)
        assert not (tmp_path / "evil.idx").exists() and not (tmp_path / "evil.csv").exists()
        assert not (upload_dir.parent / "evil.csv").exists()


async def test_a_good_upload_with_a_hostile_filename_stays_in_its_folder_and_is_cleaned_up(
    backend, tmp_path: Path,
) -> None:
    upload_dir = tmp_path / "uploads"
    upload_dir.mkdir()
    async with console(backend, upload_dir=str(upload_dir)) as client:
        csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
        name = "review ok " + secrets.token_hex(3)
        response = await client.post("/datasets/upload", **upload_parts(
            csrf, "csv", name, {"csv": ("../../../../review-escape.csv", b"test_input,test_output\n1,2\n3,4\n")}))
        assert response.status_code == 303, response.text[:500]
        status_url = response.headers["location"]

        async def finished() -> str | None:
            page = await client.get(status_url)
            phase = re.search(r'data-phase="([a-z]+)"', page.text)
            return phase.group(1) if phase and phase.group(1) not in ("validating", "sending", "finalising") else None

        assert await wait_for(finished, timeout=60) == "done"
        assert leftovers(upload_dir) == []
        assert not (tmp_path / "review-escape.csv").exists() and not Path("/tmp/review-escape.csv").exists()
        # the status page belongs to this session only
        async with httpx.AsyncClient(transport=client._transport, base_url="http://console.test") as other:
            other_csrf = await login(other, ADMIN_ID, ADMIN_PASSWORD)
            assert (await other.get(status_url)).status_code == 404
            assert (await other.post(status_url + "/cancel", data={"csrf_token": other_csrf})).status_code == 404
        async with backend_admin(backend) as admin:
            for row in (await admin.list_datasets()).records():
                if row.get("name") == name:
                    await admin.delete_dataset(row["uuid"])


async def _consumed_before_answer(client: httpx.AsyncClient, url: str, csrf: str, total: int, field: str,
                                  extra: dict[str, str]) -> tuple[int, int]:
    """POST a multipart body of ``total`` bytes WITHOUT Content-Length (chunked); how much did the
    console read before answering?"""
    boundary = "review" + secrets.token_hex(6)
    head = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                   for k, v in {"csrf_token": csrf, **extra}.items())
    head += f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="big.csv"\r\n\r\na,b\n'
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        chunk = b"1,2\n" * 16384  # 64 KiB
        data = head.encode()
        sent += len(data)
        yield data
        while sent < total:
            sent += len(chunk)
            yield chunk
        tail = f"\r\n--{boundary}--\r\n".encode()
        sent += len(tail)
        yield tail

    response = await client.post(url, content=body(), headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}", "X-CSRF-Token": csrf})
    return sent, response.status_code


@pytest.mark.parametrize("target", ["datasets_upload_create", "direct_io_replay"])
async def test_upload_size_limit_holds_for_a_body_without_content_length(backend, tmp_path: Path, target: str) -> None:
    """The limit must stop the transfer while it is read, not after the whole body sits on disk."""
    limit = 64 * 1024
    async with console(backend, upload_dir=str(tmp_path), max_upload_bytes=limit) as client:
        csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
        url = client.app.url_path_for(target, **({"uuid": str(uuid_module.uuid4())} if target == "direct_io_replay" else {}))  # type: ignore[attr-defined]
        total = 24 * 1024 * 1024
        consumed, status = await _consumed_before_answer(
            client, url, csrf, total, "csv", {"kind": "csv", "name": "review big " + secrets.token_hex(2)})
        assert status in (400, 413, 422), status
        # a few limits' worth (two files per form plus a margin) may be read; not 24 MB
        assert consumed <= 2 * limit + 2 * 1024 * 1024, f"read {consumed} bytes of a form limited to {limit} per file"


# ================================================================================================
# Redirect targets are paths, never URLs built from the request's Host header
# ================================================================================================

SPOOFED = {"Host": "evil.example"}


def redirect_target(response: httpx.Response) -> str:
    return (response.headers.get("location") or response.headers.get("hx-redirect")
            or response.headers.get("hx-push-url") or "")


async def test_cluster_redirects_are_paths_whatever_the_host_header(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    name = "review_host_" + secrets.token_hex(3)
    created = await app_client.post("/clusters", headers=SPOOFED,
                                    data={"name": name, "template": EXAMPLE_CSV_TEMPLATE, "csrf_token": csrf})
    assert created.status_code == 303
    target = redirect_target(created)
    cluster_uuid = target.rstrip("/").rsplit("/", 1)[-1]
    try:
        assert target.startswith("/clusters/"), target
        saved = await app_client.post(f"/clusters/{cluster_uuid}/save", headers=SPOOFED,
                                      data={"checkpoint_name": "review point", "csrf_token": csrf})
        assert saved.status_code == 303 and redirect_target(saved).startswith("/clusters/"), redirect_target(saved)
    finally:
        deleted = await app_client.post(f"/clusters/{cluster_uuid}/delete", headers=SPOOFED, data={"csrf_token": csrf})
        assert deleted.status_code == 303 and redirect_target(deleted) == "/clusters", redirect_target(deleted)


async def test_other_sections_redirect_to_paths_whatever_the_host_header(app_client: httpx.AsyncClient, backend) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    project = "review_proj_" + secrets.token_hex(3)
    absolute = []
    checks = [
        ("POST", "/projects", {"id": project, "name": "Review Project"}),
        ("POST", f"/projects/{project}/delete", {}),
    ]
    async with backend_admin(backend) as admin:
        cluster = await admin.create_cluster("review_host_io_" + secrets.token_hex(3), EXAMPLE_CSV_TEMPLATE)
    checks.append(("POST", f"/clusters/{cluster['uuid']}/direct/task-mode", {}))
    try:
        for method, url, data in checks:
            for hx in ({}, {"HX-Request": "true"}):
                if hx and "delete" in url:
                    continue
                response = await app_client.request(method, url, headers={**SPOOFED, **hx},
                                                    data={"csrf_token": csrf, **data})
                target = redirect_target(response)
                if target and not target.startswith("/"):
                    absolute.append(f"{method} {url} {hx}: {target}")
    finally:
        async with backend_admin(backend) as admin:
            await admin.delete_cluster(cluster["uuid"])
            if project in {row["id"] for row in (await admin.list_projects()).records()}:
                await admin.delete_project(project)
    assert absolute == []


async def test_anonymous_requests_cannot_grow_the_metrics_label_set(app_client: httpx.AsyncClient) -> None:
    """/metrics is public: arbitrary methods or paths must not become new label values."""
    tag = secrets.token_hex(4).upper()
    for index in range(5):
        await app_client.request(f"X{tag}{index}", "/")
        await app_client.request(f"X{tag}{index}", f"/no/such/{tag}{index}")
    text = (await app_client.get("/metrics")).text
    assert tag not in text
    assert_strict_headers(await app_client.get("/metrics"))


def test_content_disposition_filenames_from_backend_names_are_inert() -> None:
    """Download names built from backend names: no quotes, CR/LF, separators or non-ASCII."""
    from webconsole.web.tasks import results

    hostile = ['a"b', "x\r\nSet-Cookie: s=1", "../../etc/passwd", "名前", "a;b=c", "", None, "\\\\server\\share",
               'q" ; filename*=UTF-8\'\'evil.exe']
    for name in hostile:
        for extension in ("json", "csv"):
            filename = results._safe_filename({"name": name, "uuid": str(uuid_module.uuid4())}, extension)
            assert re.fullmatch(r"[A-Za-z0-9_-]+-[A-Za-z0-9_-]*\.(json|csv)", filename), (name, filename)
    # and every Content-Disposition the console builds goes through such a sanitiser
    for path in sorted((ROOT / "webconsole" / "web").glob("*.py")):
        for line in path.read_text().splitlines():
            if "Content-Disposition" in line and "filename=" in line:
                assert "_safe_filename(" in line, f"{path.name}: {line.strip()}"


def test_content_disposition_filename_survives_a_hostile_backend_uuid() -> None:
    """The uuid in the download name comes from the backend's answer too (not the checked URL)."""
    from webconsole.web.tasks import results

    for extension in ("json", "csv"):
        filename = results._safe_filename({"name": "ok", "uuid": 'a"\r\nX: y'}, extension)
        assert re.fullmatch(r"[A-Za-z0-9_-]+-[A-Za-z0-9_-]*\.(json|csv)", filename), filename


async def test_anonymous_multipart_posts_are_refused_before_their_body_is_read(backend, tmp_path: Path) -> None:
    """Without a session nobody may make the console spool a multipart body (any POST route)."""
    async with console(backend) as client:
        page = await client.get("/login")
        pre = csrf_from(page.text)
        for method, route in unsafe_routes(client.app):  # type: ignore[attr-defined]
            url = fill(route.path)
            consumed, status = await _consumed_before_answer(client, url, pre, 8 * 1024 * 1024, "csv", {"kind": "csv"})
            assert status in (303, 400, 403, 413), (route.path, status)
            assert consumed <= 2 * 1024 * 1024, f"{method} {route.path} read {consumed} bytes from an anonymous client"


def test_no_template_reads_the_hanami_token() -> None:
    for path in all_templates():
        text = re.sub(r"csrf_token|confirm_form\(action, token|value=\"\{\{ token \}\}\"", "", path.read_text())
        assert not re.search(r"\.token\b|\btoken_expires_at\b|\{\{\s*session\s*\}\}", text), path.name


async def test_anonymous_login_attempts_cannot_flood_the_audit_trail(backend) -> None:
    """Failed and refused logins are audited, but an anonymous client cannot write huge or endless entries."""
    async with console(backend, login_rate_limit=2) as client:
        audit = client.app.state.audit  # type: ignore[attr-defined]
        before = len(await audit.entries())
        huge = "a" * 300_000
        for _ in range(12):
            form = await client.get("/login")
            response = await client.post("/login", data={"user_id": huge, "password": "wrong-password-x",
                                                         "csrf_token": csrf_from(form.text)})
            assert response.status_code in (401, 429)
        entries = (await audit.entries())[: len(await audit.entries()) - before]
        assert all(len(entry.user_id) <= 256 and len(entry.detail) <= 1024 for entry in entries)
        assert len(entries) <= 4, f"{len(entries)} audit entries for 12 attempts of one client"
        keys = await client.app.state.store.keys("ratelimit:")  # type: ignore[attr-defined]
        assert all(len(key) < 400 for key in keys)


async def test_direct_io_replay_files_do_not_outlive_the_session(backend, tmp_path: Path) -> None:
    """A replay upload is usable only by its session: once that session is over its files are garbage."""
    async with console(backend, upload_dir=str(tmp_path)) as client:
        csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
        url = f"/clusters/{uuid_module.uuid4()}/direct/replay"
        response = await client.post(url, headers={"X-CSRF-Token": csrf}, data={"kind": "csv"},
                                     files={"csv": ("r.csv", b"test_input,test_output\n1,2\n", "text/csv")})
        assert response.status_code == 200, response.text
        replay_id = response.json()["id"]
        folder = tmp_path / "hanami-console-replay" / replay_id
        assert folder.exists()
        assert (await client.post("/logout", data={"csrf_token": csrf})).status_code == 303
        assert not folder.exists(), "replay files stay on disk after their session ended"


def test_every_post_form_carries_the_csrf_token_and_no_get_form_does() -> None:
    problems = []
    for path in all_templates():
        text = path.read_text()
        for match in re.finditer(r"<form\b([^>]*)>(.*?)</form>", text, re.DOTALL):
            attributes, body = match.group(1), match.group(2)
            method = re.search(r'method="(\w+)"', attributes)
            is_post = (method.group(1).lower() if method else "get") == "post"
            has_token = "csrf_token" in body or "csrf_field" in body or "confirm_form" in body
            if is_post and not has_token:
                problems.append(f"{path.name}: POST form without csrf_token")
            if not is_post and has_token:
                problems.append(f"{path.name}: GET form puts the CSRF token into a URL")
    assert problems == []
    base = (TEMPLATES / "base.html").read_text()
    assert "hx-headers='{\"X-CSRF-Token\": \"{{ csrf_token }}\"}'" in base
    assert '"allowEval": false' in base and '"allowScriptTags": false' in base


async def test_a_non_ascii_csrf_token_is_refused_not_a_crash(app_client: httpx.AsyncClient) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    failures = []
    for method, route in unsafe_routes(app_client.app):  # type: ignore[attr-defined]
        url = fill(route.path)
        for kwargs in ({"data": {"csrf_token": "é" * 43}}, {"headers": [(b"X-CSRF-Token", "é".encode() * 20)]}):
            response = await app_client.request(method, url, **kwargs)
            if response.status_code not in (400, 403):  # 400: the upload route wants multipart first
                failures.append(f"{method} {route.path} {list(kwargs)}: {response.status_code}")
    assert failures == []


async def test_a_working_bridge_never_sends_the_token_to_the_browser(console_server: ConsoleServer) -> None:
    async with httpx.AsyncClient(base_url=console_server.url) as client:
        csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
        session = await console_server.app.state.sessions.load(client.cookies[SESSION_COOKIE], touch=False)
        token = session.token
        created = await client.post("/clusters", data={"name": "review_bridge_" + secrets.token_hex(3),
                                                        "template": EXAMPLE_CSV_TEMPLATE, "csrf_token": csrf})
        assert created.status_code == 303
        cluster_uuid = created.headers["location"].rsplit("/", 1)[-1]
        page = await client.get(f"/clusters/{cluster_uuid}/direct")
        assert token not in page.text and token.split(".")[-1] not in page.text
        received: list[str] = []
        tap_context = tapped_logs()  # DEBUG everywhere: websockets would log frames, httpx its requests
        tap = await tap_context.__aenter__()
        try:
            url = "ws://127.0.0.1:%d/clusters/%s/direct/ws" % (console_server.port, cluster_uuid)
            async with connect(url, origin=console_server.url,  # type: ignore[arg-type]
                               additional_headers={"Cookie": f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"}) as ws:
                await ws.send(json.dumps({"op": "open", "csrf": csrf}))

                async def opened() -> bool:
                    received.append(str(await asyncio.wait_for(ws.recv(), 15)))
                    return '"open"' in received[-1] or '"closed"' in received[-1] or "refused" in received[-1]

                await wait_for(opened, timeout=30, interval=0)
                assert any('"state":"open"' in m for m in received), received
                await ws.send(json.dumps({"op": "ask", "values": [0.5]}))
                await wait_for(lambda: _recv_output(ws, received),
                               timeout=30, interval=0)
                await ws.send(json.dumps({"op": "ask", "values": "not numbers"}))
                await ws.send(json.dumps({"op": "close"}))
                with pytest.raises(websockets.ConnectionClosed):
                    while True:
                        received.append(str(await asyncio.wait_for(ws.recv(), 15)))
        finally:
            await tap_context.__aexit__(None, None, None)
            await client.post(f"/clusters/{cluster_uuid}/delete", data={"csrf_token": csrf})
        blob = "\n".join(received)
        assert token not in blob and token.split(".")[-1] not in blob
        assert session.id not in blob
        assert len(tap.records) > 5
        for secret in (token, token.split(".")[-1]):
            assert tap.holding(secret) == set(), "the Hanami token reached a log record"


async def _recv_output(ws: Any, received: list[str]) -> bool:
    received.append(str(await asyncio.wait_for(ws.recv(), 15)))
    return '"output"' in received[-1]


async def test_a_broken_csv_upload_makes_no_backend_call_at_all(backend, tmp_path: Path) -> None:
    """Validation first: a file that will be refused must not cost the backend anything (not even a list)."""
    async with console(backend, upload_dir=str(tmp_path)) as client:
        csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
        calls = BackendCalls(client.app)  # type: ignore[attr-defined]
        response = await client.post("/datasets/upload", **upload_parts(
            csrf, "csv", "review broken " + secrets.token_hex(2), {"csv": ("b.csv", b"a,b\n1\n")}))
        assert response.status_code == 422
        assert [call for call in calls.calls if call != "PUT v1/token"] == []


async def test_no_cross_origin_reads_are_granted(app_client: httpx.AsyncClient) -> None:
    """No CORS: a foreign page can neither read JSON nor preflight a state change."""
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    for method, url in (("GET", "/system/measurements.json"), ("GET", "/healthz"), ("GET", "/"),
                        ("OPTIONS", "/logout"), ("OPTIONS", "/clusters")):
        response = await app_client.request(method, url, headers={
            "Origin": EVIL, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-csrf-token"})
        assert not any(name.lower().startswith("access-control-allow") for name in response.headers), url


async def _raw_post(port: int, head: bytes, body_chunks: list[bytes]) -> tuple[int, dict[str, str]]:
    """Send a request over a plain socket, stop writing, then read the answer (no reset races)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        for chunk in body_chunks:
            writer.write(chunk)
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), 15)
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    headers = {}
    for line in rest.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


async def test_oversized_bodies_get_a_413_with_strict_headers_on_a_real_server(console_server: ConsoleServer) -> None:
    base = (b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n")
    # declared too large: refused before any of the body is read
    status, headers = await _raw_post(console_server.port, base + b"Content-Length: 5000000\r\n\r\n", [])
    assert status == 413
    # chunked, no length: refused once the limit is passed while reading
    chunk = b"a" * 65536
    chunks = [b"8\r\nuser_id=\r\n"] + [b"%x\r\n" % len(chunk) + chunk + b"\r\n"] * 20
    status2, headers2 = await _raw_post(console_server.port, base + b"Transfer-Encoding: chunked\r\n\r\n", chunks)
    assert status2 == 413
    for found in (headers, headers2):
        assert "frame-ancestors 'none'" in found.get("content-security-policy", "")
        assert found.get("x-content-type-options") == "nosniff" and found.get("cache-control") == "no-store"
    async with httpx.AsyncClient(base_url=console_server.url) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_static_files_cannot_be_used_to_read_outside_the_static_folder(app_client: httpx.AsyncClient) -> None:
    for raw in (b"/static/../pyproject.toml", b"/static/%2e%2e/pyproject.toml", b"/static/%2e%2e/%2e%2e/etc/passwd",
                b"/static/..%2fpyproject.toml", b"/static/%2e%2e%2fwebconsole%2fsettings.py", b"/static//etc/passwd"):
        request = app_client.build_request("GET", "http://console.test/")
        request.url = request.url.copy_with(raw_path=raw)
        response = await app_client.send(request)
        assert response.status_code == 404, (raw, response.status_code)
        assert "root:" not in response.text and "[project]" not in response.text and "SecretStr" not in response.text
        assert_strict_headers(response)


async def test_direct_io_replay_uploads_are_private_to_the_console_user(backend, tmp_path: Path) -> None:
    """Uploaded data is kept in folders only the console's own OS user can read (like dataset uploads)."""
    async with console(backend, upload_dir=str(tmp_path)) as client:
        csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
        response = await client.post(f"/clusters/{uuid_module.uuid4()}/direct/replay", headers={"X-CSRF-Token": csrf},
                                      data={"kind": "csv"},
                                      files={"csv": ("r.csv", b"test_input,test_output\n1,2\n", "text/csv")})
        assert response.status_code == 200, response.text
        folder = tmp_path / "hanami-console-replay" / response.json()["id"]
        for path in (folder.parent, folder, *folder.iterdir()):
            assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by other OS users: {oct(path.stat().st_mode)}"


async def test_task_delete_next_never_redirects_off_site(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    created = await app_client.post("/clusters", data={"name": "review_next_" + secrets.token_hex(3),
                                                       "template": EXAMPLE_CSV_TEMPLATE, "csrf_token": csrf})
    cluster_uuid = created.headers["location"].rsplit("/", 1)[-1]
    task_uuid = str(uuid_module.uuid4())
    bad = []
    try:
        for payload in REDIRECT_PAYLOADS:
            for hx in ({}, {"HX-Request": "true"}):
                response = await app_client.post(f"/clusters/{cluster_uuid}/tasks/{task_uuid}/delete", headers=hx,
                                                 data={"csrf_token": csrf, "next": payload})
                target = redirect_target(response)
                if not target or browser_target(html_module.unescape(target)) != "console.test":
                    bad.append((payload, hx, response.status_code, target))
    finally:
        await app_client.post(f"/clusters/{cluster_uuid}/delete", data={"csrf_token": csrf})
    assert bad == []


async def test_logins_never_log_the_password_or_the_token(backend) -> None:
    async with console(backend) as client:
        async with tapped_logs() as tap:
            form = await client.get("/login")
            wrong = "wrong-" + secrets.token_hex(8)
            await client.post("/login", data={"user_id": ADMIN_ID, "password": wrong,
                                              "csrf_token": csrf_from(form.text)})
            await login(client, ADMIN_ID, ADMIN_PASSWORD)
            session = await session_of(client)
            await client.post("/project", data={"project_id": "admin", "csrf_token": session.csrf_token})
            session = await session_of(client)
        assert len(tap.records) > 5
        for secret in (wrong, ADMIN_PASSWORD, session.token, session.token.split(".")[-1], session.id):
            assert tap.holding(secret) == set(), secret[:6]


FUZZ_VALUES = ["", "-1", "0", "99999999999999999999", "abc", "\x00", "é" * 3, "<script>", "%", "../..", "__class__",
               "1e309", "true", " ", "a" * 300]


async def test_hostile_query_and_form_values_never_crash_a_page(app_client: httpx.AsyncClient) -> None:
    """Every GET with odd query values, every POST with odd form values: refused or handled, never a 500."""
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    created = await app_client.post("/clusters", data={"name": "review_fuzz_" + secrets.token_hex(3),
                                                       "template": EXAMPLE_CSV_TEMPLATE, "csrf_token": csrf})
    cluster_uuid = created.headers["location"].rsplit("/", 1)[-1]
    real = {"uuid": cluster_uuid, "cluster_uuid": cluster_uuid, "user_id": ADMIN_ID}
    params = ("q", "page", "per_page", "sort", "order", "range", "user_id", "without_user", "kind", "example", "name",
              "type", "repeat", "cluster_uuid", "dataset_uuid", "next", "since", "until", "source", "method", "user",
              "action")
    crashes = []
    try:
        for method, route in [(m, r) for r in http_routes(app_client.app) for m in r.methods - {"HEAD"}]:  # type: ignore[attr-defined]
            if route.name in ("logout", "login", "switch_project") or route.path.endswith("/delete"):
                continue
            path = re.sub(r"\{([a-z_]+)\}", lambda m: real.get(m.group(1), "{%s}" % m.group(1)), route.path)
            url = fill(path)
            for value in FUZZ_VALUES:
                if method != "GET" and re.fullmatch(r"[a-zA-Z][a-zA-Z_0-9]{3,}", value):
                    continue  # a valid id would really create a project or user in the shared backend
                fields = {name: value for name in params}
                if method == "GET":
                    response = await app_client.get(url, params=fields)
                else:
                    response = await app_client.post(url, data={**fields, "csrf_token": csrf, "template": value,
                                                                "checkpoint_name": value, "host_uuid": value,
                                                                "checkpoint_uuid": value, "id": value,
                                                                "password": value, "project_id": value,
                                                                "role": value})
                if response.status_code >= 500 and response.status_code != 503:
                    crashes.append(f"{method} {route.path} value={value[:12]!r}: {response.status_code}")
    finally:
        await app_client.post(f"/clusters/{cluster_uuid}/delete", data={"csrf_token": csrf})
    assert crashes == []
