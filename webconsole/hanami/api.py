"""``HanamiAPI``: every Hanami operation, bound to one token (made by ``HanamiClient.api``).

One method per backend operation, plus the guards that keep the real backend alive: dataset uuids
are checked against ``dataset/all`` before use (Q-C2), upload progress is only read by the
uploader (Q-C4), cluster templates are always sent, LF-only and base64 with padding (Q-C1, Q-C5),
and direct IO never attaches to an unknown cluster (Q-W2).
"""

from __future__ import annotations

import asyncio
import base64
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection

from .calls import CreatedCallback, ProgressCallback, StrPath, Transport
from .direct_io import DirectIOSession
from .errors import (BackendError, BackendUnavailable, BadRequest, Conflict, HanamiError, NotFound, PolicyDenied,
                     TokenExpired)
from .models import Identity, Table, TokenInfo, decode_token_claims
from .uploads import upload_dataset
from .websocket import Target

__all__ = ["HanamiAPI", "ProgressCallback", "StrPath"]

_HTTP_TYPES = {"DELETE": 1, "GET": 2, "HEAD": 3, "POST": 4, "PUT": 5}


# Stored text that reads back as a boolean (§1.8); as a name or id it breaks every later answer
# that has to contain it (the output check fails: 500, Q-G4).
_BOOLEAN_WORDS = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})
_MAX_PAGE = 1_000_000_000  # larger query integers crash the real backend (Q-C6)


def _plain_text(field: str, value: str, endpoint: str) -> str:
    if value in _BOOLEAN_WORDS:
        raise BadRequest(
            f"Given item '{field}' can not be '{value}': Hanami would store it as a boolean.",
            status=400, endpoint=endpoint,
        )
    return value


def _page(page: int, endpoint: str) -> int:
    if isinstance(page, bool) or not isinstance(page, int) or not 0 <= page <= _MAX_PAGE:
        raise BadRequest(f"Given item 'page' must be a whole number from 0 to {_MAX_PAGE}",
                         status=400, endpoint=endpoint)
    return page


def _template_base64(text: str) -> str:
    """Standard base64 (with padding) of the LF-normalised template text (§6.2: ``\\r`` is fatal)."""
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    if not normalised.strip():
        # "template": "" would create a cluster without network, which crashes the backend later (Q-C5)
        raise BadRequest("The cluster template is empty.", status=400, endpoint="POST v1/cluster")
    return base64.b64encode(normalised.encode("utf-8")).decode("ascii")


