"""A dataset deleted while tasks that read it are queued: they run to the end all the same. Hanami
copies a dataset's data into the task when the task is created (§4.23), so the console lets the
delete through and says so. Checked on both backends; the tasks are held in the queue by the
cluster's DIRECT mode (§7.1), so no timing is involved."""

from __future__ import annotations

import contextlib

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, declare_template, login, wait_for
from tests.console.effects import BackendCalls, audit_rows
from tests.console.test_tasks import ROW, create, unique
from webconsole.hanami.errors import Conflict
from webconsole.protocol.template import EXAMPLE_MNIST_TEMPLATE


async def test_tasks_queued_on_a_deleted_dataset_still_run(app_client, hanami, demo_files) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    name = unique("read digits")
    dataset = await hanami.upload_mnist(name, demo_files.small_images, demo_files.small_labels)
    cluster = (await hanami.create_cluster(unique("reader"), EXAMPLE_MNIST_TEMPLATE))["uuid"]
    await declare_template(app_client, cluster, EXAMPLE_MNIST_TEMPLATE)
    request_uuid = ""
    try:
        await hanami.set_mode(cluster, "DIRECT")  # the tasks wait
        for kind, repeat in (("train", "2"), ("request", "1")):
            queued = await create(app_client, csrf, name=f"reads {kind}", type=kind, cluster_uuid=cluster,
                                  dataset_uuid=dataset, repeat=repeat)
            assert queued.status_code == 303
        tasks = ROW.findall((await app_client.get(f"/clusters/{cluster}/tasks")).text)
        assert [state for _, state in tasks] == ["queued"] * 3
        request_uuid = tasks[-1][0]

        confirm = await app_client.get(f"/datasets/{dataset}/delete")
        assert confirm.status_code == 200 and "Tasks already queued or running keep their own copy" in confirm.text
        calls = BackendCalls(app_client.app)  # type: ignore[attr-defined]
        deleted = await app_client.post(f"/datasets/{dataset}/delete", data={"csrf_token": csrf})
        assert deleted.status_code == 303 and calls.count("DELETE v1/dataset") == 1
        calls.stop()
        assert dataset not in {row["uuid"] for row in (await hanami.list_datasets()).records()}
        audited = await audit_rows(app_client.app, ADMIN_ID, "dataset delete")  # type: ignore[attr-defined]
        assert any(dataset in entry.detail for entry in audited)

        await hanami.set_mode(cluster, "TASK")

        async def finished() -> list[dict] | None:
            rows = (await hanami.list_tasks(cluster)).records()
            return rows if all(row["state"] == "finished" for row in rows) else None

        rows = await wait_for(finished, timeout=60, interval=0.1)
        assert len(rows) == 3 and {row["percentage"] for row in rows} == {"1.000000"}  # every cycle ran
        assert request_uuid in {row["uuid"] for row in (await hanami.list_results()).records()}
        page = await app_client.get(f"/results/{request_uuid}")
        assert page.status_code == 200 and "result-chart-data" in page.text
        await hanami.auth()  # the backend is alive
    finally:
        with contextlib.suppress(Conflict):  # in TASK mode already
            await hanami.set_mode(cluster, "TASK")
        if request_uuid:
            async def done() -> bool:
                return all(row["state"] == "finished" for row in (await hanami.list_tasks(cluster)).records())

            await wait_for(done, timeout=60)
        await hanami.delete_cluster(cluster)
        if request_uuid in {row["uuid"] for row in (await hanami.list_results()).records()}:
            await hanami.delete_result(request_uuid)
        if dataset in {row["uuid"] for row in (await hanami.list_datasets()).records()}:
            await hanami.delete_dataset(dataset)
