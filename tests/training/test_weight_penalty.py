"""fit's weight_penalty: scikit-learn's L2 penalty ``alpha`` on the Dense layers' weight
matrices, applied in the core's epoch (each batch of n rows: alpha / (2 n) ||W||² added
to its loss, alpha / n * W to the weights' gradients), the same on every backend, and
refused when bad before anything changes."""

from __future__ import annotations

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import BACKENDS, backend_rtol, sgd_core_args

ROWS, BATCH = 30, 8  # four batches, the last of 6 rows


def network(backend="cpu", dtype="float64"):
    """Dense layers around a LayerNorm, whose parameters (also named W and b) the penalty
    must leave alone."""
    layers = [fb.Dense(4, 7), fb.LayerNorm(7), fb.Tanh(), fb.Dense(7, 3)]
    return fb.Network(layers, fb.MSELoss(), dtype=dtype, backend=backend, seed=0)


def data(rng, dtype="float64"):
    return (
        rng.standard_normal((ROWS, 4)).astype(dtype),
        rng.standard_normal((ROWS, 3)).astype(dtype),
    )


def fit(net, X, T, **kwargs):
    opt = fb.SGD(lr=0.1, momentum=0.9)
    history = net.fit(X, T, epochs=2, batch_size=BATCH, optimizer=opt, shuffle=False, **kwargs)
    return history.loss


def by_hand(net, X, T, alpha):
    """The same two epochs as ``fit`` (batches in order), the penalty added in Python to
    each batch's loss and to the Dense weights' gradients; the epochs' mean losses."""
    opt = fb.SGD(lr=0.1, momentum=0.9)
    dense = [layer for layer in net.layers if isinstance(layer, fb.Dense)]
    means = []
    for _ in range(2):
        total = 0.0
        for start in range(0, ROWS, BATCH):
            x, t = X[start : start + BATCH], T[start : start + BATCH]
            loss = net.backward(x, t)
            decay = alpha / len(x)
            for layer in dense:
                loss += 0.5 * decay * float(np.sum(layer.W.astype(np.float64) ** 2))
                layer.dW[...] += decay * layer.W
            opt.step(net)
            total += loss * len(x)
        means.append(total / ROWS)
    return means


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("alpha", [1e-3, 0.5])
def test_penalty_is_scikit_learns_on_the_dense_weights(rng, backend, alpha):
    X, T = data(rng)
    net, ref = network(backend), network(backend)
    losses = fit(net, X, T, weight_penalty=alpha)
    expected = by_hand(ref, X, T, alpha)
    np.testing.assert_allclose(net.params, ref.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(losses, expected, rtol=1e-12)
    # and it did something: without it the parameters differ
    plain = network(backend)
    fit(plain, X, T)
    assert not np.allclose(plain.params, net.params, rtol=1e-6, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_penalty_leaves_every_other_parameter_to_its_gradient(rng, backend):
    """With the loss's gradient zero (a linear network fitting its own output), only the
    Dense weights move, each shrunk by lr * alpha / n per step; biases and the
    LayerNorm's parameters stay as they were."""
    net = network(backend)
    X = rng.standard_normal((BATCH, 4))
    T = net.predict(X)
    before = {i: (layer.W.copy(), layer.b.copy()) for i, layer in enumerate(net.layers[:2])}
    alpha, lr = 0.4, 0.1
    net.fit(X, T, epochs=1, batch_size=BATCH, optimizer=fb.SGD(lr=lr), weight_penalty=alpha)
    dense, norm = net.layers[0], net.layers[1]
    np.testing.assert_allclose(dense.W, before[0][0] * (1 - lr * alpha / BATCH), rtol=1e-14)
    np.testing.assert_array_equal(dense.b, before[0][1])
    np.testing.assert_array_equal(norm.W, before[1][0])
    np.testing.assert_array_equal(norm.b, before[1][1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backends_agree_with_a_penalty(rng, dtype):
    X, T = data(rng, dtype)
    cpu, ref = network("cpu", dtype), network("numpy", dtype)
    h_cpu = fit(cpu, X, T, weight_penalty=0.3)
    h_ref = fit(ref, X, T, weight_penalty=0.3)
    tol = backend_rtol(dtype)
    np.testing.assert_allclose(cpu.params, ref.params, rtol=tol, atol=tol)
    np.testing.assert_allclose(h_cpu, h_ref, rtol=tol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "bad, error",
    [(-1e-3, ValueError), (np.nan, ValueError), (np.inf, ValueError), ("0.1", TypeError)],
)
def test_bad_penalty_is_refused_before_anything_changes(rng, backend, bad, error):
    X, T = data(rng)
    net = network(backend)
    before = net.params.copy()
    with pytest.raises(error, match="weight_penalty"):
        fit(net, X, T, weight_penalty=bad)
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
def test_core_refuses_a_bad_penalty(rng, bad):
    net = network()
    X, T = data(rng)
    velocity = np.zeros(net.n_params)
    before = net.params.copy()
    with pytest.raises(ValueError, match="weight_penalty must be a finite number >= 0"):
        net._core.train_epoch(
            X, T, np.arange(ROWS), BATCH, *sgd_core_args(velocity, 0.1), weight_penalty=bad
        )
    np.testing.assert_array_equal(net.params, before)


def test_penalty_is_refused_with_comm(rng):
    MPI = pytest.importorskip("mpi4py.MPI", reason="mpi4py is not installed")
    X, T = data(rng)
    with pytest.raises(NotImplementedError, match="weight_penalty"):
        fit(network(), X, T, weight_penalty=0.1, comm=MPI.COMM_SELF)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_penalty_that_overflows_refuses_the_step(rng, backend):
    """A weight whose square overflows (its input column zero, so the forward pass and
    the loss's gradient stay finite) makes the batch's loss inf: that step diverges and
    changes nothing, as any other non-finite loss."""
    X, T = data(rng)
    X[:, 0] = 0
    net = network(backend)
    net.layers[0].W[0, 0] = 1e155
    before = net.params.copy()
    with pytest.raises(FloatingPointError, match="step 1.*loss"):
        fit(net, X, T, weight_penalty=1.0)
    np.testing.assert_array_equal(net.params, before)
