"""A small, real neural network in numpy, built from a cluster template, for the emulator.

Hanami's spiking network is not reproduced; instead the emulator learns with an ordinary
multi-layer perceptron so that trained clusters really classify digits. Shape:

* input layer  = the (first) input brick's ``number_of_neurons``;
* one hidden layer per internal brick (no ``input``/``output``), in template order, with that
  brick's neuron count (bricks with 0 neurons are skipped);
* output layer = the (first) output brick's ``number_of_neurons``.

Learning rules (chosen and measured for one pass over 4,000 MNIST digits with the 784-400-10
template, see tests/emulator/test_network.py):

* ReLU hidden units (He initialisation), sigmoid outputs; the error signal is ``output - expected``
  (sigmoid + cross-entropy), which works for one-hot labels and for targets in [0, 1].
* Per-sample SGD, one step per cycle like a Hanami task or a direct-IO train message. The learning
  rate decays as ``0.15 / (1 + 0.003 * steps)``, never below 5 % of the start value, so a fresh
  network learns fast and later steps refine instead of overwriting.
* Inputs are scaled into [-1, 1]: values are divided by the largest absolute input value the
  network has been trained on, once that exceeds 1 (MNIST pixels 0..255 become 0..1; CSV values
  already in [0, 1] stay as they are). ``forward`` uses that scale but never changes it.
* Like Hanami, sizes are not enforced: a longer input/expected vector is cut to the layer size, a
  shorter one is padded with zeros.

All public methods take a per-network lock, so a worker thread may train while another thread
requests or saves a checkpoint.
"""

from __future__ import annotations

import io
import threading

import numpy as np

from webconsole.protocol.template import ClusterTemplate

__all__ = ["Network"]

LEARNING_RATE = 0.15
LR_DECAY = 0.003  # per training step
LR_FLOOR = 0.05  # fraction of LEARNING_RATE kept forever
OUTPUT_INIT_SCALE = 0.5  # smaller output weights: less saturated sigmoids at the start
_FORMAT = 1  # version of the to_bytes layout


