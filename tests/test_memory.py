"""Memory: no growth over 100,000 train steps, and no leak when errors are raised
from C++ again and again. Measured as the process's resident set size (/proc/self/statm)
after a warm-up, with margins far below what a per-call leak would add up to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import make_net, sgd_core_args

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the resident set size from /proc/self/statm"
)


def limit(calls: int) -> int:
    """Allowed growth: 1 MiB of allocator noise (arenas, caches) plus 16 bytes a call,
    well under any per-call leak of a buffer or an error message."""
    return (1 << 20) + 16 * calls


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def growth(fn, calls: int, warmup: int = 1000) -> int:
    """Bytes the resident set grew over ``calls`` calls of ``fn``, after ``warmup``."""
    for _ in range(warmup):
        fn()
    before = rss()
    for _ in range(calls):
        fn()
    return rss() - before


def swallow(exc, fn):
    def call():
        try:
            fn()
        except exc:
            pass
        else:
            raise AssertionError("expected an error")

    return call


def test_no_growth_over_100000_train_steps():
    net = make_net((4, 8, 2), "tanh", "mse_mean", "float32", "cpu", seed=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 4)).astype(np.float32)
    T = rng.standard_normal((8, 2)).astype(np.float32)
    opt = fb.SGD(lr=1e-3, momentum=0.9)
    assert growth(lambda: net.train_step(X, T, opt), 100_000) < limit(100_000)


def test_no_growth_over_repeated_fit_and_forward():
    net = make_net((4, 8, 3), "relu", "ce_labels", "float64", "cpu", seed=0)
    rng = np.random.default_rng(0)
    X, T = rng.standard_normal((64, 4)), rng.integers(0, 3, 64)
    opt = fb.SGD(lr=1e-3)

    def call():
        net.fit(X, T, epochs=1, batch_size=16, optimizer=opt)
        net.forward(X)

    assert growth(call, 10_000) < limit(10_000)


def test_no_leak_when_cpp_raises_again_and_again():
    """Errors raised inside fastbp._core (argument checks, label range, divergence), each
    carrying a message built in C++, leak nothing."""
    net = make_net((4, 8, 3), "tanh", "ce_labels", "float64", "cpu", seed=0)
    core = net._core
    X = np.ones((8, 4))
    velocity = np.zeros(core.n_params)
    hyper = (0.1, 0.0, 0.0, False, 0.0, False)
    nan_x = X.copy()
    nan_x[0, 0] = np.nan
    bad_labels = np.full(8, 7, dtype=np.int64)
    # an input whose gradient overflows while the loss stays finite
    big = np.finfo(np.float64).max / 1.5
    mse = fb.Network([fb.Dense(2, 1)], fb.MSELoss(), dtype="float64")._core
    mse.params[...] = 1
    calls = [
        swallow(TypeError, lambda: core.forward(X.astype(np.float32))),
        swallow(ValueError, lambda: core.forward(nan_x)),
        swallow(
            ValueError, lambda: core.train_step(X, bad_labels, *sgd_core_args(velocity, *hyper))
        ),
        swallow(ValueError, lambda: fb._core.matmul(X, X, False, False)),
        swallow(
            FloatingPointError,
            lambda: mse.train_step(
                np.array([[big, -big]]), np.zeros((1, 1)), *sgd_core_args(np.zeros(3), *hyper)
            ),
        ),
    ]

    def call():
        for c in calls:
            c()

    assert growth(call, 20_000) < limit(20_000)


INFERENCE_GROWTH = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import fastbp as fb

    call, rows, width, repeats = sys.argv[1], *map(int, sys.argv[2:])

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def block():
        # Every kind of unit: Dense with an activation that keeps its input (GELU), and
        # alone: an activation, LayerNorm, Dropout, BatchNorm.
        return [fb.Dense(width, width), fb.GELU(), fb.ReLU(), fb.LayerNorm(width),
                fb.Dropout(0.5), fb.BatchNorm(width), fb.Tanh()]

    def net(repeats):
        layers = [fb.Dense(8, width)] + sum((block() for _ in range(repeats)), [])
        return fb.Network(layers + [fb.Dense(width, 1)], fb.MSELoss(), dtype="float32")

    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, 8)).astype(np.float32)
    T = rng.standard_normal((rows, 1)).astype(np.float32)
    calls = {"predict": lambda n: n.predict(X), "loss": lambda n: n.loss(X, T),
             "evaluate": lambda n: n.evaluate(X, T)}
    shallow, deep = net(1), net(repeats)
    calls[call](shallow)  # the thread pool, GEMM scratch and NumPy's temporaries
    deep.predict(X[:1])
    before = rss()
    calls[call](deep)
    print(json.dumps(rss() - before))
""")


@pytest.mark.parametrize("call", ["predict", "loss", "evaluate"])
def test_inference_keeps_two_layers_activations_however_deep_the_network(call):
    """predict, loss and validation (evaluate) of a deep network hold at most two
    layers' outputs at a time: the resident set grows by about two layers' activations
    (plus allocator noise), not by one per layer (here 42 units' worth)."""
    rows, width, repeats = 8192, 128, 6
    activations = rows * width * np.dtype(np.float32).itemsize
    result = subprocess.run(
        [sys.executable, "-c", INFERENCE_GROWTH, call, str(rows), str(width), str(repeats)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    grown = json.loads(result.stdout)
    assert grown < 2 * activations + (2 << 20), (
        f"{call} grew the resident set by {grown / 2**20:.1f} MiB; two layers' "
        f"activations are {2 * activations / 2**20:.1f} MiB"
    )
