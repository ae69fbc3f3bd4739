"""Optimizers. Their state (momentum buffers, moment estimates) is kept per network."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import _validate

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "CoreCalls"]


class CoreCalls(NamedTuple):
    """A network core's calls that train with one optimizer, bound to that core; each
    takes the optimizer's :meth:`Optimizer.core_args` after its batch (and row order)."""

    step: Callable[..., None]
    train_step: Callable[..., float]
    train_epoch: Callable[..., float]


class OptimizerState:
    """SGD's state for one network: the momentum buffer and the steps taken."""

    __slots__ = ("velocity", "steps")

    def __init__(self, n_params: int, dtype):
        self.velocity = np.zeros(n_params, dtype=dtype)
        self.steps = 0


class AdamState:
    """Adam's state for one network: the moment estimates and the steps taken."""

    __slots__ = ("exp_avg", "exp_avg_sq", "steps")

    def __init__(self, n_params: int, dtype):
        self.exp_avg = np.zeros(n_params, dtype=dtype)
        self.exp_avg_sq = np.zeros(n_params, dtype=dtype)
        self.steps = 0


class Optimizer:
    """Base of fastbp's optimizers: validated hyper-parameters as attributes, and a state
    per network.

    The hyper-parameters (``_HYPER``) may be changed between steps (``opt.lr = 0.01``);
    every change is validated, and a refused one changes nothing.
    """

    _HYPER: tuple = ()
    _STATE: type = OptimizerState

    def __init__(self, **hyper):
        self._set(**hyper)
        self._state = weakref.WeakKeyDictionary()

    def _check(self, values: dict) -> dict:
        """The hyper-parameters checked and normalised; raises on a bad one."""
        raise NotImplementedError

    def _kernel_order(self, checked: dict) -> tuple:
        """The hyper-parameters in the order the kernels take them."""
        raise NotImplementedError

    def _set(self, **values) -> None:
        """Validate and apply hyper-parameters together, all or none."""
        new = {name: getattr(self, "_" + name, None) for name in self._HYPER}
        new.update(values)
        checked = self._check(new)
        for name in self._HYPER:
            object.__setattr__(self, "_" + name, checked[name])
        # The kernels' argument order, built once per change rather than per step.
        object.__setattr__(self, "hyper_parameters", self._kernel_order(checked))

    def __getattr__(self, name):
        if name in type(self)._HYPER:
            return object.__getattribute__(self, "_" + name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name in type(self)._HYPER:
            self._set(**{name: value})
        else:
            object.__setattr__(self, name, value)

    def __getstate__(self) -> dict:
        """Pickled without the per-network states, which live as long as their networks."""
        return {k: v for k, v in self.__dict__.items() if k != "_state"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _state=weakref.WeakKeyDictionary())

    def state_for(self, net):
        """This optimizer's state for ``net``, created on first use."""
        state = self._state.get(net)
        if state is None:
            state = self._state[net] = self._STATE(net.n_params, net.dtype)
        return state

    def core_args(self, state) -> tuple:
        """The arguments after the batch (and order) of the network core's training calls."""
        raise NotImplementedError

    def core_calls(self, core) -> CoreCalls:
        """The training calls of the network core ``core`` (``fastbp._core.Network32``
        and its kin, or the NumPy reference network) that apply this optimizer."""
        raise NotImplementedError

    def step(self, net) -> None:
        """Apply one update to ``net`` from the gradients of its last backward pass.

        Parameters
        ----------
        net : Network
            The network whose ``dW``/``db`` (as ``net.backward`` left them, or as since
            edited) drive the update.

        Raises
        ------
        FloatingPointError
            When the loss of ``net``'s last backward pass or a gradient is NaN or inf,
            naming the optimizer step that would have been applied and what was not
            finite (the loss, or the Dense layer's ``dW`` or ``db``). Nothing changes:
            parameters, momentum buffer or moment estimates, and the step count are as
            before the call.
        """
        net._apply_update(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._HYPER)
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with ``torch.optim.SGD``'s definitions.

    ``d = grad + weight_decay * p``; with momentum, ``v = momentum * v + (1 - dampening) * d``
    (``v = d`` on the first step) and ``d = v``, or ``d = d + momentum * v`` with
    ``nesterov``; then ``p -= lr * d``. The hyper-parameters may be changed between
    steps (``opt.lr = 0.01``); every change is validated.

    Parameters
    ----------
    lr : float
        Learning rate, > 0.
    momentum, dampening, weight_decay : float
        >= 0.
    nesterov : bool
        Nesterov momentum; requires ``momentum > 0`` and ``dampening == 0``.
    """

    _HYPER = ("lr", "momentum", "dampening", "nesterov", "weight_decay")

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                         weight_decay=weight_decay)

    def _check(self, new: dict) -> dict:
        checked = {name: _validate.real(name, new[name], strict=name == "lr")
                   for name in ("lr", "momentum", "dampening", "weight_decay")}
        if not isinstance(new["nesterov"], bool):
            raise TypeError(f"nesterov must be a bool, got {type(new['nesterov']).__name__}")
        checked["nesterov"] = new["nesterov"]
        if checked["nesterov"] and (checked["momentum"] <= 0 or checked["dampening"] != 0):
            raise ValueError("nesterov momentum requires momentum > 0 and dampening == 0, "
                             f"got momentum={checked['momentum']}, "
                             f"dampening={checked['dampening']}")
        return checked

    def _kernel_order(self, checked: dict) -> tuple:
        return tuple(checked[name] for name in self._HYPER)

    def core_args(self, state: OptimizerState) -> tuple:
        return (state.velocity, *self.hyper_parameters, state.steps == 0)

    def core_calls(self, core) -> CoreCalls:
        return CoreCalls(core.step, core.train_step, core.train_epoch)



class Adam(Optimizer):
    """Adam with ``torch.optim.Adam``'s definitions (AdamW's with
    ``decoupled_weight_decay=True``).

    At step ``t`` (from 1): with coupled weight decay ``g = grad + weight_decay * p``,
    with decoupled ``p *= 1 - lr * weight_decay`` and ``g = grad``; then
    ``m = beta1 * m + (1 - beta1) * g``, ``v = beta2 * v + (1 - beta2) * g**2`` and
    ``p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``.

    Parameters
    ----------
    lr : float
        Learning rate, > 0.
    betas : tuple of float
        ``(beta1, beta2)``, each in [0, 1).
    eps : float
        > 0, added to the denominator.
    weight_decay : float
        >= 0.
    decoupled_weight_decay : bool
        Decay the weights directly (AdamW) rather than through the gradient.
    """

    _HYPER = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay")
    _STATE = AdamState

    def __init__(self, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled_weight_decay: bool = False):
        super().__init__(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         decoupled_weight_decay=decoupled_weight_decay)

    def _check(self, new: dict) -> dict:
        betas = new["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        betas = tuple(_validate.real(f"betas[{i}]", b) for i, b in enumerate(betas))
        if max(betas) >= 1:
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if not isinstance(new["decoupled_weight_decay"], bool):
            raise TypeError("decoupled_weight_decay must be a bool, got "
                            f"{type(new['decoupled_weight_decay']).__name__}")
        return {"lr": _validate.real("lr", new["lr"], strict=True), "betas": betas,
                "eps": _validate.real("eps", new["eps"], strict=True),
                "weight_decay": _validate.real("weight_decay", new["weight_decay"]),
                "decoupled_weight_decay": new["decoupled_weight_decay"]}

    def _kernel_order(self, checked: dict) -> tuple:
        return (checked["lr"], *checked["betas"], checked["eps"], checked["weight_decay"],
                checked["decoupled_weight_decay"])

    def core_args(self, state: AdamState) -> tuple:
        return (state.exp_avg, state.exp_avg_sq, *self.hyper_parameters, state.steps)

    def core_calls(self, core) -> CoreCalls:
        return CoreCalls(core.step_adam, core.train_step_adam, core.train_epoch_adam)


class AdamW(Adam):
    """:class:`Adam` with decoupled weight decay, as ``torch.optim.AdamW`` (whose default
    ``weight_decay`` is 0.01).

    Parameters
    ----------
    lr, betas, eps, weight_decay
        As for :class:`Adam`.
    """

    def __init__(self, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         decoupled_weight_decay=True)
