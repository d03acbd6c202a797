"""Users (admin only): list, detail, create, delete, assign and remove projects."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, HTTPException, Request
from fastapi.responses import Response

from webconsole.hanami.client import HanamiAPI
from webconsole.hanami.errors import InputError
from webconsole.sessions import Session
from webconsole.web.core.forms import ID, ID_EXT, NAME, PASSWORD, ROLE_SUGGESTIONS, check_fields, checkbox
from webconsole.web.core.deps import client_address
from webconsole.web.core.deps import AdminSession, Hanami, resource_router
from webconsole.web.core.listing import paginate
from webconsole.web.core.render import redirect, render, url_path
from webconsole.web.core.once import submitted_once

router = resource_router()
CREATE_RULES = {"id": ID_EXT, "name": NAME, "password": PASSWORD}
ASSIGN_RULES = {"project_id": ID, "role": ID}
SELF_DELETE = "You cannot delete your own account. Ask another admin to do it."



def _checked(value: str, rule: Any, what: str) -> str:
    # A malformed id in the URL never reaches the backend.
    if rule.check(value):
        raise HTTPException(404, f"'{value}' is not a valid {what}: {rule.message}")
    return value


def _projects_text(projects: Any) -> str:
    """Searchable/sortable text of a user's assignments ("p1 (member), p2 (admin)")."""
    if not isinstance(projects, list):
        return ""
    return ", ".join(f"{p.get('project_id')} ({p.get('role')})" for p in projects if isinstance(p, dict))


async def _after_change(request: Request, session: Session, action: str, detail: str, message: str,
                        target: str) -> Response:
    await request.app.state.audit.record(session.user_id, action, detail, client_address(request))
    session.flash(message, "success")
    await request.app.state.sessions.save(session)
    return redirect(request, target)


async def _refused(request: Request, session: Session, action: str, detail: str) -> None:
    await request.app.state.audit.record(session.user_id, action, detail, client_address(request), "refused")


async def _project_ids(api: HanamiAPI) -> list[str]:
    return sorted(str(row.get("id")) for row in (await api.list_projects()).records())


def _roles(request: Request) -> list[str]:
    """The roles the backend's access policy knows (setting ``POLICY_ROLES``; Hanami cannot tell)."""
    return list(request.app.state.settings.policy_roles) or list(ROLE_SUGGESTIONS)


async def _detail_page(request: Request, api: HanamiAPI, user_id: str, *, assign_values: dict | None = None,
                       assign_errors: dict | None = None, backend_error: str = "", status_code: int = 200,
                       block: str | None = None) -> Response:
    user = await api.get_user(user_id)
    projects = await _project_ids(api)
    return await render(request, "users/detail.html", {
        "user": user, "known_projects": projects, "roles": _roles(request), "rules": ASSIGN_RULES,
        "values": assign_values or {"role": "member"}, "errors": assign_errors or {},
        "backend_error": backend_error,
    }, status_code=status_code, block=block)


@router.get("/users", name="users_list")
async def list_all(request: Request, session: AdminSession, api: Hanami) -> Response:
    records = (await api.list_users()).records()
    for row in records:
        row["projects_text"] = _projects_text(row.get("projects"))
    page = paginate(request, records, search=("id", "name", "creator_id", "projects_text"),
                    sortable=("id", "name", "creator_id", "is_admin", "projects_text"), default_sort="id")
    return await render(request, "users/list.html", {"page": page}, block="user_table")


@router.get("/users/new", name="users_new")
async def new(request: Request, session: AdminSession) -> Response:
    return await render(request, "users/form.html", {"values": {}, "errors": {}, "rules": CREATE_RULES})


@router.post("/users", name="users_create")
@submitted_once
async def create(
    request: Request, session: AdminSession, api: Hanami,
    id: Annotated[str, Form()] = "", name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "", is_admin: Annotated[str | None, Form()] = None,
) -> Response:
    values = {"id": id.strip(), "name": name, "password": password, "is_admin": checkbox(is_admin)}
    errors = check_fields(values, CREATE_RULES)
    backend_error = ""
    if not errors:
        try:
            await api.create_user(values["id"], values["name"], password, values["is_admin"])
        except InputError as exc:
            backend_error = exc.message or str(exc)
            await _refused(request, session, "create user", f"{values['id']}: {backend_error}")
    if errors or backend_error:
        values["password"] = ""  # never echoed back into the page
        return await render(
            request, "users/form.html",
            {"values": values, "errors": errors, "backend_error": backend_error, "rules": CREATE_RULES},
            block="user_form", status_code=422,
        )
    kind = "admin" if values["is_admin"] else "user"
    return await _after_change(
        request, session, "create user", f"{values['id']} ({kind})",
        f"User {values['id']} created." + ("" if values["is_admin"] else
                                           " Assign a project so they can log in."),
        url_path(request, "users_detail", user_id=values["id"]),
    )


