"""Direct I/O with a cluster over the backend's ``cluster`` websocket (contract §5.5, §8.5).

The protocol is strict lock-step: one reply per client message. A message for an unknown brick
gets no reply at all (Q-W1), so every reply has a timeout; after a timeout (or any broken
exchange) the socket is closed and the session refuses further use.

The session does not switch the cluster's mode; the caller does ``set_mode`` around it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError
from websockets.asyncio.client import ClientConnection

from webconsole.protocol.messages import REQUEST_TYPE, TRAIN_TYPE, ClusterIO_Message

from .errors import BackendError, BackendUnavailable
from .websocket import receive, send

if TYPE_CHECKING:
    from .calls import TokenCalls

ENDPOINT = "websocket cluster"


class DirectIOSession:
    """``async with api.direct_io(cluster_uuid) as io: await io.request("in", [...])``."""

    def __init__(self, api: TokenCalls, cluster_uuid: str, *, reply_timeout: float = 10.0) -> None:
        self._api = api
        self.cluster_uuid = cluster_uuid
        self.reply_timeout = reply_timeout
        self._lock = asyncio.Lock()
        self._stack: AsyncExitStack | None = None
        self._ws: ClientConnection | None = None
        self.last_output_brick = ""  # the brick name of the last request's answer

    def __repr__(self) -> str:
        state = "open" if self._ws is not None else "closed"
        return f"DirectIOSession({self.cluster_uuid!r}, {state})"

    @property
    def is_open(self) -> bool:
        return self._ws is not None

    async def open(self) -> DirectIOSession:
        if self._stack is not None:
            raise RuntimeError("direct IO session already opened")
        # Never attach to a uuid the backend does not know: that crashes the real server (Q-W2).
        await self._api.get_cluster(self.cluster_uuid)
        stack = AsyncExitStack()
        self._ws = await stack.enter_async_context(self._api.websocket("cluster", self.cluster_uuid))
        self._stack = stack
        return self

    async def aclose(self) -> None:
        stack, self._stack, self._ws = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> DirectIOSession:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _exchange(self, message: Any) -> Any:
        """Send one ClusterIO_Message and return the parsed reply (caller holds the lock)."""
        ws = self._ws
        if ws is None:
            raise BackendUnavailable("the direct-IO connection is closed", endpoint=ENDPOINT)
        try:
            await send(ws, message.SerializeToString(), self.reply_timeout, ENDPOINT)
            raw = await receive(ws, self.reply_timeout, ENDPOINT, "the cluster")
            try:
                return ClusterIO_Message.FromString(raw)
            except DecodeError:
                raise BackendError("the cluster reply is not a ClusterIO_Message", endpoint=ENDPOINT) from None
        except BaseException:
            # the lock-step is broken (timeout, close, cancellation): this socket is unusable
            await asyncio.shield(self.aclose())
            raise

    async def request(self, input_brick: str, values: Sequence[float]) -> list[float]:
        """One forward pass; returns the output brick's values."""
        async with self._lock:
            reply = await self._exchange(_message(input_brick, values, is_last=True, process_type=REQUEST_TYPE))
        self.last_output_brick = reply.brickName  # Hanami names the brick it answers from
        return [float(v) for v in reply.values]

    async def train(
        self, input_brick: str, values: Sequence[float], output_brick: str, expected: Sequence[float]
    ) -> None:
        """One training step: inputs (acknowledged), then expected outputs (answered when trained)."""
        async with self._lock:
            await self._exchange(_message(input_brick, values, is_last=False, process_type=TRAIN_TYPE))
            await self._exchange(_message(output_brick, expected, is_last=True, process_type=TRAIN_TYPE))


def _message(brick: str, values: Sequence[float], *, is_last: bool, process_type: int) -> Any:
    floats = [float(v) for v in values]
    return ClusterIO_Message(
        brickName=brick,
        isLast=is_last,
        processType=process_type,
        numberOfValues=len(floats),  # the backend loops over this count without bounds checks
        values=floats,
    )
