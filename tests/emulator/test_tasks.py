"""Tasks, checkpoints and request results (§4.19-4.26, §4.35-4.41, §7)."""

from __future__ import annotations

import re
import uuid as uuidlib

import pytest
from tests.emulator.emu_helpers import Api, unique

from webconsole.protocol.template import EXAMPLE_MNIST_TEMPLATE

TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


@pytest.fixture(scope="module")
def small_set(admin: Api, demo) -> str:
    return admin.upload_mnist("small digits", demo.small_images, demo.small_labels)


def new_task(api: Api, cluster: str, dataset: str, kind: str = "request", name: str = "some task") -> str:
    got = api.ok("POST", "v1/task", {"name": name, "type": kind, "cluster_uuid": cluster, "dataset_uuid": dataset})
    assert got["name"] == name
    return got["uuid"]


def test_request_task_result_and_check(admin: Api, small_set: str):
    cluster = admin.create_cluster(unique("req "), EXAMPLE_MNIST_TEMPLATE)
    task = new_task(admin, cluster, small_set, "request", "digits request")
    done = admin.wait_task(cluster, task)
    assert sorted(done) == ["end_timestamp", "percentage_finished", "queue_timestamp", "start_timestamp", "state"]
    assert done["percentage_finished"] == 1.0
    assert all(TS.match(done[k]) for k in ("queue_timestamp", "start_timestamp", "end_timestamp"))
    result = admin.ok("GET", "v1/request_result", query=f"uuid={task}")
    assert (result["name"], result["owner_id"], result["uuid"]) == ("digits request", "asdf", task)
    assert len(result["data"]) == 200 and all(isinstance(v, int) and 0 <= v <= 9 for v in result["data"])
    listed = admin.ok("GET", "v1/request_result/all")
    assert listed["header"] == ["uuid", "project_id", "owner_id", "visibility", "name"]
    assert [task, "admin", "asdf", "private", "digits request"] in listed["body"]
    accuracy = admin.ok("POST", "v1/dataset/check", {"result_uuid": task, "dataset_uuid": small_set})["accuracy"]
    assert isinstance(accuracy, float) and 0.0 <= accuracy <= 100.0
    unknown = str(uuidlib.uuid4())
    resp = admin.call("POST", "v1/dataset/check", {"result_uuid": unknown, "dataset_uuid": small_set})
    assert (resp.status_code, resp.text) == (404, f"Result with uuid '{unknown}' not found")
    assert admin.ok("DELETE", "v1/request_result", query=f"uuid={task}") == {}
    resp = admin.call("GET", "v1/request_result", query=f"uuid={task}")
    assert (resp.status_code, resp.text) == (404, f"Request-result with uuid '{task}' not found")


