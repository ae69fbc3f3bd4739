"""Optimizers. Their state (momentum buffers) is kept per network."""

from __future__ import annotations

import weakref

import numpy as np

from . import _validate

__all__ = ["SGD"]

_HYPER = ("lr", "momentum", "dampening", "nesterov", "weight_decay")


class OptimizerState:
    """An optimizer's state for one network: the momentum buffer and the steps taken."""

    __slots__ = ("velocity", "steps")

    def __init__(self, n_params: int, dtype):
        self.velocity = np.zeros(n_params, dtype=dtype)
        self.steps = 0


class SGD:
    """Stochastic gradient descent with ``torch.optim.SGD``'s definitions.

    ``d = grad + weight_decay * p``; with momentum, ``v = momentum * v + (1 - dampening) * d``
    (``v = d`` on the first step) and ``d = v``, or ``d = d + momentum * v`` with
    ``nesterov``; then ``p -= lr * d``. The hyper-parameters may be changed between
    steps (``opt.lr = 0.01``); every change is validated.
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        self._set(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                  weight_decay=weight_decay)
        self._state = weakref.WeakKeyDictionary()

    def _set(self, **values) -> None:
        """Validate and apply hyper-parameters together, all or none."""
        new = {name: getattr(self, "_" + name, None) for name in _HYPER}
        new.update(values)
        checked = {name: _validate.real(name, new[name], strict=name == "lr")
                   for name in ("lr", "momentum", "dampening", "weight_decay")}
        if not isinstance(new["nesterov"], bool):
            raise TypeError(f"nesterov must be a bool, got {type(new['nesterov']).__name__}")
        checked["nesterov"] = new["nesterov"]
        if checked["nesterov"] and (checked["momentum"] <= 0 or checked["dampening"] != 0):
            raise ValueError("nesterov momentum requires momentum > 0 and dampening == 0, "
                             f"got momentum={checked['momentum']}, "
                             f"dampening={checked['dampening']}")
        for name in _HYPER:
            object.__setattr__(self, "_" + name, checked[name])
        # The kernels' argument order, built once per change rather than per step.
        object.__setattr__(self, "hyper_parameters",
                           tuple(checked[name] for name in _HYPER))

    def __getattr__(self, name):
        if name in _HYPER:
            return object.__getattribute__(self, "_" + name)
        raise AttributeError(f"'SGD' object has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name in _HYPER:
            self._set(**{name: value})
        else:
            object.__setattr__(self, name, value)

    def state_for(self, net) -> OptimizerState:
        """Momentum buffer and step count for ``net``, created on first use."""
        state = self._state.get(net)
        if state is None:
            state = self._state[net] = OptimizerState(net.n_params, net.dtype)
        return state

    def step(self, net) -> None:
        """Apply one update to ``net`` from the gradients of its last backward pass."""
        net._apply_sgd(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in zip(_HYPER, self.hyper_parameters))
        return f"SGD({args})"
