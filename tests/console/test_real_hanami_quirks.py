"""The console against the emulator in ``faithful`` mode: it never triggers a crash of the real Hanami
and copes with every quirk of contract §12.

In faithful mode the emulator behaves like the real backend where that one crashes or hangs: it closes
the TCP connection without a reply (after which a real server would be down for everyone), and a
cluster websocket never answers a message for an unknown brick (Q-W1: a real worker thread lost for
good). A crash is detected three ways after every step of the tour:

* the emulator's own report: it logs every crash case (``backend crash case: …``, ``… (Q-W2)``,
  ``… (Q-W1)``) and the tour watches those loggers;
* the console's ``hanami_console_backend_errors_total{error="BackendUnavailable"}`` counter, which
  grows whenever a backend call ended without a reply;
* the emulator still answers a plain request.

The tour (every page, every POST route, the quirks the console must steer clear of) runs on the
faithful emulator and on the real Hanami server (``backend``): there a crash would end the process,
which the same probe and counter see (and the suite's guard restarts it). The tests that make the
backend crash or hang on purpose, or that watch for a Q-W1 hang (invisible on the real server until
its worker threads run out), stay on the faithful emulator.

Every page is also checked for the console's own failure pages (500 "Something went wrong", 502, 503)
and for a Python traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import uuid as uuidlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.responses import Response
from fastapi.routing import APIRoute

from tests.conftest import (
    ADMIN_ID,
    ADMIN_NAME,
    ADMIN_PASSWORD,
    CRASH_BACKENDS,
    Backend,
    ConsoleServer,
    console_settings,
    csrf_from,
    faithful_or_real,
    login,
    wait_for,
)
from tests.console.effects import BackendCalls
from webconsole.app import create_app
from webconsole.emulator import EmulatorConfig, EmulatorServer
from webconsole.hanami.client import HanamiAPI, HanamiClient
from webconsole.hanami.errors import BackendUnavailable, BadRequest, Conflict, HanamiError, NotFound, error_for_status
from webconsole.protocol.template import EXAMPLE_MNIST_TEMPLATE, TemplateError, parse_template, template_error_body
from webconsole.web.core.deps import SESSION_COOKIE, Hanami

CRASH_LOGGERS = ("webconsole.emulator.pipeline", "webconsole.emulator.websocket")
CRASH_MARKERS = ("backend crash case", "(Q-W1)", "(Q-W2)")
UNAVAILABLE = re.compile(
    r'^hanami_console_backend_errors_total\{[^}]*error="BackendUnavailable"[^}]*\} ([0-9.e+]+)$', re.M
)
FAILURE_TITLES = ("Something went wrong", "The backend failed", "Hanami cannot be reached")
PASSWORD = "member-password-1"


# -- crash detection ------------------------------------------------------------------------------


class CrashWatch(logging.Handler):
    """Collects the emulator's reports of the places where the real Hanami crashes or hangs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.events: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(marker in message for marker in CRASH_MARKERS):
            self.events.append(message)


@pytest.fixture(scope="module")
def crash_watch() -> Iterator[CrashWatch]:
    watch = CrashWatch()
    saved = []
    for name in CRASH_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        if logger.getEffectiveLevel() > logging.WARNING:
            logger.setLevel(logging.WARNING)
        logger.addHandler(watch)
    yield watch
    for logger, level in saved:
        logger.removeHandler(watch)
        logger.setLevel(level)


class Tour:
    """One console (in-process) bound to a faithful emulator, and the checks made after every step."""

    def __init__(self, app: Any, emulator: Any, watch: CrashWatch) -> None:
        self.app = app
        self.emulator = emulator
        self.watch = watch
        self.transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.probe = httpx.AsyncClient(timeout=10)
        self.seen_events = 0
        self.unavailable = 0.0
        self.steps = 0

    def browser(self) -> httpx.AsyncClient:
        """A new browser (own cookie jar) on this console."""
        return httpx.AsyncClient(transport=self.transport, base_url="http://console.test", timeout=60)

    async def metrics_unavailable(self) -> float:
        async with self.browser() as client:
            text = (await client.get("/metrics")).text
        return sum(float(value) for value in UNAVAILABLE.findall(text))

    async def reset(self) -> None:
        self.seen_events = len(self.watch.events)
        self.unavailable = await self.metrics_unavailable()

    async def assert_backend_alive(self, what: str) -> None:
        """No crash case was hit since the last check, and the emulator still answers."""
        events = self.watch.events[self.seen_events:]
        assert not events, f"{what}: the console made the backend crash/hang: {events}"
        unavailable = await self.metrics_unavailable()
        assert unavailable == self.unavailable, (
            f"{what}: a backend call ended without a reply ({unavailable - self.unavailable:g} more)"
        )
        answer = await self.probe.get(f"{self.emulator.url}/control/v1/auth")
        assert answer.status_code == 401 and answer.text == "Failed to validate JWT-Token", what

    def assert_page(self, response: httpx.Response, what: str, expect: tuple[int, ...] | int = 200) -> None:
        """A page the console produced itself: no traceback, no failure page, the expected status."""
        expected = (expect,) if isinstance(expect, int) else expect
        text = response.text
        assert "Traceback (most recent call last)" not in text, f"{what}: traceback in the page"
        assert not re.search(r'File "[^"]+\.py", line \d+', text), f"{what}: Python frame in the page"
        for title in FAILURE_TITLES:
            assert title not in text, f"{what}: failure page '{title}' ({response.status_code})"
        assert response.status_code not in (500, 502, 503), f"{what}: {response.status_code}"
        assert response.status_code in expected, (
            f"{what}: {response.status_code} not in {expected}\n{text[:1500]}"
        )

    async def step(self, what: str, call: Any, expect: tuple[int, ...] | int = 200) -> httpx.Response:
        response = await call
        self.steps += 1
        self.assert_page(response, what, expect)
        await self.assert_backend_alive(what)
        return response

    async def aclose(self) -> None:
        await self.probe.aclose()


@dataclass
class World:
    """What the tour walks over (created once per module)."""

    tag: str
    project: str
    member: str
    admin_cluster: str = ""
    member_cluster: str = ""
    admin_dataset: str = ""
    member_dataset: str = ""
    unfinished_dataset: str = ""  # the member's upload, initialised but never finalised
    checkpoint: str = ""
    result: str = ""
    task: str = ""
    upload_id: str = ""
    run: str = ""  # a one-pass train-and-evaluate run of the admin's cluster


@asynccontextmanager
async def new_tour(emulator: Any, watch: CrashWatch) -> AsyncIterator[Tour]:
    app = create_app(console_settings(emulator.url))
    async with app.router.lifespan_context(app):
        tour = Tour(app, emulator, watch)
        await tour.reset()
        yield tour
        await tour.aclose()


