"""L1Loss, HuberLoss and SmoothL1Loss: fastbp.ops and fastbp.reference against torch.nn.functional
(values and gradients, both reductions), networks training with them (row weights
through fit's sample_weight) against the same torch loop, gradcheck, save/load and bad
deltas and betas.

PoissonNLLLoss: fastbp.ops and fastbp.reference against torch.nn.functional's
poisson_nll_loss (values and gradients, every setting, both reductions), networks training
with it (row weights through fit's sample_weight) against the same torch loop, gradcheck,
save/load and pickling, and the settings and targets it refuses."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastbp as fb
from fbhelpers import BACKENDS, DTYPES, assert_weighted_fit_matches_torch

torch = pytest.importorskip("torch")
F = torch.nn.functional

SHAPES = [(1, 1), (3, 7), (17, 33)]
TOL = {"float32": dict(rtol=1e-4, atol=1e-6), "float64": dict(rtol=1e-9, atol=1e-12)}
DELTAS = [1.0, 0.3, 2.5]


def torch_loss(name, y, t, reduction, delta=1.0):
    """(value, dL/dy) of torch's loss, in the inputs' dtype; delta is smooth_l1's beta."""
    yt = torch.tensor(y, requires_grad=True)
    if name == "l1":
        value = F.l1_loss(yt, torch.tensor(t), reduction=reduction)
    elif name == "smooth_l1":
        value = F.smooth_l1_loss(yt, torch.tensor(t), reduction=reduction, beta=delta)
    else:
        value = F.huber_loss(yt, torch.tensor(t), reduction=reduction, delta=delta)
    value.backward()
    return float(value.detach()), yt.grad.numpy()


