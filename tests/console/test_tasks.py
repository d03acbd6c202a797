"""Task pages against the real emulator: creation rules, train-N-times in FIFO order, live list, abort/delete."""

from __future__ import annotations

import re
import secrets
import uuid as uuidlib
from typing import AsyncIterator

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, declare_template, login, wait_for
from webconsole.hanami.client import HanamiAPI
from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE, EXAMPLE_MNIST_TEMPLATE

HX = {"HX-Request": "true"}
POLL = {"HX-Request": "true", "X-Console-Poll": "1"}
ROW = re.compile(r'<tr data-task="([0-9a-f-]{36})" data-state="(\w+)">')


def unique(prefix: str) -> str:
    return f"{prefix} {secrets.token_hex(3)}"


@pytest.fixture(scope="module")
async def small_set(hanami: HanamiAPI, demo_files) -> AsyncIterator[str]:
    uuid = await hanami.upload_mnist(unique("small digits"), demo_files.small_images, demo_files.small_labels)
    yield uuid
    await hanami.delete_dataset(uuid)


@pytest.fixture(scope="module")
async def long_set(hanami: HanamiAPI, long_train_files) -> AsyncIterator[str]:
    """The 4,000-digit train split, 15 times: a real Hanami trains one pass in ~0.3 s, so this is
    what keeps a train task running long enough to abort it on either backend."""
    uuid = await hanami.upload_mnist(unique("long digits"), *long_train_files)
    yield uuid
    await hanami.delete_dataset(uuid)


@pytest.fixture
async def cluster(hanami: HanamiAPI, app_client) -> AsyncIterator[dict]:
    created = await hanami.create_cluster(unique("tasks cluster"), EXAMPLE_MNIST_TEMPLATE)
    await declare_template(app_client, created["uuid"], EXAMPLE_MNIST_TEMPLATE)
    yield created
    await hanami.delete_cluster(created["uuid"])


async def rows(client: httpx.AsyncClient, cluster_uuid: str, headers: dict = HX) -> list[tuple[str, str]]:
    response = await client.get(f"/clusters/{cluster_uuid}/tasks", headers=headers)
    assert response.status_code in (200, 286), response.text[:300]
    return ROW.findall(response.text)


async def create(client: httpx.AsyncClient, csrf: str, **fields: str) -> httpx.Response:
    return await client.post("/tasks/new", data={"csrf_token": csrf, **fields})


async def test_form_offers_listed_clusters_and_datasets(app_client, cluster, small_set) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    page = await app_client.get(f"/tasks/new?cluster_uuid={cluster['uuid']}&type=request")
    assert page.status_code == 200
    assert f'<option value="{cluster["uuid"]}" selected>' in page.text
    assert f'<option value="{small_set}"' in page.text
    assert 'value="request" checked' in page.text


async def test_creation_is_validated_before_the_backend(app_client, cluster, small_set) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    good = {"type": "train", "cluster_uuid": cluster["uuid"], "dataset_uuid": small_set, "repeat": "1"}
    cases = [
        ({"name": "abc"}, "name", "4 to 256"),
        ({"name": "1 starts with a digit"}, "name", "starting with a letter"),
        ({"name": "slash / not allowed"}, "name", "starting with a letter"),
        ({"name": "fine name", "dataset_uuid": str(uuidlib.uuid4())}, "dataset_uuid", "listed datasets"),
        ({"name": "fine name", "cluster_uuid": str(uuidlib.uuid4())}, "cluster_uuid", "your clusters"),
        ({"name": "fine name", "repeat": "0"}, "repeat", "1 to 100"),
        ({"name": "fine name", "repeat": "101"}, "repeat", "1 to 100"),
        ({"name": "fine name", "repeat": "two"}, "repeat", "1 to 100"),
        ({"name": "fine name", "type": "predict"}, "type", "train or request"),
        ({"name": "a" * 250, "repeat": "10"}, "name", "256"),
    ]
    for change, field, text in cases:
        response = await create(app_client, csrf, **{**good, **change})
        assert response.status_code == 422, (change, response.status_code)
        assert f'id="{field}-error"' in response.text and text in response.text, change
    assert await rows(app_client, cluster["uuid"]) == []  # nothing reached Hanami


