"""Network.fit's training features: validation_split, metrics, callbacks and early
stopping (the progress bar: test_progress.py)."""

from __future__ import annotations

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import BACKENDS, make_data, make_net

WIDTHS = (4, 8, 3)


@pytest.fixture
def data(rng):
    return make_data(WIDTHS, "ce_labels", 50, rng)


def net_for(backend="cpu", seed=0):
    return make_net(WIDTHS, "relu", "ce_labels", "float64", backend, seed=seed)


def held_out(net, T, split):
    """The rows fit(validation_split=split) holds out, drawn from ``net``'s generator as
    fit draws them (so ``net`` then shuffles as a network that fit with the split)."""
    return fb.training.loop._held_out_rows(net, np.asarray(T), int(round(split * len(T))))


@pytest.mark.parametrize("backend", BACKENDS)
def test_validation_split_validates_on_the_drawn_rows_and_trains_on_the_rest(data, backend):
    X, T = data
    a, b = net_for(backend), net_for(backend)
    ha = a.fit(X, T, epochs=3, batch_size=8, optimizer=fb.SGD(lr=0.1), validation_split=0.2)
    held = held_out(b, T, 0.2)
    keep = np.setdiff1d(np.arange(len(X)), held)
    hb = b.fit(
        X[keep],
        T[keep],
        epochs=3,
        batch_size=8,
        optimizer=fb.SGD(lr=0.1),
        validation_data=(X[held], T[held]),
    )
    assert len(held) == 10 and not np.array_equal(held, np.arange(40, 50))
    assert ha.loss == hb.loss and ha.val_loss == hb.val_loss
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("loss", ["ce_labels", "ce_probs", "bce"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_validation_split_of_sorted_classes_takes_each_class_s_share(rng, loss, seed):
    counts = (30, 20, 10) if loss != "bce" else (35, 25)
    labels = np.repeat(np.arange(len(counts)), counts)
    widths = (4, 8, len(counts) if loss != "bce" else 1)
    T = {
        "ce_labels": labels,
        "ce_probs": np.eye(3)[labels],
        "bce": labels[:, None].astype(np.float64),
    }[loss]
    net = make_net(widths, "relu", loss, "float64", "cpu", seed=seed)
    held = held_out(net, T, 0.2)
    assert np.bincount(labels[held]).tolist() == [c // 5 for c in counts]
    again = held_out(make_net(widths, "relu", loss, "float64", "cpu", seed=seed), T, 0.2)
    np.testing.assert_array_equal(held, again)


def test_validation_split_of_a_regression_is_drawn_with_the_seed(rng):
    T = rng.standard_normal((50, 3))
    draws = [
        held_out(make_net(WIDTHS, "relu", "mse_mean", "float64", "cpu", seed=s), T, 0.3)
        for s in (0, 0, 1)
    ]
    np.testing.assert_array_equal(draws[0], draws[1])
    assert not np.array_equal(draws[0], draws[2])
    assert len(draws[0]) == 15 and len(set(draws[0])) == 15
    assert not np.array_equal(draws[0], np.arange(35, 50))


def test_a_share_that_does_not_divide_goes_to_the_largest_remainders():
    labels = np.repeat([0, 1, 2], [7, 7, 6])  # 0.25 of 20 = 5: shares 1.75, 1.75, 1.5
    net = net_for()
    held = held_out(net, labels, 0.25)
    assert np.bincount(labels[held]).tolist() == [2, 2, 1]


@pytest.mark.parametrize(
    "kwargs, exc, word",
    [
        (dict(validation_split=1.0), ValueError, "validation_split"),
        (dict(validation_split=0.001), ValueError, "validation_split"),
        (dict(validation_split=-0.1), ValueError, "validation_split"),
        (dict(validation_split=0.2, validation_data="both"), ValueError, "not both"),
        (dict(metrics="accuracy"), TypeError, "metrics"),
        (dict(metrics=["f1"]), ValueError, "metric"),
        (dict(callbacks=[print, 3]), TypeError, "callbacks"),
        (dict(early_stopping=True), ValueError, "early_stopping"),
        (dict(early_stopping=True, validation_split=0.2, patience=0), ValueError, "patience"),
    ],
)
def test_bad_arguments_are_refused_before_training(data, snapshot, kwargs, exc, word):
    X, T = data
    net = net_for()
    snap = snapshot(net)
    with pytest.raises(exc, match=word):
        net.fit(X, T, epochs=2, batch_size=8, optimizer=fb.SGD(lr=0.1), **kwargs)
    snap.assert_unchanged()


@pytest.mark.parametrize("loss", [fb.MSELoss(), fb.L1Loss(), fb.HuberLoss()], ids=repr)
def test_accuracy_needs_a_classification_loss(rng, loss):
    X, T = make_data((3, 2), "mse_mean", 10, rng)
    net = fb.Network([fb.Dense(3, 2)], loss, seed=0)
    with pytest.raises(ValueError, match="classification"):
        net.fit(X, T, epochs=1, batch_size=5, optimizer=fb.SGD(lr=0.1), metrics=["accuracy"])


def test_a_refused_fit_draws_no_validation_split(data):
    X, T = data
    net, twin = net_for(), net_for()
    with pytest.raises(TypeError, match="callbacks"):
        net.fit(
            X,
            T,
            epochs=1,
            batch_size=8,
            optimizer=fb.SGD(lr=0.1),
            validation_split=0.2,
            callbacks=[3],
        )
    assert held_out(net, T, 0.2).tolist() == held_out(twin, T, 0.2).tolist()


@pytest.mark.parametrize("loss", ["ce_labels", "ce_probs", "bce"])
def test_accuracy_is_the_fraction_of_correct_predictions(rng, loss):
    X, T = make_data(WIDTHS, loss, 30, rng)
    net = make_net(WIDTHS, "relu", loss, seed=0)
    history = net.fit(
        X,
        T,
        epochs=2,
        batch_size=8,
        optimizer=fb.SGD(lr=0.1),
        metrics=["accuracy"],
        validation_data=(X[:10], T[:10]),
    )
    y = net.predict(X)
    if loss == "bce":
        want = np.mean((y > 0) == (T > 0.5))
    else:
        want = np.mean(y.argmax(1) == (T if T.ndim == 1 else T.argmax(1)))
    assert history.accuracy[-1] == want
    assert len(history.val_accuracy) == 2


def test_callbacks_see_every_epoch_and_can_stop(data):
    X, T = data
    seen = []

    def record(epoch, logs):
        seen.append((epoch, sorted(logs)))

    def stop_after_third(epoch, logs):
        return epoch < 2

    history = net_for().fit(
        X,
        T,
        epochs=10,
        batch_size=8,
        optimizer=fb.SGD(lr=0.1),
        validation_split=0.2,
        callbacks=[record, stop_after_third],
    )
    assert [e for e, _ in seen] == [0, 1, 2]
    assert seen[0][1] == ["epoch_time", "loss", "lr", "val_loss"]
    assert history.epochs == 3 and history.stopped_epoch == 2


def test_a_callback_returning_none_does_not_stop(data):
    X, T = data
    history = net_for().fit(
        X, T, epochs=4, batch_size=8, optimizer=fb.SGD(lr=0.1), callbacks=[lambda epoch, logs: None]
    )
    assert history.epochs == 4 and history.stopped_epoch is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_early_stopping_restores_the_best_weights(rng, backend):
    """A learning rate too high to settle: validation loss rises after an early best;
    training stops `patience` epochs after it, with the best epoch's weights back."""
    X, T = make_data(WIDTHS, "ce_labels", 60, rng)
    Xv, Tv = make_data(WIDTHS, "ce_labels", 30, rng)  # unrelated labels: overfitting hurts
    net = net_for(backend)
    snapshots = []
    history = net.fit(
        X,
        T,
        epochs=200,
        batch_size=4,
        optimizer=fb.Adam(lr=0.05),
        validation_data=(Xv, Tv),
        early_stopping=True,
        patience=3,
        callbacks=[lambda e, logs: snapshots.append(net.layers[0].W.copy())],
    )
    best = int(np.argmin(history.val_loss))
    assert history.best_epoch == best
    assert history.stopped_epoch == best + 3 == history.epochs - 1
    np.testing.assert_array_equal(net.layers[0].W, snapshots[best])
    assert net.loss(Xv, Tv) == pytest.approx(history.val_loss[best], rel=1e-12)


def test_arrays_with_an_equal_but_distinct_dtype_object_are_accepted(data):
    """An unpickled (or memory-mapped) array carries its own float64 dtype object."""
    import pickle

    X, T = data
    X2 = X.view(pickle.loads(pickle.dumps(np.dtype("float64"))))
    assert X2.dtype is not X.dtype
    a, b = net_for(), net_for()
    a.fit(X, T, epochs=1, batch_size=8, optimizer=fb.SGD(lr=0.1), shuffle=False)
    b.fit(X2, T, epochs=1, batch_size=8, optimizer=fb.SGD(lr=0.1), shuffle=False)
    np.testing.assert_array_equal(a.predict(X), b.predict(X2))
