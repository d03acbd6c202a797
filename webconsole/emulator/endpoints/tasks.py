"""Tasks (§4.23-4.26)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core import ApiError, Context, Crash, route, table
from ..datafiles import read_datafile
from ..runtime import Task, new_uuid
from .clusters import require_network, runtime_cluster, visible_cluster

TASK_HEADER = ["uuid", "state", "percentage", "queued", "start", "end"]


def dataset_not_found(uuid: str, reason: str) -> Crash:
    return Crash(reason, 404, f"Data-set with uuid '{uuid}' not found")


def csv_windows(column: np.ndarray, lines: int, size: int, width: int, cycles: int) -> np.ndarray:
    """Rows [c+M-size, c+M) of a column for every cycle c (the sliding window of §4.23)."""
    padded = np.zeros(cycles + width + 1, dtype=np.float32)
    padded[:lines] = column[:lines]
    starts = np.arange(cycles)[:, None] + (width - size)
    return padded[starts + np.arange(size)[None, :]]


def build_task(ctx: Context, network: Any, kind: str, dataset: dict[str, Any]) -> Task:
    try:
        header, data = read_datafile(Path(dataset["location"]))
    except (OSError, ValueError, KeyError):
        raise ApiError(500, f"dataset file of '{dataset['uuid']}' not readable") from None
    name = ctx.values["name"]
    if dataset["type"] == "mnist":
        n_in = int(header["inputs"])
        if n_in > network.input_size and ctx.backend.config.faithful:
            # Hanami copies every image into the input brick: more pixels than neurons end a real
            # 0.4.1 at once (784 pixels on 1 or 100 neurons; 1,000 neurons work).
            raise Crash(f"POST v1/task of {n_in}-pixel images on {network.input_size} input neurons")
        inputs = data[:, :n_in]
        expected = data[:, n_in:n_in + int(header["outputs"])]
        return Task(new_uuid(), name, kind, dict(ctx.user), inputs=inputs,
                    expected=expected if kind == "train" else None, result_kind="mnist")
    if dataset["type"] == "csv":
        columns = list(header["columns"])
        if network.input_name not in columns or (kind == "train" and network.output_name not in columns):
            raise ApiError(500, "needed column missing in the CSV dataset")
        lines, n_in, n_out = int(header["lines"]), network.input_size, network.output_size
        if lines < n_in and ctx.backend.config.faithful:
            # cycles = lines - inputs is unsigned in Hanami: it wraps, and the server ends (seen on a
            # real 0.4.1 with 400 rows on the 784 inputs of the MNIST template). Lenient: no cycle.
            raise Crash(f"POST v1/task of a CSV of {lines} rows on {n_in} input neurons")
        width = max(n_in, n_out)
        cycles = max(0, lines - n_in)
        inputs = csv_windows(data[:, columns.index(network.input_name)], lines, n_in, width, cycles)
        expected = None
        if kind == "train":
            expected = csv_windows(data[:, columns.index(network.output_name)], lines, n_out, width,
                                   cycles)
        internal = network.input_name if kind == "request" else network.output_name  # Q-T3
        return Task(new_uuid(), internal, kind, dict(ctx.user), inputs=inputs, expected=expected,
                    result_kind="csv")
    raise ApiError(400, f"Invalid dataset-type '{dataset['type']}' given for to create new task")


@route("POST", "v1/task")
def create_task(ctx: Context) -> dict[str, Any]:
    cluster_uuid, dataset_uuid = ctx.values["cluster_uuid"], ctx.values["dataset_uuid"]
    visible_cluster(ctx, cluster_uuid)
    cluster = runtime_cluster(ctx, cluster_uuid, 404)
    dataset = ctx.store.get_visible("datasets", dataset_uuid, ctx.user)
    if dataset is None:
        raise dataset_not_found(dataset_uuid, "POST v1/task with unknown dataset (Q-C2)")
    require_network(cluster)
    task = build_task(ctx, cluster.network, ctx.values["type"], dataset)
    cluster.add_task(task)
    return {"name": ctx.values["name"], "uuid": task.uuid}


@route("GET", "v1/task")
def get_task(ctx: Context) -> dict[str, Any]:
    cluster_uuid = ctx.values["cluster_uuid"]
    visible_cluster(ctx, cluster_uuid)
    cluster = runtime_cluster(ctx, cluster_uuid, 404)
    with cluster.lock:
        task = cluster.tasks.get(ctx.values["uuid"])
        if task is None:
            raise ApiError(500, f"task '{ctx.values['uuid']}' not found")  # Q-T1
        return {"end_timestamp": task.end, "percentage_finished": float(task.percentage),
                "queue_timestamp": task.queued, "start_timestamp": task.start, "state": task.state}


@route("GET", "v1/task/all")
def list_tasks(ctx: Context) -> dict[str, Any]:
    cluster_uuid = ctx.values["cluster_uuid"]
    visible_cluster(ctx, cluster_uuid)
    cluster = runtime_cluster(ctx, cluster_uuid, 404)
    rows = [{"uuid": t.uuid, "state": t.state, "percentage": f"{t.percentage:.6f}",
             "queued": t.queued, "start": t.start, "end": t.end} for t in cluster.sorted_tasks()]
    return table(TASK_HEADER, rows)


@route("DELETE", "v1/task")
def delete_task(ctx: Context) -> dict[str, Any]:
    cluster_uuid = ctx.values["cluster_uuid"]
    visible_cluster(ctx, cluster_uuid)
    cluster = runtime_cluster(ctx, cluster_uuid, 404)
    queued = cluster.tasks.get(ctx.values["uuid"])
    if queued is not None and queued.kind == "save" and queued.state == "queued":
        # Seen on a real Hanami 0.4.1: removing a queued checkpoint save from the queue stalls it and
        # then takes the server down (segfault); no intended answer is known.
        raise Crash("DELETE of a queued checkpoint-save task", 409, "A queued checkpoint save can not be removed")
    if not cluster.delete_task(ctx.values["uuid"]):
        raise ApiError(404, f"Task with UUID '{cluster_uuid}'not found in Cluster with UUID "
                            f"'{cluster_uuid}")  # Q-T2, verbatim
    return {}