def test_queue_abort_and_listing(admin: Api, small_set: str):
    cluster_uuid = admin.create_cluster(unique("queue "), EXAMPLE_MNIST_TEMPLATE)
    cluster = admin.server.backend.cluster(cluster_uuid)
    with cluster.net_lock:  # hold the network: the first task cannot complete a cycle
        first = new_task(admin, cluster_uuid, small_set, "request", "first task")
        second = new_task(admin, cluster_uuid, small_set, "train", "second task")
        third = new_task(admin, cluster_uuid, small_set, "request", "third task")
        assert admin.task(cluster_uuid, first)["state"] == "active"
        queued = admin.task(cluster_uuid, second)
        assert (queued["state"], queued["start_timestamp"], queued["end_timestamp"]) == ("queued", "-", "-")
        # DIRECT is refused while a task is active
        assert admin.call("PUT", "v1/cluster/set_mode", {"uuid": cluster_uuid, "new_state": "DIRECT"}).status_code == 409
        table = admin.ok("GET", "v1/task/all", query=f"cluster_uuid={cluster_uuid}")
        assert table["header"] == ["uuid", "state", "percentage", "queued", "start", "end"]
        assert [row[0] for row in table["body"]] == sorted([first, second, third])  # Q-T5
        assert all(isinstance(c, str) for row in table["body"] for c in row)
        assert {row[2] for row in table["body"]} == {"0.000000"}
        # deleting a queued task removes it; deleting the active one only marks it (Q-T4)
        assert admin.ok("DELETE", "v1/task", query=f"uuid={third}&cluster_uuid={cluster_uuid}") == {}
        assert admin.call("GET", "v1/task", query=f"uuid={third}&cluster_uuid={cluster_uuid}").status_code == 500
        assert admin.ok("DELETE", "v1/task", query=f"uuid={first}&cluster_uuid={cluster_uuid}") == {}
        aborted = admin.task(cluster_uuid, first)
        assert aborted["state"] == "aborted" and aborted["end_timestamp"] == "-"
    done = admin.wait_task(cluster_uuid, first)
    assert done["percentage_finished"] == 1.0
    # the aborted request task still wrote its result
    assert len(admin.ok("GET", "v1/request_result", query=f"uuid={first}")["data"]) == 200
    admin.wait_task(cluster_uuid, second)
    rows = admin.ok("GET", "v1/task/all", query=f"cluster_uuid={cluster_uuid}")["body"]
    assert [(r[0], r[1], r[2]) for r in rows] == sorted([(first, "finished", "1.000000"),
                                                         (second, "finished", "1.000000")])
    # unknown task: GET -> 500 (Q-T1), DELETE -> the buggy 404 (Q-T2)
    unknown = str(uuidlib.uuid4())
    resp = admin.call("GET", "v1/task", query=f"uuid={unknown}&cluster_uuid={cluster_uuid}")
    assert (resp.status_code, resp.text) == (500, "")
    resp = admin.call("DELETE", "v1/task", query=f"uuid={unknown}&cluster_uuid={cluster_uuid}")
    assert (resp.status_code, resp.text) == (
        404, f"Task with UUID '{cluster_uuid}'not found in Cluster with UUID '{cluster_uuid}")
    # deleting a finished task removes it from the history
    admin.ok("DELETE", "v1/task", query=f"uuid={first}&cluster_uuid={cluster_uuid}")
    assert admin.call("GET", "v1/task", query=f"uuid={first}&cluster_uuid={cluster_uuid}").status_code == 500


def test_direct_mode_holds_tasks_back(admin: Api, small_set: str):
    cluster = admin.create_cluster(unique("hold "), EXAMPLE_MNIST_TEMPLATE)
    admin.ok("PUT", "v1/cluster/set_mode", {"uuid": cluster, "new_state": "DIRECT"})
    task = new_task(admin, cluster, small_set)
    assert admin.task(cluster, task)["state"] == "queued"
    admin.ok("PUT", "v1/cluster/set_mode", {"uuid": cluster, "new_state": "TASK"})
    assert admin.wait_task(cluster, task)["state"] == "finished"


def test_checkpoint_save_and_restore(admin: Api, small_set: str):
    cluster = admin.create_cluster(unique("ckpt "), EXAMPLE_MNIST_TEMPLATE)
    save = admin.ok("POST", "v1/cluster/save", {"name": "my checkpoint", "cluster_uuid": cluster})
    assert save["name"] == "my checkpoint"
    done = admin.wait_task(cluster, save["uuid"])
    assert done["percentage_finished"] == 0.0  # save tasks stay at 0.0
    got = admin.ok("GET", "v1/checkpoint", query=f"uuid={save['uuid']}")
    assert sorted(got) == ["location", "name", "uuid"]
    assert got["location"].endswith(f"{save['uuid']}_checkpoint_asdf")
    assert [save["uuid"], "admin", "asdf", "private", "my checkpoint"] in admin.ok("GET", "v1/checkpoint/all")["body"]
    # a restore from an unknown checkpoint is accepted and fails silently (Q-K1)
    unknown = str(uuidlib.uuid4())
    load = admin.ok("POST", "v1/cluster/load", {"cluster_uuid": cluster, "checkpoint_uuid": unknown})
    assert admin.wait_task(cluster, load["uuid"])["percentage_finished"] == 0.0
    load = admin.ok("POST", "v1/cluster/load", {"cluster_uuid": cluster, "checkpoint_uuid": save["uuid"]})
    admin.wait_task(cluster, load["uuid"])
    assert admin.ok("DELETE", "v1/checkpoint", query=f"uuid={save['uuid']}") == {}
    resp = admin.call("DELETE", "v1/checkpoint", query=f"uuid={save['uuid']}")
    assert (resp.status_code, resp.text) == (404, f"Chekckpoint with uuid '{save['uuid']}' not found")
    resp = admin.call("GET", "v1/checkpoint", query=f"uuid={save['uuid']}")
    assert (resp.status_code, resp.text) == (404, f"Checkpoint with uuid '{save['uuid']}' not found")


