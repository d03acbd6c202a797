"""The request processing pipeline of §1.3/§1.4, independent of the transport."""

from __future__ import annotations

import base64
import json
import logging
import re
from typing import TYPE_CHECKING, Any

from . import fields
from .clock import local_now_unpadded
from .core import ROUTES, ApiError, Context, Crash
from .response import Response

if TYPE_CHECKING:
    from .backend import Backend

log = logging.getLogger(__name__)

_INT = re.compile(r"^-?[0-9]+$")
_FLOAT = re.compile(r"^-?[0-9]+\.[0-9]+$")
HTTP_TYPES = {1: "DELETE", 2: "GET", 3: "HEAD", 4: "POST", 5: "PUT"}
METHODS = ("GET", "POST", "PUT", "DELETE")


def ascii_error_table(messages: list[str]) -> str:
    """The ASCII-art error table of §1.7 (rows from the last added message to the first)."""
    from webconsole.protocol.template import ascii_table

    rows = [[f"Error-Message Nr. {i}", m] for i, m in reversed(list(enumerate(messages)))]
    return ascii_table(rows)


def json_error(text: str, err: json.JSONDecodeError | None) -> str:
    prefix = "Failed to parse input-values, because of json-parser error: [json.exception.parse_error.101] "
    if err is None or not text.strip():
        return prefix + ("parse error at line 1, column 1: syntax error while parsing value - "
                         "unexpected end of input; expected '[', '{', or a literal")
    last = text[max(0, err.pos - 10):err.pos + 1]
    return prefix + (f"parse error at line {err.lineno}, column {err.colno}: syntax error while "
                     f"parsing value - invalid literal; last read: '{last}'")


def parse_query(query: str) -> dict[str, Any]:
    """No percent-decoding; int/float coercion by regex; last repeated key wins (§1.3)."""
    values: dict[str, Any] = {}
    for pair in query.split("&"):
        if not pair:
            continue
        key, _, raw = pair.partition("=")
        if _INT.match(raw):
            number = int(raw)
            if not -(2**31) <= number < 2**31:
                raise Crash("query integer out of 32-bit range (Q-C6)", 400,
                            f"Query value of '{key}' is out of the 32-bit integer range")
            values[key] = number
        elif _FLOAT.match(raw):
            values[key] = float(raw)
        else:
            values[key] = raw
    return values


def sanitized_input(endpoint: str, values: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in values.items() if k != "password"}
    if endpoint != "v1/auth":
        out.pop("token", None)
    return out


class Pipeline:
    def __init__(self, backend: "Backend"):
        self.backend = backend

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        """Run the whole pipeline; never raises (crashes become Response objects)."""
        try:
            return self._handle(method, target, headers, body)
        except Crash as crash:
            log.warning("backend crash case: %s", crash.reason)
            if self.backend.config.faithful:
                return Response(0, close_without_reply=True)
            return Response.text(crash.status, crash.body)
        except Exception:  # noqa: BLE001 - the server itself never dies
            log.exception("unexpected emulator error")
            return Response.text(500)

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        if not target.startswith("/") or ".." in target:  # step 1
            return Response.text(400)
        if method not in METHODS:  # step 2
            return Response.text(400, ascii_error_table([f"Invalid request-method '{method}'"]))
        if not target.startswith("/control/"):
            if method == "GET" and not target.startswith("/control"):
                return self.backend.static_file(target)
            return Response.text(404, ascii_error_table(
                [f"no matching endpoint found for path '{target.split('?', 1)[0]}'"]))
        uri = target[len("/control/"):]
        endpoint, _, query = uri.partition("?")
        if "/" not in endpoint:  # step 3
            return Response.text(400, "Uri doesn't start with '/'")
        values: dict[str, Any] = {}
        if method in ("POST", "PUT"):  # step 4
            text = body.decode("utf-8", errors="replace")
            if not text.strip():  # an empty body is a parse error
                return Response.text(400, json_error(text, None))
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as err:
                return Response.text(400, json_error(text, err))
            if parsed is not None and not isinstance(parsed, dict):
                raise Crash("POST/PUT body is not a JSON object (Q-C3)", 400,
                            "Failed to parse input-values, because the input is not a json-object")
            values = dict(parsed or {})
        values.update(parse_query(query))
        values["token"] = headers.get("x-auth-token", "")
        if uri == "v1/token" and method == "POST":  # step 5
            del values["token"]
            return self._run(Context(self.backend, method, endpoint, values))
        # step 6: the internal v1/auth call
        message = fields.check_values({"endpoint": endpoint, "token": values["token"]},
                                      fields.TOKEN_CHECK_SPECS)
        if message:
            return Response.text(400, message)
        user = self.backend.validate_token(values["token"])
        if user is None:
            return Response.text(401, "Failed to validate JWT-Token")
        if not self.backend.policy.allows(endpoint, method, user["role"]):
            return Response.text(401, "Access denied by policy")
        if endpoint != "v1/auth":
            del values["token"]
        ctx = Context(self.backend, method, endpoint, values, user)
        if method in ("POST", "PUT", "DELETE"):  # step 7
            self.backend.store.insert("audit_log", {
                "timestamp": local_now_unpadded(), "user_id": user["id"],
                "endpoint": endpoint, "request_type": method})
        return self._run(ctx)

    def _run(self, ctx: Context) -> Response:
        handler = ROUTES.get((ctx.method, ctx.endpoint))  # step 8
        if handler is None:
            return self._internal_error(ctx, f"no implementation for {ctx.method} {ctx.endpoint}")
        message = fields.validate(ctx.method, ctx.endpoint, ctx.values)  # steps 9, 10
        if message:
            return Response.text(400, message)
        try:
            result = handler(ctx)  # step 11
        except ApiError as err:
            if err.status == 500:
                return self._internal_error(ctx, err.body or "internal error")
            return Response.text(err.status, err.body)
        except Crash:
            raise
        except Exception as err:  # noqa: BLE001 - database/file failures -> 500
            log.exception("endpoint %s %s failed", ctx.method, ctx.endpoint)
            return self._internal_error(ctx, f"{type(err).__name__}: {err}")
        if not fields.output_ok(ctx.method, ctx.endpoint, result):  # step 12
            return self._internal_error(ctx, "output validation failed")
        return Response.json(result)

    def _internal_error(self, ctx: Context, text: str) -> Response:
        """500 with empty body; the details go to the error log (§4.44)."""
        message = base64.b64encode(ascii_error_table([text]).encode()).decode()
        self.backend.store.insert("error_log", {
            "timestamp": local_now_unpadded(), "user_id": ctx.user.get("id", ""),
            "component": "", "context": "",
            "input_values": sanitized_input(ctx.endpoint, ctx.values), "message": message})
        return Response.text(500)
