"""Typed failures of the Hanami backend.

Every failure the console can get from Hanami is one exception class, so the web layer maps
classes (not status codes or message texts) to pages. Each exception carries

* ``status``   - the HTTP status (``None`` for transport failures and websocket errors),
* ``message``  - the backend's body text, stripped of surrounding whitespace (may be empty,
  may be a multi-line ASCII table: show it in a ``<pre>``),
* ``endpoint`` - ``"<METHOD> v1/<id>"`` or ``"websocket <target>"``.

The Hanami token is never part of any of these (see ``scrub``).
"""

from __future__ import annotations

__all__ = [
    "AdminOnly",
    "BackendError",
    "BackendUnavailable",
    "BadRequest",
    "Conflict",
    "HanamiError",
    "InputError",
    "LoginFailed",
    "NotFound",
    "PolicyDenied",
    "TokenExpired",
    "Unauthorized",
    "error_for_status",
]


class HanamiError(Exception):
    """Base class of every Hanami failure."""

    #: shown by ``str()`` when the backend sent an empty body
    default_text = "the Hanami backend reported an error"

    def __init__(self, message: str = "", *, status: int | None = None, endpoint: str = "") -> None:
        self.message = message.strip()
        self.status = status
        self.endpoint = endpoint
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message or self.default_text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, endpoint={self.endpoint!r}, "
            f"message={self.message!r})"
        )


class BadRequest(HanamiError):
    """400: validation failed; the message may be an ASCII table (cluster templates)."""

    default_text = "the request was rejected by the Hanami backend"


class Unauthorized(HanamiError):
    """Base of the 401 flavours (also raised as-is for an unrecognised 401 body)."""

    default_text = "not authorized"


class TokenExpired(Unauthorized):
    """401 ``Failed to validate JWT-Token``: the session must log in again."""

    default_text = "the session token is no longer valid"


class PolicyDenied(Unauthorized):
    """401 ``Access denied by policy``: the role may not use this feature."""

    default_text = "not allowed for your role"


class AdminOnly(Unauthorized):
    """401 with empty body (hard admin checks) or the error-log admin message."""

    default_text = "admin rights required"


class LoginFailed(Unauthorized):
    """401 from ``POST v1/token`` or a refused project switch on ``PUT v1/token``."""

    default_text = "login failed"


class NotFound(HanamiError):
    """404."""

    default_text = "not found"


class Conflict(HanamiError):
    """409."""

    default_text = "conflict"


class BackendError(HanamiError):
    """500 (always an empty body), any unexpected status, or a body that is not JSON."""

    default_text = "the Hanami backend failed"

    def __str__(self) -> str:
        if self.message:
            return self.message
        if self.status is not None:
            return f"{self.default_text} (HTTP {self.status})"
        return self.default_text


class BackendUnavailable(HanamiError):
    """The backend could not be reached, closed the connection without reply, or timed out."""

    default_text = "the Hanami backend is not reachable"


#: the errors a form handler shows on its form (``except InputError``)
InputError = (BadRequest, Conflict)

_TOKEN_INVALID = "Failed to validate JWT-Token"
_POLICY = "Access denied by policy"
_ERROR_LOG_ADMIN = "only an admin is allowed to request error-logs"


def _unauthorized_class(method: str, endpoint_id: str, text: str) -> type[Unauthorized]:
    if method == "POST" and endpoint_id == "v1/token":
        return LoginFailed
    if text == _TOKEN_INVALID:
        return TokenExpired
    if text == _POLICY:
        return PolicyDenied
    if text == "" or text == _ERROR_LOG_ADMIN:
        return AdminOnly
    if method == "PUT" and endpoint_id == "v1/token" and (
        "is not assigned to the project" in text or text.startswith("ACCESS DENIED!")
    ):
        return LoginFailed
    return Unauthorized


def error_for_status(status: int, text: str, method: str, endpoint_id: str) -> HanamiError:
    """The exception for a non-200 answer of ``<method> /control/<endpoint_id>``."""
    text = text.strip()
    endpoint = f"{method} {endpoint_id}"
    cls: type[HanamiError]
    if status == 400:
        cls = BadRequest
    elif status == 401:
        cls = _unauthorized_class(method, endpoint_id, text)
    elif status == 404:
        cls = NotFound
    elif status == 409:
        cls = Conflict
    else:
        cls = BackendError
    return cls(text, status=status, endpoint=endpoint)


def scrub(text: str, secret: str) -> str:
    """Remove ``secret`` (the token) from ``text``; a no-op for empty secrets."""
    if secret and secret in text:
        return text.replace(secret, "<token>")
    return text
