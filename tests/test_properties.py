"""Property tests: every ``fb.ops`` kernel against ``fb.reference`` on shapes and
values drawn by hypothesis, float32 and float64, with extremes among the values (±0,
±1e-30, ±1e30, subnormals, the dtype's largest value where it cannot overflow).

Tolerances follow each kernel's rounding-error bound rather than a fixed rtol, since the
two implementations sum in different orders and precisions: a dot product of length k
may differ by about k ulps of sum(|a||b|), plus k times the smallest subnormal where
products underflow. Runs are derandomized and bounded, so CI is not flaky or slow."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fastbp as fb

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None)
ACTS = ("sigmoid", "relu", "tanh", "identity")


def extremes(dtype) -> list:
    """Special magnitudes, each exactly representable in ``dtype``."""
    info = np.finfo(dtype)
    tiny = float(info.smallest_subnormal)
    raw = [0.0, 1e-30, 1e30, tiny, 3 * tiny, float(info.tiny) / 7, 1.0]
    return [s * float(dtype(v)) for v in raw for s in (1.0, -1.0)]


def values(dtype):
    """Values in [-1e30, 1e30]: ordinary ones half the time, extremes the other half."""
    limit = float(dtype(1e30))
    ordinary = st.floats(-limit, limit, width=32 if dtype == np.float32 else 64)
    return st.one_of(ordinary, st.sampled_from(extremes(dtype)))


def array(dtype, shape):
    return arrays(dtype, shape, elements=values(dtype))


dims = st.integers(1, 12)


def both(name, *args, **kwargs):
    """``fb.ops.name`` and ``fb.reference.name`` on the same inputs. Overflow at the
    extremes is expected (and compared), so NumPy's warnings about it are silenced."""
    with np.errstate(all="ignore"):
        return (
            getattr(fb.ops, name)(*args, **kwargs),
            getattr(fb.reference, name)(*args, **kwargs),
        )


def assert_within(got, ref, bound, dtype, scale=None):
    """|got - ref| <= bound elementwise, except where ``scale`` (a bound on every
    intermediate's magnitude, default ``bound``) is near overflow: there results may
    legitimately be inf in one and finite in the other, and only the dtype is checked."""
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.dtype == ref.dtype == np.dtype(dtype), (got.dtype, ref.dtype)
    assert got.shape == ref.shape
    scale = bound if scale is None else scale
    fits = np.isfinite(bound) & (scale < float(np.finfo(dtype).max) / 4)
    with np.errstate(invalid="ignore"):  # inf - inf where both overflowed
        err = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    bad = fits & ~(err <= bound)
    assert not bad.any(), (
        f"{bad.sum()} entries out of bound; first: got {got[bad][0]!r}, "
        f"reference {ref[bad][0]!r}, bound {bound[bad][0]!r}"
    )


def ulps(dtype, n=1.0) -> float:
    return 4.0 * n * float(np.finfo(dtype).eps)


def sub(dtype, n=1.0) -> float:
    return 4.0 * n * float(np.finfo(dtype).smallest_subnormal)


def magnitude(*arrays) -> np.ndarray:
    with np.errstate(over="ignore"):
        return sum(np.abs(np.asarray(a, dtype=np.float64)) for a in arrays)


@DTYPES
@PROPERTY
@given(data=st.data(), m=dims, k=dims, n=dims, trans_a=st.booleans(), trans_b=st.booleans())
def test_matmul(dtype, data, m, k, n, trans_a, trans_b):
    a = data.draw(array(dtype, (k, m) if trans_a else (m, k)))
    b = data.draw(array(dtype, (n, k) if trans_b else (k, n)))
    got, ref = both("matmul", a, b, trans_a=trans_a, trans_b=trans_b)
    abs_a, abs_b = magnitude(a), magnitude(b)
    with np.errstate(over="ignore", invalid="ignore"):
        scale = (abs_a.T if trans_a else abs_a) @ (abs_b.T if trans_b else abs_b)
    assert_within(got, ref, ulps(dtype, k) * scale + sub(dtype, k), dtype, scale)


@DTYPES
@PROPERTY
@given(data=st.data(), m=dims, k=dims, n=dims)
def test_linear(dtype, data, m, k, n):
    x = data.draw(array(dtype, (m, k)))
    w = data.draw(array(dtype, (k, n)))
    b = data.draw(array(dtype, (n,)))
    got, ref = both("linear", x, w, b)
    with np.errstate(over="ignore", invalid="ignore"):
        scale = magnitude(x) @ magnitude(w) + magnitude(b)
    assert_within(got, ref, ulps(dtype, k + 1) * scale + sub(dtype, k + 1), dtype, scale)


@DTYPES
@pytest.mark.parametrize("act", ACTS)
@PROPERTY
@given(data=st.data(), shape=st.lists(dims, min_size=1, max_size=3).map(tuple))
def test_activation(dtype, act, data, shape):
    x = data.draw(array(dtype, shape))
    got, ref = both(act, x)
    scale = magnitude(ref)
    assert_within(got, ref, ulps(dtype) * scale + sub(dtype), dtype, scale)


@DTYPES
@pytest.mark.parametrize("act", ACTS)
@PROPERTY
@given(data=st.data(), shape=st.lists(dims, min_size=1, max_size=3).map(tuple))
def test_activation_backward(dtype, act, data, shape):
    """``y`` is a forward output (the kernels' domain), ``grad`` anything."""
    x = data.draw(array(dtype, shape))
    y = getattr(fb.reference, act)(x)
    grad = data.draw(array(dtype, shape))
    got, ref = both(act + "_backward", y, grad)
    scale = magnitude(ref)
    assert_within(got, ref, ulps(dtype, 2) * scale + sub(dtype, 2), dtype, scale)


