"""Layer norm, RMS norm, batch norm and dropout: the ops against PyTorch (forward, and backward
through autograd) and against fb.reference (hypothesis, extremes included), the dropout
mask's properties, and the layer classes' NumPy maths, torch and ONNX hooks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fastbp as fb
from fastbp import ops, reference

torch = pytest.importorskip("torch")

SHAPES = [(1, 3), (7, 17), (33, 5)]
BATCH_SHAPES = [(2, 3), (7, 17), (33, 5)]
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-9, atol=1e-12)}
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None)


def _t(a, grad=False):
    return torch.tensor(np.asarray(a), requires_grad=grad)


def _inputs(rng, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype) * 3 + 1
    w = rng.standard_normal(shape[1]).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    return x, w, b, g


def _check(got, want, dtype):
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, want, **TOL[dtype])


# --- against PyTorch -------------------------------------------------------------------


@DTYPES
@pytest.mark.parametrize("shape", SHAPES)
def test_layer_norm_matches_torch(rng, shape, dtype):
    x, w, b, g = _inputs(rng, shape, dtype)
    tx, tw, tb = _t(x, True), _t(w, True), _t(b, True)
    y = torch.nn.functional.layer_norm(tx, (shape[1],), tw, tb, 1e-5)
    y.backward(_t(g))
    _check(ops.layer_norm(x, w, b), y.detach().numpy(), dtype)
    for got, want in zip(ops.layer_norm_backward(x, w, g), (tx.grad, tw.grad, tb.grad)):
        _check(got, want.numpy(), dtype)


@DTYPES
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("eps", [None, 1e-3])
def test_rms_norm_matches_torch(rng, shape, dtype, eps):
    x, w, _, g = _inputs(rng, shape, dtype)
    tx, tw = _t(x, True), _t(w, True)
    y = torch.nn.functional.rms_norm(tx, (shape[1],), tw, eps)
    y.backward(_t(g))
    _check(ops.rms_norm(x, w, eps), y.detach().numpy(), dtype)
    _check(reference.rms_norm(x, w, eps), y.detach().numpy(), dtype)
    for got, want in zip(ops.rms_norm_backward(x, w, g, eps), (tx.grad, tw.grad), strict=True):
        _check(got, want.numpy(), dtype)
    for got, want in zip(reference.rms_norm_backward(x, w, g, eps), (tx.grad, tw.grad)):
        _check(got, want.numpy(), dtype)


def test_rms_norm_eps_none_is_the_machine_epsilon_of_the_dtype(rng):
    """A row of zeros but one tiny value tells the eps apart: float32's eps is not
    float64's."""
    for dtype in (np.float32, np.float64):
        x = np.zeros((1, 4), dtype)
        x[0, 0] = 1e-4
        w = np.ones(4, dtype)
        eps = float(np.finfo(dtype).eps)
        np.testing.assert_array_equal(ops.rms_norm(x, w), ops.rms_norm(x, w, eps))
        assert not np.array_equal(ops.rms_norm(x, w), ops.rms_norm(x, w, 1e-5))


@DTYPES
@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_batch_norm_training_matches_torch(rng, shape, dtype):
    x, w, b, g = _inputs(rng, shape, dtype)
    tx, tw, tb = _t(x, True), _t(w, True), _t(b, True)
    rm, rv = np.zeros(shape[1], dtype), np.ones(shape[1], dtype)
    trm, trv = _t(rm.copy()), _t(rv.copy())
    y = torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, True, 0.1, 1e-5)
    y.backward(_t(g))
    _check(ops.batch_norm(x, w, b, rm, rv, True), y.detach().numpy(), dtype)
    _check(rm, trm.numpy(), dtype)
    _check(rv, trv.numpy(), dtype)
    for got, want in zip(ops.batch_norm_backward(x, w, g), (tx.grad, tw.grad, tb.grad)):
        _check(got, want.numpy(), dtype)


@DTYPES
@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0])
def test_batch_norm_running_statistics_follow_torch_over_several_calls(rng, dtype, momentum):
    module = torch.nn.BatchNorm1d(5, momentum=momentum, dtype=torch.float64)
    rm, rv = np.zeros(5, dtype), np.ones(5, dtype)
    for rows in (2, 7, 33, 3):
        x = (rng.standard_normal((rows, 5)) * rng.uniform(0.5, 4, 5) + 2).astype(dtype)
        module(_t(x.astype(np.float64)))
        ops.batch_norm(x, np.ones(5, dtype), np.zeros(5, dtype), rm, rv, True, momentum)
    _check(rm, module.running_mean.numpy(), dtype)
    _check(rv, module.running_var.numpy(), dtype)


