"""Adam and AdamW: the kernel against the formula written out here, the network paths
against each other, against the NumPy twin and (where installed) against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import BACKENDS, DTYPES, backend_rtol, dense_layers, make_data, make_net, tol

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