@DTYPES
@PROPERTY
@given(data=st.data(), m=dims, n=dims)
def test_softmax(dtype, data, m, n):
    x = data.draw(array(dtype, (m, n)))
    got, ref = both("softmax", x)
    # the shift x - max is rounded in dtype by both; exp then amplifies it by |x - max|
    spread = magnitude(x - x.max(axis=1, keepdims=True)) if n > 1 else np.zeros((m, n))
    bound = ulps(dtype, n) * magnitude(ref) * (1 + spread) + sub(dtype, n)
    assert_within(got, ref, bound, dtype)
    assert np.all(np.abs(got.sum(axis=1) - 1) <= ulps(dtype, n))


@DTYPES
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@PROPERTY
@given(data=st.data(), m=dims, n=dims)
def test_mse(dtype, reduction, data, m, n):
    y = data.draw(array(dtype, (m, n)))
    t = data.draw(array(dtype, (m, n)))
    value, ref_value = both("mse", y, t, reduction=reduction)
    assert abs(value - ref_value) <= ulps(np.float64, m * n) * abs(ref_value) + 1e-300
    got, ref = both("mse_backward", y, t, reduction=reduction)
    scale = magnitude(ref)
    assert_within(got, ref, ulps(dtype, 2) * scale + sub(dtype, 2), dtype, scale)


@DTYPES
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@PROPERTY
@given(data=st.data(), m=dims, n=dims)
def test_bce_with_logits(dtype, reduction, data, m, n):
    """Targets are probabilities in [0, 1], the loss's domain."""
    x = data.draw(array(dtype, (m, n)))
    t = data.draw(arrays(dtype, (m, n), elements=st.sampled_from([0.0, 0.25, 0.5, 1.0])))
    value, ref_value = both("bce_with_logits", x, t, reduction=reduction)
    # max(x, 0) - x*t is rounded in dtype by the kernel: error ~ ulps of |x|
    scale = float(magnitude(x).sum() + m * n) / (m * n if reduction == "mean" else 1)
    # and the m*n terms are summed in float64, in different orders
    assert abs(value - ref_value) <= (ulps(dtype, 2) + ulps(np.float64, m * n)) * scale
    got, ref = both("bce_with_logits_backward", x, t, reduction=reduction)
    per = 1.0 / (m * n) if reduction == "mean" else 1.0
    assert_within(got, ref, np.full(got.shape, ulps(dtype, 2) * per + sub(dtype)), dtype)


@DTYPES
@pytest.mark.parametrize("target", ["labels", "probs"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@PROPERTY
@given(data=st.data(), m=dims, n=dims)
def test_softmax_cross_entropy(dtype, target, reduction, data, m, n):
    x = data.draw(array(dtype, (m, n)))
    if target == "labels":
        t = data.draw(arrays(np.int64, (m,), elements=st.integers(0, n - 1)))
        t_sum = np.ones(m)
    else:
        t = data.draw(arrays(dtype, (m, n), elements=st.sampled_from([0.0, 0.125, 0.5, 1.0])))
        t_sum = t.sum(axis=1, dtype=np.float64)
    per = 1.0 / m if reduction == "mean" else 1.0
    value, ref_value = both("softmax_cross_entropy", x, t, reduction=reduction)
    # lse(x) * sum(t) - t.x cancels: error ~ ulps of sum(t) * (|max| + spread) per row
    row_scale = t_sum * (2 * magnitude(x).max(axis=1) + np.log(n) + 1)
    assert abs(value - ref_value) <= ulps(dtype, n) * float(row_scale.sum()) * per
    got, ref = both("softmax_cross_entropy_backward", x, t, reduction=reduction)
    bound = np.repeat(ulps(dtype, n) * (t_sum + 1) * per, n).reshape(m, n) + sub(dtype, n)
    assert_within(got, ref, bound, dtype)


@DTYPES
@PROPERTY
@given(
    data=st.data(),
    n=st.integers(1, 200),
    lr=st.sampled_from([1e-3, 0.1, 1.0]),
    momentum=st.sampled_from([0.0, 0.9]),
    dampening=st.sampled_from([0.0, 0.5]),
    nesterov=st.booleans(),
    weight_decay=st.sampled_from([0.0, 1e-4]),
    step=st.sampled_from([1, 2]),
)
def test_sgd_step(dtype, data, n, lr, momentum, dampening, nesterov, weight_decay, step):
    if nesterov and (momentum == 0 or dampening != 0):
        nesterov = False  # not a valid setting; both sides refuse it
    param = data.draw(array(dtype, (n,)))
    grad = data.draw(array(dtype, (n,)))
    velocity = data.draw(array(dtype, (n,)))
    p_ref, v_ref = param.copy(), velocity.copy()
    hyper = dict(
        lr=lr,
        momentum=momentum,
        dampening=dampening,
        nesterov=nesterov,
        weight_decay=weight_decay,
        step=step,
    )
    with np.errstate(all="ignore"):
        fb.ops.sgd_step(param, grad, velocity, **hyper)
        fb.reference.sgd_step(p_ref, grad, v_ref, **hyper)
    scale = magnitude(p_ref, param, grad, velocity, v_ref) * (1 + lr) * 2
    assert_within(param, p_ref, ulps(dtype, 4) * scale + sub(dtype, 4), dtype, scale)
    assert_within(velocity, v_ref, ulps(dtype, 4) * scale + sub(dtype, 4), dtype, scale)
