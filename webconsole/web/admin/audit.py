"""Audit: Hanami's audit log (the caller's own entries, Q-L1) and the console's own trail in one timeline."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response

from webconsole.hanami.models import Table
from webconsole.web.core.deps import CurrentSession, Hanami, resource_router
from webconsole.web.core.listing import paginate
from webconsole.web.core.render import render

router = resource_router()

# The console's action codes and Hanami's (method, endpoint) pairs, in plain words.
ACTION_WORDS = {
    "direct_io_open": "direct IO started", "direct_io_close": "direct IO ended",
    "direct_io_template": "direct IO: template given", "direct_io_task_mode": "direct IO: cluster back to tasks",
    "direct_io_replay_upload": "direct IO: replay uploaded", "dataset delete": "delete dataset",
    "dataset upload": "upload dataset",
}
ENDPOINT_WORDS = {
    ("POST", "v1/project"): "create project", ("DELETE", "v1/project"): "delete project",
    ("POST", "v1/user"): "create user", ("DELETE", "v1/user"): "delete user",
    ("POST", "v1/user/project"): "assign project", ("DELETE", "v1/user/project"): "remove project",
    ("POST", "v1/cluster"): "create cluster", ("DELETE", "v1/cluster"): "delete cluster",
    ("POST", "v1/cluster/save"): "save checkpoint", ("POST", "v1/cluster/load"): "restore checkpoint",
    ("PUT", "v1/cluster/switch_host"): "move cluster to another host", ("PUT", "v1/cluster/set_mode"): "switch cluster mode",
    ("POST", "v1/task"): "create task", ("DELETE", "v1/task"): "delete or abort task",
    ("POST", "v1/mnist/dataset"): "start MNIST upload", ("PUT", "v1/mnist/dataset"): "finish MNIST upload",
    ("POST", "v1/csv/dataset"): "start CSV upload", ("PUT", "v1/csv/dataset"): "finish CSV upload",
    ("DELETE", "v1/dataset"): "delete dataset", ("POST", "v1/dataset/check"): "check accuracy",
    ("DELETE", "v1/checkpoint"): "delete checkpoint", ("DELETE", "v1/request_result"): "delete result",
    ("PUT", "v1/token"): "switch project or renew login", ("POST", "v1/token"): "log in",
}
UUID_IN_TEXT = re.compile(r"[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}")


def action_words(action: str, method: str = "") -> str:
    """What an audit row's action means, for a person who never saw an endpoint."""
    if method:
        return ENDPOINT_WORDS.get((method, action.lstrip("/")), "")
    return ACTION_WORDS.get(action, "")


def named_detail(detail: str, names: dict[str, str]) -> tuple[str, list[str]]:
    """The detail with every uuid the console can name replaced by 'name'; the uuids, for copying."""
    uuids = UUID_IN_TEXT.findall(detail)
    text = UUID_IN_TEXT.sub(lambda match: f"'{names[match.group(0)]}'" if match.group(0) in names
                            else match.group(0)[:8] + "…", detail)
    return text, uuids

BACKEND_PAGE_SIZE = 100
MAX_BACKEND_PAGES = 1000  # 100,000 entries; full pages are cached, so only the tail is fetched again
FILTERS = ("user", "action", "method", "source", "since", "until")
METHODS = ("POST", "PUT", "DELETE")


def parse_backend_time(value: Any) -> float | None:
    """Hanami's log time ``Y-M-D h:m:s`` without zero padding, in the backend's local time (Q-L4).

    The console assumes the backend runs in the same time zone as the console host (they usually sit
    side by side); the raw text is kept on every row so nothing is lost if not.
    """
    try:
        day, clock = str(value).split(" ")
        year, month, mday = (int(part) for part in day.split("-"))
        hour, minute, second = (int(part) for part in clock.split(":"))
        return datetime(year, month, mday, hour, minute, second).timestamp()
    except (ValueError, TypeError):
        return None


