"""Projects (admin only): list, detail, create, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, HTTPException, Request
from fastapi.responses import Response

from webconsole.hanami.client import HanamiAPI
from webconsole.hanami.errors import InputError
from webconsole.web.core.forms import ID, NAME, check_fields
from webconsole.web.core.deps import client_address
from webconsole.web.core.deps import AdminSession, Hanami, resource_router
from webconsole.web.core.listing import paginate
from webconsole.web.core.render import redirect, render, url_path
from webconsole.web.core.once import submitted_once

router = resource_router()
RULES = {"id": ID, "name": NAME}



def _checked_id(project_id: str) -> str:
    # A malformed id in the URL never reaches the backend.
    if ID.check(project_id):
        raise HTTPException(404, f"'{project_id}' is not a valid project id: {ID.message}")
    return project_id


def members_of(users: list[dict], project_id: str) -> list[dict]:
    """Users assigned to ``project_id`` with their role (from the user list: Hanami has no reverse lookup)."""
    found = []
    for user in users:
        for entry in user.get("projects") or []:
            if isinstance(entry, dict) and entry.get("project_id") == project_id:
                found.append({"id": user.get("id"), "name": user.get("name"), "role": entry.get("role"),
                              "is_project_admin": bool(entry.get("is_project_admin"))})
    return found


@router.get("/projects", name="projects_list")
async def list_all(request: Request, session: AdminSession, api: Hanami) -> Response:
    table = await api.list_projects()
    page = paginate(request, table.records(), search=("id", "name", "creator_id"),
                    sortable=("id", "name", "creator_id"), default_sort="id")
    return await render(request, "projects/list.html", {"page": page}, block="project_table")


@router.get("/projects/new", name="projects_new")
async def new(request: Request, session: AdminSession) -> Response:
    return await render(request, "projects/form.html", {"values": {}, "errors": {}, "rules": RULES})


@router.post("/projects", name="projects_create")
@submitted_once
async def create(
    request: Request, session: AdminSession, api: Hanami,
    id: Annotated[str, Form()] = "", name: Annotated[str, Form()] = "",
) -> Response:
    values = {"id": id.strip(), "name": name}
    errors = check_fields(values, RULES)
    backend_error = ""
    if not errors:
        try:
            await api.create_project(values["id"], values["name"])
        except InputError as exc:
            backend_error = exc.message or str(exc)
            await request.app.state.audit.record(session.user_id, "create project", f"{values['id']}: {backend_error}",
                                                 client_address(request), "refused")
    if errors or backend_error:
        return await render(
            request, "projects/form.html",
            {"values": values, "errors": errors, "backend_error": backend_error, "rules": RULES},
            block="project_form", status_code=422,
        )
    await request.app.state.audit.record(session.user_id, "create project", values["id"], client_address(request))
    session.flash(f"Project {values['id']} created.", "success")
    await request.app.state.sessions.save(session)
    return redirect(request, url_path(request, "projects_detail", project_id=values["id"]))


async def _project_and_members(api: HanamiAPI, project_id: str) -> dict[str, Any]:
    project = await api.get_project(_checked_id(project_id))
    users = (await api.list_users()).records()
    return {"project": project, "members": members_of(users, project_id)}


@router.get("/projects/{project_id}", name="projects_detail")
async def detail(request: Request, project_id: str, session: AdminSession, api: Hanami) -> Response:
    return await render(request, "projects/detail.html", await _project_and_members(api, project_id))


@router.get("/projects/{project_id}/delete", name="projects_delete_confirm")
async def delete_confirm(request: Request, project_id: str, session: AdminSession, api: Hanami) -> Response:
    return await render(request, "projects/delete.html", await _project_and_members(api, project_id))


@router.post("/projects/{project_id}/delete", name="projects_delete")
async def delete(request: Request, project_id: str, session: AdminSession, api: Hanami) -> Response:
    await api.delete_project(_checked_id(project_id))
    await request.app.state.audit.record(session.user_id, "delete project", project_id, client_address(request))
    session.flash(f"Project {project_id} deleted. Assignments and resources that used it remain.", "success")
    await request.app.state.sessions.save(session)
    return redirect(request, url_path(request, "projects_list"))
