"""Network.evaluate and predict_proba, the callbacks of fastbp.callbacks (ModelCheckpoint,
CSVLogger, ReduceLROnPlateau), how learning-rate schedules and callbacks compose, and a
refused fit starting no callback."""

from __future__ import annotations

import csv
import sys

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import BACKENDS, make_data, make_net, np_sigmoid, np_softmax

WIDTHS = (4, 8, 3)


def classifier(backend="cpu", seed=0, loss="ce_labels"):
    return make_net(WIDTHS, "relu", loss, "float64", backend, seed=seed)


@pytest.fixture
def data(rng):
    return make_data(WIDTHS, "ce_labels", 60, rng)


# ---- evaluate -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_evaluate_equals_fit_s_validation_scores(data, backend):
    X, T = data
    net = classifier(backend)
    history = net.fit(
        X[:40],
        T[:40],
        epochs=2,
        batch_size=8,
        optimizer=fb.SGD(lr=0.1),
        validation_data=(X[40:], T[40:]),
        metrics=["accuracy"],
    )
    scores = net.evaluate(X[40:], T[40:], metrics=["accuracy"])
    assert scores == {"loss": history.val_loss[-1], "accuracy": history.val_accuracy[-1]}
    assert net.evaluate(X, T) == {"loss": net.loss(X, T)}


def test_evaluate_changes_nothing(data, snapshot):
    X, T = data
    net = classifier()
    net.backward(X[:5], T[:5])
    grads = net.grads.copy()
    snap = snapshot(net)
    net.evaluate(X, T, metrics=["accuracy"])
    snap.assert_unchanged()
    np.testing.assert_array_equal(net.grads, grads)


@pytest.mark.parametrize("metrics, exc", [(["f1"], ValueError), ("accuracy", TypeError)])
def test_evaluate_refuses_bad_metrics(data, metrics, exc):
    with pytest.raises(exc, match="metric"):
        classifier().evaluate(*data, metrics=metrics)


def test_evaluate_accuracy_needs_a_classification_loss(rng):
    X, T = make_data((3, 2), "mse_mean", 10, rng)
    with pytest.raises(ValueError, match="classification"):
        make_net((3, 2)).evaluate(X, T, metrics=["accuracy"])


# ---- predict_proba --------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss, squash", [("ce_labels", np_softmax), ("bce", np_sigmoid)])
def test_predict_proba_squashes_the_logits(rng, backend, loss, squash):
    X, _ = make_data(WIDTHS, loss, 20, rng)
    net = classifier(backend, loss=loss)
    p = net.predict_proba(X)
    assert p.shape == (20, 3) and p.dtype == net.dtype
    np.testing.assert_allclose(p, squash(net.predict(X)), rtol=1e-12, atol=1e-15)
    if loss == "ce_labels":
        np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-12)


def test_predict_proba_refuses_a_regression_network(rng):
    X, _ = make_data((3, 2), "mse_mean", 4, rng)
    with pytest.raises(ValueError, match="MSELoss"):
        make_net((3, 2)).predict_proba(X)


# ---- learning-rate schedules and callbacks ---------------------------------------------


def lr_setter(opt, when):
    """A callback that sets opt.lr to when[epoch] after that epoch, if listed."""

    def callback(epoch, logs):
        if epoch in when:
            opt.lr = when[epoch]

    return callback


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_callable_schedule_sets_each_epoch_s_rate(data, backend):
    X, T = data
    a, b = classifier(backend), classifier(backend)
    opt_a, opt_b = fb.SGD(lr=0.3, momentum=0.9), fb.SGD(lr=0.3, momentum=0.9)
    history = a.fit(
        X,
        T,
        epochs=4,
        batch_size=16,
        optimizer=opt_a,
        shuffle=False,
        lr_schedule=lambda epoch: 0.1 / (epoch + 1),
    )
    assert history.lr == [0.1, 0.05, 0.1 / 3, 0.025]
    assert opt_a.lr == 0.3
    for lr in history.lr:
        opt_b.lr = lr
        b.fit(X, T, epochs=1, batch_size=16, optimizer=opt_b, shuffle=False)
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize(
    "schedule, exc, word",
    [
        (lambda epoch: -1.0, ValueError, r"epoch 1 \(History index 0\)"),
        (lambda epoch: "fast", TypeError, r"epoch 1 \(History index 0\)"),
        (lambda epoch: 0.1 if epoch < 2 else 0.0, ValueError, r"epoch 3 \(History index 2\)"),
        (0.5, TypeError, "lr_schedule"),
    ],
)
def test_bad_schedules_are_refused_before_training(data, snapshot, schedule, exc, word):
    net = classifier()
    snap = snapshot(net)
    with pytest.raises(exc, match=word):
        net.fit(*data, epochs=3, batch_size=8, optimizer=fb.SGD(lr=0.1), lr_schedule=schedule)
    snap.assert_unchanged()


