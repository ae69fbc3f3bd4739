"""fit's sample_weight and class_weight: Keras's definitions (each row's loss times its
weight, over the unweighted divisor), applied in the C++ loss; weights of one change
nothing, rows of weight zero have exactly no effect, and bad weights are refused first."""

from __future__ import annotations

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import BACKENDS, backend_rtol, make_data, make_net

WIDTHS = (4, 7, 3)
ROWS = 30
LOSSES = ("mse_mean", "mse_sum", "ce_labels", "ce_probs", "bce", "bce_sum")


def train(X, T, backend="cpu", loss="ce_labels", dtype="float64", lr=0.2, **kwargs):
    """A fresh network after 3 shuffled epochs of SGD with momentum; with its History."""
    net = make_net(WIDTHS, "tanh", loss, dtype, backend, seed=0)
    history = net.fit(X, T, epochs=3, batch_size=8, optimizer=fb.SGD(lr=lr, momentum=0.9), **kwargs)
    return net, history


def data(loss, rng, dtype="float64", rows=ROWS):
    return make_data(WIDTHS, loss, rows, rng, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", LOSSES)
def test_weights_of_one_change_nothing(rng, backend, dtype, loss):
    X, T = data(loss, rng, dtype)
    plain, h_plain = train(X, T, backend, loss, dtype)
    ones, h_ones = train(X, T, backend, loss, dtype, sample_weight=np.ones(ROWS))
    np.testing.assert_array_equal(ones.params, plain.params)
    assert h_ones.loss == h_plain.loss


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", LOSSES)
def test_rows_of_weight_zero_have_exactly_no_effect(rng, backend, loss):
    X, T = data(loss, rng)
    w = rng.uniform(0.5, 2.0, ROWS)
    zero = rng.choice(ROWS, 10, replace=False)
    w[zero] = 0
    a, h_a = train(X, T, backend, loss, sample_weight=w)
    # Anything else in those rows, inputs far out of the range of the others included.
    X2, T2 = X.copy(), T.copy()
    X2[zero] = 1e150 * rng.standard_normal((10, WIDTHS[0]))
    T2[zero] = data(loss, rng)[1][:10]
    b, h_b = train(X2, T2, backend, loss, sample_weight=w)
    np.testing.assert_array_equal(a.params, b.params)
    assert h_a.loss == h_b.loss


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backends_agree_with_weights(rng, loss, dtype):
    X, T = data(loss, rng, dtype)
    w = rng.uniform(0, 3, ROWS)
    # a rate small enough for the summed losses not to diverge, which would magnify rounding
    cpu, h_cpu = train(X, T, "cpu", loss, dtype, lr=0.01, sample_weight=w)
    ref, h_ref = train(X, T, "numpy", loss, dtype, lr=0.01, sample_weight=w)
    np.testing.assert_allclose(
        cpu.params, ref.params, rtol=backend_rtol(dtype), atol=backend_rtol(dtype)
    )
    np.testing.assert_allclose(h_cpu.loss, h_ref.loss, rtol=backend_rtol(dtype))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", LOSSES)
def test_weighted_loss_and_gradient_follow_keras_definition(rng, backend, loss):
    """One batch of all rows, one SGD step at lr 1: the recorded loss is
    sum(w_i * loss_i) / N (sum(w_i * loss_i) for "sum", loss_i summed over the outputs,
    PyTorch's sum) and the update is its gradient, both as computed by PyTorch."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    X, T = data(loss, rng)
    w = rng.uniform(0, 3, ROWS)
    w[:4] = 0
    net = make_net(WIDTHS, "tanh", loss, "float64", backend, seed=0)
    module = net.to_torch()
    before = net.params.copy()
    history = net.fit(
        X, T, epochs=1, batch_size=ROWS, optimizer=fb.SGD(lr=1.0), shuffle=False, sample_weight=w
    )
    y = module(torch.from_numpy(X))
    t = torch.from_numpy(T)
    if loss.startswith("mse"):
        per_row = ((y - t) ** 2).mean(dim=1)
    elif loss.startswith("bce"):
        per_row = F.binary_cross_entropy_with_logits(y, t, reduction="none").mean(dim=1)
    else:
        per_row = F.cross_entropy(y, t, reduction="none")
    weighted = (torch.from_numpy(w) * per_row).sum()
    if loss.endswith("_sum"):  # PyTorch's "sum" adds every output, not each row's mean
        weighted = weighted * (1 if loss.startswith("ce") else WIDTHS[-1])
    else:
        weighted = weighted / ROWS
    weighted.backward()
    assert history.loss[0] == pytest.approx(weighted.item(), rel=1e-12)
    grads = np.concatenate(
        [
            g
            for layer in module
            if isinstance(layer, torch.nn.Linear)
            for g in (layer.weight.grad.numpy().T.ravel(), layer.bias.grad.numpy())
        ]
    )
    np.testing.assert_allclose(before - net.params, grads, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["ce_labels", "ce_probs"])
def test_class_weight_is_each_row_s_class_weight(rng, backend, loss):
    X, T = data(loss, rng)
    classes = T if T.ndim == 1 else T.argmax(axis=1)
    table = np.array([2.0, 1.0, 0.5])  # class 1 is missing from the dict: weight 1
    a, h_a = train(X, T, backend, loss, class_weight={0: 2.0, 2: 0.5})
    b, h_b = train(X, T, backend, loss, sample_weight=table[classes])
    np.testing.assert_array_equal(a.params, b.params)
    assert h_a.loss == h_b.loss


def test_class_weight_of_binary_targets_rounds_them(rng):
    widths = (4, 5, 1)
    X = rng.standard_normal((20, 4))
    T = rng.random((20, 1))
    nets = [make_net(widths, "tanh", "bce", seed=0) for _ in range(2)]
    kwargs = dict(epochs=2, batch_size=8, optimizer=fb.SGD(lr=0.3))
    nets[0].fit(X, T, class_weight={1: 3.0}, **kwargs)
    nets[1].fit(X, T, sample_weight=np.where(T[:, 0] >= 0.5, 3.0, 1.0), **kwargs)
    np.testing.assert_array_equal(nets[0].params, nets[1].params)


@pytest.mark.parametrize("backend", BACKENDS)
def test_validation_split_leaves_the_held_out_rows_unweighted(rng, backend):
    X, T = data("ce_labels", rng)
    w = rng.uniform(0, 2, ROWS)
    a, h_a = train(X, T, backend, sample_weight=w, validation_split=0.2)
    b = make_net(WIDTHS, "tanh", "ce_labels", "float64", backend, seed=0)
    held = fb.training.loop._held_out_rows(b, T, 6)  # as fit draws them, from b's generator
    keep = np.setdiff1d(np.arange(ROWS), held)
    h_b = b.fit(
        X[keep],
        T[keep],
        epochs=3,
        batch_size=8,
        optimizer=fb.SGD(lr=0.2, momentum=0.9),
        sample_weight=w[keep],
        validation_data=(X[held], T[held]),
    )
    np.testing.assert_array_equal(a.params, b.params)
    assert h_a.val_loss == h_b.val_loss and h_a.loss == h_b.loss


def test_weights_with_the_progress_bar_train_as_without_it(rng, recording_bars):
    X, T = data("ce_labels", rng, rows=200)
    w = rng.uniform(0, 2, 200)
    a, h_a = train(X, T, sample_weight=w, progress=False)
    b, h_b = train(X, T, sample_weight=w, progress=True)
    assert len(recording_bars) == 1
    np.testing.assert_array_equal(a.params, b.params)
    assert h_a.loss == h_b.loss


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        (dict(sample_weight=np.ones(ROWS), class_weight={0: 1.0}), ValueError, "not both"),
        (dict(sample_weight=np.ones(ROWS - 1)), ValueError, r"\(30,\), got \(29,\)"),
        (dict(sample_weight=np.ones((ROWS, 1))), ValueError, r"\(30,\), got \(30, 1\)"),
        (dict(sample_weight=np.full(ROWS, np.nan)), ValueError, "NaN"),
        (dict(sample_weight=-np.arange(ROWS, dtype=float)), ValueError, "-1.0 at index 1"),
        (dict(sample_weight=np.array(["a"] * ROWS)), TypeError, "sample_weight"),
        (dict(class_weight=[1.0, 2.0]), TypeError, "dict"),
        (dict(class_weight={3: 1.0}), ValueError, r"\[0, 3\), got 3"),
        (dict(class_weight={True: 1.0}), ValueError, "class indices"),
        (dict(class_weight={0: -1.0}), ValueError, r"class_weight\[0\]"),
        (dict(class_weight={0: "heavy"}), TypeError, r"class_weight\[0\]"),
    ],
)
def test_bad_weights_are_refused_before_training(rng, snapshot, kwargs, exc, words):
    X, T = data("ce_labels", rng)
    net = make_net(WIDTHS, "tanh", "ce_labels")
    snap = snapshot(net)
    with pytest.raises(exc, match=words):
        net.fit(X, T, epochs=1, batch_size=8, optimizer=fb.SGD(lr=0.1), **kwargs)
    snap.assert_unchanged()


@pytest.mark.parametrize("loss", [fb.MSELoss(), fb.L1Loss(), fb.HuberLoss()], ids=repr)
def test_class_weight_needs_a_classification_loss(rng, loss):
    X, T = data("mse_mean", rng)
    net = fb.Network([fb.Dense(4, 7), fb.Tanh(), fb.Dense(7, 3)], loss, seed=0)
    with pytest.raises(ValueError, match="classification"):
        net.fit(X, T, epochs=1, batch_size=8, optimizer=fb.SGD(lr=0.1), class_weight={0: 1.0})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", LOSSES)
def test_backward_weighs_rows_as_one_full_batch_of_fit_does(rng, backend, loss):
    X, T = data(loss, rng)
    w = rng.uniform(0, 3, ROWS)
    a = make_net(WIDTHS, "tanh", loss, "float64", backend, seed=0)
    b = make_net(WIDTHS, "tanh", loss, "float64", backend, seed=0)
    before = a.params.copy()
    value = a.backward(X, T, sample_weight=w)
    history = b.fit(
        X, T, epochs=1, batch_size=ROWS, optimizer=fb.SGD(lr=1.0), shuffle=False, sample_weight=w
    )
    assert value == pytest.approx(history.loss[0], rel=1e-13)  # fit sums the batch losses
    np.testing.assert_allclose(a.grads, before - b.params, rtol=1e-10, atol=1e-12)
    assert a.backward(X, T, sample_weight=np.ones(ROWS)) == a.backward(X, T)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_refuses_bad_weights_and_leaves_the_gradients(rng, backend):
    X, T = data("ce_labels", rng)
    net = make_net(WIDTHS, "tanh", "ce_labels", "float64", backend, seed=0)
    net.backward(X, T)
    grads = net.grads.copy()
    for bad, word in ((-np.ones(ROWS), ">= 0"), (np.ones(3), r"\(30,\)")):
        with pytest.raises(ValueError, match=word):
            net.backward(X, T, sample_weight=bad)
    np.testing.assert_array_equal(net.grads, grads)


def test_class_weight_needs_one_binary_output(rng):
    X, T = data("bce", rng)
    with pytest.raises(ValueError, match="one output"):
        make_net(WIDTHS, loss="bce").fit(
            X, T, epochs=1, batch_size=8, optimizer=fb.SGD(lr=0.1), class_weight={1: 2.0}
        )


@pytest.mark.skipif(not fb.cuda_available(), reason="needs the CUDA backend and a GPU")
def test_cuda_refuses_weights(rng):
    X, T = data("ce_labels", rng, "float32")
    net = make_net(WIDTHS, "tanh", "ce_labels", "float32", "cuda")
    with pytest.raises(NotImplementedError, match="cuda"):
        net.fit(X, T, epochs=1, batch_size=8, optimizer=fb.SGD(lr=0.1), sample_weight=np.ones(ROWS))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "weights, exc, words",
    [
        (np.ones(ROWS, dtype=np.float32), TypeError, "sample_weight"),
        (np.ones(ROWS - 1), ValueError, "sample_weight"),
        (np.full(ROWS, np.inf), ValueError, "NaN or inf"),
        (np.r_[np.ones(ROWS - 1), -2.0], ValueError, "at index 29"),
    ],
)
def test_the_core_checks_weights_itself(rng, snapshot, backend, weights, exc, words):
    X, T = data("ce_labels", rng)
    net = make_net(WIDTHS, "tanh", "ce_labels", backend=backend)
    opt = fb.SGD(lr=0.1)
    state, calls = net._bind_optimizer(opt)
    snap = snapshot(net)
    with pytest.raises(exc, match=words):
        calls.train_epoch(X, T, np.arange(ROWS), 8, *opt.core_args(state), sample_weight=weights)
    snap.assert_unchanged()
