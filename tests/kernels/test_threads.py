"""Threads: the GIL is released during compute; two networks trained in two
threads at once give bitwise the results they give one after the other; two threads on
one network are serialised (the outcome is one of the two sequential orders, bitwise);
an optimizer drives one fit at a time;
snapshots (pickle, save) taken while another thread trains hold a whole epoch, and wait
for it without the GIL; a forked child can use a network another thread was training;
results are bitwise reproducible for a seed, thread count and SIMD path."""

from __future__ import annotations

import hashlib
import itertools
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import (
    BACKENDS,
    SIMD_PATHS,
    make_data,
    make_net,
    needs_address_space_limits,
    run_on_path,
    sgd_core_args,
)

WIDTHS = (48, 96, 10)


def run_in_threads(*jobs):
    """Run the callables at once (released together by a barrier); their results."""
    barrier = threading.Barrier(len(jobs))
    results, errors = [None] * len(jobs), []

    def run(i, job):
        try:
            barrier.wait()
            results[i] = job()
        except BaseException as e:  # noqa: BLE001 - reported in the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a training thread hung"
    if errors:
        raise errors[0]
    return results


def params(net):
    return [(layer.W.copy(), layer.b.copy()) for layer in net.layers[::2]]


def assert_bitwise_equal(a, b):
    for (wa, ba), (wb, bb) in zip(a, b):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)


def longest_pause_during_one_call(rows):
    """Run one train_epoch call (one C++ call) of ``rows`` rows in a thread while the main
    thread spins in Python, noting the time every 1000 turns. Returns the call's duration
    and the longest pause of the main thread during it."""
    net = make_net(WIDTHS, "relu", "ce_labels", "float64", "cpu", seed=0)
    X, T = make_data(WIDTHS, "ce_labels", rows, np.random.default_rng(0))
    span, done = [], threading.Event()

    def train():
        span.append(time.perf_counter())
        net.fit(X, T, epochs=1, batch_size=64, optimizer=fb.SGD(lr=0.01))
        span.append(time.perf_counter())
        done.set()

    thread = threading.Thread(target=train)
    stamps = []
    thread.start()
    while not done.is_set():
        for _ in range(1000):
            pass
        stamps.append(time.perf_counter())
    thread.join()
    inside = [t for t in stamps if span[0] <= t <= span[1]]
    points = [span[0], *inside, span[1]]
    return span[1] - span[0], max(b - a for a, b in zip(points, points[1:]))


def test_gil_is_released_while_training(restore_threads):
    """With the GIL held, the main thread could not run for the whole C++ call; released,
    its longest pause is a small part of it. The batch grows until the call is long
    enough to tell, whatever the machine's speed."""
    fb.set_num_threads(1)
    rows = 4000
    while True:
        duration, pause = longest_pause_during_one_call(rows)
        if duration > 0.2 or rows > 10**6:
            break
        rows *= 2
    assert pause < duration / 2, f"main thread paused {pause:.3f} s of a {duration:.3f} s call"


#: The width of the network whose snapshots are checked, and its epochs on each backend.
SNAPSHOT_WIDTH = 256
SNAPSHOT_EPOCHS = {"cpu": 300, "numpy": 60}
SNAPSHOTS = {
    "pickle": lambda net, folder: pickle.loads(pickle.dumps(net)),
    "save": lambda net, folder: fb.Network.load(net.save(folder / "snapshot")),
}


def fit_for_snapshots(net, callbacks=()):
    """Train ``net`` (from :func:`snapshot_net`) deterministically for many short epochs."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, SNAPSHOT_WIDTH)).astype(np.float32)
    T = rng.standard_normal((8, 4)).astype(np.float32)
    net.fit(
        X,
        T,
        epochs=SNAPSHOT_EPOCHS[net.backend],
        batch_size=4,
        optimizer=fb.SGD(lr=0.01),
        shuffle=False,
        progress=False,
        callbacks=callbacks,
    )


def snapshot_net(backend):
    """A BatchNorm first, whose running statistics change at the start of each step, and
    Dense layers whose weights change at its end: a copy across a step mixes the two."""
    w = SNAPSHOT_WIDTH
    return fb.Network(
        [fb.BatchNorm(w), fb.Dense(w, w), fb.Tanh(), fb.Dense(w, w), fb.Tanh(), fb.Dense(w, 4)],
        fb.MSELoss(),
        backend=backend,
        seed=0,
    )


def digest(net) -> str:
    """A digest of ``net``'s parameters and running statistics."""
    return hashlib.sha256(fb.io.values(net).tobytes()).hexdigest()


