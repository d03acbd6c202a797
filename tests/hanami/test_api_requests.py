"""Every operation of ``HanamiAPI`` on the wire: the method, the target with its query, and the JSON
body Hanami receives (contract §4), against the scripted server. One table, so an endpoint or a
field that changes by accident fails here."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.hanami.hanami_scripted import Reply, ScriptedHTTP
from webconsole.hanami import BackendError, BadRequest, HanamiClient

U = "c1a55e00-0000-4000-8000-000000000001"
V = "d5e7a1f0-0000-4000-8000-000000000001"
TABLE = {"header": ["uuid", "name"], "body": []}
DATASETS = {"header": ["uuid", "project_id", "owner_id", "visibility", "name", "type"],
            "body": [[V, "proj", "alice@example", "private", "set", "mnist"]]}
SERIES = {"power": {"days": []}, "current_speed": {"days": []}, "temperature": {"days": []},
          "info": {"hostname": "h"}, "thread_map": {"x": [1]}}

# (method name, arguments, HTTP method, target, JSON body or None)
CALLS: list[tuple[str, tuple, str, str, Any]] = [
    ("auth", (), "GET", "/control/v1/auth", None),
    ("list_projects", (), "GET", "/control/v1/project/all", None),
    ("get_project", ("proj_a",), "GET", "/control/v1/project?id=proj_a", None),
    ("create_project", ("proj_a", "Project A"), "POST", "/control/v1/project", {"id": "proj_a", "name": "Project A"}),
    ("delete_project", ("proj_a",), "DELETE", "/control/v1/project?id=proj_a", None),
    ("list_users", (), "GET", "/control/v1/user/all", None),
    ("get_user", ("bob@x",), "GET", "/control/v1/user?id=bob@x", None),
    ("create_user", ("bob_1", "Bob", "password-1", 1), "POST", "/control/v1/user",
     {"id": "bob_1", "name": "Bob", "password": "password-1", "is_admin": True}),
    ("delete_user", ("bob_1",), "DELETE", "/control/v1/user?id=bob_1", None),
    ("assign_project", ("bob_1", "proj_a", "member", 0), "POST", "/control/v1/user/project",
     {"id": "bob_1", "project_id": "proj_a", "role": "member", "is_project_admin": False}),
    ("remove_project", ("bob_1", "proj_a"), "DELETE", "/control/v1/user/project?id=bob_1&project_id=proj_a", None),
    ("list_clusters", (), "GET", "/control/v1/cluster/all", None),
    ("get_cluster", (U,), "GET", f"/control/v1/cluster?uuid={U}", None),
    ("create_cluster", ("my cluster", "a\r\nb"), "POST", "/control/v1/cluster", {"name": "my cluster", "template": "YQpi"}),
    ("delete_cluster", (U,), "DELETE", f"/control/v1/cluster?uuid={U}", None),
    ("save_checkpoint", (U, "snap"), "POST", "/control/v1/cluster/save", {"name": "snap", "cluster_uuid": U}),
    ("restore_checkpoint", (U, V), "POST", "/control/v1/cluster/load", {"cluster_uuid": U, "checkpoint_uuid": V}),
    ("switch_host", (U, V), "PUT", "/control/v1/cluster/switch_host", {"cluster_uuid": U, "host_uuid": V}),
    ("set_mode", (U, "DIRECT"), "PUT", "/control/v1/cluster/set_mode", {"uuid": U, "new_state": "DIRECT"}),
    ("create_task", ("run", "train", U, V), "POST", "/control/v1/task",
     {"name": "run", "type": "train", "cluster_uuid": U, "dataset_uuid": V}),
    ("get_task", (V, U), "GET", f"/control/v1/task?uuid={V}&cluster_uuid={U}", None),
    ("list_tasks", (U,), "GET", f"/control/v1/task/all?cluster_uuid={U}", None),
    ("delete_task", (V, U), "DELETE", f"/control/v1/task?uuid={V}&cluster_uuid={U}", None),
    ("list_datasets", (), "GET", "/control/v1/dataset/all", None),
    ("get_dataset", (V,), "GET", f"/control/v1/dataset?uuid={V}", None),
    ("delete_dataset", (V,), "DELETE", f"/control/v1/dataset?uuid={V}", None),
    ("dataset_progress", (V,), "GET", f"/control/v1/dataset/progress?uuid={V}", None),
    ("check_dataset", (U, V), "POST", "/control/v1/dataset/check", {"result_uuid": U, "dataset_uuid": V}),
    ("list_checkpoints", (), "GET", "/control/v1/checkpoint/all", None),
    ("get_checkpoint", (V,), "GET", f"/control/v1/checkpoint?uuid={V}", None),
    ("delete_checkpoint", (V,), "DELETE", f"/control/v1/checkpoint?uuid={V}", None),
    ("list_results", (), "GET", "/control/v1/request_result/all", None),
    ("get_result", (V,), "GET", f"/control/v1/request_result?uuid={V}", None),
    ("delete_result", (V,), "DELETE", f"/control/v1/request_result?uuid={V}", None),
    ("error_log", (2, "bob_1"), "GET", "/control/v1/error_log?page=2&user_id=bob_1", None),
    ("error_log", (), "GET", "/control/v1/error_log?page=0", None),
    ("power", (), "GET", "/control/v1/power_consumption", None),
    ("speed", (), "GET", "/control/v1/speed", None),
    ("temperature", (), "GET", "/control/v1/temperature_production", None),
    ("system_info", (), "GET", "/control/v1/system_info", None),
    ("threading", (), "GET", "/control/v1/threading", None),
]


def answer_everything(server: ScriptedHTTP) -> None:
    for method, path in {(call[2], call[3].split("?")[0]) for call in CALLS}:
        reply: dict = dict(TABLE) if path.endswith("/all") or path.endswith("error_log") else {
            "uuid": U, "id": "x", "name": "x", "accuracy": 0.5, **SERIES}
        server.on(method, path, reply)
    server.on("GET", "/control/v1/dataset/all", DATASETS)
    server.on("GET", "/control/v1/auth", {"id": "alice@example", "name": "Alice", "is_admin": False,
                                           "is_project_admin": False, "project_id": "proj", "role": "member"})


@pytest.mark.parametrize("name, args, method, target, body", CALLS, ids=[f"{c[0]}{len(c[1])}" for c in CALLS])
async def test_each_operation_on_the_wire(http_server: ScriptedHTTP, client: HanamiClient, token: str,
                                          name: str, args: tuple, method: str, target: str, body: Any) -> None:
    answer_everything(http_server)
    await getattr(client.api(token), name)(*args)
    sent = [seen for seen in http_server.seen if seen.target != "/control/v1/dataset/all" or name == "list_datasets"]
    assert [(seen.method, seen.target) for seen in sent] == [(method, target)]
    assert (json.loads(sent[0].body) if sent[0].body else None) == body
    assert sent[0].headers["x-auth-token"] == token


@pytest.mark.parametrize("call, message", [
    (lambda api: api.set_mode(U, "task"), "mode must be 'TASK' or 'DIRECT'"),
    (lambda api: api.create_task("run", "predict", U, V), "type must be 'train' or 'request'"),
])
async def test_values_hanami_does_not_know_are_programming_errors(http_server: ScriptedHTTP, client: HanamiClient,
                                                                  token: str, call: Any, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        await call(client.api(token))
    assert str(raised.value) == message and http_server.seen == []


@pytest.mark.parametrize("call, field, value, endpoint", [
    (lambda api: api.create_project("True", "P"), "id", "True", "POST v1/project"),
    (lambda api: api.create_project("proj_a", "false"), "name", "false", "POST v1/project"),
    (lambda api: api.create_user("FALSE", "B", "password-1", False), "id", "FALSE", "POST v1/user"),
    (lambda api: api.create_user("bob_1", "TRUE", "password-1", False), "name", "TRUE", "POST v1/user"),
    (lambda api: api.assign_project("bob_1", "True", "member", False), "project_id", "True", "POST v1/user/project"),
    (lambda api: api.assign_project("bob_1", "proj_a", "false", False), "role", "false", "POST v1/user/project"),
    (lambda api: api.create_cluster("True", "x"), "name", "True", "POST v1/cluster"),
    (lambda api: api.save_checkpoint(U, "False"), "name", "False", "POST v1/cluster/save"),
    (lambda api: api.create_task("true", "train", U, V), "name", "true", "POST v1/task"),
    (lambda api: api.upload_mnist("True", "i", "l"), "name", "True", "POST v1/mnist/dataset"),
    (lambda api: api.upload_csv("false", "c"), "name", "false", "POST v1/csv/dataset"),
])
async def test_boolean_words_never_leave(http_server: ScriptedHTTP, client: HanamiClient, token: str,
                                         call: Any, field: str, value: str, endpoint: str) -> None:
    with pytest.raises(BadRequest) as raised:
        await call(client.api(token))
    assert raised.value.message == f"Given item '{field}' can not be '{value}': Hanami would store it as a boolean."
    assert (raised.value.status, raised.value.endpoint) == (400, endpoint)
    assert http_server.seen == []


@pytest.mark.parametrize("page", [-1, 1_000_000_001, True, 1.0])
async def test_log_pages_out_of_range(http_server: ScriptedHTTP, client: HanamiClient, token: str, page: Any) -> None:
    for call, endpoint in ((client.api(token).error_log, "GET v1/error_log"),
                           (client.api(token).audit_log, "GET v1/audit_log")):
        with pytest.raises(BadRequest) as raised:
            await call(page)
        assert (raised.value.message, raised.value.endpoint) == (
            "Given item 'page' must be a whole number from 0 to 1000000000", endpoint)
    assert http_server.seen == []


async def test_the_largest_page_is_sent(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    http_server.on("GET", "/control/v1/error_log", TABLE)
    await client.api(token).error_log(1_000_000_000)
    assert http_server.seen[0].target == "/control/v1/error_log?page=1000000000"


@pytest.mark.parametrize("template", ["", " \n\r\n "])
async def test_an_empty_template_is_never_sent(http_server: ScriptedHTTP, client: HanamiClient, token: str,
                                               template: str) -> None:
    with pytest.raises(BadRequest) as raised:
        await client.api(token).create_cluster("my cluster", template)
    assert (raised.value.message, raised.value.endpoint) == ("The cluster template is empty.", "POST v1/cluster")
    assert http_server.seen == []


@pytest.mark.parametrize("answer, accuracy", [({"accuracy": 0.75}, 0.75), ({"accuracy": 1}, 1.0), ({}, None),
                                              ({"accuracy": True}, None), ({"accuracy": "0.5"}, None)])
async def test_accuracy_only_when_it_is_a_number(http_server: ScriptedHTTP, client: HanamiClient, token: str,
                                                 answer: dict, accuracy: float | None) -> None:
    http_server.on("GET", "/control/v1/dataset/all", DATASETS)
    http_server.on("POST", "/control/v1/dataset/check", answer)
    assert await client.api(token).check_dataset(U, V) == accuracy


@pytest.mark.parametrize("name, endpoint, key", [
    ("power", "v1/power_consumption", "power"), ("speed", "v1/speed", "current_speed"),
    ("temperature", "v1/temperature_production", "temperature"), ("system_info", "v1/system_info", "info"),
    ("threading", "v1/threading", "thread_map"),
])
async def test_a_series_missing_from_the_answer(http_server: ScriptedHTTP, client: HanamiClient, token: str,
                                                name: str, endpoint: str, key: str) -> None:
    http_server.on("GET", f"/control/{endpoint}", {"other": {}})
    with pytest.raises(BackendError) as raised:
        await getattr(client.api(token), name)()
    assert (raised.value.message, raised.value.status, raised.value.endpoint) == (
        f"'{key}' is missing in the answer", 200, f"GET {endpoint}")


async def test_an_answer_that_is_not_an_object(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    http_server.on("GET", "/control/v1/cluster", Reply(200, "[1, 2]"))
    with pytest.raises(BackendError) as raised:
        await client.api(token).get_cluster(U)
    assert (raised.value.message, raised.value.status, raised.value.endpoint) == (
        "the Hanami backend answered with something that is not an object", 200, "GET v1/cluster")
