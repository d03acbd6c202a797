"""Train-and-evaluate runs through HTTP, against a real backend and the console on a real uvicorn.

The backend comes from one fixture (``backend``): every test here only needs its ``url``, so running
them on the real Hanami as well is a change of that fixture alone.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import secrets
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import httpx
import numpy as np
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, console_settings, csrf_from, login, wait_for
from webconsole.hanami.client import HanamiAPI, HanamiClient
from webconsole.protocol.idx import load_mnist, write_idx_images, write_idx_labels
from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE, EXAMPLE_MNIST_TEMPLATE

POLL = {"HX-Request": "true", "X-Console-Poll": "1"}
HELD_OUT = 100  # small held-out set: the first 100 demo test digits


def unique(prefix: str) -> str:
    return f"{prefix} {secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def held_out_files(demo_files, tmp_path_factory) -> tuple[Path, Path]:
    return write_held_out(demo_files, tmp_path_factory.mktemp("held-out"))


def write_held_out(demo_files, folder: Path) -> tuple[Path, Path]:
    images, labels = load_mnist(demo_files.test_images, demo_files.test_labels)
    write_idx_images(folder / "images.idx", images[:HELD_OUT].astype(np.uint8).reshape(-1, 28, 28))
    write_idx_labels(folder / "labels.idx", labels[:HELD_OUT])
    return folder / "images.idx", folder / "labels.idx"


@pytest.fixture
def store_file(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'console-store.db'}"


def start_console(backend, store_url: str) -> ConsoleServer:
    return ConsoleServer(console_settings(backend.url, session_store_url=store_url)).start()


async def upload_mnist(client: httpx.AsyncClient, csrf: str, name: str, images: Path, labels: Path) -> str:
    """Upload through the console's form (so it keeps the labels); the new dataset's uuid."""
    response = await client.post(
        "/datasets/upload", data={"csrf_token": csrf, "kind": "mnist", "name": name},
        files={"images": (images.name, images.read_bytes(), "application/octet-stream"),
               "labels": (labels.name, labels.read_bytes(), "application/octet-stream")})
    assert response.status_code == 303, response.text[:500]
    status_url = response.headers["location"]

    async def done() -> str | None:
        page = await client.get(status_url, headers=POLL)
        phase = re.search(r'data-phase="(\w+)"', page.text).group(1)
        assert phase not in ("failed", "cancelled"), page.text
        match = re.search(r'/datasets/([0-9a-f-]{36})"', page.text)
        return match.group(1) if phase == "done" and match else None

    return await wait_for(done, timeout=120)


async def create_cluster(client: httpx.AsyncClient, csrf: str, name: str) -> str:
    response = await client.post("/clusters", data={"csrf_token": csrf, "name": name, "template": EXAMPLE_MNIST_TEMPLATE})
    assert response.status_code == 303, response.text[:500]
    return response.headers["location"].rsplit("/", 1)[1]


@asynccontextmanager
async def run_world(base_url: str, hanami: HanamiAPI, train: tuple[Path, Path], test: tuple[Path, Path],
                    user: str = ADMIN_ID, password: str = ADMIN_PASSWORD) -> AsyncIterator[tuple]:
    """A logged-in client, two datasets uploaded through the console and a cluster; removed afterwards."""
    made: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=base_url) as client:
        csrf = await login(client, user, password)
        try:
            made["train"] = await upload_mnist(client, csrf, unique("run train"), *train)
            made["test"] = await upload_mnist(client, csrf, unique("run held out"), *test)
            made["cluster"] = await create_cluster(client, csrf, unique("run cluster"))
            yield client, made
        finally:
            if "cluster" in made:
                await hanami.delete_cluster(made["cluster"])
            for key in ("train", "test"):
                if key in made:
                    await hanami.delete_dataset(made[key])


async def start_run(client: httpx.AsyncClient, cluster: str, **fields: str) -> tuple[httpx.Response, dict]:
    form = await client.get(f"/clusters/{cluster}/runs/new")
    assert form.status_code == 200
    data = {"csrf_token": csrf_from(form.text), "run_id": re.search(r'name="run_id" value="([^"]+)"', form.text).group(1),
            **fields}
    return await client.post(f"/clusters/{cluster}/runs", data=data), data


async def wait_ended(client: httpx.AsyncClient, run_url: str, timeout: float = 180) -> str:
    async def ended() -> str | None:
        page = await client.get(run_url, headers=POLL)
        assert page.status_code in (200, 286), page.text[:300]
        state = re.search(r'data-testid="run-status" data-state="(\w+)"', page.text).group(1)
        return page.text if state not in ("queuing", "running") else None

    return await wait_for(ended, timeout=timeout, interval=0.1)


def curve_of(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="run-curve-data">(.*?)</script>', html, re.S).group(1))


def matrix_of(html: str) -> list[list[int]]:
    cells = re.findall(r'data-true="(\d)" data-predicted="(\d)">(\d+)<', html)
    matrix = [[0] * 10 for _ in range(10)]
    for true, predicted, count in cells:
        matrix[int(true)][int(predicted)] = int(count)
    assert len(cells) == 100
    return matrix


async def test_five_pass_run_curve_restart_checkpoint_restore_and_confusion(
        backend, hanami, demo_files, held_out_files, store_file) -> None:
    console = start_console(backend, store_file)
    made: dict[str, str] = {}
    try:
        async with httpx.AsyncClient(base_url=console.url) as client:
            csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
            made["train"] = await upload_mnist(client, csrf, unique("run train"), demo_files.small_images,
                                               demo_files.small_labels)
            made["test"] = await upload_mnist(client, csrf, unique("run held out"), *held_out_files)
            made["cluster"] = await create_cluster(client, csrf, unique("run cluster"))
            name = unique("five passes")
            fields = {"name": name, "train_uuid": made["train"], "test_uuid": made["test"], "passes": "5",
                      "patience": "0", "checkpoints": "1", "keep_results": "1"}
            response, sent = await start_run(client, made["cluster"], **fields)
            assert response.status_code == 303, response.text[:500]
            run_url = response.headers["location"]
            # Everything is queued at once: train, request, save for each pass.
            assert len(await hanami.list_tasks(made["cluster"])) == 15
            # The same form sent again starts nothing more and leads to the same run.
            again = await client.post(f"/clusters/{made['cluster']}/runs", data=sent)
            assert again.status_code == 303 and again.headers["location"] == run_url
            assert len(await hanami.list_tasks(made["cluster"])) == 15

            page = await wait_ended(client, run_url)
            curve = curve_of(page)
            assert curve["labels"] == [1, 2, 3, 4, 5] and len(curve["values"]) == 5
            assert all(0 <= v <= 100 for v in curve["values"])
            best = curve["best"]
            assert curve["values"][best - 1] == max(curve["values"])

            # Exactly one checkpoint of the run is left: the best pass's, named after run and pass.
            checkpoints = [c for c in (await hanami.list_checkpoints()).records() if c["name"].startswith(name)]
            assert [c["name"] for c in checkpoints] == [f"{name} pass {best}"]
            made["checkpoint"] = checkpoints[0]["uuid"]

            # The confusion matrix equals the one counted here from the labels and the kept result.
            full = await client.get(run_url)
            steps = re.findall(r'<tr data-pass="(\d+)"', full.text)
            assert steps == ["1", "2", "3", "4", "5"]
            run_id = run_url.rsplit("/", 1)[1]
            exported = json.loads((await client.get(f"{run_url}/export.json")).text)
            best_step = exported["passes_done"][best - 1]
            data = (await hanami.get_result(best_step["request"]))["data"]
            labels = held_out_files[1].read_bytes()[8:]
            by_hand = [[0] * 10 for _ in range(10)]
            for predicted, true in zip(data, labels):
                by_hand[true][predicted] += 1
            assert matrix_of(full.text) == by_hand
            assert 'data-testid="gallery"' in full.text and full.text.count("data:image/png;base64,") == min(
                48, sum(1 for p, t in zip(data, labels) if p != t))

            # The CSV export has the five passes, the best one marked.
            rows = list(csv.DictReader(io.StringIO((await client.get(f"{run_url}/export.csv")).text)))
            assert [r["pass"] for r in rows] == ["1", "2", "3", "4", "5"]
            assert [r["best"] for r in rows].count("yes") == 1 and rows[best - 1]["best"] == "yes"
            assert all(r["accuracy"] for r in rows)

        # A console restart (same shared store): the run, its curve and the session are still there.
        console.stop()
        console = start_console(backend, store_file)
        async with httpx.AsyncClient(base_url=console.url) as client:
            csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
            page = await client.get(run_url)
            assert page.status_code == 200
            assert curve_of(page.text)["labels"] == [1, 2, 3, 4, 5]
            listing = await client.get("/runs", params={"sort": "best_accuracy", "order": "desc"})
            assert f'data-run="{run_id}"' in listing.text
            panel = await client.get(f"/clusters/{made['cluster']}/runs", headers={"HX-Request": "true"})
            assert f'data-run="{run_id}"' in panel.text

            # One click restores the best pass: a restore task is queued on the cluster.
            before = set((await hanami.list_tasks(made["cluster"])).column("uuid"))
            restored = await client.post(f"{run_url}/restore", data={"csrf_token": csrf})
            assert restored.status_code == 303
            new_tasks = set((await hanami.list_tasks(made["cluster"])).column("uuid")) - before
            assert len(new_tasks) == 1
            assert f"pass {best}" in (await client.get(run_url)).text
    finally:
        console.stop()
        if "cluster" in made:
            await hanami.delete_cluster(made["cluster"])
        for key in ("train", "test"):
            if key in made:
                await hanami.delete_dataset(made[key])
        if "checkpoint" in made:
            await hanami.delete_checkpoint(made["checkpoint"])
        for record in (await hanami.list_results()).records():
            if str(record.get("name", "")).startswith("five passes"):
                await hanami.delete_result(record["uuid"])


@pytest.fixture
async def console(backend) -> AsyncIterator[ConsoleServer]:
    server = start_console(backend, "memory://")
    yield server
    server.stop()


def zero_digits(folder: Path, count: int) -> tuple[Path, Path]:
    """Blank images all labelled 0: they all look the same to a cluster, which answers all of them
    right or all wrong."""
    folder.mkdir(parents=True, exist_ok=True)
    write_idx_images(folder / "images.idx", np.zeros((count, 28, 28), np.uint8))
    write_idx_labels(folder / "labels.idx", np.zeros(count, np.uint8))
    return folder / "images.idx", folder / "labels.idx"


async def test_bad_input_is_refused_and_queues_nothing(console, hanami, demo_files, held_out_files) -> None:
    async with httpx.AsyncClient(base_url=console.url) as client:
        csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
        train = await upload_mnist(client, csrf, unique("refused train"), demo_files.small_images, demo_files.small_labels)
        cluster = await create_cluster(client, csrf, unique("refused cluster"))
        csv_set = await hanami.upload_csv(unique("refused csv"), demo_files.csv)
        try:
            good = {"name": unique("refused run"), "train_uuid": train, "test_uuid": train, "passes": "3"}
            cases = [
                ({"passes": "0"}, "passes", "from 1 to 100"), ({"passes": "101"}, "passes", "from 1 to 100"),
                ({"passes": "two"}, "passes", "from 1 to 100"), ({"patience": "3"}, "patience", "fewer passes"),
                ({"name": "ab"}, "name", "4 to 256"), ({"train_uuid": "0" * 8 + "-0000-0000-0000-" + "0" * 12},
                                                       "train_uuid", "listed datasets"),
                ({"test_uuid": csv_set}, "test_uuid", "MNIST datasets only"),
            ]
            for change, field, message in cases:
                response, _ = await start_run(client, cluster, **{**good, **change})
                assert response.status_code == 422, change
                assert f'id="{field}-error"' in response.text and message in response.text, change
            # Without the session's CSRF token nothing is queued either.
            forged = await client.post(f"/clusters/{cluster}/runs", data={**good, "run_id": "a" * 16})
            assert forged.status_code == 403
            assert len(await hanami.list_tasks(cluster)) == 0
            assert f'/clusters/{cluster}/runs' in (await client.get(f"/clusters/{cluster}")).text
        finally:
            await hanami.delete_cluster(cluster)
            await hanami.delete_dataset(train)
            await hanami.delete_dataset(csv_set)


async def test_early_stop_removes_the_queued_rest(console, hanami, demo_files, tmp_path) -> None:
    # Real digits to learn from; a held-out set of blank images labelled 0, on which the accuracy can
    # only be 0 or 100 %: it improves at most once, so with patience 1 the run stops by pass 3.
    train = (demo_files.train_images, demo_files.train_labels)
    async with run_world(console.url, hanami, train, zero_digits(tmp_path / "test", 50)) as (client, made):
        response, _ = await start_run(client, made["cluster"], name=unique("early stop"), train_uuid=made["train"],
                                      test_uuid=made["test"], passes="12", patience="1", checkpoints="1")
        page = await wait_ended(client, response.headers["location"])
        assert 'data-state="stopped"' in page and "Stopped early: no improvement for 1 passes" in page
        states = re.findall(r'<tr data-pass="\d+" data-state="(\w+)"', page)
        skipped = [number for number, state in enumerate(states, 1) if state == "skipped"]
        assert skipped and skipped == list(range(skipped[0], 13)), states
        exported = json.loads((await client.get(response.headers["location"] + "/export.json")).text)
        left = {row["uuid"]: row["state"] for row in (await hanami.list_tasks(made["cluster"])).records()}
        for step in exported["passes_done"]:
            if step["state"] == "skipped" and step["pass"] == skipped[0]:
                # The first skipped pass's tasks may have started, or even finished (its save running),
                # between the look and the removal: a started one is only marked aborted and runs to
                # its end (Q-T4). None of them is left waiting in the queue.
                assert left.get(step["train"]) != "queued" and left.get(step["request"]) != "queued", left
            elif step["state"] == "skipped":
                assert step["request"] not in left and step["train"] not in left, (step, left)
            else:
                assert step["state"] == "done" and step["accuracy"] in (0.0, 100.0), step
        # The skipped passes' saves ran anyway (never removed from the queue); only the best is kept.
        kept = [c for c in (await hanami.list_checkpoints()).records() if c["name"].startswith(exported["name"])]
        assert [c["name"] for c in kept] == [f"{exported['name']} pass {exported['best_pass']}"], exported
        await hanami.delete_checkpoint(kept[0]["uuid"])


async def test_a_run_whose_tasks_were_removed_outside_says_so(console, hanami, demo_files, held_out_files) -> None:
    train = (demo_files.train_images, demo_files.train_labels)
    async with run_world(console.url, hanami, train, held_out_files) as (client, made):
        response, _ = await start_run(client, made["cluster"], name=unique("removed"), train_uuid=made["train"],
                                      test_uuid=made["test"], passes="4")
        run_url = response.headers["location"]
        last = json.loads((await client.get(run_url + "/export.json")).text)["passes_done"][-1]
        # Someone removes the last pass's tasks with another client while they are still queued.
        await hanami.delete_task(last["request"], made["cluster"])
        await hanami.delete_task(last["train"], made["cluster"])
        page = await wait_ended(client, run_url)
        assert 'data-state="broken"' in page
        assert "The tasks of pass 4 were removed outside the console" in page
        assert re.findall(r'<tr data-pass="\d+" data-state="(\w+)"', page) == ["done", "done", "done", "removed"]


async def test_mistakes_of_a_result_need_the_labels_the_console_kept(
        console, hanami, demo_files, held_out_files) -> None:
    async with httpx.AsyncClient(base_url=console.url) as client:
        csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
        kept = await upload_mnist(client, csrf, unique("kept held out"), *held_out_files)
        elsewhere = await hanami.upload_mnist(unique("elsewhere held out"), *held_out_files)
        train = await hanami.upload_mnist(unique("mistakes train"), demo_files.small_images, demo_files.small_labels)
        cluster = (await hanami.create_cluster(unique("mistakes cluster"), EXAMPLE_MNIST_TEMPLATE))["uuid"]
        try:
            await hanami.create_task("mistakes train", "train", cluster, train)
            request = (await hanami.create_task("mistakes request", "request", cluster, kept))["uuid"]

            async def finished() -> bool:
                return (await hanami.list_tasks(cluster)).find("uuid", request)["state"] == "finished"

            await wait_for(finished, timeout=60)
            data = (await hanami.get_result(request))["data"]
            labels = held_out_files[1].read_bytes()[8:]
            by_hand = [[0] * 10 for _ in range(10)]
            for predicted, true in zip(data, labels):
                by_hand[true][predicted] += 1

            page = await client.get(f"/results/{request}/mistakes", params={"dataset_uuid": kept})
            assert page.status_code == 200 and matrix_of(page.text) == by_hand
            assert 'data-testid="hanami-accuracy"' in page.text and 'data-testid="gallery"' in page.text
            wrong = sum(1 for p, t in zip(data, labels) if p != t)
            assert f"{wrong} of {HELD_OUT} images misclassified" in page.text

            other = await client.get(f"/results/{request}/mistakes", params={"dataset_uuid": elsewhere})
            assert other.status_code == 200
            assert 'data-testid="labels-unknown"' in other.text and "data-true" not in other.text
            assert 'data-testid="hanami-accuracy"' in other.text
            # The result's page links to it after a check.
            checked = await client.post(f"/results/{request}/check", data={"csrf_token": csrf, "dataset_uuid": kept})
            assert f"/results/{request}/mistakes?dataset_uuid={kept}" in checked.text
        finally:
            await hanami.delete_cluster(cluster)
            for dataset in (kept, elsewhere, train):
                await hanami.delete_dataset(dataset)
            await hanami.delete_result(request)


async def test_two_replicas_viewing_one_run_check_each_pass_once(backend, hanami, redis_url, demo_files,
                                                                 held_out_files) -> None:
    """Both replicas poll the run at once; the lock in the shared store lets one advance it at a time,
    so Hanami sees exactly one check and one result deletion per pass (its audit log of the user)."""
    user, password = f"runs_{secrets.token_hex(3)}", "runs-password-1"
    await hanami.create_user(user, "Runs Admin", password, True)
    replicas = [start_console(backend, redis_url), start_console(backend, redis_url)]
    try:
        first, second = (replica.url for replica in replicas)
        train = (demo_files.small_images, demo_files.small_labels)
        async with run_world(first, hanami, train, held_out_files, user, password) as (client, made):
            response, _ = await start_run(client, made["cluster"], name=unique("replicas"), train_uuid=made["train"],
                                          test_uuid=made["test"], passes="4")
            path = httpx.URL(response.headers["location"]).path

            async def both_ended() -> bool:
                pages = await asyncio.gather(*(client.get(base + path, headers=POLL) for base in (first, second)))
                return all('data-state="finished"' in page.text for page in pages)

            await wait_for(both_ended, timeout=120, interval=0.02)
        async with HanamiClient(backend.url) as own_client:
            own = own_client.api((await own_client.login(user, password)).token)
            calls = [(e["endpoint"], e["request_type"]) for e in (await own.audit_log(0)).records()]
        assert calls.count(("v1/dataset/check", "POST")) == 4
        assert calls.count(("v1/request_result", "DELETE")) == 4
    finally:
        for replica in replicas:
            replica.stop()
        await hanami.delete_user(user)


async def test_csv_result_error_per_output_column(console, hanami, demo_files) -> None:
    """A CSV request on a dataset uploaded through the console: the mean absolute error of the outputs
    against the output column; a CSV dataset uploaded elsewhere: the console says it has no values."""
    async with httpx.AsyncClient(base_url=console.url) as client:
        csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)
        response = await client.post(
            "/datasets/upload", data={"csrf_token": csrf, "kind": "csv", "name": unique("csv values")},
            files={"csv": (demo_files.csv.name, demo_files.csv.read_bytes(), "text/csv")})
        assert response.status_code == 303

        async def uploaded() -> str | None:
            page = await client.get(response.headers["location"], headers=POLL)
            match = re.search(r'/datasets/([0-9a-f-]{36})"', page.text)
            return match.group(1) if 'data-phase="done"' in page.text and match else None

        dataset = await wait_for(uploaded, timeout=60)
        elsewhere = await hanami.upload_csv(unique("csv elsewhere"), demo_files.csv)
        created = await client.post("/clusters", data={"csrf_token": csrf, "name": unique("csv cluster"),
                                                       "template": EXAMPLE_CSV_TEMPLATE})
        cluster = created.headers["location"].rsplit("/", 1)[1]
        try:
            for kind in ("train", "request"):
                queued = await client.post("/tasks/new", data={"csrf_token": csrf, "name": f"csv {kind} task",
                                                               "type": kind, "cluster_uuid": cluster,
                                                               "dataset_uuid": dataset, "repeat": "1"})
                assert queued.status_code == 303, queued.text[:300]

            async def request_done() -> bool:
                rows = (await hanami.list_tasks(cluster)).records()
                return len(rows) == 2 and all(r["state"] == "finished" for r in rows)

            await wait_for(request_done, timeout=60)
            results = set((await hanami.list_results()).column("uuid"))
            result = next(uuid for uuid in (await hanami.list_tasks(cluster)).column("uuid") if uuid in results)
            data = (await hanami.get_result(result))["data"]
            # By hand: one input and one output neuron, so cycle c expects row c of test_output (§4.23).
            lines = demo_files.csv.read_text().splitlines()
            column = [float(line.split(",")[1]) for line in lines[1:]]
            errors = [abs(value - column[c]) for c, value in enumerate(data) if c < len(column)]
            expected = sum(errors) / len(errors)

            page = await client.get(f"/results/{result}/mistakes", params={"dataset_uuid": dataset})
            assert page.status_code == 200, page.text[:300]
            shown = float(re.search(r'data-testid="mae">([^<]+)<', page.text).group(1))
            assert shown == pytest.approx(expected, rel=1e-4)
            other = await client.get(f"/results/{result}/mistakes", params={"dataset_uuid": elsewhere})
            assert 'data-testid="csv-values-unknown"' in other.text
            await hanami.delete_result(result)
        finally:
            await hanami.delete_cluster(cluster)
            await hanami.delete_dataset(dataset)
            await hanami.delete_dataset(elsewhere)
