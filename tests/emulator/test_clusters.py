"""Clusters, modes, hosts and direct IO (§4.15-4.22, §4.42, §5.5)."""

from __future__ import annotations

import base64
import json
import uuid as uuidlib

import numpy as np
import pytest
from tests.emulator.emu_helpers import Api, direct_request, direct_train, unique
from websockets.sync.client import connect

from webconsole.protocol.messages import ClusterIO_Message
from webconsole.protocol.template import EXAMPLE_MNIST_TEMPLATE, TemplateError, parse_template, template_error_body

SMALL = """version: 1
bricks:
    1,1,1
        input: test_input
        number_of_neurons: 8
    2,1,1
        number_of_neurons: 16
    3,1,1
        output: test_output
        number_of_neurons: 4
"""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_cluster_crud(admin: Api):
    name = unique("cluster ")
    created = admin.ok("POST", "v1/cluster", {"name": name, "template": b64(EXAMPLE_MNIST_TEMPLATE)})
    assert sorted(created) == ["name", "owner_id", "project_id", "uuid", "visibility"]
    assert (created["name"], created["owner_id"], created["project_id"], created["visibility"]) == (
        name, "asdf", "admin", "private")
    uuid = created["uuid"]
    assert uuid == str(uuidlib.UUID(uuid)) and uuidlib.UUID(uuid).version == 4
    assert admin.ok("GET", "v1/cluster", query=f"uuid={uuid}") == created
    listed = admin.ok("GET", "v1/cluster/all")
    assert listed["header"] == ["uuid", "project_id", "owner_id", "visibility", "name"]
    assert [uuid, "admin", "asdf", "private", name] in listed["body"]
    resp = admin.call("POST", "v1/cluster", {"name": name, "template": b64(SMALL)})
    assert (resp.status_code, resp.text) == (409, f"Cluster with name '{name}' already exist.")
    # upper-cased uuids pass validation but never match (Q-G7)
    resp = admin.call("GET", "v1/cluster", query=f"uuid={uuid.upper()}")
    assert (resp.status_code, resp.text) == (404, f"Cluster with uuid '{uuid.upper()}' not found")
    assert admin.ok("DELETE", "v1/cluster", query=f"uuid={uuid}") == {}
    resp = admin.call("DELETE", "v1/cluster", query=f"uuid={uuid}")
    assert (resp.status_code, resp.text) == (404, f"Cluster with uuid '{uuid}' not found")


BROKEN = [
    "version: 2\nbricks:\n    1,1,1\n        input: x\n",
    "version: 1\r\nbricks:\n    1,1,1\n        input: x\n",
    "version: 1\nsettings:\n    foo: 1\nbricks:\n    1,1,1\n        input: x\n",
    "version: 1\nsettings:\n    refractory_time: 0\nbricks:\n    1,1,1\n        input: x\n",
    "version: 1\nbricks:\n    1,1,1\n        colour: red\n",
    "version: 1\nsettings:\nbricks:\n    1,1,1\n        input: x\n",
    "version: 1\nbricks:\n    1,1,1\n        input: x",
    "version: 1\nbricks:\n    1,1,1\n        input: \"x\n",
]


@pytest.mark.parametrize("text", BROKEN)
def test_broken_templates_give_parser_400(admin: Api, text: str):
    with pytest.raises(TemplateError) as info:
        parse_template(text)
    resp = admin.call("POST", "v1/cluster", {"name": unique("broken "), "template": b64(text)})
    assert resp.status_code == 400
    assert resp.text == template_error_body(info.value)
    assert resp.text.startswith("Uploaded template is not a valid cluster-template: \n+")
    assert "ERROR while parsing cluster-definition string" in resp.text
    assert "parser-message: " in resp.text and "line-number: " in resp.text