@pytest.mark.parametrize("take", SNAPSHOTS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_snapshots_taken_while_fit_trains_hold_a_whole_epoch(
    restore_threads, tmp_path, backend, take
):
    """The main thread pickles or saves a network as fast as it can while another thread
    fits it: every snapshot holds the parameters and running statistics that the same run,
    recorded alone, had after one of its epochs (or before the first)."""
    fb.set_num_threads(1)
    net = snapshot_net(backend)
    epochs = {digest(net)}
    fit_for_snapshots(net, [lambda epoch, logs: epochs.add(digest(net))])
    net = snapshot_net(backend)
    snapshots = []
    training = threading.Thread(target=fit_for_snapshots, args=(net,))
    training.start()
    while training.is_alive():
        snapshots.append(digest(SNAPSHOTS[take](net, tmp_path)))
    training.join()
    assert digest(net) in epochs, "the threaded run did not train as the recorded one"
    torn = sum(s not in epochs for s in snapshots)
    assert torn == 0, f"{torn} of {len(snapshots)} snapshots match no epoch of the run"


def test_save_waiting_for_a_running_epoch_lets_other_threads_run(restore_threads, tmp_path):
    """A save from another thread waits for fit's running epoch to end (about a second on
    a 2-core Xeon), with the GIL released: a thread ticking meanwhile pauses for a small
    part of that wait, not all of it."""
    fb.set_num_threads(1)
    widths = (64, 512, 512, 10)
    net = make_net(widths, "relu", "ce_labels", "float64", "cpu", seed=0)
    X, T = make_data(widths, "ce_labels", 32768, np.random.default_rng(0))
    first_epoch_ended, epoch_ends, done = threading.Event(), [], threading.Event()

    def ended(epoch, logs):
        epoch_ends.append(time.perf_counter())
        first_epoch_ended.set()

    training = threading.Thread(
        target=lambda: net.fit(
            X,
            T,
            epochs=2,
            batch_size=64,
            optimizer=fb.SGD(lr=0.01),
            progress=False,
            callbacks=[ended],
        )
    )
    stamps = []

    def tick():
        while not done.is_set():
            stamps.append(time.perf_counter())
            time.sleep(0.001)

    ticker = threading.Thread(target=tick)
    training.start()
    ticker.start()
    first_epoch_ended.wait()
    time.sleep(0.05)  # the second epoch is running
    start = time.perf_counter()
    net.save(tmp_path / "model")
    done.set()
    training.join()
    ticker.join()
    wait = epoch_ends[1] - start  # the save's copy came after the second epoch's end
    points = [start, *(t for t in stamps if start <= t <= epoch_ends[1]), epoch_ends[1]]
    pause = max(b - a for a, b in zip(points, points[1:]))
    assert wait > 0.2, f"the save started {wait:.3f} s before the epoch's end: too late to tell"
    assert pause < wait / 4, f"the ticking thread paused {pause:.3f} s of a {wait:.3f} s wait"


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_networks_in_two_threads_match_sequential(backend):
    rng = np.random.default_rng(0)
    data = [make_data(WIDTHS, "ce_labels", 256, rng, "float32") for _ in range(2)]

    def job(i):
        net = make_net(WIDTHS, "tanh", "ce_labels", "float32", backend, seed=i)
        opt = fb.SGD(lr=0.05, momentum=0.9)
        history = net.fit(*data[i], epochs=4, batch_size=32, optimizer=opt)
        for _ in range(5):
            net.train_step(*data[i], opt)
        return history.loss, params(net), net.forward(data[i][0])

    sequential = [job(0), job(1)]
    concurrent = run_in_threads(lambda: job(0), lambda: job(1))
    for (loss_s, p_s, y_s), (loss_c, p_c, y_c) in zip(sequential, concurrent):
        assert loss_s == loss_c
        assert_bitwise_equal(p_s, p_c)
        np.testing.assert_array_equal(y_s, y_c)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_threads_on_one_network_are_serialised(backend):
    """Two threads each take two steps on one network with one momentum optimizer.
    Serialised, the result is bitwise that of one of the six orders of those four steps
    (which comes first decides the momentum initialisation); steps whose workspaces,
    velocity or step count interleaved would match none."""
    rng = np.random.default_rng(1)
    batches = dict(zip("AB", (make_data(WIDTHS, "mse_mean", 128, rng) for _ in range(2))))

    def fresh():
        return (
            make_net(WIDTHS, "tanh", "mse_mean", "float64", backend, seed=0),
            fb.SGD(lr=0.1, momentum=0.9),
        )

    def state(net, opt):
        return params(net), opt.state_for(net).velocity.copy()

    def same(s, t):
        return all(
            np.array_equal(w, w2) and np.array_equal(b, b2) for (w, b), (w2, b2) in zip(s[0], t[0])
        ) and np.array_equal(s[1], t[1])

    serial = {}
    for order in set(itertools.permutations("AABB")):
        net, opt = fresh()
        for name in order:
            net.train_step(*batches[name], opt)
        serial["".join(order)] = state(net, opt)
    for _ in range(10):
        net, opt = fresh()
        run_in_threads(
            *(lambda b=b: [net.train_step(*b, opt) for _ in range(2)] for b in batches.values())
        )
        assert opt.state_for(net).steps == 4
        got = state(net, opt)
        assert any(same(got, s) for s in serial.values()), "state matches no serial order"


def test_an_optimizer_drives_one_fit_at_a_time():
    """A fit sets its optimizer's learning rate (a schedule's, then back): a second fit
    with it, or a step with it from another thread, is refused while the fit runs; the
    fit's own thread (a callback) may step with it."""
    X, T = make_data(WIDTHS, "ce_labels", 64, np.random.default_rng(0))
    opt = fb.SGD(lr=0.1)
    first, second = (
        make_net(WIDTHS, "relu", "ce_labels", "float64", "cpu", seed=s) for s in (0, 1)
    )
    training, finish, errors = threading.Event(), threading.Event(), []

    def wait_in_epoch(epoch, logs):
        second.train_step(X, T, opt)  # the fit's own thread
        training.set()
        assert finish.wait(60)

    def run():
        try:
            first.fit(
                X,
                T,
                epochs=2,
                batch_size=16,
                optimizer=opt,
                lr_schedule=lambda epoch: 0.01,
                callbacks=[wait_in_epoch],
            )
        except BaseException as e:  # noqa: BLE001 - reported in the main thread
            errors.append(e)

    thread = threading.Thread(target=run, name="first fit")
    thread.start()
    try:
        assert training.wait(60)
        before = second.params.copy()
        with pytest.raises(RuntimeError, match="already drives a fit .*'first fit'"):
            second.fit(X, T, epochs=1, batch_size=16, optimizer=opt)
        with pytest.raises(RuntimeError, match="drives a fit on thread 'first fit'"):
            second.train_step(X, T, opt)
        second.backward(X, T)
        with pytest.raises(RuntimeError, match="drives a fit on thread 'first fit'"):
            opt.step(second)
        np.testing.assert_array_equal(second.params, before)
        assert opt.lr == 0.01  # the first fit's scheduled rate, untouched
    finally:
        finish.set()
        thread.join(60)
    assert not thread.is_alive() and not errors, errors
    assert opt.lr == 0.1  # set back by the first fit
    second.fit(X, T, epochs=1, batch_size=16, optimizer=opt)  # free again
    assert opt.lr == 0.1


def test_direct_core_calls_on_one_network_are_serialised():
    """The C++ network serialises its own calls: two threads stepping one fastbp._core
    network (no Python lock involved) give one of the two serial orders, bitwise."""
    rng = np.random.default_rng(3)
    batches = [make_data(WIDTHS, "mse_mean", 256, rng) for _ in range(2)]
    hyper = (0.1, 0.0, 0.0, False, 0.0, False)

    def fresh():
        core = make_net(WIDTHS, "tanh", "mse_mean", "float64", "cpu", seed=0)._core
        return core, np.zeros(core.n_params)

    serial = []
    for order in (batches, batches[::-1]):
        core, velocity = fresh()
        for x, t in order:
            core.train_step(x, t, *sgd_core_args(velocity, *hyper))
        serial.append(core.params.copy())
    for _ in range(20):
        core, velocity = fresh()
        run_in_threads(
            *(
                lambda x=x, t=t: core.train_step(x, t, *sgd_core_args(velocity, *hyper))
                for x, t in batches
            )
        )
        assert any(np.array_equal(core.params, s) for s in serial)


@pytest.mark.parametrize("threads", [1, 2])
def test_same_seed_and_thread_count_is_bitwise_reproducible(restore_threads, threads):
    fb.set_num_threads(threads)
    X, T = make_data(WIDTHS, "ce_labels", 200, np.random.default_rng(2), "float32")
    runs = []
    for _ in range(2):
        net = make_net(WIDTHS, "relu", "ce_labels", "float32", "cpu", seed=5)
        hist = net.fit(X, T, epochs=3, batch_size=17, optimizer=fb.SGD(lr=0.1, momentum=0.9))
        runs.append((hist.loss, params(net)))
    assert runs[0][0] == runs[1][0]
    assert_bitwise_equal(runs[0][1], runs[1][1])


TRAIN = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    import fastbp as fb

    fb.set_num_threads(int(sys.argv[1]))
    rng = np.random.default_rng(0)
    X, T = rng.standard_normal((300, 33)), rng.integers(0, 7, 300)
    digest = hashlib.sha256()
    for dtype, compute in (("float32", None), ("float64", None), ("float32", "bfloat16")):
        net = fb.Network([fb.Dense(33, 65), fb.ReLU(), fb.Dense(65, 7)],
                         fb.SoftmaxCrossEntropyLoss(), dtype=dtype, seed=4,
                         compute_dtype=compute)
        net.fit(X, T, epochs=3, batch_size=20, optimizer=fb.SGD(lr=0.1, momentum=0.9))
        for layer in net.layers[::2]:
            digest.update(layer.W.tobytes() + layer.b.tobytes())
    print(fb.build_info()["simd"], digest.hexdigest())
""")


@pytest.mark.parametrize("path", SIMD_PATHS)
def test_each_simd_path_is_bitwise_reproducible_across_processes(path):
    outs = [run_on_path(path, TRAIN, "2", timeout=120) for _ in range(2)]
    for out in outs:
        assert out.returncode == 0, out.stderr
    assert outs[0].stdout.split()[0] == path
    assert outs[0].stdout == outs[1].stdout


# ---------------------------------------------------------------------------------------
# thread counts: bounded, and never a process ended by a thread the OS would not start
# ---------------------------------------------------------------------------------------


def test_thread_counts_beyond_the_bound_are_refused(restore_threads):
    most = fb._core.max_threads()
    assert most >= 1
    fb.set_num_threads(most)
    assert fb.get_num_threads() == most
    for n in (most + 1, 10**6, 2**62):
        with pytest.raises(ValueError, match=rf"\[1, {most}\].*got {n}"):
            fb.set_num_threads(n)
        assert fb.get_num_threads() == most


@pytest.mark.parametrize(
    "n",
    [0, -2, 1000, 2**63, -(2**63) - 1, 2**70, np.int64(0)],
    ids=["0", "-2", "1000", "2**63", "-2**63-1", "2**70", "np.int64-0"],
)
def test_every_refused_thread_count_is_worded_alike(restore_threads, n):
    """Too few, too many, or beyond int64: the same words and the same range."""
    most = fb._core.max_threads()
    with pytest.raises(ValueError) as caught:
        fb.set_num_threads(n)
    assert str(caught.value) == (
        f"number of threads must be in [1, {most}] (4 x the "
        f"{most // 4} CPUs this process may use), got {n}"
    )
    assert fb.get_num_threads() == restore_threads


def run_limited(script: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"the process ended with {result.returncode} (negative: killed by that signal)\n"
        f"{result.stdout}{result.stderr}"
    )
    return result


@needs_address_space_limits
def test_most_threads_under_an_address_space_limit_keep_the_process_alive():
    run_limited("""
        import resource
        import numpy as np
        import fastbp as fb

        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, resource.RLIM_INFINITY))
        fb.set_num_threads(fb._core.max_threads())
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((2, 2048, 2048)).astype(np.float32)
        np.testing.assert_allclose(fb.ops.matmul(a, b), a @ b, rtol=1e-3, atol=1e-2)
    """)


@needs_address_space_limits
def test_threads_the_os_cannot_start_fall_back_with_a_warning():
    stack = resource_stack_limit()
    if stack < (1 << 20):
        pytest.skip(f"thread stacks of {stack} bytes fit in any headroom left here")
    out = run_limited(
        """
        import resource, sys, warnings
        import numpy as np
        import fastbp as fb

        def mapped_bytes():
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))

        want = fb._core.max_threads()
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((2, 300, 300))
        # room for the interpreter to go on, none for another thread's stack
        limit = mapped_bytes() + int(sys.argv[1]) // 2
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fb.set_num_threads(want)
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        got = fb.get_num_threads()
        np.testing.assert_allclose(fb.ops.matmul(a, b), a @ b, rtol=1e-12, atol=1e-12)
        print(want, got, [str(w.message) for w in caught])
    """,
        str(min(stack, 8 << 20)),
    )
    want, got, messages = out.stdout.split(" ", 2)
    if int(want) == 1:
        pytest.skip("max_threads() is 1 here: no thread to start")
    assert int(got) < int(want), out.stdout
    assert f"only {got} of the {want} threads" in messages, out.stdout


def resource_stack_limit() -> int:
    """The default thread stack size here (RLIMIT_STACK, 8 MiB when unlimited)."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    return 8 << 20 if soft == resource.RLIM_INFINITY else soft


