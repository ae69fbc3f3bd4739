"""Train the same MLP on scikit-learn's digits with scikit-learn's MLPClassifier and with
fastbp.sklearn.MLPClassifier: same architecture, optimizer, batch size, epochs and data.

    python benchmarks/bench_sklearn.py [--epochs 50] [--repeats 3] [--plot out.png]

Both estimators get the same parameters (Adam, lr 1e-3, no L2 penalty, every epoch run:
tol=0 and n_iter_no_change=epochs); the table shows the median seconds of a whole
``fit``, fastbp's speed-up (>1: fastbp faster) and each test accuracy (25% held out,
stratified, features standardised). float32 input trains in float32 in both libraries.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLP
from sklearn.preprocessing import StandardScaler

import fastbp as fb
from fastbp.sklearn import MLPClassifier as FbMLP

CASES = [  # (hidden layers, batch size, dtype)
    ((128,), 32, "float32"),  # examples/digits.py's network and batch
    ((128,), 32, "float64"),
    ((128,), 200, "float32"),
    ((256, 128), 32, "float32"),
    ((100,), 200, "float64"),  # scikit-learn's defaults (batch_size="auto" is 200 here)
]


def timed_fit(make, X, y, repeats: int):
    """Median fit seconds over ``repeats`` fresh estimators, and the last one fitted."""
    seconds = []
    for _ in range(repeats):
        est = make()
        t0 = time.perf_counter()
        est.fit(X, y)
        seconds.append(time.perf_counter() - t0)
        time.sleep(0.2)  # let one library's worker threads go idle before the other's
    return statistics.median(seconds), est


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plot", help="write a bar chart of the times to this PNG")
    args = parser.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

    print(
        f"digits: {len(y_train)} training / {len(y_test)} test samples, {args.epochs} epochs,"
        f" Adam lr 1e-3; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, fastbp {fb.__version__} with {fb.get_num_threads()} "
        f"threads ({fb.build_info()['simd']})"
    )
    header = (
        f"{'hidden':>10} {'batch':>5} {'dtype':>7} | {'sklearn s':>9} {'fastbp s':>9} "
        f"{'speed-up':>8} | {'sklearn acc':>11} {'fastbp acc':>10}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for hidden, batch, dtype in CASES:
        params = dict(
            hidden_layer_sizes=hidden,
            solver="adam",
            learning_rate_init=1e-3,
            alpha=0.0,
            batch_size=batch,
            max_iter=args.epochs,
            tol=0.0,
            n_iter_no_change=args.epochs,
            random_state=0,
        )
        Xtr, Xte = X_train.astype(dtype), X_test.astype(dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t_sk, sk = timed_fit(lambda: SkMLP(**params), Xtr, y_train, args.repeats)
            t_fb, ours = timed_fit(lambda: FbMLP(**params), Xtr, y_train, args.repeats)
        acc_sk, acc_fb = sk.score(Xte, y_test), ours.score(Xte, y_test)
        rows.append((hidden, batch, dtype, t_sk, t_fb, acc_sk, acc_fb))
        print(
            f"{str(hidden):>10} {batch:>5} {dtype:>7} | {t_sk:>9.3f} {t_fb:>9.3f} "
            f"{t_sk / t_fb:>7.1f}x | {acc_sk:>11.4f} {acc_fb:>10.4f}"
        )
    if args.plot:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 3.5), layout="constrained")
        ax = fig.subplots()
        pos = np.arange(len(rows))
        ax.bar(pos - 0.2, [r[3] for r in rows], 0.4, label="scikit-learn")
        ax.bar(pos + 0.2, [r[4] for r in rows], 0.4, label="fastbp")
        ax.set_xticks(pos, [f"{r[0]} b{r[1]} {r[2]}" for r in rows], fontsize=8)
        ax.set_ylabel(f"seconds per fit ({args.epochs} epochs)")
        ax.legend()
        fig.savefig(args.plot, dpi=100)
    return rows


if __name__ == "__main__":
    main()
