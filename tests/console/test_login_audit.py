"""Every login attempt leaves its audit row, with its outcome: ok, failed (wrong or malformed
credentials) or refused (rate limit, a role Hanami's policy does not know).

Each test has its own console (own store, own trail), so the rows it reads are its own.
"""

from __future__ import annotations

import secrets

import httpx

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, csrf_from
from tests.console.effects import BackendCalls, audit_rows
from tests.console.test_auth import make_console
from webconsole.hanami.client import HanamiClient


async def attempt(client: httpx.AsyncClient, user_id: str, password: str) -> httpx.Response:
    form = await client.get("/login")
    return await client.post("/login", data={
        "user_id": user_id, "password": password, "next": "/", "csrf_token": csrf_from(form.text)})


async def test_a_wrong_password_is_audited_as_failed(emulator) -> None:
    async for client in make_console(emulator.url):
        answer = await attempt(client, ADMIN_ID, "not-the-password")
        assert answer.status_code == 401
        rows = await audit_rows(client.app, ADMIN_ID, "login")  # type: ignore[attr-defined]
        assert [(row.outcome, row.detail, row.client) for row in rows] == [("failed", "failed", "127.0.0.1")]


async def test_malformed_credentials_are_audited_and_never_reach_hanami(emulator) -> None:
    async for client in make_console(emulator.url):
        calls = BackendCalls(client.app)  # type: ignore[attr-defined]
        cases = [("x", "long-enough-password"), ("valid_user_id", "short"), ("bad id!", "long-enough-password")]
        for user_id, password in cases:
            assert (await attempt(client, user_id, password)).status_code == 401
            rows = await audit_rows(client.app, user_id, "login")  # type: ignore[attr-defined]
            assert [row.outcome for row in rows] == ["failed"], user_id
        assert calls.count("POST v1/token") == 0


async def test_an_unknown_user_is_audited_under_the_id_given(emulator) -> None:
    nobody = f"nobody_{secrets.token_hex(4)}"
    async for client in make_console(emulator.url):
        assert (await attempt(client, nobody, ADMIN_PASSWORD)).status_code == 401
        rows = await audit_rows(client.app, nobody, "login")  # type: ignore[attr-defined]
        assert [row.outcome for row in rows] == ["failed"]


async def test_the_rate_limit_refusal_is_audited_once_per_window(emulator) -> None:
    async for client in make_console(emulator.url, login_rate_limit=2):
        calls = BackendCalls(client.app)  # type: ignore[attr-defined]
        for _ in range(2):
            assert (await attempt(client, ADMIN_ID, "not-the-password")).status_code == 401
        tokens_asked = calls.count("POST v1/token")
        for _ in range(3):  # the right password too: the account is protected
            refused = await attempt(client, ADMIN_ID, ADMIN_PASSWORD)
            assert refused.status_code == 429
        assert calls.count("POST v1/token") == tokens_asked  # refused before Hanami
        rows = await audit_rows(client.app, ADMIN_ID, "login")  # type: ignore[attr-defined]
        outcomes = [row.outcome for row in rows]  # newest first
        assert outcomes == ["refused", "failed", "failed"]
        assert rows[0].detail == "refused: too many failed attempts"


async def test_a_role_the_policy_does_not_know_is_audited_as_refused(emulator) -> None:
    tag = secrets.token_hex(3)
    user, project, password = f"roleless_{tag}", f"roleless_{tag}", "roleless-password-1"
    async with HanamiClient(emulator.url) as hanami:
        admin = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
        await admin.create_project(project, "Roleless")
        await admin.create_user(user, "Roleless User", password, False)
        await admin.assign_project(user, project, "tester", False)  # "tester" is not in the policy (Q-A4)
        try:
            async for client in make_console(emulator.url):
                answer = await attempt(client, user, password)
                assert answer.status_code == 403 and "Ask an admin to give you another role" in answer.text
                rows = await audit_rows(client.app, user, "login")  # type: ignore[attr-defined]
                assert [(row.outcome, row.detail) for row in rows] == [
                    ("refused", "refused: role not allowed by Hanami's policy")]
        finally:
            await admin.delete_user(user)
            await admin.delete_project(project)


async def test_a_good_login_is_audited_as_ok_and_shown_to_the_admin(emulator) -> None:
    async for client in make_console(emulator.url):
        assert (await attempt(client, ADMIN_ID, "not-the-password")).status_code == 401
        assert (await attempt(client, ADMIN_ID, ADMIN_PASSWORD)).status_code == 303
        rows = await audit_rows(client.app, ADMIN_ID, "login")  # type: ignore[attr-defined]
        assert [row.outcome for row in rows] == ["ok", "failed"]
        assert rows[0].detail.startswith("project ")
        page = await client.get("/audit", params={"source": "console", "action": "login"})
        assert page.text.count("badge-failed") == 1
