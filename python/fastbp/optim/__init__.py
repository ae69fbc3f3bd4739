"""Optimizers (:mod:`~fastbp.optim.optimizers`: hyper-parameters, checks and the state
kept per network; the update rules are the core's) and learning-rate schedules
(:mod:`~fastbp.optim.schedules`, also ``fastbp.schedules``)."""

from __future__ import annotations

from . import optimizers
from .optimizers import *  # noqa: F403  (every optimizer, as optimizers.__all__ lists them)

__all__ = optimizers.__all__