def inputs(shape, dtype, seed=0):
    """Outputs and targets with some elements equal (L1's kink) and some a delta apart."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(-3, 3, shape).astype(dtype)
    t = rng.uniform(-3, 3, shape).astype(dtype)
    t.flat[::4] = y.flat[::4]
    return y, t


@pytest.mark.parametrize("mod", [fb.ops, fb.reference], ids=["ops", "reference"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_l1_against_torch(mod, dtype, shape, reduction):
    y, t = inputs(shape, dtype)
    value, grad = torch_loss("l1", y, t, reduction)
    assert mod.l1(y, t, reduction) == pytest.approx(value, rel=TOL[dtype]["rtol"])
    got = mod.l1_backward(y, t, reduction)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, grad, **TOL[dtype])
    assert (got.flat[::4] == 0).all()  # sign(0) = 0, as torch


@pytest.mark.parametrize("mod", [fb.ops, fb.reference], ids=["ops", "reference"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("delta", DELTAS)
def test_huber_against_torch(mod, dtype, shape, reduction, delta):
    y, t = inputs(shape, dtype)
    t.flat[1::5] = y.flat[1::5] + dtype_cast(dtype, delta)  # exactly on the switch
    value, grad = torch_loss("huber", y, t, reduction, delta)
    assert mod.huber(y, t, delta, reduction) == pytest.approx(value, rel=TOL[dtype]["rtol"])
    got = mod.huber_backward(y, t, delta, reduction)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, grad, **TOL[dtype])


@pytest.mark.parametrize("mod", [fb.ops, fb.reference], ids=["ops", "reference"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("beta", [0.0, *DELTAS])
def test_smooth_l1_against_torch(mod, dtype, shape, reduction, beta):
    y, t = inputs(shape, dtype)
    t.flat[1::5] = y.flat[1::5] + dtype_cast(dtype, beta)  # exactly on the switch
    value, grad = torch_loss("smooth_l1", y, t, reduction, beta)
    assert mod.smooth_l1(y, t, beta, reduction) == pytest.approx(value, rel=TOL[dtype]["rtol"])
    got = mod.smooth_l1_backward(y, t, beta, reduction)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, grad, **TOL[dtype])
    assert (got[y == t] == 0).all()  # d = 0, whatever beta, as torch


def test_smooth_l1_defaults_are_torchs():
    y, t = inputs((3, 7), "float64")
    want = float(F.smooth_l1_loss(torch.tensor(y), torch.tensor(t)))
    assert fb.ops.smooth_l1(y, t) == pytest.approx(want, rel=1e-12)
    assert fb.SmoothL1Loss().beta == torch.nn.SmoothL1Loss().beta


def dtype_cast(dtype, value):
    return np.dtype(dtype).type(value)


FINITE = st.floats(-1e6, 1e6, width=32)
EXTREMES = st.sampled_from([0.0, -0.0, 1e-45, -1e-45, 1e30, -1e30, 3.0e38, -3.0e38])


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    name=st.sampled_from(["l1", "huber", "smooth_l1"]),
    reduction=st.sampled_from(["mean", "sum"]),
    delta=st.sampled_from(DELTAS + [1e-30, 1e30]),
    rows=st.integers(1, 5),
    cols=st.integers(1, 9),
)
def test_ops_match_reference(data, dtype, name, reduction, delta, rows, cols):
    """The kernels and their NumPy twins agree, extremes included."""
    values = st.one_of(FINITE, EXTREMES)
    y = np.array(
        data.draw(st.lists(values, min_size=rows * cols, max_size=rows * cols)), dtype=dtype
    ).reshape(rows, cols)
    t = np.array(
        data.draw(st.lists(values, min_size=rows * cols, max_size=rows * cols)), dtype=dtype
    ).reshape(rows, cols)
    args = (reduction,) if name == "l1" else (delta, reduction)  # delta: smooth_l1's beta
    with np.errstate(over="ignore", invalid="ignore"):
        want = getattr(fb.reference, name)(y, t, *args)
        want_grad = getattr(fb.reference, name + "_backward")(y, t, *args)
    got = getattr(fb.ops, name)(y, t, *args)
    got_grad = getattr(fb.ops, name + "_backward")(y, t, *args)
    assert got == pytest.approx(want, rel=1e-12, nan_ok=True)
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-6 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("mod", [fb.ops, fb.reference], ids=["ops", "reference"])
@pytest.mark.parametrize("delta", [0.0, -1.0, np.nan, np.inf])
def test_huber_refuses_a_bad_delta(mod, delta):
    y, t = inputs((2, 3), "float64")
    with pytest.raises(ValueError, match="delta"):
        mod.huber(y, t, delta)
    with pytest.raises(ValueError, match="delta"):
        fb.HuberLoss(delta=delta)


@pytest.mark.parametrize("mod", [fb.ops, fb.reference], ids=["ops", "reference"])
@pytest.mark.parametrize("beta", [-1.0, np.nan, np.inf])
def test_smooth_l1_refuses_a_bad_beta(mod, beta):
    y, t = inputs((2, 3), "float64")
    with pytest.raises(ValueError, match="beta"):
        mod.smooth_l1(y, t, beta)
    with pytest.raises(ValueError, match="beta"):
        fb.SmoothL1Loss(beta=beta)
    with pytest.raises(TypeError, match="beta"):
        fb.SmoothL1Loss(beta="1")


def test_huber_refuses_a_delta_of_the_wrong_type():
    with pytest.raises(TypeError, match="delta"):
        fb.HuberLoss(delta="1")


def test_core_refuses_bad_loss_params():
    layers = [fb._core.LayerSpec(fb._core.LayerKind.Dense, 2, 1)]
    with pytest.raises(ValueError, match="delta"):
        fb._core.Network64(layers, fb._core.Loss.Huber, fb._core.Reduction.Mean, [0.0])
    with pytest.raises(ValueError, match="delta"):
        fb._core.loss(
            fb._core.Loss.Huber,
            fb._core.Reduction.Mean,
            np.ones((1, 1)),
            np.ones((1, 1)),
            False,
            [-1.0],
        )
    with pytest.raises(ValueError, match=r"takes 1 parameter \(delta\), got 0"):
        fb._core.Network64(layers, fb._core.Loss.Huber, fb._core.Reduction.Mean)
    with pytest.raises(ValueError, match="takes no parameters, got 1"):
        fb._core.Network64(layers, fb._core.Loss.L1, fb._core.Reduction.Mean, [1.0])
    with pytest.raises(TypeError, match="real numbers"):
        fb._core.Network64(layers, fb._core.Loss.Huber, fb._core.Reduction.Mean, ["one"])
    with pytest.raises(ValueError, match="beta must be a finite number >= 0.0, got -1"):
        fb._core.Network64(layers, fb._core.Loss.SmoothL1, fb._core.Reduction.Mean, [-1.0])
    with pytest.raises(ValueError, match=r"takes 1 parameter \(beta\), got 2"):
        fb._core.Network64(layers, fb._core.Loss.SmoothL1, fb._core.Reduction.Mean, [1.0, 2.0])


def test_core_refuses_a_loss_kind_it_does_not_have():
    unknown = fb._core.Loss(99)
    layers = [fb._core.LayerSpec(fb._core.LayerKind.Dense, 2, 1)]
    with pytest.raises(ValueError, match="unknown loss kind 99"):
        fb._core.loss(unknown, fb._core.Reduction.Mean, np.ones((2, 2)), np.ones((2, 2)), False)
    with pytest.raises(ValueError, match="unknown loss kind 99"):
        fb._core.Network64(layers, unknown, fb._core.Reduction.Mean)


LOSSES = {
    "l1": lambda r: fb.L1Loss(reduction=r),
    "huber": lambda r: fb.HuberLoss(0.4, r),
    "smooth_l1": lambda r: fb.SmoothL1Loss(0.4, r),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_networks_train_with_the_losses_as_torch(backend, dtype, loss, reduction, weighted):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((11, 3)).astype(dtype)
    T = rng.standard_normal((11, 7)).astype(dtype)
    weights = np.ones(11, dtype)
    if weighted:
        weights = rng.uniform(0, 2, 11).astype(dtype)
        weights[2] = 0  # a row that adds nothing
    net = fb.Network(
        [fb.Dense(3, 17), fb.Tanh(), fb.Dense(17, 7)],
        LOSSES[loss](reduction),
        dtype=dtype,
        backend=backend,
        seed=1,
    )

    def per_element(y, t):
        if loss == "l1":
            return F.l1_loss(y, t, reduction="none")
        if loss == "smooth_l1":
            return F.smooth_l1_loss(y, t, reduction="none", beta=0.4)
        return F.huber_loss(y, t, reduction="none", delta=0.4)

    assert_weighted_fit_matches_torch(
        net, X, T, weights, weighted, per_element, reduction, TOL[dtype]
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", list(LOSSES))
def test_gradcheck(backend, loss):
    rng = np.random.default_rng(4)
    net = fb.Network(
        [fb.Dense(3, 8), fb.Tanh(), fb.Dense(8, 3)],
        LOSSES[loss]("mean"),
        dtype="float64",
        backend=backend,
        seed=0,
    )
    X = rng.standard_normal((6, 3))
    # targets well away from the outputs: no element near L1's kink or the switch of
    # Huber and SmoothL1 (0.4)
    T = net.predict(X) + rng.choice([-1.0, 1.0], (6, 3)) * rng.uniform(0.1, 0.3, (6, 3))
    if loss != "l1":
        T[:3] = net.predict(X[:3]) + 2.0  # linear part for half the rows
    assert fb.gradcheck(net, X, T) < 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_load_keeps_the_losses(tmp_path, backend):
    for loss in (
        fb.L1Loss(reduction="sum"),
        fb.HuberLoss(delta=0.25),
        fb.SmoothL1Loss(beta=0.5, reduction="sum"),
    ):
        net = fb.Network([fb.Dense(2, 3), fb.ReLU(), fb.Dense(3, 2)], loss, backend=backend, seed=0)
        path = tmp_path / "net.npz"
        net.save(path)
        again = fb.Network.load(path)
        assert repr(again.loss_fn) == repr(loss)
        X = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
        T = np.zeros((5, 2), np.float32)
        assert again.loss(X, T) == net.loss(X, T)
    assert fb.HuberLoss(delta=0.25).config() == {
        "type": "HuberLoss",
        "reduction": "mean",
        "delta": 0.25,
    }
    assert fb.SmoothL1Loss(beta=0.0).config() == {
        "type": "SmoothL1Loss",
        "reduction": "mean",
        "beta": 0.0,
    }


# ---- PoissonNLLLoss ----

POISSON_TOL = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-10, atol=1e-12)}
MODES = [(True, False), (True, True), (False, False), (False, True)]  # (log_input, full)
MODE_IDS = ["log", "log-full", "rate", "rate-full"]


def torch_poisson_loss(y, t, log_input, full, eps, reduction):
    """(value, dL/dy) of torch's loss, in the inputs' dtype."""
    yt = torch.tensor(y, requires_grad=True)
    value = F.poisson_nll_loss(
        yt, torch.tensor(t), log_input=log_input, full=full, eps=eps, reduction=reduction
    )
    value.backward()
    return float(value.detach()), yt.grad.numpy()


def poisson_inputs(shape, dtype, log_input, seed=0):
    """Log-rates in [-3, 3] (rates in [0, 5], some exactly 0, for ``log_input=False``) and
    targets that are counts with 0 and 1 among them (where the Stirling term is left out),
    and a rate that is not a whole number."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(-3, 3, shape) if log_input else rng.uniform(0, 5, shape)
    if not log_input:
        y.flat[::5] = 0.0
    t = rng.poisson(2.0, shape).astype(np.float64)
    t.flat[::3], t.flat[1::4], t.flat[2::6] = 0.0, 1.0, 2.5
    return y.astype(dtype), t.astype(dtype)


