"""Sweep the GEMM cache blocks (MC, KC, NC) on this machine and print the best.

Each candidate runs in a fresh process with FASTBP_GEMM_BLOCKS="MC,KC,NC" (read at
import), timing fastbp.ops.matmul on float32 squares and the training suite's large
products; the table ranks the candidates by the geometric mean of their GFLOP/s.

    python benchmarks/tune_gemm.py [--mc 72,144,216] [--kc 128,256,512] [--nc 2048,4096]
                                   [--threads N] [--repeats 5]

Use the winner by exporting FASTBP_GEMM_BLOCKS, or put it in csrc/kernels/gemm/config.cpp
when it wins on the machines that table serves.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys

SHAPES = [  # (m, n, k)
    (1024, 1024, 1024),
    (2048, 2048, 2048),
    (256, 256, 784),  # S3's first layer, forward
    (1024, 1024, 784),  # S4's first layer, forward
    (784, 1024, 1024),  # S4's first layer, dW
]

TIME_ONE = """
import json, sys
import numpy as np
import fastbp as fb
sys.path.insert(0, sys.argv[1])
from timing import median_seconds

threads, repeats, shapes = int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
if threads:
    fb.set_num_threads(threads)
rng = np.random.default_rng(0)
rates = []
for m, n, k in shapes:
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    seconds = median_seconds(lambda: fb.ops.matmul(a, b), repeats, block_seconds=0.1)
    rates.append(2 * m * n * k / seconds / 1e9)
print(json.dumps({"simd": fb.build_info()["simd"], "threads": fb.get_num_threads(),
                  "rates": rates}))
"""


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def measure(blocks, threads: int, repeats: int) -> dict:
    env = dict(os.environ)
    if blocks is None:
        env.pop("FASTBP_GEMM_BLOCKS", None)
    else:
        env["FASTBP_GEMM_BLOCKS"] = ",".join(map(str, blocks))
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(
        [sys.executable, "-c", TIME_ONE, here, str(threads), str(repeats), json.dumps(SHAPES)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(out.stdout)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mc", type=ints, default=[72, 144, 216, 288])
    parser.add_argument("--kc", type=ints, default=[128, 256, 384, 512])
    parser.add_argument("--nc", type=ints, default=[2048, 4096])
    parser.add_argument("--threads", type=int, default=0, help="default: fastbp's")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    candidates = [None] + list(itertools.product(args.mc, args.kc, args.nc))
    rows = []
    for blocks in candidates:
        result = measure(blocks, args.threads, args.repeats)
        mean = math.exp(sum(map(math.log, result["rates"])) / len(result["rates"]))
        rows.append((mean, blocks, result))
        label = "table" if blocks is None else ",".join(map(str, blocks))
        print(
            f"{label:>16}  "
            + "  ".join(f"{r:6.1f}" for r in result["rates"])
            + f"  mean {mean:6.1f}",
            flush=True,
        )
    first = rows[0][2]
    print(
        f"# simd={first['simd']}, {first['threads']} threads; GFLOP/s for (m, n, k) = "
        + ", ".join(map(str, SHAPES))
    )
    best = max(rows, key=lambda row: row[0])
    label = (
        "the table's own sizes"
        if best[1] is None
        else "FASTBP_GEMM_BLOCKS=" + ",".join(map(str, best[1]))
    )
    print(f"# best: {label} at {best[0]:.1f} GFLOP/s (the table's: {rows[0][0]:.1f})")


if __name__ == "__main__":
    main()
