"""The client's guards of contract §12 one by one, against the scripted server: what is sent and
what never is, and the exact error a caller gets (message, status, endpoint) when a guard refuses
or a fallback gives up."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.hanami.hanami_scripted import Reply, ScriptedHTTP, make_token
from tests.hanami.test_api_requests import CALLS, answer_everything
from webconsole.hanami import (BackendError, BackendUnavailable, BadRequest, Conflict, HanamiClient, HanamiError, NotFound,
                              TokenExpired)

A = "d5e7a1f0-0000-4000-8000-00000000000a"
B = "d5e7a1f0-0000-4000-8000-00000000000b"
C = "d5e7a1f0-0000-4000-8000-00000000000c"
CLUSTER = "c1a55e00-0000-4000-8000-000000000001"
TASK = "7a5c0000-0000-4000-8000-000000000001"
HEADER = ["uuid", "project_id", "owner_id", "visibility", "name", "type"]
TASK_HEADER = ["uuid", "state", "percentage", "queued", "start", "end"]


def listing(*rows: tuple[str, str, str, str]) -> dict:
    """A ``dataset/all`` answer: (uuid, owner, project, name, type) rows, as Hanami lists them."""
    return {"header": HEADER, "body": [[uuid, project, owner, "private", name, kind]
                                       for uuid, owner, project, name, kind in rows]}


def mnist(uuid: str, owner: str = "alice@example", project: str = "proj") -> tuple:
    return uuid, owner, project, f"set {uuid[-1]}", "mnist"


def not_found(uuid: str, endpoint: str) -> tuple[str, int, str]:
    return f"Data-set with uuid '{uuid}' not found", 404, endpoint


def fields(error: HanamiError) -> tuple[str, int | None, str]:
    return error.message, error.status, error.endpoint


async def test_several_datasets_are_read_with_one_listing_per_round(http_server: ScriptedHTTP, client: HanamiClient,
                                                                    token: str) -> None:
    """Rounds of ``concurrency`` uuids, each after a fresh listing: a uuid the round's listing does not
    show is never sent (here C, deleted between the rounds), a duplicate is read once."""
    http_server.on("GET", "/control/v1/dataset/all", listing(mnist(A), mnist(C)), listing(mnist(A)))
    http_server.on("GET", "/control/v1/dataset", {"uuid": A, "lines": 5})
    found = await client.api(token).get_datasets([A, B, A, C], concurrency=2)
    assert sorted(found) == sorted([A, B, C])
    assert found[A] == {"uuid": A, "lines": 5}
    for uuid in (B, C):
        assert isinstance(found[uuid], NotFound) and fields(found[uuid]) == not_found(uuid, "GET v1/dataset")
    assert [seen.target for seen in http_server.seen] == [
        "/control/v1/dataset/all", f"/control/v1/dataset?uuid={A}", "/control/v1/dataset/all"]


async def test_four_datasets_a_round_by_default(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    uuids = [f"d5e7a1f0-0000-4000-8000-00000000010{digit}" for digit in range(5)]
    http_server.on("GET", "/control/v1/dataset/all", listing(*(mnist(uuid) for uuid in uuids)))
    http_server.on("GET", "/control/v1/dataset", {"lines": 1})
    found = await client.api(token).get_datasets(uuids)
    assert all(found[uuid] == {"lines": 1} for uuid in uuids)
    listings = [index for index, seen in enumerate(http_server.seen) if seen.path == "/control/v1/dataset/all"]
    assert listings == [0, 5]  # four reads after the first listing, the fifth after the second


async def test_a_dataset_that_fails_is_kept_as_its_error(http_server: ScriptedHTTP, client: HanamiClient,
                                                         token: str) -> None:
    http_server.on("GET", "/control/v1/dataset/all", listing(mnist(A)))
    http_server.on("GET", "/control/v1/dataset", Reply(500, "broken"))
    found = await client.api(token).get_datasets([A])
    assert isinstance(found[A], BackendError) and fields(found[A]) == ("broken", 500, "GET v1/dataset")


async def test_an_expired_token_while_reading_datasets_is_raised(http_server: ScriptedHTTP, client: HanamiClient,
                                                                 token: str) -> None:
    http_server.on("GET", "/control/v1/dataset/all", listing(mnist(A), mnist(B)))
    http_server.on("GET", "/control/v1/dataset", Reply(401, "Failed to validate JWT-Token"))
    with pytest.raises(TokenExpired):
        await client.api(token).get_datasets([A, B])


async def test_an_unreachable_backend_while_reading_datasets_is_raised(client: HanamiClient, token: str,
                                                                       http_server: ScriptedHTTP) -> None:
    http_server.on("GET", "/control/v1/dataset/all", listing(mnist(A)))
    http_server.on("GET", "/control/v1/dataset", Reply(action="close"))
    with pytest.raises(BackendUnavailable):
        await client.api(token).get_datasets([A])


async def test_upload_progress_is_refused_to_anyone_but_the_uploader(http_server: ScriptedHTTP,
                                                                     client: HanamiClient) -> None:
    http_server.on("GET", "/control/v1/dataset/all", listing(mnist(A)))
    http_server.on("GET", "/control/v1/dataset/progress", {"complete": True, "uuid": A})
    message = ("The upload progress of a data-set can only be read by the user who uploads it, "
               "in the project the upload was started in.")
    for token in (make_token("bob@example", "proj"), make_token("alice@example", "other")):
        with pytest.raises(Conflict) as refused:
            await client.api(token).dataset_progress(A)
        assert (refused.value.message, refused.value.endpoint) == (message, "GET v1/dataset/progress")
    assert http_server.requests("GET", "/control/v1/dataset/progress") == []
    with pytest.raises(NotFound) as unknown:
        await client.api(make_token()).dataset_progress(B)
    assert fields(unknown.value) == not_found(B, "GET v1/dataset/progress")
    # a token whose claims cannot be read (not a JWT) is left to Hanami to judge
    assert await client.api("not-a-jwt").dataset_progress(A) == {"complete": True, "uuid": A}
    assert await client.api(make_token()).dataset_progress(A) == {"complete": True, "uuid": A}
    assert len(http_server.requests("GET", "/control/v1/dataset/progress")) == 2


async def test_a_second_csv_dataset_of_one_name_and_owner_is_refused(http_server: ScriptedHTTP, client: HanamiClient,
                                                                     tmp_path: Path) -> None:
    csv = tmp_path / "x.csv"
    csv.write_bytes(b"a,b\n1,2\n")
    http_server.on("GET", "/control/v1/dataset/all", listing(
        (A, "alice@example", "proj", "sine", "csv"), (B, "alice@example", "proj", "digits", "mnist")))
    with pytest.raises(Conflict) as refused:
        await client.api(make_token("alice@example")).upload_csv("sine", csv)
    assert (refused.value.message, refused.value.endpoint) == (
        "A CSV data-set named 'sine' already exists; Hanami would store both in one file. Choose another name "
        "or delete the existing data-set first.", "POST v1/csv/dataset")
    assert [seen.path for seen in http_server.seen] == ["/control/v1/dataset/all"]
    http_server.on("POST", "/control/v1/csv/dataset", Reply(500, "stop here"))
    for token, name in ((make_token("alice@example"), "digits"),  # an MNIST set of that name: another file
                        (make_token("bob@example"), "sine"),  # another owner: another file
                        ("not-a-jwt", "sine")):  # no owner to compare: Hanami decides
        http_server.seen.clear()
        with pytest.raises(BackendError) as failed:
            await client.api(token).upload_csv(name, csv)
        assert failed.value.message == "stop here"
        assert http_server.seen[-1].path == "/control/v1/csv/dataset"
        assert [seen.path for seen in http_server.seen].count("/control/v1/dataset/all") == (token != "not-a-jwt")


async def test_an_unknown_task_is_not_found_and_a_listed_one_keeps_its_error(http_server: ScriptedHTTP,
                                                                            client: HanamiClient, token: str) -> None:
    http_server.on("GET", "/control/v1/task", Reply(500, "task broke"))
    http_server.on("GET", "/control/v1/task/all", {"header": TASK_HEADER, "body": []},
                   {"header": TASK_HEADER, "body": [[TASK, "active", "0.5", "-", "-", "-"]]},
                   Reply(500, "listing broke"))
    api = client.api(token)
    with pytest.raises(NotFound) as unknown:
        await api.get_task(TASK, CLUSTER)
    assert fields(unknown.value) == (f"Task with uuid '{TASK}' not found", 404, "GET v1/task")
    assert unknown.value.__cause__ is None and unknown.value.__suppress_context__
    for _ in range(2):  # listed; the listing itself fails: the task's own error either way
        with pytest.raises(BackendError) as kept:
            await api.get_task(TASK, CLUSTER)
        assert type(kept.value) is BackendError and fields(kept.value) == ("task broke", 500, "GET v1/task")
    assert http_server.requests("GET", "/control/v1/task/all")[0].target == f"/control/v1/task/all?cluster_uuid={CLUSTER}"
    http_server.on("GET", "/control/v1/task", Reply(404, f"Task with uuid '{TASK}' not found"))
    with pytest.raises(NotFound):
        await api.get_task(TASK, CLUSTER)
    assert len(http_server.requests("GET", "/control/v1/task/all")) == 3  # a 404 needs no listing


async def test_the_projects_of_a_user_when_hanami_fails(http_server: ScriptedHTTP, client: HanamiClient,
                                                         token: str) -> None:
    api = client.api(token)
    http_server.on("GET", "/control/v1/user/project", Reply(500, "admin user"))  # Q-U3
    http_server.on("GET", "/control/v1/user", Reply(404, "no such user"))
    with pytest.raises(BackendError) as kept:  # the fallback failed too: the first error counts
        await api.user_projects("asdf")
    assert type(kept.value) is BackendError and fields(kept.value) == ("admin user", 500, "GET v1/user/project")
    http_server.on("GET", "/control/v1/user", {"id": "asdf", "projects": "not a list"})
    with pytest.raises(BackendError) as malformed:
        await api.user_projects("asdf")
    assert fields(malformed.value) == ("the project list of the backend is malformed", 200, "GET v1/user/project")
    http_server.seen.clear()
    http_server.on("GET", "/control/v1/user/project", Reply(404, "User with id 'asdf' not found"))
    with pytest.raises(NotFound):
        await api.user_projects("asdf")
    assert [seen.path for seen in http_server.seen] == ["/control/v1/user/project"]  # no fallback for a 404
    http_server.on("GET", "/control/v1/user/project", {"projects": [{"project_id": "p"}]})
    assert await api.user_projects("asdf") == [{"project_id": "p"}]


async def test_a_policy_probe_asks_for_the_endpoint_and_method(http_server: ScriptedHTTP, client: HanamiClient,
                                                               token: str) -> None:
    http_server.on("GET", "/control/v1/auth", {"id": "alice@example"}, Reply(401, "Access denied by policy"))
    observed: list[str] = []
    client.on_call = lambda endpoint, status, seconds, error: observed.append(endpoint)
    api = client.api(token)
    assert await api.is_allowed("v1/cluster", "DELETE") is True
    assert await api.is_allowed("v1/user/all", "PUT") is False
    assert [seen.target for seen in http_server.seen] == [
        "/control/v1/auth?endpoint=v1/cluster&http_type=1", "/control/v1/auth?endpoint=v1/user/all&http_type=5"]
    assert observed == ["GET v1/auth", "GET v1/auth"]


@pytest.mark.parametrize("text, sent", [("a\rb\r", "a\nb\n"), ("a\r\nb", "a\nb"), ("a\r\r\nb", "a\n\nb")])
async def test_a_template_reaches_hanami_with_line_feeds_only(http_server: ScriptedHTTP, client: HanamiClient,
                                                              token: str, text: str, sent: str) -> None:
    """§6.2: a carriage return in a template is fatal to Hanami; old Mac (CR) and Windows (CRLF) line
    ends both become LF."""
    http_server.on("POST", "/control/v1/cluster", {"uuid": CLUSTER, "name": "c"})
    await client.api(token).create_cluster("my cluster", text)
    body = http_server.requests("POST", "/control/v1/cluster")[0].json()
    assert base64.b64decode(body["template"]).decode() == sent


async def test_an_empty_template_is_a_bad_request(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    with pytest.raises(BadRequest) as refused:
        await client.api(token).create_cluster("my cluster", "\r\n \r")
    assert fields(refused.value) == ("The cluster template is empty.", 400, "POST v1/cluster")
    assert http_server.seen == []


def test_the_claims_of_a_token(client: HanamiClient) -> None:
    claims = client.api(make_token("bob@example", "team")).token_claims()
    assert (claims["user"]["id"], claims["user"]["project_id"]) == ("bob@example", "team")
    assert client.api("not-a-jwt").token_claims() == {}


@pytest.mark.parametrize("name, args, method, target, body", CALLS, ids=[f"{c[0]}{len(c[1])}" for c in CALLS])
async def test_a_failed_operation_names_its_call(http_server: ScriptedHTTP, client: HanamiClient, token: str,
                                                 name: str, args: tuple, method: str, target: str, body: object) -> None:
    """The error (and the call observer, which the console's metrics read) names the call that failed:
    its method and endpoint, as the log lines and the console's call counts show them."""
    answer_everything(http_server)
    path = target.split("?")[0]
    http_server.on(method, path, Reply(500, "broken"))
    observed: list[str] = []
    client.on_call = lambda endpoint, status, seconds, error: observed.append(endpoint)
    with pytest.raises(HanamiError) as failed:
        await getattr(client.api(token), name)(*args)
    endpoint = f"{method} {path.removeprefix('/control/')}"
    assert failed.value.endpoint == endpoint
    assert endpoint in observed


@pytest.mark.parametrize("call, endpoint", [
    (lambda api: api.get_dataset(B), "GET v1/dataset"),
    (lambda api: api.create_task("run", "train", CLUSTER, B), "POST v1/task"),
    (lambda api: api.check_dataset(TASK, B), "POST v1/dataset/check"),
    (lambda api: api.dataset_progress(B), "GET v1/dataset/progress"),
])
async def test_an_unlisted_dataset_is_not_found_by_the_operation_that_asked(
    http_server: ScriptedHTTP, client: HanamiClient, token: str, call, endpoint: str,
) -> None:
    http_server.on("GET", "/control/v1/dataset/all", listing(mnist(A)))
    with pytest.raises(NotFound) as unknown:
        await call(client.api(token))
    assert fields(unknown.value) == not_found(B, endpoint)
    assert [seen.path for seen in http_server.seen] == ["/control/v1/dataset/all"]


async def test_the_audit_log_starts_at_its_first_page(http_server: ScriptedHTTP, client: HanamiClient,
                                                      token: str) -> None:
    http_server.on("GET", "/control/v1/audit_log", {"header": ["timestamp"], "body": []})
    await client.api(token).audit_log()
    await client.api(token).audit_log(3)
    assert [seen.target for seen in http_server.seen] == ["/control/v1/audit_log?page=0",
                                                          "/control/v1/audit_log?page=3"]


@pytest.mark.parametrize("page", [-1, 1_000_000_001, True, 2.0])
async def test_a_log_page_out_of_range_is_a_bad_request(http_server: ScriptedHTTP, client: HanamiClient, token: str,
                                                        page: object) -> None:
    with pytest.raises(BadRequest) as refused:
        await client.api(token).audit_log(page)  # type: ignore[arg-type]
    assert fields(refused.value) == ("Given item 'page' must be a whole number from 0 to 1000000000", 400,
                                     "GET v1/audit_log")
    assert http_server.seen == []


async def test_an_upload_names_its_dataset_as_soon_as_it_exists(admin_api, hanami_files) -> None:
    """``on_created`` hears the new dataset's uuid (so a caller can clean up after a failure), once,
    for either kind of upload."""
    import secrets

    for upload in (lambda name, created: admin_api.upload_mnist(name, hanami_files["images"], hanami_files["labels"],
                                                                on_created=created),
                   lambda name, created: admin_api.upload_csv(name, hanami_files["csv"], on_created=created)):
        heard: list[str] = []

        async def created(uuid: str) -> None:
            heard.append(uuid)

        uuid = await upload(f"named {secrets.token_hex(3)}", created)
        try:
            assert heard == [uuid]
        finally:
            await admin_api.delete_dataset(uuid)
