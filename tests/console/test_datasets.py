"""Datasets pages in-process against the real emulator: list, detail, delete, upload, validation.

Every validation test also proves that nothing reached the backend: the dataset list read through
the Hanami client is the same before and after.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import secrets
import struct
import time
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, console_settings, login, wait_for
from webconsole.app import create_app
from webconsole.hanami.client import HanamiClient
from webconsole.web.core.deps import SESSION_COOKIE
from webconsole.web.datasets.upload_state import UploadState


def unique(prefix: str) -> str:
    return f"{prefix} {secrets.token_hex(3)}"


@pytest.fixture
async def hanami(backend):
    """A direct client of the same backend, to see what really exists there."""
    async with HanamiClient(backend.url) as client:
        yield client.api((await client.login(ADMIN_ID, ADMIN_PASSWORD)).token)


async def dataset_uuids(api) -> set[str]:
    return set((await api.list_datasets()).column("uuid"))


async def post_upload(client: httpx.AsyncClient, csrf: str, kind: str, name: str,
                      files: dict[str, tuple[str, bytes]], htmx: bool = False) -> httpx.Response:
    headers = {"HX-Request": "true"} if htmx else {}
    return await client.post(
        "/datasets/upload",
        data={"csrf_token": csrf, "kind": kind, "name": name},
        files={key: (filename, data, "application/octet-stream") for key, (filename, data) in files.items()},
        headers=headers,
    )


async def finished_status(client: httpx.AsyncClient, status_url: str) -> str:
    async def done() -> str | None:
        page = await client.get(status_url, headers={"HX-Request": "true", "X-Console-Poll": "1"})
        assert page.status_code == 200
        phase = re.search(r'data-phase="(\w+)"', page.text).group(1)
        return page.text if phase in ("done", "failed", "cancelled") else None

    return await wait_for(done, timeout=30)


def idx_images(count: int, magic: int = 0x00000803) -> bytes:
    return struct.pack(">IIII", magic, count, 28, 28) + bytes(range(256)) * 0 + b"\x07" * (784 * count)


def idx_labels(labels: list[int], magic: int = 0x00000801) -> bytes:
    return struct.pack(">II", magic, len(labels)) + bytes(labels)


# -- validation: precise message, 422, nothing created ----------------------------------------

CSV_CASES = [
    ("ragged line", b"a,b\n1,2\n3\n", "line 3 has 1 values but the header has 2 columns"),
    ("non-numeric cell", b"test_input,test_output\n0.1,0.2\n0.3,abc\n", "line 3, column 'test_output'"),
    ("CRLF", b"a,b\r\n1,2\r\n", "line 1 contains a carriage return (Windows line endings)"),
]


@pytest.mark.parametrize("label,content,expected", CSV_CASES, ids=[c[0] for c in CSV_CASES])
async def test_broken_csv_is_refused_with_line_and_column_and_creates_nothing(
    app_client: httpx.AsyncClient, hanami, label: str, content: bytes, expected: str
) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    before = await dataset_uuids(hanami)
    response = await post_upload(app_client, csrf, "csv", unique("broken csv"), {"csv": ("data.csv", content)})
    assert response.status_code == 422
    assert expected in html.unescape(response.text)
    assert "data.csv" in response.text  # the message names the user's file, not a temp name
    assert 'data-testid="csv-form"' in response.text  # the form is shown again
    assert await dataset_uuids(hanami) == before


MNIST_CASES = [
    ("broken images magic", lambda: (idx_images(3, magic=0x00000801), idx_labels([1, 2, 3])),
     "should start with 00 00 08 03"),
    ("label count mismatch", lambda: (idx_images(3), idx_labels([1, 2])),
     "holds 3 images but the label file 'labels.idx1-ubyte' holds 2 labels"),
    ("label 10", lambda: (idx_images(3), idx_labels([1, 10, 3])),
     "has the label 10 for image number 2"),
    ("more images than Hanami converts", lambda: (struct.pack(">IIII", 0x803, 9091, 1, 1) + b"\x07" * 9091,
                                                  idx_labels([n % 10 for n in range(9091)])),
     "holds 9,091 images of 1 x 1 pixels, but Hanami converts at most 9,090 such images"),
]


@pytest.mark.parametrize("label,make,expected", MNIST_CASES, ids=[c[0] for c in MNIST_CASES])
async def test_broken_mnist_is_refused_precisely_and_creates_nothing(
    app_client: httpx.AsyncClient, hanami, label: str, make, expected: str
) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    images, labels = make()
    before = await dataset_uuids(hanami)
    response = await post_upload(app_client, csrf, "mnist", unique("broken mnist"), {
        "images": ("images.idx3-ubyte", images), "labels": ("labels.idx1-ubyte", labels)})
    assert response.status_code == 422
    assert expected in html.unescape(response.text)
    assert await dataset_uuids(hanami) == before


async def test_bad_name_is_refused_before_anything_else(app_client: httpx.AsyncClient, hanami) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    before = await dataset_uuids(hanami)
    for name, message in (("ab", "at least 4 characters"), ("9 lives", "must start with a letter"),
                          ("True", "true or false")):
        response = await post_upload(app_client, csrf, "csv", name, {"csv": ("d.csv", b"a,b\n1,2\n")})
        assert response.status_code == 422 and message in html.unescape(response.text)
    # what a browser sends when no file was chosen: parts with an empty file name
    missing = await post_upload(app_client, csrf, "mnist", "no files here",
                                {"images": ("", b""), "labels": ("", b"")})
    assert missing.status_code == 422 and missing.text.count("Choose a file.") == 2
    assert await dataset_uuids(hanami) == before


async def test_upload_without_csrf_token_is_refused(app_client: httpx.AsyncClient, hanami) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    before = await dataset_uuids(hanami)
    response = await post_upload(app_client, "wrong", "csv", unique("no csrf"), {"csv": ("d.csv", b"a,b\n1,2\n")})
    assert response.status_code == 403
    assert await dataset_uuids(hanami) == before


async def test_htmx_422_returns_only_the_forms(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    response = await post_upload(app_client, csrf, "csv", unique("frag"), {"csv": ("d.csv", b"a\n1\n")}, htmx=True)
    assert response.status_code == 422
    assert "<html" not in response.text and 'data-testid="csv-form"' in response.text
    assert "has only one column" in response.text


# -- uploads end to end -----------------------------------------------------------------------


async def test_csv_upload_end_to_end(app_client: httpx.AsyncClient, hanami, demo_files) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    name = unique("demo csv")
    response = await post_upload(app_client, csrf, "csv", name, {"csv": ("demo-sine.csv", demo_files.csv.read_bytes())})
    assert response.status_code == 303
    status_url = response.headers["location"]
    assert status_url.startswith("/datasets/uploads/")
    page = await finished_status(app_client, status_url)
    assert 'data-phase="done"' in page and 'data-testid="upload-done"' in page
    assert "100.0 %" in page and "Next step" in page
    record = (await hanami.list_datasets()).find("name", name)
    assert record is not None and record["type"] == "csv"
    detail = await app_client.get(f"/datasets/{record['uuid']}")
    assert detail.status_code == 200
    assert re.search(r'data-testid="lines">400<', detail.text)
    assert (await hanami.get_dataset(record["uuid"]))["lines"] == 400
    # both legs are counted in /metrics
    metrics = (await app_client.get("/metrics")).text
    size = demo_files.csv.stat().st_size
    for leg in ("browser", "backend"):
        counted = re.search(r'^hanami_console_upload_bytes_total\{leg="' + leg + r'"\} (\S+)$', metrics, re.M)
        assert counted and float(counted.group(1)) >= size, leg
    # the upload is in the console's audit trail
    entries = await app_client.app.state.audit.entries(user_id=ADMIN_ID)
    assert any(e.action == "dataset upload" and record["uuid"] in e.detail and e.outcome == "ok" for e in entries)
    await hanami.delete_dataset(record["uuid"])


async def test_mnist_upload_end_to_end_via_htmx(app_client: httpx.AsyncClient, hanami, demo_files) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    name = unique("small mnist")
    response = await post_upload(app_client, csrf, "mnist", name, {
        "images": (demo_files.small_images.name, demo_files.small_images.read_bytes()),
        "labels": (demo_files.small_labels.name, demo_files.small_labels.read_bytes()),
    }, htmx=True)
    assert response.status_code == 200
    assert "<html" not in response.text and 'data-testid="upload-status"' in response.text
    status_url = response.headers["X-Upload-Status"]
    page = await finished_status(app_client, status_url)
    assert 'data-phase="done"' in page
    # the finished status block no longer polls
    assert "hx-trigger" not in page
    record = (await hanami.list_datasets()).find("name", name)
    data = await hanami.get_dataset(record["uuid"])
    assert (data["lines"], data["inputs"], data["outputs"]) == (200, 784, 10)
    listing = await app_client.get("/datasets", params={"q": name})
    row = re.search(r'data-uuid="%s">(.*?)</tr>' % record["uuid"], listing.text, re.S).group(1)
    assert [c for c in re.findall(r'class="num">([^<]*)<', row)] == ["784", "10", "200"]
    await hanami.delete_dataset(record["uuid"])


async def test_status_is_private_to_the_session_that_started_it(
    app_client: httpx.AsyncClient, backend, hanami, demo_files
) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    response = await post_upload(app_client, csrf, "csv", unique("private"),
                                 {"csv": ("demo.csv", demo_files.csv.read_bytes())})
    status_url = response.headers["location"]
    await finished_status(app_client, status_url)
    transport = httpx.ASGITransport(app=app_client.app, raise_app_exceptions=False)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as other:
        other_csrf = await login(other, ADMIN_ID, ADMIN_PASSWORD)  # same user, another session
        assert (await other.get(status_url)).status_code == 404
        assert (await other.post(status_url + "/cancel", data={"csrf_token": other_csrf})).status_code == 404
    assert (await app_client.get("/datasets/uploads/not-an-upload-id-at-all")).status_code == 404
    for uuid in (await hanami.list_datasets()).column("uuid"):
        record = (await hanami.list_datasets()).find("uuid", uuid)
        if record and record["name"].startswith("private "):
            await hanami.delete_dataset(uuid)


async def test_cancel_deletes_the_half_dataset(app_client: httpx.AsyncClient, hanami, tmp_path: Path) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    # big enough (about 12 MB, ~90 chunks of 128 KiB) that the cancel lands while chunks are sent
    rows = "\n".join(f"{i}.12345678901234567890,{i % 7}.98765432109876543210" for i in range(220_000))
    content = ("a,b\n" + rows + "\n").encode()
    name = unique("cancel me")
    before = await dataset_uuids(hanami)
    response = await post_upload(app_client, csrf, "csv", name, {"csv": ("big.csv", content)})
    status_url = response.headers["location"]

    async def sending() -> bool:
        page = await app_client.get(status_url, headers={"HX-Request": "true"})
        return 'data-phase="sending"' in page.text or 'data-phase="done"' in page.text

    await wait_for(sending, timeout=30, interval=0.01)
    cancelled = await app_client.post(status_url + "/cancel", data={"csrf_token": csrf},
                                      headers={"HX-Request": "true"})
    assert cancelled.status_code == 200
    assert 'data-phase="cancelled"' in cancelled.text

    async def half_dataset_gone() -> bool:
        # The cancel answers within 10 s; on a loaded machine Hanami's delete may land just after.
        return await dataset_uuids(hanami) == before

    await wait_for(half_dataset_gone, timeout=30)
    entries = await app_client.app.state.audit.entries(user_id=ADMIN_ID)
    assert any(e.action == "dataset upload" and e.outcome == "cancelled" and name in e.detail for e in entries)


async def test_csv_name_clash_with_own_dataset_is_refused(app_client: httpx.AsyncClient, hanami, demo_files) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    name = unique("clash")
    uuid = await hanami.upload_csv(name, demo_files.csv)
    response = await post_upload(app_client, csrf, "csv", name, {"csv": ("d.csv", b"a,b\n1,2\n")})
    assert response.status_code == 422 and "would be overwritten" in response.text
    await hanami.delete_dataset(uuid)


# -- list, detail, delete ---------------------------------------------------------------------


async def test_list_search_sort_fragment_and_unfinished_rows(app_client: httpx.AsyncClient, hanami, demo_files) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    tag = secrets.token_hex(3)
    done = await hanami.upload_csv(f"list {tag} b", demo_files.csv)
    # an unfinished upload: listed, but GET dataset fails (Q-D7)
    init = await hanami._call("POST", "v1/csv/dataset", body={"name": f"list {tag} a", "input_data_size": 10})
    unfinished = init["uuid"]
    try:
        page = await app_client.get("/datasets", params={"q": tag, "sort": "name", "order": "asc"})
        assert page.status_code == 200 and "<html" in page.text
        rows = re.findall(r'data-uuid="([0-9a-f-]+)"', page.text)
        assert rows == [unfinished, done]
        unfinished_row = re.search(r'data-uuid="%s">(.*?)</tr>' % unfinished, page.text, re.S).group(1)
        assert re.findall(r'class="num">([^<]*)<', unfinished_row) == ["—", "—", "—"]
        assert "incomplete" in unfinished_row
        fragment = await app_client.get("/datasets", params={"q": tag, "sort": "lines", "order": "desc"},
                                        headers={"HX-Request": "true"})
        assert fragment.status_code == 200 and "<html" not in fragment.text
        assert re.findall(r'data-uuid="([0-9a-f-]+)"', fragment.text) == [done, unfinished]
        assert "HX-Request" in [value.strip() for value in fragment.headers["vary"].split(",")]
        none = await app_client.get("/datasets", params={"q": "no-such-dataset-" + tag})
        assert 'data-testid="no-match"' in none.text
    finally:
        await hanami.delete_dataset(done)
        await hanami.delete_dataset(unfinished)


async def test_an_upload_finished_after_the_list_showed_it_incomplete(app_client: httpx.AsyncClient, hanami,
                                                                       demo_files) -> None:
    """The list remembers an unfinished upload as incomplete for a few seconds (it does not read it on
    every view); the dataset's own page reads it again at once, and the list then shows it finished."""
    from webconsole.hanami.uploads import _Progress, _send_file, _wait_complete

    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    name = unique("late")
    size = demo_files.csv.stat().st_size
    init = await hanami._call("POST", "v1/csv/dataset", body={"name": name, "input_data_size": size})
    uuid = init["uuid"]
    try:
        listing = await app_client.get("/datasets", params={"q": name})
        assert "incomplete" in re.search(r'data-uuid="%s">(.*?)</tr>' % uuid, listing.text, re.S).group(1)
        async with hanami.websocket("file_upload", init["uuid_input_file"]) as ws:
            await _send_file(ws, demo_files.csv, size, _Progress(size, None), 10)
        await _wait_complete(hanami, uuid, 10)
        await hanami._call("PUT", "v1/csv/dataset", body={"uuid": uuid, "uuid_input_file": init["uuid_input_file"]})
        detail = await app_client.get(f"/datasets/{uuid}")
        assert re.search(r'data-testid="lines">400<', detail.text), "the finished upload is read again"
        listing = await app_client.get("/datasets", params={"q": name})
        row = re.search(r'data-uuid="%s">(.*?)</tr>' % uuid, listing.text, re.S).group(1)
        assert "incomplete" not in row and re.search(r'class="num">400<', row)
    finally:
        await hanami.delete_dataset(uuid)


