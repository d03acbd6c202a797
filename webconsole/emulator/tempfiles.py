"""Upload temp files with Hanami's segment bookkeeping and expiry (§5.4)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

SEGMENT_SIZE = 131072
EXPIRY_TICKS = 10


def tracked_segments(size: int) -> int:
    """The buggy formula of §5.4, reproduced exactly."""
    n = size // SEGMENT_SIZE
    if n % SEGMENT_SIZE == 0:
        n = n + 1
    return n


@dataclass
class TempFile:
    uuid: str
    dataset_uuid: str
    user_id: str
    project_id: str
    size: int
    path: Path
    received: list[bool] = field(default_factory=list)
    ticks: int = 0
    attached: int = 0

    def __post_init__(self) -> None:
        self.received = [False] * tracked_segments(self.size)

    @property
    def complete(self) -> bool:
        return all(self.received)

    def write(self, position: int, data: bytes) -> bool:
        if data:
            if position < 0 or position + len(data) > self.size:
                return False
            try:
                with open(self.path, "r+b") as fh:
                    fh.seek(position)
                    fh.write(data)
            except OSError:
                return False
        index = position // SEGMENT_SIZE
        if 0 <= index < len(self.received):
            self.received[index] = True
        return True


class TempFiles:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.files: dict[str, TempFile] = {}

    def create(self, uuid: str, dataset_uuid: str, user: dict, size: int) -> TempFile:
        path = self.folder / uuid
        with open(path, "wb") as fh:  # pre-allocate the announced size
            fh.truncate(size)
        temp = TempFile(uuid, dataset_uuid, user["id"], user["project_id"], size, path)
        with self.lock:
            self.files[uuid] = temp
        return temp

    def get(self, uuid: str) -> TempFile | None:
        with self.lock:
            return self.files.get(uuid)

    def attach(self, uuid: str, user: dict) -> TempFile | None:
        with self.lock:
            temp = self.files.get(uuid)
            if temp is None or temp.user_id != user["id"] or temp.project_id != user["project_id"]:
                return None
            temp.attached += 1
            temp.ticks = 0
            return temp

    def detach(self, temp: TempFile) -> None:
        with self.lock:
            temp.attached = max(0, temp.attached - 1)

    def of_dataset(self, dataset_uuid: str) -> list[TempFile]:
        with self.lock:
            return [t for t in self.files.values() if t.dataset_uuid == dataset_uuid]

    def remove(self, uuid: str) -> None:
        with self.lock:
            temp = self.files.pop(uuid, None)
        if temp is not None:
            try:
                os.unlink(temp.path)
            except OSError:
                pass

    def tick(self) -> list[str]:
        """One run of the cleanup loop; returns the uuids of the expired temp files."""
        expired = []
        with self.lock:
            for temp in list(self.files.values()):
                if temp.attached:
                    continue
                temp.ticks += 1
                if temp.ticks >= EXPIRY_TICKS:
                    expired.append(temp.uuid)
        for uuid in expired:
            self.remove(uuid)
        return expired
