"""Shared fixtures: a real embedded Hanami, the real Hanami server, the console in-process and on a
real uvicorn, logins.

Every test talks HTTP (and websockets) to real servers on 127.0.0.1; nothing is patched.

``backend`` is the Hanami a test drives, once per backend: ``emulator`` (the embedded one, the
``emulator`` fixture) and ``real`` (the upstream server, ``real_hanami``; tests on it carry the
``real_hanami`` marker: ``pytest -m real_hanami``). Without the real server's binary those tests
skip, naming the build command; in CI (``CI=true``) they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn

from tests.real_hanami import RealHanami, RealHanamiMissing
from webconsole.app import create_app
from webconsole.settings import Settings

ADMIN_ID = "test_admin"
ADMIN_NAME = "Test Admin"
ADMIN_PASSWORD = "admin-password-1"
SECRET = "test-secret-key-0123456789-abcdefghijklmnop"

_CSRF_IN_PAGE = re.compile(r'name="csrf_token" value="([^"]+)"')
_CSRF_IN_BODY = re.compile(r'"X-CSRF-Token": "([^"]+)"')


BACKENDS = ("emulator", "real")


def on_real_hanami(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("backend") == "real"


def pytest_itemcollected(item: pytest.Item) -> None:
    if on_real_hanami(item):
        item.add_marker(pytest.mark.real_hanami)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running in the main thread
    while its session-wide browser is open, and asyncio tests cannot run after that. (Last hook, so
    pytest's grouping by backend stays inside each part.)"""
    items.sort(key=lambda item: "/tests/browser/" in str(item.path))


_real_outcomes: dict[str, int] = {}
_real_servers: list[RealHanami] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "real_hanami" not in report.keywords:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _real_outcomes[report.outcome] = _real_outcomes.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter) -> None:
    if _real_outcomes:
        counts = ", ".join(f"{count} {outcome}" for outcome, count in sorted(_real_outcomes.items()))
        starts = sum(server.starts for server in _real_servers)
        terminalreporter.write_line(f"tests on the real Hanami server: {counts} "
                                    f"(server started {starts} time{'s' if starts != 1 else ''})")


@dataclass(frozen=True)
class Credentials:
    user_id: str
    password: str
    name: str = ""


