"""Users and projects with their 404/409 cases (§4.4-4.14)."""

from __future__ import annotations

from tests.emulator.emu_helpers import Api, unique


def test_project_crud(admin: Api):
    pid = unique("project")
    created = admin.ok("POST", "v1/project", {"id": pid, "name": "Test Project"})
    assert created == {"creator_id": "asdf", "id": pid, "name": "Test Project"}
    assert admin.ok("GET", "v1/project", query=f"id={pid}") == created
    listed = admin.ok("GET", "v1/project/all")
    assert listed["header"] == ["id", "name", "creator_id"]
    assert [pid, "Test Project", "asdf"] in listed["body"]
    resp = admin.call("POST", "v1/project", {"id": pid, "name": "Again"})
    assert (resp.status_code, resp.text) == (409, f"Project with id '{pid}' already exist.")
    assert admin.ok("DELETE", "v1/project", query=f"id={pid}") == {}
    for method in ("GET", "DELETE"):
        resp = admin.call(method, "v1/project", query=f"id={pid}")
        assert (resp.status_code, resp.text) == (404, f"Project with id '{pid}' not found")
    # the virtual admin project is not in the table
    assert admin.call("GET", "v1/project", query="id=admin").status_code == 404


def test_user_crud_and_assignments(admin: Api):
    uid = unique("user")
    created = admin.ok("POST", "v1/user", {"id": uid, "name": "New User", "password": "password1",
                                           "is_admin": False})
    assert created == {"creator_id": "asdf", "id": uid, "is_admin": False, "name": "New User", "projects": []}
    resp = admin.call("POST", "v1/user", {"id": uid, "name": "Again", "password": "password1", "is_admin": False})
    assert (resp.status_code, resp.text) == (409, f"User with id '{uid}' already exist.")
    assigned = admin.ok("POST", "v1/user/project", {"id": uid, "project_id": "pone", "role": "member",
                                                    "is_project_admin": False})
    admin.ok("POST", "v1/user/project", {"id": uid, "project_id": "ptwo", "role": "tester",
                                         "is_project_admin": True})
    assert assigned["projects"] == [{"is_project_admin": False, "project_id": "pone", "role": "member"}]
    resp = admin.call("POST", "v1/user/project", {"id": uid, "project_id": "pone", "role": "member",
                                                  "is_project_admin": False})
    assert (resp.status_code, resp.text) == (409, f"Project with ID 'pone' is already assigned to user with id '{uid}'.")
    got = admin.ok("GET", "v1/user", query=f"id={uid}")
    assert [p["project_id"] for p in got["projects"]] == ["pone", "ptwo"]
    listed = admin.ok("GET", "v1/user/all")
    assert listed["header"] == ["id", "name", "creator_id", "projects", "is_admin"]
    row = next(r for r in listed["body"] if r[0] == uid)
    assert row[3] == got["projects"] and row[4] is False
    assert admin.ok("GET", "v1/user/project", query=f"user_id={uid}") == {"projects": got["projects"]}
    # admins: the output check fails (Q-U3)
    assert admin.call("GET", "v1/user/project", query="user_id=asdf").status_code == 500
    # a non-admin logs into the first assigned project
    api = Api(admin.server).login(uid, "password1")
    assert api.ok("GET", "v1/auth")["project_id"] == "pone"
    removed = admin.ok("DELETE", "v1/user/project", query=f"id={uid}&project_id=pone")
    assert [p["project_id"] for p in removed["projects"]] == ["ptwo"]
    resp = admin.call("DELETE", "v1/user/project", query=f"id={uid}&project_id=pone")
    assert (resp.status_code, resp.text) == (
        404, f"Project with ID 'pone' is not assigned to user with id '{uid}' and so it can not be removed from the user.")
    # a user with role tester cannot even renew (Q-A4)
    tester = Api(admin.server).login(uid, "password1")
    assert tester.call("PUT", "v1/token", {"project_id": "ptwo"}).text == "Access denied by policy"
    assert admin.ok("DELETE", "v1/user", query=f"id={uid}") == {}
    for method, path, query in [("GET", "v1/user", f"id={uid}"), ("DELETE", "v1/user", f"id={uid}"),
                                ("GET", "v1/user/project", f"user_id={uid}"),
                                ("DELETE", "v1/user/project", f"id={uid}&project_id=ptwo")]:
        resp = admin.call(method, path, query=query)
        assert (resp.status_code, resp.text) == (404, f"User with id '{uid}' not found"), path
    resp = admin.call("POST", "v1/user/project", {"id": uid, "project_id": "pone", "role": "member",
                                                  "is_project_admin": False})
    assert (resp.status_code, resp.text) == (404, f"User with id '{uid}' not found")


def test_admin_cannot_delete_himself(admin: Api):
    resp = admin.call("DELETE", "v1/user", query="id=asdf")
    assert (resp.status_code, resp.text) == (409, "User with id 'asdf' tries to delete himself, which is not allowed.")


def test_boolean_looking_names_break_the_output_check(admin: Api):
    # stored text "True" comes back as a boolean (§1.8, Q-G4) -> 500 for GET v1/project
    pid = unique("boolproj")
    resp = admin.call("POST", "v1/project", {"id": pid, "name": "True"})
    assert (resp.status_code, resp.text) == (500, "")
    assert admin.call("GET", "v1/project", query=f"id={pid}").status_code == 500
    assert [pid, True, "asdf"] in admin.ok("GET", "v1/project/all")["body"]
