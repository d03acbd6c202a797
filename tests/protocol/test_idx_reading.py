"""Reading a validated MNIST pair back (what the console keeps for its result pages), and the
refusal of a pair without images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from webconsole.protocol.idx import (
    DataFormatError,
    read_mnist_images,
    read_mnist_labels,
    validate_mnist_pair,
    write_idx_images,
    write_idx_labels,
)


def write_pair(folder: Path, images: np.ndarray, labels: np.ndarray) -> tuple[Path, Path]:
    image_path, label_path = folder / "train-images.idx3-ubyte", folder / "train-labels.idx1-ubyte"
    write_idx_images(image_path, images)
    write_idx_labels(label_path, labels)
    return image_path, label_path


def test_images_and_labels_read_back_in_file_order(tmp_path: Path) -> None:
    images = np.arange(4 * 2 * 3, dtype=np.uint8).reshape(4, 2, 3)  # 2 rows, 3 columns: not square
    labels = np.array([7, 0, 9, 3], dtype=np.uint8)
    image_path, label_path = write_pair(tmp_path, images, labels)
    assert read_mnist_labels(label_path) == bytes([7, 0, 9, 3])
    assert read_mnist_images(image_path) == (2, 3, images.tobytes())


def test_a_pair_without_images_is_refused_and_one_image_is_enough(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError) as refused:
        validate_mnist_pair(*write_pair(tmp_path, np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8)))
    assert refused.value.field == "count"
    assert str(refused.value) == ("The image file 'train-images.idx3-ubyte' holds no images (its header says 0): "
                                  "there is nothing to train or test on.")
    assert validate_mnist_pair(*write_pair(tmp_path, np.zeros((1, 28, 28), np.uint8), np.ones(1, np.uint8))).count == 1