@pytest.fixture(scope="session")
def admin_credentials() -> Credentials:
    return Credentials(ADMIN_ID, ADMIN_PASSWORD, ADMIN_NAME)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_emulator(state_dir: Path, **overrides: object):
    """A real embedded Hanami on a free loopback port (caller stops it)."""
    from webconsole.emulator import EmulatorConfig, EmulatorServer

    values: dict[str, object] = {"threading_delay": 0.0, "seed": 1234, **overrides}
    config = EmulatorConfig(
        state_dir=state_dir,
        port=0,
        admin_id=ADMIN_ID,
        admin_name=ADMIN_NAME,
        admin_password=ADMIN_PASSWORD,
        **values,  # type: ignore[arg-type]
    )
    server = EmulatorServer(config)
    server.start()
    return server


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    server = start_emulator(tmp_path_factory.mktemp("hanami-lenient"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def emulator_faithful(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    server = start_emulator(tmp_path_factory.mktemp("hanami-faithful"), quirks="faithful")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def real_hanami(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealHanami]:
    """The real Hanami server (one per test session: it holds ~1.7 GB), admin ``ADMIN_*``."""
    try:
        server = RealHanami(tmp_path_factory.mktemp("real-hanami") / "state", free_port(),
                            ADMIN_ID, ADMIN_NAME, ADMIN_PASSWORD)
    except RealHanamiMissing as exc:
        if real_hanami_required():
            raise  # CI must prove the real-backend tests ran
        pytest.skip(f"the real Hanami server is not here: {exc}")
    _real_servers.append(server)
    server.start()
    yield server
    server.stop()


def real_hanami_required() -> bool:
    """In CI (``CI=true``, or ``REAL_HANAMI_REQUIRED=1`` from .ci/run) a missing server fails."""
    return any(os.environ.get(name, "").lower() in ("1", "true", "yes") for name in ("CI", "REAL_HANAMI_REQUIRED"))


@dataclass(frozen=True)
class Backend:
    """The Hanami a test drives: the embedded emulator or the real server, with its admin."""

    name: str  # "emulator" | "real"
    server: object  # EmulatorServer | RealHanami
    admin: Credentials

    @property
    def url(self) -> str:
        return self.server.url  # type: ignore[attr-defined]

    @property
    def ws_url(self) -> str:
        return self.server.ws_url  # type: ignore[attr-defined]


def backend_for(request: pytest.FixtureRequest, emulator_fixture: str, emulator_admin: Credentials) -> Backend:
    if request.param == "real":
        return Backend("real", request.getfixturevalue("real_hanami"),
                       Credentials(ADMIN_ID, ADMIN_PASSWORD, ADMIN_NAME))
    kind = "faithful" if request.param == "faithful" else "emulator"
    return Backend(kind, request.getfixturevalue(emulator_fixture), emulator_admin)


#: for a module whose tests steer clear of the real server's crashes: the faithful emulator (which
#: drops the connection where Hanami crashes, and reports it) and the real server
CRASH_BACKENDS = ("faithful", "real")


def faithful_or_real(request: pytest.FixtureRequest) -> Backend:
    """``backend`` for a module parametrized over ``CRASH_BACKENDS``."""
    return backend_for(request, "emulator_faithful", Credentials(ADMIN_ID, ADMIN_PASSWORD, ADMIN_NAME))


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend-facing test runs on the embedded emulator and on the real server."""
    return backend_for(request, "emulator", Credentials(ADMIN_ID, ADMIN_PASSWORD, ADMIN_NAME))


@pytest.fixture(autouse=True)
def _real_hanami_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test on the real server gets a usable one (restarted when an earlier test crashed or hung
    it), and a test that crashes it fails instead of leaving a dead server to the next one."""
    if not on_real_hanami(request.node):
        yield
        return
    server: RealHanami = request.getfixturevalue("real_hanami")
    server.ensure_usable()
    yield
    if not server.alive():
        tail = server.log_tail()
        server.ensure_usable()
        pytest.fail(f"the real Hanami crashed during this test (restarted for the next one):\n{tail}")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, without persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: apt-get install redis-server")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


def _store_url(kind: str, request: pytest.FixtureRequest, folder: Path) -> str:
    """A fresh store of ``kind``: memory, SQLite (the default of serve and demo) or Redis (replicas;
    database 3, emptied first, is this fixture's own)."""
    if kind == "redis":
        url = request.getfixturevalue("redis_url").rsplit("/", 1)[0] + "/3"
        import redis

        redis.Redis.from_url(url).flushdb()
        return url
    return "memory://" if kind == "memory" else f"sqlite:///{folder / 'sessions.db'}"


@pytest.fixture(params=["memory", "sqlite", "redis"])
def any_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every session store users run: a new store joins this list and must pass the same tests."""
    return _store_url(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "redis"])
def shared_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The stores several console processes can share (replicas, a restarted console)."""
    return _store_url(request.param, request, tmp_path)


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory: pytest.TempPathFactory):
    from webconsole.demo_data import write_demo_data

    return write_demo_data(tmp_path_factory.mktemp("demo-data"))


#: passes over the demo's 4,000 training digits in ``long_train_files``: a real Hanami trains one
#: pass in ~0.3 s, so a task that must still be running needs this much more work
LONG_TRAIN_REPEAT = 15


@pytest.fixture(scope="session")
def long_train_files(tmp_path_factory: pytest.TempPathFactory, demo_files) -> tuple[Path, Path]:
    """The 4,000 demo training digits repeated ``LONG_TRAIN_REPEAT`` times (images, labels)."""
    import numpy as np

    from webconsole.protocol.idx import write_idx_images, write_idx_labels

    folder = tmp_path_factory.mktemp("long-train")
    images = np.frombuffer(Path(demo_files.train_images).read_bytes()[16:], dtype=np.uint8).reshape(-1, 28, 28)
    labels = np.frombuffer(Path(demo_files.train_labels).read_bytes()[8:], dtype=np.uint8)
    paths = folder / "long-images.idx3-ubyte", folder / "long-labels.idx1-ubyte"
    write_idx_images(paths[0], np.tile(images, (LONG_TRAIN_REPEAT, 1, 1)))
    write_idx_labels(paths[1], np.tile(labels, LONG_TRAIN_REPEAT))
    return paths


class SlowLink:
    """A TCP relay on 127.0.0.1 in front of a backend that carries at most ``rate`` bytes per second
    towards it (answers pass at once): an upload through it takes as long on every backend, however
    fast the backend itself is. HTTP and websockets both pass (the console derives one from the other)."""

    def __init__(self, upstream_url: str, rate: float) -> None:
        self.upstream = httpx.URL(upstream_url)
        self.rate = rate
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-link", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "SlowLink":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the slow link did not start")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._relay, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        # Relays still open end here, on their own loop, before it closes.
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.upstream.host, self.upstream.port)
        except OSError:
            writer.close()
            return

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, throttled: bool) -> None:
            try:
                while data := await source.read(16384):
                    sink.write(data)
                    await sink.drain()
                    if throttled:
                        await asyncio.sleep(len(data) / self.rate)  # the link's bandwidth
            except OSError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))


