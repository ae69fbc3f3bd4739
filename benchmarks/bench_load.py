"""Time fastbp while other processes keep the CPUs busy: one spinning process per CPU but
one, as on a shared machine. Side by side, idle and under that load: the S2-S4 training
steps of bench_train.py with fastbp at its default thread count and at one thread, and
PyTorch at its default; and examples/digits.py's training run with fastbp's default.

    python benchmarks/bench_load.py [--cases S2,S3,S4] [--repeats 5] [--spinners N]
                                    [--no-digits] [--no-torch] [--work-per-thread N]

The ratios to read: `load/1t`, fastbp's default under load over its own one-thread time
under load (1.0: threads cost nothing when a core is taken), and digits' `load/idle`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

import fastbp as fb
from bench_train import CASES, fastbp_step, torch_step
from timing import interleaved_medians

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import digits  # examples/digits.py


def spin() -> None:
    while True:
        pass


@contextmanager
def spinners(count: int):
    """`count` processes that each keep one CPU busy until the block ends."""
    procs = [multiprocessing.Process(target=spin, daemon=True) for _ in range(count)]
    for p in procs:
        p.start()
    time.sleep(0.5)  # let the scheduler spread them
    try:
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join()


def step_times(cases, repeats: int, torch) -> dict:
    """Median seconds per step: {case: {"default": s, "1 thread": s, "torch": s}}, the
    contenders timed in interleaved rounds so that a change in load falls on all alike."""
    rng = np.random.default_rng(0)
    out = {}
    for name in cases:
        sizes, batch = CASES[name]
        X = rng.standard_normal((batch, sizes[0]), dtype=np.float32)
        T = rng.standard_normal((batch, sizes[-1]), dtype=np.float32)
        step = fastbp_step(sizes, X, T, "cpu")
        fns = {"default": step, "1 thread": step}
        setups = {
            "default": lambda: fb.set_num_threads(DEFAULT_THREADS),
            "1 thread": lambda: fb.set_num_threads(1),
        }
        if torch is not None:
            fns["torch"] = torch_step(sizes, X, T)
        out[name] = interleaved_medians(fns, repeats, setups=setups)
        fb.set_num_threads(DEFAULT_THREADS)
    return out


def digits_seconds(repeats: int) -> float:
    """Median seconds of examples/digits.py's training run (60 epochs, no progress bar)."""
    data = digits.load_data()
    samples = []
    for _ in range(repeats):
        net = digits.build_network()
        start = time.perf_counter()
        digits.train(net, data, epochs=60, progress=False)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="S2,S3,S4")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--spinners",
        type=int,
        default=max(1, os.cpu_count() - 1),
        help="spinning processes under load (default: CPUs - 1)",
    )
    parser.add_argument("--no-digits", action="store_true", help="skip the digits run")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch's steps")
    parser.add_argument(
        "--work-per-thread",
        type=int,
        default=None,
        help="multiply-adds a thread must get (default: the tuning file's, else 2^19)",
    )
    args = parser.parse_args(argv)
    if args.work_per_thread is not None:
        fb._core._set_work_per_thread(args.work_per_thread)
    try:
        import torch
    except ImportError:
        torch = None
    if args.no_torch:
        torch = None
    cases = args.cases.split(",")
    info = fb.build_info()
    torch_info = (
        f"{torch.__version__}, {torch.get_num_threads()} threads" if torch else "not installed"
    )
    print(
        f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"fastbp {info['version']} simd={info['simd']}, {DEFAULT_THREADS} threads by "
        f"default; torch {torch_info}; "
        f"load: {args.spinners} spinning processes"
    )
    digits_run = (lambda: None) if args.no_digits else (lambda: digits_seconds(args.repeats))
    idle, idle_digits = step_times(cases, args.repeats, torch), digits_run()
    with spinners(args.spinners):
        load, load_digits = step_times(cases, args.repeats, torch), digits_run()
    header = (
        f"{'case':6} {'idle us':>9} {'idle 1t us':>10} {'load us':>9} {'load 1t us':>10} "
        f"{'torch load us':>13} {'load/1t':>8} {'load/idle':>9}"
    )
    print(header)
    print("-" * len(header))
    for name in cases:
        quiet, busy = idle[name], load[name]
        torch_us = f"{busy['torch'] * 1e6:13.1f}" if "torch" in busy else f"{'-':>13}"
        print(
            f"{name:6} {quiet['default'] * 1e6:9.1f} {quiet['1 thread'] * 1e6:10.1f} "
            f"{busy['default'] * 1e6:9.1f} {busy['1 thread'] * 1e6:10.1f} {torch_us} "
            f"{busy['default'] / busy['1 thread']:8.2f} "
            f"{busy['default'] / quiet['default']:9.2f}"
        )
    if idle_digits is None:
        return
    print(
        f"{'digits':6} {idle_digits:8.3f}s {'':>10} {load_digits:8.3f}s {'':>10} {'':>13} "
        f"{'':>8} {load_digits / idle_digits:9.2f}"
    )


DEFAULT_THREADS = fb.get_num_threads()

if __name__ == "__main__":
    main()
