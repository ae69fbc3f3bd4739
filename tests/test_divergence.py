"""Divergence (issue 6): a step whose loss or gradient is NaN or inf raises
FloatingPointError naming the step (and, in fit, the epoch), and leaves the parameters,
momentum buffer and step count exactly as they were before that step. In fit, also when a
progress bar splits each epoch into several core calls (``sliced``)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import BACKENDS, DTYPES, make_net

WIDTHS = (4, 16, 3)
N = 12
# (rows, batch size): three batches per epoch, the last one short (with a bar, one core
# call each); 23 batches, the last of one row (with a bar, two per call).
SHAPES = [(N, 5), (45, 2)]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(params=DTYPES)
def dtype(request):
    return request.param


@pytest.fixture(params=[False, True], ids=["one_call", "sliced"])
def progress(request):
    """fit's progress argument; True shows a recording stand-in for the tqdm bar."""
    if request.param:
        request.getfixturevalue("recording_bars")
    return request.param


def exploding(backend, dtype, rows=N):
    """A linear network, its data and an optimizer whose learning rate makes the weights
    grow faster than exponentially, so it overflows within a few dozen steps."""
    net = make_net(WIDTHS, "identity", "mse_mean", dtype, backend, seed=0)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((rows, WIDTHS[0])).astype(dtype)
    T = (10 * rng.standard_normal((rows, WIDTHS[-1]))).astype(dtype)
    return net, X, T, fb.SGD(lr=0.5, momentum=0.9)


class TrainingState:
    """Bitwise copies of a network's parameters and its optimizer's state."""

    def __init__(self, net, opt):
        state = opt.state_for(net)
        self.params = [(layer.W.copy(), layer.b.copy()) for layer in net.layers[::2]]
        self.velocity, self.steps = state.velocity.copy(), state.steps

    def assert_equal(self, other: "TrainingState"):
        for (w, b), (w2, b2) in zip(self.params, other.params):
            np.testing.assert_array_equal(w, w2)
            np.testing.assert_array_equal(b, b2)
        np.testing.assert_array_equal(self.velocity, other.velocity)
        assert self.steps == other.steps


def test_train_step_divergence_raises_and_changes_nothing(backend, dtype):
    net, X, T, opt = exploding(backend, dtype)
    for step in range(1, 200):
        before = TrainingState(net, opt)
        try:
            net.train_step(X, T, opt)
        except FloatingPointError as e:
            assert re.search(rf"train_step {step}\b", str(e)), str(e)
            assert "NaN or inf" in str(e) or "loss is" in str(e)
            break
    else:
        pytest.fail("the network never diverged")
    assert step > 2  # the test drives a real run to overflow, not a bad first step
    TrainingState(net, opt).assert_equal(before)
    assert opt.state_for(net).steps == step - 1


