"""Pure-NumPy twin of every fastbp kernel and of the network maths.

This module is the oracle the tests compare the C++ kernels against and the
baseline the benchmarks time. It is written for clarity, one formula per function,
with the same signatures and semantics as :mod:`fastbp.ops`.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from . import _core, _layer_math, _locks, _names, _validate, activations, losses, optim

__all__ = [
    "matmul",
    "round_to_bfloat16",
    "linear",
    *_names.ACTIVATIONS,
    *(name + "_backward" for name in _names.ACTIVATIONS),
    "softmax",
    "mse",
    "mse_backward",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "bce_with_logits",
    "bce_with_logits_backward",
    "l1",
    "l1_backward",
    "huber",
    "huber_backward",
    "poisson_nll",
    "poisson_nll_backward",
    *(name.lower() + "_step" for name in optim.CLASSES),
    "clip_grad_norm",
    "OPTIMIZER_STEPS",
    "layer_norm",
    "layer_norm_backward",
    "batch_norm",
    "batch_norm_backward",
    "dropout",
    "dropout_backward",
    "dropout_key",
    "ReferenceNetwork",
]


def _floats(fn=None, *, same_shape=False):
    """Convert every array argument by fastbp.ops's dtype rule (and check that their
    shapes match, with ``same_shape``), as the ops do."""
    if fn is None:
        return functools.partial(_floats, same_shape=same_shape)
    names = fn.__code__.co_varnames

    @functools.wraps(fn)
    def converted(*arrays):
        named = dict(zip(names, arrays))
        if same_shape:
            _validate.same_shape(**named)
        return fn(*_validate.common_float(**named))

    return converted


def _loss_args(labels_allowed):
    """Check and convert (y, target, reduction) as fastbp.ops's losses do."""

    def wrap(fn):
        @functools.wraps(fn)
        def checked(y, target, reduction="mean"):
            return fn(*_validate.loss_inputs(y, target, reduction, labels_allowed), reduction)

        return checked

    return wrap


def matmul(a, b, trans_a=False, trans_b=False, compute_dtype=None, subnormals="kept"):
    """``op(a) @ op(b)`` with ``op(x) = x.T`` when the flag is set; with
    ``compute_dtype="bfloat16"`` on float32 operands rounded to bfloat16
    (:func:`round_to_bfloat16`). ``subnormals`` is the bfloat16 GEMM path's rule for
    values below 2**-126 (``fastbp.build_info()["bf16_subnormals"]``): ``"kept"`` as the
    float32 kernels do, or ``"flushed"`` to zero, operands and partial sums, as the AMX
    and AVX512-BF16 instructions do."""
    a, b = _validate.common_float(a=a, b=b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"matmul takes 2-D arrays, got shapes {a.shape} and {b.shape}")
    compute = _validate.compute_dtype(compute_dtype, a.dtype)
    return _layer_math.product(
        a.T if trans_a else a, b.T if trans_b else b, compute, _validate.subnormals(subnormals)
    )


def round_to_bfloat16(x, subnormals="kept"):
    """float32 ``x`` rounded to the nearest bfloat16 (ties to even; NaN kept, values past
    bfloat16's range become infinities) and back to float32, as the bfloat16 GEMM rounds
    its operands; ``subnormals="flushed"`` first reads a subnormal ``x`` as zero, as
    the AMX and AVX512-BF16 paths round (``vcvtne2ps2bf16``): a value just below 2**-126
    then gives zero, not 2**-126."""
    return _layer_math.round_to_bfloat16(x, _validate.subnormals(subnormals))


@_floats
def linear(x, w, b):
    """The dense forward pass ``x @ w + b`` (samples as rows)."""
    return x @ w + b


