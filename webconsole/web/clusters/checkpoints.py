"""Checkpoints: list, detail, delete, restore into a cluster.

A checkpoint is written by a save task of a cluster (Q-T6) and only then listed. Hanami does not
record which cluster it came from; the console shows that when the save went through it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from webconsole.hanami.client import HanamiAPI
from webconsole.web.core.deps import client_address
from webconsole.web.clusters.memory import checkpoint_origin, forget_checkpoint
from webconsole.web.clusters.pages import require_uuid, restore_into
from webconsole.web.core.deps import CurrentSession, Hanami, resource_router
from webconsole.web.core.listing import paginate
from webconsole.web.core.render import render, url_path

router = resource_router()


@router.get("/checkpoints", name="checkpoints_list")
async def list(request: Request, session: CurrentSession, api: Hanami) -> Response:
    page = paginate(
        request, (await api.list_checkpoints()).records(),
        search=("name", "owner_id", "project_id", "uuid"),
        sortable=("name", "owner_id", "project_id", "uuid"), default_sort="name",
    )
    return await render(request, "checkpoints/list.html", {"page": page}, block="list_region")


async def _detail_context(request: Request, api: HanamiAPI, uuid: str) -> dict[str, Any]:
    checkpoint = await api.get_checkpoint(uuid)  # 404 -> the error mapper
    clusters, origin = await asyncio.gather(
        api.list_clusters(), checkpoint_origin(request.app.state.store, uuid)
    )
    rows = sorted(clusters.records(), key=lambda c: str(c.get("name", "")).lower())
    return {"checkpoint": checkpoint, "clusters": rows, "origin": origin, "errors": {}}


@router.get("/checkpoints/{uuid}", name="checkpoints_detail")
async def detail(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    context = await _detail_context(request, api, require_uuid(uuid))
    return await render(request, "checkpoints/detail.html", context)


@router.post("/checkpoints/{uuid}/restore", name="checkpoints_restore")
async def restore(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    form = await request.form()
    cluster_uuid = str(form.get("cluster_uuid", ""))
    context = await _detail_context(request, api, require_uuid(uuid))  # also proves the checkpoint is listed
    names = {c["uuid"]: c.get("name") for c in context["clusters"]}
    if cluster_uuid not in names:
        context["errors"] = {"cluster_uuid": "Choose a cluster from the list."}
        return await render(request, "checkpoints/detail.html", context, status_code=422)
    await restore_into(request, api, cluster_uuid, uuid)
    session.flash(
        f"Restoring '{context['checkpoint'].get('name')}' into cluster '{names[cluster_uuid]}' is queued "
        "as a task of that cluster.", "success",
    )
    await request.app.state.sessions.save(session)
    return RedirectResponse(url_path(request, "clusters_detail", uuid=cluster_uuid), status_code=303)


@router.get("/checkpoints/{uuid}/delete", name="checkpoints_delete_confirm")
async def delete_confirm(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    checkpoint = await api.get_checkpoint(require_uuid(uuid))
    return await render(request, "checkpoints/delete.html", {"checkpoint": checkpoint})


@router.post("/checkpoints/{uuid}/delete", name="checkpoints_delete")
async def delete(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    # A missing checkpoint is a NotFound (whatever Hanami's misspelled text says) -> the error mapper.
    checkpoint = await api.get_checkpoint(require_uuid(uuid))
    await api.delete_checkpoint(uuid)
    await forget_checkpoint(request.app.state.store, uuid)
    await request.app.state.audit.record(
        session.user_id, "delete checkpoint", f"{checkpoint.get('name')} ({uuid})", client_address(request)
    )
    session.flash(f"Checkpoint '{checkpoint.get('name')}' deleted.", "success")
    await request.app.state.sessions.save(session)
    return RedirectResponse(url_path(request, "checkpoints_list"), status_code=303)
