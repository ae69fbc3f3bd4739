"""Pure-NumPy twin of every fastbp kernel and of the network maths.

The oracle the tests compare the C++ kernels against and the baseline the benchmarks
time: :mod:`~fastbp.reference.ops` holds a twin of every :mod:`fastbp.ops` function, and
:mod:`~fastbp.reference.network` the network that ``backend="numpy"`` runs.
"""

from __future__ import annotations

from . import ops
from .network import ReferenceNetwork
from .ops import *  # noqa: F403  (every twin, as ops.__all__ lists them)
from .ops import ACTIVATIONS, LOSS_TERMS, LOSSES, loss_with_settings, weighted_loss  # noqa: F401

__all__ = [*ops.__all__, "ReferenceNetwork"]
