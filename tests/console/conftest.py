"""Fixtures of the console tests that talk to the backend the console uses."""

from __future__ import annotations

from typing import AsyncIterator, Iterator

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD
from tests.faults.proxy import FaultProxy
from webconsole.hanami.client import HanamiAPI, HanamiClient


@pytest.fixture(scope="module")
async def hanami(backend) -> AsyncIterator[HanamiAPI]:
    """The admin's API on the backend (a module may define its own ``hanami``)."""
    async with HanamiClient(backend.url) as client:
        yield client.api((await client.login(ADMIN_ID, ADMIN_PASSWORD)).token)


@pytest.fixture
def proxy(backend) -> Iterator[FaultProxy]:
    """A misbehaving loopback proxy in front of the backend (``tests/faults/proxy.py``), passing
    everything until told otherwise: point a console at ``proxy.url`` for a slow or broken link."""
    faulty = FaultProxy(httpx.URL(backend.url).port).start()
    yield faulty
    faulty.stop()
