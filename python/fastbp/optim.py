"""Optimizers. Their state (momentum buffers) is kept per network."""

from __future__ import annotations

import weakref

import numpy as np

from . import _validate

__all__ = ["SGD"]


class SGD:
    """Stochastic gradient descent with ``torch.optim.SGD``'s definitions.

    ``d = grad + weight_decay * p``; with momentum, ``v = momentum * v + (1 - dampening) * d``
    (``v = d`` on the first step) and ``d = v``, or ``d = d + momentum * v`` with
    ``nesterov``; then ``p -= lr * d``.
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        self.lr = _validate.real("lr", lr, strict=True)
        self.momentum = _validate.real("momentum", momentum)
        self.dampening = _validate.real("dampening", dampening)
        self.weight_decay = _validate.real("weight_decay", weight_decay)
        if not isinstance(nesterov, bool):
            raise TypeError(f"nesterov must be a bool, got {type(nesterov).__name__}")
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov momentum requires momentum > 0 and dampening == 0, "
                             f"got momentum={self.momentum}, dampening={self.dampening}")
        self.nesterov = nesterov
        self._state = weakref.WeakKeyDictionary()

    def hyper_parameters(self) -> tuple:
        """``(lr, momentum, dampening, nesterov, weight_decay)``, in the kernels' order."""
        return (self.lr, self.momentum, self.dampening, self.nesterov, self.weight_decay)

    def state_for(self, net) -> dict:
        """Momentum buffer and step count for ``net``, created on first use."""
        state = self._state.get(net)
        if state is None:
            state = {"velocity": np.zeros(net.n_params, dtype=net.dtype), "steps": 0}
            self._state[net] = state
        return state

    def step(self, net) -> None:
        """Apply one update to ``net`` from the gradients of its last backward pass."""
        net._apply_sgd(self)

    def __repr__(self) -> str:
        names = ("lr", "momentum", "dampening", "nesterov", "weight_decay")
        args = ", ".join(f"{k}={v!r}" for k, v in zip(names, self.hyper_parameters()))
        return f"SGD({args})"
