"""create_app(settings): the one place that wires routers, stores, clients and middleware."""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from jinja2 import pass_context
from jinja2_fragments.fastapi import Jinja2Blocks
from starlette.types import ASGIApp, Receive, Scope, Send

from webconsole import __version__
from webconsole.audit import AuditTrail
from webconsole.hanami.client import HanamiClient
from webconsole.logging_setup import configure_logging
from webconsole.metrics import Metrics, MetricsMiddleware
from webconsole.paths import static_dir, templates_dir
from webconsole.sessions import SessionManager, open_store
from webconsole.settings import Settings
from webconsole.web.core.errors import install_error_handlers
from webconsole.web.core.once import form_once_field
from webconsole.web.core.security import BodyLimitMiddleware, SecurityHeadersMiddleware
from webconsole.web.routes import ROUTERS, SETUPS


PATHS_KEPT = 8192  # links a page makes (static files, sections, the rows' uuids), kept per app


def _templates() -> Jinja2Blocks:
    templates = Jinja2Blocks(directory=str(templates_dir()))
    paths: dict[tuple[Any, ...], str] = {}
    env = templates.env
    env.autoescape = True
    env.trim_blocks = True
    env.lstrip_blocks = True
    env.auto_reload = False  # the templates are part of the installation: no stat() per render

    def has_route(request: Request, name: str) -> bool:
        # Links to optional sections render only when the section's router is installed.
        return name in request.app.state.route_names

    def timestamp(value: float | None) -> str:
        if not value:
            return "-"
        return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")

    @pass_context
    def url_for(context: dict, name: str, /, **path_params: object) -> str:
        # Paths, not absolute URLs: links then survive any proxy's idea of host and scheme,
        # and carry the root path when the console is served under a prefix.
        request: Request = context["request"]
        key = (request.scope.get("root_path", ""), name, tuple(sorted(path_params.items())))
        try:
            path = paths.get(key)
        except TypeError:  # an unhashable parameter: not kept
            return request.url_for(name, **path_params).path
        if path is None:
            # The route table is fixed once the app is built; finding a route by name walks all of it.
            path = request.url_for(name, **path_params).path
            if len(paths) >= PATHS_KEPT:
                paths.pop(next(iter(paths)))
            paths[key] = path
        return path

    env.globals["has_route"] = has_route
    env.globals["url_for"] = url_for
    env.globals["console_version"] = __version__
    env.globals["form_once_field"] = form_once_field
    env.filters["timestamp"] = timestamp
    return templates


def _route_names(routes: list[Any]) -> frozenset[str]:
    """Every named route, including those inside included routers."""
    names: set[str] = set()
    for route in routes:
        if getattr(route, "name", None):
            names.add(route.name)
        # FastAPI wraps included routers; mounts and routers expose their children as .routes
        owner = getattr(route, "original_router", None) or route
        children = getattr(owner, "routes", None)
        if children:
            names |= _route_names(list(children))
    return frozenset(names)


def create_app(settings: Settings) -> FastAPI:
    """Build the console application for ``settings`` (nothing global, so tests can build many)."""
    configure_logging(settings.log_level, settings.log_format)
    secret = settings.require_secret()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(settings.session_store_url)
        app.state.store = store
        app.state.sessions = SessionManager(
            store, secret, settings.session_idle_timeout, settings.session_absolute_timeout
        )
        app.state.audit = AuditTrail(store)
        app.state.hanami = HanamiClient(
            settings.backend_url,
            verify_tls=settings.backend_verify_tls,
            timeout=settings.backend_timeout,
            max_websockets=settings.backend_max_websockets,
            on_call=app.state.metrics.backend_call,
            on_websockets=app.state.metrics.websockets.labels("backend").set,
        )
        for hook in app.state.startup_hooks:
            await hook(app)
        try:
            yield
        finally:
            for hook in reversed(app.state.shutdown_hooks):
                await hook(app)
            await app.state.hanami.aclose()
            await store.aclose()

    app = FastAPI(
        title="Hanami Web Console",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.templates = _templates()
    app.state.metrics = Metrics()
    # Modules register start/stop work here (e.g. returning clusters to task mode on shutdown).
    app.state.startup_hooks = []
    app.state.shutdown_hooks = []
    app.state.logout_hooks = []  # async fn(app, session): per-session clean-up when a user logs out
    app.state.login_hooks = []  # async fn(app, session): work waiting for this user's next login
    app.mount("/static", StaticFiles(directory=str(static_dir())), name="static")
    for router in ROUTERS:
        app.include_router(router)
    for setup in SETUPS:
        setup(app)
    app.state.route_names = _route_names(app.routes)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_upload_bytes=settings.max_upload_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(SecurityHeadersMiddleware)
    if settings.root_path:
        app.add_middleware(RootPathMiddleware, root_path=settings.root_path)
    return app


def create_app_from_environment() -> FastAPI:
    """The app factory each worker of ``hanami-console serve`` imports: settings from the environment."""
    app = create_app(Settings())
    settle_heap()
    return app


def settle_heap() -> None:
    """For a process that serves: collect once, then freeze what start-up made (modules, routes, the
    templates' environment) so the cyclic collector no longer walks it. A full collection then visits
    only what requests made: under 200 sessions such pauses were 30-300 ms per worker, the slowest
    1 % of page views. Not for tests, which build many apps in one process."""
    gc.collect()
    gc.freeze()


class RootPathMiddleware:
    """Serve under a URL prefix, whether or not the proxy strips it from the path.

    Starlette matches routes on the path minus ``root_path`` and builds every URL with it.
    """

    def __init__(self, app: ASGIApp, root_path: str) -> None:
        self.app = app
        self.root_path = root_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["root_path"] = self.root_path
        await self.app(scope, receive, send)
