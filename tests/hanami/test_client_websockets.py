"""Uploads, direct IO and the websocket limit against scripted loopback HTTP + websocket servers."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from tests.hanami.hanami_scripted import Reply, ScriptedHTTP, ScriptedWS

from webconsole.hanami import (
    BackendError,
    BackendUnavailable,
    HanamiClient,
    NotFound,
    TokenExpired,
)
from webconsole.protocol.messages import (
    REQUEST_TYPE,
    SEGMENT_SIZE,
    TRAIN_TYPE,
    ClusterIO_Message,
    FileUpload_Message,
    FileUploadResponse_Message,
)

DS = "d5e7a1f0-0000-4000-8000-000000000001"
T_IN = "7e3f0000-0000-4000-8000-000000000001"
T_LABEL = "7e3f0000-0000-4000-8000-000000000002"
CLUSTER = "c1a55e00-0000-4000-8000-000000000001"
DATASET_HEADER = ["uuid", "project_id", "owner_id", "visibility", "name", "type"]


def ok() -> bytes:
    return FileUploadResponse_Message(success=True).SerializeToString()


def upload_routes(server: ScriptedHTTP, kind: str = "csv") -> None:
    init = {"uuid": DS, "uuid_input_file": T_IN, "name": "my data", "type": kind}
    if kind == "mnist":
        init["uuid_label_file"] = T_LABEL
    server.on("POST", f"/control/v1/{kind}/dataset", init)
    server.on("GET", "/control/v1/dataset/progress", {"complete": False, "uuid": DS}, {"complete": True, "uuid": DS})
    server.on("PUT", f"/control/v1/{kind}/dataset", {"uuid": DS})
    server.on("DELETE", "/control/v1/dataset", {})
    server.on("GET", "/control/v1/dataset/all", {"header": DATASET_HEADER, "body": []})


def write(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


async def test_mnist_upload_chunks_progress_finalize(http_server: ScriptedHTTP, ws_server: ScriptedWS,
                                                     client: HanamiClient, token: str, tmp_path: Path) -> None:
    upload_routes(http_server, "mnist")
    images = write(tmp_path / "images.idx", 2 * SEGMENT_SIZE + 1000)
    labels = write(tmp_path / "labels.idx", 60)
    received: dict[int, bytes] = {}

    async def handler(frame: bytes) -> bytes:
        msg = FileUpload_Message.FromString(frame)
        received[len(ws_server.inits) * 10**9 + msg.position] = msg.data
        return ok()

    ws_server.handler = handler
    calls: list[tuple[int, int]] = []

    async def progress(sent: int, total: int) -> None:
        calls.append((sent, total))

    uuid = await client.api(token).upload_mnist("my data", images, labels, progress)
    assert uuid == DS
    init = http_server.requests("POST", "/control/v1/mnist/dataset")[0].json()
    assert init == {"name": "my data", "input_data_size": 2 * SEGMENT_SIZE + 1000, "label_data_size": 60}
    assert ws_server.inits == [{"token": token, "target": "file_upload", "uuid": T_IN},
                               {"token": token, "target": "file_upload", "uuid": T_LABEL}]
    positions = sorted(received)
    assert positions == [10**9, 10**9 + SEGMENT_SIZE, 10**9 + 2 * SEGMENT_SIZE, 2 * 10**9]
    assert [len(received[p]) for p in positions] == [SEGMENT_SIZE, SEGMENT_SIZE, 1000, 60]
    assert b"".join(received[p] for p in positions[:3]) == images.read_bytes()
    total = images.stat().st_size + 60
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:], strict=False))
    assert ws_server.open_peak == 1  # one websocket at a time
    assert len(http_server.requests("GET", "/control/v1/dataset/progress")) == 2
    assert http_server.requests("PUT", "/control/v1/mnist/dataset")[0].json() == {
        "uuid": DS, "uuid_input_file": T_IN, "uuid_label_file": T_LABEL}
    assert http_server.requests("DELETE") == []


async def test_failed_chunk_deletes_dataset(http_server: ScriptedHTTP, ws_server: ScriptedWS,
                                            client: HanamiClient, token: str, tmp_path: Path) -> None:
    upload_routes(http_server)

    async def handler(frame: bytes) -> bytes:
        reply = FileUploadResponse_Message(success=False, errorMessage="Failed to write data to disc")
        return reply.SerializeToString()

    ws_server.handler = handler
    with pytest.raises(BackendError, match="Failed to write data to disc"):
        await client.api(token).upload_csv("my data", write(tmp_path / "a.csv", 10))
    assert [s.target for s in http_server.requests("DELETE")] == [f"/control/v1/dataset?uuid={DS}"]
    assert http_server.requests("PUT") == []


async def test_init_refused_deletes_dataset(http_server: ScriptedHTTP, ws_server: ScriptedWS,
                                            client: HanamiClient, token: str, tmp_path: Path) -> None:
    upload_routes(http_server)
    ws_server.init_reply = {"success": False, "error": f"Tempfile with UUID '{T_IN}' not found"}
    with pytest.raises(NotFound, match="Tempfile"):
        await client.api(token).upload_csv("my data", write(tmp_path / "a.csv", 10))
    assert len(http_server.requests("DELETE")) == 1
    ws_server.init_reply = {"success": False, "error": "Token invalid"}
    with pytest.raises(TokenExpired):
        await client.api(token).upload_csv("my data", write(tmp_path / "a.csv", 10))
    assert len(http_server.requests("DELETE")) == 2


async def test_silent_backend_times_out_and_deletes(http_server: ScriptedHTTP, ws_server: ScriptedWS,
                                                    token: str, tmp_path: Path) -> None:
    upload_routes(http_server)
    ws_server.handler = None  # never answers a chunk
    async with HanamiClient(http_server.url, timeout=0.3) as client:
        client.ws_url = ws_server.url
        with pytest.raises(BackendUnavailable, match="did not answer"):
            await client.api(token).upload_csv("my data", write(tmp_path / "a.csv", 10))
    assert len(http_server.requests("DELETE")) == 1


async def test_never_complete_times_out_and_deletes(http_server: ScriptedHTTP, ws_server: ScriptedWS,
                                                    client: HanamiClient, token: str, tmp_path: Path) -> None:
    upload_routes(http_server)
    http_server.on("GET", "/control/v1/dataset/progress", {"complete": False, "uuid": DS})

    async def handler(frame: bytes) -> bytes:
        return ok()

    ws_server.handler = handler
    with pytest.raises(BackendUnavailable, match="complete"):
        await client.api(token).upload_csv("my data", write(tmp_path / "a.csv", 10), complete_timeout=0.3)
    assert len(http_server.requests("DELETE")) == 1


async def test_cancelled_upload_deletes_dataset(http_server: ScriptedHTTP, ws_server: ScriptedWS,
                                                client: HanamiClient, token: str, tmp_path: Path) -> None:
    upload_routes(http_server)
    first_chunk = asyncio.Event()

    async def handler(frame: bytes) -> bytes:
        first_chunk.set()
        await asyncio.sleep(0.05)
        return ok()

    ws_server.handler = handler
    task = asyncio.create_task(client.api(token).upload_csv("my data", write(tmp_path / "a.csv", 20 * SEGMENT_SIZE)))
    await asyncio.wait_for(first_chunk.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [s.target for s in http_server.requests("DELETE")] == [f"/control/v1/dataset?uuid={DS}"]
    assert http_server.requests("PUT") == []
    assert len(ws_server.frames) < 20


async def test_backend_closes_upload_socket(http_server: ScriptedHTTP, ws_server: ScriptedWS,
                                            client: HanamiClient, token: str, tmp_path: Path) -> None:
    upload_routes(http_server)
    ws_server.init_reply = {"action": "close"}
    with pytest.raises(BackendUnavailable):
        await client.api(token).upload_csv("my data", write(tmp_path / "a.csv", 10))
    assert len(http_server.requests("DELETE")) == 1


@pytest.fixture
def cluster_routes(http_server: ScriptedHTTP) -> ScriptedHTTP:
    http_server.on("GET", "/control/v1/cluster", {"name": "c", "uuid": CLUSTER})
    return http_server


async def test_direct_io_request_and_train(cluster_routes: ScriptedHTTP, ws_server: ScriptedWS,
                                           client: HanamiClient, token: str) -> None:
    async def handler(frame: bytes) -> bytes:
        msg = ClusterIO_Message.FromString(frame)
        if not msg.isLast or msg.processType == TRAIN_TYPE:  # ack / train-end
            reply = ClusterIO_Message(isLast=msg.isLast, processType=TRAIN_TYPE, numberOfValues=1, values=[0.0])
            return reply.SerializeToString()
        return ClusterIO_Message(brickName="out", processType=REQUEST_TYPE, numberOfValues=2,
                                 values=[sum(msg.values), 0.25]).SerializeToString()

    ws_server.handler = handler
    async with client.api(token).direct_io(CLUSTER) as io:
        assert await io.request("in", [1, 2.5]) == [3.5, 0.25]
        await io.train("in", [1.0, 0.0], "out", [0.0, 1.0])
    assert ws_server.inits == [{"token": token, "target": "cluster", "uuid": CLUSTER}]
    sent = [ClusterIO_Message.FromString(f) for f in ws_server.frames]
    assert [(m.brickName, m.isLast, m.processType, m.numberOfValues, list(m.values)) for m in sent] == [
        ("in", True, REQUEST_TYPE, 2, [1.0, 2.5]),
        ("in", False, TRAIN_TYPE, 2, [1.0, 0.0]),
        ("out", True, TRAIN_TYPE, 2, [0.0, 1.0]),
    ]
    await asyncio.wait_for(_until(lambda: ws_server.closed == 1), 5)


async def _until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.01)


async def test_direct_io_silent_cluster(cluster_routes: ScriptedHTTP, ws_server: ScriptedWS,
                                        client: HanamiClient, token: str) -> None:
    ws_server.handler = None  # unknown brick: Hanami never answers (Q-W1)
    async with client.api(token).direct_io(CLUSTER, reply_timeout=0.2) as io:
        with pytest.raises(BackendUnavailable, match="the cluster did not answer"):
            await io.request("nope", [1.0])
        assert not io.is_open
        await asyncio.wait_for(_until(lambda: ws_server.closed == 1), 5)
        with pytest.raises(BackendUnavailable):
            await io.request("in", [1.0])
    assert client.websockets.in_use == 0


async def test_direct_io_unknown_cluster_never_opens_socket(http_server: ScriptedHTTP, ws_server: ScriptedWS,
                                                            client: HanamiClient, token: str) -> None:
    http_server.on("GET", "/control/v1/cluster", Reply(404, f"Cluster with uuid '{CLUSTER}' not found"))
    with pytest.raises(NotFound):
        async with client.api(token).direct_io(CLUSTER):
            pass
    assert ws_server.inits == []  # Q-W2: an unknown uuid would crash the real backend


async def test_direct_io_init_refused(cluster_routes: ScriptedHTTP, ws_server: ScriptedWS,
                                      client: HanamiClient, token: str) -> None:
    ws_server.init_reply = {"success": False, "error": f"Cluster with UUID '{CLUSTER}' not found"}
    with pytest.raises(NotFound, match="Cluster with UUID"):
        async with client.api(token).direct_io(CLUSTER):
            pass
    ws_server.init_reply = {"action": "close"}
    with pytest.raises(BackendUnavailable):
        async with client.api(token).direct_io(CLUSTER):
            pass
    assert client.websockets.in_use == 0


async def test_websocket_limit(cluster_routes: ScriptedHTTP, ws_server: ScriptedWS,
                               http_server: ScriptedHTTP, token: str) -> None:
    async def handler(frame: bytes) -> bytes:
        return ClusterIO_Message(values=[1.0], numberOfValues=1).SerializeToString()

    ws_server.handler = handler
    async with HanamiClient(http_server.url, timeout=0.3, max_websockets=2) as client:
        client.ws_url = ws_server.url
        api = client.api(token)
        async with api.direct_io(CLUSTER) as a, api.direct_io(CLUSTER) as b:
            assert ws_server.open_now == 2
            with pytest.raises(BackendUnavailable, match="busy"):
                async with api.direct_io(CLUSTER):
                    pass
            assert ws_server.open_now == 2
            assert await a.request("in", [1.0]) == [1.0]
            assert await b.request("in", [1.0]) == [1.0]

        async def one() -> list[float]:
            async with api.direct_io(CLUSTER) as io:
                return await io.request("in", [1.0])

        client.timeout = 5
        assert await asyncio.gather(*(one() for _ in range(6))) == [[1.0]] * 6
        assert ws_server.open_peak == 2
        assert client.websockets.peak == 2 and client.websockets.in_use == 0


async def test_cancelled_during_init_still_deletes_dataset(http_server: ScriptedHTTP, ws_server: ScriptedWS,
                                                           client: HanamiClient, token: str, tmp_path: Path) -> None:
    upload_routes(http_server)
    init = {"uuid": DS, "uuid_input_file": T_IN, "name": "my data", "type": "csv"}
    http_server.on("POST", "/control/v1/csv/dataset", Reply(200, init, delay=0.3))
    task = asyncio.create_task(client.api(token).upload_csv("my data", write(tmp_path / "a.csv", 10)))
    await asyncio.wait_for(_until(lambda: http_server.requests("POST")), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [s.target for s in http_server.requests("DELETE")] == [f"/control/v1/dataset?uuid={DS}"]
    assert ws_server.inits == []