@DTYPES
@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_inference_matches_torch_and_leaves_running_statistics(rng, shape, dtype):
    x, w, b, _ = _inputs(rng, shape, dtype)
    rm = rng.standard_normal(shape[1]).astype(dtype)
    rv = rng.uniform(0.1, 3, shape[1]).astype(dtype)
    before = rm.copy(), rv.copy()
    want = torch.nn.functional.batch_norm(_t(x), _t(rm), _t(rv), _t(w), _t(b), False, 0.1, 1e-5)
    _check(ops.batch_norm(x, w, b, rm, rv, False), want.numpy(), dtype)
    np.testing.assert_array_equal(rm, before[0])
    np.testing.assert_array_equal(rv, before[1])


@DTYPES
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_scales_kept_values_exactly_as_torch(rng, dtype, p):
    x = rng.standard_normal((7, 17)).astype(dtype)
    torch_scale = torch.nn.functional.dropout(torch.ones(10000, dtype=_t(x).dtype), p).max()
    y = ops.dropout(x, p, 12345)
    kept = y != 0
    assert kept.any() and (~kept).any()
    np.testing.assert_array_equal(y[kept], x[kept] * torch_scale.numpy())
    g = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(
        ops.dropout_backward(g, p, 12345), np.where(kept, g * torch_scale.numpy(), 0)
    )


# --- the dropout mask ------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.9])
def test_dropout_drops_about_p_of_the_elements(p):
    n = 200_000
    dropped = np.mean(ops.dropout(np.ones(n), p, 7) == 0)
    # Five standard deviations of a binomial fraction: fails by chance once in ~3.5 million.
    assert abs(dropped - p) <= 5 * np.sqrt(p * (1 - p) / n)


def test_dropout_mask_depends_on_the_key_alone(rng):
    x = rng.standard_normal((33, 17)) + 5  # no zeros, so zeros are the mask
    a, b = ops.dropout(x, 0.5, 99), ops.dropout(x, 0.5, 99)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a == 0, ops.dropout(x, 0.5, 100) == 0)
    # The mask follows the flat index, not the shape.
    np.testing.assert_array_equal(ops.dropout(x.ravel(), 0.5, 99), a.ravel())


@DTYPES
def test_dropout_with_p_zero_is_the_identity(rng, dtype):
    x = rng.standard_normal((7, 17)).astype(dtype)
    y = ops.dropout(x, 0.0, 3)
    np.testing.assert_array_equal(y, x)
    assert y is not x and not np.shares_memory(x, y)
    np.testing.assert_array_equal(ops.dropout_backward(x, 0.0, 3), x)


@DTYPES
@pytest.mark.parametrize("size", [1, 3, 17, 33, 100_003])
def test_dropout_mask_of_cpp_equals_the_reference_bitwise(rng, dtype, size):
    x = rng.standard_normal(size).astype(dtype)
    for p, key in ((0.5, 0), (0.25, 2**64 - 1), (0.9, ops.dropout_key(1, 2, 3))):
        np.testing.assert_array_equal(ops.dropout(x, p, key), reference.dropout(x, p, key))
        np.testing.assert_array_equal(
            ops.dropout_backward(x, p, key), reference.dropout_backward(x, p, key)
        )


@pytest.mark.parametrize(
    "triple", [(0, 0, 0), (1, 2, 3), (2**64 - 1, 5, 2**63), (42, 2**64 - 1, 2**64 - 1)]
)
def test_dropout_key_of_cpp_equals_the_reference(triple):
    assert ops.dropout_key(*triple) == reference.dropout_key(*triple)
    assert 0 <= ops.dropout_key(*triple) < 2**64


def test_dropout_keys_differ_between_layers_and_passes():
    keys = {
        ops.dropout_key(s, layer, step) for s in range(3) for layer in range(4) for step in range(5)
    }
    assert len(keys) == 60


def test_results_do_not_depend_on_the_thread_count(rng):
    x, w, b, g = _inputs(rng, (517, 67), np.float64)
    before = fb.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            fb.set_num_threads(threads)
            rm, rv = np.zeros(67), np.ones(67)
            results.append(
                [
                    ops.layer_norm(x, w, b),
                    *ops.layer_norm_backward(x, w, g),
                    ops.rms_norm(x, w),
                    *ops.rms_norm_backward(x, w, g),
                    ops.batch_norm(x, w, b, rm, rv, True),
                    rm,
                    rv,
                    *ops.batch_norm_backward(x, w, g),
                    ops.dropout(x, 0.3, 5),
                ]
            )
    finally:
        fb.set_num_threads(before)
    for other in results[1:]:
        for a, c in zip(results[0], other):
            np.testing.assert_array_equal(a, c)