def _activation(name):
    """The NumPy twins of fastbp.ops's ``name`` and ``name_backward``, made from the
    activation class's NumPy maths, with the ops' signatures and conversions."""
    proto = activations.for_name(name)
    uses_input = _core.act_uses_input(proto.kind)
    first = "x" if uses_input else "y"
    forward_sig = activations.op_signature(proto, ("x",))
    backward_sig = activations.op_signature(proto, (first, "grad"))

    def forward(*args, **kwargs):
        bound = forward_sig.bind(*args, **kwargs)
        bound.apply_defaults()
        x, *settings = bound.arguments.values()
        layer = proto.with_act_settings(**dict(zip(proto.act_settings, settings)))
        (x,) = _validate.common_float(x=x)
        return layer._numpy_forward(x)

    def backward(*args, **kwargs):
        bound = backward_sig.bind(*args, **kwargs)
        bound.apply_defaults()
        first_arg, grad, *settings = bound.arguments.values()
        layer = proto.with_act_settings(**dict(zip(proto.act_settings, settings)))
        _validate.same_shape(**{first: first_arg, "grad": grad})
        first_arg, grad = _validate.common_float(**{first: first_arg, "grad": grad})
        x, y = (first_arg, None) if uses_input else (None, first_arg)
        return layer._numpy_backward(x, y, grad)

    forward.__name__, backward.__name__ = name, name + "_backward"
    forward.__signature__, backward.__signature__ = forward_sig, backward_sig
    return forward, backward


for _name in _names.ACTIVATIONS:
    globals()[_name], globals()[_name + "_backward"] = _activation(_name)
del _name


@_floats
def softmax(x):
    """Row-wise softmax around the row maximum."""
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _reduce(total, count, reduction):
    return float(total / count) if reduction == "mean" else float(total)


def _mse_terms(y, t):
    d = (y - t).astype(np.float64)
    return d * d


@_loss_args(labels_allowed=False)
def mse(y, t, reduction="mean"):
    """``sum((y - t)**2)``, divided by the number of elements for ``"mean"``; the
    difference is taken in the inputs' dtype and squared in float64, as the kernel does,
    so float32 errors of 1e30 neither overflow nor 1e-30 underflow."""
    return _reduce(np.sum(_mse_terms(y, t)), y.size, reduction)


@_loss_args(labels_allowed=False)
def mse_backward(y, t, reduction="mean"):
    return 2 * (y - t) / (y.size if reduction == "mean" else 1)


def _log_softmax(x):
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _target_rows(target, shape, dtype):
    """Probability rows for a target of class labels (N,) or of rows (N, C)."""
    if target.ndim == 1:
        rows = np.zeros(shape, dtype=dtype)
        rows[np.arange(shape[0]), target] = 1
        return rows
    return target


def _softmax_cross_entropy_terms(logits, target):
    t = _target_rows(target, logits.shape, logits.dtype)
    return -(t * _log_softmax(logits.astype(np.float64)))


@_loss_args(labels_allowed=True)
def softmax_cross_entropy(logits, target, reduction="mean"):
    """``-sum(t * log_softmax(logits))``, divided by the number of rows for ``"mean"``."""
    total = np.sum(_softmax_cross_entropy_terms(logits, target))
    return _reduce(total, logits.shape[0], reduction)


@_loss_args(labels_allowed=True)
def softmax_cross_entropy_backward(logits, target, reduction="mean"):
    t = _target_rows(target, logits.shape, logits.dtype)
    g = softmax(logits) * t.sum(axis=1, keepdims=True) - t
    return g / (logits.shape[0] if reduction == "mean" else 1)


def _bce_with_logits_terms(logits, target):
    x = logits.astype(np.float64)
    return np.maximum(x, 0) - x * target + np.log1p(np.exp(-np.abs(x)))


@_loss_args(labels_allowed=False)
def bce_with_logits(logits, target, reduction="mean"):
    """Binary cross-entropy of ``sigmoid(logits)``, as ``max(x,0) - x*t + log1p(exp(-|x|))``."""
    return _reduce(np.sum(_bce_with_logits_terms(logits, target)), logits.size, reduction)


@_loss_args(labels_allowed=False)
def bce_with_logits_backward(logits, target, reduction="mean"):
    return (activations._sigmoid(logits) - target) / (logits.size if reduction == "mean" else 1)


def _l1_terms(y, t):
    return np.abs((y - t).astype(np.float64))


