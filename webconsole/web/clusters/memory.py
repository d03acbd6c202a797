"""What the console remembers about clusters and checkpoints, because Hanami cannot tell (Q-K3).

Hanami has no API to read a cluster's template, its host or the cluster a checkpoint was saved
from. The console records these facts when they pass through it, in the shared key-value store
(so every console replica sees them), under these keys:

* ``cluster-template:<cluster uuid>`` — the template text the console created the cluster with
* ``cluster-host:<cluster uuid>`` — the host uuid of the last switch_host done through the console
* ``checkpoint-source:<checkpoint uuid>`` — JSON ``{"cluster_uuid", "cluster_name", "template"}``
* ``cluster-template-declared:<cluster uuid>`` — JSON ``{"user_id", "user_name", "since"}``: the
  template was declared by a user (a cluster made outside the console), not seen accepted by Hanami
* ``cluster-bricks-seen:<cluster uuid>`` — JSON ``{"input": [...], "output": [...]}``: brick names
  Hanami has shown it has (a CSV request result named after the input brick, a direct-IO answer
  from the output brick); the only names the bridge sends for a declared template
* ``dataset-facts:<dataset uuid>`` — JSON ``{"lines", "columns", "uploaded"}`` of a dataset uploaded
  through the console (Hanami lists no date and reports no CSV column names)

Records expire after ``MEMORY_TTL``; a missing record means "done outside this console" (or too
long ago), and pages say so instead of guessing.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from webconsole.sessions.base import KeyValueStore, read_record, read_records

MEMORY_TTL = 30 * 24 * 3600.0  # seconds

TEMPLATE_PREFIX = "cluster-template:"
HOST_PREFIX = "cluster-host:"
CHECKPOINT_PREFIX = "checkpoint-source:"
DECLARED_PREFIX = "cluster-template-declared:"
SEEN_PREFIX = "cluster-bricks-seen:"
DATASET_PREFIX = "dataset-facts:"
TASK_PREFIX = "task-meta:"  # name, type and dataset of a task queued through the console (tasks.rows)


async def known_template(store: KeyValueStore, cluster_uuid: str) -> str | None:
    """The template text this console created ``cluster_uuid`` with, or None if unknown."""
    raw = await store.get(TEMPLATE_PREFIX + cluster_uuid)
    return raw.decode("utf-8") if raw is not None else None


async def remember_template(store: KeyValueStore, cluster_uuid: str, text: str) -> None:
    await store.set(TEMPLATE_PREFIX + cluster_uuid, text.encode("utf-8"), MEMORY_TTL)


async def forget_template(store: KeyValueStore, cluster_uuid: str) -> None:
    """The cluster's network was replaced by one of unknown shape (a restore): stop vouching for bricks."""
    for prefix in (TEMPLATE_PREFIX, DECLARED_PREFIX, SEEN_PREFIX):
        await store.delete(prefix + cluster_uuid)


async def template_declaration(store: KeyValueStore, cluster_uuid: str) -> dict[str, Any] | None:
    """Who declared the known template of ``cluster_uuid`` (None: the console saw Hanami accept it)."""
    return await read_record(store, DECLARED_PREFIX + cluster_uuid)


async def remember_declared_template(store: KeyValueStore, cluster_uuid: str, text: str, user_id: str,
                                     user_name: str) -> None:
    record = {"user_id": user_id, "user_name": user_name, "since": time.time()}
    await store.set(DECLARED_PREFIX + cluster_uuid, json.dumps(record).encode("utf-8"), MEMORY_TTL)
    await remember_template(store, cluster_uuid, text)


async def bricks_seen(store: KeyValueStore, cluster_uuid: str) -> dict[str, list[str]]:
    """The brick names Hanami has shown ``cluster_uuid`` has: ``{"input": [...], "output": [...]}``."""
    record = await read_record(store, SEEN_PREFIX + cluster_uuid) or {}
    return {kind: [str(name) for name in record.get(kind, [])] for kind in ("input", "output")}