def test_without_a_schedule_a_callback_s_change_of_lr_holds(data):
    X, T = data
    opt = fb.SGD(lr=0.1)
    history = classifier().fit(
        X, T, epochs=4, batch_size=8, optimizer=opt, callbacks=[lr_setter(opt, {0: 0.05, 2: 0.01})]
    )
    assert history.lr == [0.1, 0.05, 0.05, 0.01]
    assert opt.lr == 0.1  # set back when fit ends


def test_with_a_schedule_callbacks_scale_the_scheduled_rates(data):
    X, T = data
    opt = fb.SGD(lr=0.1)
    history = classifier().fit(
        X,
        T,
        epochs=4,
        batch_size=8,
        optimizer=opt,
        lr_schedule=fb.schedules.StepLR(step_size=1, gamma=0.5),
        callbacks=[lr_setter(opt, {1: 0.005})],
    )
    # epoch 1 ran at 0.05; the callback made it 0.005, a factor of 0.1 on what follows
    assert history.lr == pytest.approx([0.1, 0.05, 0.0025, 0.00125], rel=1e-12)
    assert opt.lr == 0.1


def test_lr_is_set_back_when_fit_fails(data):
    X, T = data
    opt = fb.SGD(lr=0.1)

    def fail(epoch, logs):
        opt.lr = 0.001
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        classifier().fit(X, T, epochs=3, batch_size=8, optimizer=opt, callbacks=[fail])
    assert opt.lr == 0.1


# ---- ReduceLROnPlateau ----------------------------------------------------------------


def run_plateau(values, **kwargs):
    """The rates a ReduceLROnPlateau sets over fake epochs whose val_loss is ``values``."""
    opt = fb.SGD(lr=1.0)
    cb = fb.callbacks.ReduceLROnPlateau(**kwargs)
    cb.on_fit_start(None, opt, ["loss", "val_loss", "val_accuracy"])
    rates = []
    for epoch, value in enumerate(values):
        cb(epoch, {"val_loss": value, "val_accuracy": value})
        rates.append(opt.lr)
    return rates, cb


def test_reduce_lr_on_plateau_follows_keras():
    # Keras: reduce once `patience` epochs in a row did not improve by more than min_delta
    rates, cb = run_plateau([1.0, 0.9, 0.9, 0.9, 0.89995, 0.5, 0.5, 0.5], factor=0.5, patience=2)
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25]
    assert cb.reductions == [(3, 0.5), (7, 0.25)]


def test_reduce_lr_on_plateau_cooldown_and_min_lr():
    rates, _ = run_plateau([1.0] * 8, factor=0.1, patience=1, cooldown=2, min_lr=0.005)
    # reductions after epochs 1, 3 and 5 (as Keras, the epoch in which a cooldown ends
    # counts); the third stops at min_lr, and none comes after it
    assert rates == pytest.approx([1.0, 0.1, 0.1, 0.01, 0.01, 0.005, 0.005, 0.005])


def test_reduce_lr_on_plateau_max_mode_for_accuracy():
    rates, _ = run_plateau([0.5, 0.6, 0.4, 0.3], monitor="val_accuracy", patience=2)
    assert rates == [1.0, 1.0, 1.0, pytest.approx(0.1)]


def test_reduce_lr_on_plateau_lowers_the_rate_in_fit(data):
    X, T = data
    opt = fb.SGD(lr=0.1)
    cb = fb.callbacks.ReduceLROnPlateau(patience=1, factor=0.5, min_delta=10.0)
    history = classifier().fit(
        X, T, epochs=4, batch_size=8, optimizer=opt, validation_split=0.25, callbacks=[cb]
    )
    # min_delta=10: no epoch after the first improves, so each one halves the rate
    assert history.lr == pytest.approx([0.1, 0.1, 0.05, 0.025])
    assert opt.lr == 0.1


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        (dict(factor=1.0), ValueError),
        (dict(factor=0.0), ValueError),
        (dict(patience=0), ValueError),
        (dict(min_lr=-1.0), ValueError),
        (dict(mode="up"), ValueError),
        (dict(cooldown=-1), ValueError),
        (dict(monitor=3), TypeError),
    ],
)
def test_reduce_lr_on_plateau_refuses_bad_settings(kwargs, exc):
    with pytest.raises(exc):
        fb.callbacks.ReduceLROnPlateau(**kwargs)


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: fb.callbacks.ReduceLROnPlateau(),
        lambda tmp: fb.callbacks.ModelCheckpoint(tmp / "m.npz"),
    ],
)
def test_a_monitor_the_logs_lack_is_refused_before_training(data, snapshot, tmp_path, make):
    net = classifier()
    snap = snapshot(net)
    with pytest.raises(ValueError, match="val_loss"):
        net.fit(*data, epochs=2, batch_size=8, optimizer=fb.SGD(lr=0.1), callbacks=[make(tmp_path)])
    snap.assert_unchanged()
    assert not (tmp_path / "m.npz").exists()


