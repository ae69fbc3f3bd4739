"""Backpropagation against finite differences: ``fb.gradcheck`` for every activation and
loss on both backends, and a finite-difference check written out in the test."""

from __future__ import annotations

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import ACTIVATIONS, BACKENDS, LOSSES, dense_layers, make_data, make_net

WIDTHS = (3, 8, 6, 3)  # two hidden layers, so deltas pass through an activation twice
N = 6


def preactivations(net, X):
    """Inputs of every activation layer, float64, computed here from the parameters."""
    A = np.asarray(X, np.float64)
    zs = []
    for layer in net.layers:
        if isinstance(layer, fb.Dense):
            A = A @ layer.W + layer.b
        else:
            zs.append(A)
            A = {
                fb.Sigmoid: lambda z: 1 / (1 + np.exp(-z)),
                fb.ReLU: lambda z: np.maximum(z, 0),
                fb.Tanh: np.tanh,
                fb.Identity: lambda z: z,
            }[type(layer)](A)
    return zs


def gradcheck_case(act, loss, backend, seed=0):
    rng = np.random.default_rng(seed)
    final = act if loss.startswith("mse") else None
    net = make_net(WIDTHS, act, loss, "float64", backend, seed=seed, final_activation=final)
    X, T = make_data(WIDTHS, loss, N, rng)
    # non-zero biases, so bias gradients are exercised and no pre-activation is exactly 0
    # (a sample whose ReLU units are all off would otherwise give z = b = 0, on the kink)
    for layer in dense_layers(net):
        layer.b = rng.uniform(-0.5, 0.5, size=layer.b.shape)
    if act == "relu":
        # Finite differences are only meaningful away from ReLU's kink: with eps = 1e-6 a
        # pre-activation further than ~1e-4 from 0 never crosses it. Assert it for this seed
        # (if it ever fails, the seed - not the code - needs changing).
        closest = min(np.min(np.abs(z)) for z in preactivations(net, X))
        assert closest > 1e-4, f"seed {seed}: a ReLU input is {closest:g} from the kink"
    return net, X, T


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_gradcheck(act, loss, backend, snapshot):
    net, X, T = gradcheck_case(act, loss, backend)
    snap = snapshot(net)
    err = fb.gradcheck(net, X, T)
    assert isinstance(err, float)
    assert np.isfinite(err)
    assert 0.0 <= err < 1e-6
    # gradcheck perturbs the parameters and must put them back exactly
    snap.assert_unchanged()


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_accepts_eps(backend):
    net, X, T = gradcheck_case("tanh", "mse_mean", backend)
    assert fb.gradcheck(net, X, T, eps=1e-5) < 1e-6
    assert fb.gradcheck(net, X, T, eps=1e-6) < 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "act,loss",
    [("sigmoid", "mse_sum"), ("relu", "ce_labels"), ("tanh", "ce_probs"), ("identity", "bce")],
)
def test_backward_matches_finite_differences_written_here(act, loss, backend):
    """Central differences of net.loss, perturbing parameters through ``layer.W[...]``,
    against the backprop gradients in dW and db. Independent of fb.gradcheck."""
    net, X, T = gradcheck_case(act, loss, backend, seed=1)
    net.backward(X, T)
    analytic = [(layer.dW.copy(), layer.db.copy()) for layer in dense_layers(net)]
    eps = 1e-6
    for (dW, db), layer in zip(analytic, dense_layers(net)):
        for param, grad in ((layer.W, dW), (layer.b, db)):
            numeric = np.zeros_like(grad)
            for idx in np.ndindex(param.shape):
                old = param[idx]
                param[idx] = old + eps
                up = net.loss(X, T)
                param[idx] = old - eps
                down = net.loss(X, T)
                param[idx] = old
                numeric[idx] = (up - down) / (2 * eps)
            scale = max(1.0, float(np.max(np.abs(grad))))
            np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7 * scale)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_on_float32_network_leaves_it_alone(backend, snapshot):
    """A float32 network is checked on a float64 copy (or refused); it is never altered."""
    rng = np.random.default_rng(0)
    net = make_net(WIDTHS, "tanh", "mse_mean", "float32", backend, seed=0)
    X, T = make_data(WIDTHS, "mse_mean", N, rng, "float32")
    snap = snapshot(net)
    try:
        err = fb.gradcheck(net, X, T)
    except (TypeError, ValueError):
        pass
    else:
        assert err < 1e-6
    snap.assert_unchanged()
    assert net.layers[0].W.dtype == np.float32
