"""Prometheus metrics, one registry per app (so several apps in one process do not collide)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    """Everything the console counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hanami_console_http_requests_total", "HTTP requests served, by route template and status.",
            ["route", "method", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "hanami_console_http_request_duration_seconds", "Time to serve a request, by route template.",
            ["route", "method"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.backend_calls = Counter(
            "hanami_console_backend_calls_total", "Calls to the Hanami backend, by endpoint and status.",
            ["endpoint", "status"], registry=self.registry,
        )
        self.backend_latency = Histogram(
            "hanami_console_backend_call_duration_seconds", "Duration of Hanami backend calls.",
            ["endpoint"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.backend_errors = Counter(
            "hanami_console_backend_errors_total", "Failed Hanami calls, by endpoint and error class.",
            ["endpoint", "error"], registry=self.registry,
        )
        self.websockets = Gauge(
            "hanami_console_open_websockets", "Websockets open right now (browser bridges and backend).",
            ["kind"], registry=self.registry,
        )
        self.upload_bytes = Counter(
            "hanami_console_upload_bytes_total", "Dataset bytes moved, by leg (browser or backend).",
            ["leg"], registry=self.registry,
        )
        self.sessions = Gauge(
            "hanami_console_active_sessions", "Sessions alive in the session store.", registry=self.registry,
        )

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
