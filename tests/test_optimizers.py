"""Every optimizer against torch.optim: ten steps on a Network (backward + step,
train_step, and fit without shuffling), every option, with and without max_grad_norm
(clip_grad_norm_ then the torch optimizer); fb.ops against fb.reference; bad
hyper-parameters; a diverged step with clipping."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastbp as fb
from fbhelpers import BACKENDS, DTYPES, TrainingState

torch = pytest.importorskip("torch")

TOL = {"float32": dict(rtol=1e-4, atol=1e-5), "float64": dict(rtol=1e-9, atol=1e-12)}
WIDTHS = (3, 17, 7)
ROWS, BATCH, STEPS = 10, 4, 10

# (fastbp class, torch class, keyword arguments both take)
CASES = {
    "sgd": (fb.SGD, "SGD", dict(lr=0.05)),
    "sgd-momentum": (fb.SGD, "SGD", dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    "sgd-nesterov": (fb.SGD, "SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    "adam": (fb.Adam, "Adam", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.01)),
    "adamw": (fb.AdamW, "AdamW", dict(lr=0.01, weight_decay=0.05)),
    "rmsprop": (fb.RMSprop, "RMSprop", dict(lr=0.01)),
    "rmsprop-all": (
        fb.RMSprop,
        "RMSprop",
        dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.02, momentum=0.7, centered=True),
    ),
    "rmsprop-centered": (fb.RMSprop, "RMSprop", dict(lr=0.005, alpha=0.3, centered=True)),
    "rmsprop-momentum": (fb.RMSprop, "RMSprop", dict(lr=0.01, momentum=0.5)),
    "adagrad": (fb.Adagrad, "Adagrad", dict(lr=0.05)),
    "adagrad-all": (
        fb.Adagrad,
        "Adagrad",
        dict(lr=0.05, lr_decay=0.1, weight_decay=0.01, initial_accumulator_value=0.3, eps=1e-6),
    ),
    "adadelta": (fb.Adadelta, "Adadelta", dict()),
    "adadelta-all": (fb.Adadelta, "Adadelta", dict(lr=0.5, rho=0.6, eps=1e-4, weight_decay=0.02)),
}
# clip bites (a norm far below the gradients') or does not
CLIPS = [None, 0.05, 1e6]


def data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((ROWS, WIDTHS[0])).astype(dtype),
        rng.standard_normal((ROWS, WIDTHS[-1])).astype(dtype),
    )


def network(dtype, backend):
    return fb.Network(
        [fb.Dense(WIDTHS[0], WIDTHS[1]), fb.Tanh(), fb.Dense(WIDTHS[1], WIDTHS[2])],
        fb.MSELoss(),
        dtype=dtype,
        backend=backend,
        seed=2,
    )


def torch_run(net, case, clip, batches):
    """The torch copy of net trained on ``batches`` (X, T pairs) by the case's optimizer,
    clip_grad_norm_ first when ``clip``; its parameters in fastbp's layout."""
    _, torch_name, kwargs = CASES[case]
    model = net.to_torch()
    opt = getattr(torch.optim, torch_name)(model.parameters(), **kwargs)
    for x, t in batches:
        loss = torch.nn.functional.mse_loss(model(torch.tensor(x)), torch.tensor(t))
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
    return [p.detach().numpy().T for p in model.parameters()]


def fastbp_params(net):
    return [a for layer in net.layers if isinstance(layer, fb.Dense) for a in (layer.W, layer.b)]


def step_batches(X, T):
    """STEPS batches cycling through the rows, BATCH at a time."""
    return [
        (X[(np.arange(BATCH) + BATCH * k) % ROWS], T[(np.arange(BATCH) + BATCH * k) % ROWS])
        for k in range(STEPS)
    ]


def assert_as_torch(net, want, dtype):
    for got, w in zip(fastbp_params(net), want):
        np.testing.assert_allclose(got, w, **TOL[dtype])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("mode", ["backward-step", "train_step"])
