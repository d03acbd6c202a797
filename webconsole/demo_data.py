"""Demo datasets written to a folder without any download.

The MNIST digits ship with the package: ``webconsole/data/mnist-5k-{images,labels}.idx*.gz``, 5,000
real MNIST digits (28 × 28, 0..255) and labels, 500 per class, **sorted by label** (licence and
attribution in ``webconsole/data/MNIST-LICENSE.md``). Because the file is sorted, "first 4,000 /
last 1,000" would put only digits 0-7 in training and 8-9 in the test set; instead we split every
class 400 / 100 (its first 400 rows train, its last 100 rows test) and shuffle each set with a fixed
seed. The result is deterministic: the same files on every machine. A Hanami train task feeds the
images in file order, so the training order must be mixed for per-sample learning to work.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from webconsole.protocol.idx import write_idx_images, write_idx_labels

__all__ = ["DemoFiles", "DemoDataUnavailable", "write_demo_data", "MNIST_IMAGES", "MNIST_LABELS",
           "TRAIN_PER_CLASS", "TEST_PER_CLASS", "SMALL_COUNT", "CSV_ROWS"]

TRAIN_PER_CLASS = 400  # -> 4,000 training digits
TEST_PER_CLASS = 100  # -> 1,000 held-out digits
SMALL_COUNT = 200  # first 200 training digits, for fast tests
CSV_ROWS = 400
_SEED = 20240325  # fixed: the demo files must be identical everywhere


DATA_DIR = Path(__file__).resolve().parent / "data"
MNIST_IMAGES = DATA_DIR / "mnist-5k-images.idx3-ubyte.gz"
MNIST_LABELS = DATA_DIR / "mnist-5k-labels.idx1-ubyte.gz"


class DemoDataUnavailable(RuntimeError):
    """The bundled digits are missing or damaged (a broken installation)."""


@dataclass
class DemoFiles:
    """Paths of the demo files in ``folder``."""

    folder: Path
    train_images: Path
    train_labels: Path
    test_images: Path
    test_labels: Path
    small_images: Path
    small_labels: Path
    csv: Path


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 bundled digits and their labels, checked against the IDX headers."""
    try:
        images = gzip.decompress(MNIST_IMAGES.read_bytes())
        labels = gzip.decompress(MNIST_LABELS.read_bytes())
    except (OSError, EOFError) as exc:
        raise DemoDataUnavailable(
            f"The demo's MNIST digits are missing or damaged ({exc}): reinstall hanami-console.") from None
    count = len(labels) - 8
    if (images[:4] != b"\x00\x00\x08\x03" or labels[:4] != b"\x00\x00\x08\x01"
            or len(images) != 16 + 784 * count or count != 5000):
        raise DemoDataUnavailable("The demo's MNIST files have an unexpected layout: reinstall hanami-console.")
    pixels = np.frombuffer(images, dtype=np.uint8, offset=16).reshape(count, 28, 28)
    return pixels, np.frombuffer(labels, dtype=np.uint8, offset=8)


def _split(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    train_idx: list[np.ndarray] = []
    test_idx: list[np.ndarray] = []
    for digit in range(10):
        rows = np.flatnonzero(labels == digit)
        train_idx.append(rows[:TRAIN_PER_CLASS])
        test_idx.append(rows[TRAIN_PER_CLASS:TRAIN_PER_CLASS + TEST_PER_CLASS])
    rng = np.random.default_rng(_SEED)
    train = rng.permutation(np.concatenate(train_idx))
    test = rng.permutation(np.concatenate(test_idx))
    return images[train], labels[train], images[test], labels[test]


def _csv_text() -> str:
    """A smooth S-curve: test_output = 0.5 - 0.4 * cos(pi * test_input), LF line endings.

    test_input runs from 0 to 1 in equal steps, so the CSV task of EXAMPLE_CSV_TEMPLATE (one input
    neuron, one output neuron) learns the function test_output = f(test_input). A monotone curve
    was chosen over a full sine period because the emulator's network learns it within a few
    passes even though a task feeds the rows in order (mean error about 0.02 after 5 passes).
    """
    lines = ["test_input,test_output"]
    for i in range(CSV_ROWS):
        x = i / (CSV_ROWS - 1)
        y = 0.5 - 0.4 * math.cos(math.pi * x)
        lines.append(f"{x:.6f},{y:.6f}")
    return "\n".join(lines) + "\n"


def write_demo_data(folder: Path) -> DemoFiles:
    """Write the demo MNIST idx files and the demo CSV into ``folder``; idempotent.

    Existing complete files are kept (they are deterministic), so calling this at every start is
    cheap. Raises DemoDataUnavailable if the bundled digits are missing.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = DemoFiles(
        folder=folder,
        train_images=folder / "mnist-train-images.idx3-ubyte",
        train_labels=folder / "mnist-train-labels.idx1-ubyte",
        test_images=folder / "mnist-test-images.idx3-ubyte",
        test_labels=folder / "mnist-test-labels.idx1-ubyte",
        small_images=folder / "mnist-small-images.idx3-ubyte",
        small_labels=folder / "mnist-small-labels.idx1-ubyte",
        csv=folder / "demo-sine.csv",
    )
    expected = {
        files.train_images: 16 + 784 * 10 * TRAIN_PER_CLASS, files.train_labels: 8 + 10 * TRAIN_PER_CLASS,
        files.test_images: 16 + 784 * 10 * TEST_PER_CLASS, files.test_labels: 8 + 10 * TEST_PER_CLASS,
        files.small_images: 16 + 784 * SMALL_COUNT, files.small_labels: 8 + SMALL_COUNT,
    }
    if not all(p.is_file() and p.stat().st_size == size for p, size in expected.items()):
        train_x, train_y, test_x, test_y = _split(*_load_digits())
        # write to a temporary name first so a crash never leaves a half file that looks complete
        for path, writer, arr in (
            (files.train_images, write_idx_images, train_x), (files.train_labels, write_idx_labels, train_y),
            (files.test_images, write_idx_images, test_x), (files.test_labels, write_idx_labels, test_y),
            (files.small_images, write_idx_images, train_x[:SMALL_COUNT]),
            (files.small_labels, write_idx_labels, train_y[:SMALL_COUNT]),
        ):
            tmp = path.with_suffix(path.suffix + ".tmp")
            writer(tmp, arr)
            tmp.replace(path)
    text = _csv_text()
    if not files.csv.is_file() or files.csv.read_text(encoding="utf-8") != text:
        tmp = files.csv.with_suffix(".csv.tmp")
        tmp.write_text(text, encoding="utf-8", newline="\n")
        tmp.replace(files.csv)
    return files
