"""Data-parallel training on MPI: ``fit(comm=...)`` and the helpers of
``fastbp.distributed``, each case run by two ranks under ``mpiexec -n 2 python -m mpi4py``
(which aborts the whole job when a rank raises, rather than leaving the other waiting),
compared with one process training on the equivalent global batches."""

from __future__ import annotations

import errno
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastbp as fb

RANKS = 2
TIMEOUT = 120  # seconds for one mpiexec run: a hang fails the test instead of CI
MPIEXEC = shutil.which(
    "mpiexec", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
)

needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason="mpi4py is not installed"
    if importlib.util.find_spec("mpi4py") is None
    else "no mpiexec next to Python or on PATH (pip install 'fastbp[mpi]' brings both)",
)

# What every rank script starts with: its rank, the data the test wrote, and `save`,
# which writes this rank's results for the test to read.
PRELUDE = textwrap.dedent("""
    import sys
    import numpy as np
    from mpi4py import MPI
    import fastbp as fb

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    OUT = sys.argv[1]
    data = np.load(f"{OUT}/data.npz")

    def save(**values):
        np.savez(f"{OUT}/rank{rank}.npz", **values)

    def network(seed, reduction="mean", loss=fb.MSELoss, widths=(5, 7, 3), backend="cpu"):
        return fb.Network([fb.Dense(widths[0], widths[1]), fb.Tanh(),
                           fb.Dense(widths[1], widths[2])], loss(reduction=reduction),
                          dtype="float64", backend=backend, seed=seed)
""")


