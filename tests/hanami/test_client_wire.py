"""Wire behaviour and error mapping of HanamiClient against a scripted loopback HTTP server."""

from __future__ import annotations

import base64

import pytest
from tests.hanami.hanami_scripted import Reply, ScriptedHTTP, free_port_refused

from webconsole.hanami import (
    AdminOnly,
    BackendError,
    BackendUnavailable,
    BadRequest,
    Conflict,
    HanamiClient,
    HanamiError,
    InputError,
    LoginFailed,
    NotFound,
    PolicyDenied,
    Table,
    TokenExpired,
    Unauthorized,
)

ASCII_TABLE = (
    "Uploaded template is not a valid cluster-template: \n"
    "+---------------------+-------------------------------------------+\n"
    "| Error-Message Nr. 0 | ERROR while parsing cluster-definition    |\n"
    "|                     | parser-message: syntax error              |\n"
    "+---------------------+-------------------------------------------+\n"
)


@pytest.mark.parametrize(
    ("status", "body", "exc", "message"),
    [
        (400, ASCII_TABLE, BadRequest, ASCII_TABLE.strip()),
        (400, "", BadRequest, ""),
        (401, "Failed to validate JWT-Token", TokenExpired, "Failed to validate JWT-Token"),
        (401, "Access denied by policy", PolicyDenied, "Access denied by policy"),
        (401, "", AdminOnly, ""),
        (401, "only an admin is allowed to request error-logs", AdminOnly,
         "only an admin is allowed to request error-logs"),
        (401, "something else", Unauthorized, "something else"),
        (404, "Cluster with uuid 'x' not found\n", NotFound, "Cluster with uuid 'x' not found"),
        (409, "Cluster with name 'abcd' already exist.", Conflict, "Cluster with name 'abcd' already exist."),
        (500, "", BackendError, ""),
        (418, "teapot", BackendError, "teapot"),
    ],
)
async def test_status_maps_to_exception(http_server: ScriptedHTTP, client: HanamiClient, token: str,
                                        status: int, body: str, exc: type, message: str) -> None:
    http_server.on("GET", "/control/v1/cluster/all", Reply(status, body))
    with pytest.raises(exc) as info:
        await client.api(token).list_clusters()
    assert type(info.value) is exc
    assert info.value.status == status
    assert info.value.message == message
    assert info.value.endpoint == "GET v1/cluster/all"
    assert str(info.value)  # never an empty text, also for empty bodies
    assert token not in str(info.value) and token not in repr(info.value)


