"""A cluster's tasks that have not finished, which make it unsafe to delete.

A real Hanami 0.4.1 has crashed when a cluster was deleted under its queued or running tasks, and
an aborted task keeps running until its last cycle (Q-T4), so the console deletes a cluster only
once none of its tasks is in one of these states.
"""

from __future__ import annotations

from webconsole.hanami.client import HanamiAPI

UNFINISHED = frozenset({"queued", "active", "aborted"})


async def unfinished_tasks(api: HanamiAPI, cluster_uuid: str) -> dict[str, int]:
    """How many of the cluster's tasks are in each unfinished state (empty: safe to delete)."""
    counts: dict[str, int] = {}
    for row in (await api.list_tasks(cluster_uuid)).records():
        state = str(row.get("state", ""))
        if state in UNFINISHED:
            counts[state] = counts.get(state, 0) + 1
    return counts
