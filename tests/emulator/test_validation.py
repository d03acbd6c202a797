"""Table-driven checks of the §1.5 validation messages and Appendix A field specs."""

from __future__ import annotations

import pytest

from webconsole.emulator import fields

from tests.emulator.emu_helpers import Api

U = "d94f2b53-f404-4215-9a33-63c4a03e3202"

CASES = [
    # (method, path, body, query, expected message)
    ("POST", "v1/project", {"id": "abcd", "name": "Name", "zzz": 1, "aaa": 2}, "",
     "Validation failed, because item 'aaa' is not in the list of allowed keys"),
    ("POST", "v1/user", {"name": "Name"}, "",
     "Validation failed, because variable 'id' is required, but is not set."),
    # declared default, still required (Q-U2)
    ("POST", "v1/user", {"id": "abcd", "name": "Name", "password": "12345678"}, "",
     "Validation failed, because variable 'is_admin' is required, but is not set."),
    ("POST", "v1/user", {"id": "abcd", "name": "Name", "password": "12345678", "is_admin": 1}, "",
     "Value-validation failed, because a item 'is_admin'  has the false type: Exprect bool-type."),
    ("POST", "v1/mnist/dataset", {"name": "Name", "input_data_size": 1.0, "label_data_size": 1}, "",
     "Value-validation failed, because a item 'input_data_size'  has the false type: Exprect int-type."),
    ("POST", "v1/project", {"id": 5, "name": "Name"}, "",
     "Value-validation failed, because a item 'id'  has the false type: Exprect string-type."),
    ("PUT", "v1/cluster/set_mode", {"uuid": U, "new_state": "task"}, "",
     "Given item 'new_state' doesn't match with regex \"^^(TASK|DIRECT)$$\""),
    ("POST", "v1/task", {"name": "Name", "type": "TRAIN", "cluster_uuid": U, "dataset_uuid": U}, "",
     "Given item 'type' doesn't match with regex \"^^(train|request)$$\""),
    ("GET", "v1/cluster", None, "uuid=D94F2B53-F404-4215-9A33-63C4A03E320",
     "Given item 'uuid' doesn't match with regex \"^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-"
     "[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$\""),
    ("POST", "v1/project", {"id": "abc", "name": "Name"}, "",
     "Given item 'id' is shorter than 4 characters"),
    ("POST", "v1/project", {"id": "a" * 257, "name": "Name"}, "",
     "Given item 'id' is longer than 256 characters"),
    # regex is checked before the length
    ("POST", "v1/project", {"id": "1ab", "name": "Name"}, "",
     "Given item 'id' doesn't match with regex \"^[a-zA-Z][a-zA-Z_0-9]*$\""),
    ("POST", "v1/user", {"id": "abcd", "name": "Name", "password": "short", "is_admin": False}, "",
     "Given item 'password' is shorter than 8 characters"),
    ("POST", "v1/mnist/dataset", {"name": "Name", "input_data_size": 0, "label_data_size": 1}, "",
     "Given item 'input_data_size' is smaller than 1"),
    ("POST", "v1/csv/dataset", {"name": "Name", "input_data_size": 10_000_000_001}, "",
     "Given item 'input_data_size' is bigger than 10000000000"),
    ("GET", "v1/audit_log", None, "page=-1", "Given item 'page' is smaller than 0"),
    ("GET", "v1/auth", None, "endpoint=v1/a-b", "Given item 'endpoint' doesn't match with regex "
     "\"^[a-zA-Z][a-zA-Z_/0-9]*$\""),
    ("GET", "v1/auth", None, "http_type=6", "Given item 'http_type' is bigger than 5"),
    ("GET", "v1/user/project", None, "",
     "Validation failed, because variable 'user_id' is required, but is not set."),
    # Python SDK switch_project bug (Q-S1)
    ("POST", "v1/user/project", {"project_id": "abcd"}, "",
     "Validation failed, because variable 'id' is required, but is not set."),
    # names may contain spaces, ids may not
    ("POST", "v1/project", {"id": "ab cd", "name": "Name"}, "",
     "Given item 'id' doesn't match with regex \"^[a-zA-Z][a-zA-Z_0-9]*$\""),
    ("POST", "v1/task", {"name": "Name", "type": "train", "cluster_uuid": U, "dataset_uuid": U,
                         "number_of_cycles": 5}, "",
     "Validation failed, because item 'number_of_cycles' is not in the list of allowed keys"),
    # the endpoint id itself is validated by the internal v1/auth call (step 6)
    ("GET", "v1/clu-ster", None, "",
     "Given item 'endpoint' doesn't match with regex \"^[a-zA-Z][a-zA-Z_/0-9]*$\""),
    ("GET", "v1/", None, "", "Given item 'endpoint' is shorter than 4 characters"),
    # multibyte: strings count bytes
    ("POST", "v1/user", {"id": "abcd", "name": "Name", "password": "\u00e4\u00e4\u00e4", "is_admin": False}, "",
     "Given item 'password' is shorter than 8 characters"),
]


@pytest.mark.parametrize("method,path,body,query,message", CASES)
def test_validation_messages(admin: Api, method, path, body, query, message):
    resp = admin.call(method, path, body, query)
    assert (resp.status_code, resp.text) == (400, message)
    assert resp.headers["content-type"] == "text/plain"


def test_multibyte_password_counts_bytes(admin: Api):
    body = {"id": "bytesuser", "name": "Bytes", "password": "\u00e4\u00e4\u00e4\u00e4", "is_admin": False}
    assert admin.call("POST", "v1/user", body).status_code == 200  # 4 characters, 8 bytes


def test_every_spec_row_is_well_formed():
    types = {"int", "float", "bool", "string", "array", "map"}
    for method, endpoint, name, typ, required, regex, limits in fields.FIELDS:
        assert method in {"GET", "POST", "PUT", "DELETE"}
        assert typ in types and isinstance(required, bool)
        assert limits is None or limits[0] <= limits[1]
    # every declared endpoint has an implementation
    from webconsole.emulator.core import ROUTES
    from webconsole.emulator import endpoints  # noqa: F401

    for method, endpoint, *_ in fields.FIELDS:
        assert (method, endpoint) in ROUTES, (method, endpoint)
    assert len(ROUTES) == 49


def test_validation_runs_before_hard_admin_check(member: Api):
    # a malformed request from a non-admin still gets the 400 (§2.6)
    resp = member.call("POST", "v1/user/project", {"project_id": "abcd"})
    assert resp.status_code == 400
    resp = member.call("POST", "v1/user/project", {"id": "abcd", "project_id": "abcd", "role": "member",
                                                   "is_project_admin": False})
    assert (resp.status_code, resp.text) == (401, "")
