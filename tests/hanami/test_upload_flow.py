"""The dataset upload's guards, against scripted loopback HTTP + websocket servers: what Hanami is
asked (and in which order), what the caller is told when a step goes wrong, and that no half-made
dataset stays behind however the upload ends."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from tests.hanami.hanami_scripted import Reply, ScriptedHTTP, ScriptedWS
from tests.hanami.test_client_websockets import DS, T_IN, T_LABEL, ok, upload_routes, write

from webconsole.hanami import BackendError, BackendUnavailable, BadRequest, HanamiClient, NotFound
from webconsole.hanami.uploads import upload_dataset
from webconsole.protocol.messages import SEGMENT_SIZE, FileUpload_Message, FileUploadResponse_Message

DELETE_TARGET = f"/control/v1/dataset?uuid={DS}"
LIST = "GET v1/dataset/all"  # a CSV upload first looks for a namesake of the same owner (Q-D3)


class Calls:
    """The REST calls the client makes, as its own observer sees them ("POST v1/csv/dataset")."""

    def __init__(self, client: HanamiClient) -> None:
        self.seen: list[str] = []
        client.on_call = lambda endpoint, status, seconds, error: self.seen.append(endpoint)


def answer_every_chunk(ws_server: ScriptedWS) -> None:
    async def handler(frame: bytes) -> bytes:
        return ok()

    ws_server.handler = handler


async def test_a_csv_upload_asks_hanami_exactly_this(http_server: ScriptedHTTP, ws_server: ScriptedWS,
                                                     client: HanamiClient, token: str, tmp_path: Path) -> None:
    upload_routes(http_server)
    answer_every_chunk(ws_server)
    calls = Calls(client)
    csv = write(tmp_path / "data.csv", 2 * SEGMENT_SIZE + 500)
    reports: list[tuple[int, int, int]] = []  # (sent, total, frames Hanami had when it was reported)
    created: list[tuple[str, int]] = []

    async def progress(sent: int, total: int) -> None:
        reports.append((sent, total, len(ws_server.frames)))

    async def on_created(uuid: str) -> None:
        created.append((uuid, len(ws_server.frames) + len(ws_server.inits)))

    assert await client.api(token).upload_csv("my data", csv, progress, on_created=on_created) == DS
    total = csv.stat().st_size
    assert calls.seen == [LIST, "POST v1/csv/dataset", "GET v1/dataset/progress", "GET v1/dataset/progress",
                          "PUT v1/csv/dataset"]
    assert http_server.requests("POST")[0].json() == {"name": "my data", "input_data_size": total}
    assert http_server.requests("PUT")[0].json() == {"uuid": DS, "uuid_input_file": T_IN}
    assert created == [(DS, 0)]  # told before a byte was sent
    assert [(sent, t) for sent, t, _ in reports] == [(0, total), (SEGMENT_SIZE, total), (2 * SEGMENT_SIZE, total),
                                                     (total, total)]
    assert [frames for _, _, frames in reports] == [0, 1, 2, 3]  # each chunk counted once Hanami took it
    positions = [FileUpload_Message.FromString(frame).position for frame in ws_server.frames]
    assert positions == [0, SEGMENT_SIZE, 2 * SEGMENT_SIZE]
    assert b"".join(FileUpload_Message.FromString(f).data for f in ws_server.frames) == csv.read_bytes()


async def test_a_reply_that_is_not_an_upload_answer_fails_and_deletes(
        http_server: ScriptedHTTP, ws_server: ScriptedWS, client: HanamiClient, token: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    upload_routes(http_server)

    async def handler(frame: bytes) -> bytes:
        return b"\xff\xff\xff"  # not a protobuf message

    ws_server.handler = handler
    calls = Calls(client)
    caplog.set_level(logging.INFO, "webconsole.hanami")
    with pytest.raises(BackendError, match="^the upload reply is not a FileUploadResponse_Message$") as caught:
        await client.api(token).upload_csv("my data", write(tmp_path / "a.csv", 10))
    assert caught.value.endpoint == "websocket file_upload"
    assert calls.seen == [LIST, "POST v1/csv/dataset", "DELETE v1/dataset"]
    assert [seen.target for seen in http_server.requests("DELETE")] == [DELETE_TARGET]
    assert f"upload failed: data-set {DS} deleted again" in caplog.messages


async def test_a_refused_chunk_without_a_message_still_says_why(
        http_server: ScriptedHTTP, ws_server: ScriptedWS, client: HanamiClient, token: str, tmp_path: Path) -> None:
    upload_routes(http_server)

    async def handler(frame: bytes) -> bytes:
        return FileUploadResponse_Message(success=False).SerializeToString()

    ws_server.handler = handler
    with pytest.raises(BackendError, match="^the backend refused an upload chunk$") as caught:
        await client.api(token).upload_csv("my data", write(tmp_path / "a.csv", 10))
    assert caught.value.endpoint == "websocket file_upload"
    assert [seen.target for seen in http_server.requests("DELETE")] == [DELETE_TARGET]


async def test_a_file_that_shrinks_mid_upload_is_named_and_its_dataset_deleted(
        http_server: ScriptedHTTP, ws_server: ScriptedWS, client: HanamiClient, token: str, tmp_path: Path) -> None:
    upload_routes(http_server)
    answer_every_chunk(ws_server)
    csv = write(tmp_path / "shrinking.csv", 3 * SEGMENT_SIZE)

    async def progress(sent: int, total: int) -> None:
        if sent == SEGMENT_SIZE:  # the first chunk is with Hanami: the file loses its tail
            with csv.open("r+b") as handle:
                handle.truncate(SEGMENT_SIZE + 10)

    with pytest.raises(BadRequest, match="^the file shrinking.csv became shorter during the upload$") as caught:
        await client.api(token).upload_csv("my data", csv, progress)
    assert caught.value.endpoint == "websocket file_upload"
    frames = [FileUpload_Message.FromString(frame) for frame in ws_server.frames]
    assert [(f.position, len(f.data)) for f in frames] == [(0, SEGMENT_SIZE), (SEGMENT_SIZE, 10)]
    assert [seen.target for seen in http_server.requests("DELETE")] == [DELETE_TARGET]
    assert http_server.requests("PUT") == []


async def test_a_failed_delete_leaves_the_original_error_and_a_warning(
        http_server: ScriptedHTTP, ws_server: ScriptedWS, client: HanamiClient, token: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    upload_routes(http_server)
    http_server.on("DELETE", "/control/v1/dataset", Reply(500, "Internal error"))

    async def handler(frame: bytes) -> bytes:
        return FileUploadResponse_Message(success=False, errorMessage="disc full").SerializeToString()

    ws_server.handler = handler
    caplog.set_level(logging.INFO, "webconsole.hanami")
    with pytest.raises(BackendError, match="^disc full$"):
        await client.api(token).upload_csv("my data", write(tmp_path / "a.csv", 10))
    assert len(http_server.requests("DELETE")) == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "webconsole.hanami"]
    assert [r.getMessage().split(": ")[0] for r in warnings] == [
        f"upload failed and data-set {DS} could not be deleted"]
    assert "Internal error" in warnings[0].getMessage()  # which error, for the operator
    assert not any("deleted again" in message for message in caplog.messages)


@pytest.mark.parametrize("init", [Reply(200, {"name": "my data", "uuid_input_file": T_IN}), Reply(200, b"[]")],
                         ids=["no-uuid", "not-an-object"])
async def test_an_init_answer_without_a_dataset_uuid_creates_nothing_to_delete(
        http_server: ScriptedHTTP, ws_server: ScriptedWS, client: HanamiClient, token: str, tmp_path: Path,
        init: Reply) -> None:
    upload_routes(http_server)
    http_server.on("POST", "/control/v1/csv/dataset", init)
    created: list[str] = []

    async def on_created(uuid: str) -> None:
        created.append(uuid)

    with pytest.raises(BackendError, match="^the upload init answer has no dataset uuid$") as caught:
        await client.api(token).upload_csv("my data", write(tmp_path / "a.csv", 10), on_created=on_created)
    assert (caught.value.status, caught.value.endpoint) == (200, "POST v1/csv/dataset")
    assert created == [] and ws_server.inits == [] and http_server.requests("DELETE") == []


@pytest.mark.parametrize("kind,init", [
    ("csv", {"uuid": DS, "name": "my data"}),
    ("mnist", {"uuid": DS, "uuid_input_file": T_IN, "name": "my data"}),  # no label temp file
], ids=["csv", "mnist-without-label-file"])
async def test_an_init_answer_without_temp_files_is_refused_and_deleted(
        http_server: ScriptedHTTP, ws_server: ScriptedWS, client: HanamiClient, token: str, tmp_path: Path,
        kind: str, init: dict) -> None:
    upload_routes(http_server, kind)
    http_server.on("POST", f"/control/v1/{kind}/dataset", init)
    api = client.api(token)
    with pytest.raises(BackendError, match="^the upload init answer has no temp-file uuids$") as caught:
        if kind == "csv":
            await api.upload_csv("my data", write(tmp_path / "a.csv", 10))
        else:
            await api.upload_mnist("my data", write(tmp_path / "i.idx", 10), write(tmp_path / "l.idx", 10))
    assert (caught.value.status, caught.value.endpoint) == (200, f"POST v1/{kind}/dataset")
    assert ws_server.inits == []
    assert [seen.target for seen in http_server.requests("DELETE")] == [DELETE_TARGET]


async def test_waiting_for_hanami_polls_gently_and_gives_up_on_time(
        http_server: ScriptedHTTP, ws_server: ScriptedWS, client: HanamiClient, token: str, tmp_path: Path) -> None:
    """Hanami converts a dataset after the last chunk: the progress is asked for soon (50 ms), then
    less and less often (never more often than every 0.5 s), until the timeout."""
    upload_routes(http_server)
    # not an object, then not the boolean true: neither means complete
    http_server.on("GET", "/control/v1/dataset/progress", Reply(200, b"[]"), {"complete": "true", "uuid": DS},
                   {"complete": False, "uuid": DS})
    answer_every_chunk(ws_server)
    loop = asyncio.get_running_loop()
    asked: list[float] = []  # when each progress answer arrived
    client.on_call = lambda endpoint, *_: asked.append(loop.time()) if endpoint == "GET v1/dataset/progress" else None
    started = loop.time()
    with pytest.raises(BackendUnavailable, match="^the backend did not report the upload complete within 2.5 s$") \
            as caught:
        await client.api(token).upload_csv("my data", write(tmp_path / "a.csv", 10), complete_timeout=2.5)
    assert caught.value.endpoint == "GET v1/dataset/progress"
    assert loop.time() - started >= 2.5
    # 0, .05, .15, .35, .75, 1.25, 1.75, 2.25, 2.5 s: nine on an idle machine, fewer when it is busy
    assert 6 <= len(asked) <= 10, asked
    gaps = [later - earlier for earlier, later in zip(asked, asked[1:], strict=False)]
    assert gaps[0] < 0.3 and max(gaps) < 0.75, gaps  # soon at first, then at least every 0.5 s
    assert [seen.target for seen in http_server.requests("DELETE")] == [DELETE_TARGET]


async def test_a_progress_answer_complete_at_once_is_asked_once(
        http_server: ScriptedHTTP, ws_server: ScriptedWS, client: HanamiClient, token: str, tmp_path: Path) -> None:
    upload_routes(http_server)
    http_server.on("GET", "/control/v1/dataset/progress", {"complete": True, "uuid": DS})
    answer_every_chunk(ws_server)
    await client.api(token).upload_csv("my data", write(tmp_path / "a.csv", 10))
    assert len(http_server.requests("GET", "/control/v1/dataset/progress")) == 1


async def test_the_other_temp_file_stays_attached_while_the_first_is_sent(
        http_server: ScriptedHTTP, ws_server: ScriptedWS, client: HanamiClient, token: str, tmp_path: Path) -> None:
    """Hanami drops a temp file nobody attached to for ~10 minutes: while the images go, the label
    file is attached briefly every ``keep_attached`` seconds, and the attaching stops with the upload."""
    upload_routes(http_server, "mnist")
    during_images: list[list[str]] = []

    async def handler(frame: bytes) -> bytes:
        if len(ws_server.frames) <= 4:  # the images' chunks: slow enough for a few attaches
            await asyncio.sleep(0.1)
            during_images.append([init["uuid"] for init in ws_server.inits])
        return ok()

    ws_server.handler = handler
    api = client.api(token)
    images, labels = write(tmp_path / "i.idx", 4 * SEGMENT_SIZE), write(tmp_path / "l.idx", 60)
    assert await upload_dataset(api, "mnist", "my data", [images, labels], None, complete_timeout=5,
                                keep_attached=0.05) == DS
    attached = during_images[-1]
    assert attached[0] == T_IN and attached.count(T_LABEL) >= 2 and T_IN not in attached[1:]
    assert {init["target"] for init in ws_server.inits} == {"file_upload"}
    done = len(ws_server.inits)
    await asyncio.sleep(0.3)  # six attach intervals: none may follow the finished upload
    assert len(ws_server.inits) == done
    assert http_server.requests("DELETE") == []


async def test_a_temp_file_lost_while_the_other_is_sent_fails_the_upload(
        http_server: ScriptedHTTP, ws_server: ScriptedWS, client: HanamiClient, token: str, tmp_path: Path) -> None:
    """The label file cannot be attached while the images go (Hanami dropped it): the upload fails
    with Hanami's answer and its dataset is deleted, even though a later attach would work again."""
    upload_routes(http_server, "mnist")
    refused = {"success": False, "error": f"Tempfile with UUID '{T_LABEL}' not found"}

    async def handler(frame: bytes) -> bytes:
        if len(ws_server.frames) == 1:
            ws_server.init_reply = refused
            deadline = asyncio.get_running_loop().time() + 5
            while len(ws_server.inits) < 2 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)  # until the keeper tried (and was refused)
            ws_server.init_reply = {"success": True, "uuid": "conn"}
        return ok()

    ws_server.handler = handler
    api = client.api(token)
    images, labels = write(tmp_path / "i.idx", 2 * SEGMENT_SIZE), write(tmp_path / "l.idx", 60)
    with pytest.raises(NotFound, match="Tempfile"):
        await upload_dataset(api, "mnist", "my data", [images, labels], None, complete_timeout=5, keep_attached=0.02)
    assert [init["uuid"] for init in ws_server.inits][:2] == [T_IN, T_LABEL]
    assert http_server.requests("PUT") == []
    assert [seen.target for seen in http_server.requests("DELETE")] == [DELETE_TARGET]


