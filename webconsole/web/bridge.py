"""The direct-IO bridge: one browser websocket relayed to one backend cluster websocket.

The browser speaks small JSON messages to the console; the console speaks Hanami's protobuf
``ClusterIO_Message`` lock-step protocol (contract §5.5) through the client's ``DirectIOSession``.
The Hanami token never leaves the server.

Life of a bridge (the order matters, see §5.5, §8.5, Q-W1, Q-W2, Q-W5):

1. the browser's first message carries the session's CSRF token and the chosen bricks;
2. the bricks are checked against the cluster's template (or the sizes the user declared when the
   console does not know the template) so that the backend never sees an unknown brick (Q-W1);
3. a lock ``bridge:<cluster uuid>`` in the shared store makes the bridge exclusive across replicas;
4. the cluster's task list must be empty of queued/active tasks (Q-W5), then ``set_mode DIRECT``;
   a ``direct-mode:<cluster uuid>`` record remembers that the console left the cluster in DIRECT;
5. the backend websocket opens (``get_cluster`` first: an unknown uuid crashes Hanami, Q-W2);
6. one exchange at a time, every reply with a timeout;
7. whatever ends the bridge, a shielded clean-up closes the backend websocket, switches the cluster
   back to TASK (409 = already there) and drops the lock and the mode record.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from webconsole.hanami.direct_io import DirectIOSession
from webconsole.hanami.errors import Conflict, HanamiError, NotFound, TokenExpired
from webconsole.protocol.template import ClusterTemplate, TemplateError, parse_template
from webconsole.sessions import Session

log = logging.getLogger("webconsole.direct_io")

LOCK_PREFIX = "bridge:"
MODE_PREFIX = "direct-mode:"
REPLAY_PREFIX = "direct-replay:"
LOCK_TTL = 60.0  # seconds; refreshed every ``housekeeping_interval`` while the bridge is open
MODE_TTL = 30 * 24 * 3600.0
REPLAY_TTL = 6 * 3600.0
HELLO_TIMEOUT = 15.0
LIVENESS_TIMEOUT = 60.0  # a page that sends pings and then goes silent this long has lost the network
MAX_REPEAT = 1000
MAX_VALUES = 1_000_000
BUSY_STATES = ("queued", "active", "aborted")  # an aborted task keeps running until its end (Q-T4)
TASK_META_PREFIX = "task-meta:"  # what the tasks pages remember about a task (its name)

# close codes the page understands (4000-4999 are free for applications)
CLOSE_NORMAL = 1000
CLOSE_REFUSED = 4403
CLOSE_BUSY = 4409
CLOSE_BAD_REQUEST = 4400
CLOSE_BACKEND = 4502
CLOSE_IDLE = 4408
CLOSE_SESSION = 4401
CLOSE_SHUTDOWN = 1001


def session_hash(session_id: str) -> str:
    """What the store records about a session: never the id itself (it is the cookie)."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Layout:
    """The two bricks a bridge talks to."""

    input_name: str
    input_size: int
    output_name: str
    output_size: int
    from_template: bool


