"""Time the matrix products' candidate configurations on this machine and save the best.

    python -m fastbp.tune [--quick | --full] [--threads N] [--shapes M,N,K[,TA,TB];...]
                          [--output PATH] [--no-save]

For each product dtype (float32, float64, bfloat16) on the SIMD path in use, every
compiled kernel of that path runs the products of MLP training steps (forward X @ W, and
the two backward products X^T @ dZ and dZ @ W^T) under a few cache blocks: the table's,
the analytic model's and neighbours of the better one. The fastest blocks per kernel (by
the geometric mean of GFLOP/s, median of repeats) win, and on a path with a narrow and a
wide kernel, the width from which the wide one runs. At the thread count in use it also
times how a product's threads split its rows and columns, and the multiply-adds a thread
must get (below twice that a product runs on one thread). It stops starting timings
before its time limit (20 s in all, 60 s with --full); what it leaves untimed keeps its
default. The choices are saved in the user cache (see ``fastbp._tuning``) and used by
every later import on this machine, fastbp version and path; ``FASTBP_TUNING=off``
ignores them. ``fb.tune(net, X)`` (this module, called) does the same for one network's
products. Tuning changes only speed and the order of the float sums inside a product,
never which products are computed. ``fb.tune.peak()`` measures the machine's peak
GFLOP/s, which the benchmarks quote their shares of.
"""

from __future__ import annotations

import argparse
import inspect
import math
import statistics
import sys
import time
import types
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

import fastbp as fb

from . import _core, _tuning
from ._validate import integer
from .ops import matmul

__all__ = ["main", "peak", "tune"]

# (m, n, k, trans_a, trans_b): the products of one training step of the benchmark cases
# S2 (1000-100-10, batch 64), S3 (784-256-256-10, batch 256), S4 (784-1024-1024-10, batch
# 1024) and, in --full, S5 (4096-4096-4096) at batch 256.
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
    (256, 4096, 4096, False, False),
    (4096, 4096, 256, True, False),
    (256, 4096, 4096, False, True),
)
NEVER_WIDE = _tuning.MAX_BLOCK
ALWAYS_M = _tuning.THREAD_BOUNDS["split_pack_cost"][1]  # a pack cost that never splits N
# Cube products from about 2^16 to 2^23 multiply-adds, around the one-thread threshold.
THRESHOLD_CUBES = (40, 56, 80, 101, 128, 161, 203)
# A candidate replaces the configuration in use only when it is this much faster (in the
# geometric mean): on a busy machine smaller differences are noise.
MARGIN = 1.03
# The tuner starts no timing that would end after this many seconds (its imports and the
# file's writing come on top): at most 20 s in all by default, 60 s with --full.
QUICK_SECONDS, FULL_SECONDS = 14.0, 48.0


def _operands(shape, dtype, rng):
    """Uniform operands in [-1, 1): their values do not change a product's speed, and
    they are made in a fraction of normal ones' time (S5's are 16M elements each)."""
    m, n, k, ta, tb = shape

    def uniform(rows, cols):
        return (2 * rng.random((rows, cols), dtype=np.float32) - 1).astype(dtype, copy=False)

    a = uniform(k, m) if ta else uniform(m, k)
    b = uniform(n, k) if tb else uniform(k, n)
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
        once = max(time.perf_counter() - t0, 1e-7)
        self.calls = max(1, int(block_seconds / once))
        # A product longer than a block warms its own caches: it runs without a warm-up.
        self.warm = self.calls > 1
        self.pass_seconds = (self.calls + self.warm) * once

    def seconds(self) -> float:
        """Seconds per call over one block, after an untimed call (for short products)
        that warms the caches and packing buffers for the configuration just set."""
        if self.warm:
            self.run()
        t0 = time.perf_counter()
        for _ in range(self.calls):
            self.run()
        return (time.perf_counter() - t0) / self.calls


def time_setups(setups, products, repeats: int, end: float = math.inf):
    """GFLOP/s of every product after each of `setups` (callables that set a
    configuration): medians of `repeats` rounds, each round timing every setup in turn,
    so that a burst of load from elsewhere falls on all of them alike. No round after the
    first starts past `end` (a perf_counter time)."""
    samples = [[[] for _ in products] for _ in setups]
    for round_ in range(repeats):
        if round_ > 0 and time.perf_counter() >= end:
            break
        for per_product, setup in zip(samples, setups):
            setup()
            for times, product in zip(per_product, products):
                times.append(product.seconds())
    return [
        [p.flops / statistics.median(times) / 1e9 for p, times in zip(products, per_product)]
        for per_product in samples
    ]


