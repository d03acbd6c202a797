"""Screenshots of the console's main pages, made from the demo, for the README.

    python tools/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]

Starts ``hanami-console demo`` (embedded backend) in a temporary folder, walks the main journey in
Chromium the way a newcomer would (upload the demo digits, create a cluster from the MNIST example,
train it, ask it about the held-out digits, check the result), and saves a PNG of each main page at
1366 px (light and dark) and at 360 px. Run it again after a change of the templates: the pictures
are remade the same way.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

ADMIN = ("demo_admin", "Demo Admin", "demo-admin-password")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_demo(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "HANAMI_ADMIN_USER_ID": ADMIN[0], "HANAMI_ADMIN_USER_NAME": ADMIN[1],
           "HANAMI_ADMIN_PASSWORD": ADMIN[2]}
    log = open(folder / "demo.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "webconsole.cli", "demo", "--port", str(port),
                                "--state-dir", str(folder / "state")], stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/readyz", timeout=1)
            return process, base
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the demo did not start: see {folder / 'demo.log'}")
            time.sleep(0.3)


def log_in(page: Page, base: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("User id").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[2])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("current-project")).to_be_visible()


def upload(page: Page, base: str, name: str, images: Path, labels: Path) -> None:
    page.goto(base + "/datasets/upload")
    form = page.get_by_test_id("mnist-form")
    form.get_by_label("Dataset name").fill(name)
    form.get_by_label("Images file (idx3-ubyte)").set_input_files(str(images))
    form.get_by_label("Labels file (idx1-ubyte)").set_input_files(str(labels))
    form.get_by_role("button", name="Upload").click()
    expect(page.get_by_test_id("upload-status")).to_have_attribute("data-phase", "done", timeout=60_000)


def journey(page: Page, base: str, data: Path) -> dict[str, str]:
    """Make what the pictures show; returns the paths of the pages worth showing."""
    log_in(page, base)
    upload(page, base, "digits for training", data / "mnist-train-images.idx3-ubyte", data / "mnist-train-labels.idx1-ubyte")
    upload(page, base, "held out digits", data / "mnist-test-images.idx3-ubyte", data / "mnist-test-labels.idx1-ubyte")
    page.goto(base + "/clusters/new")
    page.get_by_role("link", name="Start from the MNIST example").click()
    page.get_by_label("Name").fill("digit reader")
    page.get_by_role("button", name="Create cluster").click()
    cluster_url = page.url
    page.get_by_role("link", name="Train…").click()
    page.get_by_label("Dataset", exact=True).select_option(label="digits for training (mnist)")
    page.get_by_label("Task name", exact=True).fill("learn digits")
    page.get_by_label("Train how many times?").fill("3")
    page.get_by_role("button", name="Queue task").click()
    expect(page.locator("tr", has_text="learn digits 3 of 3").locator(".badge")).to_have_text("finished", timeout=180_000)
    page.get_by_role("link", name="Request…").click()
    page.get_by_label("Dataset", exact=True).select_option(label="held out digits (mnist)")
    page.get_by_label("Task name", exact=True).fill("read held out digits")
    page.get_by_role("button", name="Queue task").click()
    row = page.locator("tr", has_text="read held out digits")
    expect(row.locator(".badge")).to_have_text("finished", timeout=60_000)
    row.get_by_role("link", name="Result").click()
    result_url = page.url
    page.get_by_role("button", name="Check accuracy").click()
    expect(page.get_by_test_id("accuracy")).to_be_visible()
    cluster = cluster_url.removeprefix(base)
    return {
        "home": "/", "datasets": "/datasets", "new-cluster": "/clusters/new?example=mnist", "cluster": cluster,
        "new-task": "/tasks/new?cluster_uuid=" + cluster.rsplit("/", 1)[-1] + "&type=request",
        "result": result_url.removeprefix(base), "direct-io": cluster + "/direct", "system": "/system",
        "audit": "/audit",
    }


def shoot(page: Page, base: str, pages: dict[str, str], out: Path, suffix: str, full: bool) -> None:
    for name, path in pages.items():
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        if name == "result":  # show the accuracy box too
            page.get_by_role("button", name="Check accuracy").click()
            expect(page.get_by_test_id("accuracy")).to_be_visible()
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(out / f"{name}{suffix}.png"), full_page=full)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/screenshots", help="folder for the PNG files")
    parser.add_argument("--chromium", default=os.environ.get("HANAMI_CONSOLE_CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="console-screenshots-") as work:
        process, base = start_demo(Path(work))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                context = browser.new_context(viewport={"width": 1366, "height": 860})
                context.set_default_timeout(30_000)
                page = context.new_page()
                pages = journey(page, base, Path(work) / "state" / "demo-data")
                shoot(page, base, pages, out, "", full=False)
                for scheme, width, suffix, wanted in (("dark", 1366, "-dark", ("cluster", "result")),
                                                      ("light", 360, "-360", ("cluster",))):
                    other = browser.new_context(viewport={"width": width, "height": 780}, color_scheme=scheme,
                                                storage_state=context.storage_state())
                    shoot(other.new_page(), base, {k: v for k, v in pages.items() if k in wanted}, out, suffix,
                          full=width < 800)
                    other.close()
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=20)
    names = sorted(p.name for p in out.glob("*.png"))
    print(f"{len(names)} screenshots in {out}: " + ", ".join(re.sub(r"\.png$", "", n) for n in names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