@_loss_args(labels_allowed=False)
def l1(y, t, reduction="mean"):
    """``sum(|y - t|)``, divided by the number of elements for ``"mean"``."""
    return _reduce(np.sum(_l1_terms(y, t)), y.size, reduction)


@_loss_args(labels_allowed=False)
def l1_backward(y, t, reduction="mean"):
    return np.sign(y - t) / (y.size if reduction == "mean" else 1)


def _huber_terms(y, t, delta=1.0):
    d = (y - t).astype(np.float64)
    a = np.abs(d)
    return np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))


def _huber_args(fn):
    """Check (y, target, delta, reduction) as fastbp.ops.huber does."""

    @functools.wraps(fn)
    def checked(y, target, delta=1.0, reduction="mean"):
        delta = _validate.real("delta", delta, strict=True)
        return fn(*_validate.loss_inputs(y, target, reduction, False), delta, reduction)

    return checked


@_huber_args
def huber(y, t, delta=1.0, reduction="mean"):
    """``0.5 d**2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``, ``d = y - t``,
    divided by the number of elements for ``"mean"``."""
    return _reduce(np.sum(_huber_terms(y, t, delta)), y.size, reduction)


@_huber_args
def huber_backward(y, t, delta=1.0, reduction="mean"):
    d = y - t
    return np.clip(d, -delta, delta).astype(y.dtype) / (y.size if reduction == "mean" else 1)


def _poisson_nll_terms(y, t, log_input=True, full=False, eps=1e-8):
    y, t = y.astype(np.float64), t.astype(np.float64)
    terms = np.exp(y) - t * y if log_input else y - t * np.log(y + eps)
    if full:  # Stirling's log(t!) where t > 1 (1 elsewhere keeps the unused logs finite)
        big = np.where(t > 1, t, 1.0)
        terms = terms + np.where(t > 1, big * np.log(big) - big + 0.5 * np.log(2 * np.pi * big), 0)
    return terms


def _poisson_nll_args(fn):
    """Check (y, target, log_input, full, eps, reduction) as fastbp.ops.poisson_nll does."""

    @functools.wraps(fn)
    def checked(y, target, log_input=True, full=False, eps=1e-8, reduction="mean"):
        loss = losses.PoissonNLLLoss(log_input, full, eps, reduction)
        return fn(
            *_validate.loss_inputs(y, target, reduction, False),
            loss.log_input,
            loss.full,
            loss.eps,
            reduction,
        )

    return checked


@_poisson_nll_args
def poisson_nll(y, t, log_input=True, full=False, eps=1e-8, reduction="mean"):
    """``exp(y) - t y`` (``log_input``), else ``y - t log(y + eps)``, plus Stirling's
    ``t log t - t + 0.5 log(2 pi t)`` where ``t > 1`` when ``full``; divided by the number
    of elements for ``"mean"``."""
    return _reduce(np.sum(_poisson_nll_terms(y, t, log_input, full, eps)), y.size, reduction)


@_poisson_nll_args
def poisson_nll_backward(y, t, log_input=True, full=False, eps=1e-8, reduction="mean"):
    grad = np.exp(y) - t if log_input else 1 - t / (y + y.dtype.type(eps))
    return grad.astype(y.dtype) / (y.size if reduction == "mean" else 1)


# The optimizers' NumPy twins: step(param, grad, states, hyper, step), ``hyper`` in the
# core's order (common/optim_math.hpp), already checked by the optimizer's class.


def _sgd(param, grad, states, hyper, step):
    lr, momentum, dampening, weight_decay, nesterov = hyper
    (velocity,) = states
    d = grad + weight_decay * param
    if momentum != 0:
        v = d if step == 1 else momentum * velocity + (1 - dampening) * d
        velocity[...] = v
        d = d + momentum * v if nesterov else v
    param -= lr * d


def _adam(param, grad, states, hyper, step):
    lr, beta1, beta2, eps, weight_decay, decoupled = hyper
    exp_avg, exp_avg_sq = states
    if decoupled:
        param *= 1 - lr * weight_decay
    else:
        grad = grad + weight_decay * param
    exp_avg[...] = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    denom = np.sqrt(exp_avg_sq) / np.sqrt(1 - beta2**step) + eps
    param -= lr / (1 - beta1**step) * exp_avg / denom


