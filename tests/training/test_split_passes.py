"""A training pass with enough rows for every thread is split by rows: each thread runs
the whole network over its share of the batch, and the shares' parameter gradients are
added in part order. Losses and gradients equal the NumPy reference's to rounding, whatever the
rows (an odd count, sample weights, every loss); a run is bitwise reproducible for its
thread count; a Dropout in a part draws the mask the whole pass would; a BatchNorm,
whose statistics span the batch, keeps the pass whole, so its networks give the same bits
on one thread and two."""

from __future__ import annotations

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import LOSSES, make_data, make_net


@pytest.fixture
def threads():
    """Runs the test's calls on the thread count it sets, restored afterwards."""
    before = fb.get_num_threads()
    yield fb.set_num_threads
    fb.set_num_threads(before)


def gradients(net, X, T, weights=None):
    loss = net.backward(X, T, sample_weight=weights)
    return loss, net.grads.copy()


CASES = [
    ((64, 128, 10), "relu", 256),  # two parts of 128 rows
    ((5, 7, 3), "tanh", 257),  # parts of 128 and 129 rows
    ((3, 17, 33, 7), "sigmoid", 300),
]


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("widths, activation, rows", CASES)
def test_split_pass_matches_the_reference(threads, rng, loss, widths, activation, rows):
    X, T = make_data(widths, loss, rows, rng)
    weights = rng.uniform(0.0, 2.0, rows)
    threads(2)
    net = make_net(widths, activation, loss)
    reference = make_net(widths, activation, loss, backend="numpy")
    for w in (None, weights):
        value, grads = gradients(net, X, T, w)
        expected, expected_grads = gradients(reference, X, T, w)
        np.testing.assert_allclose(value, expected, rtol=1e-12)
        np.testing.assert_allclose(grads, expected_grads, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("count", [3, 4])
def test_more_threads_split_into_more_parts(threads, rng, count):
    """400 rows on three threads (parts of 133-134 rows) or four (100 rows each: too
    few, one part), against the reference; a later call on two threads still agrees."""
    widths = (64, 128, 10)
    X, T = make_data(widths, "ce_labels", 400, rng)
    net = make_net(widths, "relu", "ce_labels")
    expected = gradients(make_net(widths, "relu", "ce_labels", backend="numpy"), X, T)
    for n in (count, 2):
        threads(n)
        value, grads = gradients(net, X, T)
        np.testing.assert_allclose(value, expected[0], rtol=1e-12)
        np.testing.assert_allclose(grads, expected[1], rtol=1e-10, atol=1e-13)


def test_a_batch_too_small_for_two_parts_is_not_split(threads, rng):
    """64 rows, under 128 a part: one part on two threads as on one, the same bits."""
    widths = (64, 128, 10)
    X, T = make_data(widths, "ce_labels", 64, rng)
    grads = {}
    for n in (1, 2):
        threads(n)
        grads[n] = gradients(make_net(widths, "relu", "ce_labels"), X, T)
    assert grads[1][0] == grads[2][0]
    np.testing.assert_array_equal(grads[1][1], grads[2][1])


def test_split_pass_runs_on_two_threads(threads, rng):
    """Two threads' gradients differ from one thread's in their last bits (the weight
    gradients are sums of two parts' sums), and within rounding of them."""
    widths = (64, 128, 10)
    X, T = make_data(widths, "ce_labels", 256, rng)
    grads = {}
    for n in (1, 2):
        threads(n)
        grads[n] = gradients(make_net(widths, "relu", "ce_labels"), X, T)[1]
    assert not np.array_equal(grads[1], grads[2])
    np.testing.assert_allclose(grads[2], grads[1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_split_fit_is_bitwise_reproducible(threads, rng, dtype):
    widths = (64, 128, 10)
    X, T = make_data(widths, "ce_labels", 1000, rng, dtype)
    threads(2)
    runs = []
    for _ in range(2):
        net = make_net(widths, "relu", "ce_labels", dtype)
        history = net.fit(X, T, epochs=3, batch_size=256, optimizer=fb.SGD(lr=0.05, momentum=0.9))
        runs.append((history.loss, net.params.copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_split_fit_matches_one_thread(threads, rng, dtype):
    """fit with a weight penalty, two threads against one: the same training to
    rounding."""
    widths = (64, 128, 10)
    X, T = make_data(widths, "ce_labels", 1000, rng, dtype)
    results = []
    for n in (1, 2):
        threads(n)
        net = make_net(widths, "relu", "ce_labels", dtype)
        history = net.fit(
            X,
            T,
            epochs=3,
            batch_size=256,
            optimizer=fb.SGD(lr=0.05, momentum=0.9),
            weight_penalty=1e-3,
        )
        results.append((np.array(history.loss), net.params.copy()))
    rtol = 1e-4 if dtype == "float32" else 1e-11
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=rtol)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=rtol, atol=rtol)


def dropout_and_batch_norm_net(middle, backend="cpu"):
    return fb.Network(
        [fb.Dense(16, 32), middle, fb.ReLU(), fb.Dense(32, 4)],
        fb.SoftmaxCrossEntropyLoss(),
        dtype="float64",
        seed=0,
        backend=backend,
    )


def test_batch_norm_keeps_the_pass_whole(threads, rng):
    X = rng.standard_normal((256, 16))
    T = rng.integers(0, 4, 256)
    grads = {}
    for n in (1, 2):
        threads(n)
        grads[n] = gradients(dropout_and_batch_norm_net(fb.BatchNorm(32)), X, T)
    assert grads[1][0] == grads[2][0]
    np.testing.assert_array_equal(grads[1][1], grads[2][1])


def test_split_dropout_draws_the_whole_pass_mask(threads, rng):
    """Three training passes (three masks) on two threads against the reference, which
    draws each element's mask from its index in the whole batch: every row, the second
    part's included, is dropped as in the reference."""
    X = rng.standard_normal((301, 16))
    T = rng.integers(0, 4, 301)
    threads(2)
    net = dropout_and_batch_norm_net(fb.Dropout(0.3))
    reference = dropout_and_batch_norm_net(fb.Dropout(0.3), backend="numpy")
    for _ in range(3):
        (value, grads), (expected, expected_grads) = (gradients(n, X, T) for n in (net, reference))
        np.testing.assert_allclose(value, expected, rtol=1e-12)
        np.testing.assert_allclose(grads, expected_grads, rtol=1e-10, atol=1e-13)


def test_layer_norm_splits_with_its_rows(threads, rng):
    X = rng.standard_normal((256, 16))
    T = rng.standard_normal((256, 4))
    threads(2)
    nets = [
        fb.Network(
            [fb.Dense(16, 32), fb.LayerNorm(32), fb.Tanh(), fb.Dense(32, 4)],
            fb.MSELoss(),
            dtype="float64",
            seed=0,
            backend=backend,
        )
        for backend in ("cpu", "numpy")
    ]
    (value, grads), (expected, expected_grads) = (gradients(n, X, T) for n in nets)
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    np.testing.assert_allclose(grads, expected_grads, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("row", [10, 200], ids=["first_part", "second_part"])
@pytest.mark.parametrize("call", ["train_step", "fit"])
def test_split_gradients_that_overflow_are_refused(threads, rng, row, call):
    """A split pass checks its gradient sums as it adds them, in place of the step's own
    scan: one huge input in either part overflows that part's float32 weight gradients
    while the loss (summed in double) stays finite, and the step is refused, naming the
    gradient, with the parameters as they were."""
    threads(2)
    X = rng.standard_normal((256, 8)).astype(np.float32)
    T = rng.standard_normal((256, 2)).astype(np.float32)
    X[row, 3] = 1e30
    net = fb.Network(
        [fb.Dense(8, 16), fb.ReLU(), fb.Dense(16, 2)], loss=fb.MSELoss(), dtype="float32"
    )
    opt = fb.SGD(lr=0.1)
    before = net.params.copy()
    with pytest.raises(FloatingPointError, match=r"gradient is NaN or inf \(dW of Dense layer 1"):
        if call == "train_step":
            net.train_step(X, T, opt)
        else:
            net.fit(X, T, epochs=1, batch_size=256, optimizer=opt, shuffle=False)
    np.testing.assert_array_equal(net.params, before)
    assert np.isfinite(net.backward(X, T))  # the loss was finite: the gradients were caught
