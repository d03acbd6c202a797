"""System: logical hosts, CPU packages/cores/threads, thread mapping, and power/temperature/speed charts."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from webconsole.hanami.errors import BackendError, BackendUnavailable
from webconsole.web.clusters.memory import name_hosts
from webconsole.web.core.deps import CurrentSession, Hanami, resource_router
from webconsole.web.core.render import render

router = resource_router()
RANGES = ("seconds", "minutes", "hours", "days")
METRICS = (("power", "Power", "W"), ("temperature", "Temperature", "°C"), ("speed", "Speed", "MHz"))
POLL_SECONDS = 5


def _mhz(khz: Any) -> float | None:
    return round(khz / 1000, 1) if isinstance(khz, (int, float)) and not isinstance(khz, bool) else None


def packages_view(info: dict[str, Any]) -> list[dict[str, Any]]:
    """system_info packages with every speed in MHz (Hanami reports kHz)."""
    packages = []
    for package in info.get("packages") or []:
        cores = []
        for core in package.get("cores") or []:
            cores.append({
                "id": core.get("id"),
                "threads": [thread.get("id") for thread in core.get("threads") or [] if isinstance(thread, dict)],
                **{key: _mhz(core.get(key)) for key in ("current_speed", "current_minimum_speed",
                                                        "current_maximum_speed", "minimum_speed", "maximum_speed")},
            })
        packages.append({"id": package.get("id"), "power": package.get("power"),
                         "thermal_spec": package.get("thermal_spec"), "cores": cores})
    return packages


def summary(series: dict[str, list[float]], range_name: str) -> dict[str, float | None]:
    values = [v for v in series.get(range_name) or [] if isinstance(v, (int, float))]
    if not values:
        return {"latest": None, "mean": None, "max": None}
    return {"latest": values[-1], "mean": sum(values) / len(values), "max": max(values)}


async def measurements(api: Any) -> dict[str, dict[str, list[float]]]:
    power, temperature, speed = await asyncio.gather(api.power(), api.temperature(), api.speed())
    return {"power": power, "temperature": temperature, "speed": speed}


@router.get("/system", name="system_page")
async def detail(request: Request, session: CurrentSession, api: Hanami) -> Response:
    range_name = request.query_params.get("range", "seconds")
    if range_name not in RANGES:
        range_name = "seconds"
    hosts, info, series = await asyncio.gather(api.list_hosts(), api.system_info(), measurements(api))
    host_rows = hosts.records()
    name_hosts(host_rows)
    # The thread map answers 500 while Hanami starts and always on some installs (§14): asked once
    # per page view, never retried in a loop.
    try:
        thread_map: dict[str, Any] | None = await api.threading()
    except (BackendError, BackendUnavailable):
        thread_map = None
    return await render(request, "system/detail.html", {
        "hosts": host_rows, "info": info, "packages": packages_view(info), "thread_map": thread_map,
        "series": series, "range": range_name, "ranges": RANGES, "metrics": METRICS,
        "summaries": {key: summary(series[key], range_name) for key, _, _ in METRICS},
        "poll_seconds": POLL_SECONDS,
    })


@router.get("/system/measurements.json", name="system_data")
async def data(request: Request, session: CurrentSession, api: Hanami) -> Response:
    """The three series for the charts; page scripts poll this with ``X-Console-Poll: 1``."""
    return JSONResponse(await measurements(api), headers={"Cache-Control": "no-store"})
