"""What the console remembers about clusters and checkpoints, because Hanami cannot tell (Q-K3).

Hanami has no API to read a cluster's template, its host or the cluster a checkpoint was saved
from. The console records these facts when they pass through it, in the shared key-value store
(so every console replica sees them), under these keys:

* ``cluster-template:<cluster uuid>`` — the template text the console created the cluster with
* ``cluster-host:<cluster uuid>`` — the host uuid of the last switch_host done through the console
* ``checkpoint-source:<checkpoint uuid>`` — JSON ``{"cluster_uuid", "cluster_name", "template"}``

Records expire after ``MEMORY_TTL``; a missing record means "done outside this console" (or too
long ago), and pages say so instead of guessing.
"""

from __future__ import annotations

import json
from typing import Any

from webconsole.sessions.base import KeyValueStore, read_record, read_records

MEMORY_TTL = 30 * 24 * 3600.0  # seconds

TEMPLATE_PREFIX = "cluster-template:"
HOST_PREFIX = "cluster-host:"
CHECKPOINT_PREFIX = "checkpoint-source:"


async def known_template(store: KeyValueStore, cluster_uuid: str) -> str | None:
    """The template text this console created ``cluster_uuid`` with, or None if unknown."""
    raw = await store.get(TEMPLATE_PREFIX + cluster_uuid)
    return raw.decode("utf-8") if raw is not None else None


async def remember_template(store: KeyValueStore, cluster_uuid: str, text: str) -> None:
    await store.set(TEMPLATE_PREFIX + cluster_uuid, text.encode("utf-8"), MEMORY_TTL)


async def forget_template(store: KeyValueStore, cluster_uuid: str) -> None:
    """The cluster's network was replaced by one of unknown shape (a restore): stop vouching for bricks."""
    await store.delete(TEMPLATE_PREFIX + cluster_uuid)


async def known_host(store: KeyValueStore, cluster_uuid: str) -> str | None:
    """The host uuid the console last moved ``cluster_uuid`` to, or None (= the first cpu host)."""
    raw = await store.get(HOST_PREFIX + cluster_uuid)
    return raw.decode("utf-8") if raw is not None else None


async def known_hosts(store: KeyValueStore, cluster_uuids: list[str]) -> list[str | None]:
    """``known_host`` for a page of clusters, in one store round trip."""
    raws = await store.get_many([HOST_PREFIX + uuid for uuid in cluster_uuids]) if cluster_uuids else []
    return [raw.decode("utf-8") if raw is not None else None for raw in raws]


async def remember_host(store: KeyValueStore, cluster_uuid: str, host_uuid: str) -> None:
    await store.set(HOST_PREFIX + cluster_uuid, host_uuid.encode("utf-8"), MEMORY_TTL)


async def forget_cluster(store: KeyValueStore, cluster_uuid: str) -> None:
    """Drop what we knew about a deleted cluster (its checkpoints' origin records stay)."""
    await store.delete(TEMPLATE_PREFIX + cluster_uuid)
    await store.delete(HOST_PREFIX + cluster_uuid)


async def checkpoint_origin(store: KeyValueStore, checkpoint_uuid: str) -> dict[str, Any] | None:
    """Where a checkpoint came from, if it was saved through this console."""
    return await read_record(store, CHECKPOINT_PREFIX + checkpoint_uuid)


async def checkpoint_origins(store: KeyValueStore, checkpoint_uuids: list[str]) -> list[dict[str, Any] | None]:
    """``checkpoint_origin`` for a page of checkpoints, in one store round trip."""
    return await read_records(store, [CHECKPOINT_PREFIX + uuid for uuid in checkpoint_uuids])


async def remember_checkpoint_origin(
    store: KeyValueStore, checkpoint_uuid: str, cluster_uuid: str, cluster_name: str, template: str | None
) -> None:
    # The checkpoint uuid is the save task's uuid (Q-T6), so we can record it before it exists.
    record = {"cluster_uuid": cluster_uuid, "cluster_name": cluster_name, "template": template}
    await store.set(CHECKPOINT_PREFIX + checkpoint_uuid, json.dumps(record).encode("utf-8"), MEMORY_TTL)


async def forget_checkpoint(store: KeyValueStore, checkpoint_uuid: str) -> None:
    await store.delete(CHECKPOINT_PREFIX + checkpoint_uuid)


def resolve_host(hosts: list[dict[str, Any]], remembered: str | None) -> dict[str, Any] | None:
    """The host a cluster runs on: the remembered one if it still exists, else the first cpu host.

    Hanami starts every cluster on the first cpu host (§4.15) and regenerates host uuids at every
    restart (which also wipes all clusters), so a stale record can only belong to a gone cluster.
    """
    for host in hosts:
        if remembered and host.get("uuid") == remembered:
            return host
    for host in hosts:
        if host.get("type") == "cpu":
            return host
    return hosts[0] if hosts else None
