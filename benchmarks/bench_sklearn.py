"""Train the same MLP on scikit-learn's digits with scikit-learn's MLPClassifier and with
fastbp.sklearn.MLPClassifier: same architecture, optimizer, batch size, epochs and data;
then the speed target's configuration; then the same on a sparse data set (``--only
sparse``, ``--only target``: that part alone).

    python benchmarks/bench_sklearn.py [--epochs 50] [--repeats 3] [--plot out.png]
    python benchmarks/bench_sklearn.py --only target
    python benchmarks/bench_sklearn.py --only sparse [--sparse-epochs 2]

Both estimators get the same parameters (Adam, lr 1e-3, no L2 penalty, every epoch run:
tol=0 and n_iter_no_change=epochs); the table shows the median seconds of a whole
``fit``, fastbp's speed-up (>1: fastbp faster) and each test accuracy (25% held out,
stratified, features standardised). float32 input trains in float32 in both libraries.
The two fit in turns, one fit each per round (``--repeats`` rounds), so that a change of
the machine's load falls on both alike.

The target's configuration (``TARGET``): 64-128-10, SGD with momentum 0.9, batch 64, 60
epochs, both libraries on their default threads; what it does not name is scikit-learn's
default (Nesterov momentum, lr 1e-3, alpha 1e-4, shuffled batches), every epoch run.
Digits are float64, so that is its first row; float32 follows.

The sparse case: a made-up CSR matrix of 20,000 rows x 50,000 features (250 stored values
per row drawn at random, 0.5% dense; float32), labels from the sign of a hidden linear
model, 4,000 rows held out; one hidden layer of 64, batch 200, the same Adam. fastbp
gathers each batch's rows into a dense block; scikit-learn multiplies the sparse rows.
It also times the first layer alone per batch both ways: fastbp's dense gather and
product against SciPy's sparse products (``X_b @ W`` and ``X_b.T @ G``).
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
from fastbp import _sparse
from fastbp.sklearn import MLPClassifier as FbMLP

CASES = [  # (hidden layers, batch size, dtype)
    ((128,), 32, "float32"),  # examples/digits.py's network and batch
    ((128,), 32, "float64"),
    ((128,), 200, "float32"),
    ((256, 128), 32, "float32"),
    ((100,), 200, "float64"),  # scikit-learn's defaults (batch_size="auto" is 200 here)
]


# The speed target's configuration (see the module's docstring).
TARGET = dict(
    hidden_layer_sizes=(128,),
    solver="sgd",
    momentum=0.9,
    batch_size=64,
    max_iter=60,
    tol=0.0,
    n_iter_no_change=60,
    random_state=0,
)


def timed_fits(makers: dict, X, y, repeats: int) -> dict:
    """name -> (median fit seconds, the last estimator fitted) of each of ``makers`` (name
    -> a maker of a fresh estimator), fitted in turns: one fit of each per round, in an
    order that rotates from round to round."""
    names = list(makers)
    seconds, fitted = {name: [] for name in names}, {}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            time.sleep(0.2)  # let one library's worker threads go idle before the other's
            est = makers[name]()
            t0 = time.perf_counter()
            est.fit(X, y)
            seconds[name].append(time.perf_counter() - t0)
            fitted[name] = est
    return {name: (statistics.median(seconds[name]), fitted[name]) for name in names}


def fit_both(params: dict, X, y, repeats: int) -> tuple:
    """(sklearn seconds, fastbp seconds, sklearn's estimator, fastbp's) of ``params``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        timed = timed_fits(
            {"sklearn": lambda: SkMLP(**params), "fastbp": lambda: FbMLP(**params)},
            X,
            y,
            repeats,
        )
    (t_sk, sk), (t_fb, ours) = timed["sklearn"], timed["fastbp"]
    return t_sk, t_fb, sk, ours


