"""What a list page costs the backend: the same number of calls per view with 0, 10 and 100 items.

A fresh embedded Hanami is filled step by step; after each step every list page is viewed twice and
the second view's backend calls (the client's own call observer, which the metrics use) are
compared across the steps. The first view may read what the console keeps afterwards (a dataset's
details, once per dataset); from then on a view costs what the page lists, not what it shows.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, console_settings, login, start_emulator
from webconsole.app import create_app
from webconsole.hanami.client import HanamiAPI, HanamiClient
from webconsole.protocol.template import EXAMPLE_MNIST_TEMPLATE

PAGES = ("/datasets", "/datasets?sort=lines", "/clusters", "/projects", "/users", "/hosts",
         "/checkpoints", "/results")


class BackendCalls:
    """Every REST call the console makes to Hanami, through the client's call observer."""

    def __init__(self, app: Any) -> None:
        self.calls: list[str] = []
        app.state.hanami.on_call = lambda endpoint, *_: self.calls.append(endpoint)

    def during(self) -> "BackendCalls":
        self.calls.clear()
        return self


@pytest.fixture
async def fresh(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, HanamiAPI, Any]]:
    emulator = start_emulator(tmp_path / "hanami")
    try:
        app = create_app(console_settings(emulator.url))
        async with app.router.lifespan_context(app), HanamiClient(emulator.url) as direct:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
                api = direct.api((await direct.login(ADMIN_ID, ADMIN_PASSWORD)).token)
                yield client, api, app
    finally:
        emulator.stop()


async def add_items(api: HanamiAPI, count: int, csv: Path) -> None:
    for _ in range(count):
        tag = secrets.token_hex(4)
        await api.upload_csv(f"cost {tag}", csv)
        await api.create_cluster(f"cost {tag}", EXAMPLE_MNIST_TEMPLATE)
        await api.create_project(f"cost_{tag}", f"Cost {tag}")
        await api.create_user(f"cost_{tag}", f"Cost {tag}", "cost-password-1", False)


async def calls_per_view(client: httpx.AsyncClient, calls: BackendCalls) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for page in PAGES:
        first = await client.get(page)  # may read what the console then keeps
        assert first.status_code == 200, (page, first.status_code, first.text[:300])
        calls.during()
        again = await client.get(page)
        assert again.status_code == 200, (page, again.status_code)
        seen[page] = sorted(calls.calls)
    return seen


async def test_backend_calls_per_view_do_not_grow_with_the_items(fresh, tmp_path: Path) -> None:
    client, api, app = fresh
    csv = tmp_path / "small.csv"
    csv.write_text("test_input,test_output\n1,2\n3,4\n")
    await login(client, ADMIN_ID, ADMIN_PASSWORD)
    calls = BackendCalls(app)
    at: dict[int, dict[str, list[str]]] = {}
    for total, step in ((0, 0), (10, 10), (100, 90)):
        await add_items(api, step, csv)
        at[total] = await calls_per_view(client, calls)
        assert len((await api.list_datasets()).records()) == total
    assert at[100] == at[10] == at[0], at
    # the dataset list is one listing, however many rows it shows and sorts by
    assert at[100]["/datasets"] == ["GET v1/dataset/all"]
    assert at[100]["/datasets?sort=lines"] == ["GET v1/dataset/all"]
    assert all(len(endpoints) <= 3 for endpoints in at[100].values()), at[100]