# --- errors ----------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    x, w = np.ones((4, 3)), np.ones(3)
    rm, rv = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match="x must be 2-D"):
        ops.layer_norm(np.ones(3), w, w)
    with pytest.raises(ValueError, match="C >= 1"):
        ops.layer_norm(np.ones((3, 0)), np.ones(0), np.ones(0))
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        ops.layer_norm(x, np.ones(4), w)
    with pytest.raises(ValueError, match=r"grad must have shape \(4, 3\)"):
        ops.layer_norm_backward(x, w, np.ones((3, 3)))
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        ops.layer_norm(x, w, w, eps=0)
    with pytest.raises(TypeError, match="real numbers"):
        ops.layer_norm(x.astype(complex), w, w)
    with pytest.raises(TypeError, match="eps must be a real number, got NoneType"):
        ops.layer_norm(x, w, w, eps=None)
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        ops.rms_norm(x, w, eps=-1e-3)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        ops.rms_norm_backward(x, np.ones(2), x)
    with pytest.raises(ValueError, match=r"grad must have shape \(4, 3\)"):
        reference.rms_norm_backward(x, w, np.ones(3))
    with pytest.raises(ValueError, match="at least 2 rows"):
        ops.batch_norm(np.ones((1, 3)), w, w, rm, rv, True)
    with pytest.raises(ValueError, match="at least 2 rows"):
        ops.batch_norm_backward(np.ones((1, 3)), w, np.ones((1, 3)))
    ops.batch_norm(np.ones((1, 3)), w, w, rm, rv, False)  # one row is fine in inference
    with pytest.raises(TypeError, match="running_mean must have x's dtype float64"):
        ops.batch_norm(x, w, w, rm.astype(np.float32), rv, True)
    with pytest.raises(TypeError, match="running_var must be a NumPy array"):
        ops.batch_norm(x, w, w, rm, [1.0, 1.0, 1.0], True)
    with pytest.raises(ValueError, match=r"running_var must have shape \(3,\)"):
        ops.batch_norm(x, w, w, rm, np.ones(4), True)
    frozen = rv.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="running_var must be writeable"):
        ops.batch_norm(x, w, w, rm, frozen, True)
    with pytest.raises(ValueError, match=r"momentum must be in \(0, 1\]"):
        ops.batch_norm(x, w, w, rm, rv, True, momentum=1.5)
    for p in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"p must"):
            ops.dropout(x, p, 0)
    with pytest.raises(TypeError, match="p must be a real number"):
        ops.dropout(x, "0.5", 0)
    with pytest.raises(ValueError, match=r"key must be in \[0, 2\*\*64\)"):
        ops.dropout(x, 0.5, -1)
    with pytest.raises(TypeError, match="key must be an int"):
        ops.dropout_backward(x, 0.5, 1.5)
    with pytest.raises(ValueError, match="seed must be in"):
        reference.dropout_key(2**64, 0, 0)


def test_core_checks_direct_calls():
    x, layer_norm = np.ones((4, 3)), fb._core.NormKind.LayerNorm
    with pytest.raises(TypeError, match="float32 or float64"):
        fb._core.row_norm(layer_norm, x.astype(np.int64), np.ones(3), np.ones(3), 1e-5)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        fb._core.row_norm(layer_norm, x, np.ones(3), np.ones(2), 1e-5)
    with pytest.raises(ValueError, match="LayerNorm takes a bias array, got None"):
        fb._core.row_norm(layer_norm, x, np.ones(3), None, 1e-5)
    with pytest.raises(ValueError, match="RMSNorm has no bias: pass None"):
        fb._core.row_norm(fb._core.NormKind.RMSNorm, x, np.ones(3), np.ones(3), 1e-5)
    with pytest.raises(ValueError, match="at least 2 rows"):
        fb._core.batch_norm(x[:1], np.ones(3), np.ones(3), np.zeros(3), np.ones(3), True, 0.1, 1e-5)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        fb._core.dropout(x, 1.0, 0)


def core_message(call):
    with pytest.raises(ValueError) as raised:
        call()
    return str(raised.value)