async def fetch_log_pages(
    request: Request, key: str, fetch: Callable[[int], Awaitable[Table]]
) -> tuple[list[dict[str, Any]], bool]:
    """Every row of a paged Hanami log, oldest first, and whether the console stopped early.

    The page bound is computed over the whole table (all users), and a page past it answers 500
    (Q-L3), so the next page is asked for only when this one was full: then more rows exist and the
    next page is within bounds. Full pages never change (logs are append-only, oldest first), so
    they are kept per ``key`` and only the last, partial page is fetched again.
    """
    cache: dict[tuple[str, int], list[dict[str, Any]]] = request.app.state.__dict__.setdefault(
        "log_page_cache", {}
    )
    rows: list[dict[str, Any]] = []
    for number in range(MAX_BACKEND_PAGES):
        page = cache.get((key, number))
        if page is None:
            page = (await fetch(number)).records()
            if len(page) >= BACKEND_PAGE_SIZE:
                if len(cache) > 5000:
                    cache.clear()
                cache[(key, number)] = page
        rows.extend(page)
        if len(page) < BACKEND_PAGE_SIZE:
            return rows, False
    return rows, True


def utc_text(stamp: float | None) -> str:
    if stamp is None:
        return "?"
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _parse_filter_time(value: str) -> float | None:
    """``YYYY-MM-DDTHH:MM`` (datetime-local) or ``YYYY-MM-DD``, read as UTC like every time shown."""
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    return None


def _matches(row: dict[str, Any], filters: dict[str, str], since: float | None, until: float | None) -> bool:
    if filters["source"] and row["source"] != filters["source"]:
        return False
    if filters["user"] and filters["user"].lower() not in row["user"].lower():
        return False
    if filters["action"] and filters["action"].lower() not in row["action"].lower():
        return False
    if filters["method"] and row["method"] != filters["method"]:
        return False
    if since is not None and (row["time"] is None or row["time"] < since):
        return False
    if until is not None and (row["time"] is None or row["time"] > until):
        return False
    return True


async def _name_uuids(api: Any, rows: list[dict[str, Any]]) -> None:
    """Clusters and datasets named in the shown rows' details by name (two listings, whatever the page)."""
    if not any(UUID_IN_TEXT.search(row["detail"]) for row in rows):
        for row in rows:
            row["detail_text"], row["uuids"] = row["detail"], []
        return
    listings = await asyncio.gather(api.list_clusters(), api.list_datasets(), return_exceptions=True)
    names: dict[str, str] = {}
    for listing in listings:
        if not isinstance(listing, BaseException):
            names.update({str(r.get("uuid")): str(r.get("name")) for r in listing.records()})
    for row in rows:
        row["detail_text"], row["uuids"] = named_detail(row["detail"], names)


@router.get("/audit", name="audit_page")
async def timeline(request: Request, session: CurrentSession, api: Hanami) -> Response:
    query = request.query_params
    filters = {name: query.get(name, "").strip() for name in FILTERS}
    since, until = _parse_filter_time(filters["since"]), _parse_filter_time(filters["until"])
    if until is not None and len(filters["until"]) == 10:
        until += 86399  # a whole day
    rows: list[dict[str, Any]] = []
    truncated = False
    if filters["source"] in ("", "backend"):
        backend_rows, truncated = await fetch_log_pages(request, f"audit:{session.user_id}", api.audit_log)
        for entry in backend_rows:
            stamp = parse_backend_time(entry.get("timestamp"))
            rows.append({"time": stamp, "when": utc_text(stamp), "raw_time": str(entry.get("timestamp", "")),
                         "user": str(entry.get("user_id", "")), "action": str(entry.get("endpoint", "")),
                         "method": str(entry.get("request_type", "")), "detail": "", "client": "",
                         "outcome": "", "source": "backend"})
    if filters["source"] in ("", "console"):
        # Members see only their own console entries; admins see everyone's.
        own = None if session.is_admin else session.user_id
        for item in await request.app.state.audit.entries(user_id=own, since=since, until=until):
            rows.append({"time": item.timestamp, "when": utc_text(item.timestamp), "raw_time": "",
                         "user": item.user_id, "action": item.action, "method": "", "detail": item.detail,
                         "client": item.client, "outcome": item.outcome, "source": "console"})
    rows = [row for row in rows if _matches(row, filters, since, until)]
    for row in rows:
        row["words"] = action_words(row["action"], row["method"])
    page = paginate(request, rows, search=("user", "action", "words", "method", "detail", "client"),
                    sortable=("time", "user", "action", "method", "source"), default_sort="time",
                    default_order="desc", extra_params=FILTERS)
    await _name_uuids(api, page.rows)
    return await render(request, "audit/list.html", {
        "page": page, "filters": filters, "methods": METHODS, "truncated": truncated,
        "max_entries": MAX_BACKEND_PAGES * BACKEND_PAGE_SIZE,
    }, block="timeline")
