"""Datasets: list, detail, delete (with a confirmation page) and the upload page.

The upload machinery (multipart parsing, validation, the background send, status, cancel) is in
``webconsole.web.datasets.uploads``; this module includes its routes so the route table has one entry.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from webconsole.hanami.client import HanamiAPI
from webconsole.hanami.errors import NotFound
from webconsole.web.clusters.memory import dataset_facts
from webconsole.web.datasets import details, half_datasets, uploads
from webconsole.web.datasets.contents import forget_contents
from webconsole.web.core.deps import client_address
from webconsole.web.core.deps import CurrentSession, Hanami, resource_router
from webconsole.web.core.listing import paginate
from webconsole.web.core.render import redirect, render, url_path

router = resource_router()

SEARCH = ("name", "type", "owner_id", "project_id", "uuid")
LIST_SORTABLE = ("name", "type", "owner_id", "project_id", "visibility")
DETAIL_COLUMNS = details.COLUMNS


async def _add_details(request: Request, api: HanamiAPI, rows: list[dict[str, Any]], recheck: bool = False) -> None:
    """Fill inputs/outputs/lines of listed rows: from what the console keeps, else read once (guarded
    against concurrently deleted datasets, Q-C2: see ``details``)."""
    await request.app.state.dataset_details.fill(request.app.state.store, api, rows, recheck=recheck)


@router.get("/datasets", name="datasets_list")
async def list(request: Request, session: CurrentSession, api: Hanami) -> Response:  # noqa: A001
    records = (await api.list_datasets()).records()
    sort = request.query_params.get("sort", "name")
    if sort in DETAIL_COLUMNS:
        # sorting by a detail column needs every row's details; otherwise only the shown page's
        await _add_details(request, api, records)
    page = paginate(request, records, search=SEARCH, sortable=LIST_SORTABLE + DETAIL_COLUMNS,
                    default_sort="name")
    if sort not in DETAIL_COLUMNS:
        await _add_details(request, api, page.rows)
    return await render(request, "datasets/list.html", {"page": page, "any_datasets": bool(records)},
                        block="dataset_table")


@router.get("/datasets/upload", name="datasets_upload")
async def new(request: Request, session: CurrentSession) -> Response:
    kind = request.query_params.get("kind", "mnist")
    return await render(request, "datasets/upload.html",
                        {"form_kind": kind if kind in ("mnist", "csv") else "mnist", "values": {}, "errors": {}})


async def _listed(api: HanamiAPI, uuid: str) -> dict[str, Any]:
    """The list record of a visible dataset, or NotFound (never send Hanami an unknown uuid, Q-C2)."""
    record = (await api.list_datasets()).find("uuid", uuid)
    if record is None:
        raise NotFound(f"Data-set with uuid '{uuid}' not found", status=404, endpoint="GET v1/dataset")
    return record


@router.get("/datasets/{uuid}", name="datasets_detail")
async def detail(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    dataset = dict(await _listed(api, uuid))
    await _add_details(request, api, [dataset], recheck=True)  # an upload that just finished shows at once
    # Hanami reports no CSV column names (inputs and outputs are always 0): what the upload learnt.
    facts = (await dataset_facts(request.app.state.store, [uuid])).get(uuid, {})
    return await render(request, "datasets/detail.html", {"dataset": dataset, "facts": facts})


@router.get("/datasets/{uuid}/delete", name="datasets_delete_confirm")
async def delete_confirm(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    dataset = await _listed(api, uuid)
    return await render(request, "datasets/delete.html", {"dataset": dataset})


@router.post("/datasets/{uuid}/delete", name="datasets_delete")
async def delete(request: Request, uuid: str, session: CurrentSession, api: Hanami) -> Response:
    dataset = await _listed(api, uuid)
    await api.delete_dataset(uuid)
    await forget_contents(request.app.state.store, uuid)
    await request.app.state.audit.record(
        session.user_id, "dataset delete", f"{dataset.get('type')} dataset '{dataset.get('name')}' ({uuid})",
        client_address(request),
    )
    session.flash(f"Dataset '{dataset.get('name')}' deleted.", "success")
    await request.app.state.sessions.save(session)
    return redirect(request, url_path(request, "datasets_list"))


router.include_router(uploads.router)


def setup(app: FastAPI) -> None:
    app.state.dataset_details = details.DatasetDetails()
    uploads.setup(app)
    half_datasets.setup(app)
