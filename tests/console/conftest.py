"""Fixtures of the console tests that talk to the backend the console uses."""

from __future__ import annotations

import secrets
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


MEMBER_PASSWORD = "member-password-1"


@pytest.fixture
async def member(hanami: HanamiAPI) -> AsyncIterator[tuple[str, str]]:
    """A member (no Hanami admin) of a project of its own, project admin there: (user id, project id).
    Its name is "Project Member", its password ``MEMBER_PASSWORD``."""
    tag = secrets.token_hex(3)
    user, project = f"member_{tag}", f"project_{tag}"
    await hanami.create_project(project, "Member Project")
    await hanami.create_user(user, "Project Member", MEMBER_PASSWORD, False)
    await hanami.assign_project(user, project, "member", True)
    try:
        yield user, project
    finally:
        if user in {row["id"] for row in (await hanami.list_users()).records()}:
            await hanami.delete_user(user)
        await hanami.delete_project(project)


@pytest.fixture
def proxy(backend) -> Iterator[FaultProxy]:
    """A misbehaving loopback proxy in front of the backend (``tests/faults/proxy.py``), passing
    everything until told otherwise: point a console at ``proxy.url`` for a slow or broken link."""
    faulty = FaultProxy(httpx.URL(backend.url).port).start()
    yield faulty
    faulty.stop()
