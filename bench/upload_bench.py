"""What a dataset upload through the console costs, against a direct client of the same backend.

One run starts the embedded Hanami (``EmulatorServer``, in this process, free loopback port) and
the console as a SUBPROCESS (``hanami-console serve``, so its memory can be read from
/proc/<pid>/status), writes a valid MNIST idx pair (default) or CSV file of about ``--mb`` MB,
then uploads it

  (a) through the console like a browser: log in with the form, multipart POST with the CSRF
      token (the file streamed from disk), then poll the upload's status page until it is done;
  (b) with a direct client of the same backend (``HanamiAPI.upload_mnist`` / ``upload_csv``), in
      a subprocess too, so that neither client shares a GIL with the emulator.

It prints both throughputs (MB/s over the whole upload, validation included for (a); and over
the transfer alone, until every byte reached the backend, before Hanami converts the data), their
ratio, and the console's resident memory: the baseline after a small warm-up upload, the peak
sampled every 20 ms during the big upload, and the growth. Not a pytest test:

    .venv/bin/python bench/upload_bench.py [--mb 50] [--kind mnist|csv]

``--backend-url http://127.0.0.1:PORT`` measures against a running Hanami (the real server) instead
of an embedded one; its account comes from ``--user-id`` and the ``HANAMI_ADMIN_PASSWORD``
environment variable (defaults: ``HANAMI_ADMIN_USER_ID``, else the real-hanami scripts' asdf /
asdfasdf).

MNIST is the default because the emulator converts CSV data in pure Python (about a minute for
50 MB), which would measure the emulator rather than the upload path; the real Hanami converts it
in C++. With ``--kind csv`` the backend timeouts are raised accordingly; there the console's own
strict line-by-line check (webconsole.protocol.csvdata.validate_csv, pure Python, about 8 MB/s)
dominates leg (a).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from webconsole.emulator import EmulatorConfig, EmulatorServer
from webconsole.hanami.client import HanamiClient
from webconsole.protocol.idx import write_idx_images, write_idx_labels

ADMIN_ID, ADMIN_PASSWORD = "bench_admin", "bench-password-1"  # of the embedded Hanami; see main()
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PHASE = re.compile(r'data-phase="(\w+)"')
SAMPLE_INTERVAL = 0.02


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_csv(path: Path, megabytes: float) -> int:
    """A valid CSV (two numeric columns, LF endings) of about ``megabytes`` MB."""
    target = int(megabytes * 1_000_000)
    with path.open("w", encoding="ascii", newline="\n") as out:
        out.write("test_input,test_output\n")
        block = "".join(f"{i / 100000:.12f},{(i * 7 % 1000) / 1000:.12f}\n" for i in range(10_000))
        while out.tell() < target:
            out.write(block)
    return path.stat().st_size


def write_mnist(folder: Path, megabytes: float) -> tuple[Path, Path, int]:
    """A valid MNIST pair (random pixels, labels 0..9) of about ``megabytes`` MB together."""
    count = int(megabytes * 1_000_000 / 785)
    rng = np.random.default_rng(7)
    images, labels = folder / f"images-{count}.idx3-ubyte", folder / f"labels-{count}.idx1-ubyte"
    write_idx_images(images, rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8))
    write_idx_labels(labels, rng.integers(0, 10, size=count, dtype=np.uint8))
    return images, labels, images.stat().st_size + labels.stat().st_size


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


class Sampler:
    """Samples a process's VmRSS in a thread; ``peak`` is the highest value seen."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(SAMPLE_INTERVAL)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kib(self.pid))


