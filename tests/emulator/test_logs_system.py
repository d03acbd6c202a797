"""Audit/error logs (§4.43, §4.44), measurements, system info and threading (§4.45-4.49)."""

from __future__ import annotations

import base64
import re

from tests.emulator.emu_helpers import ADMIN, Api, make_config, unique, wait_for

from webconsole.emulator import EmulatorServer

LOCAL_TS = re.compile(r"^\d{4}-([1-9]|1[0-2])-([1-9]|[12]\d|3[01]) ([0-9]|1\d|2[0-3]):([0-9]|[1-5]\d):([0-9]|[1-5]\d)$")


def test_audit_log(member: Api):
    member.ok("PUT", "v1/token", {"project_id": member.project_id})
    member.call("POST", "v1/cluster", {"name": "x"})  # 400 (missing template) - still audited
    member.ok("GET", "v1/cluster/all")  # GETs are never audited
    log = member.ok("GET", "v1/audit_log", query="page=0&user_id=asdf")  # user_id ignored (Q-L1)
    assert log["header"] == ["timestamp", "user_id", "endpoint", "request_type"]
    assert [row[1:] for row in log["body"]] == [[member.user_id, "v1/token", "PUT"],
                                               [member.user_id, "v1/cluster", "POST"]]
    assert all(LOCAL_TS.match(row[0]) for row in log["body"])


def test_log_paging_bound_covers_whole_table(tmp_path):
    with EmulatorServer(make_config(tmp_path)) as server:
        admin = Api(server).login(*ADMIN)
        for i in range(105):
            admin.ok("POST", "v1/project", {"id": f"paged{i}", "name": "Paged"})
        assert len(admin.ok("GET", "v1/audit_log", query="page=0")["body"]) == 100
        assert len(admin.ok("GET", "v1/audit_log", query="page=1")["body"]) == 5
        assert admin.ok("GET", "v1/audit_log", query="page=2")["body"] == []  # floor(105/100)+1
        resp = admin.call("GET", "v1/audit_log", query="page=3")
        assert (resp.status_code, resp.text) == (500, "")


def test_error_log(admin: Api):
    pid = unique("errproj")
    admin.call("POST", "v1/project", {"id": pid, "name": "False"})  # output check fails -> 500
    admin.call("POST", "v1/user", {"id": unique("erruser"), "name": "true", "password": "secret-pw",
                                   "is_admin": False})
    log = admin.ok("GET", "v1/error_log", query="page=0&user_id=asdf")
    assert log["header"] == ["timestamp", "user_id", "component", "context", "input_values", "message"]
    rows = [row for row in log["body"] if isinstance(row[4], dict) and row[4].get("id", "").startswith(("errproj", "erruser"))]
    assert len(rows) >= 2
    project_row = next(r for r in rows if r[4]["id"] == pid)
    assert project_row[1:5] == ["asdf", "", "", {"id": pid, "name": "False"}]
    assert LOCAL_TS.match(project_row[0])
    assert "Error-Message Nr. 0" in base64.b64decode(project_row[5]).decode()
    user_row = next(r for r in rows if r[4]["id"].startswith("erruser"))
    assert "password" not in user_row[4] and "token" not in user_row[4]
    # without user_id: only entries logged without a user (Q-L2)
    assert all(row[1] == "" for row in admin.ok("GET", "v1/error_log", query="page=0")["body"])


def test_measurements_shapes_and_sampling(tmp_path):
    with EmulatorServer(make_config(tmp_path, measurement_interval=0.005)) as server:
        admin = Api(server).login(*ADMIN)
        for path, key in [("v1/power_consumption", "power"), ("v1/speed", "current_speed"),
                          ("v1/temperature_production", "temperature")]:
            body = admin.ok("GET", path)
            assert list(body) == [key]
            assert {k: len(v) for k, v in body[key].items()} == {"days": 365, "hours": 24, "minutes": 60,
                                                                  "seconds": 60}
            assert all(isinstance(v, float) for v in body[key]["seconds"])
        # after more than 60 samples a mean has been pushed into the minutes (newest last)
        if _has_cpu_mhz():
            wait_for(lambda: admin.ok("GET", "v1/speed")["current_speed"]["minutes"][-1] > 0, 10)


def _has_cpu_mhz() -> bool:
    from webconsole.emulator.measurements import cpu_speed_mhz

    return cpu_speed_mhz() > 0


def test_system_info_and_threading(tmp_path, admin: Api):
    info = admin.ok("GET", "v1/system_info")["info"]
    assert sorted(info) == ["has_hyperthreading", "hostname", "packages"]
    core = info["packages"][0]["cores"][0]
    assert sorted(core) == ["current_maximum_speed", "current_minimum_speed", "current_speed", "id",
                            "maximum_speed", "minimum_speed", "threads"]
    assert all(isinstance(core[k], int) for k in core if k.endswith("speed"))
    assert isinstance(info["packages"][0]["power"], float)
    thread_map = admin.ok("GET", "v1/threading")["thread_map"]
    assert {"HttpServer", "ProcessingUnit", "WorkerThread"} <= set(thread_map)
    # Q-L6: 500 during the first seconds after start
    with EmulatorServer(make_config(tmp_path, threading_delay=30.0)) as server:
        resp = Api(server).login(*ADMIN).call("GET", "v1/threading")
        assert (resp.status_code, resp.text) == (500, "")