def run_ranks(tmp_path: Path, body: str, ranks: int = RANKS, **data) -> list:
    """Run ``body`` (after PRELUDE) on ``ranks`` ranks, with ``data`` in ``data.npz``;
    returns what each rank saved."""
    np.savez(tmp_path / "data.npz", **data)
    script = tmp_path / "ranks.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    env = {**os.environ, "FASTBP_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [MPIEXEC, "-n", str(ranks), sys.executable, "-m", "mpi4py", str(script), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # mpiexec passes it on to the ranks and ends them
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        pytest.fail(f"the ranks were still running after {TIMEOUT} s (a hang):\n{out}")
    assert proc.returncode == 0, f"mpiexec ended with {proc.returncode}:\n{out}"
    return [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(ranks)]


def shards(rows, width=5, outputs=3, labels=False, seed=0):
    """One (X, T) per rank, of ``rows[r]`` rows, as data for ``run_ranks``."""
    rng = np.random.default_rng(seed)
    data = {}
    for r, n in enumerate(rows):
        data[f"X{r}"] = rng.standard_normal((n, width))
        data[f"T{r}"] = rng.integers(0, outputs, n) if labels else rng.standard_normal((n, outputs))
    return data


def global_batches(data, batch_size):
    """The batches one process trains on for the ranks' k-th batches together: rank 0's
    then rank 1's rows of batch k, while a rank has rows left."""
    n = max(len(data[f"X{r}"]) for r in range(RANKS))
    for start in range(0, n, batch_size):
        part = slice(start, start + batch_size)
        yield (
            np.concatenate([data[f"X{r}"][part] for r in range(RANKS)]),
            np.concatenate([data[f"T{r}"][part] for r in range(RANKS)]),
        )


def twin(params, reduction="mean", loss=fb.MSELoss, widths=(5, 7, 3), seed=None):
    """One process's network as the ranks build it, holding ``params``."""
    net = fb.Network(
        [fb.Dense(widths[0], widths[1]), fb.Tanh(), fb.Dense(widths[1], widths[2])],
        loss(reduction=reduction),
        dtype="float64",
        seed=seed,
    )
    net.params[...] = params
    return net


# Small steps for the "sum" loss, whose gradient grows with the rows: a run that blows
# up would amplify the rounding differences beyond any tolerance.
OPTIMIZERS = {
    "sgd": "fb.SGD(lr=0.05, momentum=0.9)",
    "adam": "fb.Adam(lr=0.01)",
    "sgd-small": "fb.SGD(lr=0.005, momentum=0.9)",
}


def test_import_fastbp_does_not_import_mpi4py():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, fastbp, fastbp.distributed; print('mpi4py' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "False", result.stderr


@needs_mpi
@pytest.mark.parametrize(
    "reduction, loss, optimizer, rows, backend",
    [
        ("mean", "mse", "sgd", (20, 20), "cpu"),
        ("mean", "ce", "adam", (23, 13), "cpu"),
        ("sum", "mse", "sgd-small", (12, 21), "cpu"),
        ("mean", "mse", "adam", (17, 9), "numpy"),
    ],
    ids=["mean-even", "mean-uneven-labels", "sum-uneven", "numpy-backend"],
)
def test_two_ranks_train_as_one_process_on_the_global_batches(
    tmp_path, reduction, loss, optimizer, rows, backend
):
    """Two shards without shuffling: the ranks' k-th batches together are one process's
    k-th batch; every rank ends every epoch bitwise like the other, and like that process
    to rounding. The ranks start from different seeds: rank 0's parameters win."""
    loss_cls = {"mse": fb.MSELoss, "ce": fb.SoftmaxCrossEntropyLoss}[loss]
    data = shards(rows, labels=loss == "ce")
    got = run_ranks(
        tmp_path,
        f"""
        net = network(seed=rank, reduction="{reduction}", loss=fb.{loss_cls.__name__},
                      backend="{backend}")
        initial = net.params.copy()
        after = []
        history = net.fit(data[f"X{{rank}}"], data[f"T{{rank}}"], epochs=3, batch_size=5,
                          optimizer={OPTIMIZERS[optimizer]}, shuffle=False, progress=False,
                          callbacks=[lambda epoch, logs: after.append(net.params.copy())],
                          comm=comm)
        save(initial=initial, after=np.array(after), loss=np.array(history.loss))
    """,
        **data,
    )
    assert not np.array_equal(got[0]["initial"], got[1]["initial"])
    np.testing.assert_array_equal(got[0]["after"], got[1]["after"])
    np.testing.assert_array_equal(got[0]["loss"], got[1]["loss"])

    one = twin(got[0]["initial"], reduction, loss_cls)
    opt = eval(OPTIMIZERS[optimizer])
    for epoch in range(3):
        loss_sum = 0.0
        for X, T in global_batches(data, 5):
            loss_sum += len(X) * one.train_step(X, T, opt)
        np.testing.assert_allclose(got[0]["after"][epoch], one.params, rtol=1e-12, atol=1e-14)
        assert got[0]["loss"][epoch] == pytest.approx(loss_sum / sum(rows), rel=1e-12)


@needs_mpi
def test_shuffled_ranks_stay_bitwise_identical(tmp_path):
    data = shards((19, 30))
    got = run_ranks(
        tmp_path,
        """
        results = {}
        for shuffle in (True, False):
            net = network(seed=7)
            after = []
            net.fit(data[f"X{rank}"], data[f"T{rank}"], epochs=3, batch_size=4,
                    optimizer=fb.SGD(lr=0.05), shuffle=shuffle, progress=False,
                    callbacks=[lambda epoch, logs: after.append(net.params.copy())],
                    comm=comm)
            results[f"shuffle_{shuffle}"] = np.array(after)
        save(**results)
    """,
        **data,
    )
    np.testing.assert_array_equal(got[0]["shuffle_True"], got[1]["shuffle_True"])
    assert not np.array_equal(got[0]["shuffle_True"], got[0]["shuffle_False"])


@needs_mpi
def test_bfloat16_ranks_stay_bitwise_identical(tmp_path):
    data = {k: v.astype(np.float32) for k, v in shards((24, 40)).items()}
    got = run_ranks(
        tmp_path,
        """
        net = fb.Network([fb.Dense(5, 7), fb.Tanh(), fb.Dense(7, 3)], fb.MSELoss(),
                         seed=rank, compute_dtype="bfloat16")
        after = []
        net.fit(data[f"X{rank}"], data[f"T{rank}"], epochs=3, batch_size=8,
                optimizer=fb.SGD(lr=0.05), progress=False, comm=comm,
                callbacks=[lambda epoch, logs: after.append(net.params.copy())])
        save(params=np.array(after), compute=np.array(net.compute_dtype))
    """,
        **data,
    )
    assert str(got[0]["compute"]) == "bfloat16"
    np.testing.assert_array_equal(got[0]["params"], got[1]["params"])


@needs_mpi
def test_batchnorm_running_statistics_are_averaged_over_the_ranks(tmp_path):
    """Three ranks, 200 rows, each starting from running statistics of its own: rank 0's
    are broadcast, each epoch's are averaged over the ranks, so every rank predicts
    bitwise alike, validation scores the agreed model, and rank 0's saved file holds it."""
    data = shards((67, 67, 66), seed=5)
    rng = np.random.default_rng(6)
    for r, n in enumerate((12, 9, 10)):
        data[f"Xv{r}"], data[f"Tv{r}"] = rng.standard_normal((n, 5)), rng.standard_normal((n, 3))
    data["X_all"] = rng.standard_normal((40, 5)) * 3
    got = run_ranks(
        tmp_path,
        """
        # BatchNorm on the input (its statistics are the data's, whatever the
        # parameters) and between the hidden layers
        net = fb.Network([fb.BatchNorm(5), fb.Dense(5, 16), fb.BatchNorm(16), fb.Tanh(),
                          fb.Dense(16, 3)], fb.MSELoss(), dtype="float64", seed=rank)
        first = net.layers[0]
        first.running_mean, first.running_var = np.full(5, rank - 1.0), np.full(5, rank + 1.0)
        initial = first.running_mean.copy(), first.running_var.copy()
        history = net.fit(data[f"X{rank}"], data[f"T{rank}"], epochs=3, batch_size=10,
                          optimizer=fb.SGD(lr=0.05), shuffle=False, progress=False,
                          validation_data=(data[f"Xv{rank}"], data[f"Tv{rank}"]),
                          comm=comm)
        if rank == 0:
            net.save(f"{OUT}/model.npz")
        save(predictions=net.predict(data["X_all"]), params=net.params,
             val_loss=history.val_loss, mean=first.running_mean, var=first.running_var,
             initial_mean=initial[0], initial_var=initial[1])
    """,
        ranks=3,
        **data,
    )
    for other in got[1:]:
        for key in ("predictions", "params", "val_loss", "mean", "var"):
            np.testing.assert_array_equal(other[key], got[0][key], err_msg=key)

    # the input's statistics: each rank's moving average over its batches, from rank 0's
    # start, averaged over the ranks after each epoch
    mean, var = got[0]["initial_mean"], got[0]["initial_var"]
    for _ in range(3):
        ranks = []
        for r in range(3):
            m, v = mean.copy(), var.copy()
            for start in range(0, len(data[f"X{r}"]), 10):
                fb.nn._layer_math.update_running_stats(data[f"X{r}"][start : start + 10], m, v, 0.1)
            ranks.append((m, v))
        mean, var = np.mean([m for m, _ in ranks], axis=0), np.mean([v for _, v in ranks], axis=0)
    np.testing.assert_allclose(got[0]["mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(got[0]["var"], var, rtol=1e-12)

    saved = fb.Network.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(saved.predict(data["X_all"]), got[0]["predictions"])
    X_val = np.concatenate([data[f"Xv{r}"] for r in range(3)])
    T_val = np.concatenate([data[f"Tv{r}"] for r in range(3)])
    assert got[0]["val_loss"][-1] == pytest.approx(saved.loss(X_val, T_val), rel=1e-12)


@needs_mpi
@pytest.mark.parametrize("changing_rank", [0, 1], ids=["changed-on-rank-0", "changed-on-rank-1"])
def test_the_learning_rate_is_rank_0s_on_every_rank(tmp_path, changing_rank):
    """A ReduceLROnPlateau on one rank alone: on rank 0 it sets the rate of every rank,
    on another rank it is overridden by rank 0's; History and parameters agree."""
    data = shards((20, 20))
    got = run_ranks(
        tmp_path,
        f"""
        net = network(seed=rank)
        never_better = fb.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1,
                                                      min_delta=1e9)
        history = net.fit(data[f"X{{rank}}"], data[f"T{{rank}}"], epochs=4, batch_size=5,
                          optimizer=fb.SGD(lr=0.1), progress=False, comm=comm,
                          callbacks=[never_better] if rank == {changing_rank} else [])
        save(lr=history.lr, params=net.params)
    """,
        **data,
    )
    expected = [0.1, 0.1, 0.05, 0.025] if changing_rank == 0 else [0.1] * 4
    for g in got:
        assert g["lr"].tolist() == expected
    np.testing.assert_array_equal(got[0]["params"], got[1]["params"])


@needs_mpi
def test_validation_metrics_and_early_stopping_are_the_same_on_every_rank(tmp_path):
    """Validation loss and accuracy are those of all ranks' validation rows together,
    early stopping ends every rank at the same epoch with the same best weights, a
    callback that stops one rank stops both, and only rank 0 draws a progress bar."""
    data = shards((40, 28), outputs=4, labels=True, seed=3)
    got = run_ranks(
        tmp_path,
        """
        bars = []

        class Bar:  # fit's progress bar, recorded instead of drawn
            def __init__(self, epochs, batches):
                bars.append(batches)
            def advance(self, epoch, batches, loss):
                pass
            def __call__(self, epoch, logs):
                pass
            def close(self):
                pass

        fb.training.loop.ProgressBar = Bar
        X, y = data[f"X{rank}"], data[f"T{rank}"]
        net = network(seed=rank, loss=fb.SoftmaxCrossEntropyLoss, widths=(5, 32, 4))
        stopped = net.fit(X, y, epochs=60, batch_size=6, optimizer=fb.SGD(lr=0.5),
                          validation_split=0.25, metrics=["accuracy"], early_stopping=True,
                          patience=2, progress=True, comm=comm)
        stop_on_one_rank = network(seed=0).fit(
            data[f"X{rank}"], np.zeros((len(X), 3)), epochs=10, batch_size=6,
            optimizer=fb.SGD(lr=0.1), progress=False, comm=comm,
            callbacks=[lambda epoch, logs: not (rank == 1 and epoch == 3)])
        save(**{k: np.array(v) for k, v in stopped.to_dict().items() if v is not None},
             params=net.params, bars=np.array(bars),
             callback_stop=stop_on_one_rank.stopped_epoch)
    """,
        **data,
    )
    for key in set(got[0]) - {"bars"}:
        np.testing.assert_array_equal(got[0][key], got[1][key], err_msg=key)
    assert 0 < got[0]["stopped_epoch"] < 59
    assert got[0]["best_epoch"] == got[0]["stopped_epoch"] - 2
    assert got[0]["callback_stop"] == got[1]["callback_stop"] == 3
    assert got[0]["bars"].tolist() == [-(-30 // 6)] and got[1]["bars"].tolist() == []

    # each rank validates on a quarter of its rows, drawn (stratified) from its network's
    # generator: the union is what one process sees
    val = []
    for r, n_val in ((0, 10), (1, 7)):
        drawn = twin(got[0]["params"], loss=fb.SoftmaxCrossEntropyLoss, widths=(5, 32, 4), seed=r)
        held = fb.training.loop._held_out_rows(drawn, data[f"T{r}"], n_val)
        val.append((data[f"X{r}"][held], data[f"T{r}"][held]))
    X_val, y_val = np.concatenate([v[0] for v in val]), np.concatenate([v[1] for v in val])
    one = twin(got[0]["params"], loss=fb.SoftmaxCrossEntropyLoss, widths=(5, 32, 4))
    best = int(got[0]["best_epoch"])
    assert got[0]["val_loss"][best] == pytest.approx(one.loss(X_val, y_val), rel=1e-12)
    accuracy = np.mean(one.predict(X_val).argmax(axis=1) == y_val)
    assert got[0]["val_accuracy"][best] == pytest.approx(accuracy, rel=1e-12)


@needs_mpi
def test_divergence_on_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    """Rank 1's third row overflows the loss (or, with a finite loss, the gradient; the
    test of the single-process check does the same): both
    ranks raise the same FloatingPointError at step 3 and keep the parameters of the two
    steps before it."""
    big = np.finfo(np.float64).max / 1.2
    rows = np.ones((4, 2))
    overflowing = {"loss": [1e200, 1e200], "gradient": [big, -big]}
    data = {"X0": rows, "T0": np.ones((4, 1))}
    for kind, row in overflowing.items():
        data[f"X1_{kind}"] = np.vstack([rows[:2], [row], rows[:1]])
    data["T1"] = np.ones((4, 1))
    got = run_ranks(
        tmp_path,
        """
        results = {}
        for kind in ("loss", "gradient"):
            net = fb.Network([fb.Dense(2, 1)], fb.MSELoss(), dtype="float64", seed=rank)
            net.layers[0].W = np.ones((2, 1))  # the big pair cancels in the output
            opt = fb.SGD(lr=0.01, momentum=0.9)
            X = data["X0"] if rank == 0 else data[f"X1_{kind}"]
            initial = net.params.copy()
            try:
                net.fit(X, data[f"T{rank}"], epochs=2, batch_size=1, optimizer=opt,
                        shuffle=False, progress=False, comm=comm)
            except FloatingPointError as e:
                results[kind + "_error"] = str(e)
            results.update({kind + "_params": net.params.copy(), kind + "_initial": initial,
                            kind + "_steps": opt.state_for(net).steps})
        save(**results)
    """,
        **data,
    )
    for kind in overflowing:
        errors = [str(g[kind + "_error"]) for g in got]
        assert errors[0] == errors[1]
        assert errors[0].startswith("training diverged at epoch 1 (History index 0), step 3: ")
        assert (
            "the loss is inf"
            if kind == "loss"
            else "a gradient is NaN or inf (dW of Dense layer 1 of 1; loss"
        ) in errors[0]
        np.testing.assert_array_equal(got[0][kind + "_params"], got[1][kind + "_params"])
        assert got[0][kind + "_steps"] == got[1][kind + "_steps"] == 2
        one, opt = twin_dense(got[0][kind + "_initial"]), fb.SGD(lr=0.01, momentum=0.9)
        for k in range(2):
            one.train_step(np.vstack([data["X0"][k], data[f"X1_{kind}"][k]]), np.ones((2, 1)), opt)
        np.testing.assert_allclose(got[0][kind + "_params"], one.params, rtol=1e-12)


def twin_dense(params):
    net = fb.Network([fb.Dense(2, 1)], fb.MSELoss(), dtype="float64")
    net.params[...] = params
    return net


@needs_mpi
def test_bad_input_on_one_rank_raises_on_every_rank_before_training(tmp_path):
    """Each case is wrong on rank 1 only; both ranks raise the same exception type,
    naming rank 1, with rank 0's parameters untouched; then a good fit still runs."""
    got = run_ranks(
        tmp_path,
        """
        X, T = data[f"X{rank}"], data[f"T{rank}"]
        wrong = rank == 1
        cases = {
            "nan": dict(X=np.where(wrong, np.nan, X)),
            "shape": dict(X=X[:, :4] if wrong else X),
            "label": dict(net=network(0, loss=fb.SoftmaxCrossEntropyLoss),
                          T=np.full(len(X), 3 if wrong else 1)),
            "epochs": dict(epochs=3 if wrong else 2),
            "width": dict(net=network(0, widths=(5, 8 if wrong else 7, 3))),
            "optimizer": dict(optimizer=fb.SGD(lr=0.2 if wrong else 0.1)),
            "batch type": dict(batch_size=2.5 if wrong else 2),
        }
        results = {}
        for name, case in cases.items():
            net = case.get("net") or network(0)
            before = net.params.copy()
            try:
                net.fit(case.get("X", X), case.get("T", T), epochs=case.get("epochs", 2),
                        batch_size=case.get("batch_size", 2),
                        optimizer=case.get("optimizer", fb.SGD(lr=0.1)), progress=False,
                        comm=comm)
                results[name] = "no error"
            except Exception as e:
                results[name] = f"{type(e).__name__}: {e}"
            results[name + " unchanged"] = np.array_equal(net.params, before)
        after = network(0).fit(X, T, epochs=1, batch_size=2, optimizer=fb.SGD(lr=0.1),
                               progress=False, comm=comm)
        save(after=after.loss, **results)
    """,
        **shards((6, 6)),
    )
    expected = {
        "nan": "ValueError: rank 1 of 2: X contains NaN or inf",
        "shape": "ValueError: rank 1 of 2: X must have shape",
        "label": "ValueError: rank 1 of 2: class labels must be in [0, 3)",
        "epochs": "ValueError: fit(comm=...) needs the same epochs on every rank: "
        "rank 0 has 2, rank 1 has 3",
        "width": "ValueError: fit(comm=...) needs the same network on every rank",
        "optimizer": "ValueError: fit(comm=...) needs the same optimizer on every "
        "rank: rank 0 has SGD(lr=0.1",
        "batch type": "TypeError: rank 1 of 2: batch_size must be an int",
    }
    for name, start in expected.items():
        assert str(got[0][name]) == str(got[1][name]), name
        assert str(got[0][name]).startswith(start), got[0][name]
        assert got[0][name + " unchanged"], name
    np.testing.assert_array_equal(got[0]["after"], got[1]["after"])


@needs_mpi
def test_agree_carries_any_exception_to_every_rank(tmp_path):
    """Raised by rank 1's checks alone: an exception that pickles arrives as itself
    (type, message, attributes; the rank in its message or a note), one that cannot be
    rebuilt as a RuntimeError naming its type and message, on both ranks, without a
    hang; on rank 1 chained to the original."""
    got = run_ranks(
        tmp_path,
        """
        import errno
        from fastbp.distributed import agree

        class TwoParts(Exception):  # pickle rebuilds it from its message alone: fails
            def __init__(self, what, why):
                super().__init__(f"{what}: {why}")

        def local_error():
            class Local(Exception):
                pass
            return Local("made inside a function")

        cases = {
            "value": ValueError("a plain message"),
            "decode": UnicodeDecodeError("utf-8", bytes([97, 98, 255]), 2, 3,
                                         "invalid start byte"),
            "os": OSError(errno.ENOENT, "No such file or directory", "model.npz"),
            "local": local_error(),
            "two parts": TwoParts("shape", "wrong"),
        }
        results = {}
        for name, error in cases.items():
            def checks():
                if rank == 1:
                    raise error
                return "fine"
            try:
                results[name] = agree(comm, checks)
            except Exception as e:
                results[name] = f"{type(e).__name__}: {e}"
                results[name + " notes"] = "|".join(getattr(e, "__notes__", []))
                results[name + " chained"] = e.__cause__ is error
                if isinstance(e, UnicodeDecodeError):
                    results[name + " fields"] = [e.encoding, e.object.hex(), e.start, e.end]
                if isinstance(e, OSError):
                    results[name + " fields"] = [e.errno, e.filename]
        save(**results)
    """,
    )
    for key in got[0]:
        if not key.endswith("chained"):
            np.testing.assert_array_equal(got[0][key], got[1][key], err_msg=key)
    assert got[1]["value chained"] and not got[0]["value chained"]
    assert str(got[0]["value"]) == "ValueError: rank 1 of 2: a plain message"
    assert str(got[0]["decode"]) == (
        "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 2: invalid start byte"
    )
    assert str(got[0]["decode notes"]) == "raised on rank 1 of 2"
    assert got[0]["decode fields"].tolist() == ["utf-8", "6162ff", "2", "3"]
    assert (
        str(got[0]["os"]) == "FileNotFoundError: [Errno 2] No such file or directory: 'model.npz'"
    )
    assert got[0]["os fields"].tolist() == [str(errno.ENOENT), "model.npz"]
    assert str(got[0]["local"]) == (
        "RuntimeError: rank 1 of 2: __main__.local_error.<locals>.Local: made inside a function"
    )
    assert str(got[0]["two parts"]) == "RuntimeError: rank 1 of 2: __main__.TwoParts: shape: wrong"


@needs_mpi
def test_own_loop_with_the_helpers_trains_as_one_process(tmp_path):
    """broadcast_parameters gives rank 1 rank 0's parameters and Adam state; backward,
    allreduce_gradients and optimizer.step on equal batches then train as one process
    on the batches together; a weight of 0 makes a rank's gradients, NaN included, count
    for nothing; bad arguments are refused on every rank alike."""
    data = shards((12, 12))
    got = run_ranks(
        tmp_path,
        """
        from fastbp.distributed import allreduce_gradients, broadcast_parameters
        net, opt = network(seed=rank), fb.Adam(lr=0.01)
        X, T = data[f"X{rank}"], data[f"T{rank}"]
        if rank == 1:  # a state of its own, which the broadcast replaces
            net.train_step(X[:3], T[:3], opt)
        broadcast_parameters(net, comm, optimizer=opt)
        state = opt.state_for(net)
        initial, moments, steps = net.params.copy(), state.exp_avg.copy(), state.steps
        for start in range(0, 12, 4):
            net.backward(X[start:start + 4], T[start:start + 4])
            allreduce_gradients(net, comm)
            opt.step(net)
        net.backward(X[:4], T[:4])
        mine = net.grads.copy()
        if rank == 1:
            net.grads[...] = np.nan
        allreduce_gradients(net, comm, weight=1.0 if rank == 0 else 0.0)
        errors = {}
        for name, call in {"weight": lambda: allreduce_gradients(net, comm, weight=-1),
                           "root": lambda: broadcast_parameters(net, comm, root=2),
                           "comm": lambda: allreduce_gradients(net, object()),
                           "optimizer": lambda: broadcast_parameters(net, comm,
                                                                     optimizer=fb.Adam)}.items():
            try:
                call()
                errors[name] = "no error"
            except Exception as e:
                errors[name] = f"{type(e).__name__}: {e}"
        save(initial=initial, moments=moments, steps=steps, params=net.params, mine=mine,
             reduced=net.grads, **errors)
    """,
        **data,
    )
    for key in (
        "initial",
        "moments",
        "steps",
        "params",
        "reduced",
        "weight",
        "root",
        "comm",
        "optimizer",
    ):
        np.testing.assert_array_equal(got[0][key], got[1][key], err_msg=key)
    assert got[0]["steps"] == 0 and not got[0]["moments"].any()
    np.testing.assert_array_equal(got[0]["reduced"], got[0]["mine"])
    assert str(got[0]["weight"]).startswith("ValueError: weight must be a finite number >= 0")
    assert str(got[0]["root"]) == "ValueError: root must be a rank in [0, 2), got 2"
    assert str(got[0]["comm"]).startswith("TypeError: comm must be an mpi4py intracommunicator")
    assert str(got[0]["optimizer"]).endswith("got the class Adam itself: did you mean `fb.Adam()`?")

    one, opt = twin(got[0]["initial"]), fb.Adam(lr=0.01)
    for X, T in global_batches(data, 4):
        one.train_step(X, T, opt)
    np.testing.assert_allclose(got[0]["params"], one.params, rtol=1e-12, atol=1e-14)
