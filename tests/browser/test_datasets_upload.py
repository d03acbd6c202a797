"""Datasets in Chromium: upload CSV and MNIST through the page with both progress bars, refused
broken files with precise messages (and nothing created on Hanami), delete through the confirmation."""

from __future__ import annotations

import re
import secrets
import struct
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import browser_login
from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, SlowLink, run_sync
from webconsole.hanami.client import HanamiClient

# Record the highest value the browser -> console progress bar reaches (it is replaced by the
# status block once the console answers, so the test watches it from the start).
WATCH_BROWSER_PROGRESS = """
() => {
  window.__maxBrowserProgress = 0;
  const note = () => {
    const bar = document.getElementById("browser-progress");
    if (bar) { window.__maxBrowserProgress = Math.max(window.__maxBrowserProgress, Number(bar.value)); }
  };
  new MutationObserver(note).observe(document.body, {subtree: true, childList: true, attributes: true});
  document.addEventListener("progress", note, true);
}
"""


def backend_datasets(backend_url: str) -> dict[str, dict]:
    async def run() -> dict[str, dict]:
        async with HanamiClient(backend_url) as hanami:
            api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            return {row["uuid"]: row for row in (await api.list_datasets()).records()}

    return run_sync(run)  # type: ignore[return-value]


def delete_datasets(backend_url: str, uuids: list[str]) -> None:
    async def run() -> None:
        async with HanamiClient(backend_url) as hanami:
            api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            for uuid in uuids:
                await api.delete_dataset(uuid)

    run_sync(run)


def upload_and_wait(page: Page, form_testid: str, name: str, files: dict[str, Path]) -> None:
    form = page.get_by_test_id(form_testid)
    form.get_by_label("Dataset name").fill(name)
    for label, path in files.items():
        form.get_by_label(label).set_input_files(str(path))
    page.evaluate(WATCH_BROWSER_PROGRESS)
    form.get_by_role("button", name="Upload").click()
    status = page.get_by_test_id("upload-status")
    expect(status).to_have_attribute("data-phase", "done", timeout=30_000)
    expect(status.locator(".progress-text")).to_have_text("100.0 %")
    expect(status.locator("progress")).to_have_attribute("value", "100.0")
    assert page.evaluate("window.__maxBrowserProgress") == 100
    expect(page).to_have_url(re.compile(r".*/datasets/uploads/[A-Za-z0-9_-]+$"))


