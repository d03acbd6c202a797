"""Chromium against a console bound to the faithful emulator: the requests the pages' own scripts make
(htmx polls of task lists, the system page's measurement polls, boosted navigation) never hit a place
where the real Hanami crashes or hangs, for an admin and for a member.

Crash detection as in tests/console/test_real_hanami_quirks.py: the emulator's crash log, the console's
BackendUnavailable counter, and a liveness probe of the emulator.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any, Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import browser_login
from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, console_settings, run_sync
from tests.console.test_real_hanami_quirks import CRASH_LOGGERS, UNAVAILABLE, CrashWatch
from webconsole.hanami.client import HanamiClient

PASSWORD = "member-password-1"


@pytest.fixture(scope="module")
def watch() -> Iterator[CrashWatch]:
    watch = CrashWatch()
    loggers = [logging.getLogger(name) for name in CRASH_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        if logger.getEffectiveLevel() > logging.WARNING:
            logger.setLevel(logging.WARNING)
        logger.addHandler(watch)
    yield watch
    for logger, level in zip(loggers, levels):
        logger.removeHandler(watch)
        logger.setLevel(level)


@pytest.fixture(scope="module")
def faithful_console(emulator_faithful) -> Iterator[ConsoleServer]:
    server = ConsoleServer(console_settings(emulator_faithful.url)).start()
    yield server
    server.stop()


def unavailable(server: ConsoleServer) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return sum(float(value) for value in UNAVAILABLE.findall(text))


def assert_alive(server: ConsoleServer, emulator: Any, watch: CrashWatch, seen: int, what: str) -> None:
    assert watch.events[seen:] == [], f"{what}: the console made the backend crash/hang: {watch.events[seen:]}"
    assert unavailable(server) == 0, f"{what}: a backend call of the console ended without a reply"
    probe = httpx.get(f"{emulator.url}/control/v1/auth", timeout=10)
    assert probe.status_code == 401, what


def new_page(browser: Browser) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    page.console_errors = errors  # type: ignore[attr-defined]
    return page


def walk_nav(page: Page, base: str, who: str) -> list[str]:
    """Click through every link of the main navigation; returns the visited paths."""
    page.goto(base + "/")
    hrefs = page.locator("nav.mainnav a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs, "no navigation"
    for href in hrefs:
        page.goto(base + "/")
        with page.expect_response(lambda r: r.url.split("?")[0] == base + href and r.request.method == "GET") as info:
            page.locator(f'nav.mainnav a[href="{href}"]').click()
        status = info.value.status
        assert status in ((200, 403) if who == "member" else (200,)), (who, href, status)
        title = page.title()
        for failure in ("Something went wrong", "The backend failed", "Hanami cannot be reached"):
            assert failure not in title, (who, href, title)
        if href.endswith("/system") and status == 200:
            # the charts poll their data in the background (X-Console-Poll): one poll must come back
            with page.expect_response(lambda r: "measurements.json" in r.url, timeout=30_000) as polled:
                pass
            assert polled.value.status == 200
    return hrefs


def test_pages_and_their_polls_never_crash_hanami(browser: Browser, faithful_console: ConsoleServer,
                                                  emulator_faithful, watch: CrashWatch, demo_files) -> None:
    tag = secrets.token_hex(3)
    project, member = f"bquirks_{tag}", f"bquirk@member{tag}"
    seen = len(watch.events)

    async def set_up() -> str:
        async with HanamiClient(emulator_faithful.url) as hanami:
            api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            await api.create_project(project, f"Browser quirks {tag}")
            await api.create_user(member, f"Browser member {tag}", PASSWORD, False)
            await api.assign_project(member, project, "member", False)
            return await api.upload_mnist(f"browser digits {tag}", demo_files.small_images, demo_files.small_labels)

    dataset = run_sync(set_up)
    base = faithful_console.url
    cluster = ""
    page = new_page(browser)
    try:
        browser_login(page, base)
        # a cluster through the editor, a request task from its page, the live task list polling to the end
        page.goto(f"{base}/clusters/new?example=mnist")
        page.get_by_label("Name", exact=True).fill(f"browser quirks {tag}")
        page.get_by_role("button", name="Create cluster").click()
        expect(page).to_have_url(re.compile(r"/clusters/[0-9a-f-]{36}$"))
        cluster = page.url.rsplit("/", 1)[1]
        page.get_by_role("link", name="Request…").click()
        page.get_by_label("Dataset", exact=True).select_option(label=f"browser digits {tag} (mnist)")
        page.get_by_label("Task name", exact=True).fill("browser request")
        page.get_by_role("button", name="Queue task").click()
        expect(page).to_have_url(f"{base}/clusters/{cluster}")
        row = page.locator("tr", has_text="browser request")
        expect(row.locator(".badge")).to_have_text("finished", timeout=60_000)
        expect(page.get_by_test_id("cluster-tasks")).to_have_attribute("data-polling", "off")
        assert_alive(faithful_console, emulator_faithful, watch, seen, "request task")

        # Q-T1: a task deleted behind the page's back while the page polls: the poll reads the list only
        async def hold_and_queue() -> str:
            async with HanamiClient(emulator_faithful.url) as hanami:
                api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
                await api.set_mode(cluster, "DIRECT")  # queued tasks wait while the cluster is in DIRECT mode
                return (await api.create_task("held back", "train", cluster, dataset))["uuid"]

        held = run_sync(hold_and_queue)
        page.reload()
        held_row = page.locator(f'tr[data-task="{held}"]')  # made outside the console: listed by uuid
        expect(held_row).to_have_attribute("data-state", "queued")
        expect(page.get_by_test_id("cluster-tasks")).to_have_attribute("data-polling", "on")

        async def delete_behind_the_back() -> None:
            async with HanamiClient(emulator_faithful.url) as hanami:
                api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
                await api.delete_task(held, cluster)
                await api.set_mode(cluster, "TASK")

        run_sync(delete_behind_the_back)
        expect(held_row).to_have_count(0)
        expect(page.get_by_test_id("cluster-tasks")).to_have_attribute("data-polling", "off")
        page.goto(f"{base}/clusters/{cluster}/tasks/{held}")
        expect(page).to_have_title(re.compile("not found", re.I))
        assert_alive(faithful_console, emulator_faithful, watch, seen, "deleted task")

        # the result page (chart), then every page of the navigation
        page.goto(f"{base}/clusters/{cluster}")
        page.locator("tr", has_text="browser request").get_by_role("link", name="Result").click()
        expect(page.locator("#result-chart")).to_have_attribute("data-drawn", "1")
        admin_pages = walk_nav(page, base, "admin")
        assert any(href.endswith("/users") for href in admin_pages)
        assert_alive(faithful_console, emulator_faithful, watch, seen, "admin navigation")
        assert page.console_errors == []  # type: ignore[attr-defined]

        member_page = new_page(browser)
        try:
            browser_login(member_page, base, member, PASSWORD)
            walk_nav(member_page, base, "member")
            # the admin's cluster is invisible to the member: a 404 page, not a crash (and no direct IO)
            member_page.goto(f"{base}/clusters/{cluster}")
            expect(member_page).to_have_title(re.compile("not found", re.I))
            member_page.goto(f"{base}/clusters/{cluster}/direct")
            expect(member_page).to_have_title(re.compile("not found", re.I))
            member_page.goto(f"{base}/datasets/{dataset}")  # unlisted for the member (Q-C2)
            expect(member_page).to_have_title(re.compile("not found", re.I))
            assert member_page.console_errors == []  # type: ignore[attr-defined]
        finally:
            member_page.context.close()
        assert_alive(faithful_console, emulator_faithful, watch, seen, "member navigation")
    finally:
        page.context.close()

        async def clean_up() -> None:
            async with HanamiClient(emulator_faithful.url) as hanami:
                api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
                for record in (await api.list_results()).records():
                    if record.get("name") == "browser request" and record.get("owner_id") == ADMIN_ID:
                        await api.delete_result(record["uuid"])
                if cluster:
                    await api.delete_cluster(cluster)
                await api.delete_dataset(dataset)
                await api.delete_user(member)
                await api.delete_project(project)

        run_sync(clean_up)
