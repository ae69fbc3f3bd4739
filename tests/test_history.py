"""History: recording, to_dict and plot."""

from __future__ import annotations

import pytest

import fastbp as fb
from fbhelpers import make_data, make_net


def fitted_history(rng, **kwargs):
    widths = (4, 8, 3)
    X, T = make_data(widths, "ce_labels", 40, rng)
    net = make_net(widths, "relu", "ce_labels", seed=0)
    return net.fit(X, T, epochs=4, batch_size=8, optimizer=fb.Adam(lr=0.01),
                   validation_split=0.25, **kwargs)


def test_to_dict_holds_every_recorded_list(rng):
    d = fitted_history(rng, metrics=["accuracy"]).to_dict()
    assert set(d) == {"loss", "val_loss", "accuracy", "val_accuracy", "lr", "epoch_time",
                      "stopped_epoch", "best_epoch"}
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