def test_base64_errors(admin: Api):
    for template in ("abc", "abcde"):
        resp = admin.call("POST", "v1/cluster", {"name": unique("b64 "), "template": template})
        assert (resp.status_code, resp.text) == (400, "Uploaded template is not a valid base64-String.")


def test_set_mode_state_machine(admin: Api):
    uuid = admin.create_cluster(unique("modes "), SMALL)
    body = {"uuid": uuid, "new_state": "TASK"}
    resp = admin.call("PUT", "v1/cluster/set_mode", body)
    assert (resp.status_code, resp.text) == (409, "Can not switch cluster to 'TASK'")
    got = admin.ok("PUT", "v1/cluster/set_mode", {"uuid": uuid, "new_state": "DIRECT",
                                                  "connection_uuid": str(uuidlib.uuid4())})
    assert got["new_state"] == "DIRECT" and got["uuid"] == uuid
    resp = admin.call("PUT", "v1/cluster/set_mode", {"uuid": uuid, "new_state": "DIRECT"})
    assert (resp.status_code, resp.text) == (409, "Can not switch cluster to 'DIRECT'")
    assert admin.ok("PUT", "v1/cluster/set_mode", body)["new_state"] == "TASK"
    unknown = str(uuidlib.uuid4())
    resp = admin.call("PUT", "v1/cluster/set_mode", {"uuid": unknown, "new_state": "TASK"})
    assert (resp.status_code, resp.text) == (404, f"Cluster with uuid '{unknown}' not found")


def test_hosts_and_switch_host(admin: Api):
    hosts = admin.ok("GET", "v1/host/all")
    assert hosts["header"] == ["uuid", "type"]
    assert [row[1] for row in hosts["body"]] == ["cpu", "cpu"]
    uuid = admin.create_cluster(unique("hosts "), SMALL)
    cluster = admin.server.backend.cluster(uuid)
    assert cluster.host_uuid == hosts["body"][0][0]  # new clusters start on the first cpu host
    got = admin.ok("PUT", "v1/cluster/switch_host", {"cluster_uuid": uuid, "host_uuid": hosts["body"][1][0]})
    assert got == admin.ok("GET", "v1/cluster", query=f"uuid={uuid}")
    assert cluster.host_uuid == hosts["body"][1][0]
    unknown = str(uuidlib.uuid4())
    resp = admin.call("PUT", "v1/cluster/switch_host", {"cluster_uuid": uuid, "host_uuid": unknown})
    assert (resp.status_code, resp.text) == (404, f"Host with uuid '{unknown}' not found")


def ws_attach(ws, api: Api, cluster_uuid: str) -> dict:
    ws.send(json.dumps({"token": api.token, "target": "cluster", "uuid": cluster_uuid}))
    return json.loads(ws.recv(timeout=10))


def test_direct_io_learns(admin: Api):
    uuid = admin.create_cluster(unique("direct "), SMALL)
    admin.ok("PUT", "v1/cluster/set_mode", {"uuid": uuid, "new_state": "DIRECT"})
    sample = [0.1, 0.9, 0.3, 0.0, 0.5, 0.7, 0.2, 1.0]
    with connect(admin.server.ws_url) as ws:
        assert ws_attach(ws, admin, uuid)["success"] is True
        before = direct_request(ws, "test_input", sample)
        assert (before.brickName, before.isLast, before.processType, before.numberOfValues) == (
            "test_output", False, 0, 4)
        for _ in range(100):
            direct_train(ws, "test_input", sample, "test_output", [0.0, 0.0, 1.0, 0.0])
        after = direct_request(ws, "test_input", sample)
        assert int(np.argmax(after.values)) == 2
        assert list(after.values) != list(before.values)
        # a request input with isLast=false gets the (TRAIN_TYPE) ack
        ws.send(ClusterIO_Message(brickName="test_input", isLast=False, processType=0, numberOfValues=8,
                                  values=sample).SerializeToString())
        ack = ClusterIO_Message.FromString(ws.recv(timeout=10))
        assert (ack.isLast, ack.processType, ack.numberOfValues, list(ack.values)) == (False, 1, 1, [0.0])
    admin.ok("PUT", "v1/cluster/set_mode", {"uuid": uuid, "new_state": "TASK"})


