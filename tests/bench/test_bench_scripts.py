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
    out = _run("direct_io_bench.py", "-n", "20", "--warmup", "5", "--blocks", "2")
    assert "added latency" in out and "throughput ratio bridge/direct" in out


def test_benches_measure_a_running_hanami_given_its_url(backend) -> None:
    """``--backend-url`` and the account: both scripts against the emulator and the real server."""
    env = {"HANAMI_ADMIN_PASSWORD": backend.admin.password}
    out = _run("upload_bench.py", "--mb", "1", "--runs", "1", "--backend-url", backend.url,
               "--user-id", backend.admin.user_id, env=env)
    assert f"Hanami at {backend.url}" in out and "ratio (a)/(b), whole upload" in out
    out = _run("direct_io_bench.py", "-n", "10", "--warmup", "2", "--blocks", "1", "--backend-url", backend.url,
               "--user-id", backend.admin.user_id, env=env)
    assert f"Hanami {backend.url}" in out and "throughput ratio bridge/direct" in out
