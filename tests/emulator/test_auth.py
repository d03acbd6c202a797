"""Login, tokens, renewal, policy (§2, §4.1-4.3)."""

from __future__ import annotations

import json
import time

import httpx
import jwt
import pytest
from tests.emulator.emu_helpers import ADMIN, Api, make_config, unique

from webconsole.emulator import EmulatorServer
from webconsole.emulator.backend import StartupError

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def decode(token: str, key: bytes = b"asdf\n") -> dict:
    return jwt.decode(token, key, algorithms=["HS256"])


def test_login_reply_and_claims(hanami):
    resp = httpx.post(f"{hanami.url}/control/v1/token", content=json.dumps({"id": ADMIN[0], "password": ADMIN[1]}))
    assert resp.status_code == 200
    body = resp.json()
    assert sorted(body) == ["id", "is_admin", "name", "token"]
    assert jwt.get_unverified_header(body["token"]) == {"alg": "HS256", "typ": "JWT"}
    payload = decode(body["token"])
    assert sorted(payload) == ["exp", "user"]
    assert isinstance(payload["exp"], int) and abs(payload["exp"] - time.time() - 3600) < 5
    assert isinstance(payload["user"], str)
    assert payload["user"] == ('{"creator_id":"MISAKI","id":"asdf","is_admin":true,"is_project_admin":true,'
                               '"name":"Admin","project_id":"admin","role":"admin"}')


def test_login_failures(hanami, admin: Api):
    url = f"{hanami.url}/control/v1/token"
    for body in ({"id": "asdf", "password": "wrong-password"}, {"id": "nobody", "password": "whatever1"}):
        resp = httpx.post(url, content=json.dumps(body))
        assert (resp.status_code, resp.text) == (401, "ACCESS DENIED!\nUser or password is incorrect.")
    user = unique("noproj")
    admin.ok("POST", "v1/user", {"id": user, "name": "No Project", "password": "password1", "is_admin": False})
    resp = httpx.post(url, content=json.dumps({"id": user, "password": "password1"}))
    assert (resp.status_code, resp.text) == (401, f"User with id '{user}' has no project assigned.")
    # with a query string the login is an ordinary authenticated POST on v1/token
    resp = httpx.post(url + "?x=1", content=json.dumps({"id": "asdf", "password": "asdfasdf"}))
    assert (resp.status_code, resp.text) == (401, "Failed to validate JWT-Token")
    resp = httpx.post(url + "?x=1", content="{}", headers={"X-Auth-Token": admin.token})
    assert (resp.status_code, resp.text) == (401, "Access denied by policy")
    # logins are never audited
    assert all(row[2] != "v1/token" or row[3] != "POST"
               for row in admin.ok("GET", "v1/audit_log", query="page=0")["body"])


def test_expired_and_forged_tokens(admin: Api):
    user = json.loads(decode(admin.token)["user"])
    claims = {"user": json.dumps(user, sort_keys=True, separators=(",", ":"))}
    expired = jwt.encode({**claims, "exp": int(time.time()) - 1}, b"asdf\n", algorithm="HS256")
    forged = jwt.encode({**claims, "exp": int(time.time()) + 600}, b"other key", algorithm="HS256")
    for token in (expired, forged, "garbage", ""):
        resp = Api(admin.server, token).call("GET", "v1/auth")
        assert (resp.status_code, resp.text) == (401, "Failed to validate JWT-Token")
    # renewal needs a still valid token
    resp = Api(admin.server, expired).call("PUT", "v1/token", {"project_id": "admin"})
    assert (resp.status_code, resp.text) == (401, "Failed to validate JWT-Token")


def test_renew_and_switch_project(admin: Api, member: Api):
    renewed = member.ok("PUT", "v1/token", {"project_id": member.project_id})
    assert renewed["id"] == member.user_id and renewed["is_admin"] is False
    resp = member.call("PUT", "v1/token", {"project_id": "elsewhere"})
    assert (resp.status_code, resp.text) == (
        401, f"User with id '{member.user_id}' is not assigned to the project with id 'elsewhere'.")
    # assign a second project as project admin, then switch into it
    admin.ok("POST", "v1/user/project", {"id": member.user_id, "project_id": "second", "role": "member",
                                         "is_project_admin": True})
    switched = Api(member.server, member.ok("PUT", "v1/token", {"project_id": "second"})["token"])
    me = switched.ok("GET", "v1/auth")
    assert (me["project_id"], me["role"], me["is_project_admin"]) == ("second", "member", True)
    # the admin can switch into a normal project and back into the virtual admin project
    admin.ok("POST", "v1/user/project", {"id": "asdf", "project_id": "second", "role": "member",
                                         "is_project_admin": False})
    in_project = Api(admin.server, admin.ok("PUT", "v1/token", {"project_id": "second"})["token"])
    me = in_project.ok("GET", "v1/auth")
    assert (me["is_admin"], me["project_id"], me["role"]) == (True, "second", "member")  # Q-A5
    assert Api(admin.server, in_project.ok("PUT", "v1/token", {"project_id": "admin"})["token"]).ok(
        "GET", "v1/auth")["project_id"] == "admin"
    admin.ok("DELETE", "v1/user/project", query="id=asdf&project_id=second")


