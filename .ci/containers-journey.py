"""A user's journey in Chromium through the compose stack's proxy (run by .ci/containers).

Log in, upload a small MNIST pair, create a cluster from the MNIST example, train it, ask it about
the digits, draw one in direct IO, log out. Then log in again, find the console replica that serves
this browser (by the request id of a response in the replicas' logs), stop it, and show the same
session goes on on the other replica: still logged in, a form still accepted, the task runs.

    python .ci/containers-journey.py URL DATA_DIR REPLICA_CONTAINER...

URL is the console behind the proxy (http://HOST:PORT/console), DATA_DIR holds the demo files of
`hanami-console demo-data`, the replicas are podman container names. The admin comes from
HANAMI_ADMIN_USER_ID, HANAMI_ADMIN_USER_NAME and HANAMI_ADMIN_PASSWORD. Exits non-zero on any failure.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = os.environ.get("HANAMI_CONSOLE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic"]


def say(message: str) -> None:
    print(f"journey: {message}", flush=True)


def log_in(page: Page, base: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("User id").fill(os.environ["HANAMI_ADMIN_USER_ID"])
    page.get_by_label("Password").fill(os.environ["HANAMI_ADMIN_PASSWORD"])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name=f"Welcome, {os.environ['HANAMI_ADMIN_USER_NAME']}")).to_be_visible()


def log_out(page: Page, base: str) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(base + "/login")
    page.goto(base + "/datasets")  # the session is gone on the server, not only in this page
    expect(page).to_have_url(base + "/login?next=/datasets")


def upload_mnist(page: Page, base: str, name: str, data: Path) -> None:
    page.goto(base + "/datasets/upload")
    form = page.get_by_test_id("mnist-form")
    form.get_by_label("Dataset name").fill(name)
    form.get_by_label("Images file (idx3-ubyte)").set_input_files(str(data / "mnist-small-images.idx3-ubyte"))
    form.get_by_label("Labels file (idx1-ubyte)").set_input_files(str(data / "mnist-small-labels.idx1-ubyte"))
    form.get_by_role("button", name="Upload MNIST dataset").click()
    expect(page.get_by_test_id("upload-done")).to_contain_text(name, timeout=60_000)
    page.get_by_role("link", name="Open the dataset").click()
    expect(page.get_by_test_id("lines")).to_have_text("200")
    expect(page.get_by_test_id("inputs")).to_have_text("784 (28 × 28)")


def create_cluster(page: Page, base: str, name: str) -> str:
    page.goto(base + "/clusters/new")
    page.get_by_role("link", name="Start from the MNIST example").click()
    expect(page.get_by_test_id("template-ok")).to_contain_text("3 bricks")
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create cluster").click()
    expect(page.get_by_role("heading", name=f"Cluster {name}")).to_be_visible()
    expect(page.get_by_test_id("cluster-tasks")).to_be_visible()
    return page.url


def run_task(page: Page, cluster_url: str, kind: str, dataset: str, task: str) -> None:
    page.goto(cluster_url)
    page.get_by_role("link", name=f"{kind}…").click()
    page.get_by_label("Dataset", exact=True).select_option(label=f"{dataset} (mnist)")
    page.get_by_label("Task name", exact=True).fill(task)
    page.get_by_role("button", name="Queue task").click()
    expect(page.get_by_role("status")).to_contain_text(f"Queued {kind.lower()} task {task}")
    row = page.locator("tr", has_text=task)
    expect(row.locator(".badge")).to_have_text("finished", timeout=60_000)


def direct_io(page: Page, cluster_url: str) -> None:
    page.goto(cluster_url)
    page.get_by_test_id("direct-io-link").click()
    status = page.get_by_test_id("bridge-status")
    page.get_by_role("button", name="Start direct IO").click()
    expect(status).to_have_attribute("data-state", "open")  # the websocket went through nginx
    box = page.get_by_test_id("draw-canvas").bounding_box()
    assert box, "no drawing canvas"
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.2 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.7 * box["width"], box["y"] + 0.2 * box["height"], steps=8)
    page.mouse.move(box["x"] + 0.45 * box["width"], box["y"] + 0.85 * box["height"], steps=8)
    page.mouse.up()
    page.get_by_test_id("ask").click()
    expect(page.get_by_test_id("winner")).to_contain_text("Winning class:")
    page.get_by_role("button", name="Disconnect").click()
    expect(status).to_have_attribute("data-state", "closed")


def serving_replica(page: Page, base: str, replicas: list[str]) -> str:
    """The replica whose log has the request id of a page just loaded through the proxy."""
    response = page.goto(base + "/datasets")
    assert response is not None and response.ok, f"datasets page: {response and response.status}"
    request_id = response.headers["x-request-id"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for name in replicas:
            logs = subprocess.run(["podman", "logs", name], capture_output=True, text=True, check=True)
            if request_id in logs.stdout + logs.stderr:
                return name
        time.sleep(0.2)
    raise AssertionError(f"request {request_id} is in no replica's log")


def main() -> int:
    base, data, replicas = sys.argv[1].rstrip("/"), Path(sys.argv[2]), sys.argv[3:]
    tag = secrets.token_hex(3)
    dataset, cluster = f"digits {tag}", f"journey {tag}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(20_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        log_in(page, base)
        say("logged in through the proxy")
        upload_mnist(page, base, dataset, data)
        say(f"uploaded the MNIST pair '{dataset}' (200 digits)")
        cluster_url = create_cluster(page, base, cluster)
        say(f"created cluster '{cluster}'")
        run_task(page, cluster_url, "Train", dataset, "learn digits")
        say("train task finished")
        run_task(page, cluster_url, "Request", dataset, "ask digits")
        page.locator("tr", has_text="ask digits").get_by_role("link", name="Result").click()
        expect(page.get_by_test_id("result-kind")).to_contain_text("MNIST")
        expect(page.get_by_text("1–25 of 200")).to_be_visible()
        say("request task finished, its result shown")
        direct_io(page, cluster_url)
        say("direct IO: drew a digit, the cluster answered over the websocket")
        log_out(page, base)
        say("logged out")

        log_in(page, base)
        first = serving_replica(page, base, replicas)
        say(f"logged in again; this browser is on {first}")
        subprocess.run(["podman", "stop", "-t", "10", first], check=True, capture_output=True)
        say(f"stopped {first}")
        page.goto(cluster_url)  # no new login: the session lives in Redis
        expect(page.get_by_role("heading", name=f"Cluster {cluster}")).to_be_visible()
        run_task(page, cluster_url, "Request", dataset, "ask once more")  # a CSRF-checked form, then polling
        second = serving_replica(page, base, replicas)
        assert second != first, f"still served by {first} after it stopped"
        say(f"the session went on on {second}: same login, a new task queued and finished")
        log_out(page, base)
        say("logged out")
        assert not errors, f"JavaScript errors: {errors}"
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
