"""Saving: the file's name (numpy.savez's rule: ".npz" appended when missing), and
atomicity (a save that fails, or a process killed in the middle of one, leaves the
previous model file loadable and unchanged)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import make_net


def saved_pair(tmp_path):
    """A model file holding network ``old``, and a different network ``new``."""
    old = make_net((4, 9, 2), seed=0)
    new = make_net((4, 9, 2), seed=1)
    path = tmp_path / "model.npz"
    old.save(path)
    return path, old, new


def assert_holds(path, net):
    loaded = fb.Network.load(path)
    np.testing.assert_array_equal(loaded._core.params, net._core.params)


@pytest.mark.parametrize("name, written", [("m1", "m1.npz"), ("m1.npz", "m1.npz"),
                                           ("m1.fb", "m1.fb.npz"), ("m1.NPZ", "m1.NPZ.npz")])
@pytest.mark.parametrize("as_path", [True, False], ids=["Path", "str"])
def test_save_names_the_file_as_numpy_savez_does(tmp_path, name, written, as_path):
    net = make_net((4, 9, 2), seed=0)
    target = tmp_path / name
    returned = net.save(target if as_path else str(target))
    assert returned == str(tmp_path / written)
    assert sorted(p.name for p in tmp_path.iterdir()) == [written]
    np.testing.assert_array_equal(fb.Network.load(tmp_path / written).params, net.params)
    np.savez(tmp_path / "numpy_too", a=np.zeros(1))  # numpy's rule, for comparison
    assert (tmp_path / "numpy_too.npz").is_file()


def test_loading_the_name_without_its_suffix_says_which_file_exists(tmp_path):
    make_net((4, 9, 2), seed=0).save(tmp_path / "m1")
    with pytest.raises(FileNotFoundError, match=r"save appends \.npz: is it '.*m1\.npz'"):
        fb.Network.load(tmp_path / "m1")
    with pytest.raises(FileNotFoundError) as caught:
        fb.Network.load(tmp_path / "other")
    assert "appends" not in str(caught.value)


def test_a_checkpoint_is_named_as_save_names_it(tmp_path, rng):
    cb = fb.callbacks.ModelCheckpoint(tmp_path / "best", save_best_only=False,
                                      monitor="loss")
    assert cb.path == str(tmp_path / "best.npz")
    net = make_net((4, 9, 2), seed=0)
    net.fit(rng.standard_normal((8, 4)), rng.standard_normal((8, 2)), epochs=1, batch_size=4,
            optimizer=fb.SGD(lr=0.1), callbacks=[cb], progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.npz"]


def test_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path, old, new = saved_pair(tmp_path)
    real_savez = np.savez

    def half_then_fail(f, **arrays):
        real_savez(f, **arrays)
        f.truncate(f.tell() // 2)
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        new.save(path)
    assert_holds(path, old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


KILL_MID_SAVE = textwrap.dedent("""
    import os, sys
    import fastbp as fb

    old = fb.Network.load(sys.argv[1])
    new = fb.Network([fb.Dense(4, 9), fb.Tanh(), fb.Dense(9, 2)], fb.MSELoss(), seed=7,
                     dtype=str(old.dtype))
    os.fsync = lambda fd: os._exit(3)  # die after writing, before the rename
    new.save(sys.argv[1])
""")


def test_process_killed_mid_save_keeps_the_old_file(tmp_path):
    path, old, _ = saved_pair(tmp_path)
    result = subprocess.run([sys.executable, "-c", KILL_MID_SAVE, str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert_holds(path, old)
    # the killed save left its complete-or-not temporary beside it, never in its place
    assert any(p.name.startswith(".fastbp-") for p in tmp_path.iterdir())
