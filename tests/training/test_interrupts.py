"""Ctrl-C: a SIGINT during fit stops the epoch between batches, soon, and leaves the
network and its optimizer exactly as after the last whole step (checked by replaying
that many steps from the same start, bitwise), ready to train on; a SIGINT during a loop
of train_step calls leaves the step count in line with the updates applied; fit puts
back the SIGINT handler it found unless one was set since."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import BACKENDS, make_data, make_net

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGINT") or os.name != "posix", reason="sends SIGINT to a child process"
)

#: The most seconds from the signal to the KeyboardInterrupt: generous for a loaded
#: machine, yet a small part of an epoch here (several seconds), which is what the
#: interrupt would take without the check between batches.
BOUND_S = 0.5

CHILD = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import fastbp as fb

    mode, backend, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    widths, batch, seed = (256, 512, 512, 10), 64, 3
    fb.set_num_threads(1)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, widths[0])).astype(np.float32)
    T = rng.integers(0, widths[-1], rows)

    def network():
        layers = [fb.Dense(widths[0], widths[1]), fb.ReLU(), fb.Dense(widths[1], widths[2]),
                  fb.ReLU(), fb.Dense(widths[2], widths[3])]
        return fb.Network(layers, fb.SoftmaxCrossEntropyLoss(), backend=backend, seed=seed)

    net, opt = network(), fb.Adam(lr=1e-3)
    # The rows fit's epochs visit, drawn as fit draws them (before it does).
    draws = network()._rng
    orders = [draws.permutation(rows) for _ in range(3)]
    batches = -(-rows // batch)
    message = ""
    start = time.perf_counter()
    print("training", flush=True)
    try:
        if mode == "train_step":
            while True:
                for i in range(batches):
                    rows_i = orders[0][i * batch:(i + 1) * batch]
                    net.train_step(X[rows_i], T[rows_i], opt)
        net.fit(X, T, epochs=3, batch_size=batch, optimizer=opt,
                progress=mode == "fit_with_bar")
    except KeyboardInterrupt as e:
        caught = time.monotonic()
        message = str(e)
    else:
        raise SystemExit("fit ended without an interrupt")
    steps = opt.state_for(net).steps

    # The same start, then exactly `steps` steps of the same batches, one by one.
    replay, replay_opt = network(), fb.Adam(lr=1e-3)
    for s in range(steps):
        epoch, i = divmod(s, batches)
        rows_s = orders[0 if mode == "train_step" else epoch][i * batch:(i + 1) * batch]
        replay.train_step(X[rows_s], T[rows_s], replay_opt)
    a, b = opt.state_for(net), replay_opt.state_for(replay)
    same = bool(np.array_equal(net.params, replay.params) and
                np.array_equal(a.exp_avg, b.exp_avg) and
                np.array_equal(a.exp_avg_sq, b.exp_avg_sq))
    finite = bool(np.isfinite(net.params).all())
    # Training goes on from there.
    history = net.fit(X[:512], T[:512], epochs=1, batch_size=batch, optimizer=opt,
                      progress=False)
    print(json.dumps(dict(caught=caught, message=message, steps=steps, batches=batches,
                          same=same, finite=finite, resumed=opt.state_for(net).steps - steps,
                          resumed_loss=history.loss[0])), flush=True)
""")