@pytest.fixture(scope="module", params=CRASH_BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """The tour's Hanami: the faithful emulator, then the real server."""
    return faithful_or_real(request)


@pytest.fixture
async def own_tour(backend: Backend, crash_watch) -> AsyncIterator[Tour]:
    """A console of its own for a test that adds routes: the shared tour's route table stays the
    console's, whatever order the tests run in."""
    async with new_tour(backend.server, crash_watch) as tour:
        yield tour


@pytest.fixture(scope="module")
async def tour(backend: Backend, crash_watch) -> AsyncIterator[Tour]:
    async with new_tour(backend.server, crash_watch) as tour:
        yield tour


async def hanami_login(url: str, user: str, password: str) -> tuple[HanamiClient, HanamiAPI]:
    client = HanamiClient(url)
    return client, client.api((await client.login(user, password)).token)


def location_uuid(response: httpx.Response) -> str:
    match = re.search(r"/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$",
                      response.headers.get("location", ""))
    assert match, response.headers.get("location")
    return match.group(1)


@pytest.fixture(scope="module")
async def world(tour: Tour, demo_files) -> AsyncIterator[World]:
    """A project with a member; clusters, datasets, a checkpoint, a result and a task — created
    through the console wherever the console offers it, every step checked like the rest."""
    tag = secrets.token_hex(3)
    world = World(tag=tag, project=f"quirks_{tag}", member=f"quirk@member{tag}")
    admin_client, admin = await hanami_login(tour.emulator.url, ADMIN_ID, ADMIN_PASSWORD)
    await admin.create_project(world.project, f"Quirks {tag}")
    await admin.create_user(world.member, f"Quirk member {tag}", PASSWORD, False)
    await admin.assign_project(world.member, world.project, "member", False)
    member_client, member = await hanami_login(tour.emulator.url, world.member, PASSWORD)
    try:
        async with tour.browser() as browser:
            csrf = await login(browser, ADMIN_ID, ADMIN_PASSWORD)
            created = await tour.step("create cluster", browser.post("/clusters", data={
                "csrf_token": csrf, "name": f"quirks admin {tag}", "template": EXAMPLE_MNIST_TEMPLATE}), 303)
            world.admin_cluster = location_uuid(created)
            # an upload through the console's own form (MNIST pair, small)
            with open(demo_files.small_images, "rb") as images, open(demo_files.small_labels, "rb") as labels:
                started = await tour.step("upload form", browser.post(
                    "/datasets/upload",
                    data={"csrf_token": csrf, "kind": "mnist", "name": f"quirks digits {tag}"},
                    files={"images": ("images.idx", images.read()), "labels": ("labels.idx", labels.read())},
                ), 303)
            world.upload_id = started.headers["location"].rsplit("/", 1)[1]

            async def uploaded() -> str | None:
                status = await browser.get(started.headers["location"])
                tour.assert_page(status, "upload status")
                assert 'data-phase="failed"' not in status.text and 'data-phase="lost"' not in status.text
                record = (await admin.list_datasets()).find("name", f"quirks digits {tag}")
                return record["uuid"] if record and 'data-phase="done"' in status.text else None

            world.admin_dataset = await wait_for(uploaded, timeout=60)
            await tour.assert_backend_alive("upload")
            saved = await tour.step("save checkpoint", browser.post(
                f"/clusters/{world.admin_cluster}/save",
                data={"csrf_token": csrf, "checkpoint_name": f"quirks point {tag}"}), 303)
            assert saved.headers["location"].endswith(world.admin_cluster)
            queued = await tour.step("request task", browser.post("/tasks/new", data={
                "csrf_token": csrf, "name": f"quirks request {tag}", "type": "request",
                "cluster_uuid": world.admin_cluster, "dataset_uuid": world.admin_dataset}), 303)
            assert queued.status_code == 303

            async def result_listed() -> str | None:
                record = (await admin.list_results()).find("name", f"quirks request {tag}")
                return record["uuid"] if record else None

            world.result = world.task = await wait_for(result_listed, timeout=60)

            async def checkpoint_listed() -> str | None:
                record = (await admin.list_checkpoints()).find("name", f"quirks point {tag}")
                return record["uuid"] if record else None

            world.checkpoint = await wait_for(checkpoint_listed, timeout=60)
            form = await tour.step("run form", browser.get(f"/clusters/{world.admin_cluster}/runs/new"))
            started = await tour.step("run", browser.post(f"/clusters/{world.admin_cluster}/runs", data={
                "csrf_token": csrf, "run_id": re.search(r'name="run_id" value="([^"]+)"', form.text).group(1),
                "name": f"quirks run {tag}", "train_uuid": world.admin_dataset, "test_uuid": world.admin_dataset,
                "passes": "1"}), 303)
            world.run = started.headers["location"].rsplit("/", 1)[1]
        async with tour.browser() as browser:
            csrf = await login(browser, world.member, PASSWORD)
            created = await tour.step("member creates cluster", browser.post("/clusters", data={
                "csrf_token": csrf, "name": f"quirks member {tag}", "template": EXAMPLE_MNIST_TEMPLATE}), 303)
            world.member_cluster = location_uuid(created)
        world.member_dataset = await member.upload_mnist(
            f"quirks member digits {tag}", demo_files.small_images, demo_files.small_labels)
        # an upload that was initialised but never finalised: listed, GET dataset answers 500 (Q-D7),
        # its temp files exist (progress by anyone else would crash the real backend, Q-C4)
        init = await member._call("POST", "v1/csv/dataset",  # noqa: SLF001 - no public "init only" call
                                  body={"name": f"quirks unfinished {tag}", "input_data_size": 1000})
        world.unfinished_dataset = init["uuid"]
        await tour.assert_backend_alive("set-up")
        yield world
    finally:
        for cluster in (world.admin_cluster, world.member_cluster):
            if cluster:
                try:
                    await admin.delete_cluster(cluster)
                except NotFound:
                    pass
        for uuid in (world.admin_dataset, world.member_dataset, world.unfinished_dataset):
            if uuid:
                try:
                    await admin.delete_dataset(uuid)
                except NotFound:
                    pass
        for call, uuid in ((admin.delete_checkpoint, world.checkpoint), (admin.delete_result, world.result)):
            if uuid:
                try:
                    await call(uuid)
                except NotFound:
                    pass
        await admin.delete_user(world.member)
        await admin.delete_project(world.project)
        await member_client.aclose()
        await admin_client.aclose()


@asynccontextmanager
async def logged_in(tour: Tour, user: str, password: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A browser logged in through the login form, and its CSRF token."""
    async with tour.browser() as browser:
        yield browser, await login(browser, user, password)


async def test_the_crash_detector_sees_a_crash(emulator_faithful, crash_watch) -> None:
    """The detector itself: a call the console never makes (page beyond 32 bits, Q-C6, sent past the
    client's guard) is a crash in faithful mode, and all three signals see it."""
    async with new_tour(emulator_faithful, crash_watch) as tour:
        await _crash_and_detect(tour)


async def _crash_and_detect(tour: Tour) -> None:
    await tour.reset()
    hanami = tour.app.state.hanami
    token = (await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token
    with pytest.raises(BackendUnavailable):
        await hanami.request("GET", "v1/audit_log", token=token, query={"page": 99999999999})
    with pytest.raises(AssertionError, match="crash"):
        await tour.assert_backend_alive("deliberate crash")
    tour.seen_events = len(tour.watch.events)
    with pytest.raises(AssertionError, match="without a reply"):
        await tour.assert_backend_alive("deliberate crash")
    await tour.reset()
    await tour.assert_backend_alive("after the deliberate crash")  # the emulator itself lives on


# -- every GET page, for an admin and a member ---------------------------------------------------


def get_routes(app: Any) -> list[APIRoute]:
    """Every GET route of the console (inside included routers too)."""
    found: list[APIRoute] = []

    def walk(routes: list[Any]) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                if "GET" in route.methods:
                    found.append(route)
                continue
            owner = getattr(route, "original_router", None) or route
            children = getattr(owner, "routes", None)
            if children and not getattr(route, "app", None).__class__.__name__ == "StaticFiles":
                walk(list(children))

    walk(list(app.routes))
    return found


UUID_OWNER = {"datasets": "dataset", "clusters": "cluster", "checkpoints": "checkpoint", "results": "result"}


def fill(route: APIRoute, world: World, who: str) -> str:
    """The route's path with real ids (``who`` = "admin" or "member")."""
    path = route.path
    first = path.strip("/").split("/", 1)[0]
    values: dict[str, str] = {
        "cluster_uuid": world.admin_cluster if who == "admin" else world.member_cluster,
        "task_uuid": world.task,
        "user_id": world.member,
        "project_id": world.project,
        "upload_id": world.upload_id,
        "run_id": world.run,
    }
    owner = UUID_OWNER.get(first)
    if "{uuid}" in path:
        assert owner, f"add the owner of {{uuid}} in {path} to UUID_OWNER"
        values["uuid"] = {
            "dataset": world.admin_dataset if who == "admin" else world.member_dataset,
            "cluster": values["cluster_uuid"],
            "checkpoint": world.checkpoint,
            "result": world.result,
        }[owner]
    names = re.findall(r"\{(\w+)\}", path)
    unknown = [name for name in names if name not in values]
    assert not unknown, f"route {route.name} ({path}) has path parameters the tour does not know: {unknown}"
    for name in names:
        path = path.replace("{" + name + "}", values[name])
    return path


def bad_values(name: str, good: str) -> list[tuple[str, str, tuple[int, ...]]]:
    """Bad values for one path parameter: (label, value, accepted statuses)."""
    if name in ("uuid", "cluster_uuid", "task_uuid"):
        return [
            ("unknown uuid", str(uuidlib.uuid4()), (404,)),
            ("upper-cased uuid (Q-G7)", good.upper(), (404,)),
            ("malformed uuid", "not-a-uuid", (400, 404)),
            ("boolean word (Q-G4)", "True", (400, 404)),
            ("dot-dot (Q-G5)", "a..b", (400, 404)),
        ]
    if name in ("user_id", "project_id"):
        return [
            ("unknown id", f"nobody{secrets.token_hex(3)}", (404,)),
            ("boolean word (Q-G4)", "True", (400, 404, 422)),
            ("boolean word (Q-G4)", "false", (400, 404, 422)),
            ("dot-dot (Q-G5)", "ab..cd", (400, 404, 422)),
            ("at sign (Q-G1)", f"nobody@{secrets.token_hex(3)}", (400, 404, 422)),
            ("too short", "ab", (400, 404, 422)),
        ]
    return [("unknown id", secrets.token_urlsafe(12), (404,)), ("dot-dot", "a..b", (404,))]


ADMIN_ONLY = re.compile(r"^/(users|projects|errors)\b")
SKIP = {"metrics", "healthz", "readyz", "login_form"}


async def walk_pages(tour: Tour, world: World, who: str, browser: httpx.AsyncClient) -> int:
    pages = 0
    for route in get_routes(tour.app):
        if route.name in SKIP:
            continue
        path = fill(route, world, who)
        member_refused = who == "member" and ADMIN_ONLY.match(route.path)
        if route.name == "datasets_upload_status":
            expect: tuple[int, ...] = (200, 404) if who == "admin" else (404,)  # an upload belongs to its session
        elif who == "admin":
            expect = (200,)
        elif member_refused:
            expect = (403,)
        elif re.search(r"\{(task_uuid|upload_id|run_id)\}", route.path) or (
                "{uuid}" in route.path and UUID_OWNER[route.path.strip("/").split("/", 1)[0]] in ("checkpoint", "result")):
            # a member sees only the project's resources: the admin's task, checkpoint, result, run and
            # the admin's upload are invisible (Q-W3 aside, Hanami hides them): 404, never a crash
            expect = (404,)
        else:
            expect = (200,)
        response = await tour.step(f"{who} GET {route.name} {path}", browser.get(path), expect)
        pages += 1
        if response.headers.get("content-type", "").startswith("text/html"):
            await tour.step(f"{who} htmx GET {route.name}", browser.get(path, headers={"HX-Request": "true"}),
                            expect)
        for name in re.findall(r"\{(\w+)\}", route.path):
            for label, value, accepted in bad_values(name, good=_param_value(route.path, path, name)):
                bad_path = _with_param(route.path, path, name, value)
                if member_refused:
                    accepted = (403,)
                elif route.name == "users_remove_project_confirm" and name == "project_id":
                    accepted = (200, *accepted)  # a confirmation page only; the POST gets Hanami's 404
                await tour.step(f"{who} GET {route.name} with {label} for {name}: {bad_path}",
                                browser.get(bad_path), accepted)
                pages += 1
    return pages


def _param_value(template: str, path: str, name: str) -> str:
    pattern = "^" + re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(template)) + "$"
    match = re.match(pattern, path)
    assert match, (template, path)
    return match.group(name)


def _with_param(template: str, path: str, name: str, value: str) -> str:
    pattern = "^" + re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(template)) + "$"
    match = re.match(pattern, path)
    assert match
    start, end = match.span(name)
    return path[:start] + value + path[end:]


async def test_every_page_as_admin_and_member(tour: Tour, world: World) -> None:
    """Every GET route (from the app's own route table) with real ids, then unknown, upper-cased and
    malformed ids, as an admin and as a member: always a page of the console, never a crash."""
    await tour.reset()
    counts = {}
    for who, user, password in (("admin", ADMIN_ID, ADMIN_PASSWORD), ("member", world.member, PASSWORD)):
        async with logged_in(tour, user, password) as (browser, _):
            counts[who] = await walk_pages(tour, world, who, browser)
            # and every link of the navigation
            home = await tour.step(f"{who} home", browser.get("/"))
            links = sorted(set(re.findall(r'<a [^>]*href="(/[^"#?]*)', home.text)))
            assert links, "the home page has no links"
            for link in links:
                if link.startswith("/static"):
                    continue
                await tour.step(f"{who} nav {link}", browser.get(link), (200, 403) if who == "member" else 200)
    assert counts["admin"] > 60 and counts["member"] > 60, counts


def post_routes(app: Any) -> list[APIRoute]:
    found: list[APIRoute] = []

    def walk(routes: list[Any]) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                if "POST" in route.methods:
                    found.append(route)
                continue
            owner = getattr(route, "original_router", None) or route
            if getattr(owner, "routes", None):
                walk(list(owner.routes))

    walk(list(app.routes))
    return found


DESTRUCTIVE = re.compile(r"delete|remove|cancel")
POST_SKIP = {"login", "logout"}


async def test_every_post_route_with_bad_ids(tour: Tour, world: World) -> None:
    """Every POST route (the app's own table) with unknown, upper-cased and malformed ids in the path, and
    with unknown uuids / boolean words in every form field the console might forward: the console answers
    with its own refusal (or a redirect with a message), and Hanami never sees an unlisted dataset, an
    unknown checkpoint (Q-K1), a boolean word (Q-G4) or anything it would crash on."""
    await tour.reset()
    unknown = str(uuidlib.uuid4())
    fields = {"dataset_uuid": unknown, "cluster_uuid": unknown, "checkpoint_uuid": unknown,
              "host_uuid": unknown, "result_uuid": unknown, "name": "True", "checkpoint_name": "false",
              "type": "request", "project_id": "True", "role": "false", "id": "True", "kind": "csv",
              "template": EXAMPLE_MNIST_TEMPLATE, "repeat": "1", "password": PASSWORD}
    swept = 0
    for who, user, password in (("admin", ADMIN_ID, ADMIN_PASSWORD), ("member", world.member, PASSWORD)):
        async with logged_in(tour, user, password) as (browser, csrf):
            for route in post_routes(tour.app):
                if route.name in POST_SKIP:
                    continue
                real = fill(route, world, who)
                targets = []
                for name in re.findall(r"\{(\w+)\}", route.path):
                    good = _param_value(route.path, real, name)
                    for label, value, _ in bad_values(name, good):
                        targets.append((f"{label} for {name}", _with_param(route.path, real, name, value)))
                if not DESTRUCTIVE.search(route.name or ""):
                    targets.append(("real ids, bad fields", real))
                for label, path in targets:
                    answer = await tour.step(f"{who} POST {route.name} ({label}) {path}", browser.post(
                        path, data={"csrf_token": csrf, **fields}), (200, 204, 303, 400, 403, 404, 409, 413, 422))
                    swept += 1
                    if answer.status_code == 303:
                        await tour.step(f"{who} after POST {route.name} ({label})",
                                        browser.get(answer.headers["location"]), (200, 403, 404))
    assert swept > 50, swept
    # nothing was created with the boolean words or the unknown uuids
    client, admin = await hanami_login(tour.emulator.url, ADMIN_ID, ADMIN_PASSWORD)
    async with client:
        for table in (await admin.list_clusters(), await admin.list_users(), await admin.list_projects()):
            for record in table.records():
                assert not {record.get("id"), record.get("name")} & {True, False}, record


# -- Q-C2 / Q-G7: dataset uuids that Hanami does not list never reach it -------------------------


async def test_unlisted_dataset_uuids_are_never_forwarded(tour: Tour, world: World) -> None:
    """Q-C2: GET dataset, POST task and POST dataset/check with an unknown or invisible dataset uuid
    kill the real backend; Q-G7: an upper-cased uuid passes Hanami's regex but matches nothing."""
    await tour.reset()
    unknown = str(uuidlib.uuid4())
    calls = BackendCalls(tour.app)  # never sent: observed, not inferred from the status codes
    forwarded = ("GET v1/dataset", "DELETE v1/dataset", "POST v1/task", "POST v1/dataset/check")
    async with logged_in(tour, world.member, PASSWORD) as (browser, csrf):
        for label, uuid in (("unknown", unknown), ("upper-cased", world.member_dataset.upper()),
                            ("the admin's (invisible)", world.admin_dataset)):
            for path in (f"/datasets/{uuid}", f"/datasets/{uuid}/delete"):
                await tour.step(f"member GET {path} ({label})", browser.get(path), 404)
            await tour.step(f"member delete {label} dataset", browser.post(
                f"/datasets/{uuid}/delete", data={"csrf_token": csrf}), 404)
            await tour.step(f"member task with {label} dataset", browser.post("/tasks/new", data={
                "csrf_token": csrf, "name": "never sent", "type": "train", "cluster_uuid": world.member_cluster,
                "dataset_uuid": uuid}), 422)
            await tour.step(f"member task form prefilled with {label} dataset",
                            browser.get(f"/tasks/new?cluster_uuid={world.member_cluster}&dataset_uuid={uuid}"),
                            (200, 404, 422))
        assert [call for call in calls.calls if call in forwarded] == []
        # the member's own dataset still works: the refusals were the console's, not Hanami's
        own = await tour.step("member dataset detail", browser.get(f"/datasets/{world.member_dataset}"))
        assert world.member_dataset in own.text
        # its details are read at most once (they never change: the console keeps them)
        assert calls.count("GET v1/dataset") <= 1
    calls.calls.clear()
    async with logged_in(tour, ADMIN_ID, ADMIN_PASSWORD) as (browser, csrf):
        for label, uuid in (("unknown", unknown), ("upper-cased", world.admin_dataset.upper())):
            await tour.step(f"admin check against {label} dataset", browser.post(
                f"/results/{world.result}/check", data={"csrf_token": csrf, "dataset_uuid": uuid}), 422)
            await tour.step(f"admin task with {label} dataset", browser.post("/tasks/new", data={
                "csrf_token": csrf, "name": "never sent", "type": "request", "cluster_uuid": world.admin_cluster,
                "dataset_uuid": uuid}), 422)
    calls.stop()
    assert [call for call in calls.calls if call in forwarded] == []
    # the client itself refuses, whoever calls it
    client, api = await hanami_login(tour.emulator.url, ADMIN_ID, ADMIN_PASSWORD)
    async with client:
        for uuid in (unknown, world.admin_dataset.upper()):
            with pytest.raises(NotFound):
                await api.get_dataset(uuid)
            with pytest.raises(NotFound):
                await api.check_dataset(world.result, uuid)
            with pytest.raises(NotFound):
                await api.create_task("never sent", "request", world.admin_cluster, uuid)
    await tour.assert_backend_alive("client guards")


# -- Q-D7, Q-C4, Q-D4: an upload that never finished -----------------------------------------------


async def test_unfinished_upload(tour: Tour, world: World) -> None:
    """Q-D7: GET dataset answers 500 until the upload is finalised, although the dataset is listed: its
    pages still render. Q-C4: nobody but the uploader may ask for its progress. Q-D4: an accuracy check
    against it answers ``{}``: shown as "could not be read"."""
    await tour.reset()
    uuid = world.unfinished_dataset
    for user, password in ((world.member, PASSWORD), (ADMIN_ID, ADMIN_PASSWORD)):
        async with logged_in(tour, user, password) as (browser, _):
            listing = await tour.step(f"{user} dataset list with an unfinished upload", browser.get("/datasets"))
            assert f"quirks unfinished {world.tag}" in listing.text
            await tour.step(f"{user} unfinished dataset list (htmx)",
                            browser.get("/datasets?sort=lines", headers={"HX-Request": "true"}))
            page = await tour.step(f"{user} unfinished dataset detail (Q-D7)", browser.get(f"/datasets/{uuid}"))
            assert f"quirks unfinished {world.tag}" in page.text
            await tour.step(f"{user} unfinished dataset delete page", browser.get(f"/datasets/{uuid}/delete"))
            await tour.step(f"{user} task form", browser.get("/tasks/new"))
            await tour.step(f"{user} home", browser.get("/"))
    # Q-C4: the admin sees the dataset but must not ask for its progress (the member uploads it)
    client, api = await hanami_login(tour.emulator.url, ADMIN_ID, ADMIN_PASSWORD)
    async with client:
        with pytest.raises(Conflict):
            await api.dataset_progress(uuid)
    await tour.assert_backend_alive("progress of someone else's upload (Q-C4)")
    # the console's upload status pages belong to their uploader
    async with logged_in(tour, world.member, PASSWORD) as (browser, _):
        await tour.step("member GET the admin's upload status", browser.get(f"/datasets/uploads/{world.upload_id}"),
                        404)
    # Q-D4: check a result against the unreadable dataset — as the admin, who sees both
    async with logged_in(tour, ADMIN_ID, ADMIN_PASSWORD) as (browser, csrf):
        checked = await tour.step("check against an unfinished dataset (Q-D4)", browser.post(
            f"/results/{world.result}/check", data={"csrf_token": csrf, "dataset_uuid": uuid},
            headers={"HX-Request": "true"}))
        assert "could not be read" in checked.text
        real = await tour.step("check against a real dataset", browser.post(
            f"/results/{world.result}/check", data={"csrf_token": csrf, "dataset_uuid": world.admin_dataset},
            headers={"HX-Request": "true"}))
        assert "Accuracy against" in real.text


async def test_csv_name_reuse_is_refused(tour: Tour, world: World, demo_files) -> None:
    """Q-D3: CSV data is stored as <name>_csv_<owner>: a second CSV dataset of the same name and owner
    would overwrite the first (and deleting one deletes both). The upload form refuses it."""
    await tour.reset()
    name = f"quirks csv {world.tag}"
    csv = Path(demo_files.csv).read_bytes()
    client, member = await hanami_login(tour.emulator.url, world.member, PASSWORD)
    async with client:
        first = await member.upload_csv(name, demo_files.csv)
        try:
            async with logged_in(tour, world.member, PASSWORD) as (browser, csrf):
                again = await tour.step("second CSV dataset of the same name (Q-D3)", browser.post(
                    "/datasets/upload", data={"csrf_token": csrf, "kind": "csv", "name": name},
                    files={"csv": ("data.csv", csv)}), 422)
                assert "overwritten" in again.text
                for word in ("True", "false"):
                    boolean = await tour.step(f"CSV dataset named {word} (Q-G4)", browser.post(
                        "/datasets/upload", data={"csrf_token": csrf, "kind": "csv", "name": word},
                        files={"csv": ("data.csv", csv)}), 422)
                    assert 'id="name-error"' in boolean.text, boolean.text[:2000]
                    assert "Hanami cannot store a dataset named true or false" in boolean.text
                    names = [r["name"] for r in (await member.list_datasets()).records()]
                    assert not any(isinstance(n, bool) or n == word for n in names), names
                listed = await tour.step("CSV dataset detail (Q-D1)", browser.get(f"/datasets/{first}"))
                assert name in listed.text
            with pytest.raises(Conflict):
                await member.upload_csv(name, demo_files.csv)
        finally:
            await member.delete_dataset(first)
    await tour.assert_backend_alive("CSV name reuse")


# -- clusters, checkpoints, tasks ---------------------------------------------------------------------


async def test_cluster_checkpoint_and_task_actions(tour: Tour, world: World) -> None:
    """Create/delete a cluster; boolean names (Q-G4); restore of an unknown checkpoint (Q-K1); a deleted
    task's page (Q-T1); deleting an unknown task (Q-T2)."""
    await tour.reset()
    tag = secrets.token_hex(3)
    for who, user, password in (("admin", ADMIN_ID, ADMIN_PASSWORD), ("member", world.member, PASSWORD)):
        dataset = world.admin_dataset if who == "admin" else world.member_dataset
        async with logged_in(tour, user, password) as (browser, csrf):
            for name in ("True", "false", "FALSE"):
                refused = await tour.step(f"{who} cluster named {name} (Q-G4)", browser.post("/clusters", data={
                    "csrf_token": csrf, "name": name, "template": EXAMPLE_MNIST_TEMPLATE}), 422)
                # the client's guard (Q-G4): Hanami never sees the name
                assert "Hanami would store it as a boolean" in refused.text, refused.text[:2000]
            created = await tour.step(f"{who} create cluster", browser.post("/clusters", data={
                "csrf_token": csrf, "name": f"quirk actions {tag}", "template": EXAMPLE_MNIST_TEMPLATE}), 303)
            cluster = location_uuid(created)
            detail = await tour.step(f"{who} cluster page", browser.get(f"/clusters/{cluster}"))
            assert f"quirk actions {tag}" in detail.text
            await tour.step(f"{who} duplicate cluster name", browser.post("/clusters", data={
                "csrf_token": csrf, "name": f"quirk actions {tag}", "template": EXAMPLE_MNIST_TEMPLATE}), 422)
            await tour.step(f"{who} checkpoint named True (Q-G4)", browser.post(f"/clusters/{cluster}/save", data={
                "csrf_token": csrf, "checkpoint_name": "True"}), 422)
            # Q-K1: Hanami would accept any checkpoint uuid and then silently do nothing
            for label, checkpoint in (("unknown", str(uuidlib.uuid4())), ("upper-cased", world.checkpoint.upper()),
                                      ("malformed", "nope"), ("empty", "")):
                await tour.step(f"{who} restore {label} checkpoint (Q-K1)", browser.post(
                    f"/clusters/{cluster}/restore", data={"csrf_token": csrf, "checkpoint_uuid": checkpoint}), 422)
            await tour.step(f"{who} restore into unknown cluster", browser.post(
                f"/checkpoints/{world.checkpoint}/restore",
                data={"csrf_token": csrf, "cluster_uuid": str(uuidlib.uuid4())}), (404, 422))
            await tour.step(f"{who} switch to unknown host", browser.post(
                f"/clusters/{cluster}/host", data={"csrf_token": csrf, "host_uuid": str(uuidlib.uuid4())}), 422)
            await tour.step(f"{who} task named True (Q-G4)", browser.post("/tasks/new", data={
                "csrf_token": csrf, "name": "True", "type": "train", "cluster_uuid": cluster,
                "dataset_uuid": dataset}), 422)
            # a queued task, deleted, then its page and a poll of it (Q-T1: GET task would be 500)
            client, api = await hanami_login(tour.emulator.url, user, password)
            async with client:
                await api.set_mode(cluster, "DIRECT")  # tasks stay queued while in DIRECT mode
                queued = await tour.step(f"{who} train task", browser.post("/tasks/new", data={
                    "csrf_token": csrf, "name": f"quirk train {tag}", "type": "train", "cluster_uuid": cluster,
                    "dataset_uuid": dataset}), 303)
                assert queued.status_code == 303
                task = (await api.list_tasks(cluster)).column("uuid")[0]
                base = f"/clusters/{cluster}/tasks"
                await tour.step(f"{who} task page", browser.get(f"{base}/{task}"))
                await tour.step(f"{who} delete task", browser.post(f"{base}/{task}/delete",
                                                                   data={"csrf_token": csrf}), 303)
                await tour.step(f"{who} deleted task page (Q-T1)", browser.get(f"{base}/{task}"), 404)
                gone = await tour.step(f"{who} poll of the deleted task (Q-T1)", browser.get(
                    f"{base}/{task}", headers={"HX-Request": "true", "X-Console-Poll": "1"}), 286)
                assert 'data-polling="off"' in gone.text and "hx-trigger" not in gone.text
                await tour.step(f"{who} task list after delete", browser.get(base, headers={
                    "HX-Request": "true", "X-Console-Poll": "1"}), (200, 286))
                # Q-T2: an unknown task to delete
                # Q-T2: an unknown task to delete (the console answers from the list: "no longer listed")
                for label, unknown in (("unknown", str(uuidlib.uuid4())), ("deleted", task)):
                    answer = await tour.step(f"{who} delete {label} task (Q-T2)", browser.post(
                        f"{base}/{unknown}/delete", data={"csrf_token": csrf}), (303, 404))
                    if answer.status_code == 303:
                        after = await tour.step(f"{who} after deleting {label} task",
                                                browser.get(answer.headers["location"]))
                        assert "no longer listed" in after.text
                await tour.step(f"{who} delete a task of an unknown cluster", browser.post(
                    f"/clusters/{uuidlib.uuid4()}/tasks/{task}/delete", data={"csrf_token": csrf}), 404)
                await api.set_mode(cluster, "TASK")
            # checkpoint save, then delete the cluster; pages of the deleted cluster are 404s
            await tour.step(f"{who} save checkpoint", browser.post(f"/clusters/{cluster}/save", data={
                "csrf_token": csrf, "checkpoint_name": f"quirk save {tag}"}), 303)
            await tour.step(f"{who} delete page", browser.get(f"/clusters/{cluster}/delete"))
            await tour.step(f"{who} delete cluster", browser.post(f"/clusters/{cluster}/delete",
                                                                  data={"csrf_token": csrf}), 303)
            for path in (f"/clusters/{cluster}", f"/clusters/{cluster}/tasks", f"/clusters/{cluster}/direct"):
                await tour.step(f"{who} deleted cluster {path}", browser.get(path), 404)
            # a task list still polling after its cluster went away: answered, and told to stop (286)
            # or refused (404); never a failure page
            await tour.step(f"{who} poll of a deleted cluster's tasks", browser.get(
                f"/clusters/{cluster}/tasks", headers={"HX-Request": "true", "X-Console-Poll": "1"}), (286, 404))
            await tour.step(f"{who} delete deleted cluster", browser.post(f"/clusters/{cluster}/delete",
                                                                          data={"csrf_token": csrf}), 404)
            await tour.step(f"{who} save on deleted cluster", browser.post(f"/clusters/{cluster}/save", data={
                "csrf_token": csrf, "checkpoint_name": "after delete"}), 404)
    # the checkpoints the saves queued are never written (the clusters went first): nothing to clean up,
    # unless the save ran before the delete
    client, api = await hanami_login(tour.emulator.url, ADMIN_ID, ADMIN_PASSWORD)
    async with client:
        for record in (await api.list_checkpoints()).records():
            if record.get("name") == f"quirk save {tag}":
                await api.delete_checkpoint(record["uuid"])


async def test_restore_a_listed_checkpoint(tour: Tour, world: World) -> None:
    """The restore that works: from the cluster page and from the checkpoint page."""
    await tour.reset()
    async with logged_in(tour, ADMIN_ID, ADMIN_PASSWORD) as (browser, csrf):
        await tour.step("restore from cluster page", browser.post(
            f"/clusters/{world.admin_cluster}/restore",
            data={"csrf_token": csrf, "checkpoint_uuid": world.checkpoint}), 303)
        await tour.step("restore from checkpoint page", browser.post(
            f"/checkpoints/{world.checkpoint}/restore",
            data={"csrf_token": csrf, "cluster_uuid": world.admin_cluster}), 303)
        await tour.step("cluster page after restore", browser.get(f"/clusters/{world.admin_cluster}"))


# -- users and projects: Q-G1, Q-G4, Q-U3 ---------------------------------------------------------------


async def test_users_and_projects(tour: Tour, world: World) -> None:
    """User ids with '@' (Q-G1) reach Hanami unencoded; boolean-looking ids are refused (Q-G4);
    the admin's own project list never asks GET user/project (Q-U3: 500)."""
    await tour.reset()
    tag = secrets.token_hex(3)
    async with logged_in(tour, ADMIN_ID, ADMIN_PASSWORD) as (browser, csrf):
        user_page = await tour.step("admin user page (Q-U3)", browser.get(f"/users/{ADMIN_ID}"))
        assert ADMIN_NAME in user_page.text
        await tour.step("my account as admin (Q-U3)", browser.get("/account"))
        member_page = await tour.step("member with @ (Q-G1)", browser.get(f"/users/{world.member}"))
        assert world.project in member_page.text
        for bad in ("True", "false"):
            await tour.step(f"create user {bad} (Q-G4)", browser.post("/users", data={
                "csrf_token": csrf, "id": bad, "name": f"Bool user {tag}", "password": PASSWORD}), 422)
            await tour.step(f"create project {bad} (Q-G4)", browser.post("/projects", data={
                "csrf_token": csrf, "id": bad, "name": f"Bool project {tag}"}), 422)
            await tour.step(f"user named {bad} (Q-G4)", browser.post("/users", data={
                "csrf_token": csrf, "id": f"named{tag}", "name": bad, "password": PASSWORD}), 422)
            await tour.step(f"assign role {bad} (Q-G4)", browser.post(f"/users/{world.member}/projects", data={
                "csrf_token": csrf, "project_id": world.project, "role": bad}), 422)
        new_user = f"at@user{tag}"
        await tour.step("create user with @", browser.post("/users", data={
            "csrf_token": csrf, "id": new_user, "name": f"At user {tag}", "password": PASSWORD}), 303)
        await tour.step("user with @ page", browser.get(f"/users/{new_user}"))
        await tour.step("assign project to user with @", browser.post(f"/users/{new_user}/projects", data={
            "csrf_token": csrf, "project_id": world.project, "role": "member"}), 303)
        await tour.step("remove page", browser.get(f"/users/{new_user}/projects/{world.project}/remove"))
        await tour.step("remove project", browser.post(f"/users/{new_user}/projects/{world.project}/remove",
                                                       data={"csrf_token": csrf}), 303)
        await tour.step("remove again", browser.post(f"/users/{new_user}/projects/{world.project}/remove",
                                                     data={"csrf_token": csrf}), (404, 422))
        await tour.step("delete user with @", browser.post(f"/users/{new_user}/delete",
                                                           data={"csrf_token": csrf}), 303)
        await tour.step("deleted user page", browser.get(f"/users/{new_user}"), 404)
        refused = await tour.step("delete myself", browser.post(f"/users/{ADMIN_ID}/delete",
                                                                data={"csrf_token": csrf}), (303, 403, 409, 422))
        if refused.status_code == 303:
            await tour.step("after refusing self-deletion", browser.get(refused.headers["location"]))
        await tour.step("unknown project page", browser.get(f"/projects/nope{tag}"), 404)
    # the member: their account page, and a switch to a project they are not in
    async with logged_in(tour, world.member, PASSWORD) as (browser, csrf):
        await tour.step("member account", browser.get("/account"))
        switched = await tour.step("member switch to foreign project", browser.post(
            "/project", data={"csrf_token": csrf, "project_id": f"other{tag}"}), 303)
        home = await tour.step("home after refused switch", browser.get(switched.headers["location"]))
        assert "not assigned" in home.text
        await tour.step("member switch to True (Q-G4)", browser.post(
            "/project", data={"csrf_token": csrf, "project_id": "True"}), 303)


# -- logs and monitoring: Q-L3, Q-C6, Q-L6 --------------------------------------------------------------


async def test_log_paging_past_the_end(tour: Tour, world: World) -> None:
    """Q-L3: a page past the end answers 500; Q-C6: a page beyond 32 bits crashes the real backend."""
    await tour.reset()
    for user, password in ((ADMIN_ID, ADMIN_PASSWORD), (world.member, PASSWORD)):
        async with logged_in(tour, user, password) as (browser, _):
            for page in ("999999", "99999999999", "-1", "abc", "1e9", ""):
                await tour.step(f"{user} audit page={page}", browser.get(f"/audit?page={page}"), (200, 400))
            if user == ADMIN_ID:
                for query in ("page=99999999999", "page=5000", f"user_id={world.member}", "user_id=True",
                              "user_id=a..b", "without_user=1", "user_id=" + "x" * 300):
                    await tour.step(f"error log {query}", browser.get(f"/errors?{query}"), (200, 400))
    client, api = await hanami_login(tour.emulator.url, ADMIN_ID, ADMIN_PASSWORD)
    async with client:
        for page in (99999999999, 2**31, -1):
            with pytest.raises(BadRequest):
                await api.audit_log(page)
    await tour.assert_backend_alive("client page guard")


@pytest.fixture(scope="module")
async def starting_emulator(tmp_path_factory, crash_watch) -> AsyncIterator[Any]:
    """A faithful emulator whose thread map is not ready yet (Q-L6: 500 for a while after start;
    §14: always 500 on some real installs)."""
    config = EmulatorConfig(state_dir=tmp_path_factory.mktemp("hanami-starting"), port=0, quirks="faithful",
                            admin_id=ADMIN_ID, admin_name=ADMIN_NAME, admin_password=ADMIN_PASSWORD,
                            threading_delay=3600.0, seed=7)
    server = EmulatorServer(config)
    server.start()
    yield server
    server.stop()


async def test_threading_500_is_not_available(starting_emulator, crash_watch) -> None:
    app = create_app(console_settings(starting_emulator.url))
    async with app.router.lifespan_context(app):
        tour = Tour(app, starting_emulator, crash_watch)
        await tour.reset()
        async with logged_in(tour, ADMIN_ID, ADMIN_PASSWORD) as (browser, _):
            for _ in range(2):  # asked once per view, a second view still renders
                page = await tour.step("system page while threading is 500 (Q-L6)", browser.get("/system"))
                assert "not available" in page.text.lower()
            await tour.step("measurements", browser.get("/system/measurements.json",
                                                        headers={"X-Console-Poll": "1"}))
        await tour.aclose()


# -- the three 401 flavours (§10.3) ------------------------------------------------------------------


async def test_401_flavours(own_tour: Tour, world: World) -> None:
    """§10.3: ``Failed to validate JWT-Token`` → log in again; ``Access denied by policy`` → not for this
    role; empty body → admin rights required. Never a failure page."""
    tour = own_tour  # it adds routes: its own console
    await tour.reset()
    tag = secrets.token_hex(3)
    # 1. an invalid token in the session: Hanami says "Failed to validate JWT-Token" -> login again
    async with logged_in(tour, world.member, PASSWORD) as (browser, _):
        sessions = tour.app.state.sessions
        session = await sessions.load(browser.cookies.get(SESSION_COOKIE), touch=False)
        session.token = session.token[:-4] + "abcd"
        await sessions.save(session)
        gone = await tour.step("page with a rejected token", browser.get("/clusters"), 303)
        assert gone.headers["location"].startswith("/login?next=/clusters")
        # the session ended with the first answer: htmx is sent to the login page, back to the home page
        # (it names no page of its own, no HX-Current-URL)
        htmx = await tour.step("htmx with a rejected token", browser.get("/clusters", headers={"HX-Request": "true"}),
                               204)
        assert htmx.headers["HX-Redirect"] == "/login?next=/"
        assert await sessions.load(session.id, touch=False) is None
    # routes of this test's console that ask Hanami for admin-only data with the session's token, so the
    # backend's own 401 bodies reach the one error mapper (the console's pages check roles first)
    async def users_from_hanami(api: Hanami) -> Response:
        return Response(str(len((await api.list_users()).rows)))

    async def errors_from_hanami(api: Hanami) -> Response:
        return Response(str(len((await api.error_log(0)).rows)))

    tour.app.add_api_route("/__quirks/users", users_from_hanami, methods=["GET"])
    tour.app.add_api_route("/__quirks/errors", errors_from_hanami, methods=["GET"])
    async with logged_in(tour, world.member, PASSWORD) as (browser, _):
        for path in ("/__quirks/users", "/__quirks/errors"):
            page = await tour.step(f"member: backend 401 {path}", browser.get(path), 403)
            # Hanami's policy lists v1/user/all and v1/error_log for admins only: its "Access denied by
            # policy" comes before its own admin check, for both
            assert "Not allowed for your role" in page.text, page.text[:800]
            assert "Admin rights required" not in page.text
            htmx = await tour.step(f"member: backend 401 {path} (htmx)", browser.get(
                path, headers={"HX-Request": "true"}), 403)
            assert "<html" not in htmx.text
    # 2./3. roles Hanami's policy does not know, and a non-admin whose role is "admin" (Q-A4)
    client, admin = await hanami_login(tour.emulator.url, ADMIN_ID, ADMIN_PASSWORD)
    async with client:
        for role in ("tester", "admin"):
            user = f"role{role}{tag}"
            await admin.create_user(user, f"Role {role} {tag}", PASSWORD, False)
            await admin.assign_project(user, world.project, role, False)
            try:
                browser = tour.browser()
                async with browser:
                    form = await browser.get("/login")
                    answer = await tour.step(f"login with role {role}", browser.post("/login", data={
                        "user_id": user, "password": PASSWORD, "next": "/", "csrf_token": csrf_from(form.text)}),
                        (303, 401, 403))
                    if role == "tester":
                        # Q-A4: the policy does not know the role, not even GET v1/auth works: the login
                        # form says so (not a failure page, no session)
                        assert answer.status_code == 403 and 'name="password"' in answer.text, answer.text[:1000]
                        assert "Ask an admin to give you another role" in answer.text
                        assert SESSION_COOKIE not in browser.cookies
                        continue
                    assert answer.status_code == 303
                    # the backend's own 401s for a non-admin: role "admin" passes the policy and gets the
                    # empty 401 of the hard admin check (Q-A3/Q-A4)
                    for path, title in (("/__quirks/users", "Admin rights required"),
                                        ("/__quirks/errors", "Admin rights required")):
                        page = await tour.step(f"role {role}: backend 401 {path}", browser.get(path), 403)
                        assert title in page.text
                    for path in ("/", "/clusters", "/datasets", "/account", "/system", "/audit", "/users",
                                 "/errors"):
                        # the console's own admin check guards /users and /errors (not an admin of Hanami)
                        admin_page = path in ("/users", "/errors")
                        page = await tour.step(f"role {role} GET {path}", browser.get(path), 403 if admin_page else 200)
                        if admin_page:
                            assert "admins only" in page.text, page.text[:1000]
            finally:
                await admin.delete_user(user)


# -- multi-line 400 bodies (cluster templates) -----------------------------------------------------------


async def test_multiline_backend_messages_are_preformatted(own_tour: Tour, world: World) -> None:
    """A 400 whose body is an ASCII table (the template parser's) is shown verbatim in a <pre>, through
    the one error mapper and through the form macro."""
    tour = own_tour  # it adds a route: its own console
    broken = EXAMPLE_MNIST_TEMPLATE.replace("number_of_neurons", "number_of_neurones", 1)
    with pytest.raises(TemplateError) as raised:
        parse_template(broken)
    body = "Uploaded template is not a valid cluster-template: \n" + template_error_body(raised.value)
    assert "\n" in body.strip()
    error = error_for_status(400, body, "POST", "v1/cluster")

    async def fail() -> None:
        raise error

    tour.app.add_api_route("/__quirks_multiline_400", fail, methods=["GET"])
    tour.app.state.route_names = tour.app.state.route_names | {"__quirks"}
    async with logged_in(tour, ADMIN_ID, ADMIN_PASSWORD) as (browser, _):
        page = await browser.get("/__quirks_multiline_400")
        tour.assert_page(page, "multi-line 400", 422)
        pre = re.search(r'<pre class="backend-message">(.*?)</pre>', page.text, re.S)
        assert pre and "number_of_neurones" in pre.group(1) and pre.group(1).count("\n") >= 2
        # the form path: the cluster editor shows the parser's complaint with its line
        checked = await browser.post("/clusters", data={"csrf_token": csrf_from((await browser.get("/clusters/new")).text),
                                                        "name": f"broken {world.tag}", "template": broken})
        tour.assert_page(checked, "broken template", 422)
        assert "<pre" in checked.text and "number_of_neurones" in checked.text
    macro = tour.app.state.templates.env.from_string(
        '{% import "_macros.html" as ui %}{{ ui.backend_message(message) }}')
    assert macro.render(message=body).lstrip().startswith('<pre class="backend-message">')
    assert "<pre" not in macro.render(message="Cluster with name 'x' already exist.")
    await tour.assert_backend_alive("multi-line messages")


# -- direct IO: Q-W1, Q-W2 --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faithful_server(emulator_faithful) -> Iterator[ConsoleServer]:
    server = ConsoleServer(console_settings(emulator_faithful.url)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tour_server(tour: Tour) -> Iterator[ConsoleServer]:
    """The console on uvicorn (for websockets) bound to the tour's backend."""
    server = ConsoleServer(console_settings(tour.emulator.url)).start()
    yield server
    server.stop()


async def test_direct_io_unknown_or_invisible_cluster(tour_server, tour: Tour, crash_watch, world: World) -> None:
    """Q-W2: a websocket for a uuid no cluster has crashes the real backend; Q-W3: attaching ignores
    visibility. The console checks the cluster with the user's own token first."""
    from tests.console.test_direct_io import Browser, until  # the direct-IO tests' browser helper

    seen = len(crash_watch.events)
    await tour.reset()
    browser = await Browser(tour_server).login(world.member, PASSWORD)
    hello = {"op": "open", "csrf": browser.csrf, "input": "test_input", "input_size": 784,
             "output": "test_output", "output_size": 10}
    try:
        for label, cluster in (("unknown (Q-W2)", str(uuidlib.uuid4())), ("upper-cased", world.member_cluster.upper()),
                               ("the admin's (Q-W3)", world.admin_cluster)):
            page = await browser.http.get(f"/clusters/{cluster}/direct")
            assert page.status_code == 404, label
            ws = await browser.socket(cluster)
            await ws.send(json.dumps(hello))
            answer = await until(ws, lambda m: m["type"] == "refused" or m.get("state") in ("open", "closed"))
            assert answer.get("state") != "open", (label, answer)
            await ws.close()
        assert crash_watch.events[seen:] == []
        await tour.assert_backend_alive("direct IO on unknown and invisible clusters")
    finally:
        await browser.aclose()


async def test_direct_io_never_sends_an_unknown_brick(faithful_server, emulator_faithful, crash_watch) -> None:
    """Q-W1: a message for a brick the cluster does not have is never answered, and on the real Hanami
    the worker thread that serves the websocket is lost for good — four of them and the whole HTTP
    server is blocked. The console must not send a brick name it cannot vouch for, also for a cluster
    it did not create (whose template it does not know)."""
    from tests.console.test_direct_io import Browser, until  # the direct-IO tests' browser helper

    seen = len(crash_watch.events)
    browser = await Browser(faithful_server).login()
    client, admin = await hanami_login(emulator_faithful.url, ADMIN_ID, ADMIN_PASSWORD)
    registry = faithful_server.app.state.direct_io
    saved_timeout, registry.reply_timeout = registry.reply_timeout, 1.0
    try:
        # Q-W1: a cluster created outside the console, with a brick name that does not exist
        cluster = (await admin.create_cluster(f"outside {secrets.token_hex(3)}", EXAMPLE_MNIST_TEMPLATE))["uuid"]
        try:
            ws = await browser.socket(cluster)
            await ws.send(json.dumps({"op": "open", "csrf": browser.csrf, "input": "wrong_brick", "input_size": 784,
                                      "output": "test_output", "output_size": 10}))
            first = await until(ws, lambda m: m["type"] == "refused" or m.get("state") in ("open", "closed"))
            if first.get("state") == "open":
                await ws.send(json.dumps({"op": "ask", "values": [0.0] * 784}))
                await until(ws, lambda m: m["type"] in ("error", "output") or m.get("state") == "closed")
            await ws.close()
        finally:
            await admin.delete_cluster(cluster)
        events = crash_watch.events[seen:]
        assert not events, (
            "direct IO sent Hanami a message it never answers; on the real backend this loses a worker "
            f"thread for good: {events}"
        )
    finally:
        registry.reply_timeout = saved_timeout
        await browser.aclose()
        await client.aclose()


async def test_restore_of_a_foreign_checkpoint_forgets_the_template(faithful_server, emulator_faithful,
                                                                     crash_watch) -> None:
    """A restore replaces the cluster's network with the checkpoint's, bricks included. When the
    checkpoint was saved outside the console, the console no longer knows the cluster's bricks: if it
    kept vouching for the old template, direct IO would send brick names the network does not have
    (Q-W1: a real worker thread lost for good)."""
    from tests.console.test_direct_io import Browser, until

    seen = len(crash_watch.events)
    foreign_template = (EXAMPLE_MNIST_TEMPLATE.replace("test_input", "pixels").replace("test_output", "classes"))
    browser = await Browser(faithful_server).login()
    client, admin = await hanami_login(emulator_faithful.url, ADMIN_ID, ADMIN_PASSWORD)
    tag = secrets.token_hex(3)
    source = (await admin.create_cluster(f"foreign source {tag}", foreign_template))["uuid"]
    checkpoint = (await admin.save_checkpoint(source, f"foreign point {tag}"))["uuid"]
    target = await browser.create_cluster()  # through the console: it knows this template
    try:
        async def listed() -> bool:
            return (await admin.list_checkpoints()).find("uuid", checkpoint) is not None

        await wait_for(listed, timeout=30)
        restored = await browser.http.post(f"/clusters/{target}/restore",
                                           data={"csrf_token": browser.csrf, "checkpoint_uuid": checkpoint})
        assert restored.status_code == 303

        async def restore_ran() -> bool:
            return all(row["state"] == "finished" for row in (await admin.list_tasks(target)).records())

        await wait_for(restore_ran, timeout=30)
        page = await browser.http.get(f"/clusters/{target}")
        assert page.status_code == 200 and 'data-testid="cluster-template"' not in page.text
        direct = await browser.http.get(f"/clusters/{target}/direct")
        assert "does not know its template" in direct.text
        # a bridge with the page's defaults must not guess the bricks
        ws = await browser.socket(target)
        await ws.send(json.dumps({"op": "open", "csrf": browser.csrf}))
        answer = await until(ws, lambda m: m["type"] == "refused" or m.get("state") in ("open", "closed"))
        if answer.get("state") == "open":
            await ws.send(json.dumps({"op": "ask", "values": [0.0] * 784}))
            await until(ws, lambda m: m["type"] in ("error", "output") or m.get("state") == "closed")
        await ws.close()
        assert crash_watch.events[seen:] == [], "direct IO used the bricks of the template before the restore"
    finally:
        await browser.http.post(f"/clusters/{target}/delete", data={"csrf_token": browser.csrf})
        await admin.delete_cluster(source)
        await admin.delete_checkpoint(checkpoint)
        await browser.aclose()
        await client.aclose()


async def test_boolean_names_made_outside_the_console(starting_emulator, crash_watch, demo_files) -> None:
    """Q-G4 the other way round: another client (an SDK) created resources named ``True``/``false``.
    Hanami lists them with a JSON boolean as name, and answers 500 for every single read of them.
    Every list page must still render; their own pages may say the backend failed, nothing worse.
    (Own emulator: these resources would disturb the other tests' lists.)"""
    import base64

    app = create_app(console_settings(starting_emulator.url))
    async with app.router.lifespan_context(app):
        tour = Tour(app, starting_emulator, crash_watch)
        hanami = app.state.hanami
        token = (await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token
        api = hanami.api(token)
        template = base64.b64encode(EXAMPLE_MNIST_TEMPLATE.encode()).decode()
        good = (await api.create_cluster(f"plain {secrets.token_hex(3)}", EXAMPLE_MNIST_TEMPLATE))["uuid"]
        dataset = await api.upload_mnist(f"plain digits {secrets.token_hex(3)}", demo_files.small_images,
                                         demo_files.small_labels)
        # created the way another client would (the console's client refuses these names)
        for call in (hanami.request("POST", "v1/cluster", token=token, body={"name": "True", "template": template}),
                     hanami.request("POST", "v1/csv/dataset", token=token, body={"name": "false", "input_data_size": 10}),
                     hanami.request("POST", "v1/cluster/save", token=token, body={"name": "TRUE", "cluster_uuid": good}),
                     hanami.request("POST", "v1/task", token=token, body={"name": "False", "type": "request",
                                                                          "cluster_uuid": good, "dataset_uuid": dataset})):
            try:
                await call
            except HanamiError:
                pass  # the output check fails (500) after the resource was stored
        clusters = (await api.list_clusters()).records()
        bool_cluster = next(c["uuid"] for c in clusters if c["name"] is True)

        async def written() -> bool:
            return (any(r["name"] is True for r in (await api.list_checkpoints()).records())
                    and any(r["name"] is False for r in (await api.list_results()).records()))

        await wait_for(written, timeout=60)
        bool_result = next(r["uuid"] for r in (await api.list_results()).records() if r["name"] is False)
        bool_checkpoint = next(r["uuid"] for r in (await api.list_checkpoints()).records() if r["name"] is True)
        bool_dataset = next(r["uuid"] for r in (await api.list_datasets()).records() if r["name"] is False)
        await tour.reset()
        async with logged_in(tour, ADMIN_ID, ADMIN_PASSWORD) as (browser, csrf):
            for path in ("/", "/clusters", "/clusters?sort=name&dir=desc", "/clusters?q=true", "/datasets",
                         "/datasets?sort=name", "/checkpoints", "/checkpoints?sort=name", "/results",
                         "/results?sort=name", "/hosts", "/tasks/new", f"/clusters/{good}",
                         f"/clusters/{good}/tasks", f"/datasets/{dataset}", "/results?q=false"):
                await tour.step(f"list with boolean names: {path}", browser.get(path))
            # their own pages: Hanami answers 500 for them; the console says so and nothing crashes
            for path in (f"/clusters/{bool_cluster}", f"/datasets/{bool_dataset}", f"/clusters/{bool_cluster}/tasks",
                         f"/checkpoints/{bool_checkpoint}", f"/results/{bool_result}",
                         f"/clusters/{bool_cluster}/direct"):
                response = await browser.get(path)
                assert "Traceback" not in response.text and response.status_code in (200, 502), (path, response.status_code)
                await tour.assert_backend_alive(path)


async def test_switch_into_a_role_the_policy_does_not_know(tour: Tour, world: World) -> None:
    """Q-A4: a role that is not in Hanami's policy cannot even ask who it is. Switching into a project
    where the user has such a role gets a token that is useless: the console keeps the current project
    and says why, on the page the user came from (no failure page)."""
    await tour.reset()
    tag = secrets.token_hex(3)
    other = f"tester_{tag}"
    client, admin = await hanami_login(tour.emulator.url, ADMIN_ID, ADMIN_PASSWORD)
    async with client:
        await admin.create_project(other, f"Tester {tag}")
        await admin.assign_project(world.member, other, "tester", False)
        try:
            async with logged_in(tour, world.member, PASSWORD) as (browser, csrf):
                switched = await tour.step("switch into a role the policy does not know", browser.post(
                    "/project", data={"csrf_token": csrf, "project_id": other}), 303)
                home = await tour.step("home after the refused switch", browser.get(switched.headers["location"]))
                assert "not allowed" in home.text and other in home.text
                assert f"project <strong>{world.project}</strong>" in home.text  # still in the old project
                await tour.step("clusters after the refused switch", browser.get("/clusters"))
        finally:
            await admin.remove_project(world.member, other)
            await admin.delete_project(other)


@pytest.fixture(scope="module")
def expiring_emulator(tmp_path_factory) -> Iterator[Any]:
    """A faithful emulator whose temp files expire after 10 × 0.02 s without an attached websocket
    (the real Hanami: 10 × 60 s, Q-D6)."""
    config = EmulatorConfig(state_dir=tmp_path_factory.mktemp("hanami-expiring"), port=0, quirks="faithful",
                            admin_id=ADMIN_ID, admin_name=ADMIN_NAME, admin_password=ADMIN_PASSWORD,
                            threading_delay=0.0, seed=11, tempfile_check_interval=0.02)
    server = EmulatorServer(config)
    server.start()
    yield server
    server.stop()


async def test_a_slow_first_file_does_not_cost_the_second(expiring_emulator, demo_files) -> None:
    """Q-D6: an MNIST upload sends the images, then the labels, one websocket at a time. While the images
    go, the labels' temp file has no websocket and Hanami deletes it after ~10 minutes: a slow link would
    lose it. The client re-attaches the waiting file now and then. (Time is scaled down: ticks of 0.02 s,
    the link slowed by a progress callback that takes 0.02 s per 128 KiB chunk.)"""
    from webconsole.hanami.uploads import upload_dataset

    async def slow_link(sent: int, total: int) -> None:
        await asyncio.sleep(0.02)

    client, api = await hanami_login(expiring_emulator.url, ADMIN_ID, ADMIN_PASSWORD)
    async with client:
        # without re-attaching, the labels' temp file is gone before its turn
        with pytest.raises(NotFound):
            await upload_dataset(api, "mnist", f"lost labels {secrets.token_hex(3)}",
                                 [demo_files.train_images, demo_files.train_labels], slow_link,
                                 complete_timeout=10, keep_attached=3600)
        # the client's way: the waiting file is attached briefly every 0.05 s
        uuid = await upload_dataset(api, "mnist", f"kept labels {secrets.token_hex(3)}",
                                    [demo_files.train_images, demo_files.train_labels], slow_link,
                                    complete_timeout=10, keep_attached=0.05)
        assert (await api.get_dataset(uuid))["lines"] == 4000
        assert not [r for r in (await api.list_datasets()).records() if str(r["name"]).startswith("lost labels")]
        await api.delete_dataset(uuid)


async def test_a_declared_template_never_replaces_a_known_one(faithful_server, emulator_faithful,
                                                               crash_watch) -> None:
    """The direct-IO page lets a user declare the template of a cluster made outside the console. For a
    cluster whose template the console knows (it created it, or restored a checkpoint it saved), a
    declaration with other bricks must be refused: otherwise any user who sees the cluster could make
    the bridge send brick names the network does not have (Q-W1)."""
    from tests.console.test_direct_io import Browser, until

    seen = len(crash_watch.events)
    browser = await Browser(faithful_server).login()
    cluster = ""
    try:
        cluster = await browser.create_cluster()  # the console knows: test_input / test_output
        wrong = EXAMPLE_MNIST_TEMPLATE.replace("test_input", "pixels").replace("test_output", "classes")
        declared = await browser.http.post(f"/clusters/{cluster}/direct/template",
                                           data={"csrf_token": browser.csrf, "template": wrong})
        assert declared.status_code in (404, 405, 409, 422), declared.status_code
        ws = await browser.socket(cluster)
        await ws.send(json.dumps({"op": "open", "csrf": browser.csrf}))
        answer = await until(ws, lambda m: m["type"] == "refused" or m.get("state") in ("open", "closed"))
        assert answer.get("state") == "open", answer
        assert answer["layout"]["input_name"] == "test_input"
        await ws.send(json.dumps({"op": "ask", "values": [0.0] * 784}))
        await until(ws, lambda m: m["type"] == "output")
        await ws.send(json.dumps({"op": "close"}))
        await until(ws, lambda m: m.get("state") == "closed")
        assert crash_watch.events[seen:] == []
    finally:
        if cluster:
            await browser.http.post(f"/clusters/{cluster}/delete", data={"csrf_token": browser.csrf})
        await browser.aclose()


async def test_a_dataset_deleted_while_a_list_renders_is_not_read(tour: Tour, world: World) -> None:
    """Q-C2 with a concurrent delete: the dataset list reads each row's details (GET dataset). If another
    user deletes a dataset after the list arrived, a GET for it kills the real backend, so each read must
    be guarded by a listing taken right before it, not by the list the page started from.

    The other user's delete is made deterministic: it runs the moment the page's own ``dataset/all``
    answer arrives (through the client's call observer, which the metrics use)."""
    client, member = await hanami_login(tour.emulator.url, world.member, PASSWORD)
    async with client:
        hanami = tour.app.state.hanami
        observer = hanami.on_call
        armed: dict[str, str] = {}

        def delete_on_list(endpoint: str, status: int | None, seconds: float, error: str | None) -> None:
            observer(endpoint, status, seconds, error)
            uuid = armed.pop("victim", None) if endpoint == "GET v1/dataset/all" else None
            if uuid is not None:  # another user deletes it now (a blocking call: the emulator has its own thread)
                answer = httpx.delete(f"{tour.emulator.url}/control/v1/dataset?uuid={uuid}",
                                      headers={"X-Auth-Token": member._token}, timeout=10)  # noqa: SLF001
                assert answer.status_code == 200, answer.text

        await tour.reset()
        async with logged_in(tour, world.member, PASSWORD) as (browser, _):
            for query in ("sort=lines", "sort=name"):  # details of every row / of the shown page
                armed["victim"] = (await member._call("POST", "v1/csv/dataset", body={  # noqa: SLF001
                    "name": f"quirks victim {world.tag}", "input_data_size": 100}))["uuid"]
                hanami.on_call = delete_on_list
                try:
                    await tour.step(f"dataset list ({query}) while a dataset is deleted",
                                    browser.get(f"/datasets?{query}"))
                finally:
                    hanami.on_call = observer
                    victim = armed.pop("victim", None)
                    if victim is not None:
                        await member.delete_dataset(victim)


async def test_cancelled_upload(tour: Tour, world: World, demo_files) -> None:
    """Cancelling a console upload deletes the half-made dataset while its temp files may still exist:
    never a crash case, and nothing half-made stays listed."""
    await tour.reset()
    name = f"quirks cancelled {world.tag}"
    async with logged_in(tour, world.member, PASSWORD) as (browser, csrf):
        with open(demo_files.train_images, "rb") as images, open(demo_files.train_labels, "rb") as labels:
            started = await tour.step("upload to cancel", browser.post(
                "/datasets/upload", data={"csrf_token": csrf, "kind": "mnist", "name": name},
                files={"images": ("images.idx", images.read()), "labels": ("labels.idx", labels.read())}), 303)
        status_url = started.headers["location"]
        await tour.step("cancel", browser.post(f"{status_url}/cancel", data={"csrf_token": csrf}), 303)
        status = await tour.step("status after cancel", browser.get(status_url))
        assert re.search(r'data-phase="(cancelled|done)"', status.text), status.text[:2000]
        await tour.step("dataset list after cancel", browser.get("/datasets"))
    client, member = await hanami_login(tour.emulator.url, world.member, PASSWORD)
    async with client:
        records = [r for r in (await member.list_datasets()).records() if r["name"] == name]
        if 'data-phase="cancelled"' in status.text:
            assert records == []
        for record in records:  # the upload won the race: a complete dataset
            assert (await member.get_dataset(record["uuid"]))["lines"] == 4000
            await member.delete_dataset(record["uuid"])
