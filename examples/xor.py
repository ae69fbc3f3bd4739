"""XOR two ways: the notes' hand-wired 2-2-1 sigmoid network (hidden OR and NAND units,
an AND output), then a 2-8-1 tanh network learning it from a random start.

    python examples/xor.py
"""

from __future__ import annotations

import numpy as np

import fastbp as fb

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
T = np.array([[0], [1], [1], [0]], dtype=np.float32)


def hand_wired() -> np.ndarray:
    """The notes' weights: hidden OR (20, 20, bias -10) and NAND (-20, -20, bias 30),
    output AND (20, 20, bias -30). Returns the outputs for the four inputs."""
    net = fb.Network(
        [fb.Dense(2, 2), fb.Sigmoid(), fb.Dense(2, 1), fb.Sigmoid()], loss=fb.MSELoss()
    )
    hidden, out = net.layers[0], net.layers[2]
    hidden.W, hidden.b = [[20, -20], [20, -20]], [-10, 30]
    out.W, out.b = [[20], [20]], [-30]
    return net.predict(X)[:, 0]


def learnt(epochs: int = 300) -> np.ndarray:
    """A 2-8-1 tanh network trained by full-batch SGD with momentum on the logits.
    Returns the predicted probabilities for the four inputs."""
    net = fb.Network(
        [fb.Dense(2, 8), fb.Tanh(), fb.Dense(8, 1)], loss=fb.BCEWithLogitsLoss(), seed=0
    )
    history = net.fit(
        X,
        T,
        epochs=epochs,
        batch_size=4,
        optimizer=fb.SGD(lr=0.5, momentum=0.9),
        shuffle=False,
        metrics=["accuracy"],
    )
    for epoch in (0, 9, 49, epochs - 1):
        print(
            f"  epoch {epoch + 1:3d}  loss {history.loss[epoch]:.4f}  "
            f"accuracy {history.accuracy[epoch]:.2f}"
        )
    return 1 / (1 + np.exp(-net.predict(X)[:, 0]))


def main() -> tuple:
    print("hand-wired network:")
    wired = hand_wired()
    for x, y in zip(X, wired):
        print(f"  {x} -> {y:.5f}")
    print("learnt from a random start:")
    prob = learnt()
    for x, p in zip(X, prob):
        print(f"  {x} -> {p:.4f}")
    return wired, prob


if __name__ == "__main__":
    main()
