"""Divergence: a step whose loss or gradient is NaN or inf raises
FloatingPointError naming the step (and, in fit, the epoch), and leaves the parameters,
optimizer state (momentum buffer, Adam's moments) and step count exactly as they were
before that step; through train_step, fit (also when a progress bar splits each epoch
into several core calls: ``sliced``), and backward followed by optimizer.step."""

from __future__ import annotations

import re

import numpy as np
import pytest

import fastbp as fb
from fastbp import _names
from fastbp.nn import activations
from fbhelpers import (
    BACKENDS,
    DTYPES,
    EXPLODING_ROWS,
    EXPLODING_WIDTHS,
    TrainingState,
    core_divergence,
    dense_layers,
    exploding,
    make_net,
    train_until_divergence,
)

# (rows, batch size): three batches per epoch, the last one short (with a bar, one core
# call each); 23 batches, the last of one row (with a bar, two per call).
SHAPES = [(EXPLODING_ROWS, 5), (45, 2)]
OPTIMIZERS = {
    "sgd_momentum": lambda: fb.SGD(lr=0.05, momentum=0.9),
    "adam": lambda: fb.Adam(lr=0.01),
}


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


def test_train_step_divergence_raises_and_changes_nothing(backend, dtype):
    net, X, T, opt = exploding(backend, dtype)
    step, e, before = train_until_divergence(net, X, T, opt)
    assert re.search(rf"train_step {step}\b", str(e)), str(e)
    assert "NaN or inf" in str(e) or "loss is" in str(e)
    assert step > 2  # the test drives a real run to overflow, not a bad first step
    TrainingState(net, opt).assert_equal(before)
    assert opt.state_for(net).steps == step - 1