def start_console(backend_url: str, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = dict(os.environ,
               HANAMI_CONSOLE_BACKEND_URL=backend_url,
               HANAMI_CONSOLE_SECRET_KEY=secrets.token_urlsafe(48),
               HANAMI_CONSOLE_SESSION_STORE_URL="memory://",
               HANAMI_CONSOLE_UPLOAD_DIR=str(work),
               HANAMI_CONSOLE_LOG_LEVEL="warning",
               HANAMI_CONSOLE_LOGIN_RATE_LIMIT="1000",
               HANAMI_CONSOLE_BACKEND_TIMEOUT="300",
               TMPDIR=str(work))
    cli = Path(sys.executable).with_name("hanami-console")
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "webconsole.cli"]
    process = subprocess.Popen([*command, "serve", "--host", "127.0.0.1", "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the console did not start")
        time.sleep(0.1)


def console_login(client: httpx.Client) -> str:
    form = client.get("/login")
    done = client.post("/login", data={"user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "next": "/",
                                       "csrf_token": CSRF.search(form.text).group(1)})
    assert done.status_code == 303, done.text[:300]
    return CSRF.search(client.get("/datasets/upload").text).group(1)


def console_upload(client: httpx.Client, csrf: str, name: str, paths: list[Path]) -> tuple[float, float, float]:
    """Seconds until (the POST was answered, every byte was sent to Hanami, the upload was done)."""
    kind = "mnist" if len(paths) == 2 else "csv"
    fields = ("images", "labels") if kind == "mnist" else ("csv",)
    started = time.perf_counter()
    handles = [path.open("rb") for path in paths]
    try:
        response = client.post(
            "/datasets/upload", data={"csrf_token": csrf, "kind": kind, "name": name},
            files={key: (path.name, handle, "application/octet-stream")
                   for key, path, handle in zip(fields, paths, handles)})
    finally:
        for handle in handles:
            handle.close()
    assert response.status_code == 303, f"{response.status_code}: {response.text[:500]}"
    answered = time.perf_counter() - started
    sent = 0.0
    status_url = response.headers["location"]
    while True:
        page = client.get(status_url, headers={"HX-Request": "true", "X-Console-Poll": "1"})
        phase = PHASE.search(page.text).group(1)
        if phase in ("finalising", "done") and not sent:
            sent = time.perf_counter() - started
        if phase == "done":
            return answered, sent, time.perf_counter() - started
        if phase in ("failed", "cancelled"):
            raise RuntimeError(f"console upload {phase}: {page.text[:800]}")
        time.sleep(0.1)


async def direct_upload(backend_url: str, name: str, paths: list[Path]) -> tuple[float, float]:
    """Seconds until (every byte was sent, the upload was done)."""
    async with HanamiClient(backend_url, timeout=300) as hanami:
        api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
        started = time.perf_counter()
        sent = 0.0

        async def progress(done: int, total: int) -> None:
            nonlocal sent
            if done >= total and not sent:
                sent = time.perf_counter() - started

        if len(paths) == 2:
            await api.upload_mnist(name, paths[0], paths[1], progress, complete_timeout=300)
        else:
            await api.upload_csv(name, paths[0], progress, complete_timeout=300)
        return sent, time.perf_counter() - started


def direct_in_subprocess(backend_url: str, name: str, paths: list[Path]) -> tuple[float, float]:
    """Run (b) in its own process, like the console: a client in this process would share the
    GIL with the emulator's threads and look faster than any separate client can be."""
    env = dict(os.environ, BENCH_USER_ID=ADMIN_ID, BENCH_PASSWORD=ADMIN_PASSWORD)
    done = subprocess.run([sys.executable, __file__, "--direct", backend_url, name, *map(str, paths)],
                          check=True, capture_output=True, text=True, env=env)
    sent, total = done.stdout.split()
    return float(sent), float(total)


async def delete_all(backend_url: str, prefix: str) -> None:
    async with HanamiClient(backend_url) as hanami:
        api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
        for row in (await api.list_datasets()).records():
            if str(row["name"]).startswith(prefix):
                await api.delete_dataset(row["uuid"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=50.0, help="size of the upload in MB")
    parser.add_argument("--kind", choices=("mnist", "csv"), default="mnist")
    parser.add_argument("--runs", type=int, default=3, help="uploads per way; medians are printed")
    parser.add_argument("--backend-url", help="a running Hanami to measure against (no embedded one)")
    parser.add_argument("--user-id", default=os.environ.get("HANAMI_ADMIN_USER_ID", "asdf"),
                        help="its account (password: HANAMI_ADMIN_PASSWORD, default asdfasdf)")
    parser.add_argument("--direct", nargs="+", metavar="ARG", help=argparse.SUPPRESS)  # child of (b)
    args = parser.parse_args()
    global ADMIN_ID, ADMIN_PASSWORD
    if args.direct:
        ADMIN_ID, ADMIN_PASSWORD = os.environ["BENCH_USER_ID"], os.environ["BENCH_PASSWORD"]
        url, name, *paths = args.direct
        sent, total = asyncio.run(direct_upload(url, name, [Path(p) for p in paths]))
        print(sent, total)
        return 0
    if args.backend_url:
        ADMIN_ID, ADMIN_PASSWORD = args.user_id, os.environ.get("HANAMI_ADMIN_PASSWORD", "asdfasdf")
    with tempfile.TemporaryDirectory(prefix="upload-bench-") as tmp:
        work = Path(tmp)
        emulator = None
        if args.backend_url:
            backend_url = args.backend_url.rstrip("/")
        else:
            emulator = EmulatorServer(EmulatorConfig(state_dir=work / "hanami", port=0, admin_id=ADMIN_ID,
                                                     admin_name="Bench Admin", admin_password=ADMIN_PASSWORD))
            emulator.start()
            backend_url = emulator.url
        console, url = start_console(backend_url, work)
        try:
            if args.kind == "mnist":
                small_images, small_labels, _ = write_mnist(work, 0.2)
                big_images, big_labels, size = write_mnist(work, args.mb)
                small, big = [small_images, small_labels], [big_images, big_labels]
            else:
                small, big = [work / "warmup.csv"], [work / "bench.csv"]
                write_csv(small[0], 0.2)
                size = write_csv(big[0], args.mb)
            tag = f"bench {secrets.token_hex(3)}"
            console_runs, direct_runs = [], []
            with httpx.Client(base_url=url, timeout=300) as client:
                csrf = console_login(client)
                console_upload(client, csrf, f"{tag} warmup", small)  # imports, first allocations
                baseline = rss_kib(console.pid)
                with Sampler(console.pid) as sampler:
                    for run in range(args.runs):
                        console_runs.append(console_upload(client, csrf, f"{tag} console {run}", big))
                        asyncio.run(delete_all(backend_url, f"{tag} console"))
            for run in range(args.runs):
                direct_runs.append(direct_in_subprocess(backend_url, f"{tag} direct {run}", big))
                asyncio.run(delete_all(backend_url, f"{tag} direct"))
            answered = statistics.median(r[0] for r in console_runs)
            console_sent = statistics.median(r[1] for r in console_runs)
            console_seconds = statistics.median(r[2] for r in console_runs)
            direct_sent = statistics.median(r[0] for r in direct_runs)
            direct_seconds = statistics.median(r[1] for r in direct_runs)
            hwm = rss_kib(console.pid, "VmHWM")
            asyncio.run(delete_all(backend_url, tag))
        finally:
            console.terminate()
            console.wait(timeout=20)
            if emulator is not None:
                emulator.stop()

    mb = size / 1e6
    rows = [
        ("backend", f"Hanami at {backend_url}" if args.backend_url else "embedded Hanami (emulator)"),
        ("upload", f"{mb:.1f} MB {args.kind.upper()}, median of {args.runs} runs each way"),
        ("(a) console, whole upload", f"{mb / console_seconds:6.1f} MB/s  ({console_seconds:.2f} s; POST answered "
                                      f"after {answered:.2f} s incl. validation)"),
        ("(a) console, until all sent", f"{mb / console_sent:6.1f} MB/s  ({console_sent:.2f} s, "
                                        "status polled every 0.1 s)"),
        ("(b) direct, whole upload", f"{mb / direct_seconds:6.1f} MB/s  ({direct_seconds:.2f} s)"),
        ("(b) direct, until all sent", f"{mb / direct_sent:6.1f} MB/s  ({direct_sent:.2f} s)"),
        ("ratio (a)/(b), whole upload", f"{direct_seconds / console_seconds:6.2f}"),
        ("ratio (a)/(b), until all sent", f"{direct_sent / console_sent:6.2f}"),
        ("console RSS baseline", f"{baseline / 1024:6.1f} MiB"),
        ("console RSS peak (uploads)", f"{sampler.peak / 1024:6.1f} MiB"),
        ("console RSS growth", f"{(sampler.peak - baseline) / 1024:6.1f} MiB"),
        ("console VmHWM (lifetime)", f"{hwm / 1024:6.1f} MiB"),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'measure':<{width}}  value")
    print("-" * (width + 2 + 60))
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
