"""The console's client of the Hanami REST API (and the entry to its websockets).

``HanamiClient`` owns the one ``httpx.AsyncClient`` of a console process and the websocket limit;
``client.api(token)`` gives a cheap token-bound ``HanamiAPI`` (``api.py``) with one method per
backend operation.

Wire rules this module enforces (contract §1.3, §10):

* query strings are built by hand and never percent-encoded (``@`` in user ids must reach the
  backend as is), and only the documented parameters are sent;
* bodies are JSON objects with real booleans and integers;
* success bodies are parsed as JSON whatever the ``Content-Type`` (Hanami says ``text/json``);
* every failure becomes one of the typed exceptions in ``errors``; the token never appears in
  an exception, a ``repr`` or a log line.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import httpx
from websockets.asyncio.client import ClientConnection

from .api import HanamiAPI
from .calls import ProgressCallback
from .errors import BackendError, BackendUnavailable, BadRequest, TokenExpired, error_for_status, scrub
from .models import Identity, Table, TokenInfo
from .websocket import Target, WebsocketSlots, open_backend_websocket

__all__ = ["CallObserver", "HanamiAPI", "HanamiClient", "Identity", "ProgressCallback", "Table", "TokenInfo"]

log = logging.getLogger("webconsole.hanami")

CallObserver = Callable[[str, int | None, float, str | None], None]
"""``on_call("GET v1/cluster", 200 | None, seconds, None | "NotFound")`` — e.g. Metrics.backend_call."""

# Characters that may go into a query value unencoded without changing the URL's structure.
# Everything Hanami accepts in query values (ids, uuids, integers) is inside this set.
_QUERY_VALUE = re.compile(r"^[A-Za-z0-9_@.:/+\-]*$")


def _query_string(query: dict[str, str | int]) -> str:
    parts = []
    for key, value in query.items():
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise TypeError(f"query value for {key!r} must be str or int")
        text = str(value)
        if not _QUERY_VALUE.match(text):
            raise BadRequest(
                f"Given item '{key}' contains characters that are not allowed", status=400
            )
        parts.append(f"{key}={text}")
    return "&".join(parts)


class HanamiClient:
    """One per console process: the HTTP connection pool and the websocket limit."""

    def __init__(
        self,
        base_url: str,
        *,
        verify_tls: bool = True,
        timeout: float = 30.0,
        max_websockets: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        on_call: CallObserver | None = None,
        on_websockets: Callable[[int], None] | None = None,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"Hanami URL must be http(s)://host[:port][/prefix], got {base_url!r}")
        self._base = url.copy_with(query=None, fragment=None)
        # a path prefix (Hanami behind a reverse proxy at /hanami) is kept in front of /control/...
        self._prefix = url.raw_path.split(b"?")[0].rstrip(b"/")
        self.base_url = str(self._base).rstrip("/")
        self.timeout = timeout
        self._http = httpx.AsyncClient(
            verify=verify_tls,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            trust_env=False,  # never route the backend through a proxy from the environment
            follow_redirects=False,
        )
        ws_scheme = "wss" if url.scheme == "https" else "ws"
        ws_path = self._prefix.decode("ascii") or "/"
        self.ws_url = f"{ws_scheme}://{url.netloc.decode('ascii')}{ws_path}"
        self._ssl: ssl.SSLContext | None = None
        if ws_scheme == "wss":
            self._ssl = ssl.create_default_context()
            if not verify_tls:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        #: ``on_websockets(open_now)`` whenever a backend websocket opens or closes (metrics)
        self.websockets = WebsocketSlots(max_websockets, on_change=on_websockets)
        #: ``on_call(endpoint, status, seconds, error_class_name)`` after every REST call (metrics)
        self.on_call = on_call

    def __repr__(self) -> str:
        return f"HanamiClient({self.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> HanamiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def login(self, user_id: str, password: str) -> TokenInfo:
        """``POST /control/v1/token``; a wrong user/password is ``LoginFailed``."""
        data = await self.request("POST", "v1/token", body={"id": user_id, "password": password})
        return TokenInfo.from_response(data)

    async def ping(self) -> None:
        """Is the backend there and answering? (For readiness checks; needs no login.)

        ``GET v1/auth`` without a token: a live Hanami answers 401 ``Failed to validate
        JWT-Token``, which is success here. Raises ``BackendUnavailable`` / ``BackendError``.
        """
        try:
            await self.request("GET", "v1/auth")
        except TokenExpired:
            return
        raise BackendError("the backend accepted a request without a token", endpoint="GET v1/auth")

    def api(self, token: str) -> HanamiAPI:
        """A token-bound view (cheap; create one per request)."""
        return HanamiAPI(self, token)

    # -- transport -------------------------------------------------------------------------------

    async def request(
        self,
        method: Literal["GET", "POST", "PUT", "DELETE"],
        endpoint_id: str,
        *,
        token: str | None = None,
        query: dict[str, str | int] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        """One call of ``<method> /control/<endpoint_id>``; the parsed JSON body or a typed error."""
        target = self._prefix + b"/control/" + endpoint_id.encode("ascii")
        if query:
            target += b"?" + _query_string(query).encode("ascii")
        endpoint = f"{method} {endpoint_id}"
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            response = await self._send(method, self._base.copy_with(raw_path=target), token, body, endpoint)
            status = response.status_code
            if status == 200:
                try:
                    return json.loads(response.content)
                except ValueError:
                    raise BackendError(
                        "the Hanami backend sent a success answer that is not JSON", status=200, endpoint=endpoint
                    ) from None
            text = scrub(response.content.decode("utf-8", errors="replace"), token or "")
            raise error_for_status(status, text, method, endpoint_id)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            seconds = time.monotonic() - started
            log.debug("hanami %s -> %s (%.0f ms)", endpoint, status, seconds * 1000)
            if self.on_call is not None:
                try:
                    self.on_call(endpoint, status, seconds, error)
                except Exception:  # an observer must never break a call
                    log.exception("hanami call observer failed")

    async def _send(
        self, method: str, url: httpx.URL, token: str | None, body: dict[str, Any] | None, endpoint: str
    ) -> httpx.Response:
        headers = {"X-Auth-Token": token} if token is not None else None
        try:
            return await self._http.request(
                method, url, headers=headers, json=body if method in ("POST", "PUT") else None
            )
        except httpx.TimeoutException:
            log.warning("hanami %s: no answer within %g s", endpoint, self.timeout)
            raise BackendUnavailable(
                f"the Hanami backend did not answer within {self.timeout:g} s", endpoint=endpoint
            ) from None
        except httpx.RemoteProtocolError:
            log.warning("hanami %s: connection closed without reply", endpoint)
            raise BackendUnavailable(
                "the Hanami backend closed the connection without answering", endpoint=endpoint
            ) from None
        except httpx.DecodingError:
            raise BackendError("the Hanami backend sent an undecodable answer", endpoint=endpoint) from None
        except (httpx.TransportError, OSError) as exc:
            # only the class name: some transport errors quote header values (the token)
            log.warning("hanami %s: %s", endpoint, type(exc).__name__)
            raise BackendUnavailable(
                f"cannot reach the Hanami backend ({type(exc).__name__})", endpoint=endpoint
            ) from None
        except AttributeError:
            # httpcore on anyio: a connection the backend reset while it was being set up has no socket
            # left, and asking it for its TLS state raises AttributeError (seen when Hanami is killed)
            log.warning("hanami %s: connection reset while connecting", endpoint)
            raise BackendUnavailable("the Hanami backend reset the connection", endpoint=endpoint) from None

    @asynccontextmanager
    async def websocket(self, token: str, target: Target, uuid: str) -> AsyncIterator[ClientConnection]:
        """An initialised backend websocket (takes one of ``max_websockets`` slots while open)."""
        async with open_backend_websocket(
            url=self.ws_url,
            slots=self.websockets,
            ssl_context=self._ssl,
            token=token,
            target=target,
            uuid=uuid,
            timeout=self.timeout,
        ) as ws:
            yield ws
