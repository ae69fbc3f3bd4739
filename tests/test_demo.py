"""The main job (python -m fastbp): runs, reports the accuracy, writes the plot on request."""

from __future__ import annotations

import pytest

from fastbp import demo


def test_main_job_reports_accuracy_and_writes_the_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed")
    path = tmp_path / "loss.png"
    accuracy = demo.main(["--epochs", "3", "--plot", str(path)])
    assert 0 <= accuracy <= 1
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"test accuracy {accuracy:.3f}" in capsys.readouterr().out
