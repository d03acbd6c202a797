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

The pieces: ``protocol`` (close codes, refusals, the bricks checked against the template),
``locks`` (the lock and mode records in the shared store), ``operations`` (the page's operations on
an open bridge), ``replay`` (replay uploads); ``BridgeRegistry`` below holds this process's bridges.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import asdict
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from webconsole.hanami.direct_io import DirectIOSession
from webconsole.hanami.errors import Conflict, HanamiError, NotFound, TokenExpired
from webconsole.sessions import Session, read_record
from webconsole.web.direct_io.operations import JOB_DONE, BridgeOperations
from webconsole.web.direct_io.protocol import (
    CLOSE_BACKEND,
    CLOSE_BAD_REQUEST,
    CLOSE_BUSY,
    CLOSE_IDLE,
    CLOSE_NORMAL,
    CLOSE_SESSION,
    CLOSE_SHUTDOWN,
    Layout,
    Refused,
    choose_layout,
    cluster_template,
)
from webconsole.web.direct_io.replay import forget_replay
from webconsole.web.direct_io.shape import input_bricks_named_by_hanami
from webconsole.web.clusters.memory import bricks_seen, template_declaration
from webconsole.web.direct_io.locks import (
    LOCK_PREFIX,
    LOCK_TTL,
    MODE_PREFIX,
    MODE_TTL,
    TASK_META_PREFIX,
    return_to_task_mode,
    session_hash,
)
from webconsole.web.core.deps import renew_token_if_due

log = logging.getLogger("webconsole.direct_io")

HELLO_TIMEOUT = 15.0
LIVENESS_TIMEOUT = 60.0  # a page that sends pings and then goes silent this long has lost the network
BUSY_STATES = ("queued", "active", "aborted")  # an aborted task keeps running until its end (Q-T4)

_DISCONNECTED = object()
SESSION_ENDED = "Your console session ended (logged out or expired)."