def sparse_data(rows=20_000, features=50_000, per_row=250, seed=0):
    """A CSR float32 matrix of ``per_row`` random stored values per row (duplicates summed)
    and 0/1 labels: the sign of a hidden linear model, centred on its median."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    columns = np.sort(rng.integers(0, features, size=(rows, per_row)), axis=1)
    values = rng.random(rows * per_row, dtype=np.float32)
    X = sp.csr_matrix(
        (values, columns.ravel(), np.arange(0, rows * per_row + 1, per_row)),
        shape=(rows, features),
    )
    X.sum_duplicates()
    score = X @ rng.standard_normal(features).astype(np.float32)
    return X, (score > np.median(score)).astype(int)


def first_layer_ms(X, hidden: int, batch: int, batches: int = 20) -> tuple:
    """Median milliseconds per batch of the first layer's forward and weight gradient:
    fastbp's way (the rows gathered into a dense block, then its products) and SciPy's
    sparse products of the rows."""
    rng = np.random.default_rng(1)
    net = fb.Network([fb.Dense(X.shape[1], hidden)], fb.MSELoss(), seed=0)
    W, G = net.layers[0].W, rng.standard_normal((batch, hidden)).astype(np.float32)
    take = _sparse.Rows(X, batch)

    def dense(rows):
        net.backward(take(rows), G)

    def sparse(rows):
        block = X[rows]
        return block @ W, block.T @ G

    times = {}
    for name, step in (("gather", dense), ("sparse", sparse)):
        seconds = []
        for _ in range(batches):
            rows = rng.choice(X.shape[0], batch, replace=False)
            t0 = time.perf_counter()
            step(rows)
            seconds.append(time.perf_counter() - t0)
        times[name] = 1e3 * statistics.median(seconds)
    return times["gather"], times["sparse"]


def sparse_case(epochs: int, repeats: int) -> tuple:
    """The sparse case's row (see the module's docstring), printed."""
    X, y = sparse_data()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    hidden, batch = 64, 200
    params = dict(
        hidden_layer_sizes=(hidden,),
        solver="adam",
        learning_rate_init=1e-3,
        alpha=0.0,
        batch_size=batch,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs,
        random_state=0,
    )
    t_sk, t_fb, sk, ours = fit_both(params, X_train, y_train, repeats)
    acc_sk, acc_fb = sk.score(X_test, y_test), ours.score(X_test, y_test)
    gather_ms, sparse_ms = first_layer_ms(X_train, hidden, batch)
    print(
        f"\nsparse: {X_train.shape[0]} x {X.shape[1]} CSR float32, {X.nnz / np.prod(X.shape):.2%}"
        f" dense, hidden ({hidden},), batch {batch}, {epochs} epochs, Adam lr 1e-3; median of"
        f" {repeats}\n{'sklearn s':>9} {'fastbp s':>9} {'speed-up':>8} | {'sklearn acc':>11} "
        f"{'fastbp acc':>10}\n{t_sk:>9.2f} {t_fb:>9.2f} {t_sk / t_fb:>7.2f}x | {acc_sk:>11.4f} "
        f"{acc_fb:>10.4f}\nfirst layer per batch: dense gather + products {gather_ms:.1f} ms, "
        f"SciPy's sparse products {sparse_ms:.1f} ms"
    )
    return t_sk, t_fb, acc_sk, acc_fb, gather_ms, sparse_ms


def digits_split():
    """Digits' training and test rows (25% held out, stratified), standardised."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def epochs_alone(est, X, y, repeats: int) -> float:
    """Median seconds of the training ``est`` (a fitted fastbp classifier, unweighted)
    runs, without the estimator around it: its network trained for its ``max_iter``
    epochs in one ``Network.fit`` call, with a fresh optimizer of its solver, its batches
    and its penalty."""
    labels = np.searchsorted(est.classes_, y)
    seconds = []
    for _ in range(repeats):
        opt = est._optimizer()
        t0 = time.perf_counter()
        est.network_.fit(
            X,
            labels,
            epochs=est.max_iter,
            batch_size=est._batch_size(len(y)),
            optimizer=opt,
            weight_penalty=est.alpha / est._loss_scale,
            progress=False,
        )
        seconds.append(time.perf_counter() - t0)
    return statistics.median(seconds)


def target_case(repeats: int) -> list:
    """The speed target's configuration (``TARGET``) on digits, in float64 (the data's
    dtype) and float32: rows printed and returned; "epochs s" is fastbp's training
    alone (:func:`epochs_alone`), without the estimator's Python around it."""
    X_train, X_test, y_train, y_test = digits_split()
    print(
        "\ntarget: digits 64-128-10, SGD momentum 0.9 (Nesterov), lr 1e-3, alpha 1e-4, batch "
        f"64, 60 epochs, default threads (fastbp {fb.get_num_threads()}, "
        f"{fb.build_info()['simd']}); median of {repeats}"
    )
    header = (
        f"{'dtype':>7} | {'sklearn s':>9} {'fastbp s':>9} {'speed-up':>8} {'epochs s':>8} | "
        f"{'sklearn acc':>11} {'fastbp acc':>10} {'differ by':>9}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for dtype in ("float64", "float32"):
        Xtr, Xte = X_train.astype(dtype), X_test.astype(dtype)
        t_sk, t_fb, sk, ours = fit_both(TARGET, Xtr, y_train, repeats)
        acc_sk, acc_fb = sk.score(Xte, y_test), ours.score(Xte, y_test)
        differ = round(abs(acc_sk - acc_fb) * len(y_test))
        t_epochs = epochs_alone(ours, Xtr, y_train, repeats)
        rows.append((dtype, t_sk, t_fb, acc_sk, acc_fb))
        print(
            f"{dtype:>7} | {t_sk:>9.3f} {t_fb:>9.3f} {t_sk / t_fb:>7.1f}x {t_epochs:>8.3f} | "
            f"{acc_sk:>11.4f} {acc_fb:>10.4f} {differ:>3} rows"
        )
    return rows


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sparse-epochs", type=int, default=2)
    parser.add_argument("--only", choices=("digits", "target", "sparse"), help="run one part alone")
    parser.add_argument("--plot", help="write a bar chart of the digits times to this PNG")
    args = parser.parse_args(argv)
    if args.only == "sparse":
        simd = fb.build_info()["simd"]
        print(f"fastbp {fb.__version__}, {fb.get_num_threads()} threads ({simd})")
        return [sparse_case(args.sparse_epochs, args.repeats)]
    if args.only == "target":
        return target_case(args.repeats)

    X_train, X_test, y_train, y_test = digits_split()

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
        t_sk, t_fb, sk, ours = fit_both(params, Xtr, y_train, args.repeats)
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
    if args.only is None:
        rows += target_case(args.repeats)
        rows.append(sparse_case(args.sparse_epochs, args.repeats))
    return rows


if __name__ == "__main__":
    main()
