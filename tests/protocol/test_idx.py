"""IDX (MNIST) files: header, streaming validation with readable errors, reading and writing."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from webconsole.protocol.idx import (
    DataFormatError,
    iter_mnist,
    iter_mnist_batches,
    load_mnist,
    read_idx_header,
    validate_mnist_pair,
    write_idx_images,
    write_idx_labels,
)


def make_pair(folder: Path, n: int = 5, labels: list[int] | None = None) -> tuple[Path, Path]:
    images = folder / "img.idx3-ubyte"
    lab = folder / "lab.idx1-ubyte"
    write_idx_images(images, (np.arange(n * 4 * 3) % 256).astype(np.uint8).reshape(n, 4, 3))
    write_idx_labels(lab, np.array(labels if labels is not None else [i % 10 for i in range(n)]))
    return images, lab


def test_header_and_round_trip(tmp_path: Path) -> None:
    images, labels = make_pair(tmp_path)
    header = read_idx_header(images.read_bytes()[:16])
    assert (header.magic, header.type_code, header.dims) == (0x803, 8, (5, 4, 3))
    assert header.header_size == 16 and header.expected_file_size == 16 + 60
    assert images.read_bytes()[:16] == struct.pack(">IIII", 0x803, 5, 4, 3)
    info = validate_mnist_pair(images, labels)
    assert (info.count, info.rows, info.cols, info.inputs) == (5, 4, 3, 12)
    assert (info.images_size, info.labels_size) == (76, 13)
    x, y = load_mnist(images, labels)
    assert x.shape == (5, 12) and x.dtype == np.float32 and x[0, 1] == 1.0
    assert list(y) == [0, 1, 2, 3, 4]
    x2, y2 = iter_mnist(images, labels)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    batches = list(iter_mnist_batches(images, labels, batch=2))
    assert [len(b[1]) for b in batches] == [2, 2, 1]


def corrupt(path: Path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset:offset + len(data)] = data
    path.write_bytes(bytes(raw))


# (what to do, expected field, text that must appear in the message)
CASES = {
    "swapped files": ("swap", "magic number", "swap the image and label files"),
    "images wrong magic": ("img_magic", "magic number", "should start with 00 00 08 03"),
    "labels wrong magic": ("lab_magic", "magic number", "should start with 00 00 08 01"),
    "images truncated": ("img_short", "file size", "shorter than announced"),
    "labels too long": ("lab_long", "file size", "longer than announced"),
    "count mismatch": ("count", "count", "holds 5 images but the label file"),
    "tiny file": ("tiny", "magic number", "too short"),
    "header cut": ("header_cut", "header", "ends inside its header"),
    "zero rows": ("zero_rows", "rows", "at least one row"),
}


@pytest.mark.parametrize("action,field,text", CASES.values(), ids=CASES.keys())
def test_validation_errors(tmp_path: Path, action: str, field: str, text: str) -> None:
    images, labels = make_pair(tmp_path)
    args = (images, labels)
    if action == "swap":
        args = (labels, images)
    elif action == "img_magic":
        corrupt(images, 0, b"\x00\x00\x08\x02")
    elif action == "lab_magic":
        corrupt(labels, 0, b"\x00\x00\x0d\x01")
    elif action == "img_short":
        images.write_bytes(images.read_bytes()[:-1])
    elif action == "lab_long":
        labels.write_bytes(labels.read_bytes() + b"\x00")
    elif action == "count":
        write_idx_labels(labels, np.zeros(4))
    elif action == "tiny":
        images.write_bytes(b"\x00\x00")
    elif action == "header_cut":
        images.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    elif action == "zero_rows":
        images.write_bytes(struct.pack(">IIII", 0x803, 5, 0, 3))
    with pytest.raises(DataFormatError) as info:
        validate_mnist_pair(*args)
    assert info.value.field == field
    assert text in info.value.message
    name = args[0].name if action not in ("lab_magic", "lab_long") else labels.name
    assert f"'{name}'" in info.value.message


def test_first_bad_label_is_reported_across_chunks(tmp_path: Path) -> None:
    labels = [1] * 2500
    labels[1234] = 10
    labels[2000] = 255
    images, lab = make_pair(tmp_path, n=2500, labels=labels)
    with pytest.raises(DataFormatError) as info:
        validate_mnist_pair(images, lab, chunk_size=100)  # small chunks: the index must carry over
    err = info.value
    assert (err.line, err.field) == (1235, "label")
    assert "label 10 for image number 1235" in err.message and "0 to 9" in err.message


def test_validation_reads_in_bounded_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, lab = make_pair(tmp_path, n=3000)
    sizes: list[int] = []
    real_open = Path.open

    def spy_open(self: Path, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        fh = real_open(self, *args, **kwargs)  # type: ignore[arg-type]
        read = fh.read

        def counted(n: int = -1) -> bytes:
            sizes.append(n)
            return read(n)

        fh.read = counted  # type: ignore[method-assign]
        return fh

    monkeypatch.setattr(Path, "open", spy_open)
    validate_mnist_pair(images, lab, chunk_size=512)
    assert sizes and all(0 < n <= 512 for n in sizes)  # never read(-1): no whole-file reads
