"""Plain helpers shared by the test modules: network builders, targets, tolerances and an
independent NumPy forward pass. Imported as ``from fbhelpers import ...`` (pytest puts
``tests/`` on ``sys.path``); fixtures live in ``conftest.py``."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import fastbp as fb

#: Skips a test that limits its process's address space: AddressSanitizer (the sanitizer
#: job preloads it) maps terabytes of shadow memory, so no such limit can apply under it.
needs_address_space_limits = pytest.mark.skipif(
    "libasan" in os.environ.get("LD_PRELOAD", ""),
    reason="AddressSanitizer maps terabytes of shadow memory: an address-space limit "
    "cannot apply under it",
)

#: Every SIMD path a build may have (fb.build_info()["simd_compiled"]), lowest first.
SIMD_PATHS = ("ref", "avx2", "avx512", "avx512_bf16", "amx")


def run_on_path(path: str, script: str, *args: str, timeout: float = 600, env=None):
    """``script`` (Python source) run with ``args`` in a fresh process forced onto SIMD
    path ``path`` (FASTBP_SIMD), with ``env`` added to the environment; skips the test
    when this build or CPU cannot run it."""
    if path not in fb.build_info()["simd_available"]:
        pytest.skip(f"the {path} path is not compiled in or this CPU cannot run it")
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        env=dict(os.environ, **(env or {}), FASTBP_SIMD=path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


#: Sizes that are not multiples of any vector width.
SIZES = (1, 3, 7, 17, 33, 127)
BATCHES = (1, 5, 33)
DTYPES = ("float32", "float64")
BACKENDS = ("cpu", "numpy")

ACTIVATIONS = {
    "sigmoid": fb.Sigmoid,
    "relu": fb.ReLU,
    "tanh": fb.Tanh,
    "identity": fb.Identity,
}

#: name -> (loss factory, kind of target)
LOSSES = {
    "mse_mean": (lambda: fb.MSELoss(reduction="mean"), "real"),
    "mse_sum": (lambda: fb.MSELoss(reduction="sum"), "real"),
    "ce_labels": (lambda: fb.SoftmaxCrossEntropyLoss(), "labels"),
    "ce_labels_sum": (lambda: fb.SoftmaxCrossEntropyLoss(reduction="sum"), "labels"),
    "ce_probs": (lambda: fb.SoftmaxCrossEntropyLoss(reduction="mean"), "probs"),
    "bce": (lambda: fb.BCEWithLogitsLoss(), "binary"),
    "bce_sum": (lambda: fb.BCEWithLogitsLoss(reduction="sum"), "binary"),
}

#: Network architectures (layer widths) paired with a batch size; together they use every
#: size in SIZES as an input, hidden and output width, and every batch size in BATCHES.
ARCHS = (
    ((1, 3, 7), 1),
    ((3, 7, 3), 5),
    ((7, 17, 1), 33),
    ((17, 33, 7), 5),
    ((33, 127, 3), 33),
    ((127, 1, 17), 5),
    ((3, 17, 33, 7), 33),
)


def np_dtype(dtype: str):
    return np.dtype(dtype).type


def tol(dtype) -> dict:
    """Kernel tolerances: float32 rtol 1e-5 / atol 1e-6, float64 1e-12."""
    if np.dtype(dtype) == np.float32:
        return dict(rtol=1e-5, atol=1e-6)
    return dict(rtol=1e-12, atol=1e-12)


def backend_rtol(dtype) -> float:
    """cpu vs numpy backend: float64 1e-10, float32 1e-4."""
    return 1e-4 if np.dtype(dtype) == np.float32 else 1e-10


def assert_close_scaled(actual, desired, rtol, err_msg=""):
    """assert_allclose with an absolute tolerance of ``rtol`` times the largest magnitude of
    ``desired``, so entries that are ~0 by cancellation do not need relative accuracy."""
    actual = np.asarray(actual)
    desired = np.asarray(desired)
    assert actual.shape == desired.shape, (actual.shape, desired.shape, err_msg)
    assert np.all(np.isfinite(actual)), err_msg
    assert np.all(np.isfinite(desired)), err_msg
    scale = float(np.max(np.abs(desired))) if desired.size else 0.0
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale, err_msg=err_msg)


def match_all(*tokens) -> str:
    """A regex that matches a message containing every token (as a whole number / word)."""
    parts = []
    for tok in tokens:
        tok = re.escape(str(tok))
        parts.append(rf"(?=.*(?<![\w.]){tok}(?![\w]))")
    return "(?s)" + "".join(parts)


def dense_layers(net):
    return [layer for layer in net.layers if isinstance(layer, fb.Dense)]


def build_layers(widths, activation="tanh", final_activation=None, init="xavier"):
    """Dense(w0, w1), act, Dense(w1, w2), act, ..., Dense(w_{k-1}, w_k)[, final act]."""
    act = ACTIVATIONS[activation] if isinstance(activation, str) else activation
    layers = []
    n = len(widths) - 1
    for i in range(n):
        layers.append(fb.Dense(widths[i], widths[i + 1], init=init))
        if i < n - 1:
            layers.append(act())
    if final_activation is not None:
        fin = (
            ACTIVATIONS[final_activation] if isinstance(final_activation, str) else final_activation
        )
        layers.append(fin())
    return layers


def make_net(
    widths,
    activation="tanh",
    loss="mse_mean",
    dtype="float64",
    backend="cpu",
    seed=0,
    final_activation=None,
    init="xavier",
):
    loss_obj = LOSSES[loss][0]() if isinstance(loss, str) else loss
    return fb.Network(
        build_layers(widths, activation, final_activation, init),
        loss=loss_obj,
        dtype=dtype,
        backend=backend,
        seed=seed,
    )


#: The network size and rows of exploding().
EXPLODING_WIDTHS = (4, 16, 3)
EXPLODING_ROWS = 12


def exploding(backend, dtype, rows=EXPLODING_ROWS):
    """A linear network, its data and an optimizer whose learning rate makes the weights
    grow faster than exponentially, so it overflows within a few dozen steps."""
    net = make_net(EXPLODING_WIDTHS, "identity", "mse_mean", dtype, backend, seed=0)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((rows, EXPLODING_WIDTHS[0])).astype(dtype)
    T = (10 * rng.standard_normal((rows, EXPLODING_WIDTHS[-1]))).astype(dtype)
    return net, X, T, fb.SGD(lr=0.5, momentum=0.9)


class TrainingState:
    """Bitwise copies of a network's parameters and of its optimizer's state: every
    buffer (velocity, or exp_avg and exp_avg_sq) and the step count."""

    def __init__(self, net, opt):
        state = opt.state_for(net)
        # the parameters first: on the cuda backend reading them syncs the velocity too
        self.params = [(layer.W.copy(), layer.b.copy()) for layer in dense_layers(net)]
        self.buffers = {name: array.copy() for name, array in zip(state.names, state.arrays)}
        self.steps = state.steps

    def assert_equal(self, other: TrainingState):
        for (w, b), (w2, b2) in zip(self.params, other.params):
            np.testing.assert_array_equal(w, w2)
            np.testing.assert_array_equal(b, b2)
        for name, buffer in self.buffers.items():
            np.testing.assert_array_equal(buffer, other.buffers[name], err_msg=name)
        assert self.steps == other.steps


def make_targets(loss, n, n_out, rng, dtype="float64"):
    """Targets suited to ``loss`` (a LOSSES key)."""
    kind = LOSSES[loss][1]
    if kind == "labels":
        return rng.integers(0, n_out, size=n)
    if kind == "probs":
        return rng.dirichlet(np.ones(n_out), size=n).astype(dtype)
    if kind == "binary":
        return rng.random((n, n_out)).astype(dtype)
    return rng.standard_normal((n, n_out)).astype(dtype)


def make_data(widths, loss, n, rng, dtype="float64"):
    X = rng.standard_normal((n, widths[0])).astype(dtype)
    T = make_targets(loss, n, widths[-1], rng, dtype)
    return X, T


# ---------------------------------------------------------------------------------------
# Independent NumPy maths (written here, not taken from fastbp.reference)
# ---------------------------------------------------------------------------------------


def np_sigmoid(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))  # never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def np_activation(name, z):
    if name == "sigmoid":
        return np_sigmoid(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    if name == "identity":
        return np.array(z, dtype=np.float64)
    raise KeyError(name)


_ACT_NAME = {cls: name for name, cls in ACTIVATIONS.items()}


def np_forward(net, X):
    """Forward pass of ``net`` computed in float64 from its parameters."""
    A = np.asarray(X, dtype=np.float64)
    for layer in net.layers:
        if isinstance(layer, fb.Dense):
            A = A @ np.asarray(layer.W, np.float64) + np.asarray(layer.b, np.float64)
        else:
            A = np_activation(_ACT_NAME[type(layer)], A)
    return A


def np_logsumexp(z):
    z = np.asarray(z, dtype=np.float64)
    m = np.max(z, axis=1, keepdims=True)
    return (m + np.log(np.sum(np.exp(z - m), axis=1, keepdims=True)))[:, 0]


def np_softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - np.max(z, axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_loss(loss, y, t):
    """Loss value of a LOSSES key, float64, PyTorch definitions."""
    y = np.asarray(y, np.float64)
    reduction = "sum" if loss.endswith("_sum") else "mean"
    if loss.startswith("mse"):
        per = (y - np.asarray(t, np.float64)) ** 2
        return per.sum() if reduction == "sum" else per.mean()
    if loss.startswith("ce"):
        lse = np_logsumexp(y)
        t = np.asarray(t)
        if t.ndim == 1:
            per = lse - y[np.arange(len(t)), t]
        else:
            per = -(np.asarray(t, np.float64) * (y - lse[:, None])).sum(axis=1)
        return per.sum() if reduction == "sum" else per.mean()
    if loss.startswith("bce"):
        t = np.asarray(t, np.float64)
        per = np.maximum(y, 0) - y * t + np.log1p(np.exp(-np.abs(y)))
        return per.sum() if reduction == "sum" else per.mean()
    raise KeyError(loss)


def sgd_core_args(
    velocity, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, first_step=True
) -> tuple:
    """The network core's optimizer arguments (spec, states, steps) of an SGD update with
    the momentum buffer ``velocity``."""
    spec = fb._core.UpdateSpec(
        fb._core.Optimizer.SGD, [lr, momentum, dampening, weight_decay, float(nesterov)]
    )
    return spec, [velocity], 0 if first_step else 1


def core_divergence(call: str, dtype, backend: str = "cpu") -> FloatingPointError:
    """The FloatingPointError of a direct ``_core`` call (``train_step``, ``train_epoch``
    or ``backward`` then ``step``) on three rows whose last one overflows the weight
    gradient: the step that fails is the call's first, or its third for ``train_epoch``."""
    big = np.finfo(dtype).max / 1.2
    # summed loss: the gradient of the big row is 2 * big whatever the batch size
    core = fb.Network(
        [fb.Dense(2, 1)], fb.MSELoss(reduction="sum"), dtype=dtype, backend=backend
    )._core
    core.params[...] = 1
    X = np.array([[1, 1], [1, 1], [big, -big]], dtype=dtype)
    T = np.zeros((3, 1), dtype=dtype)
    velocity = np.zeros(core.n_params, dtype=dtype)
    hyper = (1e-30, 0.0, 0.0, False, 0.0, True)
    try:
        if call == "train_step":
            core.train_step(X, T, *sgd_core_args(velocity, *hyper))
        elif call == "train_epoch":
            core.train_epoch(X, T, np.arange(3), 1, *sgd_core_args(velocity, *hyper))
        else:
            assert core.backward(X, T) > 0  # returns, the gradients overflowed
            core.step(*sgd_core_args(velocity, *hyper))
    except FloatingPointError as e:
        return e
    raise AssertionError(f"{call} on an overflowing batch did not raise FloatingPointError")


