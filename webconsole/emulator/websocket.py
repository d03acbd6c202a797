"""Websocket sessions (§5): targets file_upload and cluster, strict lock-step.

A session consumes one complete client message at a time and returns exactly one action:
bytes to send as a binary frame, NO_REPLY, CLOSE_WS (close the websocket) or DROP_TCP
(faithful crash: drop the TCP connection without any reply).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from .runtime import Cluster, new_uuid
from .tempfiles import TempFile

if TYPE_CHECKING:
    from .backend import Backend

log = logging.getLogger(__name__)

NO_REPLY = object()
CLOSE_WS = object()
DROP_TCP = object()


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _fail(error: str) -> bytes:
    return _json({"error": error, "success": False})


class Session:
    def __init__(self, backend: "Backend"):
        self.backend = backend
        self.temp: TempFile | None = None
        self.cluster: Cluster | None = None
        self.stuck = False  # faithful Q-W1: this connection never answers again
        self.inputs: np.ndarray | None = None
        self.expected: np.ndarray | None = None

    def close(self) -> None:
        if self.temp is not None:
            self.backend.tempfiles.detach(self.temp)
            self.temp = None
        self.cluster = None

    async def handle(self, data: bytes) -> Any:
        if self.stuck:
            return NO_REPLY
        if self.cluster is not None and self.cluster.deleted:
            self.cluster = None  # deleting the cluster detaches the websocket (§5.5)
        if self.temp is not None:
            return self._upload(data)
        if self.cluster is not None:
            return await self._cluster_io(data)
        return self._init(data)

    # -- initial message (§5.2) --------------------------------------------------------------
    def _init(self, data: bytes) -> Any:
        try:
            message = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _fail("Token invalid")
        if not isinstance(message, dict):
            return _fail("Token invalid")
        token = message.get("token")
        user = self.backend.validate_token(token) if isinstance(token, str) else None
        if user is None:
            return _fail("Token invalid")
        target = message.get("target")
        if target not in ("file_upload", "cluster"):
            return _fail("")
        uuid = message.get("uuid")
        if not isinstance(uuid, str):
            return CLOSE_WS
        if target == "file_upload":
            temp = self.backend.tempfiles.attach(uuid, user)
            if temp is None:
                return _fail(f"Tempfile with UUID '{uuid}' not found")
            self.temp = temp
        else:
            cluster = self.backend.cluster(uuid)  # Q-W3: visibility is not checked
            if cluster is None:
                log.warning("websocket init with unknown cluster (Q-W2)")
                if self.backend.config.faithful:
                    return DROP_TCP
                return _fail(f"Cluster with UUID '{uuid}' not found")
            self.cluster = cluster
            cluster.websocket = self  # the newest websocket of a cluster is the only one answered (§14)
        return _json({"success": True, "uuid": new_uuid()})

    # -- file upload (§5.4) ------------------------------------------------------------------
    def _upload(self, data: bytes) -> bytes:
        from google.protobuf.message import DecodeError

        from webconsole.protocol.messages import FileUpload_Message, FileUploadResponse_Message

        assert self.temp is not None
        msg = FileUpload_Message()
        try:
            msg.ParseFromString(data)
        except DecodeError:
            reply = FileUploadResponse_Message(success=False, errorMessage="Got invalid FileUpload-Message")
            return reply.SerializeToString()
        if not self.temp.write(int(msg.position), bytes(msg.data)):
            reply = FileUploadResponse_Message(success=False, errorMessage="Failed to write data to disc")
            return reply.SerializeToString()
        return FileUploadResponse_Message(success=True).SerializeToString()

    # -- direct IO (§5.5) --------------------------------------------------------------------
    def _stuck(self, reason: str) -> Any:
        """Q-W1: no reply. faithful: the connection never answers again; lenient: go on."""
        log.warning("cluster websocket gets no reply: %s (Q-W1)", reason)
        if self.backend.config.faithful:
            self.stuck = True
        return NO_REPLY

    async def _cluster_io(self, data: bytes) -> Any:
        from google.protobuf.message import DecodeError

        from webconsole.protocol.messages import REQUEST_TYPE, TRAIN_TYPE, ClusterIO_Message

        cluster = self.cluster
        assert cluster is not None
        if cluster.websocket is not self:
            log.info("cluster websocket gets no reply: a newer one is open on the cluster")
            return NO_REPLY  # no error, no close; the server stays responsive (§14)
        msg = ClusterIO_Message()
        try:
            msg.ParseFromString(data)
        except DecodeError:
            return self._stuck("frame is not a ClusterIO_Message")
        network = cluster.network
        if network is None:
            if self.backend.config.faithful:
                return DROP_TCP  # Q-C5
            return self._stuck("cluster without network")
        values = np.asarray(list(msg.values)[: int(msg.numberOfValues)], dtype=np.float32)
        if msg.brickName == network.input_name:
            self.inputs = _fit(values, network.input_size)
        elif msg.brickName == network.output_name:
            self.expected = _fit(values, network.output_size)
        else:
            return self._stuck(f"unknown brick {msg.brickName!r}")
        if not msg.isLast:
            ack = ClusterIO_Message(isLast=False, processType=TRAIN_TYPE, numberOfValues=1, values=[0.0])
            return ack.SerializeToString()
        inputs = self.inputs if self.inputs is not None else np.zeros(network.input_size, np.float32)
        if msg.processType == TRAIN_TYPE:
            expected = self.expected if self.expected is not None else np.zeros(network.output_size,
                                                                                 np.float32)
            await asyncio.to_thread(_locked, cluster, lambda: cluster.network.train_step(inputs, expected))
            done = ClusterIO_Message(isLast=True, processType=TRAIN_TYPE, numberOfValues=1, values=[0.0])
            return done.SerializeToString()
        out = await asyncio.to_thread(_locked, cluster, lambda: cluster.network.forward(inputs))
        out = [float(v) for v in np.asarray(out, dtype=np.float32).ravel()]
        reply = ClusterIO_Message(brickName=network.output_name, isLast=False, processType=REQUEST_TYPE,
                                  numberOfValues=len(out), values=out)
        return reply.SerializeToString()


def _fit(values: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=np.float32)
    out[: min(size, len(values))] = values[:size]
    return out


def _locked(cluster: Cluster, func: Any) -> Any:
    with cluster.net_lock:
        return func()
