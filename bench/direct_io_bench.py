"""What the console's direct-IO bridge costs: round trips through the console vs. straight to Hanami.

One run starts an embedded Hanami (the emulator) and the console (uvicorn) as subprocesses (the
``hanami-console`` CLI; ``--in-process`` runs them in threads of this process instead, which then
share one GIL with the measuring client) on free loopback ports, creates an MNIST-sized cluster, then measures N requests ("ask") and N training
steps ("teach"):

  (a) through the console bridge: a browser-like websocket client (session cookie + Origin) sends
      {"op": "ask"} / {"op": "teach"} and waits for each answer (the page works the same way);
  (b) with a direct websocket client of the same backend (HanamiAPI.direct_io).

It prints per-exchange latency (median, p95), round trips per second, the latency the bridge adds
and the throughput ratio. Not a pytest test:

    .venv/bin/python bench/direct_io_bench.py [-n 500] [--warmup 50] [--in-process]

``--backend-url http://127.0.0.1:PORT`` measures against a running Hanami (the real server) instead
of an embedded one; its account comes from ``--user-id`` and the ``HANAMI_ADMIN_PASSWORD``
environment variable (defaults: ``HANAMI_ADMIN_USER_ID``, else the real-hanami scripts' asdf /
asdfasdf).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Awaitable, Callable, Iterator

import httpx
import uvicorn
from websockets.asyncio.client import connect

from webconsole.app import create_app
from webconsole.emulator import EmulatorConfig, EmulatorServer
from webconsole.hanami.client import HanamiClient
from webconsole.protocol.idx import iter_mnist_batches, write_idx_images, write_idx_labels
from webconsole.protocol.template import EXAMPLE_MNIST_TEMPLATE
from webconsole.settings import Settings

ADMIN_ID, ADMIN_PASSWORD = "bench_admin", "bench-password-1"  # of the embedded Hanami; see main()
SESSION_COOKIE = "hanami_console_session"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_BODY = re.compile(r'"X-CSRF-Token": "([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Console:
    def __init__(self, backend_url: str) -> None:
        settings = Settings(
            backend_url=backend_url, secret_key=secrets.token_urlsafe(48), session_store_url="memory://",
            log_level="warning",
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_config=None,
                                ws="websockets-sansio", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "Console":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("console did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the {what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {what} did not start") from None
            time.sleep(0.05)


@contextmanager
def servers(in_process: bool, backend_url: str | None = None) -> Iterator[tuple[str, str]]:
    """(backend url, console url), stopped afterwards; the emulator only without ``backend_url``."""
    with tempfile.TemporaryDirectory() as state:
        if backend_url and in_process:
            console = Console(backend_url).start()
            try:
                yield backend_url, console.url
            finally:
                console.stop()
            return
        if in_process:
            emulator = EmulatorServer(EmulatorConfig(
                state_dir=Path(state), port=0, admin_id=ADMIN_ID, admin_name="Bench Admin",
                admin_password=ADMIN_PASSWORD, threading_delay=0.0, seed=1,
            ))
            emulator.start()
            console = Console(emulator.url).start()
            try:
                yield emulator.url, console.url
            finally:
                console.stop()
                emulator.stop()
            return
        cli = [sys.executable, "-m", "webconsole.cli"]
        e_port, c_port = free_port(), free_port()
        env = dict(os.environ, HANAMI_ADMIN_USER_ID=ADMIN_ID, HANAMI_ADMIN_USER_NAME="Bench Admin",
                   HANAMI_ADMIN_PASSWORD=ADMIN_PASSWORD)
        emulator_proc = None
        if not backend_url:
            emulator_proc = subprocess.Popen(cli + ["emulator", "--port", str(e_port), "--state-dir", state],
                                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            backend_url = f"http://127.0.0.1:{e_port}"
        console_proc = None
        try:
            if emulator_proc is not None:
                _wait_listening(e_port, emulator_proc, "emulator")
            env.update(HANAMI_CONSOLE_BACKEND_URL=backend_url,
                       HANAMI_CONSOLE_SECRET_KEY=secrets.token_urlsafe(48),
                       HANAMI_CONSOLE_SESSION_STORE_URL="memory://", HANAMI_CONSOLE_LOG_LEVEL="warning")
            console_proc = subprocess.Popen(cli + ["serve", "--host", "127.0.0.1", "--port", str(c_port)], env=env,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _wait_listening(c_port, console_proc, "console")
            yield backend_url, f"http://127.0.0.1:{c_port}"
        finally:
            for proc in (console_proc, emulator_proc):
                if proc is not None:
                    proc.terminate()
                    try:
                        proc.wait(15)
                    except subprocess.TimeoutExpired:
                        proc.kill()


def summary(name: str, samples: list[float], wall: float) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    result = {
        "median": statistics.median(ms),
        "p95": ms[max(0, int(round(0.95 * len(ms))) - 1)],
        "rps": len(ms) / wall,
    }
    print(f"  {name:<28} median {result['median']:7.3f} ms   p95 {result['p95']:7.3f} ms   "
          f"{result['rps']:8.1f} round trips/s")
    return result


class Measure:
    """Latency samples and the time spent on them, collected over interleaved blocks."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.wall = 0.0

    async def block(self, count: int, one: Callable[[], Awaitable[None]]) -> None:
        start = time.perf_counter()
        for _ in range(count):
            t0 = time.perf_counter()
            await one()
            self.samples.append(time.perf_counter() - t0)
        self.wall += time.perf_counter() - start


