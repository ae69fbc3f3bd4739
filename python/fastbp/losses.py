"""Loss functions, defined as in ``torch.nn`` so values compare one to one."""

from __future__ import annotations

from . import _validate

__all__ = ["Loss", "MSELoss", "SoftmaxCrossEntropyLoss", "BCEWithLogitsLoss"]

class Loss:
    """Base class: a loss kind (``name``, which keys the kernels) and a reduction."""

    name = ""

    def __init__(self, reduction: str = "mean"):
        _validate.choice("reduction", reduction, _validate.REDUCTIONS)
        self.reduction = reduction

    def config(self) -> dict:
        return {"type": type(self).__name__, "reduction": self.reduction}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class MSELoss(Loss):
    """Squared error ``sum((y - t)**2)``; ``"mean"`` divides by the number of elements."""

    name = "mse"


class SoftmaxCrossEntropyLoss(Loss):
    """Cross-entropy of ``softmax(logits)`` (``torch.nn.CrossEntropyLoss``).

    Targets are integer class labels, shape (N,), or probability rows, shape (N, C);
    ``"mean"`` divides by the number of samples N.
    """

    name = "softmax_cross_entropy"


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy of ``sigmoid(logits)``; ``"mean"`` divides by all elements."""

    name = "bce_with_logits"
