"""Client-side guards against requests that crash or confuse the real backend (Q-C2, Q-C4, Q-D4, Q-T1)."""

from __future__ import annotations

import pytest
from tests.hanami.hanami_scripted import Reply, ScriptedHTTP, make_token

from webconsole.hanami import BackendError, BadRequest, Conflict, HanamiClient, NotFound

DS = "d5e7a1f0-0000-4000-8000-000000000001"
OTHER = "d5e7a1f0-0000-4000-8000-0000000000ff"
CLUSTER = "c1a55e00-0000-4000-8000-000000000001"
RESULT = "4e5c0000-0000-4000-8000-000000000001"
TASK = "7a5c0000-0000-4000-8000-000000000001"


def dataset_list(owner: str = "alice@example", project: str = "proj") -> dict:
    return {"header": ["uuid", "project_id", "owner_id", "visibility", "name", "type"],
            "body": [[DS, project, owner, "private", "train set", "mnist"]]}


@pytest.fixture
def listed(http_server: ScriptedHTTP) -> ScriptedHTTP:
    http_server.on("GET", "/control/v1/dataset/all", dataset_list())
    return http_server


async def test_unlisted_dataset_uuid_is_never_sent(listed: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    api = client.api(token)
    with pytest.raises(NotFound) as info:
        await api.get_dataset(OTHER)
    assert info.value.message == f"Data-set with uuid '{OTHER}' not found"
    with pytest.raises(NotFound):
        await api.create_task("my task", "train", CLUSTER, OTHER)
    with pytest.raises(NotFound):
        await api.check_dataset(RESULT, OTHER)
    assert {s.path for s in listed.seen} == {"/control/v1/dataset/all"}
    assert all(OTHER not in s.target and OTHER.encode() not in s.body for s in listed.seen)


async def test_listed_dataset_goes_through(listed: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    listed.on("GET", "/control/v1/dataset", {"uuid": DS, "lines": 5})
    listed.on("POST", "/control/v1/task", {"name": "my task", "uuid": TASK})
    listed.on("POST", "/control/v1/dataset/check", {"accuracy": 93.5}, {})
    api = client.api(token)
    assert (await api.get_dataset(DS))["lines"] == 5
    assert await api.create_task("my task", "train", CLUSTER, DS) == {"name": "my task", "uuid": TASK}
    assert listed.requests("POST", "/control/v1/task")[0].json() == {
        "name": "my task", "type": "train", "cluster_uuid": CLUSTER, "dataset_uuid": DS}
    assert await api.check_dataset(RESULT, DS) == 93.5
    assert await api.check_dataset(RESULT, DS) is None  # Q-D4: {} from an unreadable dataset
    assert listed.requests("POST", "/control/v1/dataset/check")[0].json() == {
        "result_uuid": RESULT, "dataset_uuid": DS}
    assert listed.requests("GET", "/control/v1/dataset")[0].target == f"/control/v1/dataset?uuid={DS}"


async def test_progress_only_for_the_uploader(listed: ScriptedHTTP, client: HanamiClient) -> None:
    listed.on("GET", "/control/v1/dataset/progress", {"complete": False, "uuid": DS})
    assert (await client.api(make_token("alice@example", "proj")).dataset_progress(DS))["complete"] is False
    with pytest.raises(Conflict):
        await client.api(make_token("bob@example", "proj", is_admin=True)).dataset_progress(DS)
    with pytest.raises(Conflict):
        await client.api(make_token("alice@example", "other")).dataset_progress(DS)
    with pytest.raises(NotFound):
        await client.api(make_token()).dataset_progress(OTHER)
    assert len(listed.requests("GET", "/control/v1/dataset/progress")) == 1


async def test_unknown_task_500_becomes_not_found(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    http_server.on("GET", "/control/v1/task", Reply(500, ""))
    http_server.on("GET", "/control/v1/task/all",
                   {"header": ["uuid", "state", "percentage", "queued", "start", "end"], "body": []})
    with pytest.raises(NotFound):
        await client.api(token).get_task(TASK, CLUSTER)
    # a listed task that makes the backend fail stays a BackendError
    http_server.on("GET", "/control/v1/task/all",
                   {"header": ["uuid", "state", "percentage", "queued", "start", "end"],
                    "body": [[TASK, "active", "0.500000", "-", "-", "-"]]})
    with pytest.raises(BackendError):
        await client.api(token).get_task(TASK, CLUSTER)


async def test_table_lookup_by_header(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    http_server.on("GET", "/control/v1/user/all", {
        "header": ["id", "name", "creator_id", "projects", "is_admin"],
        "body": [["asdf", "Asdf", "MISAKI", [], True],
                 ["bob@example", "Bob", "asdf", [{"project_id": "p", "role": "member", "is_project_admin": False}],
                  False]]})
    table = await client.api(token).list_users()
    assert len(table) == 2
    assert table.column("is_admin") == [True, False]
    assert table.records()[1]["projects"][0]["role"] == "member"
    assert table.find("id", "bob@example")["name"] == "Bob"
    assert table.find("id", "nobody") is None
    with pytest.raises(KeyError):
        table.column("uuid")


async def test_measurements_and_info_unwrapped(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    series = {"days": [0.0] * 365, "hours": [0.0] * 24, "minutes": [0.0] * 60, "seconds": [1.5] * 60}
    http_server.on("GET", "/control/v1/power_consumption", {"power": series})
    http_server.on("GET", "/control/v1/speed", {"current_speed": series})
    http_server.on("GET", "/control/v1/temperature_production", {"temperature": series})
    http_server.on("GET", "/control/v1/system_info", {"info": {"hostname": "node1", "packages": []}})
    http_server.on("GET", "/control/v1/threading", {"thread_map": {"HttpServer": [0, 8]}})
    api = client.api(token)
    assert (await api.power())["seconds"][-1] == 1.5
    assert len((await api.speed())["days"]) == 365
    assert len((await api.temperature())["hours"]) == 24
    assert (await api.system_info())["hostname"] == "node1"
    assert (await api.threading()) == {"HttpServer": [0, 8]}


@pytest.mark.parametrize("page", [-1, 1_000_000_001, 99_999_999_999])
async def test_log_page_out_of_range_is_refused_locally(http_server: ScriptedHTTP, client: HanamiClient,
                                                        token: str, page: int) -> None:
    with pytest.raises(BadRequest, match="page"):
        await client.api(token).audit_log(page)  # Q-C6: would crash the real backend
    with pytest.raises(BadRequest, match="page"):
        await client.api(token).error_log(page)
    assert http_server.seen == []


@pytest.mark.parametrize("word", ["true", "True", "TRUE", "false", "False", "FALSE"])
async def test_boolean_words_as_names_are_refused_locally(http_server: ScriptedHTTP, client: HanamiClient,
                                                          token: str, word: str, tmp_path) -> None:
    api = client.api(token)
    calls = [
        api.create_project(word, "Some Project"),
        api.create_project("some_project", word),
        api.create_user(word, "Some User", "password1", False),
        api.create_user("some_user", word, "password1", False),
        api.assign_project("some_user", word, "member", False),
        api.assign_project("some_user", "proj", word, False),
        api.create_cluster(word, "version: 1\n"),
        api.save_checkpoint(CLUSTER, word),
        api.create_task(word, "train", CLUSTER, DS),
        api.upload_csv(word, tmp_path / "x.csv"),
        api.upload_mnist(word, tmp_path / "i", tmp_path / "l"),
    ]
    for call in calls:
        with pytest.raises(BadRequest, match="boolean"):  # Q-G4
            await call
    assert http_server.seen == []


async def test_user_projects_of_an_admin_falls_back_to_get_user(http_server: ScriptedHTTP, client: HanamiClient,
                                                                token: str) -> None:
    assignment = {"is_project_admin": True, "project_id": "proj", "role": "admin"}
    http_server.on("GET", "/control/v1/user/project", Reply(500, ""))  # Q-U3
    http_server.on("GET", "/control/v1/user", {"id": "asdf", "is_admin": True, "projects": [assignment]})
    assert await client.api(token).user_projects("asdf") == [assignment]
    assert [s.target for s in http_server.seen] == ["/control/v1/user/project?user_id=asdf",
                                                    "/control/v1/user?id=asdf"]


async def test_csv_name_reuse_by_same_owner_is_a_conflict(listed: ScriptedHTTP, client: HanamiClient,
                                                          tmp_path) -> None:
    csv = tmp_path / "x.csv"
    csv.write_bytes(b"a,b\n1,2\n")
    listed.on("GET", "/control/v1/dataset/all", {
        "header": ["uuid", "project_id", "owner_id", "visibility", "name", "type"],
        "body": [[DS, "proj", "alice@example", "private", "sine", "csv"]]})
    with pytest.raises(Conflict, match="already exists"):  # Q-D3: same file on the backend
        await client.api(make_token("alice@example")).upload_csv("sine", csv)
    assert [s.path for s in listed.seen] == ["/control/v1/dataset/all"]
    listed.on("POST", "/control/v1/csv/dataset", Reply(500, ""))  # another owner may use the name
    with pytest.raises(BackendError):
        await client.api(make_token("bob@example")).upload_csv("sine", csv)
