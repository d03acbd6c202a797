"""Fixtures for the emulator conformance tests: real servers on 127.0.0.1 (lenient and faithful)."""

from __future__ import annotations

from typing import Iterator

import pytest
from tests.emulator.emu_helpers import ADMIN, Api, make_config, unique

from webconsole.emulator import EmulatorServer


@pytest.fixture(scope="session")
def hanami(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    server = EmulatorServer(make_config(tmp_path_factory.mktemp("emu-lenient")))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def hanami_faithful(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    server = EmulatorServer(make_config(tmp_path_factory.mktemp("emu-faithful"), quirks="faithful"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def admin(hanami: EmulatorServer) -> Api:
    return Api(hanami).login(*ADMIN)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory):
    from webconsole.demo_data import write_demo_data

    return write_demo_data(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def member(admin: Api) -> Api:
    """A fresh non-admin user with role member in a fresh project."""
    user, project = unique("member"), unique("proj")
    admin.ok("POST", "v1/project", {"id": project, "name": "Member Project"})
    admin.ok("POST", "v1/user", {"id": user, "name": "Member", "password": "member-pw", "is_admin": False})
    admin.ok("POST", "v1/user/project", {"id": user, "project_id": project, "role": "member",
                                         "is_project_admin": False})
    api = Api(admin.server).login(user, "member-pw")
    api.user_id, api.project_id = user, project  # type: ignore[attr-defined]
    return api
