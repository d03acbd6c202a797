"""Who holds which cluster's direct IO: the bridge's records in the shared store and this process's
registry of open bridges.

Every replica sees the shared store, so exclusivity and recovery live there:

* ``bridge:<cluster uuid>`` — the lock of the one open bridge (who, since when, which bricks),
  with a short TTL the open bridge keeps refreshing;
* ``direct-mode:<cluster uuid>`` — the console switched the cluster to DIRECT and has not switched
  it back yet, so a later bridge (or “Return to task mode”) knows that a 409 means "already DIRECT".

The ``BridgeRegistry`` only knows the bridges of this process (their time-outs, and closing them at shutdown).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import TYPE_CHECKING, Any

from webconsole.hanami.errors import Conflict, HanamiError, NotFound
from webconsole.web.bridge_protocol import CLOSE_SHUTDOWN

if TYPE_CHECKING:
    from webconsole.web.bridge import Bridge

log = logging.getLogger("webconsole.direct_io")

LOCK_PREFIX = "bridge:"
MODE_PREFIX = "direct-mode:"
LOCK_TTL = 60.0  # seconds; refreshed every ``housekeeping_interval`` while the bridge is open
MODE_TTL = 30 * 24 * 3600.0
TASK_META_PREFIX = "task-meta:"  # what the tasks pages remember about a task (its name)


def session_hash(session_id: str) -> str:
    """What the store records about a session: never the id itself (it is the cookie)."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:24]


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
