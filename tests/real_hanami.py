"""The real Hanami server (upstream 0.4.1, built by ``../shared/real-hanami/build.sh``) as a test
backend: started with its ``start.sh`` on a free loopback port with its own state folder, usable
once ``GET /control/v1/host/all`` lists a host, stopped with SIGTERM.

Where it comes from: ``$REAL_HANAMI_SHARED`` (the folder with ``start.sh``), else
``<repo>/../shared/real-hanami``, else ``/work/shared/real-hanami``; the binary is
``$REAL_HANAMI_HOME/bin/Hanami`` (default ``/tmp/real-hanami``, as the scripts say).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
BUILD_HINT = "bash ../shared/real-hanami/build.sh"
USABLE_TIMEOUT = 90.0


class RealHanamiMissing(RuntimeError):
    """The scripts or the binary are not on this machine."""


def shared_folder() -> Path:
    candidates = []
    if os.environ.get("REAL_HANAMI_SHARED"):
        candidates.append(Path(os.environ["REAL_HANAMI_SHARED"]))
    candidates += [REPO.parent / "shared" / "real-hanami", Path("/work/shared/real-hanami")]
    for folder in candidates:
        if (folder / "start.sh").is_file():
            return folder
    raise RealHanamiMissing(f"no real-hanami/start.sh in {', '.join(map(str, candidates))} "
                            f"(the real server's sources, beside the repository; then `{BUILD_HINT}`)")


def binary() -> Path:
    return Path(os.environ.get("REAL_HANAMI_HOME", "/tmp/real-hanami")) / "bin" / "Hanami"


class RealHanami:
    """One real server process; ``ensure_usable`` restarts it when it crashed or hangs."""

    def __init__(self, state_dir: Path, port: int, admin_id: str, admin_name: str, admin_password: str) -> None:
        self.start_script = shared_folder() / "start.sh"
        if not os.access(binary(), os.X_OK):
            raise RealHanamiMissing(f"no {binary()}: build it with `{BUILD_HINT}`")
        self.state_dir = state_dir
        self.port = port
        self.admin = (admin_id, admin_name, admin_password)
        self.process: subprocess.Popen | None = None
        self.log_path = state_dir.parent / f"{state_dir.name}.out"
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> "RealHanami":
        env = dict(os.environ, HANAMI_ADMIN_USER_ID=self.admin[0], HANAMI_ADMIN_USER_NAME=self.admin[1],
                   HANAMI_ADMIN_PASSWORD=self.admin[2])
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            ["bash", str(self.start_script), str(self.port), str(self.state_dir)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        log.close()
        self.starts += 1
        self.started_at = time.monotonic()
        if wait:
            self.wait_usable()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def token(self, timeout: float = 5.0) -> str:
        answer = httpx.post(f"{self.url}/control/v1/token", json={"id": self.admin[0], "password": self.admin[2]},
                            timeout=timeout)
        answer.raise_for_status()
        return answer.json()["token"]

    def usable(self, timeout: float = 5.0) -> bool:
        """It answers, a login works, and it lists a host (its hardware is initialised)."""
        if not self.alive():
            return False
        try:
            hosts = httpx.get(f"{self.url}/control/v1/host/all", headers={"X-Auth-Token": self.token(timeout)},
                              timeout=timeout)
            return hosts.status_code == 200 and bool(hosts.json().get("body"))
        except (httpx.HTTPError, ValueError, KeyError):
            return False

    def wait_usable(self) -> None:
        deadline = time.monotonic() + USABLE_TIMEOUT
        while not self.usable(timeout=2.0):
            if not self.alive():
                raise RuntimeError(f"the real Hanami exited ({self.process.returncode}) while starting; "
                                   f"see {self.log_path}: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the real Hanami was not usable within {USABLE_TIMEOUT:.0f} s; "
                                   f"see {self.log_path}")
            time.sleep(0.2)

    def ensure_usable(self) -> bool:
        """Restart the server when it exited or stopped answering; True when it was restarted."""
        if self.usable():
            return False
        self.stop()
        self.start()
        return True

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            # start.sh execs the server, so the process is Hanami itself; its group has nothing else
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None