def test_steps_match_torch(backend, dtype, case, clip, mode):
    cls, _, kwargs = CASES[case]
    X, T = data(dtype)
    net = network(dtype, backend)
    batches = step_batches(X, T)
    want = torch_run(net, case, clip, batches)
    opt = cls(**kwargs, max_grad_norm=clip)
    for x, t in batches:
        if mode == "train_step":
            net.train_step(x, t, opt)
        else:
            net.backward(x, t)
            opt.step(net)
    assert opt.state_for(net).steps == STEPS
    assert_as_torch(net, want, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("clip", CLIPS)
def test_fit_matches_torch(backend, dtype, case, clip):
    cls, _, kwargs = CASES[case]
    X, T = data(dtype)
    net = network(dtype, backend)
    epochs = 4  # 3 batches an epoch (4, 4, 2 rows): 12 steps
    batches = [
        (X[s : s + BATCH], T[s : s + BATCH]) for _ in range(epochs) for s in range(0, ROWS, BATCH)
    ]
    want = torch_run(net, case, clip, batches)
    net.fit(
        X,
        T,
        epochs=epochs,
        batch_size=BATCH,
        optimizer=cls(**kwargs, max_grad_norm=clip),
        shuffle=False,
        progress=False,
    )
    assert_as_torch(net, want, dtype)


def test_clipping_bites_in_these_cases():
    """The small norm is below the gradients' and the large one above, so CLIPS tests
    both sides of clip_grad_norm_."""
    X, T = data("float64")
    net = network("float64", "cpu")
    net.backward(X[:BATCH], T[:BATCH])
    norm = np.linalg.norm(net.grads)
    assert CLIPS[1] < norm < CLIPS[2]


@pytest.mark.parametrize("mod", [fb.ops, fb.reference], ids=["ops", "reference"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("max_norm", [1e-3, 1.0, 1e9])
@pytest.mark.parametrize("n", [1, 3, 7, 17, 33])
def test_clip_grad_norm_matches_torch(mod, dtype, max_norm, n):
    g = np.random.default_rng(n).standard_normal(n).astype(dtype)
    t = torch.tensor(g.copy(), requires_grad=True)
    t.grad = torch.tensor(g.copy())
    want = float(torch.nn.utils.clip_grad_norm_([t], max_norm))
    got = mod.clip_grad_norm(g, max_norm)
    assert got == pytest.approx(want, rel=TOL[dtype]["rtol"])
    np.testing.assert_allclose(g, t.grad.numpy(), **TOL[dtype])


ARRAYS = st.lists(
    st.one_of(
        st.floats(-1e6, 1e6, width=32), st.sampled_from([0.0, -0.0, 1e-30, -1e-30, 1e30, -1e30])
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(
    values=ARRAYS,
    dtype=st.sampled_from(DTYPES),
    kind=st.sampled_from(["rmsprop", "adagrad", "adadelta", "clip"]),
    step=st.integers(1, 5),
    flags=st.tuples(st.booleans(), st.booleans()),
)
def test_ops_match_reference(values, dtype, kind, step, flags):
    """The kernels and their NumPy twins agree on arbitrary values, extremes included."""
    n = len(values)
    grad = np.array(values, dtype=dtype)
    outs = []
    for mod in (fb.ops, fb.reference):
        param = np.linspace(-1, 1, n).astype(dtype)
        states = [np.abs(np.linspace(0, 2, n)).astype(dtype) for _ in range(3)]
        with np.errstate(all="ignore"):
            if kind == "rmsprop":
                mod.rmsprop_step(
                    param,
                    grad,
                    *states,
                    lr=0.01,
                    alpha=0.9,
                    weight_decay=0.1,
                    momentum=0.5 if flags[0] else 0.0,
                    centered=flags[1],
                    step=step,
                )
            elif kind == "adagrad":
                mod.adagrad_step(
                    param,
                    grad,
                    states[0],
                    lr=0.1,
                    lr_decay=0.5 if flags[0] else 0,
                    weight_decay=0.1 if flags[1] else 0,
                    step=step,
                )
            elif kind == "adadelta":
                mod.adadelta_step(
                    param,
                    grad,
                    *states[:2],
                    lr=0.5,
                    rho=0.3 if flags[0] else 0.9,
                    weight_decay=0.1 if flags[1] else 0,
                    step=step,
                )
            else:
                g = grad.copy()
                outs.append(mod.clip_grad_norm(g, 0.5))
                param = g
        outs.append((param, states))
    if kind == "clip":
        assert outs[0] == pytest.approx(outs[2], rel=1e-12)
        np.testing.assert_allclose(outs[1][0], outs[3][0], rtol=1e-6)
        return
    (p1, s1), (p2, s2) = outs
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(p1, p2, rtol=tol, atol=tol)
    for a, b in zip(s1, s2):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "cls,name,value,exc",
    [
        (fb.RMSprop, "lr", 0.0, ValueError),
        (fb.RMSprop, "alpha", -0.1, ValueError),
        (fb.RMSprop, "eps", np.nan, ValueError),
        (fb.RMSprop, "momentum", -1.0, ValueError),
        (fb.RMSprop, "weight_decay", np.inf, ValueError),
        (fb.RMSprop, "centered", 1, TypeError),
        (fb.Adagrad, "lr", -1.0, ValueError),
        (fb.Adagrad, "lr_decay", -0.1, ValueError),
        (fb.Adagrad, "eps", 0.0, ValueError),
        (fb.Adagrad, "weight_decay", np.nan, ValueError),
        (fb.Adagrad, "initial_accumulator_value", -1.0, ValueError),
        (fb.Adadelta, "lr", 0.0, ValueError),
        (fb.Adadelta, "rho", 1.5, ValueError),
        (fb.Adadelta, "rho", -0.1, ValueError),
        (fb.Adadelta, "eps", 0.0, ValueError),
        (fb.Adadelta, "weight_decay", np.inf, ValueError),
        (fb.SGD, "max_grad_norm", 0.0, ValueError),
        (fb.Adam, "max_grad_norm", -1.0, ValueError),
        (fb.AdamW, "max_grad_norm", np.inf, ValueError),
        (fb.RMSprop, "max_grad_norm", "1", TypeError),
        (fb.Adagrad, "max_grad_norm", np.nan, ValueError),
    ],
)
def test_bad_hyper_parameters_are_refused_and_change_nothing(cls, name, value, exc):
    with pytest.raises(exc, match=name):
        cls(**{name: value})
    opt = cls()
    before = repr(opt), opt.hyper_parameters
    with pytest.raises(exc, match=name):
        setattr(opt, name, value)
    assert (repr(opt), opt.hyper_parameters) == before


@pytest.mark.parametrize(
    "kind,hyper,name",
    [
        ("RMSprop", [0.01, 0.99, 0.0, 0.0, 0.0, 0.0], "eps"),
        ("RMSprop", [0.01, 0.99, 1e-8, 0.0, 0.0, 2.0], "centered"),
        ("Adagrad", [0.01, -1.0, 0.0, 1e-10], "lr_decay"),
        ("Adagrad", [np.nan, 0.0, 0.0, 1e-10], "lr"),
        ("Adadelta", [1.0, 1.5, 1e-6, 0.0], "rho"),
        ("Adadelta", [1.0, 0.9, 1e-6, -1.0], "weight_decay"),
    ],
)
def test_core_checks_the_hyper_parameters(kind, hyper, name):
    net = network("float64", "cpu")
    X, T = data("float64")
    core, before = net._core, net.params.copy()
    k = getattr(fb._core.Optimizer, kind)
    states = [np.zeros(net.n_params) for _ in fb.optim.optimizers.STATE_TYPES[k].names]
    spec = fb._core.UpdateSpec
    for call in (
        lambda: core.train_step(X, T, spec(k, hyper), states, 0),
        lambda: core.step(spec(k, hyper), states, 0),
        lambda: core.train_epoch(X, T, np.arange(ROWS), 3, spec(k, hyper), states, 0),
        lambda: fb._core.optimizer_step(
            k, hyper, np.ones(3), np.ones(3), [np.zeros(3) for _ in states], 1
        ),
    ):
        with pytest.raises(ValueError, match=name):
            call()
    good = {
        "RMSprop": [0.01, 0.99, 1e-8, 0.0, 0.0, 0.0],
        "Adagrad": [0.01, 0.0, 0.0, 1e-10],
        "Adadelta": [1.0, 0.9, 1e-6, 0.0],
    }[kind]
    with pytest.raises(ValueError, match="max_grad_norm"):
        core.train_step(X, T, spec(k, good, -1.0), states, 0)
    with pytest.raises(ValueError, match="state arrays"):
        core.step(spec(k, good), states[:-1] if len(states) > 1 else [], 0)
    np.testing.assert_array_equal(net.params, before)
    assert not any(s.any() for s in states)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "case", ["sgd-momentum", "adam", "rmsprop-all", "adagrad-all", "adadelta-all"]
)
def test_a_diverged_step_with_clipping_changes_nothing(backend, case):
    """The divergence check sees the unclipped gradients: a NaN gradient is refused even
    though clipping would scale it, and nothing changes."""
    cls, _, kwargs = CASES[case]
    X, T = data("float64")
    net = network("float64", backend)
    opt = cls(**kwargs, max_grad_norm=0.1)
    net.train_step(X, T, opt)
    net.backward(X, T)
    net.layers[0].dW[0, 0] = np.nan
    grads = net.grads.copy()
    before = TrainingState(net, opt)
    with pytest.raises(FloatingPointError, match="dW of Dense layer 1"):
        opt.step(net)
    before.assert_equal(TrainingState(net, opt))
    np.testing.assert_array_equal(net.grads, grads)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_infinite_norm_is_a_divergence(backend):
    """Finite float64 gradients whose norm overflows: refused, nothing changed."""
    X, T = data("float64")
    net = network("float64", backend)
    opt = fb.SGD(lr=0.1, max_grad_norm=1.0)
    net.backward(X, T)
    net.grads[:2] = 1e300
    grads = net.grads.copy()
    before = TrainingState(net, opt)
    with pytest.raises(FloatingPointError, match="gradient norm is inf"):
        opt.step(net)
    before.assert_equal(TrainingState(net, opt))
    np.testing.assert_array_equal(net.grads, grads)


def test_adagrad_state_starts_at_the_initial_accumulator_value():
    net = network("float32", "cpu")
    state = fb.Adagrad(initial_accumulator_value=0.25).state_for(net)
    assert state.sum.dtype == np.float32 and (state.sum == 0.25).all()
    assert state.arrays[0] is state.sum and state.steps == 0


def test_core_args_name_the_kind_and_clipping():
    opt = fb.RMSprop(lr=0.1, centered=True, max_grad_norm=2.0)
    state = opt.state_for(network("float64", "cpu"))
    spec, states, steps = opt.core_args(state)
    assert spec.kind == fb._core.Optimizer.RMSprop and spec.max_grad_norm == 2.0
    assert steps == 0
    assert spec.hyper == (0.1, 0.99, 1e-8, 0.0, 0.0, 1.0) and states is state.arrays
    assert len(states) == 3
    opt.max_grad_norm = None
    assert opt.core_args(state)[0].max_grad_norm == 0.0
