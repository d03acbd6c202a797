"""Log in, log out, and switch project."""

from __future__ import annotations

import logging
import re
import secrets
from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from webconsole.hanami.client import HanamiAPI
from webconsole.hanami.errors import BackendUnavailable, HanamiError, LoginFailed, PolicyDenied
from webconsole.sessions import Session
from webconsole.web.core.deps import (
    PRE_SESSION_COOKIE,
    SESSION_COOKIE,
    CurrentSession,
    Hanami,
    client_address,
    optional_session,
    resource_router,
)
from webconsole.web.core.render import redirect, render, safe_next, url_path

router = resource_router()
log = logging.getLogger("webconsole.auth")

# Hanami's own rules (contract §1.6): checked here so malformed input never reaches the backend.
USER_ID = re.compile(r"[a-zA-Z][a-zA-Z_0-9@]{3,255}")
PROJECT_ID = re.compile(r"[a-zA-Z][a-zA-Z_0-9]{3,255}")
RATE_WINDOW = 15 * 60
MAX_ID_CHARS = 256
GENERIC_FAILURE = "Wrong user id or password."


def app_url(request: Request, path: str) -> str:
    """A same-site path of this app, under the root path when served behind a prefix."""
    return request.scope.get("root_path", "") + path


def _cookie_secure(request: Request) -> bool:
    configured = request.app.state.settings.cookie_secure
    return request.url.scheme == "https" if configured is None else configured


def set_session_cookie(request: Request, response: Response, session: Session) -> None:
    """The only cookie that matters: opaque, HttpOnly, SameSite=Lax, Secure over https."""
    response.set_cookie(
        SESSION_COOKIE,
        session.id,
        httponly=True,
        samesite="lax",
        secure=_cookie_secure(request),
        path=request.scope.get("root_path") or "/",
    )



async def _login_page(request: Request, next_url: str, error: str = "", user_id: str = "",
                      status_code: int = 200) -> Response:
    pre = request.cookies.get(PRE_SESSION_COOKIE) or secrets.token_urlsafe(32)
    request.state.pre_csrf = pre
    response = await render(
        request, "login.html", {"next": next_url, "error": error, "user_id": user_id},
        status_code=status_code,
    )
    response.set_cookie(
        PRE_SESSION_COOKIE, pre, httponly=True, samesite="strict", secure=_cookie_secure(request),
        path=request.scope.get("root_path") or "/",
    )
    return response


@router.get("/login", name="login_form")
async def login_form(
    request: Request, session: Annotated[Session | None, Depends(optional_session)], next: str = "/"
) -> Response:
    if session is not None:
        return RedirectResponse(app_url(request, safe_next(next)), status_code=303)
    return await _login_page(request, safe_next(next))


