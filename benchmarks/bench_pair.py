"""Compare bench_train's training step between two fastbp builds, block by block.

    python benchmarks/bench_pair.py --a /tmp/old-build --b python
    python benchmarks/bench_pair.py --a /tmp/old-build --b python --cases S1,S2 --blocks 41
    python benchmarks/bench_pair.py --a /tmp/old-build --b python --cases S3,mm1024 \
        --compute-dtype bfloat16
    python benchmarks/bench_pair.py --a /tmp/old-build --b python \
        --cases mm64x100x1000,mm1000x100x64ta --threads 1

``--a`` and ``--b`` are folders that hold a ``fastbp`` package (an installed copy, or
``python`` in a source tree with its ``_core`` built in place). Each gets a worker
process that imports fastbp from there and builds bench_train's networks; the workers
then take turns, one timed block of steps (about ``--block-seconds``) each, in an order
that alternates from pair to pair, so that whatever else runs on the machine falls on
both alike. A case ``mmN`` is the product ``fb.ops.matmul`` of two N x N float32
matrices instead of a step, and ``mmMxNxK`` that of an M x K and a K x N matrix (``ta``
or ``tb`` after it: the first or second operand passed transposed, as the weight and
input gradients pass them); ``--compute-dtype bfloat16`` runs steps and products in
bfloat16, ``--threads N`` both builds on N threads. The table gives each build's
median time per step over the blocks and the median of the per-pair ratios b / a (<1:
b is faster), with its spread (the 25th and 75th percentiles).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


PRODUCT = re.compile(r"mm(\d+)(?:x(\d+)x(\d+))?(ta)?(tb)?")


def worker(block_seconds: float, compute_dtype: str | None, threads: int | None) -> None:
    """Answer ``case`` lines on stdin with one block's seconds per step of that case."""
    import fastbp as fb
    from bench_train import CASES, fastbp_step

    if threads:
        fb.set_num_threads(threads)
    rng = np.random.default_rng(0)

    def make(case):
        product = PRODUCT.fullmatch(case)
        if product:
            m, n, k = (int(product[i] or product[1]) for i in (1, 2, 3))
            ta, tb = bool(product[4]), bool(product[5])
            a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
            b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
            return lambda: fb.ops.matmul(a, b, ta, tb, compute_dtype=compute_dtype)
        sizes, batch = CASES[case]
        X = rng.standard_normal((batch, sizes[0]), dtype=np.float32)
        T = rng.standard_normal((batch, sizes[-1]), dtype=np.float32)
        return fastbp_step(sizes, X, T, "cpu", compute_dtype)

    steps, per_block = {}, {}
    print(
        json.dumps(
            {"version": fb.__version__, "file": fb.__file__, "simd": fb.build_info()["simd"]}
        ),
        flush=True,
    )
    for line in sys.stdin:
        case = line.strip()
        if case not in steps:
            step = steps[case] = make(case)
            step()
            t0 = time.perf_counter()
            step()
            per_block[case] = max(1, int(block_seconds / max(time.perf_counter() - t0, 1e-7)))
        step, n = steps[case], per_block[case]
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        print((time.perf_counter() - t0) / n, flush=True)


def start(
    path: str, block_seconds: float, compute_dtype: str | None, threads: int | None
) -> tuple[subprocess.Popen, dict]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.abspath(path), HERE]))
    dtype_args = ["--compute-dtype", compute_dtype] if compute_dtype else []
    thread_args = ["--threads", str(threads)] if threads else []
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--worker",
            "--block-seconds",
            str(block_seconds),
            *dtype_args,
            *thread_args,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    return proc, json.loads(proc.stdout.readline())


def block(proc: subprocess.Popen, case: str) -> float:
    proc.stdin.write(case + "\n")
    proc.stdin.flush()
    return float(proc.stdout.readline())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", help="folder holding build a's fastbp")
    parser.add_argument("--b", help="folder holding build b's fastbp")
    parser.add_argument("--cases", default="S1,S2,S3,S4,S5")
    parser.add_argument("--blocks", type=int, default=21, help="timed blocks per build")
    parser.add_argument("--block-seconds", type=float, default=0.2)
    parser.add_argument("--compute-dtype", default=None, help="e.g. bfloat16 (default: float32)")
    parser.add_argument("--threads", type=int, default=None, help="default: fastbp's own")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.block_seconds, args.compute_dtype, args.threads)
        return
    if not (args.a and args.b):
        parser.error("--a and --b are both needed")
    (a, info_a), (b, info_b) = (
        start(path, args.block_seconds, args.compute_dtype, args.threads)
        for path in (args.a, args.b)
    )
    print(
        f"# a: {info_a['file']} (simd={info_a['simd']})\n# b: {info_b['file']} "
        f"(simd={info_b['simd']}); {args.blocks} alternating blocks per case; "
        f"compute dtype {args.compute_dtype or 'float32'}; threads {args.threads or 'default'}"
    )
    width = max(4, *(len(case) for case in args.cases.split(",")))
    header = f"{'case':{width}} {'a us':>12} {'b us':>12} {'b / a':>7} {'25%-75%':>13}"
    print(header + "\n" + "-" * len(header))
    try:
        for case in args.cases.split(","):
            block(a, case), block(b, case)  # warm-up blocks, not counted
            # each pair's order alternates, so neither build always runs second
            times = np.array(
                [
                    (block(a, case), block(b, case))
                    if i % 2 == 0
                    else tuple(reversed((block(b, case), block(a, case))))
                    for i in range(args.blocks)
                ]
            )
            ratio = times[:, 1] / times[:, 0]
            lo, hi = np.percentile(ratio, [25, 75])
            med_a, med_b = np.median(times, axis=0) * 1e6
            print(
                f"{case:{width}} {med_a:>12.1f} {med_b:>12.1f} {np.median(ratio):>7.3f} "
                f"{lo:>6.3f}-{hi:.3f}",
                flush=True,
            )
    finally:
        for proc in (a, b):
            proc.stdin.close()
            proc.wait()


if __name__ == "__main__":
    main()
