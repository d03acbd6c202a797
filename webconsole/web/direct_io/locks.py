"""Who holds which cluster's direct IO: the bridge's records in the shared store and this process's
registry of open bridges.

Every replica sees the shared store, so exclusivity and recovery live there:

* ``bridge:<cluster uuid>`` — the lock of the one open bridge (who, since when, which bricks),
  with a short TTL the open bridge keeps refreshing;
* ``direct-mode:<cluster uuid>`` — the console switched the cluster to DIRECT and has not switched
  it back yet, so a later bridge (or “Return to task mode”) knows that a 409 means "already DIRECT".

The ``BridgeRegistry`` of ``bridge`` only knows the bridges of this process.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from webconsole.hanami.errors import Conflict, HanamiError, NotFound, TokenExpired, Unauthorized
from webconsole.sessions import read_record

log = logging.getLogger("webconsole.direct_io")

LOCK_PREFIX = "bridge:"
MODE_PREFIX = "direct-mode:"
LOCK_TTL = 10.0  # seconds; refreshed every ``session_watch_interval`` (1 s) while the bridge is open
MODE_TTL = 30 * 24 * 3600.0
TASK_META_PREFIX = "task-meta:"  # what the tasks pages remember about a task (its name)


def session_hash(session_id: str) -> str:
    """What the store records about a session: never the id itself (it is the cookie)."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:24]


async def sweep_left_in_direct(app: Any) -> int:
    """Return to TASK every cluster a bridge left in DIRECT whose bridge is gone (no lock): its
    console died, or Hanami was away when the bridge closed. Returns how many went back."""
    store = app.state.store
    returned = 0
    for key in await store.keys(MODE_PREFIX):
        cluster_uuid = key.removeprefix(MODE_PREFIX)
        if await store.get(LOCK_PREFIX + cluster_uuid) is not None:
            continue  # a bridge holds it (on some replica): it is in DIRECT on purpose
        record = await read_record(store, key) or {}
        token = app.state.sessions.unseal(str(record.get("token", ""))) if record.get("token") else None
        if token is None:
            continue  # no token kept: the direct-IO page offers "Return to task mode"
        try:
            if await return_to_task_mode(app.state.hanami.api(token), store, cluster_uuid):
                returned += 1
                log.info("cluster %s returned to task mode by the sweep", cluster_uuid)
        except (TokenExpired, Unauthorized):
            continue  # the page's action still works for its user
    return returned


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
