"""Handwritten digits (scikit-learn's bundled 8x8 images, 1,797 samples): a 64-128-10
ReLU network trained with Adam and a cosine learning-rate schedule. Prints the network,
the test accuracy, and writes the loss and accuracy curves (training and test data) to
``digits_loss.png`` next to this file.

    python examples/digits.py          # needs scikit-learn and matplotlib
"""

from __future__ import annotations

import pathlib
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import fastbp as fb

HERE = pathlib.Path(__file__).resolve().parent


def main(plot_path: str | None = str(HERE / "digits_loss.png"), epochs: int = 60,
         seed: int = 0) -> float:
    """Train, print the summary and the result, save the plot; returns test accuracy."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=seed)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = (scaler.transform(a).astype(np.float32) for a in (X_train, X_test))
    net = fb.Network([fb.Dense(64, 128, init="he"), fb.ReLU(), fb.Dense(128, 10)],
                     loss=fb.SoftmaxCrossEntropyLoss(), seed=seed)
    net.summary()
    start = time.perf_counter()
    # The test data is only watched (its curves), never used to choose anything.
    history = net.fit(X_train, y_train, epochs=epochs, batch_size=32,
                      optimizer=fb.Adam(lr=2e-3, weight_decay=1e-4),
                      lr_schedule=fb.schedules.CosineAnnealingLR(T_max=epochs),
                      validation_data=(X_test, y_test), metrics=["accuracy"])
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(net.predict(X_test).argmax(axis=1) == y_test))
    print(f"{history.epochs} epochs of {len(y_train)} samples in {seconds:.2f} s; "
          f"final training loss {history.loss[-1]:.4f}; test accuracy {accuracy:.4f}")
    if plot_path is not None:
        history.plot(plot_path)
        print(f"loss curves written to {plot_path}")
    return accuracy


if __name__ == "__main__":
    main()
