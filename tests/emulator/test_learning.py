"""The project API workflow of §8.4 with real learning: train -> save -> recreate -> restore -> check."""

from __future__ import annotations

import time

from tests.emulator.emu_helpers import Api, unique

from webconsole.protocol.template import EXAMPLE_MNIST_TEMPLATE

MEASURED: dict[str, float] = {}


def test_train_checkpoint_restore_request_check(admin: Api, demo):
    train_set = admin.upload_mnist("train digits", demo.train_images, demo.train_labels)
    test_set = admin.upload_mnist("held out digits", demo.test_images, demo.test_labels)
    assert admin.ok("GET", "v1/dataset", query=f"uuid={train_set}")["lines"] == 4000
    assert admin.ok("GET", "v1/dataset", query=f"uuid={test_set}")["lines"] == 1000
    name = unique("mnist ")
    cluster = admin.create_cluster(name, EXAMPLE_MNIST_TEMPLATE)

    task = admin.ok("POST", "v1/task", {"name": "train digits", "type": "train", "cluster_uuid": cluster,
                                        "dataset_uuid": train_set})["uuid"]
    started = time.monotonic()
    seen: list[float] = []
    while (state := admin.task(cluster, task))["state"] != "finished":
        seen.append(state["percentage_finished"])
        # the API stays responsive while the cluster trains
        assert admin.call("GET", "v1/cluster/all").status_code == 200
        assert time.monotonic() - started < 60, "train task too slow"
        time.sleep(0.05)
    train_seconds = time.monotonic() - started
    assert any(0.0 < p < 1.0 for p in seen), "percentage_finished should rise while the task runs"
    assert seen == sorted(seen)
    admin.ok("DELETE", "v1/task", query=f"uuid={task}&cluster_uuid={cluster}")

    checkpoint = admin.ok("POST", "v1/cluster/save", {"name": "trained", "cluster_uuid": cluster})["uuid"]
    admin.wait_task(cluster, checkpoint)
    admin.ok("DELETE", "v1/cluster", query=f"uuid={cluster}")
    cluster = admin.create_cluster(name, EXAMPLE_MNIST_TEMPLATE)
    load = admin.ok("POST", "v1/cluster/load", {"cluster_uuid": cluster, "checkpoint_uuid": checkpoint})["uuid"]
    admin.wait_task(cluster, load)

    request = admin.ok("POST", "v1/task", {"name": "test digits", "type": "request", "cluster_uuid": cluster,
                                           "dataset_uuid": test_set})["uuid"]
    admin.wait_task(cluster, request)
    result = admin.ok("GET", "v1/request_result", query=f"uuid={request}")
    assert len(result["data"]) == 1000
    accuracy = admin.ok("POST", "v1/dataset/check", {"result_uuid": request, "dataset_uuid": test_set})["accuracy"]
    MEASURED.update(accuracy=accuracy, train_seconds=train_seconds)
    print(f"\nMNIST: accuracy after one train task over 4,000 digits = {accuracy:.2f} %, "
          f"train time = {train_seconds:.2f} s")
    assert train_seconds < 30
    assert accuracy >= 90

    # an untrained cluster of the same shape is much worse: the restore really moved the weights
    fresh = admin.create_cluster(unique("fresh "), EXAMPLE_MNIST_TEMPLATE)
    request = admin.ok("POST", "v1/task", {"name": "fresh digits", "type": "request", "cluster_uuid": fresh,
                                           "dataset_uuid": test_set})["uuid"]
    admin.wait_task(fresh, request)
    untrained = admin.ok("POST", "v1/dataset/check", {"result_uuid": request, "dataset_uuid": test_set})["accuracy"]
    assert untrained < 50
