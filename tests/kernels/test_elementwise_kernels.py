"""The elementwise kernels (optimizer updates, penalty, activations, softmax) are built
once per x86-64 level and the CPU's own runs: each multiply and each add still rounds on
its own, as NumPy's do, so every level gives the same bits. The exp of the softmax and of
the sigmoid (and so SiLU), and the float32 tanh, are vectorised: float32 results are the
correctly rounded values nearly always, float64 ones within an ulp or two, down to the
subnormals."""

from __future__ import annotations

import platform

import numpy as np
import pytest

import fastbp as fb


def ulps_apart(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many representable values lie between a and b (non-negative, same dtype)."""
    int_type = np.int32 if a.dtype == np.float32 else np.int64
    return np.abs(a.view(int_type).astype(np.int64) - b.view(int_type).astype(np.int64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_rounds_each_multiply_and_add_as_numpy_does(rng, dtype, nesterov):
    """Two steps of SGD with momentum and weight decay equal, bitwise, NumPy's operations
    in the kernel's order; a multiply-add fused into one rounding would differ in some
    of the 100,000 values."""
    n = 100_000
    p = rng.standard_normal(n).astype(dtype)
    v = np.zeros(n, dtype)
    lr, mu, wd = dtype(0.1), dtype(0.9), dtype(0.01)
    want_p, want_v = p.copy(), v.copy()
    for step in (1, 2):
        g = rng.standard_normal(n).astype(dtype)
        fb.ops.sgd_step(
            p, g, v, lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.01, step=step
        )
        d = g + wd * want_p
        want_v = d if step == 1 else mu * want_v + dtype(1) * d
        want_p = want_p - lr * (d + mu * want_v if nesterov else want_v)
        np.testing.assert_array_equal(v, want_v)
        np.testing.assert_array_equal(p, want_p)


def exp_through_softmax(v: np.ndarray) -> np.ndarray:
    """exp(v) for v <= -40 read from softmax([0, v]): the row's sum is 1 + exp(v), which
    rounds to 1 in float64, so the second column is the kernel's exp(v) itself."""
    rows = np.stack([np.zeros_like(v), v], axis=1)
    return fb.ops.softmax(rows)[:, 1]


def test_float32_exp_is_the_correctly_rounded_value_nearly_always(rng):
    v = -rng.uniform(40.0, 110.0, 200_000).astype(np.float32)
    got = exp_through_softmax(v)
    exact = np.exp(v.astype(np.float64)).astype(np.float32)
    apart = ulps_apart(got, exact)
    assert apart.max() <= 1
    assert np.mean(apart == 0) > 0.999
    assert (got[v < -103.98] == 0).all() and (got[v > -103.97] > 0).all()  # subnormals kept


def test_float64_exp_is_within_an_ulp(rng):
    v = -rng.uniform(40.0, 750.0, 200_000)
    got = exp_through_softmax(v)
    assert ulps_apart(got, np.exp(v)).max() <= 2
    assert (got[v < -745.2] == 0).all() and (got[v > -745.1] > 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_keeps_its_special_values(dtype):
    x = np.array(
        [[0.0, -np.inf, 1.0], [np.nan, 0.0, 1.0], [0.0, 0.0, 0.0], [-1e30, 0.0, -1e30]], dtype
    )
    y = fb.ops.softmax(x)
    np.testing.assert_allclose(y[0], [1 / (1 + np.e), 0.0, np.e / (1 + np.e)], rtol=1e-6)
    assert y[0, 1] == 0
    assert np.isnan(y[1]).all()  # NaN is never turned into a number
    np.testing.assert_allclose(y[2], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_array_equal(y[3], [0.0, 1.0, 0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, classes", [(1, 1), (3, 10), (65, 10), (130, 17), (5, 300)])
def test_softmax_cross_entropy_matches_float64_numpy(rng, dtype, rows, classes):
    """Rows beyond one block of 64 and rows longer than a vector: the loss with and
    without the gradient (which keep the exps in different buffers) agree bitwise, and
    both match NumPy in float64."""
    x = (rng.standard_normal((rows, classes)) * 5).astype(dtype)
    labels = rng.integers(0, classes, rows)
    loss = fb.ops.softmax_cross_entropy(x, labels)
    grad = fb.ops.softmax_cross_entropy_backward(x, labels)
    x64 = x.astype(np.float64)
    shifted = x64 - x64.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    want_loss = -log_p[np.arange(rows), labels].mean()
    want_grad = np.exp(log_p)
    want_grad[np.arange(rows), labels] -= 1
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(loss, want_loss, rtol=tol, atol=tol)
    np.testing.assert_allclose(grad, want_grad / rows, rtol=tol, atol=tol / rows)
    assert fb.ops.softmax_cross_entropy(x, labels) == loss


def test_softmax_cross_entropy_of_a_nan_logit_is_nan():
    x = np.array([[0.0, np.nan, 1.0], [0.0, 1.0, 2.0]], np.float32)
    labels = np.array([0, 2])
    assert np.isnan(fb.ops.softmax_cross_entropy(x, labels))
    grad = fb.ops.softmax_cross_entropy_backward(x, labels)
    assert np.isnan(grad[0]).all() and np.isfinite(grad[1]).all()


def expected_level() -> str | None:
    """The x86-64 level this CPU reaches by /proc/cpuinfo's flags (None off Linux x86-64)."""
    try:
        with open("/proc/cpuinfo") as f:
            line = next(line for line in f if line.startswith("flags"))
    except (OSError, StopIteration):
        return None
    flags = set(line.split(":", 1)[1].split())
    v3 = {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
    v4 = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
    if v3 | v4 <= flags:
        return "x86-64-v4"
    return "x86-64-v3" if v3 <= flags else "baseline"


def float32_sample(rng, n: int = 200_000) -> np.ndarray:
    """Magnitudes from 6e-6 to 55, both signs."""
    return (rng.standard_normal(n) * np.exp(rng.uniform(-12.0, 4.0, n))).astype(np.float32)


def test_float32_sigmoid_tanh_and_silu_are_correctly_rounded_nearly_always(rng):
    """They run in double and round once: within an ulp of the float64 value rounded to
    float32, and equal to it nearly always (SiLU's gradient too)."""
    x = float32_sample(rng)
    x64 = x.astype(np.float64)
    s64 = 1.0 / (1.0 + np.exp(-x64))
    for got, exact in (
        (fb.ops.sigmoid(x), s64.astype(np.float32)),
        (fb.ops.tanh(x), np.tanh(x64).astype(np.float32)),
        (fb.ops.silu(x), (x64 * s64).astype(np.float32)),
        (
            fb.ops.silu_backward(x, np.ones_like(x)),
            (s64 * (1.0 + x64 * (1.0 - s64))).astype(np.float32),
        ),
    ):
        apart = ulps_apart(got, exact)
        assert apart.max() <= 1
        assert np.mean(apart == 0) > 0.999


def test_float64_sigmoid_is_within_two_ulps(rng):
    x = rng.standard_normal(200_000) * np.exp(rng.uniform(-12.0, 5.0, 200_000))
    e = np.exp(-np.abs(x))
    want = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    assert ulps_apart(fb.ops.sigmoid(x), want).max() <= 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_tanh_keep_their_special_values(dtype):
    x = np.array([0.0, -0.0, 1e-30, -1e-30, np.inf, -np.inf, np.nan, 1e4, -1e4], dtype)
    s, t = fb.ops.sigmoid(x), fb.ops.tanh(x)
    np.testing.assert_array_equal(s[:4], [0.5, 0.5, 0.5, 0.5])
    np.testing.assert_array_equal(s[[4, 5, 7, 8]], [1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(t, np.tanh(x))  # -0 stays -0, tiny x stays x
    assert np.signbit(t[1]) and not np.signbit(t[0])
    assert np.isnan(s[6]) and np.isnan(t[6])


def test_build_info_names_the_level_the_cpu_reaches():
    level = fb.build_info()["elementwise"]
    assert level in ("x86-64-v4", "x86-64-v3", "baseline")
    name, version = fb.build_info()["compiler"].split()[:2]
    if name != "GNU" or int(version.split(".")[0]) < 12 or platform.libc_ver()[0] != "glibc":
        assert level == "baseline"  # no clones are built
        return
    expected = expected_level()
    if expected is None:
        pytest.skip("no /proc/cpuinfo to read the CPU's flags from")
    assert level == expected