@pytest.mark.parametrize("init", [Reply(500, "Internal error", delay=0.3), Reply(200, {"name": "x"}, delay=0.3),
                                  Reply(200, b"[]", delay=0.3)],
                         ids=["init-fails", "init-without-uuid", "init-not-an-object"])
async def test_cancelled_during_an_init_that_created_nothing_deletes_nothing(
        http_server: ScriptedHTTP, ws_server: ScriptedWS, client: HanamiClient, token: str, tmp_path: Path,
        init: Reply) -> None:
    upload_routes(http_server)
    http_server.on("POST", "/control/v1/csv/dataset", init)
    calls = Calls(client)
    task = asyncio.create_task(client.api(token).upload_csv("my data", write(tmp_path / "a.csv", 10)))
    deadline = asyncio.get_running_loop().time() + 5
    while not http_server.requests("POST") and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls.seen == [LIST, "POST v1/csv/dataset"]  # the init's answer was awaited, and nothing followed
    assert http_server.requests("DELETE") == [] and ws_server.inits == []


async def test_a_file_that_grows_mid_upload_sends_only_the_size_announced(
        http_server: ScriptedHTTP, ws_server: ScriptedWS, client: HanamiClient, token: str, tmp_path: Path) -> None:
    """Hanami made room for the size given at the init: bytes appended later are not sent."""
    upload_routes(http_server)
    answer_every_chunk(ws_server)
    csv = write(tmp_path / "growing.csv", SEGMENT_SIZE + 100)
    original = csv.read_bytes()

    async def progress(sent: int, total: int) -> None:
        if sent == SEGMENT_SIZE:
            with csv.open("ab") as handle:
                handle.write(b"x" * SEGMENT_SIZE)

    await client.api(token).upload_csv("my data", csv, progress)
    frames = [FileUpload_Message.FromString(frame) for frame in ws_server.frames]
    assert [(f.position, len(f.data)) for f in frames] == [(0, SEGMENT_SIZE), (SEGMENT_SIZE, 100)]
    assert b"".join(f.data for f in frames) == original