def test_direct_io_quirks_lenient(admin: Api, member: Api):
    uuid = admin.create_cluster(unique("wsq "), SMALL)
    with connect(admin.server.ws_url) as ws:
        unknown = str(uuidlib.uuid4())
        # Q-W2 lenient: the intended reply
        assert ws_attach(ws, admin, unknown) == {"error": f"Cluster with UUID '{unknown}' not found",
                                                 "success": False}
        # Q-W3: any valid token attaches to any cluster (member cannot see this one)
        assert ws_attach(ws, member, uuid)["success"] is True
        # Q-W1: unknown brick -> no reply at all; lenient keeps serving the next message
        ws.send(ClusterIO_Message(brickName="nope", isLast=True, numberOfValues=1, values=[1.0]).SerializeToString())
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.3)
        reply = direct_request(ws, "test_input", [0.0] * 8)
        assert reply.numberOfValues == 4
        # deleting the cluster detaches the websocket: the next frame is an init message again
        admin.ok("DELETE", "v1/cluster", query=f"uuid={uuid}")
        ws.send(ClusterIO_Message(brickName="test_input", isLast=True, numberOfValues=1,
                                  values=[1.0]).SerializeToString())
        assert json.loads(ws.recv(timeout=10)) == {"error": "Token invalid", "success": False}


def test_visibility_of_clusters(admin: Api, member: Api):
    mine = member.create_cluster(unique("member cluster "), SMALL)
    theirs = admin.create_cluster(unique("admin cluster "), SMALL)
    assert [r[0] for r in member.ok("GET", "v1/cluster/all")["body"]] == [mine]
    resp = member.call("GET", "v1/cluster", query=f"uuid={theirs}")
    assert (resp.status_code, resp.text) == (404, f"Cluster with uuid '{theirs}' not found")
    # the admin sees everything (§2.5)
    assert admin.ok("GET", "v1/cluster", query=f"uuid={mine}")["owner_id"] == member.user_id
    # uniqueness is per visibility scope (Q-K2): the admin conflicts with the member's name
    name = admin.ok("GET", "v1/cluster", query=f"uuid={mine}")["name"]
    assert admin.call("POST", "v1/cluster", {"name": name, "template": b64(SMALL)}).status_code == 409
    other = admin.ok("GET", "v1/cluster", query=f"uuid={theirs}")["name"]
    assert member.call("POST", "v1/cluster", {"name": other, "template": b64(SMALL)}).status_code == 200


def test_project_admin_sees_the_whole_project(admin: Api):
    project = unique("shared")
    users = {}
    for role, is_pa in (("plain", False), ("lead", True)):
        uid = unique(role)
        admin.ok("POST", "v1/user", {"id": uid, "name": "Someone", "password": "password1", "is_admin": False})
        admin.ok("POST", "v1/user/project", {"id": uid, "project_id": project, "role": "member",
                                             "is_project_admin": is_pa})
        users[role] = Api(admin.server).login(uid, "password1")
    plain_cluster = users["plain"].create_cluster(unique("plain "), SMALL)
    lead_cluster = users["lead"].create_cluster(unique("lead "), SMALL)
    assert {r[0] for r in users["lead"].ok("GET", "v1/cluster/all")["body"]} == {plain_cluster, lead_cluster}
    assert {r[0] for r in users["plain"].ok("GET", "v1/cluster/all")["body"]} == {plain_cluster}
    assert users["lead"].ok("DELETE", "v1/cluster", query=f"uuid={plain_cluster}") == {}
    assert users["plain"].call("GET", "v1/cluster", query=f"uuid={lead_cluster}").status_code == 404
