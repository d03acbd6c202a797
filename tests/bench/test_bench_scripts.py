"""The benchmarks still run end to end (with tiny sizes). Their figures are not checked: they are
measurements for people, not timed tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True, text=True, timeout=240, cwd=ROOT, env=dict(os.environ, **(env or {})),
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_upload_bench_runs_and_reports_the_ratio_and_memory() -> None:
    out = _run("upload_bench.py", "--mb", "2", "--runs", "1")
    assert "ratio (a)/(b), whole upload" in out and "console RSS growth" in out


def test_direct_io_bench_runs_and_reports_the_overhead() -> None:
    out = _run("direct_io_bench.py", "-n", "20", "--warmup", "5", "--blocks", "2", "--replay", "30")
    assert "added latency" in out and "throughput ratio bridge/direct" in out
    assert "replay of 30 MNIST digits" in out


def test_runs_bench_runs_and_reports_both_wall_times_and_the_curve() -> None:
    out = _run("runs_bench.py", "--passes", "2")
    assert "ratio (b)/(a)" in out and "best pass" in out
    assert len([line for line in out.splitlines() if line.strip().startswith(("1 ", "2 "))]) == 2


def test_pages_bench_runs_and_reports_every_page_and_the_ratio() -> None:
    out = _run("pages_bench.py", "--workers", "2", "--sessions", "2", "--seconds", "0.3", "--levels", "0,2",
               "--think-sessions", "3", "--think-seconds", "1")
    for page in ("/datasets", "/clusters", "/projects", "/users", "/hosts"):
        assert len([line for line in out.splitlines() if line.startswith(page + " ")]) == 2, out
    assert "views/s c/d" in out and "calls c/d" in out and "console RSS" in out and "errors 0" in out


def test_benches_measure_a_running_hanami_given_its_url(backend) -> None:
    """``--backend-url`` and the account: both scripts against the emulator and the real server."""
    env = {"HANAMI_ADMIN_PASSWORD": backend.admin.password}
    out = _run("upload_bench.py", "--mb", "1", "--runs", "1", "--backend-url", backend.url,
               "--user-id", backend.admin.user_id, env=env)
    assert f"Hanami at {backend.url}" in out and "ratio (a)/(b), whole upload" in out
    out = _run("direct_io_bench.py", "-n", "10", "--warmup", "2", "--blocks", "1", "--replay", "0", "--backend-url", backend.url,
               "--user-id", backend.admin.user_id, env=env)
    assert f"Hanami {backend.url}" in out and "throughput ratio bridge/direct" in out