def confirmed(setups, products, repeats: int, end: float = math.inf) -> bool:
    """Whether the second of two setups (the one in use, a challenger) is still MARGIN
    faster when the two are timed again, head to head."""
    in_use, challenger = time_setups(setups, products, repeats, end)
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


@dataclass
class Plan:
    """How long to time: rounds per candidate, seconds per timed block, more candidates
    (`full`), and the time (perf_counter) after which no new timing starts."""

    full: bool
    repeats: int
    block_seconds: float
    end: float
    out: Callable = print

    @classmethod
    def start(cls, full: bool, out=print) -> Plan:
        repeats, block, limit = (3, 0.02, FULL_SECONDS) if full else (3, 0.01, QUICK_SECONDS)
        return cls(full, repeats, block, time.perf_counter() + limit, out)

    def share(self, parts: int) -> Plan:
        """This plan with one of `parts` equal shares of the time left."""
        now = time.perf_counter()
        return replace(self, end=min(self.end, now + (self.end - now) / parts))

    def affords(self, setups: int, products) -> bool:
        """Whether timing `setups` setups on `products` ends before the time limit, by
        an estimate with a quarter more for changes of load and configuration."""
        cost = 1.25 * setups * self.repeats * sum(p.pass_seconds for p in products)
        return time.perf_counter() + cost <= self.end

    def products(self, shapes, dtype: str, rng):
        """The products of `shapes` to time, made while the time limit is not reached."""
        np_dtype, compute = _np_dtype(dtype)
        made = []
        for shape in shapes:
            if time.perf_counter() >= self.end:
                return []
            made.append(_Product(shape, np_dtype, compute, rng, self.block_seconds))
        return made

    def affordable(self, candidates: int, products) -> int:
        """How many of `candidates` (the one in use first) can be timed on `products`,
        with a head-to-head confirmation, before the time limit: 0 when not two."""
        fits = max(
            (c for c in range(2, candidates + 1) if self.affords(c + 2, products)), default=0
        )
        return fits if products else 0


def best_of(cands, use, products, plan: Plan, what: str):
    """Times `cands` ((label, value), the one in use first; `use(value)` makes the setup
    that sets it) and returns the results ((mean, label, value, rates) each) and the best:
    the fastest if it beats the one in use by MARGIN twice, else the one in use. None
    when the timing would run past the time limit (the one in use is kept)."""
    repeats, out = plan.repeats, plan.out
    fits = plan.affordable(len(cands), products)
    if fits == 0:
        out(f"# {what}: not timed, the time limit is near; kept")
        return None
    if fits < len(cands):
        out(f"# {what}: {len(cands) - fits} of {len(cands)} candidates left out by the time limit")
        cands = cands[:fits]
    all_rates = time_setups([use(v) for _, v in cands], products, repeats, plan.end)
    results = [
        (geomean(rates), label, value, rates) for (label, value), rates in zip(cands, all_rates)
    ]
    best = pick(results)
    if best is not results[0]:
        if not confirmed([use(results[0][2]), use(best[2])], products, repeats, plan.end):
            out(f"# {what}: {best[1]} not faster when timed again; kept")
            best = results[0]
    return results, best


def _rows(kind: str, what: str, results, best, show=str, out=print):
    rows = []
    for mean, label, value, _ in results:
        rows.append([kind, what, label, show(value), mean, value == best[2]])
        out(_format_row(rows[-1]))
    return rows


def _np_dtype(dtype: str):
    """The operands' NumPy dtype and the compute dtype for a product dtype."""
    return (
        np.float64 if dtype == "float64" else np.float32,
        "bfloat16" if dtype == "bfloat16" else None,
    )


