"""What logging in, logging out and switching project leave behind, seen from outside: the cookies
the browser gets (flags, path, deletion), the calls made to Hanami or not made, the session in the
store, the rate-limit counters and how long they last, the audit rows, the page the user lands on.

In-process over HTTP (ASGI transport) against the backend; the rate-limit window is read from a
real redis-server.
"""

from __future__ import annotations

import html
import re
import secrets
import time
from contextlib import asynccontextmanager
from http.cookies import SimpleCookie
from typing import AsyncIterator

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, console_settings, csrf_from, in_process_console, login
from tests.console.conftest import MEMBER_PASSWORD
from tests.console.effects import BackendCalls, audit_rows, logged
from webconsole.app import create_app
from webconsole.hanami.client import HanamiAPI
from webconsole.web.core.deps import PRE_SESSION_COOKIE, SESSION_COOKIE

GENERIC = "Wrong user id or password."
_ALERT = re.compile(r'<div class="alert alert-(\w+)" role="\w+">(.*?)</div>', re.S)


def alerts(page: str) -> list[tuple[str, str]]:
    """The alerts a page shows (the login form's error, flash messages): (kind, text as read)."""
    return [(kind, html.unescape(text)) for kind, text in _ALERT.findall(page)]


@asynccontextmanager
async def console(backend_url: str, base_url: str = "http://console.test", **overrides: object,
                  ) -> AsyncIterator[httpx.AsyncClient]:
    """The console in-process, reached at ``base_url`` (its scheme is the one the console sees)."""
    app = create_app(console_settings(backend_url, **overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


def cookies_set(response: httpx.Response) -> dict[str, dict[str, str]]:
    """Each Set-Cookie of the response: name -> its value and attributes (lower-case names)."""
    found: dict[str, dict[str, str]] = {}
    for header in response.headers.get_list("set-cookie"):
        parsed = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            attributes = {key: str(value) for key, value in morsel.items() if value}
            flags = {part.strip().lower() for part in header.split(";")}
            attributes.update({flag: "yes" for flag in ("httponly", "secure") if flag in flags})
            found[name] = {"value": morsel.value, **attributes}
    return found


def carry(client: httpx.AsyncClient, value: str, name: str) -> None:
    """Send cookie ``name`` from now on, as the browser would: a Secure cookie reaches the console
    over plain http behind a TLS proxy, where the browser itself speaks https."""
    client.cookies.clear()
    client.cookies.set(name, value)


async def attempt(client: httpx.AsyncClient, user_id: str, password: str, next_url: str = "/",
                  prefix: str = "") -> httpx.Response:
    form = await client.get(f"{prefix}/login")
    return await client.post(f"{prefix}/login", data={
        "user_id": user_id, "password": password, "next": next_url, "csrf_token": csrf_from(form.text)})


@asynccontextmanager
async def another_project(hanami: HanamiAPI, user: str, role: str = "member") -> AsyncIterator[str]:
    """A second project ``user`` is assigned to with ``role`` (removed afterwards)."""
    project = f"another_{secrets.token_hex(3)}"
    await hanami.create_project(project, "Another Project")
    await hanami.assign_project(user, project, role, False)
    try:
        yield project
    finally:
        await hanami.remove_project(user, project)
        await hanami.delete_project(project)


@pytest.mark.parametrize("base_url, cookie_secure, prefix, secure", [
    ("http://console.test", None, "", False),
    ("https://console.test", None, "", True),  # https: Secure, unless configured otherwise
    ("https://console.test", False, "", False),
    ("http://console.test", True, "/console", True),  # behind a TLS proxy that speaks http to us
])
async def test_the_cookies_of_a_login_and_a_logout(backend, base_url: str, cookie_secure: bool | None,
                                                   prefix: str, secure: bool) -> None:
    async with console(backend.url, base_url, cookie_secure=cookie_secure, root_path=prefix) as client:
        form = await client.get(f"{prefix}/login")
        pre = cookies_set(form)[PRE_SESSION_COOKIE]
        assert pre["value"] == csrf_from(form.text) and len(pre["value"]) >= 40
        assert (pre.get("httponly"), pre["samesite"].lower(), pre.get("secure") == "yes", pre["path"]) == (
            "yes", "strict", secure, prefix or "/")
        carry(client, pre["value"], PRE_SESSION_COOKIE)
        again = await client.get(f"{prefix}/login")  # the same browser keeps its form token
        assert csrf_from(again.text) == pre["value"]
        done = await client.post(f"{prefix}/login", data={
            "user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "next": "/clusters", "csrf_token": pre["value"]})
        assert (done.status_code, done.headers["location"]) == (303, f"{prefix}/clusters")
        cookies = cookies_set(done)
        session = cookies[SESSION_COOKIE]
        assert (session.get("httponly"), session["samesite"].lower(), session.get("secure") == "yes",
                session["path"]) == ("yes", "lax", secure, prefix or "/")
        stored = await client.app.state.sessions.load(session["value"], touch=False)  # type: ignore[attr-defined]
        assert stored is not None and stored.user_id == ADMIN_ID
        carry(client, session["value"], SESSION_COOKIE)
        gone = cookies[PRE_SESSION_COOKIE]  # the form token is spent: deleted on the path it was set on
        assert (gone["value"], gone["max-age"], gone["path"]) == ("", "0", prefix or "/")
        out = await client.post(f"{prefix}/logout", data={"csrf_token": stored.csrf_token})
        assert (out.status_code, out.headers["location"]) == (303, f"{prefix}/login")
        ended = cookies_set(out)[SESSION_COOKIE]
        assert (ended["value"], ended["max-age"], ended["path"]) == ("", "0", prefix or "/")
        assert await client.app.state.sessions.load(session["value"]) is None  # type: ignore[attr-defined]


async def test_the_login_form_starts_empty_and_keeps_what_was_typed_after_a_failure(backend) -> None:
    async with in_process_console(backend.url) as client:
        form = await client.get("/login", params={"next": "/clusters"})
        assert (form.status_code, alerts(form.text)) == (200, [])
        assert '<input id="user_id" name="user_id" value="" ' in form.text
        assert '<input type="hidden" name="next" value="/clusters">' in form.text
        failed = await attempt(client, "nobody_at_all", "not-the-password", next_url="/clusters")
        assert (failed.status_code, alerts(failed.text)) == (401, [("error", GENERIC)])
        assert '<input id="user_id" name="user_id" value="nobody_at_all" ' in failed.text
        assert '<input type="hidden" name="next" value="/clusters">' in failed.text


async def test_ids_and_passwords_hanami_would_refuse_never_reach_it(backend) -> None:
    """Hanami's rules (contract §1.6): ids of 4 to 256 characters, passwords of 8 to 4096 bytes.
    Outside them nothing is sent; inside them Hanami decides (and says no to these)."""
    async with in_process_console(backend.url, login_rate_limit=100) as client:
        calls = BackendCalls(client.app)  # type: ignore[attr-defined]
        refused_here = [("abc", "long-enough-1"), ("a" * 257, "long-enough-1"), ("_abcd", "long-enough-1"),
                        ("nobody_at_all", "seven77"), ("nobody_at_all", "x" * 4097),
                        ("nobody_at_all", "\u00e9" * 3 + "x"),  # 4 characters, 7 bytes
                        ("nobody_at_all", "\u00e9" * 2049)]  # 2,049 characters, 4,098 bytes
        for user_id, password in refused_here:
            answer = await attempt(client, user_id, password)
            assert (answer.status_code, alerts(answer.text)) == (401, [("error", GENERIC)]), (user_id, password)
        assert calls.count("POST v1/token") == 0
        asked = [("abcd", "long-enough-1"), ("a" * 256, "long-enough-1"), ("nobody_at_all", "eight888"),
                 ("nobody_at_all", "x" * 4096), ("nobody_at_all", "\u00e9" * 4),  # 8 bytes
                 ("nobody@example", "long-enough-1")]
        for count, (user_id, password) in enumerate(asked, start=1):
            answer = await attempt(client, user_id, password)
            assert (answer.status_code, alerts(answer.text)) == (401, [("error", GENERIC)]), (user_id, password)
            assert calls.count("POST v1/token") == count, (user_id, password)


async def test_an_id_longer_than_hanamis_is_recorded_cut_to_256_characters(emulator) -> None:
    long_id = "a" + "b" * 299
    async with in_process_console(emulator.url) as client:
        assert (await attempt(client, long_id, "long-enough-1")).status_code == 401
        rows = await audit_rows(client.app, long_id[:256], "login")  # type: ignore[attr-defined]
        assert [(row.user_id, row.outcome) for row in rows] == [(long_id[:256], "failed")]
        store = client.app.state.store  # type: ignore[attr-defined]
        assert await store.get(f"ratelimit:login:user:{long_id[:256]}") == b"1"


async def test_spaces_around_the_user_id_are_ignored(backend) -> None:
    async with in_process_console(backend.url) as client:
        done = await attempt(client, f"  {ADMIN_ID} ", ADMIN_PASSWORD)
        assert done.status_code == 303
        rows = await audit_rows(client.app, ADMIN_ID, "login")  # type: ignore[attr-defined]
        assert [row.outcome for row in rows] == ["ok"]


async def test_the_login_form_sends_a_logged_in_browser_on(backend) -> None:
    async with in_process_console(backend.url) as client:
        await login(client, ADMIN_ID, ADMIN_PASSWORD)
        calls = BackendCalls(client.app)  # type: ignore[attr-defined]
        on = await client.get("/login", params={"next": "/clusters?sort=name"})
        assert (on.status_code, on.headers["location"]) == (303, "/clusters?sort=name")
        away = await client.get("/login", params={"next": "//evil.example/x"})
        assert (away.status_code, away.headers["location"]) == (303, "/")
        assert calls.calls == [] and PRE_SESSION_COOKIE not in cookies_set(on)


async def test_the_session_holds_who_logged_in_and_the_page_shows_it(backend, member) -> None:
    user, project = member
    async with in_process_console(backend.url) as client:
        await login(client, user, MEMBER_PASSWORD)
        session = await client.app.state.sessions.load(client.cookies[SESSION_COOKIE], touch=False)  # type: ignore[attr-defined]
        assert (session.user_id, session.user_name, session.project_id, session.role, session.is_admin,
                session.is_project_admin, session.projects, session.client) == (
            user, "Project Member", project, "member", False, True, [project], "127.0.0.1")
        assert time.time() + 3000 < session.token_expires_at <= time.time() + 3600
        home = await client.get("/")
        assert "Welcome, Project Member" in home.text
        assert f"project <strong>{project}</strong> with the role <strong>member</strong> (project admin)" in home.text
        rows = await audit_rows(client.app, user, "login")  # type: ignore[attr-defined]
        assert [(row.outcome, row.detail, row.client) for row in rows] == [("ok", f"project {project}", "127.0.0.1")]
    async with in_process_console(backend.url) as client:
        await login(client, ADMIN_ID, ADMIN_PASSWORD)
        session = await client.app.state.sessions.load(client.cookies[SESSION_COOKIE], touch=False)  # type: ignore[attr-defined]
        assert (session.user_id, session.is_admin) == (ADMIN_ID, True)


async def test_a_second_login_in_the_same_browser_ends_the_first_session(backend) -> None:
    async with in_process_console(backend.url) as client:
        await login(client, ADMIN_ID, ADMIN_PASSWORD)
        first = client.cookies[SESSION_COOKIE]
        form = await client.get("/login", params={"next": "/"})
        assert form.status_code == 303  # logged in: no form; a stale form in another tab still posts
        pre = secrets.token_urlsafe(32)
        client.cookies.set(PRE_SESSION_COOKIE, pre)
        again = await client.post("/login", data={"user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "next": "/",
                                                   "csrf_token": (await client.app.state.sessions.load(  # type: ignore[attr-defined]
                                                       first, touch=False)).csrf_token})
        assert again.status_code == 303
        second = client.cookies[SESSION_COOKIE]
        assert second != first
        sessions = client.app.state.sessions  # type: ignore[attr-defined]
        assert await sessions.load(first) is None and await sessions.load(second) is not None


async def test_a_user_without_a_project_is_told_so(backend, hanami: HanamiAPI) -> None:
    user = f"projectless_{secrets.token_hex(3)}"
    await hanami.create_user(user, "No Project", MEMBER_PASSWORD, False)
    try:
        async with in_process_console(backend.url) as client:
            answer = await attempt(client, user, MEMBER_PASSWORD)
            assert (answer.status_code, alerts(answer.text)) == (
                401, [("error", "This account has no project yet. Ask an admin to assign one.")])
            assert SESSION_COOKIE not in client.cookies
            rows = await audit_rows(client.app, user, "login")  # type: ignore[attr-defined]
            assert [row.outcome for row in rows] == ["failed"]
            store = client.app.state.store  # type: ignore[attr-defined]
            assert await store.get(f"ratelimit:login:user:{user}") == b"1"
            assert await store.get("ratelimit:login:client:127.0.0.1") == b"1"
    finally:
        await hanami.delete_user(user)


async def test_the_rate_limit_counts_per_client_and_per_user_for_15_minutes(emulator, redis_url: str) -> None:
    """Failures count against the client address and the user id; either over the limit refuses
    (before Hanami is asked), for 15 minutes from the first failure."""
    import redis

    url = redis_url.rsplit("/", 1)[0] + "/4"
    raw = redis.Redis.from_url(url)
    raw.flushdb()
    async with in_process_console(emulator.url, login_rate_limit=2, session_store_url=url) as client:
        calls = BackendCalls(client.app)  # type: ignore[attr-defined]
        started = time.time()
        for user_id in ("first_user", "second_user"):  # two ids, one client
            assert (await attempt(client, user_id, "not-the-password")).status_code == 401
        assert calls.count("POST v1/token") == 2
        refused = await attempt(client, "third_user", "not-the-password")
        assert (refused.status_code, alerts(refused.text)) == (
            429, [("error", "Too many failed attempts. Wait 15 minutes and try again.")])
        assert calls.count("POST v1/token") == 2
        window = raw.pttl("hanami-console:ratelimit:login:client:127.0.0.1") / 1000
        assert 900 - (time.time() - started) - 1 <= window <= 900
        audited = raw.pttl("hanami-console:ratelimit:login:client:127.0.0.1:audited") / 1000
        assert 899 <= audited <= 900
        rows = await audit_rows(client.app, "third_user", "login")  # type: ignore[attr-defined]
        assert [(row.outcome, row.detail) for row in rows] == [("refused", "refused: too many failed attempts")]
    # one user id from two clients: its own counter refuses the second client
    raw.flushdb()
    app = create_app(console_settings(emulator.url, login_rate_limit=2, session_store_url=url))
    async with app.router.lifespan_context(app):
        for address in ("127.0.0.2", "127.0.0.3"):
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as other:
                assert (await attempt(other, "shared_user", "not-the-password")).status_code == 401
        transport = httpx.ASGITransport(app=app, client=("127.0.0.4", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as fresh:
            assert (await attempt(fresh, "shared_user", "not-the-password")).status_code == 429
            assert (await attempt(fresh, "another_user", "not-the-password")).status_code == 401
        window = raw.pttl("hanami-console:ratelimit:login:user:shared_user") / 1000
        assert 895 <= window <= 900
    raw.flushdb()
    raw.close()


async def test_logout_is_audited_and_ends_only_this_session(backend) -> None:
    async with in_process_console(backend.url) as client:
        csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
        async with httpx.AsyncClient(transport=client._transport, base_url="http://console.test") as other:
            await login(other, ADMIN_ID, ADMIN_PASSWORD)
            out = await client.post("/logout", data={"csrf_token": csrf})
            assert (out.status_code, out.headers["location"]) == (303, "/login")
            assert (await other.get("/")).status_code == 200  # the other browser stays logged in
        rows = await audit_rows(client.app, ADMIN_ID, "logout")  # type: ignore[attr-defined]
        assert [(row.outcome, row.client) for row in rows] == [("ok", "127.0.0.1")]


async def test_switching_project_renews_the_token_and_records_it(backend, hanami: HanamiAPI, member) -> None:
    user, project = member
    async with another_project(hanami, user) as other, in_process_console(backend.url) as client:
        csrf = await login(client, user, MEMBER_PASSWORD)
        before = await client.app.state.sessions.load(client.cookies[SESSION_COOKIE], touch=False)  # type: ignore[attr-defined]
        calls = BackendCalls(client.app)  # type: ignore[attr-defined]
        switched = await client.post("/project", data={"project_id": f" {other} ", "csrf_token": csrf})
        assert (switched.status_code, switched.headers["location"]) == (303, "/")
        assert calls.count("PUT v1/token") == 1
        cookie = cookies_set(switched)[SESSION_COOKIE]
        assert cookie["value"] != before.id and cookie.get("httponly") == "yes" and cookie["path"] == "/"
        after = await client.app.state.sessions.load(cookie["value"], touch=False)  # type: ignore[attr-defined]
        assert (after.project_id, after.role, after.is_project_admin, after.is_admin, after.projects) == (
            other, "member", False, False, [project, other])
        assert after.token != before.token
        home = await client.get("/")
        assert alerts(home.text) == [("success", f"Switched to project {other} (role member).")]
        assert f"project <strong>{other}</strong> with the role <strong>member</strong>." in home.text
        rows = await audit_rows(client.app, user, "switch project")  # type: ignore[attr-defined]
        assert [(row.outcome, row.detail, row.client) for row in rows] == [("ok", other, "127.0.0.1")]
        # back again: a project already known is not listed twice
        csrf = csrf_from(home.text)
        assert (await client.post("/project", data={"project_id": project, "csrf_token": csrf})).status_code == 303
        back = await client.app.state.sessions.load(client.cookies[SESSION_COOKIE], touch=False)  # type: ignore[attr-defined]
        assert (back.project_id, back.is_project_admin, back.projects) == (project, True, [project, other])


@pytest.mark.parametrize("project_id, asked", [("abc", False), ("a" * 257, False), ("1abc", False),
                                               ("abcd", True), ("a" * 256, True)])
async def test_a_project_id_hanami_would_refuse_is_never_sent(backend, project_id: str, asked: bool) -> None:
    async with in_process_console(backend.url) as client:
        csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
        before = client.cookies[SESSION_COOKIE]
        calls = BackendCalls(client.app)  # type: ignore[attr-defined]
        answer = await client.post("/project", data={"project_id": project_id, "csrf_token": csrf})
        assert (answer.status_code, answer.headers["location"]) == (303, "/")
        assert calls.count("PUT v1/token") == (1 if asked else 0)
        home = await client.get("/")
        message = (f"You are not assigned to the project '{project_id}'." if asked else
                   "A project id has 4 to 256 letters, digits or underscores and starts with a letter.")
        assert alerts(home.text) == [("error", message)]
        assert client.cookies[SESSION_COOKIE] == before and "project <strong>admin</strong>" in home.text
        assert await audit_rows(client.app, ADMIN_ID, "switch project") == []  # type: ignore[attr-defined]


async def test_switching_to_a_role_the_policy_does_not_know_keeps_the_project(backend, hanami: HanamiAPI,
                                                                             member) -> None:
    user, project = member
    # "tester" is not in the policy (Q-A4)
    async with another_project(hanami, user, "tester") as odd, in_process_console(backend.url) as client:
        csrf = await login(client, user, MEMBER_PASSWORD)
        before = client.cookies[SESSION_COOKIE]
        answer = await client.post("/project", data={"project_id": odd, "csrf_token": csrf})
        assert (answer.status_code, answer.headers["location"]) == (303, "/")
        home = await client.get("/")
        assert alerts(home.text) == [("error", f"Your role in the project '{odd}' is not allowed to use Hanami "
                                      "(its access policy does not know the role). You stay in your current project.")]
        assert client.cookies[SESSION_COOKIE] == before
        session = await client.app.state.sessions.load(before, touch=False)  # type: ignore[attr-defined]
        assert (session.project_id, session.projects) == (project, [project])
        assert await audit_rows(client.app, user, "switch project") == []  # type: ignore[attr-defined]


async def test_an_admin_is_offered_its_projects_and_the_admin_project(backend, hanami: HanamiAPI) -> None:
    async with another_project(hanami, ADMIN_ID) as project, in_process_console(backend.url) as client:
        csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
        home = await client.get("/")
        assert f'<option value="{project}">{project}</option>' in home.text
        assert "admin (every project, as Hanami admin)" not in home.text  # the current one
        await client.post("/project", data={"project_id": project, "csrf_token": csrf})
        home = await client.get("/")
        assert '<option value="admin">admin (every project, as Hanami admin)</option>' in home.text
        assert home.text.count(f'<option value="{project}">') == 0


async def test_a_login_hook_that_fails_leaves_the_user_logged_in_and_is_logged(emulator) -> None:
    """Work waiting for a user's next login (app.state.login_hooks) runs after the session exists:
    when it fails, the login still succeeds and the failure is in the log. A good login with the
    console's own hooks logs nothing at all."""
    async with in_process_console(emulator.url) as client:
        with logged("webconsole.auth") as records:
            assert (await attempt(client, ADMIN_ID, ADMIN_PASSWORD)).status_code == 303
        assert records == []  # the console's hooks ran without an error
        ran: list[str] = []

        async def broken(app, session) -> None:
            ran.append(session.user_id)
            raise RuntimeError("a hook that fails")

        client.app.state.login_hooks.insert(0, broken)  # type: ignore[attr-defined]
        client.cookies.clear()  # another browser
        with logged("webconsole.auth") as records:
            done = await attempt(client, ADMIN_ID, ADMIN_PASSWORD)
        assert done.status_code == 303 and ran == [ADMIN_ID]
        assert (await client.get("/")).status_code == 200
        assert [(record.levelname, record.getMessage(), record.exc_info[0]) for record in records] == [
            ("ERROR", "a login hook failed", RuntimeError)]


async def test_a_role_the_policy_does_not_know_cannot_log_in(backend, hanami: HanamiAPI) -> None:
    tag = secrets.token_hex(3)
    user, project = f"roleless_{tag}", f"roleless_{tag}"
    await hanami.create_project(project, "Roleless")
    await hanami.create_user(user, "Roleless User", MEMBER_PASSWORD, False)
    await hanami.assign_project(user, project, "tester", False)  # "tester" is not in the policy (Q-A4)
    try:
        async with in_process_console(backend.url) as client:
            answer = await attempt(client, user, MEMBER_PASSWORD)
            assert (answer.status_code, alerts(answer.text)) == (403, [(
                "error", "Your role in your project is not allowed to use Hanami (its access policy does not know "
                "the role). Ask an admin to give you another role.")])
            assert SESSION_COOKIE not in client.cookies
            rows = await audit_rows(client.app, user, "login")  # type: ignore[attr-defined]
            assert [(row.outcome, row.client) for row in rows] == [("refused", "127.0.0.1")]
            store = client.app.state.store  # type: ignore[attr-defined]
            assert await store.get(f"ratelimit:login:user:{user}") is None  # the password was right
    finally:
        await hanami.delete_user(user)
        await hanami.delete_project(project)


async def test_a_backend_that_cannot_be_reached_is_no_failed_login() -> None:
    from tests.conftest import free_port

    async with in_process_console(f"http://127.0.0.1:{free_port()}") as client:
        answer = await attempt(client, ADMIN_ID, ADMIN_PASSWORD, next_url="/clusters")
        assert (answer.status_code, alerts(answer.text)) == (
            503, [("error", "The Hanami backend cannot be reached right now. Try again shortly.")])
        assert 'name="next" value="/clusters"' in answer.text  # the form keeps the way back
        store = client.app.state.store  # type: ignore[attr-defined]
        assert await store.get(f"ratelimit:login:user:{ADMIN_ID}") is None
        assert await audit_rows(client.app, ADMIN_ID, "login") == []  # type: ignore[attr-defined]
