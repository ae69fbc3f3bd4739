"""The passes the pool splits once their buffers are large: the finiteness check of the
gradients (split by ranges, any bad value found wherever it falls) and the activation's
gradient with the bias gradient (split by columns, each column's sum over the rows in
order, so the same bits on any thread count)."""

from __future__ import annotations

import numpy as np
import pytest

import fastbp as fb
from fastbp import _core

LARGE = 3_000_000  # values: far above the one-thread threshold of the pool


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"])
def threads(request):
    before = fb.get_num_threads()
    fb.set_num_threads(request.param)
    yield request.param
    fb.set_num_threads(before)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("where", [0, LARGE // 2 - 1, LARGE // 2, LARGE - 1])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_all_finite_finds_a_bad_value_anywhere(threads, dtype, where, bad):
    x = np.ones(LARGE, dtype=dtype)
    assert _core.all_finite(x)
    x[where] = bad
    assert not _core.all_finite(x)


@pytest.mark.parametrize("activation", [fb.ReLU, fb.Tanh, fb.GELU])
def test_bias_gradients_are_the_same_bits_on_any_thread_count(rng, activation):
    """A 255-row batch (too few rows for a pass split by rows) through a 1024-wide hidden
    layer: its pass splits the columns between two threads; the gradients equal one
    thread's bitwise and the NumPy reference's to rounding."""
    X = rng.standard_normal((255, 64))
    T = rng.standard_normal((255, 3))
    grads = {}
    before = fb.get_num_threads()
    try:
        for backend, threads in (("cpu", 1), ("cpu", 2), ("numpy", 1)):
            fb.set_num_threads(threads)
            net = fb.Network(
                [fb.Dense(64, 1024), activation(), fb.Dense(1024, 3)],
                fb.MSELoss(),
                dtype="float64",
                backend=backend,
                seed=0,
            )
            net.backward(X, T)
            grads[backend, threads] = net.grads.copy()
    finally:
        fb.set_num_threads(before)
    np.testing.assert_array_equal(grads["cpu", 2], grads["cpu", 1])
    np.testing.assert_allclose(grads["cpu", 1], grads["numpy", 1], rtol=1e-10, atol=1e-13)
