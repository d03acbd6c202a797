"""No silent or misleading successes, in Chromium: an unfit dataset refused before it is queued, a task
that did nothing flagged, an accuracy check against a dataset of another size called out, same-named
datasets told apart, and the cluster page's checkpoint panels refreshed when the save task ends."""

from __future__ import annotations

import secrets

from playwright.sync_api import Page, expect

from tests.browser.conftest import browser_login
from tests.browser.test_datasets_upload import upload_and_wait
from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, console_settings, run_sync
from webconsole.hanami.client import HanamiClient
from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE, EXAMPLE_MNIST_TEMPLATE


def _backend(backend_url: str, work):
    async def run():
        async with HanamiClient(backend_url) as hanami:
            api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            return await work(api)

    return run_sync(run)


def _create_cluster_in_console(page: Page, base: str, name: str) -> str:
    """Through the console's form, so the console knows the cluster's template."""
    page.goto(base + "/clusters/new")
    page.get_by_role("link", name="Start from the MNIST example").click()
    expect(page.get_by_test_id("template-ok")).to_be_visible()
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create cluster").click()
    expect(page.get_by_role("heading", name=f"Cluster {name}")).to_be_visible()
    return page.url.rsplit("/", 1)[-1]


def test_unfit_dataset_refused_and_a_task_that_did_nothing_is_flagged(
        page: Page, console_server: ConsoleServer, backend, demo_files) -> None:
    base, tag = console_server.url, secrets.token_hex(3)

    async def set_up(api):
        # The demo CSV has the MNIST template's column names but 400 rows: fewer than 784 inputs.
        csv = await api.upload_csv(f"short curve {tag}", demo_files.csv)
        return csv

    csv_uuid = _backend(backend.url, set_up)
    browser_login(page, base)
    cluster_uuid = _create_cluster_in_console(page, base, f"known digits {tag}")
    try:
        page.goto(f"{base}/tasks/new?cluster_uuid={cluster_uuid}&type=train")
        page.get_by_label("Dataset", exact=True).select_option(label=f"short curve {tag} (csv)")
        page.get_by_label("Task name", exact=True).fill("doomed training")
        page.get_by_role("button", name="Queue task").click()
        error = page.locator("#dataset_uuid-error")
        expect(error).to_contain_text("This CSV has 400 rows")
        expect(error).to_contain_text("784")
        expect(page.get_by_label("Dataset", exact=True)).to_have_attribute("aria-invalid", "true")
        # nothing was queued
        assert _backend(backend.url, lambda api: api.list_tasks(cluster_uuid)).records() == []

    finally:
        async def clean(api):
            await api.delete_cluster(cluster_uuid)
            await api.delete_dataset(csv_uuid)
        _backend(backend.url, clean)


def test_accuracy_against_another_size_is_called_out_and_same_names_told_apart(
        page: Page, console_server: ConsoleServer, backend, demo_files) -> None:
    base, tag = console_server.url, secrets.token_hex(3)
    name = f"digits {tag}"

    async def set_up(api):
        return await api.upload_mnist(name, demo_files.test_images, demo_files.test_labels)

    held_out = _backend(backend.url, set_up)
    made, results = [held_out], []
    browser_login(page, base)
    cluster_uuid = _create_cluster_in_console(page, base, f"guesser {tag}")
    try:
        # A second dataset of the same name, through the console: accepted, with a warning.
        page.goto(base + "/datasets/upload?kind=mnist")
        upload_and_wait(page, "mnist-form", name, {
            "Images file (idx3-ubyte)": demo_files.small_images, "Labels file (idx1-ubyte)": demo_files.small_labels})
        expect(page.get_by_test_id("upload-status")).to_contain_text(f"1 other dataset is already called '{name}'")
        page.get_by_role("link", name="Open the dataset").click()
        small = page.url.rsplit("/", 1)[-1]
        made.append(small)

        # The picker tells the two apart: size and upload date, or the id when the console has no record.
        page.goto(f"{base}/tasks/new?cluster_uuid={cluster_uuid}&type=request")
        picker = page.get_by_label("Dataset", exact=True)
        labels = [text.strip() for text in picker.locator("option", has_text=name).all_inner_texts()]
        assert len(labels) == 2 and labels[0] != labels[1], labels
        assert any("200 images" in label and "uploaded 20" in label for label in labels), labels
        assert any(f"id {held_out[:8]}" in label for label in labels), labels

        # A request on the 200 digits, then a check against the 1,000: the sizes differ, say so.
        picker.select_option(small)
        page.get_by_label("Task name", exact=True).fill("ask small")
        page.get_by_role("button", name="Queue task").click()
        row = page.locator("tr", has_text="ask small")
        expect(row.locator(".badge")).to_have_text("finished", timeout=30_000)
        row.get_by_role("link", name="Result").click()
        results.append(page.url.rsplit("/", 1)[-1])
        page.locator("#check-dataset").select_option(held_out)
        page.get_by_role("button", name="Check accuracy").click()
        mismatch = page.get_by_test_id("size-mismatch")
        expect(mismatch).to_contain_text("This result has 200 answers")
        expect(mismatch).to_contain_text("has 1,000 images")
        expect(page.get_by_test_id("accuracy")).to_have_class("alert alert-warning accuracy")
        # The dataset the request ran on is offered, and checking against it is a real figure.
        page.get_by_role("button", name=f"Check against {name} (the request's dataset)").click()
        expect(page.get_by_test_id("size-mismatch")).to_have_count(0)
        expect(page.get_by_test_id("accuracy")).to_have_class("alert alert-success accuracy")
    finally:
        async def clean(api):
            await api.delete_cluster(cluster_uuid)
            for uuid in made:
                await api.delete_dataset(uuid)
            for uuid in results:
                await api.delete_result(uuid)
        _backend(backend.url, clean)


