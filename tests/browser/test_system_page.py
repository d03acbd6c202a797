"""The system page in Chromium: charts drawn by Chart.js under the strict CSP, tabs, refresh by polling."""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect

from tests.browser.conftest import browser_login
from tests.conftest import ConsoleServer


def wait_in_page(page: Page, expression: str, timeout: float = 10.0) -> None:
    """Poll ``expression`` until it is truthy. ``page.wait_for_function`` cannot do this here: it
    polls by evaluating the string inside the page, which the console's CSP (no 'unsafe-eval')
    refuses whenever the first check is false (a CI run saw it). ``page.evaluate`` is not bound by it."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {expression}")
        page.wait_for_timeout(50)


def test_charts_switch_range_and_refresh(page: Page, console_server: ConsoleServer) -> None:
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.headers.get("x-console-poll", ""))
            if request.url.endswith("/system/measurements.json") else None)
    browser_login(page, console_server.url)
    page.get_by_role("link", name="System").click()
    expect(page.get_by_role("heading", name="Measurements")).to_be_visible()
    for metric in ("power", "temperature", "speed"):
        canvas = page.locator(f"#chart-{metric}")
        expect(canvas).to_be_visible()
        # The deferred page script ran and Chart.js owns the canvas (waits: defer runs after parsing).
        wait_in_page(page, f"!!(window.Chart && Chart.getChart(document.getElementById('chart-{metric}')))")
    page.get_by_role("link", name="Seconds").click()
    expect(page).to_have_url(console_server.url + "/system?range=seconds")
    expect(page.get_by_role("link", name="Seconds")).to_have_attribute("aria-current", "page")
    expect(page.locator("#chart-power")).to_have_attribute("aria-label", "Power over the last seconds")
    assert page.evaluate("Chart.getChart(document.getElementById('chart-power')).data.labels.length") == 60
    # The JSON route is polled in the background, marked as a poll.
    expect(page.get_by_test_id("measure-status")).to_contain_text("Updated", timeout=15_000)
    assert polls and set(polls) == {"1"}
    assert page.console_errors == []  # type: ignore[attr-defined]