def tune_dtype(dtype: str, shapes, plan: Plan):
    """The best choices for `dtype` on this path, and the rows of the table printed."""
    config = _core.gemm_config()[dtype]
    kernels = config["kernels"]
    two = len(kernels) == 2
    products = plan.products(shapes, dtype, np.random.default_rng(0))
    rows, chosen, best_rates = [], {}, []
    for index, kernel in enumerate(kernels):
        name = kernel["name"]
        if two:  # every product on this kernel
            _core._gemm_set_wide_from(dtype, NEVER_WIDE if index == 0 else 0)

        def use(blocks, name=name):
            return lambda: _core._gemm_set_blocks(dtype, name, *blocks, "tuned")

        timed = best_of(candidates(kernel, plan.full), use, products, plan, name)
        if timed is None:  # not in the file: the kernel keeps its default blocks
            continue
        results, best = timed
        chosen[name] = best[2]
        best_rates.append(best[3])
        use(best[2])()
        rows += _rows(dtype, name, results, best, lambda b: ",".join(map(str, b)), plan.out)
    wide_from = config["wide_from"]
    if two:
        if len(best_rates) == 2:
            wide_from = _tune_wide_from(
                dtype, shapes, products, kernels[0]["nr"], best_rates, wide_from, plan
            )
        _core._gemm_set_wide_from(dtype, wide_from)
        rows.append([dtype, "wide kernel from", f"{wide_from} columns", "", None, True])
        plan.out(_format_row(rows[-1]))
    return {"kernels": chosen, "wide_from": wide_from}, rows


def _tune_wide_from(dtype, shapes, products, narrow_nr, best_rates, current, plan: Plan) -> int:
    """The width from which `dtype`'s wide kernel runs: the best split by the rates each
    kernel reached, confirmed head to head against `current`."""
    wide_from = choose_wide_from(shapes, best_rates[0], best_rates[1], narrow_nr, current)
    if wide_from == current:
        return current
    setups = [
        lambda: _core._gemm_set_wide_from(dtype, current),
        lambda: _core._gemm_set_wide_from(dtype, wide_from),
    ]
    if not plan.affords(2, products) or not confirmed(setups, products, plan.repeats, plan.end):
        plan.out(f"# wide kernel from {wide_from} columns not confirmed faster; kept")
        return current
    return wide_from


def split_candidates(current: int, full: bool) -> list:
    """(label, pack cost) for the M/N thread split: the one in use, balance alone (0), M
    only (the bound), and (in --full) costs between."""
    costs = [0, 64, 1024, ALWAYS_M] if full else [0, ALWAYS_M]
    return [("in use", current)] + [(_cost_label(c), c) for c in costs if c != current]


def _cost_label(cost: int) -> str:
    return "M only" if cost == ALWAYS_M else "balance" if cost == 0 else f"cost {cost}"


def work_candidates(current: int, full: bool) -> list:
    """(label, multiply-adds per thread) around the one in use, nearest first (a time
    limit leaves out the last): a half to twice it, a quarter to four times (and in
    --full an eighth to eight times)."""
    factors = (1 / 2, 2, 1 / 4, 4, 1 / 8, 8) if full else (1 / 2, 2, 1 / 4, 4)
    bound = _tuning.THREAD_BOUNDS["work_per_thread"][1]
    values = {min(bound, max(1, int(current * f))): f"x{f:g}" for f in factors}
    return [("in use", current)] + [(label, v) for v, label in values.items() if v != current]


def threshold_shapes(shapes, largest_work: int, threads: int):
    """The products a one-thread threshold up to `largest_work` per thread decides: cubes
    from about 2^16 to 2^23 multiply-adds, and those of `shapes` below threads x that."""
    cubes = [(n, n, n, False, False) for n in THRESHOLD_CUBES]
    limit = threads * largest_work
    return [s for s in cubes + list(shapes) if s[0] * s[1] * s[2] < limit]


def tune_threads(dtype: str, shapes, plan: Plan):
    """The thread settings that run `dtype`'s products fastest at this thread count: the
    M/N split (timed on `shapes`) and the multiply-adds a thread must get (timed on the
    products that threshold decides), with the rows of the table printed."""
    settings = dict(_core.gemm_config()[_tuning.THREADS])
    threads = fb.get_num_threads()
    if threads == 1:
        plan.out(f"# {_tuning.THREADS}: one thread, nothing to split; settings kept")
        return settings, []
    rng = np.random.default_rng(0)
    rows = []
    setters = {
        "split_pack_cost": _core._gemm_set_split_pack_cost,
        "work_per_thread": _core._set_work_per_thread,
    }
    cands = work_candidates(settings["work_per_thread"], plan.full)
    timings = {
        "split_pack_cost": (split_candidates(settings["split_pack_cost"], plan.full), shapes),
        "work_per_thread": (cands, threshold_shapes(shapes, max(v for _, v in cands), threads)),
    }
    for name, (cands, on) in timings.items():
        set_value = setters[name]
        products = plan.products(on, dtype, rng)
        timed = best_of(cands, lambda v, s=set_value: lambda: s(v), products, plan, name)
        if timed is not None:
            results, best = timed
            settings[name] = best[2]
            rows += _rows(_tuning.THREADS, name, results, best, out=plan.out)
        set_value(settings[name])
    return settings, rows


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


