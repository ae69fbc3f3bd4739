"""The NumPy twin of every :mod:`fastbp.ops` kernel, with the same signatures and
semantics, written for clarity: one formula per function."""

from __future__ import annotations

import functools

import numpy as np

from .. import _core, _names, _validate
from ..nn import _layer_math, losses
from ..nn.activations import ELU, GELU, Identity, LeakyReLU, ReLU, Sigmoid, SiLU, Softplus, Tanh
from ..optim import optimizers
from ..optim.optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, RMSprop, apply_step

__all__ = [
    "matmul",
    "round_to_bfloat16",
    "linear",
    *_names.ACTIVATIONS,
    *(name + "_backward" for name in _names.ACTIVATIONS),
    "softmax",
    *_names.LOSSES,
    *(name + "_backward" for name in _names.LOSSES),
    *(name.lower() + "_step" for name in optimizers.CLASSES),
    "clip_grad_norm",
    "OPTIMIZER_STEPS",
    "layer_norm",
    "layer_norm_backward",
    "rms_norm",
    "rms_norm_backward",
    "batch_norm",
    "batch_norm_backward",
    "dropout",
    "dropout_backward",
    "dropout_key",
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


def _as_checked(fn, checked):
    """``checked``, which checks the ops' arguments and calls ``fn``, under ``fn``'s name
    and docstring, its own parameters (the ops' names) its signature."""
    functools.update_wrapper(checked, fn)
    del checked.__wrapped__
    return checked


def _loss_args(labels_allowed):
    """Check and convert (y, target, reduction) as fastbp.ops's losses do."""

    def wrap(fn):
        def checked(y, target, reduction="mean"):
            return fn(*_validate.loss_inputs(y, target, reduction, labels_allowed), reduction)

        return _as_checked(fn, checked)

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


def _activation(layer, x):
    (x,) = _validate.common_float(x=x)
    return layer.forward_numpy(x, {}, {}, False, None)[0]


def _activation_backward(layer, grad, **arg):
    """``grad * f'(x)`` of ``layer`` from ``arg``: ``y=`` its output or ``x=`` its input,
    as the op takes it."""
    _validate.same_shape(**arg, grad=grad)
    first, grad = _validate.common_float(**arg, grad=grad)
    x, y = (first, None) if "x" in arg else (None, first)
    return layer.backward_numpy(grad, (x, y), {})[0]  # an activation's cache is (x, y)


# The activations' twins: each class's NumPy maths, with the ops' signatures and checks.


def identity(x):
    return _activation(Identity(), x)


def identity_backward(y, grad):
    return _activation_backward(Identity(), grad, y=y)


def sigmoid(x):
    return _activation(Sigmoid(), x)


def sigmoid_backward(y, grad):
    return _activation_backward(Sigmoid(), grad, y=y)


def relu(x):
    return _activation(ReLU(), x)


def relu_backward(y, grad):
    return _activation_backward(ReLU(), grad, y=y)


def tanh(x):
    return _activation(Tanh(), x)


def tanh_backward(y, grad):
    return _activation_backward(Tanh(), grad, y=y)


def leaky_relu(x, negative_slope=0.01):
    return _activation(LeakyReLU(negative_slope), x)


def leaky_relu_backward(x, grad, negative_slope=0.01):
    return _activation_backward(LeakyReLU(negative_slope), grad, x=x)


def elu(x, alpha=1.0):
    return _activation(ELU(alpha), x)


def elu_backward(x, grad, alpha=1.0):
    return _activation_backward(ELU(alpha), grad, x=x)


def gelu(x):
    return _activation(GELU(), x)


def gelu_backward(x, grad):
    return _activation_backward(GELU(), grad, x=x)


def gelu_tanh(x):
    return _activation(GELU("tanh"), x)


def gelu_tanh_backward(x, grad):
    return _activation_backward(GELU("tanh"), grad, x=x)


def silu(x):
    return _activation(SiLU(), x)


def silu_backward(x, grad):
    return _activation_backward(SiLU(), grad, x=x)


def softplus(x, beta=1.0, threshold=20.0):
    return _activation(Softplus(beta, threshold), x)


def softplus_backward(x, grad, beta=1.0, threshold=20.0):
    return _activation_backward(Softplus(beta, threshold), grad, x=x)


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
    return (sigmoid(logits) - target) / (logits.size if reduction == "mean" else 1)


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

    def checked(y, target, delta=1.0, reduction="mean"):
        delta = _validate.real("delta", delta, strict=True)
        return fn(*_validate.loss_inputs(y, target, reduction, False), delta, reduction)

    return _as_checked(fn, checked)


@_huber_args
def huber(y, t, delta=1.0, reduction="mean"):
    """``0.5 d**2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``, ``d = y - t``,
    divided by the number of elements for ``"mean"``."""
    return _reduce(np.sum(_huber_terms(y, t, delta)), y.size, reduction)


@_huber_args
def huber_backward(y, t, delta=1.0, reduction="mean"):
    d = y - t
    return np.clip(d, -delta, delta).astype(y.dtype) / (y.size if reduction == "mean" else 1)


def _smooth_l1_terms(y, t, beta=1.0):
    d = (y - t).astype(np.float64)
    a = np.abs(d)
    if beta == 0:
        return a
    return np.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta)


