"""Every activation against PyTorch (values, gradients through a network, SGD steps),
gradcheck, its ops against fastbp.reference (hypothesis, extremes included), NaN, inf and
signed zeros on every SIMD path, settings validation, save/load, and torch round trips."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastbp as fb
from fastbp import _core, _names
from fastbp.nn import activations
from fbhelpers import SIMD_PATHS, run_on_path

torch = pytest.importorskip("torch")

#: Every core kind with default settings, plus non-default settings of each class.
CASES = {name: (lambda name=name: activations.for_name(name)) for name in _names.ACTIVATIONS}
CASES.update(
    {
        "leaky_relu_0.2": lambda: fb.LeakyReLU(negative_slope=0.2),
        "elu_0.5": lambda: fb.ELU(alpha=0.5),
    }
)
if hasattr(fb, "Softplus"):
    CASES.update({"softplus_2_3": lambda: fb.Softplus(beta=2.0, threshold=3.0)})

TOL = {"float32": dict(rtol=1e-4, atol=1e-5), "float64": dict(rtol=1e-9, atol=1e-12)}
SIZES = (1, 7, 33)


def torch_dtype(dtype):
    return {"float32": torch.float32, "float64": torch.float64}[dtype]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES)
def test_forward_and_backward_ops_match_torch(case, dtype, rng):
    act = CASES[case]()
    x = (4 * rng.standard_normal(37)).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    ty = act.to_torch(torch, torch_dtype(dtype))(tx)
    g = rng.standard_normal(37).astype(dtype)
    ty.backward(torch.tensor(g))
    settings_ = dict(zip(act.act_settings, act.act_args))
    y = getattr(fb.ops, act.name)(x, **settings_)
    np.testing.assert_allclose(y, ty.detach().numpy(), **TOL[dtype])
    first = x if _core.act_uses_input(act.kind) else y
    dx = getattr(fb.ops, act.name + "_backward")(first, g, **settings_)
    np.testing.assert_allclose(dx, tx.grad.numpy(), **TOL[dtype])


def _nets(act_factory, dtype, backend, n_in, seed=0):
    layers = [fb.Dense(n_in, 17), act_factory(), fb.Dense(17, 3), act_factory(), fb.Dense(3, 2)]
    net = fb.Network(layers, fb.MSELoss(), dtype=dtype, backend=backend, seed=seed)
    return net, net.to_torch()


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES)
def test_network_gradients_and_sgd_steps_match_torch(case, dtype, backend, rng):
    for n_in, m in ((1, 1), (7, 33)):
        net, tnet = _nets(CASES[case], dtype, backend, n_in)
        X = rng.standard_normal((m, n_in)).astype(dtype)
        T = rng.standard_normal((m, 2)).astype(dtype)
        net.backward(X, T)
        loss = torch.nn.functional.mse_loss(tnet(torch.tensor(X)), torch.tensor(T))
        loss.backward()
        dense = [layer for layer in net.layers if isinstance(layer, fb.Dense)]
        linears = [mod for mod in tnet if isinstance(mod, torch.nn.Linear)]
        for layer, lin in zip(dense, linears):
            np.testing.assert_allclose(layer.dW, lin.weight.grad.numpy().T, **TOL[dtype])
            np.testing.assert_allclose(layer.db, lin.bias.grad.numpy(), **TOL[dtype])
        opt, topt = fb.SGD(lr=0.05), torch.optim.SGD(tnet.parameters(), lr=0.05)
        for _ in range(10):
            net.train_step(X, T, opt)
            topt.zero_grad()
            torch.nn.functional.mse_loss(tnet(torch.tensor(X)), torch.tensor(T)).backward()
            topt.step()
        for layer, lin in zip(dense, linears):
            np.testing.assert_allclose(layer.W, lin.weight.detach().numpy().T, **TOL[dtype])
            np.testing.assert_allclose(layer.b, lin.bias.detach().numpy(), **TOL[dtype])


@pytest.mark.parametrize("case", CASES)
def test_gradcheck(case, rng):
    net = fb.Network(
        [fb.Dense(3, 7), CASES[case](), fb.Dense(7, 2)], fb.MSELoss(), dtype="float64", seed=1
    )
    X, T = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    assert fb.gradcheck(net, X, T) < 1e-6


EXTREMES = [
    0.0,
    -0.0,
    1e-30,
    -1e-30,
    1e30,
    -1e30,
    1.0,
    -1.0,
    19.9,
    20.0,
    20.1,
    10.0,
    1.5,
    1.49,
    1.51,
    np.inf,
    -np.inf,
]


@pytest.mark.parametrize("case", CASES)
@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(["float32", "float64"]))
def test_ops_match_reference_including_extremes(case, data, dtype):
    act = CASES[case]()
    elements = st.one_of(
        st.sampled_from(EXTREMES), st.floats(-50, 50, width=32 if dtype == "float32" else 64)
    )
    x = data.draw(hnp.arrays(dtype, st.integers(1, 40), elements=elements))
    g = data.draw(hnp.arrays(dtype, x.shape, elements=st.floats(-10, 10, width=32)))
    settings_ = dict(zip(act.act_settings, act.act_args))
    with np.errstate(all="ignore"):
        ref_y = getattr(fb.reference, act.name)(x, **settings_)
        y = getattr(fb.ops, act.name)(x, **settings_)
        first = x if _core.act_uses_input(act.kind) else ref_y
        ref_dx = getattr(fb.reference, act.name + "_backward")(first, g, **settings_)
        dx = getattr(fb.ops, act.name + "_backward")(first, g, **settings_)
    rtol, atol = (1e-5, 1e-30) if dtype == "float32" else (1e-12, 1e-300)
    np.testing.assert_allclose(y, ref_y, rtol=rtol, atol=atol)
    # A derivative that is a sum of terms of either sign (GELU's Phi(x) + x phi(x) is zero
    # near x = -0.75) is only as accurate as those terms, which are O(|g|): near its root
    # the relative error is unbounded, the absolute one a few ulps of |g|.
    finite = np.isfinite(ref_dx)
    np.testing.assert_array_equal(dx[~finite], ref_dx[~finite])
    bound = rtol * np.abs(ref_dx) + 8 * np.finfo(dtype).eps * np.abs(g) + atol
    assert (np.abs(dx - ref_dx)[finite] <= bound[finite]).all(), (x, g, dx, ref_dx)


SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.5, 25.0, -25.0]
#: Lengths that are not multiples of any vector width, and one that is.
SPECIAL_LENGTHS = (1, 7, 17, 33, 127, 64)

SPECIALS_ON_PATH = textwrap.dedent("""
    import sys
    import numpy as np
    import fastbp as fb

    path, cases, lengths, out = sys.argv[1], eval(sys.argv[2]), eval(sys.argv[3]), sys.argv[4]
    assert fb.build_info()["simd"] == path, fb.build_info()
    inputs, results = np.load(out + ".inputs.npz"), {}
    for key, (name, cls, settings, op_settings, uses_input) in cases.items():
        for dtype in ("float32", "float64"):
            for n in lengths:
                x, g = inputs[f"x/{dtype}/{n}"], inputs[f"g/{dtype}/{n}"]
                y = getattr(fb.ops, name)(x, **op_settings)
                dx = getattr(fb.ops, name + "_backward")(x if uses_input else y, g, **op_settings)
                # Dense(1, n) with W = x and b = 0 on rows of ones: the fused bias and
                # activation pass sees x in its columns.
                net = fb.Network([fb.Dense(1, n), getattr(fb, cls)(**settings)], fb.MSELoss(),
                                 dtype=dtype)
                net.layers[0].W[...] = x
                net.layers[0].b[...] = 0
                fused = net.predict(np.ones((3, 1), dtype))
                for part, value in (("y", y), ("dx", dx), ("fused", fused)):
                    results[f"{key}/{dtype}/{n}/{part}"] = value
    np.savez(out, **results)
