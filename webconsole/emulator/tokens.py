"""HS256 JWTs with exactly the claims of §2.2: ``exp`` and ``user`` (a JSON string)."""

from __future__ import annotations

import json
import time
import warnings
from typing import Any

import jwt

USER_KEYS = ("creator_id", "id", "is_admin", "is_project_admin", "name", "project_id", "role")


def create_token(key: bytes, expire: int, user: dict[str, Any]) -> str:
    claims = {k: user[k] for k in USER_KEYS}
    payload = {
        "exp": int(time.time()) + expire,
        "user": json.dumps(claims, sort_keys=True, separators=(",", ":")),
    }
    with warnings.catch_warnings():  # Hanami's example key "asdf\n" is short on purpose
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(payload, key, algorithm="HS256")


def validate_token(key: bytes, token: str) -> dict[str, Any] | None:
    """Purely cryptographic check (signature + exp, no leeway); the user store is not consulted."""
    if not token:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
            payload = jwt.decode(token, key, algorithms=["HS256"], options={"require": ["exp"]})
        user = json.loads(payload["user"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return None
    if not isinstance(user, dict) or any(k not in user for k in USER_KEYS):
        return None
    return user
