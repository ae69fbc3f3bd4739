"""Learning-rate schedules, applied by :meth:`fastbp.Network.fit` once per epoch.

A schedule maps ``(epoch, base_lr)`` to the learning rate of that epoch (epochs count
from 0; ``base_lr`` is the optimizer's ``lr`` when ``fit`` starts), with the closed forms
of ``torch.optim.lr_scheduler``'s schedules of the same names.
"""

from __future__ import annotations

import math

from .. import _validate

__all__ = ["Schedule", "StepLR", "ExponentialLR", "CosineAnnealingLR"]


class Schedule:
    """Base class: ``schedule(epoch, base_lr)`` is the learning rate of ``epoch`` (its
    History index, from 0)."""

    def __call__(self, epoch: int, base_lr: float) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class StepLR(Schedule):
    """``base_lr * gamma ** (epoch // step_size)``: decay by ``gamma`` every ``step_size``
    epochs.

    Parameters
    ----------
    step_size : int
        Epochs between decays, >= 1.
    gamma : float
        Factor of each decay, > 0.
    """

    def __init__(self, step_size: int, gamma: float = 0.1):
        self.step_size = _validate.positive_int("step_size", step_size)
        self.gamma = _validate.real("gamma", gamma, strict=True)

    def __call__(self, epoch: int, base_lr: float) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(Schedule):
    """``base_lr * gamma ** epoch``.

    Parameters
    ----------
    gamma : float
        Factor per epoch, > 0.
    """

    def __init__(self, gamma: float):
        self.gamma = _validate.real("gamma", gamma, strict=True)

    def __call__(self, epoch: int, base_lr: float) -> float:
        return base_lr * self.gamma**epoch


class CosineAnnealingLR(Schedule):
    """``eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``: from
    ``base_lr`` down to ``eta_min`` over ``T_max`` epochs (and back up after, as PyTorch).

    Parameters
    ----------
    T_max : int
        Epochs of the half period, >= 1. With ``eta_min = 0`` the rate reaches 0 at epoch
        ``T_max``, which ``fit`` refuses: train at most ``T_max`` epochs, or set ``eta_min``.
    eta_min : float
        The lowest rate, >= 0.
    """

    def __init__(self, T_max: int, eta_min: float = 0.0):  # T_max: PyTorch's name
        self.T_max = _validate.positive_int("T_max", T_max)
        self.eta_min = _validate.real("eta_min", eta_min)

    def __call__(self, epoch: int, base_lr: float) -> float:
        cos = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        return self.eta_min + (base_lr - self.eta_min) * cos
