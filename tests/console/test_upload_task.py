"""The background task that sends a validated upload to Hanami, driven over HTTP in-process: what it
records when the upload ends (the state every replica reads, the audit row, the metrics, what the
console remembers of the dataset), and that however it ends no half-made dataset, no file and no
cancel request stays behind.

Faults come from a misbehaving loopback proxy between the console and the backend
(``tests/faults/proxy.py``): a slow link, a link that stalls, a backend that cannot be reached.
"""

from __future__ import annotations

import calendar
import json
import logging
import re
import secrets
import shutil
import struct
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, in_process_console, login, wait_for
from tests.console.effects import audit_rows
from tests.faults.proxy import FaultProxy
from webconsole.web.clusters.memory import dataset_facts
from webconsole.web.datasets.contents import LABELS_PREFIX, VALUES_PREFIX
from webconsole.web.datasets.half_datasets import PREFIX as OWED_PREFIX
from webconsole.web.datasets.upload_state import CANCEL_PREFIX, PENDING_DELETE, UploadState, read_state
from webconsole.web.datasets.upload_task import upload_tasks

CANCELLED = "The upload was cancelled; nothing was kept on Hanami."


def unique(prefix: str) -> str:
    return f"{prefix} {secrets.token_hex(3)}"


def csv_rows(lines: int) -> bytes:
    return b"x,y\n" + b"".join(b"%d.25,%d.5\n" % (i % 97, i % 89) for i in range(lines))


@asynccontextmanager
async def console(backend_url: str, upload_dir: Path, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    """The console in-process, logged in as the admin (``client.csrf``), uploads spooled to ``upload_dir``."""
    upload_dir.mkdir(exist_ok=True)
    async with in_process_console(backend_url, upload_dir=str(upload_dir), **overrides) as client:
        client.csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)  # type: ignore[attr-defined]
        yield client


async def start_upload(client: httpx.AsyncClient, kind: str, name: str, files: dict[str, tuple[str, bytes]]) -> str:
    answer = await client.post(
        "/datasets/upload", data={"csrf_token": client.csrf, "kind": kind, "name": name},  # type: ignore[attr-defined]
        files={key: (filename, data, "application/octet-stream") for key, (filename, data) in files.items()})
    assert answer.status_code == 303, answer.text[:800]
    return answer.headers["location"].rsplit("/", 1)[1]


async def state_of(client: httpx.AsyncClient, upload_id: str) -> UploadState:
    state = await read_state(client.app.state.store, upload_id)  # type: ignore[attr-defined]
    assert state is not None
    return state


async def ended(client: httpx.AsyncClient, upload_id: str, timeout: float = 30) -> UploadState:
    """The upload's state once its task is over (its end recorded and the task gone)."""
    app = client.app  # type: ignore[attr-defined]

    async def over() -> UploadState | None:
        state = await state_of(client, upload_id)
        return state if state.phase in ("done", "failed", "cancelled") and upload_id not in upload_tasks(app) else None

    return await wait_for(over, timeout=timeout, interval=0.02)


async def sending(client: httpx.AsyncClient, upload_id: str) -> UploadState:
    async def under_way() -> UploadState | None:
        state = await state_of(client, upload_id)
        return state if state.phase == "sending" and 0 < state.bytes_sent < state.bytes_total else None

    return await wait_for(under_way, timeout=30, interval=0.01)


async def sending_slowly(client: httpx.AsyncClient, proxy: FaultProxy, name: str) -> str:
    """Start a CSV upload of ~700 KB over a slowed link; its id once bytes go to Hanami."""
    proxy.set_mode("delay", delay=0.02)
    upload_id = await start_upload(client, "csv", name, {"csv": ("rows.csv", csv_rows(60_000))})
    await sending(client, upload_id)
    return upload_id


def backend_leg_bytes(metrics: str) -> float:
    counted = re.search(r'^hanami_console_upload_bytes_total\{leg="backend"\} (\S+)$', metrics, re.M)
    assert counted, "no backend leg in /metrics"
    return float(counted.group(1))


async def names_on_backend(hanami) -> list[str]:
    return [str(name) for name in (await hanami.list_datasets()).column("name")]


async def leftovers(client: httpx.AsyncClient, upload_id: str) -> list[str]:
    """Store keys an ended upload must not leave: an owed delete, a cancel request."""
    store = client.app.state.store  # type: ignore[attr-defined]
    owed = await store.keys(OWED_PREFIX)
    cancel = [CANCEL_PREFIX + upload_id] if await store.get(CANCEL_PREFIX + upload_id) is not None else []
    return owed + cancel


