"""Request result pages against the real emulator: list, chart data, samples, downloads, accuracy, delete."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import secrets
import uuid as uuidlib
from typing import AsyncIterator

import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, declare_template, login
from webconsole.hanami.client import HanamiAPI
from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE, EXAMPLE_MNIST_TEMPLATE

CHART = re.compile(r'<script type="application/json" id="result-chart-data">(.*?)</script>', re.S)


def unique(prefix: str) -> str:
    return f"{prefix} {secrets.token_hex(3)}"


async def finish(hanami: HanamiAPI, name: str, kind: str, cluster_uuid: str, dataset_uuid: str) -> str:
    task = await hanami.create_task(name, kind, cluster_uuid, dataset_uuid)  # type: ignore[arg-type]
    for _ in range(600):
        if (await hanami.get_task(task["uuid"], cluster_uuid))["state"] == "finished":
            return task["uuid"]
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {name} did not finish")


@pytest.fixture(scope="module")
async def mnist(hanami: HanamiAPI, demo_files) -> AsyncIterator[dict]:
    """A cluster trained on 200 digits, and the result of a request over the same 200 digits."""
    dataset = await hanami.upload_mnist(unique("result digits"), demo_files.small_images, demo_files.small_labels)
    cluster = await hanami.create_cluster(unique("result cluster"), EXAMPLE_MNIST_TEMPLATE)
    await finish(hanami, "result train", "train", cluster["uuid"], dataset)
    result = await finish(hanami, unique("mnist result"), "request", cluster["uuid"], dataset)
    yield {"dataset": dataset, "cluster": cluster["uuid"], "result": result}
    await hanami.delete_cluster(cluster["uuid"])
    await hanami.delete_dataset(dataset)


@pytest.fixture(scope="module")
async def csv_setup(hanami: HanamiAPI, demo_files) -> AsyncIterator[dict]:
    dataset = await hanami.upload_csv(unique("result sine"), demo_files.csv)
    cluster = await hanami.create_cluster(unique("result csv cluster"), EXAMPLE_CSV_TEMPLATE)
    await finish(hanami, "sine train", "train", cluster["uuid"], dataset)
    result = await finish(hanami, "sine request", "request", cluster["uuid"], dataset)
    yield {"dataset": dataset, "cluster": cluster["uuid"], "result": result}
    await hanami.delete_cluster(cluster["uuid"])
    await hanami.delete_dataset(dataset)


@pytest.fixture(scope="module")
def csv_result(csv_setup: dict) -> str:
    return csv_setup["result"]


async def test_list_search_and_link(app_client, hanami, mnist) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    name = (await hanami.get_result(mnist["result"]))["name"]
    page = await app_client.get("/results", params={"q": name})
    assert page.status_code == 200
    assert f'href="/results/{mnist["result"]}"' in page.text and name in page.text
    missing = await app_client.get("/results", params={"q": "no such result zzz"})
    assert "No result matches" in missing.text and mnist["result"] not in missing.text
    fragment = await app_client.get("/results", params={"sort": "uuid", "order": "desc"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text and 'id="result-table"' in fragment.text


async def test_csv_results_show_the_task_name_the_console_queued(app_client, hanami, csv_setup) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    await declare_template(app_client, csv_setup["cluster"], EXAMPLE_CSV_TEMPLATE)
    name = unique("sine question")
    queued = await app_client.post("/tasks/new", data={
        "csrf_token": csrf, "name": name, "type": "request", "cluster_uuid": csv_setup["cluster"],
        "dataset_uuid": csv_setup["dataset"]})
    assert queued.status_code == 303
    listing = await app_client.get(queued.headers["location"])
    uuid = re.search(rf'/tasks/([0-9a-f-]{{36}})">{re.escape(name)}</a>', listing.text).group(1)  # type: ignore[union-attr]
    for _ in range(600):
        if (await hanami.get_task(uuid, csv_setup["cluster"]))["state"] == "finished":
            break
        await asyncio.sleep(0.05)
    assert (await hanami.get_result(uuid))["name"] == "test_input"  # Q-T3: named after the input brick
    page = await app_client.get("/results", params={"q": name})
    assert f"task {name}" in page.text and f'/results/{uuid}"' in page.text
    detail = await app_client.get(f"/results/{uuid}")
    assert f"<dt>Task</dt><dd>{name}</dd>" in detail.text
    await hanami.delete_result(uuid)


async def test_empty_state_tells_a_new_user_what_to_do(app_client, hanami, backend) -> None:
    project, user = f"res_{secrets.token_hex(3)}", f"res_user_{secrets.token_hex(3)}"
    await hanami.create_project(project, "Results Project")
    await hanami.create_user(user, "Results User", "results-password-1", False)
    await hanami.assign_project(user, project, "member", False)
    try:
        await login(app_client, user, "results-password-1")
        page = await app_client.get("/results")
        assert "No request results yet" in page.text and "Run a request task to get results" in page.text
    finally:
        await hanami.delete_user(user)
        await hanami.delete_project(project)


async def test_mnist_detail_has_a_class_histogram_and_paged_samples(app_client, hanami, mnist) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    data = (await hanami.get_result(mnist["result"]))["data"]
    page = await app_client.get(f"/results/{mnist['result']}")
    assert page.status_code == 200 and "MNIST: one predicted digit per image" in page.text
    assert "chart-4.6.1.umd.min.js" in page.text and "js/results.js" in page.text
    chart = json.loads(CHART.search(page.text).group(1))
    assert chart["kind"] == "bar" and chart["labels"] == [str(i) for i in range(10)]
    assert chart["values"] == [data.count(i) for i in range(10)] and sum(chart["values"]) == 200
    assert f'<tr><td>3</td><td class="num">{data.count(3)}</td>' in page.text  # the chart as a table
    assert "1–25 of 200" in page.text and 'rel="next"' in page.text
    second = await app_client.get(f"/results/{mnist['result']}", params={"page": 2}, headers={"HX-Request": "true"})
    assert "<html" not in second.text and "26–50 of 200" in second.text
    assert f'<td class="num">25</td><td class="num">{data[25]}</td>' in second.text


async def test_csv_detail_draws_the_outputs_as_a_line(app_client, hanami, csv_result) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    data = (await hanami.get_result(csv_result))["data"]
    page = await app_client.get(f"/results/{csv_result}")
    assert "CSV: one output value per sample" in page.text
    assert "<summary>Check anyway (this is a CSV result)</summary>" in page.text  # meaningful for MNIST only
    assert f'<td class="num">0</td><td class="num">{data[0]:.6g}</td>' in page.text
    chart = json.loads(CHART.search(page.text).group(1))
    assert chart["kind"] == "line" and chart["values"] == data and chart["labels"] == list(range(len(data)))


async def test_downloads_carry_the_whole_result(app_client, hanami, mnist, csv_result) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    for uuid in (mnist["result"], csv_result):
        result = await hanami.get_result(uuid)
        as_json = await app_client.get(f"/results/{uuid}/download.json")
        assert as_json.status_code == 200 and as_json.headers["content-type"].startswith("application/json")
        assert as_json.headers["content-disposition"].startswith("attachment; filename=")
        assert as_json.json() == result
        as_csv = await app_client.get(f"/results/{uuid}/download.csv")
        assert as_csv.headers["content-type"].startswith("text/csv")
        assert re.fullmatch(r'attachment; filename="[\w-]+\.csv"', as_csv.headers["content-disposition"])
        rows = list(csv.reader(io.StringIO(as_csv.text)))
        assert rows[0] == ["index", "value"] and len(rows) == len(result["data"]) + 1
        assert [int(r[0]) for r in rows[1:]] == list(range(len(result["data"])))
        assert [json.loads(r[1]) for r in rows[1:]] == result["data"]


async def test_check_accuracy_against_a_listed_dataset(app_client, hanami, mnist) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    expected = await hanami.check_dataset(mnist["result"], mnist["dataset"])
    url = f"/results/{mnist['result']}/check"
    answer = await app_client.post(url, data={"csrf_token": csrf, "dataset_uuid": mnist["dataset"]},
                                   headers={"HX-Request": "true"})
    assert answer.status_code == 200 and "<html" not in answer.text
    assert f"<strong>{expected:.2f} %</strong>" in answer.text and "meaningful for MNIST" in answer.text
    unlisted = await app_client.post(url, data={"csrf_token": csrf, "dataset_uuid": str(uuidlib.uuid4())})
    assert unlisted.status_code == 422 and "Choose one of the listed datasets" in unlisted.text


async def test_check_against_an_unreadable_dataset_says_so(app_client, hanami, mnist) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    # An upload that was started but never finished: listed, but its file cannot be read (Q-D4).
    started = await hanami._call("POST", "v1/mnist/dataset", body={
        "name": unique("unfinished"), "input_data_size": 16 + 784, "label_data_size": 9})
    try:
        answer = await app_client.post(f"/results/{mnist['result']}/check",
                                       data={"csrf_token": csrf, "dataset_uuid": started["uuid"]})
        assert answer.status_code == 200 and "The dataset could not be read" in answer.text
    finally:
        await hanami.delete_dataset(started["uuid"])


async def test_delete_after_confirmation(app_client, hanami, mnist) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    uuid = await finish(hanami, unique("doomed result"), "request", mnist["cluster"], mnist["dataset"])
    confirm = await app_client.get(f"/results/{uuid}/delete")
    assert confirm.status_code == 200 and "(200 samples)?" in confirm.text
    assert f'action="/results/{uuid}/delete"' in confirm.text
    refused = await app_client.post(f"/results/{uuid}/delete", data={"csrf_token": "wrong"})
    assert refused.status_code == 403
    deleted = await app_client.post(f"/results/{uuid}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303 and deleted.headers["location"].endswith("/results")
    listing = await app_client.get(deleted.headers["location"])
    assert "deleted." in listing.text and uuid not in listing.text
    assert (await app_client.get(f"/results/{uuid}")).status_code == 404
    assert (await app_client.get("/results/NOT-A-UUID")).status_code == 404