async def remember_bricks_seen(store: KeyValueStore, cluster_uuid: str, kind: str, names: list[str]) -> None:
    seen = await bricks_seen(store, cluster_uuid)
    if all(name in seen[kind] for name in names):
        return
    seen[kind] = sorted(set(seen[kind]) | set(names))
    await store.set(SEEN_PREFIX + cluster_uuid, json.dumps(seen).encode("utf-8"), MEMORY_TTL)


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
    for prefix in (TEMPLATE_PREFIX, HOST_PREFIX, DECLARED_PREFIX, SEEN_PREFIX):
        await store.delete(prefix + cluster_uuid)


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


async def remember_task(store: KeyValueStore, task_uuid: str, meta: dict[str, Any]) -> None:
    """Record name, type and dataset of a task queued through the console, with a creation sequence."""
    data = json.dumps({**meta, "seq": time.time_ns()}).encode()
    await store.set(TASK_PREFIX + task_uuid, data, MEMORY_TTL)


def name_hosts(hosts: list[dict[str, Any]]) -> None:
    """Give every host a ``label`` a person can read: "cpu host 1", "cpu host 2", "cuda host 1"
    (numbered per type in Hanami's order; Hanami has no host names and its uuids change at restart)."""
    seen: dict[str, int] = {}
    for host in hosts:
        kind = str(host.get("type", "")) or "host"
        seen[kind] = seen.get(kind, 0) + 1
        host["label"] = f"{kind} host {seen[kind]}"


async def remember_dataset(store: KeyValueStore, dataset_uuid: str, lines: int, columns: list[str],
                           uploaded: str) -> None:
    """What the upload learnt of a dataset: its rows, its CSV column names, when it was uploaded (UTC)."""
    record = {"lines": lines, "columns": columns, "uploaded": uploaded}
    await store.set(DATASET_PREFIX + dataset_uuid, json.dumps(record).encode("utf-8"), MEMORY_TTL)


async def dataset_facts(store: KeyValueStore, uuids: list[str]) -> dict[str, dict[str, Any]]:
    """The remembered facts of these datasets (absent: uploaded elsewhere, or too long ago)."""
    records = await asyncio.gather(*(read_record(store, DATASET_PREFIX + uuid) for uuid in uuids))
    return {uuid: record for uuid, record in zip(uuids, records) if record is not None}


def label_datasets(datasets: list[dict[str, Any]], facts: dict[str, dict[str, Any]]) -> None:
    """Give every dataset record a ``label`` for pickers: the name and type, and for names that occur
    more than once also the size and upload date (or the uuid's start when the console does not know)."""
    counts: dict[str, int] = {}
    for record in datasets:
        counts[str(record.get("name", ""))] = counts.get(str(record.get("name", "")), 0) + 1
    for record in datasets:
        name, kind = str(record.get("name", "")), str(record.get("type", ""))
        fact = facts.get(str(record.get("uuid", "")), {})
        record["uploaded"] = fact.get("uploaded", "")
        record["lines"] = record.get("lines", fact.get("lines"))
        if counts[name] > 1:
            unit = "images" if kind == "mnist" else "rows"
            parts = [f"{record['lines']:,} {unit}" if isinstance(record["lines"], int) else "",
                     f"uploaded {fact['uploaded']}" if fact.get("uploaded") else "",
                     "" if fact else f"id {str(record.get('uuid', ''))[:8]}"]
            record["label"] = f"{name} ({kind}, " + ", ".join(p for p in parts if p) + ")"
        else:
            record["label"] = f"{name} ({kind})"


async def clusters_by_host(store: KeyValueStore, hosts: list[dict[str, Any]],
                           clusters: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each host's clusters, in the order given (one store round trip); a cluster is marked
    ``recorded`` when the console moved it there, else it is where Hanami starts every cluster."""
    remembered = await known_hosts(store, [str(cluster["uuid"]) for cluster in clusters])
    placement: dict[str, list[dict[str, Any]]] = {host["uuid"]: [] for host in hosts}
    for cluster, host_uuid in zip(clusters, remembered):
        host = resolve_host(hosts, host_uuid)
        if host is not None:
            placement[host["uuid"]].append({**cluster, "recorded": host_uuid is not None})
    return placement


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