class Bridge(BridgeOperations):
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
        self.declared = False  # the template is a user's declaration (see _check_declared_bricks)
        self.output_confirmed = True
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
        await self._check_declared_bricks()
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
        await self._remember_direct_mode()
        await self._refresh_lock()  # the lock's TTL is short: the switch may have taken a while
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

    async def _check_declared_bricks(self) -> None:
        """A declared template is a user's word: send only brick names Hanami has confirmed (Q-W1)."""
        assert self.layout is not None
        self.declared = await template_declaration(self.store, self.cluster_uuid) is not None
        if not self.declared:
            return
        await input_bricks_named_by_hanami(self.api, self.store, self.cluster_uuid)
        seen = await bricks_seen(self.store, self.cluster_uuid)
        if self.layout.input_name not in seen["input"]:
            raise Refused(
                f"Hanami has not confirmed an input brick named '{self.layout.input_name}' on this cluster, and it "
                "never answers a brick name the cluster lacks (a real Hanami then loses a worker thread for good). "
                "Run a CSV request task on this cluster from the console (Hanami names its result after the input "
                "brick), then connect again.",
                CLOSE_BAD_REQUEST, reason="unconfirmed",
            )
        self.output_confirmed = self.layout.output_name in seen["output"]

    async def _remember_direct_mode(self) -> None:
        """The cluster is in DIRECT because of this bridge: a durable note, with the token sealed, so
        any replica's sweep can return it to TASK should this process die or Hanami be away then."""
        mode = {"user_id": self.session.user_id, "user_name": self.session.user_name, "since": self.since,
                "token": self.app.state.sessions.seal(self.session.token),
                "token_expires_at": self.session.token_expires_at}
        await self.store.set(MODE_PREFIX + self.cluster_uuid, json.dumps(mode).encode(), MODE_TTL)

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
        next_watch = time.monotonic() + self.registry.session_watch_interval
        while self.close_reason is None:
            now = time.monotonic()
            deadline = min(next_check, next_watch)
            if self.job is None:  # a running job (a long replay) is activity
                deadline = min(deadline, self.last_activity + self.registry.idle_timeout)
            wait = max(0.05, deadline - now)
            try:
                async with asyncio.timeout(wait):  # no task per message, unlike wait_for on Python 3.11
                    item = await self.inbox.get()
            except TimeoutError:
                item = None
            now = time.monotonic()
            # due checks run whether the page is quiet or busy (a stream of messages must not starve them)
            if now >= next_watch:
                await self._watch_session()
                next_watch = time.monotonic() + self.registry.session_watch_interval
            if now >= next_check and self.close_reason is None:
                await self._housekeeping()
                next_check = time.monotonic() + self.registry.housekeeping_interval
            if item is None:
                if self.job is None and now >= self.last_activity + self.registry.idle_timeout:
                    self.request_close(
                        f"The bridge was idle for {self.registry.idle_timeout:g} s and was closed.", CLOSE_IDLE
                    )
                continue
            if item is not JOB_DONE and item is not _DISCONNECTED:
                self.last_seen = time.monotonic()
            if item is _DISCONNECTED:
                if self.close_reason is None:
                    self.close_reason = ("The browser closed the connection.", CLOSE_NORMAL)
                return
            if item is JOB_DONE:
                self.job = None
                self.last_activity = time.monotonic()
                if self.job_error is not None:
                    self.close_reason = self.job_error
                    return
                continue
            await self._dispatch(item)

    async def _watch_session(self) -> None:
        """The session's record in the shared store is the signal: a logout on any replica deletes
        it, expiry lets it lapse. Either ends the bridge within ``session_watch_interval``. The lock
        is refreshed at the same pace, so the lock of a killed console lapses within ``LOCK_TTL``."""
        if not await self.app.state.sessions.exists(self.session.id):
            self.request_close(SESSION_ENDED, CLOSE_SESSION)
            return
        await self._refresh_lock()

    async def _refresh_lock(self) -> None:
        holder = await read_record(self.store, LOCK_PREFIX + self.cluster_uuid)
        if holder is not None and holder.get("session") != session_hash(self.session.id):
            # our lock expired (the console stalled) and someone else holds it now
            self.locked = False
            self.request_close("Direct IO on this cluster was taken over by another session.", CLOSE_BUSY)
            return
        await self.store.set(LOCK_PREFIX + self.cluster_uuid, self._lock_record(), LOCK_TTL)

    async def _housekeeping(self) -> None:
        """Refresh the lock, re-check the session (logout/expiry ends the bridge), renew the token."""
        if self.pings and time.monotonic() - self.last_seen > LIVENESS_TIMEOUT:
            self.request_close("The page stopped answering (network lost?).", CLOSE_IDLE)
            return
        await self._refresh_lock()
        if self.close_reason is not None:
            return
        session = await self.app.state.sessions.load(self.session.id, touch=self.active_since_check)
        self.active_since_check = False
        if session is None:
            self.request_close(SESSION_ENDED, CLOSE_SESSION)
            return
        self.session = session
        try:
            renewed = await renew_token_if_due(self.app, session)
        except TokenExpired:
            # the open backend websocket is not bound to the token (§5.1); the bridge carries on
            log.warning("direct IO token renewal failed", extra={"error": "TokenExpired"})
        else:
            if renewed is not None:
                self.api = renewed
                if self.direct:
                    await self._remember_direct_mode()  # the sweep's token must stay valid

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


class BridgeRegistry:
    """The bridges open in this console process (the store's lock covers all replicas)."""

    def __init__(self, reply_timeout: float, idle_timeout: float) -> None:
        self.reply_timeout = reply_timeout
        self.idle_timeout = idle_timeout
        self.housekeeping_interval = 15.0
        self.session_watch_interval = 1.0  # seconds between looks at the session (logout, expiry)
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

    def close_session_bridges(self, session_id: str) -> None:
        """A logout in this process: its bridges close now (other replicas see the session gone)."""
        for bridge in list(self.bridges.values()):
            if bridge.session.id == session_id:
                bridge.request_close(SESSION_ENDED, CLOSE_SESSION)

    async def shutdown(self) -> None:
        """Graceful shutdown: close every bridge and return its cluster to task mode."""
        for bridge in list(self.bridges.values()):
            bridge.request_close("the console is shutting down", CLOSE_SHUTDOWN)
        pending = [b.cleanup_task() for b in list(self.bridges.values())] + list(self.cleanups)
        if pending:
            await asyncio.wait(pending, timeout=20)
