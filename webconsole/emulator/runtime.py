"""In-memory clusters, their FIFO task queues and worker threads (§7.1, §7.2)."""

from __future__ import annotations

import logging
import threading
import uuid as uuidlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .clock import utc_now

log = logging.getLogger(__name__)

TASK_MODE, DIRECT_MODE = "TASK", "DIRECT"


@dataclass
class Task:
    uuid: str
    name: str  # internal name (Q-T3 for CSV)
    kind: str  # train | request | save | restore
    user: dict[str, Any]
    inputs: np.ndarray | None = None  # (cycles, n_in)
    expected: np.ndarray | None = None  # (cycles, n_out) for train
    result_kind: str = "mnist"  # mnist -> class indices, csv -> mean of the outputs
    checkpoint_uuid: str | None = None
    state: str = "queued"
    percentage: float = 0.0
    queued: str = field(default_factory=utc_now)
    start: str = "-"
    end: str = "-"
    output: list[Any] = field(default_factory=list)

    @property
    def cycles(self) -> int:
        return 0 if self.inputs is None else len(self.inputs)


class Cluster:
    """One cluster = one Network plus its queue. Work runs on a worker thread per active task."""

    def __init__(self, uuid: str, name: str, network: Any, host_uuid: str,
                 on_finish: Callable[["Cluster", Task], None]):
        self.uuid = uuid
        self.name = name
        self.network = network
        self.host_uuid = host_uuid
        self.mode = TASK_MODE
        self.tasks: dict[str, Task] = {}
        self.queue: deque[Task] = deque()
        self.active: Task | None = None
        self.deleted = False
        self.lock = threading.RLock()  # guards mode/queue/tasks
        self.net_lock = threading.Lock()  # guards the network (tasks and direct IO)
        self._on_finish = on_finish  # writes request results / checkpoints (those as the save starts)
        self.threads: list[threading.Thread] = []
        self.websocket: object | None = None  # the newest websocket session attached (only it is answered)

    # -- queue --------------------------------------------------------------------------------
    def add_task(self, task: Task) -> None:
        with self.lock:
            self.tasks[task.uuid] = task
            self.queue.append(task)
            self._kick()

    def _kick(self) -> None:
        if self.deleted or self.mode != TASK_MODE or self.active is not None or not self.queue:
            return
        task = self.queue.popleft()
        task.state = "active"
        task.start = utc_now()
        self.active = task
        if task.kind == "save":
            # Hanami registers the checkpoint (and takes its data) as the save task starts: on an
            # idle cluster before cluster/save answers, and it stays when the cluster goes (§14)
            try:
                self._on_finish(self, task)
            except Exception:  # noqa: BLE001 - failures are silent (Q-T6)
                log.exception("task %s failed", task.uuid)
        thread = threading.Thread(target=self._run, args=(task,), name=f"WorkerThread_{task.uuid[:8]}",
                                  daemon=True)
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()

    def set_mode(self, new_state: str) -> bool:
        with self.lock:
            if new_state == DIRECT_MODE and self.mode == TASK_MODE and self.active is None:
                self.mode = DIRECT_MODE
                return True
            if new_state == TASK_MODE and self.mode == DIRECT_MODE:
                self.mode = TASK_MODE
                self._kick()
                return True
            return False

    def delete_task(self, uuid: str) -> bool:
        with self.lock:
            task = self.tasks.get(uuid)
            if task is None:
                return False
            if task.state == "queued":
                self.queue.remove(task)
                del self.tasks[uuid]
            elif task.state == "active":
                task.state = "aborted"  # Q-T4: only marked, processing continues
            else:
                del self.tasks[uuid]
            return True

    def delete(self) -> None:
        with self.lock:
            self.deleted = True
            self.queue.clear()
            self.tasks.clear()

    def sorted_tasks(self) -> list[Task]:
        with self.lock:
            return [self.tasks[k] for k in sorted(self.tasks)]

    # -- processing ---------------------------------------------------------------------------
    def _run(self, task: Task) -> None:
        try:
            if task.kind in ("train", "request"):
                task.output = self._cycles(task)
            if not self.deleted and task.kind != "save":
                self._on_finish(self, task)  # request result written *before* the state flips
        except Exception:  # noqa: BLE001 - failures are silent (Q-T6), the worker goes on
            log.exception("task %s failed", task.uuid)
        with self.lock:
            task.state = "finished"  # also overwrites 'aborted' (Q-T4)
            task.end = utc_now()
            self.active = None
            self._kick()

    def _cycles(self, task: Task) -> list[Any]:
        """Run every cycle; progress = cycles done / total, updated as the work goes."""
        assert task.inputs is not None
        total = task.cycles
        output: list[Any] = []
        step = REQUEST_BATCH if task.kind == "request" else 1
        for first in range(0, total, step):
            if self.deleted:
                break
            last = min(total, first + step)
            with self.net_lock:
                if task.kind == "train":
                    assert task.expected is not None
                    self.network.train_step(task.inputs[first], task.expected[first])
                else:
                    outputs = _forward_batch(self.network, task.inputs[first:last])
                    for out in outputs:
                        if task.result_kind == "mnist":
                            output.append(int(np.argmax(out)))
                        else:
                            output.append(float(np.float32(np.mean(out))) if out.size else 0.0)
            task.percentage = float(np.float32(last / total))
        return output


REQUEST_BATCH = 50  # request cycles computed together (progress still rises in small steps)


def _forward_batch(network: Any, inputs: np.ndarray) -> list[np.ndarray]:
    if hasattr(network, "forward_many"):
        return list(np.asarray(network.forward_many(inputs)))
    return [np.asarray(network.forward(x)) for x in inputs]


def new_uuid() -> str:
    return str(uuidlib.uuid4())