def _rmsprop(param, grad, states, hyper, step):
    lr, alpha, eps, weight_decay, momentum, centered = hyper
    square_avg, momentum_buffer, grad_avg = states
    grad = grad + weight_decay * param
    square_avg[...] = alpha * square_avg + (1 - alpha) * grad * grad
    if centered:
        w = 1 - alpha  # torch.lerp's two-sided formula
        grad_avg[...] = (
            grad_avg + w * (grad - grad_avg) if w < 0.5 else grad - (grad - grad_avg) * (1 - w)
        )
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = np.sqrt(square_avg) + eps
    if momentum > 0:
        momentum_buffer[...] = momentum * momentum_buffer + grad / avg
        param -= lr * momentum_buffer
    else:
        param -= lr * (grad / avg)


def _adagrad(param, grad, states, hyper, step):
    lr, lr_decay, weight_decay, eps = hyper
    (state_sum,) = states
    grad = grad + weight_decay * param
    state_sum += grad * grad
    param -= lr / (1 + (step - 1) * lr_decay) * (grad / (np.sqrt(state_sum) + eps))


def _adadelta(param, grad, states, hyper, step):
    lr, rho, eps, weight_decay = hyper
    square_avg, acc_delta = states
    grad = grad + weight_decay * param
    square_avg[...] = rho * square_avg + (1 - rho) * grad * grad
    delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * grad
    acc_delta[...] = rho * acc_delta + (1 - rho) * delta * delta
    param -= lr * delta


#: ``_core.Optimizer`` member -> its twin; a missing optimizer fails the import.
OPTIMIZER_STEPS = {
    kind: globals()["_" + name.lower()] for name, kind in _core.Optimizer.__members__.items()
}


def _optimizer_twin(kind, hyper, param, grad, states, step):
    OPTIMIZER_STEPS[kind](param, grad, states, hyper, step)


# One <name>_step function per optimizer class, as fastbp.ops has them.
for _name in optim.CLASSES:
    _fn = optim.step_function(getattr(optim, _name), _optimizer_twin, "The NumPy twin of")
    globals()[_fn.__name__] = _fn
del _name, _fn


def clip_grad_norm(grad, max_norm):
    """torch.nn.utils.clip_grad_norm_ of one array in place; returns the norm before. A
    norm that is not finite is returned and ``grad`` left as it is."""
    grad = _validate.update_buffers(grad, grad, {})
    max_norm = _validate.real("max_norm", max_norm, strict=True)
    with np.errstate(over="ignore"):
        total = float(np.sqrt(np.sum(grad.astype(np.float64) ** 2)))
    coef = max_norm / (total + 1e-6)
    if np.isfinite(total) and coef < 1:
        grad *= grad.dtype.type(coef)
    return total


# name -> (forward, backward) for every activation and loss the core has: a missing twin
# fails the import.
ACTIVATIONS = {
    name: (globals()[name], globals()[name + "_backward"]) for name in _names.ACTIVATIONS
}
LOSSES = {name: (globals()[name], globals()[name + "_backward"]) for name in _names.LOSSES}
# name -> its per-element terms (float64, the shape of the outputs), which sum to its loss
LOSS_TERMS = {name: globals()[f"_{name}_terms"] for name in _names.LOSSES}


def loss_with_settings(name, settings):
    """``(value, backward, terms)`` of the loss ``name``, the first two called as
    ``f(y, t, reduction)`` and terms as ``f(y, t)``, with the loss's ``settings`` (its
    class's :attr:`~fastbp.Loss.settings`, such as Huber's delta) bound."""
    value, backward = LOSSES[name]
    terms = LOSS_TERMS[name]
    return (
        lambda y, t, r: value(y, t, reduction=r, **settings),
        lambda y, t, r: backward(y, t, reduction=r, **settings),
        lambda y, t: terms(y, t, **settings),
    )