def _smooth_l1_args(fn):
    """Check (y, target, beta, reduction) as fastbp.ops.smooth_l1 does."""

    def checked(y, target, beta=1.0, reduction="mean"):
        beta = _validate.real("beta", beta)
        return fn(*_validate.loss_inputs(y, target, reduction, False), beta, reduction)

    return _as_checked(fn, checked)


@_smooth_l1_args
def smooth_l1(y, t, beta=1.0, reduction="mean"):
    """``0.5 d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta``, ``d = y - t``
    (``|d|`` for ``beta = 0``), divided by the number of elements for ``"mean"``."""
    return _reduce(np.sum(_smooth_l1_terms(y, t, beta)), y.size, reduction)


@_smooth_l1_args
def smooth_l1_backward(y, t, beta=1.0, reduction="mean"):
    """``sign(d)`` where ``|d| >= beta``, else ``d / beta`` (``sign(d)`` for ``beta = 0``),
    times the reduction's scale first, as the kernel rounds it."""
    d = y - t
    scale = y.dtype.type(1) / y.dtype.type(y.size if reduction == "mean" else 1)
    if beta == 0:
        return (np.sign(d) * scale).astype(y.dtype)
    beta = y.dtype.type(beta)
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = scale * d / beta
    return np.where(d < -beta, -scale, np.where(d > beta, scale, inside)).astype(y.dtype)


def _poisson_nll_terms(y, t, log_input=True, full=False, eps=1e-8):
    y, t = y.astype(np.float64), t.astype(np.float64)
    terms = np.exp(y) - t * y if log_input else y - t * np.log(y + eps)
    if full:  # Stirling's log(t!) where t > 1 (1 elsewhere keeps the unused logs finite)
        big = np.where(t > 1, t, 1.0)
        terms = terms + np.where(t > 1, big * np.log(big) - big + 0.5 * np.log(2 * np.pi * big), 0)
    return terms


def _poisson_nll_args(fn):
    """Check (y, target, log_input, full, eps, reduction) as fastbp.ops.poisson_nll does."""

    def checked(y, target, log_input=True, full=False, eps=1e-8, reduction="mean"):
        loss = losses.PoissonNLLLoss(log_input, full, eps, reduction)
        return fn(
            *_validate.loss_inputs(y, target, reduction, False),
            loss.log_input,
            loss.full,
            loss.eps,
            reduction,
        )

    return _as_checked(fn, checked)


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


# One <name>_step twin per optimizer class, as fastbp.ops has them.


def sgd_step(
    param,
    grad,
    velocity,
    *,
    lr: float = 0.01,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    step: int = 1,
) -> None:
    """The NumPy twin of the ``torch.optim.SGD`` update of ``param`` and ``velocity`` in
    place, with :class:`fastbp.SGD`'s hyper-parameters (see
    :func:`~fastbp.optim.optimizers.apply_step`)."""
    optimizer = SGD(
        lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay
    )
    apply_step(optimizer, _optimizer_twin, param, grad, {"velocity": velocity}, step)


