"""What a train-and-evaluate run costs, against plain training of the same length, and its curve.

Starts the console as a SUBPROCESS (``hanami-console serve``) next to a backend: the embedded
Hanami (in this process, free loopback port) by default, or a running one with ``--backend URL``
(the real Hanami: ``--user``/``--password`` of its admin). Uploads the demo digits (4,000 train /
1,000 held out) through the console, so it keeps the held-out labels, then

  (a) plain: queues ``--passes`` train tasks on one cluster at once (a direct client) and polls
      the task list every ``--poll`` s until all have finished;
  (c) the same with a request task on the held-out digits after every train task, no checks:
      what the backend alone needs for the run's work;
  (b) run: starts a run of ``--passes`` passes on another cluster of the same template through the
      console's form and polls the run's page like a browser (every ``--poll`` s) until it ended.

Prints both wall times, their ratio, and the run's accuracy per pass. Not a pytest test:

    .venv/bin/python bench/runs_bench.py [--passes 10] [--backend http://127.0.0.1:PORT --user U --password P]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from upload_bench import ADMIN_ID, ADMIN_PASSWORD, CSRF, PHASE, console_login, start_console  # noqa: E402

from webconsole.demo_data import write_demo_data  # noqa: E402
from webconsole.emulator import EmulatorConfig, EmulatorServer  # noqa: E402
from webconsole.hanami.client import HanamiClient  # noqa: E402
from webconsole.protocol.template import EXAMPLE_MNIST_TEMPLATE  # noqa: E402

POLL_HEADERS = {"HX-Request": "true", "X-Console-Poll": "1"}


def upload(client: httpx.Client, csrf: str, name: str, images: Path, labels: Path) -> str:
    with images.open("rb") as fi, labels.open("rb") as fl:
        response = client.post("/datasets/upload", data={"csrf_token": csrf, "kind": "mnist", "name": name},
                               files={"images": (images.name, fi), "labels": (labels.name, fl)})
    assert response.status_code == 303, response.text[:300]
    status = response.headers["location"]
    while True:
        page = client.get(status, headers=POLL_HEADERS).text
        phase = PHASE.search(page).group(1)  # type: ignore[union-attr]
        if phase == "done":
            return re.search(r'/datasets/([0-9a-f-]{36})"', page).group(1)  # type: ignore[union-attr]
        assert phase not in ("failed", "cancelled"), page
        time.sleep(0.2)


async def plain(backend: str, user: str, password: str, dataset: str, passes: int, poll: float,
                held_out: str | None = None) -> float:
    """Seconds until ``passes`` train tasks (each followed by a request on ``held_out`` if given) ran."""
    async with HanamiClient(backend, timeout=300) as hanami:
        api = hanami.api((await hanami.login(user, password)).token)
        cluster = (await api.create_cluster(f"bench plain {secrets.token_hex(3)}", EXAMPLE_MNIST_TEMPLATE))["uuid"]
        try:
            start = time.perf_counter()
            for number in range(passes):
                await api.create_task(f"plain pass {number + 1}", "train", cluster, dataset)
                if held_out:
                    await api.create_task(f"plain request {number + 1}", "request", cluster, held_out)
            while True:
                states = (await api.list_tasks(cluster)).column("state")
                if all(state == "finished" for state in states):
                    return time.perf_counter() - start
                await asyncio.sleep(poll)
        finally:
            await api.delete_cluster(cluster)
            if held_out:
                for record in (await api.list_results()).records():
                    if str(record.get("name", "")).startswith("plain request"):
                        await api.delete_result(record["uuid"])


def run(client: httpx.Client, csrf: str, cluster: str, train: str, test: str, passes: int, poll: float,
        checkpoints: bool) -> tuple[float, dict]:
    form = client.get(f"/clusters/{cluster}/runs/new").text
    run_id = re.search(r'name="run_id" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    fields = {"csrf_token": csrf, "run_id": run_id, "name": f"bench run {secrets.token_hex(3)}",
              "train_uuid": train, "test_uuid": test, "passes": str(passes), "patience": "0"}
    if checkpoints:
        fields["checkpoints"] = "1"
    start = time.perf_counter()
    response = client.post(f"/clusters/{cluster}/runs", data=fields)
    assert response.status_code == 303, response.text[:500]
    url = response.headers["location"]
    while True:
        page = client.get(url, headers=POLL_HEADERS).text
        state = re.search(r'data-testid="run-status" data-state="(\w+)"', page).group(1)  # type: ignore[union-attr]
        if state not in ("queuing", "running"):
            elapsed = time.perf_counter() - start
            return elapsed, json.loads(client.get(url + "/export.json").text)
        time.sleep(poll)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between polls (a browser polls every 1.5 s)")
    parser.add_argument("--backend", help="URL of a running Hanami (default: start the embedded one)")
    parser.add_argument("--user", default=ADMIN_ID)
    parser.add_argument("--password", default=ADMIN_PASSWORD)
    parser.add_argument("--checkpoints", action="store_true", help="the run saves a checkpoint per pass")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="runs-bench-"))
    emulator = None
    backend = args.backend
    if backend is None:
        emulator = EmulatorServer(EmulatorConfig(state_dir=work / "hanami", port=0, admin_id=ADMIN_ID,
                                                 admin_name="Bench Admin", admin_password=ADMIN_PASSWORD,
                                                 threading_delay=0.0))
        emulator.start()
        backend = emulator.url
    console, url = start_console(backend, work)
    try:
        demo = write_demo_data(work / "demo")
        with httpx.Client(base_url=url, timeout=300) as client:
            if args.user != ADMIN_ID:
                page = client.get("/login").text
                client.post("/login", data={"user_id": args.user, "password": args.password, "next": "/",
                                            "csrf_token": CSRF.search(page).group(1)})  # type: ignore[union-attr]
                csrf = CSRF.search(client.get("/").text).group(1)  # type: ignore[union-attr]
            else:
                csrf = console_login(client)
            tag = secrets.token_hex(3)
            train = upload(client, csrf, f"bench train {tag}", demo.train_images, demo.train_labels)
            test = upload(client, csrf, f"bench held out {tag}", demo.test_images, demo.test_labels)
            created = client.post("/clusters", data={"csrf_token": csrf, "name": f"bench run {tag}",
                                                     "template": EXAMPLE_MNIST_TEMPLATE})
            cluster = created.headers["location"].rsplit("/", 1)[1]
            plain_seconds = asyncio.run(plain(backend, args.user, args.password, train, args.passes, args.poll))
            both_seconds = asyncio.run(plain(backend, args.user, args.password, train, args.passes, args.poll, test))
            run_seconds, record = run(client, csrf, cluster, train, test, args.passes, args.poll, args.checkpoints)
        print(f"backend                      {'embedded Hanami' if emulator else backend}")
        print(f"(a) {args.passes} plain train passes     {plain_seconds:8.2f} s")
        print(f"(c) {args.passes} x train + request   {both_seconds:8.2f} s   (queued directly, no checks)")
        print(f"(b) run of {args.passes} passes (+check)  {run_seconds:8.2f} s"
              f"{' with a checkpoint per pass' if args.checkpoints else ''}")
        print(f"ratio (b)/(a)                {run_seconds / plain_seconds:8.2f}")
        print(f"ratio (b)/(c)                {run_seconds / both_seconds:8.2f}")
        print("pass  accuracy  train s  request s  seen after s")
        for step in record["passes_done"]:
            seen = step["checked_at"] - record["created_at"] if step.get("checked_at") else float("nan")
            accuracy = step["accuracy"] if step["accuracy"] is not None else float("nan")
            print(f"{step['pass']:4d}  {accuracy:7.2f}%  {step['train_seconds'] or 0:7.0f}  "
                  f"{step['request_seconds'] or 0:9.0f}  {seen:12.2f}")
        print(f"best pass                    {record['best_pass']}")
        async def clean() -> None:
            async with HanamiClient(backend, timeout=300) as hanami:
                api = hanami.api((await hanami.login(args.user, args.password)).token)
                await api.delete_cluster(cluster)
                await api.delete_dataset(train)
                await api.delete_dataset(test)
                for step in record["passes_done"]:
                    if step.get("checkpoint") == "kept":
                        await api.delete_checkpoint(step["save"])
        asyncio.run(clean())
    finally:
        console.terminate()
        console.wait(timeout=20)
        if emulator is not None:
            emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
