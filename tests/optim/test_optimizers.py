"""Every optimizer against torch.optim: ten steps on a Network (backward + step,
train_step, and fit without shuffling), every option, with and without max_grad_norm
(clip_grad_norm_ then the torch optimizer); fb.ops against fb.reference; bad
hyper-parameters; a diverged step with clipping.

Adam and AdamW: the kernel against the formula written out here, the network paths
against each other, against the NumPy twin and (where installed) against PyTorch.

SGD's hyper-parameters as attributes, and the train_step fast path's target forms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastbp as fb
from fbhelpers import (
    BACKENDS,
    DTYPES,
    TrainingState,
    backend_rtol,
    dense_layers,
    make_data,
    make_net,
    tol,
)

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


CONFIGS = {
    "plain": dict(lr=0.01),
    "coupled": dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    "decoupled": dict(lr=0.02, betas=(0.85, 0.995), weight_decay=0.1, decoupled_weight_decay=True),
}


def adam_by_hand(
    p, g, m, v, t, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False
):
    """torch.optim.Adam's step t (from 1), in float64, returning new (p, m, v)."""
    b1, b2 = betas
    if decoupled_weight_decay:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g**2
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


@pytest.mark.parametrize("kernels", [fb.ops, fb.reference], ids=["ops", "reference"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("n", [1, 7, 33, 1000])
def test_adam_step_matches_formula(rng, kernels, dtype, config, n):
    hyper = CONFIGS[config]
    p = rng.standard_normal(n).astype(dtype)
    m, v = np.zeros(n, dtype), np.zeros(n, dtype)
    want = (p.astype(np.float64), np.zeros(n), np.zeros(n))
    for t in range(1, 5):
        g = rng.standard_normal(n).astype(dtype)
        kernels.adam_step(p, g, m, v, step=t, **hyper)
        want = adam_by_hand(*want[:1], g.astype(np.float64), *want[1:], t, **hyper)
        for got, exp in zip((p, m, v), want):
            np.testing.assert_allclose(got, exp, **tol(dtype), err_msg=f"step {t}")
    assert p.dtype == m.dtype == v.dtype == np.dtype(dtype)


@pytest.mark.parametrize(
    "kwargs, exc, word",
    [
        (dict(step=0), ValueError, "step"),
        (dict(lr=0.0), ValueError, "lr"),
        (dict(betas=(0.9, 1.0)), ValueError, "betas"),
        (dict(betas=0.9), TypeError, "betas"),
        (dict(eps=0.0), ValueError, "eps"),
        (dict(weight_decay=-1.0), ValueError, "weight_decay"),
    ],
)
@pytest.mark.parametrize("kernels", [fb.ops, fb.reference], ids=["ops", "reference"])
def test_adam_step_refuses_bad_arguments_and_changes_nothing(kernels, kwargs, exc, word):
    p, g, m, v = (np.full(4, x) for x in (1.0, 0.5, 0.1, 0.2))
    args = dict(lr=0.1, step=1) | kwargs
    with pytest.raises(exc, match=word):
        kernels.adam_step(p, g, m, v, **args)
    assert (p == 1.0).all() and (m == 0.1).all() and (v == 0.2).all()


def test_adam_step_refuses_mismatched_state():
    p, g = np.ones(4), np.ones(4)
    with pytest.raises(TypeError, match="exp_avg"):
        fb.ops.adam_step(p, g, np.zeros(4, np.float32), np.zeros(4), lr=0.1, step=1)
    with pytest.raises(ValueError, match="exp_avg_sq"):
        fb.ops.adam_step(p, g, np.zeros(4), np.zeros(5), lr=0.1, step=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_train_step_equals_backward_then_step(rng, config, backend, dtype):
    widths = (7, 17, 3)
    a = make_net(widths, "tanh", "ce_labels", dtype, backend, seed=5)
    b = make_net(widths, "tanh", "ce_labels", dtype, backend, seed=5)
    opt_a, opt_b = fb.Adam(**CONFIGS[config]), fb.Adam(**CONFIGS[config])
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for step in range(4):
        X, T = make_data(widths, "ce_labels", 5, rng, dtype)
        la = a.train_step(X, T, opt_a)
        lb = b.backward(X, T)
        opt_b.step(b)
        assert la == pytest.approx(lb, rel=rtol), f"step {step}"
        for la_, lb_ in zip(dense_layers(a), dense_layers(b)):
            np.testing.assert_allclose(la_.W, lb_.W, rtol=rtol, atol=rtol)
    assert opt_a.state_for(a).steps == opt_b.state_for(b).steps == 4


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_fit_backends_agree(rng, config, dtype):
    """The C++ epoch (one call) and the NumPy twin batch by batch give the same weights."""
    widths = (5, 9, 2)
    X, T = make_data(widths, "mse_mean", 37, rng, dtype)
    nets = [
        make_net(widths, "relu", "mse_mean", dtype, backend, seed=1) for backend in ("cpu", "numpy")
    ]
    histories = [
        net.fit(X, T, epochs=3, batch_size=8, optimizer=fb.Adam(**CONFIGS[config])) for net in nets
    ]
    np.testing.assert_allclose(histories[0].loss, histories[1].loss, rtol=backend_rtol(dtype))
    for la, lb in zip(dense_layers(nets[0]), dense_layers(nets[1])):
        np.testing.assert_allclose(la.W, lb.W, rtol=backend_rtol(dtype), atol=backend_rtol(dtype))


def test_fit_continues_the_step_count(rng):
    """Two fits of one epoch each equal one fit of two epochs (bias correction included)."""
    widths = (4, 6, 1)
    X, T = make_data(widths, "mse_mean", 20, rng)
    one, two = (make_net(widths, "tanh", seed=3) for _ in range(2))
    opt_one, opt_two = fb.Adam(lr=0.05), fb.Adam(lr=0.05)
    one.fit(X, T, epochs=2, batch_size=6, optimizer=opt_one, shuffle=False)
    two.fit(X, T, epochs=1, batch_size=6, optimizer=opt_two, shuffle=False)
    two.fit(X, T, epochs=1, batch_size=6, optimizer=opt_two, shuffle=False)
    assert opt_one.state_for(one).steps == opt_two.state_for(two).steps == 8
    np.testing.assert_allclose(one.layers[0].W, two.layers[0].W, rtol=1e-12)


def test_adamw_is_adam_with_decoupled_decay():
    opt = fb.AdamW(lr=0.01)
    assert opt.decoupled_weight_decay is True and opt.weight_decay == 0.01
    assert (
        opt.hyper_parameters
        == fb.Adam(lr=0.01, weight_decay=0.01, decoupled_weight_decay=True).hyper_parameters
    )


@pytest.mark.parametrize(
    "name, value, exc",
    [
        ("lr", 0.0, ValueError),
        ("betas", (0.9,), TypeError),
        ("betas", (0.9, 1.5), ValueError),
        ("eps", -1e-8, ValueError),
        ("decoupled_weight_decay", 1, TypeError),
    ],
)
def test_bad_assignment_is_refused_and_changes_nothing(name, value, exc):
    opt = fb.Adam(lr=0.1)
    before = opt.hyper_parameters
    with pytest.raises(exc, match=name):
        setattr(opt, name, value)
    assert opt.hyper_parameters == before


def test_hyper_parameters_can_change_between_steps(rng):
    opt = fb.Adam(lr=0.1)
    opt.betas = (0.5, 0.9)
    assert opt.betas == (0.5, 0.9) and opt.hyper_parameters[:3] == (0.1, 0.5, 0.9)
    assert repr(opt).startswith("Adam(lr=0.1, betas=(0.5, 0.9)")


@pytest.mark.parametrize("decoupled", [False, True])
def test_matches_pytorch(rng, decoupled):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    widths = (6, 10, 3)
    net = make_net(widths, "tanh", "mse_mean", "float64", "cpu", seed=0)
    params = [
        torch.tensor(p.copy(), requires_grad=True)
        for layer in dense_layers(net)
        for p in (layer.W, layer.b)
    ]
    hyper = dict(lr=0.05, betas=(0.8, 0.95), eps=1e-7, weight_decay=0.1)
    ours = fb.Adam(**hyper, decoupled_weight_decay=decoupled)
    theirs = (torch.optim.AdamW if decoupled else torch.optim.Adam)(params, **hyper)
    for _ in range(5):
        X, T = make_data(widths, "mse_mean", 8, rng)
        net.train_step(X, T, ours)
        theirs.zero_grad()
        h = torch.tanh(torch.from_numpy(X) @ params[0] + params[1])
        torch.nn.functional.mse_loss(h @ params[2] + params[3], torch.from_numpy(T)).backward()
        theirs.step()
    for p, q in zip([p for layer in dense_layers(net) for p in (layer.W, layer.b)], params):
        np.testing.assert_allclose(p, q.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(not fb.cuda_available(), reason="CUDA backend not usable here")
def test_cuda_backend_refuses_adam_before_training(rng, snapshot):
    net = make_net((3, 2), dtype="float32", backend="cuda")
    snap = snapshot(net)
    X, T = make_data((3, 2), "mse_mean", 4, rng, "float32")
    with pytest.raises(NotImplementedError, match="SGD only"):
        net.train_step(X, T, fb.Adam())
    with pytest.raises(NotImplementedError, match="SGD only"):
        net.fit(X, T, epochs=1, batch_size=2, optimizer=fb.Adam())
    snap.assert_unchanged()


def test_sgd_hyper_parameters_can_change_between_steps(rng):
    X = rng.standard_normal((8, 3))
    T = rng.standard_normal((8, 2))
    nets = [make_net((3, 5, 2), "tanh", "mse_mean", "float64", "cpu", seed=0) for _ in range(2)]
    fast, slow = fb.SGD(lr=0.1), fb.SGD(lr=0.1)
    nets[0].train_step(X, T, fast)
    nets[1].train_step(X, T, slow)
    fast.lr = 0.5
    nets[0].train_step(X, T, fast)
    nets[1].backward(X, T)
    W_before = nets[1].layers[0].W.copy()
    dW = nets[1].layers[0].dW.copy()
    slow.lr = 0.5
    slow.step(nets[1])
    np.testing.assert_allclose(nets[1].layers[0].W, W_before - 0.5 * dW, rtol=1e-12)
    np.testing.assert_allclose(nets[0].layers[0].W, nets[1].layers[0].W, rtol=1e-12)
    assert fast.hyper_parameters == (0.5, 0.0, 0.0, False, 0.0)


@pytest.mark.parametrize(
    "name, value, exc",
    [
        ("lr", 0.0, ValueError),
        ("lr", -1.0, ValueError),
        ("lr", float("nan"), ValueError),
        ("momentum", -0.5, ValueError),
        ("nesterov", 1, TypeError),
        ("lr", "0.1", TypeError),
    ],
)
def test_sgd_bad_assignment_is_refused_and_changes_nothing(name, value, exc):
    opt = fb.SGD(lr=0.1, momentum=0.9)
    with pytest.raises(exc, match=name):
        setattr(opt, name, value)
    assert opt.hyper_parameters == (0.1, 0.9, 0.0, False, 0.0)


def test_nesterov_rules_apply_to_assignment():
    opt = fb.SGD(lr=0.1, momentum=0.9, nesterov=True)
    with pytest.raises(ValueError, match="nesterov"):
        opt.momentum = 0.0
    assert opt.momentum == 0.9


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_output_targets_may_be_one_dimensional(rng, backend):
    X = rng.standard_normal((6, 3))
    t = rng.standard_normal(6)
    nets = [make_net((3, 4, 1), "relu", "mse_mean", "float64", backend, seed=0) for _ in range(2)]
    opts = [fb.SGD(lr=0.1), fb.SGD(lr=0.1)]
    assert nets[0].train_step(X, t, opts[0]) == nets[1].train_step(X, t[:, None], opts[1])
    np.testing.assert_array_equal(nets[0].layers[0].W, nets[1].layers[0].W)
    with pytest.raises(ValueError, match="7"):
        nets[0].train_step(X, rng.standard_normal(7), opts[0])