@pytest.mark.parametrize("rows, batch", SHAPES)
def test_fit_divergence_names_epoch_and_step_and_keeps_earlier_batches(
    backend, dtype, progress, rows, batch
):
    net, X, T, opt = exploding(backend, dtype, rows)
    with pytest.raises(FloatingPointError) as info:
        net.fit(X, T, epochs=200, batch_size=batch, optimizer=opt, shuffle=False, progress=progress)
    found = re.search(r"epoch (\d+) \(History index (\d+)\), step (\d+)", str(info.value))
    assert found, str(info.value)
    epoch, step = int(found[1]), int(found[3])
    assert int(found[2]) == epoch - 1
    assert 1 <= step <= -(-rows // batch)
    # Replay on a twin network: the completed epochs, then the failing epoch's batches
    # before the failing step, one train_step each. The state must be exactly that.
    twin, _, _, twin_opt = exploding(backend, dtype, rows)
    if epoch > 1:
        twin.fit(
            X,
            T,
            epochs=epoch - 1,
            batch_size=batch,
            optimizer=twin_opt,
            shuffle=False,
            progress=False,
        )
    for start in range(0, (step - 1) * batch, batch):
        twin.train_step(X[start : start + batch], T[start : start + batch], twin_opt)
    TrainingState(net, opt).assert_equal(TrainingState(twin, twin_opt))
    # and the failing step itself diverges on the twin too
    with pytest.raises(FloatingPointError):
        twin.train_step(
            X[(step - 1) * batch : step * batch], T[(step - 1) * batch : step * batch], twin_opt
        )


def test_fit_divergence_inside_a_later_core_call_counts_the_calls_before(backend, dtype, progress):
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
    with pytest.raises(
        FloatingPointError, match=r"epoch 1 \(History index 0\), step 8\b.*gradient is NaN or inf"
    ):
        net.fit(X, T, epochs=2, batch_size=1, optimizer=opt, shuffle=False, progress=progress)
    assert opt.state_for(net).steps == 7
    twin = fb.Network([fb.Dense(2, 1)], fb.MSELoss(), dtype=dtype, backend=backend)
    twin.layers[0].W = np.ones((2, 1))
    twin_opt = fb.SGD(lr=1e-30, momentum=0.9)
    for row in range(7):
        twin.train_step(X[row : row + 1], T[row : row + 1], twin_opt)
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


@pytest.mark.parametrize("activation", _names.ACTIVATIONS)
def test_nan_weight_in_the_first_layer_raises_at_the_first_step(backend, dtype, activation):
    """NaN in a weight reaches the loss through every activation (ReLU(NaN) is NaN), so
    the first train_step raises and changes nothing, and predict gives NaN."""
    rng = np.random.default_rng(0)
    act = activations.for_name(activation)
    net = fb.Network(
        [fb.Dense(4, 9), act, fb.Dense(9, 3), type(act)()],
        fb.MSELoss(),
        dtype=dtype,
        backend=backend,
    )
    net.layers[0].W[1, 2] = np.nan
    X = rng.standard_normal((5, 4)).astype(dtype)
    T = rng.standard_normal((5, 3)).astype(dtype)
    opt = fb.SGD(lr=0.1)
    before = net.params.copy()
    with pytest.raises(FloatingPointError, match=r"train_step 1\b.*loss is nan"):
        net.train_step(X, T, opt)
    np.testing.assert_array_equal(net.params, before)  # NaN where it was, nothing else
    assert np.isnan(net.predict(X)).all()


# ---- backward, then optimizer.step -------------------------------------------------


@pytest.mark.parametrize("make_opt", OPTIMIZERS.values(), ids=OPTIMIZERS)
def test_optimizer_step_refuses_an_overflowed_backward_and_training_goes_on(
    backend, dtype, make_opt
):
    """backward on inputs that overflow returns without raising; optimizer.step then
    raises naming the step it would have been, changes nothing, and the next good step
    gives bitwise what a twin that never saw the bad batch gives."""
    widths, rows = EXPLODING_WIDTHS, EXPLODING_ROWS
    nets = [make_net(widths, "identity", "mse_mean", dtype, backend, seed=0) for _ in "ab"]
    opts = [make_opt(), make_opt()]
    rng = np.random.default_rng(1)
    X = rng.standard_normal((rows, widths[0])).astype(dtype)
    T = rng.standard_normal((rows, widths[-1])).astype(dtype)
    for net, opt in zip(nets, opts):
        for _ in range(3):  # so the optimizer state is not all zeros
            net.backward(X, T)
            opt.step(net)
    net, opt = nets[0], opts[0]
    before = TrainingState(net, opt)
    loss = net.backward(np.full_like(X, np.finfo(dtype).max / 4), T)
    grads = np.concatenate([layer.dW.ravel() for layer in dense_layers(net)])
    assert not (np.isfinite(loss) and np.isfinite(grads).all())  # the batch did overflow
    culprit = "a gradient is NaN or inf" if np.isfinite(loss) else f"the loss is {loss:g}"
    with pytest.raises(FloatingPointError, match=r"optimizer step 4\b") as info:
        opt.step(net)
    assert culprit in str(info.value)
    TrainingState(net, opt).assert_equal(before)
    for net, opt in zip(nets, opts):
        net.backward(X, T)
        opt.step(net)
    TrainingState(nets[0], opts[0]).assert_equal(TrainingState(nets[1], opts[1]))
    assert opts[0].state_for(nets[0]).steps == 4


@pytest.mark.parametrize("make_opt", OPTIMIZERS.values(), ids=OPTIMIZERS)
def test_optimizer_step_names_the_layer_whose_gradient_overflowed(backend, dtype, make_opt, rng):
    """Inputs near the dtype's largest value cancel in the first layer (loss 1) but its
    dW overflows; the optimizer state is filled as if trained for 3 steps."""
    big = np.finfo(dtype).max / 1.2
    net = fb.Network([fb.Dense(2, 2), fb.Dense(2, 1)], fb.MSELoss(), dtype=dtype, backend=backend)
    net.layers[0].W = np.ones((2, 2))
    net.layers[1].W = np.ones((2, 1))
    opt = make_opt()
    state = opt.state_for(net)
    for name in type(state).__slots__[:-1]:
        getattr(state, name)[...] = rng.random(net.n_params)
    state.steps = 3
    before = TrainingState(net, opt)
    assert net.backward(np.array([[big, -big]], dtype=dtype), np.ones((1, 1), dtype=dtype)) == 1
    assert not np.isfinite(net.layers[0].dW).all() and np.isfinite(net.layers[1].dW).all()
    with pytest.raises(
        FloatingPointError,
        match=r"optimizer step 4: a gradient is NaN or inf \(dW of Dense "
        r"layer 1 of 2; loss 1\); the parameters and optimizer state",
    ):
        opt.step(net)
    TrainingState(net, opt).assert_equal(before)


def test_optimizer_step_refuses_a_nonfinite_loss_with_finite_gradients(backend, snapshot):
    """backward then step refuses what train_step refuses: here the loss overflows
    (1e400) while every gradient (2e200) is finite."""
    nets = [
        fb.Network([fb.Dense(1, 1)], fb.MSELoss(), dtype="float64", backend=backend) for _ in "ab"
    ]
    X, T = np.ones((1, 1)), np.zeros((1, 1))
    for net in nets:
        net.layers[0].W = [[1e200]]
    snap = snapshot(nets[0])
    assert nets[0].backward(X, T) == np.inf
    assert np.isfinite(nets[0].layers[0].dW).all() and np.isfinite(nets[0].layers[0].db).all()
    with pytest.raises(FloatingPointError, match=r"optimizer step 1: the loss is inf;"):
        fb.SGD(lr=0.1).step(nets[0])
    with pytest.raises(FloatingPointError, match=r"train_step 1: the loss is inf;"):
        nets[1].train_step(X, T, fb.SGD(lr=0.1))
    snap.assert_unchanged()


# ---- fastbp._core ----------------------------------------------------------------


@pytest.mark.parametrize("call", ["train_step", "train_epoch", "step"])
def test_core_reports_the_step_of_the_call(call, dtype):
    """A direct call into fastbp._core raises FloatingPointError with ``step`` (steps of
    the call completed before the failing one) and ``reason``."""
    error = core_divergence(call, dtype)
    expected = 2 if call == "train_epoch" else 0
    assert error.step == expected
    assert "gradient" in error.reason
    assert f"step {expected + 1} of this call" in str(error)
