"""PyTorch interop: fb.from_torch and Network.to_torch (skipped without PyTorch)."""

from __future__ import annotations

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import DTYPES, dense_layers, make_net

torch = pytest.importorskip("torch", reason="PyTorch is not installed")


@pytest.mark.parametrize("dtype", DTYPES)
def test_from_torch_computes_what_the_module_computes(rng, dtype):
    tdtype = getattr(torch, dtype)
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(5, 7, dtype=tdtype),
        torch.nn.Tanh(),
        torch.nn.Linear(7, 4, dtype=tdtype),
        torch.nn.ReLU(),
        torch.nn.Linear(4, 2, dtype=tdtype),
        torch.nn.Sigmoid(),
    )
    net = fb.from_torch(module, loss=fb.MSELoss())
    assert net.dtype == np.dtype(dtype)
    assert [type(layer).__name__ for layer in net.layers] == [
        "Dense",
        "Tanh",
        "Dense",
        "ReLU",
        "Dense",
        "Sigmoid",
    ]
    X = rng.standard_normal((9, 5)).astype(dtype)
    with torch.no_grad():
        want = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(
        net.predict(X),
        want,
        rtol=1e-5 if dtype == "float32" else 1e-12,
        atol=1e-6 if dtype == "float32" else 1e-12,
    )
    with torch.no_grad():
        module[0].weight.zero_()  # the network holds a copy
    assert np.abs(net.layers[0].W).sum() > 0


def test_to_torch_round_trip_and_gradients(rng):
    net = make_net((4, 6, 3), "relu", "mse_mean", "float64", seed=0)
    module = net.to_torch()
    assert isinstance(module[1], torch.nn.ReLU) and module[0].weight.dtype == torch.float64
    X = rng.standard_normal((8, 4))
    T = rng.standard_normal((8, 3))
    y = module(torch.from_numpy(X))
    np.testing.assert_allclose(y.detach().numpy(), net.predict(X), rtol=1e-12)
    torch.nn.functional.mse_loss(y, torch.from_numpy(T)).backward()
    net.backward(X, T)
    for layer, linear in zip(dense_layers(net), module[::2]):
        np.testing.assert_allclose(layer.dW, linear.weight.grad.numpy().T, rtol=1e-10)
        np.testing.assert_allclose(layer.db, linear.bias.grad.numpy(), rtol=1e-10)
    again = fb.from_torch(module, fb.MSELoss())
    np.testing.assert_array_equal(again.predict(X), net.predict(X))


def test_a_single_linear_is_a_network():
    net = fb.from_torch(torch.nn.Linear(3, 2), fb.MSELoss())
    assert net.n_params == 8 and net.dtype == np.float32


@pytest.mark.parametrize(
    "make, exc, word",
    [
        (lambda: torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Mish()), TypeError, "Mish"),
        (lambda: torch.nn.Linear(2, 2, bias=False), ValueError, "bias"),
        (
            lambda: torch.nn.Sequential(
                torch.nn.Linear(2, 2), torch.nn.Linear(2, 1, dtype=torch.float64)
            ),
            TypeError,
            "float",
        ),
        (lambda: torch.nn.Linear(2, 2, dtype=torch.float16), TypeError, "float"),
    ],
)
def test_unsupported_modules_are_refused(make, exc, word):
    with pytest.raises(exc, match=word):
        fb.from_torch(make(), fb.MSELoss())


def test_from_torch_needs_a_loss():
    with pytest.raises(TypeError, match="loss"):
        fb.from_torch(torch.nn.Linear(3, 2))
    with pytest.raises(TypeError, match="fastbp Loss"):
        fb.from_torch(torch.nn.Linear(3, 2), torch.nn.MSELoss())


def test_tensors_are_read_without_a_copy(rng):
    net = make_net((3, 2), dtype="float32")
    X = torch.from_numpy(rng.standard_normal((4, 3)).astype(np.float32))
    assert np.shares_memory(net._inputs(X), X.numpy())
    np.testing.assert_array_equal(net.predict(X), net.predict(X.numpy()))
    with pytest.raises(RuntimeError, match="grad"):
        net.predict(X.requires_grad_())
