"""Every ``fb.ops`` kernel against ``fb.reference`` and against a NumPy formula written here.

Expected values are computed in float64 from the same inputs; float32 results must agree
to rtol 1e-5 / atol 1e-6 and float64 results to 1e-12. Sizes are 1, 3, 7, 17, 33 and 127
so that no loop runs only on whole vectors."""

from __future__ import annotations

import inspect
import itertools
import re
import sys

import numpy as np
import pytest

import fastbp as fb
from fastbp import _names
from fastbp.nn import activations
from fastbp.optim import optimizers
from fbhelpers import SIZES, np_logsumexp, np_sigmoid, np_softmax, tol

DTYPES = (np.float32, np.float64)
MODULES = pytest.mark.parametrize("mod", [fb.ops, fb.reference], ids=["ops", "reference"])

# (M, K, N): every size appears in every position
MKN = list(zip(SIZES, SIZES[1:] + SIZES[:1], SIZES[2:] + SIZES[:2]))
# (N, C): every size as rows and as columns
NC = list(zip(SIZES, SIZES[::-1])) + [(1, 1), (33, 33)]
# shapes for elementwise ops, 1-D, 2-D and 3-D
EW_SHAPES = [(n,) for n in SIZES] + [(n, c) for n, c in zip(SIZES, SIZES[::-1])] + [(3, 7, 17)]


def check(got, expected, dtype, **override):
    """Compare a kernel result with a float64 expectation; checks the result dtype."""
    got_arr = np.asarray(got)
    assert got_arr.dtype == np.dtype(dtype), f"dtype {got_arr.dtype}, expected {np.dtype(dtype)}"
    t = dict(tol(dtype), **override)
    np.testing.assert_allclose(got_arr.astype(np.float64), expected, **t)


def check_scalar(got, expected, dtype):
    assert isinstance(got, float), type(got)
    t = tol(dtype)
    assert abs(got - expected) <= t["atol"] + t["rtol"] * abs(expected), (got, expected)


