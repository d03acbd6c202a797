"""Direct IO bridge: a real websocket client (cookie + Origin, like a browser) against the console on a
real uvicorn, bridged to the emulator's cluster websocket, in both quirk modes."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, console_settings, login, wait_for
from webconsole.hanami.client import HanamiClient
from webconsole.hanami.errors import Conflict
from webconsole.protocol.template import EXAMPLE_MNIST_TEMPLATE
from webconsole.web.core.deps import SESSION_COOKIE


# -- helpers (also used by the browser test and the bench) ----------------------------------------

class Browser:
    """A logged-in browser: an HTTP client with the session cookie and the page's CSRF token."""

    def __init__(self, server: ConsoleServer) -> None:
        self.server = server
        self.http = httpx.AsyncClient(base_url=server.url, timeout=20)
        self.csrf = ""

    async def login(self, user: str = ADMIN_ID, password: str = ADMIN_PASSWORD) -> "Browser":
        self.csrf = await login(self.http, user, password)
        return self

    @property
    def cookie(self) -> str:
        return self.http.cookies.get(SESSION_COOKIE) or ""

    async def create_cluster(self, template: str = EXAMPLE_MNIST_TEMPLATE) -> str:
        """Through the console's own form, so the console remembers the template."""
        name = f"direct {secrets.token_hex(3)}"
        response = await self.http.post("/clusters", data={"csrf_token": self.csrf, "name": name, "template": template})
        assert response.status_code == 303, response.text[:1000]
        match = re.search(r"/clusters/([0-9a-f-]{36})$", response.headers["location"])
        assert match
        return match.group(1)

    async def socket(self, uuid: str, *, origin: str | None = None, cookie: str | None = None) -> ClientConnection:
        url = self.server.url.replace("http://", "ws://", 1) + f"/clusters/{uuid}/direct/ws"
        headers = {"Cookie": f"{SESSION_COOKIE}={self.cookie if cookie is None else cookie}"}
        return await connect(url, origin=origin or self.server.url, additional_headers=headers,  # type: ignore[arg-type]
                             open_timeout=10, max_size=None)

    async def bridge(self, uuid: str, **hello: Any) -> tuple[ClientConnection, dict]:
        """Open a bridge and wait until it is open; returns (socket, the 'open' state message)."""
        ws = await self.socket(uuid)
        await ws.send(json.dumps({"op": "open", "csrf": self.csrf, **hello}))
        message = await until(ws, lambda m: m["type"] in ("refused",) or m.get("state") in ("open", "closed"))
        assert message.get("state") == "open", message
        return ws, message

    async def aclose(self) -> None:
        await self.http.aclose()


async def until(ws: ClientConnection, match: Any, timeout: float = 20.0) -> dict:
    """The first JSON message from the console that satisfies ``match``."""
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            if match(message):
                return message


async def closed(ws: ClientConnection, timeout: float = 20.0) -> dict:
    """The final 'closed' state message; the socket is closed after it."""
    message = await until(ws, lambda m: m.get("state") == "closed", timeout)
    async with asyncio.timeout(timeout):
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await ws.recv()
    return message


class Admin:
    """Direct Hanami access for set-up and for proving what the backend's state is."""

    def __init__(self, url: str) -> None:
        self.client = HanamiClient(url)

    async def __aenter__(self) -> Any:
        token = await self.client.login(ADMIN_ID, ADMIN_PASSWORD)
        return self.client.api(token.token)

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()


async def task_runs_to_finished(api: Any, cluster_uuid: str, dataset_uuid: str) -> None:
    """The proof that a cluster is in task mode: a new task starts and finishes."""
    task = await api.create_task(f"proof {secrets.token_hex(3)}", "request", cluster_uuid, dataset_uuid)

    async def finished() -> bool:
        return (await api.get_task(task["uuid"], cluster_uuid))["state"] == "finished"

    await wait_for(finished, timeout=30)


DIGIT = [0.0] * 784
for _row in range(6, 22):
    DIGIT[_row * 28 + 14] = 255.0  # a vertical stroke, "1"-like