def console_settings(backend_url: str, **overrides: object) -> Settings:
    """Settings for a test console: memory sessions, a fixed secret, quiet logs."""
    values: dict[str, object] = {
        "backend_url": backend_url,
        "secret_key": SECRET,
        "session_store_url": "memory://",
        "log_level": "warning",
        "backend_timeout": 10.0,
        "readiness_user_id": ADMIN_ID,
        "readiness_password": ADMIN_PASSWORD,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


class ConsoleServer:
    """The console on a real uvicorn in a background thread, on a free loopback port."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_config=None, ws="websockets-sansio",
            lifespan="on", timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"console-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.settings.root_path}"

    def start(self) -> "ConsoleServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the console server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="session")
def console_server(backend: Backend) -> Iterator[ConsoleServer]:
    server = ConsoleServer(console_settings(backend.url)).start()
    yield server
    server.stop()


@asynccontextmanager
async def in_process_console(backend_url: str, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    """The console in-process (ASGI transport) against the Hanami at ``backend_url``."""
    app = create_app(console_settings(backend_url, **overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def app_client(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    """The console in-process (ASGI transport) against the backend (emulator, real server)."""
    async with in_process_console(backend.url) as client:
        yield client


@pytest.fixture
async def store_app_client(backend: Backend, any_store_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Like ``app_client``, once on every session store (memory, SQLite, Redis)."""
    async with in_process_console(backend.url, session_store_url=any_store_url) as client:
        yield client


def wait_until_answering(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Poll ``url`` until a server process answers (any status), or fail if it stops or times out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            pass
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, f"{url} did not answer"
        time.sleep(0.05)


def csrf_from(html: str) -> str:
    """The CSRF token a page carries (hidden field or the body's hx-headers)."""
    match = _CSRF_IN_PAGE.search(html) or _CSRF_IN_BODY.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def login(client: httpx.AsyncClient, user_id: str, password: str) -> str:
    """Log in through the login form; returns the session's CSRF token."""
    form = await client.get("/login")
    assert form.status_code == 200, form.text
    response = await client.post(
        "/login",
        data={"user_id": user_id, "password": password, "next": "/", "csrf_token": csrf_from(form.text)},
    )
    assert response.status_code == 303, f"login failed: {response.status_code} {response.text[:500]}"
    home = await client.get("/")
    assert home.status_code == 200, home.text[:500]
    return csrf_from(home.text)


async def declare_template(client: httpx.AsyncClient, cluster_uuid: str, template: str) -> None:
    """Tell the console the template of a cluster a test made through Hanami directly, as a user does
    on the cluster's direct IO page (the console queues tasks only on clusters whose template it
    knows). Logs in on a client of its own, so ``client``'s session is left as it was."""
    async with httpx.AsyncClient(transport=client._transport, base_url=client.base_url) as other:
        csrf = await login(other, ADMIN_ID, ADMIN_PASSWORD)
        declared = await other.post(f"/clusters/{cluster_uuid}/direct/template",
                                    data={"csrf_token": csrf, "template": template})
        assert declared.status_code == 303, declared.text[:1000]


def run_sync(coroutine_function, *args: object) -> object:
    """Run async set-up code from a sync (Playwright) test: in its own thread and event loop."""
    result: dict[str, object] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coroutine_function(*args))
        except BaseException as exc:  # re-raised in the calling thread
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result.get("value")


async def wait_for(condition, timeout: float = 30.0, interval: float = 0.1):
    """Poll an async condition until it returns a truthy value, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
