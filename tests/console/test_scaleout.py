"""Several console processes sharing one Redis: sessions move between replicas, logout ends them all."""

from __future__ import annotations

import json
import secrets
import re
from typing import Iterator

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, console_settings, csrf_from
from webconsole.hanami.client import HanamiClient
from webconsole.web.core.deps import SESSION_COOKIE


@pytest.fixture(scope="module")
def replicas(backend, redis_url: str) -> Iterator[tuple[ConsoleServer, ConsoleServer]]:
    first = ConsoleServer(console_settings(backend.url, session_store_url=redis_url)).start()
    second = ConsoleServer(console_settings(backend.url, session_store_url=redis_url)).start()
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


async def test_a_bridge_held_on_one_replica_is_seen_and_refused_on_the_other(replicas) -> None:
    from tests.console.test_direct_io import DIGIT, Browser, closed, until

    first, second = replicas
    holder, other = await Browser(first).login(), await Browser(second).login()
    try:
        uuid = await holder.create_cluster()  # the template is remembered in Redis, for both replicas
        ws, _ = await holder.bridge(uuid)
        page = await other.http.get(f"/clusters/{uuid}/direct")
        assert page.status_code == 200 and 'data-testid="held-by"' in page.text and "Test Admin" in page.text
        refused_socket = await other.socket(uuid)
        await refused_socket.send(json.dumps({"op": "open", "csrf": other.csrf}))
        refused = await until(refused_socket, lambda m: m["type"] == "refused")
        assert refused["reason"] == "held" and refused["holder"] == "Test Admin"
        await closed(refused_socket)
        await ws.send(json.dumps({"op": "close"}))
        await closed(ws)
        # Released on the first replica: the second one may take it now.
        taken, _ = await other.bridge(uuid)
        await taken.send(json.dumps({"op": "ask", "values": DIGIT}))
        await until(taken, lambda m: m["type"] == "output")
        await taken.send(json.dumps({"op": "close"}))
        await closed(taken)
        await holder.http.post(f"/clusters/{uuid}/delete", data={"csrf_token": holder.csrf})
    finally:
        await holder.aclose()
        await other.aclose()


async def test_an_upload_started_on_one_replica_is_followed_on_the_other(replicas, demo_files, backend) -> None:
    from tests.console.test_datasets import finished_status, post_upload
    from tests.console.test_direct_io import Browser

    first, second = replicas
    browser = await Browser(first).login()
    try:
        name = f"replicated {secrets.token_hex(3)}"
        started = await post_upload(browser.http, browser.csrf, "csv", name,
                                    {"csv": ("demo.csv", demo_files.csv.read_bytes())})
        assert started.status_code == 303
        status_path = started.headers["location"]
        # the same browser, now served by the other replica (same cookie, shared Redis)
        async with httpx.AsyncClient(base_url=second.url, cookies=browser.http.cookies) as elsewhere:
            page = await finished_status(elsewhere, status_path)
            assert 'data-phase="done"' in page
        async with httpx.AsyncClient(base_url=second.url) as stranger:
            assert (await stranger.get(status_path)).status_code == 303  # not logged in: to the login page
        async with HanamiClient(backend.url) as hanami:
            api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            await api.delete_dataset((await api.list_datasets()).find("name", name)["uuid"])
    finally:
        await browser.aclose()
