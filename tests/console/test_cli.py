"""The console script's commands, run as a user would: real processes on free loopback ports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import free_port, wait_until_answering


def _run(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "webconsole.cli", *args], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_emulator_command_serves_the_hanami_api(tmp_path: Path) -> None:
    port = free_port()
    process = _run(["emulator", "--host", "127.0.0.1", "--port", str(port), "--state-dir", str(tmp_path)],
                   {"HANAMI_ADMIN_USER_ID": "cli_admin", "HANAMI_ADMIN_USER_NAME": "CLI Admin",
                    "HANAMI_ADMIN_PASSWORD": "cli-password-1"})
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_answering(base + "/control/v1/auth", process)
        login = httpx.post(base + "/control/v1/token", json={"id": "cli_admin", "password": "cli-password-1"})
        assert login.status_code == 200 and login.headers["content-type"] == "text/json"
        assert (tmp_path / "hanami_db").exists()
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_serve_refuses_to_start_without_a_secret_key() -> None:
    done = subprocess.run([sys.executable, "-m", "webconsole.cli", "serve", "--port", str(free_port())],
                          env={k: v for k, v in os.environ.items() if k != "HANAMI_CONSOLE_SECRET_KEY"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "HANAMI_CONSOLE_SECRET_KEY is not set" in done.stderr


def test_demo_data_command_writes_the_files(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "webconsole.cli", "demo-data", str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    names = {path.name for path in (tmp_path / "data").iterdir()}
    assert "demo-sine.csv" in names and any(name.endswith("idx3-ubyte") for name in names)