async def test_a_finished_csv_upload_is_recorded_everywhere(backend, hanami, tmp_path: Path) -> None:
    content = b"alpha,beta_2\n0.5,1\n0.25,0\n0.125,1\n"
    name = unique("task done")
    async with console(backend.url, tmp_path / "uploads") as client:
        app = client.app  # type: ignore[attr-defined]
        before = time.time()
        upload_id = await start_upload(client, "csv", name, {"csv": ("three.csv", content)})
        state = await ended(client, upload_id)
        assert (state.phase, state.error, state.half_dataset) == ("done", "", "")
        assert state.bytes_sent == state.bytes_total == len(content)
        assert before <= state.sending_started_at <= state.finished_at <= time.time()
        record = (await hanami.list_datasets()).find("name", name)
        assert record is not None and state.dataset_uuid == record["uuid"]
        try:
            assert (await hanami.get_dataset(state.dataset_uuid))["lines"] == 3
            facts = (await dataset_facts(app.state.store, [state.dataset_uuid]))[state.dataset_uuid]
            assert (facts["lines"], facts["columns"]) == (3, ["alpha", "beta_2"])
            uploaded = calendar.timegm(time.strptime(facts["uploaded"], "%Y-%m-%d %H:%M"))
            assert before - 60 <= uploaded <= time.time()  # UTC, to the minute
            assert await app.state.store.get(VALUES_PREFIX + state.dataset_uuid) is not None
            assert await leftovers(client, upload_id) == []
            assert backend_leg_bytes((await client.get("/metrics")).text) == len(content)
            rows = await audit_rows(app, ADMIN_ID, "dataset upload")
            assert [(row.detail, row.outcome, row.client) for row in rows] == [
                (f"csv dataset '{name}' ({len(content)} bytes) -> {state.dataset_uuid}", "ok", "127.0.0.1")]
            assert list((tmp_path / "uploads").iterdir()) == []
        finally:
            await hanami.delete_dataset(record["uuid"])


async def test_an_mnist_upload_reports_its_progress_then_finalises(backend, hanami, proxy: FaultProxy,
                                                                   tmp_path: Path) -> None:
    """Over a slow link the state shows the bytes going, then "finalising" with every byte sent
    while Hanami converts, then "done"; every byte is counted once in /metrics."""
    count = 1500  # ~1.2 MB of images: ten chunks of 128 KiB
    images = struct.pack(">IIII", 0x00000803, count, 28, 28) + bytes(784 * count)
    labels = struct.pack(">II", 0x00000801, count) + bytes(i % 10 for i in range(count))
    total = len(images) + len(labels)
    name = unique("task mnist")
    proxy.set_mode("delay", delay=0.03)
    async with console(proxy.url, tmp_path / "uploads") as client:
        app = client.app  # type: ignore[attr-defined]
        upload_id = await start_upload(client, "mnist", name, {"images": ("i.idx3-ubyte", images),
                                                               "labels": ("l.idx1-ubyte", labels)})
        seen: list[tuple[str, int]] = []
        owed_while_sending: set[str] = set()  # the delete noted before any byte went

        async def finished() -> bool:
            state = await state_of(client, upload_id)
            if not seen or seen[-1] != (state.phase, state.bytes_sent):
                seen.append((state.phase, state.bytes_sent))
            if state.phase == "sending" and state.bytes_sent > 0:
                owed_while_sending.update(await app.state.store.keys(OWED_PREFIX))
            return state.phase in ("done", "failed", "cancelled")

        await wait_for(finished, timeout=60, interval=0.005)
        state = await ended(client, upload_id)
        assert owed_while_sending == {OWED_PREFIX + state.dataset_uuid}
        assert await app.state.store.keys(OWED_PREFIX) == []  # a finished upload owes nothing
        try:
            assert state.phase == "done" and state.bytes_total == total
            phases = [phase for phase, _ in seen]
            assert phases[-1] == "done" and "finalising" in phases, seen
            assert all(sent == total for phase, sent in seen if phase == "finalising")
            sent_while_sending = [sent for phase, sent in seen if phase == "sending"]
            assert any(0 < sent < total for sent in sent_while_sending), seen
            assert sent_while_sending == sorted(sent_while_sending)
            assert backend_leg_bytes((await client.get("/metrics")).text) == total
            assert await app.state.store.get(LABELS_PREFIX + state.dataset_uuid) == bytes(i % 10 for i in range(count))
            info = await hanami.get_dataset(state.dataset_uuid)
            assert (info["lines"], info["inputs"]) == (count, 784)
        finally:
            await hanami.delete_dataset(state.dataset_uuid)