# ---- ModelCheckpoint ------------------------------------------------------------------


def test_model_checkpoint_keeps_the_best_epoch_s_network(data, tmp_path):
    X, T = data
    path = tmp_path / "best.npz"
    net = classifier()
    seen = []

    def remember(epoch, logs):
        seen.append((logs["val_loss"], net.params.copy()))

    cb = fb.callbacks.ModelCheckpoint(path)
    net.fit(
        X,
        T,
        epochs=6,
        batch_size=8,
        optimizer=fb.SGD(lr=0.5, momentum=0.9),
        validation_split=0.25,
        callbacks=[remember, cb],
    )
    best = int(np.argmin([v for v, _ in seen]))
    assert cb.best_epoch == best and cb.best == seen[best][0]
    np.testing.assert_array_equal(fb.Network.load(path).params, seen[best][1])


def test_model_checkpoint_every_epoch(data, tmp_path):
    X, T = data
    path = tmp_path / "last.npz"
    net = classifier()
    cb = fb.callbacks.ModelCheckpoint(path, save_best_only=False)
    net.fit(X, T, epochs=3, batch_size=8, optimizer=fb.SGD(lr=0.1), callbacks=[cb])
    assert cb.best_epoch == 2
    np.testing.assert_array_equal(fb.Network.load(path).params, net.params)


def test_model_checkpoint_max_mode_for_accuracy(data, tmp_path):
    X, T = data
    cb = fb.callbacks.ModelCheckpoint(tmp_path / "m.npz", monitor="val_accuracy")
    history = classifier().fit(
        X,
        T,
        epochs=5,
        batch_size=8,
        optimizer=fb.SGD(lr=0.3),
        validation_split=0.25,
        metrics=["accuracy"],
        callbacks=[cb],
    )
    assert cb.best == max(history.val_accuracy)
    assert cb.best_epoch == history.val_accuracy.index(cb.best)


# ---- CSVLogger ------------------------------------------------------------------------


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_csv_logger_writes_the_header_then_a_row_per_epoch(data, tmp_path):
    X, T = data
    path = tmp_path / "log.csv"
    rows_seen = []
    history = classifier().fit(
        X,
        T,
        epochs=3,
        batch_size=8,
        optimizer=fb.SGD(lr=0.1),
        validation_split=0.25,
        metrics=["accuracy"],
        callbacks=[
            fb.callbacks.CSVLogger(path),
            lambda epoch, logs: rows_seen.append(len(read_rows(path))),
        ],
    )
    rows = read_rows(path)
    assert rows[0] == ["epoch", "loss", "val_loss", "accuracy", "val_accuracy", "lr", "epoch_time"]
    assert rows_seen == [2, 3, 4]  # flushed after each epoch, header first
    for epoch, row in enumerate(rows[1:]):
        assert int(row[0]) == epoch
        assert float(row[1]) == history.loss[epoch]  # written to full precision
        assert float(row[2]) == history.val_loss[epoch]
        assert float(row[6]) == history.epoch_time[epoch]


def test_csv_logger_appends_without_a_second_header(data, tmp_path):
    X, T = data
    path = tmp_path / "log.csv"
    net, opt = classifier(), fb.SGD(lr=0.1)
    net.fit(X, T, epochs=2, batch_size=8, optimizer=opt, callbacks=[fb.callbacks.CSVLogger(path)])
    net.fit(
        X,
        T,
        epochs=1,
        batch_size=8,
        optimizer=opt,
        callbacks=[fb.callbacks.CSVLogger(path, append=True)],
    )
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("epoch,loss")
    assert lines[3].startswith("0,")


