"""The real-server fixture itself: a crashed server is seen as such and restarted, never reused."""

from __future__ import annotations

import time

import httpx

from tests.conftest import ADMIN_ID, ADMIN_NAME, ADMIN_PASSWORD, free_port
from tests.real_hanami import RealHanami


def test_a_crashed_real_server_is_restarted(real_hanami, tmp_path) -> None:
    # real_hanami: skipped (or failed in CI) like every real-server test; this one starts its own
    server = RealHanami(tmp_path / "state", free_port(), ADMIN_ID, ADMIN_NAME, ADMIN_PASSWORD).start()
    try:
        assert server.usable() and server.starts == 1
        token = server.token()
        # Q-C1: a cluster without a template aborts the whole process (contract §12.1, §14)
        try:
            httpx.post(f"{server.url}/control/v1/cluster", json={"name": "no template"},
                       headers={"X-Auth-Token": token}, timeout=10)
        except httpx.HTTPError:
            pass  # no answer: the process is gone
        deadline = time.monotonic() + 20
        while server.alive():
            assert time.monotonic() < deadline, "the real server survived a cluster without template"
            time.sleep(0.1)
        assert not server.usable()
        assert server.ensure_usable() is True  # restarted on the same port and state folder
        assert server.usable() and server.starts == 2
        assert server.ensure_usable() is False  # a usable one is left alone
    finally:
        server.stop()
    assert not server.alive()
