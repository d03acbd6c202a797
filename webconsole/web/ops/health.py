"""/healthz (the process is alive) and /readyz (the backend answers and the store works)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter()


@router.get("/healthz", name="healthz")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", name="readyz")
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(request.app.state.store.ping(), timeout=5)
        checks["store"] = "ok"
    except Exception as exc:  # any failure means "not ready"; the type is enough to diagnose
        checks["store"] = f"failed: {type(exc).__name__}"
    try:
        await asyncio.wait_for(request.app.state.hanami.ping(), timeout=10)
        checks["backend"] = "ok"
    except Exception as exc:
        checks["backend"] = f"failed: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)
