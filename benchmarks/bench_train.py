"""Time one training step (forward, MSE loss, backward, SGD update) of fastbp against its
NumPy reference and, when installed, PyTorch, on the same data in one process.

    python benchmarks/bench_train.py                 # the full shape suite S1-S5
    python benchmarks/bench_train.py --cases S1,S2,S3 --plot benchmarks/train_step.png

float32, ReLU hidden layers, identity output, MSE, plain SGD. Each library gets a
warm-up, then the libraries take turns, one timed block of steps each per round
(`--repeats` rounds), so that a change of the machine's load falls on all of them alike;
the table shows the median time per step, fastbp's GFLOP/s (useful flops: no input
gradient for the first layer), its share of the measured float32 peak the header gives
(``fb.tune.peak``: a plain FMA loop of the vector width the products use, on the same
threads) and the speed-up of fastbp over each peer (>1: fastbp faster).
When fastbp's CUDA backend can run here (``fb.cuda_available()``), two more columns give
backend="cuda"'s time per step and its speed-up over backend="cpu".
"""

from __future__ import annotations

import argparse
import os
import platform

import numpy as np

import fastbp as fb
from timing import interleaved_medians, measured_peak, share_of_peak, torch_with_threads

CASES = {  # name: (layer sizes, batch)
    "S1": ((2, 3, 1), 1),
    "S2": ((1000, 100, 10), 64),
    "S3": ((784, 256, 256, 10), 256),
    "S4": ((784, 1024, 1024, 10), 1024),
    "S5": ((4096, 4096, 4096), 2048),
}


def step_flops(sizes, batch):
    """Multiply-add FLOPs of one step: X@W forward, dW, and dX for all but the first layer."""
    total = 0
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        total += (4 if i == 0 else 6) * batch * n_in * n_out
    return total


def fastbp_step(sizes, X, T, backend, compute_dtype=None):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(fb.Dense(n_in, n_out, init="he"))
        if i < len(sizes) - 2:
            layers.append(fb.ReLU())
    net = fb.Network(
        layers, fb.MSELoss(), dtype="float32", backend=backend, seed=0, compute_dtype=compute_dtype
    )
    opt = fb.SGD(lr=1e-3)
    return lambda: net.train_step(X, T, opt)


def torch_step(sizes, X, T, autocast=False):
    """PyTorch's step; ``autocast``: under ``torch.autocast("cpu", dtype=torch.bfloat16)``
    (bfloat16 products, float32 weights and update), as its users train in mixed precision."""
    import contextlib

    import torch

    mods = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(torch.nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.MSELoss()
    x, t = torch.from_numpy(X), torch.from_numpy(T)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext():
            loss = loss_fn(model(x).float(), t)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def cell(values, key, spec):
    """values[key] formatted by spec, or "-" for a library that was not timed."""
    return format(values[key], spec) if key in values else "-"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, e.g. S1,S2")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="threads for every library")
    parser.add_argument("--no-numpy", action="store_true", help="skip the NumPy reference")
    parser.add_argument("--plot", help="write a PNG of time per step against network size")
    parser.add_argument(
        "--memory-steps",
        type=int,
        default=0,
        help="after the table, run this many fastbp steps per case and "
        "report the resident memory before and after",
    )
    args = parser.parse_args(argv)

    torch, threads = torch_with_threads(fb, args.threads)
    info = fb.build_info()
    cuda = info["cuda_available"]
    print(
        f"# machine: {platform.processor() or platform.machine()}, {threads} threads; "
        f"fastbp {info['version']} simd={info['simd']}; numpy {np.__version__}; "
        f"torch {torch.__version__ if torch else 'not installed'}; cuda: {info['cuda_status']}"
    )
    peak, peak_line = measured_peak(fb)
    print(peak_line)
    header = (
        f"{'case':4} {'layers':>20} {'batch':>5} {'fastbp us':>11} {'GFLOP/s':>8} {'% peak':>6} "
        f"{'numpy us':>11} {'torch us':>11} {'x numpy':>8} {'x torch':>8}"
        + (f" {'cuda us':>11} {'cuda x cpu':>10}" if cuda else "")
    )
    print(header)
    print("-" * len(header))
    rows = []
    rng = np.random.default_rng(0)
    for name in args.cases.split(","):
        sizes, batch = CASES[name]
        X = rng.standard_normal((batch, sizes[0]), dtype=np.float32)
        T = rng.standard_normal((batch, sizes[-1]), dtype=np.float32)
        flops = step_flops(sizes, batch)
        steps = {"fastbp": fastbp_step(sizes, X, T, "cpu")}
        if not args.no_numpy:
            steps["numpy"] = fastbp_step(sizes, X, T, "numpy")
        if torch is not None:
            steps["torch"] = torch_step(sizes, X, T)
        if cuda:
            steps["cuda"] = fastbp_step(sizes, X, T, "cuda")
        times = interleaved_medians(steps, args.repeats)
        us = {k: v * 1e6 for k, v in times.items()}
        ratio = {k: times[k] / times["fastbp"] for k in times if k != "fastbp"}
        gflops = flops / times["fastbp"] / 1e9
        print(
            f"{name:4} {'-'.join(map(str, sizes)):>20} {batch:>5} {us['fastbp']:>11.1f} "
            f"{gflops:>8.1f} {share_of_peak(gflops, peak):>6} {cell(us, 'numpy', '11.1f'):>11} "
            f"{cell(us, 'torch', '11.1f'):>11} {cell(ratio, 'numpy', '8.2f'):>8} "
            f"{cell(ratio, 'torch', '8.2f'):>8}"
            + (f" {us['cuda']:>11.1f} {1 / ratio['cuda']:>10.2f}" if cuda else "")
        )
        rows.append((name, flops, us))
    if args.plot:
        plot(rows, args.plot)
    if args.memory_steps:
        for name in args.cases.split(","):
            memory_check(name, args.memory_steps, rng)


def resident_mib():
    """Resident set size of this process, from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_check(name, steps, rng):
    """Resident memory after a warm-up and after `steps` more fastbp train steps."""
    sizes, batch = CASES[name]
    X = rng.standard_normal((batch, sizes[0]), dtype=np.float32)
    T = rng.standard_normal((batch, sizes[-1]), dtype=np.float32)
    step = fastbp_step(sizes, X, T, "cpu")
    for _ in range(10):
        step()
    before = resident_mib()
    for _ in range(steps):
        step()
    after = resident_mib()
    print(
        f"# memory {name}: {before:.1f} MiB after warm-up, {after:.1f} MiB after {steps} "
        f"more steps ({after - before:+.1f} MiB)"
    )


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for lib in ("fastbp", "numpy", "torch", "cuda"):
        pts = [(flops, us[lib]) for _, flops, us in rows if lib in us]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=lib)
    for name, flops, us in rows:
        ax.annotate(name, (flops, us["fastbp"]), textcoords="offset points", xytext=(4, -12))
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="FLOPs per training step",
        ylabel="median time per step (µs)",
        title="fastbp train_step, float32",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"# plot written to {path}")


if __name__ == "__main__":
    main()
