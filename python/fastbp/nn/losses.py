"""Loss functions, defined as in ``torch.nn`` so values compare one to one."""

from __future__ import annotations

from .. import _core, _names, _validate

#: The classes fastbp exports at its top level.
CLASSES = [
    "Loss",
    "MSELoss",
    "SoftmaxCrossEntropyLoss",
    "BCEWithLogitsLoss",
    "L1Loss",
    "HuberLoss",
    "SmoothL1Loss",
    "PoissonNLLLoss",
]
__all__ = [*CLASSES, "LOSS_TYPES"]

#: fastbp's loss classes by class name (what a saved network names them by), each entered
#: as it is defined.
LOSS_TYPES: dict[str, type] = {}


class Loss:
    """Base class: a loss kind and a reduction. ``kind`` is its member of ``_core.Loss``,
    and ``name``, derived from it (``"mse"``), keys the ops and the NumPy reference."""

    kind: _core.Loss
    name = ""
    #: the numbers the core takes with the loss kind, in its order (HuberLoss's delta;
    #: SmoothL1Loss's beta; PoissonNLLLoss's log_input, full and eps; none for the others)
    core_params: tuple = ()
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

    @property
    def settings(self) -> dict:
        """Its own settings (HuberLoss's delta, ...), by the keywords that the
        ``fastbp.ops`` and ``fastbp.reference`` functions of its name take them by."""
        return {k: v for k, v in self.config().items() if k not in ("type", "reduction")}

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
    def core_params(self) -> tuple:
        return (self.delta,)

    def config(self) -> dict:
        return {**super().config(), "delta": self.delta}

    def __repr__(self) -> str:
        return f"HuberLoss(delta={self.delta!r}, reduction={self.reduction!r})"


class SmoothL1Loss(Loss):
    """``torch.nn.SmoothL1Loss``: per element ``0.5 * d**2 / beta`` where ``|d| < beta``,
    else ``|d| - 0.5 * beta``, with ``d = y - t`` (``beta = 0`` is :class:`L1Loss`);
    ``"mean"`` divides by the number of elements.

    Parameters
    ----------
    beta : float
        Where the loss turns from quadratic to linear; finite, >= 0.
    reduction : {"mean", "sum"}
    """

    kind = _core.Loss.SmoothL1

    def __init__(self, beta: float = 1.0, reduction: str = "mean"):
        self.beta = _validate.real("beta", beta)
        super().__init__(reduction)

    @property
    def core_params(self) -> tuple:
        return (self.beta,)

    def config(self) -> dict:
        return {**super().config(), "beta": self.beta}

    def __repr__(self) -> str:
        return f"SmoothL1Loss(beta={self.beta!r}, reduction={self.reduction!r})"


class PoissonNLLLoss(Loss):
    """``torch.nn.PoissonNLLLoss``, the negative log-likelihood of a Poisson target ``t``:
    per element ``exp(y) - t * y`` when the outputs ``y`` are log-rates (``log_input``),
    else ``y - t * log(y + eps)``; ``full`` adds Stirling's approximation of ``log(t!)``,
    ``t * log(t) - t + 0.5 * log(2 * pi * t)``, where ``t > 1``. ``"mean"`` divides by
    the number of elements.

    A network's targets must be >= 0 (counts or rates); with ``log_input=False`` its
    outputs must stay above ``-eps`` (end the network in ``Softplus`` or ``ReLU``), since
    below that the loss is NaN, which training reports as a divergence.

    Parameters
    ----------
    log_input : bool
        Whether the outputs are log-rates (the rate is ``exp(y)``) or rates.
    full : bool
        Add the Stirling term, which does not depend on the outputs (nor, so, does the
        gradient).
    eps : float
        Keeps ``log`` finite at a rate of 0 when ``log_input`` is False; finite, >= 0.
    reduction : {"mean", "sum"}
    """

    kind = _core.Loss.PoissonNLL

    def __init__(
        self, log_input: bool = True, full: bool = False, eps: float = 1e-8, reduction: str = "mean"
    ):
        self.log_input = _validate.flag("log_input", log_input)
        self.full = _validate.flag("full", full)
        self.eps = _validate.real("eps", eps)
        super().__init__(reduction)

    @property
    def core_params(self) -> tuple:
        return (float(self.log_input), float(self.full), self.eps)

    def config(self) -> dict:
        return {**super().config(), "log_input": self.log_input, "full": self.full, "eps": self.eps}

    def __repr__(self) -> str:
        return (
            f"PoissonNLLLoss(log_input={self.log_input!r}, full={self.full!r}, "
            f"eps={self.eps!r}, reduction={self.reduction!r})"
        )
