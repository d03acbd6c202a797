"""What the console's list pages cost, against a direct client fetching the same data from Hanami.

One run starts the embedded Hanami (``hanami-console emulator``) unless ``--backend-url`` names a
running one, and the console as subprocesses (``hanami-console serve --workers W``, SQLite sessions),
so that the console's CPU time can be read from /proc/PID/stat of its processes. The backend gets 0,
then 10, then 100 items of each kind (datasets, clusters, projects, users), and at each level every
list page is measured:

  (a) through the console: C logged-in sessions (one cookie jar and connection each) view the page
      in a closed loop for ``--seconds``: views/s, p50/p99, errors, console CPU ms per view;
  (b) with a direct client (``webconsole.hanami.HanamiClient``), C loops fetching what the page
      shows: the listing, and the details of the 25 shown datasets, each read once and then kept
      (as the console does); in the same run, so that the ratio (a)/(b) means something on a
      shared machine.

Backend calls per view are counted by the console's own ``/metrics`` on a one-worker console that
nothing else loads (so that the count is this page's alone) and by the direct client's call
observer. Then ``--think-sessions`` sessions browse random list pages with a think time (0.5-1.5 s)
for ``--think-seconds``: views/s, p50/p99, errors, the views over 250 ms, and the console's memory
(RSS of all its processes) at the start, the end and its peak; then as many direct-client loops
fetch what the same pages show under the same think time, for the p99 ratio. Not a pytest test:

    .venv/bin/python bench/pages_bench.py [--workers 2] [--sessions 20] [--seconds 5]
        [--think-sessions 200] [--think-seconds 60] [--backend-url URL --user ID --password PW]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx

from webconsole.hanami.client import HanamiAPI, HanamiClient
from webconsole.protocol.template import EXAMPLE_MNIST_TEMPLATE

ADMIN_ID, ADMIN_PASSWORD = "bench_admin", "bench-password-1"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CALLS = re.compile(r'^hanami_console_backend_calls_total\{[^}]*\} (\S+)$', re.M)
TAG = "pages bench"
PAGES = ("/datasets", "/clusters", "/projects", "/users", "/hosts")
SHOWN = 25  # rows per page, the console's default
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the {what} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {what} did not start") from None
            time.sleep(0.1)


def cli() -> list[str]:
    script = Path(sys.executable).with_name("hanami-console")
    return [str(script)] if script.exists() else [sys.executable, "-m", "webconsole.cli"]


CONSOLE_CLI: list[str] = []  # --console-cli: the console of another installation (before/after figures)


# -- the console's processes ------------------------------------------------------------------------

def family(pid: int) -> list[int]:
    """The process and all its descendants (uvicorn's workers)."""
    pids, index = [pid], 0
    while index < len(pids):
        try:
            children = Path(f"/proc/{pids[index]}/task/{pids[index]}/children").read_text().split()
        except OSError:
            children = []
        pids += [int(child) for child in children]
        index += 1
    return pids


def cpu_seconds(pid: int) -> float:
    total = 0
    for member in family(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICK


def rss_mib(pid: int) -> float:
    total = 0
    for member in family(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class Console:
    """``hanami-console serve`` as a subprocess with its own SQLite session file."""

    def __init__(self, backend_url: str, workers: int, work: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, HANAMI_CONSOLE_BACKEND_URL=backend_url,
                   HANAMI_CONSOLE_SECRET_KEY=secrets.token_urlsafe(48),
                   HANAMI_CONSOLE_SESSION_STORE_URL=f"sqlite:///{work / f'sessions-{self.port}.db'}",
                   HANAMI_CONSOLE_LOGIN_RATE_LIMIT="100000")  # default log level: the access log counts
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if not CONSOLE_CLI:  # another installation may predate --workers: it then runs its own default
            args += ["--workers", str(workers)]
        self.process = subprocess.Popen([*(CONSOLE_CLI or cli()), *args], env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_until(self.url + "/healthz", self.process, "console")
        if workers > 1:  # every worker up
            deadline = time.monotonic() + 60
            while len(family(self.process.pid)) < workers + 1 and time.monotonic() < deadline:
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def console_session(url: str, user: str, password: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=1))
    form = await client.get("/login")
    done = await client.post("/login", data={"user_id": user, "password": password, "next": "/",
                                             "csrf_token": CSRF.search(form.text).group(1)})
    if done.status_code != 303:
        raise RuntimeError(f"console login failed: {done.status_code} {done.text[:300]}")
    return client


# -- load -----------------------------------------------------------------------------------------

@dataclass
class Figures:
    latencies: list[float] = field(default_factory=list)
    started: list[float] = field(default_factory=list)  # perf_counter() at the start of each view
    errors: int = 0
    seconds: float = 0.0

    @property
    def views(self) -> int:
        return len(self.latencies)

    def rate(self) -> float:
        return self.views / self.seconds if self.seconds else 0.0

    def quantile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def slow(self, limit: float) -> str:
        """How the views slower than ``limit`` seconds spread over time: in how many distinct seconds."""
        seconds = {int(at) for at, latency in zip(self.started, self.latencies) if latency > limit}
        count = sum(latency > limit for latency in self.latencies)
        return f"{count} views over {limit * 1000:.0f} ms, started in {len(seconds)} distinct seconds"


async def run_loops(views: list[Callable[[], Awaitable[bool]]], seconds: float,
                    think: tuple[float, float] | None = None) -> Figures:
    """Each callable is one session viewing in a loop (with a think time between views, if given)."""
    figures = Figures()
    stop = time.monotonic() + seconds

    async def loop(view: Callable[[], Awaitable[bool]]) -> None:
        if think:
            await asyncio.sleep(random.uniform(0, think[1]))  # do not start in lockstep
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                ok = await view()
            except (httpx.HTTPError, OSError):
                ok = False
            if ok:
                figures.latencies.append(time.perf_counter() - started)
                figures.started.append(started)
            else:
                figures.errors += 1
            if think:
                await asyncio.sleep(random.uniform(*think))

    started = time.monotonic()
    await asyncio.gather(*(loop(view) for view in views))
    figures.seconds = time.monotonic() - started
    return figures


def console_view(client: httpx.AsyncClient, page: str | Callable[[], str]) -> Callable[[], Awaitable[bool]]:
    async def view() -> bool:
        response = await client.get(page() if callable(page) else page)
        return response.status_code == 200 and b"</html>" in response.content
    return view


class DirectPages:
    """What each page shows, fetched straight from Hanami (details of shown datasets kept once read)."""

    def __init__(self, api: HanamiAPI, details: dict[str, Any] | None = None) -> None:
        self.api = api
        self.details: dict[str, Any] = {} if details is None else details  # shared, as the console's store

    async def datasets(self) -> None:
        records = sorted((await self.api.list_datasets()).records(), key=lambda r: str(r.get("name")).lower())
        unknown = [str(r["uuid"]) for r in records[:SHOWN] if str(r["uuid"]) not in self.details]
        if unknown:
            for uuid, answer in (await self.api.get_datasets(unknown)).items():
                if isinstance(answer, dict):
                    self.details[uuid] = answer

    async def page(self, page: str) -> bool:
        if page == "/datasets":
            await self.datasets()
        elif page == "/clusters":
            await self.api.list_clusters()
        elif page == "/projects":
            await self.api.list_projects()
        elif page == "/users":
            await self.api.list_users()
        elif page == "/hosts":
            await asyncio.gather(self.api.list_hosts(), self.api.list_clusters())
        return True


async def console_calls_per_view(url: str, user: str, password: str, page: str, views: int = 10) -> float:
    """Backend calls per view, from the /metrics of a one-worker console (after one warm view)."""
    client = await console_session(url, user, password)
    try:
        await client.get(page)

        async def total() -> float:
            return sum(float(value) for value in CALLS.findall((await client.get("/metrics")).text))

        before = await total()
        for _ in range(views):
            await client.get(page)
        return (await total() - before) / views
    finally:
        await client.aclose()


# -- the backend's items ----------------------------------------------------------------------------

async def add_items(api: HanamiAPI, count: int, csv: Path) -> None:
    async def one() -> None:
        tag = secrets.token_hex(4)
        await api.upload_csv(f"{TAG} {tag}", csv)
        await api.create_cluster(f"{TAG} {tag}", EXAMPLE_MNIST_TEMPLATE)
        await api.create_project(f"pages_bench_{tag}", f"Pages bench {tag}")
        await api.create_user(f"pages_bench_{tag}", f"Pages bench {tag}", secrets.token_urlsafe(12), False)

    for start in range(0, count, 4):
        await asyncio.gather(*(one() for _ in range(min(4, count - start))))


async def remove_items(api: HanamiAPI) -> None:
    for row in (await api.list_datasets()).records():
        if str(row.get("name", "")).startswith(TAG):
            await api.delete_dataset(row["uuid"])
    for row in (await api.list_clusters()).records():
        if str(row.get("name", "")).startswith(TAG):
            await api.delete_cluster(row["uuid"])
    for row in (await api.list_users()).records():
        if str(row.get("id", "")).startswith("pages_bench_"):
            await api.delete_user(row["id"])
    for row in (await api.list_projects()).records():
        if str(row.get("id", "")).startswith("pages_bench_"):
            await api.delete_project(row["id"])


# -- the run --------------------------------------------------------------------------------------

async def measure(args: argparse.Namespace, backend_url: str, work: Path) -> list[str]:
    out: list[str] = []
    csv = work / "bench.csv"
    csv.write_text("test_input,test_output\n" + "".join(f"{i / 10},{i % 2}\n" for i in range(20)))
    load_before = os.getloadavg()
    async with HanamiClient(backend_url, timeout=60) as hanami:
        api = hanami.api((await hanami.login(args.user, args.password)).token)
        direct_calls: list[str] = []
        hanami.on_call = lambda endpoint, *_: direct_calls.append(endpoint)
        await remove_items(api)
        counter = Console(backend_url, 1, work)
        console = Console(backend_url, args.workers, work) if args.workers != 1 else counter
        try:
            sessions = [await console_session(console.url, args.user, args.password) for _ in range(args.sessions)]
            header = (f"{'page':<10} {'items':>5} | {'views/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'err':>4} "
                      f"{'CPU ms/view':>11} {'calls/view':>10} | {'direct/s':>8} {'p50 ms':>7} {'calls/view':>10} "
                      f"| {'views/s c/d':>11} {'calls c/d':>9}")
            out += [f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}; "
                    f"{os.cpu_count()} cores; console --workers {args.workers}; {args.sessions} sessions "
                    f"in a closed loop, {args.seconds:g} s per measure", "", header, "-" * len(header)]
            level = 0
            for target in args.levels if args.seconds > 0 else ():
                await add_items(api, target - level, csv)
                level = target
                for page in PAGES:
                    calls_per_view = await console_calls_per_view(counter.url, args.user, args.password, page)
                    for client in sessions:  # one warm view each (what the console keeps is read)
                        await client.get(page)
                    cpu = cpu_seconds(console.process.pid)
                    seen = await run_loops([console_view(client, page) for client in sessions], args.seconds)
                    cpu_ms = (cpu_seconds(console.process.pid) - cpu) * 1000 / max(1, seen.views)
                    direct = DirectPages(api)
                    await direct.page(page)
                    direct_calls.clear()
                    straight = await run_loops([lambda: direct.page(page)] * args.sessions, args.seconds)
                    direct_per_view = len(direct_calls) / max(1, straight.views)
                    out.append(
                        f"{page:<10} {level:>5} | {seen.rate():8.1f} {seen.quantile(0.5):7.1f} "
                        f"{seen.quantile(0.99):7.1f} {seen.errors:>4} {cpu_ms:11.2f} {calls_per_view:10.2f} | "
                        f"{straight.rate():8.1f} {straight.quantile(0.5):7.1f} {direct_per_view:10.2f} | "
                        f"{seen.rate() / max(straight.rate(), 1e-9):11.2f} "
                        f"{calls_per_view / max(direct_per_view, 1e-9):9.2f}")
            for client in sessions:
                await client.aclose()
            if args.seconds <= 0:  # only the think-time phase, at the highest level
                await add_items(api, max(args.levels), csv)
            out += ["", *await think_phase(args, console, api)]
        finally:
            if console is not counter:
                console.stop()
            counter.stop()
            await remove_items(api)
    out.append(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return out


async def think_phase(args: argparse.Namespace, console: Console, api: HanamiAPI) -> list[str]:
    """Many sessions browsing random list pages with a think time, memory sampled every second; then
    as many direct-client loops fetching what the same pages show, with the same think time."""
    sessions = []
    for start in range(0, args.think_sessions, 20):
        sessions += await asyncio.gather(*(console_session(console.url, args.user, args.password)
                                           for _ in range(min(20, args.think_sessions - start))))
    memory = [rss_mib(console.process.pid)]
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), 1.0)
            except asyncio.TimeoutError:
                memory.append(rss_mib(console.process.pid))

    sampler = asyncio.create_task(sample())
    gc.collect()
    gc.freeze()  # the load generator's own collections would otherwise add their pauses to its figures
    cpu, own = cpu_seconds(console.process.pid), time.process_time()
    seen = await run_loops([console_view(client, lambda: random.choice(PAGES)) for client in sessions],
                           args.think_seconds, think=(0.5, 1.5))
    cpu_ms = (cpu_seconds(console.process.pid) - cpu) * 1000 / max(1, seen.views)
    generator = (time.process_time() - own) / max(seen.seconds, 1e-9) * 100
    done.set()
    await sampler
    memory.append(rss_mib(console.process.pid))
    for client in sessions:
        await client.aclose()
    direct = DirectPages(api)
    await asyncio.gather(*(direct.page(page) for page in PAGES))  # what the console had read already
    loops = len(sessions)
    straight = await run_loops([lambda: direct.page(random.choice(PAGES))] * loops, args.think_seconds,
                               think=(0.5, 1.5))
    third = max(1, len(memory) // 3)
    return [
        f"{args.think_sessions} sessions, think time 0.5-1.5 s, random list pages, {seen.seconds:.0f} s:",
        f"  {seen.rate():.1f} views/s, p50 {seen.quantile(0.5):.1f} ms, p99 {seen.quantile(0.99):.1f} ms, "
        f"errors {seen.errors}, console CPU {cpu_ms:.2f} ms/view (the load generator itself used "
        f"{generator:.0f} % of a core); {seen.slow(0.25)}",
        f"  direct client, {loops} loops, same think time: {straight.rate():.1f} views/s, "
        f"p50 {straight.quantile(0.5):.1f} ms, p99 {straight.quantile(0.99):.1f} ms, errors {straight.errors}; "
        f"p99 console/direct {seen.quantile(0.99) / max(straight.quantile(0.99), 1e-9):.2f}",
        f"  console RSS (all processes): start {memory[0]:.1f} MiB, mean of first third "
        f"{statistics.mean(memory[:third]):.1f}, of last third {statistics.mean(memory[-third:]):.1f}, "
        f"end {memory[-1]:.1f}, peak {max(memory):.1f} MiB",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="console worker processes")
    parser.add_argument("--sessions", type=int, default=20, help="sessions of the closed loop")
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="length of each closed-loop measure (0: only the think-time phase)")
    parser.add_argument("--levels", default="0,10,100", help="items of each kind on the backend, in order")
    parser.add_argument("--think-sessions", type=int, default=200)
    parser.add_argument("--think-seconds", type=float, default=60.0)
    parser.add_argument("--backend-url", help="a running Hanami (default: start the embedded one)")
    parser.add_argument("--user", default=ADMIN_ID, help="an admin of that Hanami")
    parser.add_argument("--password", default=ADMIN_PASSWORD)
    parser.add_argument("--console-cli", help="the hanami-console script of another installation to measure")
    args = parser.parse_args()
    if args.console_cli:
        CONSOLE_CLI.append(args.console_cli)
    args.levels = sorted(int(level) for level in args.levels.split(","))
    with tempfile.TemporaryDirectory(prefix="pages-bench-") as tmp:
        work = Path(tmp)
        emulator = None
        backend_url = args.backend_url
        if backend_url is None:
            port = free_port()
            env = dict(os.environ, HANAMI_ADMIN_USER_ID=args.user, HANAMI_ADMIN_USER_NAME="Bench Admin",
                       HANAMI_ADMIN_PASSWORD=args.password)
            emulator = subprocess.Popen([*cli(), "emulator", "--port", str(port), "--state-dir", str(work / "hanami")],
                                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            backend_url = f"http://127.0.0.1:{port}"
            wait_until(backend_url + "/control/v1/auth", emulator, "embedded Hanami")
        try:
            lines = asyncio.run(measure(args, backend_url, work))
        finally:
            if emulator is not None:
                emulator.terminate()
                emulator.wait(30)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
