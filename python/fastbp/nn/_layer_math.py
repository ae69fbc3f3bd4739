"""NumPy maths of dropout, the row norms, batch norm and the bfloat16 products: the one copy
of each formula, which
both the layer classes (:mod:`fastbp.layers`) and the reference ops
(:mod:`fastbp.reference`) call. A leaf module: it imports nothing from fastbp.

Inputs are assumed checked. Statistics are computed in float64 and results returned in
the input's dtype, as the C++ kernels do.
"""

from __future__ import annotations

import numpy as np

_U64 = np.uint64


def round_to_bfloat16(x: np.ndarray, subnormals: str = "kept") -> np.ndarray:
    """float32 ``x`` rounded to the nearest bfloat16 (ties to even) and back to float32,
    as fastbp's bfloat16 GEMM rounds its operands (csrc/kernels/gemm/bf16.hpp): the
    upper 16 bits of each float32, rounded; infinities stay, a NaN stays a NaN, and a
    finite value past bfloat16's largest (about 3.39e38) becomes an infinity.
    ``subnormals="flushed"`` rounds as ``vcvtne2ps2bf16``, which the bfloat16 paths pack
    their operands with: a subnormal ``x`` (below 2**-126) reads as a zero of its sign
    first, so one just below 2**-126 gives zero rather than 2**-126. (A normal ``x``
    never rounds to a subnormal, so no result needs flushing after.)"""
    x = np.asarray(x, dtype=np.float32)
    if subnormals == "flushed":
        x = _flush(x)
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return np.where(np.isnan(x), x, rounded.astype(np.uint32).view(np.float32))


def _flush(x: np.ndarray) -> np.ndarray:
    """float32 ``x`` with every subnormal replaced by a zero of its sign."""
    tiny = np.abs(x) < np.finfo(np.float32).tiny
    return np.where(tiny, np.copysign(np.float32(0), x), x)


def product(
    a: np.ndarray, b: np.ndarray, compute: str | None, subnormals: str = "kept"
) -> np.ndarray:
    """``a @ b`` as a Dense layer computes it: in the arrays' dtype, or, for compute
    ``"bfloat16"``, on the float32 operands rounded to bfloat16 with float32 sums (each
    product of two bfloat16 is exact in float32, so only the summation order differs
    from the C++ kernels). ``subnormals="flushed"`` models the bfloat16 instructions:
    subnormal operands read as zero, and the float32 sum, taken in order of k, flushed
    to zero wherever it falls below 2**-126 (the instructions sum in another order, so
    where partial sums are that small the results agree only to about k * 2**-126)."""
    if compute != "bfloat16":
        return a @ b
    if subnormals != "flushed":
        return round_to_bfloat16(a) @ round_to_bfloat16(b)
    a64 = round_to_bfloat16(a, "flushed").astype(np.float64)
    b64 = round_to_bfloat16(b, "flushed").astype(np.float64)
    total = np.zeros((a.shape[0], b.shape[1]), dtype=np.float32)
    # Each bfloat16 product is exact in float64; casting the sum to float32 is the
    # fused multiply-add's one rounding.
    with np.errstate(over="ignore", invalid="ignore"):
        for p in range(a.shape[1]):
            total = _flush((total + np.outer(a64[:, p], b64[p])).astype(np.float32))
    return total


def splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 words (wrapping arithmetic), as
    csrc/common/dropout_math.hpp."""
    x = x + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _mix(word: int) -> np.ndarray:
    return splitmix64(np.array([word], dtype=_U64))


def dropout_key(seed: int, layer: int, pass_index: int) -> int:
    """The dropout key of layer ``layer`` in forward pass ``pass_index`` of a network
    seeded with ``seed`` (each an int in [0, 2**64))."""
    key = _mix(int(_mix(int(_mix(seed)[0]) ^ layer)[0]) ^ pass_index)
    return int(key[0])


def dropout_mask(key: int, size: int, p: float) -> np.ndarray:
    """Which of ``size`` elements (in C order) dropout keeps: those whose uniform draw,
    from the top 53 bits of the hash of (key, index), is >= p."""
    bits = splitmix64(_U64(key) ^ splitmix64(np.arange(size, dtype=_U64)))
    return (bits >> _U64(11)).astype(np.float64) * 2.0**-53 >= p


def dropout_scale(p: float, dtype) -> np.generic:
    """``1 / (1 - p)`` as torch computes it: the reciprocal of ``1 - p`` in ``dtype``."""
    dtype = np.dtype(dtype).type
    return dtype(1) / dtype(1.0 - p)


def dropout(x: np.ndarray, p: float, key: int) -> np.ndarray:
    """Training-mode dropout of ``x`` (forward, or backward on the gradient)."""
    if p == 0:
        return x.copy()
    keep = dropout_mask(key, x.size, p).reshape(x.shape)
    return np.where(keep, x * dropout_scale(p, x.dtype), x.dtype.type(0))


def normalize(x: np.ndarray, axis: int, eps: float, centred: bool = True):
    """``(xhat, rstd)`` in float64: x centred on its mean over ``axis`` (on 0 when not
    ``centred``: the row norms without a mean, as RMS norm) and scaled by
    ``rstd = 1 / sqrt(var + eps)``, with the biased variance about that centre (the mean
    square when not centred); both keep ``axis``."""
    centred_x = x.astype(np.float64)
    if centred:
        centred_x -= centred_x.mean(axis=axis, keepdims=True)
    rstd = 1.0 / np.sqrt((centred_x * centred_x).mean(axis=axis, keepdims=True) + eps)
    return centred_x * rstd, rstd


def affine(xhat: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, dtype) -> np.ndarray:
    """``xhat * weight + bias`` per column (no shift for ``bias`` None), cast to ``dtype``."""
    y = xhat * weight.astype(np.float64)
    if bias is not None:
        y = y + bias.astype(np.float64)
    return y.astype(dtype)


def normalize_backward(
    grad: np.ndarray,
    xhat: np.ndarray,
    rstd: np.ndarray,
    weight: np.ndarray,
    axis: int | None,
    centred: bool = True,
):
    """``(dx, dweight, dbias)`` of ``affine(normalize(x, axis, eps, centred))`` given
    dL/dy. The statistics were taken over ``axis`` (1: the row norms, 0: batch norm in
    training), or are constants (None: batch norm in inference)."""
    dy = grad.astype(np.float64)
    g = scaled = dy * weight.astype(np.float64)
    if axis is not None:
        if centred:
            g = g - scaled.mean(axis=axis, keepdims=True)
        g = g - xhat * (scaled * xhat).mean(axis=axis, keepdims=True)
    dtype = grad.dtype
    return (
        (g * rstd).astype(dtype),
        (dy * xhat).sum(axis=0).astype(dtype),
        dy.sum(axis=0).astype(dtype),
    )


def update_running_stats(
    x: np.ndarray, running_mean: np.ndarray, running_var: np.ndarray, momentum: float
) -> None:
    """torch.nn.BatchNorm1d's update, in place: the running mean and variance move by
    ``momentum`` towards the batch's mean and unbiased variance."""
    xd = x.astype(np.float64)
    mean = xd.mean(axis=0)
    unbiased = ((xd - mean) ** 2).sum(axis=0) / (x.shape[0] - 1)
    running_mean[...] = momentum * mean + (1.0 - momentum) * running_mean
    running_var[...] = momentum * unbiased + (1.0 - momentum) * running_var


def running_normalize(x: np.ndarray, running_mean: np.ndarray, running_var: np.ndarray, eps: float):
    """``(xhat, rstd)`` of batch norm in inference: normalised by the running statistics."""
    rstd = 1.0 / np.sqrt(running_var.astype(np.float64) + eps)
    return (x.astype(np.float64) - running_mean.astype(np.float64)) * rstd, rstd
