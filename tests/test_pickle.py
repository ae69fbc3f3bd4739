"""Networks and optimizers pickle (scikit-learn and multiprocessing need it)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import BACKENDS, DTYPES, make_data, make_net


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_network_round_trip(rng, backend, dtype):
    widths = (3, 6, 2)
    X, T = make_data(widths, "mse_mean", 10, rng, dtype)
    net = make_net(widths, "tanh", "mse_mean", dtype, backend, seed=0)
    net.train_step(X, T, fb.SGD(lr=0.1))
    again = pickle.loads(pickle.dumps(net))
    assert repr(again) == repr(net) and again.dtype == net.dtype
    np.testing.assert_array_equal(again.predict(X), net.predict(X))
    again.layers[0].W[0, 0] += 1  # an independent copy
    assert again.layers[0].W[0, 0] != net.layers[0].W[0, 0]


@pytest.mark.parametrize("opt", [fb.SGD(lr=0.1, momentum=0.9), fb.Adam(lr=0.01),
                                 fb.AdamW(lr=0.01, betas=(0.8, 0.9))])
def test_optimizer_round_trip_keeps_hyper_parameters_not_states(rng, opt):
    net = make_net((3, 2))
    X, T = make_data((3, 2), "mse_mean", 4, rng)
    net.train_step(X, T, opt)
    again = pickle.loads(pickle.dumps(opt))
    assert again.hyper_parameters == opt.hyper_parameters and repr(again) == repr(opt)
    assert again.state_for(net).steps == 0 and opt.state_for(net).steps == 1
