"""Shared fixtures for the fastbp test suite."""

from __future__ import annotations

import os

# The suite starts from the default GEMM configuration: a tuning file in the user's cache
# would change every test's blocks (set FASTBP_TUNING to test with one on purpose).
os.environ.setdefault("FASTBP_TUNING", "off")

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import dense_layers


@pytest.fixture
def rng():
    """A fresh, seeded generator per test, so tests do not depend on each other's order."""
    return np.random.default_rng(20240229)


class ParamSnapshot:
    """Copies of every Dense layer's ``W`` and ``b`` of a network, taken at construction.

    ``assert_unchanged()`` checks that the network still holds exactly these values (same
    layers, same shapes, same dtypes, bit-identical contents)."""

    def __init__(self, net):
        self.net = net
        self.layers = dense_layers(net)
        self.params = [
            (np.array(layer.W, copy=True), np.array(layer.b, copy=True)) for layer in self.layers
        ]

    def assert_unchanged(self):
        assert dense_layers(self.net) == self.layers
        for i, (layer, (W, b)) in enumerate(zip(self.layers, self.params)):
            for name, now, then in (("W", layer.W, W), ("b", layer.b, b)):
                now = np.asarray(now)
                assert now.shape == then.shape, f"layer {i} {name}: shape changed"
                assert now.dtype == then.dtype, f"layer {i} {name}: dtype changed"
                # array_equal with equal_nan: a NaN that was written in would still fail
                assert np.array_equal(now, then), f"layer {i} {name}: values changed"

    def assert_changed(self):
        """The opposite check, used to prove that an update really happened."""
        assert any(
            not np.array_equal(layer.W, W) or not np.array_equal(layer.b, b)
            for layer, (W, b) in zip(self.layers, self.params)
        )


@pytest.fixture
def snapshot():
    """``snap = snapshot(net)`` ... ``snap.assert_unchanged()``."""
    return ParamSnapshot


@pytest.fixture
def restore_threads():
    """Restores fastbp's thread count after a test that changes it."""
    before = fb.get_num_threads()
    yield before
    fb.set_num_threads(before)


class RecordingBar:
    """Stands in for fastbp's ProgressBar in ``fit`` (no tqdm needed): records each
    ``advance(epoch, batches, loss)`` and each epoch's logs."""

    def __init__(self, epochs: int, batches: int):
        self.total = epochs * batches
        self.advances, self.epoch_logs, self.closed = [], [], False

    def advance(self, epoch: int, batches: int, loss: float) -> None:
        self.advances.append((epoch, batches, loss))

    def __call__(self, epoch: int, logs: dict) -> None:
        self.epoch_logs.append(logs)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def recording_bars(monkeypatch):
    """Makes ``fit`` use RecordingBar for its progress bar; the list of bars it made."""
    bars = []

    def make(epochs, batches):
        bars.append(RecordingBar(epochs, batches))
        return bars[-1]

    monkeypatch.setattr("fastbp.training.loop.ProgressBar", make)
    return bars
