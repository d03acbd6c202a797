"""The main journey with the keyboard alone (Tab, Enter, Space, arrow keys), the focus always visible:
log in, upload the digits, create a cluster, train it, ask it, open the result and check it."""

from __future__ import annotations

import secrets

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError, Page, expect

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, run_sync
from webconsole.hanami.client import HanamiClient

MAX_TABS = 80
FOCUS_STYLE = """() => {
    const e = document.activeElement;
    if (!e || e === document.body) return null;
    const s = getComputedStyle(e);
    const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
    return {visible: outline || s.boxShadow !== 'none', tag: e.tagName, text: (e.innerText || e.value || e.id || '').slice(0, 40)};
}"""


def tab_to(page: Page, selector: str) -> None:
    """Press Tab until ``selector`` has the focus; every stop on the way shows where the focus is."""
    target = page.locator(selector).first
    expect(target).to_be_attached()
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_STYLE)
        if focus is not None:
            assert focus["visible"], f"the focus on {focus} is not visible"
        if target.evaluate("e => e === document.activeElement"):
            return
    raise AssertionError(f"{selector} cannot be reached with Tab")


def choose(page: Page, selector: str, label: str) -> None:
    """Pick an option of a focused select with the arrow keys."""
    tab_to(page, selector)
    select = page.locator(selector)
    for _ in range(50):
        if select.evaluate("s => s.options[s.selectedIndex].text") == label:
            return
        page.keyboard.press("ArrowDown")
    raise AssertionError(f"no option {label!r} in {selector}")


def attach(page: Page, selector: str, path) -> None:
    """Open a focused file input's chooser from the keyboard. Space and Enter both open it. Headless
    Chromium now and then shows no chooser for a key press (a CI run once saw none for either key in
    15 s), so each way is tried up to three times, the input focused again with Tab when it lost the
    focus; the chooser must open from the keyboard in the end."""
    tab_to(page, selector)
    target = page.locator(selector).first
    missed: list[str] = []
    for _ in range(3):
        for key in ("Space", "Enter"):
            if not target.evaluate("e => e === document.activeElement"):
                missed.append(f"focus on {page.evaluate('document.activeElement && document.activeElement.id')!r}")
                tab_to(page, selector)
            try:
                with page.expect_file_chooser(timeout=5_000) as chooser:
                    page.keyboard.press(key)
            except PlaywrightTimeoutError:
                missed.append(f"no chooser for {key}")
                continue
            chooser.value.set_files(str(path))
            return
    raise AssertionError(f"{selector}: the keyboard never opened the file chooser ({'; '.join(missed)})")


def test_main_journey_with_the_keyboard_alone(page: Page, console_server: ConsoleServer, backend, demo_files) -> None:
    base, tag = console_server.url, secrets.token_hex(3)
    digits, cluster = f"keyboard digits {tag}", f"keyboard cluster {tag}"
    page.goto(base + "/login")
    expect(page.get_by_label("User id")).to_be_focused()  # the form starts where the typing starts
    page.keyboard.type(ADMIN_ID)
    tab_to(page, "#password")
    page.keyboard.type(ADMIN_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("current-project")).to_be_visible()
    try:
        # Upload the small MNIST pair.
        tab_to(page, 'nav a[href$="/datasets"]')
        page.keyboard.press("Enter")
        tab_to(page, 'main a[href$="/datasets/upload"]')
        page.keyboard.press("Enter")
        tab_to(page, "#mnist-name")
        page.keyboard.type(digits)
        attach(page, "#mnist-images", demo_files.small_images)
        attach(page, "#mnist-labels", demo_files.small_labels)
        tab_to(page, '[data-testid="mnist-form"] button[type=submit]')
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("upload-status")).to_have_attribute("data-phase", "done", timeout=30_000)

        # Create a cluster from the MNIST example.
        tab_to(page, 'nav a[href$="/clusters"]')
        page.keyboard.press("Enter")
        tab_to(page, 'main a[href$="/clusters/new"]')
        page.keyboard.press("Enter")
        tab_to(page, 'a[data-example="mnist"]')
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("template-ok")).to_be_visible()
        tab_to(page, "#name")
        page.keyboard.type(cluster)
        page.keyboard.press("Enter")  # Create is the form's first button
        expect(page.get_by_role("heading", name=f"Cluster {cluster}")).to_be_visible()

        # Train it, then ask it about the same digits.
        for link, task in (("Train…", f"keyboard training {tag}"), ("Request…", f"keyboard request {tag}")):
            page.get_by_test_id("cluster-tasks").wait_for()
            tab_to(page, f'#cluster-tasks a.button:text-is("{link}")')
            page.keyboard.press("Enter")
            choose(page, "#dataset_uuid", f"{digits} (mnist)")
            tab_to(page, "#name")
            page.keyboard.type(task)
            tab_to(page, '#task-form button[type=submit]')
            page.keyboard.press("Enter")
            expect(page.locator("tr", has_text=task).locator(".badge")).to_have_text("finished", timeout=30_000)

        # Open the result and check it.
        tab_to(page, f'tr:has-text("keyboard request {tag}") a:text-is("Result")')
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name=f"Result keyboard request {tag}")).to_be_visible()
        choose(page, "#check-dataset", f"{digits} (mnist)")
        tab_to(page, '#result-check button[type=submit]')
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("accuracy")).to_contain_text("Accuracy against")
    finally:
        async def clean() -> None:
            async with HanamiClient(backend.url) as hanami:
                api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
                for row in (await api.list_clusters()).records():
                    if row["name"] == cluster:
                        await api.delete_cluster(row["uuid"])
                for row in (await api.list_datasets()).records():
                    if row["name"] == digits:
                        await api.delete_dataset(row["uuid"])
                for row in (await api.list_results()).records():
                    if row["name"] == f"keyboard request {tag}":
                        await api.delete_result(row["uuid"])

        run_sync(clean)
