"""An upload started on one console replica is visible, and cancellable, on another (shared Redis)."""

from __future__ import annotations

import re
import secrets
import struct
import time
from typing import Iterator

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, SlowLink, console_settings, csrf_from, run_sync
from webconsole.hanami.client import HanamiClient

PHASE = re.compile(r'data-phase="(\w+)"')


@pytest.fixture(scope="module")
def replicas(backend, redis_url: str) -> Iterator[tuple[ConsoleServer, ConsoleServer]]:
    """Two replicas whose link to the backend carries 10 MB/s: an upload lasts seconds on either
    backend (a real Hanami takes ~30 MB in a third of a second)."""
    link = SlowLink(backend.url, rate=10e6).start()
    first = ConsoleServer(console_settings(link.url, session_store_url=redis_url)).start()
    second = ConsoleServer(console_settings(link.url, session_store_url=redis_url)).start()
    yield first, second
    first.stop()
    second.stop()
    link.stop()


def backend_names(backend_url: str) -> list[str]:
    async def run() -> list[str]:
        async with HanamiClient(backend_url) as hanami:
            api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            return [str(name) for name in (await api.list_datasets()).column("name")]

    return run_sync(run)  # type: ignore[return-value]


def phase_of(client: httpx.Client, url: str) -> str:
    page = client.get(url, headers={"HX-Request": "true", "X-Console-Poll": "1"})
    assert page.status_code == 200, page.text[:300]
    return PHASE.search(page.text).group(1)


def test_status_and_cancel_work_from_another_replica(replicas, backend) -> None:
    first, second = replicas
    name = f"replica upload {secrets.token_hex(3)}"
    # ~30 MB of MNIST (about 230 chunks of 128 KiB) over the 10 MB/s link: still being sent when the
    # cancel arrives
    count = 38_000
    images = struct.pack(">IIII", 0x00000803, count, 28, 28) + bytes(784 * count)
    labels = struct.pack(">II", 0x00000801, count) + bytes(i % 10 for i in range(count))
    with httpx.Client(timeout=60) as browser:
        form = browser.get(first.url + "/login")
        browser.post(first.url + "/login", data={
            "user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "csrf_token": csrf_from(form.text)})
        csrf = csrf_from(browser.get(first.url + "/datasets/upload").text)
        started = browser.post(first.url + "/datasets/upload",
                               data={"csrf_token": csrf, "kind": "mnist", "name": name},
                               files={"images": ("images.idx3-ubyte", images, "application/octet-stream"),
                                      "labels": ("labels.idx1-ubyte", labels, "application/octet-stream")})
        assert started.status_code == 303
        path = started.headers["location"]
        assert path.startswith("/datasets/uploads/")  # a path, valid on every replica
        on_second = second.url + path
        assert phase_of(browser, on_second) in ("sending", "finalising")
        # another browser (session) sees nothing, on either replica
        with httpx.Client() as stranger:
            assert stranger.get(on_second).status_code == 303  # not logged in: to the login page
        cancelled = browser.post(on_second + "/cancel", data={"csrf_token": csrf})
        assert cancelled.status_code == 303
        deadline = time.monotonic() + 30
        while (phase := phase_of(browser, on_second)) not in ("cancelled", "done", "failed"):
            assert time.monotonic() < deadline, f"still {phase}"
            time.sleep(0.1)
        assert phase == "cancelled"
        assert phase_of(browser, first.url + path) == "cancelled"
    assert name not in backend_names(backend.url)
