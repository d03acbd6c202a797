"""Checkpoints in-process against the real emulator: save from a cluster, list, detail, restore, delete."""

from __future__ import annotations

import re

import httpx

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, login, wait_for
from tests.console.test_clusters import HX, create_cluster, unique
from tests.console.effects import BackendCalls
from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE


async def admin_api(client: httpx.AsyncClient):
    hanami = client.app.state.hanami  # type: ignore[attr-defined]
    return hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)


async def save_and_wait(client: httpx.AsyncClient, csrf: str, cluster_uuid: str, name: str) -> str:
    """Save through the cluster page, then poll the checkpoint list until the save task ran."""
    response = await client.post(f"/clusters/{cluster_uuid}/save", data={"csrf_token": csrf, "checkpoint_name": name})
    assert response.status_code == 303, response.text[:1000]
    page = await client.get(response.headers["location"])
    assert "appears in the checkpoint list once that task has run" in page.text

    async def listed() -> str | None:
        fragment = await client.get("/checkpoints", params={"q": name}, headers=HX)
        match = re.search(r'<tr data-uuid="([0-9a-f-]{36})">', fragment.text)
        return match.group(1) if match else None

    return await wait_for(listed, timeout=20)


async def test_empty_checkpoint_search_and_list(app_client: httpx.AsyncClient) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    page = await app_client.get("/checkpoints")
    assert page.status_code == 200 and "<h1>Checkpoints</h1>" in page.text
    none = await app_client.get("/checkpoints", params={"q": "zz no such checkpoint"}, headers=HX)
    assert "<html" not in none.text and "No checkpoint matches" in none.text


async def test_save_then_detail_shows_origin_and_location(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    cluster_name = unique("Saver")
    cluster_uuid = await create_cluster(app_client, csrf, cluster_name, EXAMPLE_CSV_TEMPLATE)
    bad = await app_client.post(f"/clusters/{cluster_uuid}/save", data={"csrf_token": csrf, "checkpoint_name": "x"})
    assert bad.status_code == 422 and 'id="checkpoint_name-error"' in bad.text
    name = unique("Snapshot")
    checkpoint_uuid = await save_and_wait(app_client, csrf, cluster_uuid, name)
    # Hanami: the checkpoint's uuid is the save task's uuid (Q-T6); the task is listed on the cluster.
    api = await admin_api(app_client)
    assert checkpoint_uuid in [row["uuid"] for row in (await api.list_tasks(cluster_uuid)).records()]
    detail = await app_client.get(f"/checkpoints/{checkpoint_uuid}")
    assert detail.status_code == 200
    assert f'data-testid="checkpoint-name">{name}<' in detail.text
    assert checkpoint_uuid in detail.text and 'data-testid="checkpoint-location"' in detail.text
    assert cluster_name in detail.text  # "saved from" is what the console remembered
    cluster_page = await app_client.get(f"/clusters/{cluster_uuid}")
    assert 'data-testid="cluster-checkpoints"' in cluster_page.text and name in cluster_page.text
    await app_client.post(f"/checkpoints/{checkpoint_uuid}/delete", data={"csrf_token": csrf})
    await app_client.post(f"/clusters/{cluster_uuid}/delete", data={"csrf_token": csrf})


async def test_restore_offers_only_listed_checkpoints(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    source = await create_cluster(app_client, csrf, unique("Source"), EXAMPLE_CSV_TEMPLATE)
    target = await create_cluster(app_client, csrf, unique("Target"), EXAMPLE_CSV_TEMPLATE)
    checkpoint_uuid = await save_and_wait(app_client, csrf, source, unique("Restorable"))
    # Hanami would accept an unknown checkpoint and silently do nothing (Q-K1): the console refuses.
    unknown = await app_client.post(
        f"/clusters/{target}/restore",
        data={"csrf_token": csrf, "checkpoint_uuid": "00000000-0000-4000-8000-000000000000"},
    )
    assert unknown.status_code == 422 and "Choose a checkpoint from the list" in unknown.text
    api = await admin_api(app_client)
    calls = BackendCalls(app_client.app)  # type: ignore[attr-defined]
    assert calls.count("POST v1/cluster/load") == 0  # the refusal never reached Hanami
    assert (await api.list_tasks(target)).records() == []
    done = await app_client.post(f"/clusters/{target}/restore", data={"csrf_token": csrf, "checkpoint_uuid": checkpoint_uuid})
    assert done.status_code == 303
    assert calls.count("POST v1/cluster/load") == 1
    page = await app_client.get(done.headers["location"])
    assert "is queued as a task of this cluster" in page.text

    def finished_restores(count: int):
        async def check() -> bool:
            rows = (await api.list_tasks(target)).records()
            return len(rows) == count and all(row["state"] == "finished" for row in rows)
        return check

    await wait_for(finished_restores(1), timeout=20)  # the restore task ran on the target cluster
    assert (await api.list_tasks(source)).records()[0]["uuid"] == checkpoint_uuid  # only the save there
    # From the checkpoint's page, into a chosen cluster.
    wrong = await app_client.post(f"/checkpoints/{checkpoint_uuid}/restore", data={"csrf_token": csrf, "cluster_uuid": "nope"})
    assert wrong.status_code == 422 and "Choose a cluster from the list" in wrong.text
    assert calls.count("POST v1/cluster/load") == 1
    again = await app_client.post(f"/checkpoints/{checkpoint_uuid}/restore", data={"csrf_token": csrf, "cluster_uuid": target})
    assert again.status_code == 303 and again.headers["location"].endswith(f"/clusters/{target}")
    assert calls.count("POST v1/cluster/load") == 2
    await wait_for(finished_restores(2), timeout=20)  # a second restore task, on the chosen cluster
    assert len((await api.list_tasks(source)).records()) == 1
    for uuid in (source, target):
        await app_client.post(f"/clusters/{uuid}/delete", data={"csrf_token": csrf})
    await app_client.post(f"/checkpoints/{checkpoint_uuid}/delete", data={"csrf_token": csrf})


async def test_delete_checkpoint_with_confirmation(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    cluster_uuid = await create_cluster(app_client, csrf, unique("Keeper"), EXAMPLE_CSV_TEMPLATE)
    checkpoint_uuid = await save_and_wait(app_client, csrf, cluster_uuid, unique("Disposable"))
    confirm = await app_client.get(f"/checkpoints/{checkpoint_uuid}/delete")
    assert confirm.status_code == 200 and "cannot be restored afterwards" in confirm.text
    done = await app_client.post(f"/checkpoints/{checkpoint_uuid}/delete", data={"csrf_token": csrf})
    assert done.status_code == 303 and done.headers["location"].endswith("/checkpoints")
    listing = await app_client.get("/checkpoints")
    assert checkpoint_uuid not in listing.text and "deleted" in listing.text
    # Deleting twice: Hanami's 404 text is misspelled ("Chekckpoint"); the console goes by status only.
    twice = await app_client.post(f"/checkpoints/{checkpoint_uuid}/delete", data={"csrf_token": csrf})
    assert twice.status_code == 404
    await app_client.post(f"/clusters/{cluster_uuid}/delete", data={"csrf_token": csrf})
