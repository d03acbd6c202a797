"""Replay datasets for direct IO: the files a user uploads to replay through a bridge, and the
samples read from them.

A replay upload (an MNIST pair or a CSV) is stored in a folder private to the console's OS user
and recorded under ``direct-replay:<id>`` in the shared store, with the hash of the session that
uploaded it: only that session can replay it, and its files go when the session ends, when the
bridge that used it closes, or (for sessions that timed out) when ``sweep_replays`` finds the
record expired. ``replay_samples`` turns a record into (inputs, expected, label) samples for the
bridge's bricks, the way Hanami itself cuts a CSV into cycles (§4.23).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from webconsole.web.direct_io.protocol import Layout
from webconsole.sessions import read_record
from webconsole.web.direct_io.locks import session_hash

REPLAY_PREFIX = "direct-replay:"
REPLAY_TTL = 6 * 3600.0


def _replay_root(settings: Any) -> Path:
    import tempfile

    base = Path(settings.upload_dir) if settings.upload_dir else Path(tempfile.gettempdir())
    return base / "hanami-console-replay"


def replay_dir(settings: Any) -> Path:
    """The folder for replay uploads: private to the console's OS user (the data is the users')."""
    import os

    path = _replay_root(settings)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid():
        # a folder someone else made in a shared temp dir could be read or swapped by them
        raise RuntimeError(f"{path} belongs to another user; set HANAMI_CONSOLE_UPLOAD_DIR")
    if info.st_mode & 0o077:
        path.chmod(0o700)
    return path


async def forget_replay(store: Any, replay_id: str) -> None:
    record = await read_record(store, REPLAY_PREFIX + replay_id)
    await store.delete(REPLAY_PREFIX + replay_id)
    if record and record.get("dir"):
        await asyncio.to_thread(shutil.rmtree, record["dir"], True)


def last_replay_key(session_id: str) -> str:
    """The store key naming a session's kept replay upload (one per session)."""
    return f"{REPLAY_PREFIX}last:{session_hash(session_id)}"


async def forget_session_replays(store: Any, session_id: str) -> None:
    """A session's replay upload is usable only by it: when the session ends, its files go."""
    previous = await store.get(last_replay_key(session_id))
    if previous is not None:
        await forget_replay(store, previous.decode())
        await store.delete(last_replay_key(session_id))


async def sweep_replays(store: Any, settings: Any, grace: float = 60.0) -> int:
    """Delete replay folders whose record has expired (sessions that timed out, console restarts).

    Folders younger than ``grace`` seconds are kept: their record may not be written yet.
    """
    root = _replay_root(settings)
    if not root.is_dir():
        return 0
    root = replay_dir(settings)  # checks ownership before deleting anything in it
    live = {key.removeprefix(REPLAY_PREFIX) for key in await store.keys(REPLAY_PREFIX)}

    def sweep() -> int:
        removed = 0
        for folder in root.iterdir():
            if folder.name in live or time.time() - folder.stat().st_mtime < grace:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
        return removed

    return await asyncio.to_thread(sweep)


def replay_samples(record: dict[str, Any], layout: Layout) -> tuple[Iterator[tuple[list[float], list[float], int | None]], int, bool]:
    """(samples, count, is classification) for a stored replay record and the bridge's bricks."""
    if record.get("kind") == "mnist":
        from webconsole.protocol.idx import iter_mnist_batches

        if layout.input_size != 784 or layout.output_size != 10:
            raise ValueError(
                f"MNIST samples have 784 inputs and 10 classes; this bridge has {layout.input_size} "
                f"inputs and {layout.output_size} outputs."
            )

        def mnist() -> Iterator[tuple[list[float], list[float], int | None]]:
            for images, labels in iter_mnist_batches(record["images"], record["labels"], batch=500):
                for image, label in zip(images, labels):
                    expected = [0.0] * 10
                    expected[int(label)] = 1.0
                    yield image.tolist(), expected, int(label)

        return mnist(), int(record["samples"]), True
    from webconsole.protocol.csvdata import parse_csv_like_hanami

    columns, table = parse_csv_like_hanami(Path(record["csv"]).read_bytes())
    missing = [name for name in (layout.input_name, layout.output_name) if name not in columns]
    if missing:
        raise ValueError(
            f"The CSV has no column named {', '.join(missing)} (the bricks' names); "
            f"its columns are {', '.join(columns)}."
        )
    col_in, col_out = columns.index(layout.input_name), columns.index(layout.output_name)
    size_in, size_out = layout.input_size, layout.output_size
    window = max(size_in, size_out)
    lines = table.shape[0]
    count = max(0, lines - size_in)  # Hanami's cycle count for CSV tasks (§4.23)
    count = min(count, max(0, lines - window + 1))

    def csv_rows() -> Iterator[tuple[list[float], list[float], int | None]]:
        for c in range(count):
            inputs = table[c + window - size_in: c + window, col_in].tolist()
            expected = table[c + window - size_out: c + window, col_out].tolist()
            yield inputs, expected, None

    return csv_rows(), count, False
