"""L1Loss and HuberLoss: fastbp.ops and fastbp.reference against torch.nn.functional
(values and gradients, both reductions), networks training with them (row weights
through fit's sample_weight) against the same torch loop, gradcheck, save/load and bad
deltas."""

from __future__ import annotations

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
    """(value, dL/dy) of torch's loss, in the inputs' dtype."""
    yt = torch.tensor(y, requires_grad=True)
    if name == "l1":
        value = F.l1_loss(yt, torch.tensor(t), reduction=reduction)
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


def dtype_cast(dtype, value):
    return np.dtype(dtype).type(value)


FINITE = st.floats(-1e6, 1e6, width=32)
EXTREMES = st.sampled_from([0.0, -0.0, 1e-45, -1e-45, 1e30, -1e30, 3.0e38, -3.0e38])


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    name=st.sampled_from(["l1", "huber"]),
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
    args = (delta, reduction) if name == "huber" else (reduction,)
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


LOSSES = {"l1": lambda r: fb.L1Loss(reduction=r), "huber": lambda r: fb.HuberLoss(0.4, r)}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["l1", "huber"])
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
        return F.huber_loss(y, t, reduction="none", delta=0.4)

    assert_weighted_fit_matches_torch(
        net, X, T, weights, weighted, per_element, reduction, TOL[dtype]
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["l1", "huber"])
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
    # targets well away from the outputs: no element near L1's kink or Huber's switch
    T = net.predict(X) + rng.choice([-1.0, 1.0], (6, 3)) * rng.uniform(0.1, 0.3, (6, 3))
    if loss == "huber":
        T[:3] = net.predict(X[:3]) + 2.0  # linear part for half the rows
    assert fb.gradcheck(net, X, T) < 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_load_keeps_the_losses(tmp_path, backend):
    for loss in (fb.L1Loss(reduction="sum"), fb.HuberLoss(delta=0.25)):
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
