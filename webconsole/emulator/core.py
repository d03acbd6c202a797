"""Shared pieces of the endpoint layer: errors, request context, route table, helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .backend import Backend


class ApiError(Exception):
    """An endpoint error with Hanami's status and plain-text body."""

    def __init__(self, status: int, body: str = ""):
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


class Crash(Exception):
    """A place where the real backend crashes (Q-C*, Q-W2).

    faithful mode: the connection is closed without a reply; lenient mode: ``status``/``body``
    (the intended response of §12.1) is sent instead.
    """

    def __init__(self, reason: str, status: int = 400, body: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.body = body


@dataclass
class Context:
    backend: "Backend"
    method: str
    endpoint: str
    values: dict[str, Any]
    user: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self):
        return self.backend.store


Handler = Callable[[Context], dict[str, Any]]
ROUTES: dict[tuple[str, str], Handler] = {}


def route(method: str, endpoint: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        ROUTES[(method, endpoint)] = func
        return func

    return register


def table(header: list[str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"body": [[row[c] for c in header] for row in rows], "header": header}


def resource(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("name", "owner_id", "project_id", "uuid", "visibility")}


def require_admin(ctx: Context, body: str = "") -> None:
    """Hard admin check of §2.6 (after the policy and the validation)."""
    if not ctx.user.get("is_admin"):
        raise ApiError(401, body)
