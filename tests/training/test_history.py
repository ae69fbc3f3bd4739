"""History: recording, to_dict and plot, and how epochs are counted."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import make_data, make_net


def fitted_history(rng, **kwargs):
    widths = (4, 8, 3)
    X, T = make_data(widths, "ce_labels", 40, rng)
    net = make_net(widths, "relu", "ce_labels", seed=0)
    return net.fit(
        X, T, epochs=4, batch_size=8, optimizer=fb.Adam(lr=0.01), validation_split=0.25, **kwargs
    )


def test_to_dict_holds_every_recorded_list(rng):
    d = fitted_history(rng, metrics=["accuracy"]).to_dict()
    assert set(d) == {
        "loss",
        "val_loss",
        "accuracy",
        "val_accuracy",
        "lr",
        "epoch_time",
        "stopped_epoch",
        "best_epoch",
    }
    assert all(len(d[k]) == 4 for k in ("loss", "val_loss", "accuracy", "lr", "epoch_time"))
    assert all(0 <= a <= 1 for a in d["accuracy"] + d["val_accuracy"])
    assert all(t > 0 for t in d["epoch_time"])
    assert d["stopped_epoch"] is None and d["best_epoch"] is None
    d["loss"].append(0.0)  # a copy: the history is unchanged
    assert fitted_history(rng).epochs == 4


def test_to_dict_leaves_out_what_was_not_recorded(rng):
    assert "accuracy" not in fitted_history(rng).to_dict()


@pytest.mark.parametrize("metrics, panels", [((), 1), (["accuracy"], 2)])
def test_plot_returns_a_figure_and_saves_it(rng, tmp_path, metrics, panels):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed")
    path = tmp_path / "loss.png"
    fig = fitted_history(rng, metrics=metrics).plot(path)
    assert len(fig.axes) == panels
    lines = {line.get_label() for line in fig.axes[0].get_lines()}
    assert lines == {"loss", "val_loss"}
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_messages_count_epochs_from_1_and_name_the_history_index_code_gets(rng, tmp_path, backend):
    """The third epoch diverges: the error calls it epoch 3 and History index 2, the index
    the callbacks, CSVLogger and History use for it (the first two epochs are 0 and 1)."""
    widths = (4, 8, 3)
    X, T = make_data(widths, "ce_labels", 40, rng)
    net = make_net(widths, "relu", "ce_labels", backend=backend, seed=0)
    seen = []

    def poison_after_the_second_epoch(epoch, logs):
        seen.append(epoch)
        if len(seen) == 2:
            net.params[:] = np.nan  # written into the buffer, past the setters' checks

    path = tmp_path / "log.csv"
    with pytest.raises(
        FloatingPointError, match=r"^training diverged at epoch 3 \(History index 2\), step 1: "
    ):
        net.fit(
            X,
            T,
            epochs=5,
            batch_size=8,
            optimizer=fb.SGD(lr=0.1),
            callbacks=[poison_after_the_second_epoch, fb.callbacks.CSVLogger(path)],
        )
    assert seen == [0, 1]
    with open(path, newline="") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]


def test_epoch_name_gives_the_count_from_1_and_the_history_index():
    from fastbp.training.history import epoch_name

    assert epoch_name(0) == "epoch 1 (History index 0)"
    assert epoch_name(2) == "epoch 3 (History index 2)"


@pytest.mark.parametrize("label", ["val", "test"])
def test_plot_names_the_validation_curves_by_validation_label(label):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed")
    history = fb.History(
        loss=[1.0, 0.5], val_loss=[1.1, 0.7], accuracy=[0.5, 0.8], val_accuracy=[0.4, 0.7]
    )
    figure = history.plot(validation_label=label) if label != "val" else history.plot()
    assert [[line.get_label() for line in ax.get_lines()] for ax in figure.axes] == [
        ["loss", f"{label}_loss"],
        ["accuracy", f"{label}_accuracy"],
    ]
    assert [ax.get_ylabel() for ax in figure.axes] == ["loss", "accuracy"]
