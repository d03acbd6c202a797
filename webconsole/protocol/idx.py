"""MNIST IDX files: header parsing, streaming validation, reading and writing.

An IDX file is a big-endian header followed by raw bytes (http://yann.lecun.com/exdb/mnist/):

* images: magic ``00 00 08 03`` (unsigned bytes, 3 dimensions), image count, rows, columns, then
  count x rows x columns pixel bytes;
* labels: magic ``00 00 08 01`` (unsigned bytes, 1 dimension), label count, then one byte per label.

Hanami reads the counts blindly (§4.28) and assumes 10 classes, so the console validates a pair
*before* uploading. Validation streams the files in fixed-size chunks: multi-gigabyte uploads
must not be loaded into memory just to be checked.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DataFormatError",
    "IdxHeader",
    "MnistInfo",
    "IMAGES_MAGIC",
    "LABELS_MAGIC",
    "read_idx_header",
    "validate_mnist_pair",
    "hanami_mnist_capacity",
    "write_idx_images",
    "write_idx_labels",
    "iter_mnist",
    "iter_mnist_batches",
    "load_mnist",
    "read_mnist_labels",
    "read_mnist_images",
]

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
NUM_CLASSES = 10  # Hanami hard-codes 10 one-hot outputs for MNIST datasets
_CHUNK = 1 << 20  # bytes read at a time while validating

PathLike = str | os.PathLike[str]

_U32 = 0xFFFFFFFF


def hanami_mnist_capacity(rows: int, cols: int) -> int | None:
    """The most images of ``rows`` x ``cols`` pixels Hanami 0.4.1 converts into one dataset, or None
    when its conversion buffer sets no limit.

    Its finalize (``convertMnistData``) copies each image and its 10 one-hot label values into one
    buffer of ``pixels * 10 * 10000`` floats (32-bit arithmetic), flushing it only when it is exactly
    full. Unless that size is a multiple of ``pixels + 10``, the image that would cross its end is
    written past it, which corrupts the server's memory and soon kills it (``free(): invalid
    pointer``): for 28 x 28 digits the buffer holds 98,740 images; a real server converted 98,000 and
    died on 100,000 (and on 20,000 single pixels, where 9,090 fit).
    """
    pixels = (rows * cols) & _U32
    segment = (((pixels * 10) & _U32) * 10000) & _U32
    line = pixels + 10
    return None if segment and segment % line == 0 else segment // line


class DataFormatError(ValueError):
    """A data file that Hanami would mis-read; the message is written for non-programmers.

    ``line`` is a 1-based line number (CSV) or record number (IDX), ``field`` the column name or
    the header field concerned; both are None when the whole file is concerned.
    """

    def __init__(self, message: str, line: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.field = field


@dataclass(frozen=True)
class IdxHeader:
    """The header of an IDX file."""

    magic: int  # e.g. 0x00000803
    type_code: int  # 0x08 = unsigned byte
    dims: tuple[int, ...]  # (count, rows, cols) for images, (count,) for labels

    @property
    def header_size(self) -> int:
        """Bytes before the data: 4 magic bytes + 4 per dimension."""
        return 4 + 4 * len(self.dims)

    @property
    def expected_file_size(self) -> int:
        """File size that matches the header (unsigned-byte data)."""
        size = 1
        for d in self.dims:
            size *= d
        return self.header_size + size


@dataclass(frozen=True)
class MnistInfo:
    """What a valid images+labels pair contains."""

    count: int
    rows: int
    cols: int
    images_size: int  # bytes
    labels_size: int  # bytes

    @property
    def inputs(self) -> int:
        """Input values per image (rows x columns), what Hanami reports as ``inputs``."""
        return self.rows * self.cols


def read_idx_header(head: bytes) -> IdxHeader:
    """Parse an IDX header from the first bytes of a file (at least 4 + 4 x dimensions bytes)."""
    if len(head) < 4:
        raise DataFormatError("the file is too short to be an IDX file (less than 4 bytes)", field="magic number")
    magic = struct.unpack(">I", head[:4])[0]
    if head[0] != 0 or head[1] != 0:
        raise DataFormatError(
            f"the file does not start like an IDX file (first bytes {head[:4].hex(' ')}, expected 00 00 08 0n)",
            field="magic number")
    ndim = head[3]
    if len(head) < 4 + 4 * ndim:
        raise DataFormatError(
            f"the file ends inside its header (it announces {ndim} dimensions, which need "
            f"{4 + 4 * ndim} header bytes, but only {len(head)} bytes are there)", field="header")
    dims = struct.unpack(f">{ndim}I", head[4:4 + 4 * ndim])
    return IdxHeader(magic=magic, type_code=head[2], dims=tuple(dims))


def _read_header(path: Path, kind: str, magic: int) -> IdxHeader:
    # As many bytes as the longest MNIST header (images: 3 dimensions), whatever file this should be:
    # an image file given as the label file is then named as such instead of "ends inside its header".
    with path.open("rb") as fh:
        head = fh.read(4 + 4 * 3)
    try:
        header = read_idx_header(head)
    except DataFormatError as exc:
        raise DataFormatError(f"The {kind} file '{path.name}' is not valid: {exc.message}.", field=exc.field) from None
    if header.magic != magic:
        other = {IMAGES_MAGIC: "an image file", LABELS_MAGIC: "a label file"}.get(header.magic)
        hint = f" It looks like {other}: did you swap the image and label files?" if other else ""
        raise DataFormatError(
            f"The {kind} file '{path.name}' is not an MNIST {kind} file: it starts with "
            f"{struct.pack('>I', header.magic).hex(' ')} but should start with "
            f"{struct.pack('>I', magic).hex(' ')}.{hint}", field="magic number")
    return header


def validate_mnist_pair(images_path: PathLike, labels_path: PathLike, *, chunk_size: int = _CHUNK) -> MnistInfo:
    """Check an MNIST image file and label file before uploading them; stream, bounded memory.

    Checks the magic numbers, the header dimensions, that each file is exactly as long as its header
    says, that both files hold the same number of records, and that every label is 0..9 (the first
    bad label is reported with its record number). Raises DataFormatError.
    """
    images, labels = Path(images_path), Path(labels_path)
    ih = _read_header(images, "image", IMAGES_MAGIC)
    lh = _read_header(labels, "label", LABELS_MAGIC)
    count, rows, cols = ih.dims
    if rows == 0 or cols == 0:
        raise DataFormatError(
            f"The image file '{images.name}' says its images have {rows} x {cols} pixels; "
            "an image needs at least one row and one column.", field="rows" if rows == 0 else "columns")
    for path, header, kind, unit in ((images, ih, "image", "images"), (labels, lh, "label", "labels")):
        actual = path.stat().st_size
        if actual != header.expected_file_size:
            what = "shorter" if actual < header.expected_file_size else "longer"
            raise DataFormatError(
                f"The {kind} file '{path.name}' is {actual} bytes long, but its header announces "
                f"{header.dims[0]} {unit}, which need exactly {header.expected_file_size} bytes: the file is "
                f"{what} than announced (incomplete download, or not an MNIST file).", field="file size")
    if count == 0:
        raise DataFormatError(
            f"The image file '{images.name}' holds no images (its header says 0): there is nothing to "
            "train or test on.", field="count")
    if lh.dims[0] != count:
        raise DataFormatError(
            f"The image file '{images.name}' holds {count} images but the label file '{labels.name}' holds "
            f"{lh.dims[0]} labels; every image needs exactly one label.", field="count")
    capacity = hanami_mnist_capacity(rows, cols)
    if capacity is not None and count > capacity:
        raise DataFormatError(
            f"The image file '{images.name}' holds {count:,} images of {rows} x {cols} pixels, but Hanami "
            f"converts at most {capacity:,} such images into one dataset (more overflow its conversion "
            "buffer and crash the server). Split the files into datasets of at most that many images.",
            field="count")
    _check_labels(labels, lh.header_size, chunk_size)
    return MnistInfo(count=count, rows=rows, cols=cols, images_size=ih.expected_file_size,
                     labels_size=lh.expected_file_size)


def _check_labels(path: Path, offset: int, chunk_size: int) -> None:
    with path.open("rb") as fh:
        fh.seek(offset)
        index = 0
        while chunk := fh.read(chunk_size):
            data = np.frombuffer(chunk, dtype=np.uint8)
            bad = np.flatnonzero(data >= NUM_CLASSES)
            if bad.size:
                record = index + int(bad[0]) + 1
                raise DataFormatError(
                    f"The label file '{path.name}' has the label {int(data[bad[0]])} for image number "
                    f"{record} (counting from 1); MNIST labels must be digits from 0 to 9.",
                    line=record, field="label")
            index += data.size


def write_idx_images(path: PathLike, images: np.ndarray) -> None:
    """Write images (n, rows, cols) of uint8 as an IDX image file."""
    arr = np.asarray(images)
    if arr.ndim != 3:
        raise ValueError(f"images must have shape (n, rows, cols), got {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    with Path(path).open("wb") as fh:
        fh.write(struct.pack(">I3I", IMAGES_MAGIC, *arr.shape))
        fh.write(arr.tobytes())


def write_idx_labels(path: PathLike, labels: np.ndarray) -> None:
    """Write labels (n,) of uint8 as an IDX label file."""
    arr = np.ascontiguousarray(np.asarray(labels).reshape(-1), dtype=np.uint8)
    with Path(path).open("wb") as fh:
        fh.write(struct.pack(">II", LABELS_MAGIC, arr.shape[0]))
        fh.write(arr.tobytes())


def iter_mnist_batches(images_path: PathLike, labels_path: PathLike,
                       batch: int = 1000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (images float32 (k, rows*cols) with pixel values 0..255, labels uint8 (k,)) batches.

    Reads only ``batch`` records at a time. The pair should have been validated first.
    """
    ih = _read_header(Path(images_path), "image", IMAGES_MAGIC)
    lh = _read_header(Path(labels_path), "label", LABELS_MAGIC)
    count, rows, cols = ih.dims
    count = min(count, lh.dims[0])
    size = rows * cols
    with Path(images_path).open("rb") as fi, Path(labels_path).open("rb") as fl:
        fi.seek(ih.header_size)
        fl.seek(lh.header_size)
        done = 0
        while done < count:
            k = min(batch, count - done)
            pixels = np.frombuffer(fi.read(k * size), dtype=np.uint8)
            labels = np.frombuffer(fl.read(k), dtype=np.uint8)
            k = min(pixels.size // size, labels.size)
            if k == 0:
                return
            yield pixels[:k * size].reshape(k, size).astype(np.float32), labels[:k].copy()
            done += k


def load_mnist(images_path: PathLike, labels_path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load a whole pair: images float32 (n, rows*cols) with values 0..255, labels uint8 (n,)."""
    parts = list(iter_mnist_batches(images_path, labels_path, batch=10000))
    ih = _read_header(Path(images_path), "image", IMAGES_MAGIC)
    if not parts:
        return np.zeros((0, ih.dims[1] * ih.dims[2]), np.float32), np.zeros(0, np.uint8)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def iter_mnist(images_path: PathLike, labels_path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Same as load_mnist (the name in the team interface); use iter_mnist_batches to stream."""
    return load_mnist(images_path, labels_path)


def read_mnist_labels(labels_path: PathLike) -> bytes:
    """The labels of a validated label file: one byte (0..9) per image, in file order."""
    path = Path(labels_path)
    header = _read_header(path, "label", LABELS_MAGIC)
    with path.open("rb") as fh:
        fh.seek(header.header_size)
        return fh.read(header.dims[0])


def read_mnist_images(images_path: PathLike) -> tuple[int, int, bytes]:
    """(rows, columns, pixels) of a validated image file: rows x columns bytes per image, in file order."""
    path = Path(images_path)
    header = _read_header(path, "image", IMAGES_MAGIC)
    count, rows, cols = header.dims
    with path.open("rb") as fh:
        fh.seek(header.header_size)
        return rows, cols, fh.read(count * rows * cols)
