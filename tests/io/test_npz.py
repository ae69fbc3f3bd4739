"""Saving: the file's name (numpy.savez's rule: ".npz" appended when missing), writing
through symbolic links, and atomicity (a save that fails, or a process killed in the
middle of one, leaves the previous model file loadable and unchanged; a Ctrl-C at any
step of a save leaves a whole file, no temporary file and no open descriptor, and raises
KeyboardInterrupt)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import zipfile

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


@pytest.mark.parametrize(
    "name, written",
    [("m1", "m1.npz"), ("m1.npz", "m1.npz"), ("m1.fb", "m1.fb.npz"), ("m1.NPZ", "m1.NPZ.npz")],
)
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
    cb = fb.callbacks.ModelCheckpoint(tmp_path / "best", save_best_only=False, monitor="loss")
    assert cb.path == str(tmp_path / "best.npz")
    net = make_net((4, 9, 2), seed=0)
    net.fit(
        rng.standard_normal((8, 4)),
        rng.standard_normal((8, 2)),
        epochs=1,
        batch_size=4,
        optimizer=fb.SGD(lr=0.1),
        callbacks=[cb],
        progress=False,
    )
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
    result = subprocess.run(
        [sys.executable, "-c", KILL_MID_SAVE, str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 3, result.stderr
    assert_holds(path, old)
    # the killed save left its complete-or-not temporary beside it, never in its place
    assert any(p.name.startswith(".fastbp-") for p in tmp_path.iterdir())


# ---- symbolic links -------------------------------------------------------------------


def temporaries(*folders):
    return [p for folder in folders for p in folder.iterdir() if p.name.startswith(".fastbp-")]


def test_save_through_a_link_replaces_the_file_it_points_to_and_keeps_the_link(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    target, _, new = saved_pair(shared)
    link = tmp_path / "model.npz"
    link.symlink_to(target)
    assert new.save(link) == str(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert_holds(target, new)
    assert not temporaries(tmp_path, shared)


def test_save_follows_a_chain_of_relative_links_to_its_end(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    target, _, new = saved_pair(shared)
    (tmp_path / "latest.npz").symlink_to("shared/model.npz")
    (tmp_path / "best.npz").symlink_to("latest.npz")
    new.save(tmp_path / "best.npz")
    assert os.readlink(tmp_path / "best.npz") == "latest.npz"
    assert os.readlink(tmp_path / "latest.npz") == "shared/model.npz"
    assert_holds(target, new)
    assert not temporaries(tmp_path, shared)


def test_save_through_a_dangling_link_creates_its_target(tmp_path):
    """As open(link, "w") does."""
    shared = tmp_path / "shared"
    shared.mkdir()
    link = tmp_path / "model.npz"
    link.symlink_to(shared / "new.npz")
    net = make_net((4, 9, 2), seed=0)
    net.save(link)
    assert link.is_symlink()
    assert_holds(shared / "new.npz", net)
    assert not temporaries(tmp_path, shared)


def test_save_onto_a_loop_of_links_is_refused(tmp_path):
    (tmp_path / "a.npz").symlink_to("b.npz")
    (tmp_path / "b.npz").symlink_to("a.npz")
    with pytest.raises(OSError, match="symbolic links") as caught:
        make_net((4, 9, 2), seed=0).save(tmp_path / "a.npz")
    assert caught.value.errno == errno.ELOOP
    assert caught.value.filename == str(tmp_path / "a.npz")
    assert os.readlink(tmp_path / "a.npz") == "b.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz"]


def test_a_checkpoint_through_a_link_updates_the_file_it_points_to(tmp_path, rng):
    shared = tmp_path / "shared"
    shared.mkdir()
    target, _, net = saved_pair(shared)
    (tmp_path / "best.npz").symlink_to(target)
    cb = fb.callbacks.ModelCheckpoint(tmp_path / "best.npz", save_best_only=False, monitor="loss")
    net.fit(
        rng.standard_normal((8, 4)),
        rng.standard_normal((8, 2)),
        epochs=1,
        batch_size=4,
        optimizer=fb.SGD(lr=0.1),
        callbacks=[cb],
        progress=False,
    )
    assert (tmp_path / "best.npz").is_symlink()
    assert_holds(target, net)


# ---- Ctrl-C during a save -------------------------------------------------------------


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def then_sigint(function):
    """``function`` that sends this process a SIGINT once it has done its work, as a
    Ctrl-C landing just after it would."""

    def interrupted(*args, **kwargs):
        result = function(*args, **kwargs)
        signal.raise_signal(signal.SIGINT)
        return result

    return interrupted


#: Each step of a save: what it calls (module or class, attribute).
SAVE_STEPS = {
    "os.open": (os, "open"),
    "os.fdopen": (os, "fdopen"),
    "zipfile.ZipFile.open": (zipfile.ZipFile, "open"),
    "np.savez": (np, "savez"),
    "os.fsync": (os, "fsync"),
    "os.replace": (os, "replace"),
}


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
@pytest.mark.parametrize("step", SAVE_STEPS)
def test_ctrl_c_at_any_step_of_a_save_leaves_a_whole_file_and_nothing_else(
    tmp_path, monkeypatch, step
):
    path, _, new = saved_pair(tmp_path)
    owner, name = SAVE_STEPS[step]
    descriptors = open_descriptors()
    monkeypatch.setattr(owner, name, then_sigint(getattr(owner, name)))
    with pytest.raises(KeyboardInterrupt):
        new.save(path)
    monkeypatch.undo()
    assert open_descriptors() == descriptors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]
    assert_holds(path, new)  # the write ran to its end; the interrupt came after it


def test_a_sigint_during_a_save_reaches_the_handler_installed_once_it_ends(tmp_path, monkeypatch):
    path, _, new = saved_pair(tmp_path)
    seen = []

    def handler(signum, frame):
        seen.append(os.path.exists(path) and not temporaries(tmp_path))

    monkeypatch.setattr(os, "open", then_sigint(os.open))
    previous = signal.signal(signal.SIGINT, handler)
    try:
        new.save(path)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen == [True]
    assert_holds(path, new)
