"""A cluster with tasks that have not finished is not deleted (a real Hanami has crashed when one was
deleted under its tasks): the confirmation page says why, the delete is refused before Hanami sees
it, and once the tasks have finished the same delete goes through. The task is held in the queue by
the cluster's DIRECT mode (§7.1), so no timing is involved."""

from __future__ import annotations

import re

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, declare_template, login, wait_for
from tests.console import test_tasks
from tests.console.effects import BackendCalls, audit_rows
from tests.console.test_tasks import HX, ROW, create, unique
from webconsole.protocol.template import EXAMPLE_MNIST_TEMPLATE

# the task tests' small dataset (the admin's API, hanami, comes from conftest)
small_set = test_tasks.small_set


async def test_a_cluster_is_deleted_only_once_its_tasks_have_finished(app_client, hanami, small_set) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    name = unique("guarded cluster")
    uuid = (await hanami.create_cluster(name, EXAMPLE_MNIST_TEMPLATE))["uuid"]
    await declare_template(app_client, uuid, EXAMPLE_MNIST_TEMPLATE)
    await hanami.set_mode(uuid, "DIRECT")  # tasks created in DIRECT mode wait
    held = await create(app_client, csrf, name="held request", type="request", cluster_uuid=uuid,
                        dataset_uuid=small_set)
    assert held.status_code == 303
    assert [state for _, state in ROW.findall((await app_client.get(f"/clusters/{uuid}/tasks", headers=HX)).text)] \
        == ["queued"]

    confirm = await app_client.get(f"/clusters/{uuid}/delete")
    assert confirm.status_code == 200 and 'data-testid="cluster-busy"' in confirm.text
    assert re.search(r"cannot be deleted yet: it has\s+1 queued task\.", confirm.text)
    assert f'href="/clusters/{uuid}/tasks"' in confirm.text
    assert 'class="button-danger"' not in confirm.text  # no delete button to press

    calls = BackendCalls(app_client.app)  # type: ignore[attr-defined]
    refused = await app_client.post(f"/clusters/{uuid}/delete", data={"csrf_token": csrf})
    assert refused.status_code == 409 and 'data-testid="cluster-busy"' in refused.text
    assert calls.count("DELETE v1/cluster") == 0
    assert uuid in {row["uuid"] for row in (await hanami.list_clusters()).records()}
    audited = await audit_rows(app_client.app, ADMIN_ID, "delete cluster")  # type: ignore[attr-defined]
    assert not any(uuid in entry.detail for entry in audited)

    await hanami.set_mode(uuid, "TASK")

    async def finished() -> bool:
        return all(row["state"] == "finished" for row in (await hanami.list_tasks(uuid)).records())

    await wait_for(finished, timeout=60, interval=0.1)
    assert 'class="button-danger"' in (await app_client.get(f"/clusters/{uuid}/delete")).text
    deleted = await app_client.post(f"/clusters/{uuid}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303 and calls.count("DELETE v1/cluster") == 1
    assert uuid not in {row["uuid"] for row in (await hanami.list_clusters()).records()}
    audited = await audit_rows(app_client.app, ADMIN_ID, "delete cluster")  # type: ignore[attr-defined]
    assert any(uuid in entry.detail for entry in audited)
    calls.stop()
