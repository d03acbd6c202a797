"""Several console processes sharing one Redis: sessions move between replicas, logout ends them all."""

from __future__ import annotations

import re
from typing import Iterator

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, console_settings, csrf_from
from webconsole.web.deps import SESSION_COOKIE


@pytest.fixture(scope="module")
def replicas(emulator, redis_url: str) -> Iterator[tuple[ConsoleServer, ConsoleServer]]:
    first = ConsoleServer(console_settings(emulator.url, session_store_url=redis_url)).start()
    second = ConsoleServer(console_settings(emulator.url, session_store_url=redis_url)).start()
    yield first, second
    first.stop()
    second.stop()


def _login(client: httpx.Client, base: str) -> str:
    form = client.get(base + "/login")
    done = client.post(base + "/login", data={
        "user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "csrf_token": csrf_from(form.text)})
    assert done.status_code == 303
    return client.cookies[SESSION_COOKIE]


def test_a_session_made_on_one_replica_is_valid_on_the_other(replicas) -> None:
    first, second = replicas
    with httpx.Client() as browser:
        _login(browser, first.url)
        home = browser.get(second.url + "/")
        assert home.status_code == 200 and "Welcome, Test Admin" in home.text


def test_logout_on_one_replica_ends_the_session_on_both(replicas) -> None:
    first, second = replicas
    with httpx.Client() as browser:
        cookie = _login(browser, first.url)
        csrf = csrf_from(browser.get(second.url + "/").text)
        out = browser.post(second.url + "/logout", data={"csrf_token": csrf})
        assert out.status_code == 303
    with httpx.Client(cookies={SESSION_COOKIE: cookie}) as stale:
        for replica in (first, second):
            page = stale.get(replica.url + "/")
            assert page.status_code == 303 and "/login" in page.headers["location"]


def test_the_csrf_token_of_one_replica_is_accepted_by_the_other(replicas) -> None:
    first, second = replicas
    with httpx.Client() as browser:
        _login(browser, first.url)
        csrf = csrf_from(browser.get(first.url + "/").text)
        switched = browser.post(second.url + "/project", data={"project_id": "admin", "csrf_token": csrf})
        assert switched.status_code == 303


def test_active_sessions_are_counted_across_replicas(replicas) -> None:
    first, second = replicas
    with httpx.Client() as a, httpx.Client() as b:
        _login(a, first.url)
        _login(b, second.url)
        counts = []
        for replica in (first, second):
            metrics = httpx.get(replica.url + "/metrics").text
            counts.append(float(re.search(r"^hanami_console_active_sessions (\S+)$", metrics, re.M).group(1)))
        assert counts[0] == counts[1] >= 2
