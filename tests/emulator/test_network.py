"""The emulator's numpy network: shape from templates, learning targets, checkpoints, threads."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from webconsole.demo_data import DemoFiles, write_demo_data
from webconsole.emulator.network import Network
from webconsole.protocol.idx import load_mnist  # noqa: E402
from webconsole.protocol.template import (  # noqa: E402
    EXAMPLE_CSV_TEMPLATE,
    EXAMPLE_MNIST_TEMPLATE,
    parse_template,
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoFiles:
    return write_demo_data(tmp_path_factory.mktemp("demo"))


def one_hot(label: int) -> np.ndarray:
    e = np.zeros(10, dtype=np.float32)
    e[label] = 1.0
    return e


def test_shape_from_template() -> None:
    net = Network.from_template(parse_template(EXAMPLE_MNIST_TEMPLATE), "c1", seed=1)
    assert (net.name, net.input_name, net.output_name) == ("c1", "test_input", "test_output")
    assert (net.input_size, net.output_size, net.sizes) == (784, 10, [784, 400, 10])
    out = net.forward(np.full(784, 255.0))
    assert out.shape == (10,) and out.dtype == np.float32 and np.all((out > 0) & (out < 1))


def test_several_hidden_bricks_in_template_order() -> None:
    text = ("version: 1\nbricks:\n 1,1,1\n  input: i\n  number_of_neurons: 3\n 2,1,1\n  number_of_neurons: 7\n"
            " 3,1,1\n  number_of_neurons: 5\n 4,1,1\n  output: o\n  number_of_neurons: 2\n")
    net = Network.from_template(parse_template(text), "deep", seed=0)
    assert net.sizes == [3, 7, 5, 2]
    for _ in range(300):
        net.train_step(np.array([1.0, 0.0, 0.5]), np.array([1.0, 0.0]))
    out = net.forward(np.array([1.0, 0.0, 0.5]))
    assert out[0] > 0.9 and out[1] < 0.1


def test_template_without_output_brick_is_rejected() -> None:
    with pytest.raises(ValueError):
        Network.from_template(parse_template("version: 1\nbricks:\n 1,1,1\n  input: i\n"), "x")


def test_sizes_are_not_enforced_like_hanami() -> None:
    net = Network.from_template(parse_template(EXAMPLE_CSV_TEMPLATE), "csv", seed=0)
    assert net.forward(np.array([0.1, 0.2, 0.3])).shape == (1,)  # cut to 1 input
    net.train_step(np.array([]), np.array([0.5, 0.7]))  # padded / cut, no error


def test_mnist_one_pass_reaches_90_percent_fast(demo: DemoFiles) -> None:
    """Release-note target: one in-order pass over 4,000 digits -> >= 90 % on 1,000 held-out."""
    train_x, train_y = load_mnist(demo.train_images, demo.train_labels)
    test_x, test_y = load_mnist(demo.test_images, demo.test_labels)
    assert len(train_x) == 4000 and len(test_x) == 1000
    net = Network.from_template(parse_template(EXAMPLE_MNIST_TEMPLATE), "mnist", seed=7)
    start = time.perf_counter()
    for image, label in zip(train_x, train_y):  # one cycle per image, like a Hanami train task
        net.train_step(image, one_hot(int(label)))
    elapsed = time.perf_counter() - start
    predictions = np.array([int(np.argmax(net.forward(image))) for image in test_x])
    accuracy = float(np.mean(predictions == test_y))
    print(f"one pass over 4000 digits: {elapsed:.2f} s, held-out accuracy {accuracy:.1%}")
    assert accuracy >= 0.90
    assert elapsed < 10.0
    assert np.array_equal(net.forward_many(test_x).argmax(axis=1), predictions)


@pytest.mark.parametrize("label", [0, 3, 9])
def test_direct_io_training_on_one_sample(demo: DemoFiles, label: int) -> None:
    images, _ = load_mnist(demo.small_images, demo.small_labels)
    sample = images[0]
    net = Network.from_template(parse_template(EXAMPLE_MNIST_TEMPLATE), "direct", seed=label)
    for _ in range(100):
        net.train_step(sample, one_hot(label))
    assert int(np.argmax(net.forward(sample))) == label


def test_checkpoint_round_trip() -> None:
    net = Network.from_template(parse_template(EXAMPLE_MNIST_TEMPLATE), "saved", seed=3)
    x = np.arange(784, dtype=np.float32) % 256
    for _ in range(5):
        net.train_step(x, one_hot(4))
    restored = Network.from_bytes(net.to_bytes())
    assert (restored.name, restored.input_name, restored.output_name) == ("saved", "test_input", "test_output")
    assert restored.sizes == net.sizes and restored.steps == 5
    np.testing.assert_array_equal(restored.forward(x), net.forward(x))
    # training continues identically from the checkpoint
    net.train_step(x, one_hot(1))
    restored.train_step(x, one_hot(1))
    np.testing.assert_array_equal(restored.forward(x), net.forward(x))


def test_from_bytes_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        Network.from_bytes(b"not a network")


def test_concurrent_train_and_forward() -> None:
    net = Network.from_template(parse_template(EXAMPLE_CSV_TEMPLATE), "threads", seed=0)
    errors: list[BaseException] = []

    def trainer() -> None:
        try:
            for i in range(2000):
                v = (i % 100) / 100
                net.train_step(np.array([v]), np.array([v]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=trainer)
    thread.start()
    while thread.is_alive():
        assert np.isfinite(net.forward(np.array([0.5]))).all()
        Network.from_bytes(net.to_bytes())
    thread.join()
    assert not errors and net.steps == 2000


def test_demo_csv_curve_is_learned_in_a_few_passes(demo: DemoFiles) -> None:
    # like a CSV train task with EXAMPLE_CSV_TEMPLATE (1 input, 1 output): rows in order, 5 passes
    rows = np.loadtxt(demo.csv, delimiter=",", skiprows=1, dtype=np.float32)
    net = Network.from_template(parse_template(EXAMPLE_CSV_TEMPLATE), "curve", seed=0)
    for _ in range(5):
        for x, y in rows:
            net.train_step(np.array([x]), np.array([y]))
    error = float(np.mean(np.abs(net.forward_many(rows[:, :1])[:, 0] - rows[:, 1])))
    print(f"demo CSV after 5 passes: mean absolute error {error:.3f}")
    assert error < 0.06