async def test_500_text_names_status(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    http_server.on("GET", "/control/v1/threading", Reply(500, ""))
    with pytest.raises(BackendError, match="HTTP 500"):
        await client.api(token).threading()


async def test_input_error_alias() -> None:
    assert issubclass(BadRequest, HanamiError)
    assert isinstance(Conflict("x"), InputError) and isinstance(BadRequest("x"), InputError)
    assert not isinstance(NotFound("x"), InputError)


async def test_login_failures(http_server: ScriptedHTTP, client: HanamiClient) -> None:
    http_server.on("POST", "/control/v1/token", Reply(401, "ACCESS DENIED!\nUser or password is incorrect."))
    with pytest.raises(LoginFailed) as info:
        await client.login("alice@example", "wrong-password")
    assert info.value.message == "ACCESS DENIED!\nUser or password is incorrect."
    seen = http_server.requests("POST", "/control/v1/token")[0]
    assert seen.target == "/control/v1/token"  # no query string: otherwise not a login (§4.1)
    assert "x-auth-token" not in seen.headers
    assert seen.json() == {"id": "alice@example", "password": "wrong-password"}
    http_server.on("POST", "/control/v1/token", Reply(401, "User with id 'alice@example' has no project assigned."))
    with pytest.raises(LoginFailed):
        await client.login("alice@example", "password1")


async def test_renew_failures(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    api = client.api(token)
    http_server.on("PUT", "/control/v1/token",
                   Reply(401, "User with id 'alice@example' is not assigned to the project with id 'other'."))
    with pytest.raises(LoginFailed, match="not assigned"):
        await api.renew("other")
    http_server.on("PUT", "/control/v1/token", Reply(401, "ACCESS DENIED!\nUser or password is incorrect."))
    with pytest.raises(LoginFailed):
        await api.renew("proj")
    http_server.on("PUT", "/control/v1/token", Reply(401, "Failed to validate JWT-Token"))
    with pytest.raises(TokenExpired):
        await api.renew("proj")
    assert http_server.requests("PUT")[0].json() == {"project_id": "other"}


async def test_login_and_renew_decode_exp(http_server: ScriptedHTTP, client: HanamiClient) -> None:
    from tests.hanami.hanami_scripted import make_token

    fresh = make_token(expires_in=1234)
    http_server.on("POST", "/control/v1/token", {"id": "asdf", "is_admin": True, "name": "Asdf", "token": fresh})
    info = await client.login("asdf", "password1")
    assert (info.id, info.name, info.is_admin, info.token) == ("asdf", "Asdf", True, fresh)
    import jwt

    assert info.expires_at == jwt.decode(fresh, options={"verify_signature": False})["exp"]
    assert fresh not in repr(info)
    http_server.on("PUT", "/control/v1/token", {"id": "asdf", "is_admin": True, "name": "Asdf", "token": fresh})
    renewed = await client.api(fresh).renew("proj")
    assert renewed.expires_at == info.expires_at


async def test_connection_closed_without_reply(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    http_server.on("GET", "/control/v1/host/all", Reply(action="close"))
    with pytest.raises(BackendUnavailable) as info:
        await client.api(token).list_hosts()
    assert info.value.status is None


async def test_timeout(http_server: ScriptedHTTP, token: str) -> None:
    http_server.on("GET", "/control/v1/host/all", Reply(action="hang"))
    async with HanamiClient(http_server.url, timeout=0.3) as client:
        with pytest.raises(BackendUnavailable, match="did not answer"):
            await client.api(token).list_hosts()


async def test_connection_refused(token: str) -> None:
    async with HanamiClient(f"http://127.0.0.1:{free_port_refused()}", timeout=2) as client:
        with pytest.raises(BackendUnavailable):
            await client.api(token).list_hosts()
        with pytest.raises(BackendUnavailable):
            await client.login("asdf", "password1")


async def test_success_body_parsed_regardless_of_content_type(
    http_server: ScriptedHTTP, client: HanamiClient, token: str
) -> None:
    http_server.on("GET", "/control/v1/host/all",
                   Reply(200, b'{"body":[["a","cpu"]],"header":["uuid","type"]}'))
    table = await client.api(token).list_hosts()
    assert table == Table(header=["uuid", "type"], rows=[["a", "cpu"]])
    http_server.on("GET", "/control/v1/host/all", Reply(200, b"<html>proxy error</html>"))
    with pytest.raises(BackendError):
        await client.api(token).list_hosts()


async def test_at_sign_reaches_server_unencoded(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    http_server.on("GET", "/control/v1/user", {"id": "alice@example"})
    http_server.on("GET", "/control/v1/user/project", {"projects": []})
    http_server.on("DELETE", "/control/v1/user/project", {"id": "alice@example"})
    api = client.api(token)
    await api.get_user("alice@example")
    await api.user_projects("alice@example")
    await api.remove_project("alice@example", "proj")
    targets = [s.target for s in http_server.seen]
    assert targets == [
        "/control/v1/user?id=alice@example",
        "/control/v1/user/project?user_id=alice@example",
        "/control/v1/user/project?id=alice@example&project_id=proj",
    ]
    assert all("%40" not in t for t in targets)


async def test_no_extra_query_parameters(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    table = {"body": [], "header": ["a"]}
    for path in ("cluster/all", "dataset/all", "audit_log", "error_log", "task/all"):
        http_server.on("GET", f"/control/v1/{path}", table)
    http_server.on("GET", "/control/v1/auth", {"id": "a", "is_admin": False, "is_project_admin": False,
                                               "name": "n", "project_id": "p", "role": "member"})
    api = client.api(token)
    await api.list_clusters()
    await api.list_datasets()
    await api.audit_log(3)
    await api.error_log(0)
    await api.error_log(1, "bob@example")
    await api.list_tasks("c0ffee00-0000-4000-8000-000000000000")
    await api.auth()
    assert [s.target for s in http_server.seen] == [
        "/control/v1/cluster/all",
        "/control/v1/dataset/all",
        "/control/v1/audit_log?page=3",
        "/control/v1/error_log?page=0",
        "/control/v1/error_log?page=1&user_id=bob@example",
        "/control/v1/task/all?cluster_uuid=c0ffee00-0000-4000-8000-000000000000",
        "/control/v1/auth",
    ]
    assert all(s.headers["x-auth-token"] == token for s in http_server.seen)
    assert all(s.body == b"" for s in http_server.seen)


async def test_query_injection_is_refused_locally(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    with pytest.raises(BadRequest):
        await client.api(token).get_user("bob&id=admin")
    with pytest.raises(BadRequest):
        await client.api(token).get_cluster("a b")
    assert http_server.seen == []


async def test_json_types_in_bodies(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    http_server.on("POST", "/control/v1/user", {"id": "x"})
    http_server.on("POST", "/control/v1/user/project", {"id": "x"})
    http_server.on("PUT", "/control/v1/cluster/set_mode", {"new_state": "DIRECT"})
    api = client.api(token)
    await api.create_user("bob@example", "Bob Builder", "password1", is_admin=False)
    await api.assign_project("bob@example", "proj", "member", True)
    await api.set_mode("c0ffee00-0000-4000-8000-000000000000", "DIRECT")
    bodies = [s.json() for s in http_server.seen]
    assert bodies[0] == {"id": "bob@example", "name": "Bob Builder", "password": "password1", "is_admin": False}
    assert bodies[0]["is_admin"] is False
    assert bodies[1] == {"id": "bob@example", "project_id": "proj", "role": "member", "is_project_admin": True}
    assert bodies[2] == {"uuid": "c0ffee00-0000-4000-8000-000000000000", "new_state": "DIRECT"}
    assert all(s.headers["content-type"] == "application/json" for s in http_server.seen)


async def test_cluster_template_is_lf_base64_with_padding(
    http_server: ScriptedHTTP, client: HanamiClient, token: str
) -> None:
    http_server.on("POST", "/control/v1/cluster", {"uuid": "u"})
    await client.api(token).create_cluster("my cluster", "version: 1\r\nbricks:\r\n  1,1,1\r\n")
    body = http_server.seen[0].json()
    assert set(body) == {"name", "template"}
    assert len(body["template"]) % 4 == 0
    assert base64.b64decode(body["template"], validate=True) == b"version: 1\nbricks:\n  1,1,1\n"
    with pytest.raises(BadRequest):
        await client.api(token).create_cluster("my cluster", " \r\n")
    assert len(http_server.seen) == 1


async def test_base_url_prefix(http_server: ScriptedHTTP, token: str) -> None:
    http_server.on("GET", "/hanami/control/v1/host/all", {"body": [], "header": ["uuid", "type"]})
    async with HanamiClient(http_server.url + "/hanami/") as client:
        assert client.ws_url == f"ws://127.0.0.1:{http_server.port}/hanami"
        await client.api(token).list_hosts()
    assert http_server.seen[0].target == "/hanami/control/v1/host/all"


async def test_token_never_in_messages_or_reprs(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    """Even if the backend echoed the token in an error body, no exception text carries it."""
    api = client.api(token)
    assert token not in repr(api) and token not in str(api) and token not in repr(client)
    collected: list[BaseException] = []
    for status in (400, 401, 404, 409, 500, 418):
        http_server.on("GET", "/control/v1/cluster/all", Reply(status, f"bad token {token} here"))
        with pytest.raises(HanamiError) as info:
            await api.list_clusters()
        collected.append(info.value)
    http_server.on("GET", "/control/v1/cluster/all", Reply(action="close"))
    with pytest.raises(HanamiError) as info:
        await api.list_clusters()
    collected.append(info.value)
    # a token the HTTP layer refuses to put into a header: the error must not quote it
    bad = client.api(token + "\n")
    with pytest.raises(HanamiError) as info:
        await bad.list_clusters()
    collected.append(info.value)
    for exc in collected:
        for text in (str(exc), repr(exc), exc.message, *map(str, exc.args)):
            assert token not in text


def test_every_exception_class_hides_nothing_it_was_not_given(token: str) -> None:
    for cls in (HanamiError, BadRequest, Unauthorized, TokenExpired, PolicyDenied, AdminOnly, LoginFailed,
                NotFound, Conflict, BackendError, BackendUnavailable):
        exc = cls("text", status=400, endpoint="GET v1/x")
        assert token not in str(exc) + repr(exc)
        assert exc.message == "text" and exc.status == 400 and exc.endpoint == "GET v1/x"


async def test_ping(http_server: ScriptedHTTP, client: HanamiClient) -> None:
    http_server.on("GET", "/control/v1/auth", Reply(401, "Failed to validate JWT-Token"))
    await client.ping()
    seen = http_server.seen[0]
    assert seen.target == "/control/v1/auth" and "x-auth-token" not in seen.headers
    http_server.on("GET", "/control/v1/auth", Reply(500, ""))
    with pytest.raises(BackendError):
        await client.ping()
    http_server.on("GET", "/control/v1/auth", Reply(action="close"))
    with pytest.raises(BackendUnavailable):
        await client.ping()


async def test_call_observer(http_server: ScriptedHTTP, token: str) -> None:
    calls: list[tuple] = []
    http_server.on("GET", "/control/v1/host/all", {"body": [], "header": ["uuid", "type"]})
    http_server.on("GET", "/control/v1/cluster/all", Reply(404, "nope"))
    async with HanamiClient(http_server.url, on_call=lambda *a: calls.append(a)) as client:
        await client.api(token).list_hosts()
        with pytest.raises(NotFound):
            await client.api(token).list_clusters()
        client.on_call = lambda *a: 1 / 0  # a broken observer never breaks the call
        await client.api(token).list_hosts()
    assert [(c[0], c[1], c[3]) for c in calls] == [("GET v1/host/all", 200, None),
                                                   ("GET v1/cluster/all", 404, "NotFound")]
    assert all(isinstance(c[2], float) and c[2] >= 0 for c in calls)
    assert all(token not in repr(c) for c in calls)