async def test_delete_through_the_confirmation_page(app_client: httpx.AsyncClient, hanami, demo_files) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    name = unique("delete me")
    uuid = await hanami.upload_csv(name, demo_files.csv)
    detail = await app_client.get(f"/datasets/{uuid}")
    assert f'/datasets/{uuid}/delete' in detail.text
    confirm = await app_client.get(f"/datasets/{uuid}/delete")
    assert confirm.status_code == 200 and name in confirm.text and 'method="post"' in confirm.text
    refused = await app_client.post(f"/datasets/{uuid}/delete", data={"csrf_token": "forged"})
    assert refused.status_code == 403 and uuid in await dataset_uuids(hanami)
    deleted = await app_client.post(f"/datasets/{uuid}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303 and deleted.headers["location"].endswith("/datasets")
    assert uuid not in await dataset_uuids(hanami)
    listing = await app_client.get("/datasets")
    assert f"Dataset '{name}' deleted." in html.unescape(listing.text)
    gone = await app_client.get(f"/datasets/{uuid}")
    assert gone.status_code == 404
    entries = await app_client.app.state.audit.entries(user_id=ADMIN_ID)
    assert any(e.action == "dataset delete" and uuid in e.detail for e in entries)


async def test_upload_page_and_empty_state(app_client: httpx.AsyncClient, backend) -> None:
    # a fresh user in a fresh project sees the empty state with the first step
    project, user = f"dsproj_{secrets.token_hex(3)}", f"dsuser_{secrets.token_hex(3)}"
    async with HanamiClient(backend.url) as client:
        admin = client.api((await client.login(ADMIN_ID, ADMIN_PASSWORD)).token)
        await admin.create_project(project, "Datasets Project")
        await admin.create_user(user, "Dataset User", "user-password-1", False)
        await admin.assign_project(user, project, "member", False)
    await login(app_client, user, "user-password-1")
    page = await app_client.get("/datasets")
    assert page.status_code == 200 and "No datasets yet" in page.text and "/datasets/upload" in page.text
    upload = await app_client.get("/datasets/upload")
    assert upload.status_code == 200
    assert 'enctype="multipart/form-data"' in upload.text and "js/upload.js" in upload.text


async def test_temporary_files_are_removed_in_every_outcome(backend, hanami, demo_files, tmp_path: Path) -> None:
    upload_dir = tmp_path / "uploads"
    upload_dir.mkdir()
    app = create_app(console_settings(backend.url, upload_dir=str(upload_dir)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
            refused = await post_upload(client, csrf, "csv", unique("tmp refused"), {"csv": ("x.csv", b"a,b\n1\n")})
            assert refused.status_code == 422
            assert list(upload_dir.iterdir()) == []
            name = unique("tmp ok")
            ok = await post_upload(client, csrf, "csv", name, {"csv": ("ok.csv", demo_files.csv.read_bytes())})
            assert 'data-phase="done"' in await finished_status(client, ok.headers["location"])
            assert list(upload_dir.iterdir()) == []
            # cancelled at once (before or while sending)
            big = ("a,b\n" + "\n".join(f"{i}.1234567890123456789,1" for i in range(150_000)) + "\n").encode()
            started = await post_upload(client, csrf, "csv", unique("tmp cancel"), {"csv": ("big.csv", big)})
            cancelled = await client.post(started.headers["location"] + "/cancel", data={"csrf_token": csrf})
            assert cancelled.status_code == 303
            assert 'data-phase="cancelled"' in await finished_status(client, started.headers["location"])
            assert list(upload_dir.iterdir()) == []
            record = (await hanami.list_datasets()).find("name", name)
            await hanami.delete_dataset(record["uuid"])
            # the console stops while an upload runs: the task is cancelled, nothing stays behind
            left_running = unique("tmp shutdown")
            running = await post_upload(client, csrf, "csv", left_running, {"csv": ("big.csv", big)})
            assert running.status_code == 303
    assert list(upload_dir.iterdir()) == []
    assert (await hanami.list_datasets()).find("name", left_running) is None


async def test_an_upload_whose_console_died_is_shown_as_lost(app_client: httpx.AsyncClient) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    store = app_client.app.state.store  # type: ignore[attr-defined]
    owner = hashlib.sha256(app_client.cookies[SESSION_COOKIE].encode()).hexdigest()
    upload_id = secrets.token_urlsafe(18)
    state = UploadState(id=upload_id, owner=owner, user_id=ADMIN_ID, kind="csv", name="lost upload",
                        files=["x.csv"], phase="sending", bytes_sent=10, bytes_total=100,
                        updated_at=time.time() - 3600)
    await store.set(f"upload:{upload_id}", json.dumps(asdict(state)).encode(), 60)
    page = await app_client.get(f"/datasets/uploads/{upload_id}", headers={"HX-Request": "true"})
    assert 'data-phase="lost"' in page.text and "stopped before it finished" in page.text
    assert "hx-trigger" not in page.text  # no endless polling


async def test_too_large_upload_is_refused_while_read(backend, hanami, tmp_path: Path) -> None:
    app = create_app(console_settings(backend.url, upload_dir=str(tmp_path), max_upload_bytes=64 * 1024))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
            before = await dataset_uuids(hanami)
            big = b"a,b\n" + b"1,2\n" * (1 << 20)  # 4 MB, the limit is 64 KiB per file
            response = await post_upload(client, csrf, "csv", unique("too big"), {"csv": ("big.csv", big)})
            assert response.status_code == 413 and "larger than the console accepts" in response.text

            sent = 0

            async def chunked():  # no Content-Length: the limit must hold while reading
                nonlocal sent
                head = (f'--b0\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{csrf}\r\n'
                        '--b0\r\nContent-Disposition: form-data; name="csv"; filename="x.csv"\r\n\r\na,b\n')
                yield head.encode()
                while sent < 8 << 20:
                    sent += 65536
                    yield b"1,2\n" * 16384
                yield b"\r\n--b0--\r\n"

            response = await client.post("/datasets/upload", content=chunked(),
                                         headers={"Content-Type": "multipart/form-data; boundary=b0"})
            assert response.status_code == 413
            assert sent < 2 << 20, f"read {sent} bytes before refusing"
            assert await dataset_uuids(hanami) == before
    assert list(tmp_path.iterdir()) == []
