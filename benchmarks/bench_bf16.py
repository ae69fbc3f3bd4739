"""bfloat16 compute against float32 and PyTorch's autocast, in one process.

    python benchmarks/bench_bf16.py [--cases S3,S4,S5] [--sizes 512,1024,2048] [--repeats 7]
                                    [--no-torch]

Two tables. The train step (forward, MSE, backward, SGD; bench_train.py's networks) of
fastbp with ``compute_dtype="bfloat16"``, of fastbp in float32, and of PyTorch under
``torch.autocast("cpu", dtype=torch.bfloat16)``; and square products of
``fb.ops.matmul(a, b, compute_dtype="bfloat16")`` (float32 in and out, rounded operands)
against ``torch.matmul`` on bfloat16 tensors, against PyTorch doing what fastbp's call does
(float32 tensors rounded to bfloat16, the product returned as float32: "torch cast") and
fastbp's float32 product. The
contenders of a row take turns, one timed block each per round (``--repeats`` rounds);
medians. Ratios >1 mean fastbp bfloat16 is faster; "% peak" is fastbp bfloat16's share
of the bfloat16 unit's measured peak the header gives (``fb.tune.peak``: a plain loop of
vdpbf16ps, or of tdpbf16ps on AMX, on the same threads). The header names the bfloat16 kernel
in use: on a CPU without AVX512-BF16 or AMX it is the portable path (float32 arithmetic
on rounded operands), which cannot beat float32.
"""

from __future__ import annotations

import argparse
import platform

import numpy as np

import fastbp as fb
from bench_train import CASES, fastbp_step, step_flops, torch_step
from timing import interleaved_medians, measured_peak, share_of_peak, torch_with_threads


def train_table(cases, repeats, torch, rng, peak):
    header = (
        f"{'case':4} {'layers':>16} {'batch':>5} {'bf16 us':>11} {'GFLOP/s':>8} {'% peak':>6} "
        f"{'f32 us':>11} {'autocast us':>11} {'x f32':>6} {'x autocast':>10}"
    )
    print(header)
    print("-" * len(header))
    for name in cases:
        sizes, batch = CASES[name]
        X = rng.standard_normal((batch, sizes[0]), dtype=np.float32)
        T = rng.standard_normal((batch, sizes[-1]), dtype=np.float32)
        steps = {
            "bf16": fastbp_step(sizes, X, T, "cpu", "bfloat16"),
            "f32": fastbp_step(sizes, X, T, "cpu"),
        }
        if torch is not None:
            steps["autocast"] = torch_step(sizes, X, T, autocast=True)
        t = interleaved_medians(steps, repeats)
        auto = f"{t['autocast'] * 1e6:>11.1f}" if "autocast" in t else f"{'-':>11}"
        vs_auto = f"{t['autocast'] / t['bf16']:>10.2f}" if "autocast" in t else f"{'-':>10}"
        gflops = step_flops(sizes, batch) / t["bf16"] / 1e9
        print(
            f"{name:4} {'-'.join(map(str, sizes)):>16} {batch:>5} {t['bf16'] * 1e6:>11.1f} "
            f"{gflops:>8.1f} {share_of_peak(gflops, peak):>6} {t['f32'] * 1e6:>11.1f} "
            f"{auto} {t['f32'] / t['bf16']:>6.2f} {vs_auto}"
        )


def gemm_table(sizes, repeats, torch, rng, peak):
    header = (
        f"{'n':>5} {'bf16 ms':>9} {'GFLOP/s':>8} {'% peak':>6} {'torch bf16 ms':>13} "
        f"{'torch cast ms':>13} {'f32 ms':>9} {'x torch':>7} {'x cast':>6} {'x f32':>6}"
    )
    print(header)
    print("-" * len(header))
    for n in sizes:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        products = {
            "bf16": lambda: fb.ops.matmul(a, b, compute_dtype="bfloat16"),
            "f32": lambda: fb.ops.matmul(a, b),
        }
        if torch is not None:
            a32, b32 = torch.from_numpy(a), torch.from_numpy(b)
            ta, tb = a32.to(torch.bfloat16), b32.to(torch.bfloat16)
            products["torch"] = lambda: torch.matmul(ta, tb)
            products["cast"] = lambda: torch.matmul(
                a32.to(torch.bfloat16), b32.to(torch.bfloat16)
            ).float()
        t = interleaved_medians(products, repeats)

        def column(name, width):  # milliseconds
            return f"{t[name] * 1e3:>{width}.2f}" if name in t else f"{'-':>{width}}"

        def ratio(name, width):
            return f"{t[name] / t['bf16']:>{width}.2f}" if name in t else f"{'-':>{width}}"

        gflops = 2 * n**3 / t["bf16"] / 1e9
        print(
            f"{n:>5} {column('bf16', 9)} {gflops:>8.1f} {share_of_peak(gflops, peak):>6} "
            f"{column('torch', 13)} {column('cast', 13)} {column('f32', 9)} "
            f"{ratio('torch', 7)} {ratio('cast', 6)} {ratio('f32', 6)}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="S3,S4,S5", help="train-step cases, e.g. S3,S4")
    parser.add_argument("--sizes", default="512,1024,2048", help="square GEMM sizes")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="threads for every library")
    parser.add_argument(
        "--no-torch",
        action="store_true",
        help="skip PyTorch (whose bfloat16 is emulated, and slow, on CPUs "
        "without AVX512-BF16 or AMX)",
    )
    args = parser.parse_args(argv)
    torch, threads = torch_with_threads(fb, args.threads)
    if args.no_torch:
        torch = None
    info = fb.build_info()
    print(
        f"# machine: {platform.processor() or platform.machine()}, {threads} threads; "
        f"fastbp {info['version']} simd={info['simd']} bf16_gemm={info['bf16_gemm']}; "
        f"torch {torch.__version__ if torch else 'skipped' if args.no_torch else 'not installed'}"
    )
    peak, peak_line = measured_peak(fb, "bfloat16")
    print(peak_line)
    rng = np.random.default_rng(0)
    if args.cases:
        train_table(args.cases.split(","), args.repeats, torch, rng, peak)
    if args.sizes:
        gemm_table([int(n) for n in args.sizes.split(",")], args.repeats, torch, rng, peak)


if __name__ == "__main__":
    main()