# -- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def faithful_console(emulator_faithful) -> AsyncIterator[ConsoleServer]:
    server = ConsoleServer(console_settings(emulator_faithful.url)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def small_dataset(backend, demo_files) -> AsyncIterator[str]:
    async with Admin(backend.url) as api:
        uuid = await api.upload_mnist(f"dio {secrets.token_hex(3)}", demo_files.small_images, demo_files.small_labels)
        yield uuid
        await api.delete_dataset(uuid)


@pytest.fixture
async def browser(console_server) -> AsyncIterator[Browser]:
    b = await Browser(console_server).login()
    yield b
    await b.aclose()


# -- tests ----------------------------------------------------------------------------------------

async def test_open_ask_teach_close_returns_to_task_mode(browser: Browser, backend, small_dataset) -> None:
    uuid = await browser.create_cluster()
    ws, opened = await browser.bridge(uuid)
    assert opened["layout"] == {"input_name": "test_input", "input_size": 784, "output_name": "test_output",
                                "output_size": 10, "from_template": True}
    page = await browser.http.get(f"/clusters/{uuid}/direct")
    assert page.status_code == 200 and 'data-testid="held-by"' in page.text  # the page shows it is in use
    await ws.send(json.dumps({"op": "ask", "values": DIGIT}))
    answer = await until(ws, lambda m: m["type"] == "output")
    assert len(answer["values"]) == 10 and answer["winner"] in range(10)
    # taught in rounds of 30 until it answers 7 (a real Hanami may need more than one round)
    for _ in range(10):
        await ws.send(json.dumps({"op": "teach", "values": DIGIT, "label": 7, "repeat": 30}))
        taught = await until(ws, lambda m: m["type"] == "taught")
        assert taught["count"] == 30 and not taught["stopped"]
        await ws.send(json.dumps({"op": "ask", "values": DIGIT}))
        if (await until(ws, lambda m: m["type"] == "output"))["winner"] == 7:
            break
    else:
        raise AssertionError("300 teach steps did not make the cluster answer 7")
    # A malformed exchange is refused by the console and the bridge stays usable.
    await ws.send(json.dumps({"op": "ask", "values": [1.0, 2.0]}))
    error = await until(ws, lambda m: m["type"] == "error")
    assert "784 values are needed, 2 were given" in error["message"] and not error.get("fatal")
    for bad in (True, "1", None, [1], 10 ** 400):  # not a number, or too large for one: refused
        await ws.send(json.dumps({"op": "ask", "values": [bad] + DIGIT[1:]}))
        error = await until(ws, lambda m: m["type"] == "error")
        assert "every value must be a finite number" in error["message"] and not error.get("fatal"), bad
    await ws.send('{"op": "ask", "values": [NaN' + ", 0" * 783 + "]}")
    assert "finite" in (await until(ws, lambda m: m["type"] == "error"))["message"]
    await ws.send(json.dumps({"op": "ask", "values": DIGIT}))
    await until(ws, lambda m: m["type"] == "output")
    # The browser goes away: the console closes the backend socket and returns the cluster to TASK.
    await ws.close()
    async with Admin(backend.url) as api:
        page_after = await wait_for(lambda: _page_free(browser, uuid))
        assert page_after
        await task_runs_to_finished(api, uuid, small_dataset)
        await api.delete_cluster(uuid)


async def _page_free(browser: Browser, uuid: str) -> bool:
    page = await browser.http.get(f"/clusters/{uuid}/direct")
    return 'data-testid="held-by"' not in page.text and 'data-testid="left-direct"' not in page.text


async def test_close_op_reports_task_mode(browser: Browser, backend) -> None:
    uuid = await browser.create_cluster()
    ws, _ = await browser.bridge(uuid)
    await ws.send(json.dumps({"op": "close"}))
    final = await closed(ws)
    assert final["task_mode"] is True and "Closed on the page" in final["message"]
    async with Admin(backend.url) as api:
        with pytest.raises(Conflict):  # TASK -> TASK is refused: it is in task mode
            await api.set_mode(uuid, "TASK")
        await api.delete_cluster(uuid)


async def test_foreign_origin_and_missing_login_are_refused_before_accept(browser: Browser) -> None:
    uuid = await browser.create_cluster()
    with pytest.raises(websockets.InvalidStatus) as refused:
        await browser.socket(uuid, origin="http://evil.example")
    assert refused.value.response.status_code == 403
    with pytest.raises(websockets.InvalidStatus) as anonymous:
        await browser.socket(uuid, cookie="not-a-session")
    assert anonymous.value.response.status_code == 403
    await browser.http.post(f"/clusters/{uuid}/delete", data={"csrf_token": browser.csrf})


@pytest.mark.parametrize("hello", [{"op": "open"}, {"op": "open", "csrf": "wrong"}, "not json"])
async def test_missing_or_wrong_csrf_is_refused(browser: Browser, backend, hello: Any) -> None:
    uuid = await browser.create_cluster()
    ws = await browser.socket(uuid)
    await ws.send(hello if isinstance(hello, str) else json.dumps(hello))
    refused = await until(ws, lambda m: m["type"] == "refused")
    assert "did not come from this console" in refused["message"]
    assert (await closed(ws))["task_mode"] is None  # never switched, nothing to return
    assert ws.close_code == 4403
    async with Admin(backend.url) as api:
        await api.set_mode(uuid, "DIRECT")  # nothing switched it: it is still idle in TASK
        await api.set_mode(uuid, "TASK")
        await api.delete_cluster(uuid)


async def test_busy_cluster_is_refused_with_the_task_named(browser: Browser, backend, small_dataset) -> None:
    uuid = await browser.create_cluster()
    async with Admin(backend.url) as api:
        await api.set_mode(uuid, "DIRECT")  # tasks created now stay queued
        task = await api.create_task(f"waiting {secrets.token_hex(3)}", "request", uuid, small_dataset)
        # one more through the console's task form: the console knows its name
        name = f"named wait {secrets.token_hex(3)}"
        created = await browser.http.post("/tasks/new", data={
            "csrf_token": browser.csrf, "name": name, "type": "request", "cluster_uuid": uuid,
            "dataset_uuid": small_dataset, "repeat": "1"})
        assert created.status_code in (200, 303), created.text[:500]
        ws = await browser.socket(uuid)
        await ws.send(json.dumps({"op": "open", "csrf": browser.csrf}))
        refused = await until(ws, lambda m: m["type"] == "refused")
        assert refused["reason"] == "busy" and task["uuid"] in refused["message"]
        assert f"“{name}”" in refused["message"]
        assert {"uuid": task["uuid"], "state": "queued", "name": None} in refused["tasks"]
        assert {t["name"] for t in refused["tasks"]} == {None, name}
        await closed(ws)
        await api.set_mode(uuid, "TASK")
        for queued in refused["tasks"]:
            await wait_for(lambda: _task_state(api, queued["uuid"], uuid, "finished"))
        await api.delete_cluster(uuid)


async def _task_state(api: Any, task: str, cluster: str, state: str) -> bool:
    return (await api.get_task(task, cluster))["state"] == state


async def test_second_session_is_refused_while_held(browser: Browser, console_server, backend) -> None:
    uuid = await browser.create_cluster()
    ws, _ = await browser.bridge(uuid)
    other = await Browser(console_server).login()
    try:
        ws2 = await other.socket(uuid)
        await ws2.send(json.dumps({"op": "open", "csrf": other.csrf}))
        refused = await until(ws2, lambda m: m["type"] == "refused")
        assert refused["reason"] == "held" and refused["holder"] == "Test Admin"
        assert re.search(r"held by Test Admin since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", refused["message"])
        await closed(ws2)
        # the first bridge is untouched by the refusal
        await ws.send(json.dumps({"op": "ask", "values": DIGIT}))
        await until(ws, lambda m: m["type"] == "output")
        # "Return to task mode" is refused while a bridge is open
        forced = await other.http.post(f"/clusters/{uuid}/direct/task-mode", data={"csrf_token": other.csrf})
        assert forced.status_code == 303
        page = await other.http.get(f"/clusters/{uuid}/direct")
        assert "Direct IO is open on this cluster" in page.text
        async with Admin(backend.url) as api:
            with pytest.raises(Conflict):  # still in DIRECT: the console did not switch it back
                await api.set_mode(uuid, "DIRECT")
    finally:
        await other.aclose()
    await ws.send(json.dumps({"op": "close"}))
    await closed(ws)
    await browser.http.post(f"/clusters/{uuid}/delete", data={"csrf_token": browser.csrf})


@pytest.mark.parametrize("mode", ["backend", "faithful"])
async def test_unknown_brick_is_refused_before_sending(mode: str, console_server, faithful_console, backend,
                                                       emulator_faithful) -> None:
    server = console_server if mode == "backend" else faithful_console
    target = backend if mode == "backend" else emulator_faithful
    b = await Browser(server).login()
    try:
        uuid = await b.create_cluster()
        for hello, words in (({"input": "nope"}, "no input brick named 'nope'"),
                             ({"output": "test_input"}, "no output brick named 'test_input'")):
            ws = await b.socket(uuid)
            await ws.send(json.dumps({"op": "open", "csrf": b.csrf, **hello}))
            refused = await until(ws, lambda m: m["type"] == "refused")
            assert words in refused["message"] and "test_input" in refused["message"]
            await closed(ws)
        # nothing reached Hanami: the cluster is idle in task mode and a bridge opens normally
        ws, _ = await b.bridge(uuid, input="test_input", output="test_output")
        await ws.send(json.dumps({"op": "ask", "values": DIGIT}))
        await until(ws, lambda m: m["type"] == "output")
        await ws.send(json.dumps({"op": "close"}))
        assert (await closed(ws))["task_mode"] is True
        async with Admin(target.url) as api:
            await api.delete_cluster(uuid)
    finally:
        await b.aclose()


async def test_a_declared_template_sends_nothing_hanami_has_not_confirmed_faithful(
    faithful_console, emulator_faithful,
) -> None:
    """A cluster created outside the console: nothing is sent until the user gives its template, and
    then only brick names Hanami has confirmed: a declared brick the cluster lacks would meet Hanami's
    silence (Q-W1) and cost the real server a worker thread for good."""
    b = await Browser(faithful_console).login()
    try:
        async with Admin(emulator_faithful.url) as api:
            cluster = await api.create_cluster(f"outside {secrets.token_hex(3)}", EXAMPLE_MNIST_TEMPLATE)
            uuid = cluster["uuid"]
            page = await b.http.get(f"/clusters/{uuid}/direct")
            assert "does not know its template" in page.text and 'id="dio-template"' in page.text
            assert 'id="connect-form"' not in page.text
            # without a template the bridge sends nothing at all
            ws = await b.socket(uuid)
            await ws.send(json.dumps({"op": "open", "csrf": b.csrf, "input": "wrong_brick", "input_size": 784,
                                      "output": "test_output", "output_size": 10}))
            refused = await until(ws, lambda m: m["type"] == "refused" or m.get("state") == "open")
            assert "does not know this cluster's template" in refused["message"]
            await ws.close()
            # a template that does not parse is refused with its line
            broken = await b.http.post(f"/clusters/{uuid}/direct/template",
                                       data={"csrf_token": b.csrf, "template": "version: 1\nbricks:\n  x\n"})
            assert broken.status_code == 422 and "line 3" in broken.text
            # the user declares a template whose input brick the cluster does not have
            declared = EXAMPLE_MNIST_TEMPLATE.replace("input: test_input", "input: wrong_brick")
            done = await b.http.post(f"/clusters/{uuid}/direct/template",
                                     data={"csrf_token": b.csrf, "template": declared})
            assert done.status_code == 303
            ws = await b.socket(uuid)
            await ws.send(json.dumps({"op": "open", "csrf": b.csrf}))
            refused = await until(ws, lambda m: m["type"] == "refused" or m.get("state") == "open")
            assert refused["type"] == "refused" and "has not confirmed an input brick named 'wrong_brick'" in refused["message"]
            await closed(ws)
            # nothing reached the cluster: it is idle in task mode and usable
            await api.set_mode(uuid, "DIRECT")
            await api.set_mode(uuid, "TASK")
            await api.delete_cluster(uuid)
    finally:
        await b.aclose()


async def test_open_ask_teach_against_faithful(faithful_console, emulator_faithful) -> None:
    b = await Browser(faithful_console).login()
    try:
        uuid = await b.create_cluster()
        ws, _ = await b.bridge(uuid)
        await ws.send(json.dumps({"op": "teach", "values": DIGIT, "expected": [0.0] * 9 + [1.0], "repeat": 20}))
        assert (await until(ws, lambda m: m["type"] == "taught"))["count"] == 20
        await ws.send(json.dumps({"op": "ask", "values": DIGIT}))
        assert (await until(ws, lambda m: m["type"] == "output"))["winner"] == 9
        await ws.close()
        async with Admin(emulator_faithful.url) as api:
            async def free() -> bool:
                try:
                    await api.set_mode(uuid, "DIRECT")  # only possible once it is idle in TASK again
                except Conflict:
                    return False
                return True

            await wait_for(free)
            await api.set_mode(uuid, "TASK")
            await api.delete_cluster(uuid)
    finally:
        await b.aclose()


async def test_return_to_task_mode_action(browser: Browser, backend) -> None:
    uuid = await browser.create_cluster()
    async with Admin(backend.url) as api:
        await api.set_mode(uuid, "DIRECT")  # e.g. left by a crashed console
        response = await browser.http.post(f"/clusters/{uuid}/direct/task-mode", data={"csrf_token": browser.csrf})
        assert response.status_code == 303
        page = await browser.http.get(response.headers["location"])
        assert "The cluster is in task mode" in page.text
        with pytest.raises(Conflict):
            await api.set_mode(uuid, "TASK")  # it is in TASK now
        # already in TASK: Hanami's 409 counts as success
        again = await browser.http.post(f"/clusters/{uuid}/direct/task-mode", data={"csrf_token": browser.csrf})
        assert again.status_code == 303
        assert "The cluster is in task mode" in (await browser.http.get(again.headers["location"])).text
        # without the CSRF token: refused
        forged = await browser.http.post(f"/clusters/{uuid}/direct/task-mode", data={})
        assert forged.status_code == 403
        await api.delete_cluster(uuid)


async def test_replay_uploaded_mnist(browser: Browser, demo_files, backend) -> None:
    uuid = await browser.create_cluster()
    files = {"images": ("img.idx", demo_files.small_images.read_bytes()),
             "labels": ("lbl.idx", demo_files.small_labels.read_bytes())}
    bad = await browser.http.post(f"/clusters/{uuid}/direct/replay", data={"kind": "mnist"},
                                  files={"images": files["images"], "labels": ("l.idx", b"\x00\x00\x08\x01junk")},
                                  headers={"X-CSRF-Token": browser.csrf})
    assert bad.status_code == 422 and bad.json()["error"]
    upload = await browser.http.post(f"/clusters/{uuid}/direct/replay", data={"kind": "mnist"}, files=files,
                                     headers={"X-CSRF-Token": browser.csrf})
    assert upload.status_code == 200, upload.text
    replay = upload.json()
    assert replay["samples"] == 200
    ws, _ = await browser.bridge(uuid)
    await ws.send(json.dumps({"op": "replay", "id": replay["id"], "mode": "train", "limit": 150}))
    trained = await until(ws, lambda m: m["type"] == "replay" and m["finished"], timeout=60)
    assert trained["done"] == 150 and trained["accuracy"] is not None
    await ws.send(json.dumps({"op": "replay", "id": replay["id"], "mode": "request"}))
    asked = await until(ws, lambda m: m["type"] == "replay" and m["finished"], timeout=60)
    assert asked["done"] == 200 and 0.0 <= asked["accuracy"] <= 1.0 and asked["correct"] is not None
    await ws.send(json.dumps({"op": "close"}))
    await closed(ws)
    async with Admin(backend.url) as api:
        await api.delete_cluster(uuid)


async def test_idle_logout_and_shutdown_close_the_bridge(backend, small_dataset) -> None:
    """A console of its own: tiny idle timeout and session re-check interval, then a shutdown."""
    server = ConsoleServer(console_settings(backend.url)).start()
    registry = server.app.state.direct_io
    registry.housekeeping_interval = 0.2
    b = await Browser(server).login()
    try:
        # idle
        registry.idle_timeout = 0.5
        uuid = await b.create_cluster()
        ws, _ = await b.bridge(uuid)
        # a job longer than the idle timeout is not idleness
        await ws.send(json.dumps({"op": "teach", "values": DIGIT, "label": 1, "repeat": 1000}))
        taught = await until(ws, lambda m: m["type"] == "taught")
        assert taught["count"] == 1000
        final = await closed(ws)
        assert "idle" in final["message"] and final["task_mode"] is True
        registry.idle_timeout = 300
        # logout ends the session: the bridge notices and closes
        ws, _ = await b.bridge(uuid)
        await b.http.post("/logout", data={"csrf_token": b.csrf})
        final = await closed(ws)
        assert "session ended" in final["message"] and final["task_mode"] is True
        # graceful shutdown with an open bridge: the cluster goes back to TASK
        await b.login()
        ws, _ = await b.bridge(uuid)
        await asyncio.to_thread(server.stop)
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        async with Admin(backend.url) as api:
            await task_runs_to_finished(api, uuid, small_dataset)
            await api.delete_cluster(uuid)
    finally:
        await b.aclose()
        server.stop()


async def test_replay_uploaded_csv_and_vector_cluster(browser: Browser, demo_files, backend) -> None:
    from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE

    uuid = await browser.create_cluster(EXAMPLE_CSV_TEMPLATE)
    page = await browser.http.get(f"/clusters/{uuid}/direct")
    assert '<option value="test_input" data-size="1">test_input (1 neurons)</option>' in page.text
    upload = await browser.http.post(
        f"/clusters/{uuid}/direct/replay", data={"kind": "csv"},
        files={"csv": ("data.csv", demo_files.csv.read_bytes())}, headers={"X-CSRF-Token": browser.csrf},
    )
    assert upload.status_code == 200, upload.text
    replay = upload.json()
    ws, opened = await browser.bridge(uuid)
    assert opened["layout"]["input_size"] == 1 and opened["layout"]["output_size"] == 1
    await ws.send(json.dumps({"op": "teach", "values": [0.5], "expected": [0.25], "repeat": 3}))
    assert (await until(ws, lambda m: m["type"] == "taught"))["count"] == 3
    await ws.send(json.dumps({"op": "replay", "id": replay["id"], "mode": "request", "limit": 40}))
    done = await until(ws, lambda m: m["type"] == "replay" and m["finished"], timeout=60)
    assert done["done"] == 40 and done["accuracy"] is None and done["mae"] is not None
    # a MNIST replay on this cluster is refused with the reason, and the bridge stays open
    await ws.send(json.dumps({"op": "replay", "id": "nope", "mode": "request"}))
    assert "not available" in (await until(ws, lambda m: m["type"] == "error"))["message"]
    await ws.send(json.dumps({"op": "close"}))
    await closed(ws)
    async with Admin(backend.url) as api:
        await api.delete_cluster(uuid)


async def test_bridge_under_a_url_prefix(backend) -> None:
    """Behind a proxy at /console: the page's websocket and replay URLs carry the prefix and work."""
    server = ConsoleServer(console_settings(backend.url, root_path="/console")).start()
    b = await Browser(server).login()
    try:
        uuid = await b.create_cluster()
        page = await b.http.get(f"/clusters/{uuid}/direct")
        config = json.loads(re.search(r'id="direct-io-config">(.*?)</script>', page.text, re.S).group(1))
        assert config["ws"] == f"/console/clusters/{uuid}/direct/ws"
        assert config["replay"] == f"/console/clusters/{uuid}/direct/replay"
        ws, _ = await b.bridge(uuid)  # ws://host:port/console/clusters/<uuid>/direct/ws
        await ws.send(json.dumps({"op": "ask", "values": DIGIT}))
        await until(ws, lambda m: m["type"] == "output")
        await ws.send(json.dumps({"op": "close"}))
        assert (await closed(ws))["task_mode"] is True
        async with Admin(backend.url) as api:
            await api.delete_cluster(uuid)
    finally:
        await b.aclose()
        server.stop()


async def test_stop_ends_a_long_teach(browser: Browser, backend) -> None:
    uuid = await browser.create_cluster()
    ws, _ = await browser.bridge(uuid)
    await ws.send(json.dumps({"op": "teach", "values": DIGIT, "label": 2, "repeat": 1000}))
    await ws.send(json.dumps({"op": "ask", "values": DIGIT}))  # one exchange at a time
    assert "Wait until the current exchange is done" in (await until(ws, lambda m: m["type"] == "error"))["message"]
    await ws.send(json.dumps({"op": "stop"}))
    taught = await until(ws, lambda m: m["type"] == "taught")
    assert taught["stopped"] and 1 <= taught["count"] < 1000
    await ws.send(json.dumps({"op": "close"}))
    await closed(ws)
    async with Admin(backend.url) as api:
        await api.delete_cluster(uuid)


async def test_backend_websocket_limit_is_reported(backend) -> None:
    """The console keeps at most backend_max_websockets open: a further bridge is told so at once."""
    server = ConsoleServer(console_settings(backend.url, backend_max_websockets=1)).start()
    b = await Browser(server).login()
    try:
        first, second = await b.create_cluster(), await b.create_cluster()
        ws, _ = await b.bridge(first)
        ws2 = await b.socket(second)
        await ws2.send(json.dumps({"op": "open", "csrf": b.csrf}))
        refused = await until(ws2, lambda m: m["type"] == "refused", timeout=5)
        assert refused["reason"] == "slots" and "1 backend websocket(s) open" in refused["message"]
        await closed(ws2)
        await ws.send(json.dumps({"op": "close"}))
        await closed(ws)
        ws2, _ = await b.bridge(second)  # the slot is free again
        await ws2.send(json.dumps({"op": "close"}))
        await closed(ws2)
        async with Admin(backend.url) as api:
            for uuid in (first, second):
                await api.delete_cluster(uuid)
    finally:
        await b.aclose()
        server.stop()
