"""Error log (admin only): Hanami's internal errors with the failed request's input, decoded."""

from __future__ import annotations

import base64
import binascii
import json
from functools import partial
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response

from webconsole.web.core.forms import ID_EXT
from webconsole.web.admin.audit import utc_text, fetch_log_pages, parse_backend_time
from webconsole.web.core.deps import AdminSession, Hanami, resource_router
from webconsole.web.core.errors import console_errors
from webconsole.web.core.listing import paginate
from webconsole.web.core.render import render

router = resource_router()


def decode_message(value: Any) -> str:
    """The base64 message (Q-L5) as text; the raw value when it is not base64."""
    text = str(value or "")
    try:
        return base64.b64decode(text, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return text


def format_input(value: Any) -> str:
    """``input_values`` is a JSON object (or ``""``): pretty-printed, or as given."""
    if isinstance(value, str):
        if not value:
            return ""
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@router.get("/errors", name="error_log")
async def list_all(request: Request, session: AdminSession, api: Hanami) -> Response:
    """``?user_id=<id>`` (default: you) or ``?without_user=1`` (entries logged outside a request).

    Hanami filters by exactly one user id and, without one, returns only entries that have no user
    (Q-L2) — there is no "all users" view.
    """
    without_user = request.query_params.get("without_user") == "1"
    user_id = "" if without_user else request.query_params.get("user_id", "").strip() or session.user_id
    if user_id and ID_EXT.check(user_id):
        raise HTTPException(400, f"'{user_id}' is not a valid user id: {ID_EXT.message}")
    rows, truncated = await fetch_log_pages(
        request, f"errors:{user_id}", partial(api.error_log, user_id=user_id or None)
    )
    records = []
    for index, entry in enumerate(rows):
        stamp = parse_backend_time(entry.get("timestamp"))
        records.append({
            "n": index, "when": utc_text(stamp), "raw_time": str(entry.get("timestamp", "")),
            "user_id": str(entry.get("user_id", "")), "input": format_input(entry.get("input_values")),
            "message": decode_message(entry.get("message")),
        })
    page = paginate(request, records, search=("input", "message", "raw_time"), sortable=("n",),
                    default_sort="n", default_order="desc", extra_params=("user_id", "without_user"))
    own = [{**entry, "when": utc_text(entry.get("time"))} for entry in await console_errors(request.app.state.store)]
    return await render(request, "errorlog/list.html", {
        "page": page, "user_id": user_id, "without_user": without_user, "truncated": truncated,
        "console_errors": own,
    }, block="error_table")

