"""Helpers for the emulator conformance tests: real HTTP and websockets like the Python SDK.

The helpers do what the Hanami Python SDK does (§9.1): JSON bodies as strings without a
Content-Type, query strings by plain string formatting, ``X-Auth-Token`` header, websockets to the
bare host with 131072-byte upload chunks, each reply awaited.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any, Callable

import httpx
from websockets.sync.client import connect

from webconsole.emulator import EmulatorConfig, EmulatorServer
from webconsole.protocol.messages import (
    SEGMENT_SIZE,
    ClusterIO_Message,
    FileUpload_Message,
    FileUploadResponse_Message,
)

ADMIN = ("asdf", "asdfasdf")
HTTP = httpx.Client()  # one client: building an SSL context per request costs ~40 ms


def make_config(state_dir: Path, **overrides: Any) -> EmulatorConfig:
    values: dict[str, Any] = dict(state_dir=state_dir, port=0, admin_id=ADMIN[0], admin_name="Admin",
                                  admin_password=ADMIN[1], threading_delay=0.0, seed=42,
                                  tempfile_check_interval=0.05)
    values.update(overrides)
    return EmulatorConfig(**values)


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


class Api:
    """A token-bound client doing exactly what the Python SDK does on the wire."""

    def __init__(self, server: EmulatorServer, token: str | None = None):
        self.server = server
        self.base = server.url
        self.token = token

    def call(self, method: str, path: str, body: Any = None, query: str = "",
             headers: dict[str, str] | None = None) -> httpx.Response:
        url = f"{self.base}/control/{path}" + (f"?{query}" if query else "")
        sent = dict(headers or {})
        if self.token is not None:
            sent["X-Auth-Token"] = self.token
        content = None if body is None else (body if isinstance(body, (str, bytes)) else json.dumps(body))
        return HTTP.request(method, url, content=content, headers=sent, timeout=30)

    def ok(self, method: str, path: str, body: Any = None, query: str = "") -> Any:
        resp = self.call(method, path, body, query)
        assert resp.status_code == 200, (resp.status_code, resp.text)
        assert resp.headers["content-type"] == "text/json"
        return resp.json()

    # -- SDK-like helpers ---------------------------------------------------------------------
    def login(self, user_id: str, password: str) -> "Api":
        resp = HTTP.post(f"{self.base}/control/v1/token",
                          content=json.dumps({"id": user_id, "password": password}), timeout=30)
        assert resp.status_code == 200, resp.text
        return Api(self.server, resp.json()["token"])

    def create_cluster(self, name: str, template: str) -> str:
        body = {"name": name, "template": base64.b64encode(template.encode()).decode()}
        return self.ok("POST", "v1/cluster", body)["uuid"]

    def task(self, cluster: str, task: str) -> dict[str, Any]:
        return self.ok("GET", "v1/task", query=f"uuid={task}&cluster_uuid={cluster}")

    def wait_task(self, cluster: str, task: str, timeout: float = 60.0) -> dict[str, Any]:
        return wait_for(lambda: (t := self.task(cluster, task))["state"] == "finished" and t, timeout)

    def upload_file(self, temp_uuid: str, data: bytes) -> None:
        with connect(self.server.ws_url) as ws:
            ws.send(json.dumps({"token": self.token, "target": "file_upload", "uuid": temp_uuid}))
            reply = json.loads(ws.recv(timeout=10))
            assert reply["success"] is True, reply
            for pos in range(0, len(data), SEGMENT_SIZE):
                ws.send(FileUpload_Message(position=pos, data=data[pos:pos + SEGMENT_SIZE]).SerializeToString())
                answer = FileUploadResponse_Message.FromString(ws.recv(timeout=10))
                assert answer.success, answer.errorMessage

    def upload_mnist(self, name: str, images: Path, labels: Path) -> str:
        img, lab = images.read_bytes(), labels.read_bytes()
        init = self.ok("POST", "v1/mnist/dataset",
                       {"name": name, "input_data_size": len(img), "label_data_size": len(lab)})
        self.upload_file(init["uuid_input_file"], img)
        self.upload_file(init["uuid_label_file"], lab)
        wait_for(lambda: self.ok("GET", "v1/dataset/progress", query=f"uuid={init['uuid']}")["complete"])
        self.ok("PUT", "v1/mnist/dataset", {"uuid": init["uuid"], "uuid_input_file": init["uuid_input_file"],
                                            "uuid_label_file": init["uuid_label_file"]})
        return init["uuid"]

    def upload_csv(self, name: str, data: bytes) -> str:
        init = self.ok("POST", "v1/csv/dataset", {"name": name, "input_data_size": len(data)})
        self.upload_file(init["uuid_input_file"], data)
        wait_for(lambda: self.ok("GET", "v1/dataset/progress", query=f"uuid={init['uuid']}")["complete"])
        self.ok("PUT", "v1/csv/dataset", {"uuid": init["uuid"], "uuid_input_file": init["uuid_input_file"]})
        return init["uuid"]


def direct_request(ws: Any, brick: str, values: list[float]) -> ClusterIO_Message:
    msg = ClusterIO_Message(brickName=brick, isLast=True, processType=0, numberOfValues=len(values),
                            values=values)
    ws.send(msg.SerializeToString())
    return ClusterIO_Message.FromString(ws.recv(timeout=20))


def direct_train(ws: Any, in_brick: str, values: list[float], out_brick: str, expected: list[float]) -> None:
    ws.send(ClusterIO_Message(brickName=in_brick, isLast=False, processType=1,
                              numberOfValues=len(values), values=values).SerializeToString())
    ack = ClusterIO_Message.FromString(ws.recv(timeout=20))
    assert (ack.isLast, ack.processType, list(ack.values)) == (False, 1, [0.0])
    ws.send(ClusterIO_Message(brickName=out_brick, isLast=True, processType=1,
                              numberOfValues=len(expected), values=expected).SerializeToString())
    done = ClusterIO_Message.FromString(ws.recv(timeout=20))
    assert (done.isLast, done.processType) == (True, 1)


_counter = iter(range(1, 1_000_000))


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"