class HanamiAPI:
    """Every Hanami operation, bound to one token. Methods raise the exceptions of ``errors``."""

    def __init__(self, client: Transport, token: str) -> None:
        self._client = client
        self._token = token

    def __repr__(self) -> str:
        return f"HanamiAPI({self._client.base_url!r})"

    @property
    def client(self) -> Transport:
        return self._client

    async def _call(
        self,
        method: Literal["GET", "POST", "PUT", "DELETE"],
        endpoint_id: str,
        *,
        query: dict[str, str | int] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        return await self._client.request(method, endpoint_id, token=self._token, query=query, body=body)

    async def _table(self, endpoint_id: str, query: dict[str, str | int] | None = None) -> Table:
        return Table.from_response(await self._call("GET", endpoint_id, query=query))

    async def _object(self, method: Literal["GET", "POST", "PUT", "DELETE"], endpoint_id: str, **kw: Any) -> dict:
        data = await self._call(method, endpoint_id, **kw)
        if not isinstance(data, dict):
            raise BackendError("the Hanami backend answered with something that is not an object",
                               status=200, endpoint=f"{method} {endpoint_id}")
        return data

    def websocket(self, target: Target, uuid: str) -> AbstractAsyncContextManager[ClientConnection]:
        """Async context manager: an initialised backend websocket for this token."""
        return self._client.websocket(self._token, target, uuid)

    def token_claims(self) -> dict[str, Any]:
        """The (unverified) JWT payload of this token; ``user`` decoded. ``{}`` if not a JWT."""
        try:
            return decode_token_claims(self._token)
        except ValueError:
            return {}

    # -- session -------------------------------------------------------------------------------

    async def auth(self) -> Identity:
        """``GET v1/auth``: who am I, in which project, with which role."""
        return Identity.from_response(await self._object("GET", "v1/auth"))

    async def is_allowed(self, endpoint_id: str, method: str) -> bool:
        """Policy probe via ``GET v1/auth?endpoint=…&http_type=…`` (hard admin checks not included)."""
        try:
            await self._call("GET", "v1/auth", query={"endpoint": endpoint_id, "http_type": _HTTP_TYPES[method]})
        except PolicyDenied:
            return False
        return True

    async def renew(self, project_id: str) -> TokenInfo:
        """``PUT v1/token``: a fresh token for ``project_id`` (the current one renews; another switches)."""
        return TokenInfo.from_response(await self._object("PUT", "v1/token", body={"project_id": project_id}))

    # -- projects --------------------------------------------------------------------------------

    async def list_projects(self) -> Table:
        return await self._table("v1/project/all")

    async def get_project(self, id: str) -> dict:
        return await self._object("GET", "v1/project", query={"id": id})

    async def create_project(self, id: str, name: str) -> dict:
        body = {"id": _plain_text("id", id, "POST v1/project"), "name": _plain_text("name", name, "POST v1/project")}
        return await self._object("POST", "v1/project", body=body)

    async def delete_project(self, id: str) -> None:
        await self._call("DELETE", "v1/project", query={"id": id})

    # -- users -----------------------------------------------------------------------------------

    async def list_users(self) -> Table:
        return await self._table("v1/user/all")

    async def get_user(self, id: str) -> dict:
        return await self._object("GET", "v1/user", query={"id": id})

    async def create_user(self, id: str, name: str, password: str, is_admin: bool) -> dict:
        body = {"id": _plain_text("id", id, "POST v1/user"), "name": _plain_text("name", name, "POST v1/user"),
                "password": password, "is_admin": bool(is_admin)}
        return await self._object("POST", "v1/user", body=body)

    async def delete_user(self, id: str) -> None:
        await self._call("DELETE", "v1/user", query={"id": id})

    async def assign_project(self, user_id: str, project_id: str, role: str, is_project_admin: bool) -> dict:
        endpoint = "POST v1/user/project"
        body = {"id": user_id, "project_id": _plain_text("project_id", project_id, endpoint),
                "role": _plain_text("role", role, endpoint), "is_project_admin": bool(is_project_admin)}
        return await self._object("POST", "v1/user/project", body=body)

    async def remove_project(self, user_id: str, project_id: str) -> dict:
        return await self._object("DELETE", "v1/user/project", query={"id": user_id, "project_id": project_id})

    async def user_projects(self, user_id: str) -> list[dict]:
        """Project assignments of a user (admin only; members get ``AdminOnly``, Q-U1).

        For an admin user ``GET v1/user/project`` answers 500 (Q-U3); then the assignments are
        taken from ``GET v1/user`` instead (real assignments only, never the virtual ``admin``).
        """
        try:
            data = await self._object("GET", "v1/user/project", query={"user_id": user_id})
        except BackendError as exc:
            if exc.status != 500:
                raise
            try:
                data = await self.get_user(user_id)
            except HanamiError:
                raise exc from None
        projects = data.get("projects")
        if not isinstance(projects, list):
            raise BackendError("the project list of the backend is malformed", status=200,
                               endpoint="GET v1/user/project")
        return projects

    # -- clusters --------------------------------------------------------------------------------

    async def list_clusters(self) -> Table:
        return await self._table("v1/cluster/all")

    async def get_cluster(self, uuid: str) -> dict:
        return await self._object("GET", "v1/cluster", query={"uuid": uuid})

    async def create_cluster(self, name: str, template_text: str) -> dict:
        """Always sends ``template`` (base64 with padding of the LF-only text), see Q-C1/Q-C5."""
        body = {"name": _plain_text("name", name, "POST v1/cluster"), "template": _template_base64(template_text)}
        return await self._object("POST", "v1/cluster", body=body)

    async def delete_cluster(self, uuid: str) -> None:
        await self._call("DELETE", "v1/cluster", query={"uuid": uuid})

    async def save_checkpoint(self, cluster_uuid: str, name: str) -> dict:
        """Queues a save task; its uuid is the future checkpoint's uuid."""
        body = {"name": _plain_text("name", name, "POST v1/cluster/save"), "cluster_uuid": cluster_uuid}
        return await self._object("POST", "v1/cluster/save", body=body)

    async def restore_checkpoint(self, cluster_uuid: str, checkpoint_uuid: str) -> dict:
        body = {"cluster_uuid": cluster_uuid, "checkpoint_uuid": checkpoint_uuid}
        return await self._object("POST", "v1/cluster/load", body=body)

    async def switch_host(self, cluster_uuid: str, host_uuid: str) -> dict:
        body = {"cluster_uuid": cluster_uuid, "host_uuid": host_uuid}
        return await self._object("PUT", "v1/cluster/switch_host", body=body)

    async def set_mode(self, cluster_uuid: str, mode: Literal["TASK", "DIRECT"]) -> dict:
        if mode not in ("TASK", "DIRECT"):
            raise ValueError("mode must be 'TASK' or 'DIRECT'")
        return await self._object("PUT", "v1/cluster/set_mode", body={"uuid": cluster_uuid, "new_state": mode})

    # -- tasks -----------------------------------------------------------------------------------

    async def create_task(
        self, name: str, type: Literal["train", "request"], cluster_uuid: str, dataset_uuid: str
    ) -> dict:
        if type not in ("train", "request"):
            raise ValueError("type must be 'train' or 'request'")
        _plain_text("name", name, "POST v1/task")
        await self._require_dataset(dataset_uuid, "POST v1/task")
        body = {"name": name, "type": type, "cluster_uuid": cluster_uuid, "dataset_uuid": dataset_uuid}
        return await self._object("POST", "v1/task", body=body)

    async def get_task(self, uuid: str, cluster_uuid: str) -> dict:
        """Task progress. An unknown task is 500 on the backend (Q-T1); it becomes ``NotFound`` here."""
        try:
            return await self._object("GET", "v1/task", query={"uuid": uuid, "cluster_uuid": cluster_uuid})
        except BackendError as exc:
            if exc.status != 500:
                raise
            try:
                listed = uuid in (await self.list_tasks(cluster_uuid)).column("uuid")
            except (HanamiError, KeyError):
                raise exc from None
            if listed:
                raise
            raise NotFound(f"Task with uuid '{uuid}' not found", status=404, endpoint="GET v1/task") from None

    async def list_tasks(self, cluster_uuid: str) -> Table:
        return await self._table("v1/task/all", query={"cluster_uuid": cluster_uuid})

    async def delete_task(self, uuid: str, cluster_uuid: str) -> None:
        await self._call("DELETE", "v1/task", query={"uuid": uuid, "cluster_uuid": cluster_uuid})

    # -- datasets --------------------------------------------------------------------------------

    async def list_datasets(self) -> Table:
        return await self._table("v1/dataset/all")

    async def _require_dataset(self, uuid: str, endpoint: str) -> dict[str, Any]:
        """The dataset's list record; ``NotFound`` when it is not listed (never crash Hanami, Q-C2)."""
        record = (await self.list_datasets()).find("uuid", uuid)
        if record is None:
            raise NotFound(f"Data-set with uuid '{uuid}' not found", status=404, endpoint=endpoint)
        return record

    async def get_dataset(self, uuid: str) -> dict:
        await self._require_dataset(uuid, "GET v1/dataset")
        return await self._object("GET", "v1/dataset", query={"uuid": uuid})

    async def get_datasets(self, uuids: list[str], concurrency: int = 4) -> dict[str, dict | HanamiError]:
        """``GET v1/dataset`` for several uuids: each answer, or the ``HanamiError`` it raised.

        The Q-C2 guard of ``get_dataset`` at the cost of one listing per ``concurrency`` reads: every
        round takes a fresh ``dataset/all`` and reads (concurrently) only the uuids it still shows;
        a uuid it does not show gets ``NotFound`` and is never sent. Token expiry and an
        unreachable backend propagate.
        """
        found: dict[str, dict | HanamiError] = {}
        pending = list(dict.fromkeys(uuids))
        for start in range(0, len(pending), concurrency):
            batch = pending[start:start + concurrency]
            listed = {str(uuid) for uuid in (await self.list_datasets()).column("uuid")}

            async def one(uuid: str) -> None:
                if uuid not in listed:
                    found[uuid] = NotFound(f"Data-set with uuid '{uuid}' not found", status=404,
                                           endpoint="GET v1/dataset")
                    return
                try:
                    found[uuid] = await self._object("GET", "v1/dataset", query={"uuid": uuid})
                except (TokenExpired, BackendUnavailable):
                    raise
                except HanamiError as exc:
                    found[uuid] = exc

            await asyncio.gather(*(one(uuid) for uuid in batch))
        return found

    async def delete_dataset(self, uuid: str) -> None:
        await self._call("DELETE", "v1/dataset", query={"uuid": uuid})

    async def dataset_progress(self, uuid: str) -> dict:
        """Upload progress ``{"complete": bool, "uuid": …}``.

        Only the uploading user in the uploading project may ask while the upload runs: anyone else
        crashes the real backend (Q-C4), so that case is refused here with ``Conflict``.
        """
        record = await self._require_dataset(uuid, "GET v1/dataset/progress")
        user = self.token_claims().get("user") or {}
        if user and (record.get("owner_id") != user.get("id") or record.get("project_id") != user.get("project_id")):
            raise Conflict(
                "The upload progress of a data-set can only be read by the user who uploads it, "
                "in the project the upload was started in.",
                endpoint="GET v1/dataset/progress",
            )
        return await self._object("GET", "v1/dataset/progress", query={"uuid": uuid})

    async def check_dataset(self, result_uuid: str, dataset_uuid: str) -> float | None:
        """Accuracy (percent) of a request result against a dataset; ``None`` when the backend
        cannot compute it (answer ``{}``, Q-D4, or a non-finite value)."""
        await self._require_dataset(dataset_uuid, "POST v1/dataset/check")
        body = {"result_uuid": result_uuid, "dataset_uuid": dataset_uuid}
        data = await self._object("POST", "v1/dataset/check", body=body)
        accuracy = data.get("accuracy")
        if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)):
            return None
        return float(accuracy)

    async def upload_mnist(
        self,
        name: str,
        images_path: StrPath,
        labels_path: StrPath,
        progress: ProgressCallback | None = None,
        *,
        complete_timeout: float = 60.0,
        on_created: CreatedCallback | None = None,
    ) -> str:
        """Upload an MNIST idx image/label pair as a new dataset; returns the dataset uuid.

        Any failure or cancellation after the dataset was created deletes it again (best effort:
        ``on_created`` lets the caller keep a note for when the backend cannot be reached then).
        """
        _plain_text("name", name, "POST v1/mnist/dataset")
        return await upload_dataset(
            self, "mnist", name, [images_path, labels_path], progress, complete_timeout=complete_timeout,
            on_created=on_created,
        )

    async def upload_csv(
        self,
        name: str,
        csv_path: StrPath,
        progress: ProgressCallback | None = None,
        *,
        complete_timeout: float = 60.0,
        on_created: CreatedCallback | None = None,
    ) -> str:
        """Upload a CSV file (LF line endings) as a new dataset; returns the dataset uuid.

        Hanami names a CSV dataset's file after the dataset name and owner (Q-D3): a second CSV
        dataset of the same name and owner would share (and on delete destroy) the first one's
        data, so that is refused with ``Conflict``.
        """
        endpoint = "POST v1/csv/dataset"
        _plain_text("name", name, endpoint)
        owner = (self.token_claims().get("user") or {}).get("id")
        if owner is not None:
            for record in (await self.list_datasets()).records():
                if record.get("type") == "csv" and record.get("name") == name and record.get("owner_id") == owner:
                    raise Conflict(
                        f"A CSV data-set named '{name}' already exists; Hanami would store both in one "
                        "file. Choose another name or delete the existing data-set first.",
                        endpoint=endpoint,
                    )
        return await upload_dataset(self, "csv", name, [csv_path], progress, complete_timeout=complete_timeout,
                                    on_created=on_created)

    # -- checkpoints, results ----------------------------------------------------------------------

    async def list_checkpoints(self) -> Table:
        return await self._table("v1/checkpoint/all")

    async def get_checkpoint(self, uuid: str) -> dict:
        return await self._object("GET", "v1/checkpoint", query={"uuid": uuid})

    async def delete_checkpoint(self, uuid: str) -> None:
        await self._call("DELETE", "v1/checkpoint", query={"uuid": uuid})

    async def list_results(self) -> Table:
        return await self._table("v1/request_result/all")

    async def get_result(self, uuid: str) -> dict:
        return await self._object("GET", "v1/request_result", query={"uuid": uuid})

    async def delete_result(self, uuid: str) -> None:
        await self._call("DELETE", "v1/request_result", query={"uuid": uuid})

    # -- hosts, logs, measurements -----------------------------------------------------------------

    async def list_hosts(self) -> Table:
        return await self._table("v1/host/all")

    async def audit_log(self, page: int = 0) -> Table:
        """The caller's own audit entries, 100 per page (``user_id`` is ignored by Hanami, Q-L1)."""
        return await self._table("v1/audit_log", query={"page": _page(page, "GET v1/audit_log")})

    async def error_log(self, page: int = 0, user_id: str | None = None) -> Table:
        """Error log entries of ``user_id`` (without: entries logged without a user, Q-L2)."""
        query: dict[str, str | int] = {"page": _page(page, "GET v1/error_log")}
        if user_id:
            query["user_id"] = user_id
        return await self._table("v1/error_log", query=query)

    async def _series(self, endpoint_id: str, key: str) -> dict[str, list[float]]:
        data = await self._object("GET", endpoint_id)
        series = data.get(key)
        if not isinstance(series, dict):
            raise BackendError(f"'{key}' is missing in the answer", status=200, endpoint=f"GET {endpoint_id}")
        return series

    async def power(self) -> dict[str, list[float]]:
        """CPU power in W: ``{"days": [365], "hours": [24], "minutes": [60], "seconds": [60]}``."""
        return await self._series("v1/power_consumption", "power")

    async def speed(self) -> dict[str, list[float]]:
        """CPU speed in MHz, same shape as ``power()``."""
        return await self._series("v1/speed", "current_speed")

    async def temperature(self) -> dict[str, list[float]]:
        """CPU temperature in °C, same shape as ``power()``."""
        return await self._series("v1/temperature_production", "temperature")

    async def system_info(self) -> dict:
        """The ``info`` object: ``has_hyperthreading``, ``hostname``, ``packages``."""
        return await self._series("v1/system_info", "info")

    async def threading(self) -> dict:
        """The ``thread_map``: thread-group name -> CPU thread ids (500 on real servers, §14)."""
        return await self._series("v1/threading", "thread_map")

    # -- direct IO -------------------------------------------------------------------------------

    def direct_io(self, cluster_uuid: str, *, reply_timeout: float = 10.0) -> DirectIOSession:
        """``async with api.direct_io(uuid) as io:`` one cluster websocket (does not switch modes)."""
        return DirectIOSession(self, cluster_uuid, reply_timeout=reply_timeout)
