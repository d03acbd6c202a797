"""Security review of the whole console: every route, every template, every response kind.

The route lists are not written by hand: they come from the application's own route table, so a
page added later is covered (or makes a test fail) without anyone editing this file.
"""

from __future__ import annotations

import asyncio
import io
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
from webconsole.app import create_app
from webconsole.hanami.client import HanamiClient
from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE
from webconsole.web.deps import PRE_SESSION_COOKIE, SESSION_COOKIE, csrf_protect, require_admin

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
async def backend_admin(emulator: Any) -> AsyncIterator[Any]:
    async with HanamiClient(emulator.url) as hanami:
        yield hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)


@asynccontextmanager
async def member_account(emulator: Any) -> AsyncIterator[str]:
    """A plain member of a fresh project (no Hanami admin rights)."""
    tag = secrets.token_hex(3)
    project, member = f"review_{tag}", f"reviewer_{tag}"
    async with backend_admin(emulator) as admin:
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


def test_every_state_changing_route_depends_on_the_csrf_check(emulator) -> None:
    app = create_app(console_settings(emulator.url))
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


def test_the_app_has_exactly_the_websockets_this_review_covers(emulator) -> None:
    app = create_app(console_settings(emulator.url))
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
    console_server: ConsoleServer, emulator,
) -> None:
    cookie, csrf = await _login_on(console_server)
    async with backend_admin(emulator) as admin:
        cluster = await admin.create_cluster("review_ws_" + secrets.token_hex(3), EXAMPLE_CSV_TEMPLATE)
        try:
            url = "ws://127.0.0.1:%d/clusters/%s/direct/ws" % (console_server.port, cluster["uuid"])
            for hello in ({"op": "open"}, {"op": "open", "csrf": ""}, {"op": "open", "csrf": "x" + csrf[1:]},
                          {"op": "open", "csrf": 12345}):
                async with connect(url, origin=console_server.url,  # type: ignore[arg-type]
                                   additional_headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}) as ws:
                    await ws.send(__import__("json").dumps(hello))
                    messages = []
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        while True:
                            messages.append(await asyncio.wait_for(ws.recv(), 10))
                    assert closed.value.rcvd is not None and closed.value.rcvd.code != 1000, hello
                    assert not any("Checking the cluster" in str(m) for m in messages), hello
                    assert not any(csrf in str(m) for m in messages)
            # the cluster was never switched to direct mode: a task-mode switch answers 409
            assert (await admin.get_cluster(cluster["uuid"]))
            from webconsole.hanami.errors import Conflict
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
    from webconsole.web.auth import safe_next

    for payload in REDIRECT_PAYLOADS:
        result = safe_next(payload)
        assert browser_target(result) == "console.test", (payload, result)
    assert safe_next("/clusters?q=a&page=2") == "/clusters?q=a&page=2"


async def test_login_next_never_leads_off_site(app_client: httpx.AsyncClient) -> None:
    for payload in REDIRECT_PAYLOADS:
        page = await app_client.get("/login", params={"next": payload})
        value = re.search(r'name="next" value="([^"]*)"', page.text)
        assert value is not None
        import html as html_module
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
    import html as html_module

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
        r"\bxss\b": "",
    }
    for path in all_templates():
        text = path.read_text()
        for pattern, label in checks.items():
            if label and re.search(pattern, text, re.IGNORECASE):
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
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.texts.append(record.getMessage())
        except Exception:  # noqa: BLE001 - a broken record still has its raw fields below
            pass
        self.texts.append(repr(record.__dict__))
        if record.exc_info:
            import traceback
            self.texts.append("".join(traceback.format_exception(*record.exc_info)))


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
        logged = "\n".join(tap.texts)
        assert len(tap.texts) > 10, "the log tap saw nothing"
        for secret in secrets_to_find[:2]:
            assert secret not in logged, "the Hanami token reached a log record"
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
