"""The home page: who and where you are, what exists, what to do next."""

from __future__ import annotations

import asyncio

from fastapi import Request
from fastapi.responses import Response

from webconsole.hanami.errors import BackendUnavailable, TokenExpired
from webconsole.web.access.auth import project_choices
from webconsole.web.core.deps import CurrentSession, Hanami, resource_router
from webconsole.web.core.render import render

router = resource_router()


@router.get("/", name="home")
async def home(request: Request, session: CurrentSession, api: Hanami) -> Response:
    listings = await asyncio.gather(
        api.list_datasets(), api.list_clusters(), api.list_results(), api.list_checkpoints(),
        return_exceptions=True,
    )
    for item in listings:
        # Availability and token problems go to the error mapper; a single refused list does not.
        if isinstance(item, (BackendUnavailable, TokenExpired)):
            raise item
    counts = {
        name: (len(item.rows) if not isinstance(item, BaseException) else None)
        for name, item in zip(("datasets", "clusters", "results", "checkpoints"), listings)
    }
    return await render(
        request, "home.html", {"counts": counts, "projects": await project_choices(api, session)}
    )
