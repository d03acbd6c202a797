"""A cluster's life in Chromium: create from the MNIST example with the live editor, save a
checkpoint, restore it, move host, delete through the confirmation."""

from __future__ import annotations

import re
import secrets
import time

from playwright.sync_api import Page, expect

from tests.browser.conftest import browser_login
from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, run_sync
from webconsole.hanami.client import HanamiClient
from webconsole.protocol.template import EXAMPLE_MNIST_TEMPLATE


def _delete_checkpoints(backend_url: str, uuids: list[str]) -> None:
    async def run() -> None:
        async with HanamiClient(backend_url) as hanami:
            api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            listed = {row["uuid"] for row in (await api.list_checkpoints()).records()}
            for uuid in uuids:
                if uuid in listed:
                    await api.delete_checkpoint(uuid)

    run_sync(run)


def test_cluster_life_cycle(page: Page, console_server: ConsoleServer, backend) -> None:
    base = console_server.url
    name = f"Browser cluster {secrets.token_hex(3)}"
    checkpoint = f"Browser save {secrets.token_hex(3)}"
    browser_login(page, base)

    # Create from the MNIST example: the layout is drawn, a typo is flagged with its line as we type.
    page.goto(base + "/clusters/new")
    page.get_by_role("link", name="Start from the MNIST example").click()
    editor = page.get_by_label("Template")
    expect(editor).to_have_value(EXAMPLE_MNIST_TEMPLATE)
    drawing = page.get_by_test_id("brick-layout")
    expect(drawing.locator("g.brick")).to_have_count(3)
    expect(drawing.locator("g.brick-input")).to_contain_text("784 neurons")
    expect(drawing.locator("g.brick-hidden")).to_contain_text("400 neurons")
    expect(drawing.locator("g.brick-output")).to_contain_text("10 neurons")

    editor.click()
    editor.press("Control+End")
    editor.press_sequentially("oops", delay=20)  # a stray word after the last brick
    error = page.get_by_test_id("template-error")
    expect(error).to_contain_text("Line 16")
    expect(error).to_contain_text("syntax error")
    for _ in range(4):
        editor.press("Backspace")
    expect(page.get_by_test_id("template-ok")).to_contain_text("3 bricks, 1194 neurons")

    editor.fill(EXAMPLE_MNIST_TEMPLATE.replace("number_of_neurons: 400", "number_of_neuron: 400"))
    expect(error).to_contain_text("Line 12, column 9")
    expect(error).to_contain_text("unkown brick-field 'number_of_neuron'")
    page.get_by_role("button", name="Go to line 12").click()
    selected = page.evaluate(
        "() => { const t = document.getElementById('template');"
        " return t.value.slice(t.selectionStart, t.selectionEnd); }"
    )
    assert selected == "number_of_neuron: 400"
    editor.fill(EXAMPLE_MNIST_TEMPLATE)
    expect(page.get_by_test_id("template-ok")).to_be_visible()

    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create cluster").click()
    expect(page.get_by_role("heading", name=f"Cluster {name}")).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text("created")
    expect(page.get_by_test_id("cluster-template")).to_contain_text("number_of_neurons: 784", use_inner_text=False)
    expect(page.get_by_test_id("cluster-tasks")).to_be_visible()  # the tasks page's region loaded
    cluster_url = page.url

    # Save a checkpoint; it appears once the save task has run.
    page.get_by_label("Checkpoint name").fill(checkpoint)
    page.get_by_role("button", name="Save checkpoint").click()
    expect(page.get_by_role("status").first).to_contain_text("once that task has run")
    option = page.locator("#checkpoint_uuid option", has_text=checkpoint)
    deadline = time.monotonic() + 20
    while option.count() == 0:
        assert time.monotonic() < deadline, "the checkpoint did not appear"
        page.reload()
    checkpoint_uuid = option.get_attribute("value")
    assert checkpoint_uuid

    try:
        # Restore it into the same cluster.
        page.get_by_label("Checkpoint", exact=True).select_option(checkpoint_uuid)
        page.get_by_role("button", name="Restore checkpoint").click()
        expect(page.get_by_role("status").first).to_contain_text(f"Restoring checkpoint '{checkpoint}' is queued")

        # Move to the last host listed (the emulator's second one; the real server built without
        # CUDA has a single cpu host, and moving there again is a move all the same).
        host_select = page.get_by_label("Host", exact=True)
        other = host_select.locator("option").last.get_attribute("value")
        assert other
        host_select.select_option(other)
        page.get_by_role("button", name="Move cluster").click()
        expect(page.get_by_role("status").first).to_contain_text(f"(id {other})")
        expect(page.get_by_test_id("cluster-host")).to_contain_text(re.compile(r"^\s*(cpu|cuda) host \d"))
        expect(page.get_by_test_id("cluster-host").locator("code.uuid")).to_have_text(other, use_inner_text=False)
        page.goto(base + "/hosts")
        expect(page.locator(f'tr[data-uuid="{other}"]')).to_contain_text(name)

        # Find it again through the list's search (htmx swaps just the list region).
        page.goto(base + "/clusters")
        page.get_by_role("searchbox").fill(name)
        page.get_by_role("button", name="Search").click()
        expect(page).to_have_url(re.compile(r"\?q=Browser"))
        expect(page.locator("#clusters-region tbody tr")).to_have_count(1)
        page.get_by_role("link", name=name).click()

        # Delete through the confirmation, which warns about the tasks.
        expect(page).to_have_url(cluster_url)
        page.get_by_role("link", name="Delete cluster…").click()
        expect(page.locator(".confirm")).to_contain_text("task history vanishes")
        page.get_by_role("button", name="Delete cluster").click()
        expect(page).to_have_url(re.compile(r"/clusters$"))
        expect(page.get_by_role("status").first).to_contain_text("deleted")
        expect(page.get_by_role("link", name=name)).to_have_count(0)
    finally:
        _delete_checkpoints(backend.url, [checkpoint_uuid])
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_cluster_editor_without_javascript(browser, console_server: ConsoleServer) -> None:
    """The editor, creation and deletion work with JavaScript off (the server does every check)."""
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        base = console_server.url
        browser_login(page, base)
        page.goto(base + "/clusters/new?example=csv")
        expect(page.get_by_test_id("brick-layout").locator("g.brick")).to_have_count(3)
        page.get_by_label("Template").fill(EXAMPLE_MNIST_TEMPLATE.replace("1,1,1", "1,1;1"))
        page.get_by_label("Name").fill(name := f"No script {secrets.token_hex(3)}")
        page.get_by_role("button", name="Check template").click()
        expect(page.get_by_test_id("template-error")).to_contain_text("Line 8, column 8")
        expect(page.get_by_label("Name")).to_have_value(name)
        page.get_by_label("Template").fill(EXAMPLE_MNIST_TEMPLATE)
        page.get_by_role("button", name="Create cluster").click()
        expect(page.get_by_role("heading", name=f"Cluster {name}")).to_be_visible()
        expect(page.get_by_role("link", name="Show the tasks of this cluster")).to_be_visible()
        page.get_by_role("link", name="Delete cluster…").click()
        page.get_by_role("button", name="Delete cluster").click()
        expect(page).to_have_url(re.compile(r"/clusters$"))
        expect(page.get_by_role("link", name=name)).to_have_count(0)
    finally:
        context.close()
