"""Internal dataset files: a JSON header line followed by float32 rows.

MNIST rows are 784 pixel values + 10 one-hot values (like Hanami's own file); CSV rows are the
columns of the CSV file in header order.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np


def write_datafile(path: Path, header: dict[str, Any], data: np.ndarray) -> None:
    head = json.dumps(header).encode()
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<I", len(head)))
        fh.write(head)
        fh.write(np.ascontiguousarray(data, dtype="<f4").tobytes())
    tmp.replace(path)


def read_datafile(path: Path) -> tuple[dict[str, Any], np.ndarray]:
    with open(path, "rb") as fh:
        (size,) = struct.unpack("<I", fh.read(4))
        header = json.loads(fh.read(size))
        raw = fh.read()
    width = int(header["width"])
    data = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    return header, data.reshape(-1, width) if width else data.reshape(0, 0)


def read_header(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        (size,) = struct.unpack("<I", fh.read(4))
        return json.loads(fh.read(size))


def idx_image_dims(images: bytes) -> tuple[int, int, int]:
    """(count, rows, columns) of an IDX image file, read blindly like Hanami (fields at 4/8/12)."""
    count, rows, cols = (int.from_bytes(images[at:at + 4], "big") for at in (4, 8, 12))
    return count, rows, cols


def mnist_from_idx(images: bytes, labels: bytes) -> tuple[dict[str, Any], np.ndarray]:
    """Reads the two IDX temp files like Hanami's finalize (§4.28)."""
    count, rows, cols = idx_image_dims(images)
    pixels = rows * cols
    body = np.frombuffer(images, dtype=np.uint8, count=count * pixels, offset=16)
    label_values = np.frombuffer(labels, dtype=np.uint8, count=count, offset=8)
    data = np.zeros((count, pixels + 10), dtype=np.float32)
    data[:, :pixels] = body.reshape(count, pixels)
    data[np.arange(count), pixels + np.minimum(label_values.astype(np.int64), 9)] = 1.0
    header = {"type": "mnist", "inputs": pixels, "outputs": 10, "lines": count, "width": pixels + 10}
    return header, data
