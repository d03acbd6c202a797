"""A declared template (a cluster made outside the console) is checked against what Hanami tells of
the cluster, may be replaced by its declarer or an admin, and the bridge never sends a brick name
Hanami has not confirmed. Against the faithful emulator, which stays silent for unknown bricks."""

from __future__ import annotations

import html
import json
import secrets
from typing import AsyncIterator, Iterator

import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, console_settings, wait_for
from tests.console.test_direct_io import Admin, Browser, closed, until
from webconsole.hanami.client import HanamiAPI
from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE, EXAMPLE_MNIST_TEMPLATE


@pytest.fixture(scope="module")
def faithful_server(emulator_faithful) -> Iterator[ConsoleServer]:
    server = ConsoleServer(console_settings(emulator_faithful.url)).start()
    yield server
    server.stop()


@pytest.fixture
async def console(faithful_server: ConsoleServer) -> AsyncIterator[Browser]:
    browser = await Browser(faithful_server).login(ADMIN_ID, ADMIN_PASSWORD)
    yield browser
    await browser.aclose()


@pytest.fixture
async def backend(emulator_faithful) -> AsyncIterator[HanamiAPI]:
    async with Admin(emulator_faithful.url) as api:
        yield api


async def declare(browser: Browser, uuid: str, template: str):
    return await browser.http.post(f"/clusters/{uuid}/direct/template",
                                   data={"csrf_token": browser.csrf, "template": template})


async def test_the_declarer_can_correct_a_wrong_declaration(console: Browser, backend: HanamiAPI) -> None:
    cluster = await backend.create_cluster(f"outside_{secrets.token_hex(3)}", EXAMPLE_MNIST_TEMPLATE)
    try:
        wrong = EXAMPLE_MNIST_TEMPLATE.replace("input: test_input", "input: pixels")
        assert (await declare(console, cluster["uuid"], wrong)).status_code == 303
        page = await console.http.get(f"/clusters/{cluster['uuid']}/direct")
        assert 'data-testid="declared-template"' in page.text and "Replace the template" in page.text
        corrected = await declare(console, cluster["uuid"], EXAMPLE_MNIST_TEMPLATE)
        assert corrected.status_code == 303  # was 409: a wrong declaration stuck for 30 days
        page = await console.http.get(f"/clusters/{cluster['uuid']}/direct")
        assert 'value="test_input"' in page.text and 'value="pixels"' not in page.text
    finally:
        await backend.delete_cluster(cluster["uuid"])


async def test_a_console_made_template_still_cannot_be_replaced(console: Browser) -> None:
    uuid = await console.create_cluster()
    try:
        refused = await declare(console, uuid, EXAMPLE_MNIST_TEMPLATE.replace("test_input", "pixels"))
        assert refused.status_code == 409
    finally:
        await console.http.post(f"/clusters/{uuid}/delete", data={"csrf_token": console.csrf})


async def test_declared_bricks_are_checked_against_what_hanami_named(
    console: Browser, backend: HanamiAPI, tmp_path,
) -> None:
    """A CSV request result is named after the cluster's input brick (Q-T3): a declaration naming
    another input brick is refused; the right one opens, and teaching waits for Hanami to name the
    output brick in its first answer."""
    cluster = await backend.create_cluster(f"outside_csv_{secrets.token_hex(3)}", EXAMPLE_CSV_TEMPLATE)
    uuid = cluster["uuid"]
    csv = tmp_path / "series.csv"
    csv.write_text("test_input,test_output\n" + "".join(f"{i % 7 / 7},{i % 5 / 5}\n" for i in range(40)))
    dataset = await backend.upload_csv(f"series {secrets.token_hex(3)}", csv)
    try:
        # before anything is known, a declaration is the user's word only: nothing is sent for it
        assert (await declare(console, uuid, EXAMPLE_CSV_TEMPLATE)).status_code == 303
        ws = await console.socket(uuid)
        await ws.send(json.dumps({"op": "open", "csrf": console.csrf}))
        refused = await until(ws, lambda m: m["type"] == "refused" or m.get("state") == "open")
        assert refused["type"] == "refused" and "has not confirmed an input brick named 'test_input'" in refused["message"]
        await closed(ws)
        # a CSV request task run from the console: Hanami names its result after the input brick
        queued = await console.http.post("/tasks/new", data={
            "csrf_token": console.csrf, "name": "shape probe", "type": "request", "repeat": "1",
            "cluster_uuid": uuid, "dataset_uuid": dataset})
        assert queued.status_code == 303, queued.text[:500]

        async def finished() -> bool:
            tasks = (await backend.list_tasks(uuid)).records()
            return bool(tasks) and all(t["state"] == "finished" for t in tasks)

        await wait_for(finished)
        wrong = EXAMPLE_CSV_TEMPLATE.replace("input: test_input", "input: series")
        refused_page = await declare(console, uuid, wrong)
        assert refused_page.status_code == 422
        assert "an input brick named 'test_input'" in html.unescape(refused_page.text)
        assert "shape probe" in html.unescape(refused_page.text)
        # the right declaration opens; teaching first needs Hanami to name the output brick
        assert (await declare(console, uuid, EXAMPLE_CSV_TEMPLATE)).status_code == 303
        ws, opened = await console.bridge(uuid)
        assert opened["layout"]["input_name"] == "test_input"
        await ws.send(json.dumps({"op": "teach", "values": [0.5], "expected": [0.5]}))
        error = await until(ws, lambda m: m["type"] == "error")
        assert "ask once first" in error["message"]
        await ws.send(json.dumps({"op": "ask", "values": [0.5]}))
        await until(ws, lambda m: m["type"] == "output")
        await ws.send(json.dumps({"op": "teach", "values": [0.5], "expected": [0.5]}))
        assert (await until(ws, lambda m: m["type"] in ("taught", "error")))["type"] == "taught"
        await ws.send(json.dumps({"op": "close"}))
        assert (await closed(ws))["task_mode"] is True
    finally:
        for result in (await backend.list_results()).records():
            if result.get("name") == "test_input":
                await backend.delete_result(result["uuid"])
        await backend.delete_cluster(uuid)
        await backend.delete_dataset(dataset)
