"""The MNIST check's messages word for word (a person fixes the file from them), and its edges."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from webconsole.protocol.idx import (
    DataFormatError,
    iter_mnist_batches,
    load_mnist,
    read_idx_header,
    validate_mnist_pair,
    write_idx_images,
    write_idx_labels,
)


def pair(folder: Path, n: int = 5, rows: int = 4, cols: int = 3, labels: list[int] | None = None) -> tuple[Path, Path]:
    images, labels_path = folder / "img.idx", folder / "lab.idx"
    write_idx_images(images, np.zeros((n, rows, cols), dtype=np.uint8))
    write_idx_labels(labels_path, np.array(labels if labels is not None else [i % 10 for i in range(n)]))
    return images, labels_path


def refusal(images: Path, labels: Path, **kwargs: int) -> DataFormatError:
    with pytest.raises(DataFormatError) as raised:
        validate_mnist_pair(images, labels, **kwargs)
    return raised.value


def test_header_problems(tmp_path: Path) -> None:
    images, labels = pair(tmp_path)
    cases = [
        (b"\x00\x00", "magic number", "The image file 'img.idx' is not valid: the file is too short to be an IDX "
         "file (less than 4 bytes)."),
        (b"\x00\x01\x08\x03" + bytes(12), "magic number", "The image file 'img.idx' is not valid: the file does not "
         "start like an IDX file (first bytes 00 01 08 03, expected 00 00 08 0n)."),
        (b"\x01\x00\x08\x03" + bytes(12), "magic number", "The image file 'img.idx' is not valid: the file does not "
         "start like an IDX file (first bytes 01 00 08 03, expected 00 00 08 0n)."),
        (b"\x00\x00\x08\x03\x00\x00", "header", "The image file 'img.idx' is not valid: the file ends inside its "
         "header (it announces 3 dimensions, which need 16 header bytes, but only 6 bytes are there)."),
        (b"\x00\x00\x08\x02" + bytes(12), "magic number", "The image file 'img.idx' is not an MNIST image file: it "
         "starts with 00 00 08 02 but should start with 00 00 08 03."),
    ]
    for head, field, message in cases:
        images.write_bytes(head)
        error = refusal(images, labels)
        assert (error.field, error.message, error.line) == (field, message, None), head


def test_swapped_files_are_named_as_such(tmp_path: Path) -> None:
    images, labels = pair(tmp_path)
    error = refusal(labels, images)
    assert error.message == ("The image file 'lab.idx' is not an MNIST image file: it starts with 00 00 08 01 but "
                             "should start with 00 00 08 03. It looks like a label file: did you swap the image and "
                             "label files?")
    images.write_bytes(struct.pack(">IIII", 0x803, 5, 4, 3) + bytes(60))
    labels.write_bytes(struct.pack(">IIII", 0x803, 5, 4, 3) + bytes(60))
    error = refusal(images, labels)
    assert error.message == ("The label file 'lab.idx' is not an MNIST label file: it starts with 00 00 08 03 but "
                             "should start with 00 00 08 01. It looks like an image file: did you swap the image and "
                             "label files?")


@pytest.mark.parametrize("rows, cols, field", [(0, 3, "rows"), (4, 0, "columns")])
def test_images_need_pixels(tmp_path: Path, rows: int, cols: int, field: str) -> None:
    images, labels = pair(tmp_path)
    images.write_bytes(struct.pack(">IIII", 0x803, 5, rows, cols))
    error = refusal(images, labels)
    assert (error.field, error.message) == (field, f"The image file 'img.idx' says its images have {rows} x {cols} "
                                            "pixels; an image needs at least one row and one column.")


def test_file_sizes_must_match_the_headers(tmp_path: Path) -> None:
    images, labels = pair(tmp_path)
    images.write_bytes(images.read_bytes()[:-1])
    error = refusal(images, labels)
    assert (error.field, error.message) == ("file size", "The image file 'img.idx' is 75 bytes long, but its header "
                                            "announces 5 images, which need exactly 76 bytes: the file is shorter "
                                            "than announced (incomplete download, or not an MNIST file).")
    images, labels = pair(tmp_path)
    labels.write_bytes(labels.read_bytes() + b"\x00\x00")
    error = refusal(images, labels)
    assert error.message == ("The label file 'lab.idx' is 15 bytes long, but its header announces 5 labels, which "
                             "need exactly 13 bytes: the file is longer than announced (incomplete download, or not "
                             "an MNIST file).")


def test_counts_must_match(tmp_path: Path) -> None:
    images, _ = pair(tmp_path)
    labels = tmp_path / "four.idx"
    write_idx_labels(labels, np.zeros(4))
    error = refusal(images, labels)
    assert (error.field, error.message) == ("count", "The image file 'img.idx' holds 5 images but the label file "
                                            "'four.idx' holds 4 labels; every image needs exactly one label.")


@pytest.mark.parametrize("chunk", [1, 3, 4, 1 << 20])
def test_the_first_bad_label_whatever_the_chunks(tmp_path: Path, chunk: int) -> None:
    images, labels = pair(tmp_path, n=9, labels=[0, 9, 5, 3, 7, 12, 1, 10, 2])
    error = refusal(images, labels, chunk_size=chunk)
    assert (error.line, error.field, error.message) == (6, "label", "The label file 'lab.idx' has the label 12 for "
                                                        "image number 6 (counting from 1); MNIST labels must be "
                                                        "digits from 0 to 9.")


def test_labels_nine_and_a_last_bad_label(tmp_path: Path) -> None:
    images, labels = pair(tmp_path, n=4, labels=[9, 9, 9, 9])
    assert validate_mnist_pair(images, labels, chunk_size=3).count == 4  # 9 is a digit
    images, labels = pair(tmp_path, n=4, labels=[9, 9, 9, 10])
    assert refusal(images, labels, chunk_size=3).line == 4  # in the last, partial chunk


def test_a_header_announcing_no_dimensions(tmp_path: Path) -> None:
    header = read_idx_header(b"\x00\x00\x08\x00")
    assert (header.magic, header.type_code, header.dims, header.header_size, header.expected_file_size) == (
        0x800, 8, (), 4, 5)
    assert read_idx_header(b"\x00\x00\x0d\x01\x00\x00\x00\x07extra").dims == (7,)


# -- writing and reading (the emulator and the demo data use these) ------------------------------------


def test_written_files_are_byte_exact(tmp_path: Path) -> None:
    images, labels = tmp_path / "i.idx", tmp_path / "l.idx"
    pixels = np.arange(2 * 2 * 3, dtype=np.int64).reshape(2, 2, 3) + 250  # wraps past 255 as uint8
    write_idx_images(images, pixels)
    assert images.read_bytes() == struct.pack(">IIII", 0x803, 2, 2, 3) + bytes((250 + i) % 256 for i in range(12))
    write_idx_labels(labels, np.array([[3], [7]]))  # any shape: flattened
    assert labels.read_bytes() == struct.pack(">II", 0x801, 2) + bytes([3, 7])
    with pytest.raises(ValueError, match=r"images must have shape \(n, rows, cols\), got \(4,\)"):
        write_idx_images(images, np.zeros(4))


@pytest.mark.parametrize("batch", [1, 2, 3, 7, 1000])
def test_reading_in_batches_gives_every_record_once(tmp_path: Path, batch: int) -> None:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (7, 2, 3), dtype=np.uint8)
    digits = rng.integers(0, 10, 7, dtype=np.uint8)
    images, labels = tmp_path / "i.idx", tmp_path / "l.idx"
    write_idx_images(images, pixels)
    write_idx_labels(labels, digits)
    parts = list(iter_mnist_batches(images, labels, batch=batch))
    assert [len(part[1]) for part in parts] == [min(batch, 7 - start) for start in range(0, 7, batch)]
    for x, y in parts:
        assert x.dtype == np.float32 and y.dtype == np.uint8 and x.shape == (len(y), 6)
    x, y = load_mnist(images, labels)
    assert np.array_equal(x, pixels.reshape(7, 6).astype(np.float32)) and np.array_equal(y, digits)


def test_reading_stops_at_the_shorter_file(tmp_path: Path) -> None:
    images, labels = pair(tmp_path, n=5)
    write_idx_labels(labels, np.array([1, 2, 3]))  # 3 labels for 5 images
    assert [len(y) for _, y in iter_mnist_batches(images, labels, batch=2)] == [2, 1]
    images.write_bytes(images.read_bytes()[:16 + 12 * 2 + 5])  # 2 whole images and a part
    x, y = load_mnist(images, labels)
    assert x.shape == (2, 12) and y.tolist() == [1, 2]


def test_an_empty_pair_loads_as_empty_arrays(tmp_path: Path) -> None:
    images, labels = pair(tmp_path, n=0, rows=4, cols=3)
    x, y = load_mnist(images, labels)
    assert (x.shape, x.dtype, y.shape, y.dtype) == ((0, 12), np.float32, (0,), np.uint8)


def test_reading_a_swapped_pair_names_the_files_like_the_check(tmp_path: Path) -> None:
    images, labels = pair(tmp_path)
    for read in (load_mnist, lambda i, lab: list(iter_mnist_batches(i, lab))):
        with pytest.raises(DataFormatError) as raised:
            read(labels, images)
        assert raised.value.message.startswith("The image file 'lab.idx' is not an MNIST image file")
        assert str(raised.value) == raised.value.message  # logs and tracebacks show the same words
    with pytest.raises(DataFormatError) as raised:
        load_mnist(images, images)
    assert raised.value.message.startswith("The label file 'img.idx' is not an MNIST label file")


@pytest.mark.parametrize("batch", [1, 2, 1000])
def test_reading_takes_the_count_the_headers_announce(tmp_path: Path, batch: int) -> None:
    images, labels = pair(tmp_path, n=3, labels=[4, 5, 6])
    # both headers announce 2 records although 3 follow: the third is not read
    images.write_bytes(struct.pack(">IIII", 0x803, 2, 4, 3) + images.read_bytes()[16:])
    labels.write_bytes(struct.pack(">II", 0x801, 2) + labels.read_bytes()[8:])
    assert [y.tolist() for _, y in iter_mnist_batches(images, labels, batch=batch)] == (
        [[4], [5]] if batch == 1 else [[4, 5]])
