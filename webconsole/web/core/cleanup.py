"""Owed clean-ups: work the console must finish on Hanami even when Hanami was away at the time.

A page family that leaves a durable record of such work in the shared store (a half-made dataset
to delete, a cluster to return to task mode) registers a sweep here. Every sweep runs at start
and every ``cleanup_interval`` seconds, on every replica, until its records are gone; a sweep
must be safe to run on several replicas at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from fastapi import FastAPI

log = logging.getLogger("webconsole.cleanup")

Sweep = Callable[[FastAPI], Awaitable[Any]]


def register_sweep(app: FastAPI, sweep: Sweep) -> None:
    """Run ``sweep(app)`` at start and then every ``cleanup_interval`` seconds."""
    sweeps: list[Sweep] | None = getattr(app.state, "cleanup_sweeps", None)
    if sweeps is None:
        sweeps = app.state.cleanup_sweeps = []
        app.state.startup_hooks.append(_start)
        app.state.shutdown_hooks.append(_stop)
    sweeps.append(sweep)


async def run_sweeps(app: FastAPI) -> None:
    """One round of every registered sweep (a failing one does not stop the others)."""
    for sweep in app.state.cleanup_sweeps:
        try:
            await sweep(app)
        except Exception:  # the store or a bug: try again next round, never stop sweeping
            log.exception("clean-up sweep %s failed", getattr(sweep, "__name__", sweep))


async def _forever(app: FastAPI) -> None:
    while True:
        await run_sweeps(app)
        await asyncio.sleep(app.state.settings.cleanup_interval)


async def _start(app: FastAPI) -> None:
    app.state.cleanup_task = asyncio.create_task(_forever(app), name="owed-clean-ups")


async def _stop(app: FastAPI) -> None:
    task: asyncio.Task[Any] | None = getattr(app.state, "cleanup_task", None)
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