def test_checkpoint_panels_refresh_when_the_save_task_ends(
        page: Page, console_server: ConsoleServer, backend, demo_files) -> None:
    base, tag = console_server.url, secrets.token_hex(3)
    checkpoint = f"after training {tag}"
    browser_login(page, base)
    cluster_uuid = _create_cluster_in_console(page, base, f"saver {tag}")

    async def train(api):
        dataset = await api.upload_mnist(f"train {tag}", demo_files.train_images, demo_files.train_labels)
        # several passes: a real Hanami trains 4,000 digits in about 0.3 s, the save must wait behind
        for number in range(8):
            await api.create_task(f"long training {number}", "train", cluster_uuid, dataset)
        return dataset

    dataset = _backend(backend.url, train)
    try:
        # The save waits behind the training, so the page is loaded before the checkpoint exists.
        page.get_by_label("Checkpoint name").fill(checkpoint)
        page.get_by_role("button", name="Save checkpoint").click()
        expect(page.get_by_role("status").first).to_contain_text("once that task has run")
        expect(page.get_by_test_id("cluster-tasks")).to_have_attribute("data-polling", "on")
        # No reload: the panels refresh themselves when the tasks end.
        expect(page.get_by_test_id("cluster-checkpoints")).to_contain_text(checkpoint, timeout=60_000)
        expect(page.locator("#checkpoint_uuid option", has_text=checkpoint)).to_have_count(1)
    finally:
        async def clean(api):
            for row in (await api.list_checkpoints()).records():
                if row.get("name") == checkpoint:
                    await api.delete_checkpoint(row["uuid"])
            await api.delete_cluster(cluster_uuid)
            await api.delete_dataset(dataset)
        _backend(backend.url, clean)


def test_a_task_that_did_nothing_is_flagged(page: Page, emulator, demo_files, tmp_path) -> None:
    """On the embedded backend only: a user declares the wrong template for a cluster made outside
    the console (the CSV template, for an MNIST cluster), so the console's check passes, and a CSV of
    400 rows on the 784 inputs "finishes" having done nothing. The list must not show that as a
    success. A real Hanami 0.4.1 ends its process on that pairing instead, which is why the console
    queues tasks only on clusters whose template it knows (test_tasks_faithful)."""
    server = ConsoleServer(console_settings(emulator.url)).start()
    base, tag = server.url, secrets.token_hex(3)

    async def set_up(api):
        csv = await api.upload_csv(f"short curve {tag}", demo_files.csv)
        outside = await api.create_cluster(f"made elsewhere {tag}", EXAMPLE_MNIST_TEMPLATE)
        return csv, outside["uuid"]

    csv_uuid, outside_uuid = _backend(emulator.url, set_up)
    try:
        browser_login(page, base)
        page.goto(f"{base}/tasks/new?cluster_uuid={outside_uuid}&type=train")
        expect(page.get_by_test_id("template-unknown")).to_be_visible()
        page.get_by_test_id("template-unknown").get_by_role("link", name="cluster's direct IO page").click()
        page.get_by_label("Template", exact=True).fill(EXAMPLE_CSV_TEMPLATE)  # the wrong one
        page.get_by_role("button", name="Use this template").click()
        expect(page.get_by_text("The console now knows this cluster's bricks.")).to_be_visible()
        page.goto(f"{base}/tasks/new?cluster_uuid={outside_uuid}&type=train")
        expect(page.get_by_test_id("template-unknown")).to_have_count(0)
        page.get_by_label("Dataset", exact=True).select_option(label=f"short curve {tag} (csv)")
        page.get_by_label("Task name", exact=True).fill("empty training")
        page.get_by_role("button", name="Queue task").click()
        row = page.locator("tr", has_text="empty training")
        expect(row.get_by_test_id("did-nothing")).to_have_text("finished, did nothing", timeout=30_000)
        expect(row.locator(".badge-finished")).to_have_count(0)
        row.get_by_role("link", name="empty training").click()
        expect(page.get_by_test_id("task-status").get_by_test_id("did-nothing")).to_be_visible()
    finally:
        async def clean(api):
            await api.delete_cluster(outside_uuid)
            await api.delete_dataset(csv_uuid)
        _backend(emulator.url, clean)
        server.stop()
