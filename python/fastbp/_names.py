"""The names of fastbp's activations, losses and reductions, read from the enums the
compiled core exports, where they are defined once (csrc/common/act_math.hpp,
csrc/common/loss_math.hpp).

Python spells them in snake case (``_core.Act.ReLU`` is ``"relu"``,
``_core.Loss.SoftmaxCrossEntropy`` is ``"softmax_cross_entropy"``): the names of the
``fastbp.ops`` and ``fastbp.reference`` functions and the ``name`` of each layer and loss.
"""

from __future__ import annotations

import re

from . import _core

__all__ = ["snake_case", "ACTIVATIONS", "LOSSES", "REDUCTIONS", "COMPUTE"]

# A word starts at an upper-case letter followed by a lower-case one, after a lower-case
# letter or a capital: BCEWithLogits -> BCE_With_Logits, while ReLU stays one word; and at
# three capitals or more, or a capital and a digit, after a lower-case letter:
# PoissonNLL -> Poisson_NLL, SmoothL1 -> Smooth_L1.
_WORD_START = re.compile(
    r"(?<=[a-z])(?=[A-Z][a-z])|(?<=[A-Z])(?=[A-Z][a-z])"
    r"|(?<=[a-z])(?=[A-Z]{3}|[A-Z][0-9])"
)


def snake_case(name: str) -> str:
    """``name`` (an enum member's, in CamelCase) in snake case.

    Parameters
    ----------
    name : str
        E.g. ``"SoftmaxCrossEntropy"``.

    Returns
    -------
    str
        E.g. ``"softmax_cross_entropy"``.
    """
    return _WORD_START.sub("_", name).lower()


def _by_snake_name(enum) -> dict:
    return {snake_case(name): member for name, member in enum.__members__.items()}


#: ``"relu"`` -> ``_core.Act.ReLU``, for every activation the core has.
ACTIVATIONS: dict = _by_snake_name(_core.Act)
#: ``"mse"`` -> ``_core.Loss.MSE``, for every loss the core has.
LOSSES: dict = _by_snake_name(_core.Loss)
#: ``"mean"`` -> ``_core.Reduction.Mean``.
REDUCTIONS: dict = _by_snake_name(_core.Reduction)
#: A compute dtype (None: the storage dtype's; ``"bfloat16"``) -> ``_core.Compute``.
COMPUTE: dict = {
    None if name == "storage" else name: member
    for name, member in _by_snake_name(_core.Compute).items()
}
