"""Forms that create something are safe to submit twice (a double click, a resent POST).

Every such form carries a one-time ``form_token`` (``form_once_field()`` in the template, a fresh
random value per rendered form). The route, wrapped in :func:`submitted_once`, claims
``form-once:<user>:<token>`` in the shared store before it acts, so on any replica only the first
submission creates; a second one waits for the first to finish and answers with the same redirect.
A submission that ends without a redirect (the form shown again with its errors) releases the
token, so correcting the form and sending it again works.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import secrets
import time
from typing import Any, Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response
from markupsafe import Markup

from webconsole.web.core.errors import Forbidden
from webconsole.web.core.render import redirect

FIELD = "form_token"
PREFIX = "form-once:"
TTL = 24 * 3600.0
WAIT = 60.0  # seconds a second submission waits for the first one's answer
_PENDING = b'{"pending": true}'
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def form_once_field() -> Markup:
    """The hidden field of a creating form (a Jinja global)."""
    return Markup('<input type="hidden" name="%s" value="%s">') % (FIELD, secrets.token_urlsafe(18))


def _target(response: Response) -> str | None:
    """Where a finished submission sent the browser (its redirect), if anywhere."""
    for header in ("HX-Redirect", "X-Upload-Status"):
        if header in response.headers:
            return response.headers[header]
    if 300 <= response.status_code < 400 and "location" in response.headers:
        return response.headers["location"]
    return None


async def _answer_of_first(request: Request, key: str) -> Response:
    store = request.app.state.store
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        raw = await store.get(key)
        if raw is None:
            break  # the first one ended without a result: it may be sent again
        record = json.loads(raw)
        if record.get("target"):
            return redirect(request, str(record["target"]))
        await asyncio.sleep(0.1)
    raise Forbidden("This form was sent twice; the first submission is still being handled or did not finish. "
                    "Open the list to see what was created, then use a fresh form if something is missing.")


def submitted_once(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """Wrap a creating POST route (it must take ``request: Request``) to act once per form token."""

    @functools.wraps(handler)
    async def once(*args: Any, **kwargs: Any) -> Response:
        request: Request = kwargs["request"]
        session = getattr(request.state, "session", None)
        form = await request.form()
        token = form.get(FIELD)
        if session is None or not isinstance(token, str) or not _TOKEN.fullmatch(token):
            return await handler(*args, **kwargs)  # a form of an older page, or a script: as before
        store = request.app.state.store
        key = f"{PREFIX}{session.user_id}:{token}"
        if not await store.add(key, _PENDING, TTL):
            await form.close()
            return await _answer_of_first(request, key)
        try:
            response = await handler(*args, **kwargs)
        except BaseException:
            await asyncio.shield(store.delete(key))
            raise
        target = _target(response)
        if target is None:
            await store.delete(key)
        else:
            await store.set(key, json.dumps({"target": target}).encode(), TTL)
        return response

    return once
