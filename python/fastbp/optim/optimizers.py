"""Optimizers. Their state (momentum buffers, moment estimates) is kept per network; the
update rules themselves live in the core (csrc/common/optim_math.hpp)."""

from __future__ import annotations

import threading
import weakref

import numpy as np

from .. import _core, _validate

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta"]

#: Every optimizer class, by name (``__all__`` without the base class).
CLASSES = __all__[1:]

#: Makes a fit's test and claim of its optimizer (:meth:`FitClaim.take`) one step.
_CLAIMING = threading.Lock()

#: ``_core.Optimizer`` member -> its state class (the names of its arrays), each entered
#: as its optimizer is defined.
STATE_TYPES: dict = {}


class OptimizerState:
    """An optimizer's state for one network: its buffers (``arrays``, n_params each, in
    the order the core takes them, also readable by ``names``) and the steps taken."""

    __slots__ = ("arrays", "steps")
    names: tuple = ()

    def __init__(self, n_params: int, dtype, fill: float = 0.0):
        self.arrays = [np.full(n_params, fill, dtype=dtype) for _ in self.names]
        self.steps = 0

    def __getattr__(self, name):
        names = type(self).names
        if name in names:
            return self.arrays[names.index(name)]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class SGDState(OptimizerState):
    __slots__ = ()
    names = ("velocity",)


class AdamState(OptimizerState):
    __slots__ = ()
    names = ("exp_avg", "exp_avg_sq")


class RMSpropState(OptimizerState):
    __slots__ = ()
    names = ("square_avg", "momentum_buffer", "grad_avg")


class AdagradState(OptimizerState):
    __slots__ = ()
    names = ("sum",)


def _max_grad_norm(value):
    """None, or a finite max_grad_norm > 0 as a float."""
    return None if value is None else _validate.real("max_grad_norm", value, strict=True)


