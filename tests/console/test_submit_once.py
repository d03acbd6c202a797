"""Every form that creates something is safe to submit twice: the second submission of a rendered
form (same one-time form token) answers with the first one's redirect and creates nothing more.
Also: removing many queued tasks at once, with confirmation."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import AsyncIterator

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, csrf_from, declare_template, login, wait_for
from webconsole.hanami.client import HanamiAPI, HanamiClient
from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE, EXAMPLE_MNIST_TEMPLATE

FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
ROW = re.compile(r'<tr data-task="([0-9a-f-]{36})" data-state="(\w+)">')


def form_token(page: str, after: str = "") -> str:
    """The one-time token of the (first) form that follows ``after`` in the page."""
    match = FORM_TOKEN.search(page, page.index(after) if after else 0)
    assert match, "the form has no one-time token"
    return match.group(1)


@pytest.fixture
async def hanami(backend) -> AsyncIterator[HanamiAPI]:
    async with HanamiClient(backend.url) as client:
        yield client.api((await client.login(ADMIN_ID, ADMIN_PASSWORD)).token)


@pytest.fixture
async def cluster(hanami: HanamiAPI, digits: str, app_client) -> AsyncIterator[dict]:
    # Removed only once its tasks have run: a real Hanami 0.4.1 ends its process when the cluster of
    # a queued or running train task is deleted (its dataset may go at any time: tasks hold a copy).
    created = await hanami.create_cluster(f"once_{secrets.token_hex(3)}", EXAMPLE_MNIST_TEMPLATE)
    await declare_template(app_client, created["uuid"], EXAMPLE_MNIST_TEMPLATE)
    yield created

    async def idle() -> bool:
        states = {row.get("state") for row in (await hanami.list_tasks(created["uuid"])).records()}
        return not states & {"queued", "active"}

    await wait_for(idle, timeout=120, interval=0.2)
    await hanami.delete_cluster(created["uuid"])


@pytest.fixture
async def digits(hanami: HanamiAPI, demo_files) -> AsyncIterator[str]:
    uuid = await hanami.upload_mnist(f"once digits {secrets.token_hex(3)}", demo_files.train_images,
                                     demo_files.train_labels)
    yield uuid
    await hanami.delete_dataset(uuid)


async def twice(client: httpx.AsyncClient, url: str, data: dict, files: dict | None = None,
                together: bool = False) -> tuple[httpx.Response, httpx.Response]:
    async def post() -> httpx.Response:
        return await client.post(url, data=data, files=files)

    if together:  # a double click: the second arrives while the first is still at work
        first, second = await asyncio.gather(post(), post())
    else:  # a resent POST (reload, back button)
        first, second = await post(), await post()
    assert first.status_code == 303, first.text[:500]
    assert second.status_code == 303, second.text[:500]
    assert second.headers["location"] == first.headers["location"]
    return first, second


@pytest.mark.parametrize("together", [True, False], ids=["double click", "resent"])
async def test_task_form_queues_once(app_client, hanami, cluster, digits, together: bool) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    page = await app_client.get(f"/tasks/new?cluster_uuid={cluster['uuid']}&dataset_uuid={digits}&type=train")
    data = {"csrf_token": csrf, "form_token": form_token(page.text), "name": "once task", "type": "train",
            "repeat": "3", "cluster_uuid": cluster["uuid"], "dataset_uuid": digits}
    await twice(app_client, "/tasks/new", data, together=together)
    assert len((await hanami.list_tasks(cluster["uuid"])).records()) == 3  # not 6


async def test_a_fresh_form_queues_again(app_client, hanami, cluster, digits) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    for _ in range(2):
        page = await app_client.get(f"/tasks/new?cluster_uuid={cluster['uuid']}&dataset_uuid={digits}")
        assert (await app_client.post("/tasks/new", data={
            "csrf_token": csrf, "form_token": form_token(page.text), "name": "again", "type": "train",
            "repeat": "1", "cluster_uuid": cluster["uuid"], "dataset_uuid": digits})).status_code == 303
    assert len((await hanami.list_tasks(cluster["uuid"])).records()) == 2


async def test_a_refused_form_can_be_corrected_and_sent_with_its_token(app_client, hanami, cluster, digits) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    page = await app_client.get(f"/tasks/new?cluster_uuid={cluster['uuid']}&dataset_uuid={digits}")
    data = {"csrf_token": csrf, "form_token": form_token(page.text), "name": "x", "type": "train", "repeat": "1",
            "cluster_uuid": cluster["uuid"], "dataset_uuid": digits}
    assert (await app_client.post("/tasks/new", data=data)).status_code == 422  # name too short
    assert (await app_client.post("/tasks/new", data={**data, "name": "long enough"})).status_code == 303
    assert len((await hanami.list_tasks(cluster["uuid"])).records()) == 1


async def test_cluster_form_creates_once(app_client, hanami) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    page = await app_client.get("/clusters/new")
    name = f"once_cluster_{secrets.token_hex(3)}"
    first, _ = await twice(app_client, "/clusters", {
        "csrf_token": csrf, "form_token": form_token(page.text), "name": name, "template": EXAMPLE_CSV_TEMPLATE},
        together=True)
    made = [c for c in (await hanami.list_clusters()).records() if c.get("name") == name]
    assert len(made) == 1
    await hanami.delete_cluster(made[0]["uuid"])


async def test_upload_form_uploads_once(app_client, hanami) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    page = await app_client.get("/datasets/upload")
    name = f"once csv {secrets.token_hex(3)}"
    data = {"csrf_token": csrf, "form_token": form_token(page.text, 'data-testid="csv-form"'), "kind": "csv",
            "name": name}
    files = {"csv": ("rows.csv", b"x,y\n" + b"0.5,0.25\n" * 50, "text/csv")}
    first, _ = await twice(app_client, "/datasets/upload", data, files)
    status_url = first.headers["location"]

    async def done() -> bool:
        return 'data-phase="done"' in (await app_client.get(status_url)).text

    await wait_for(done)
    made = [d for d in (await hanami.list_datasets()).records() if d.get("name") == name]
    assert len(made) == 1
    await hanami.delete_dataset(made[0]["uuid"])


async def test_user_project_and_assignment_forms_create_once(app_client, hanami) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    project, user = f"onceproj_{secrets.token_hex(3)}", f"onceuser_{secrets.token_hex(3)}"
    try:
        page = await app_client.get("/projects/new")
        await twice(app_client, "/projects", {"csrf_token": csrf, "form_token": form_token(page.text),
                                              "id": project, "name": "Once Project"}, together=True)
        assert [p for p in (await hanami.list_projects()).records() if p.get("id") == project]
        page = await app_client.get("/users/new")
        await twice(app_client, "/users", {"csrf_token": csrf, "form_token": form_token(page.text), "id": user,
                                           "name": "Once User", "password": "once-password-1"}, together=True)
        assert [u for u in (await hanami.list_users()).records() if u.get("id") == user]
        page = await app_client.get(f"/users/{user}")
        assign = {"csrf_token": csrf, "form_token": form_token(page.text, 'id="assign-form"'),
                  "project_id": project, "role": "member"}
        await twice(app_client, f"/users/{user}/projects", assign)
        assigned = [p for p in await hanami.user_projects(user) if p.get("project_id") == project]
        assert len(assigned) == 1
    finally:
        for call in (hanami.delete_user(user), hanami.delete_project(project)):
            try:
                await call
            except Exception:
                pass


async def test_checkpoint_form_saves_once(app_client, hanami, cluster) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    page = await app_client.get(f"/clusters/{cluster['uuid']}")
    name = f"once checkpoint {secrets.token_hex(3)}"
    data = {"csrf_token": csrf, "form_token": form_token(page.text, "save-heading"), "checkpoint_name": name}
    await twice(app_client, f"/clusters/{cluster['uuid']}/save", data, together=True)
    assert len((await hanami.list_tasks(cluster["uuid"])).records()) == 1  # one save task, not two

    async def saved() -> list:
        return [c for c in (await hanami.list_checkpoints()).records() if c.get("name") == name]

    made = await wait_for(saved)
    assert len(made) == 1
    await hanami.delete_checkpoint(made[0]["uuid"])


# -- many queued tasks at once ---------------------------------------------------------------------

async def test_remove_chosen_queued_tasks_after_confirmation(app_client, hanami, cluster, digits) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    for index in range(5):
        await hanami.create_task(f"queued {index}", "train", cluster["uuid"], digits)
    region = await app_client.get(f"/clusters/{cluster['uuid']}/tasks", headers={"HX-Request": "true"})
    assert 'data-testid="delete-queued"' in region.text
    confirm = await app_client.get(f"/clusters/{cluster['uuid']}/queue/delete")
    assert confirm.status_code == 200 and "Remove the ticked tasks from the queue?" in confirm.text
    offered = re.findall(r'name="task_uuid" value="([0-9a-f-]{36})" checked', confirm.text)
    states = dict(ROW.findall(region.text))
    assert offered and all(states.get(uuid) == "queued" for uuid in offered)
    keep = offered[-1]
    answer = await app_client.post(f"/clusters/{cluster['uuid']}/queue/delete",
                                   data={"csrf_token": csrf_from(confirm.text), "task_uuid": offered[:-1]})
    assert answer.status_code == 303
    left = {record["uuid"] for record in (await hanami.list_tasks(cluster["uuid"])).records()}
    assert keep in left and not left & set(offered[:-1])
    page = await app_client.get(answer.headers["location"])
    assert f"Removed {len(offered) - 1} queued tasks." in page.text
