"""fastbp's C++ kernels on NumPy arrays, one function per kernel.

Each function has a pure-NumPy twin of the same name in :mod:`fastbp.reference`.
Inputs may be any array-like of real numbers; the result dtype follows NumPy's
promotion with float32 (float32 stays float32, float64 stays float64, integers
become float64, float16 becomes float32). Inputs are converted (copied) only when
they are not already C-contiguous in that dtype.
"""

from __future__ import annotations

import numpy as np

from . import _core, _names, _validate
from .nn import losses
from .nn.activations import (
    ELU,
    GELU,
    Activation,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    SiLU,
    Softplus,
    Tanh,
)
from .optim import optimizers
from .optim.optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, RMSprop, apply_step

# One forward and one backward function per activation of the core (see below).
__all__ = [
    "matmul",
    "linear",
    *_names.ACTIVATIONS,
    *(name + "_backward" for name in _names.ACTIVATIONS),
    "softmax",
    *_names.LOSSES,
    *(name + "_backward" for name in _names.LOSSES),
    *(name.lower() + "_step" for name in optimizers.CLASSES),
    "clip_grad_norm",
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


def matmul(
    a, b, trans_a: bool = False, trans_b: bool = False, compute_dtype: str | None = None
) -> np.ndarray:
    """``op(a) @ op(b)`` for 2-D arrays, ``op(x) = x.T`` when its flag is set; the
    transposes are read in place, never materialised. ``compute_dtype="bfloat16"``
    (float32 arrays only) rounds the operands to bfloat16 (to nearest, ties to even) as
    it packs them and sums the products in float32, on the bfloat16 path of
    ``fastbp.build_info()["bf16_gemm"]``; the result is float32. Below 2**-126 that
    path keeps subnormals or flushes them to zero, as
    ``fastbp.build_info()["bf16_subnormals"]`` says (``"kept"`` or ``"flushed"``)."""
    a, b = _validate.common_float(a=a, b=b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"matmul takes 2-D arrays, got shapes {a.shape} and {b.shape}")
    compute = _validate.compute_dtype(compute_dtype, a.dtype)
    return _core.matmul(a, b, bool(trans_a), bool(trans_b), _names.COMPUTE[compute])


def linear(x, w, b) -> np.ndarray:
    """The dense forward pass ``x @ w + b``: x (N, in), w (in, out), b (out,)."""
    x, w, b = _validate.common_float(x=x, w=w, b=b)
    if x.ndim != 2 or w.ndim != 2 or b.ndim != 1:
        raise ValueError(
            f"linear takes x (N, in), w (in, out), b (out,), got {x.shape}, {w.shape}, {b.shape}"
        )
    return _core.linear(x, w, b)


def _activation(layer: Activation, x) -> np.ndarray:
    (x,) = _validate.common_float(x=x)
    return _core.activation(layer.kind, x, *layer.act_args)


def _activation_backward(layer: Activation, grad, **arg) -> np.ndarray:
    """``grad * f'(x)`` of ``layer`` from ``arg``: ``y=`` its output, or ``x=`` its input
    for the activations whose f' the core computes from the input
    (``_core.act_uses_input``), where x then stands in for y as well."""
    _validate.same_shape(**arg, grad=grad)
    first, grad = _validate.common_float(**arg, grad=grad)
    x = first if "x" in arg else None
    return _core.activation_backward(layer.kind, first, grad, x, *layer.act_args)


# One forward and one backward op per activation of the core, with its class's settings.
# The backward op takes y = f(x) (as PyTorch's sigmoid_backward takes the output), or x
# where the core's f' reads the input.


def identity(x) -> np.ndarray:
    """Elementwise identity (``fastbp.Identity``)."""
    return _activation(Identity(), x)


def identity_backward(y, grad) -> np.ndarray:
    """``grad * f'(x)`` for identity, given its output ``y``."""
    return _activation_backward(Identity(), grad, y=y)


def sigmoid(x) -> np.ndarray:
    """Elementwise sigmoid (``fastbp.Sigmoid``)."""
    return _activation(Sigmoid(), x)


def sigmoid_backward(y, grad) -> np.ndarray:
    """``grad * f'(x)`` for sigmoid, given its output ``y``."""
    return _activation_backward(Sigmoid(), grad, y=y)


def relu(x) -> np.ndarray:
    """Elementwise relu (``fastbp.ReLU``)."""
    return _activation(ReLU(), x)


def relu_backward(y, grad) -> np.ndarray:
    """``grad * f'(x)`` for relu, given its output ``y``."""
    return _activation_backward(ReLU(), grad, y=y)


def tanh(x) -> np.ndarray:
    """Elementwise tanh (``fastbp.Tanh``)."""
    return _activation(Tanh(), x)


def tanh_backward(y, grad) -> np.ndarray:
    """``grad * f'(x)`` for tanh, given its output ``y``."""
    return _activation_backward(Tanh(), grad, y=y)


def leaky_relu(x, negative_slope: float = 0.01) -> np.ndarray:
    """Elementwise leaky_relu (``fastbp.LeakyReLU``)."""
    return _activation(LeakyReLU(negative_slope), x)


def leaky_relu_backward(x, grad, negative_slope: float = 0.01) -> np.ndarray:
    """``grad * f'(x)`` for leaky_relu, given its input ``x``."""
    return _activation_backward(LeakyReLU(negative_slope), grad, x=x)


def elu(x, alpha: float = 1.0) -> np.ndarray:
    """Elementwise elu (``fastbp.ELU``)."""
    return _activation(ELU(alpha), x)


def elu_backward(x, grad, alpha: float = 1.0) -> np.ndarray:
    """``grad * f'(x)`` for elu, given its input ``x``."""
    return _activation_backward(ELU(alpha), grad, x=x)


def gelu(x) -> np.ndarray:
    """Elementwise gelu (``fastbp.GELU``)."""
    return _activation(GELU(), x)


def gelu_backward(x, grad) -> np.ndarray:
    """``grad * f'(x)`` for gelu, given its input ``x``."""
    return _activation_backward(GELU(), grad, x=x)


def gelu_tanh(x) -> np.ndarray:
    """Elementwise gelu_tanh (``fastbp.GELU``)."""
    return _activation(GELU("tanh"), x)


def gelu_tanh_backward(x, grad) -> np.ndarray:
    """``grad * f'(x)`` for gelu_tanh, given its input ``x``."""
    return _activation_backward(GELU("tanh"), grad, x=x)


def silu(x) -> np.ndarray:
    """Elementwise silu (``fastbp.SiLU``)."""
    return _activation(SiLU(), x)


def silu_backward(x, grad) -> np.ndarray:
    """``grad * f'(x)`` for silu, given its input ``x``."""
    return _activation_backward(SiLU(), grad, x=x)


def softplus(x, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    """Elementwise softplus (``fastbp.Softplus``)."""
    return _activation(Softplus(beta, threshold), x)


def softplus_backward(x, grad, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    """``grad * f'(x)`` for softplus, given its input ``x``."""
    return _activation_backward(Softplus(beta, threshold), grad, x=x)


def softmax(x) -> np.ndarray:
    """Row-wise softmax of a 2-D array."""
    (x,) = _validate.common_float(x=x)
    if x.ndim != 2:
        raise ValueError(f"softmax takes a 2-D array, got shape {x.shape}")
    return _core.softmax(x)


def _loss_call(name, y, t, reduction, with_grad, params=()):
    y, t = _validate.loss_inputs(y, t, reduction, name == "softmax_cross_entropy")
    value, grad = _core.loss(
        _names.LOSSES[name], _names.REDUCTIONS[reduction], y, t, with_grad, params
    )
    return grad if with_grad else value


def mse(y, target, reduction: str = "mean") -> float:
    """Squared error; ``mean`` averages over all elements."""
    return _loss_call("mse", y, target, reduction, False)


def mse_backward(y, target, reduction: str = "mean") -> np.ndarray:
    """Gradient of mse with respect to its first argument."""
    return _loss_call("mse", y, target, reduction, True)


def softmax_cross_entropy(y, target, reduction: str = "mean") -> float:
    """Cross-entropy of softmax(logits) against class labels (N,) or (N, 1) (integers or
    floats of whole value) or probability rows (N, C); ``mean`` averages over samples."""
    return _loss_call("softmax_cross_entropy", y, target, reduction, False)


def softmax_cross_entropy_backward(y, target, reduction: str = "mean") -> np.ndarray:
    """Gradient of softmax_cross_entropy with respect to its first argument."""
    return _loss_call("softmax_cross_entropy", y, target, reduction, True)


def bce_with_logits(y, target, reduction: str = "mean") -> float:
    """Binary cross-entropy of sigmoid(logits); ``mean`` averages over all elements."""
    return _loss_call("bce_with_logits", y, target, reduction, False)


def bce_with_logits_backward(y, target, reduction: str = "mean") -> np.ndarray:
    """Gradient of bce_with_logits with respect to its first argument."""
    return _loss_call("bce_with_logits", y, target, reduction, True)


def l1(y, target, reduction: str = "mean") -> float:
    """Absolute error ``sum(|y - t|)``; ``mean`` averages over all elements. Its gradient
    is ``sign(y - t)``, 0 where y == t."""
    return _loss_call("l1", y, target, reduction, False)


def l1_backward(y, target, reduction: str = "mean") -> np.ndarray:
    """Gradient of l1 with respect to its first argument."""
    return _loss_call("l1", y, target, reduction, True)


def huber(y, target, delta: float = 1.0, reduction: str = "mean") -> float:
    """``torch.nn.HuberLoss``: ``0.5 * d**2`` where ``|d| < delta``, else
    ``delta * (|d| - 0.5 * delta)``, with ``d = y - t``; ``mean`` averages over all
    elements. ``delta``: finite, > 0."""
    delta = _validate.real("delta", delta, strict=True)
    return _loss_call("huber", y, target, reduction, False, (delta,))


def huber_backward(y, target, delta: float = 1.0, reduction: str = "mean") -> np.ndarray:
    """Gradient of huber with respect to its first argument: ``d`` clamped to
    ``[-delta, delta]``."""
    delta = _validate.real("delta", delta, strict=True)
    return _loss_call("huber", y, target, reduction, True, (delta,))


def smooth_l1(y, target, beta: float = 1.0, reduction: str = "mean") -> float:
    """``torch.nn.SmoothL1Loss``: ``0.5 * d**2 / beta`` where ``|d| < beta``, else
    ``|d| - 0.5 * beta``, with ``d = y - t`` (l1 for ``beta = 0``); ``mean`` averages over
    all elements. ``beta``: finite, >= 0."""
    beta = _validate.real("beta", beta)
    return _loss_call("smooth_l1", y, target, reduction, False, (beta,))


def smooth_l1_backward(y, target, beta: float = 1.0, reduction: str = "mean") -> np.ndarray:
    """Gradient of smooth_l1 with respect to its first argument: ``d / beta`` clamped to
    ``[-1, 1]`` (``sign(d)`` for ``beta = 0``)."""
    beta = _validate.real("beta", beta)
    return _loss_call("smooth_l1", y, target, reduction, True, (beta,))


def poisson_nll(
    y,
    target,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> float:
    """``torch.nn.PoissonNLLLoss``: ``exp(y) - t * y`` for log-rates ``y``
    (``log_input``), else ``y - t * log(y + eps)``; ``full`` adds Stirling's
    ``t * log(t) - t + 0.5 * log(2 * pi * t)`` where ``t > 1``; ``mean`` averages over all
    elements. Any target is taken, as PyTorch's (a network's must be >= 0)."""
    loss = losses.PoissonNLLLoss(log_input, full, eps, reduction)
    return _loss_call("poisson_nll", y, target, reduction, False, loss.core_params)


def poisson_nll_backward(
    y,
    target,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> np.ndarray:
    """Gradient of poisson_nll with respect to its first argument: ``exp(y) - t``, else
    ``1 - t / (y + eps)``."""
    loss = losses.PoissonNLLLoss(log_input, full, eps, reduction)
    return _loss_call("poisson_nll", y, target, reduction, True, loss.core_params)


# One <name>_step op per optimizer class, with its hyper-parameters.


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
    """The core's ``torch.optim.SGD`` update of ``param`` and ``velocity`` in place, with
    :class:`fastbp.SGD`'s hyper-parameters (see
    :func:`~fastbp.optim.optimizers.apply_step`)."""
    optimizer = SGD(
        lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay
    )
    apply_step(optimizer, _core.optimizer_step, param, grad, {"velocity": velocity}, step)


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
    """The core's ``torch.optim.Adam`` update of ``param``, ``exp_avg`` and ``exp_avg_sq``
    in place, with :class:`fastbp.Adam`'s hyper-parameters (see
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
        _core.optimizer_step,
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
    """The core's ``torch.optim.AdamW`` update of ``param``, ``exp_avg`` and ``exp_avg_sq``
    in place, with :class:`fastbp.AdamW`'s hyper-parameters (see
    :func:`~fastbp.optim.optimizers.apply_step`)."""
    optimizer = AdamW(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    apply_step(
        optimizer,
        _core.optimizer_step,
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
    """The core's ``torch.optim.RMSprop`` update of ``param``, ``square_avg``,
    ``momentum_buffer`` and ``grad_avg`` in place, with :class:`fastbp.RMSprop`'s hyper-
    parameters (see :func:`~fastbp.optim.optimizers.apply_step`)."""
    optimizer = RMSprop(
        lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered
    )
    apply_step(
        optimizer,
        _core.optimizer_step,
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
    """The core's ``torch.optim.Adagrad`` update of ``param`` and ``sum`` in place, with
    :class:`fastbp.Adagrad`'s hyper-parameters (see
    :func:`~fastbp.optim.optimizers.apply_step`)."""
    optimizer = Adagrad(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps)
    apply_step(optimizer, _core.optimizer_step, param, grad, {"sum": sum}, step)


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
    """The core's ``torch.optim.Adadelta`` update of ``param``, ``square_avg`` and
    ``acc_delta`` in place, with :class:`fastbp.Adadelta`'s hyper-parameters (see
    :func:`~fastbp.optim.optimizers.apply_step`)."""
    optimizer = Adadelta(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
    apply_step(
        optimizer,
        _core.optimizer_step,
        param,
        grad,
        {"square_avg": square_avg, "acc_delta": acc_delta},
        step,
    )


def clip_grad_norm(grad, max_norm: float) -> float:
    """``torch.nn.utils.clip_grad_norm_`` of one array in place: with ``total`` its L2
    norm, ``grad *= min(1, max_norm / (total + 1e-6))``; returns ``total``. ``grad``
    must be a writeable C-contiguous float32/float64 array; ``max_norm`` > 0. A norm
    that is not finite is returned and ``grad`` left as it is."""
    grad = _validate.update_buffers(grad, grad, {})
    return float(_core.clip_grad_norm(grad, _validate.real("max_norm", max_norm, strict=True)))


def layer_norm(x, weight, bias, eps: float = 1e-5) -> np.ndarray:
    """``torch.nn.functional.layer_norm`` over the rows of x (N, C): each row normalised
    by its mean and biased variance, then ``* weight + bias`` (both (C,))."""
    x, weight, bias, eps = _validate.norm_inputs(x, weight, bias, "bias", eps)
    return _core.row_norm(_core.NormKind.LayerNorm, x, weight, bias, eps)


def layer_norm_backward(x, weight, grad, eps: float = 1e-5) -> tuple:
    """``(dx, dweight, dbias)`` of :func:`layer_norm` given ``grad`` = dL/dy (N, C)."""
    x, weight, grad, eps = _validate.norm_inputs(x, weight, grad, "grad", eps)
    return _core.row_norm_backward(_core.NormKind.LayerNorm, x, weight, grad, eps)


def rms_norm(x, weight, eps: float | None = None) -> np.ndarray:
    """``torch.nn.functional.rms_norm`` over the rows of x (N, C): each row divided by
    ``sqrt(mean(x**2) + eps)``, then ``* weight`` (C,); ``eps`` None is the machine
    epsilon of x's dtype, as torch."""
    x, weight, _, eps = _validate.norm_inputs(x, weight, None, "bias", eps, machine_eps=True)
    return _core.row_norm(_core.NormKind.RMSNorm, x, weight, None, eps)


def rms_norm_backward(x, weight, grad, eps: float | None = None) -> tuple:
    """``(dx, dweight)`` of :func:`rms_norm` given ``grad`` = dL/dy (N, C)."""
    x, weight, grad, eps = _validate.norm_inputs(x, weight, grad, "grad", eps, machine_eps=True)
    return _core.row_norm_backward(_core.NormKind.RMSNorm, x, weight, grad, eps)


def batch_norm(
    x,
    weight,
    bias,
    running_mean,
    running_var,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> np.ndarray:
    """``torch.nn.functional.batch_norm`` of x (N, C) over its columns.

    In training (N >= 2) the batch's mean and biased variance normalise x, and
    ``running_mean`` / ``running_var`` are updated in place towards the batch's mean and
    unbiased variance by ``momentum`` in (0, 1]; in inference the running statistics
    normalise x. The running arrays must be NumPy arrays of x's dtype and shape (C,).
    """
    x, weight, bias, eps = _validate.norm_inputs(x, weight, bias, "bias", eps)
    training = bool(training)
    momentum = _validate.momentum_fraction(momentum)
    _validate.running_stats(x, running_mean, running_var, writeable=training)
    if training:
        _validate.batch_rows(x)
    return _core.batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps)


def batch_norm_backward(x, weight, grad, eps: float = 1e-5) -> tuple:
    """``(dx, dweight, dbias)`` of :func:`batch_norm` in training (the batch statistics
    depend on x) given ``grad`` = dL/dy (N, C), N >= 2."""
    x, weight, grad, eps = _validate.norm_inputs(x, weight, grad, "grad", eps)
    _validate.batch_rows(x)
    return _core.batch_norm_backward(x, weight, grad, eps)


def dropout(x, p: float, key: int) -> np.ndarray:
    """Training-mode ``torch.nn.functional.dropout``: each element zeroed with probability
    ``p`` in [0, 1), the others scaled by ``1 / (1 - p)``. The mask is a function of
    ``key`` (an int in [0, 2**64)) and the element's C-order index alone."""
    (x,) = _validate.common_float(x=x)
    return _core.dropout(x, _validate.dropout_p(p), _validate.uint64("key", key))


def dropout_backward(grad, p: float, key: int) -> np.ndarray:
    """dL/dx of :func:`dropout` with the same ``p`` and ``key``: ``grad`` masked and
    scaled as the forward pass was."""
    (grad,) = _validate.common_float(grad=grad)
    return _core.dropout_backward(grad, _validate.dropout_p(p), _validate.uint64("key", key))


def dropout_key(seed: int, layer: int, pass_index: int) -> int:
    """The dropout key of layer ``layer`` in forward pass ``pass_index`` of a network
    seeded with ``seed`` (each an int in [0, 2**64))."""
    return _core.dropout_key(
        _validate.uint64("seed", seed),
        _validate.uint64("layer", layer),
        _validate.uint64("pass_index", pass_index),
    )