def interrupted_child(mode: str, backend: str, rows: int, delay: float):
    """Start the child, send it SIGINT ``delay`` seconds after it starts training; its
    report and the seconds from the signal to its KeyboardInterrupt."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, backend, str(rows)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "training", child.stderr.read()
        time.sleep(delay)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=600)
    finally:
        child.kill()
    assert child.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    return report, report["caught"] - sent


@pytest.mark.parametrize(
    "mode, backend, rows, delay",
    [
        ("fit", "cpu", 120000, 1.0),
        ("fit_with_bar", "cpu", 120000, 1.0),
        ("fit", "numpy", 24000, 1.0),
    ],
)
def test_sigint_stops_fit_between_batches_and_leaves_the_last_whole_step(
    mode, backend, rows, delay
):
    report, latency = interrupted_child(mode, backend, rows, delay)
    epoch, step = divmod(report["steps"], report["batches"])
    print(
        f"{mode} on {backend}: KeyboardInterrupt {latency * 1000:.1f} ms after SIGINT, "
        f"in epoch {epoch + 1} after {step} of its {report['batches']} steps"
    )
    assert latency < BOUND_S
    assert step > 0  # mid-epoch (an epoch here takes seconds)
    assert (
        f"epoch {epoch + 1} (History index {epoch}) after step {step} of "
        f"{report['batches']}" in report["message"]
    )
    assert report["same"] and report["finite"]
    assert report["resumed"] == -(-512 // 64) and np.isfinite(report["resumed_loss"])


def test_sigint_during_train_step_loop_counts_every_applied_step():
    report, latency = interrupted_child("train_step", "cpu", 40000, 1.0)
    print(
        f"train_step loop: KeyboardInterrupt {latency * 1000:.1f} ms after SIGINT, "
        f"after {report['steps']} steps"
    )
    assert latency < BOUND_S
    assert report["steps"] > 0
    assert report["same"] and report["finite"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_a_moved_interrupt_mark_stops_the_core_before_its_first_batch(
    rng, backend, opt_name, snapshot
):
    widths = (3, 5, 2)
    X, T = make_data(widths, "mse_mean", 10, rng)
    net = make_net(widths, backend=backend)
    opt = fb.SGD(lr=0.1, momentum=0.9) if opt_name == "sgd" else fb.Adam()
    state, calls = net._bind_optimizer(opt)
    snap = snapshot(net)
    mark = fb._core.sigint_count() + 1  # as if a SIGINT had come since the mark was taken
    with pytest.raises(KeyboardInterrupt, match="after step 0") as info:
        calls.train_epoch(X, T, np.arange(10), 2, *opt.core_args(state), interrupt_mark=mark)
    assert info.value.step == 0
    snap.assert_unchanged()
    assert net._core.updates == 0
    # the default mark never stops
    calls.train_epoch(X, T, np.arange(10), 2, *opt.core_args(state))
    assert net._core.updates == 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_core_counts_the_updates_it_applies(rng, backend):
    widths = (3, 5, 2)
    X, T = make_data(widths, "mse_mean", 10, rng)
    net, opt = make_net(widths, backend=backend), fb.SGD(lr=0.1)
    net.fit(X, T, epochs=2, batch_size=4, optimizer=opt)
    net.train_step(X, T, opt)
    net.backward(X, T)
    opt.step(net)
    assert net._core.updates == opt.state_for(net).steps == 2 * 3 + 2


TAKE_OVER_SIGINT = textwrap.dedent("""
    import os, signal, time
    import numpy as np
    import fastbp as fb

    def take_over(epoch, logs):  # a callback that sets its own SIGINT handling
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    net = fb.Network([fb.Dense(3, 5), fb.ReLU(), fb.Dense(5, 2)], fb.MSELoss(), seed=0)
    X, T = np.ones((10, 3), np.float32), np.zeros((10, 2), np.float32)
    net.fit(X, T, epochs=2, batch_size=4, optimizer=fb.SGD(lr=0.1), callbacks=[take_over])
    os.kill(os.getpid(), signal.SIGINT)  # SIG_DFL: the process dies of it
    time.sleep(10)
""")


def test_fit_keeps_a_sigint_handler_that_a_callback_set_during_training():
    result = subprocess.run(
        [sys.executable, "-c", TAKE_OVER_SIGINT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == -signal.SIGINT, result.stderr


def test_fit_leaves_the_sigint_handler_as_it_found_it(rng):
    widths = (3, 5, 2)
    X, T = make_data(widths, "mse_mean", 10, rng)
    make_net(widths).fit(X, T, epochs=1, batch_size=4, optimizer=fb.SGD(lr=0.1))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # and the C-level handler is Python's again: a SIGINT raises at once, as ever
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_interrupt_between_a_bars_slices_names_the_epoch_and_the_step(rng, backend, monkeypatch):
    """With a progress bar an epoch is several core calls; a KeyboardInterrupt that
    Python's handler raises between two of them (here: in the bar's update after the
    first) still says where training stopped, and the steps applied stay counted."""
    pytest.importorskip("tqdm")
    widths = (3, 5, 2)
    X, T = make_data(widths, "mse_mean", 400, rng)
    net = make_net(widths, backend=backend)
    opt = fb.SGD(lr=0.1)

    def interrupted(self, epoch, batches, loss):
        raise KeyboardInterrupt

    monkeypatch.setattr(fb.callbacks.ProgressBar, "advance", interrupted)
    # 100 batches in 20 bar updates: the first call trains 5 of them.
    with pytest.raises(
        KeyboardInterrupt,
        match=r"^training interrupted in epoch 1 \(History index 0\) after "
        r"step 5 of 100:",
    ):
        net.fit(X, T, epochs=2, batch_size=4, optimizer=opt, progress=True)
    assert opt.state_for(net).steps == 5
