"""Per-endpoint input field specs (Appendix A) kept as data, and the §1.5 validator.

Each row of FIELDS is (method, endpoint, field, type, required, regex, (min, max)).
``required`` is True for fields the backend declares required - which includes the fields
declared with a default (Q-U2); DEFAULTS lists the defaults applied after the completeness check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

UUID = r"[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}"
ID = r"[a-zA-Z][a-zA-Z_0-9]*"
ID_EXT = r"[a-zA-Z][a-zA-Z_0-9@]*"
NAME = r"[a-zA-Z][a-zA-Z_0-9 ]*"
TOKEN = r"[a-zA-Z_.\-0-9]*"
ENDPOINT = r"[a-zA-Z][a-zA-Z_/0-9]*"
L_NAME = (4, 256)
L_PW = (8, 4096)
L_SIZE = (1, 10_000_000_000)
L_PAGE = (0, 1_000_000_000)

REQ, OPT = True, False

# (method, endpoint, field, type, required, regex, limits)
FIELDS: list[tuple[str, str, str, str, bool, str | None, tuple[int, int] | None]] = [
    ("POST", "v1/token", "id", "string", REQ, ID_EXT, L_NAME),
    ("POST", "v1/token", "password", "string", REQ, None, L_PW),
    ("PUT", "v1/token", "project_id", "string", REQ, ID, L_NAME),
    ("GET", "v1/auth", "token", "string", REQ, TOKEN, None),
    ("GET", "v1/auth", "endpoint", "string", OPT, ENDPOINT, L_NAME),
    ("GET", "v1/auth", "http_type", "int", OPT, None, (1, 5)),
    ("POST", "v1/user", "id", "string", REQ, ID_EXT, L_NAME),
    ("POST", "v1/user", "name", "string", REQ, NAME, L_NAME),
    ("POST", "v1/user", "password", "string", REQ, None, L_PW),
    ("POST", "v1/user", "is_admin", "bool", REQ, None, None),
    ("GET", "v1/user", "id", "string", REQ, ID_EXT, L_NAME),
    ("DELETE", "v1/user", "id", "string", REQ, ID_EXT, L_NAME),
    ("POST", "v1/user/project", "id", "string", REQ, ID_EXT, L_NAME),
    ("POST", "v1/user/project", "project_id", "string", REQ, ID, L_NAME),
    ("POST", "v1/user/project", "role", "string", REQ, ID, L_NAME),
    ("POST", "v1/user/project", "is_project_admin", "bool", REQ, None, None),
    ("DELETE", "v1/user/project", "id", "string", REQ, ID_EXT, L_NAME),
    ("DELETE", "v1/user/project", "project_id", "string", REQ, ID, L_NAME),
    ("GET", "v1/user/project", "user_id", "string", REQ, ID_EXT, L_NAME),
    ("POST", "v1/project", "id", "string", REQ, ID, L_NAME),
    ("POST", "v1/project", "name", "string", REQ, NAME, L_NAME),
    ("GET", "v1/project", "id", "string", REQ, ID, L_NAME),
    ("DELETE", "v1/project", "id", "string", REQ, ID, L_NAME),
    ("POST", "v1/cluster", "name", "string", REQ, NAME, L_NAME),
    ("POST", "v1/cluster", "template", "string", OPT, None, None),
    ("GET", "v1/cluster", "uuid", "string", REQ, UUID, None),
    ("DELETE", "v1/cluster", "uuid", "string", REQ, UUID, None),
    ("POST", "v1/cluster/save", "name", "string", REQ, NAME, L_NAME),
    ("POST", "v1/cluster/save", "cluster_uuid", "string", REQ, UUID, None),
    ("POST", "v1/cluster/load", "cluster_uuid", "string", REQ, UUID, None),
    ("POST", "v1/cluster/load", "checkpoint_uuid", "string", REQ, UUID, None),
    ("PUT", "v1/cluster/set_mode", "uuid", "string", REQ, UUID, None),
    ("PUT", "v1/cluster/set_mode", "new_state", "string", REQ, r"^(TASK|DIRECT)$", None),
    ("PUT", "v1/cluster/set_mode", "connection_uuid", "string", OPT, UUID, None),
    ("PUT", "v1/cluster/switch_host", "cluster_uuid", "string", REQ, UUID, None),
    ("PUT", "v1/cluster/switch_host", "host_uuid", "string", REQ, UUID, None),
    ("POST", "v1/task", "name", "string", REQ, NAME, L_NAME),
    ("POST", "v1/task", "type", "string", REQ, r"^(train|request)$", None),
    ("POST", "v1/task", "cluster_uuid", "string", REQ, UUID, None),
    ("POST", "v1/task", "dataset_uuid", "string", REQ, UUID, None),
    ("GET", "v1/task", "uuid", "string", REQ, UUID, None),
    ("GET", "v1/task", "cluster_uuid", "string", REQ, UUID, None),
    ("DELETE", "v1/task", "uuid", "string", REQ, UUID, None),
    ("DELETE", "v1/task", "cluster_uuid", "string", REQ, UUID, None),
    ("GET", "v1/task/all", "cluster_uuid", "string", REQ, UUID, None),
    ("POST", "v1/mnist/dataset", "name", "string", REQ, NAME, L_NAME),
    ("POST", "v1/mnist/dataset", "input_data_size", "int", REQ, None, L_SIZE),
    ("POST", "v1/mnist/dataset", "label_data_size", "int", REQ, None, L_SIZE),
    ("PUT", "v1/mnist/dataset", "uuid", "string", REQ, UUID, None),
    ("PUT", "v1/mnist/dataset", "uuid_input_file", "string", REQ, UUID, None),
    ("PUT", "v1/mnist/dataset", "uuid_label_file", "string", REQ, UUID, None),
    ("POST", "v1/csv/dataset", "name", "string", REQ, NAME, L_NAME),
    ("POST", "v1/csv/dataset", "input_data_size", "int", REQ, None, L_SIZE),
    ("PUT", "v1/csv/dataset", "uuid", "string", REQ, UUID, None),
    ("PUT", "v1/csv/dataset", "uuid_input_file", "string", REQ, UUID, None),
    ("GET", "v1/dataset", "uuid", "string", REQ, UUID, None),
    ("DELETE", "v1/dataset", "uuid", "string", REQ, UUID, None),
    ("GET", "v1/dataset/progress", "uuid", "string", REQ, UUID, None),
    ("POST", "v1/dataset/check", "result_uuid", "string", REQ, UUID, None),
    ("POST", "v1/dataset/check", "dataset_uuid", "string", REQ, UUID, None),
    ("GET", "v1/checkpoint", "uuid", "string", REQ, UUID, None),
    ("DELETE", "v1/checkpoint", "uuid", "string", REQ, UUID, None),
    ("GET", "v1/request_result", "uuid", "string", REQ, UUID, None),
    ("DELETE", "v1/request_result", "uuid", "string", REQ, UUID, None),
    ("GET", "v1/audit_log", "page", "int", REQ, None, L_PAGE),
    ("GET", "v1/audit_log", "user_id", "string", OPT, ID_EXT, L_NAME),
    ("GET", "v1/error_log", "page", "int", REQ, None, L_PAGE),
    ("GET", "v1/error_log", "user_id", "string", OPT, ID_EXT, L_NAME),
]

# defaults applied after the completeness check (step 10 of §1.4)
DEFAULTS: dict[tuple[str, str, str], Any] = {
    ("GET", "v1/auth", "http_type"): 2,
    ("POST", "v1/user", "is_admin"): False,
    ("POST", "v1/user/project", "is_project_admin"): False,
}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    required: bool
    regex: str | None
    limits: tuple[int, int] | None


def _index() -> dict[tuple[str, str], dict[str, FieldSpec]]:
    out: dict[tuple[str, str], dict[str, FieldSpec]] = {}
    for method, endpoint, name, typ, req, regex, limits in FIELDS:
        out.setdefault((method, endpoint), {})[name] = FieldSpec(name, typ, req, regex, limits)
    return out


SPECS = _index()

# the internal GET v1/auth call of step 6 validates these two fields
TOKEN_CHECK_SPECS = {
    "endpoint": FieldSpec("endpoint", "string", True, ENDPOINT, L_NAME),
    "token": SPECS[("GET", "v1/auth")]["token"],
}


def _type_ok(value: Any, typ: str) -> bool:
    if typ == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if typ == "float":
        return isinstance(value, float)
    if typ == "bool":
        return isinstance(value, bool)
    if typ == "string":
        return isinstance(value, str)
    if typ == "array":
        return isinstance(value, list)
    if typ == "map":
        return isinstance(value, dict)
    raise ValueError(typ)


def check_values(values: dict[str, Any], specs: dict[str, FieldSpec]) -> str | None:
    """Type -> regex -> limits, alphabetical by field name. Returns the message or None."""
    for name in sorted(specs):
        if name not in values:
            continue
        spec, value = specs[name], values[name]
        if not _type_ok(value, spec.type):
            return (
                f"Value-validation failed, because a item '{name}'  has the false type: "
                f"Exprect {spec.type}-type."
            )
        if spec.regex is not None and isinstance(value, str):
            pattern = f"^{spec.regex}$"
            if re.fullmatch(pattern, value) is None:
                return f"Given item '{name}' doesn't match with regex \"{pattern}\""
        if spec.limits is not None:
            low, high = spec.limits
            if spec.type == "string":
                size = len(value.encode())
                if size < low:
                    return f"Given item '{name}' is shorter than {low} characters"
                if size > high:
                    return f"Given item '{name}' is longer than {high} characters"
            elif spec.type == "int":
                if value < low:
                    return f"Given item '{name}' is smaller than {low}"
                if value > high:
                    return f"Given item '{name}' is bigger than {high}"
    return None


def validate(method: str, endpoint: str, values: dict[str, Any]) -> str | None:
    """Steps 9 and 10 of §1.4 (defaults are filled into ``values``). Returns the 400 message."""
    specs = SPECS.get((method, endpoint), {})
    for key in sorted(values):
        if key not in specs:
            return f"Validation failed, because item '{key}' is not in the list of allowed keys"
    for name in sorted(specs):
        if specs[name].required and name not in values:
            return f"Validation failed, because variable '{name}' is required, but is not set."
    for (m, e, name), default in DEFAULTS.items():
        if (m, e) == (method, endpoint) and name not in values:
            values[name] = default
    return check_values(values, specs)


# Output check of step 12: declared output fields and types (objects only; tables are built
# from fixed headers). A missing field or a wrongly typed field turns the 200 into a 500.
_USER = {"creator_id": "string", "id": "string", "is_admin": "bool", "name": "string", "projects": "array"}
_PROJECT = {"creator_id": "string", "id": "string", "name": "string"}
_RESOURCE = {"name": "string", "owner_id": "string", "project_id": "string", "uuid": "string",
             "visibility": "string"}
_TOKEN = {"id": "string", "is_admin": "bool", "name": "string", "token": "string"}
OUTPUTS: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "v1/token"): _TOKEN,
    ("PUT", "v1/token"): _TOKEN,
    ("GET", "v1/auth"): {"id": "string", "is_admin": "bool", "is_project_admin": "bool",
                         "name": "string", "project_id": "string", "role": "string"},
    ("POST", "v1/user"): _USER,
    ("GET", "v1/user"): _USER,
    ("POST", "v1/user/project"): _USER,
    ("DELETE", "v1/user/project"): _USER,
    ("GET", "v1/user/project"): {"projects": "array"},
    ("POST", "v1/project"): _PROJECT,
    ("GET", "v1/project"): _PROJECT,
    ("POST", "v1/cluster"): _RESOURCE,
    ("GET", "v1/cluster"): _RESOURCE,
    ("PUT", "v1/cluster/switch_host"): _RESOURCE,
    ("POST", "v1/cluster/save"): {"name": "string", "uuid": "string"},
    ("POST", "v1/cluster/load"): {"uuid": "string"},
    ("PUT", "v1/cluster/set_mode"): {"name": "string", "new_state": "string", "uuid": "string"},
    ("POST", "v1/task"): {"name": "string", "uuid": "string"},
    ("GET", "v1/task"): {"end_timestamp": "string", "percentage_finished": "float",
                         "queue_timestamp": "string", "start_timestamp": "string", "state": "string"},
    ("GET", "v1/dataset"): {"inputs": "int", "lines": "int", "location": "string", **_RESOURCE,
                            "outputs": "int", "type": "string"},
    ("GET", "v1/dataset/progress"): {"complete": "bool", "uuid": "string"},
    ("GET", "v1/checkpoint"): {"location": "string", "name": "string", "uuid": "string"},
    ("GET", "v1/request_result"): {**_RESOURCE, "data": "array"},
}


def output_ok(method: str, endpoint: str, body: dict[str, Any]) -> bool:
    spec = OUTPUTS.get((method, endpoint))
    if spec is None:
        return True
    return all(k in body and _type_ok(body[k], t) for k, t in spec.items())
