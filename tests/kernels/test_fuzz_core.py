"""Fuzzing fastbp._core directly: arguments of random dtypes, shapes (empty,
huge broadcast views), layouts (strided, transposed, read-only) and values (NaN, inf)
reach every binding without the Python layer's checks. Each call must return or raise
TypeError, ValueError or FloatingPointError; a crash, or under .ci/sanitize.sh a memory
or undefined-behaviour error, fails the run. FASTBP_FUZZ_EXAMPLES sets the number of
examples (the sanitizer job runs more)."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fastbp import _core
from fbhelpers import sgd_core_args

EXAMPLES = int(os.environ.get("FASTBP_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None)
CLEAN = (TypeError, ValueError, FloatingPointError)
DTYPES = ["float32", "float64", "float16", "int64", "int32", "uint8", "bool", "complex64", "object"]
VALUES = [0.0, -0.0, 1.0, -1.0, 0.5, 3.0, 1e-40, 1e30, -1e30, np.nan, np.inf, -np.inf]


@st.composite
def arrays(draw):
    """An array with one of DTYPES, 0 to 3 dimensions of size 0 to 5 (or a huge size as a
    zero-stride broadcast view), and maybe transposed, strided or read-only."""
    dtype = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 5), max_size=3)))
    values = draw(st.lists(st.sampled_from(VALUES), min_size=1, max_size=8))
    n = int(np.prod(shape))
    with np.errstate(all="ignore"):
        base = np.resize(np.array(values), n)
        a = (base.astype(dtype) if dtype != "object" else base.astype(object)).reshape(shape)
    layout = draw(st.sampled_from(["plain", "transposed", "strided", "readonly", "huge"]))
    if layout == "transposed":
        a = a.T
    elif layout == "strided" and a.ndim:
        a = np.repeat(a, 2, axis=0)[::2]
    elif layout == "readonly":
        a.flags.writeable = False
    elif layout == "huge":
        # dimensions past 32-bit indices, the byte count still within NumPy's limit
        a = np.broadcast_to(np.ones(1, dtype=a.dtype), (2**32 + 1, 2**26)[: max(a.ndim, 1)])
    return a


def args():
    """An argument where an array is expected: usually an array, sometimes not."""
    return st.one_of(
        arrays(),
        arrays(),
        arrays(),
        st.sampled_from([None, 3, 2.5, "x", [1.0, 2.0], [[1.0], [2.0]]]),
    )


def call(fn, *a):
    try:
        fn(*a)
    except CLEAN:
        pass


ACTS = list(_core.Act.__members__.values())
LOSSES = [_core.Loss.MSE, _core.Loss.SoftmaxCrossEntropy, _core.Loss.BCEWithLogits]
REDUCTIONS = [_core.Reduction.Mean, _core.Reduction.Sum]


@st.composite
def operands(draw):
    """Three arguments for a kernel: a (m, k), b (k, n), c (n,) of one float dtype, which
    fit matmul and linear, or each anything from args()."""
    if draw(st.booleans()):
        return draw(args()), draw(args()), draw(args())
    dtype = draw(st.sampled_from(["float32", "float64"]))
    m, k, n = (draw(st.integers(1, 9)) for _ in range(3))
    pool = st.sampled_from(VALUES)
    out = []
    for shape in ((m, k), (k, n), (n,)):
        size = int(np.prod(shape))
        values = draw(st.lists(pool, min_size=size, max_size=size))
        with np.errstate(all="ignore"):
            out.append(np.array(values, dtype=dtype).reshape(shape))
    return out


@FUZZ
@given(
    abc=operands(),
    flags=st.tuples(st.booleans(), st.booleans()),
    act=st.sampled_from(ACTS),
    loss=st.sampled_from(LOSSES),
    reduction=st.sampled_from(REDUCTIONS),
    hyper=st.tuples(
        st.sampled_from([0.1, -1.0, 0.0, np.nan, np.inf, 1e300]),
        st.sampled_from([0.0, 0.9, -1.0, np.nan]),
    ),
)
def test_fuzz_kernels(abc, flags, act, loss, reduction, hyper):
    a, b, c = abc
    call(_core.matmul, a, b, *flags)
    call(_core.linear, a, b, c)
    call(_core.activation, act, a)
    call(_core.activation, act, a, *hyper)
    call(_core.activation_backward, act, a, b)
    call(_core.activation_backward, act, a, b, c, *hyper)
    call(_core.softmax, a)
    call(_core.loss, loss, reduction, a, b, flags[0])
    call(_core.all_finite, a)
    lr, momentum = hyper
    call(
        _core.optimizer_step,
        _core.Optimizer.SGD,
        [lr, momentum, 0.0, 0.0, float(flags[1])],
        a,
        b,
        [c],
        1 if flags[0] else 2,
    )


# Sizes are tiny, or so large that the parameter count overflows int64 or exceeds what a
# std::vector can hold (both refused before allocating). Sizes in between would be
# honest requests for terabytes, which the fuzzer must not make of a shared machine.
SIZES = [-(2**63), -1, 0, 1, 2, 3, 2**62, 2**63 - 1]
KINDS = list(_core.LayerKind.__members__.values())
layer_specs = st.lists(
    st.builds(
        _core.LayerSpec,
        st.sampled_from(KINDS),
        st.sampled_from(SIZES),
        st.sampled_from(SIZES),
        st.sampled_from(ACTS),
        st.sampled_from([0.0, 0.5, np.nan, np.inf]),
        st.sampled_from([0.0, 20.0, -np.inf]),
        p=st.sampled_from([-1.0, 0.0, 0.5, 1.0, np.nan]),
        eps=st.sampled_from([-1.0, 0.0, 1e-5, np.inf]),
        momentum=st.sampled_from([0.0, 0.1, 1.0, 2.0]),
    ),
    max_size=4,
)


@FUZZ
@given(specs=layer_specs, loss=st.sampled_from(LOSSES), reduction=st.sampled_from(REDUCTIONS))
def test_fuzz_network_construction(specs, loss, reduction):
    for cls in (_core.Network32, _core.Network64):
        call(cls, specs, loss, reduction)


@st.composite
def batches(draw, dtype):
    """(X, T, order, velocity) for the 3 -> 2 network below: each either valid in shape
    and dtype (values still drawn, NaN and inf included) or anything from args()."""
    rows = draw(st.integers(0, 9))
    out = []
    for name, shape, kind in (
        ("x", (rows, 3), dtype),
        ("t", (rows, 2), dtype),
        ("order", (rows,), "int64"),
        ("v", (26,), dtype),
    ):
        if draw(st.booleans()):
            out.append(draw(args()))
            continue
        if name == "t" and draw(st.booleans()):
            shape, kind = (rows,), "int64"  # class labels, maybe out of range
        if name == "order":
            pool = (
                st.integers(-1, rows) if draw(st.booleans()) else st.integers(0, max(rows - 1, 0))
            )
        elif kind == "int64":
            pool = st.integers(-1, 2)
        else:
            pool = st.sampled_from(VALUES[:8] + ([np.nan, np.inf] if draw(st.booleans()) else []))
        values = draw(
            st.lists(
                pool, min_size=max(int(np.prod(shape)), 1), max_size=max(int(np.prod(shape)), 1)
            )
        )
        with np.errstate(all="ignore"):
            out.append(np.array(values[: int(np.prod(shape))], dtype=kind).reshape(shape))
    return out


@FUZZ
@given(
    data=st.data(),
    batch=st.sampled_from([-1, 0, 1, 2, 7]),
    dtype=st.sampled_from(["float32", "float64"]),
    loss=st.sampled_from(LOSSES),
    first=st.booleans(),
    lr=st.sampled_from([0.1, 1e30]),
)
def test_fuzz_network_methods(data, batch, dtype, loss, first, lr):
    """A small network (3 -> 2) fed near-valid or arbitrary arguments; with lr 1e30 the
    valid calls also diverge, so the FloatingPointError path is fuzzed too."""
    x, t, order, v = data.draw(batches(dtype))
    cls = _core.Network32 if dtype == "float32" else _core.Network64
    dense, act = _core.LayerKind.Dense, _core.LayerKind.Activation
    net = cls(
        [
            _core.LayerSpec(dense, 3, 4),
            _core.LayerSpec(act, 4, 4, _core.Act.Tanh),
            _core.LayerSpec(act, 4, 4, _core.Act.ReLU),
            _core.LayerSpec(dense, 4, 2),
        ],
        loss,
        _core.Reduction.Mean,
    )
    hyper = (lr, 0.9, 0.0, False, 0.0, first)
    call(net.forward, x)
    call(net.check, x, t)
    call(net.loss, x, t)
    call(net.backward, x, t)
    call(net.step, *sgd_core_args(v, *hyper))
    call(net.train_step, x, t, *sgd_core_args(v, *hyper))
    call(net.train_epoch, x, t, order, batch, *sgd_core_args(v, *hyper))