def test_unknown_dataset_lenient_404(admin: Api):
    cluster = admin.create_cluster(unique("noset "), EXAMPLE_MNIST_TEMPLATE)
    unknown = str(uuidlib.uuid4())
    resp = admin.call("POST", "v1/task", {"name": "name", "type": "train", "cluster_uuid": cluster,
                                          "dataset_uuid": unknown})
    assert (resp.status_code, resp.text) == (404, f"Data-set with uuid '{unknown}' not found")  # Q-C2
    resp = admin.call("GET", "v1/dataset", query=f"uuid={unknown}")
    assert (resp.status_code, resp.text) == (404, f"Data-set with uuid '{unknown}' not found")
    resp = admin.call("GET", "v1/task/all", query=f"cluster_uuid={unknown}")
    assert (resp.status_code, resp.text) == (404, f"Cluster with uuid '{unknown}' not found")


def test_results_of_other_users_are_invisible(admin: Api, member: Api, small_set: str):
    cluster = admin.create_cluster(unique("vis "), EXAMPLE_MNIST_TEMPLATE)
    task = new_task(admin, cluster, small_set)
    admin.wait_task(cluster, task)
    assert member.call("GET", "v1/request_result", query=f"uuid={task}").status_code == 404
    assert task not in [r[0] for r in member.ok("GET", "v1/request_result/all")["body"]]
    assert small_set not in [r[0] for r in member.ok("GET", "v1/dataset/all")["body"]]
    # tasks are visible to whoever sees the cluster; the member sees no cluster of the admin
    resp = member.call("GET", "v1/task", query=f"uuid={task}&cluster_uuid={cluster}")
    assert (resp.status_code, resp.text) == (404, f"Cluster with uuid '{cluster}' not found")


def test_csv_train_and_request(admin: Api, demo):
    from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE

    dataset = admin.upload_csv("sine csv", demo.csv.read_bytes())
    lines = admin.ok("GET", "v1/dataset", query=f"uuid={dataset}")["lines"]
    cluster = admin.create_cluster(unique("csv "), EXAMPLE_CSV_TEMPLATE)
    train = new_task(admin, cluster, dataset, "train", "csv training")
    admin.wait_task(cluster, train)
    request = new_task(admin, cluster, dataset, "request", "csv request")
    admin.wait_task(cluster, request)
    result = admin.ok("GET", "v1/request_result", query=f"uuid={request}")
    assert result["name"] == "test_input"  # named after the input brick (Q-T3)
    assert len(result["data"]) == lines - 1  # cycles = L - I
    assert all(isinstance(v, float) for v in result["data"])


def test_csv_task_needs_brick_columns(admin: Api):
    from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE

    dataset = admin.upload_csv("wrong columns", b"a,b\n1,2\n3,4\n")
    cluster = admin.create_cluster(unique("csvcols "), EXAMPLE_CSV_TEMPLATE)
    resp = admin.call("POST", "v1/task", {"name": "name", "type": "request", "cluster_uuid": cluster,
                                          "dataset_uuid": dataset})
    assert (resp.status_code, resp.text) == (500, "")


def test_csv_sliding_window():
    import numpy as np

    from webconsole.emulator.endpoints.tasks import csv_windows

    column = np.arange(10, dtype=np.float32)
    # I = 3 inputs, O = 2 outputs, M = 3, L = 10 -> 7 cycles; cycle c reads rows [c+M-I, c+M)
    inputs = csv_windows(column, 10, 3, 3, 7)
    outputs = csv_windows(column, 10, 2, 3, 7)
    assert inputs.tolist()[0] == [0, 1, 2] and inputs.tolist()[6] == [6, 7, 8]
    assert outputs.tolist()[0] == [1, 2] and outputs.tolist()[6] == [7, 8]
