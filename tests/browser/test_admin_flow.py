"""An admin sets up a team in Chromium: project, user, role; the user logs in; the audit shows it all."""

from __future__ import annotations

import re
import secrets

from playwright.sync_api import Page, expect

from tests.browser.conftest import browser_login
from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, run_sync
from webconsole.hanami.client import HanamiClient

MEMBER_PASSWORD = "browser-member-1"


def _cleanup(backend_url: str, user: str, project: str) -> None:
    async def run() -> None:
        async with HanamiClient(backend_url) as hanami:
            admin = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            if user in {row["id"] for row in (await admin.list_users()).records()}:
                await admin.delete_user(user)
            if project in {row["id"] for row in (await admin.list_projects()).records()}:
                await admin.delete_project(project)

    run_sync(run)


def test_admin_creates_team_member_logs_in_audit_shows_it(page: Page, console_server: ConsoleServer, backend) -> None:
    tag = secrets.token_hex(3)
    project, user = f"web_team_{tag}", f"web_user_{tag}"
    base = console_server.url
    try:
        browser_login(page, base)
        page.get_by_role("link", name="Projects").click()
        page.get_by_role("link", name="New project").click()
        expect(page).to_have_url(f"{base}/projects/new")
        page.wait_for_load_state("load")  # forms.js (deferred) is running
        page.get_by_label("Project id").fill("1bad")
        page.get_by_label("Name").click()  # leaving the field shows the rule at once
        expect(page.locator("#id-error")).to_have_text("4 to 256 letters, digits or underscores, starting with a letter.")
        page.get_by_label("Project id").fill(project)
        expect(page.locator("#id-error")).to_have_text("")
        page.get_by_label("Name").fill("Web Team")
        page.get_by_role("button", name="Create project").click()
        expect(page.get_by_role("heading", name=f"Project {project}")).to_be_visible()
        expect(page.get_by_role("status")).to_contain_text(f"Project {project} created.")

        page.get_by_role("link", name="Users", exact=True).click()
        page.get_by_role("link", name="New user").click()
        expect(page).to_have_url(f"{base}/users/new")
        page.wait_for_load_state("load")
        page.get_by_label("User id").fill(user)
        page.get_by_label("Name").fill("Web Member")
        page.get_by_label("Password").fill("short")
        page.get_by_role("button", name="Create user").click()  # refused in the browser, nothing sent
        expect(page.locator("#password-error")).to_contain_text("At least 8 characters")
        page.get_by_label("Password").fill(MEMBER_PASSWORD)
        page.get_by_role("button", name="Create user").click()
        expect(page.get_by_role("heading", name=f"User {user}")).to_be_visible()
        expect(page.get_by_text("No project yet: this user cannot log in")).to_be_visible()

        # Project and role are picked from lists: the projects that exist, the roles the policy knows.
        expect(page.get_by_label("Role", exact=True).locator("option")).to_have_text(
            [re.compile("^admin"), re.compile("^member")])
        page.get_by_label("Project", exact=True).select_option(project)
        page.get_by_label("Role", exact=True).select_option("member")
        page.get_by_role("button", name="Assign project").click()
        expect(page.get_by_role("status")).to_contain_text(f"{user} now has the role member in project {project}.")
        expect(page.locator("#assignments")).to_contain_text(project)
        # Assigning it again: Hanami's 409 is shown on the form.
        page.get_by_label("Project", exact=True).select_option(project)
        page.get_by_label("Role", exact=True).select_option("member")
        page.get_by_role("button", name="Assign project").click()
        expect(page.locator("#assign-form")).to_contain_text("is already assigned to user")

        page.get_by_role("link", name="Audit").click()
        expect(page.get_by_role("heading", name="Audit")).to_be_visible()
        page.get_by_label("Source", exact=True).select_option("console")
        page.get_by_label("Text", exact=True).fill(tag)
        page.get_by_role("button", name="Filter").click()
        timeline = page.locator("#timeline")
        expect(timeline).to_contain_text("create project")
        expect(timeline).to_contain_text("create user")
        expect(timeline).to_contain_text("assign project")
        expect(page).to_have_url(f"{base}/audit?user=&action=&method=&source=console&since=&until=&q={tag}&per_page=25")

        page.get_by_role("button", name="Log out").click()
        browser_login(page, base, user, MEMBER_PASSWORD)
        expect(page.get_by_test_id("current-project")).to_contain_text(f"project {project} · role member")
        expect(page.locator("a.admin-link")).to_have_count(0)
        page.get_by_role("link", name="Audit").click()
        rows = page.locator("#timeline tbody tr")
        expect(rows.first).to_contain_text("login")
        expect(rows.first).to_contain_text(user)
        expect(page.locator("#timeline td.audit-user").filter(has_not_text=user)).to_have_count(0)
        # Called directly, an admin page refuses the member.
        response = page.goto(f"{base}/users")
        assert response is not None and response.status == 403
        expect(page.get_by_role("alert")).to_contain_text("This section is for Hanami admins only.")
        assert page.console_errors == []  # type: ignore[attr-defined]
    finally:
        _cleanup(backend.url, user, project)