@pytest.mark.parametrize(
    "kind,setting,value,op",
    [
        (
            "BatchNorm",
            "momentum",
            1.5,
            lambda x, w: fb._core.batch_norm(x, w, w, w, w, True, 1.5, 1e-5),
        ),
        ("BatchNorm", "eps", 0.0, lambda x, w: fb._core.batch_norm(x, w, w, w, w, True, 0.1, 0.0)),
        (
            "LayerNorm",
            "eps",
            -1.0,
            lambda x, w: fb._core.row_norm(fb._core.NormKind.LayerNorm, x, w, w, -1.0),
        ),
        (
            "RMSNorm",
            "eps",
            -1.0,
            lambda x, w: fb._core.row_norm(fb._core.NormKind.RMSNorm, x, w, None, -1.0),
        ),
        ("Dropout", "p", 1.0, lambda x, w: fb._core.dropout(x, 1.0, 0)),
    ],
)
def test_a_network_and_the_ops_word_a_bad_setting_alike(kind, setting, value, op):
    """The network's plan and the core's ops run the same check of a layer's setting."""
    x, w = np.ones((4, 3)), np.ones(3)
    good = {"eps": 1e-5, "momentum": 0.1} if kind == "BatchNorm" else {}
    settings = {**good, setting: value}
    if hasattr(fb._core.NormKind, kind):  # a row norm: one layer kind, the norm a setting
        settings["norm"], kind = getattr(fb._core.NormKind, kind), "RowNorm"
    layer = fb._core.LayerSpec(getattr(fb._core.LayerKind, kind), 3, 3, **settings)
    from_plan = core_message(
        lambda: fb._core.Network64([layer], fb._core.Loss.MSE, fb._core.Reduction.Mean)
    )
    from_op = core_message(lambda: op(x, w))
    assert from_plan.endswith(": " + from_op) and from_op.startswith(f"{setting} must be")


def test_a_network_and_the_ops_refuse_one_row_of_batch_statistics_alike():
    x, w = np.ones((1, 3)), np.ones(3)
    net = fb.Network([fb.Dense(3, 3), fb.BatchNorm(3)], fb.MSELoss(), dtype="float64")
    messages = {
        core_message(lambda: net.backward(x, x)),
        core_message(lambda: fb._core.batch_norm(x, w, w, w.copy(), w.copy(), True, 0.1, 1e-5)),
        core_message(lambda: fb._core.batch_norm_backward(x, w, x, 1e-5)),
    }
    assert messages == {
        "BatchNorm needs batches of at least 2 rows in training (one row gives no variance), got 1"
    }


# --- hypothesis: ops against the reference, extremes included --------------------------


def _values(dtype, limit):
    info, limit = np.finfo(dtype), float(dtype(limit))
    special = [0.0, 1e-30, -1e-30, float(info.smallest_subnormal), 1.0, -1.0, limit, -limit]
    ordinary = st.floats(-limit, limit, width=32 if dtype == np.float32 else 64)
    return st.one_of(ordinary, st.sampled_from([float(dtype(v)) for v in special]))


@st.composite
def _norm_case(draw, dtype, min_rows, limit=1e30):
    m, n = draw(st.integers(min_rows, 9)), draw(st.integers(1, 9))
    x = draw(arrays(dtype, (m, n), elements=_values(dtype, limit)))
    shape = draw(st.sampled_from(["any", "constant rows", "constant columns"]))
    if shape == "constant rows":
        x[:] = x[:, :1]
    elif shape == "constant columns":
        x[:] = x[:1]
    moderate = st.floats(-10, 10, width=32)  # exact in both dtypes
    w = draw(arrays(dtype, n, elements=moderate))
    b = draw(arrays(dtype, n, elements=moderate))
    g = draw(arrays(dtype, (m, n), elements=st.one_of(moderate, st.just(1e-30))))
    return x, w, b, g


def _error_bounds(x, w, g, dtype, axis):
    """Rounding bounds of (y, dx, dw, db) between two correct implementations: the
    statistics summed in a different order in double, then (float32) the mean and rstd
    saved in the dtype and every result rounded to it. Scaled by the condition of the
    normalisation, max|x| * rstd, which is large when a spread is tiny next to the mean."""
    eps_t, eps_d = float(np.finfo(dtype).eps), float(np.finfo(np.float64).eps)
    xd, wd, gd = (a.astype(np.float64) for a in (x, w, g))
    count = x.shape[axis]
    mean = xd.mean(axis=axis, keepdims=True)
    rstd = 1 / np.sqrt(((xd - mean) ** 2).mean(axis=axis, keepdims=True) + 1e-5)
    cond = np.abs(xd).max(axis=axis, keepdims=True) * rstd + 1
    err_xhat = 8 * (eps_t + count * eps_d) * cond
    y_bound = err_xhat * np.abs(wd) + 2 * eps_t * (np.sqrt(count) * np.abs(wd) + 10)
    big_g = np.abs(gd * wd).max(axis=axis, keepdims=True) + 1e-300
    dx_bound = 8 * rstd * big_g * (err_xhat * (np.sqrt(count) + 1) + count * eps_d)
    dw_bound = (np.abs(gd) * (err_xhat + 4 * eps_t * np.sqrt(count))).sum(axis=0)
    db_bound = 4 * (eps_t + x.shape[0] * eps_d) * np.abs(gd).sum(axis=0)
    tiny = 8 * float(np.finfo(dtype).smallest_subnormal)
    return [bound + tiny for bound in (y_bound, dx_bound, dw_bound, db_bound)]