def run(dtypes, shapes, plan: Plan, *, thread_shapes=None, blocks_on_one_thread=False) -> tuple:
    """Tunes each of `dtypes` and the thread settings (on the first of them) for `shapes`,
    from the defaults, within `plan`'s time limit (what it leaves untimed keeps its
    default); returns the choices (applied in this process) and the table. The thread
    settings are timed on `thread_shapes` where given; `blocks_on_one_thread` times the
    blocks with the pool at one thread (products that run inside a part of a split pass)."""
    choices, measured = {}, []
    phases = [(dtype, tune_dtype) for dtype in dtypes]
    phases.insert(1, (_tuning.THREADS, tune_threads))  # on the first dtype's blocks just chosen
    threads = fb.get_num_threads()
    for index, (name, tuner) in enumerate(phases):
        # Each phase gets an equal share of the time left, so that a slow one (a busy
        # machine) leaves the later ones time to run.
        share = plan.share(len(phases) - index)
        if tuner is tune_threads:
            choices[name], rows = tuner(dtypes[0], thread_shapes or shapes, share)
        else:
            fb.set_num_threads(1 if blocks_on_one_thread else threads)
            try:
                choices[name], rows = tuner(name, shapes, share)
            finally:
                fb.set_num_threads(threads)
        measured += rows
    return choices, measured


def _header(shapes, out=print) -> None:
    out(
        f"# fastbp {fb.__version__}, simd={_core.gemm_config()['simd']}, "
        f"{fb.get_num_threads()} threads; GFLOP/s: geometric mean over {len(shapes)} products "
        "of the medians; * chosen"
    )
    out(f"{'dtype':9} {'kernel':28} {'candidate':12} {'mc,kc,nc':16} {'GFLOP/s':>8}")


def network_shapes(net, batch: int, forward_only: bool = False):
    """(m, n, k, trans_a, trans_b) of the products of one training step of `net` at
    `batch` rows: per dense layer (in, out) the forward X @ W, the weight gradient
    X^T @ dZ and (but for the first layer) the input gradient dZ @ W^T; `forward_only`:
    the forward products alone (an inference pass)."""
    dense = [layer for layer in net.layers if isinstance(layer, fb.Dense)]
    shapes = []
    for index, layer in enumerate(dense):
        n_in, n_out = layer.in_features, layer.out_features
        shapes.append((batch, n_out, n_in, False, False))
        if not forward_only:
            shapes.append((n_in, n_out, batch, True, False))
            if index > 0:
                shapes.append((batch, n_in, n_out, False, True))
    return tuple(dict.fromkeys(shapes))


def product_dtype(net) -> str:
    """The dtype of `net`'s products, as gemm_config() names it."""
    return "bfloat16" if net.compute_dtype == "bfloat16" else np.dtype(net.dtype).name


