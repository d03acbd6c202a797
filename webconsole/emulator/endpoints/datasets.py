"""Datasets and uploads (§4.27-4.35)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from webconsole.protocol.idx import hanami_mnist_capacity

from ..core import ApiError, Context, Crash, route, table
from ..datafiles import idx_image_dims, mnist_from_idx, read_datafile, read_header, write_datafile
from ..runtime import new_uuid
from .tasks import dataset_not_found

DATASET_HEADER = ["uuid", "project_id", "owner_id", "visibility", "name", "type"]


def _visible(ctx: Context, uuid: str) -> dict[str, Any]:
    row = ctx.store.get_visible("datasets", uuid, ctx.user)
    if row is None:
        raise ApiError(404, f"Data-set with uuid '{uuid}' not found")
    return row


def _init(ctx: Context, kind: str, location: Callable[[str], Path],
          sizes: dict[str, int]) -> dict[str, Any]:
    uuid = new_uuid()
    row = {"uuid": uuid, "project_id": ctx.user["project_id"], "owner_id": ctx.user["id"],
           "visibility": "private", "name": ctx.values["name"], "type": kind,
           "location": str(location(uuid))}
    out = {k: v for k, v in row.items() if k != "location"}
    for key, size in sizes.items():
        temp_uuid = new_uuid()
        try:
            temp = ctx.backend.tempfiles.create(temp_uuid, uuid, ctx.user, size)
        except OSError as err:
            raise ApiError(500, f"failed to allocate temp file: {err}") from None
        ctx.store.insert("tempfiles", {
            "uuid": temp_uuid, "project_id": ctx.user["project_id"], "owner_id": ctx.user["id"],
            "visibility": "private", "name": key, "dataset_uuid": uuid, "size": size,
            "location": str(temp.path)})
        out[key] = temp_uuid
    ctx.store.insert("datasets", row)
    return out


def _take_temp(ctx: Context, uuid: str, label: str) -> bytes:
    temp = ctx.backend.tempfiles.get(uuid)
    if temp is None:
        raise ApiError(404, f"{label} with uuid '{uuid}' not found.")
    return temp.path.read_bytes()


def _drop_temps(ctx: Context, *uuids: str) -> None:
    for uuid in uuids:
        ctx.backend.tempfiles.remove(uuid)
        ctx.store.delete("tempfiles", uuid)


@route("POST", "v1/mnist/dataset")
def init_mnist(ctx: Context) -> dict[str, Any]:
    folder, owner = ctx.backend.dataset_dir, ctx.user["id"]
    return _init(ctx, "mnist", lambda uuid: folder / f"{uuid}_mnist_{owner}",
                 {"uuid_input_file": ctx.values["input_data_size"],
                  "uuid_label_file": ctx.values["label_data_size"]})


@route("PUT", "v1/mnist/dataset")
def finalize_mnist(ctx: Context) -> dict[str, Any]:
    v = ctx.values
    row = _visible(ctx, v["uuid"])
    images = _take_temp(ctx, v["uuid_input_file"], "Input-data")
    labels = _take_temp(ctx, v["uuid_label_file"], "Label-data")
    count, rows, cols = idx_image_dims(images)
    capacity = hanami_mnist_capacity(rows, cols)
    if ctx.backend.config.faithful and capacity is not None and count > capacity:
        raise Crash(f"MNIST finalize of {count} images overflows Hanami's conversion buffer ({capacity} fit)")
    try:
        header, data = mnist_from_idx(images, labels)
        write_datafile(Path(row["location"]), header, data)
    except (OSError, ValueError) as err:
        raise ApiError(500, f"failed to convert MNIST data: {err}") from None
    _drop_temps(ctx, v["uuid_input_file"], v["uuid_label_file"])
    return {"uuid": v["uuid"]}


@route("POST", "v1/csv/dataset")
def init_csv(ctx: Context) -> dict[str, Any]:
    location = ctx.backend.dataset_dir / f"{ctx.values['name']}_csv_{ctx.user['id']}"  # Q-D3
    return _init(ctx, "csv", lambda uuid: location, {"uuid_input_file": ctx.values["input_data_size"]})


@route("PUT", "v1/csv/dataset")
def finalize_csv(ctx: Context) -> dict[str, Any]:
    v = ctx.values
    row = _visible(ctx, v["uuid"])
    raw = _take_temp(ctx, v["uuid_input_file"], "Input-data")
    from webconsole.protocol.csvdata import parse_csv_like_hanami
    try:
        columns, data = parse_csv_like_hanami(raw)
    except ValueError as err:
        raise ApiError(500, f"failed to convert CSV data: {err}") from None
    if not columns:
        raise ApiError(500, "CSV file without any usable line")
    data = np.asarray(data, dtype=np.float32).reshape(-1, len(columns))
    header = {"type": "csv", "columns": list(columns), "inputs": 0, "outputs": 0,
              "lines": int(data.shape[0]), "width": len(columns)}
    try:
        write_datafile(Path(row["location"]), header, data)
    except OSError as err:
        raise ApiError(500, f"failed to write CSV data: {err}") from None
    _drop_temps(ctx, v["uuid_input_file"])
    return {"uuid": v["uuid"]}


@route("GET", "v1/dataset")
def get_dataset(ctx: Context) -> dict[str, Any]:
    uuid = ctx.values["uuid"]
    row = ctx.store.get_visible("datasets", uuid, ctx.user)
    if row is None:
        raise dataset_not_found(uuid, "GET v1/dataset with unknown uuid (Q-C2)")
    try:
        header = read_header(Path(row["location"]))
    except (OSError, ValueError):
        raise ApiError(500, f"dataset '{uuid}' is not finalized") from None
    out = {k: row[k] for k in ("location", "name", "owner_id", "project_id", "type", "uuid",
                               "visibility")}
    out.update(inputs=int(header["inputs"]), outputs=int(header["outputs"]),
               lines=int(header["lines"]))
    return out


@route("GET", "v1/dataset/all")
def list_datasets(ctx: Context) -> dict[str, Any]:
    return table(DATASET_HEADER, ctx.store.visible("datasets", ctx.user))


@route("DELETE", "v1/dataset")
def delete_dataset(ctx: Context) -> dict[str, Any]:
    row = _visible(ctx, ctx.values["uuid"])
    ctx.store.delete("datasets", row["uuid"])
    try:
        os.unlink(row["location"])
    except FileNotFoundError:
        pass
    except OSError as err:
        raise ApiError(500, f"failed to delete dataset file: {err}") from None
    return {}


@route("GET", "v1/dataset/progress")
def dataset_progress(ctx: Context) -> dict[str, Any]:
    row = _visible(ctx, ctx.values["uuid"])
    temps = ctx.backend.tempfiles.of_dataset(row["uuid"])
    foreign = [t for t in temps if t.user_id != ctx.user["id"] or t.project_id != ctx.user["project_id"]]
    if foreign and ctx.backend.config.faithful:
        raise Crash("progress of someone else's upload (Q-C4)")
    return {"complete": all(t.complete for t in temps), "uuid": row["uuid"]}


@route("POST", "v1/dataset/check")
def check_dataset(ctx: Context) -> dict[str, Any]:
    result_uuid, dataset_uuid = ctx.values["result_uuid"], ctx.values["dataset_uuid"]
    result = ctx.store.get_visible("request_results", result_uuid, ctx.user)
    if result is None:
        raise ApiError(404, f"Result with uuid '{result_uuid}' not found")
    dataset = ctx.store.get_visible("datasets", dataset_uuid, ctx.user)
    if dataset is None:
        raise dataset_not_found(dataset_uuid, "POST v1/dataset/check with unknown dataset (Q-C2)")
    try:
        header, data = read_datafile(Path(dataset["location"]))
    except (OSError, ValueError, KeyError):
        return {}  # Q-D4
    values = result["data"] if isinstance(result["data"], list) else []
    if not values:
        return {"accuracy": None}  # 100/0 is not finite -> null
    offset = int(header.get("inputs", 0))
    correct = 0
    for i, value in enumerate(values[: len(data)]):
        index = offset + max(0, int(value))
        if index < data.shape[1] and data[i, index] > 0:
            correct += 1
    accuracy = np.float32(100.0) / np.float32(len(values)) * np.float32(correct)
    return {"accuracy": float(accuracy)}