@router.get("/users/{user_id}", name="users_detail")
async def detail(request: Request, user_id: str, session: AdminSession, api: Hanami) -> Response:
    return await _detail_page(request, api, _checked(user_id, ID_EXT, "user id"))


@router.post("/users/{user_id}/projects", name="users_assign_project")
@submitted_once
async def assign_project(
    request: Request, user_id: str, session: AdminSession, api: Hanami,
    project_id: Annotated[str, Form()] = "", role: Annotated[str, Form()] = "",
    is_project_admin: Annotated[str | None, Form()] = None,
) -> Response:
    _checked(user_id, ID_EXT, "user id")
    values = {"project_id": project_id.strip(), "role": role.strip(),
              "is_project_admin": checkbox(is_project_admin)}
    errors = check_fields(values, ASSIGN_RULES)
    # Hanami accepts any project id and any role (§2.1): a typo would assign a project that does not
    # exist, or a role that grants nothing. Only listed projects and the policy's roles are offered.
    if "project_id" not in errors and values["project_id"] not in await _project_ids(api):
        errors["project_id"] = (f"There is no project '{values['project_id']}'. Choose one from the list, "
                                "or create the project first on the projects page.")
    if "role" not in errors and values["role"] not in _roles(request):
        errors["role"] = (f"The access policy knows no role '{values['role']}', so it would grant nothing. "
                          f"Choose {' or '.join(_roles(request))}.")
    backend_error = ""
    if not errors:
        try:
            await api.assign_project(user_id, values["project_id"], values["role"], values["is_project_admin"])
        except InputError as exc:
            backend_error = exc.message or str(exc)
            await _refused(request, session, "assign project", f"{user_id} → {values['project_id']}: {backend_error}")
    if errors or backend_error:
        return await _detail_page(request, api, user_id, assign_values=values, assign_errors=errors,
                                  backend_error=backend_error, status_code=422, block="assign_form")
    flag = ", project admin" if values["is_project_admin"] else ""
    return await _after_change(
        request, session, "assign project", f"{user_id} → {values['project_id']} as {values['role']}{flag}",
        f"{user_id} now has the role {values['role']} in project {values['project_id']}.",
        url_path(request, "users_detail", user_id=user_id),
    )


@router.get("/users/{user_id}/projects/{project_id}/remove", name="users_remove_project_confirm")
async def remove_project_confirm(request: Request, user_id: str, project_id: str, session: AdminSession,
                                 api: Hanami) -> Response:
    user = await api.get_user(_checked(user_id, ID_EXT, "user id"))
    _checked(project_id, ID, "project id")
    return await render(request, "users/remove_project.html", {"user": user, "project_id": project_id})


@router.post("/users/{user_id}/projects/{project_id}/remove", name="users_remove_project")
async def remove_project(request: Request, user_id: str, project_id: str, session: AdminSession,
                         api: Hanami) -> Response:
    await api.remove_project(_checked(user_id, ID_EXT, "user id"), _checked(project_id, ID, "project id"))
    return await _after_change(
        request, session, "remove project", f"{user_id} ✕ {project_id}",
        f"{user_id} is no longer assigned to {project_id}. Tokens already issued stay valid until they expire.",
        url_path(request, "users_detail", user_id=user_id),
    )


@router.get("/users/{user_id}/delete", name="users_delete_confirm")
async def delete_confirm(request: Request, user_id: str, session: AdminSession, api: Hanami) -> Response:
    user = await api.get_user(_checked(user_id, ID_EXT, "user id"))
    return await render(request, "users/delete.html", {"user": user, "is_self": user_id == session.user_id})


@router.post("/users/{user_id}/delete", name="users_delete")
async def delete(request: Request, user_id: str, session: AdminSession, api: Hanami) -> Response:
    _checked(user_id, ID_EXT, "user id")
    detail_url = url_path(request, "users_detail", user_id=user_id)
    if user_id == session.user_id:
        await _refused(request, session, "delete user", f"{user_id}: {SELF_DELETE}")
        session.flash(SELF_DELETE, "error")
        await request.app.state.sessions.save(session)
        return redirect(request, detail_url)
    try:
        await api.delete_user(user_id)
    except InputError as exc:  # 409: Hanami refuses self-deletion too
        await _refused(request, session, "delete user", f"{user_id}: {exc.message or exc}")
        session.flash(f"Hanami refused: {exc.message or exc}", "error")
        await request.app.state.sessions.save(session)
        return redirect(request, detail_url)
    return await _after_change(
        request, session, "delete user", user_id,
        f"User {user_id} deleted. Their resources stay; tokens they hold work until they expire.",
        url_path(request, "users_list"),
    )
