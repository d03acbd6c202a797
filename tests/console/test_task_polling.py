"""The task list keeps polling exactly while a task is queued, active or aborted (Q-T4), and stops
(htmx's 286) once none is. No timing: the cluster is held so that each state lasts as long as the
test needs it — in DIRECT mode nothing starts (§7.1); behind a long train a task stays queued.
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, login, wait_for
from tests.console import test_tasks
from tests.console.test_tasks import HX, POLL, ROW, create
from webconsole.web.tasks.rows import any_running

POLLING = 'hx-trigger="every 1500ms"'

# the task tests' fixtures (the admin's API, hanami, comes from conftest): a fresh cluster, a small and a long dataset
cluster, small_set, long_set = test_tasks.cluster, test_tasks.small_set, test_tasks.long_set


@pytest.mark.parametrize("state, running", [
    ("queued", True), ("active", True), ("aborted", True), ("finished", False),
])
def test_which_states_keep_the_list_polling(state: str, running: bool) -> None:
    assert any_running([{"state": "finished"}, {"state": state}]) is running
    assert any_running([]) is False


async def poll(client: httpx.AsyncClient, cluster_uuid: str) -> list[str]:
    """One poll of the list; its answer must match the states it shows. Returns the states."""
    response = await client.get(f"/clusters/{cluster_uuid}/tasks", headers=POLL)
    states = [state for _, state in ROW.findall(response.text)]
    if any(state in ("queued", "active", "aborted") for state in states):
        assert response.status_code == 200, (states, response.status_code)
        assert POLLING in response.text and 'data-polling="on"' in response.text, states
        assert "(updating live)" in response.text
    else:
        assert response.status_code == 286, (states, response.status_code)
        assert "hx-trigger" not in response.text and 'data-polling="off"' in response.text, states
    return states


async def poll_task(client: httpx.AsyncClient, cluster_uuid: str, task_uuid: str) -> int:
    response = await client.get(f"/clusters/{cluster_uuid}/tasks/{task_uuid}", headers=POLL)
    return response.status_code


async def test_a_task_held_in_the_queue_keeps_the_list_polling(app_client, hanami, cluster, small_set) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    uuid = cluster["uuid"]
    assert await poll(app_client, uuid) == []  # nothing runs: 286 at once
    await hanami.set_mode(uuid, "DIRECT")  # tasks created in DIRECT mode wait (§7.1)
    created = await create(app_client, csrf, name="held request", type="request", cluster_uuid=uuid,
                           dataset_uuid=small_set)
    assert created.status_code == 303
    (task_uuid, _), = ROW.findall((await app_client.get(f"/clusters/{uuid}/tasks", headers=HX)).text)
    for _ in range(3):  # as long as it is held, every poll goes on
        assert await poll(app_client, uuid) == ["queued"]
        assert await poll_task(app_client, uuid, task_uuid) == 200
    first = await app_client.get(f"/clusters/{uuid}/tasks", headers=HX)  # the cluster page's first load
    assert first.status_code == 200 and POLLING in first.text
    page = await app_client.get(f"/clusters/{uuid}/tasks")  # the whole page polls its region too
    assert page.status_code == 200 and POLLING in page.text

    await hanami.set_mode(uuid, "TASK")

    async def finished() -> bool:
        return await poll(app_client, uuid) == ["finished"]

    await wait_for(finished, timeout=30, interval=0.05)
    assert await poll_task(app_client, uuid, task_uuid) == 286


async def test_queued_behind_a_long_train_and_aborted_keep_polling(
    app_client, hanami, cluster, small_set, long_set,
) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    uuid = cluster["uuid"]
    await hanami.set_mode(uuid, "DIRECT")
    await create(app_client, csrf, name="long train", type="train", cluster_uuid=uuid, dataset_uuid=long_set)
    await create(app_client, csrf, name="request behind", type="request", cluster_uuid=uuid, dataset_uuid=small_set)
    order = [task for task, _ in ROW.findall((await app_client.get(f"/clusters/{uuid}/tasks", headers=HX)).text)]
    assert await poll(app_client, uuid) == ["queued", "queued"]
    await hanami.set_mode(uuid, "TASK")  # the train starts; the request waits behind it (FIFO)
    assert await poll(app_client, uuid) == ["active", "queued"]
    train, request = order
    assert await poll_task(app_client, uuid, train) == 200
    aborted = await app_client.post(f"/clusters/{uuid}/tasks/{train}/delete", data={"csrf_token": csrf})
    assert aborted.status_code == 303
    assert await poll(app_client, uuid) == ["aborted", "queued"]  # an aborted task keeps running (Q-T4)
    assert await poll_task(app_client, uuid, train) == 200
    seen: list[list[str]] = []

    async def all_finished() -> bool:
        seen.append(await poll(app_client, uuid))  # every answer on the way matches its states
        return seen[-1] == ["finished", "finished"]

    await wait_for(all_finished, timeout=90, interval=0.05)
    assert await poll_task(app_client, uuid, request) == 286