class Refused(Exception):
    """The bridge cannot open (or must close) for a reason the user should read."""

    def __init__(self, message: str, code: int = CLOSE_REFUSED, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.extra = extra


async def known_template(store: Any, cluster_uuid: str) -> str | None:
    """The template text the console remembers for a cluster (owned by the clusters pages)."""
    import importlib

    for module_name in ("webconsole.web.cluster_memory", "webconsole.web.clusters"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        lookup = getattr(module, "known_template", None)
        if lookup is not None:
            return await lookup(store, cluster_uuid)
    return None


async def cluster_template(store: Any, cluster_uuid: str) -> tuple[ClusterTemplate | None, str]:
    """(parsed template or None, note for the page)."""
    text = await known_template(store, cluster_uuid)
    if text is None:
        return None, "This console did not create this cluster, so it does not know its template."
    try:
        return parse_template(text), ""
    except TemplateError as exc:
        return None, f"The remembered template does not parse ({exc.message}, line {exc.line})."


def layout_problem(template: ClusterTemplate) -> str:
    """Why direct IO cannot work with this template ('' when it can)."""
    if not template.input_bricks:
        return "The cluster's template has no input brick."
    if len(template.output_bricks) != 1:
        # several output bricks desynchronise the lock-step (Q-W6)
        return "Direct IO needs a cluster with exactly one output brick."
    return ""


def choose_layout(template: ClusterTemplate | None, hello: dict[str, Any]) -> Layout:
    """The bricks of the hello message, checked against the template or the declared sizes."""
    input_name = hello.get("input")
    output_name = hello.get("output")
    if template is not None:
        problem = layout_problem(template)
        if problem:
            raise Refused(problem, CLOSE_BAD_REQUEST)
        inputs = {b.input_name: b for b in template.input_bricks}
        output = template.output_bricks[0]
        if input_name is None and len(inputs) == 1:
            input_name = next(iter(inputs))
        if input_name not in inputs:
            raise Refused(
                f"The cluster has no input brick named {str(input_name)!r}; "
                f"its input bricks are: {', '.join(sorted(n for n in inputs if n))}.",
                CLOSE_BAD_REQUEST,
            )
        if output_name is not None and output_name != output.output_name:
            raise Refused(
                f"The cluster has no output brick named {str(output_name)!r}; "
                f"its output brick is {output.output_name!r}.",
                CLOSE_BAD_REQUEST,
            )
        brick = inputs[input_name]
        if brick.neurons < 1 or output.neurons < 1:
            raise Refused("The template does not give the bricks' number of neurons.", CLOSE_BAD_REQUEST)
        return Layout(str(input_name), brick.neurons, str(output.output_name), output.neurons, True)
    # Unknown template: Hanami never answers a brick name the cluster lacks (Q-W1) and the real
    # backend loses a worker thread for good, so nothing is sent without a template to check against.
    raise Refused(
        "The console does not know this cluster's template, so it cannot check the brick names. "
        "Give the cluster's template on this page first.",
        CLOSE_BAD_REQUEST,
    )


def _numbers(raw: Any, size: int, what: str) -> list[float]:
    if not isinstance(raw, list):
        raise ValueError(f"{what}: a list of numbers is needed.")
    if len(raw) != size:
        raise ValueError(f"{what}: {size} values are needed, {len(raw)} were given.")
    values = []
    for item in raw:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
            raise ValueError(f"{what}: every value must be a finite number.")
        values.append(float(item))
    return values


def winner(values: list[float]) -> int | None:
    return max(range(len(values)), key=values.__getitem__) if values else None


async def read_record(store: Any, key: str) -> dict[str, Any] | None:
    raw = await store.get(key)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class BridgeRegistry:
    """The bridges open in this console process (the store's lock covers all replicas)."""

    def __init__(self, reply_timeout: float, idle_timeout: float) -> None:
        self.reply_timeout = reply_timeout
        self.idle_timeout = idle_timeout
        self.housekeeping_interval = 15.0
        self.bridges: dict[str, Bridge] = {}
        self.cleanups: set[asyncio.Task[None]] = set()

    async def report_left_in_direct(self, store: Any) -> None:
        """At start: say which clusters an earlier console run left in direct mode."""
        for key in await store.keys(MODE_PREFIX):
            if await store.get(LOCK_PREFIX + key.removeprefix(MODE_PREFIX)) is None:
                log.warning(
                    "cluster %s was left in direct mode; its direct-IO page offers “Return to task mode”",
                    key.removeprefix(MODE_PREFIX),
                )

    async def shutdown(self) -> None:
        """Graceful shutdown: close every bridge and return its cluster to task mode."""
        for bridge in list(self.bridges.values()):
            bridge.request_close("the console is shutting down", CLOSE_SHUTDOWN)
        pending = [b.cleanup_task() for b in list(self.bridges.values())] + list(self.cleanups)
        if pending:
            await asyncio.wait(pending, timeout=20)


_DISCONNECTED = object()
_JOB_DONE = object()


class Bridge:
    """One browser websocket relayed to the cluster's backend websocket."""

    def __init__(self, app: Any, ws: WebSocket, session: Session, cluster_uuid: str) -> None:
        self.app = app
        self.ws = ws
        self.session = session
        self.cluster_uuid = cluster_uuid
        self.registry: BridgeRegistry = app.state.direct_io
        self.store = app.state.store
        self.api = app.state.hanami.api(session.token)
        self.layout: Layout | None = None
        self.io: DirectIOSession | None = None
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.job: asyncio.Task[None] | None = None
        self.job_error: tuple[str, int] | None = None
        self.stop_requested = False
        self.close_reason: tuple[str, int] | None = None
        self.locked = False
        self.direct = False
        self.last_activity = time.monotonic()
        self.last_seen = time.monotonic()
        self.pings = False  # the page pings every 20 s; then silence means a lost network
        self.active_since_check = False
        self.replays: list[str] = []
        self.since = time.time()
        self._send_lock = asyncio.Lock()
        self._cleanup: asyncio.Task[None] | None = None
        self.client_address = ws.client.host if ws.client else "unknown"

    # -- talking to the browser ------------------------------------------------------------------
    async def send(self, **message: Any) -> None:
        async with self._send_lock:
            if self.ws.application_state != WebSocketState.CONNECTED:
                return
            try:
                await self.ws.send_text(json.dumps(message, separators=(",", ":")))
            except (WebSocketDisconnect, RuntimeError, OSError):
                pass

    async def status(self, state: str, message: str = "", **extra: Any) -> None:
        await self.send(type="state", state=state, message=message, **extra)

    def request_close(self, reason: str, code: int = CLOSE_NORMAL) -> None:
        if self.close_reason is None:
            self.close_reason = (reason, code)
        self.inbox.put_nowait(_DISCONNECTED)

    # -- opening ---------------------------------------------------------------------------------
    def _lock_record(self) -> bytes:
        record = {
            "user_id": self.session.user_id,
            "user_name": self.session.user_name,
            "session": session_hash(self.session.id),
            "since": self.since,
            "input": self.layout.input_name if self.layout else None,
            "output": self.layout.output_name if self.layout else None,
        }
        return json.dumps(record).encode()

    async def open(self, hello: dict[str, Any]) -> None:
        submitted = hello.get("csrf")
        if (
            hello.get("op") != "open"
            or not isinstance(submitted, str)
            or not secrets.compare_digest(submitted.encode(), self.session.csrf_token.encode())
        ):
            raise Refused("The page is out of date or did not come from this console. Reload it.")
        await self.status("connecting", "Checking the cluster…")
        await self.api.get_cluster(self.cluster_uuid)  # 404 here, never a Q-W2 crash later
        template, _note = await cluster_template(self.store, self.cluster_uuid)
        self.layout = choose_layout(template, hello)
        self.since = time.time()
        if not await self.store.add(LOCK_PREFIX + self.cluster_uuid, self._lock_record(), LOCK_TTL):
            holder = await read_record(self.store, LOCK_PREFIX + self.cluster_uuid) or {}
            raise Refused(
                f"Direct IO on this cluster is held by {holder.get('user_name', 'another user')} "
                f"since {_clock(holder.get('since'))}.",
                CLOSE_BUSY, reason="held", holder=holder.get("user_name"), since=holder.get("since"),
            )
        self.locked = True
        slots = self.app.state.hanami.websockets
        if slots.in_use >= slots.limit:
            # Hanami has only a few worker threads and each websocket holds one (§1.1, §5.1)
            raise Refused(
                f"This console already has {slots.limit} backend websocket(s) open, its limit: "
                "try again when another direct IO or upload ends.",
                CLOSE_BUSY, reason="slots",
            )
        await self._refuse_when_busy()
        await self.status("connecting", "Switching the cluster to direct mode…")
        try:
            await self.api.set_mode(self.cluster_uuid, "DIRECT")
        except Conflict as exc:
            if await read_record(self.store, MODE_PREFIX + self.cluster_uuid) is not None:
                # This console left it in DIRECT (a crash or a lost connection): then 409 means
                # "already DIRECT", unless a task started meanwhile -- look again before taking over.
                await self._refuse_when_busy()
                log.info("cluster %s was left in direct mode; taking it over", self.cluster_uuid)
            else:
                raise Refused(
                    "Hanami refused to switch the cluster to direct mode "
                    f"({exc.message}). A task may have just started, or the cluster was left in direct "
                    "mode: use “Return to task mode” on this page.",
                    CLOSE_BUSY, reason="mode",
                ) from None
        self.direct = True
        mode = {"user_id": self.session.user_id, "user_name": self.session.user_name, "since": self.since}
        await self.store.set(MODE_PREFIX + self.cluster_uuid, json.dumps(mode).encode(), MODE_TTL)
        await self.status("connecting", "Opening the cluster's websocket…")
        io = self.api.direct_io(self.cluster_uuid, reply_timeout=self.registry.reply_timeout)
        await io.open()
        self.io = io
        self.registry.bridges[self.cluster_uuid] = self
        await self.app.state.audit.record(
            self.session.user_id, "direct_io_open",
            f"cluster {self.cluster_uuid} input {self.layout.input_name} output {self.layout.output_name}",
            self.client_address,
        )
        await self.status("open", "Connected.", layout=asdict(self.layout))

    async def _refuse_when_busy(self) -> None:
        """Tasks and a cluster websocket must never mix (Q-W5): name the tasks in the way."""
        tasks = (await self.api.list_tasks(self.cluster_uuid)).records()
        busy = [{"uuid": t.get("uuid"), "state": t.get("state")} for t in tasks if t.get("state") in BUSY_STATES]
        if not busy:
            return
        for task in busy:
            meta = await read_record(self.store, TASK_META_PREFIX + str(task["uuid"]))
            task["name"] = meta.get("name") if meta else None
        names = ", ".join(
            (f"“{t['name']}” ({t['uuid']}, {t['state']})" if t["name"] else f"{t['uuid']} ({t['state']})")
            for t in busy
        )
        raise Refused(
            f"The cluster has tasks in the way: {names}. Wait for them to finish or delete them.",
            CLOSE_BUSY, reason="busy", tasks=busy,
        )

    # -- the main loop ---------------------------------------------------------------------------
    async def _reader(self) -> None:
        try:
            while True:
                event = await self.ws.receive()
                if event["type"] == "websocket.disconnect":
                    break
                text = event.get("text")
                if text is None:
                    text = (event.get("bytes") or b"").decode("utf-8", errors="replace")
                self.inbox.put_nowait(text)
        except (WebSocketDisconnect, RuntimeError):
            pass
        self.inbox.put_nowait(_DISCONNECTED)

    async def run(self) -> None:
        reader = asyncio.create_task(self._reader())
        try:
            hello = await self._hello()
            await self.open(hello)
            await self._loop()
        except Refused as exc:
            await self.send(type="refused", message=exc.message, **exc.extra)
            self.close_reason = self.close_reason or (exc.message, exc.code)
        except TokenExpired:
            self.close_reason = self.close_reason or ("Your Hanami token expired: log in again.", CLOSE_SESSION)
        except NotFound as exc:
            self.close_reason = self.close_reason or (f"The cluster was not found ({exc.message}).",
                                                      CLOSE_BAD_REQUEST)
        except HanamiError as exc:
            self.close_reason = self.close_reason or (f"Hanami failed: {exc.message}", CLOSE_BACKEND)
        finally:
            reader.cancel()
            self.close_reason = self.close_reason or ("closed", CLOSE_NORMAL)

    async def _hello(self) -> dict[str, Any]:
        try:
            item = await asyncio.wait_for(self.inbox.get(), HELLO_TIMEOUT)
        except TimeoutError:
            raise Refused("The page did not introduce itself in time.") from None
        if item is _DISCONNECTED:
            raise Refused("The browser left before the bridge opened.")
        try:
            hello = json.loads(item)
        except ValueError:
            hello = None
        if not isinstance(hello, dict):
            raise Refused("The page is out of date or did not come from this console. Reload it.")
        return hello

    async def _loop(self) -> None:
        next_check = time.monotonic() + self.registry.housekeeping_interval
        while self.close_reason is None:
            now = time.monotonic()
            deadline = next_check
            if self.job is None:  # a running job (a long replay) is activity
                deadline = min(deadline, self.last_activity + self.registry.idle_timeout)
            wait = max(0.05, deadline - now)
            try:
                item = await asyncio.wait_for(self.inbox.get(), wait)
            except TimeoutError:
                now = time.monotonic()
                if self.job is None and now >= self.last_activity + self.registry.idle_timeout:
                    self.request_close(
                        f"The bridge was idle for {self.registry.idle_timeout:g} s and was closed.", CLOSE_IDLE
                    )
                if now >= next_check:
                    await self._housekeeping()
                    next_check = time.monotonic() + self.registry.housekeeping_interval
                continue
            if item is not _JOB_DONE and item is not _DISCONNECTED:
                self.last_seen = time.monotonic()
            if item is _DISCONNECTED:
                if self.close_reason is None:
                    self.close_reason = ("The browser closed the connection.", CLOSE_NORMAL)
                return
            if item is _JOB_DONE:
                self.job = None
                self.last_activity = time.monotonic()
                if self.job_error is not None:
                    self.close_reason = self.job_error
                    return
                continue
            await self._dispatch(item)

    async def _housekeeping(self) -> None:
        """Refresh the lock, re-check the session (logout/expiry ends the bridge), renew the token."""
        if self.pings and time.monotonic() - self.last_seen > LIVENESS_TIMEOUT:
            self.request_close("The page stopped answering (network lost?).", CLOSE_IDLE)
            return
        holder = await read_record(self.store, LOCK_PREFIX + self.cluster_uuid)
        if holder is not None and holder.get("session") != session_hash(self.session.id):
            # our lock expired (the console stalled) and someone else holds it now
            self.locked = False
            self.request_close("Direct IO on this cluster was taken over by another session.", CLOSE_BUSY)
            return
        await self.store.set(LOCK_PREFIX + self.cluster_uuid, self._lock_record(), LOCK_TTL)
        session = await self.app.state.sessions.load(self.session.id, touch=self.active_since_check)
        self.active_since_check = False
        if session is None:
            self.request_close("Your console session ended (logged out or expired).", CLOSE_SESSION)
            return
        self.session = session
        settings = self.app.state.settings
        if session.token_expires_at - time.time() < settings.token_renew_margin:
            try:
                renewed = await self.api.renew(session.project_id)
            except HanamiError as exc:
                log.warning("direct IO token renewal failed", extra={"error": type(exc).__name__})
            else:
                session.token = renewed.token
                session.token_expires_at = renewed.expires_at
                await self.app.state.sessions.save(session)
                self.api = self.app.state.hanami.api(session.token)

    async def _dispatch(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            await self.send(type="error", message="The console did not understand the page's message.")
            return
        op = message.get("op")
        if op == "ping":
            self.pings = True
            await self.send(type="pong")
            return
        if op == "close":
            self.request_close("Closed on the page.", CLOSE_NORMAL)
            return
        if op == "stop":
            self.stop_requested = True
            return
        self.last_activity = time.monotonic()
        self.active_since_check = True
        if self.job is not None:
            await self.send(type="error", message="Wait until the current exchange is done (or stop it).")
            return
        handlers = {"ask": self._ask, "teach": self._teach, "replay": self._replay}
        handler = handlers.get(op)  # type: ignore[arg-type]
        if handler is None:
            await self.send(type="error", message=f"Unknown operation {str(op)[:40]!r}.")
            return
        try:
            work = handler(message)
            first = await work.__anext__()  # validation happens before the first yield
        except ValueError as exc:
            await self.send(type="error", message=str(exc))
            return
        except StopAsyncIteration:
            return
        assert first is None
        self.stop_requested = False
        self.job = asyncio.create_task(self._run_job(work))

    async def _run_job(self, work: Any) -> None:
        try:
            async for _ in work:
                pass
        except HanamiError as exc:
            self.job_error = (
                f"The cluster did not answer properly ({exc.message}); the bridge was closed.", CLOSE_BACKEND
            )
            await self.send(type="error", message=self.job_error[0], fatal=True)
        except ValueError as exc:
            await self.send(type="error", message=str(exc))
        except Exception:  # noqa: BLE001 - the bridge closes cleanly on any bug
            log.exception("direct IO job failed")
            self.job_error = ("The console hit an unexpected error; the bridge was closed.", CLOSE_BACKEND)
            await self.send(type="error", message=self.job_error[0], fatal=True)
        finally:
            self.inbox.put_nowait(_JOB_DONE)

    # -- operations (async generators: validate, yield once, then work) -------------------------
    def _expected(self, message: dict[str, Any]) -> list[float]:
        assert self.layout is not None
        label = message.get("label")
        if label is not None:
            if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < self.layout.output_size:
                raise ValueError(f"The class must be a whole number from 0 to {self.layout.output_size - 1}.")
            return [1.0 if i == label else 0.0 for i in range(self.layout.output_size)]
        return _numbers(message.get("expected"), self.layout.output_size, "Expected output")

    async def _ask(self, message: dict[str, Any]) -> Any:
        assert self.layout is not None and self.io is not None
        values = _numbers(message.get("values"), self.layout.input_size, "Input")
        yield None
        started = time.perf_counter()
        out = await self.io.request(self.layout.input_name, values)
        elapsed = (time.perf_counter() - started) * 1000
        await self.send(type="output", values=out, winner=winner(out), ms=round(elapsed, 2))

    async def _teach(self, message: dict[str, Any]) -> Any:
        assert self.layout is not None and self.io is not None
        values = _numbers(message.get("values"), self.layout.input_size, "Input")
        expected = self._expected(message)
        repeat = message.get("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
            raise ValueError(f"Repeat must be a whole number from 1 to {MAX_REPEAT}.")
        yield None
        started = time.perf_counter()
        last_report = started
        done = 0
        for done in range(1, repeat + 1):
            await self.io.train(self.layout.input_name, values, self.layout.output_name, expected)
            if self.stop_requested:
                break
            if time.perf_counter() - last_report > 0.25 and done < repeat:
                last_report = time.perf_counter()
                await self.send(type="teaching", count=done, total=repeat)
        elapsed = (time.perf_counter() - started) * 1000
        await self.send(type="taught", count=done, total=repeat, stopped=done < repeat, ms=round(elapsed, 2))

    async def _replay(self, message: dict[str, Any]) -> Any:
        assert self.layout is not None and self.io is not None
        layout = self.layout
        mode = message.get("mode", "request")
        if mode not in ("request", "train"):
            raise ValueError("Replay mode must be 'request' or 'train'.")
        limit = message.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError("The number of samples must be a whole number of 1 or more.")
        replay_id = str(message.get("id", ""))
        record = await read_record(self.store, REPLAY_PREFIX + replay_id)
        if record is None or record.get("session") != session_hash(self.session.id):
            raise ValueError("That uploaded dataset is not available any more: upload it again.")
        if replay_id not in self.replays:
            self.replays.append(replay_id)  # its files go when the bridge closes
        samples, total, classify = _replay_samples(record, layout)
        if limit is not None:
            total = min(total, limit)
        measure = mode == "request" or bool(message.get("measure", True))
        yield None
        done = correct = 0
        abs_error = 0.0
        started = time.perf_counter()
        last_report = 0.0

        async def report(finished: bool) -> None:
            accuracy = (correct / done) if (classify and measure and done) else None
            mae = (abs_error / done) if (not classify and measure and done) else None
            await self.send(
                type="replay", mode=mode, done=done, total=total, correct=correct if classify else None,
                accuracy=accuracy, mae=mae, finished=finished, stopped=finished and done < total,
                seconds=round(time.perf_counter() - started, 3),
            )

        for inputs, expected, label in samples:
            if done >= total or self.stop_requested:
                break
            if measure:
                out = await self.io.request(layout.input_name, inputs)
                if classify:
                    correct += int(winner(out) == label)
                else:
                    abs_error += sum(abs(a - b) for a, b in zip(out, expected)) / max(1, len(expected))
            if mode == "train":
                await self.io.train(layout.input_name, inputs, layout.output_name, expected)
            done += 1
            if time.perf_counter() - last_report > 0.2:
                last_report = time.perf_counter()
                await report(False)
        await report(True)

    # -- closing ---------------------------------------------------------------------------------
    def cleanup_task(self) -> asyncio.Task[None]:
        if self._cleanup is None:
            self._cleanup = asyncio.create_task(self._close())
            self.registry.cleanups.add(self._cleanup)
            self._cleanup.add_done_callback(self.registry.cleanups.discard)
        return self._cleanup

    async def _close(self) -> None:
        """Always: backend websocket closed, cluster back in TASK, lock dropped, browser told."""
        reason, code = self.close_reason or ("closed", CLOSE_NORMAL)
        task_mode: bool | None = None  # None: the bridge never switched the cluster
        try:
            if self.job is not None:
                self.job.cancel()
                await asyncio.gather(self.job, return_exceptions=True)
            if self.io is not None:
                try:
                    await self.io.aclose()  # before set_mode TASK: never mix a websocket with tasks (Q-W5)
                except Exception:  # noqa: BLE001 - the socket is gone either way
                    log.warning("closing the cluster websocket failed", exc_info=True)
            if self.direct:
                task_mode = False
                task_mode = await return_to_task_mode(self.api, self.store, self.cluster_uuid)
        except Exception:  # noqa: BLE001 - clean-up goes as far as it can
            log.exception("direct IO clean-up failed")
        try:
            if self.locked:
                holder = await read_record(self.store, LOCK_PREFIX + self.cluster_uuid)
                if holder is None or holder.get("session") == session_hash(self.session.id):
                    await self.store.delete(LOCK_PREFIX + self.cluster_uuid)
            for replay_id in self.replays:
                await forget_replay(self.store, replay_id)
            if self.io is not None:
                await self.app.state.audit.record(
                    self.session.user_id, "direct_io_close", f"cluster {self.cluster_uuid}: {reason}",
                    self.client_address,
                )
        except Exception:  # noqa: BLE001 - the lock expires by itself after LOCK_TTL
            log.exception("direct IO clean-up failed")
        finally:
            if self.registry.bridges.get(self.cluster_uuid) is self:
                del self.registry.bridges[self.cluster_uuid]
            if task_mode is False:
                reason += " The cluster could not be returned to task mode: use “Return to task mode”."
            await self.status("closed", reason, task_mode=task_mode)
            if self.ws.application_state == WebSocketState.CONNECTED:
                try:
                    await self.ws.close(code=code, reason=_short(reason))
                except (RuntimeError, OSError, WebSocketDisconnect):
                    pass


def _short(text: str) -> str:
    """A close reason must fit in 123 bytes."""
    data = text.encode()[:120]
    return data.decode("utf-8", errors="ignore")


def _clock(since: Any) -> str:
    if not isinstance(since, (int, float)):
        return "a moment ago"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since))


async def return_to_task_mode(api: Any, store: Any, cluster_uuid: str) -> bool:
    """set_mode TASK; 409 means it already is in TASK. True when the cluster is in task mode."""
    try:
        await asyncio.shield(api.set_mode(cluster_uuid, "TASK"))
    except Conflict:
        pass  # "Can not switch cluster to 'TASK'": it is in TASK already
    except NotFound:
        pass  # deleted meanwhile: nothing is stuck
    except HanamiError as exc:
        log.warning("could not return cluster to task mode", extra={"error": type(exc).__name__})
        return False
    await store.delete(MODE_PREFIX + cluster_uuid)
    return True


# -- replay datasets -------------------------------------------------------------------------------

def _replay_root(settings: Any) -> Path:
    import tempfile

    base = Path(settings.upload_dir) if settings.upload_dir else Path(tempfile.gettempdir())
    return base / "hanami-console-replay"


def replay_dir(settings: Any) -> Path:
    """The folder for replay uploads: private to the console's OS user (the data is the users')."""
    import os

    path = _replay_root(settings)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid():
        # a folder someone else made in a shared temp dir could be read or swapped by them
        raise RuntimeError(f"{path} belongs to another user; set HANAMI_CONSOLE_UPLOAD_DIR")
    if info.st_mode & 0o077:
        path.chmod(0o700)
    return path


async def forget_replay(store: Any, replay_id: str) -> None:
    record = await read_record(store, REPLAY_PREFIX + replay_id)
    await store.delete(REPLAY_PREFIX + replay_id)
    if record and record.get("dir"):
        await asyncio.to_thread(shutil.rmtree, record["dir"], True)


def last_replay_key(session_id: str) -> str:
    """The store key naming a session's kept replay upload (one per session)."""
    return f"{REPLAY_PREFIX}last:{session_hash(session_id)}"


async def forget_session_replays(store: Any, session_id: str) -> None:
    """A session's replay upload is usable only by it: when the session ends, its files go."""
    previous = await store.get(last_replay_key(session_id))
    if previous is not None:
        await forget_replay(store, previous.decode())
        await store.delete(last_replay_key(session_id))


async def sweep_replays(store: Any, settings: Any, grace: float = 60.0) -> int:
    """Delete replay folders whose record has expired (sessions that timed out, console restarts).

    Folders younger than ``grace`` seconds are kept: their record may not be written yet.
    """
    root = _replay_root(settings)
    if not root.is_dir():
        return 0
    root = replay_dir(settings)  # checks ownership before deleting anything in it
    live = {key.removeprefix(REPLAY_PREFIX) for key in await store.keys(REPLAY_PREFIX)}

    def sweep() -> int:
        removed = 0
        for folder in root.iterdir():
            if folder.name in live or time.time() - folder.stat().st_mtime < grace:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
        return removed

    return await asyncio.to_thread(sweep)


def _replay_samples(record: dict[str, Any], layout: Layout) -> tuple[Iterator[tuple[list[float], list[float], int | None]], int, bool]:
    """(samples, count, is classification) for a stored replay record and the bridge's bricks."""
    if record.get("kind") == "mnist":
        from webconsole.protocol.idx import iter_mnist_batches

        if layout.input_size != 784 or layout.output_size != 10:
            raise ValueError(
                f"MNIST samples have 784 inputs and 10 classes; this bridge has {layout.input_size} "
                f"inputs and {layout.output_size} outputs."
            )

        def mnist() -> Iterator[tuple[list[float], list[float], int | None]]:
            for images, labels in iter_mnist_batches(record["images"], record["labels"], batch=500):
                for image, label in zip(images, labels):
                    expected = [0.0] * 10
                    expected[int(label)] = 1.0
                    yield image.tolist(), expected, int(label)

        return mnist(), int(record["samples"]), True
    from webconsole.protocol.csvdata import parse_csv_like_hanami

    columns, table = parse_csv_like_hanami(Path(record["csv"]).read_bytes())
    missing = [name for name in (layout.input_name, layout.output_name) if name not in columns]
    if missing:
        raise ValueError(
            f"The CSV has no column named {', '.join(missing)} (the bricks' names); "
            f"its columns are {', '.join(columns)}."
        )
    col_in, col_out = columns.index(layout.input_name), columns.index(layout.output_name)
    size_in, size_out = layout.input_size, layout.output_size
    window = max(size_in, size_out)
    lines = table.shape[0]
    count = max(0, lines - size_in)  # Hanami's cycle count for CSV tasks (§4.23)
    count = min(count, max(0, lines - window + 1))

    def csv_rows() -> Iterator[tuple[list[float], list[float], int | None]]:
        for c in range(count):
            inputs = table[c + window - size_in: c + window, col_in].tolist()
            expected = table[c + window - size_out: c + window, col_out].tolist()
            yield inputs, expected, None

    return csv_rows(), count, False