""")


def _special_inputs(dtype, n, rng):
    """``SPECIALS`` in a random order, repeated to length ``n``, and finite gradients."""
    x = rng.permutation(np.resize(np.array(SPECIALS), max(n, len(SPECIALS))))[:n]
    if n < len(SPECIALS):
        x[0] = np.nan
    return x.astype(dtype), rng.standard_normal(n).astype(dtype)


def _assert_same_specials(actual, desired, tol, zero_signs, err_msg):
    """NaN where ``desired`` is NaN, the same infinities, values within ``tol`` and, when
    ``zero_signs``, zeros of the same sign."""
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(desired), err_msg=err_msg)
    np.testing.assert_allclose(actual, desired, **tol, err_msg=err_msg)
    if zero_signs:
        zeros = desired == 0
        np.testing.assert_array_equal(
            np.signbit(actual[zeros]),
            np.signbit(desired[zeros]),
            err_msg=err_msg + " (sign of zero)",
        )


def _torch_where_self_consistent(act, x, g):
    """torch's forward and backward of ``x`` (gradient ``g``), and a mask of where they
    agree with torch's results for each element alone: its vectorised and scalar loops
    differ at some specials (GELU and SiLU at infinities, ELU's gradient at NaN)."""

    def run(x, g):
        tx = torch.tensor(x, requires_grad=True)
        ty = act.to_torch(torch, tx.dtype)(tx)
        ty.backward(torch.tensor(g))
        return ty.detach().numpy(), tx.grad.numpy()

    y, dx = run(x, g)
    alone = [run(x[i : i + 1], g[i : i + 1]) for i in range(x.size)]
    agree = np.ones(x.size, bool)
    for whole, single in (
        (y, np.concatenate([a[0] for a in alone])),
        (dx, np.concatenate([a[1] for a in alone])),
    ):
        agree &= (whole == single) | (np.isnan(whole) & np.isnan(single))
    return y, dx, agree


@pytest.mark.parametrize("path", SIMD_PATHS)
def test_nan_inf_and_signed_zeros_match_torch_and_the_reference_on_every_path(path, tmp_path, rng):
    """Forward and backward ops and the fused bias and activation pass of a network keep
    NaN as NaN, and give the reference's values on NaN, infinities and signed zeros, and
    torch's wherever torch gives one answer."""
    cases, inputs = {}, {}
    for key, make in CASES.items():
        act = make()
        cases[key] = (
            act.name,
            type(act).__name__,
            {s: getattr(act, s) for s in act.settings},
            dict(zip(act.act_settings, act.act_args)),
            bool(_core.act_uses_input(act.kind)),
        )
    for dtype in ("float32", "float64"):
        for n in SPECIAL_LENGTHS:
            inputs[f"x/{dtype}/{n}"], inputs[f"g/{dtype}/{n}"] = _special_inputs(dtype, n, rng)
    out = str(tmp_path / "results.npz")
    np.savez(out + ".inputs.npz", **inputs)
    result = run_on_path(path, SPECIALS_ON_PATH, path, repr(cases), repr(SPECIAL_LENGTHS), out)
    assert result.returncode == 0, result.stdout + result.stderr
    got = np.load(out)
    for key, make in CASES.items():
        act = make()
        name, op_settings = act.name, dict(zip(act.act_settings, act.act_args))
        for dtype in ("float32", "float64"):
            for n in SPECIAL_LENGTHS:
                x, g = inputs[f"x/{dtype}/{n}"], inputs[f"g/{dtype}/{n}"]
                at = f"{key}/{dtype}/{n}"
                with np.errstate(all="ignore"):
                    ref_y = getattr(fb.reference, name)(x, **op_settings)
                    first = x if _core.act_uses_input(act.kind) else ref_y
                    ref_dx = getattr(fb.reference, name + "_backward")(first, g, **op_settings)
                    ref_fused = getattr(fb.reference, name)(
                        np.broadcast_to(x + x.dtype.type(0), (3, n)), **op_settings
                    )
                torch_y, torch_dx, agree = _torch_where_self_consistent(act, x, g)
                tol = TOL[dtype]
                _assert_same_specials(got[f"{at}/y"], ref_y, tol, True, f"{at} forward")
                _assert_same_specials(got[f"{at}/dx"], ref_dx, tol, False, f"{at} backward")
                _assert_same_specials(got[f"{at}/fused"], ref_fused, tol, True, f"{at} fused")
                _assert_same_specials(
                    got[f"{at}/y"][agree], torch_y[agree], tol, True, f"{at} forward vs torch"
                )
                _assert_same_specials(
                    got[f"{at}/dx"][agree], torch_dx[agree], tol, False, f"{at} backward vs torch"
                )


@pytest.mark.parametrize(
    "make,exc",
    [
        (lambda: fb.LeakyReLU("0.1"), TypeError),
        (lambda: fb.LeakyReLU(np.nan), ValueError),
        (lambda: fb.LeakyReLU(True), TypeError),
        (lambda: fb.ELU(alpha=np.inf), ValueError),
        (lambda: fb.ELU(alpha=None), TypeError),
        (lambda: fb.GELU(approximate="erf"), ValueError),
        (lambda: fb.GELU(approximate=1), TypeError),
        (lambda: fb.ops.leaky_relu(np.ones(2), negative_slope="x"), TypeError),
        (lambda: fb.ops.elu(np.ones(2), beta=1.0), TypeError),
    ],
)
def test_bad_settings_are_refused(make, exc):
    with pytest.raises(exc):
        make()


def test_core_refuses_non_finite_settings_and_missing_input():
    with pytest.raises(ValueError, match="finite"):
        _core.activation(_core.Act.LeakyReLU, np.ones(3), np.nan, 0.0)
    with pytest.raises(ValueError, match="needs its input"):
        _core.activation_backward(_core.Act.GELU, np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="finite"):
        _core.Network64(
            [
                _core.LayerSpec(_core.LayerKind.Dense, 2, 2),
                _core.LayerSpec(_core.LayerKind.Activation, 2, 2, _core.Act.ELU, np.inf),
            ],
            _core.Loss.MSE,
            _core.Reduction.Mean,
        )


@pytest.mark.parametrize("case", CASES)
def test_save_load_keeps_settings(case, tmp_path, rng):
    net = fb.Network(
        [fb.Dense(3, 5), CASES[case](), fb.Dense(5, 2)], fb.MSELoss(), dtype="float64", seed=3
    )
    loaded = fb.Network.load(net.save(tmp_path / "net"))
    assert loaded.layers[1].config() == net.layers[1].config()
    assert loaded.layers[1].kind == net.layers[1].kind
    X = rng.standard_normal((4, 3))
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


@pytest.mark.parametrize("case", CASES)
def test_torch_round_trip_keeps_settings(case, rng):
    net = fb.Network(
        [fb.Dense(3, 5), CASES[case](), fb.Dense(5, 2)], fb.MSELoss(), dtype="float64", seed=4
    )
    back = fb.from_torch(net.to_torch(), fb.MSELoss())
    assert [layer.config() for layer in back.layers[1:2]] == [net.layers[1].config()]
    X = rng.standard_normal((6, 3))
    np.testing.assert_allclose(back.predict(X), net.predict(X), rtol=1e-12)


def test_core_refuses_an_activation_kind_it_does_not_have():
    unknown = _core.Act(99)
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="unknown activation kind 99"):
        _core.activation(unknown, x)
    with pytest.raises(ValueError, match="unknown activation kind 99"):
        _core.activation_backward(unknown, x, x, x)
    layers = [
        _core.LayerSpec(_core.LayerKind.Dense, 2, 3),
        _core.LayerSpec(_core.LayerKind.Activation, 3, 3, unknown, 0.0, 0.0),
    ]
    with pytest.raises(ValueError, match="unknown activation kind 99"):
        _core.Network64(layers, _core.Loss.MSE, _core.Reduction.Mean)
