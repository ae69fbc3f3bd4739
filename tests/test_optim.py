"""SGD's hyper-parameters as attributes, and the train_step fast path's target forms."""

from __future__ import annotations

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import BACKENDS, make_net


def test_hyper_parameters_can_change_between_steps(rng):
    X = rng.standard_normal((8, 3))
    T = rng.standard_normal((8, 2))
    nets = [make_net((3, 5, 2), "tanh", "mse_mean", "float64", "cpu", seed=0) for _ in range(2)]
    fast, slow = fb.SGD(lr=0.1), fb.SGD(lr=0.1)
    nets[0].train_step(X, T, fast)
    nets[1].train_step(X, T, slow)
    fast.lr = 0.5
    nets[0].train_step(X, T, fast)
    nets[1].backward(X, T)
    W_before = nets[1].layers[0].W.copy()
    dW = nets[1].layers[0].dW.copy()
    slow.lr = 0.5
    slow.step(nets[1])
    np.testing.assert_allclose(nets[1].layers[0].W, W_before - 0.5 * dW, rtol=1e-12)
    np.testing.assert_allclose(nets[0].layers[0].W, nets[1].layers[0].W, rtol=1e-12)
    assert fast.hyper_parameters == (0.5, 0.0, 0.0, False, 0.0)


@pytest.mark.parametrize(
    "name, value, exc",
    [
        ("lr", 0.0, ValueError),
        ("lr", -1.0, ValueError),
        ("lr", float("nan"), ValueError),
        ("momentum", -0.5, ValueError),
        ("nesterov", 1, TypeError),
        ("lr", "0.1", TypeError),
    ],
)
def test_bad_assignment_is_refused_and_changes_nothing(name, value, exc):
    opt = fb.SGD(lr=0.1, momentum=0.9)
    with pytest.raises(exc, match=name):
        setattr(opt, name, value)
    assert opt.hyper_parameters == (0.1, 0.9, 0.0, False, 0.0)


def test_nesterov_rules_apply_to_assignment():
    opt = fb.SGD(lr=0.1, momentum=0.9, nesterov=True)
    with pytest.raises(ValueError, match="nesterov"):
        opt.momentum = 0.0
    assert opt.momentum == 0.9


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_output_targets_may_be_one_dimensional(rng, backend):
    X = rng.standard_normal((6, 3))
    t = rng.standard_normal(6)
    nets = [make_net((3, 4, 1), "relu", "mse_mean", "float64", backend, seed=0) for _ in range(2)]
    opts = [fb.SGD(lr=0.1), fb.SGD(lr=0.1)]
    assert nets[0].train_step(X, t, opts[0]) == nets[1].train_step(X, t[:, None], opts[1])
    np.testing.assert_array_equal(nets[0].layers[0].W, nets[1].layers[0].W)
    with pytest.raises(ValueError, match="7"):
        nets[0].train_step(X, rng.standard_normal(7), opts[0])
