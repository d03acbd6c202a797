"""Clusters, checkpoints-as-tasks, modes and hosts (§4.15-4.22, §4.42)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ..core import ApiError, Context, Crash, resource, route, table
from ..runtime import Cluster, Task, new_uuid

CLUSTER_HEADER = ["uuid", "project_id", "owner_id", "visibility", "name"]


def visible_cluster(ctx: Context, uuid: str) -> dict[str, Any]:
    row = ctx.store.get_visible("clusters", uuid, ctx.user)
    if row is None:
        raise ApiError(404, f"Cluster with uuid '{uuid}' not found")
    return row


def runtime_cluster(ctx: Context, uuid: str, status: int = 500) -> Cluster:
    """The in-memory cluster behind a visible row (404 'UUID ...'not found' for task endpoints)."""
    cluster = ctx.backend.cluster(uuid)
    if cluster is None:
        raise ApiError(status, f"Cluster with UUID '{uuid}'not found" if status == 404 else "")
    return cluster


def require_network(cluster: Cluster) -> None:
    if cluster.network is None:  # Q-C5: cluster created with an empty template
        raise Crash("operation on a cluster without network (Q-C5)", 400,
                    f"Cluster with uuid '{cluster.uuid}' has no network (created with an empty template)")


@route("POST", "v1/cluster")
def create_cluster(ctx: Context) -> dict[str, Any]:
    from webconsole.protocol.template import TemplateError, parse_template, template_error_body

    from ..network import Network

    name = ctx.values["name"]
    if any(row["name"] == name for row in ctx.store.visible("clusters", ctx.user)):
        raise ApiError(409, f"Cluster with name '{name}' already exist.")
    if "template" not in ctx.values:
        raise Crash("POST v1/cluster without template (Q-C1)", 400,
                    "Validation failed, because variable 'template' is required, but is not set.")
    encoded = ctx.values["template"]
    network = None
    if encoded == "" and not ctx.backend.config.faithful:
        raise ApiError(400, "Uploaded template is not a valid base64-String.")
    if encoded != "":
        if len(encoded) % 4 != 0:
            raise ApiError(400, "Uploaded template is not a valid base64-String.")
        try:
            text = base64.b64decode(encoded, validate=False).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            raise ApiError(400, "Uploaded template is not a valid base64-String.") from None
        try:
            template = parse_template(text)
        except TemplateError as err:
            raise ApiError(400, template_error_body(err)) from None
        try:
            network = Network.from_template(template, name, seed=ctx.backend.config.seed)
        except Exception as err:  # noqa: BLE001 - init failure -> 500 (row never kept)
            raise ApiError(500, f"failed to initialize cluster: {err}") from None
    uuid = new_uuid()
    row = {"uuid": uuid, "project_id": ctx.user["project_id"], "owner_id": ctx.user["id"],
           "visibility": "private", "name": name}
    ctx.store.insert("clusters", row)
    ctx.backend.add_cluster(uuid, name, network)
    return resource(ctx.store.get("clusters", uuid) or row)


@route("GET", "v1/cluster")
def get_cluster(ctx: Context) -> dict[str, Any]:
    return resource(visible_cluster(ctx, ctx.values["uuid"]))


@route("GET", "v1/cluster/all")
def list_clusters(ctx: Context) -> dict[str, Any]:
    return table(CLUSTER_HEADER, ctx.store.visible("clusters", ctx.user))


@route("DELETE", "v1/cluster")
def delete_cluster(ctx: Context) -> dict[str, Any]:
    uuid = ctx.values["uuid"]
    visible_cluster(ctx, uuid)
    ctx.store.delete("clusters", uuid)
    if ctx.backend.remove_cluster(uuid) is None:
        raise ApiError(500, f"in-memory cluster '{uuid}' missing")
    return {}


@route("POST", "v1/cluster/save")
def save_cluster(ctx: Context) -> dict[str, Any]:
    uuid = ctx.values["cluster_uuid"]
    visible_cluster(ctx, uuid)
    cluster = runtime_cluster(ctx, uuid)
    require_network(cluster)
    task = Task(new_uuid(), ctx.values["name"], "save", dict(ctx.user))
    cluster.add_task(task)
    return {"name": ctx.values["name"], "uuid": task.uuid}


@route("POST", "v1/cluster/load")
def load_cluster(ctx: Context) -> dict[str, Any]:
    uuid = ctx.values["cluster_uuid"]
    visible_cluster(ctx, uuid)
    cluster = runtime_cluster(ctx, uuid)
    task = Task(new_uuid(), "restore", "restore", dict(ctx.user),
                checkpoint_uuid=ctx.values["checkpoint_uuid"])  # Q-K1: not checked here
    cluster.add_task(task)
    return {"uuid": task.uuid}


@route("PUT", "v1/cluster/set_mode")
def set_mode(ctx: Context) -> dict[str, Any]:
    uuid, new_state = ctx.values["uuid"], ctx.values["new_state"]
    row = visible_cluster(ctx, uuid)
    cluster = runtime_cluster(ctx, uuid)
    if not cluster.set_mode(new_state):
        raise ApiError(409, f"Can not switch cluster to '{new_state}'")
    return {"name": row["name"], "new_state": new_state, "uuid": uuid}


@route("PUT", "v1/cluster/switch_host")
def switch_host(ctx: Context) -> dict[str, Any]:
    uuid, host = ctx.values["cluster_uuid"], ctx.values["host_uuid"]
    row = visible_cluster(ctx, uuid)
    if host not in {h for h, _ in ctx.backend.hosts}:
        raise ApiError(404, f"Host with uuid '{host}' not found")
    cluster = runtime_cluster(ctx, uuid)
    with cluster.lock:
        cluster.host_uuid = host
    return resource(row)


@route("GET", "v1/host/all")
def list_hosts(ctx: Context) -> dict[str, Any]:
    return {"body": [[u, t] for u, t in ctx.backend.hosts], "header": ["uuid", "type"]}
