"""Projects (§4.11-4.14)."""

from __future__ import annotations

from typing import Any

from ..core import ApiError, Context, require_admin, route, table


def _project(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("creator_id", "id", "name")}


@route("POST", "v1/project")
def create_project(ctx: Context) -> dict[str, Any]:
    require_admin(ctx)
    v = ctx.values
    if ctx.store.get("projects", v["id"]) is not None:
        raise ApiError(409, f"Project with id '{v['id']}' already exist.")
    ctx.store.insert("projects", {"id": v["id"], "name": v["name"], "creator_id": ctx.user["id"]})
    return _project(ctx.store.get("projects", v["id"]) or {})


@route("GET", "v1/project")
def get_project(ctx: Context) -> dict[str, Any]:
    require_admin(ctx)
    row = ctx.store.get("projects", ctx.values["id"])
    if row is None:
        raise ApiError(404, f"Project with id '{ctx.values['id']}' not found")
    return _project(row)


@route("GET", "v1/project/all")
def list_projects(ctx: Context) -> dict[str, Any]:
    require_admin(ctx)
    return table(["id", "name", "creator_id"], ctx.store.rows("projects"))


@route("DELETE", "v1/project")
def delete_project(ctx: Context) -> dict[str, Any]:
    require_admin(ctx)
    if not ctx.store.delete("projects", ctx.values["id"]):
        raise ApiError(404, f"Project with id '{ctx.values['id']}' not found")
    return {}
