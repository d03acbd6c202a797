"""Prometheus metrics, one registry per app (so several apps in one process do not collide).

Under ``serve --workers N`` every worker counts in its own process, so the figures are kept in
prometheus_client's multiprocess mode: ``serve`` gives the workers a fresh directory in
``PROMETHEUS_MULTIPROC_DIR``, each worker writes its values to its own files there, and whichever
worker answers ``/metrics`` adds up every worker's files. prometheus_client picks where values
live (in memory or in those files) once, when it is first imported, so the mode is whatever it
picked; one process (tests, ``demo``, ``serve --workers 1``) keeps its values in memory.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
_VALUE_FILE = re.compile(r"_(\d+)\.db$")  # counter_1234.db, gauge_livesum_1234.db: the writer's pid


def multiprocess_dir() -> Path | None:
    """The directory the workers share, when prometheus_client keeps its values in files."""
    if not getattr(values.ValueClass, "_multiprocess", False):
        return None
    folder = os.environ.get(MULTIPROCESS_DIR)
    if not folder or not Path(folder).is_dir():
        raise RuntimeError(f"{MULTIPROCESS_DIR} must name an existing directory in multiprocess mode")
    return Path(folder)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    try:  # a zombie has finished: its supervisor just has not reaped it yet
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def forget_dead_workers(folder: Path) -> None:
    """Drop the live gauges (open websockets) of workers that are gone; their counters stay counted.

    uvicorn's supervisor starts a new worker when one dies: without this, the dead worker's open
    websockets would be counted for ever.
    """
    writers = {int(m.group(1)) for f in folder.glob("*.db") if (m := _VALUE_FILE.search(f.name))}
    for pid in writers - {os.getpid()}:
        if not _alive(pid):
            mark_process_dead(pid, str(folder))


class Metrics:
    """Everything the console counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        own: CollectorRegistry | None = self.registry
        #: None when this process keeps its own figures; else the directory every worker writes to
        self.shared_dir = multiprocess_dir()
        if self.shared_dir is not None:
            forget_dead_workers(self.shared_dir)
            # The metrics below write to this worker's files; what is shown is every worker's files
            # added up (registering them here too would show this worker's figures twice).
            MultiProcessCollector(self.registry, path=str(self.shared_dir))
            own = None
        self.requests = Counter(
            "hanami_console_http_requests_total", "HTTP requests served, by route template and status.",
            ["route", "method", "status"], registry=own,
        )
        self.latency = Histogram(
            "hanami_console_http_request_duration_seconds", "Time to serve a request, by route template.",
            ["route", "method"], registry=own,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.backend_calls = Counter(
            "hanami_console_backend_calls_total", "Calls to the Hanami backend, by endpoint and status.",
            ["endpoint", "status"], registry=own,
        )
        self.backend_latency = Histogram(
            "hanami_console_backend_call_duration_seconds", "Duration of Hanami backend calls.",
            ["endpoint"], registry=own,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.backend_errors = Counter(
            "hanami_console_backend_errors_total", "Failed Hanami calls, by endpoint and error class.",
            ["endpoint", "error"], registry=own,
        )
        self.websockets = Gauge(
            "hanami_console_open_websockets", "Websockets open right now (browser bridges and backend).",
            ["kind"], registry=own, multiprocess_mode="livesum",
        )
        self.upload_bytes = Counter(
            "hanami_console_upload_bytes_total", "Dataset bytes moved, by leg (browser or backend).",
            ["leg"], registry=own,
        )
        # Read from the shared session store at each scrape: the freshest reading is every worker's.
        self.sessions = Gauge(
            "hanami_console_active_sessions", "Sessions alive in the session store.", registry=own,
            multiprocess_mode="mostrecent",
        )
        self.websockets.labels("backend")  # shown at 0 before the first one opens

    def exposition(self) -> bytes:
        """What ``/metrics`` shows: this process's figures, or every worker's added up."""
        if self.shared_dir is not None:
            forget_dead_workers(self.shared_dir)
        return generate_latest(self.registry)

    def backend_call(self, endpoint: str, status: int | None, seconds: float, error: str | None = None) -> None:
        """Record one backend call (hooked into the Hanami client)."""
        self.backend_calls.labels(endpoint, str(status) if status is not None else "none").inc()
        self.backend_latency.labels(endpoint).observe(seconds)
        if error is not None:
            self.backend_errors.labels(endpoint, error).inc()


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Counts requests by route template (never by raw path: ids would explode the label set)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def record_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or ("static" if "/static/" in scope.get("path", "") else "unmatched")
            # Methods are client-chosen tokens: only the known ones become label values.
            method = scope.get("method", "")
            if method not in KNOWN_METHODS:
                method = "OTHER"
            self.metrics.requests.labels(template, method, str(status["code"])).inc()
            self.metrics.latency.labels(template, method).observe(time.perf_counter() - started)
