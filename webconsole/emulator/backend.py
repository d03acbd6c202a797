"""The emulated Hanami process state: store, policy, clusters, hosts, temp files, sampler."""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from .config import EmulatorConfig
from .measurements import Measurements
from .policy import Policy
from .response import Response
from .runtime import Cluster, Task, new_uuid
from .store import Store
from .tempfiles import TempFiles
from .tokens import create_token, validate_token

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    pass


def password_hash(password: str, salt: str) -> str:
    return hashlib.sha256((password + salt).encode()).hexdigest()


class Backend:
    def __init__(self, config: EmulatorConfig):
        self.config = config
        root = config.state_dir
        root.mkdir(parents=True, exist_ok=True)
        self.dataset_dir = root / "datasets"
        self.checkpoint_dir = root / "checkpoints"
        self.dataset_dir.mkdir(exist_ok=True)
        self.checkpoint_dir.mkdir(exist_ok=True)
        self.policy = Policy.load(config.policy_file)
        self.store = Store(root / "hanami_db")
        self.store.clear("clusters")  # clusters do not survive a restart (Q-T7)
        self._bootstrap_admin()
        self.tempfiles = TempFiles(root / "tempfiles")
        self.clusters: dict[str, Cluster] = {}
        self.clusters_lock = threading.RLock()
        # one `cpu` row per "socket": we offer two logical cpu hosts so that switch_host has a target
        self.hosts: list[tuple[str, str]] = [(new_uuid(), "cpu"), (new_uuid(), "cpu")]
        self.started = time.monotonic()
        self.measurements = Measurements(config.measurement_interval)

    # -- lifecycle ----------------------------------------------------------------------------
    def _bootstrap_admin(self) -> None:
        if any(u["is_admin"] is True for u in self.store.rows("users")):
            return
        cfg = self.config
        if not (cfg.admin_id and cfg.admin_name and cfg.admin_password):
            raise StartupError("no admin user exists and HANAMI_ADMIN_USER_ID/_NAME/_PASSWORD "
                               "(or EmulatorConfig admin_*) are not all set")
        salt = secrets.token_hex(16)
        self.store.insert("users", {
            "id": cfg.admin_id, "name": cfg.admin_name, "creator_id": "MISAKI", "projects": [],
            "is_admin": True, "pw_hash": password_hash(cfg.admin_password, salt), "salt": salt})

    def start(self) -> None:
        self.measurements.start()

    def close(self) -> None:
        self.measurements.stop()
        with self.clusters_lock:
            for cluster in self.clusters.values():
                cluster.delete()
        self.store.close()

    # -- tokens -------------------------------------------------------------------------------
    def make_token(self, user: dict[str, Any]) -> str:
        return create_token(self.config.token_key, self.config.token_expire, user)

    def validate_token(self, token: str) -> dict[str, Any] | None:
        return validate_token(self.config.token_key, token)

    # -- clusters -----------------------------------------------------------------------------
    def cluster(self, uuid: str) -> Cluster | None:
        with self.clusters_lock:
            return self.clusters.get(uuid)

    def add_cluster(self, uuid: str, name: str, network: Any) -> Cluster:
        cluster = Cluster(uuid, name, network, self.hosts[0][0], self._task_finished)
        with self.clusters_lock:
            self.clusters[uuid] = cluster
        return cluster

    def remove_cluster(self, uuid: str) -> Cluster | None:
        with self.clusters_lock:
            cluster = self.clusters.pop(uuid, None)
        if cluster is not None:
            cluster.delete()
        return cluster

    def _task_finished(self, cluster: Cluster, task: Task) -> None:
        """Runs on the worker thread when a task completed its cycles."""
        from .network import Network

        user = task.user
        if task.kind == "request":
            self.store.insert("request_results", {
                "uuid": task.uuid, "project_id": user["project_id"], "owner_id": user["id"],
                "visibility": "private", "name": task.name, "data": task.output})
        elif task.kind == "save":
            path = self.checkpoint_dir / f"{task.uuid}_checkpoint_{user['id']}"
            with cluster.net_lock:
                data = cluster.network.to_bytes()
            path.write_bytes(data)
            self.store.insert("checkpoints", {
                "uuid": task.uuid, "project_id": user["project_id"], "owner_id": user["id"],
                "visibility": "private", "name": task.name, "location": str(path)})
        elif task.kind == "restore":
            row = self.store.get_visible("checkpoints", task.checkpoint_uuid or "", user)
            if row is None:
                return  # Q-K1: silent failure, the task still ends as finished
            network = Network.from_bytes(Path(row["location"]).read_bytes())
            with cluster.net_lock:
                cluster.network = network

    # -- static files for non-/control GETs ------------------------------------------------------
    def static_file(self, target: str) -> Response:
        folder = self.config.dashboard_dir
        path = target.split("?", 1)[0]
        if path == "/":
            path = "/index.html"
        if folder is None:
            return Response.text(500)
        file = (folder / path.lstrip("/")).resolve()
        if not file.is_file() or folder.resolve() not in file.parents:
            return Response.text(500)
        kind = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}.get(
            file.suffix, "application/octet-stream")
        return Response(200, file.read_bytes(), kind)
