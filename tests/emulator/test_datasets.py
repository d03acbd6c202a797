"""Dataset uploads over the websocket (§4.27-4.35, §5.4)."""

from __future__ import annotations

import json

import pytest
from tests.emulator.emu_helpers import Api, wait_for
from websockets.sync.client import connect

from webconsole.emulator.tempfiles import tracked_segments
from webconsole.protocol.messages import FileUpload_Message, FileUploadResponse_Message

CSV = b"test_input,test_output\n" + b"".join(f"{i / 10:.1f},{(i % 3) / 2:.1f}\n".encode() for i in range(20))


def ws_init(ws, api: Api, target: str, uuid) -> bytes:
    ws.send(json.dumps({"token": api.token, "target": target, "uuid": uuid}))
    return ws.recv(timeout=10)


def upload_chunk(ws, position: int, data: bytes) -> FileUploadResponse_Message:
    ws.send(FileUpload_Message(position=position, data=data).SerializeToString())
    return FileUploadResponse_Message.FromString(ws.recv(timeout=10))


@pytest.mark.parametrize("size,segments", [(1, 1), (131071, 1), (131072, 1), (131073, 1),
                                           (2 * 131072, 2), (2 * 131072 + 5, 2), (47_040_016, 358)])
def test_segment_formula(size, segments):
    assert tracked_segments(size) == segments


def test_mnist_upload_lifecycle(admin: Api, demo):
    images, labels = demo.small_images.read_bytes(), demo.small_labels.read_bytes()
    init = admin.ok("POST", "v1/mnist/dataset", {"name": "small mnist", "input_data_size": len(images),
                                                 "label_data_size": len(labels)})
    assert sorted(init) == ["name", "owner_id", "project_id", "type", "uuid", "uuid_input_file",
                            "uuid_label_file", "visibility"]
    assert (init["type"], init["visibility"], init["owner_id"]) == ("mnist", "private", "asdf")
    uuid = init["uuid"]
    # listed at once, GET is 500 until finalized (Q-D7), progress false
    listed = admin.ok("GET", "v1/dataset/all")
    assert listed["header"] == ["uuid", "project_id", "owner_id", "visibility", "name", "type"]
    assert [uuid, "admin", "asdf", "private", "small mnist", "mnist"] in listed["body"]
    assert admin.call("GET", "v1/dataset", query=f"uuid={uuid}").status_code == 500
    assert admin.ok("GET", "v1/dataset/progress", query=f"uuid={uuid}") == {"complete": False, "uuid": uuid}

    with connect(admin.server.ws_url) as ws:
        reply = ws_init(ws, admin, "file_upload", init["uuid_input_file"])
        assert isinstance(reply, bytes)  # every server frame is binary
        assert json.loads(reply)["success"] is True
        # out of range write
        bad = upload_chunk(ws, len(images), b"xx")
        assert (bad.success, bad.errorMessage) == (False, "Failed to write data to disc")
        # not a FileUpload_Message
        ws.send(b"\xff\xff\xff")
        bad = FileUploadResponse_Message.FromString(ws.recv(timeout=10))
        assert (bad.success, bad.errorMessage) == (False, "Got invalid FileUpload-Message")
        for pos in range(0, len(images), 131072):
            assert upload_chunk(ws, pos, images[pos:pos + 131072]).success
    # the label file is still missing -> not complete
    assert admin.ok("GET", "v1/dataset/progress", query=f"uuid={uuid}")["complete"] is False
    admin.upload_file(init["uuid_label_file"], labels)
    assert admin.ok("GET", "v1/dataset/progress", query=f"uuid={uuid}")["complete"] is True
    body = {"uuid": uuid, "uuid_input_file": init["uuid_input_file"], "uuid_label_file": init["uuid_label_file"]}
    assert admin.ok("PUT", "v1/mnist/dataset", body) == {"uuid": uuid}
    got = admin.ok("GET", "v1/dataset", query=f"uuid={uuid}")
    assert (got["inputs"], got["outputs"], got["lines"], got["type"]) == (784, 10, 200, "mnist")
    assert got["location"].endswith(f"{uuid}_mnist_asdf")
    # finalizing twice -> input temp file gone; progress vacuously true
    resp = admin.call("PUT", "v1/mnist/dataset", body)
    assert (resp.status_code, resp.text) == (404, f"Input-data with uuid '{init['uuid_input_file']}' not found.")
    assert admin.ok("GET", "v1/dataset/progress", query=f"uuid={uuid}")["complete"] is True
    assert admin.ok("DELETE", "v1/dataset", query=f"uuid={uuid}") == {}
    resp = admin.call("DELETE", "v1/dataset", query=f"uuid={uuid}")
    assert (resp.status_code, resp.text) == (404, f"Data-set with uuid '{uuid}' not found")


def test_trailing_partial_segment_not_tracked(admin: Api):
    size = 2 * 131072 + 100
    init = admin.ok("POST", "v1/csv/dataset", {"name": "partial", "input_data_size": size})
    with connect(admin.server.ws_url) as ws:
        ws_init(ws, admin, "file_upload", init["uuid_input_file"])
        assert upload_chunk(ws, 0, b"a" * 131072).success
        # an empty chunk also marks its segment (and skips the bounds check)
        assert upload_chunk(ws, 131072, b"").success
        assert upload_chunk(ws, 10 * 131072, b"").success
        # complete before the last partial chunk arrived (Q-D5)
        assert admin.ok("GET", "v1/dataset/progress", query=f"uuid={init['uuid']}")["complete"] is True


