"""Measurements, system info and threading (§4.45-4.49)."""

from __future__ import annotations

import time
from typing import Any

from ..core import ApiError, Context, route
from ..measurements import system_info as read_system_info
from ..measurements import thread_map


@route("GET", "v1/power_consumption")
def power(ctx: Context) -> dict[str, Any]:
    return {"power": ctx.backend.measurements.power.snapshot()}


@route("GET", "v1/speed")
def speed(ctx: Context) -> dict[str, Any]:
    return {"current_speed": ctx.backend.measurements.speed.snapshot()}


@route("GET", "v1/temperature_production")
def temperature(ctx: Context) -> dict[str, Any]:
    return {"temperature": ctx.backend.measurements.temperature.snapshot()}


@route("GET", "v1/system_info")
def system_info(ctx: Context) -> dict[str, Any]:
    return read_system_info()


@route("GET", "v1/threading")
def threading_map(ctx: Context) -> dict[str, Any]:
    if time.monotonic() - ctx.backend.started < ctx.backend.config.threading_delay:
        raise ApiError(500, "thread map not built yet")  # Q-L6
    return thread_map()