class Network:
    """A multi-layer perceptron with a cluster's input/output brick names."""

    def __init__(self, name: str, input_name: str, output_name: str, sizes: list[int],
                 weights: list[np.ndarray], biases: list[np.ndarray], steps: int = 0,
                 input_scale: float = 1.0) -> None:
        self.name = name
        self.input_name = input_name
        self.output_name = output_name
        self.sizes = list(sizes)
        self.input_size = sizes[0]
        self.output_size = sizes[-1]
        self._w = weights
        self._b = biases
        self._steps = steps
        self._scale = input_scale
        self._lock = threading.Lock()

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_template(cls, template: ClusterTemplate, name: str, seed: int | None = None) -> "Network":
        """Build a freshly initialised network; raises ValueError without input or output brick."""
        if not template.input_bricks or not template.output_bricks:
            raise ValueError("the template needs an input brick and an output brick")
        inp, out = template.input_bricks[0], template.output_bricks[0]
        hidden = [b.neurons for b in template.bricks
                  if b.input_name is None and b.output_name is None and b.neurons > 0]
        sizes = [max(1, inp.neurons), *hidden, max(1, out.neurons)]
        rng = np.random.default_rng(seed)
        weights, biases = [], []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            # He initialisation for ReLU layers; a smaller Xavier-like scale into the sigmoids
            std = np.sqrt(1.0 / n_in) * OUTPUT_INIT_SCALE if last else np.sqrt(2.0 / n_in)
            weights.append((rng.standard_normal((n_in, n_out)) * std).astype(np.float32))
            biases.append(np.zeros(n_out, dtype=np.float32))
        return cls(name, inp.input_name or "", out.output_name or "", sizes, weights, biases)

    # -- use ----------------------------------------------------------------------------------

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Output activations (float32, values in (0, 1)) for one sample."""
        with self._lock:
            a0 = self._prepare(x, self.input_size)
            scale = max(self._scale, float(np.max(np.abs(a0), initial=0.0)))
            return self._forward(a0 / scale if scale > 1.0 else a0)[-1].copy()

    def forward_many(self, xs: np.ndarray) -> np.ndarray:
        """Output activations for a batch (n, inputs) -> (n, outputs); for request tasks."""
        with self._lock:
            batch = np.asarray(xs, dtype=np.float32).reshape(len(xs), -1)
            a = np.zeros((batch.shape[0], self.input_size), dtype=np.float32)
            k = min(self.input_size, batch.shape[1])
            a[:, :k] = batch[:, :k]
            peak = np.max(np.abs(a), axis=1, initial=0.0)
            scale = np.maximum(self._scale, peak)
            a = np.where((scale > 1.0)[:, None], a / np.maximum(scale, 1.0)[:, None], a)
            for i, (w, b) in enumerate(zip(self._w, self._b)):
                z = a @ w + b
                a = _sigmoid(z) if i == len(self._w) - 1 else np.maximum(z, 0.0)
            return a.astype(np.float32)

    def train_step(self, x: np.ndarray, expected: np.ndarray) -> None:
        """One SGD step on one sample towards ``expected`` output values."""
        with self._lock:
            a0 = self._prepare(x, self.input_size)
            target = self._prepare(expected, self.output_size)
            peak = float(np.max(np.abs(a0), initial=0.0))
            if peak > self._scale:
                self._scale = peak
            if self._scale > 1.0:
                a0 = a0 / self._scale
            lr = LEARNING_RATE * max(1.0 / (1.0 + LR_DECAY * self._steps), LR_FLOOR)
            # only rows of non-zero inputs get a first-layer gradient: MNIST digits are ~80 %
            # zeros, so updating those rows only makes a step several times faster
            nz = np.flatnonzero(a0)
            acts = self._forward(a0, nz)
            delta = acts[-1] - target
            for layer in range(len(self._w) - 1, -1, -1):
                w = self._w[layer]
                below = acts[layer]
                if layer > 0:
                    back = (w @ delta) * (below > 0)
                if layer == 0:
                    w[nz] -= lr * np.outer(below[nz], delta)
                else:
                    w -= lr * np.outer(below, delta)
                self._b[layer] -= lr * delta
                if layer > 0:
                    delta = back
            self._steps += 1

    @property
    def steps(self) -> int:
        """Number of training steps done so far."""
        return self._steps

    # -- checkpoints --------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Serialise weights, names, shape and training state (numpy .npz, no pickle)."""
        with self._lock:
            arrays: dict[str, np.ndarray] = {
                "format": np.array(_FORMAT),
                "name": np.array(self.name), "input_name": np.array(self.input_name),
                "output_name": np.array(self.output_name), "sizes": np.array(self.sizes, dtype=np.int64),
                "steps": np.array(self._steps, dtype=np.int64), "scale": np.array(self._scale),
            }
            for i, (w, b) in enumerate(zip(self._w, self._b)):
                arrays[f"w{i}"] = w
                arrays[f"b{i}"] = b
            buf = io.BytesIO()
            np.savez_compressed(buf, **arrays)
            return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Network":
        """Restore a network saved by to_bytes; raises ValueError for foreign data."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                if int(npz["format"]) != _FORMAT:
                    raise ValueError(f"unsupported network format {int(npz['format'])}")
                sizes = [int(s) for s in npz["sizes"]]
                weights = [npz[f"w{i}"].astype(np.float32) for i in range(len(sizes) - 1)]
                biases = [npz[f"b{i}"].astype(np.float32) for i in range(len(sizes) - 1)]
                return cls(str(npz["name"]), str(npz["input_name"]), str(npz["output_name"]), sizes,
                           weights, biases, steps=int(npz["steps"]), input_scale=float(npz["scale"]))
        except (OSError, KeyError, EOFError) as exc:  # np.load raises these for broken data
            raise ValueError(f"not a saved network: {exc}") from exc

    # -- internals ----------------------------------------------------------------------------

    @staticmethod
    def _prepare(values: np.ndarray, size: int) -> np.ndarray:
        """Cut or zero-pad to ``size`` floats (Hanami does not check sizes either)."""
        arr = np.asarray(values, dtype=np.float32).reshape(-1)
        if arr.size == size:
            return arr.copy()
        out = np.zeros(size, dtype=np.float32)
        k = min(size, arr.size)
        out[:k] = arr[:k]
        return out

    def _forward(self, a0: np.ndarray, nz: np.ndarray | None = None) -> list[np.ndarray]:
        """Activations of every layer, input first."""
        acts = [a0]
        a = a0
        for i, (w, b) in enumerate(zip(self._w, self._b)):
            z = (a[nz] @ w[nz] + b) if (i == 0 and nz is not None) else (a @ w + b)
            a = _sigmoid(z) if i == len(self._w) - 1 else np.maximum(z, 0.0)
            acts.append(a.astype(np.float32))
        return acts


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))