@pytest.mark.parametrize("rows, batch", SHAPES)
def test_fit_divergence_names_epoch_and_step_and_keeps_earlier_batches(backend, dtype, progress,
                                                                       rows, batch):
    net, X, T, opt = exploding(backend, dtype, rows)
    with pytest.raises(FloatingPointError) as info:
        net.fit(X, T, epochs=200, batch_size=batch, optimizer=opt, shuffle=False,
                progress=progress)
    found = re.search(r"epoch (\d+), step (\d+)", str(info.value))
    assert found, str(info.value)
    epoch, step = int(found[1]), int(found[2])
    assert 1 <= step <= -(-rows // batch)
    # Replay on a twin network: the completed epochs, then the failing epoch's batches
    # before the failing step, one train_step each. The state must be exactly that.
    twin, _, _, twin_opt = exploding(backend, dtype, rows)
    if epoch > 1:
        twin.fit(X, T, epochs=epoch - 1, batch_size=batch, optimizer=twin_opt, shuffle=False,
                 progress=False)
    for start in range(0, (step - 1) * batch, batch):
        twin.train_step(X[start:start + batch], T[start:start + batch], twin_opt)
    TrainingState(net, opt).assert_equal(TrainingState(twin, twin_opt))
    # and the failing step itself diverges on the twin too
    with pytest.raises(FloatingPointError):
        twin.train_step(X[(step - 1) * batch:step * batch], T[(step - 1) * batch:step * batch],
                        twin_opt)


def test_fit_divergence_inside_a_later_core_call_counts_the_calls_before(backend, dtype,
                                                                       progress):
    """45 one-row batches, the eighth of which overflows a gradient: with a bar the epoch
    runs three batches a call, so the error comes from the second step of the third call
    and must still name step 8 and leave 7 steps counted."""
    big = np.finfo(dtype).max / 1.2
    net = fb.Network([fb.Dense(2, 1)], fb.MSELoss(), dtype=dtype, backend=backend)
    net.layers[0].W = np.ones((2, 1))
    X = np.ones((45, 2), dtype=dtype)
    X[7] = big, -big  # cancels in the output, overflows in the weight gradient
    T = np.ones((45, 1), dtype=dtype)
    opt = fb.SGD(lr=1e-30, momentum=0.9)  # the other steps hardly move the weights
    with pytest.raises(FloatingPointError, match=r"epoch 1, step 8\b.*gradient is NaN or inf"):
        net.fit(X, T, epochs=2, batch_size=1, optimizer=opt, shuffle=False, progress=progress)
    assert opt.state_for(net).steps == 7
    twin = fb.Network([fb.Dense(2, 1)], fb.MSELoss(), dtype=dtype, backend=backend)
    twin.layers[0].W = np.ones((2, 1))
    twin_opt = fb.SGD(lr=1e-30, momentum=0.9)
    for row in range(7):
        twin.train_step(X[row:row + 1], T[row:row + 1], twin_opt)
    TrainingState(net, opt).assert_equal(TrainingState(twin, twin_opt))


def test_gradient_overflow_with_finite_loss_is_caught(backend, dtype, snapshot):
    """Inputs near the dtype's largest value cancel in the output (loss 1) but their
    weight gradients overflow: the gradient check, not the loss check, must catch it."""
    big = np.finfo(dtype).max / 1.2
    net = fb.Network([fb.Dense(2, 1)], fb.MSELoss(), dtype=dtype, backend=backend)
    net.layers[0].W = np.ones((2, 1))
    opt = fb.SGD(lr=0.1, momentum=0.9)
    snap = snapshot(net)
    X = np.array([[big, -big]], dtype=dtype)
    T = np.ones((1, 1), dtype=dtype)
    assert net.loss(X, T) == 1.0
    with pytest.raises(FloatingPointError, match=r"train_step 1\b.*gradient is NaN or inf"):
        net.train_step(X, T, opt)
    snap.assert_unchanged()
    assert opt.state_for(net).steps == 0
    assert not opt.state_for(net).velocity.any()


@pytest.mark.parametrize("call", ["train_step", "train_epoch"])
def test_core_reports_the_step_of_the_call(call, dtype):
    """A direct call into fastbp._core raises FloatingPointError with ``step`` (steps of
    the call completed before the failing one) and ``reason``."""
    big = np.finfo(dtype).max / 1.2
    # summed loss: the gradient of the big row is 2 * big whatever the batch size
    core = fb.Network([fb.Dense(2, 1)], fb.MSELoss(reduction="sum"), dtype=dtype)._core
    core.params[...] = 1
    X = np.array([[1, 1], [1, 1], [big, -big]], dtype=dtype)
    T = np.zeros((3, 1), dtype=dtype)
    velocity = np.zeros(core.n_params, dtype=dtype)
    hyper = (1e-30, 0.0, 0.0, False, 0.0, True)
    with pytest.raises(FloatingPointError) as info:
        if call == "train_step":
            core.train_step(X, T, velocity, *hyper)
        else:
            core.train_epoch(X, T, np.arange(3), 1, velocity, *hyper)
    expected = 0 if call == "train_step" else 2
    assert info.value.step == expected
    assert "gradient" in info.value.reason
    assert f"step {expected + 1} of this call" in str(info.value)
