"""What the page asks of an open direct-IO bridge: its messages, dispatched one exchange at a time.

``BridgeOperations`` is the half of ``webconsole.web.direct_io.bridge.Bridge`` that serves the page once the
bridge is open: ``ping``/``close``/``stop`` are answered at once; ``ask`` (one request), ``teach``
(one sample, repeated) and ``replay`` (an uploaded dataset, requested or trained sample by sample)
each run as the bridge's single job. An operation is an async generator: it validates the message,
yields once (a ValueError before that is an answer to the page, not a failure), then does the work.
The attributes and the ``send``/``request_close`` methods it uses belong to ``Bridge``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from webconsole.hanami.errors import HanamiError
from webconsole.web.direct_io.protocol import CLOSE_BACKEND, CLOSE_NORMAL, Layout
from webconsole.web.direct_io.replay import REPLAY_PREFIX, replay_samples
from webconsole.sessions import read_record
from webconsole.web.direct_io.locks import session_hash
from webconsole.web.clusters.memory import remember_bricks_seen

if TYPE_CHECKING:
    from webconsole.hanami.direct_io import DirectIOSession
    from webconsole.sessions import Session

log = logging.getLogger("webconsole.direct_io")

MAX_REPEAT = 1000

JOB_DONE = object()  # put in the bridge's inbox when its job ends


_NUMBER_TYPES = frozenset({int, float})


def _numbers(raw: Any, size: int, what: str) -> list[float]:
    if not isinstance(raw, list):
        raise ValueError(f"{what}: a list of numbers is needed.")
    if len(raw) != size:
        raise ValueError(f"{what}: {size} values are needed, {len(raw)} were given.")
    # type() and map() keep this at C speed for a 784-pixel image (bool is not int here: a JSON
    # true/false is refused, and so are strings, lists and None)
    if not set(map(type, raw)) <= _NUMBER_TYPES:
        raise ValueError(f"{what}: every value must be a finite number.")
    try:
        values = list(map(float, raw))
    except OverflowError:  # an integer too large for a float
        values = [math.inf]
    if not all(map(math.isfinite, values)):
        raise ValueError(f"{what}: every value must be a finite number.")
    return values


def winner(values: list[float]) -> int | None:
    return max(range(len(values)), key=values.__getitem__) if values else None


class BridgeOperations:
    """The page's operations on an open bridge (mixed into ``Bridge``, which sets these up)."""

    store: Any
    session: Session
    layout: Layout | None
    io: DirectIOSession | None
    inbox: asyncio.Queue[Any]
    job: asyncio.Task[None] | None
    job_error: tuple[str, int] | None
    stop_requested: bool
    last_activity: float
    pings: bool
    active_since_check: bool
    replays: list[str]
    cluster_uuid: str
    declared: bool
    output_confirmed: bool

    def _require_confirmed_output(self) -> None:
        """Training sends the output brick's name: for a declared template only once Hanami named it."""
        assert self.layout is not None
        if not self.output_confirmed:
            raise ValueError(f"Hanami has not confirmed the output brick '{self.layout.output_name}' of the declared "
                             "template yet: ask once first (its answer names the output brick), then teach.")

    async def _note_output_brick(self) -> None:
        """After a request: the answer names the output brick, which confirms (or refutes) the declaration."""
        assert self.layout is not None and self.io is not None
        answered = self.io.last_output_brick
        if self.output_confirmed or not answered:
            return
        await remember_bricks_seen(self.store, self.cluster_uuid, "output", [answered])
        if answered == self.layout.output_name:
            self.output_confirmed = True
        else:
            await self.send(type="error", message=(
                f"Hanami answered from an output brick named '{answered}', but the declared template names it "
                f"'{self.layout.output_name}': teaching stays refused until the template is corrected."))

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
            self.inbox.put_nowait(JOB_DONE)

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
        await self._note_output_brick()
        await self.send(type="output", values=out, winner=winner(out), ms=round(elapsed, 2))

    async def _teach(self, message: dict[str, Any]) -> Any:
        assert self.layout is not None and self.io is not None
        values = _numbers(message.get("values"), self.layout.input_size, "Input")
        expected = self._expected(message)
        self._require_confirmed_output()
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
        if mode == "train":
            self._require_confirmed_output()
        limit = message.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError("The number of samples must be a whole number of 1 or more.")
        replay_id = str(message.get("id", ""))
        record = await read_record(self.store, REPLAY_PREFIX + replay_id)
        if record is None or record.get("session") != session_hash(self.session.id):
            raise ValueError("That uploaded dataset is not available any more: upload it again.")
        if replay_id not in self.replays:
            self.replays.append(replay_id)  # its files go when the bridge closes
        samples, total, classify = replay_samples(record, layout)
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
                await self._note_output_brick()
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
