"""What the console keeps of the MNIST datasets uploaded through it: their labels and, for small sets,
their images. Hanami cannot give either back (a result holds only the predicted classes), so without
them the console could not tell which digits a cluster gets wrong.

The upload reads them while it validates the files (``protocol.idx``) and records them, once Hanami
has answered with the dataset's uuid, in the shared store (every replica sees them):

* ``dataset-labels:<dataset uuid>`` — one byte (0..9) per image, in file order;
* ``dataset-images:<dataset uuid>`` — JSON ``{"count", "rows", "cols", "chunk"}`` when the images are
  kept (at most ``MAX_KEPT_IMAGES`` of them), and ``dataset-images:<dataset uuid>:<n>`` the pixels of
  images ``n * chunk`` … ``(n + 1) * chunk - 1``, so that showing one digit reads one small chunk.

* ``dataset-values:<dataset uuid>`` — for a CSV dataset of at most ``MAX_KEPT_CELLS`` cells, JSON
  ``{"columns": [...], "values": [[...], ...]}``: the columns as Hanami converts them (§4.30).

A dataset uploaded elsewhere has none of these; pages say so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from webconsole.protocol.csvdata import parse_csv_like_hanami
from webconsole.protocol.idx import read_mnist_images, read_mnist_labels
from webconsole.sessions import KeyValueStore, read_record

LABELS_PREFIX = "dataset-labels:"
IMAGES_PREFIX = "dataset-images:"
CONTENTS_TTL = 365 * 24 * 3600.0  # datasets outlive tasks and clusters (§7.5)
MAX_KEPT_LABELS = 1_000_000  # 1 MB in the store; larger sets are not analysed
MAX_KEPT_IMAGES = 10_000  # 7.8 MB of 28 x 28 digits
IMAGE_CHUNK = 100
VALUES_PREFIX = "dataset-values:"
MAX_KEPT_CELLS = 200_000


@dataclass(frozen=True)
class DatasetContents:
    """Labels (and maybe pixels) of an MNIST upload, or the values of a CSV one, read from the
    validated files before Hanami knows the dataset."""

    labels: bytes = b""
    rows: int = 0
    cols: int = 0
    pixels: bytes = b""
    csv_values: dict | None = None


def read_contents(images_path: Path, labels_path: Path, count: int) -> DatasetContents | None:
    """What to keep of a validated pair (blocking I/O: run it in a thread); None when it is too large."""
    if count > MAX_KEPT_LABELS:
        return None
    labels = read_mnist_labels(labels_path)
    if count > MAX_KEPT_IMAGES:
        return DatasetContents(labels=labels)
    rows, cols, pixels = read_mnist_images(images_path)
    return DatasetContents(labels=labels, rows=rows, cols=cols, pixels=pixels)


async def remember_contents(store: KeyValueStore, dataset_uuid: str, contents: DatasetContents) -> None:
    if contents.csv_values is not None:
        await remember_csv_values(store, dataset_uuid, contents.csv_values)
        return
    await store.set(LABELS_PREFIX + dataset_uuid, contents.labels, CONTENTS_TTL)
    if not contents.pixels:
        return
    size = contents.rows * contents.cols
    count = len(contents.pixels) // size
    for chunk in range(0, -(-count // IMAGE_CHUNK)):
        start = chunk * IMAGE_CHUNK * size
        await store.set(f"{IMAGES_PREFIX}{dataset_uuid}:{chunk}",
                        contents.pixels[start:start + IMAGE_CHUNK * size], CONTENTS_TTL)
    meta = {"count": count, "rows": contents.rows, "cols": contents.cols, "chunk": IMAGE_CHUNK}
    await store.set(IMAGES_PREFIX + dataset_uuid, json.dumps(meta).encode(), CONTENTS_TTL)


async def known_labels(store: KeyValueStore, dataset_uuid: str) -> bytes | None:
    """The labels of a dataset uploaded through this console, or None."""
    return await store.get(LABELS_PREFIX + dataset_uuid)


async def images_meta(store: KeyValueStore, dataset_uuid: str) -> dict | None:
    """``{"count", "rows", "cols", "chunk"}`` when the console keeps this dataset's images."""
    return await read_record(store, IMAGES_PREFIX + dataset_uuid)


async def known_images(store: KeyValueStore, dataset_uuid: str, indices: list[int]) -> dict[int, tuple[int, int, bytes]]:
    """``index -> (rows, cols, pixels)`` for the kept images among ``indices`` (one read per chunk)."""
    meta = await images_meta(store, dataset_uuid)
    if meta is None:
        return {}
    rows, cols, chunk_size, count = int(meta["rows"]), int(meta["cols"]), int(meta["chunk"]), int(meta["count"])
    size = rows * cols
    found: dict[int, tuple[int, int, bytes]] = {}
    chunks: dict[int, bytes | None] = {}
    for index in indices:
        if not 0 <= index < count:
            continue
        number = index // chunk_size
        if number not in chunks:
            chunks[number] = await store.get(f"{IMAGES_PREFIX}{dataset_uuid}:{number}")
        data = chunks[number]
        offset = (index % chunk_size) * size
        if data is not None and len(data) >= offset + size:
            found[index] = (rows, cols, data[offset:offset + size])
    return found


async def forget_contents(store: KeyValueStore, dataset_uuid: str) -> None:
    """The dataset was deleted through the console: drop its labels and images."""
    meta = await images_meta(store, dataset_uuid)
    await store.delete(LABELS_PREFIX + dataset_uuid)
    await store.delete(IMAGES_PREFIX + dataset_uuid)
    await store.delete(VALUES_PREFIX + dataset_uuid)
    if meta is not None:
        for chunk in range(0, -(-int(meta["count"]) // int(meta["chunk"]))):
            await store.delete(f"{IMAGES_PREFIX}{dataset_uuid}:{chunk}")


def read_csv_values(path: Path, lines: int, columns: int) -> dict | None:
    """The columns of a validated CSV file as Hanami reads them (blocking: run it in a thread);
    None when it has more than ``MAX_KEPT_CELLS`` cells."""
    if lines * columns > MAX_KEPT_CELLS:
        return None
    names, values = parse_csv_like_hanami(path.read_bytes())
    return {"columns": names, "values": [values[:, i].astype(float).tolist() for i in range(len(names))]}


async def remember_csv_values(store: KeyValueStore, dataset_uuid: str, values: dict) -> None:
    await store.set(VALUES_PREFIX + dataset_uuid, json.dumps(values).encode(), CONTENTS_TTL)


async def known_csv_values(store: KeyValueStore, dataset_uuid: str) -> dict | None:
    """``{"columns", "values"}`` of a CSV dataset uploaded through this console, or None."""
    return await read_record(store, VALUES_PREFIX + dataset_uuid)
