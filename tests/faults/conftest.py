"""The fault suite's set-up: the backend as a process of its own (so it can be SIGKILLed), a
misbehaving proxy between it and the console, and the console on each shared store users run.

Timeouts are short (set through settings) and files small, so a whole case takes seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import AsyncIterator, Iterator

import httpx
import pytest

from tests.conftest import (
    ADMIN_ID,
    ADMIN_NAME,
    ADMIN_PASSWORD,
    SECRET,
    ConsoleServer,
    console_settings,
    free_port,
    login,
    wait_until_answering,
)
from tests.faults.proxy import FaultProxy
from webconsole.hanami.client import HanamiAPI, HanamiClient

BACKEND_TIMEOUT = 1.5  # seconds the console waits for one backend call
CLEANUP_INTERVAL = 0.5  # seconds between the console's sweeps for owed clean-ups


class BackendProcess:
    """``hanami-console emulator`` as a real process; ``kill()`` is a SIGKILL, ``start()`` again
    brings it back on the same port with the same state (as a restarted Hanami would)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "BackendProcess":
        env = {**os.environ, "HANAMI_ADMIN_USER_ID": ADMIN_ID, "HANAMI_ADMIN_USER_NAME": ADMIN_NAME,
               "HANAMI_ADMIN_PASSWORD": ADMIN_PASSWORD}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "webconsole.cli", "emulator", "--host", "127.0.0.1", "--port", str(self.port),
             "--state-dir", str(self.state_dir)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_until_answering(self.url + "/control/v1/auth", self.process)
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class ConsoleProcess:
    """``hanami-console serve`` as a real process (uvicorn), to be SIGKILLed mid-work."""

    def __init__(self, backend_url: str, store_url: str, upload_dir: Path) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "HANAMI_CONSOLE_BACKEND_URL": backend_url, "HANAMI_CONSOLE_SECRET_KEY": SECRET,
            "HANAMI_CONSOLE_SESSION_STORE_URL": store_url, "HANAMI_CONSOLE_BACKEND_TIMEOUT": str(BACKEND_TIMEOUT),
            "HANAMI_CONSOLE_CLEANUP_INTERVAL": str(CLEANUP_INTERVAL), "HANAMI_CONSOLE_LOG_LEVEL": "warning",
            "HANAMI_CONSOLE_UPLOAD_DIR": str(upload_dir),
        }
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ConsoleProcess":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "webconsole.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)  # its own process group: the supervisor and every worker die together
        wait_until_answering(self.url + "/healthz", self.process)
        return self

    def kill(self) -> None:
        """The whole console dies at once (``serve`` runs one worker per core under a supervisor)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The shared stores replicas use: SQLite (the default) and Redis (database 2, this suite's own)."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url").rsplit("/", 1)[0] + "/2"
        import redis

        redis.Redis.from_url(url).flushdb()
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('fault-store') / 'sessions.db'}"


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    process = BackendProcess(tmp_path_factory.mktemp("fault-backend")).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def proxy(backend: BackendProcess) -> Iterator[FaultProxy]:
    faulty = FaultProxy(backend.port).start()
    yield faulty
    faulty.stop()


@pytest.fixture(scope="module")
def console(proxy: FaultProxy, store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    settings = console_settings(proxy.url, session_store_url=store_url, backend_timeout=BACKEND_TIMEOUT,
                                cleanup_interval=CLEANUP_INTERVAL,
                                upload_dir=str(tmp_path_factory.mktemp("fault-uploads")))
    server = ConsoleServer(settings).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def healthy_again(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every case starts and ends with a working link and a running backend."""
    yield
    if "proxy" in request.fixturenames:
        request.getfixturevalue("proxy").set_mode("pass")
    if "backend" in request.fixturenames:
        backend = request.getfixturevalue("backend")
        if backend.process.poll() is not None:
            backend.start()


@pytest.fixture
async def browser(console: ConsoleServer) -> AsyncIterator[httpx.AsyncClient]:
    """A logged-in browser on the console (cookies, CSRF token in ``browser.csrf``)."""
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as client:
        client.csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)  # type: ignore[attr-defined]
        yield client


@pytest.fixture
async def hanami(backend: BackendProcess) -> AsyncIterator[HanamiAPI]:
    """A direct client of the backend (not through the proxy), to see what is left there."""
    async with HanamiClient(backend.url, timeout=10) as client:
        yield client.api((await client.login(ADMIN_ID, ADMIN_PASSWORD)).token)
