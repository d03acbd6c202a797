"""The upload pages over HTTP in-process: every refusal happens in the console with the exact message
the person reads, on the right field, and costs Hanami no call and the disk no file; an accepted
upload answers with its status and records what it checked."""

from __future__ import annotations

import html
import re
import secrets
import struct
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, in_process_console, login, wait_for
from tests.console.effects import BackendCalls, audit_rows
from webconsole.hanami.client import HanamiClient
from webconsole.web.datasets.contents import LABELS_PREFIX, VALUES_PREFIX
from webconsole.web.datasets.upload_state import CANCEL_PREFIX, STATE_PREFIX, UploadState, read_state, save_state
from webconsole.web.datasets.upload_task import upload_tasks

LIMIT = 64 * 1024  # max_upload_bytes of these consoles
BUDGET = 2 * LIMIT + (1 << 20)  # the largest multipart body they read
BROKEN_CSV = b"a,b\n1,2\n3\n"  # line 3 is short: refused by the console's own check
SHORT_LINE = "line 3 has 1 values but the header has 2 columns; every line needs one value per column."
NOT_FOUND = "No such upload: it finished more than an hour ago, or it is not yours."


def unique(prefix: str) -> str:
    return f"{prefix} {secrets.token_hex(3)}"


@asynccontextmanager
async def console(backend_url: str, upload_dir: Path, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    """The console in-process (files up to ``LIMIT`` unless told otherwise), logged in as the admin;
    ``client.calls`` sees every backend call from here on, ``client.csrf`` is the session's token."""
    upload_dir.mkdir(exist_ok=True)
    settings = {"upload_dir": str(upload_dir), "max_upload_bytes": LIMIT, **overrides}
    async with in_process_console(backend_url, **settings) as client:
        client.csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)  # type: ignore[attr-defined]
        client.calls = BackendCalls(client.app)  # type: ignore[attr-defined]
        yield client


async def post(client: httpx.AsyncClient, kind: str, name: str, files: dict[str, tuple[str, bytes]],
               htmx: bool = False, **fields: str) -> httpx.Response:
    return await client.post(
        "/datasets/upload", headers={"HX-Request": "true"} if htmx else {},
        data={"csrf_token": client.csrf, "kind": kind, "name": name, **fields},  # type: ignore[attr-defined]
        files={key: (filename, data, "application/octet-stream") for key, (filename, data) in files.items()})


def field_errors(page: httpx.Response) -> dict[str, str]:
    """The error under each form field, as the person reads it."""
    return {key: html.unescape(text) for key, text in
            re.findall(r'<p class="field-error" id="(\w+)-error">(.*?)</p>', page.text, re.S)}


def error_box(page: httpx.Response) -> tuple[str, str, str, str]:
    """The error page's status, title, message and request id, as shown."""
    box = re.search(r'<div class="alert alert-error error-box" role="alert" data-status="(\d*)">\s*'
                    r'<h1 class="error-title">(.*?)</h1>\s*<p>(.*?)</p>\s*'
                    r'<p class="muted">Request id: <code>(.*?)</code></p>\s*</div>', page.text, re.S)
    assert box, page.text[:3000]
    return tuple(html.unescape(part) for part in box.groups())  # type: ignore[return-value]


