"""Fixtures for the Hanami client tests: scripted loopback servers and the emulator."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest

# the repository root, so `webconsole` imports without an installed package
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from hanami_scripted import ScriptedHTTP, ScriptedWS
from webconsole.hanami import HanamiClient


def make_token(user_id: str = "alice@example", project_id: str = "proj", *, is_admin: bool = False,
               expires_in: int = 3600, key: bytes = b"k" * 32) -> str:
    """A Hanami-shaped JWT: HS256, claims ``exp`` and ``user`` (a JSON *string*)."""
    user = {"creator_id": "MISAKI", "id": user_id, "is_admin": is_admin, "is_project_admin": False,
            "name": "Alice", "project_id": project_id, "role": "member"}
    payload = {"exp": int(time.time()) + expires_in, "user": json.dumps(user, sort_keys=True)}
    return jwt.encode(payload, key, algorithm="HS256")


@pytest.fixture
def token() -> str:
    return make_token()


@pytest.fixture
async def http_server() -> AsyncIterator[ScriptedHTTP]:
    server = ScriptedHTTP()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def ws_server() -> AsyncIterator[ScriptedWS]:
    server = ScriptedWS()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(http_server: ScriptedHTTP, ws_server: ScriptedWS) -> AsyncIterator[HanamiClient]:
    """A client of the scripted HTTP server whose websockets go to the scripted ws server."""
    c = HanamiClient(http_server.url, timeout=2.0)
    c.ws_url = ws_server.url
    yield c
    await c.aclose()
