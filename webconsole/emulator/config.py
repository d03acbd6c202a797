"""Configuration of the embedded Hanami backend (the emulator)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


@dataclass
class EmulatorConfig:
    """Everything that the real Hanami reads from hanami.conf, plus test knobs."""

    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 11418  # 0 = pick a free port
    token_key: bytes = b"asdf\n"
    token_expire: int = 3600  # seconds
    quirks: Literal["lenient", "faithful"] = "lenient"
    tempfile_check_interval: float = 60.0  # seconds per expiry tick (10 ticks -> expired)
    policy_file: Path | None = None  # None = shipped default policy
    admin_id: str | None = field(default_factory=lambda: _env("HANAMI_ADMIN_USER_ID"))
    admin_name: str | None = field(default_factory=lambda: _env("HANAMI_ADMIN_USER_NAME"))
    admin_password: str | None = field(default_factory=lambda: _env("HANAMI_ADMIN_PASSWORD"))
    worker_threads: int = 4  # like [http] number_of_threads: HTTP requests + open websockets
    threading_delay: float = 6.0  # GET v1/threading answers 500 for this long after start (Q-L6, §14)
    measurement_interval: float = 1.0  # seconds between two measurement samples
    dashboard_dir: Path | None = None  # static files for non-/control GETs (None -> always 500)
    seed: int | None = None  # seed for new networks (None = random)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        if self.policy_file is not None:
            self.policy_file = Path(self.policy_file)
        if self.dashboard_dir is not None:
            self.dashboard_dir = Path(self.dashboard_dir)
        if self.quirks not in ("lenient", "faithful"):
            raise ValueError(f"quirks must be 'lenient' or 'faithful', not {self.quirks!r}")

    @property
    def faithful(self) -> bool:
        return self.quirks == "faithful"
