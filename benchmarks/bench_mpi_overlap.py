"""Would overlapping the gradient allreduce with the backward pass pay here? Two MPI
ranks of one thread each, the S3 and S4 networks of bench_distributed.py.

    python benchmarks/bench_mpi_overlap.py [--cases S3,S4] [--repeats 7]

Per case, each rank times (medians over ``--repeats``): a blocking ``Allreduce`` of a
buffer of the network's gradient size; the backward pass alone (``net.backward``); and an
``Iallreduce`` of that buffer started just before a backward pass and waited for after
it. It runs twice: as MPICH runs by default (non-blocking collectives progress only
inside MPI calls), and with ``MPIR_CVAR_ASYNC_PROGRESS=1`` (a progress thread per rank).
The table compares, per case, a step's backward and reduction done one after the
other (blocking ``Allreduce`` after the backward pass, MPICH's default) with the
overlapped ones, with and without the progress thread: the backward pass's time, the
time then spent in the allreduce or the wait, their total, and that total over the
sequential one (<1: overlap pays).

The script launches the ranks itself (``mpiexec -n 2 python -m mpi4py`` on this script
with ``--worker``); needs ``pip install "fastbp[mpi]"``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

import fastbp as fb
from bench_distributed import CASES, RANKS, cpu_model, data, launch_ranks, network


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def worker(out: str, names: list, repeats: int) -> None:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    results = {}
    for name in names:
        sizes, batch, _ = CASES[name]
        net = network(sizes)
        X, T = data(sizes, batch, seed=1 + comm.Get_rank())
        buffer = np.ones(net.n_params, dtype=np.float32)  # apart from net.grads: no race
        samples = {"allreduce": [], "backward": [], "overlapped": [], "wait": []}
        for _ in range(2 + repeats):
            comm.Barrier()
            samples["allreduce"].append(timed(lambda: comm.Allreduce(MPI.IN_PLACE, buffer)))
            comm.Barrier()
            samples["backward"].append(timed(lambda: net.backward(X, T)))
            comm.Barrier()
            request = comm.Iallreduce(MPI.IN_PLACE, buffer)
            samples["overlapped"].append(timed(lambda: net.backward(X, T)))
            samples["wait"].append(timed(request.Wait))
        mine = {k: statistics.median(v[2:]) for k, v in samples.items()}  # 2 warm-ups
        results[name] = {k: float(np.mean(comm.allgather(v))) for k, v in mine.items()}
    if comm.Get_rank() == 0:
        Path(out).write_text(json.dumps(results))


def ranks(names: list, repeats: int, async_progress: bool) -> dict:
    return launch_ranks(
        __file__,
        ["--cases", ",".join(names), "--repeats", str(repeats)],
        {"MPIR_CVAR_ASYNC_PROGRESS": "1" if async_progress else "0"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--worker", metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = args.cases.split(",")
    if set(names) - set(CASES):
        parser.error(f"unknown cases {sorted(set(names) - set(CASES))}")
    if args.worker:
        worker(args.worker, names, args.repeats)
        return
    print(
        f"# fastbp {fb.__version__} simd={fb.build_info()['simd']}, {cpu_model()}, "
        f"{os.cpu_count()} CPUs; {RANKS} ranks x 1 thread; milliseconds, rank means"
    )
    head = (
        f"{'case':<5}{'schedule':>34}{'backward':>10}{'reduce':>8}{'total':>8}{'x sequential':>13}"
    )
    print(head)
    print("-" * len(head))
    runs = {progress: ranks(names, args.repeats, progress) for progress in (False, True)}
    for name in names:
        plain = {k: v * 1e3 for k, v in runs[False][name].items()}
        sequential = plain["backward"] + plain["allreduce"]
        rows = [("backward, then Allreduce", plain["backward"], plain["allreduce"])]
        for progress, label in (
            (False, "Iallreduce during backward"),
            (True, "the same, MPICH progress thread"),
        ):
            ms = {k: v * 1e3 for k, v in runs[progress][name].items()}
            rows.append((label, ms["overlapped"], ms["wait"]))
        for label, backward, reduce in rows:
            total = backward + reduce
            print(
                f"{name:<5}{label:>34}{backward:>10.2f}{reduce:>8.2f}{total:>8.2f}"
                f"{total / sequential:>13.2f}"
            )


if __name__ == "__main__":
    main()