def test_pool_survives_concurrent_callers_and_resizes(restore_threads):
    """Four threads multiply while a fifth keeps changing the thread count: every product
    is right, and every call returns (a call that finds the pool busy runs alone)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 300, 300))
    want = fb.ops.matmul(a, b)
    stop = threading.Event()

    def multiply():
        for _ in range(30):
            np.testing.assert_array_equal(fb.ops.matmul(a, b), want)

    def resize():
        counts = itertools.cycle(range(1, fb._core.max_threads() + 1))
        while not stop.is_set():
            fb.set_num_threads(next(counts))

    resizer = threading.Thread(target=resize)
    resizer.start()
    try:
        run_in_threads(multiply, multiply, multiply, multiply)
    finally:
        stop.set()
        resizer.join()


def test_forked_child_runs_parallel_kernels():
    out = run_limited("""
        import os
        import numpy as np
        import fastbp as fb

        fb.set_num_threads(2)
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((2, 400, 400))
        want = fb.ops.matmul(a, b)  # the pool's workers are running when it forks
        pid = os.fork()
        if pid == 0:
            ok = np.array_equal(fb.ops.matmul(a, b), want) and fb.get_num_threads() == 2
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """)
    assert out.stdout.strip() == "0", out.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_forked_child_uses_a_network_another_thread_was_training(backend):
    """A thread is inside a long fit epoch (holding the network's locks) when the main
    thread forks: the child's predict, pickle, save and training on that network return
    (within 30 s; a child that hangs is killed and reported)."""
    out = run_limited(
        """
        import os, pickle, sys, tempfile, threading, time
        # OpenBLAS's own fork handler deadlocks while another thread is in one of its
        # products (the numpy backend's): without its pool the fork tests fastbp's alone.
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        import numpy as np
        import fastbp as fb

        fb.set_num_threads(1)
        net = fb.Network([fb.Dense(64, 256), fb.Tanh(), fb.Dense(256, 4)], fb.MSELoss(),
                         backend=sys.argv[1], seed=0)
        rng = np.random.default_rng(0)
        X = rng.standard_normal((65536, 64)).astype(np.float32)  # epochs of about 0.5 s
        T = rng.standard_normal((65536, 4)).astype(np.float32)
        between_epochs = threading.Event()
        training = threading.Thread(target=lambda: net.fit(
            X, T, epochs=2, batch_size=32, optimizer=fb.SGD(lr=1e-3), progress=False,
            callbacks=[lambda epoch, logs: between_epochs.set()]), daemon=True)
        training.start()
        between_epochs.wait()
        time.sleep(0.05)  # the second epoch is running
        pid = os.fork()
        if pid == 0:
            y = net.predict(X[:5])
            pickle.loads(pickle.dumps(net))
            net.save(os.path.join(tempfile.mkdtemp(), "child"))
            net.train_step(X[:32], T[:32], fb.SGD(lr=1e-3))
            os._exit(0 if y.shape == (5, 4) and np.isfinite(y).all() else 1)
        for _ in range(300):
            ended, status = os.waitpid(pid, os.WNOHANG)
            if ended:
                print(os.waitstatus_to_exitcode(status))
                break
            time.sleep(0.1)
        else:
            os.kill(pid, 9)
            print("the child hung")
        training.join()
    """,
        backend,
    )
    assert out.stdout.strip() == "0", out.stdout + out.stderr


@pytest.mark.parametrize(
    "env,want",
    [
        ({"FASTBP_NUM_THREADS": "1", "OMP_NUM_THREADS": "2"}, "1"),
        ({"OMP_NUM_THREADS": "1,2"}, "1"),
        ({"FASTBP_NUM_THREADS": "1000000"}, "max"),
        ({"FASTBP_NUM_THREADS": "zero", "OMP_NUM_THREADS": "1"}, "1"),
    ],
    ids=["fastbp-first", "omp-list", "capped", "unreadable-skipped"],
)
def test_default_thread_count_comes_from_the_environment(env, want):
    clean = {
        k: v for k, v in os.environ.items() if k not in ("FASTBP_NUM_THREADS", "OMP_NUM_THREADS")
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import fastbp as fb; print(fb.get_num_threads(), fb._core.max_threads())",
        ],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    got, most = result.stdout.split()
    assert got == (most if want == "max" else want)


# ---------------------------------------------------------------------------------------
# threadpoolctl: lists fastbp's pool, and its limits reach it
# ---------------------------------------------------------------------------------------


def fastbp_pools(threadpoolctl) -> list:
    return [info for info in threadpoolctl.threadpool_info() if info["internal_api"] == "fastbp"]


def test_threadpool_info_lists_fastbp_s_pool(restore_threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    fb.set_num_threads(1)
    [pool] = fastbp_pools(threadpoolctl)
    assert pool["user_api"] == "fastbp" and pool["num_threads"] == 1
    assert pool["version"] == fb.__version__
    assert os.path.samefile(pool["filepath"], fb._core.__file__)


@pytest.mark.parametrize(
    "limits, user_api, want",
    [
        (1, None, 1),
        (1, "fastbp", 1),
        ({"fastbp": 1}, None, 1),
        (10**6, None, "max"),
        ({"blas": 1}, None, "unchanged"),
        (1, "blas", "unchanged"),
    ],
    ids=["all", "by-api", "dict", "beyond-the-bound", "blas-dict", "blas-api"],
)
def test_threadpool_limits_sets_fastbp_s_threads_and_restores_them(
    restore_threads, limits, user_api, want
):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    most = fb._core.max_threads()
    before = 2 if most >= 2 else 1
    fb.set_num_threads(before)
    with threadpoolctl.threadpool_limits(limits=limits, user_api=user_api):
        assert fb.get_num_threads() == {"max": most, "unchanged": before}.get(want, want)
    assert fb.get_num_threads() == before


@pytest.mark.parametrize("order", ["threadpoolctl-first", "fastbp-first"])
def test_fastbp_is_listed_whichever_is_imported_first(order):
    pytest.importorskip("threadpoolctl")
    imports = ["import threadpoolctl", "threadpoolctl.threadpool_info()", "import fastbp"]
    if order == "fastbp-first":
        imports = imports[2:] + imports[:2]
    script = "; ".join(
        imports
        + ["print([i['internal_api'] for i in threadpoolctl.threadpool_info()].count('fastbp'))"]
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_fastbp_imports_and_trains_without_threadpoolctl():
    script = textwrap.dedent("""
        import sys
        sys.modules["threadpoolctl"] = None  # as if not installed: importing it fails
        import numpy as np
        import fastbp as fb
        net = fb.Network([fb.Dense(2, 1)], fb.MSELoss(), seed=0)
        net.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=1, batch_size=2,
                optimizer=fb.SGD())
        print("trained")
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "trained"