def train_until_divergence(net, X, T, opt, max_steps: int = 200):
    """``train_step`` on the same batch until it raises FloatingPointError: the failing
    step (from 1), its error, and the TrainingState from just before it."""
    for step in range(1, max_steps + 1):
        before = TrainingState(net, opt)
        try:
            net.train_step(X, T, opt)
        except FloatingPointError as e:
            return step, e, before
    raise AssertionError(f"the network never diverged in {max_steps} steps")


def assert_weighted_fit_matches_torch(net, X, T, weights, weighted, per_element, reduction, tol):
    """``net.fit`` (SGD lr 0.05, 2 epochs, batches of 4 rows in order, ``weights`` as
    sample_weight when ``weighted``) gives the Dense parameters of the same SGD on net's
    torch copy, where each row's ``per_element(y, t)`` loss (torch, reduction "none") is
    multiplied by its weight and the sum divided by the unweighted divisor (Keras's
    definition, as fit's sample_weight)."""
    import torch

    lr, epochs, batch = 0.05, 2, 4
    model = net.to_torch()  # before fit: both start from net's parameters
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(epochs):
        for start in range(0, len(X), batch):
            rows = slice(start, start + batch)
            per = per_element(model(torch.tensor(X[rows])), torch.tensor(T[rows]))
            per = per * torch.tensor(weights[rows])[:, None]
            value = per.sum() / (per.numel() if reduction == "mean" else 1)
            opt.zero_grad()
            value.backward()
            opt.step()
    want = [p.detach().numpy() for p in model.parameters()]
    net.fit(
        X,
        T,
        epochs=epochs,
        batch_size=batch,
        optimizer=fb.SGD(lr=lr),
        shuffle=False,
        sample_weight=weights if weighted else None,
        progress=False,
    )
    got = [a for layer in net.layers if isinstance(layer, fb.Dense) for a in (layer.W.T, layer.b)]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **tol)
