"""Dataset uploads over the backend's ``file_upload`` websocket (contract §5.4, §8.2, §8.3).

Sequence: ``POST v1/<kind>/dataset`` with the exact file sizes -> one websocket per temp file,
one after the other, ``FileUpload_Message`` chunks of 131072 bytes at aligned positions read
from disk in a thread (never the whole file in memory), each reply awaited and checked ->
poll ``GET v1/dataset/progress`` until complete -> ``PUT v1/<kind>/dataset``.

Whatever goes wrong after the init (including cancellation), the half-made dataset is deleted
again, so no broken dataset stays listed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any, Literal

from google.protobuf.message import DecodeError
from websockets.asyncio.client import ClientConnection

from webconsole.protocol.messages import SEGMENT_SIZE, FileUpload_Message, FileUploadResponse_Message

from .errors import BackendError, BackendUnavailable, BadRequest
from .websocket import receive, send

if TYPE_CHECKING:
    from .calls import CreatedCallback, ProgressCallback, StrPath, TokenCalls

log = logging.getLogger("webconsole.hanami")

ENDPOINT = "websocket file_upload"

KEEP_ATTACHED_SECONDS = 240.0
"""Hanami deletes a temp file after ~10 minutes without an attached websocket (Q-D6: ten runs of a
60 s clean-up loop; attaching resets the count). While one file of an MNIST upload is sent, the
other one is attached briefly this often, so a slow first file cannot cost the second one."""


class _Progress:
    """Bytes sent over all files of one upload, reported through the optional callback."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total = total
        self.sent = 0
        self._callback = callback

    async def add(self, n: int) -> None:
        self.sent += n
        if self._callback is not None:
            await self._callback(self.sent, self.total)


async def _send_file(ws: ClientConnection, path: StrPath, size: int, progress: _Progress, timeout: float) -> None:
    handle = await asyncio.to_thread(open, path, "rb")
    try:
        position = 0
        while position < size:
            chunk = await asyncio.to_thread(handle.read, min(SEGMENT_SIZE, size - position))
            if not chunk:
                raise BadRequest(f"the file {os.path.basename(path)} became shorter during the upload",
                                 endpoint=ENDPOINT)
            frame = FileUpload_Message(position=position, data=chunk).SerializeToString()
            await send(ws, frame, timeout, ENDPOINT)
            raw = await receive(ws, timeout, ENDPOINT, "the upload")
            try:
                reply = FileUploadResponse_Message.FromString(raw)
            except DecodeError:
                raise BackendError("the upload reply is not a FileUploadResponse_Message",
                                   endpoint=ENDPOINT) from None
            if not reply.success:
                raise BackendError(reply.errorMessage or "the backend refused an upload chunk", endpoint=ENDPOINT)
            position += len(chunk)
            await progress.add(len(chunk))
    finally:
        await asyncio.to_thread(handle.close)


async def _wait_complete(api: TokenCalls, dataset_uuid: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    interval = 0.05
    while True:
        # the uploader itself asks, with the uploading token: safe from Q-C4
        state = await api._call("GET", "v1/dataset/progress", query={"uuid": dataset_uuid})
        if isinstance(state, dict) and state.get("complete") is True:
            return
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise BackendUnavailable(
                f"the backend did not report the upload complete within {timeout:g} s",
                endpoint="GET v1/dataset/progress",
            )
        await asyncio.sleep(min(interval, remaining))
        interval = min(interval * 2, 0.5)


async def _keep_attached(api: TokenCalls, temp_uuids: list[str], interval: float) -> None:
    """Attach a websocket to each of ``temp_uuids`` every ``interval`` seconds (and detach at once)."""
    while True:
        await asyncio.sleep(interval)
        for temp_uuid in temp_uuids:
            async with api.websocket("file_upload", temp_uuid):
                pass


async def _discard(api: TokenCalls, dataset_uuid: str) -> None:
    try:
        await api._call("DELETE", "v1/dataset", query={"uuid": dataset_uuid})
        log.info("upload failed: data-set %s deleted again", dataset_uuid)
    except Exception as exc:  # best effort: the original failure is what the caller must see
        log.warning("upload failed and data-set %s could not be deleted: %r", dataset_uuid, exc)


async def _discard_when_created(api: TokenCalls, init_call: asyncio.Future[Any]) -> None:
    try:
        init = await init_call
    except Exception:  # the init failed: nothing was created
        return
    dataset_uuid = init.get("uuid") if isinstance(init, dict) else None
    if isinstance(dataset_uuid, str):
        await _discard(api, dataset_uuid)


async def upload_dataset(
    api: TokenCalls,
    kind: Literal["mnist", "csv"],
    name: str,
    paths: list[StrPath],
    progress: ProgressCallback | None,
    *,
    complete_timeout: float,
    keep_attached: float = KEEP_ATTACHED_SECONDS,
    on_created: CreatedCallback | None = None,
) -> str:
    """Run a whole upload; returns the dataset uuid (see module docstring).

    ``on_created(uuid)`` is awaited once Hanami created the dataset, before any data is sent: the
    caller can keep a durable note of a dataset to delete should this process die mid-upload.
    """
    sizes = [await asyncio.to_thread(os.path.getsize, p) for p in paths]
    body: dict[str, object] = {"name": name, "input_data_size": sizes[0]}
    if kind == "mnist":
        body["label_data_size"] = sizes[1]
    endpoint_id = f"v1/{kind}/dataset"
    init_call = asyncio.ensure_future(api._call("POST", endpoint_id, body=body))
    try:
        init = await asyncio.shield(init_call)
    except asyncio.CancelledError:
        # the backend may create the dataset anyway: wait for its answer and delete it again
        await asyncio.shield(_discard_when_created(api, init_call))
        raise
    dataset_uuid = init.get("uuid") if isinstance(init, dict) else None
    if not isinstance(dataset_uuid, str):
        raise BackendError("the upload init answer has no dataset uuid", status=200, endpoint=f"POST {endpoint_id}")
    try:
        if on_created is not None:
            await on_created(dataset_uuid)
        temp_keys = ["uuid_input_file", "uuid_label_file"][: len(paths)]
        temp_uuids = [init.get(key) for key in temp_keys]
        if not all(isinstance(u, str) for u in temp_uuids):
            raise BackendError("the upload init answer has no temp-file uuids", status=200,
                               endpoint=f"POST {endpoint_id}")
        counter = _Progress(sum(sizes), progress)
        await counter.add(0)
        for path, size, temp_uuid in zip(paths, sizes, temp_uuids, strict=True):
            others = [other for other in temp_uuids if other != temp_uuid]
            keeper = asyncio.create_task(_keep_attached(api, others, keep_attached)) if others else None
            try:
                async with api.websocket("file_upload", temp_uuid) as ws:
                    await _send_file(ws, path, size, counter, api.client.timeout)
            finally:
                if keeper is not None:
                    keeper.cancel()
                    await asyncio.wait([keeper])
            if keeper is not None and not keeper.cancelled() and keeper.exception() is not None:
                raise keeper.exception()  # e.g. the other temp file is gone already
        await _wait_complete(api, dataset_uuid, complete_timeout)
        final = {"uuid": dataset_uuid, **dict(zip(temp_keys, temp_uuids, strict=True))}
        await api._call("PUT", endpoint_id, body=final)
    except BaseException:
        # shielded: a second cancellation must not stop the clean-up half-way
        await asyncio.shield(_discard(api, dataset_uuid))
        raise
    return dataset_uuid