async def test_train_n_times_queues_n_tasks_that_run_in_fifo_order(app_client, hanami, cluster, small_set) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    await hanami.set_mode(cluster["uuid"], "DIRECT")  # tasks created in DIRECT mode wait (§7.1)
    response = await create(app_client, csrf, name="fifo run", type="train", cluster_uuid=cluster["uuid"],
                            dataset_uuid=small_set, repeat="6")
    assert response.status_code == 303
    assert response.headers["location"].endswith(f"/clusters/{cluster['uuid']}/tasks")
    page = await app_client.get(response.headers["location"])
    assert "Queued 6 train tasks" in page.text
    names = re.findall(r">(fifo run \d of 6)</a>", page.text)
    assert names == [f"fifo run {i} of 6" for i in range(1, 7)]  # sorted by queue time, not by uuid
    assert [state for _, state in ROW.findall(page.text)] == ["queued"] * 6
    assert 'hx-trigger="every 1500ms"' in page.text and "X-Console-Poll" in page.text
    order = [uuid for uuid, _ in ROW.findall(page.text)]

    await hanami.set_mode(cluster["uuid"], "TASK")
    snapshots: list[list[str]] = []

    async def all_finished() -> bool:
        seen = dict(await rows(app_client, cluster["uuid"], POLL))
        snapshots.append([seen[uuid] for uuid in order])
        return all(state == "finished" for state in snapshots[-1])

    await wait_for(all_finished, timeout=60, interval=0.02)
    for states in snapshots:  # FIFO: finished…, at most one active, then queued…
        text = "".join({"finished": "f", "active": "a", "queued": "q"}[s] for s in states)
        assert re.fullmatch(r"f*a?q*", text), text
    listed = await hanami.list_tasks(cluster["uuid"])
    starts = {record["uuid"]: record["start"] for record in listed.records()}
    assert [starts[uuid] for uuid in order] == sorted(starts[uuid] for uuid in order)


async def test_polling_stops_once_nothing_runs(app_client, hanami, cluster, small_set) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    idle = await app_client.get(f"/clusters/{cluster['uuid']}/tasks", headers=POLL)
    assert idle.status_code == 286 and "hx-trigger" not in idle.text
    assert "No tasks on this cluster" in idle.text
    await create(app_client, csrf, name="poll check", type="request", cluster_uuid=cluster["uuid"],
                 dataset_uuid=small_set)

    async def finished() -> httpx.Response | None:
        response = await app_client.get(f"/clusters/{cluster['uuid']}/tasks", headers=POLL)
        if 'data-state="finished"' in response.text:
            return response
        assert response.status_code == 200 and 'hx-trigger="every 1500ms"' in response.text
        return None

    done = await wait_for(finished, timeout=30)
    assert done.status_code == 286 and "hx-trigger" not in done.text and 'data-polling="off"' in done.text
    # The cluster page's first load (htmx, no poll header) gets the same region with a normal 200.
    first = await app_client.get(f"/clusters/{cluster['uuid']}/tasks", headers=HX)
    assert first.status_code == 200 and "<html" not in first.text and 'id="cluster-tasks"' in first.text
    assert "Result</a>" in first.text  # a finished request task links to its result


async def test_abort_keeps_running_and_delete_removes(app_client, hanami, cluster, small_set, long_set) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    base = f"/clusters/{cluster['uuid']}/tasks"
    await create(app_client, csrf, name="long train", type="train", cluster_uuid=cluster["uuid"], dataset_uuid=long_set)
    await create(app_client, csrf, name="waiting request", type="request", cluster_uuid=cluster["uuid"],
                 dataset_uuid=small_set)
    states = await rows(app_client, cluster["uuid"])
    (active, state), (queued, queued_state) = states
    assert (state, queued_state) == ("active", "queued")

    confirm = await app_client.get(f"{base}/{active}/delete")
    assert "Abort the running task long train?" in confirm.text and "cannot stop a running task" in confirm.text
    aborted = await app_client.post(f"{base}/{active}/delete", data={"csrf_token": csrf})
    assert aborted.status_code == 303
    page = await app_client.get(aborted.headers["location"])
    assert "Abort requested for long train — Hanami finishes the current pass" in page.text
    assert f'data-task="{active}" data-state="aborted"' in page.text
    assert "abort requested — Hanami finishes the current pass" in page.text
    assert f"{base}/{active}/delete" not in page.text  # no second abort/delete while it still runs

    removed = await app_client.post(f"{base}/{queued}/delete", data={"csrf_token": csrf})
    assert removed.status_code == 303
    page = await app_client.get(removed.headers["location"])
    assert "Removed waiting request from the queue." in page.text and queued not in page.text
    gone = await app_client.get(f"{base}/{queued}")  # the console never asks Hanami for a deleted task
    assert gone.status_code == 404 and "not listed any more" in gone.text
    gone_poll = await app_client.get(f"{base}/{queued}", headers=POLL)  # its open page stops polling
    assert gone_poll.status_code == 286 and "not listed any more" in gone_poll.text and "hx-trigger" not in gone_poll.text

    again = await app_client.post(f"{base}/{active}/delete", data={"csrf_token": csrf})
    page = await app_client.get(again.headers["location"])
    assert "already requested" in page.text and f'data-task="{active}"' in page.text

    async def finished() -> bool:
        return ("finished" in dict(await rows(app_client, cluster["uuid"], POLL)).values())

    await wait_for(finished, timeout=180)  # Q-T4: the aborted task ends as finished
    confirm = await app_client.get(f"{base}/{active}/delete")
    assert "Remove the finished task long train" in confirm.text
    final = await app_client.post(f"{base}/{active}/delete", data={"csrf_token": csrf})
    page = await app_client.get(final.headers["location"])
    assert "Removed long train from the task list" in page.text and f'data-task="{active}"' not in page.text


