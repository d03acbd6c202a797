"""What a cluster gets wrong, from an MNIST result and the labels the console kept: the confusion
matrix, per-class accuracy, the most confused pairs, and small PNGs of misclassified digits."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

CLASSES = 10
TOP_PAIRS = 5
GALLERY_SIZE = 48


def predictions_of(data: Any) -> list[int] | None:
    """The predicted classes of an MNIST result (integers 0..9); None for anything else (CSV, empty)."""
    if not isinstance(data, list) or not data:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in data):
        return None
    return data


def confusion_matrix(predictions: list[int], labels: bytes) -> list[list[int]]:
    """``matrix[true][predicted]`` counts over the images both know (a prediction outside 0..9 is dropped)."""
    matrix = [[0] * CLASSES for _ in range(CLASSES)]
    for predicted, true in zip(predictions, labels):
        if 0 <= predicted < CLASSES and true < CLASSES:
            matrix[true][predicted] += 1
    return matrix


def matrix_accuracy(matrix: list[list[int]]) -> float | None:
    total = sum(map(sum, matrix))
    return 100.0 * sum(matrix[i][i] for i in range(CLASSES)) / total if total else None


def summary(matrix: list[list[int]]) -> dict[str, Any]:
    """Per-class accuracy (None for a class without images) and the most confused (true, predicted) pairs."""
    per_class = []
    for digit in range(CLASSES):
        total = sum(matrix[digit])
        per_class.append({"digit": digit, "images": total, "correct": matrix[digit][digit],
                          "accuracy": 100.0 * matrix[digit][digit] / total if total else None})
    pairs = sorted(((matrix[t][p], t, p) for t in range(CLASSES) for p in range(CLASSES) if t != p and matrix[t][p]),
                   key=lambda item: (-item[0], item[1], item[2]))[:TOP_PAIRS]
    peak = max((matrix[t][p] for t in range(CLASSES) for p in range(CLASSES)), default=0)
    return {
        "matrix": matrix, "per_class": per_class, "accuracy": matrix_accuracy(matrix),
        "pairs": [{"count": c, "true": t, "predicted": p} for c, t, p in pairs],
        # a shade class 0..5 per cell, so the matrix reads as a heat map without inline styles (CSP)
        "shades": [[_shade(matrix[t][p], peak) for p in range(CLASSES)] for t in range(CLASSES)],
    }


def _shade(value: int, peak: int) -> int:
    if not value or not peak:
        return 0
    return 1 + min(4, int(5 * value / (peak + 1)))


def misclassified(predictions: list[int], labels: bytes, limit: int = GALLERY_SIZE) -> list[dict[str, int]]:
    """The first ``limit`` images whose prediction differs from the label."""
    wrong = []
    for index, (predicted, true) in enumerate(zip(predictions, labels)):
        if predicted != true:
            wrong.append({"index": index, "true": true, "predicted": predicted})
            if len(wrong) >= limit:
                break
    return wrong


def count_wrong(predictions: list[int], labels: bytes) -> int:
    return sum(1 for predicted, true in zip(predictions, labels) if predicted != true)


def png_data_uri(rows: int, cols: int, pixels: bytes, scale: int = 2) -> str:
    """A grayscale PNG (MNIST: 0 = background, drawn white; 255 = ink, drawn black) as a data: URI,
    which the CSP allows for images (``img-src 'self' data:``)."""
    raw = bytearray()
    for r in range(rows):
        line = bytes(255 - b for b in pixels[r * cols:(r + 1) * cols])
        line = bytes(b for b in line for _ in range(scale))
        for _ in range(scale):
            raw += b"\x00" + line

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", cols * scale, rows * scale, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def csv_errors(data: list[float], columns: list[str], values: list[list[float]], input_neurons: int,
               output_name: str, output_neurons: int) -> dict[str, Any]:
    """Mean absolute error of a CSV result against the dataset's output column.

    A CSV request result holds one value per cycle: the mean of the output brick's neurons (§4.39).
    Cycle ``c`` expects the output column's rows ``[c + M - O, c + M)`` with ``M = max(I, O)``
    (§4.23), so its expected value is their mean; cycles whose window runs past the data are left out.
    """
    if output_name not in columns:
        return {"column": output_name, "missing": True}
    column = values[columns.index(output_name)]
    reach = max(input_neurons, output_neurons)
    errors = []
    for cycle, got in enumerate(data):
        window = column[cycle + reach - output_neurons:cycle + reach]
        if len(window) < output_neurons or not output_neurons:
            break
        errors.append(abs(float(got) - sum(window) / output_neurons))
    return {"column": output_name, "missing": False, "cycles": len(errors),
            "mae": sum(errors) / len(errors) if errors else None,
            "max": max(errors) if errors else None}
