"""Audit and error logs (§4.43, §4.44)."""

from __future__ import annotations

from typing import Any

from ..core import ApiError, Context, require_admin, route, table

PAGE_SIZE = 100
AUDIT_HEADER = ["timestamp", "user_id", "endpoint", "request_type"]
ERROR_HEADER = ["timestamp", "user_id", "component", "context", "input_values", "message"]


def _page(ctx: Context, table_name: str, header: list[str], user_id: str) -> dict[str, Any]:
    page = ctx.values["page"]
    total = ctx.store.count(table_name)  # Q-L3: the bound covers the whole table
    if page > total // PAGE_SIZE + 1:
        raise ApiError(500, f"page {page} out of range")
    rows = ctx.store.rows(table_name, {"user_id": user_id}, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
    return table(header, rows)


@route("GET", "v1/audit_log")
def audit_log(ctx: Context) -> dict[str, Any]:
    return _page(ctx, "audit_log", AUDIT_HEADER, ctx.user["id"])  # Q-L1: user_id ignored


@route("GET", "v1/error_log")
def error_log(ctx: Context) -> dict[str, Any]:
    require_admin(ctx, "only an admin is allowed to request error-logs")
    return _page(ctx, "error_log", ERROR_HEADER, ctx.values.get("user_id", ""))  # Q-L2
