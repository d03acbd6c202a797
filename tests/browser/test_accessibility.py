"""Every page through axe-core (WCAG 2.x A/AA and best practice), as an admin and as a member, at
1366 and 360 px, in light and dark mode: no violation, and no page wider than the window."""

from __future__ import annotations

import json
import os
import secrets
from typing import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.axe import run_axe, sideways_overflow
from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, run_sync, wait_for
from webconsole.hanami.client import HanamiClient
from webconsole.protocol.template import EXAMPLE_MNIST_TEMPLATE

MEMBER_PASSWORD = "axe-member-pass-1"
VIEWPORTS = {"1366": {"width": 1366, "height": 900}, "360": {"width": 360, "height": 780}}


async def _own_resources(api, tag: str, demo_files) -> dict[str, str]:
    """A dataset, a cluster with a finished request task and its result, and a checkpoint."""
    dataset = await api.upload_mnist(f"axe digits {tag}", demo_files.small_images, demo_files.small_labels)
    cluster = (await api.create_cluster(f"axe cluster {tag}", EXAMPLE_MNIST_TEMPLATE))["uuid"]
    task = (await api.create_task(f"axe request {tag}", "request", cluster, dataset))["uuid"]
    checkpoint = (await api.save_checkpoint(cluster, f"axe checkpoint {tag}"))["uuid"]

    async def done() -> bool:
        states = {row["uuid"]: row["state"] for row in (await api.list_tasks(cluster)).records()}
        results = {str(uuid) for uuid in (await api.list_results()).column("uuid")}
        return states.get(task) == "finished" and states.get(checkpoint) == "finished" and task in results

    await wait_for(done, timeout=60)
    return {"dataset": dataset, "cluster": cluster, "task": task, "result": task, "checkpoint": checkpoint}


@pytest.fixture(scope="module")
def site(backend, demo_files) -> Iterator[dict]:
    tag = secrets.token_hex(3)
    project, member = f"axe_team_{tag}", f"axe_member_{tag}"

    async def set_up() -> dict:
        async with HanamiClient(backend.url) as hanami:
            admin = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            await admin.create_project(project, "Axe team")
            await admin.create_user(member, "Axe Member", MEMBER_PASSWORD, False)
            await admin.assign_project(member, project, "member", False)
            mine = hanami.api((await hanami.login(member, MEMBER_PASSWORD)).token)
            return {"admin": await _own_resources(admin, tag, demo_files),
                    "member": await _own_resources(mine, tag + "m", demo_files),
                    "project": project, "member_id": member}

    made = run_sync(set_up)
    yield made

    async def clean_up() -> None:
        async with HanamiClient(backend.url) as hanami:
            admin = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            for who in ("admin", "member"):
                own = made[who]
                await admin.delete_cluster(own["cluster"])
                await admin.delete_dataset(own["dataset"])
                await admin.delete_result(own["result"])
                await admin.delete_checkpoint(own["checkpoint"])
            await admin.delete_user(member)
            await admin.delete_project(project)

    run_sync(clean_up)


def pages_for(who: str, site: dict) -> list[str]:
    own = site[who]
    c, t = own["cluster"], own["task"]
    paths = [
        "/", "/account", "/audit", "/datasets", "/datasets/upload", "/datasets/upload?kind=csv",
        f"/datasets/{own['dataset']}", f"/datasets/{own['dataset']}/delete",
        "/clusters", "/clusters/new", "/clusters/new?example=mnist", f"/clusters/{c}", f"/clusters/{c}/delete",
        f"/clusters/{c}/direct", f"/clusters/{c}/tasks", f"/clusters/{c}/tasks/{t}", f"/clusters/{c}/tasks/{t}/delete",
        f"/tasks/new?cluster_uuid={c}", "/results", f"/results/{own['result']}", f"/results/{own['result']}/delete",
        "/checkpoints", f"/checkpoints/{own['checkpoint']}", f"/checkpoints/{own['checkpoint']}/delete",
        "/hosts", "/system", "/no-such-page",
    ]
    if who == "admin":
        project, member = site["project"], site["member_id"]
        paths += ["/projects", "/projects/new", f"/projects/{project}", f"/projects/{project}/delete",
                  "/users", "/users/new", f"/users/{member}", f"/users/{member}/delete",
                  f"/users/{member}/projects/{project}/remove", "/errors"]
    return paths