def tune(net, X, *, full: bool = False, output=None, verbose: bool = False) -> dict:
    """Tunes the matrix products for one network: its forward and both backward products
    at ``X``'s batch size (``len(X)`` rows), in the dtype it computes in, and the thread
    settings, timed as ``python -m fastbp.tune`` times them (about 5-20 s; ``full``: more
    candidates, up to about a minute). Where a training pass over that batch is split by
    rows between the threads, the blocks are timed on one part's products, on one thread
    as they run there, and the thread settings on the whole batch's forward products,
    which an inference pass runs on every thread. The choices are applied in this process at once
    and saved, with those of the other dtypes from a tuning file already in use, to
    ``output`` (default: the user cache file that later imports on this machine load).
    ``verbose`` prints the table. Returns the choices saved. Results stay correct under
    any choice; only the order of the float sums inside a product can change."""
    if not isinstance(net, fb.Network):
        raise TypeError(f"fb.tune expects a fastbp Network, got {type(net).__name__}")
    if net.backend != "cpu":
        raise ValueError(
            f"fb.tune times the CPU kernels; this network's backend is {net.backend!r}, "
            "expected 'cpu'"
        )
    dense = [layer for layer in net.layers if isinstance(layer, fb.Dense)]
    if not dense:
        raise ValueError("fb.tune needs a network with at least one Dense layer")
    shape = tuple(X.shape) if hasattr(X, "shape") else np.shape(X)
    if len(shape) != 2 or shape[0] < 1:
        raise ValueError(f"X must be a 2-D batch with at least one row, got shape {shape}")
    if shape[1] != dense[0].in_features:
        raise ValueError(
            f"X must have the network's input width {dense[0].in_features}, got {shape[1]} columns"
        )
    out = print if verbose else (lambda *_: None)
    kept = _kept_choices()
    _tuning.restore_untuned()
    rows = int(shape[0])
    parts = net.internals.core.training_parts(rows)
    if parts == 1:
        shapes, options = network_shapes(net, rows), {}
    else:
        # A training pass split by rows runs each part's products on one thread, over
        # its share of the rows; only an inference pass's products run on every thread.
        shapes = network_shapes(net, rows // parts)
        options = {
            "thread_shapes": network_shapes(net, rows, forward_only=True),
            "blocks_on_one_thread": True,
        }
        out(f"# a training pass over {rows} rows runs as {parts} parts, one thread each")
    _header(shapes, out)
    tuned, measured = run([product_dtype(net)], shapes, Plan.start(full, out), **options)
    choices = {**kept, **tuned}
    path = _tuning.save(choices, output, measured)
    _tuning.use(choices, path)
    out(f"# saved to {path}")
    return choices


def peak(threads=None) -> dict:
    """The measured peak of this machine's multiply-add units on the SIMD path in use: a
    plain loop of the instruction the matrix products use, with enough independent
    accumulators to hide its latency and nothing else inside (no loads, no stores), run
    on ``threads`` threads at once (default: fastbp's thread count, ``fb.get_num_threads()``)
    and timed over about 0.1 s, the best of three runs; and the same for the float32
    GEMM's wide micro-kernel, called again and again on packed panels and a C tile that
    stay in L1: its loads and broadcasts run beside the multiply-adds, nothing waits on
    memory, so no float32 product here can go faster. About a second in all.

    Returns ``{"simd": path, "float32": unit, "bfloat16": unit, "float32_kernel":
    unit}``, each unit a dict
    ``{"gflops": GFLOP/s of all the threads together, "instruction": what the loop runs,
    "threads": threads}``, or ``None`` where the path has no such unit. float32:
    ``vfmadd231ps ymm`` on avx2, ``vfmadd231ps zmm`` on avx512, avx512_bf16 and amx (2
    flops per lane), ``None`` on ref. bfloat16: ``vdpbf16ps zmm`` on avx512_bf16 (4 flops
    per float32 lane), ``tdpbf16ps`` on amx (16 x 16 x 32 multiply-adds), ``None``
    elsewhere (those paths multiply bfloat16 on the float32 unit). float32_kernel: on
    every path, its "instruction" the kernel's name (``sgemm_avx512_6x64``, ...). The
    benchmarks quote their shares of the peaks. ``threads`` must be an int in
    ``[1, fb.get_num_threads()]``: ``TypeError`` for another type, ``ValueError`` out of
    that range."""
    if threads is None:
        threads = fb.get_num_threads()
    return _core.measure_peak(integer("threads", threads))


def _kept_choices() -> dict:
    """The choices of the tuning file in use (none when it is gone or no longer valid)."""
    loaded = _tuning.loaded_path()
    if loaded is None:
        return {}
    try:
        return _tuning.read(loaded)
    except (OSError, _tuning.TuningError):
        return {}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fastbp.tune", description=__doc__.splitlines()[0]
    )
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true", help="the default: at most 20 s")
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
    start = time.perf_counter()
    _header(shapes)
    choices, measured = run(_tuning.DTYPES, shapes, Plan.start(args.full))
    print(f"# {time.perf_counter() - start:.1f} s")
    if args.no_save:
        return 0
    path = _tuning.save(choices, args.output, measured)
    print(f"# saved to {path}; fastbp uses it from the next import (FASTBP_TUNING=off ignores it)")
    return 0


class _CallableModule(types.ModuleType):
    """This module, callable as ``fb.tune(net, X)``: the command line and the function
    share one name."""

    def __call__(self, net, X, **options):
        return tune(net, X, **options)


__signature__ = inspect.signature(tune)
sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    sys.exit(main())
