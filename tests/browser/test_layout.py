"""The misalignments a newcomer noticed at 1366 px, measured in Chromium: the actions column's
borders, checkboxes and radio buttons next to their words, the login form before anything is typed,
the breadcrumb ending in the page's name."""

from __future__ import annotations

import secrets

from playwright.sync_api import Page, expect

from tests.browser.conftest import browser_login
from tests.conftest import ConsoleServer
from tests.browser.test_trust import _backend, _create_cluster_in_console

GAP_TO_WORDS = """(input) => {
    const label = input.closest('label');
    const range = document.createRange();
    range.selectNodeContents(label);
    const box = input.getBoundingClientRect();
    const words = [...range.getClientRects()].filter(r => r.left >= box.right - 1);
    // the drawn box sits in the middle of the input's area: a wide input puts it far from its words
    const drawnRight = box.left + box.width / 2 + 8;
    return Math.round(words[0].left - drawnRight);
}"""


IS_RED = """(field) => {
    const probe = document.createElement('i');
    probe.style.color = getComputedStyle(document.documentElement).getPropertyValue('--danger');
    document.body.append(probe);
    const red = getComputedStyle(probe).color;
    probe.remove();
    return getComputedStyle(field).borderTopColor === red;
}"""


def test_login_form_is_not_red_before_typing(page: Page, console_server: ConsoleServer) -> None:
    page.goto(console_server.url + "/login")
    user, password = page.get_by_label("User id"), page.get_by_label("Password")
    assert not user.evaluate(IS_RED) and not password.evaluate(IS_RED)
    # once the user typed something invalid and left the field, it is marked
    user.fill("1x")
    password.focus()
    assert user.evaluate(IS_RED) and not password.evaluate(IS_RED)


def test_actions_cells_line_up_and_choices_sit_by_their_words(page: Page, console_server: ConsoleServer,
                                                              backend) -> None:
    base = console_server.url
    browser_login(page, base)
    # The account page's table always has rows with an actions cell.
    page.goto(base + "/account")
    rows = page.locator("#my-projects tbody tr")
    expect(rows.first).to_be_visible()
    for index in range(rows.count()):
        tops = rows.nth(index).locator("td").evaluate_all(
            "cells => cells.map(c => [Math.round(c.getBoundingClientRect().top), Math.round(c.getBoundingClientRect().bottom)])")
        assert len(set(map(tuple, tops))) == 1, f"row {index}: cells {tops} do not share their borders"
        assert rows.nth(index).locator("td.actions").evaluate("c => getComputedStyle(c).display") == "table-cell"

    # The direct-IO replay form: radio buttons and the checkbox right next to their words.
    name = f"layout {secrets.token_hex(3)}"
    cluster = _create_cluster_in_console(page, base, name)
    try:
        # the breadcrumb ends in the cluster's name, with a space after the separator
        expect(page.locator("nav.breadcrumbs")).to_have_text(f"Clusters › {name}")
        page.goto(f"{base}/clusters/{cluster}/direct")
        page.get_by_role("button", name="Start direct IO").click()
        expect(page.get_by_test_id("bridge-status")).to_have_attribute("data-state", "open", timeout=15_000)
        choices = page.locator("label.dio-choice input")
        assert choices.count() >= 3
        for index in range(choices.count()):
            gap = choices.nth(index).evaluate(GAP_TO_WORDS)
            assert 0 <= gap <= 12, f"choice {index}: {gap} px between the box and its words"
        page.get_by_role("button", name="Disconnect").click()
        expect(page.get_by_test_id("bridge-status")).to_have_attribute("data-state", "closed", timeout=15_000)
    finally:
        _backend(backend.url, lambda api: api.delete_cluster(cluster))


def test_direct_io_fits_a_phone_once_connected(browser, console_server: ConsoleServer, backend) -> None:
    from tests.browser.axe import sideways_overflow

    base = console_server.url
    context = browser.new_context(viewport={"width": 360, "height": 780})
    context.set_default_timeout(15_000)
    page = context.new_page()
    browser_login(page, base)
    cluster = _create_cluster_in_console(page, base, f"phone {secrets.token_hex(3)}")
    try:
        page.goto(f"{base}/clusters/{cluster}/direct")
        page.get_by_role("button", name="Start direct IO").click()
        expect(page.get_by_test_id("bridge-status")).to_have_attribute("data-state", "open")
        canvas, preview = page.get_by_test_id("draw-canvas"), page.locator("#dio-preview")
        expect(canvas).to_be_visible()
        # the drawing area and the 28×28 preview are whole on the screen, and nothing scrolls sideways
        for element in (canvas, preview):
            box = element.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, box
        assert sideways_overflow(page) == 0
        page.get_by_role("button", name="Disconnect").click()
        expect(page.get_by_test_id("bridge-status")).to_have_attribute("data-state", "closed")
    finally:
        context.close()
        _backend(backend.url, lambda api: api.delete_cluster(cluster))
