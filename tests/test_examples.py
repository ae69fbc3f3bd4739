"""The scripts in examples/ run and reach what their docstrings promise."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_reaches_97_percent_and_writes_the_plot(tmp_path, capsys, monkeypatch):
    pytest.importorskip("sklearn", reason="scikit-learn is not installed")
    pytest.importorskip("matplotlib", reason="matplotlib is not installed")
    import fastbp as fb

    figures, plot = [], fb.History.plot
    monkeypatch.setattr(
        fb.History,
        "plot",
        lambda self, *args, **kwargs: figures.append(plot(self, *args, **kwargs)),
    )
    path = tmp_path / "digits_loss.png"
    accuracy = load("digits").main(["--plot", str(path)])
    assert accuracy >= 0.97
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # its validation data is the test set, and the curves say so
    [figure] = figures
    assert [[line.get_label() for line in ax.get_lines()] for ax in figure.axes] == [
        ["loss", "test_loss"],
        ["accuracy", "test_accuracy"],
    ]
    out = capsys.readouterr().out
    assert "Total params: 9,610" in out
    assert f"test accuracy {accuracy:.4f} ({round(accuracy * 450)} of 450 test images)" in out
    assert f"loss curves written to {path}" in out


def test_digits_runs_as_the_readme_main_job(tmp_path):
    """As README and .ci/run run it: a script, from another directory, with options."""
    pytest.importorskip("sklearn", reason="scikit-learn is not installed")
    pytest.importorskip("matplotlib", reason="matplotlib is not installed")
    path = tmp_path / "curves.png"
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "digits.py"), "--epochs", "2", "--plot", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "2 epochs of 1347 samples" in run.stdout and "test accuracy 0." in run.stdout
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = subprocess.run(
        [sys.executable, str(EXAMPLES / "digits.py"), "--epochs", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "--epochs must be >= 1, got 0" in bad.stderr


def test_regression_fits_the_curve(capsys):
    assert load("regression").main() < 0.05
    assert "RMSE" in capsys.readouterr().out


def test_worked_example_prints_the_notes_numbers(capsys):
    r = load("worked_example").main()
    np.testing.assert_allclose(r["z"], [0.0, -2.0, 3.0])
    assert r["y"] == pytest.approx(-0.595, abs=5e-4)
    assert r["delta_out"] == pytest.approx(-11.19, abs=5e-3)
    np.testing.assert_allclose(r["delta_hidden"], [-5.595, -3.525, 0.5055], atol=1e-3)
    np.testing.assert_allclose(r["new_w_out"], [-0.119, 2.559, 3.133, 0.066], atol=1e-3)
    assert abs(r["y_new"] - 5) < abs(r["y"] - 5)
    out = capsys.readouterr().out
    assert "-11.1899" in out and "-5.595" in out


def test_xor_both_ways():
    wired, learnt = load("xor").main()
    np.testing.assert_array_equal(np.round(wired), [0, 1, 1, 0])
    np.testing.assert_array_equal(np.round(learnt), [0, 1, 1, 0])
