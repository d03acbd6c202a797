"""The task and result pages against the emulator in ``faithful`` mode, where Hanami's crash cases drop
the connection as the real backend does, and against the real server, where they end the process:
the console's flow must never hit one of them."""

from __future__ import annotations

import contextlib

import re
import secrets
import uuid as uuidlib
from typing import AsyncIterator

import httpx
import pytest

from tests.conftest import (
    ADMIN_ID,
    ADMIN_PASSWORD,
    CRASH_BACKENDS,
    Backend,
    console_settings,
    faithful_or_real,
    login,
    wait_for,
    declare_template,
)
from webconsole.app import create_app
from webconsole.hanami.client import HanamiClient
from webconsole.hanami.errors import Conflict
from webconsole.protocol.template import EXAMPLE_MNIST_TEMPLATE

ROW = re.compile(r'<tr data-task="([0-9a-f-]{36})" data-state="(\w+)">')
POLL = {"HX-Request": "true", "X-Console-Poll": "1"}


@pytest.fixture(scope="module", params=CRASH_BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return faithful_or_real(request)


@pytest.fixture
async def faithful_client(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(console_settings(backend.url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            yield client


async def test_workflow_never_triggers_a_backend_crash(faithful_client, backend: Backend, demo_files) -> None:
    tag = secrets.token_hex(3)
    async with HanamiClient(backend.url) as hanami:
        api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
        dataset = await api.upload_mnist(f"faithful digits {tag}", demo_files.small_images, demo_files.small_labels)
        cluster = (await api.create_cluster(f"faithful {tag}", EXAMPLE_MNIST_TEMPLATE))["uuid"]
        try:
            csrf = await login(faithful_client, ADMIN_ID, ADMIN_PASSWORD)
            await declare_template(faithful_client, cluster, EXAMPLE_MNIST_TEMPLATE)
            base = f"/clusters/{cluster}/tasks"
            # An unlisted dataset uuid would kill the real backend (Q-C2): refused by the console.
            refused = await faithful_client.post("/tasks/new", data={
                "csrf_token": csrf, "name": "never sent", "type": "train", "cluster_uuid": cluster,
                "dataset_uuid": str(uuidlib.uuid4())})
            assert refused.status_code == 422
            await api.set_mode(cluster, "DIRECT")
            queued = await faithful_client.post("/tasks/new", data={
                "csrf_token": csrf, "name": "faithful train", "type": "train", "cluster_uuid": cluster,
                "dataset_uuid": dataset, "repeat": "3"})
            assert queued.status_code == 303
            (first, _), (second, _), (third, _) = ROW.findall((await faithful_client.get(base)).text)
            assert (await faithful_client.post(f"{base}/{second}/delete", data={"csrf_token": csrf})).status_code == 303
            assert (await faithful_client.get(f"{base}/{second}")).status_code == 404  # no GET task → no 500
            await api.set_mode(cluster, "TASK")
            request = await faithful_client.post("/tasks/new", data={
                "csrf_token": csrf, "name": "faithful request", "type": "request", "cluster_uuid": cluster,
                "dataset_uuid": dataset})
            assert request.status_code == 303

            async def idle() -> str | None:
                response = await faithful_client.get(base, headers=POLL)
                return response.text if response.status_code == 286 else None

            fragment = await wait_for(idle, timeout=60)
            states = ROW.findall(fragment)
            assert [uuid for uuid, _ in states][:2] == [first, third] and {s for _, s in states} == {"finished"}
            result = re.search(r'/results/([0-9a-f-]{36})"', fragment).group(1)  # type: ignore[union-attr]
            page = await faithful_client.get(f"/results/{result}")
            assert page.status_code == 200 and "result-chart-data" in page.text
            check = await faithful_client.post(f"/results/{result}/check", data={"csrf_token": csrf, "dataset_uuid": dataset})
            assert check.status_code == 200 and "Accuracy against" in check.text
            for uuid, _ in states:
                assert (await faithful_client.post(f"{base}/{uuid}/delete", data={"csrf_token": csrf})).status_code == 303
            assert ROW.findall((await faithful_client.get(base)).text) == []
            deleted = await faithful_client.post(f"/results/{result}/delete", data={"csrf_token": csrf})
            assert deleted.status_code == 303
            await api.auth()  # the backend is still alive
        finally:
            await api.delete_cluster(cluster)
            await api.delete_dataset(dataset)


async def test_a_queued_checkpoint_save_is_never_removed(faithful_client, backend: Backend, demo_files) -> None:
    """Removing a queued checkpoint save stalls a real Hanami's queue and then ends it (the faithful
    emulator drops the connection): the console offers no way to do it, refuses the POSTs without a
    call to Hanami, and removes the other queued tasks around it."""
    from tests.console.effects import BackendCalls

    tag = secrets.token_hex(3)
    async with HanamiClient(backend.url) as hanami:
        api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
        dataset = await api.upload_mnist(f"save digits {tag}", demo_files.small_images, demo_files.small_labels)
        cluster = (await api.create_cluster(f"queued save {tag}", EXAMPLE_MNIST_TEMPLATE))["uuid"]
        save_uuid = ""
        try:
            csrf = await login(faithful_client, ADMIN_ID, ADMIN_PASSWORD)
            await declare_template(faithful_client, cluster, EXAMPLE_MNIST_TEMPLATE)
            base = f"/clusters/{cluster}/tasks"
            await api.set_mode(cluster, "DIRECT")  # everything stays queued
            saved = await faithful_client.post(f"/clusters/{cluster}/save", data={
                "csrf_token": csrf, "checkpoint_name": f"queued point {tag}"})
            assert saved.status_code == 303
            queued = await faithful_client.post("/tasks/new", data={
                "csrf_token": csrf, "name": f"around {tag}", "type": "train", "cluster_uuid": cluster,
                "dataset_uuid": dataset, "repeat": "2"})
            assert queued.status_code == 303
            listing = await faithful_client.get(base)
            rows = ROW.findall(listing.text)
            assert [state for _, state in rows] == ["queued"] * 3
            save_uuid = rows[0][0]  # queued first
            row = listing.text.split(f'data-task="{save_uuid}"')[1].split("</tr>")[0]
            assert "runs in its turn" in row and "/delete" not in row
            assert 'data-testid="delete-queued"' in listing.text  # the two train tasks can go

            confirm = await faithful_client.get(f"{base}/{save_uuid}/delete")
            assert confirm.status_code == 200 and 'data-testid="task-kept"' in confirm.text
            assert 'class="button-danger"' not in confirm.text
            bulk = await faithful_client.get(f"/clusters/{cluster}/queue/delete")
            assert f'value="{save_uuid}"' not in bulk.text and 'data-testid="kept-in-queue"' in bulk.text
            assert len(re.findall(r'name="task_uuid"', bulk.text)) == 2

            calls = BackendCalls(faithful_client._transport.app)  # type: ignore[attr-defined]
            single = await faithful_client.post(f"{base}/{save_uuid}/delete", data={"csrf_token": csrf})
            assert single.status_code == 303 and calls.count("DELETE v1/task") == 0
            everything = [uuid for uuid, _ in rows]
            removed = await faithful_client.post(f"/clusters/{cluster}/queue/delete",
                                                 data={"csrf_token": csrf, "task_uuid": everything})
            assert removed.status_code == 303 and calls.count("DELETE v1/task") == 2
            calls.stop()
            left = (await api.list_tasks(cluster)).records()
            assert [(row["uuid"], row["state"]) for row in left] == [(save_uuid, "queued")]
            await api.auth()  # the backend is still alive

            await api.set_mode(cluster, "TASK")

            async def saved_point() -> bool:
                return any(row["uuid"] == save_uuid for row in (await api.list_checkpoints()).records())

            await wait_for(saved_point, timeout=60)
        finally:
            async def idle() -> bool:
                return all(row["state"] == "finished" for row in (await api.list_tasks(cluster)).records())

            with contextlib.suppress(Conflict):  # in TASK mode already
                await api.set_mode(cluster, "TASK")
            await wait_for(idle, timeout=60)
            await api.delete_cluster(cluster)
            await api.delete_dataset(dataset)
            if save_uuid:
                await api.delete_checkpoint(save_uuid)


async def test_tasks_wait_for_a_known_template(faithful_client, backend: Backend, demo_files) -> None:
    """Two pairings end a real Hanami (the faithful emulator drops the connection): a CSV of fewer
    rows than the cluster's input neurons, and images with more pixels than that. Hanami cannot tell
    a cluster's template, so on a cluster made outside the console no task is queued, and the page
    says how to go on, until its template is declared; then the console checks the pairing as for
    its own clusters, and a pairing that fits is queued and runs."""
    from tests.console.effects import BackendCalls
    from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE

    tag = secrets.token_hex(3)
    async with HanamiClient(backend.url) as hanami:
        api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
        curve = await api.upload_csv(f"short curve {tag}", demo_files.csv)  # 400 rows, test_input/test_output
        digits = await api.upload_mnist(f"wide digits {tag}", demo_files.small_images, demo_files.small_labels)
        digits_cluster = (await api.create_cluster(f"made elsewhere {tag}", EXAMPLE_MNIST_TEMPLATE))["uuid"]
        curve_cluster = (await api.create_cluster(f"curve elsewhere {tag}", EXAMPLE_CSV_TEMPLATE))["uuid"]
        try:
            csrf = await login(faithful_client, ADMIN_ID, ADMIN_PASSWORD)
            calls = BackendCalls(faithful_client._transport.app)  # type: ignore[attr-defined]

            async def queue(cluster: str, dataset: str, kind: str = "train") -> httpx.Response:
                return await faithful_client.post("/tasks/new", data={
                    "csrf_token": csrf, "name": f"paired {tag}", "type": kind, "cluster_uuid": cluster,
                    "dataset_uuid": dataset})

            form = await faithful_client.get(f"/tasks/new?cluster_uuid={digits_cluster}")
            assert 'data-testid="template-unknown"' in form.text
            assert f'href="/clusters/{digits_cluster}/direct"' in form.text
            for cluster, dataset in ((digits_cluster, curve), (curve_cluster, digits), (digits_cluster, digits)):
                refused = await queue(cluster, dataset)
                assert refused.status_code == 422
                assert "does not know this cluster&#39;s template" in refused.text
            assert calls.count("POST v1/task") == 0

            for cluster, text in ((digits_cluster, EXAMPLE_MNIST_TEMPLATE), (curve_cluster, EXAMPLE_CSV_TEMPLATE)):
                await declare_template(faithful_client, cluster, text)
            known = await faithful_client.get(f"/tasks/new?cluster_uuid={digits_cluster}")
            assert 'data-testid="template-unknown"' not in known.text
            short = await queue(digits_cluster, curve)
            assert short.status_code == 422 and "This CSV has 400 rows" in short.text
            wide = await queue(curve_cluster, digits, "request")
            assert wide.status_code == 422 and "images have 784 pixels" in wide.text
            assert calls.count("POST v1/task") == 0
            fits = await queue(curve_cluster, curve)
            assert fits.status_code == 303 and calls.count("POST v1/task") == 1
            calls.stop()
            assert (await api.list_tasks(digits_cluster)).records() == []

            async def finished() -> list[dict] | None:
                rows = (await api.list_tasks(curve_cluster)).records()
                return rows if rows and all(row["state"] == "finished" for row in rows) else None

            rows = await wait_for(finished, timeout=60)
            assert [row["percentage"] for row in rows] == ["1.000000"]
            await api.auth()  # the backend is still alive
        finally:
            await api.delete_cluster(digits_cluster)
            await api.delete_cluster(curve_cluster)
            await api.delete_dataset(curve)
            await api.delete_dataset(digits)


async def test_a_run_is_refused_where_its_tasks_would_end_hanami(faithful_client, backend: Backend, demo_files) -> None:
    """A run queues train and request tasks of MNIST digits: on a cluster of the CSV template (one
    input neuron) they would end a real Hanami, on a cluster the console does not know they might.
    Both are refused before anything is queued, and the run is not recorded."""
    from tests.console.effects import BackendCalls
    from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE

    tag = secrets.token_hex(3)
    async with HanamiClient(backend.url) as hanami:
        api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
        digits = await api.upload_mnist(f"run digits {tag}", demo_files.small_images, demo_files.small_labels)
        outside = (await api.create_cluster(f"run elsewhere {tag}", EXAMPLE_MNIST_TEMPLATE))["uuid"]
        csrf = await login(faithful_client, ADMIN_ID, ADMIN_PASSWORD)
        made = await faithful_client.post("/clusters", data={"csrf_token": csrf, "name": f"run curve {tag}",
                                                             "template": EXAMPLE_CSV_TEMPLATE})
        assert made.status_code == 303
        curve_cluster = made.headers["location"].rsplit("/", 1)[-1]
        try:
            calls = BackendCalls(faithful_client._transport.app)  # type: ignore[attr-defined]
            for cluster, reason in ((curve_cluster, "images have 784 pixels"),
                                    (outside, "does not know this cluster&#39;s template")):
                form = await faithful_client.get(f"/clusters/{cluster}/runs/new")
                assert ('data-testid="template-unknown"' in form.text) == (cluster == outside)
                run_id = re.search(r'name="run_id" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
                refused = await faithful_client.post(f"/clusters/{cluster}/runs", data={
                    "csrf_token": csrf, "run_id": run_id, "name": f"refused run {tag}", "train_uuid": digits,
                    "test_uuid": digits, "passes": "2", "patience": "0"})
                assert refused.status_code == 422 and reason in refused.text
                assert (await faithful_client.get(f"/runs/{run_id}")).status_code == 404
            assert calls.count("POST v1/task") == 0
            calls.stop()
            await api.auth()  # the backend is still alive
        finally:
            await api.delete_cluster(outside)
            await api.delete_cluster(curve_cluster)
            await api.delete_dataset(digits)