def test_csv_upload_and_q_d3_file_naming(admin: Api):
    uuid = admin.upload_csv("csv data", CSV)
    got = admin.ok("GET", "v1/dataset", query=f"uuid={uuid}")
    assert (got["type"], got["inputs"], got["outputs"], got["lines"]) == ("csv", 0, 0, 20)
    assert got["location"].endswith("csv data_csv_asdf")


def test_websocket_init_failures(admin: Api, member: Api):
    init = admin.ok("POST", "v1/csv/dataset", {"name": "foreign", "input_data_size": 10})
    with connect(admin.server.ws_url + "/any/path?x=1") as ws:
        for message, expected in [
            ("not json", {"error": "Token invalid", "success": False}),
            (json.dumps({"target": "cluster", "uuid": "x"}), {"error": "Token invalid", "success": False}),
            (json.dumps({"token": "abc", "target": "cluster", "uuid": "x"}),
             {"error": "Token invalid", "success": False}),
            (json.dumps({"token": admin.token, "target": "shiori", "uuid": "x"}), {"error": "", "success": False}),
            (json.dumps({"token": admin.token, "target": "file_upload", "uuid": "nope"}),
             {"error": "Tempfile with UUID 'nope' not found", "success": False}),
            # a different user may not upload into the temp file
            (json.dumps({"token": member.token, "target": "file_upload", "uuid": init["uuid_input_file"]}),
             {"error": f"Tempfile with UUID '{init['uuid_input_file']}' not found", "success": False}),
        ]:
            ws.send(message)
            reply = ws.recv(timeout=10)
            assert isinstance(reply, bytes)
            assert json.loads(reply) == expected
            assert reply == json.dumps(expected, sort_keys=True, separators=(",", ":")).encode()
        # the same socket may init again after a failure
        ws.send(json.dumps({"token": admin.token, "target": "file_upload", "uuid": init["uuid_input_file"]}))
        assert json.loads(ws.recv(timeout=10))["success"] is True


def test_missing_uuid_closes_websocket(admin: Api):
    from websockets.exceptions import ConnectionClosed

    with connect(admin.server.ws_url) as ws:
        ws.send(json.dumps({"token": admin.token, "target": "file_upload"}))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)


def test_tempfile_expiry(admin: Api):
    # the fixture runs the cleanup tick every 0.05 s: 10 ticks without websocket -> expired
    init = admin.ok("POST", "v1/csv/dataset", {"name": "expiring", "input_data_size": 300000})
    assert admin.ok("GET", "v1/dataset/progress", query=f"uuid={init['uuid']}")["complete"] is False
    wait_for(lambda: admin.ok("GET", "v1/dataset/progress", query=f"uuid={init['uuid']}")["complete"], 10)
    resp = admin.call("PUT", "v1/csv/dataset", {"uuid": init["uuid"], "uuid_input_file": init["uuid_input_file"]})
    assert (resp.status_code, resp.text) == (404, f"Input-data with uuid '{init['uuid_input_file']}' not found.")


def test_attached_websocket_suspends_expiry(admin: Api):
    init = admin.ok("POST", "v1/csv/dataset", {"name": "attached", "input_data_size": 300000})
    with connect(admin.server.ws_url) as ws:
        assert json.loads(ws_init(ws, admin, "file_upload", init["uuid_input_file"]))["success"] is True
        # a probe upload created now, without websocket, expires after 10 ticks ...
        probe = admin.ok("POST", "v1/csv/dataset", {"name": "probe", "input_data_size": 300000})
        wait_for(lambda: admin.ok("GET", "v1/dataset/progress", query=f"uuid={probe['uuid']}")["complete"], 10)
        # ... while the attached temp file survived the same ticks
        assert upload_chunk(ws, 0, b"a" * 131072).success
        assert admin.ok("GET", "v1/dataset/progress", query=f"uuid={init['uuid']}")["complete"] is False


def test_finalize_errors(admin: Api):
    import uuid as uuidlib

    unknown = str(uuidlib.uuid4())
    resp = admin.call("PUT", "v1/csv/dataset", {"uuid": unknown, "uuid_input_file": unknown})
    assert (resp.status_code, resp.text) == (404, f"Data-set with uuid '{unknown}' not found")
    init = admin.ok("POST", "v1/mnist/dataset", {"name": "xyzw", "input_data_size": 5, "label_data_size": 5})
    resp = admin.call("PUT", "v1/mnist/dataset", {"uuid": init["uuid"], "uuid_input_file": init["uuid_input_file"],
                                                  "uuid_label_file": unknown})
    assert (resp.status_code, resp.text) == (404, f"Label-data with uuid '{unknown}' not found.")
    resp = admin.call("GET", "v1/dataset/progress", query=f"uuid={unknown}")
    assert (resp.status_code, resp.text) == (404, f"Data-set with uuid '{unknown}' not found")