@pytest.mark.parametrize("mod", [fb.ops, fb.reference], ids=["ops", "reference"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("log_input,full", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("eps", [1e-8, 0.5])
def test_poisson_nll_against_torch(mod, dtype, shape, reduction, log_input, full, eps):
    y, t = poisson_inputs(shape, dtype, log_input)
    value, grad = torch_poisson_loss(y, t, log_input, full, eps, reduction)
    got = mod.poisson_nll(y, t, log_input, full, eps, reduction)
    assert got == pytest.approx(value, rel=POISSON_TOL[dtype]["rtol"])
    got_grad = mod.poisson_nll_backward(
        y, t, log_input=log_input, full=full, eps=eps, reduction=reduction
    )
    assert got_grad.dtype == np.dtype(dtype) and got_grad.shape == shape
    np.testing.assert_allclose(got_grad, grad, **POISSON_TOL[dtype])


def test_defaults_are_torchs():
    y, t = poisson_inputs((4, 5), "float64", True)
    assert fb.ops.poisson_nll(y, t) == pytest.approx(
        torch_poisson_loss(y, t, True, False, 1e-8, "mean")[0], rel=1e-12
    )
    loss = fb.PoissonNLLLoss()
    assert (loss.log_input, loss.full, loss.eps, loss.reduction) == (True, False, 1e-8, "mean")


POISSON_FINITE = st.floats(-1e6, 1e6, width=32)
POISSON_EXTREMES = st.sampled_from(
    [0.0, -0.0, 1e-45, -1e-45, 1.0, 88.0, 89.0, 710.0, 1e30, -1e30, 3.0e38, -3.0e38]
)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    mode=st.sampled_from(MODES),
    reduction=st.sampled_from(["mean", "sum"]),
    eps=st.sampled_from([1e-8, 0.0, 1.0]),
    rows=st.integers(1, 5),
    cols=st.integers(1, 9),
)
def test_poisson_ops_match_reference(data, dtype, mode, reduction, eps, rows, cols):
    """The kernels and their NumPy twins agree, extremes (exp overflowing, logs of 0 and
    of negative rates) included."""
    values = st.one_of(POISSON_FINITE, POISSON_EXTREMES)
    y = np.array(
        data.draw(st.lists(values, min_size=rows * cols, max_size=rows * cols)), dtype=dtype
    ).reshape(rows, cols)
    t = np.array(
        data.draw(st.lists(values, min_size=rows * cols, max_size=rows * cols)), dtype=dtype
    ).reshape(rows, cols)
    args = (*mode, eps, reduction)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        want = fb.reference.poisson_nll(y, t, *args)
        want_grad = fb.reference.poisson_nll_backward(y, t, *args)
    got = fb.ops.poisson_nll(y, t, *args)
    got_grad = fb.ops.poisson_nll_backward(y, t, *args)
    assert got == pytest.approx(want, rel=1e-12, nan_ok=True)
    # The gradient is a difference of two terms (exp(y) - t, or 1 - t / (y + eps)), so the
    # kernel's and NumPy's exp, each within an ulp, may differ by the rounding of the
    # larger term: the tolerance is relative to the terms, not to their difference.
    log_input = mode[0]
    y64, t64 = y.astype(np.float64), t.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        terms = np.exp(y64) + np.abs(t64) if log_input else 1 + np.abs(t64 / (y64 + eps))
    if reduction == "mean":
        terms /= y.size
    rtol = 1e-6 if dtype == "float32" else 1e-12
    both_nan = np.isnan(got_grad) & np.isnan(want_grad)
    same = (got_grad == want_grad) | both_nan
    with np.errstate(invalid="ignore"):  # inf - inf where both overflowed: `same` holds
        close = np.abs(got_grad.astype(np.float64) - want_grad) <= rtol * terms
    assert np.all(same | close), (got_grad, want_grad)


def network(log_input, full, reduction, dtype, backend, seed=1):
    """A 3-17-7 network whose outputs are log-rates, or rates in (0, 1) through a
    sigmoid."""
    layers = [fb.Dense(3, 17), fb.Tanh(), fb.Dense(17, 7)] + ([] if log_input else [fb.Sigmoid()])
    return fb.Network(
        layers,
        fb.PoissonNLLLoss(log_input, full, 1e-8, reduction),
        dtype=dtype,
        backend=backend,
        seed=seed,
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log_input,full", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_networks_train_with_the_loss_as_torch(
    backend, dtype, log_input, full, reduction, weighted
):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((11, 3)).astype(dtype)
    T = rng.poisson(1.5, (11, 7)).astype(dtype)
    weights = np.ones(11, dtype)
    if weighted:
        weights = rng.uniform(0, 2, 11).astype(dtype)
        weights[2] = 0  # a row that adds nothing
    net = network(log_input, full, reduction, dtype, backend)

    def per_element(y, t):
        return F.poisson_nll_loss(y, t, log_input=log_input, full=full, reduction="none")

    assert_weighted_fit_matches_torch(
        net, X, T, weights, weighted, per_element, reduction, POISSON_TOL[dtype]
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("log_input,full", MODES, ids=MODE_IDS)
def test_poisson_gradcheck(backend, log_input, full):
    rng = np.random.default_rng(4)
    net = network(log_input, full, "mean", "float64", backend, seed=0)
    X = rng.standard_normal((6, 3))
    T = rng.poisson(2.0, (6, 7)).astype(np.float64)
    assert fb.gradcheck(net, X, T) < 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_backends_agree_on_loss_and_gradients(backend):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((9, 3))
    T = rng.poisson(3.0, (9, 7)).astype(np.float64)
    for log_input, full in MODES:
        cpu = network(log_input, full, "sum", "float64", "cpu", seed=2)
        other = network(log_input, full, "sum", "float64", backend, seed=2)
        assert other.backward(X, T) == pytest.approx(cpu.backward(X, T), rel=1e-12)
        np.testing.assert_allclose(other.grads, cpu.grads, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_load_and_pickle_keep_the_loss(tmp_path, backend):
    loss = fb.PoissonNLLLoss(log_input=False, full=True, eps=0.25, reduction="sum")
    net = fb.Network(
        [fb.Dense(2, 3), fb.ReLU(), fb.Dense(3, 2), fb.Softplus()], loss, backend=backend, seed=0
    )
    X = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    T = np.array([[0, 1], [2, 3], [4, 0], [1, 7], [0, 0]], np.float32)
    net.save(tmp_path / "net.npz")
    for again in (fb.Network.load(tmp_path / "net.npz"), pickle.loads(pickle.dumps(net))):
        assert repr(again.loss_fn) == repr(loss)
        assert again.loss(X, T) == net.loss(X, T)
    assert loss.config() == {
        "type": "PoissonNLLLoss",
        "reduction": "sum",
        "log_input": False,
        "full": True,
        "eps": 0.25,
    }


@pytest.mark.parametrize("mod", [fb.ops, fb.reference], ids=["ops", "reference"])
@pytest.mark.parametrize("eps", [-1e-8, np.nan, np.inf])
def test_a_bad_eps_is_refused(mod, eps):
    y, t = poisson_inputs((2, 3), "float64", True)
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        mod.poisson_nll(y, t, eps=eps)
    with pytest.raises(ValueError, match="eps"):
        fb.PoissonNLLLoss(eps=eps)


@pytest.mark.parametrize("mod", [fb.ops, fb.reference], ids=["ops", "reference"])
@pytest.mark.parametrize("name", ["log_input", "full"])
@pytest.mark.parametrize("value", [1, 0.0, "yes", None])
def test_flags_must_be_bools(mod, name, value):
    y, t = poisson_inputs((2, 3), "float64", True)
    with pytest.raises(TypeError, match=f"{name} must be a bool, got"):
        mod.poisson_nll(y, t, **{name: value})
    with pytest.raises(TypeError, match=f"{name} must be a bool"):
        fb.PoissonNLLLoss(**{name: value})


def test_eps_of_the_wrong_type_and_a_bad_reduction_are_refused():
    with pytest.raises(TypeError, match="eps must be a real number"):
        fb.PoissonNLLLoss(eps="1e-8")
    with pytest.raises(ValueError, match="reduction"):
        fb.PoissonNLLLoss(reduction="none")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_network_refuses_negative_targets_before_anything_changes(backend):
    net = fb.Network([fb.Dense(2, 3)], fb.PoissonNLLLoss(), backend=backend, seed=0)
    X = np.ones((2, 2), np.float32)
    T = np.array([[0, 1, 2], [3, -0.5, 1]], np.float32)
    before = net.params.copy()
    opt = fb.SGD(lr=0.1)
    calls = [
        lambda: net.loss(X, T),
        lambda: net.backward(X, T),
        lambda: net.train_step(X, T, opt),
        lambda: net.fit(X, T, epochs=1, batch_size=2, optimizer=opt, progress=False),
    ]
    for call in calls:
        with pytest.raises(
            ValueError,
            match=r"PoissonNLLLoss targets must be >= 0, got "
            r"-0\.500000 at flat index 4",
        ):
            call()
    np.testing.assert_array_equal(net.params, before)
    # the kernels take any target, as torch's do
    assert np.isfinite(fb.ops.poisson_nll(np.zeros((1, 1)), -np.ones((1, 1))))


def test_core_refuses_bad_poisson_settings():
    core, layers = fb._core, [fb._core.LayerSpec(fb._core.LayerKind.Dense, 2, 1)]

    def make(params):
        return core.Network64(layers, core.Loss.PoissonNLL, core.Reduction.Mean, params)

    ones = np.ones((1, 1))
    with pytest.raises(ValueError, match=r"takes 3 parameters \(log_input, full, eps\), got 1"):
        make([1.0])
    with pytest.raises(ValueError, match="log_input must be 0 or 1"):
        make([2.0, 0.0, 1e-8])
    with pytest.raises(ValueError, match="full must be 0 or 1"):
        core.loss(core.Loss.PoissonNLL, core.Reduction.Mean, ones, ones, False, [1.0, 0.5, 0.0])
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        make([1.0, 0.0, -1.0])
    make([0.0, 1.0, 0.0])  # every setting within its range
