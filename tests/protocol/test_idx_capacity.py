"""The most MNIST images a real Hanami 0.4.1 converts into one dataset (its finalize's buffer), and
the validation that refuses more before anything is uploaded."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from webconsole.protocol.idx import DataFormatError, hanami_mnist_capacity, validate_mnist_pair


@pytest.mark.parametrize("rows, cols, fit", [
    (28, 28, 98_740),  # a real server took 98,000 digits and died on 100,000
    (1, 1, 9_090),  # and took 9,090 single pixels, died on 20,000
    (10, 10, 90_909),
    (208, 208, 726),  # the buffer's size wraps around 32 bits: far fewer fit
])
def test_capacity_follows_hanamis_buffer(rows: int, cols: int, fit: int) -> None:
    assert hanami_mnist_capacity(rows, cols) == fit


def test_a_buffer_that_divides_evenly_has_no_limit() -> None:
    # 90 pixels: a line of 100 floats divides the 9,000,000-float buffer, which is flushed when full
    assert hanami_mnist_capacity(9, 10) is None


def pair(folder: Path, count: int, rows: int, cols: int) -> tuple[Path, Path]:
    """An IDX pair whose pixels are a sparse hole (only sizes and labels are read by validation)."""
    images, labels = folder / "images.idx3-ubyte", folder / "labels.idx1-ubyte"
    with images.open("wb") as out:
        out.write(struct.pack(">IIII", 0x803, count, rows, cols))
        out.truncate(16 + count * rows * cols)
    labels.write_bytes(struct.pack(">II", 0x801, count) + bytes(n % 10 for n in range(count)))
    return images, labels


def test_validation_takes_the_most_that_fit_and_refuses_one_more(tmp_path: Path) -> None:
    assert validate_mnist_pair(*pair(tmp_path, 98_740, 28, 28)).count == 98_740
    with pytest.raises(DataFormatError) as refused:
        validate_mnist_pair(*pair(tmp_path, 98_741, 28, 28))
    assert refused.value.field == "count"
    assert str(refused.value) == (
        "The image file 'images.idx3-ubyte' holds 98,741 images of 28 x 28 pixels, but Hanami converts at "
        "most 98,740 such images into one dataset (more overflow its conversion buffer and crash the "
        "server). Split the files into datasets of at most that many images.")
