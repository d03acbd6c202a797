"""What survives a restart (§7.5): users, projects, datasets, checkpoints, results, logs; not clusters."""

from __future__ import annotations

from tests.emulator.emu_helpers import ADMIN, Api, make_config

from webconsole.emulator import EmulatorServer
from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE

CSV = b"test_input,test_output\n" + b"".join(f"{i / 20:.2f},{1 - i / 20:.2f}\n".encode() for i in range(20))


def test_state_survives_restart(tmp_path):
    with EmulatorServer(make_config(tmp_path)) as server:
        admin = Api(server).login(*ADMIN)
        admin.ok("POST", "v1/project", {"id": "keptproj", "name": "Kept"})
        admin.ok("POST", "v1/user", {"id": "keptuser", "name": "Kept User", "password": "password1", "is_admin": False})
        dataset = admin.upload_csv("kept csv", CSV)
        cluster = admin.create_cluster("kept cluster", EXAMPLE_CSV_TEMPLATE)
        request = admin.ok("POST", "v1/task", {"name": "kept request", "type": "request", "cluster_uuid": cluster,
                                               "dataset_uuid": dataset})["uuid"]
        admin.wait_task(cluster, request)
        checkpoint = admin.ok("POST", "v1/cluster/save", {"name": "kept checkpoint", "cluster_uuid": cluster})["uuid"]
        admin.wait_task(cluster, checkpoint)
        old_hosts = admin.ok("GET", "v1/host/all")["body"]
        audit = admin.ok("GET", "v1/audit_log", query="page=0")["body"]
        data = admin.ok("GET", "v1/request_result", query=f"uuid={request}")["data"]

    # a restart needs no admin settings any more: the admin exists
    with EmulatorServer(make_config(tmp_path, admin_id=None, admin_name=None, admin_password=None)) as server:
        admin = Api(server).login(*ADMIN)  # an old token would also still be valid (same key)
        assert admin.ok("GET", "v1/project", query="id=keptproj")["name"] == "Kept"
        assert admin.ok("GET", "v1/user", query="id=keptuser")["name"] == "Kept User"
        assert admin.ok("GET", "v1/dataset", query=f"uuid={dataset}")["lines"] == 20
        assert admin.ok("GET", "v1/checkpoint", query=f"uuid={checkpoint}")["name"] == "kept checkpoint"
        assert admin.ok("GET", "v1/request_result", query=f"uuid={request}")["data"] == data
        assert admin.ok("GET", "v1/audit_log", query="page=0")["body"][: len(audit)] == audit
        assert admin.ok("GET", "v1/cluster/all")["body"] == []  # cluster rows wiped (Q-T7)
        assert admin.call("GET", "v1/cluster", query=f"uuid={cluster}").status_code == 404
        assert admin.ok("GET", "v1/host/all")["body"] != old_hosts  # host uuids regenerated
        # the checkpoint restores into a new cluster of the same shape
        fresh = admin.create_cluster("kept cluster", EXAMPLE_CSV_TEMPLATE)
        load = admin.ok("POST", "v1/cluster/load", {"cluster_uuid": fresh, "checkpoint_uuid": checkpoint})["uuid"]
        admin.wait_task(fresh, load)
        again = admin.ok("POST", "v1/task", {"name": "again", "type": "request", "cluster_uuid": fresh,
                                             "dataset_uuid": dataset})["uuid"]
        admin.wait_task(fresh, again)
        assert admin.ok("GET", "v1/request_result", query=f"uuid={again}")["data"] == data
