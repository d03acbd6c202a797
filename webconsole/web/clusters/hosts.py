"""Hosts: Hanami's logical hosts and which clusters run where.

No API reports a cluster's host; the console knows the moves it made (``cluster-host:<uuid>``),
and every other cluster runs on the first cpu host, where Hanami starts all clusters (§4.42).
"""

from __future__ import annotations

import asyncio

from fastapi import Request
from fastapi.responses import Response

from webconsole.web.clusters.memory import clusters_by_host, name_hosts
from webconsole.web.core.deps import CurrentSession, Hanami, resource_router
from webconsole.web.core.listing import paginate
from webconsole.web.core.render import render

router = resource_router()


#: clusters named under each host; the rest are one link away (the cluster list filtered by host)
CLUSTERS_SHOWN = 10


@router.get("/hosts", name="hosts_list")
async def list(request: Request, session: CurrentSession, api: Hanami) -> Response:
    hosts_table, clusters_table = await asyncio.gather(api.list_hosts(), api.list_clusters())
    hosts = hosts_table.records()
    clusters = sorted(clusters_table.records(), key=lambda c: str(c.get("name", "")).lower())
    placement = await clusters_by_host(request.app.state.store, hosts, clusters)
    name_hosts(hosts)
    for position, host in enumerate(hosts):
        host["index"] = position + 1
        host["cluster_count"] = len(placement[host["uuid"]])
    page = paginate(request, hosts, search=("uuid", "type"), sortable=("index", "type", "uuid", "cluster_count"),
                    default_sort="index")
    shown = {uuid: here[:CLUSTERS_SHOWN] for uuid, here in placement.items()}
    return await render(request, "hosts/list.html", {"page": page, "placement": shown}, block="list_region")