def weighted_loss(name, y, t, weights, reduction, **settings):
    """``(loss, dL/dy)`` of the loss ``name`` (with its ``settings``) with one weight per
    row, as the kernels define it: each row's terms and gradient times its weight, over
    the unweighted divisor (Keras's ``sum(w * loss) / N``); a row of weight 0 adds
    exactly 0 to both."""
    _, backward, row_terms = loss_with_settings(name, settings)
    w = weights.reshape(-1, 1)
    with np.errstate(invalid="ignore"):
        terms = np.where(w != 0, w * row_terms(y, t), 0.0)
        grad = np.where(w != 0, w * backward(y, t, reduction), 0).astype(y.dtype)
    divisor = y.shape[0] if name == "softmax_cross_entropy" else y.size
    return _reduce(np.sum(terms), divisor, reduction), grad


def layer_norm(x, weight, bias, eps=1e-5):
    """Each row of x normalised by its mean and biased variance, ``* weight + bias``."""
    x, weight, bias, eps = _validate.norm_inputs(x, weight, bias, "bias", eps)
    xhat, _ = _layer_math.normalize(x, 1, eps)
    return _layer_math.affine(xhat, weight, bias, x.dtype)


def layer_norm_backward(x, weight, grad, eps=1e-5):
    """``(dx, dweight, dbias)`` of :func:`layer_norm`."""
    x, weight, grad, eps = _validate.norm_inputs(x, weight, grad, "grad", eps)
    xhat, rstd = _layer_math.normalize(x, 1, eps)
    return _layer_math.normalize_backward(grad, xhat, rstd, weight, 1)