async def test_a_cancel_made_on_another_replica_stops_the_upload(backend, hanami, proxy: FaultProxy,
                                                                 tmp_path: Path) -> None:
    """Replica B only writes the cancel request; the task on replica A sees it, deletes the half
    dataset and records the end, which B then shows."""
    store_url = f"sqlite:///{tmp_path / 'shared.db'}"
    name = unique("task cancel")
    proxy.set_mode("delay", delay=0.05)
    async with console(proxy.url, tmp_path / "a", session_store_url=store_url) as first:
        async with in_process_console(proxy.url, session_store_url=store_url) as second:
            second.cookies = first.cookies  # the same browser session, served by the other replica
            upload_id = await start_upload(first, "csv", name, {"csv": ("rows.csv", csv_rows(60_000))})
            await sending(first, upload_id)
            assert name in await names_on_backend(hanami)  # Hanami made the dataset
            answer = await second.post(f"/datasets/uploads/{upload_id}/cancel",
                                       data={"csrf_token": first.csrf})  # type: ignore[attr-defined]
            assert answer.status_code == 303
            assert upload_tasks(second.app) == {}  # type: ignore[attr-defined]
            state = await ended(first, upload_id)
            assert (state.phase, state.error, state.half_dataset) == ("cancelled", CANCELLED, "deleted")
            assert state.dataset_uuid == "" and 0 < state.bytes_sent < state.bytes_total
            assert name not in await names_on_backend(hanami)
            assert await leftovers(first, upload_id) == []
            rows = await audit_rows(first.app, ADMIN_ID, "dataset upload")  # type: ignore[attr-defined]
            assert [(row.detail, row.outcome) for row in rows] == [(f"csv dataset '{name}' cancelled", "cancelled")]
            page = await second.get(f"/datasets/uploads/{upload_id}", headers={"HX-Request": "true"})
            assert 'data-phase="cancelled"' in page.text
    assert list((tmp_path / "a").iterdir()) == []


