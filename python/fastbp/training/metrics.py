"""Metrics that :meth:`fastbp.Network.fit` can record per epoch."""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "METRICS"]


def accuracy(y: np.ndarray, t: np.ndarray, loss_name: str) -> float:
    """Fraction of correct predictions of the network outputs ``y`` (logits) for targets
    ``t``, as the loss ``loss_name`` reads them.

    Softmax cross-entropy: the arg-max of each row against the label (or the arg-max of a
    probability row). Binary cross-entropy with logits: ``y > 0`` against ``t > 0.5``, over
    every element.
    """
    if loss_name == "softmax_cross_entropy":
        labels = t if t.ndim == 1 else t.argmax(axis=1)
        return float(np.mean(y.argmax(axis=1) == labels))
    if loss_name == "bce_with_logits":
        return float(np.mean((y > 0) == (t.reshape(y.shape) > 0.5)))
    raise ValueError(f"accuracy needs a classification loss, got {loss_name!r}")


#: name -> metric(y, t, loss_name)
METRICS = {"accuracy": accuracy}
