"""Learning-rate schedules: their closed forms, PyTorch's where installed, and fit's use."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import make_data, make_net

SCHEDULES = {
    "step": (fb.schedules.StepLR(step_size=3, gamma=0.5), lambda e, lr: lr * 0.5 ** (e // 3)),
    "exponential": (fb.schedules.ExponentialLR(gamma=0.9), lambda e, lr: lr * 0.9**e),
    "cosine": (
        fb.schedules.CosineAnnealingLR(T_max=10, eta_min=0.01),
        lambda e, lr: 0.01 + (lr - 0.01) * (1 + math.cos(math.pi * e / 10)) / 2,
    ),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_closed_forms(name):
    schedule, want = SCHEDULES[name]
    for epoch in range(12):
        for lr in (1.0, 0.1):
            assert schedule(epoch, lr) == pytest.approx(want(epoch, lr), rel=1e-12)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_matches_pytorch(name):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    schedule, _ = SCHEDULES[name]
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    theirs = {
        "step": lambda: torch.optim.lr_scheduler.StepLR(opt, 3, 0.5),
        "exponential": lambda: torch.optim.lr_scheduler.ExponentialLR(opt, 0.9),
        "cosine": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10, 0.01),
    }[name]()
    for epoch in range(10):
        assert schedule(epoch, 0.2) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        theirs.step()


@pytest.mark.parametrize(
    "make, exc",
    [
        (lambda: fb.schedules.StepLR(0), ValueError),
        (lambda: fb.schedules.StepLR(2, gamma=0.0), ValueError),
        (lambda: fb.schedules.ExponentialLR(gamma="0.9"), TypeError),
        (lambda: fb.schedules.CosineAnnealingLR(T_max=2.5), TypeError),
        (lambda: fb.schedules.CosineAnnealingLR(T_max=3, eta_min=-1.0), ValueError),
    ],
)
def test_bad_arguments(make, exc):
    with pytest.raises(exc):
        make()


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_fit_applies_the_schedule_per_epoch(rng, backend):
    """Each epoch trains with the scheduled rate: equal to epoch-by-epoch fits at that lr."""
    widths = (3, 5, 2)
    X, T = make_data(widths, "mse_mean", 16, rng)
    a, b = (make_net(widths, "tanh", backend=backend, seed=2) for _ in range(2))
    opt_a, opt_b = fb.SGD(lr=0.2, momentum=0.9), fb.SGD(lr=0.2, momentum=0.9)
    schedule = fb.schedules.StepLR(step_size=2, gamma=0.1)
    history = a.fit(
        X, T, epochs=5, batch_size=4, optimizer=opt_a, shuffle=False, lr_schedule=schedule
    )
    assert history.lr == pytest.approx([0.2, 0.2, 0.02, 0.02, 0.002])
    assert opt_a.lr == 0.2  # set back after fit
    for lr in history.lr:
        opt_b.lr = lr
        b.fit(X, T, epochs=1, batch_size=4, optimizer=opt_b, shuffle=False)
    np.testing.assert_allclose(a.layers[0].W, b.layers[0].W, rtol=1e-12)


def test_fit_refuses_a_zero_rate_before_training(rng, snapshot):
    widths = (3, 5, 2)
    X, T = make_data(widths, "mse_mean", 8, rng)
    net = make_net(widths)
    snap = snapshot(net)
    with pytest.raises(ValueError, match=r"epoch 5 \(History index 4\)"):
        net.fit(
            X,
            T,
            epochs=6,
            batch_size=4,
            optimizer=fb.SGD(lr=0.1),
            lr_schedule=fb.schedules.CosineAnnealingLR(T_max=4),
        )
    snap.assert_unchanged()
    with pytest.raises(TypeError, match="lr_schedule"):
        net.fit(X, T, epochs=1, batch_size=4, optimizer=fb.SGD(lr=0.1), lr_schedule=0.5)
