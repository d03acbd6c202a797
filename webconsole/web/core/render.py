"""Rendering: one URL serves the page, or for an htmx request just the named block of it."""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response


def safe_next(target: str | None) -> str:
    """Only same-site paths: never an absolute URL or a scheme-relative //host.

    Control characters and spaces are refused too: browsers drop tabs and newlines from a URL
    before resolving it, so ``/<TAB>/evil.example`` would become ``//evil.example`` in a link or in
    an HX-Redirect header (which htmx follows unencoded).
    """
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in target)):
        return "/"
    return target


def url_path(request: Request, name: str, **path_params: object) -> str:
    """The path of a named route (with the root path): for redirects and links, never absolute."""
    return request.url_for(name, **path_params).path


# What may stay as is in a redirect target: the URL's own syntax and existing %-escapes.
_URL_SAFE = "/?#[]@!$&'()*+,;=:%~-._"


def header_url(url: str) -> str:
    """``url`` as a header value: everything outside ASCII %-encoded as UTF-8 (headers are Latin-1,
    and a ``next`` may hold any character), so the response never fails after the change was made."""
    return quote(url, safe=_URL_SAFE)


def redirect(request: Request, url: str) -> Response:
    """After a POST: 303 to ``url`` (a path), or for htmx an HX-Redirect that loads the whole page."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": header_url(url)})
    return RedirectResponse(header_url(url), status_code=303)


def is_htmx(request: Request) -> bool:
    """True for requests made by htmx (but not boosted navigations, which want the full page)."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


def is_poll(request: Request) -> bool:
    """Background refreshes mark themselves; they must not count as user activity."""
    return request.headers.get("X-Console-Poll") == "1"


async def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    block: str | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template``; an htmx request gets only ``block`` when one is named.

    Flash messages queued in the session are shown once, on the next full page or fragment
    that includes the flash region.
    """
    session = getattr(request.state, "session", None)
    flashes: list[tuple[str, str]] = []
    if session is not None and session.flashes:
        flashes, session.flashes = list(session.flashes), []
        await request.app.state.sessions.save(session)
    ctx: dict[str, Any] = {
        "request": request,
        "session": session,
        "csrf_token": session.csrf_token if session else getattr(request.state, "pre_csrf", ""),
        "flashes": flashes,
        "backend_down": getattr(request.state, "backend_down", False),
    }
    if context:
        ctx.update(context)
    templates = request.app.state.templates
    if block is not None and is_htmx(request):
        return templates.TemplateResponse(
            request, template, ctx, block_name=block, status_code=status_code, headers=headers
        )
    return templates.TemplateResponse(request, template, ctx, status_code=status_code, headers=headers)