@router.post("/login", name="login")
async def login(
    request: Request,
    user_id: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    settings = request.app.state.settings
    store = request.app.state.store
    audit = request.app.state.audit
    address = client_address(request)
    next_url = safe_next(next)
    user_id = user_id.strip()
    # Anything longer than Hanami's 256-character ids is refused below; never store more of it.
    recorded = user_id[:MAX_ID_CHARS]
    limit = settings.login_rate_limit
    by_client, by_user = f"ratelimit:login:client:{address}", f"ratelimit:login:user:{recorded.lower()}"
    for key in (by_client, by_user):
        raw = await store.get(key)
        if raw is not None and int(raw) >= limit:
            # One audit entry per limited client or user id and window, not one per attempt.
            if await store.add(key + ":audited", b"1", RATE_WINDOW):
                await audit.record(recorded, "login", "refused: too many failed attempts", address, "refused")
            return await _login_page(
                request, next_url, "Too many failed attempts. Wait 15 minutes and try again.",
                user_id, status_code=429,
            )
    password_ok = 8 <= len(password.encode()) <= 4096
    if not USER_ID.fullmatch(user_id) or not password_ok:
        await store.incr(by_client, RATE_WINDOW)
        await store.incr(by_user, RATE_WINDOW)
        await audit.record(recorded, "login", "failed", address, "failed")
        return await _login_page(request, next_url, GENERIC_FAILURE, user_id, status_code=401)
    client = request.app.state.hanami
    try:
        token = await client.login(user_id, password)
        identity = await client.api(token.token).auth()
    except LoginFailed as exc:
        await store.incr(by_client, RATE_WINDOW)
        await store.incr(by_user, RATE_WINDOW)
        await audit.record(recorded, "login", "failed", address, "failed")
        message = GENERIC_FAILURE
        if "no project assigned" in exc.message:
            message = "This account has no project yet. Ask an admin to assign one."
        return await _login_page(request, next_url, message, user_id, status_code=401)
    except PolicyDenied:
        # The password was right, but the role of the user's project is not in Hanami's policy
        # (Q-A4): even GET v1/auth is refused, so no page could work. Say so on the login form.
        await audit.record(user_id, "login", "refused: role not allowed by Hanami's policy", address, "refused")
        return await _login_page(
            request, next_url, "Your role in your project is not allowed to use Hanami (its access policy does "
            "not know the role). Ask an admin to give you another role.", user_id, status_code=403,
        )
    except BackendUnavailable:
        return await _login_page(
            request, next_url, "The Hanami backend cannot be reached right now. Try again shortly.",
            user_id, status_code=503,
        )
    session = await request.app.state.sessions.create(
        user_id=identity.id,
        user_name=identity.name,
        is_admin=identity.is_admin,
        is_project_admin=identity.is_project_admin,
        project_id=identity.project_id,
        role=identity.role,
        token=token.token,
        token_expires_at=token.expires_at,
        client=address,
        projects=[identity.project_id],
    )
    previous = getattr(request.state, "session", None)  # loaded by the CSRF check
    if previous is not None:
        # A new login replaces whatever session this browser had: end it on the server too.
        await request.app.state.sessions.destroy(previous.id)
    await audit.record(identity.id, "login", f"project {identity.project_id}", address)
    for hook in request.app.state.login_hooks:
        try:
            await hook(request.app, session)
        except Exception:  # the login happened: a hook's failure must not turn it into an error page
            log.exception("a login hook failed")
    response = redirect(request, app_url(request, next_url))
    set_session_cookie(request, response, session)
    response.delete_cookie(PRE_SESSION_COOKIE, path=request.scope.get("root_path") or "/")
    return response


@router.post("/logout", name="logout")
async def logout(request: Request, session: CurrentSession) -> Response:
    await request.app.state.sessions.destroy(session.id)
    for hook in request.app.state.logout_hooks:
        await hook(request.app, session)
    await request.app.state.audit.record(session.user_id, "logout", "", client_address(request))
    response = redirect(request, url_path(request, "login_form"))
    response.delete_cookie(SESSION_COOKIE, path=request.scope.get("root_path") or "/")
    return response


async def project_choices(api: HanamiAPI, session: Session) -> list[str]:
    """Projects this user can switch to, as far as Hanami lets us know (contract §10.5, Q-U1).

    Admins: their real assignments plus the virtual `admin` project. Non-admins have no listing
    API; the console offers the projects it has seen them use, plus a free-text field.
    """
    known = list(session.projects)
    if session.is_admin:
        try:
            user = await api.get_user(session.user_id)
            known += [entry["project_id"] for entry in user.get("projects", [])]
        except HanamiError:
            pass
        known.append("admin")
    seen: list[str] = []
    for project in [session.project_id, *known]:
        if project not in seen:
            seen.append(project)
    return seen


@router.post("/project", name="switch_project")
async def switch_project(
    request: Request,
    session: CurrentSession,
    api: Hanami,
    project_id: Annotated[str, Form()] = "",
) -> Response:
    project_id = project_id.strip()
    if not PROJECT_ID.fullmatch(project_id):
        session.flash("A project id has 4 to 256 letters, digits or underscores and starts with a letter.", "error")
        await request.app.state.sessions.save(session)
        return redirect(request, url_path(request, "home"))
    try:
        token = await api.renew(project_id)
    except LoginFailed:
        session.flash(f"You are not assigned to the project '{project_id}'.", "error")
        await request.app.state.sessions.save(session)
        return redirect(request, url_path(request, "home"))
    try:
        identity = await request.app.state.hanami.api(token.token).auth()
    except PolicyDenied:
        # Q-A4: the user's role there is not in Hanami's policy; that token could do nothing at all.
        session.flash(f"Your role in the project '{project_id}' is not allowed to use Hanami (its access policy "
                      "does not know the role). You stay in your current project.", "error")
        await request.app.state.sessions.save(session)
        return redirect(request, url_path(request, "home"))
    session.token, session.token_expires_at = token.token, token.expires_at
    session.project_id, session.role = identity.project_id, identity.role
    session.is_project_admin, session.is_admin = identity.is_project_admin, identity.is_admin
    if project_id not in session.projects:
        session.projects.append(project_id)
    session.flash(f"Switched to project {project_id} (role {identity.role}).", "success")
    # A change of privileges gets a new session id (no fixation across projects).
    session = await request.app.state.sessions.rotate(session)
    await request.app.state.audit.record(session.user_id, "switch project", project_id, client_address(request))
    response = redirect(request, url_path(request, "home"))
    set_session_cookie(request, response, session)
    return response