def alert(page: httpx.Response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


async def nothing_left(client: httpx.AsyncClient, upload_dir: Path) -> None:
    """No upload state, no file, no backend call: a refusal costs nothing."""
    store = client.app.state.store  # type: ignore[attr-defined]
    assert await store.keys(STATE_PREFIX) == []
    assert list(upload_dir.iterdir()) == []
    assert client.calls.calls == []  # type: ignore[attr-defined]


def idx_images(count: int, magic: int = 0x00000803) -> bytes:
    return struct.pack(">IIII", magic, count, 28, 28) + b"\x07" * (784 * count)


def idx_labels(labels: list[int]) -> bytes:
    return struct.pack(">II", 0x00000801, len(labels)) + bytes(labels)


def browser_leg_bytes(metrics: str) -> float:
    counted = re.search(r'^hanami_console_upload_bytes_total\{leg="browser"\} (\S+)$', metrics, re.M)
    return float(counted.group(1)) if counted else 0.0


# -- refusals ---------------------------------------------------------------------------------------

NAMES = [
    ("abc", "The name needs at least 4 characters."),
    ("abcd", None),
    ("a" * 256, None),
    ("a" * 257, "The name can have at most 256 characters."),
    ("9 lives", "The name must start with a letter and may only contain letters, digits, underscores and spaces."),
    ("my-data", "The name must start with a letter and may only contain letters, digits, underscores and spaces."),
    ("My data_2", None),
    *[(word, "Hanami cannot store a dataset named true or false; choose another name.")
      for word in ("true", "True", "TRUE", "false", "False", "FALSE")],
]


async def test_the_name_rules_at_their_limits(backend, tmp_path: Path) -> None:
    async with console(backend.url, tmp_path / "uploads") as client:
        for name, expected in NAMES:
            page = await post(client, "csv", name, {"csv": ("d.csv", BROKEN_CSV)})
            assert page.status_code == 422
            errors = field_errors(page)
            assert errors.get("name") == expected, name
            if expected is None:  # the name passed; the file's own check refused it
                assert errors["csv"].startswith("d.csv: line 3 has 1 values")
            assert f'value="{name}"' in page.text  # the form keeps what was typed
        stripped = await post(client, "csv", "  spaced name  ", {"csv": ("d.csv", BROKEN_CSV)})
        assert "name" not in field_errors(stripped) and 'value="spaced name"' in stripped.text
        await nothing_left(client, tmp_path / "uploads")


async def test_missing_and_oversized_files_are_refused_on_their_field(backend, tmp_path: Path) -> None:
    async with console(backend.url, tmp_path / "uploads") as client:
        images_only = await post(client, "mnist", "two files", {"images": ("i.idx3-ubyte", idx_images(2))})
        assert images_only.status_code == 422
        assert field_errors(images_only) == {"labels": "Choose a file."}
        assert 'data-testid="mnist-form"' in images_only.text
        # a field of that name that is not a file, and a kind the console does not know (-> CSV)
        not_a_file = await post(client, "spreadsheet", "no file", {"other": ("o.csv", b"a,b\n")}, csv="a,b\n1,2\n")
        assert not_a_file.status_code == 422 and field_errors(not_a_file) == {"csv": "Choose a file."}
        too_big = await post(client, "csv", "too big", {"csv": ("big.csv", b"a,b\n" + b"1,2\n" * (LIMIT // 4))})
        assert too_big.status_code == 422
        assert field_errors(too_big) == {"csv": f"The file is larger than {LIMIT} bytes."}
        # a file of exactly the limit passes the size check (and meets the file's own check)
        at_limit = b"a,b\n" + b"1,2\n" * ((LIMIT - 8) // 4) + b"333\n"
        assert len(at_limit) == LIMIT
        page = await post(client, "csv", "at the limit", {"csv": ("edge.csv", at_limit)})
        assert field_errors(page)["csv"].startswith("edge.csv: line 16384 has 1 values")
        await nothing_left(client, tmp_path / "uploads")


async def test_broken_files_are_refused_named_audited_and_leave_nothing(backend, tmp_path: Path) -> None:
    async with console(backend.url, tmp_path / "uploads") as client:
        app = client.app  # type: ignore[attr-defined]
        labels = await post(client, "mnist", "bad labels", {"images": ("i.idx3-ubyte", idx_images(3)),
                                                            "labels": ("l.idx1-ubyte", idx_labels([1, 10, 3]))})
        assert labels.status_code == 422 and list(field_errors(labels)) == ["labels"]
        assert field_errors(labels)["labels"].startswith("The label file 'l.idx1-ubyte'")
        images = await post(client, "mnist", "bad images", {"images": ("i.idx3-ubyte", idx_images(3, magic=0x801)),
                                                            "labels": ("l.idx1-ubyte", idx_labels([1, 2, 3]))})
        assert images.status_code == 422 and list(field_errors(images)) == ["images"]
        # the message names the file by the name it had on the person's computer, made safe
        csv = await post(client, "csv", "bad csv", {"csv": ("C:\\Users\\me\\..\\rows:<v2>?.csv", BROKEN_CSV)})
        assert field_errors(csv) == {"csv": f"rows_v2_.csv: {SHORT_LINE}"}
        rows = await audit_rows(app, ADMIN_ID, "dataset upload")
        assert [(row.detail, row.outcome, row.client) for row in reversed(rows)] == [
            (f"mnist dataset 'bad labels' refused: {field_errors(labels)['labels']}", "refused", "127.0.0.1"),
            (f"mnist dataset 'bad images' refused: {field_errors(images)['images']}", "refused", "127.0.0.1"),
            (f"csv dataset 'bad csv' refused: {field_errors(csv)['csv']}", "refused", "127.0.0.1"),
        ]
        await nothing_left(client, tmp_path / "uploads")


@pytest.mark.parametrize("filename,shown", [
    ("/home/me/data.csv", "data.csv"),
    ("  .hidden rows.csv. ", "hidden rows.csv"),
    ("...", "csv.data"),
    ("exports\\rows.csv", "rows.csv"),  # a Windows path without a drive (python-multipart drops "C:\\…")
    ("Xray rows.csvX", "Xray rows.csvX"),
    ("r" * 200 + ".csv", "r" * 120),
], ids=["path", "dots-and-spaces", "nothing-left", "windows-path", "letters-kept", "long"])
async def test_a_file_name_is_made_safe(backend, tmp_path: Path, filename: str, shown: str) -> None:
    async with console(backend.url, tmp_path / "uploads") as client:
        page = await post(client, "csv", "bad csv", {"csv": (filename, BROKEN_CSV)})
        assert field_errors(page)["csv"] == f"{shown}: {SHORT_LINE}"


async def test_a_body_that_is_not_a_proper_upload_is_refused(backend, tmp_path: Path) -> None:
    async with console(backend.url, tmp_path / "uploads") as client:
        form = await client.post("/datasets/upload", data={"csrf_token": client.csrf, "kind": "csv",  # type: ignore[attr-defined]
                                                           "name": "urlencoded"})
        assert form.status_code == 400
        assert error_box(form) == ("400", "Upload refused", "The upload must be sent as a multipart form.",
                                   form.headers["X-Request-ID"])
        # sent by htmx: the error box alone; with no content type at all: the same refusal
        fragment = await client.post("/datasets/upload", headers={"HX-Request": "true"},
                                     data={"csrf_token": client.csrf})  # type: ignore[attr-defined]
        assert fragment.status_code == 400 and "<html" not in fragment.text
        assert error_box(fragment) == ("400", "Upload refused", "The upload must be sent as a multipart form.",
                                       fragment.headers["X-Request-ID"])
        bare = await client.post("/datasets/upload", content=b"")
        assert bare.status_code == 400 and error_box(bare)[2] == "The upload must be sent as a multipart form."
        three = await post(client, "mnist", "three files", {key: (f"{key}.bin", b"x") for key in ("images", "labels",
                                                                                                  "csv")})
        assert three.status_code == 400  # a form beyond Starlette's limits: its reason, in the upload's box
        assert error_box(three) == ("400", "Upload refused",
                                    "The upload could not be read: Too many files. Maximum number of files is 2.",
                                    three.headers["X-Request-ID"])
        extra = {f"field{i}": "x" for i in range(8)}  # with csrf_token, kind and name: 11 fields
        fields = await post(client, "csv", "many fields", {"csv": ("d.csv", BROKEN_CSV)}, **extra)
        assert fields.status_code == 400
        assert error_box(fields)[2] == "The upload could not be read: Too many fields. Maximum number of fields is 10."
        await nothing_left(client, tmp_path / "uploads")


def multipart_of_length(csrf: str, length: int) -> tuple[bytes, str]:
    """A CSV upload whose body is exactly ``length`` bytes (the file padded with rows)."""
    head = (f'--b0\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{csrf}\r\n'
            '--b0\r\nContent-Disposition: form-data; name="kind"\r\n\r\ncsv\r\n'
            '--b0\r\nContent-Disposition: form-data; name="name"\r\n\r\nexactly sized\r\n'
            '--b0\r\nContent-Disposition: form-data; name="csv"; filename="x.csv"\r\n\r\na,b\n').encode()
    tail = b"\r\n--b0--\r\n"
    padding = length - len(head) - len(tail)
    body = head + (b"1,2\n" * (padding // 4 + 1))[:padding] + tail
    assert len(body) == length
    return body, "multipart/form-data; boundary=b0"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_the_body_budget_holds_to_the_byte(backend, tmp_path: Path, chunked: bool) -> None:
    """Two files of the limit plus 1 MiB are read; one byte more is not (with or without a
    declared length). A body within the budget then meets the per-file check."""
    async with console(backend.url, tmp_path / "uploads") as client:
        for length, status in ((BUDGET, 422), (BUDGET + 1, 413)):
            body, content_type = multipart_of_length(client.csrf, length)  # type: ignore[attr-defined]

            async def stream(data: bytes = body) -> AsyncIterator[bytes]:
                for start in range(0, len(data), 65536):
                    yield data[start:start + 65536]

            answer = await client.post("/datasets/upload", content=stream() if chunked else body,
                                       headers={"Content-Type": content_type})
            assert answer.status_code == status, length
            if status == 422:
                assert field_errors(answer) == {"csv": f"The file is larger than {LIMIT} bytes."}
            else:
                assert "larger than the console accepts" in answer.text
        await nothing_left(client, tmp_path / "uploads")


async def test_a_csv_name_the_owner_already_has_is_refused_after_one_list(backend, hanami, tmp_path: Path) -> None:
    name = unique("own clash")
    existing = await hanami.upload_csv(name, _write(tmp_path / "first.csv", b"a,b\n1,2\n"))
    try:
        async with console(backend.url, tmp_path / "uploads") as client:
            page = await post(client, "csv", name, {"csv": ("d.csv", b"a,b\n3,4\n")})
            assert page.status_code == 422
            assert field_errors(page) == {"name": (
                f"You already have a CSV dataset named '{name}'. Hanami keeps CSV data per name and owner, so "
                "the old one would be overwritten: choose another name.")}
            assert client.calls.calls == ["GET v1/dataset/all"]  # type: ignore[attr-defined]
            client.calls.calls.clear()  # type: ignore[attr-defined]
            assert await client.app.state.store.keys(STATE_PREFIX) == []  # type: ignore[attr-defined]
            await nothing_left(client, tmp_path / "uploads")
            # an MNIST dataset of that name does not touch the CSV one: allowed, with a warning
            answer = await post(client, "mnist", name, {"images": ("i.idx3-ubyte", idx_images(2)),
                                                        "labels": ("l.idx1-ubyte", idx_labels([4, 2]))})
            assert answer.status_code == 303
            state = await _ended(client, answer.headers["location"].rsplit("/", 1)[1])
            assert state.phase == "done"
            assert state.warnings == [
                f"1 other dataset is already called '{name}'. The lists show each with its size and upload date "
                "so you can tell them apart; a more telling name helps, and you can delete the old one on the "
                "datasets page."]
            # with the CSV gone only the MNIST namesake is left: a CSV of that name overwrites nothing
            await hanami.delete_dataset(existing)
            existing = state.dataset_uuid
            csv = await post(client, "csv", name, {"csv": ("d.csv", b"a,b\n3,4\n")})
            assert csv.status_code == 303
            again = await _ended(client, csv.headers["location"].rsplit("/", 1)[1])
            assert again.phase == "done" and again.warnings[0].startswith(f"1 other dataset is already called '{name}'.")
            await hanami.delete_dataset(again.dataset_uuid)
    finally:
        await hanami.delete_dataset(existing)


async def test_a_namesake_of_another_owner_is_a_warning_not_a_refusal(backend, hanami, tmp_path: Path) -> None:
    name = unique("shared name")
    project, user = f"upproj_{secrets.token_hex(3)}", f"upuser_{secrets.token_hex(3)}"
    await hanami.create_project(project, "Upload Project")
    await hanami.create_user(user, "Upload User", "user-password-1", False)
    await hanami.assign_project(user, project, "member", False)
    async with HanamiClient(backend.url) as other:
        theirs = other.api((await other.login(user, "user-password-1")).token)
        first = await theirs.upload_csv(name, _write(tmp_path / "a.csv", b"a,b\n1,2\n"))
        second = await theirs.upload_mnist(name, _write(tmp_path / "i.idx", idx_images(1)),
                                           _write(tmp_path / "l.idx", idx_labels([1])))
        try:
            async with console(backend.url, tmp_path / "uploads") as client:
                answer = await post(client, "csv", name, {"csv": ("odd col.csv", b"x,bad col\n1,2\n3,4\n")})
                assert answer.status_code == 303
                upload_id = answer.headers["location"].rsplit("/", 1)[1]
                state = await _ended(client, upload_id)
                assert state.phase == "done"
                assert state.warnings == [
                    "These columns can never match a brick name (only letters, digits and _): bad col",
                    f"2 other datasets are already called '{name}'. The lists show each with its size and upload "
                    "date so you can tell them apart; a more telling name helps, and you can delete the old one on "
                    "the datasets page."]
                assert (state.files, state.lines, state.columns) == (["odd col.csv"], 2, ["x", "bad col"])
                page = await client.get(f"/datasets/uploads/{upload_id}")
                assert "These columns can never match a brick name" in html.unescape(page.text)
                await hanami.delete_dataset(state.dataset_uuid)
        finally:
            await theirs.delete_dataset(first)
            await theirs.delete_dataset(second)
            await hanami.delete_user(user)
            await hanami.delete_project(project)


# -- an accepted upload -----------------------------------------------------------------------------

async def test_an_accepted_upload_answers_with_its_status(backend, hanami, tmp_path: Path) -> None:
    images, labels = idx_images(5), idx_labels([0, 1, 2, 3, 4])
    async with console(backend.url, tmp_path / "uploads") as client:
        app = client.app  # type: ignore[attr-defined]
        name = unique("accepted mnist")
        answer = await post(client, "mnist", name, {"images": ("digits.idx3-ubyte", images),
                                                    "labels": ("digits.idx1-ubyte", labels)}, htmx=True)
        assert answer.status_code == 200 and "<html" not in answer.text
        upload_id = answer.headers["X-Upload-Status"].rsplit("/", 1)[1]
        status_url = f"/datasets/uploads/{upload_id}"
        assert answer.headers["X-Upload-Status"] == answer.headers["HX-Replace-Url"] == status_url
        assert 'data-phase="sending"' in answer.text
        state = await _ended(client, upload_id)
        assert (state.phase, state.kind, state.name, state.user_id) == ("done", "mnist", name, ADMIN_ID)
        assert (state.files, state.lines, state.inputs) == (["digits.idx3-ubyte", "digits.idx1-ubyte"], 5, 784)
        assert state.bytes_total == len(images) + len(labels)
        assert browser_leg_bytes((await client.get("/metrics")).text) == len(images) + len(labels)
        page = await client.get(status_url)
        assert page.status_code == 200 and 'data-phase="done"' in page.text and "5 images of 28 × 28 pixels" in page.text
        # what runs and results show of the dataset later: its labels, kept under its uuid
        assert await app.state.store.get(LABELS_PREFIX + state.dataset_uuid) == bytes([0, 1, 2, 3, 4])
        await hanami.delete_dataset(state.dataset_uuid)
        csv_name = unique("accepted csv")
        plain = await post(client, "csv", csv_name, {"csv": ("c.csv", b"a,b\n1,2\n")})
        assert plain.status_code == 303 and plain.headers["location"].startswith("/datasets/uploads/")
        done = await _ended(client, plain.headers["location"].rsplit("/", 1)[1])
        assert (done.phase, done.lines, done.columns, done.warnings) == ("done", 1, ["a", "b"], [])
        assert await app.state.store.get(VALUES_PREFIX + done.dataset_uuid) is not None
        await hanami.delete_dataset(done.dataset_uuid)
        assert list((tmp_path / "uploads").iterdir()) == []
        assert await app.state.store.keys(CANCEL_PREFIX) == []


async def test_status_and_cancel_are_for_the_session_that_started_it(backend, hanami, tmp_path: Path) -> None:
    async with console(backend.url, tmp_path / "uploads") as client:
        app = client.app  # type: ignore[attr-defined]
        answer = await post(client, "csv", unique("finished"), {"csv": ("c.csv", b"a,b\n1,2\n")})
        upload_id = answer.headers["location"].rsplit("/", 1)[1]
        state = await _ended(client, upload_id)
        # cancelling a finished upload changes nothing and writes no cancel request
        again = await client.post(f"/datasets/uploads/{upload_id}/cancel", data={"csrf_token": client.csrf})  # type: ignore[attr-defined]
        assert again.status_code == 303 and again.headers["location"] == f"/datasets/uploads/{upload_id}"
        fragment = await client.post(f"/datasets/uploads/{upload_id}/cancel", headers={"HX-Request": "true"},
                                     data={"csrf_token": client.csrf})  # type: ignore[attr-defined]
        assert fragment.status_code == 200 and "<html" not in fragment.text and 'data-phase="done"' in fragment.text
        assert await app.state.store.get(CANCEL_PREFIX + upload_id) is None
        assert (await read_state(app.state.store, upload_id)).phase == "done"
        await hanami.delete_dataset(state.dataset_uuid)
        # a state kept under an id that is not an upload id's shape is never shown
        odd = UploadState(**{**state.__dict__, "id": "short_id_15char"})
        await save_state(app.state.store, odd)
        for url in ("/datasets/uploads/short_id_15char", f"/datasets/uploads/{'x' * 16}", "/datasets/uploads/a.b.c"):
            page = await client.get(url)
            assert page.status_code == 404, url
            assert error_box(page) == ("404", "Not found", NOT_FOUND, page.headers["X-Request-ID"]), url
        # a status poll of a gone upload gets the error box alone, for the page to show in place
        poll = await client.get(f"/datasets/uploads/{'x' * 16}", headers={"HX-Request": "true"})
        assert poll.status_code == 404 and "<html" not in poll.text and "backend-message" not in poll.text
        assert error_box(poll) == ("404", "Not found", NOT_FOUND, poll.headers["X-Request-ID"])
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as other:
            other_csrf = await login(other, ADMIN_ID, ADMIN_PASSWORD)  # the same user in another session
            page = await other.get(f"/datasets/uploads/{upload_id}")
            assert page.status_code == 404 and error_box(page)[1:3] == ("Not found", NOT_FOUND)
            refused = await other.post(f"/datasets/uploads/{upload_id}/cancel", data={"csrf_token": other_csrf})
            assert refused.status_code == 404


async def test_cancel_of_a_running_upload_waits_for_its_end(backend, hanami, proxy, tmp_path: Path) -> None:
    proxy.set_mode("delay", delay=0.05)  # a slow link: the upload is still going when the cancel comes
    async with console(proxy.url, tmp_path / "uploads", max_upload_bytes=1 << 30) as client:
        app = client.app  # type: ignore[attr-defined]
        name = unique("cancelled")
        rows = b"x,y\n" + b"".join(b"%d.25,%d.5\n" % (i % 97, i % 89) for i in range(60_000))
        answer = await post(client, "csv", name, {"csv": ("big.csv", rows)})
        assert answer.status_code == 303, answer.text[:2000]
        upload_id = answer.headers["location"].rsplit("/", 1)[1]
        assert (await read_state(app.state.store, upload_id)).running
        assert [p.name for p in (tmp_path / "uploads").iterdir()][0].startswith("hanami-upload-")  # files kept here
        cancelled = await client.post(f"/datasets/uploads/{upload_id}/cancel", headers={"HX-Request": "true"},
                                      data={"csrf_token": client.csrf})  # type: ignore[attr-defined]
        assert cancelled.status_code == 200 and "<html" not in cancelled.text
        assert 'data-phase="cancelled"' in cancelled.text  # the answer shows the end, not the request
        assert upload_tasks(app) == {}  # the answer came once the task had ended
        state = await read_state(app.state.store, upload_id)
        assert state is not None and state.phase == "cancelled"
        assert name not in [str(n) for n in (await hanami.list_datasets()).column("name")]
        assert list((tmp_path / "uploads").iterdir()) == []


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def _ended(client: httpx.AsyncClient, upload_id: str) -> UploadState:
    app = client.app  # type: ignore[attr-defined]

    async def over() -> UploadState | None:
        state = await read_state(app.state.store, upload_id)
        return state if state and state.phase in ("done", "failed", "cancelled") and upload_id not in upload_tasks(app) \
            else None

    return await wait_for(over, timeout=30, interval=0.02)
