"""Fixtures for the Hanami client tests: scripted loopback servers, the emulator and the real server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.conftest import BACKENDS, Backend, Credentials, backend_for
from tests.hanami.hanami_scripted import EMU_ADMIN, ScriptedHTTP, ScriptedWS, make_token  # noqa: F401

from webconsole.hanami import HanamiClient


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


# -- the embedded Hanami (webconsole.emulator) ---------------------------------------------------

def _emulator(state_dir, quirks: str = "lenient", **overrides):
    from webconsole.emulator import EmulatorConfig, EmulatorServer

    config = EmulatorConfig(
        state_dir=state_dir,
        port=0,
        quirks=quirks,  # type: ignore[arg-type]
        **overrides,
        admin_id=EMU_ADMIN[0],
        admin_name=EMU_ADMIN[1],
        admin_password=EMU_ADMIN[2],
        threading_delay=0.0,
        seed=1234,
    )
    return EmulatorServer(config)


@pytest.fixture(scope="session")
def hanami_emulator(tmp_path_factory: pytest.TempPathFactory):
    """A lenient emulator of our own (own state dir and admin), on a free loopback port."""
    with _emulator(tmp_path_factory.mktemp("hanami-client-emulator")) as server:
        yield server


@pytest.fixture(scope="session")
def hanami_emulator_faithful(tmp_path_factory: pytest.TempPathFactory):
    """An emulator that drops the connection wherever the real Hanami crashes."""
    with _emulator(tmp_path_factory.mktemp("hanami-client-faithful"), "faithful") as server:
        yield server


@pytest.fixture(scope="session")
def hanami_files(tmp_path_factory: pytest.TempPathFactory):
    """Small MNIST idx files and an LF CSV (the demo data when available, else made here)."""
    folder = tmp_path_factory.mktemp("hanami-client-data")
    try:
        from webconsole.demo_data import write_demo_data

        demo = write_demo_data(folder)
        return {"images": demo.small_images, "labels": demo.small_labels, "csv": demo.csv,
                "big_images": demo.train_images, "big_labels": demo.train_labels}
    except Exception:  # demo extra missing: tiny synthetic files are enough for the client
        import numpy as np

        from webconsole.protocol.idx import write_idx_images, write_idx_labels

        rng = np.random.default_rng(1)
        files = {name: folder / name for name in ("images", "labels", "big_images", "big_labels")}
        write_idx_images(files["images"], rng.integers(0, 256, (200, 28, 28), dtype=np.uint8))
        write_idx_labels(files["labels"], rng.integers(0, 10, 200, dtype=np.uint8))
        write_idx_images(files["big_images"], rng.integers(0, 256, (4000, 28, 28), dtype=np.uint8))
        write_idx_labels(files["big_labels"], rng.integers(0, 10, 4000, dtype=np.uint8))
        csv = folder / "data.csv"
        csv.write_bytes(b"test_input,test_output\n" + b"".join(
            f"{i / 99:.6f},{(i % 7) / 7:.6f}\n".encode() for i in range(100)))
        files["csv"] = csv
        return files


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """The client's integration tests run on this directory's emulator and on the real server."""
    return backend_for(request, "hanami_emulator", Credentials(EMU_ADMIN[0], EMU_ADMIN[2], EMU_ADMIN[1]))


@pytest.fixture
async def emu_client(backend: Backend) -> AsyncIterator[HanamiClient]:
    """A client of the backend (despite the name: the emulator or the real server)."""
    async with HanamiClient(backend.url, timeout=15.0) as c:
        yield c


@pytest.fixture
async def admin_api(emu_client: HanamiClient, backend: Backend):
    info = await emu_client.login(backend.admin.user_id, backend.admin.password)
    return emu_client.api(info.token)


@pytest.fixture
def hanami_emulator_short_tokens(tmp_path):
    """An emulator whose tokens expire after 2 seconds."""
    with _emulator(tmp_path / "short-tokens", token_expire=2) as server:
        yield server
