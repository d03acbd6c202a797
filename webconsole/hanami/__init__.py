"""The console's client of Hanami: the only code that knows Hanami's wire format.

REST via httpx (``HanamiClient`` / ``HanamiAPI``), uploads and direct I/O via the backend's
websockets, and typed exceptions for every failure (``errors``).
"""

from .client import HanamiAPI, HanamiClient, ProgressCallback
from .direct_io import DirectIOSession
from .errors import (
    AdminOnly,
    BackendError,
    BackendUnavailable,
    BadRequest,
    Conflict,
    HanamiError,
    InputError,
    LoginFailed,
    NotFound,
    PolicyDenied,
    TokenExpired,
    Unauthorized,
)
from .models import Identity, Table, TokenInfo, decode_token_claims

__all__ = [
    "AdminOnly",
    "BackendError",
    "BackendUnavailable",
    "BadRequest",
    "Conflict",
    "DirectIOSession",
    "HanamiAPI",
    "HanamiClient",
    "HanamiError",
    "Identity",
    "InputError",
    "LoginFailed",
    "NotFound",
    "PolicyDenied",
    "ProgressCallback",
    "Table",
    "TokenExpired",
    "TokenInfo",
    "Unauthorized",
    "decode_token_claims",
]