def test_upload_csv_and_mnist_refuse_broken_files_and_delete(
    page: Page, console_server: ConsoleServer, backend, demo_files, tmp_path: Path
) -> None:
    tag = secrets.token_hex(3)
    csv_name, mnist_name = f"browser csv {tag}", f"browser mnist {tag}"
    browser_login(page, console_server.url)
    page.goto(console_server.url + "/datasets/upload")

    # 1. the demo CSV, both legs to 100 %
    upload_and_wait(page, "csv-form", csv_name, {"CSV file": demo_files.csv})
    expect(page.get_by_test_id("upload-done")).to_contain_text(csv_name)
    expect(page.get_by_test_id("next-step")).to_be_visible()

    # 2. the small MNIST pair, then the new dataset's page shows what Hanami counted
    page.get_by_role("link", name="Upload another dataset").click()
    upload_and_wait(page, "mnist-form", mnist_name, {
        "Images file (idx3-ubyte)": demo_files.small_images, "Labels file (idx1-ubyte)": demo_files.small_labels})
    page.get_by_role("link", name="Open the dataset").click()
    expect(page.get_by_test_id("lines")).to_have_text("200")
    expect(page.get_by_test_id("inputs")).to_have_text("784 (28 × 28)")
    expect(page.get_by_test_id("outputs")).to_have_text("10")

    # 3. broken files: the precise message, and nothing new on Hanami
    bad_labels = tmp_path / "bad-labels.idx1-ubyte"
    bad_labels.write_bytes(struct.pack(">II", 0x00000801, 200) + bytes([3] * 41 + [10] + [1] * 158))
    page.goto(console_server.url + "/datasets/upload")
    mnist = page.get_by_test_id("mnist-form")
    mnist.get_by_label("Dataset name").fill(f"broken mnist {tag}")
    mnist.get_by_label("Images file (idx3-ubyte)").set_input_files(str(demo_files.small_images))
    mnist.get_by_label("Labels file (idx1-ubyte)").set_input_files(str(bad_labels))
    mnist.get_by_role("button", name="Upload MNIST dataset").click()
    expect(page.locator("#labels-error")).to_have_text(
        "The label file 'bad-labels.idx1-ubyte' has the label 10 for image number 42 (counting from 1); "
        "MNIST labels must be digits from 0 to 9.")
    # the form keeps the name that was typed
    expect(page.get_by_test_id("mnist-form").get_by_label("Dataset name")).to_have_value(f"broken mnist {tag}")

    bad_csv = tmp_path / "measurements.csv"
    bad_csv.write_bytes(b"test_input,test_output\n0.1,0.2\n0.2,0,3\n")
    csv_form = page.get_by_test_id("csv-form")
    csv_form.get_by_label("Dataset name").fill(f"broken csv {tag}")
    csv_form.get_by_label("CSV file").set_input_files(str(bad_csv))
    csv_form.get_by_role("button", name="Upload").click()
    expect(page.locator("#csv-error")).to_contain_text(
        "measurements.csv: line 3 has 3 values but the header has 2 columns")
    # A picture chosen by mistake is called what it is, not "Windows line endings".
    picture = tmp_path / "photo.csv"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    csv_form.get_by_label("CSV file").set_input_files(str(picture))
    csv_form.get_by_role("button", name="Upload").click()
    expect(page.locator("#csv-error")).to_contain_text("photo.csv is not a CSV file: it holds binary data")
    # nothing of either reached Hanami (by name: the backend is shared with other tests' uploads)
    names = {row["name"] for row in backend_datasets(backend.url).values()}
    assert not names & {f"broken mnist {tag}", f"broken csv {tag}"}

    # 4. delete the CSV dataset through the confirmation page
    page.goto(console_server.url + "/datasets")
    page.get_by_label("Search datasets").fill(tag)  # live search swaps only the table
    expect(page).to_have_url(console_server.url + f"/datasets?q={tag}&sort=name&order=asc&per_page=25")
    expect(page.get_by_test_id("dataset-row")).to_have_count(2)
    page.get_by_role("link", name="Lines").click()  # sort, boosted into the table region
    expect(page).to_have_url(re.compile(r".*sort=lines&order=asc.*"))
    expect(page.get_by_role("link", name="Lines ▲")).to_be_visible()
    expect(page.get_by_test_id("dataset-row").first).to_contain_text(mnist_name)  # 200 lines before 400
    page.get_by_role("link", name="Lines ▲").click()
    expect(page).to_have_url(re.compile(r".*sort=lines&order=desc.*"))
    expect(page.get_by_test_id("dataset-row").first).to_contain_text(csv_name)
    row = page.get_by_test_id("dataset-row").filter(has_text=csv_name)
    expect(row.locator("td.num").nth(2)).to_have_text("400")
    row.get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", name=f"Delete dataset {csv_name}?")).to_be_visible()
    page.get_by_role("button", name="Delete dataset").click()
    expect(page.get_by_role("status").filter(has_text=f"Dataset '{csv_name}' deleted.")).to_be_visible()
    expect(page.get_by_test_id("dataset-row").filter(has_text=csv_name)).to_have_count(0)
    expect(page.get_by_test_id("dataset-row").filter(has_text=mnist_name)).to_have_count(1)

    remaining = backend_datasets(backend.url)
    assert not any(row["name"] == csv_name for row in remaining.values())
    delete_datasets(backend.url, [uuid for uuid, row in remaining.items() if row["name"] == mnist_name])
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_cancel_during_the_browser_leg_sends_nothing(
    page: Page, console_server: ConsoleServer, backend, tmp_path: Path
) -> None:
    """A slow link between the browser and the console (a throttling relay on loopback: every
    byte of the body waits its turn, however busy the machine) leaves time to watch the progress
    figures and press Cancel while the file is on its way: the request is aborted and nothing
    reaches Hanami."""
    name = f"browser aborted {secrets.token_hex(3)}"
    big = tmp_path / "slow.csv"
    big.write_bytes(b"a,b\n" + b"".join(b"%d.25,%d\n" % (i, i % 10) for i in range(300_000)))  # ~3.5 MB
    link = SlowLink(console_server.url, rate=256 * 1024).start()  # ~14 s for the file
    try:
        browser_login(page, link.url)
        page.goto(link.url + "/datasets/upload")
        form = page.get_by_test_id("csv-form")
        form.get_by_label("Dataset name").fill(name)
        form.get_by_label("CSV file").set_input_files(str(big))
        form.get_by_role("button", name="Upload CSV dataset").click()
        transfer = page.locator("#browser-transfer")
        expect(transfer).to_be_visible()
        expect(page.locator("#browser-rate")).to_contain_text("MB/s")
        expect(page.locator("#browser-left")).to_contain_text("left")
        page.get_by_role("button", name="Cancel").click()
        expect(page.get_by_role("status").filter(has_text="Upload cancelled. Nothing was sent to Hanami.")) \
            .to_be_visible()
        expect(transfer).to_be_hidden()
        expect(form.get_by_role("button", name="Upload CSV dataset")).to_be_enabled()
        # the console answers the next request normally and Hanami never got this upload (checked by
        # name: the backend is shared with other tests, whose uploads may still be converting)
        page.goto(link.url + "/datasets")
    finally:
        link.stop()
    assert name not in {row["name"] for row in backend_datasets(backend.url).values()}
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_upload_works_without_javascript(browser, console_server: ConsoleServer, backend, demo_files) -> None:
    """Plain form POST, then the status page refreshes itself (<noscript> meta refresh) until done."""
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(console_server.url + "/login")
        page.get_by_label("User id").fill(ADMIN_ID)
        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        name = f"nojs csv {secrets.token_hex(3)}"
        page.goto(console_server.url + "/datasets/upload")
        form = page.get_by_test_id("csv-form")
        form.get_by_label("Dataset name").fill(name)
        form.get_by_label("CSV file").set_input_files(str(demo_files.csv))
        form.get_by_role("button", name="Upload CSV dataset").click()
        expect(page).to_have_url(re.compile(r".*/datasets/uploads/[A-Za-z0-9_-]+$"))
        expect(page.get_by_test_id("upload-status")).to_have_attribute("data-phase", "done", timeout=30_000)
        page.get_by_role("link", name="Open the dataset").click()
        expect(page.get_by_test_id("lines")).to_have_text("400")
        # Hanami reports 0 inputs and outputs for a CSV: the page shows the column names a template must match
        expect(page.get_by_test_id("columns")).to_have_text("test_input, test_output")
        expect(page.get_by_test_id("inputs")).to_have_count(0)
    finally:
        context.close()
    delete_datasets(backend.url, [uuid for uuid, row in backend_datasets(backend.url).items() if row["name"] == name])