def _assert_within(got, want, bound, dtype):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype == np.dtype(dtype)
    assert np.isfinite(got).all() and np.isfinite(want).all()
    bound = bound + 2 * float(np.finfo(dtype).eps) * np.abs(want)
    assert (np.abs(got.astype(np.float64) - want) <= bound).all(), np.max(
        np.abs(got.astype(np.float64) - want) - bound
    )


@DTYPES
def test_layer_norm_property_against_reference(dtype):
    @PROPERTY
    @given(_norm_case(dtype, 1))
    def check(case):
        x, w, b, g = case
        y_bound, dx_bound, dw_bound, db_bound = _error_bounds(x, w, g, dtype, 1)
        _assert_within(ops.layer_norm(x, w, b), reference.layer_norm(x, w, b), y_bound, dtype)
        for got, want, bound in zip(
            ops.layer_norm_backward(x, w, g),
            reference.layer_norm_backward(x, w, g),
            (dx_bound, dw_bound, db_bound),
        ):
            _assert_within(got, want, bound, dtype)

    check()


@DTYPES
def test_rms_norm_property_against_reference(dtype):
    @PROPERTY
    @given(_norm_case(dtype, 1))
    def check(case):
        x, w, _, g = case
        tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)
        y = reference.rms_norm(x, w, 1e-5)
        scale = np.abs(y).max(initial=1.0)
        np.testing.assert_allclose(ops.rms_norm(x, w, 1e-5) / scale, y / scale, **tol)
        for got, want in zip(
            ops.rms_norm_backward(x, w, g, 1e-5), reference.rms_norm_backward(x, w, g, 1e-5)
        ):
            scale = np.abs(want.astype(np.float64)).max(initial=1.0)
            np.testing.assert_allclose(got / scale, want / scale, **tol)

    check()


@DTYPES
def test_batch_norm_property_against_reference(dtype):
    @PROPERTY
    # float32's running variance overflows for values beyond about 1e19, as torch's does.
    @given(
        _norm_case(dtype, 2, 1e18 if dtype == np.float32 else 1e30),
        st.sampled_from([0.1, 0.9, 1.0]),
    )
    def check(case, momentum):
        x, w, b, g = case
        y_bound, dx_bound, dw_bound, db_bound = _error_bounds(x, w, g, dtype, 0)
        n = x.shape[1]
        stats = [np.zeros(n, dtype), np.ones(n, dtype)]
        ref_stats = [s.copy() for s in stats]
        got = ops.batch_norm(x, w, b, *stats, True, momentum)
        _assert_within(
            got, reference.batch_norm(x, w, b, *ref_stats, True, momentum), y_bound, dtype
        )
        var = np.var(x.astype(np.float64), axis=0, ddof=1)
        var_bound = 8 * (float(np.finfo(dtype).eps) + x.shape[0] * 1.2e-16) * (var + 1)
        _assert_within(
            stats[0],
            ref_stats[0],
            1e-300 + 8 * float(np.finfo(dtype).eps) * np.abs(x.astype(np.float64)).max(axis=0),
            dtype,
        )
        _assert_within(stats[1], ref_stats[1], var_bound, dtype)
        for got, want, bound in zip(
            ops.batch_norm_backward(x, w, g),
            reference.batch_norm_backward(x, w, g),
            (dx_bound, dw_bound, db_bound),
        ):
            _assert_within(got, want, bound, dtype)
        # Inference from the running statistics just computed.
        infer = ops.batch_norm(x, w, b, *stats, False)
        _assert_within(
            infer,
            reference.batch_norm(x, w, b, *stats, False),
            4
            * float(np.finfo(dtype).eps)
            * (
                np.abs(x.astype(np.float64) - stats[0]) / np.sqrt(stats[1] + 1e-5) * np.abs(w)
                + np.abs(b)
                + 1
            ),
            dtype,
        )

    check()