async def test_task_page_shows_progress_and_links_the_result(app_client, hanami, cluster, small_set) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    await create(app_client, csrf, name="detail request", type="request", cluster_uuid=cluster["uuid"],
                 dataset_uuid=small_set, repeat="3")  # a request runs once; a left-over repeat is ignored
    (task_uuid, _), = await rows(app_client, cluster["uuid"])
    url = f"/clusters/{cluster['uuid']}/tasks/{task_uuid}"

    async def done() -> httpx.Response | None:
        response = await app_client.get(url, headers=POLL)
        return response if response.status_code == 286 else None

    fragment = await wait_for(done, timeout=30)
    assert "<html" not in fragment.text and 'data-polling="off"' in fragment.text
    assert 'aria-valuenow="100.0"' in fragment.text and "badge-finished" in fragment.text
    assert f'/results/{task_uuid}"' in fragment.text and "Open the result" in fragment.text
    page = await app_client.get(url)
    assert page.status_code == 200 and "Task detail request" in page.text and "detail request" in page.text
    assert (await app_client.get(f"/clusters/{cluster['uuid']}/tasks/not-a-uuid")).status_code == 404
    await hanami.delete_result(task_uuid)


async def test_csv_brick_hint_and_column_mismatch(app_client, hanami, demo_files) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    dataset = await hanami.upload_csv(unique("sine wave"), demo_files.csv)  # columns test_input, test_output
    template = EXAMPLE_CSV_TEMPLATE.replace("test_input", "sensor_in").replace("test_output", "sensor_out")
    mismatched = await hanami.create_cluster(unique("csv cluster"), template)
    hint_url = f"/tasks/new?cluster_uuid={mismatched['uuid']}&dataset_uuid={dataset}"
    try:
        hint = await app_client.get(hint_url, headers=HX)
        assert hint.status_code == 200 and '<div id="csv-hint"' in hint.text and "<html" not in hint.text
        assert "input brick" in hint.text and "not created through this console" in hint.text
        from webconsole.web.clusters.memory import remember_template  # what the clusters page records

        await remember_template(app_client.app.state.store, mismatched["uuid"], template)
        hint = await app_client.get(hint_url, headers=HX)
        assert "<code>sensor_in</code>" in hint.text and "<code>sensor_out</code>" in hint.text

        # Hanami answers an empty 500 when the CSV has no column named like a brick (§4.23 step 5).
        refused = await create(app_client, csrf, name="sine train", type="train", cluster_uuid=mismatched["uuid"],
                               dataset_uuid=dataset)
        assert refused.status_code == 422 and "needs a column named" in refused.text
        assert await rows(app_client, mismatched["uuid"]) == []
    finally:
        await hanami.delete_cluster(mismatched["uuid"])
        await hanami.delete_dataset(dataset)


