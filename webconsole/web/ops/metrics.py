"""/metrics for Prometheus (no login: put it behind the proxy's own access rules if needed)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter()


@router.get("/metrics", name="metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics
    registry.sessions.set(await request.app.state.sessions.active_count())
    registry.websockets.labels("backend").set(request.app.state.hanami.websockets.in_use)
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
