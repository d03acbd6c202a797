"""`hanami-console serve --workers N`: worker processes sharing one SQLite store on one host.

Every request below comes on a new connection, so the kernel hands it to whichever worker accepts
first; the workers' CPU times show that both served. Sessions, CSRF tokens, upload progress and
direct-IO bridge locks must hold whichever worker answers.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, SECRET, csrf_from, free_port, login
from webconsole.cli import cores, serve_workers
from webconsole.settings import Settings

NO_KEEPALIVE = httpx.Limits(max_keepalive_connections=0)


@dataclass
class Served:
    url: str
    process: subprocess.Popen

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children if "multiprocessing" in _cmdline(int(pid))
                and "resource_tracker" not in _cmdline(int(pid))]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def serve(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "webconsole.cli", "serve", *args], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def served(emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("workers")
    port = free_port()
    process = serve(["--host", "127.0.0.1", "--port", str(port), "--workers", "2"], {
        "HANAMI_CONSOLE_BACKEND_URL": emulator.url, "HANAMI_CONSOLE_SECRET_KEY": SECRET,
        "HANAMI_CONSOLE_SESSION_STORE_URL": f"sqlite:///{folder / 'sessions.db'}",
        "HANAMI_CONSOLE_UPLOAD_DIR": str(folder), "HANAMI_CONSOLE_LOG_LEVEL": "warning",
        "HANAMI_CONSOLE_LOGIN_RATE_LIMIT": "1000"})
    server = Served(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the workers did not start"
            try:
                if httpx.get(server.url + "/healthz", timeout=1).status_code == 200 and len(server.workers()) == 2:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_number_of_workers() -> None:
    shared = Settings(secret_key=SECRET, session_store_url="sqlite:///x.db")
    memory = Settings(secret_key=SECRET, session_store_url="memory://")
    assert serve_workers(shared, None) == cores() == len(os.sched_getaffinity(0))
    assert serve_workers(shared, 3) == 3
    assert serve_workers(memory, None) == 1 and serve_workers(memory, 1) == 1
    with pytest.raises(ValueError, match="shared session store"):
        serve_workers(memory, 2)


def test_several_workers_on_a_memory_store_are_refused() -> None:
    done = subprocess.run([sys.executable, "-m", "webconsole.cli", "serve", "--port", str(free_port()),
                           "--workers", "2"],
                          env={**os.environ, "HANAMI_CONSOLE_SECRET_KEY": SECRET,
                               "HANAMI_CONSOLE_SESSION_STORE_URL": "memory://"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "needs a shared session store" in done.stderr


async def test_sessions_and_csrf_hold_whichever_worker_answers(served: Served) -> None:
    before = {pid: cpu_ticks(pid) for pid in served.workers()}
    async with httpx.AsyncClient(base_url=served.url, limits=NO_KEEPALIVE, timeout=20) as browser:
        csrf = await login(browser, ADMIN_ID, ADMIN_PASSWORD)
        for _ in range(30):
            home = await browser.get("/")
            assert home.status_code == 200 and "Welcome, Test Admin" in home.text
            assert csrf_from(home.text) == csrf
        for _ in range(10):
            switched = await browser.post("/project", data={"project_id": "admin", "csrf_token": csrf})
            assert switched.status_code == 303, switched.text[:300]
            csrf = csrf_from((await browser.get("/")).text)  # a project switch rotates the session
            refused = await browser.post("/project", data={"project_id": "admin", "csrf_token": "x" + csrf})
            assert refused.status_code == 403
    assert all(cpu_ticks(pid) > ticks for pid, ticks in before.items()), "a worker served nothing"


async def test_upload_progress_is_followed_on_any_worker(served: Served, emulator, demo_files) -> None:
    from tests.console.test_datasets import finished_status, post_upload
    from webconsole.hanami.client import HanamiClient

    async with httpx.AsyncClient(base_url=served.url, limits=NO_KEEPALIVE, timeout=20) as browser:
        csrf = await login(browser, ADMIN_ID, ADMIN_PASSWORD)
        name = f"workers {secrets.token_hex(3)}"
        started = await post_upload(browser, csrf, "csv", name, {"csv": ("demo.csv", demo_files.csv.read_bytes())})
        assert started.status_code == 303
        page = await finished_status(browser, started.headers["location"])  # polled on new connections
        assert 'data-phase="done"' in page
        listing = await browser.get("/datasets", params={"q": name})
        assert re.search(r'class="num">400<', listing.text), "the finished dataset's lines are shown"
    async with HanamiClient(emulator.url) as hanami:
        api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
        await api.delete_dataset((await api.list_datasets()).find("name", name)["uuid"])


async def test_a_bridge_held_by_one_worker_is_refused_by_every_worker(served: Served) -> None:
    from tests.console.test_direct_io import Browser, closed, until

    holder, other = await Browser(served).login(), await Browser(served).login()  # type: ignore[arg-type]
    try:
        uuid = await holder.create_cluster()
        ws, _ = await holder.bridge(uuid)
        for _ in range(6):  # each socket is a new connection: to either worker
            refused_socket = await other.socket(uuid)
            await refused_socket.send(json.dumps({"op": "open", "csrf": other.csrf}))
            refused = await until(refused_socket, lambda m: m["type"] == "refused")
            assert refused["reason"] == "held"
            await closed(refused_socket)
        await ws.send(json.dumps({"op": "close"}))
        await closed(ws)
        taken, _ = await other.bridge(uuid)
        await taken.send(json.dumps({"op": "close"}))
        await closed(taken)
        await holder.http.post(f"/clusters/{uuid}/delete", data={"csrf_token": holder.csrf})
    finally:
        await holder.aclose()
        await other.aclose()
