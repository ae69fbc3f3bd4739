"""The progress bar of Network.fit: on by default in a terminal; with it, an epoch runs
as several core calls on consecutive whole batches of its row order, the bar moving after
each with the epoch's running loss, and training is bitwise what it is without the bar.
(``recording_bars`` in conftest.py stands in for the tqdm bar; divergence in a sliced
epoch is tested in test_divergence.py.)"""

from __future__ import annotations

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import BACKENDS, DTYPES, make_data, make_net, sgd_core_args

WIDTHS = (5, 16, 3)
ROWS, BATCH = 203, 4  # 51 batches per epoch, the last one of 3 rows
SLICE = 3  # batches per core call with a bar: ceil(51 / 20)
OPTIMIZERS = {
    "sgd": lambda: fb.SGD(lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda: fb.Adam(lr=1e-2),
}


def data(dtype="float64"):
    return make_data(WIDTHS, "ce_labels", ROWS, np.random.default_rng(0), dtype)


def net_for(dtype="float64", backend="cpu"):
    return make_net(WIDTHS, "relu", "ce_labels", dtype, backend, seed=0)


class CountingCore:
    """Wraps a network core, noting the rows of every train_epoch call."""

    def __init__(self, core):
        self.core, self.rows = core, []

    def __getattr__(self, name):
        return getattr(self.core, name)

    def train_epoch(self, X, *args, **kwargs):
        self.rows.append(len(X))
        return self.core.train_epoch(X, *args, **kwargs)


def test_one_core_call_per_epoch_without_a_bar_and_whole_batches_per_call_with_one(recording_bars):
    X, T = data()
    calls = {}
    for progress in (False, True):
        net = net_for()
        net._core = CountingCore(net._core)
        net.fit(X, T, epochs=2, batch_size=BATCH, optimizer=fb.SGD(lr=0.05), progress=progress)
        calls[progress] = net._core.rows
    assert calls[False] == [ROWS, ROWS]
    # 17 calls per epoch: 16 of SLICE whole batches, then the rest (2 batches and 3 rows)
    assert calls[True] == ([SLICE * BATCH] * 16 + [ROWS - 16 * SLICE * BATCH]) * 2


def test_bar_advances_within_each_epoch_with_the_running_loss(recording_bars):
    X, T = data()
    epochs, n_batches = 2, -(-ROWS // BATCH)
    history = net_for().fit(
        X,
        T,
        epochs=epochs,
        batch_size=BATCH,
        optimizer=fb.SGD(lr=0.05),
        shuffle=False,
        progress=True,
    )
    (bar,) = recording_bars
    assert bar.total == epochs * n_batches and bar.closed
    per_epoch = [SLICE] * 16 + [n_batches - 16 * SLICE]
    assert [(e, b) for e, b, _ in bar.advances] == [
        (epoch, b) for epoch in range(epochs) for b in per_epoch
    ]
    # The running loss is the row-weighted mean of the epoch's batch losses so far: replay
    # the batches one train_step each on a twin network.
    twin, opt = net_for(), fb.SGD(lr=0.05)
    rows = [len(X[s : s + BATCH]) for s in range(0, ROWS, BATCH)]
    losses = [
        [twin.train_step(X[s : s + BATCH], T[s : s + BATCH], opt) for s in range(0, ROWS, BATCH)]
        for _ in range(epochs)
    ]
    done = 0
    for epoch, batches, loss in bar.advances:
        done = batches if done >= n_batches else done + batches
        want = np.dot(rows[:done], losses[epoch][:done]) / sum(rows[:done])
        assert loss == pytest.approx(want, rel=1e-12)
    # the last move of each epoch shows exactly the loss the epoch records
    ends = [loss for i, (_, _, loss) in enumerate(bar.advances) if (i + 1) % len(per_epoch) == 0]
    assert ends == history.loss == [logs["loss"] for logs in bar.epoch_logs]


@pytest.mark.parametrize("weight_penalty", [0.0, 0.05])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_training_is_bitwise_the_same_with_and_without_the_bar(
    recording_bars, backend, dtype, optimizer, weight_penalty
):
    """Shuffled, with a validation split leaving 183 rows: 46 batches, the last of 3;
    with and without a weight penalty (whose batches of 4 and of 3 rows each take their
    own share)."""
    X, T = data(dtype)
    runs = []
    for progress in (False, True):
        net, opt = net_for(dtype, backend), OPTIMIZERS[optimizer]()
        history = net.fit(
            X,
            T,
            epochs=3,
            batch_size=BATCH,
            optimizer=opt,
            validation_split=0.1,
            metrics=["accuracy"],
            progress=progress,
            weight_penalty=weight_penalty,
        )
        logs = history.to_dict()
        del logs["epoch_time"]
        state = opt.state_for(net)
        runs.append((logs, net, {name: getattr(state, name) for name in state.__slots__}))
    (bar,) = recording_bars
    assert len(bar.advances) == 3 * 16  # the second run did take 16 calls an epoch
    (logs, net, state), (bar_logs, bar_net, bar_state) = runs
    assert bar_logs == logs  # floats compared exactly
    for layer, bar_layer in zip(net.layers[::2], bar_net.layers[::2]):
        np.testing.assert_array_equal(bar_layer.W, layer.W)
        np.testing.assert_array_equal(bar_layer.b, layer.b)
    assert state.keys() == bar_state.keys()
    for name, value in state.items():
        np.testing.assert_array_equal(bar_state[name], value, err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_data_is_refused_before_training_naming_its_row(recording_bars, snapshot, backend):
    """With a bar the core trains on copies of slices: the data is checked whole first."""
    X, T = data()
    T[150] = WIDTHS[-1]  # a class label out of range
    net = net_for(backend=backend)
    snap = snapshot(net)
    with pytest.raises(ValueError, match=r"\b150\b"):
        net.fit(X, T, epochs=1, batch_size=BATCH, optimizer=fb.SGD(lr=0.05), progress=True)
    snap.assert_unchanged()
    assert recording_bars == []


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_core_epoch_calls_continue_the_loss_sum(backend, dtype):
    """train_epoch returns loss_sum plus each batch's rows times its loss: an epoch split
    into two calls, the second given the first's sum, returns bitwise the one call's."""
    X, T = data(dtype)
    order = np.random.default_rng(2).permutation(ROWS)
    hyper = (0.05, 0.0, 0.0, False, 0.0, True)  # plain SGD: first_step changes nothing

    def velocity(net):
        return np.zeros(net.n_params, dtype=dtype)

    one, two, offset = net_for(dtype, backend), net_for(dtype, backend), net_for(dtype, backend)
    whole = one._core.train_epoch(X, T, order, BATCH, *sgd_core_args(velocity(one), *hyper))
    total, cut = 0.0, 5 * BATCH
    for part in (order[:cut], order[cut:]):
        total = two._core.train_epoch(
            X[part],
            T[part],
            np.arange(len(part)),
            BATCH,
            *sgd_core_args(velocity(two), *hyper),
            loss_sum=total,
        )
    assert total == whole
    np.testing.assert_array_equal(two._core.params, one._core.params)
    started = offset._core.train_epoch(
        X, T, order, BATCH, *sgd_core_args(velocity(offset), *hyper), loss_sum=1000.0
    )
    assert started == pytest.approx(1000.0 + whole, rel=1e-12)
    assert 0 < whole / ROWS < 3  # a mean cross-entropy of 3 classes near log(3)


def test_tqdm_bar_counts_batches_and_shows_the_running_loss(monkeypatch, capsys):
    pytest.importorskip("tqdm", reason="tqdm is not installed")
    seen = []

    class Watched(fb.callbacks.ProgressBar):
        def advance(self, epoch, batches, loss):
            super().advance(epoch, batches, loss)
            seen.append((self.bar.n, self.bar.total, self.bar.desc, self.bar.postfix))

    monkeypatch.setattr("fastbp.training.loop.ProgressBar", Watched)
    X, T = data()
    history = net_for().fit(
        X,
        T,
        epochs=2,
        batch_size=BATCH,
        optimizer=fb.SGD(lr=0.05),
        validation_data=(X[:20], T[:20]),
        progress=True,
    )
    n_batches = -(-ROWS // BATCH)
    steps = [min(k * SLICE, n_batches) for k in range(1, 18)]
    assert [n for n, _, _, _ in seen] == steps + [n_batches + k for k in steps]
    assert {total for _, total, _, _ in seen} == {2 * n_batches}
    assert [desc for _, _, desc, _ in seen] == ["epoch 1/2: "] * 17 + ["epoch 2/2: "] * 17
    # during epoch 2: its running loss, beside epoch 1's validation loss
    assert seen[17][3].startswith("loss=") and "val_loss=" in seen[17][3]
    assert seen[-1][3].startswith(f"loss={history.loss[-1]:.4g}")
    err = capsys.readouterr().err
    assert f"{2 * n_batches}/{2 * n_batches}" in err and "epoch 2/2" in err
    assert f"val_loss={history.val_loss[-1]:.4g}" in err


def test_progress_is_off_by_default_when_stderr_is_not_a_terminal(capsys):
    X, T = data()
    net_for().fit(X, T, epochs=2, batch_size=BATCH, optimizer=fb.SGD(lr=0.1))
    assert capsys.readouterr().err == ""


def test_progress_default_follows_the_terminal(monkeypatch):
    pytest.importorskip("tqdm", reason="tqdm is not installed")

    class Terminal:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    for tty in (True, False):
        monkeypatch.setattr("sys.stderr", Terminal(tty))
        assert fb.callbacks.progress_default() is tty
