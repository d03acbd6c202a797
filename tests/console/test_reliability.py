"""Regression tests of the reliability review: redirect headers after a side effect, an empty MNIST
pair, refused websocket handshakes without an ERROR line, and the console's own 500s in the error log."""

from __future__ import annotations

import html
import logging
import re
import secrets
import struct
from pathlib import Path
from typing import AsyncIterator
from urllib.parse import unquote

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, console_settings, csrf_from, declare_template, login, wait_for
from webconsole.app import create_app
from webconsole.hanami.client import HanamiAPI, HanamiClient
from webconsole.protocol.template import EXAMPLE_MNIST_TEMPLATE

HX = {"HX-Request": "true"}


@pytest.fixture
async def hanami(backend) -> AsyncIterator[HanamiAPI]:
    async with HanamiClient(backend.url) as client:
        yield client.api((await client.login(ADMIN_ID, ADMIN_PASSWORD)).token)


# -- 5. redirect headers hold any `next`, and never fail after the change was made ----------------

async def test_htmx_task_with_a_non_latin1_next_is_queued_once_and_redirects(
    app_client: httpx.AsyncClient, hanami: HanamiAPI, demo_files,
) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    cluster = await hanami.create_cluster(f"next_{secrets.token_hex(3)}", EXAMPLE_MNIST_TEMPLATE)
    await declare_template(app_client, cluster["uuid"], EXAMPLE_MNIST_TEMPLATE)
    dataset = await hanami.upload_mnist(f"next digits {secrets.token_hex(3)}", demo_files.small_images,
                                        demo_files.small_labels)
    try:
        target = f"/clusters/{cluster['uuid']}?tab=日本語"
        answer = await app_client.post("/tasks/new", headers=HX, data={
            "csrf_token": csrf, "name": "next task", "type": "train", "repeat": "1",
            "cluster_uuid": cluster["uuid"], "dataset_uuid": dataset, "next": target})
        assert answer.status_code == 204, answer.text[:300]
        header = answer.headers["HX-Redirect"]
        header.encode("ascii")  # what a header can carry
        assert unquote(header) == target
        assert len((await hanami.list_tasks(cluster["uuid"])).records()) == 1
    finally:
        await hanami.delete_cluster(cluster["uuid"])
        await hanami.delete_dataset(dataset)


async def test_htmx_login_with_a_non_latin1_next_logs_in(app_client: httpx.AsyncClient) -> None:
    form = await app_client.get("/login")
    answer = await app_client.post("/login", headers=HX, data={
        "user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "next": "/datasets?q=Überprüfung✓",
        "csrf_token": csrf_from(form.text)})
    assert answer.status_code == 204, answer.text[:300]
    assert unquote(answer.headers["HX-Redirect"]) == "/datasets?q=Überprüfung✓"
    assert (await app_client.get("/datasets")).status_code == 200  # the session works


# -- 7. an MNIST pair without images ---------------------------------------------------------------

async def test_an_mnist_pair_with_no_images_is_refused(app_client: httpx.AsyncClient, hanami: HanamiAPI) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    before = set((await hanami.list_datasets()).column("uuid"))
    response = await app_client.post(
        "/datasets/upload", data={"csrf_token": csrf, "kind": "mnist", "name": "empty digits"},
        files={"images": ("images.idx3-ubyte", struct.pack(">IIII", 0x803, 0, 28, 28), "application/octet-stream"),
               "labels": ("labels.idx1-ubyte", struct.pack(">II", 0x801, 0), "application/octet-stream")})
    assert response.status_code == 422
    assert "holds no images" in html.unescape(response.text)
    assert set((await hanami.list_datasets()).column("uuid")) == before


# -- 8. an anonymous handshake on any path: a refusal, not an ERROR --------------------------------

async def test_refused_websocket_handshakes_log_no_error(
    console_server: ConsoleServer, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    for path in ("/datasets", "/no-such-page", "/clusters/x/direct/ws", "/static/css/base.css"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{console_server.port}{path}", open_timeout=10):
                pass
        assert refused.value.response.status_code == 403, path
    # uvicorn writes its line after the application returned: wait until every handshake task ended.
    state = console_server.server.server_state

    async def settled() -> bool:
        return not state.tasks

    await wait_for(settled, timeout=10)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


# -- 9. the console's own 500s on the error-log page -----------------------------------------------

async def test_console_500s_are_listed_on_the_error_log_of_every_replica(emulator, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    failing, other = (create_app(console_settings(emulator.url, session_store_url=store)) for _ in range(2))
    secret = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.c2ln"

    async def crash() -> None:
        raise RuntimeError(f"a failure that mentions the token {secret}")

    failing.add_api_route("/crash-for-the-test/{item}", crash, methods=["GET"])
    async with failing.router.lifespan_context(failing), other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=failing, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            page = await client.get("/crash-for-the-test/42")
            assert page.status_code == 500 and "Something went wrong" in page.text
            request_id = re.search(r"Request id: <code>(\w+)</code>", page.text).group(1)
        transport = httpx.ASGITransport(app=other, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            await login(client, ADMIN_ID, ADMIN_PASSWORD)
            log_page = await client.get("/errors")
    assert log_page.status_code == 200
    section = log_page.text.split('data-testid="console-errors"', 1)[1].split("</section>", 1)[0]
    assert request_id in section
    assert "/crash-for-the-test/{item}" in section and "RuntimeError" in section
    assert secret not in log_page.text and "mentions the token" not in log_page.text
