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
import signal
import socket
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


def started(process: subprocess.Popen, url: str, workers: int) -> None:
    """Wait until the console answers and, with several workers, all of them run."""
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the console did not start"
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200 and \
                    len(Served(url, process).workers()) == (workers if workers > 1 else 0):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)


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
        started(process, server.url, 2)
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


# /metrics: the whole console's figures, whichever worker answers the scrape.

REQUESTS = 'hanami_console_http_requests_total{method="GET",route="/readyz",status="503"}'
LATENCY_COUNT = 'hanami_console_http_request_duration_seconds_count{method="GET",route="/readyz"}'
BROWSER_SOCKETS = 'hanami_console_open_websockets{kind="browser"}'
BACKEND_SOCKETS = 'hanami_console_open_websockets{kind="backend"}'


def figure(text: str, series: str) -> float:
    """One series' value in a scrape (0 when the series is not there yet)."""
    match = re.search("^" + re.escape(series) + r" (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def socket_owner(server_port: int, client_port: int, pids: list[int], timeout: float = 20.0) -> int:
    """The worker holding the console's end of the loopback connection from ``client_port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            local, remote, inode = (line.split()[i] for i in (1, 2, 9))
            if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
                for pid in pids:
                    try:
                        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
                    except OSError:
                        continue
                    if f"socket:[{inode}]" in links:
                        return pid
        time.sleep(0.05)
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def scrape(served: Served) -> tuple[int, str]:
    """GET /metrics on a new connection: (the worker that answered, the text).

    The request is sent in two halves: between them the connection waits in the worker that
    accepted it, which tells who answers.
    """
    port = int(served.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
        connection.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        worker = socket_owner(port, connection.getsockname()[1], served.workers())
        connection.sendall(b"Connection: close\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return worker, body.decode()


def scrapes_from_every_worker(served: Served, each: int = 2, timeout: float = 60.0) -> list[tuple[int, str]]:
    """New connections until every worker has answered ``each`` scrapes."""
    seen: list[tuple[int, str]] = []
    deadline = time.monotonic() + timeout
    while not all(sum(1 for pid, _ in seen if pid == worker) >= each for worker in served.workers()):
        assert time.monotonic() < deadline, f"not every worker answered a scrape: {[pid for pid, _ in seen]}"
        seen.append(scrape(served))
    return seen


async def test_metrics_are_the_whole_consoles_whichever_worker_answers(served: Served) -> None:
    before = scrapes_from_every_worker(served)
    counted = {figure(text, REQUESTS) for _, text in before}
    assert len(counted) == 1, f"the workers disagree before the requests: {counted}"
    start = counted.pop()
    served_by = {pid: cpu_ticks(pid) for pid in served.workers()}
    requests = 60
    async with httpx.AsyncClient(base_url=served.url, limits=NO_KEEPALIVE, timeout=20) as client:
        for _ in range(requests):  # not ready: no readiness account is set
            assert (await client.get("/readyz")).status_code == 503
    assert all(cpu_ticks(pid) > ticks for pid, ticks in served_by.items()), "a worker served nothing"
    for worker, text in scrapes_from_every_worker(served, each=3):
        assert figure(text, REQUESTS) == start + requests, f"worker {worker} showed another count"
        assert figure(text, LATENCY_COUNT) == start + requests, f"worker {worker} showed another histogram"
        assert figure(text, 'hanami_console_http_requests_total{method="GET",route="/metrics",status="200"}') > 0


async def test_open_websockets_are_summed_and_a_dead_workers_are_dropped(served: Served, emulator) -> None:
    from tests.console.test_direct_io import Browser, closed
    from webconsole.hanami.client import HanamiClient

    port = int(served.url.rsplit(":", 1)[1])
    first, second = await Browser(served).login(), await Browser(served).login()  # type: ignore[arg-type]
    clusters, sockets, owners = [], [], []
    try:
        for browser in (first, second):  # at most two backend websockets per worker: one bridge each
            uuid = await browser.create_cluster()
            clusters.append(uuid)
            ws, _ = await browser.bridge(uuid)
            sockets.append(ws)
            owners.append(socket_owner(port, ws.local_address[1], served.workers()))
        sessions = set()
        for worker, text in scrapes_from_every_worker(served):
            assert figure(text, BROWSER_SOCKETS) == 2, f"worker {worker} (bridges on {owners}): {text}"
            assert figure(text, BACKEND_SOCKETS) == 2, f"worker {worker} (bridges on {owners})"
            sessions.add(figure(text, "hanami_console_active_sessions"))
        assert len(sessions) == 1 and sessions.pop() >= 2, "the workers disagree on the sessions"
        requests = figure(scrape(served)[1], REQUESTS)

        os.kill(owners[0], signal.SIGKILL)  # uvicorn's supervisor starts a new worker in its place
        left = sum(1 for pid in owners if pid != owners[0])
        deadline = time.monotonic() + 60
        while len(workers := served.workers()) != 2 or owners[0] in workers:
            assert time.monotonic() < deadline, "no new worker replaced the dead one"
            time.sleep(0.1)
        for worker, text in scrapes_from_every_worker(served):
            assert figure(text, BROWSER_SOCKETS) == left, f"worker {worker} still counts the dead worker's"
            assert figure(text, BACKEND_SOCKETS) == left, f"worker {worker} still counts the dead worker's"
            assert figure(text, REQUESTS) == requests, "the dead worker's requests are still counted"
        for ws, owner in zip(sockets, owners):
            if owner != owners[0]:
                await ws.send(json.dumps({"op": "close"}))
                await closed(ws)
    finally:
        for ws in sockets:
            await ws.close()
        await first.aclose()
        await second.aclose()
        async with HanamiClient(emulator.url) as hanami:
            api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            for uuid in clusters:
                await api.delete_cluster(uuid)


@pytest.mark.parametrize("workers", [2, 1])
def test_the_workers_metrics_directory_is_private_and_removed_on_exit(workers: int, emulator, tmp_path: Path) -> None:
    """Several workers share a fresh directory under TMPDIR; one process counts in memory."""
    stray = tmp_path / "stray"  # named in the environment: never used, never emptied
    stray.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = serve(["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)], {
        "HANAMI_CONSOLE_BACKEND_URL": emulator.url, "HANAMI_CONSOLE_SECRET_KEY": SECRET,
        "HANAMI_CONSOLE_SESSION_STORE_URL": f"sqlite:///{tmp_path / 'sessions.db'}",
        "HANAMI_CONSOLE_UPLOAD_DIR": str(tmp_path), "HANAMI_CONSOLE_LOG_LEVEL": "warning",
        "TMPDIR": str(tmp_path), "PROMETHEUS_MULTIPROC_DIR": str(stray)})
    try:
        started(process, url, workers)
        for _ in range(5):
            assert httpx.get(url + "/healthz").status_code == 200
        text = httpx.get(url + "/metrics").text
        assert figure(text, 'hanami_console_http_requests_total{method="GET",route="/healthz",status="200"}') >= 5
        folders = list(tmp_path.glob("hanami-console-metrics-*"))
        assert list(stray.iterdir()) == []
        if workers == 1:
            assert folders == []
        else:
            assert len(folders) == 1 and folders[0].stat().st_mode & 0o777 == 0o700
            assert any(folders[0].glob("counter_*.db"))
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert list(tmp_path.glob("hanami-console-metrics-*")) == [], "the metrics directory was left behind"
