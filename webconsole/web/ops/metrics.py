"""/metrics for Prometheus (no login: put it behind the proxy's own access rules if needed)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

router = APIRouter()


@router.get("/metrics", name="metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    figures = request.app.state.metrics
    # Sessions are counted in the shared store, so whichever worker answers reads the right figure
    # (backend websockets are counted as they open and close, in each worker).
    figures.sessions.set(await request.app.state.sessions.active_count())
    return Response(figures.exposition(), media_type=CONTENT_TYPE_LATEST)
