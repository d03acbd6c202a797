"""A console killed while a bridge is open leaves no cluster stuck: the next console (same shared store)
shows the cluster as left in direct mode, a new bridge takes it over, and "Return to task mode" works."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SECRET, ConsoleServer, console_settings, free_port
from tests.console.test_direct_io import DIGIT, Admin, Browser, closed, task_runs_to_finished, until
from webconsole.hanami.errors import Conflict


def _start_console_process(backend_url: str, store_url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = dict(
        os.environ, HANAMI_CONSOLE_BACKEND_URL=backend_url, HANAMI_CONSOLE_SECRET_KEY=SECRET,
        HANAMI_CONSOLE_SESSION_STORE_URL=store_url, HANAMI_CONSOLE_LOG_LEVEL="warning",
    )
    proc = subprocess.Popen([sys.executable, "-m", "webconsole.cli", "serve", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # supervisor and workers in one process group
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, "the console process exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            assert time.monotonic() < deadline, "the console process did not start"
            time.sleep(0.05)


class _Process:
    """Enough of ConsoleServer for the Browser helper."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"


async def test_killed_console_leaves_a_recoverable_cluster(backend, tmp_path: Path, demo_files) -> None:
    store_url = f"sqlite:///{tmp_path / 'shared-store.db'}"
    proc, port = _start_console_process(backend.url, store_url)
    try:
        first = await Browser(_Process(port)).login()  # type: ignore[arg-type]
        uuid = await first.create_cluster()
        ws, _ = await first.bridge(uuid)
        await ws.send(json.dumps({"op": "ask", "values": DIGIT}))
        await until(ws, lambda m: m["type"] == "output")
        os.killpg(proc.pid, signal.SIGKILL)  # the whole console, no clean-up at all: the cluster stays in DIRECT
        proc.wait(10)
        await first.aclose()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    async with Admin(backend.url) as api:
        with pytest.raises(Conflict):
            await api.set_mode(uuid, "DIRECT")  # proof: it is still in DIRECT
        # A console replica on the same store (sessions survive: the user is still logged in).
        server = ConsoleServer(console_settings(backend.url, session_store_url=store_url)).start()
        try:
            b = Browser(server)
            b.http.cookies.set("hanami_console_session", first.cookie)
            b.csrf = first.csrf
            # the dead console's lock has not expired yet: the page names its holder
            page = await b.http.get(f"/clusters/{uuid}/direct")
            assert page.status_code == 200
            assert 'data-testid="held-by"' in page.text and 'data-testid="left-direct"' not in page.text
            # once the lock is gone (it expires after a minute; here: the store forgets it now)
            await _expire_lock(store_url, uuid)
            page = await b.http.get(f"/clusters/{uuid}/direct")
            assert 'data-testid="left-direct"' in page.text and "Return to task mode" in page.text
            # a new bridge takes the cluster over (it is in DIRECT already) and works
            ws, _ = await b.bridge(uuid)
            await ws.send(json.dumps({"op": "ask", "values": DIGIT}))
            await until(ws, lambda m: m["type"] == "output")
            await ws.send(json.dumps({"op": "close"}))
            assert (await closed(ws))["task_mode"] is True
            dataset = await api.upload_mnist(f"dio crash {secrets.token_hex(3)}", demo_files.small_images,
                                             demo_files.small_labels)
            await task_runs_to_finished(api, uuid, dataset)
            # and "Return to task mode" after a crash: left in DIRECT again, then the action
            await api.set_mode(uuid, "DIRECT")
            response = await b.http.post(f"/clusters/{uuid}/direct/task-mode", data={"csrf_token": b.csrf})
            assert response.status_code == 303
            await task_runs_to_finished(api, uuid, dataset)
            await api.delete_dataset(dataset)
            await api.delete_cluster(uuid)
            await b.aclose()
        finally:
            server.stop()


async def _expire_lock(store_url: str, uuid: str) -> None:
    """Stands in for waiting LOCK_TTL: the dead console's lock is dropped through the store."""
    from webconsole.sessions import open_store
    from webconsole.web.direct_io.locks import LOCK_PREFIX

    store = open_store(store_url)
    try:
        assert await store.get(LOCK_PREFIX + uuid) is not None
        await store.delete(LOCK_PREFIX + uuid)
    finally:
        await store.aclose()


async def test_lock_holds_across_replicas(backend, tmp_path: Path) -> None:
    """Two console replicas on one shared store: a bridge on one refuses a bridge on the other."""
    store_url = f"sqlite:///{tmp_path / 'replicas.db'}"
    one = ConsoleServer(console_settings(backend.url, session_store_url=store_url)).start()
    two = ConsoleServer(console_settings(backend.url, session_store_url=store_url)).start()
    a = await Browser(one).login()
    b = await Browser(two).login()
    try:
        uuid = await a.create_cluster()
        ws, _ = await a.bridge(uuid)
        ws2 = await b.socket(uuid)
        await ws2.send(json.dumps({"op": "open", "csrf": b.csrf}))
        refused = await until(ws2, lambda m: m["type"] == "refused")
        assert refused["reason"] == "held" and "held by Test Admin since" in refused["message"]
        await closed(ws2)
        page = await b.http.get(f"/clusters/{uuid}/direct")
        assert 'data-testid="held-by"' in page.text
        await ws.send(json.dumps({"op": "close"}))
        await closed(ws)
        ws2, _ = await b.bridge(uuid)  # free again, from the other replica
        await ws2.send(json.dumps({"op": "close"}))
        assert (await closed(ws2))["task_mode"] is True
        async with Admin(backend.url) as api:
            await api.delete_cluster(uuid)
    finally:
        await a.aclose()
        await b.aclose()
        one.stop()
        two.stop()
