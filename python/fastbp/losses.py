"""Loss functions, defined as in ``torch.nn`` so values compare one to one."""

from __future__ import annotations

from . import _core, _names, _validate

__all__ = [
    "Loss",
    "MSELoss",
    "SoftmaxCrossEntropyLoss",
    "BCEWithLogitsLoss",
    "L1Loss",
    "HuberLoss",
    "LOSS_TYPES",
]

#: fastbp's loss classes by class name (what a saved network names them by), each entered
#: as it is defined.
LOSS_TYPES: dict[str, type] = {}


class Loss:
    """Base class: a loss kind and a reduction. ``kind`` is its member of ``_core.Loss``,
    and ``name``, derived from it (``"mse"``), keys the ops and the NumPy reference."""

    kind: _core.Loss
    name = ""
    #: the float the core takes with the loss kind (HuberLoss's delta, else 0.0)
    core_param = 0.0
    #: whether its targets are classes (labels, probability rows, binary targets), which
    #: accuracy, class weights and a stratified validation split need
    classifies = False

    def __init_subclass__(cls, **kwargs):
        # Only fastbp's own losses: a user's subclass must not replace them.
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "kind"):
            cls.name = _names.snake_case(cls.kind.name)
            if cls.__module__ == __name__:
                LOSS_TYPES[cls.__name__] = cls

    def __init__(self, reduction: str = "mean"):
        _validate.choice("reduction", reduction, _validate.REDUCTIONS)
        self.reduction = reduction

    def config(self) -> dict:
        return {"type": type(self).__name__, "reduction": self.reduction}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class MSELoss(Loss):
    """Squared error ``sum((y - t)**2)``; ``"mean"`` divides by the number of elements."""

    kind = _core.Loss.MSE


class SoftmaxCrossEntropyLoss(Loss):
    """Cross-entropy of ``softmax(logits)`` (``torch.nn.CrossEntropyLoss``).

    Targets are class labels, shape (N,) or (N, 1), integers or floats of whole value
    (``1.0``), or probability rows, shape (N, C) (with one output C = 1, (N, 1) is a
    probability row); ``"mean"`` divides by the number of samples N.
    """

    kind = _core.Loss.SoftmaxCrossEntropy
    classifies = True


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy of ``sigmoid(logits)``; ``"mean"`` divides by all elements."""

    kind = _core.Loss.BCEWithLogits
    classifies = True


class L1Loss(Loss):
    """Absolute error ``sum(|y - t|)`` (``torch.nn.L1Loss``); ``"mean"`` divides by the
    number of elements. Its gradient is ``sign(y - t)``, 0 where ``y == t``."""

    kind = _core.Loss.L1


class HuberLoss(Loss):
    """``torch.nn.HuberLoss``: per element ``0.5 * d**2`` where ``|d| < delta``, else
    ``delta * (|d| - 0.5 * delta)``, with ``d = y - t``; ``"mean"`` divides by the number
    of elements.

    Parameters
    ----------
    delta : float
        Where the loss turns from quadratic to linear; finite, > 0.
    reduction : {"mean", "sum"}
    """

    kind = _core.Loss.Huber

    def __init__(self, delta: float = 1.0, reduction: str = "mean"):
        self.delta = _validate.real("delta", delta, strict=True)
        super().__init__(reduction)

    @property
    def core_param(self) -> float:
        return self.delta

    def config(self) -> dict:
        return {**super().config(), "delta": self.delta}

    def __repr__(self) -> str:
        return f"HuberLoss(delta={self.delta!r}, reduction={self.reduction!r})"
