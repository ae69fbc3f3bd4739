"""Time the matrix products' candidate configurations on this machine and save the best.

    python -m fastbp.tune [--quick | --full] [--threads N] [--shapes M,N,K[,TA,TB];...]
                          [--output PATH] [--no-save]

For each product dtype (float32, float64, bfloat16) on the SIMD path in use, every
compiled kernel of that path runs the products of MLP training steps (forward X @ W, and
the two backward products X^T @ dZ and dZ @ W^T) under a few cache blocks: the table's,
the analytic model's and neighbours of the better one. The fastest blocks per kernel (by
the geometric mean of GFLOP/s, median of repeats) win, and on a path with a narrow and a
wide kernel, the width from which the wide one runs. The choices are saved in the user
cache (see ``fastbp._tuning``) and used by every later import on this machine, fastbp
version and path; ``FASTBP_TUNING=off`` ignores them. Tuning changes only speed and the
order of the float sums inside a product, never which products are computed.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import numpy as np

import fastbp as fb

from . import _core, _tuning
from .ops import matmul

__all__ = ["main"]

# (m, n, k, trans_a, trans_b): the products of one training step of the benchmark cases
# S2 (1000-100-10, batch 64), S3 (784-256-256-10, batch 256), S4 (784-1024-1024-10, batch
# 1024) and, in --full, S5 (4096-4096-4096) at batch 512.
QUICK_SHAPES = (
    (64, 100, 1000, False, False),
    (1000, 100, 64, True, False),
    (256, 256, 784, False, False),
    (784, 256, 256, True, False),
    (256, 784, 256, False, True),
    (1024, 1024, 784, False, False),
    (784, 1024, 1024, True, False),
    (1024, 784, 1024, False, True),
)
FULL_SHAPES = QUICK_SHAPES + (
    (512, 4096, 4096, False, False),
    (4096, 4096, 512, True, False),
    (512, 4096, 4096, False, True),
)
NEVER_WIDE = _tuning.MAX_BLOCK
# A candidate replaces the configuration in use only when it is this much faster (in the
# geometric mean): on a busy machine smaller differences are noise.
MARGIN = 1.03


def _operands(shape, dtype, rng):
    m, n, k, ta, tb = shape
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b


class _Product:
    """One product to time, with its operands and the calls that make a block of about
    `block_seconds` (counted once, under the configuration in use)."""

    def __init__(self, shape, dtype, compute, rng, block_seconds: float):
        m, n, k, ta, tb = shape
        self.shape, self.flops = shape, 2.0 * m * n * k
        a, b = _operands(shape, dtype, rng)
        self.run = lambda: matmul(a, b, ta, tb, compute)
        self.run()
        t0 = time.perf_counter()
        self.run()
        self.calls = max(1, int(block_seconds / max(time.perf_counter() - t0, 1e-7)))

    def seconds(self) -> float:
        """Seconds per call over one block, after an untimed call that warms the caches
        and packing buffers for the configuration just set."""
        self.run()
        t0 = time.perf_counter()
        for _ in range(self.calls):
            self.run()
        return (time.perf_counter() - t0) / self.calls


def time_setups(setups, products, repeats: int):
    """GFLOP/s of every product after each of `setups` (callables that set a
    configuration): medians of `repeats` rounds, each round timing every setup in turn,
    so that a burst of load from elsewhere falls on all of them alike."""
    samples = [[[] for _ in products] for _ in setups]
    for _ in range(repeats):
        for per_product, setup in zip(samples, setups):
            setup()
            for times, product in zip(per_product, products):
                times.append(product.seconds())
    return [
        [p.flops / statistics.median(times) / 1e9 for p, times in zip(products, per_product)]
        for per_product in samples
    ]


def confirmed(setups, products, repeats: int) -> bool:
    """Whether the second of two setups (the one in use, a challenger) is still MARGIN
    faster when the two are timed again, head to head."""
    in_use, challenger = time_setups(setups, products, repeats)
    return geomean(challenger) > MARGIN * geomean(in_use)


def geomean(values) -> float:
    return math.exp(sum(map(math.log, values)) / len(values))


def candidates(kernel: dict, full: bool) -> list:
    """(label, [mc, kc, nc]) to time for `kernel`: the blocks in use, the table's, the
    analytic ones, and KC (and in --full MC and NC) halved and doubled around the one in
    use. Duplicates after rounding to whole tiles are dropped."""
    mr, nr = kernel["mr"], kernel["nr"]

    def tiles(mc, kc, nc):
        def clamp(v):
            return min(max(int(v), 1), _tuning.MAX_BLOCK)

        return [
            clamp(math.ceil(mc / mr) * mr),
            clamp(max(32, round(kc / 32) * 32)),
            clamp(math.ceil(nc / nr) * nr),
        ]

    mc, kc, nc = kernel["mc"], kernel["kc"], kernel["nc"]
    out = [(kernel["blocks"], [mc, kc, nc]), ("table", list(kernel["table"]))]
    if kernel["analytic"] is not None:
        out.append(("analytic", list(kernel["analytic"])))
    steps = [("kc/2", mc, kc / 2, nc), ("kc*2", mc, kc * 2, nc)]
    if full:
        steps += [("mc/2", mc / 2, kc, nc), ("mc*2", mc * 2, kc, nc)]
        steps += [("nc/2", mc, kc, nc / 2), ("nc*2", mc, kc, nc * 2)]
    out += [(label, tiles(*b)) for label, *b in steps]
    seen, unique = set(), []
    for label, blocks in out:
        if tuple(blocks) not in seen:
            seen.add(tuple(blocks))
            unique.append((label, blocks))
    return unique


def columns_seen(shape, narrow_nr: int) -> int:
    """The width the driver picks a kernel by: n, or m when it computes C^T (a narrow C
    whose A is transposed)."""
    m, n, _, ta, _ = shape
    return m if ta and n < narrow_nr and m > n else n


def choose_wide_from(shapes, narrow_rates, wide_rates, narrow_nr: int, current: int) -> int:
    """The width from which the wide kernel runs that maximises the geometric mean over
    `shapes`, given each shape's rate on either kernel; `current` unless another is MARGIN
    faster."""
    widths = sorted({columns_seen(s, narrow_nr) for s in shapes})

    def score(threshold):
        return geomean(
            [
                w if columns_seen(s, narrow_nr) >= threshold else n
                for s, n, w in zip(shapes, narrow_rates, wide_rates)
            ]
        )

    best = max([0, *widths, NEVER_WIDE], key=score)
    return best if score(best) > MARGIN * score(current) else current


def pick(results):
    """The fastest of `results` ((mean, label, blocks, rates), the one in use first), or
    the one in use unless the fastest beats it by MARGIN."""
    fastest = max(results, key=lambda r: r[0])
    return fastest if fastest[0] > MARGIN * results[0][0] else results[0]


def tune_dtype(dtype: str, shapes, full: bool, repeats: int, block_seconds: float, out=print):
    """The best choices for `dtype` on this path, and the rows of the table printed."""
    config = _core.gemm_config()[dtype]
    kernels = config["kernels"]
    two = len(kernels) == 2
    np_dtype = np.float64 if dtype == "float64" else np.float32
    compute = "bfloat16" if dtype == "bfloat16" else None
    rng = np.random.default_rng(0)
    products = [_Product(s, np_dtype, compute, rng, block_seconds) for s in shapes]
    rows, chosen, best_rates = [], {}, []
    for index, kernel in enumerate(kernels):
        if two:  # every product on this kernel
            _core._gemm_set_wide_from(dtype, NEVER_WIDE if index == 0 else 0)

        def use(blocks, name=kernel["name"]):
            return lambda: _core._gemm_set_blocks(dtype, name, *blocks, "tuned")

        cands = candidates(kernel, full)
        all_rates = time_setups([use(b) for _, b in cands], products, repeats)
        results = [
            (geomean(rates), label, blocks, rates)
            for (label, blocks), rates in zip(cands, all_rates)
        ]
        best = pick(results)
        if best is not results[0]:
            setups = [use(results[0][2]), use(best[2])]
            if not confirmed(setups, products, repeats):
                out(f"# {kernel['name']}: {best[1]} not faster when timed again; kept")
                best = results[0]
        chosen[kernel["name"]] = best[2]
        best_rates.append(best[3])
        _core._gemm_set_blocks(dtype, kernel["name"], *best[2], "tuned")
        for mean, label, blocks, _ in results:
            row = [
                dtype,
                kernel["name"],
                label,
                ",".join(map(str, blocks)),
                mean,
                blocks is best[2],
            ]
            rows.append(row)
            out(_format_row(row))
    wide_from = None
    if two:
        current = config["wide_from"]
        wide_from = choose_wide_from(
            shapes, best_rates[0], best_rates[1], kernels[0]["nr"], current
        )
        if wide_from != current:
            setups = [
                lambda: _core._gemm_set_wide_from(dtype, current),
                lambda: _core._gemm_set_wide_from(dtype, wide_from),
            ]
            if not confirmed(setups, products, repeats):
                out(f"# wide kernel from {wide_from} columns not faster when timed again; kept")
                wide_from = current
        _core._gemm_set_wide_from(dtype, wide_from)
        rows.append([dtype, "wide kernel from", f"{wide_from} columns", "", None, True])
        out(_format_row(rows[-1]))
    return {"kernels": chosen, "wide_from": wide_from}, rows


def _format_row(row) -> str:
    dtype, kernel, label, blocks, mean, won = row
    rate = "" if mean is None else f"{mean:8.1f}"
    return f"{dtype:9} {kernel:28} {label:12} {blocks:16} {rate:>8}  {'*' if won else ''}"


def parse_shapes(text: str):
    shapes = []
    for part in text.split(";"):
        fields = [f.strip() for f in part.split(",")]
        if len(fields) not in (3, 5) or not all(f.isdigit() for f in fields[:3]):
            raise argparse.ArgumentTypeError(f"{part!r} is not M,N,K or M,N,K,TA,TB")
        m, n, k = (int(f) for f in fields[:3])
        flags = [f in ("1", "T", "t", "true", "True") for f in fields[3:]] or [False, False]
        if min(m, n, k) < 1:
            raise argparse.ArgumentTypeError(f"{part!r}: sizes must be positive")
        shapes.append((m, n, k, *flags))
    return tuple(shapes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fastbp.tune", description=__doc__.splitlines()[0]
    )
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true", help="the default: about 10-30 s")
    speed.add_argument("--full", action="store_true", help="more candidates and shapes")
    parser.add_argument("--threads", type=int, default=None, help="default: fastbp's")
    parser.add_argument("--shapes", type=parse_shapes, default=None, help="products to time")
    parser.add_argument("--output", default=None, help="default: the user cache")
    parser.add_argument("--no-save", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    _tuning.restore_untuned()
    if args.threads:
        fb.set_num_threads(args.threads)
    shapes = args.shapes or (FULL_SHAPES if args.full else QUICK_SHAPES)
    repeats, block_seconds = (5, 0.04) if args.full else (3, 0.015)
    start = time.perf_counter()
    print(
        f"# fastbp {fb.__version__}, simd={_core.gemm_config()['simd']}, "
        f"{fb.get_num_threads()} threads; GFLOP/s: geometric mean over {len(shapes)} products "
        "of the medians; * chosen"
    )
    print(f"{'dtype':9} {'kernel':28} {'candidate':12} {'mc,kc,nc':16} {'GFLOP/s':>8}")
    choices, measured = {}, []
    for dtype in _tuning.DTYPES:
        choices[dtype], rows = tune_dtype(dtype, shapes, args.full, repeats, block_seconds)
        measured += rows
    print(f"# {time.perf_counter() - start:.1f} s")
    if args.no_save:
        return 0
    path = _tuning.save(choices, args.output, measured)
    print(f"# saved to {path}; fastbp uses it from the next import (FASTBP_TUNING=off ignores it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
