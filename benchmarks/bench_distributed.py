"""Time data-parallel ``fit(comm=...)`` on two MPI ranks with one thread each against one
process with two threads, on the same cores and the same global batches.

    python benchmarks/bench_distributed.py                  # S3 and S4, 3 timed epochs
    python benchmarks/bench_distributed.py --cases S4 --epochs 5

float32, ReLU hidden layers, MSE, plain SGD, no shuffling. ``batch`` is per rank: the
single process trains on batches of ``ranks * batch`` rows, so both do the same
arithmetic per epoch. Each run trains one warm-up epoch, then ``--epochs`` timed ones;
the table shows the median seconds per epoch (for the ranks, the slower rank's, as
``History.epoch_time`` records it), the ranks' throughput relative to the single
process (>1: the ranks are faster) and the seconds per epoch the ranks spent inside
``Allreduce`` (the mean over ranks, including any wait for the other rank). The
allreduce runs after the backward pass (bench_mpi_overlap.py measures why).

The script launches the ranks itself (``mpiexec -n RANKS python -m mpi4py`` on this
script with ``--worker``); needs ``pip install "fastbp[mpi]"``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import fastbp as fb

CASES = {  # name: (layer sizes, batch per rank, steps per epoch)
    "S3": ((784, 256, 256, 10), 256, 16),
    "S4": ((784, 1024, 1024, 10), 1024, 4),
}
RANKS = 2


def network(sizes) -> fb.Network:
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(fb.Dense(n_in, n_out, init="he"))
        if i < len(sizes) - 2:
            layers.append(fb.ReLU())
    return fb.Network(layers, fb.MSELoss(), dtype="float32", seed=0)


def data(sizes, rows: int, seed: int):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((rows, sizes[0]), dtype=np.float32),
        rng.standard_normal((rows, sizes[-1]), dtype=np.float32),
    )


def single_process(name: str, epochs: int) -> float:
    """Median seconds per epoch of one process on all ranks' rows."""
    sizes, batch, steps = CASES[name]
    X, T = data(sizes, RANKS * batch * steps, seed=0)
    history = network(sizes).fit(
        X,
        T,
        epochs=1 + epochs,
        batch_size=RANKS * batch,
        optimizer=fb.SGD(lr=1e-3),
        shuffle=False,
        progress=False,
    )
    return statistics.median(history.epoch_time[1:])


def worker(out: str, names: list, epochs: int) -> None:
    """One rank's runs (under mpiexec); rank 0 writes the results to ``out``."""
    from mpi4py import MPI

    class TimedComm(MPI.Intracomm):
        """The world communicator, adding up the seconds spent in Allreduce."""

        seconds = 0.0

        def Allreduce(self, *args, **kwargs):
            start = time.perf_counter()
            super().Allreduce(*args, **kwargs)
            self.seconds += time.perf_counter() - start

    comm = TimedComm(MPI.COMM_WORLD)
    results = {}
    for name in names:
        sizes, batch, steps = CASES[name]
        X, T = data(sizes, batch * steps, seed=1 + comm.Get_rank())
        per_epoch = []

        def record(epoch, logs):
            per_epoch.append(comm.seconds)
            comm.seconds = 0.0

        history = network(sizes).fit(
            X,
            T,
            epochs=1 + epochs,
            batch_size=batch,
            optimizer=fb.SGD(lr=1e-3),
            shuffle=False,
            progress=False,
            callbacks=[record],
            comm=comm,
        )
        allreduce = np.mean(comm.allgather(statistics.median(per_epoch[1:])))
        results[name] = {
            "epoch": statistics.median(history.epoch_time[1:]),
            "allreduce": float(allreduce),
        }
    if comm.Get_rank() == 0:
        Path(out).write_text(json.dumps(results))


def launch_ranks(script: str, args: list, env: dict | None = None) -> dict:
    """Run RANKS ranks of ``script --worker OUT *args`` with one thread each (and the
    environment variables ``env``); the results rank 0 wrote to OUT, as JSON."""
    mpiexec = shutil.which(
        "mpiexec",
        path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    if mpiexec is None:
        sys.exit("no mpiexec found: pip install 'fastbp[mpi]'")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ranks.json"
        env = {**os.environ, "FASTBP_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **(env or {})}
        subprocess.run(
            [
                mpiexec,
                "-n",
                str(RANKS),
                sys.executable,
                "-m",
                "mpi4py",
                script,
                "--worker",
                str(out),
                *args,
            ],
            env=env,
            check=True,
        )
        return json.loads(out.read_text())


def ranks(names: list, epochs: int) -> dict:
    """This script's runs on RANKS ranks of one thread each; their results."""
    return launch_ranks(__file__, ["--cases", ",".join(names), "--epochs", str(epochs)])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--worker", metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = args.cases.split(",")
    unknown = set(names) - set(CASES)
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)}, choose from {sorted(CASES)}")
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.worker:
        worker(args.worker, names, args.epochs)
        return

    fb.set_num_threads(RANKS)
    alone = {name: single_process(name, args.epochs) for name in names}
    time.sleep(0.5)  # let the two threads go idle before the ranks start
    together = ranks(names, args.epochs)
    print(
        f"# fastbp {fb.__version__} simd={fb.build_info()['simd']}, {cpu_model()}, "
        f"{os.cpu_count()} CPUs; 1 process x {RANKS} threads vs {RANKS} ranks x 1 thread"
    )
    head = (
        f"{'case':<5}{'layers':>18}{'batch/rank':>11}{'steps':>6}{'1 proc s':>10}"
        f"{'ranks s':>9}{'x 1 proc':>9}{'allreduce s':>12}{'share':>7}"
    )
    print(head)
    print("-" * len(head))
    for name in names:
        sizes, batch, steps = CASES[name]
        mine, theirs = alone[name], together[name]
        print(
            f"{name:<5}{'-'.join(map(str, sizes)):>18}{batch:>11}{steps:>6}"
            f"{mine:>10.3f}{theirs['epoch']:>9.3f}{mine / theirs['epoch']:>9.2f}"
            f"{theirs['allreduce']:>12.4f}{theirs['allreduce'] / theirs['epoch']:>7.1%}"
        )


if __name__ == "__main__":
    main()