def write_digits(folder: Path, count: int) -> tuple[Path, Path]:
    import numpy as np

    rng = np.random.default_rng(3)
    images, labels = folder / "replay-images.idx", folder / "replay-labels.idx"
    write_idx_images(images, rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8))
    write_idx_labels(labels, rng.integers(0, 10, size=count, dtype=np.uint8))
    return images, labels


async def run(n: int, warmup: int, in_process: bool, blocks: int, replay: int = 0,
              backend_url: str | None = None) -> None:
    digit = [0.0] * 784
    for row in range(6, 22):
        digit[row * 28 + 14] = 255.0
    expected = [0.0] * 9 + [1.0]

    with servers(in_process, backend_url) as (emulator_url, console_url):
        hanami = HanamiClient(emulator_url)
        try:
            token = await hanami.login(ADMIN_ID, ADMIN_PASSWORD)
            api = hanami.api(token.token)
            # one cluster for each path, so both websockets stay open and the runs can interleave
            direct = (await api.create_cluster(f"bench b {secrets.token_hex(3)}", EXAMPLE_MNIST_TEMPLATE))["uuid"]
            where = "threads of this process" if in_process else "subprocesses"
            backend = f"Hanami {emulator_url}" if backend_url else f"emulator {emulator_url}"
            print(f"{backend}, console {console_url} ({where}); N={n} per kind and path "
                  f"(+{warmup} warm-up), in {blocks} interleaved blocks")

            async with httpx.AsyncClient(base_url=console_url) as http:
                form = await http.get("/login")
                await http.post("/login", data={"user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "next": "/",
                                                "csrf_token": CSRF.search(form.text).group(1)})
                home = await http.get("/")
                match = CSRF.search(home.text) or CSRF_BODY.search(home.text)
                csrf = match.group(1)
                cookie = http.cookies.get(SESSION_COOKIE)
                # created through the console, which then knows its bricks (a declared template would
                # need Hanami to confirm them first)
                created = await http.post("/clusters", data={"csrf_token": csrf, "name": f"bench a {secrets.token_hex(3)}",
                                                             "template": EXAMPLE_MNIST_TEMPLATE})
                assert created.status_code == 303, created.text[:500]
                bridged = created.headers["location"].rsplit("/", 1)[1]
                if replay:  # an MNIST pair kept for the bridge to replay (request mode)
                    folder = Path(tempfile.mkdtemp(prefix="direct-io-bench-"))
                    images, labels = write_digits(folder, replay)
                    kept = await http.post(f"/clusters/{bridged}/direct/replay",
                                           data={"kind": "mnist", "csrf_token": csrf},
                                           files={"images": ("i.idx", images.read_bytes()),
                                                  "labels": ("l.idx", labels.read_bytes())})
                    assert kept.status_code == 200, kept.text[:500]
                    replay_id = kept.json()["id"]
            ws_url = console_url.replace("http://", "ws://") + f"/clusters/{bridged}/direct/ws"
            await api.set_mode(direct, "DIRECT")
            try:
                async with connect(ws_url, origin=console_url,
                                   additional_headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},  # type: ignore[arg-type]
                                   max_size=None) as ws, api.direct_io(direct) as io:
                    await ws.send(json.dumps({"op": "open", "csrf": csrf, "input": "test_input",
                                              "output": "test_output"}))
                    while (m := json.loads(await ws.recv())).get("state") not in ("open", "closed"):
                        pass
                    assert m["state"] == "open", m
                    ask_msg = json.dumps({"op": "ask", "values": digit})
                    teach_msg = json.dumps({"op": "teach", "values": digit, "expected": expected})

                    async def bridge_exchange(message: str, wanted: str) -> None:
                        await ws.send(message)
                        while json.loads(await ws.recv())["type"] != wanted:
                            pass

                    kinds = {
                        ("a", "ask"): lambda: bridge_exchange(ask_msg, "output"),
                        ("a", "teach"): lambda: bridge_exchange(teach_msg, "taught"),
                        ("b", "ask"): lambda: io.request("test_input", digit),
                        ("b", "teach"): lambda: io.train("test_input", digit, "test_output", expected),
                    }
                    results = {key: Measure() for key in kinds}
                    for one in kinds.values():
                        await Measure().block(warmup, one)
                    per_block = max(1, n // blocks)
                    for _ in range(blocks):
                        for key, one in kinds.items():
                            await results[key].block(per_block, one)
                    replays: dict[str, float] = {}
                    for _ in range(3 if replay else 0):  # alternate, best of three each way
                        started = time.perf_counter()
                        await ws.send(json.dumps({"op": "replay", "id": replay_id, "mode": "request"}))
                        while not (m := json.loads(await ws.recv())).get("finished"):
                            pass
                        assert m["done"] == replay, m
                        replays["a"] = max(replays.get("a", 0.0), replay / (time.perf_counter() - started))
                        started = time.perf_counter()
                        for batch, _ in iter_mnist_batches(images, labels, batch=500):
                            for image in batch:
                                await io.request("test_input", image.tolist())
                        replays["b"] = max(replays.get("b", 0.0), replay / (time.perf_counter() - started))
                    await ws.send(json.dumps({"op": "close"}))
                    while (m := json.loads(await ws.recv())).get("state") != "closed":
                        pass
            finally:
                await api.set_mode(direct, "TASK")
            for uuid in (bridged, direct):
                await api.delete_cluster(uuid)

            print("(a) through the console bridge (browser-like websocket with cookie + Origin, JSON):")
            a_ask = summary("ask (request)", results[("a", "ask")].samples, results[("a", "ask")].wall)
            a_teach = summary("teach (train step)", results[("a", "teach")].samples, results[("a", "teach")].wall)
            print("(b) direct websocket client of the backend (HanamiAPI.direct_io, protobuf):")
            b_ask = summary("request", results[("b", "ask")].samples, results[("b", "ask")].wall)
            b_teach = summary("train step", results[("b", "teach")].samples, results[("b", "teach")].wall)
            print("bridge overhead:")
            for name, a, b in (("ask", a_ask, b_ask), ("teach", a_teach, b_teach)):
                print(f"  {name:<6} added latency: median {a['median'] - b['median']:+.3f} ms, "
                      f"p95 {a['p95'] - b['p95']:+.3f} ms; throughput ratio bridge/direct "
                      f"{a['rps'] / b['rps']:.2f}")
            if replay:
                shutil.rmtree(folder, ignore_errors=True)
                print(f"replay of {replay} MNIST digits (request mode, best of 3): bridge {replays['a']:.0f} "
                      f"samples/s, direct {replays['b']:.0f} samples/s; ratio bridge/direct "
                      f"{replays['a'] / replays['b']:.2f}")
        finally:
            await hanami.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=500, help="measured exchanges per kind")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--blocks", type=int, default=10, help="interleaved blocks (evens out machine load)")
    parser.add_argument("--in-process", action="store_true", help="emulator and console in threads")
    parser.add_argument("--replay", type=int, default=1000, help="digits replayed through the bridge (0: none)")
    parser.add_argument("--backend-url", help="a running Hanami to measure against (no embedded one)")
    parser.add_argument("--user-id", default=os.environ.get("HANAMI_ADMIN_USER_ID", "asdf"),
                        help="its account (password: HANAMI_ADMIN_PASSWORD, default asdfasdf)")
    args = parser.parse_args()
    if args.backend_url:
        global ADMIN_ID, ADMIN_PASSWORD
        ADMIN_ID, ADMIN_PASSWORD = args.user_id, os.environ.get("HANAMI_ADMIN_PASSWORD", "asdfasdf")
    asyncio.run(run(args.n, args.warmup, args.in_process, args.blocks, args.replay, args.backend_url))


if __name__ == "__main__":
    main()
