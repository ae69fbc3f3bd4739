"""Timing shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time

# Seconds of rest before each timed block of interleaved_medians: the worker threads of
# the library timed just before keep polling for a while after their last call
# (OpenBLAS's for longer than 0.05 s: at that pause PyTorch's S2 step of bench_train ran
# 5x slower than alone; at 0.3 s as fast as alone).
PAUSE_SECONDS = 0.3


def torch_with_threads(fb, threads):
    """``(torch or None, threads)``: PyTorch if installed, with fastbp and it set to
    ``threads`` (None: fastbp's current count), so both libraries get the same cores."""
    try:
        import torch
    except ImportError:
        torch = None
    threads = threads or fb.get_num_threads()
    fb.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)
    return torch, threads


def median_seconds(fn, repeats: int, block_seconds: float = 0.2) -> float:
    """Median seconds per call of ``fn`` over ``repeats`` blocks of ~``block_seconds``.

    After a warm-up call it sleeps briefly, so the worker threads of a library timed
    just before (OpenBLAS, PyTorch's OpenMP) stop spinning and give the cores back.
    """
    fn()
    time.sleep(0.5)
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    per_block = max(1, min(int(block_seconds / once), 20000))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(per_block):
            fn()
        samples.append((time.perf_counter() - t0) / per_block)
    return statistics.median(samples)


def interleaved_medians(
    fns: dict, repeats: int, block_seconds: float = 0.2, setups: dict | None = None
) -> dict:
    """Median seconds per call of each of ``fns`` (name -> callable), timed in rounds: a
    round runs one block (~``block_seconds``) of every contender, in an order that rotates
    from round to round, so that a change in the machine's load falls on all of them alike
    rather than on whichever ran last. A short pause before each block lets the previous
    library's worker threads stop spinning. ``setups`` (name -> callable, optional) run
    untimed before each of that contender's blocks."""
    setups = setups or {}
    per_block = {}
    for name, fn in fns.items():
        setups.get(name, lambda: None)()
        fn()
        t0 = time.perf_counter()
        fn()
        once = max(time.perf_counter() - t0, 1e-7)
        per_block[name] = max(1, min(int(block_seconds / once), 20000))
    names = list(fns)
    samples = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            time.sleep(PAUSE_SECONDS)
            setups.get(name, lambda: None)()
            fn, n = fns[name], per_block[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n)
    return {name: statistics.median(s) for name, s in samples.items()}


def measured_peak(fb, unit: str = "float32"):
    """fastbp's measured peak of ``unit`` ("float32" or "bfloat16") on its thread count
    (``fb.tune.peak``: a plain loop of the instruction its products use), or None where
    the SIMD path has no such unit; and the header line that gives it (for float32 with
    the rate of its micro-kernel on panels in L1, the most a product can reach)."""
    measured = fb.tune.peak()
    peak = measured[unit]
    if peak is None:
        return None, f"# {unit} peak: none on simd={fb.build_info()['simd']}"
    line = (
        f"# {unit} peak (fb.tune.peak): {peak['gflops']:.1f} GFLOP/s, "
        f"{peak['instruction']} on {peak['threads']} threads"
    )
    if unit == "float32":
        kernel = measured["float32_kernel"]
        line += (
            f"; its micro-kernel {kernel['instruction']} on panels in L1: "
            f"{kernel['gflops']:.1f} GFLOP/s ({share_of_peak(kernel['gflops'], peak)})"
        )
    return peak, line


def share_of_peak(gflops: float, peak) -> str:
    """``gflops`` as a percentage of ``peak`` (measured_peak's), "-" without one."""
    return "-" if peak is None else f"{100 * gflops / peak['gflops']:.0f}%"
