"""Network.summary: the Keras-like table."""

from __future__ import annotations

import fastbp as fb


def test_summary_lists_layers_shapes_and_counts():
    net = fb.Network(
        [fb.Dense(64, 128), fb.ReLU(), fb.Dense(128, 10), fb.Sigmoid()],
        loss=fb.MSELoss(),
        dtype="float64",
    )
    lines = []
    net.summary(print_fn=lines.append)
    assert lines[0] == "Network: MSELoss(reduction='mean'), float64, backend 'cpu'"
    assert lines[2].split() == ["Layer", "(type)", "Output", "Shape", "Param", "#"]
    rows = [line.split() for line in lines[4:8]]
    assert rows == [
        ["dense_0", "(Dense)", "(None,", "128)", "8,320"],
        ["relu_1", "(ReLU)", "(None,", "128)", "0"],
        ["dense_2", "(Dense)", "(None,", "10)", "1,290"],
        ["sigmoid_3", "(Sigmoid)", "(None,", "10)", "0"],
    ]
    assert lines[-1] == f"Total params: 9,610 ({9610 * 8:,} bytes)" and net.n_params == 9610
    assert lines[1] == lines[3] == lines[8] and set(lines[1]) == {"="}


def test_summary_prints_by_default(capsys):
    fb.Network([fb.Dense(2, 1)], loss=fb.MSELoss()).summary()
    assert "Total params: 3 " in capsys.readouterr().out