@pytest.mark.parametrize(
    "first_metrics, first_separator, metrics",
    [
        ([], ",", ["accuracy"]),  # more columns
        (["accuracy"], ",", []),  # fewer columns
        ([], ";", []),
    ],
)  # another separator: the header reads as one field
def test_csv_logger_refuses_to_append_under_another_header(
    data, tmp_path, first_metrics, first_separator, metrics
):
    X, T = data
    path = tmp_path / "log.csv"
    net, opt = classifier(), fb.SGD(lr=0.1)
    net.fit(
        X,
        T,
        epochs=2,
        batch_size=8,
        optimizer=opt,
        metrics=first_metrics,
        callbacks=[fb.callbacks.CSVLogger(path, separator=first_separator)],
    )
    before, params = path.read_bytes(), net.params.copy()
    with pytest.raises(ValueError) as caught:
        net.fit(
            X,
            T,
            epochs=1,
            batch_size=8,
            optimizer=opt,
            metrics=metrics,
            callbacks=[fb.callbacks.CSVLogger(path, append=True)],
        )
    found = next(csv.reader(path.read_text().splitlines()))  # as a "," logger reads it
    assert str(found) in str(caught.value)
    assert str(["epoch", "loss", *metrics, "lr", "epoch_time"]) in str(caught.value)
    assert path.read_bytes() == before
    np.testing.assert_array_equal(net.params, params)  # refused before training


def test_csv_logger_appends_to_an_empty_file_with_a_header(data, tmp_path):
    path = tmp_path / "log.csv"
    path.touch()
    classifier().fit(
        *data,
        epochs=1,
        batch_size=8,
        optimizer=fb.SGD(lr=0.1),
        callbacks=[fb.callbacks.CSVLogger(path, append=True)],
    )
    assert read_rows(path)[0] == ["epoch", "loss", "lr", "epoch_time"]


def refusal(reason, tmp_path, monkeypatch, opt):
    """The fit arguments (besides the data, batch size and a CSVLogger) that refuse a fit
    for ``reason``."""
    if reason == "tqdm missing":
        monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
        monkeypatch.setitem(sys.modules, "tqdm.auto", None)
        return dict(progress=True)
    if reason == "optimizer in another fit":
        fb.optim.optimizers.FitClaim(opt).take()
        return {}
    if reason == "a later callback's monitor":
        return dict(callbacks=[fb.callbacks.ModelCheckpoint(tmp_path / "m.npz")])
    if reason == "a later log's header":
        (tmp_path / "other.csv").write_text("epoch,val_loss\n0,1.0\n")
        return dict(callbacks=[fb.callbacks.CSVLogger(tmp_path / "other.csv", append=True)])
    return {
        "epochs": dict(epochs=0),
        "early stopping": dict(early_stopping=True),
        "schedule": dict(lr_schedule=lambda epoch: -1.0),
        "metric": dict(metrics=["top5"]),
    }[reason]


@pytest.mark.parametrize(
    "reason, error",
    [
        ("tqdm missing", ImportError),
        ("optimizer in another fit", RuntimeError),
        ("a later callback's monitor", ValueError),
        ("a later log's header", ValueError),
        ("epochs", ValueError),
        ("early stopping", ValueError),
        ("schedule", ValueError),
        ("metric", ValueError),
    ],
)
def test_a_refused_fit_leaves_an_existing_csv_log_untouched(
    data, tmp_path, monkeypatch, reason, error
):
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss,lr,epoch_time\n0,1.5,0.1,0.01\n")
    net, opt = classifier(), fb.SGD(lr=0.1)
    kwargs = dict(epochs=1, batch_size=8, optimizer=opt, progress=False)
    kwargs.update(refusal(reason, tmp_path, monkeypatch, opt))
    callbacks = [fb.callbacks.CSVLogger(path), *kwargs.pop("callbacks", ())]
    with pytest.raises(error):
        net.fit(*data, callbacks=callbacks, **kwargs)
    assert path.read_text() == "epoch,loss,lr,epoch_time\n0,1.5,0.1,0.01\n"
    assert callbacks[0]._file is None


def test_csv_logger_closes_its_file_when_fit_fails(data, tmp_path):
    logger = fb.callbacks.CSVLogger(tmp_path / "log.csv")

    def fail(epoch, logs):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        classifier().fit(
            *data, epochs=2, batch_size=8, optimizer=fb.SGD(lr=0.1), callbacks=[logger, fail]
        )
    assert logger._file is None
    assert len(read_rows(tmp_path / "log.csv")) == 2


@pytest.mark.parametrize(
    "kwargs, exc", [(dict(separator=",,"), ValueError), (dict(append="yes"), TypeError)]
)
def test_csv_logger_refuses_bad_settings(tmp_path, kwargs, exc):
    with pytest.raises(exc):
        fb.callbacks.CSVLogger(tmp_path / "log.csv", **kwargs)
