"""The notes' worked example, step by step: one backpropagation step of a 2-3-1 network
(sigmoid hidden units, a linear output, squared error) for the input (1, 2) and the
target 5, printing each quantity as the notes do.

The notes put each unit's bias as a weight on a constant input of -1, listed first;
fastbp's Dense has ``Z = X @ W + b``, so ``W`` is the notes' weights without that row
and ``b`` is minus it.

    python examples/worked_example.py
"""

from __future__ import annotations

import numpy as np

import fastbp as fb

V = np.array(
    [
        [1.0, 0.0, -1.0],  # the hidden units' bias weights
        [1.0, 2.0, 0.0],
        [0.0, -2.0, 1.0],
    ]
)
W_OUT = np.array([1.0, 2.0, 3.0, -1.0])  # the output unit's bias weight first
X = np.array([[1.0, 2.0]])
T = np.array([[5.0]])
LR = 0.1


def notes_weights(dense: fb.Dense) -> np.ndarray:
    """A Dense layer's weights in the notes' layout: the bias weight (-b) first."""
    return np.vstack([-dense.b, dense.W])


def main() -> dict:
    """Run the step, print it, and return the numbers (for the tests)."""
    np.set_printoptions(precision=4, suppress=True)
    net = fb.Network(
        [fb.Dense(2, 3), fb.Sigmoid(), fb.Dense(3, 1)],
        loss=fb.MSELoss(reduction="sum"),
        dtype="float64",
    )
    hidden, out = net.layers[0], net.layers[2]
    hidden.W, hidden.b = V[1:], -V[0]
    out.W, out.b = W_OUT[1:, None], -W_OUT[:1]

    print("forward pass")
    z = fb.ops.linear(X, hidden.W, hidden.b)
    h = fb.ops.sigmoid(z)
    y = net.forward(X)
    print(f"  hidden net inputs z = {z[0]}")
    print(f"  hidden outputs    h = sigmoid(z) = {h[0]}")
    print(f"  output            y = {y[0, 0]:.4f}   (target {T[0, 0]})")

    loss = net.backward(X, T)
    delta_out, delta_hidden = out.db.copy(), hidden.db.copy()
    print("backward pass")
    print(f"  error (y - t)^2                 = {loss:.4f}")
    print(f"  output delta  2 (y - t)         = {delta_out[0]:.4f}")
    print(f"  hidden deltas delta_out W h(1-h) = {delta_hidden}")

    fb.SGD(lr=LR).step(net)
    new_w, new_v = notes_weights(out)[:, 0], notes_weights(hidden)
    print(f"update with learning rate {LR}")
    print(f"  new output weights (bias first) = {new_w}")
    print(f"  new hidden weights (bias row first):\n{new_v}")
    y_new = net.forward(X)[0, 0]
    print(f"  output after the step           = {y_new:.4f}   (was {y[0, 0]:.4f}, target 5)")
    return dict(
        z=z[0],
        h=h[0],
        y=y[0, 0],
        loss=loss,
        delta_out=delta_out[0],
        delta_hidden=delta_hidden,
        new_w_out=new_w,
        new_v=new_v,
        y_new=y_new,
    )


if __name__ == "__main__":
    main()
