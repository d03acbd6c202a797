"""The typing seams below ``api``: what one token's calls look like to uploads and direct IO, and
what ``api`` needs of the client. They keep the imports one-way (client -> api -> uploads,
direct_io -> calls) while ``HanamiClient`` and ``HanamiAPI`` satisfy them structurally.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from os import PathLike
from typing import Any, Literal, Protocol

from websockets.asyncio.client import ClientConnection

from .websocket import Target

ProgressCallback = Callable[[int, int], Awaitable[None]]
"""``await progress(bytes_sent, bytes_total)`` during uploads."""

CreatedCallback = Callable[[str], Awaitable[None]]
"""``await on_created(dataset_uuid)`` once an upload's dataset exists on the backend."""

StrPath = str | PathLike[str]

Method = Literal["GET", "POST", "PUT", "DELETE"]


class Transport(Protocol):
    """The process-wide client as ``HanamiAPI`` uses it (``HanamiClient``)."""

    base_url: str
    timeout: float

    async def request(
        self,
        method: Method,
        endpoint_id: str,
        *,
        token: str | None = None,
        query: dict[str, str | int] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any: ...

    def websocket(self, token: str, target: Target, uuid: str) -> AbstractAsyncContextManager[ClientConnection]: ...


class TokenCalls(Protocol):
    """One token's calls as uploads and direct IO use them (``HanamiAPI``)."""

    @property
    def client(self) -> Transport: ...

    async def _call(
        self,
        method: Method,
        endpoint_id: str,
        *,
        query: dict[str, str | int] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any: ...

    def websocket(self, target: Target, uuid: str) -> AbstractAsyncContextManager[ClientConnection]: ...

    async def get_cluster(self, uuid: str) -> dict: ...
