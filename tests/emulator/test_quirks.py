"""Crash cases of §12.1 in both quirk modes; the emulator itself never dies."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import uuid as uuidlib

import httpx
import numpy as np
import pytest
from tests.emulator.emu_helpers import ADMIN, Api, unique
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from webconsole.protocol.idx import hanami_mnist_capacity, write_idx_images, write_idx_labels
from webconsole.protocol.messages import ClusterIO_Message
from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE, EXAMPLE_MNIST_TEMPLATE


def template() -> str:
    return base64.b64encode(EXAMPLE_CSV_TEMPLATE.encode()).decode()


def crash_cases(api: Api) -> list[tuple[str, str, object, str]]:
    unknown = str(uuidlib.uuid4())
    cluster = api.create_cluster(unique("crash "), EXAMPLE_CSV_TEMPLATE)
    return [
        # (id, method, path, body, query)
        ("Q-C1", "POST", "v1/cluster", {"name": unique("notemplate ")}, ""),
        ("Q-C2 get", "GET", "v1/dataset", None, f"uuid={unknown}"),
        ("Q-C2 task", "POST", "v1/task", {"name": "name", "type": "train", "cluster_uuid": cluster,
                                          "dataset_uuid": unknown}, ""),
        ("Q-C3", "POST", "v1/project", "[1, 2]", ""),
        ("Q-C6", "GET", "v1/audit_log", None, "page=99999999999"),
    ]


@pytest.fixture(scope="module")
def faithful_admin(hanami_faithful) -> Api:
    return Api(hanami_faithful).login(*ADMIN)


def test_faithful_crashes_close_the_connection_without_reply(faithful_admin: Api):
    for name, method, path, body, query in crash_cases(faithful_admin):
        with pytest.raises(httpx.RemoteProtocolError):
            faithful_admin.call(method, path, body, query)
        # the server is still alive after each crash
        assert faithful_admin.ok("GET", "v1/auth")["id"] == "asdf", name


def test_lenient_crashes_get_the_intended_reply(admin: Api):
    expected = {"Q-C1": 400, "Q-C2 get": 404, "Q-C2 task": 404, "Q-C3": 400, "Q-C6": 400}
    for name, method, path, body, query in crash_cases(admin):
        resp = admin.call(method, path, body, query)
        assert resp.status_code == expected[name], (name, resp.text)
        assert resp.headers["content-type"] == "text/plain"


def test_faithful_websocket_unknown_cluster_drops_tcp(faithful_admin: Api):
    with connect(faithful_admin.server.ws_url) as ws:
        ws.send(json.dumps({"token": faithful_admin.token, "target": "cluster", "uuid": str(uuidlib.uuid4())}))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
    assert faithful_admin.ok("GET", "v1/auth")["id"] == "asdf"


def test_faithful_websocket_unknown_brick_never_replies(faithful_admin: Api):
    cluster = faithful_admin.create_cluster(unique("stuck "), EXAMPLE_CSV_TEMPLATE)
    with connect(faithful_admin.server.ws_url) as ws:
        ws.send(json.dumps({"token": faithful_admin.token, "target": "cluster", "uuid": cluster}))
        assert json.loads(ws.recv(timeout=10))["success"] is True
        ws.send(ClusterIO_Message(brickName="nope", isLast=True, numberOfValues=1, values=[1.0]).SerializeToString())
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.3)
        # stuck: even a valid message is never answered again (Q-W1)
        ws.send(ClusterIO_Message(brickName="test_input", isLast=True, numberOfValues=1,
                                  values=[1.0]).SerializeToString())
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.3)
    assert faithful_admin.ok("GET", "v1/auth")["id"] == "asdf"


def test_worker_limit_is_shared_by_websockets_and_http(hanami, admin: Api):
    # four open websockets occupy every worker: the fifth connection waits
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(connect(hanami.ws_url)) for _ in range(4)]
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{hanami.url}/control/v1/auth", headers={"X-Auth-Token": admin.token}, timeout=0.5)
        sockets[0].close()
        assert admin.ok("GET", "v1/auth")["id"] == "asdf"


def test_header_limit_drops_connection(hanami):
    with socket.create_connection(("127.0.0.1", hanami.port), timeout=10) as sock:
        sock.sendall(b"GET /control/v1/auth HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
        assert sock.recv(65536) == b""


def _member_of(api: Api) -> Api:
    user, project = unique("qmember"), unique("qproj")
    api.ok("POST", "v1/user", {"id": user, "name": "Member", "password": "member-pw", "is_admin": False})
    api.ok("POST", "v1/user/project", {"id": user, "project_id": project, "role": "member",
                                       "is_project_admin": False})
    return Api(api.server).login(user, "member-pw")


def test_progress_of_someone_elses_upload(admin: Api, faithful_admin: Api):
    # Q-C4: lenient answers, faithful drops the connection
    for api, crashes in ((admin, False), (faithful_admin, True)):
        member = _member_of(api)
        init = member.ok("POST", "v1/csv/dataset", {"name": "their upload", "input_data_size": 10})
        if crashes:
            with pytest.raises(httpx.RemoteProtocolError):
                api.call("GET", "v1/dataset/progress", query=f"uuid={init['uuid']}")
        else:
            assert api.ok("GET", "v1/dataset/progress", query=f"uuid={init['uuid']}")["complete"] is False
        assert member.ok("GET", "v1/dataset/progress", query=f"uuid={init['uuid']}")["complete"] is False


def test_empty_template(admin: Api, faithful_admin: Api):
    resp = admin.call("POST", "v1/cluster", {"name": unique("empty "), "template": ""})
    assert (resp.status_code, resp.text) == (400, "Uploaded template is not a valid base64-String.")
    # faithful: a cluster without network is created; using it crashes (Q-C5)
    cluster = faithful_admin.ok("POST", "v1/cluster", {"name": unique("empty "), "template": ""})["uuid"]
    with pytest.raises(httpx.RemoteProtocolError):
        faithful_admin.call("POST", "v1/cluster/save", {"name": "never", "cluster_uuid": cluster})
    assert faithful_admin.ok("DELETE", "v1/cluster", query=f"uuid={cluster}") == {}


def test_check_against_unfinalized_dataset_is_empty_200(admin: Api, demo):
    cluster = admin.create_cluster(unique("qd4 "), EXAMPLE_CSV_TEMPLATE)
    dataset = admin.upload_csv("qd four", demo.csv.read_bytes())
    task = admin.ok("POST", "v1/task", {"name": "name", "type": "request", "cluster_uuid": cluster,
                                        "dataset_uuid": dataset})["uuid"]
    admin.wait_task(cluster, task)
    pending = admin.ok("POST", "v1/mnist/dataset", {"name": "pending", "input_data_size": 20, "label_data_size": 9})
    assert admin.ok("POST", "v1/dataset/check", {"result_uuid": task, "dataset_uuid": pending["uuid"]}) == {}  # Q-D4


def test_deleting_a_queued_checkpoint_save(admin: Api, faithful_admin: Api):
    """A real Hanami 0.4.1 stalls and then dies when a queued save task is removed: faithful drops the
    connection, lenient refuses with 409; the save stays queued and runs."""
    for api, crashes in ((admin, False), (faithful_admin, True)):
        cluster = api.create_cluster(unique("queued save "), EXAMPLE_CSV_TEMPLATE)
        api.ok("PUT", "v1/cluster/set_mode", {"uuid": cluster, "new_state": "DIRECT"})  # tasks stay queued
        save = api.ok("POST", "v1/cluster/save", {"name": unique("queued point "), "cluster_uuid": cluster})["uuid"]
        if crashes:
            with pytest.raises(httpx.RemoteProtocolError):
                api.call("DELETE", "v1/task", query=f"uuid={save}&cluster_uuid={cluster}")
        else:
            assert api.call("DELETE", "v1/task", query=f"uuid={save}&cluster_uuid={cluster}").status_code == 409
        api.ok("PUT", "v1/cluster/set_mode", {"uuid": cluster, "new_state": "TASK"})
        assert api.wait_task(cluster, save)["state"] == "finished"
        api.ok("DELETE", "v1/checkpoint", query=f"uuid={save}")
        api.ok("DELETE", "v1/cluster", query=f"uuid={cluster}")


def test_an_mnist_finalize_past_hanamis_conversion_buffer(admin: Api, faithful_admin: Api, tmp_path):
    """Hanami's MNIST finalize writes past its buffer beyond ``hanami_mnist_capacity`` images (a real
    server died on 20,000 images of 1 x 1 pixels, where 9,090 fit): faithful drops the connection,
    lenient converts them; up to the capacity both convert."""
    fit = hanami_mnist_capacity(1, 1)
    assert fit == 9090
    for count in (fit, 20000):
        write_idx_images(tmp_path / f"i{count}", np.full((count, 1, 1), 7, dtype=np.uint8))
        write_idx_labels(tmp_path / f"l{count}", (np.arange(count) % 10).astype(np.uint8))
    for api in (admin, faithful_admin):
        uuid = api.upload_mnist(unique("fits "), tmp_path / f"i{fit}", tmp_path / f"l{fit}")
        assert api.ok("GET", "v1/dataset", query=f"uuid={uuid}")["lines"] == fit
    uuid = admin.upload_mnist(unique("past lenient "), tmp_path / "i20000", tmp_path / "l20000")
    assert admin.ok("GET", "v1/dataset", query=f"uuid={uuid}")["lines"] == 20000
    with pytest.raises(httpx.RemoteProtocolError):
        faithful_admin.upload_mnist(unique("past faithful "), tmp_path / "i20000", tmp_path / "l20000")
    assert faithful_admin.ok("GET", "v1/auth")["id"] == "asdf"


def test_a_csv_task_with_fewer_rows_than_inputs(admin: Api, faithful_admin: Api, demo):
    """A real Hanami 0.4.1 ended its process on a train task of the 400-row demo CSV on the MNIST
    template's 784 inputs (Hanami's cycle count wraps): faithful drops the connection, lenient
    queues a task that runs no cycle and "finishes"."""
    for api in (admin, faithful_admin):
        cluster = api.create_cluster(unique("short csv "), EXAMPLE_MNIST_TEMPLATE)
        dataset = api.upload_csv(unique("short csv "), demo.csv.read_bytes())
        body = {"name": "short", "type": "train", "cluster_uuid": cluster, "dataset_uuid": dataset}
        if api is faithful_admin:
            with pytest.raises(httpx.RemoteProtocolError):
                api.call("POST", "v1/task", body)
            assert api.ok("GET", "v1/task/all", query=f"cluster_uuid={cluster}")["body"] == []
        else:
            task = api.ok("POST", "v1/task", body)["uuid"]
            done = api.wait_task(cluster, task)
            assert done["state"] == "finished" and done["percentage_finished"] == 0.0
        api.ok("DELETE", "v1/cluster", query=f"uuid={cluster}")
        api.ok("DELETE", "v1/dataset", query=f"uuid={dataset}")


def test_an_mnist_task_with_more_pixels_than_inputs(admin: Api, faithful_admin: Api, demo):
    """A real Hanami 0.4.1 ended its process on a task of 784-pixel digits on a cluster of 1 or 100
    input neurons (1,000 worked): faithful drops the connection, lenient queues the task."""
    for api in (admin, faithful_admin):
        cluster = api.create_cluster(unique("few inputs "), EXAMPLE_CSV_TEMPLATE)  # 1 input neuron
        dataset = api.upload_mnist(unique("digits "), demo.small_images, demo.small_labels)
        body = {"name": "wide", "type": "request", "cluster_uuid": cluster, "dataset_uuid": dataset}
        if api is faithful_admin:
            with pytest.raises(httpx.RemoteProtocolError):
                api.call("POST", "v1/task", body)
            assert api.ok("GET", "v1/task/all", query=f"cluster_uuid={cluster}")["body"] == []
        else:
            api.wait_task(cluster, api.ok("POST", "v1/task", body)["uuid"])
        api.ok("DELETE", "v1/cluster", query=f"uuid={cluster}")
        api.ok("DELETE", "v1/dataset", query=f"uuid={dataset}")
