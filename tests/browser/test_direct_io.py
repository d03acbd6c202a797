"""Direct IO in Chromium: draw a digit, ask, teach it 100 times, ask again; a second user is refused while
the bridge is held; closing the tab returns the cluster to task mode (a task then runs to finished)."""

from __future__ import annotations

import secrets

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import browser_login
from tests.conftest import ConsoleServer, run_sync, wait_for
from tests.console.test_direct_io import Admin, Browser as ConsoleBrowser, task_runs_to_finished


def _create_cluster(server: ConsoleServer) -> str:
    async def create() -> str:
        b = await ConsoleBrowser(server).login()
        try:
            return await b.create_cluster()
        finally:
            await b.aclose()

    return run_sync(create)  # type: ignore[return-value]


def _draw_digit(page: Page) -> None:
    """A '7' in three strokes with the mouse (Pointer Events on the canvas)."""
    box = page.get_by_test_id("draw-canvas").bounding_box()
    assert box
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]

    def stroke(points: list[tuple[float, float]]) -> None:
        page.mouse.move(x0 + points[0][0] * w, y0 + points[0][1] * h)
        page.mouse.down()
        for px, py in points[1:]:
            page.mouse.move(x0 + px * w, y0 + py * h, steps=8)
        page.mouse.up()

    stroke([(0.25, 0.2), (0.75, 0.2)])
    stroke([(0.75, 0.2), (0.45, 0.85)])
    stroke([(0.38, 0.5), (0.65, 0.5)])


def test_draw_ask_teach_and_close_returns_to_task_mode(
    page: Page, browser: Browser, console_server: ConsoleServer, backend, demo_files
) -> None:
    uuid = _create_cluster(console_server)
    browser_login(page, console_server.url)
    page.goto(f"{console_server.url}/clusters/{uuid}")
    page.get_by_test_id("direct-io-link").click()  # from the cluster's page
    expect(page).to_have_url(f"{console_server.url}/clusters/{uuid}/direct")
    status = page.get_by_test_id("bridge-status")
    expect(status).to_have_attribute("data-state", "closed")
    page.get_by_role("button", name="Start direct IO").click()
    expect(status).to_have_attribute("data-state", "open")
    expect(status).to_contain_text("input test_input (784), output test_output (10)")

    _draw_digit(page)
    page.get_by_test_id("ask").click()
    winner = page.get_by_test_id("winner")
    expect(winner).to_contain_text("Winning class:")
    first = int(winner.get_attribute("data-winner") or "0")
    taught = (first + 3) % 10

    page.get_by_label("Correct class").select_option(str(taught))
    page.get_by_label("Repeat").fill("100")
    page.get_by_test_id("teach").click()
    expect(page.locator("#dio-teach-status")).to_contain_text("Taught 100 times", timeout=30_000)
    page.get_by_test_id("ask").click()
    expect(winner).to_have_attribute("data-winner", str(taught))
    expect(winner).to_contain_text(f"Winning class: {taught}")

    # Replay an uploaded MNIST pair through the bridge: running accuracy shown live.
    page.get_by_label("Images file (idx3)").set_input_files(str(demo_files.small_images))
    page.get_by_label("Labels file (idx1)").set_input_files(str(demo_files.small_labels))
    page.get_by_label("Samples").fill("60")
    page.get_by_role("button", name="Upload and replay").click()
    replay = page.get_by_test_id("replay-status")
    expect(replay).to_have_attribute("data-finished", "1", timeout=30_000)
    expect(replay).to_contain_text("60 / 60 samples asked — accuracy")

    # A second user (another browser session) is refused while the bridge is held, and told by whom.
    other_context = browser.new_context()
    try:
        other = other_context.new_page()
        browser_login(other, console_server.url)
        other.goto(f"{console_server.url}/clusters/{uuid}/direct")
        expect(other.get_by_test_id("held-by")).to_contain_text("Test Admin")
        other.get_by_role("button", name="Start direct IO").click()
        other_status = other.get_by_test_id("bridge-status")
        expect(other_status).to_have_attribute("data-state", "closed")
        expect(other_status).to_contain_text("held by Test Admin since")
    finally:
        other_context.close()

    assert page.console_errors == []  # type: ignore[attr-defined]
    page.close()  # the tab goes away: the bridge closes and the cluster returns to task mode

    async def prove_task_mode() -> None:
        async with Admin(backend.url) as api:
            dataset = await api.upload_mnist(
                f"dio tab {secrets.token_hex(3)}", demo_files.small_images, demo_files.small_labels
            )
            try:
                async def page_free() -> bool:
                    b = await ConsoleBrowser(console_server).login()
                    try:
                        text = (await b.http.get(f"/clusters/{uuid}/direct")).text
                    finally:
                        await b.aclose()
                    return 'data-testid="held-by"' not in text

                await wait_for(page_free, timeout=20)
                await task_runs_to_finished(api, uuid, dataset)
            finally:
                await api.delete_cluster(uuid)
                await api.delete_dataset(dataset)

    run_sync(prove_task_mode)


def test_vector_form_and_csv_replay(page: Page, console_server: ConsoleServer, backend, demo_files) -> None:
    from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE

    async def create() -> str:
        b = await ConsoleBrowser(console_server).login()
        try:
            return await b.create_cluster(EXAMPLE_CSV_TEMPLATE)
        finally:
            await b.aclose()

    uuid = run_sync(create)
    browser_login(page, console_server.url)
    page.goto(f"{console_server.url}/clusters/{uuid}/direct")
    page.get_by_role("button", name="Start direct IO").click()
    status = page.get_by_test_id("bridge-status")
    expect(status).to_have_attribute("data-state", "open")
    expect(page.get_by_test_id("draw-canvas")).to_be_hidden()
    page.get_by_label("Input values").fill("0.5")
    page.get_by_test_id("ask").click()
    expect(page.get_by_test_id("winner")).to_contain_text("Winning class: 0")
    page.get_by_label("Input values").fill("1, 2")  # wrong count: refused in the page
    page.get_by_test_id("ask").click()
    expect(page.locator("#dio-teach-status")).to_contain_text("1 numbers are needed, 2 were given")
    page.get_by_label("Input values").fill("0.5")
    page.get_by_label("Expected output").fill("0.25")
    page.get_by_label("Repeat").fill("5")
    page.get_by_test_id("teach").click()
    expect(page.locator("#dio-teach-status")).to_contain_text("Taught 5 times")
    page.get_by_label("CSV", exact=True).check()
    page.get_by_label("CSV file").set_input_files(str(demo_files.csv))
    page.get_by_label("Samples").fill("30")
    page.get_by_role("button", name="Upload and replay").click()
    replay = page.get_by_test_id("replay-status")
    expect(replay).to_have_attribute("data-finished", "1", timeout=30_000)
    expect(replay).to_contain_text("30 / 30 samples asked — mean absolute error")
    page.get_by_role("button", name="Disconnect").click()
    expect(status).to_have_attribute("data-state", "closed")
    expect(status).to_contain_text("The cluster is back in task mode.")
    assert page.console_errors == []  # type: ignore[attr-defined]

    async def cleanup() -> None:
        async with Admin(backend.url) as api:
            await api.delete_cluster(uuid)

    run_sync(cleanup)
