"""My account: who I am, my projects and roles (as far as Hanami tells, Q-U1), switching project."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from webconsole.web.core.deps import CurrentSession, Hanami, resource_router
from webconsole.web.core.render import render

router = resource_router()


@router.get("/account", name="my_account")
async def detail(request: Request, session: CurrentSession, api: Hanami) -> Response:
    """Admins: their real assignments (GET user?id=<self>, never GET user/project: Q-U3) plus the
    virtual ``admin`` project. Non-admins have no API for their own projects: show the current one
    and the ones this console has seen them use."""
    assignments: list[dict] = []
    if session.is_admin:
        user = await api.get_user(session.user_id)
        assignments = [
            {"project_id": "admin", "role": "admin", "is_project_admin": True, "virtual": True},
            *[entry for entry in user.get("projects") or [] if isinstance(entry, dict)],
        ]
    else:
        assignments = [{"project_id": project, "role": session.role if project == session.project_id else None,
                        "is_project_admin": session.is_project_admin if project == session.project_id else None}
                       for project in dict.fromkeys([session.project_id, *session.projects])]
    return await render(request, "account/detail.html", {"assignments": assignments})