async def test_delete_from_the_cluster_page_returns_there(app_client, hanami, cluster, small_set) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    await hanami.set_mode(cluster["uuid"], "DIRECT")  # keeps the task queued
    embedding = f"/clusters/{cluster['uuid']}"
    created = await create(app_client, csrf, name="embedded task", type="train", cluster_uuid=cluster["uuid"],
                           dataset_uuid=small_set, next=embedding)
    assert created.status_code == 303 and created.headers["location"] == embedding
    current = {"HX-Current-URL": f"http://console.test{embedding}"}
    fragment = await app_client.get(f"{embedding}/tasks", headers={**HX, **current})
    (task_uuid, state), = ROW.findall(fragment.text)
    # Embedded in the cluster page: its stylesheet comes along once, and Train… returns there.
    assert fragment.text.count("css/tasks.css") == 1 and f"type=train&amp;next={embedding}" in fragment.text
    poll = await app_client.get(f"{embedding}/tasks", headers={**POLL, **current})
    assert "css/tasks.css" not in poll.text and 'hx-trigger="every 1500ms"' in poll.text
    form = await app_client.get(f"/tasks/new?cluster_uuid={cluster['uuid']}&type=train&next={embedding}")
    assert f'<input type="hidden" name="next" value="{embedding}">' in form.text
    link = f"{embedding}/tasks/{task_uuid}/delete?next={embedding}"
    assert state == "queued" and f'href="{link}"' in fragment.text
    confirm = await app_client.get(link)
    assert f'name="next" value="{embedding}"' in confirm.text and f'href="{embedding}"' in confirm.text
    done = await app_client.post(f"{embedding}/tasks/{task_uuid}/delete", data={"csrf_token": csrf, "next": embedding})
    assert done.status_code == 303 and done.headers["location"] == embedding
    assert await rows(app_client, cluster["uuid"]) == []
    await hanami.set_mode(cluster["uuid"], "TASK")


async def test_a_deleted_cluster_stops_the_polling(app_client, hanami) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    doomed = await hanami.create_cluster(unique("doomed cluster"), EXAMPLE_MNIST_TEMPLATE)
    await hanami.delete_cluster(doomed["uuid"])
    poll = await app_client.get(f"/clusters/{doomed['uuid']}/tasks", headers=POLL)
    assert poll.status_code == 286 and "This cluster no longer exists" in poll.text and "hx-trigger" not in poll.text
    assert (await app_client.get(f"/clusters/{doomed['uuid']}/tasks", headers=HX)).status_code == 404
    assert (await app_client.get(f"/clusters/{doomed['uuid']}/tasks")).status_code == 404


async def test_checkpoint_tasks_show_as_done_although_hanami_reports_zero(app_client, hanami, cluster) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    saved = await hanami.save_checkpoint(cluster["uuid"], unique("task list checkpoint"))

    async def finished() -> str | None:
        response = await app_client.get(f"/clusters/{cluster['uuid']}/tasks", headers=POLL)
        return response.text if f'data-task="{saved["uuid"]}" data-state="finished"' in response.text else None

    fragment = await wait_for(finished, timeout=30)
    listed = (await hanami.list_tasks(cluster["uuid"])).find("uuid", saved["uuid"])
    assert listed is not None and listed["percentage"] == "0.000000"  # what Hanami says (§4.24)
    assert 'aria-valuenow="100.0"' in fragment and "checkpoint save or restore" in fragment
    await hanami.delete_checkpoint(saved["uuid"])


async def test_checkpoint_tasks_queued_through_the_console_are_named(app_client, hanami, cluster) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    name = unique("named save")
    saved = await app_client.post(f"/clusters/{cluster['uuid']}/save", data={"csrf_token": csrf, "checkpoint_name": name})
    assert saved.status_code == 303

    async def listed() -> str | None:
        response = await app_client.get(f"/clusters/{cluster['uuid']}/tasks", headers=POLL)
        return response.text if f"Save checkpoint {name}" in response.text and 'data-state="finished"' in response.text else None

    fragment = await wait_for(listed, timeout=30)
    assert "checkpoint save<" in fragment and "checkpoint save or restore" not in fragment.split(f"Save checkpoint {name}")[1][:300]
    checkpoint = (await hanami.list_checkpoints()).find("name", name)
    assert checkpoint is not None
    restored = await app_client.post(f"/clusters/{cluster['uuid']}/restore",
                                     data={"csrf_token": csrf, "checkpoint_uuid": checkpoint["uuid"]})
    assert restored.status_code == 303
    restore_listed = await wait_for(lambda: _text_if(app_client, cluster["uuid"], f"Restore checkpoint {name}"), timeout=30)
    assert "checkpoint restore" in restore_listed
    await hanami.delete_checkpoint(checkpoint["uuid"])


async def _text_if(client, cluster_uuid: str, needle: str) -> str | None:
    response = await client.get(f"/clusters/{cluster_uuid}/tasks", headers=POLL)
    return response.text if needle in response.text else None