class Optimizer:
    """Base of fastbp's optimizers: validated hyper-parameters as attributes, and a state
    per network.

    The hyper-parameters (``_HYPER``, ``max_grad_norm`` last) may be changed between
    steps (``opt.lr = 0.01``); every change is validated, and a refused one changes
    nothing. ``max_grad_norm``, when not None, clips the gradients before each update as
    ``torch.nn.utils.clip_grad_norm_(params, max_grad_norm)`` does: one L2 norm over all
    of them, scaled in place by ``min(1, max_grad_norm / (norm + 1e-6))``, in the same
    core call. The divergence check sees the gradients before clipping, and a norm that
    is not finite is a divergence too.
    """

    kind: _core.Optimizer
    #: The claim of the fit this optimizer drives now, if any (see :class:`FitClaim`).
    _fit: FitClaim | None = None
    _HYPER: tuple = ()
    _STATE: type = OptimizerState
    _INIT_ONLY: tuple = ()  # hyper-parameters that set the initial state, not a step

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            STATE_TYPES[cls.kind] = cls._STATE

    def __init__(self, **hyper):
        self._set(**hyper)
        self._state = weakref.WeakKeyDictionary()

    def _check(self, values: dict) -> dict:
        """The hyper-parameters checked and normalised; raises on a bad one."""
        raise NotImplementedError

    def _kernel_order(self, checked: dict) -> tuple:
        """The hyper-parameters in the order the core takes them (common/optim_math.hpp),
        flags as bools: ``hyper_parameters``."""
        raise NotImplementedError

    def _core_hyper(self, checked: dict) -> tuple:
        """The core's ``hyper`` floats; the same order as ``hyper_parameters`` unless a
        subclass keeps an older public order."""
        return tuple(map(float, self._kernel_order(checked)))

    def _set(self, **values) -> None:
        """Validate and apply hyper-parameters together, all or none."""
        new = {name: getattr(self, "_" + name, None) for name in self._HYPER}
        new.update(values)
        max_norm = _max_grad_norm(new.pop("max_grad_norm"))
        checked = self._check(new)
        checked["max_grad_norm"] = max_norm
        spec = self._spec(checked)  # before anything changes: the core checks it too
        for name in self._HYPER:
            object.__setattr__(self, "_" + name, checked[name])
        object.__setattr__(self, "hyper_parameters", self._kernel_order(checked))
        object.__setattr__(self, "_core_spec", spec)

    def _spec(self, checked: dict):
        """The core's UpdateSpec of the hyper-parameters ``checked``: the arguments of the
        training calls, built once per change rather than per step."""
        max_norm = checked["max_grad_norm"]
        return _core.UpdateSpec(
            self.kind, self._core_hyper(checked), 0.0 if max_norm is None else max_norm
        )

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
        """Pickled without the per-network states, which live as long as their networks,
        and without the claim of a running fit."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_state", "_core_spec", "_fit")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _state=weakref.WeakKeyDictionary())
        self.__dict__["_core_spec"] = self._spec(
            {name: getattr(self, "_" + name) for name in self._HYPER}
        )

    def state_for(self, net):
        """This optimizer's state for ``net``, created on first use."""
        state = self._state.get(net)
        if state is None:
            state = self._state[net] = self._new_state(net.n_params, net.dtype)
        return state

    def _new_state(self, n_params: int, dtype) -> OptimizerState:
        return self._STATE(n_params, dtype)

    def _refuse_other_thread(self) -> None:
        """Raise RuntimeError when a fit on another thread drives this optimizer (see
        :class:`FitClaim`); its own thread (a callback) may step with it."""
        fit, here = self._fit, threading.current_thread()
        if fit is not None and fit.thread is not here:
            raise RuntimeError(
                f"{self!r} drives a fit on thread {fit.thread.name!r}; a step "
                f"with it from thread {here.name!r} would train at that fit's "
                "learning rates, which it sets back when it ends: give each "
                "thread its own optimizer"
            )

    def core_args(self, state: OptimizerState) -> tuple:
        """``(spec, states, steps)``: the arguments after the batch (and order) of the
        network core's ``step``, ``train_step`` and ``train_epoch``; ``spec`` is a
        ``_core.UpdateSpec`` (kind, hyper-parameters, clipping norm, 0.0 for none), built
        once per change of the hyper-parameters; ``steps``: the updates before the call."""
        return self._core_spec, state.arrays, state.steps

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
            finite (the loss, the Dense layer's ``dW`` or ``db``, or the gradient norm
            when clipping). Nothing changes: parameters, gradients, optimizer state and
            the step count are as before the call.
        RuntimeError
            When a fit on another thread is driving this optimizer (see
            :class:`FitClaim`); nothing changes.
        """
        net.internals.apply_update(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._HYPER)
        return f"{type(self).__name__}({args})"


def check(value) -> None:
    """Raise TypeError unless ``value`` is a fastbp optimizer; a class passed for its
    instance is told the call it meant."""
    _validate.instance(
        "optimizer", value, Optimizer, "a fastbp optimizer (SGD, Adam, AdamW, RMSprop, ...)"
    )


def check_for_step(value) -> bool:
    """:func:`check` ``value``, and raise RuntimeError when a fit on another thread drives
    it; whether a network may cache its binding of ``value``: not while a fit drives it,
    so that every call checks its thread."""
    check(value)
    value._refuse_other_thread()
    return value._fit is None


class FitClaim:
    """``optimizer`` marked as driving one :meth:`fastbp.Network.fit`, run on the thread
    that makes the claim, from :meth:`take` to :meth:`release`. A fit sets the
    optimizer's ``lr`` (a schedule's rates) and sets it back when it ends, so a second
    fit with the same optimizer meanwhile, or a step with it from another thread, would
    train at the other fit's rates and could leave ``lr`` as that fit found it: both are
    refused."""

    def __init__(self, optimizer):
        self.optimizer, self.thread = optimizer, threading.current_thread()

    def take(self) -> None:
        """Claim the optimizer; raises RuntimeError, changing nothing, when a fit (on any
        thread) drives it already."""
        with _CLAIMING:
            other = self.optimizer._fit
            if other is not None:
                raise RuntimeError(
                    f"{self.optimizer!r} already drives a fit (on thread "
                    f"{other.thread.name!r}): an optimizer drives one fit at a time, since "
                    "fit sets its learning rate; give each concurrent fit its own optimizer"
                )
            self.optimizer._fit = self
        for net in list(self.optimizer._state):  # their cached bindings skip the check
            net.internals.forget(self.optimizer)

    def release(self) -> None:
        """End the claim if :meth:`take` made it; otherwise do nothing."""
        if getattr(self.optimizer, "_fit", None) is self:
            self.optimizer._fit = None


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
    max_grad_norm : float or None
        Clip the gradients to this global L2 norm before each update (see
        :class:`Optimizer`); None: no clipping.
    """

    kind = _core.Optimizer.SGD
    _HYPER = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "max_grad_norm")
    _STATE = SGDState

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        max_grad_norm: float | None = None,
    ):
        super().__init__(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            nesterov=nesterov,
            weight_decay=weight_decay,
            max_grad_norm=max_grad_norm,
        )

    def _check(self, new: dict) -> dict:
        checked = {
            name: _validate.real(name, new[name], strict=name == "lr")
            for name in ("lr", "momentum", "dampening", "weight_decay")
        }
        if not isinstance(new["nesterov"], bool):
            raise TypeError(f"nesterov must be a bool, got {type(new['nesterov']).__name__}")
        checked["nesterov"] = new["nesterov"]
        if checked["nesterov"] and (checked["momentum"] <= 0 or checked["dampening"] != 0):
            raise ValueError(
                "nesterov momentum requires momentum > 0 and dampening == 0, "
                f"got momentum={checked['momentum']}, "
                f"dampening={checked['dampening']}"
            )
        return checked

    def _kernel_order(self, checked: dict) -> tuple:
        return tuple(checked[name] for name in self._HYPER[:-1])

    def _core_hyper(self, checked: dict) -> tuple:
        return tuple(
            float(checked[name])
            for name in ("lr", "momentum", "dampening", "weight_decay", "nesterov")
        )


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
    max_grad_norm : float or None
        As for :class:`SGD`.
    """

    kind = _core.Optimizer.Adam
    _HYPER = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay", "max_grad_norm")
    _STATE = AdamState

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        max_grad_norm: float | None = None,
    ):
        super().__init__(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            max_grad_norm=max_grad_norm,
        )

    def _check(self, new: dict) -> dict:
        betas = new["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        betas = tuple(_validate.real(f"betas[{i}]", b) for i, b in enumerate(betas))
        if max(betas) >= 1:
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if not isinstance(new["decoupled_weight_decay"], bool):
            raise TypeError(
                "decoupled_weight_decay must be a bool, got "
                f"{type(new['decoupled_weight_decay']).__name__}"
            )
        return {
            "lr": _validate.real("lr", new["lr"], strict=True),
            "betas": betas,
            "eps": _validate.real("eps", new["eps"], strict=True),
            "weight_decay": _validate.real("weight_decay", new["weight_decay"]),
            "decoupled_weight_decay": new["decoupled_weight_decay"],
        }

    def _kernel_order(self, checked: dict) -> tuple:
        return (
            checked["lr"],
            *checked["betas"],
            checked["eps"],
            checked["weight_decay"],
            checked["decoupled_weight_decay"],
        )


class AdamW(Adam):
    """:class:`Adam` with decoupled weight decay, as ``torch.optim.AdamW`` (whose default
    ``weight_decay`` is 0.01).

    Parameters
    ----------
    lr, betas, eps, weight_decay, max_grad_norm
        As for :class:`Adam`.
    """

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        max_grad_norm: float | None = None,
    ):
        super().__init__(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=True,
            max_grad_norm=max_grad_norm,
        )


class RMSprop(Optimizer):
    """RMSprop with ``torch.optim.RMSprop``'s definitions.

    ``g = grad + weight_decay * p``; ``s = alpha * s + (1 - alpha) * g**2``; centered:
    ``a = lerp(a, g, 1 - alpha)`` and ``d = sqrt(s - a**2) + eps``, else
    ``d = sqrt(s) + eps``; with momentum ``b = momentum * b + g / d`` and ``p -= lr * b``,
    else ``p -= lr * g / d``.

    Parameters
    ----------
    lr : float
        Learning rate, > 0.
    alpha : float
        Smoothing constant, >= 0.
    eps : float
        > 0, added to the denominator.
    weight_decay, momentum : float
        >= 0.
    centered : bool
        Normalise by the estimated variance of the gradient rather than its second moment.
    max_grad_norm : float or None
        As for :class:`SGD`.
    """

    kind = _core.Optimizer.RMSprop
    _HYPER = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "max_grad_norm")
    _STATE = RMSpropState

    def __init__(
        self,
        lr: float = 0.01,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        max_grad_norm: float | None = None,
    ):
        super().__init__(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            max_grad_norm=max_grad_norm,
        )

    def _check(self, new: dict) -> dict:
        return {
            "lr": _validate.real("lr", new["lr"], strict=True),
            "alpha": _validate.real("alpha", new["alpha"]),
            "eps": _validate.real("eps", new["eps"], strict=True),
            "weight_decay": _validate.real("weight_decay", new["weight_decay"]),
            "momentum": _validate.real("momentum", new["momentum"]),
            "centered": _validate.flag("centered", new["centered"]),
        }

    def _kernel_order(self, checked: dict) -> tuple:
        return tuple(checked[name] for name in self._HYPER[:-1])


class Adagrad(Optimizer):
    """Adagrad with ``torch.optim.Adagrad``'s definitions.

    At step ``t`` (from 1): ``g = grad + weight_decay * p``, ``s += g**2`` and
    ``p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)``; ``s`` starts at
    ``initial_accumulator_value`` (taken when the optimizer first meets a network).

    Parameters
    ----------
    lr : float
        Learning rate, > 0.
    lr_decay, weight_decay, initial_accumulator_value : float
        >= 0.
    eps : float
        > 0, added to the denominator.
    max_grad_norm : float or None
        As for :class:`SGD`.
    """

    kind = _core.Optimizer.Adagrad
    _HYPER = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "max_grad_norm")
    _STATE = AdagradState
    _INIT_ONLY = ("initial_accumulator_value",)

    def __init__(
        self,
        lr: float = 0.01,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        max_grad_norm: float | None = None,
    ):
        super().__init__(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            max_grad_norm=max_grad_norm,
        )

    def _check(self, new: dict) -> dict:
        return {
            name: _validate.real(name, new[name], strict=name in ("lr", "eps"))
            for name in self._HYPER[:-1]
        }

    def _kernel_order(self, checked: dict) -> tuple:
        return tuple(checked[name] for name in ("lr", "lr_decay", "weight_decay", "eps"))

    def _new_state(self, n_params: int, dtype) -> AdagradState:
        return AdagradState(n_params, dtype, fill=self.initial_accumulator_value)


class AdadeltaState(OptimizerState):
    __slots__ = ()
    names = ("square_avg", "acc_delta")


class Adadelta(Optimizer):
    """Adadelta with ``torch.optim.Adadelta``'s definitions.

    ``g = grad + weight_decay * p``; ``s = rho * s + (1 - rho) * g**2``;
    ``delta = sqrt(u + eps) / sqrt(s + eps) * g``; ``u = rho * u + (1 - rho) * delta**2``;
    ``p -= lr * delta``.

    Parameters
    ----------
    lr : float
        Scale of the update, > 0.
    rho : float
        Smoothing constant of both running averages, in [0, 1].
    eps : float
        > 0, added inside both square roots.
    weight_decay : float
        >= 0.
    max_grad_norm : float or None
        As for :class:`SGD`.
    """

    kind = _core.Optimizer.Adadelta
    _HYPER = ("lr", "rho", "eps", "weight_decay", "max_grad_norm")
    _STATE = AdadeltaState

    def __init__(
        self,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        max_grad_norm: float | None = None,
    ):
        super().__init__(
            lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, max_grad_norm=max_grad_norm
        )

    def _check(self, new: dict) -> dict:
        checked = {
            name: _validate.real(name, new[name], strict=name in ("lr", "eps"))
            for name in self._HYPER[:-1]
        }
        if checked["rho"] > 1:
            raise ValueError(f"rho must be in [0, 1], got {checked['rho']}")
        return checked

    def _kernel_order(self, checked: dict) -> tuple:
        return tuple(checked[name] for name in self._HYPER[:-1])


def apply_step(optimizer: Optimizer, apply, param, grad, states: dict, step) -> None:
    """One update by ``optimizer`` of ``param`` and its ``states`` (name -> array, in
    ``optimizer``'s order) in place, as ``apply(kind, hyper, param, grad, arrays, step)``
    computes it (``hyper`` in the core's order): the ``<name>_step`` ops and their NumPy
    twins. ``param`` and the states must be writeable C-contiguous float32/float64 arrays
    of one shape and dtype; ``grad`` is converted to match; ``step`` (from 1) is the
    number of this update."""
    grad = _validate.update_buffers(param, grad, states)
    step = _validate.positive_int("step", step)
    apply(optimizer.kind, optimizer._core_spec.hyper, param, grad, list(states.values()), step)
