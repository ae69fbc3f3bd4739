"""Regression: fit y = sin(3x) + x/2 plus noise with a 1-32-32-1 tanh network, Adam and
a step learning-rate schedule; prints the test error and the fitted values at a few x.

    python examples/regression.py
"""

from __future__ import annotations

import numpy as np

import fastbp as fb


def target(x: np.ndarray) -> np.ndarray:
    return np.sin(3 * x) + x / 2


def main(epochs: int = 300, seed: int = 0) -> float:
    """Train and report; returns the root-mean-square error on noiseless test points."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(1000, 1)).astype(np.float32)
    y = (target(x) + rng.normal(0, 0.1, size=x.shape)).astype(np.float32)
    net = fb.Network(
        [fb.Dense(1, 32), fb.Tanh(), fb.Dense(32, 32), fb.Tanh(), fb.Dense(32, 1)],
        loss=fb.MSELoss(),
        seed=seed,
    )
    history = net.fit(
        x,
        y,
        epochs=epochs,
        batch_size=32,
        optimizer=fb.Adam(lr=0.01),
        lr_schedule=fb.schedules.StepLR(step_size=100, gamma=0.3),
        validation_split=0.2,
    )
    x_test = np.linspace(-2, 2, 401, dtype=np.float32)[:, None]
    rmse = float(np.sqrt(np.mean((net.predict(x_test) - target(x_test)) ** 2)))
    print(
        f"loss {history.loss[0]:.4f} -> {history.loss[-1]:.4f} (noise variance 0.01), "
        f"val_loss {history.val_loss[-1]:.4f}; RMSE against the noiseless curve {rmse:.4f}"
    )
    for xi in (-1.5, 0.0, 1.0):
        print(
            f"  f({xi:+.1f}) = {target(np.float32(xi)):+.3f}, "
            f"network {net.predict([[xi]])[0, 0]:+.3f}"
        )
    return rmse


if __name__ == "__main__":
    main()
