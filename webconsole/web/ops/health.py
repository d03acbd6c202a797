"""/healthz (the process is alive) and /readyz (the store works and the backend is usable).

Hanami answers HTTP about a second before it is usable (a cluster created in that window gets a
500): it is usable once ``host/all`` lists a host. That needs a login, so /readyz logs in with the
readiness account (``HANAMI_CONSOLE_READINESS_USER_ID`` / ``_PASSWORD``, any user of the policy's
``host/all``) and keeps its token; without that account it cannot know, and says not ready.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from webconsole.hanami import HanamiClient, TokenExpired

router = APIRouter()

NO_ACCOUNT = "not checked: set HANAMI_CONSOLE_READINESS_USER_ID and HANAMI_CONSOLE_READINESS_PASSWORD"


@router.get("/healthz", name="healthz")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _readiness_token(request: Request, hanami: HanamiClient, fresh: bool) -> str:
    """The readiness account's token, logged in again when it is missing, expiring or refused."""
    settings = request.app.state.settings
    cached = getattr(request.app.state, "readiness_token", None)
    if not fresh and cached is not None and cached.expires_at - time.time() > 60:
        return cached.token
    info = await hanami.login(settings.readiness_user_id, settings.readiness_password.get_secret_value())
    request.app.state.readiness_token = info
    return info.token


async def _hosts_listed(request: Request, hanami: HanamiClient) -> str:
    settings = request.app.state.settings
    if not settings.readiness_user_id or settings.readiness_password is None:
        return NO_ACCOUNT
    for fresh in (False, True):
        try:
            hosts = await hanami.api(await _readiness_token(request, hanami, fresh)).list_hosts()
        except TokenExpired:
            continue  # the token was refused (e.g. the backend got a new key): log in once more
        return "ok" if hosts.records() else "failed: no host listed yet"
    return "failed: the readiness account's login is refused"


@router.get("/readyz", name="readyz")
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(request.app.state.store.ping(), timeout=5)
        checks["store"] = "ok"
    except Exception as exc:  # any failure means "not ready"; the type is enough to diagnose
        checks["store"] = f"failed: {type(exc).__name__}"
    hanami = request.app.state.hanami
    try:
        await asyncio.wait_for(hanami.ping(), timeout=10)
        checks["backend"] = "ok"
    except Exception as exc:
        checks["backend"] = f"failed: {type(exc).__name__}"
    if checks["backend"] == "ok":
        try:
            checks["hosts"] = await asyncio.wait_for(_hosts_listed(request, hanami), timeout=10)
        except Exception as exc:
            checks["hosts"] = f"failed: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)
