"""fastbp's float32 matrix multiply against NumPy's (its BLAS: OpenBLAS) and, when
installed, PyTorch's (MKL on x86), in one process.

    python benchmarks/bench_gemm.py [--threads 2] [--repeats 7]

Squares 256-4096 and the nine products of the MLP cases S2-S4 (forward X @ W,
weight gradient X^T @ dZ, input gradient dZ @ W^T of each layer that has one); fastbp
and PyTorch on the same threads, NumPy's BLAS on its own (OPENBLAS_NUM_THREADS, in the
header). The contenders of a row take turns, one timed block each
per round (``--repeats`` rounds); medians. The table gives each one's GFLOP/s, fastbp's
speed-up over each and over the better of the two ("x best BLAS"; >1: fastbp faster),
fastbp's share of the measured float32 peak the header gives (``fb.tune.peak``: a plain
FMA loop of the vector width the products use, on the same threads) and its error
against NumPy's product.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import fastbp as fb
from fastbp import _tuning
from timing import interleaved_medians, measured_peak, share_of_peak, torch_with_threads

SQUARES = (256, 512, 1024, 2048, 4096)
# (name, m, n, k, trans_a, trans_b) as fastbp computes them for one training step
MLP_PRODUCTS = (
    ("S2 fwd  X@W1", 64, 100, 1000, False, False),
    ("S2 dW1 X^T@dZ", 1000, 100, 64, True, False),
    ("S2 dX2 dZ@W2^T", 64, 100, 10, False, True),
    ("S3 fwd  X@W1", 256, 256, 784, False, False),
    ("S3 dW2 A^T@dZ", 256, 256, 256, True, False),
    ("S3 dX3 dZ@W3^T", 256, 256, 10, False, True),
    ("S4 fwd  X@W1", 1024, 1024, 784, False, False),
    ("S4 dW1 X^T@dZ", 784, 1024, 1024, True, False),
    ("S4 dX2 dZ@W2^T", 1024, 1024, 1024, False, True),
)


def operands(m, n, k, trans_a, trans_b, rng):
    a = rng.standard_normal((k, m) if trans_a else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n), dtype=np.float32)
    return a, b


def config_choices(name: str, dtype: str):
    """The choices (as fastbp._tuning applies them) of configuration `name`, or None
    where there is none here (no analytic blocks without caches, no tuning file)."""
    untuned = _tuning.untuned_config()[dtype]
    if name == "tuned":
        path = fb.build_info()["tuning"] or _tuning.default_path()
        return _tuning.read(path)[dtype] if os.path.exists(path) else None
    if name == "analytic" and untuned["kernels"][0]["analytic"] is None:
        return None
    # a kernel the model does not describe keeps the table's blocks
    kernels = {k["name"]: list(k[name] or k["table"]) for k in untuned["kernels"]}
    return {"kernels": kernels, "wide_from": untuned["wide_from"]}


def compare_configs(args, threads: int) -> None:
    names = args.configs.split(",")
    choices = {name: config_choices(name, args.dtype) for name in names}
    missing = [name for name in names if choices[name] is None]
    if missing:
        raise SystemExit(f"no {', '.join(missing)} configuration here (run python -m fastbp.tune)")
    print(
        f"# fastbp {fb.build_info()['version']} simd={fb.build_info()['simd']}, {threads} "
        f"threads, {args.dtype}; GFLOP/s, medians of {args.repeats} interleaved rounds"
    )
    for name in names:
        print(
            f"# {name}: "
            + "; ".join(f"{k} {v}" for k, v in choices[name]["kernels"].items())
            + f"; wide from {choices[name]['wide_from']}"
        )
    header = f"{'product':16} {'m':>5} {'n':>5} {'k':>5} " + " ".join(f"{n:>9}" for n in names)
    header += "".join(f" {n + '/' + names[0]:>16}" for n in names[1:])
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    dtype = np.float64 if args.dtype == "float64" else np.float32
    compute = "bfloat16" if args.dtype == "bfloat16" else None
    squares = [(f"square {s}", s, s, s, False, False) for s in SQUARES if s <= args.max_square]
    for case, m, n, k, ta, tb in squares + list(MLP_PRODUCTS):
        a, b = (x.astype(dtype) for x in operands(m, n, k, ta, tb, rng))

        def run():
            fb.ops.matmul(a, b, ta, tb, compute)

        setups = {
            name: lambda name=name: _tuning.apply({args.dtype: choices[name]}, name)
            for name in names
        }
        seconds = interleaved_medians(dict.fromkeys(names, run), args.repeats, 0.1, setups)
        rates = [2.0 * m * n * k / seconds[name] / 1e9 for name in names]
        print(
            f"{case:16} {m:>5} {n:>5} {k:>5} "
            + " ".join(f"{r:>9.1f}" for r in rates)
            + "".join(f" {r / rates[0]:>16.2f}" for r in rates[1:])
        )


def product_calls(a, b, trans_a, trans_b, torch):
    """name -> a call of each library's product op(a) @ op(b) (torch where installed)."""
    calls = {
        "fastbp": lambda: fb.ops.matmul(a, b, trans_a, trans_b),
        "numpy": lambda: (a.T if trans_a else a) @ (b.T if trans_b else b),
    }
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        calls["torch"] = lambda: (ta.T if trans_a else ta) @ (tb.T if trans_b else tb)
    return calls


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--max-square", type=int, default=4096)
    parser.add_argument("--configs", default=None, help="e.g. table,analytic,tuned")
    parser.add_argument("--dtype", default="float32", choices=_tuning.DTYPES)
    args = parser.parse_args(argv)
    threads = args.threads or fb.get_num_threads()
    fb.set_num_threads(threads)
    if args.configs:
        return compare_configs(args, threads)
    torch, _ = torch_with_threads(fb, threads)
    print(
        f"# fastbp {fb.build_info()['version']} simd={fb.build_info()['simd']}, "
        f"{threads} threads; numpy {np.__version__} "
        f"(OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}); "
        f"torch {torch.__version__ if torch else 'not installed'}"
    )
    peak, peak_line = measured_peak(fb)
    print(peak_line)
    header = (
        f"{'product':16} {'m':>5} {'n':>5} {'k':>5} {'fastbp GF/s':>11} {'numpy GF/s':>10} "
        f"{'torch GF/s':>10} {'x numpy':>7} {'x torch':>7} {'x best BLAS':>11} {'% peak':>6} "
        f"{'max rel err':>11}"
    )
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    cases = [(f"square {s}", s, s, s, False, False) for s in SQUARES if s <= args.max_square]
    for name, m, n, k, ta, tb in cases + list(MLP_PRODUCTS):
        a, b = operands(m, n, k, ta, tb, rng)
        calls = product_calls(a, b, ta, tb, torch)
        seconds = interleaved_medians(calls, args.repeats, 0.1)
        ref = calls["numpy"]()
        err = np.max(np.abs(calls["fastbp"]() - ref)) / np.max(np.abs(ref))
        rate = {lib: 2.0 * m * n * k / t / 1e9 for lib, t in seconds.items()}
        best_blas = min(t for lib, t in seconds.items() if lib != "fastbp")
        torch_rate = f"{rate['torch']:>10.1f}" if "torch" in rate else f"{'-':>10}"
        vs_torch = f"{seconds['torch'] / seconds['fastbp']:>7.2f}" if "torch" in rate else "-"
        print(
            f"{name:16} {m:>5} {n:>5} {k:>5} {rate['fastbp']:>11.1f} {rate['numpy']:>10.1f} "
            f"{torch_rate} {seconds['numpy'] / seconds['fastbp']:>7.2f} {vs_torch:>7} "
            f"{best_blas / seconds['fastbp']:>11.2f} {share_of_peak(rate['fastbp'], peak):>6} "
            f"{err:>11.1e}"
        )


if __name__ == "__main__":
    main()
