"""The route table: every page router in the order ``create_app`` includes it, and the set-up
functions of the families that start or stop work with the app (uploads, direct-IO bridges)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, FastAPI

from webconsole.web.access import account, auth, home
from webconsole.web.admin import audit, errorlog, projects, system, users
from webconsole.web.clusters import checkpoints, hosts
from webconsole.web.clusters import pages as clusters
from webconsole.web.datasets import pages as datasets
from webconsole.web.direct_io import pages as direct_io
from webconsole.web.ops import health, metrics
from webconsole.web.runs import pages as runs
from webconsole.web.tasks import pages as tasks
from webconsole.web.tasks import results

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    metrics.router,
    auth.router,
    home.router,
    datasets.router,  # with the upload routes
    clusters.router,
    checkpoints.router,
    hosts.router,
    tasks.router,
    results.router,
    projects.router,
    users.router,
    account.router,
    audit.router,
    errorlog.router,
    system.router,
    direct_io.router,
    runs.router,
)

SETUPS: tuple[Callable[[FastAPI], None], ...] = (
    datasets.setup,  # upload tasks and the sweep of replay files
    direct_io.setup,  # the registry of open bridges, closed at shutdown
)