async def test_files_lost_on_the_console_fail_the_upload_plainly(backend, hanami, proxy: FaultProxy, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Not Hanami's fault: the checked files vanish from the console's upload folder before they
    are sent. The person reads a plain message, the operator gets the traceback, nothing is kept."""
    name = unique("task lost files")
    proxy.set_mode("delay", delay=0.05)  # the init and the websocket take a while: the files go first
    async with console(proxy.url, tmp_path / "uploads") as client:
        app = client.app  # type: ignore[attr-defined]
        logging.getLogger().addHandler(caplog.handler)  # create_app installed the console's own handler
        upload_id = await start_upload(client, "csv", name, {"csv": ("rows.csv", csv_rows(1000))})
        for folder in (tmp_path / "uploads").iterdir():
            shutil.rmtree(folder)
        state = await ended(client, upload_id)
        assert (state.phase, state.error) == ("failed", "The console failed while sending the files (FileNotFoundError).")
        rows = await audit_rows(app, ADMIN_ID, "dataset upload")
        assert [(row.detail, row.outcome) for row in rows] == [(f"csv dataset '{name}': FileNotFoundError", "failed")]
        logged = [r for r in caplog.records if r.name == "webconsole.uploads" and r.levelno == logging.ERROR]
        assert [r.getMessage() for r in logged] == [f"upload {upload_id} failed"]
        assert logged[0].exc_info is not None and logged[0].exc_info[0] is FileNotFoundError
        assert name not in await names_on_backend(hanami)
        assert await leftovers(client, upload_id) == []


async def test_a_stalled_link_keeps_the_heartbeat_going(backend, hanami, proxy: FaultProxy, tmp_path: Path) -> None:
    """While nothing moves (a stalled link, Hanami converting) the task still writes the state about
    every second, so other replicas do not take the upload for one whose console died."""
    name = unique("task stall")
    async with console(proxy.url, tmp_path / "uploads") as client:
        upload_id = await sending_slowly(client, proxy, name)
        proxy.set_mode("delay", delay=4.0)  # every further read waits 4 s
        stalled = time.time()

        async def beat() -> UploadState | None:
            state = await state_of(client, upload_id)
            return state if state.updated_at > stalled + 0.6 else None

        state = await wait_for(beat, timeout=2.5, interval=0.05)
        assert state.phase == "sending" and not state.stale
        proxy.set_mode("pass")
        proxy.cut()  # the stalled link breaks: the upload fails, and its dataset is deleted at once
        state = await ended(client, upload_id)
        assert (state.phase, state.half_dataset) == ("failed", "deleted")
        assert state.error == "the backend closed the websocket without answering (the upload)"
        assert name not in await names_on_backend(hanami)
        assert await leftovers(client, upload_id) == []


async def test_hanami_unreachable_mid_upload_leaves_a_delete_owed_then_done(backend, hanami, proxy: FaultProxy,
                                                                           tmp_path: Path) -> None:
    name = unique("task owed")
    async with console(proxy.url, tmp_path / "uploads", backend_timeout=2.0, cleanup_interval=0.3) as client:
        app = client.app  # type: ignore[attr-defined]
        upload_id = await sending_slowly(client, proxy, name)
        proxy.set_mode("drop")
        proxy.cut()
        state = await ended(client, upload_id)
        assert (state.phase, state.half_dataset) == ("failed", "pending")
        assert state.error.endswith(" " + PENDING_DELETE) and len(state.error) > len(PENDING_DELETE) + 1
        assert not state.error.startswith("The upload was cancelled")
        owed = await app.state.store.keys(OWED_PREFIX)
        assert len(owed) == 1 and name in await names_on_backend(hanami)
        record = json.loads(await app.state.store.get(owed[0]))
        assert (record["upload_id"], record["user_id"]) == (upload_id, ADMIN_ID)
        rows = await audit_rows(app, ADMIN_ID, "dataset upload")
        assert [(row.detail, row.outcome) for row in rows] == [(f"csv dataset '{name}': BackendUnavailable", "failed")]
        assert list((tmp_path / "uploads").iterdir()) == []
        proxy.set_mode("pass")  # Hanami is back: the sweep deletes what is owed

        async def swept() -> bool:
            return name not in await names_on_backend(hanami)

        await wait_for(swept, timeout=20)
        await wait_for(lambda: _no_owed(app), timeout=10)
        assert (await state_of(client, upload_id)).half_dataset == "deleted later"


async def _no_owed(app) -> bool:
    return await app.state.store.keys(OWED_PREFIX) == []


async def test_cancelled_while_hanami_is_unreachable_says_the_delete_is_owed(backend, hanami, proxy: FaultProxy,
                                                                            tmp_path: Path) -> None:
    name = unique("task cancel owed")
    async with console(proxy.url, tmp_path / "uploads", backend_timeout=2.0, cleanup_interval=3600) as client:
        app = client.app  # type: ignore[attr-defined]
        upload_id = await sending_slowly(client, proxy, name)
        proxy.set_mode("drop")  # new connections fail; the upload's websocket still goes on
        answer = await client.post(f"/datasets/uploads/{upload_id}/cancel", headers={"HX-Request": "true"},
                                   data={"csrf_token": client.csrf})  # type: ignore[attr-defined]
        assert answer.status_code == 200 and 'data-phase="cancelled"' in answer.text
        state = await ended(client, upload_id)
        assert (state.phase, state.half_dataset) == ("cancelled", "pending")
        assert state.error == "The upload was cancelled. " + PENDING_DELETE
        assert len(await app.state.store.keys(OWED_PREFIX)) == 1
        rows = await audit_rows(app, ADMIN_ID, "dataset upload")
        assert [(row.detail, row.outcome) for row in rows] == [(f"csv dataset '{name}' cancelled", "cancelled")]
        proxy.set_mode("pass")
        # the uploader logs in again while the delete is owed: the record takes the newer token
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as again:
            await login(again, ADMIN_ID, ADMIN_PASSWORD)
        (owed,) = await app.state.store.keys(OWED_PREFIX)
        record = json.loads(await app.state.store.get(owed))
        assert record["token_expires_at"] > time.time() and record["user_id"] == ADMIN_ID
    for uuid in (await hanami.list_datasets()).column("uuid"):
        record = (await hanami.list_datasets()).find("uuid", uuid)
        if record is not None and record["name"] == name:
            await hanami.delete_dataset(uuid)
