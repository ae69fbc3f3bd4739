"""Finite-difference check of backpropagation."""

from __future__ import annotations

import numpy as np

from . import _validate
from .io import npz
from .network import Network

__all__ = ["gradcheck"]


def gradcheck(net, X, T, eps: float = 1e-6) -> float:
    """Largest error between backprop gradients and central finite differences.

    Runs in float64 on a float64 copy of ``net`` (``net`` itself is never changed). For
    each parameter ``p`` the numerical gradient is ``(L(p + eps) - L(p - eps)) / (2 eps)``,
    and the error is ``|g - n| / max(1, |g|, |n|)``: relative for large gradients,
    absolute for gradients below 1, where finite differences lose their relative accuracy.

    ``L`` is the training-mode loss that :meth:`Network.backward` differentiates: every
    evaluation replays the masks of one training pass for ``Dropout`` (so the mask is held
    fixed) and uses the batch's statistics for ``BatchNorm``, whose running statistics are
    put back after each evaluation.
    """
    _validate.instance("net", net, Network, "a fastbp.Network")
    check = _float64_copy(net)
    core = check.internals.core
    x, t = check.internals.batch(X, T)
    passes, state = core.passes, core.state.copy()

    def training_loss() -> float:
        value = core.loss(x, t, training=True)
        core.passes, core.state[...] = passes, state
        return value

    core.backward(x, t)
    core.passes, core.state[...] = passes, state
    analytic = core.grads.copy()
    params = core.params
    numeric = np.empty_like(analytic)
    for i in range(params.size):
        saved = params[i]
        params[i] = saved + eps
        plus = training_loss()
        params[i] = saved - eps
        minus = training_loss()
        params[i] = saved
        numeric[i] = (plus - minus) / (2 * eps)
    scale = np.maximum(1.0, np.maximum(np.abs(analytic), np.abs(numeric)))
    return float(np.max(np.abs(analytic - numeric) / scale))


def _float64_copy(net: Network) -> Network:
    """An independent float64 network with ``net``'s layers and parameters, computing in
    float64 whatever ``net``'s compute dtype."""
    return npz.from_config(
        type(net), npz.network_config(net), npz.values(net).astype(np.float64), dtype="float64"
    )