@DTYPES
def test_dropout_property_against_reference(dtype):
    @PROPERTY
    @given(
        arrays(
            dtype,
            st.tuples(st.integers(1, 9), st.integers(1, 9)),
            elements=_values(dtype, float(np.finfo(dtype).max)),
        ),
        st.floats(0, 0.99),
        st.integers(0, 2**64 - 1),
    )
    def check(x, p, key):
        with np.errstate(over="ignore"):
            np.testing.assert_array_equal(ops.dropout(x, p, key), reference.dropout(x, p, key))
            np.testing.assert_array_equal(
                ops.dropout_backward(x, p, key), reference.dropout_backward(x, p, key)
            )

    check()


# --- the layer classes -----------------------------------------------------------------


@DTYPES
@pytest.mark.parametrize("shape", SHAPES)
def test_layer_norm_layer_numpy_maths_match_torch(rng, shape, dtype):
    x, w, b, g = _inputs(rng, shape, dtype)
    layer = fb.LayerNorm(shape[1], eps=1e-3)
    layer.W, layer.b = w, b
    module = layer.to_torch(torch, _t(x).dtype)
    tx = _t(x, True)
    ty = module(tx)
    ty.backward(_t(g))
    y, cache = layer.forward_numpy(x, {"W": w, "b": b}, {}, True, None)
    _check(y, ty.detach().numpy(), dtype)
    dx, grads = layer.backward_numpy(g, cache, {"W": w, "b": b})
    _check(dx, tx.grad.numpy(), dtype)
    _check(grads["W"], module.weight.grad.numpy(), dtype)
    _check(grads["b"], module.bias.grad.numpy(), dtype)


@DTYPES
@pytest.mark.parametrize("shape", SHAPES)
def test_rms_norm_layer_numpy_maths_match_torch(rng, shape, dtype):
    x, w, _, g = _inputs(rng, shape, dtype)
    layer = fb.RMSNorm(shape[1])
    layer.W = w
    module = layer.to_torch(torch, _t(x).dtype)
    assert module.eps is None and module.normalized_shape == (shape[1],)
    tx = _t(x, True)
    ty = module(tx)
    ty.backward(_t(g))
    y, cache = layer.forward_numpy(x, {"W": w}, {}, True, None)
    _check(y, ty.detach().numpy(), dtype)
    dx, grads = layer.backward_numpy(g, cache, {"W": w})
    assert list(grads) == ["W"]
    _check(dx, tx.grad.numpy(), dtype)
    _check(grads["W"], module.weight.grad.numpy(), dtype)


