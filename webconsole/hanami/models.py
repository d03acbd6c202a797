"""Value objects returned by the client: tokens, identities and list tables."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import BackendError

__all__ = ["Identity", "Table", "TokenInfo", "decode_token_claims"]


@dataclass(frozen=True)
class TokenInfo:
    """A Hanami login: who, and the JWT with its expiry (epoch seconds, from the ``exp`` claim).

    The token is left out of ``repr()`` so that it never ends up in a log line or traceback.
    """

    id: str
    name: str
    is_admin: bool
    token: str = field(repr=False)
    expires_at: float

    @classmethod
    def from_response(cls, data: dict[str, Any]) -> TokenInfo:
        """Build from the body of ``POST``/``PUT v1/token``."""
        try:
            token = str(data["token"])
            return cls(
                id=str(data["id"]),
                name=str(data["name"]),
                is_admin=bool(data["is_admin"]),
                token=token,
                expires_at=float(decode_token_claims(token)["exp"]),
            )
        except (KeyError, TypeError, ValueError):
            raise BackendError("the token response of the backend is malformed") from None


@dataclass(frozen=True)
class Identity:
    """Who the token belongs to and which project/role it is currently in (``GET v1/auth``)."""

    id: str
    name: str
    is_admin: bool
    is_project_admin: bool
    project_id: str
    role: str

    @classmethod
    def from_response(cls, data: dict[str, Any]) -> Identity:
        try:
            return cls(
                id=str(data["id"]),
                name=str(data["name"]),
                is_admin=bool(data["is_admin"]),
                is_project_admin=bool(data["is_project_admin"]),
                project_id=str(data["project_id"]),
                role=str(data["role"]),
            )
        except (KeyError, TypeError):
            raise BackendError("the auth response of the backend is malformed") from None


@dataclass(frozen=True)
class Table:
    """A Hanami list answer ``{"header": [...], "body": [[...], ...]}``.

    Columns are looked up by header name (never by position), like the old dashboard does.
    """

    header: list[str]
    rows: list[list[Any]]

    @classmethod
    def from_response(cls, data: Any) -> Table:
        if not isinstance(data, dict):
            raise BackendError("the list response of the backend is not an object")
        header = data.get("header")
        rows = data.get("body")
        if not isinstance(header, list) or not isinstance(rows, list):
            raise BackendError("the list response of the backend has no header/body")
        if not all(isinstance(row, list) for row in rows):
            raise BackendError("the list response of the backend has malformed rows")
        return cls(header=[str(h) for h in header], rows=rows)

    def index(self, column: str) -> int:
        """Position of ``column`` in the header; ``KeyError`` if the backend did not send it."""
        try:
            return self.header.index(column)
        except ValueError:
            raise KeyError(column) from None

    def column(self, column: str) -> list[Any]:
        """All values of one column, by header name."""
        i = self.index(column)
        return [row[i] if i < len(row) else None for row in self.rows]

    def records(self) -> list[dict[str, Any]]:
        """Rows as dicts keyed by header name."""
        return [dict(zip(self.header, row, strict=False)) for row in self.rows]

    def find(self, column: str, value: Any) -> dict[str, Any] | None:
        """The first record whose ``column`` equals ``value`` (``None`` if absent)."""
        i = self.index(column)
        for row in self.rows:
            if i < len(row) and row[i] == value:
                return dict(zip(self.header, row, strict=False))
        return None

    def __len__(self) -> int:
        return len(self.rows)


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode_token_claims(token: str) -> dict[str, Any]:
    """The JWT payload, without verifying the signature (the backend does that).

    ``user`` is a JSON object double-encoded as a string in Hanami tokens; it is returned decoded
    (``{}`` if it cannot be decoded). Raises ``ValueError`` for something that is not a JWT.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    try:
        claims = json.loads(_b64url_decode(parts[1]))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValueError("not a JWT") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), (int, float)):
        raise ValueError("JWT without exp claim")
    user = claims.get("user")
    if isinstance(user, str):
        try:
            user = json.loads(user)
        except ValueError:
            user = {}
    claims["user"] = user if isinstance(user, dict) else {}
    return claims
