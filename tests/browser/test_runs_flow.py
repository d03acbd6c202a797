"""A train-and-evaluate run in Chromium: start it from the cluster page, watch the learning curve grow
to five points, reload, restart the console, restore the one checkpoint the run kept."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import browser_login
from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, login, run_sync
from tests.console.test_runs import create_cluster, start_console, unique, upload_mnist, write_held_out
from webconsole.hanami.client import HanamiClient


@pytest.fixture(scope="module")
def held_out_files(demo_files, tmp_path_factory):
    return write_held_out(demo_files, tmp_path_factory.mktemp("held-out"))


def _set_up(console_url: str, demo_files, held_out: tuple) -> dict[str, str]:
    async def run() -> dict[str, str]:
        async with httpx.AsyncClient(base_url=console_url) as client:
            csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
            return {
                "train": await upload_mnist(client, csrf, unique("browser run train"), demo_files.small_images,
                                            demo_files.small_labels),
                "test": await upload_mnist(client, csrf, unique("browser run held out"), *held_out),
                "cluster": await create_cluster(client, csrf, unique("browser run cluster")),
            }

    return run_sync(run)  # type: ignore[return-value]


def _hanami(backend_url: str, action):
    async def run():
        async with HanamiClient(backend_url) as hanami:
            return await action(hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token))

    return run_sync(run)


def test_five_pass_run_in_the_browser(page: Page, backend, demo_files, held_out_files, tmp_path) -> None:
    store = f"sqlite:///{tmp_path / 'console-store.db'}"
    console = start_console(backend, store)
    made: dict[str, str] = {}
    try:
        made = _set_up(console.url, demo_files, held_out_files)
        browser_login(page, console.url)
        page.goto(f"{console.url}/clusters/{made['cluster']}")
        panel = page.get_by_test_id("cluster-runs")
        expect(panel).to_contain_text("No runs on this cluster yet")
        panel.get_by_role("link", name="New run…").click()

        name = unique("browser five")
        page.get_by_label("Run name").fill(name)
        page.get_by_label("Train on").select_option(made["train"])
        page.get_by_label("Evaluate on (held out)").select_option(made["test"])
        page.get_by_label("Passes", exact=True).fill("5")
        expect(page.get_by_label("Save a checkpoint after each pass and keep the best one")).to_be_checked()
        page.get_by_role("button", name="Start run").click()

        # The curve grows live to five points, and the page reloads itself once with the analysis.
        chart = page.locator("#run-chart")
        expect(chart).to_have_attribute("data-points", "5", timeout=120_000)
        expect(page.get_by_test_id("run-status")).to_have_attribute("data-state", "finished", timeout=30_000)
        expect(page.get_by_test_id("confusion-matrix")).to_be_visible()
        best = page.get_by_test_id("best-pass").inner_text()
        best_pass = int(re.search(r"pass (\d+)", best).group(1))  # type: ignore[union-attr]
        expect(chart).to_have_attribute("data-best", str(best_pass))
        run_url = page.url

        page.reload()
        expect(chart).to_have_attribute("data-points", "5")

        # A console restart on the same store: the run (and the session) are still there.
        console.stop()
        console = start_console(backend, store)
        run_url = re.sub(r"^http://127\.0\.0\.1:\d+", console.url, run_url)
        page.goto(run_url)
        expect(chart).to_have_attribute("data-points", "5")

        # Exactly one checkpoint is kept, the best pass's; one click restores it.
        async def run_checkpoints(api):
            return [c for c in (await api.list_checkpoints()).records() if c["name"].startswith(name)]

        kept = _hanami(backend.url, run_checkpoints)
        assert [c["name"] for c in kept] == [f"{name} pass {best_pass}"]
        made["checkpoint"] = kept[0]["uuid"]
        before = len(_hanami(backend.url, lambda api: api.list_tasks(made["cluster"])))
        page.get_by_role("button", name=f"Restore pass {best_pass} into the cluster").click()
        expect(page.get_by_role("status").first).to_contain_text(f"Restoring the checkpoint of pass {best_pass}")
        assert len(_hanami(backend.url, lambda api: api.list_tasks(made["cluster"]))) == before + 1

        # The runs table lists it, with its exports.
        page.get_by_role("link", name="Runs", exact=True).first.click()
        row = page.locator(f"tr:has(a:text-is('{name}'))")
        expect(row).to_contain_text("5 / 5")
        assert page.console_errors == []  # type: ignore[attr-defined]
    finally:
        console.stop()

        async def clean(api):
            if "cluster" in made:
                await api.delete_cluster(made["cluster"])
            for key in ("train", "test"):
                if key in made:
                    await api.delete_dataset(made[key])
            if "checkpoint" in made:
                await api.delete_checkpoint(made["checkpoint"])

        _hanami(backend.url, clean)