@DTYPES
@pytest.mark.parametrize("shape", BATCH_SHAPES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_layer_numpy_maths_match_torch(rng, shape, dtype, training):
    x, w, b, g = _inputs(rng, shape, dtype)
    layer = fb.BatchNorm(shape[1], eps=1e-4, momentum=0.3)
    layer.W, layer.b = w, b
    layer.running_mean = rng.standard_normal(shape[1])
    layer.running_var = rng.uniform(0.5, 2, shape[1])
    module = layer.to_torch(torch, _t(x).dtype).train(training)
    state = layer.state_init(dtype)
    tx = _t(x, True)
    ty = module(tx)
    ty.backward(_t(g))
    y, cache = layer.forward_numpy(x, {"W": w, "b": b}, state, training, None)
    _check(y, ty.detach().numpy(), dtype)
    _check(state["running_mean"], module.running_mean.numpy(), dtype)
    _check(state["running_var"], module.running_var.numpy(), dtype)
    dx, grads = layer.backward_numpy(g, cache, {"W": w, "b": b})
    _check(dx, tx.grad.numpy(), dtype)
    _check(grads["W"], module.weight.grad.numpy(), dtype)
    _check(grads["b"], module.bias.grad.numpy(), dtype)


@DTYPES
def test_dropout_layer_numpy_maths(rng, dtype):
    x, g = rng.standard_normal((33, 5)).astype(dtype), rng.standard_normal((33, 5)).astype(dtype)
    layer = fb.Dropout(0.4)
    y, cache = layer.forward_numpy(x, {}, {}, True, 77)
    np.testing.assert_array_equal(y, ops.dropout(x, 0.4, 77))
    dx, grads = layer.backward_numpy(g, cache, {})
    np.testing.assert_array_equal(dx, ops.dropout_backward(g, 0.4, 77))
    assert grads == {}
    # Inference is torch's: the input unchanged.
    y, cache = layer.forward_numpy(x, {}, {}, False, 77)
    np.testing.assert_array_equal(y, layer.to_torch(torch, None).eval()(_t(x)).numpy())
    np.testing.assert_array_equal(layer.backward_numpy(g, cache, {})[0], g)


def test_layer_protocol_basics():
    ln, bn, do = fb.LayerNorm(4), fb.BatchNorm(3, momentum=0.2), fb.Dropout(0.25)
    assert ln.param_shapes() == {"W": (4,), "b": (4,)} and ln.n_params == 8
    assert bn.param_shapes() == {"W": (3,), "b": (3,)} and do.param_shapes() == {}
    assert ln.state_init(np.float32) == {} and do.state_init(np.float64) == {}
    state = bn.state_init(np.float32)
    assert state["running_mean"].dtype == np.float32
    np.testing.assert_array_equal(state["running_mean"], np.zeros(3))
    np.testing.assert_array_equal(state["running_var"], np.ones(3))
    assert ln.W is None and ln.b is None  # allocated when the layer joins a network
    fb.Network([fb.Dense(2, 4), ln], fb.MSELoss())
    np.testing.assert_array_equal(ln.W, np.ones(4))
    np.testing.assert_array_equal(ln.b, np.zeros(4))
    assert ln.out_width(4) == ln.out_width(None) == 4 and do.out_width(7) == 7
    with pytest.raises(ValueError, match="takes rows of width 4, got 5"):
        ln.out_width(5)
    with pytest.raises(ValueError, match="cannot be the first layer"):
        do.out_width(None)
    for layer, kind in ((ln, "LayerNorm"), (bn, "BatchNorm"), (do, "Dropout")):
        config = layer.config()
        rebuilt = fb.nn.layers.LAYER_TYPES[config.pop("type")](**config)
        assert rebuilt.config() == layer.config() and repr(rebuilt) == repr(layer)
        enum = fb._core.NormKind if layer is ln else fb._core.LayerKind
        assert layer.kind is getattr(enum, kind)
    assert (fb.Dropout.torch_type, fb.LayerNorm.torch_type, fb.BatchNorm.torch_type) == (
        "Dropout",
        "LayerNorm",
        "BatchNorm1d",
    )


def test_layer_arguments_are_checked():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        fb.Dropout(1.0)
    with pytest.raises(TypeError, match="n must be an int"):
        fb.LayerNorm(3.0)
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        fb.LayerNorm(3, eps=-1)
    with pytest.raises(ValueError, match=r"momentum must be in \(0, 1\]"):
        fb.BatchNorm(3, momentum=0)
    with pytest.raises(ValueError, match=r"n must be in \[1, 2\*\*63 - 1\], got 0"):
        fb.RMSNorm(0)
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        fb.RMSNorm(3, eps=-1e-6)
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        fb.RMSNorm(3, eps=float("nan"))
    ln = fb.LayerNorm(3)
    with pytest.raises(ValueError, match=r"W must have shape \(3,\)"):
        ln.W = np.ones(4)
    with pytest.raises(ValueError, match="running_var contains NaN"):
        fb.BatchNorm(3).running_var = [1.0, np.nan, 1.0]
    with pytest.raises(ValueError, match="at least 2 rows"):
        fb.BatchNorm(3).forward_numpy(
            np.ones((1, 3)),
            {"W": np.ones(3), "b": np.zeros(3)},
            fb.BatchNorm(3).state_init(np.float64),
            True,
            None,
        )


def test_assigned_values_are_kept_and_copied():
    ln = fb.LayerNorm(3)
    w = np.array([1.0, 2.0, 3.0])
    ln.W = w
    w[0] = 9
    np.testing.assert_array_equal(ln.W, [1.0, 2.0, 3.0])
    ln.b = [5, 5, 5]
    np.testing.assert_array_equal(ln.b, [5, 5, 5])
    assert ln.dW is None and ln.db is None
    bn = fb.BatchNorm(3)
    bn.running_var = [2.0, 3.0, 4.0]
    net = fb.Network([fb.Dense(2, 3), ln, bn], fb.MSELoss(), dtype="float32")
    np.testing.assert_array_equal(ln.W, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(ln.b, [5, 5, 5])
    np.testing.assert_array_equal(bn.running_var, [2.0, 3.0, 4.0])
    np.testing.assert_array_equal(bn.running_mean, [0.0, 0.0, 0.0])
    assert ln.W.dtype == bn.running_var.dtype == np.float32
    assert np.shares_memory(ln.W, net.params) and ln.dW.shape == (3,)


def test_to_torch_and_from_torch_copy_parameters_and_statistics(rng):
    bn = fb.BatchNorm(5, eps=1e-3, momentum=0.25)
    bn.W, bn.b = rng.standard_normal(5), rng.standard_normal(5)
    bn.running_mean, bn.running_var = rng.standard_normal(5), rng.uniform(1, 2, 5)
    module = bn.to_torch(torch, torch.float64)
    assert (module.eps, module.momentum, module.affine, module.track_running_stats) == (
        1e-3,
        0.25,
        True,
        True,
    )
    for name in ("weight", "bias", "running_mean", "running_var"):
        attr = {"weight": "W", "bias": "b"}.get(name, name)
        np.testing.assert_array_equal(getattr(module, name).detach().numpy(), getattr(bn, attr))
    back = fb.BatchNorm.from_torch(module)
    with torch.no_grad():
        module.weight.add_(1)
        module.running_var.add_(1)
    for attr in ("W", "b", "running_mean", "running_var"):
        np.testing.assert_array_equal(getattr(back, attr), getattr(bn, attr))
    assert back.config() == bn.config()

    ln = fb.LayerNorm(4, eps=1e-4)
    ln.W, ln.b = rng.standard_normal(4), rng.standard_normal(4)
    module = ln.to_torch(torch, torch.float32)
    assert module.weight.dtype == torch.float32 and module.normalized_shape == (4,)
    back = fb.LayerNorm.from_torch(module)
    np.testing.assert_array_equal(back.W, ln.W.astype(np.float32))
    assert back.config() == ln.config()

    rms = fb.RMSNorm(4, eps=1e-4)
    rms.W = rng.standard_normal(4)
    module = rms.to_torch(torch, torch.float64)
    assert type(module) is torch.nn.RMSNorm and module.eps == 1e-4
    back = fb.RMSNorm.from_torch(module)
    np.testing.assert_array_equal(back.W, rms.W)
    assert back.config() == rms.config() == {"type": "RMSNorm", "n": 4, "eps": 1e-4}
    assert fb.RMSNorm.from_torch(torch.nn.RMSNorm(3)).eps is None
    with pytest.raises(ValueError, match="one dimension with a weight"):
        fb.RMSNorm.from_torch(torch.nn.RMSNorm(3, elementwise_affine=False))
    with pytest.raises(TypeError, match="takes a torch.nn.RMSNorm, got LayerNorm"):
        fb.RMSNorm.from_torch(torch.nn.LayerNorm(3))

    assert fb.Dropout.from_torch(torch.nn.Dropout(0.3)).p == 0.3
    with pytest.raises(TypeError, match="takes a torch.nn.LayerNorm, got Linear"):
        fb.LayerNorm.from_torch(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="one dimension"):
        fb.LayerNorm.from_torch(torch.nn.LayerNorm((2, 3)))
    with pytest.raises(ValueError, match="track_running_stats=True"):
        fb.BatchNorm.from_torch(torch.nn.BatchNorm1d(3, momentum=None))


# --- ONNX ------------------------------------------------------------------------------


def _run_onnx(layer, x, opset):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")

    nodes, inits = layer.onnx_nodes(onnx, "out", "x", opset, x.dtype)
    elem = onnx.helper.np_dtype_to_tensor_dtype(x.dtype)
    graph = onnx.helper.make_graph(
        nodes,
        "g",
        [onnx.helper.make_tensor_value_info("x", elem, ["batch", x.shape[1]])],
        [onnx.helper.make_tensor_value_info("out", elem, ["batch", x.shape[1]])],
        initializer=inits,
    )
    model = onnx.helper.make_model_gen_version(
        graph, opset_imports=[onnx.helper.make_opsetid("", opset)]
    )
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("opset", [9, 13, 17, 18])
def test_layer_onnx_nodes_compute_the_inference_forward(rng, opset):
    # Before joining a network the layers hold float64 arrays, so the graph is float64.
    x = rng.standard_normal((7, 17)) * 2 + 1
    ln, bn = fb.LayerNorm(17, eps=1e-3), fb.BatchNorm(17, eps=1e-3)
    for layer in (ln, bn):
        layer.W, layer.b = rng.standard_normal(17), rng.standard_normal(17)
    bn.running_mean, bn.running_var = rng.standard_normal(17), rng.uniform(0.5, 2, 17)
    for layer in (ln, bn):
        want, _ = layer.forward_numpy(
            x, {"W": layer.W, "b": layer.b}, layer.state_init(np.float64), False, None
        )
        np.testing.assert_allclose(_run_onnx(layer, x, opset), want, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(_run_onnx(fb.Dropout(0.5), x, opset), x)
    for rms in (fb.RMSNorm(17, eps=1e-3), fb.RMSNorm(17)):
        rms.W = rng.standard_normal(17)
        want, _ = rms.forward_numpy(x, {"W": rms.W}, {}, False, None)
        np.testing.assert_allclose(_run_onnx(rms, x, opset), want, rtol=1e-9, atol=1e-12)
