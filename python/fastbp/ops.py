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
from .nn import activations, losses
from .optim import optimizers

# One forward and one backward function per activation of the core (see below).
__all__ = [
    "matmul",
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
    *(name.lower() + "_step" for name in optimizers.CLASSES),
    "clip_grad_norm",
    "layer_norm",
    "layer_norm_backward",
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


def _activation(name):
    proto = activations.for_name(name)
    # f' of the first activations reads y = f(x); the others' reads x.
    uses_input = _core.act_uses_input(proto.kind)
    first = "x" if uses_input else "y"
    forward_sig = activations.op_signature(proto, ("x",))
    backward_sig = activations.op_signature(proto, (first, "grad"))

    def forward(*args, **kwargs) -> np.ndarray:
        bound = forward_sig.bind(*args, **kwargs)
        bound.apply_defaults()
        x, *settings = bound.arguments.values()
        layer = proto.with_act_settings(**dict(zip(proto.act_settings, settings)))
        (x,) = _validate.common_float(x=x)
        return _core.activation(layer.kind, x, *layer.act_args)

    def backward(*args, **kwargs) -> np.ndarray:
        bound = backward_sig.bind(*args, **kwargs)
        bound.apply_defaults()
        first_arg, grad, *settings = bound.arguments.values()
        layer = proto.with_act_settings(**dict(zip(proto.act_settings, settings)))
        _validate.same_shape(**{first: first_arg, "grad": grad})
        first_arg, grad = _validate.common_float(**{first: first_arg, "grad": grad})
        if uses_input:  # its f' reads only x, which then stands in for y as well
            return _core.activation_backward(
                layer.kind, first_arg, grad, first_arg, *layer.act_args
            )
        return _core.activation_backward(layer.kind, first_arg, grad, None, *layer.act_args)

    forward.__name__, backward.__name__ = name, name + "_backward"
    forward.__signature__, backward.__signature__ = forward_sig, backward_sig
    forward.__doc__ = f"Elementwise {name} (``fastbp.{type(proto).__name__}``)."
    backward.__doc__ = (
        f"``grad * f'(x)`` for {name}, given its input ``x``."
        if uses_input
        else f"``grad * f'(x)`` for {name}, given its forward output "
        "``y = f(x)`` (as PyTorch's sigmoid_backward takes the output)."
    )
    return forward, backward


# sigmoid, sigmoid_backward, relu, ...: made from the core's list of activations and the
# classes' settings, so a new one needs no change here.
for _name in _names.ACTIVATIONS:
    globals()[_name], globals()[_name + "_backward"] = _activation(_name)
del _name


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


def _loss(name, doc):
    def value(y, target, reduction: str = "mean") -> float:
        return _loss_call(name, y, target, reduction, False)

    def backward(y, target, reduction: str = "mean") -> np.ndarray:
        return _loss_call(name, y, target, reduction, True)

    value.__name__, backward.__name__ = name, name + "_backward"
    value.__doc__ = doc
    backward.__doc__ = f"Gradient of {name} with respect to its first argument."
    return value, backward


mse, mse_backward = _loss("mse", "Squared error; ``mean`` averages over all elements.")
softmax_cross_entropy, softmax_cross_entropy_backward = _loss(
    "softmax_cross_entropy",
    "Cross-entropy of softmax(logits) against class labels (N,) or (N, 1) (integers or "
    "floats of whole value) or probability rows (N, C); "
    "``mean`` averages over samples.",
)
bce_with_logits, bce_with_logits_backward = _loss(
    "bce_with_logits",
    "Binary cross-entropy of sigmoid(logits); ``mean`` averages over all elements.",
)


l1, l1_backward = _loss(
    "l1",
    "Absolute error ``sum(|y - t|)``; ``mean`` averages over all "
    "elements. Its gradient is ``sign(y - t)``, 0 where y == t.",
)


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


# One <name>_step function per optimizer class (sgd_step, adam_step, ...).
for _name in optimizers.CLASSES:
    _fn = optimizers.step_function(getattr(optimizers, _name), _core.optimizer_step, "The core's")
    globals()[_fn.__name__] = _fn
del _name, _fn


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
    return _core.layer_norm(x, weight, bias, eps)


def layer_norm_backward(x, weight, grad, eps: float = 1e-5) -> tuple:
    """``(dx, dweight, dbias)`` of :func:`layer_norm` given ``grad`` = dL/dy (N, C)."""
    x, weight, grad, eps = _validate.norm_inputs(x, weight, grad, "grad", eps)
    return _core.layer_norm_backward(x, weight, grad, eps)


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
