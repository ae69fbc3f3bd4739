"""Finite-difference check of backpropagation."""

from __future__ import annotations

import numpy as np

from .network import Network

__all__ = ["gradcheck"]


def gradcheck(net, X, T, eps: float = 1e-6) -> float:
    """Largest error between backprop gradients and central finite differences.

    Runs in float64 (on a float64 copy of ``net`` if it is float32; ``net`` itself
    is never changed). For each parameter ``p`` the numerical gradient is
    ``(L(p + eps) - L(p - eps)) / (2 eps)``, and the error is
    ``|g - n| / max(1, |g|, |n|)``: relative for large gradients, absolute for
    gradients below 1, where finite differences lose their relative accuracy.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a fastbp.Network, got {type(net).__name__}")
    check = net._float64_copy()
    check.backward(X, T)
    analytic = check._core.grads.copy()
    params = check._core.params
    numeric = np.empty_like(analytic)
    for i in range(params.size):
        saved = params[i]
        params[i] = saved + eps
        plus = check.loss(X, T)
        params[i] = saved - eps
        minus = check.loss(X, T)
        params[i] = saved
        numeric[i] = (plus - minus) / (2 * eps)
    scale = np.maximum(1.0, np.maximum(np.abs(analytic), np.abs(numeric)))
    return float(np.max(np.abs(analytic - numeric) / scale))
