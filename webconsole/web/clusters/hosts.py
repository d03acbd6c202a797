"""Hosts: Hanami's logical hosts and which clusters run where.

No API reports a cluster's host; the console knows the moves it made (``cluster-host:<uuid>``),
and every other cluster runs on the first cpu host, where Hanami starts all clusters (§4.42).
"""

from __future__ import annotations

import asyncio

from fastapi import Request
from fastapi.responses import Response

from webconsole.web.clusters.memory import known_hosts, name_hosts, resolve_host
from webconsole.web.core.deps import CurrentSession, Hanami, resource_router
from webconsole.web.core.listing import paginate
from webconsole.web.core.render import render

router = resource_router()


@router.get("/hosts", name="hosts_list")
async def list(request: Request, session: CurrentSession, api: Hanami) -> Response:
    hosts_table, clusters_table = await asyncio.gather(api.list_hosts(), api.list_clusters())
    hosts = hosts_table.records()
    clusters = sorted(clusters_table.records(), key=lambda c: str(c.get("name", "")).lower())
    store = request.app.state.store
    remembered = await known_hosts(store, [str(c["uuid"]) for c in clusters])
    placement: dict[str, list[dict]] = {h["uuid"]: [] for h in hosts}
    for cluster, host_uuid in zip(clusters, remembered):
        host = resolve_host(hosts, host_uuid)
        if host is not None:
            placement[host["uuid"]].append({**cluster, "recorded": host_uuid is not None})
    name_hosts(hosts)
    for position, host in enumerate(hosts):
        host["index"] = position + 1
        host["cluster_count"] = len(placement[host["uuid"]])
    page = paginate(request, hosts, search=("uuid", "type"), sortable=("index", "type", "uuid", "cluster_count"),
                    default_sort="index")
    return await render(request, "hosts/list.html", {"page": page, "placement": placement}, block="list_region")
