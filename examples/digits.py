"""The main job: handwritten digits (scikit-learn's bundled 8x8 images, 1,797 samples), a
64-128-10 ReLU network trained with Adam and a cosine learning-rate schedule. Prints the
network, the test accuracy and where it wrote the loss and accuracy curves (training and
test data).

    python examples/digits.py [--epochs 60] [--plot PATH]   # needs scikit-learn, matplotlib

``--plot`` defaults to ``digits_loss.png`` next to this file.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import fastbp as fb

HERE = pathlib.Path(__file__).resolve().parent


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train an MLP on scikit-learn's digits.")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs (default 60)")
    parser.add_argument(
        "--plot",
        default=str(HERE / "digits_loss.png"),
        metavar="PATH",
        help="where to write the loss curves (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    return args


def load_data(seed: int = 0):
    """Standardised float32 digits, 25% held out for testing (stratified)."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = (scaler.transform(a).astype(np.float32) for a in (X_train, X_test))
    return X_train, X_test, y_train, y_test


def build_network(seed: int = 0) -> fb.Network:
    return fb.Network(
        [fb.Dense(64, 128, init="he"), fb.ReLU(), fb.Dense(128, 10)],
        loss=fb.SoftmaxCrossEntropyLoss(),
        seed=seed,
    )


def train(net: fb.Network, data, epochs: int, progress=None) -> fb.History:
    """The example's training run; the test data is only watched (its curves), never used
    to choose anything."""
    X_train, X_test, y_train, y_test = data
    return net.fit(
        X_train,
        y_train,
        epochs=epochs,
        batch_size=32,
        optimizer=fb.Adam(lr=2e-3, weight_decay=1e-4),
        lr_schedule=fb.schedules.CosineAnnealingLR(T_max=epochs),
        validation_data=(X_test, y_test),
        metrics=["accuracy"],
        progress=progress,
    )


def main(argv=None, seed: int = 0) -> float:
    """Train, print the summary and the result, save the plot; returns test accuracy."""
    args = parse_args(argv)
    data = load_data(seed)
    X_train, X_test, y_train, y_test = data
    net = build_network(seed)
    net.summary()
    start = time.perf_counter()
    history = train(net, data, args.epochs)
    seconds = time.perf_counter() - start
    correct = int(np.sum(net.predict(X_test).argmax(axis=1) == y_test))
    accuracy = correct / len(y_test)
    print(
        f"{history.epochs} epochs of {len(y_train)} samples in {seconds:.2f} s; "
        f"final training loss {history.loss[-1]:.4f}"
    )
    print(f"test accuracy {accuracy:.4f} ({correct} of {len(y_test)} test images)")
    history.plot(args.plot, validation_label="test")  # the validation data is the test set
    print(f"loss curves written to {args.plot}")
    return accuracy


if __name__ == "__main__":
    main()