def _log_in(page: Page, base: str, user: str, password: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("User id").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_test_id("current-project").wait_for()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", list(VIEWPORTS))
@pytest.mark.parametrize("who", ["admin", "member"])
def test_every_page_passes_axe_and_fits_the_window(browser: Browser, console_server: ConsoleServer, site: dict,
                                                   who: str, width: str, scheme: str) -> None:
    base = console_server.url
    context = browser.new_context(viewport=VIEWPORTS[width], color_scheme=scheme)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    report: dict[str, dict] = {}
    try:
        page = context.new_page()
        page.goto(base + "/login")
        page.wait_for_load_state("networkidle")
        report["/login"] = {"violations": run_axe(page), "overflow": sideways_overflow(page)}
        user, password = (ADMIN_ID, ADMIN_PASSWORD) if who == "admin" else (site["member_id"], MEMBER_PASSWORD)
        _log_in(page, base, user, password)
        for path in pages_for(who, site):
            page.goto(base + path)
            page.wait_for_load_state("networkidle")  # htmx regions (the cluster's tasks) and charts loaded
            report[path] = {"violations": run_axe(page), "overflow": sideways_overflow(page)}
    finally:
        context.close()
    if os.environ.get("HANAMI_CONSOLE_AXE_REPORT"):  # figures for a review: one JSON line per run
        with open(os.environ["HANAMI_CONSOLE_AXE_REPORT"], "a", encoding="utf-8") as out:
            out.write(json.dumps({"who": who, "width": width, "scheme": scheme, "pages": report}) + "\n")
    problems = [f"{path}: {v['id']} ({v['impact']}) {v['help']} at {v['nodes']}"
                for path, found in report.items() for v in found["violations"]]
    problems += [f"{path}: {found['overflow']} px wider than the window"
                 for path, found in report.items() if found["overflow"] > 0]
    assert not problems, f"{who} at {width} px, {scheme}:\n" + "\n".join(problems)


def test_menu_one_line_when_wide_and_folded_when_narrow(browser: Browser, console_server: ConsoleServer) -> None:
    base = console_server.url
    for width, folded in ((1366, False), (360, True)):
        context = browser.new_context(viewport={"width": width, "height": 800})
        try:
            page = context.new_page()
            _log_in(page, base, ADMIN_ID, ADMIN_PASSWORD)
            toggle = page.get_by_role("button", name="Menu")
            links = page.locator("#mainnav a")
            if not folded:
                # every entry, the admin ones included, on one line: none left alone on a second one
                tops = links.evaluate_all("links => links.map(a => Math.round(a.getBoundingClientRect().top))")
                assert len(tops) >= 10 and len(set(tops)) == 1, tops
                assert not toggle.is_visible()
                # the user's name and the admin badge do not touch
                gap = page.evaluate("""() => { const who = document.querySelector('.usermenu .who');
                    return who.querySelector('.badge').getBoundingClientRect().left - who.querySelector('a').getBoundingClientRect().right; }""")
                assert gap >= 4, gap
                continue
            # narrow: folded behind the button, which opens and closes it (Escape too)
            assert not links.first.is_visible()
            assert toggle.get_attribute("aria-expanded") == "false"
            toggle.click()
            assert toggle.get_attribute("aria-expanded") == "true" and links.first.is_visible()
            links.filter(has_text="Clusters").click()
            page.wait_for_url(base + "/clusters")
            page.get_by_role("button", name="Menu").click()
            page.keyboard.press("Escape")
            assert not page.locator("#mainnav a").first.is_visible()
            assert page.evaluate("() => document.activeElement.classList.contains('menu-toggle')")
        finally:
            context.close()