def test_auth_policy_probe(admin: Api, member: Api):
    assert admin.ok("GET", "v1/auth", query="endpoint=v1/user&http_type=4")["role"] == "admin"
    resp = member.call("GET", "v1/auth", query="endpoint=v1/user&http_type=4")
    assert (resp.status_code, resp.text) == (401, "Access denied by policy")
    assert member.ok("GET", "v1/auth", query="endpoint=v1/cluster")["id"] == member.user_id  # default GET
    resp = admin.call("GET", "v1/auth", query="endpoint=v1/cluster&http_type=3")  # HEAD: always denied
    assert resp.status_code == 401


def test_member_policy_and_hard_admin_checks(member: Api):
    for method, path, query in [("GET", "v1/user/all", ""), ("GET", "v1/project/all", ""),
                                ("GET", "v1/error_log", "page=0")]:
        resp = member.call(method, path, query=query)
        assert (resp.status_code, resp.text) == (401, "Access denied by policy")
    resp = member.call("GET", "v1/user/project", query=f"user_id={member.user_id}")
    assert (resp.status_code, resp.text) == (401, "")


def test_role_admin_without_admin_flag(admin: Api):
    user = unique("fakeadmin")
    admin.ok("POST", "v1/user", {"id": user, "name": "Fake", "password": "password1", "is_admin": False})
    admin.ok("POST", "v1/user/project", {"id": user, "project_id": "proj", "role": "admin",
                                         "is_project_admin": False})
    fake = Api(admin.server).login(user, "password1")
    assert (fake.call("GET", "v1/user/all").status_code, fake.call("GET", "v1/user/all").text) == (401, "")  # Q-A4
    resp = fake.call("GET", "v1/error_log", query="page=0")
    assert (resp.status_code, resp.text) == (401, "only an admin is allowed to request error-logs")


def test_token_stays_valid_after_user_deletion(admin: Api):
    user = unique("shortlived")
    admin.ok("POST", "v1/user", {"id": user, "name": "Short", "password": "password1", "is_admin": False})
    admin.ok("POST", "v1/user/project", {"id": user, "project_id": "proj", "role": "member",
                                         "is_project_admin": False})
    api = Api(admin.server).login(user, "password1")
    admin.ok("DELETE", "v1/user", query=f"id={user}")
    assert api.ok("GET", "v1/auth")["id"] == user  # Q-A1
    resp = api.call("PUT", "v1/token", {"project_id": "proj"})
    assert (resp.status_code, resp.text) == (401, "ACCESS DENIED!\nUser or password is incorrect.")


def test_custom_policy_file_and_token_settings(tmp_path):
    policy = tmp_path / "policies"
    policy.write_text("v1/auth\n- GET: tester\nv1/cluster/all\n  -  GET :admin\nv1/auth\n- GET: admin\n")
    config = make_config(tmp_path / "state", policy_file=policy, token_key=b"another key", token_expire=120)
    with EmulatorServer(config) as server:
        api = Api(server).login(*ADMIN)
        payload = decode(api.token, b"another key")
        assert abs(payload["exp"] - time.time() - 120) < 5
        assert api.ok("GET", "v1/cluster/all")["body"] == []
        # the second v1/auth block is ignored (first wins): admin may not call v1/auth
        assert api.call("GET", "v1/auth").text == "Access denied by policy"


def test_refuses_to_start_without_admin(tmp_path, monkeypatch):
    for name in ("HANAMI_ADMIN_USER_ID", "HANAMI_ADMIN_USER_NAME", "HANAMI_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    config = make_config(tmp_path, admin_id=None, admin_name=None, admin_password=None)
    with pytest.raises(StartupError):
        EmulatorServer(config).start()


def test_admin_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HANAMI_ADMIN_USER_ID", "envadmin")
    monkeypatch.setenv("HANAMI_ADMIN_USER_NAME", "Env Admin")
    monkeypatch.setenv("HANAMI_ADMIN_PASSWORD", "env-password")
    from webconsole.emulator import EmulatorConfig

    with EmulatorServer(EmulatorConfig(state_dir=tmp_path, port=0)) as server:
        api = Api(server).login("envadmin", "env-password")
        users = api.ok("GET", "v1/user/all")["body"]
        assert users == [["envadmin", "Env Admin", "MISAKI", [], True]]
