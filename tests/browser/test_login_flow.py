"""A new user's first minute: log in, look around, switch project, log out."""

from __future__ import annotations

import secrets

from playwright.sync_api import Page, expect

from tests.browser.conftest import browser_login
from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, run_sync
from webconsole.hanami.client import HanamiClient


def _create_and_assign_project(backend_url: str, project: str) -> None:
    async def run() -> None:
        async with HanamiClient(backend_url) as hanami:
            admin = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            await admin.create_project(project, "Browser Project")
            await admin.assign_project(ADMIN_ID, project, "member", True)

    run_sync(run)


def test_login_home_switch_project_logout(page: Page, console_server: ConsoleServer, backend) -> None:
    project = f"browser_{secrets.token_hex(3)}"
    _create_and_assign_project(backend.url, project)

    page.goto(console_server.url + "/")
    expect(page).to_have_url(console_server.url + "/login?next=/")
    page.get_by_label("User id").fill(ADMIN_ID)
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong user id or password.")

    browser_login(page, console_server.url)
    expect(page.get_by_role("heading", name="Welcome, Test Admin")).to_be_visible()
    expect(page.get_by_test_id("current-project")).to_contain_text("project admin")

    # A pick from the projects the admin is assigned to (and the virtual admin project), nothing to type.
    picker = page.get_by_label("Switch to", exact=True)
    expect(picker.locator(f'option[value="{project}"]')).to_have_count(1)
    expect(page.get_by_test_id("switch-project").locator("input:not([type=hidden])")).to_have_count(0)
    picker.select_option(project)
    page.get_by_role("button", name="Switch project").click()
    expect(page.get_by_test_id("current-project")).to_contain_text(f"project {project}")
    expect(page.get_by_role("status")).to_contain_text(f"Switched to project {project}")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(console_server.url + "/login")
    page.goto(console_server.url + "/")
    expect(page).to_have_url(console_server.url + "/login?next=/")
    assert page.console_errors == []  # type: ignore[attr-defined]