def batch_norm(x, weight, bias, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Each column of x normalised by the batch's statistics (training; the running ones
    updated in place) or by the running statistics (inference), ``* weight + bias``."""
    x, weight, bias, eps = _validate.norm_inputs(x, weight, bias, "bias", eps)
    training = bool(training)
    momentum = _validate.momentum_fraction(momentum)
    _validate.running_stats(x, running_mean, running_var, writeable=training)
    if training:
        _validate.batch_rows(x)
        xhat, _ = _layer_math.normalize(x, 0, eps)
        _layer_math.update_running_stats(x, running_mean, running_var, momentum)
    else:
        xhat, _ = _layer_math.running_normalize(x, running_mean, running_var, eps)
    return _layer_math.affine(xhat, weight, bias, x.dtype)


def batch_norm_backward(x, weight, grad, eps=1e-5):
    """``(dx, dweight, dbias)`` of :func:`batch_norm` in training."""
    x, weight, grad, eps = _validate.norm_inputs(x, weight, grad, "grad", eps)
    _validate.batch_rows(x)
    xhat, rstd = _layer_math.normalize(x, 0, eps)
    return _layer_math.normalize_backward(grad, xhat, rstd, weight, 0)


def dropout(x, p, key):
    """Elements kept where ``uniform(key, index) >= p``, scaled by ``1 / (1 - p)``."""
    (x,) = _validate.common_float(x=x)
    return _layer_math.dropout(x, _validate.dropout_p(p), _validate.uint64("key", key))


def dropout_backward(grad, p, key):
    """``grad`` masked and scaled as :func:`dropout` with the same ``p`` and ``key``."""
    (grad,) = _validate.common_float(grad=grad)
    return _layer_math.dropout(grad, _validate.dropout_p(p), _validate.uint64("key", key))


def dropout_key(seed, layer, pass_index):
    """The dropout key of a layer in one forward pass, as the C++ network derives it."""
    return _layer_math.dropout_key(
        _validate.uint64("seed", seed),
        _validate.uint64("layer", layer),
        _validate.uint64("pass_index", pass_index),
    )


class ReferenceNetwork:
    """The network maths in NumPy, with the interface of ``fastbp._core.Network32/64``:
    each layer's own :meth:`~fastbp.layers.Layer.forward_numpy` and
    :meth:`~fastbp.layers.Layer.backward_numpy`, chained as the C++ loop chains its units.

    Parameters and state live in flat arrays laid out as the C++ network lays them out:
    each layer's tensors in order, every ``param_shapes()`` entry in order. Calls are
    serialised by a lock, as the C++ network serialises them.
    """

    def __init__(self, layers, specs, loss, dtype, seed=0, compute=None):
        self._layers = list(layers)
        self.compute = compute  # None, or "bfloat16": the Dense products' arithmetic
        self.layout, n_params, n_state = [], 0, 0
        for layer in self._layers:
            params, state = [], []
            for name, shape in layer.param_shapes().items():
                params.append((name, n_params, tuple(shape)))
                n_params += int(np.prod(shape))
            for name, value in layer.state_init(dtype).items():
                state.append((name, n_state, value.shape))
                n_state += value.size
            self.layout.append((params, state))
        self.params = np.zeros(n_params, dtype=dtype)
        self.grads = np.zeros(n_params, dtype=dtype)
        self.state = np.zeros(n_state, dtype=dtype)
        self.n_params, self.n_state = n_params, n_state
        self.in_features, self.out_features = specs[0].inputs, specs[-1].outputs
        self._loss_name, self._loss_settings = loss.name, loss.settings
        self._loss = LOSSES[loss.name][0]
        self._loss_value, self._loss_grad, _ = loss_with_settings(loss.name, loss.settings)
        self._reduction = loss.reduction
        self._seed = seed
        self.passes = 0  # training forward passes, as the C++ network counts them
        self._last_loss = 0.0  # of the pass that filled grads, checked before an update
        self.updates = 0  # optimizer updates applied, as the C++ network's tally
        # Every call under it, as the C++ network's calls run under its mutex: a
        # snapshot then never sees half a step.
        self._lock = threading.RLock()

    def _compute_of(self, layer) -> dict:
        """The compute-dtype argument of ``layer``'s NumPy maths: Dense layers take it."""
        return {"compute": self.compute} if layer.kind == _core.LayerKind.Dense else {}

    def sync_host(self):
        """Nothing to do: the arrays are the network (the GPU network's interface)."""

    @_locks.serialised("_lock")
    def snapshot(self):
        """A copy of the flat parameters then the flat state, between two calls."""
        return np.concatenate([self.params, self.state])

    def after_fork_in_child(self):
        """Free the lock a thread of the parent held at the fork; in a forked child only."""
        self._lock = _locks.free_in_child(self._lock)

    def _views(self, flat, slices):
        return {
            name: flat[offset : offset + int(np.prod(shape))].reshape(shape)
            for name, offset, shape in slices
        }

    def _forward(self, x, training):
        """The network's output and every layer's cache, the first layer's first."""
        caches = []
        for i, (layer, (params, state)) in enumerate(zip(self._layers, self.layout)):
            x, cache = layer.forward_numpy(
                x,
                self._views(self.params, params),
                self._views(self.state, state),
                training,
                dropout_key(self._seed, i, self.passes),
                **self._compute_of(layer),
            )
            caches.append(cache)
        if training:
            self.passes += 1
        return x, caches

    def check(self, x, t=None):
        """The checks fastbp._core makes on a batch, with the same errors: TypeError for
        anything but arrays of the exact dtype, ValueError for shapes and values."""
        n_in, n_out = self.in_features, self.out_features
        for name, arr in (("X", x), ("target", t)):
            if arr is None:
                continue
            labels = self._loss is softmax_cross_entropy and getattr(arr, "ndim", 0) == 1
            dtype = np.int64 if labels else self.params.dtype
            if not isinstance(arr, np.ndarray) or arr.dtype != dtype:
                raise TypeError(
                    f"{name} must be an array of dtype {np.dtype(dtype)}, got "
                    f"{getattr(arr, 'dtype', type(arr).__name__)}"
                )
        if x.ndim != 2 or x.shape[1] != n_in:
            raise ValueError(f"X must have shape (*, {n_in}), got {x.shape}")
        if x.shape[0] == 0:
            raise ValueError(f"X is an empty batch, shape {x.shape}")
        _validate.finite("X", x)
        if t is None:
            return
        m = x.shape[0]
        if t.ndim == 1 and self._loss is softmax_cross_entropy:
            if t.shape != (m,):
                raise ValueError(f"class labels must have shape ({m},), got {t.shape}")
            _validate.label_range(t, n_out)
            return
        if t.shape != (m, n_out) and not (n_out == 1 and t.shape == (m,)):
            raise ValueError(f"target must have shape ({m}, {n_out}), got {t.shape}")
        _validate.finite("target", t)
        if self._loss is bce_with_logits:
            _validate.probabilities("BCEWithLogitsLoss targets", t)
        elif self._loss is poisson_nll:
            _validate.nonnegative("PoissonNLLLoss targets", t)

    @_locks.serialised("_lock")
    def forward(self, x):
        self.check(x)
        return self._forward(x, False)[0]

    def _check_training_rows(self, m):
        """The C++ network's refusal, before anything changes, of a training batch too
        small for batch statistics."""
        if m < 2 and any(layer.kind == _core.LayerKind.BatchNorm for layer in self._layers):
            raise ValueError(
                f"BatchNorm needs batches of at least 2 rows in training, got a batch of {m}"
            )

    @_locks.serialised("_lock")
    def loss(self, x, t, training=False):
        self.check(x, t)
        if training:
            self._check_training_rows(x.shape[0])
        return self._loss_value(self._forward(x, training)[0], t, self._reduction)

    @_locks.serialised("_lock")
    def backward(self, x, t, sample_weight=None):
        """Fills the gradients and returns the loss, finite or not, as the C++ network:
        overflow shows in the values (and is refused by an update), not as warnings."""
        self.check(x, t)
        weights = self._row_weights(sample_weight, x.shape[0])
        self._check_training_rows(x.shape[0])
        return self._backward(x, t, weights)

    def _backward(self, x, t, weights=None):
        """:meth:`backward` of a checked batch, its rows weighted by ``weights`` if given."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            y, caches = self._forward(x, True)
            if weights is None:
                value = self._loss_value(y, t, self._reduction)
                delta = self._loss_grad(y, t, self._reduction)
            else:
                value, delta = weighted_loss(
                    self._loss_name, y, t, weights, self._reduction, **self._loss_settings
                )
            for i in range(len(self._layers) - 1, -1, -1):
                params = self._views(self.params, self.layout[i][0])
                delta, grads = self._layers[i].backward_numpy(
                    delta, caches[i], params, **self._compute_of(self._layers[i])
                )
                for name, view in self._views(self.grads, self.layout[i][0]).items():
                    view[...] = grads[name]
        self._last_loss = value
        return value

    def divergence_reason(self, value, bad):
        """nn::divergence_reason's words for loss ``value`` and the first non-finite
        gradient at flat index ``bad`` (-1: none)."""
        if not np.isfinite(value):
            return f"the loss is {value:g}"
        for i, (params, _) in enumerate(self.layout):
            for name, offset, shape in params:
                if offset <= bad < offset + int(np.prod(shape)):
                    kind = self._layers[i].kind
                    same = [j for j, layer in enumerate(self._layers) if layer.kind == kind]
                    return (
                        f"a gradient is NaN or inf (d{name} of {kind.name} layer "
                        f"{same.index(i) + 1} of {len(same)}; loss {value:g})"
                    )
        raise ValueError(f"index {bad} is in no parameter slice")

    def _divergence_reason(self):
        """Why the last backward pass must not update, or None when its loss and every
        gradient are finite."""
        bad = np.flatnonzero(~np.isfinite(self.grads))
        if np.isfinite(self._last_loss) and not bad.size:
            return None
        return self.divergence_reason(self._last_loss, int(bad[0]) if bad.size else -1)

    def _update(self, update, step):
        """``update()`` unless the last backward pass diverged: then, like the C++
        network, FloatingPointError with ``step`` (of this call) and ``reason``. update
        returns the gradient norm it clipped by (0.0: none), not finite when it changed
        nothing."""
        reason = self._divergence_reason()
        if reason is None:
            norm = update()
            if np.isfinite(norm):
                self.updates += 1
                return
            reason = f"the gradient norm is {norm:g}"
        error = FloatingPointError(f"{reason} at step {step + 1} of this call")
        error.step, error.reason = step, reason
        raise error

    def _step(self, x, t, update, step, weights=None):
        """Backward and ``update()`` of one checked batch (see :meth:`_update`)."""
        if t.ndim == 1 and self._loss is not softmax_cross_entropy:
            t = t.reshape(-1, 1)
        self._check_training_rows(x.shape[0])
        value = self._backward(x, t, weights)
        self._update(update, step)
        return value

    def _epoch(self, x, t, order, batch_size, update_for, loss_sum, sample_weight, interrupt_mark):
        """A step with ``update_for(i)`` for batch i of the rows in ``order``; ``loss_sum``
        plus each batch's rows times its loss, added in batch order; stopped by a SIGINT
        before a batch (KeyboardInterrupt with ``step``), as the C++ network."""
        self.check(x, t)
        rows = len(order)
        self._check_training_rows(min(batch_size, rows))
        self._check_training_rows(rows - (rows - 1) // batch_size * batch_size)
        weights = self._row_weights(sample_weight, x.shape[0])
        for i, start in enumerate(range(0, len(order), batch_size)):
            if interrupt_mark >= 0 and _core.sigint_count() != interrupt_mark:
                error = KeyboardInterrupt(f"interrupted after step {i} of this call")
                error.step = i
                raise error
            rows = order[start : start + batch_size]
            loss_sum += len(rows) * self._step(
                x[rows], t[rows], update_for(i), i, None if weights is None else weights[rows]
            )
        return loss_sum

    def _row_weights(self, weights, rows):
        """The checks fastbp._core makes on sample weights, with the same errors."""
        if weights is None:
            return None
        if not isinstance(weights, np.ndarray) or weights.dtype != self.params.dtype:
            raise TypeError(
                f"sample_weight must have dtype {self.params.dtype}, got "
                f"{getattr(weights, 'dtype', type(weights).__name__)}"
            )
        return _validate.row_weights(weights, rows)

    def _optimizer(self, spec, states, step):
        """The update number ``step`` (from 1) that ``spec`` (a ``_core.UpdateSpec``, whose
        hyper-parameters the core checked) describes, clipping first when its
        ``max_grad_norm`` is not 0; the states checked as the core checks them, before
        anything changes."""
        kind, hyper, max_grad_norm = spec.kind, spec.hyper, spec.max_grad_norm
        names = optim.STATE_TYPES[kind].names
        if len(states) != len(names):
            raise ValueError(f"this optimizer takes {len(names)} state arrays, got {len(states)}")
        for name, array in zip(names, states):
            if (
                not isinstance(array, np.ndarray)
                or array.dtype != self.params.dtype
                or array.shape != (self.n_params,)
            ):
                raise ValueError(
                    f"{name} must be a {self.params.dtype} array of shape ({self.n_params},)"
                )

        def update():
            norm = 0.0
            if max_grad_norm != 0:
                norm = clip_grad_norm(self.grads, max_grad_norm)
                if not np.isfinite(norm):
                    return norm
            OPTIMIZER_STEPS[kind](self.params, self.grads, states, hyper, step)
            return norm

        return update

    @_locks.serialised("_lock")
    def step(self, spec, states, steps):
        self._update(self._optimizer(spec, states, steps + 1), 0)

    @_locks.serialised("_lock")
    def train_step(self, x, t, spec, states, steps):
        self.check(x, t)
        return self._step(x, t, self._optimizer(spec, states, steps + 1), 0)

    @_locks.serialised("_lock")
    def train_epoch(
        self,
        x,
        t,
        order,
        batch_size,
        spec,
        states,
        steps,
        loss_sum=0.0,
        sample_weight=None,
        interrupt_mark=-1,
    ):
        self._optimizer(spec, states, steps + 1)  # its checks first
        return self._epoch(
            x,
            t,
            order,
            batch_size,
            lambda i: self._optimizer(spec, states, steps + i + 1),
            loss_sum,
            sample_weight,
            interrupt_mark,
        )
