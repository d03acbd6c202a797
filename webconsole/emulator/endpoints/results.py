"""Request results and checkpoints (§4.36-4.41)."""

from __future__ import annotations

import os
from typing import Any

from ..core import ApiError, Context, route, table

RESOURCE_HEADER = ["uuid", "project_id", "owner_id", "visibility", "name"]


@route("GET", "v1/request_result")
def get_result(ctx: Context) -> dict[str, Any]:
    uuid = ctx.values["uuid"]
    row = ctx.store.get_visible("request_results", uuid, ctx.user)
    if row is None:
        raise ApiError(404, f"Request-result with uuid '{uuid}' not found")
    return {k: row[k] for k in ("data", "name", "owner_id", "project_id", "uuid", "visibility")}


@route("GET", "v1/request_result/all")
def list_results(ctx: Context) -> dict[str, Any]:
    return table(RESOURCE_HEADER, ctx.store.visible("request_results", ctx.user))


@route("DELETE", "v1/request_result")
def delete_result(ctx: Context) -> dict[str, Any]:
    uuid = ctx.values["uuid"]
    if ctx.store.get_visible("request_results", uuid, ctx.user) is None:
        raise ApiError(404, f"Request-result with uuid '{uuid}' not found")
    ctx.store.delete("request_results", uuid)
    return {}


@route("GET", "v1/checkpoint")
def get_checkpoint(ctx: Context) -> dict[str, Any]:
    uuid = ctx.values["uuid"]
    row = ctx.store.get_visible("checkpoints", uuid, ctx.user)
    if row is None:
        raise ApiError(404, f"Checkpoint with uuid '{uuid}' not found")
    return {k: row[k] for k in ("location", "name", "uuid")}


@route("GET", "v1/checkpoint/all")
def list_checkpoints(ctx: Context) -> dict[str, Any]:
    return table(RESOURCE_HEADER, ctx.store.visible("checkpoints", ctx.user))


@route("DELETE", "v1/checkpoint")
def delete_checkpoint(ctx: Context) -> dict[str, Any]:
    uuid = ctx.values["uuid"]
    row = ctx.store.get_visible("checkpoints", uuid, ctx.user)
    if row is None:
        raise ApiError(404, f"Chekckpoint with uuid '{uuid}' not found")  # sic
    ctx.store.delete("checkpoints", uuid)
    try:
        os.unlink(str(row["location"]))
    except FileNotFoundError:
        pass
    except OSError as err:
        raise ApiError(500, f"failed to delete checkpoint file: {err}") from None
    return {}