def adam_step(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    *,
    lr: float = 0.001,
    betas: tuple = (0.9, 0.999),
    eps: float = 1e-08,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    step: int = 1,
) -> None:
    """The NumPy twin of the ``torch.optim.Adam`` update of ``param``, ``exp_avg`` and
    ``exp_avg_sq`` in place, with :class:`fastbp.Adam`'s hyper-parameters (see
    :func:`~fastbp.optim.optimizers.apply_step`)."""
    optimizer = Adam(
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
        decoupled_weight_decay=decoupled_weight_decay,
    )
    apply_step(
        optimizer,
        _optimizer_twin,
        param,
        grad,
        {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq},
        step,
    )


def adamw_step(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    *,
    lr: float = 0.001,
    betas: tuple = (0.9, 0.999),
    eps: float = 1e-08,
    weight_decay: float = 0.01,
    step: int = 1,
) -> None:
    """The NumPy twin of the ``torch.optim.AdamW`` update of ``param``, ``exp_avg`` and
    ``exp_avg_sq`` in place, with :class:`fastbp.AdamW`'s hyper-parameters (see
    :func:`~fastbp.optim.optimizers.apply_step`)."""
    optimizer = AdamW(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    apply_step(
        optimizer,
        _optimizer_twin,
        param,
        grad,
        {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq},
        step,
    )


def rmsprop_step(
    param,
    grad,
    square_avg,
    momentum_buffer,
    grad_avg,
    *,
    lr: float = 0.01,
    alpha: float = 0.99,
    eps: float = 1e-08,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    step: int = 1,
) -> None:
    """The NumPy twin of the ``torch.optim.RMSprop`` update of ``param``, ``square_avg``,
    ``momentum_buffer`` and ``grad_avg`` in place, with :class:`fastbp.RMSprop`'s hyper-
    parameters (see :func:`~fastbp.optim.optimizers.apply_step`)."""
    optimizer = RMSprop(
        lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered
    )
    apply_step(
        optimizer,
        _optimizer_twin,
        param,
        grad,
        {"square_avg": square_avg, "momentum_buffer": momentum_buffer, "grad_avg": grad_avg},
        step,
    )


def adagrad_step(
    param,
    grad,
    sum,
    *,
    lr: float = 0.01,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    eps: float = 1e-10,
    step: int = 1,
) -> None:
    """The NumPy twin of the ``torch.optim.Adagrad`` update of ``param`` and ``sum`` in
    place, with :class:`fastbp.Adagrad`'s hyper-parameters (see
    :func:`~fastbp.optim.optimizers.apply_step`)."""
    optimizer = Adagrad(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps)
    apply_step(optimizer, _optimizer_twin, param, grad, {"sum": sum}, step)


def adadelta_step(
    param,
    grad,
    square_avg,
    acc_delta,
    *,
    lr: float = 1.0,
    rho: float = 0.9,
    eps: float = 1e-06,
    weight_decay: float = 0.0,
    step: int = 1,
) -> None:
    """The NumPy twin of the ``torch.optim.Adadelta`` update of ``param``, ``square_avg``
    and ``acc_delta`` in place, with :class:`fastbp.Adadelta`'s hyper-parameters (see
    :func:`~fastbp.optim.optimizers.apply_step`)."""
    optimizer = Adadelta(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
    apply_step(
        optimizer,
        _optimizer_twin,
        param,
        grad,
        {"square_avg": square_avg, "acc_delta": acc_delta},
        step,
    )


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


def rms_norm(x, weight, eps=None):
    """Each row of x divided by its root mean square, ``* weight``; ``eps`` None: the
    machine epsilon of x's dtype."""
    x, weight, _, eps = _validate.norm_inputs(x, weight, None, "bias", eps, machine_eps=True)
    xhat, _ = _layer_math.normalize(x, 1, eps, centred=False)
    return _layer_math.affine(xhat, weight, None, x.dtype)


def rms_norm_backward(x, weight, grad, eps=None):
    """``(dx, dweight)`` of :func:`rms_norm`."""
    x, weight, grad, eps = _validate.norm_inputs(x, weight, grad, "grad", eps, machine_eps=True)
    xhat, rstd = _layer_math.normalize(x, 1, eps, centred=False)
    dx, dweight, _ = _layer_math.normalize_backward(grad, xhat, rstd, weight, 1, centred=False)
    return dx, dweight


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