async def test_a_socket_closed_before_the_first_chunk_fails_on_sending(
        http_server: ScriptedHTTP, client: HanamiClient, token: str, tmp_path: Path) -> None:
    """Hanami accepts the websocket and closes it at once: sending the first chunk fails, named."""
    upload_routes(http_server)
    inits: list[str] = []

    async def accept_then_close(ws: ServerConnection) -> None:
        inits.append(str(await ws.recv()))
        await ws.send(b'{"success": true, "uuid": "conn"}')
        await ws.close()

    async with serve(accept_then_close, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
        client.ws_url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        with pytest.raises(BackendUnavailable, match="^the backend closed the websocket$") as caught:
            await client.api(token).upload_csv("my data", write(tmp_path / "a.csv", 10))
    assert caught.value.endpoint == "websocket file_upload" and len(inits) == 1
    assert [seen.target for seen in http_server.requests("DELETE")] == [DELETE_TARGET]


async def test_a_socket_closed_instead_of_a_chunk_reply_names_the_upload(
        http_server: ScriptedHTTP, client: HanamiClient, token: str, tmp_path: Path) -> None:
    upload_routes(http_server)

    async def close_on_first_chunk(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(b'{"success": true, "uuid": "conn"}')
        await ws.recv()  # the first chunk: no reply, the socket closes
        await ws.close()

    async with serve(close_on_first_chunk, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
        client.ws_url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        with pytest.raises(BackendUnavailable,
                           match=r"^the backend closed the websocket without answering \(the upload\)$") as caught:
            await client.api(token).upload_csv("my data", write(tmp_path / "a.csv", 10))
    assert caught.value.endpoint == "websocket file_upload"
    assert [seen.target for seen in http_server.requests("DELETE")] == [DELETE_TARGET]