# ---------------------------------------------------------------------------------------
# matmul and linear
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("m,k,n", MKN)
def test_matmul(rng, m, k, n, trans_a, trans_b, dtype):
    a = rng.uniform(-1, 1, (k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.uniform(-1, 1, (n, k) if trans_b else (k, n)).astype(dtype)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    op_a = a64.T if trans_a else a64
    op_b = b64.T if trans_b else b64
    expected = op_a @ op_b
    # a sum of k products: allow k roundings of the operands' magnitude in float32
    atol = 1e-6 * k if dtype == np.float32 else 1e-12 * k

    got = fb.ops.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
    assert got.shape == (m, n)
    check(got, expected, dtype, atol=atol)
    ref = fb.reference.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
    check(ref, expected, dtype, atol=atol)
    check(got, ref.astype(np.float64), dtype, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_defaults_and_positional(rng, dtype):
    a = rng.standard_normal((7, 3)).astype(dtype)
    b = rng.standard_normal((7, 17)).astype(dtype)
    expected = a.astype(np.float64).T @ b.astype(np.float64)
    check(fb.ops.matmul(a, b, True, False), expected, dtype, atol=1e-5)
    c = rng.standard_normal((3, 7)).astype(dtype)
    check(fb.ops.matmul(c, b), c.astype(np.float64) @ b.astype(np.float64), dtype, atol=1e-5)


@MODULES
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,i,o", MKN)
def test_linear(rng, mod, n, i, o, dtype):
    x = rng.uniform(-1, 1, (n, i)).astype(dtype)
    w = rng.uniform(-1, 1, (i, o)).astype(dtype)
    b = rng.uniform(-1, 1, o).astype(dtype)
    expected = x.astype(np.float64) @ w.astype(np.float64) + b.astype(np.float64)
    atol = (1e-6 if dtype == np.float32 else 1e-12) * (i + 1)
    got = mod.linear(x, w, b)
    assert got.shape == (n, o)
    check(got, expected, dtype, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_ops_matches_reference(rng, dtype):
    x = rng.standard_normal((33, 17)).astype(dtype)
    w = rng.standard_normal((17, 7)).astype(dtype)
    b = rng.standard_normal(7).astype(dtype)
    check(
        fb.ops.linear(x, w, b),
        fb.reference.linear(x, w, b).astype(np.float64),
        dtype,
        atol=2e-5 if dtype == np.float32 else 1e-12,
    )


# ---------------------------------------------------------------------------------------
# activations, forward and backward
# ---------------------------------------------------------------------------------------

ACT_FORWARD = {
    "sigmoid": np_sigmoid,
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "identity": lambda z: z,
}
# derivative expressed through the forward output y
ACT_DERIV_FROM_Y = {
    "sigmoid": lambda y: y * (1.0 - y),
    "relu": lambda y: (y > 0).astype(np.float64),
    "tanh": lambda y: 1.0 - y * y,
    "identity": lambda y: np.ones_like(y),
}


@MODULES
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", EW_SHAPES, ids=str)
@pytest.mark.parametrize("name", list(ACT_FORWARD))
def test_activation_forward(rng, mod, name, shape, dtype):
    z = (3 * rng.standard_normal(shape)).astype(dtype)
    got = getattr(mod, name)(z)
    assert got.shape == shape
    check(got, ACT_FORWARD[name](z.astype(np.float64)), dtype)


@MODULES
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", EW_SHAPES, ids=str)
@pytest.mark.parametrize("name", list(ACT_FORWARD))
def test_activation_backward(rng, mod, name, shape, dtype):
    z = (2 * rng.standard_normal(shape)).astype(dtype)
    y = getattr(fb.reference, name)(z).astype(dtype)  # any valid forward output will do
    grad = rng.standard_normal(shape).astype(dtype)
    y64, g64 = y.astype(np.float64), grad.astype(np.float64)
    expected = g64 * ACT_DERIV_FROM_Y[name](y64)
    got = getattr(mod, name + "_backward")(y, grad)
    assert got.shape == shape
    check(got, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(ACT_FORWARD))
def test_activation_ops_match_reference(rng, name, dtype):
    z = rng.standard_normal((33, 17)).astype(dtype)
    grad = rng.standard_normal((33, 17)).astype(dtype)
    y_ops = getattr(fb.ops, name)(z)
    y_ref = getattr(fb.reference, name)(z)
    check(y_ops, y_ref.astype(np.float64), dtype)
    check(
        getattr(fb.ops, name + "_backward")(y_ref, grad),
        getattr(fb.reference, name + "_backward")(y_ref, grad).astype(np.float64),
        dtype,
    )


@MODULES
def test_relu_backward_at_zero_is_zero(mod):
    # y == 0 means the unit was off (z <= 0): no gradient flows, as in PyTorch
    y = np.array([0.0, 0.0, 2.0, 0.5])
    grad = np.array([1.0, -3.0, 4.0, 5.0])
    np.testing.assert_array_equal(mod.relu_backward(y, grad), [0.0, 0.0, 4.0, 5.0])


@MODULES
@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_do_not_modify_inputs(rng, mod, dtype):
    z = rng.standard_normal((7, 17)).astype(dtype)
    g = rng.standard_normal((7, 17)).astype(dtype)
    z0, g0 = z.copy(), g.copy()
    for name in ACT_FORWARD:
        y = getattr(mod, name)(z)
        getattr(mod, name + "_backward")(y, g)
    np.testing.assert_array_equal(z, z0)
    np.testing.assert_array_equal(g, g0)


@MODULES
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,c", NC)
def test_softmax(rng, mod, n, c, dtype):
    z = (4 * rng.standard_normal((n, c))).astype(dtype)
    got = mod.softmax(z)
    assert got.shape == (n, c)
    check(got, np_softmax(z), dtype)
    np.testing.assert_allclose(np.asarray(got, np.float64).sum(axis=1), 1.0, **tol(dtype))


# ---------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------

REDUCTIONS = ("mean", "sum")


@MODULES
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("n,c", NC)
def test_mse(rng, mod, n, c, reduction, dtype):
    y = rng.standard_normal((n, c)).astype(dtype)
    t = rng.standard_normal((n, c)).astype(dtype)
    d = y.astype(np.float64) - t.astype(np.float64)
    denom = 1.0 if reduction == "sum" else n * c  # mean over all elements
    check_scalar(mod.mse(y, t, reduction=reduction), float(np.sum(d * d)) / denom, dtype)
    check(mod.mse_backward(y, t, reduction=reduction), 2.0 * d / denom, dtype)


@MODULES
def test_mse_default_reduction_is_mean(mod):
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    t = np.array([[0.0, 0.0], [0.0, 0.0]])
    assert mod.mse(y, t) == pytest.approx(30.0 / 4, rel=1e-12)
    np.testing.assert_allclose(mod.mse_backward(y, t), 2 * y / 4, rtol=1e-12)


def _ce_expected(z, target, reduction):
    """Softmax cross-entropy and its gradient, float64 (torch.nn.CrossEntropyLoss)."""
    z = z.astype(np.float64)
    n, c = z.shape
    p = np_softmax(z)
    lse = np_logsumexp(z)
    if target.ndim == 1:
        onehot = np.zeros((n, c))
        onehot[np.arange(n), target] = 1.0
    else:
        onehot = target.astype(np.float64)
    per_sample = -(onehot * (z - lse[:, None])).sum(axis=1)
    grad = p * onehot.sum(axis=1, keepdims=True) - onehot
    denom = n if reduction == "mean" else 1.0  # mean over samples
    return per_sample.sum() / denom, grad / denom


@MODULES
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("n,c", NC)
def test_softmax_cross_entropy_labels(rng, mod, n, c, reduction, dtype):
    z = (3 * rng.standard_normal((n, c))).astype(dtype)
    labels = rng.integers(0, c, size=n)
    loss, grad = _ce_expected(z, labels, reduction)
    check_scalar(mod.softmax_cross_entropy(z, labels, reduction=reduction), loss, dtype)
    check(mod.softmax_cross_entropy_backward(z, labels, reduction=reduction), grad, dtype)


@MODULES
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("n,c", NC)
def test_softmax_cross_entropy_probabilities(rng, mod, n, c, reduction, dtype):
    z = (3 * rng.standard_normal((n, c))).astype(dtype)
    probs = rng.dirichlet(np.ones(c), size=n).astype(dtype)
    loss, grad = _ce_expected(z, probs, reduction)
    check_scalar(mod.softmax_cross_entropy(z, probs, reduction=reduction), loss, dtype)
    check(mod.softmax_cross_entropy_backward(z, probs, reduction=reduction), grad, dtype)


@MODULES
@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.int16, np.uint8, np.uint64])
def test_softmax_cross_entropy_any_integer_label_dtype(rng, mod, label_dtype):
    z = rng.standard_normal((17, 7))
    labels = rng.integers(0, 7, size=17)
    loss, grad = _ce_expected(z, labels, "mean")
    lab = labels.astype(label_dtype)
    check_scalar(mod.softmax_cross_entropy(z, lab), loss, np.float64)
    check(mod.softmax_cross_entropy_backward(z, lab), grad, np.float64)


@MODULES
def test_softmax_cross_entropy_labels_equal_onehot_probabilities(rng, mod):
    z = rng.standard_normal((33, 7))
    labels = rng.integers(0, 7, size=33)
    onehot = np.eye(7)[labels]
    assert mod.softmax_cross_entropy(z, labels) == pytest.approx(
        mod.softmax_cross_entropy(z, onehot), rel=1e-12
    )
    np.testing.assert_allclose(
        mod.softmax_cross_entropy_backward(z, labels),
        mod.softmax_cross_entropy_backward(z, onehot),
        rtol=1e-12,
        atol=1e-15,
    )


@MODULES
@pytest.mark.parametrize("label_dtype", [np.int32, np.float32, np.float64])
def test_softmax_cross_entropy_takes_column_and_whole_float_labels(rng, mod, label_dtype):
    z = rng.standard_normal((17, 7))
    labels = rng.integers(0, 7, size=17)
    loss, grad = _ce_expected(z, labels, "mean")
    for lab in (labels.astype(label_dtype), labels.reshape(-1, 1).astype(label_dtype)):
        check_scalar(mod.softmax_cross_entropy(z, lab), loss, np.float64)
        check(mod.softmax_cross_entropy_backward(z, lab), grad, np.float64)


@MODULES
@pytest.mark.parametrize("shape", [(17,), (17, 1)])
@pytest.mark.parametrize("bad", [2.5, np.nan])
def test_softmax_cross_entropy_refuses_fractional_labels_naming_one(rng, mod, shape, bad):
    labels = rng.integers(0, 7, size=17).astype(np.float64)
    labels[11] = bad
    with pytest.raises(ValueError, match=rf"whole numbers, got {bad} at index 11"):
        mod.softmax_cross_entropy(rng.standard_normal((17, 7)), labels.reshape(shape))


@MODULES
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("n,c", NC)
def test_bce_with_logits(rng, mod, n, c, reduction, dtype):
    z = (3 * rng.standard_normal((n, c))).astype(dtype)
    t = rng.random((n, c)).astype(dtype)
    z64, t64 = z.astype(np.float64), t.astype(np.float64)
    per = np.maximum(z64, 0) - z64 * t64 + np.log1p(np.exp(-np.abs(z64)))
    denom = 1.0 if reduction == "sum" else n * c  # mean over all elements
    check_scalar(mod.bce_with_logits(z, t, reduction=reduction), float(per.sum()) / denom, dtype)
    check(
        mod.bce_with_logits_backward(z, t, reduction=reduction),
        (np_sigmoid(z64) - t64) / denom,
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_losses_ops_match_reference(rng, dtype):
    z = rng.standard_normal((33, 7)).astype(dtype)
    t = rng.random((33, 7)).astype(dtype)
    labels = rng.integers(0, 7, 33)
    probs = rng.dirichlet(np.ones(7), size=33).astype(dtype)
    t2 = tol(dtype)
    pairs = [
        ("mse", t),
        ("bce_with_logits", t),
        ("softmax_cross_entropy", labels),
        ("softmax_cross_entropy", probs),
    ]
    for name, target in pairs:
        for reduction in REDUCTIONS:
            a = getattr(fb.ops, name)(z, target, reduction=reduction)
            b = getattr(fb.reference, name)(z, target, reduction=reduction)
            assert a == pytest.approx(b, rel=t2["rtol"], abs=t2["atol"]), (name, reduction)
            ga = getattr(fb.ops, name + "_backward")(z, target, reduction=reduction)
            gb = getattr(fb.reference, name + "_backward")(z, target, reduction=reduction)
            check(ga, np.asarray(gb, np.float64), dtype)


# ---------------------------------------------------------------------------------------
# numerical stability
# ---------------------------------------------------------------------------------------


@MODULES
@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_of_huge_magnitude_is_finite(mod, dtype):
    z = np.array([-1e4, -1e3, -100.0, 0.0, 100.0, 1e3, 1e4], dtype=dtype)
    y = mod.sigmoid(z)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(
        np.asarray(y, np.float64), np_sigmoid(z.astype(np.float64)), rtol=1e-5, atol=1e-30
    )
    assert 0.0 <= y[0] < 1e-40
    assert y[-1] == 1.0
    g = mod.sigmoid_backward(y, np.ones_like(y))
    assert np.all(np.isfinite(g))


@MODULES
@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_of_huge_magnitude_is_finite(mod, dtype):
    z = np.array([-1e4, 1e4, 0.0], dtype=dtype)
    np.testing.assert_array_equal(mod.tanh(z), [-1.0, 1.0, 0.0])


@MODULES
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmax_cross_entropy_huge_logits(mod, dtype, reduction):
    z = np.array(
        [[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3], [1e4, 1e4, -1e4], [-1e4, -1e4, -1e4]], dtype=dtype
    )
    labels = np.array([0, 0, 1, 2])
    # by hand: row 0 correct (0), row 1 wrong by 2e4, row 2 two equal maxima (log 2),
    # row 3 all equal (log 3)
    per = np.array([0.0, 2e4, np.log(2.0), np.log(3.0)])
    expected = per.sum() if reduction == "sum" else per.mean()
    loss = mod.softmax_cross_entropy(z, labels, reduction=reduction)
    assert np.isfinite(loss)
    assert loss == pytest.approx(expected, rel=1e-6)
    grad = mod.softmax_cross_entropy_backward(z, labels, reduction=reduction)
    assert np.all(np.isfinite(grad))
    exp_grad = np.array(
        [[0.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.5, -0.5, 0.0], [1 / 3, 1 / 3, -2 / 3]]
    )
    if reduction == "mean":
        exp_grad /= 4
    np.testing.assert_allclose(np.asarray(grad, np.float64), exp_grad, rtol=1e-5, atol=1e-7)
    # probability targets take the same path
    probs = np.eye(3, dtype=dtype)[labels]
    assert mod.softmax_cross_entropy(z, probs, reduction=reduction) == pytest.approx(
        expected, rel=1e-6
    )
    assert np.all(np.isfinite(mod.softmax_cross_entropy_backward(z, probs, reduction=reduction)))
    sm = mod.softmax(z)
    assert np.all(np.isfinite(sm))
    np.testing.assert_allclose(np.asarray(sm, np.float64).sum(axis=1), 1.0, rtol=1e-6)


@MODULES
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_huge_logits(mod, dtype, reduction):
    z = np.array([[1e4, -1e4], [1e4, -1e4], [0.0, 3e3]], dtype=dtype)
    t = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 1.0]], dtype=dtype)
    per = np.array([[0.0, 0.0], [1e4, 1e4], [np.log(2.0), 0.0]])
    expected = per.sum() if reduction == "sum" else per.mean()
    loss = mod.bce_with_logits(z, t, reduction=reduction)
    assert np.isfinite(loss)
    assert loss == pytest.approx(expected, rel=1e-6)
    grad = np.asarray(mod.bce_with_logits_backward(z, t, reduction=reduction), np.float64)
    assert np.all(np.isfinite(grad))
    exp_grad = np.array([[0.0, 0.0], [1.0, -1.0], [0.0, 0.0]])
    if reduction == "mean":
        exp_grad /= 6
    np.testing.assert_allclose(grad, exp_grad, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------
# SGD update
# ---------------------------------------------------------------------------------------


def np_dtype_scalar(dtype):
    return np.dtype(dtype).type


def _torch_sgd(param, grads, *, lr, momentum, dampening, nesterov, weight_decay):
    """torch.optim.SGD's update rule, written out, applied for each gradient in turn.

    Runs in the dtype of ``param`` (as the kernel does)."""
    p = param.copy()
    buf = None
    for g in grads:
        d = g + weight_decay * p if weight_decay != 0 else g.copy()
        if momentum != 0:
            if buf is None:
                buf = d.copy()
            else:
                buf = momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p, buf


SGD_CASES = [
    dict(momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0),
    dict(momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.1),
    dict(momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0),
    dict(momentum=0.9, dampening=0.5, nesterov=False, weight_decay=0.0),
    dict(momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.0),
    dict(momentum=0.5, dampening=0.0, nesterov=True, weight_decay=0.01),
    dict(momentum=0.7, dampening=0.1, nesterov=False, weight_decay=0.05),
]


@MODULES
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (127,), (7, 17), (33, 3)], ids=str)
@pytest.mark.parametrize(
    "hyper", SGD_CASES, ids=lambda h: "-".join(f"{k}={v}" for k, v in h.items())
)
def test_sgd_step_matches_pytorch_rule(rng, mod, hyper, shape, dtype):
    lr = 0.1
    steps = 5
    param = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(steps)]
    cast = {k: (np_dtype_scalar(dtype)(v) if isinstance(v, float) else v) for k, v in hyper.items()}
    expected_p, expected_buf = _torch_sgd(param, grads, lr=np_dtype_scalar(dtype)(lr), **cast)

    p = param.copy()
    velocity = np.zeros_like(p)
    for i, g in enumerate(grads):
        mod.sgd_step(p, g, velocity, lr=lr, step=i + 1, **hyper)
    assert p.dtype == np.dtype(dtype)
    t = tol(dtype)
    np.testing.assert_allclose(p, expected_p, rtol=10 * t["rtol"], atol=10 * t["atol"])
    if hyper["momentum"] != 0:
        np.testing.assert_allclose(velocity, expected_buf, rtol=10 * t["rtol"], atol=10 * t["atol"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_step_after_the_first(rng, dtype):
    # step 2 with a zero buffer: buf = (1 - dampening) * g, unlike the first step
    p = rng.standard_normal(17).astype(dtype)
    g = rng.standard_normal(17).astype(dtype)
    v = np.zeros_like(p)
    p1 = p.copy()
    fb.ops.sgd_step(p1, g, v, lr=0.5, momentum=0.9, dampening=0.5, step=2)
    np.testing.assert_allclose(v, 0.5 * g.astype(np.float64), **tol(dtype))
    np.testing.assert_allclose(p1, p.astype(np.float64) - 0.25 * g, **tol(dtype))
    v2 = np.zeros_like(p)
    p2 = p.copy()
    fb.ops.sgd_step(p2, g, v2, lr=0.5, momentum=0.9, dampening=0.5, step=1)
    np.testing.assert_allclose(v2, g, **tol(dtype))
    np.testing.assert_allclose(p2, p.astype(np.float64) - 0.5 * g, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_step_ops_matches_reference(rng, dtype):
    shape = (33, 7)
    p_ops = rng.standard_normal(shape).astype(dtype)
    p_ref = p_ops.copy()
    v_ops = np.zeros_like(p_ops)
    v_ref = np.zeros_like(p_ref)
    for i in range(4):
        g = rng.standard_normal(shape).astype(dtype)
        kw = dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01, step=i + 1)
        fb.ops.sgd_step(p_ops, g, v_ops, **kw)
        fb.reference.sgd_step(p_ref, g, v_ref, **kw)
    t = tol(dtype)
    np.testing.assert_allclose(p_ops, p_ref, rtol=10 * t["rtol"], atol=10 * t["atol"])
    np.testing.assert_allclose(v_ops, v_ref, rtol=10 * t["rtol"], atol=10 * t["atol"])


# ---------------------------------------------------------------------------------------
# dtype rule: result_type(*inputs, float32)
# ---------------------------------------------------------------------------------------


def _unary_ops(mod):
    return {
        "sigmoid": lambda a: mod.sigmoid(a),
        "relu": lambda a: mod.relu(a),
        "tanh": lambda a: mod.tanh(a),
        "identity": lambda a: mod.identity(a),
        "softmax": lambda a: mod.softmax(a),
        "sigmoid_backward": lambda a: mod.sigmoid_backward(a, a),
        "relu_backward": lambda a: mod.relu_backward(a, a),
        "tanh_backward": lambda a: mod.tanh_backward(a, a),
        "identity_backward": lambda a: mod.identity_backward(a, a),
        "matmul": lambda a: mod.matmul(a, a, trans_b=True),
        "linear": lambda a: mod.linear(a, a.T, a[0]),
        "mse_backward": lambda a: mod.mse_backward(a, a + 1),
        "bce_with_logits_backward": lambda a: mod.bce_with_logits_backward(a, a * 0),
        "softmax_cross_entropy_backward": lambda a: mod.softmax_cross_entropy_backward(
            a, np.zeros(a.shape[0], dtype=np.int64)
        ),
    }


UNARY_NAMES = list(_unary_ops(fb.reference))


@MODULES
@pytest.mark.parametrize(
    "in_dtype,out_dtype",
    [
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.int64, np.float64),
        (np.int32, np.float64),
        (np.int8, np.float32 if np.result_type(np.int8, np.float32) == np.float32 else np.float64),
        (np.float16, np.float32),
    ],
    ids=lambda d: np.dtype(d).name,
)
@pytest.mark.parametrize("name", UNARY_NAMES)
def test_dtype_rule(mod, name, in_dtype, out_dtype):
    a = np.array([[1, 2, 0], [0, 1, 1], [2, 0, 1]]).astype(in_dtype)
    expected_dtype = np.result_type(in_dtype, np.float32)
    assert np.dtype(out_dtype) == expected_dtype  # the rule of api_decisions.md, spelled out
    out = _unary_ops(mod)[name](a)
    assert out.dtype == expected_dtype
    # the values are those of the float64 computation (inputs are small exact integers)
    ref = _unary_ops(fb.reference)[name](a.astype(np.float64))
    np.testing.assert_allclose(
        np.asarray(out, np.float64),
        ref,
        rtol=1e-3 if expected_dtype == np.float32 else 1e-12,
        atol=1e-6,
    )


@MODULES
def test_dtype_rule_mixed_float32_float64_gives_float64(rng, mod):
    a32 = rng.standard_normal((3, 7)).astype(np.float32)
    b64 = rng.standard_normal((7, 17))
    assert mod.matmul(a32, b64).dtype == np.float64
    assert mod.linear(a32, b64, np.zeros(17, np.float32)).dtype == np.float64
    assert mod.sigmoid_backward(a32, a32.astype(np.float64)).dtype == np.float64
    assert mod.mse_backward(a32, a32.astype(np.float64)).dtype == np.float64


@MODULES
@pytest.mark.parametrize(
    "bad",
    [
        np.array([[1 + 1j, 2]]),
        np.array([[True, False]]),
        np.array([[1.0, 2.0]], dtype=object),
    ],
    ids=["complex", "bool", "object"],
)
def test_dtype_rule_rejects_complex_bool_object(mod, bad):
    with pytest.raises(TypeError, match=str(bad.dtype)):
        mod.sigmoid(bad)
    with pytest.raises(TypeError):
        mod.matmul(bad, bad.T)


@MODULES
@pytest.mark.parametrize("dtype", DTYPES)
def test_ops_accept_non_contiguous_inputs(rng, mod, dtype):
    big = rng.standard_normal((34, 14)).astype(dtype)
    a = big[::2, ::2]  # (17, 7), strided
    assert not a.flags.c_contiguous
    b = np.asfortranarray(rng.standard_normal((7, 3)).astype(dtype))
    check(mod.matmul(a, b), a.astype(np.float64) @ b.astype(np.float64), dtype, atol=1e-5)
    check(mod.sigmoid(a), np_sigmoid(a.astype(np.float64)), dtype)
    t = big[1::2, 1::2]
    d = a.astype(np.float64) - t.astype(np.float64)
    check(mod.mse_backward(a, t), 2 * d / d.size, dtype)


@MODULES
def test_loss_returns_python_float(rng, mod):
    z = rng.standard_normal((5, 3)).astype(np.float32)
    t = rng.random((5, 3)).astype(np.float32)
    for value in (
        mod.mse(z, t),
        mod.bce_with_logits(z, t),
        mod.softmax_cross_entropy(z, np.array([0, 1, 2, 0, 1])),
    ):
        assert isinstance(value, float)


def bare(fn_or_signature) -> inspect.Signature:
    """A function's signature (or ``signature``) without annotations."""
    signature = (
        fn_or_signature
        if isinstance(fn_or_signature, inspect.Signature)
        else inspect.signature(fn_or_signature)
    )
    parameters = [p.replace(annotation=p.empty) for p in signature.parameters.values()]
    return signature.replace(parameters=parameters, return_annotation=signature.empty)


@MODULES
@pytest.mark.parametrize("name", list(_names.ACTIVATIONS))
def test_activation_ops_take_their_class_settings(mod, name):
    """``name(x, <settings>)`` and ``name_backward(x or y, grad, <settings>)``, the settings
    and defaults of the activation's class, the backward op's array the one the core's
    derivative reads."""
    proto = activations.for_name(name)
    first = "x" if fb._core.act_uses_input(proto.kind) else "y"
    assert bare(getattr(mod, name)) == bare(activations.op_signature(proto, ("x",)))
    backward = activations.op_signature(proto, (first, "grad"))
    assert bare(getattr(mod, name + "_backward")) == bare(backward)


@MODULES
@pytest.mark.parametrize("cls", optimizers.CLASSES)
def test_step_ops_take_their_optimizer_hyper_parameters(mod, cls):
    """``<name>_step(param, grad, *states, *, <hyper-parameters>, step=1)``: the state
    arrays the optimizer keeps, then its step's hyper-parameters with its defaults."""
    optimizer = getattr(optimizers, cls)
    keyword = inspect.Parameter.KEYWORD_ONLY
    arrays = ("param", "grad", *optimizer._STATE.names)
    hyper = [
        p.replace(kind=keyword)
        for name, p in list(inspect.signature(optimizer.__init__).parameters.items())[1:]
        if name != "max_grad_norm" and name not in optimizer._INIT_ONLY
    ]
    expected = inspect.Signature(
        [inspect.Parameter(a, inspect.Parameter.POSITIONAL_OR_KEYWORD) for a in arrays]
        + hyper
        + [inspect.Parameter("step", keyword, default=1)]
    )
    assert bare(getattr(mod, cls.lower() + "_step")) == bare(expected)


@pytest.mark.parametrize("name", fb.ops.__all__)
def test_every_twin_takes_its_ops_parameters(name):
    expected = bare(getattr(fb.ops, name))
    if name == "matmul":  # the twin also models the bfloat16 path's rule for subnormals
        subnormals = inspect.Parameter(
            "subnormals", inspect.Parameter.POSITIONAL_OR_KEYWORD, default="kept"
        )
        expected = expected.replace(parameters=[*expected.parameters.values(), subnormals])
    assert bare(getattr(fb.reference, name)) == expected


@MODULES
@pytest.mark.parametrize("name", fb.ops.__all__)
def test_every_op_is_written_out_as_a_def_in_its_module(mod, name):
    """``grep "def relu"`` finds each op and twin, and so do an IDE and the docs."""
    fn = getattr(mod, name)
    source = inspect.getsource(sys.modules[fn.__module__])
    assert fn.__qualname__ == name and re.search(rf"^def {name}\(", source, re.MULTILINE)
