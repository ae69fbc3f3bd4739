"""PyTorch interop: networks to and from ``torch.nn.Sequential`` of the ``torch.nn``
modules fastbp's layers map to (needs PyTorch, imported only when called). Each layer
class names its twin (``torch_type``) and converts itself (``to_torch``, ``from_torch``),
so this module knows no layer. It sits below :mod:`fastbp.network`, which builds the
network in :func:`fastbp.from_torch` from the layers :func:`torch_layers` reads.
"""

from __future__ import annotations

import numpy as np

from ..nn import activations  # noqa: F401  (its classes enter LAYER_TYPES on import)
from ..nn.layers import LAYER_TYPES, Layer

__all__ = ["torch_layers", "to_torch"]


def _torch():
    try:
        import torch
    except ImportError as e:
        raise ImportError("PyTorch interop needs PyTorch: pip install torch") from e
    return torch


def _twins() -> dict[str, type]:
    """fastbp's layer class for each ``torch.nn`` class name."""
    return {cls.torch_type: cls for cls in LAYER_TYPES.values()}


def torch_layers(module) -> tuple[list[Layer], str]:
    """fastbp layers with the weights and settings of a PyTorch module, and their dtype.

    Parameters
    ----------
    module : torch.nn.Sequential or a single module
        ``torch.nn`` modules fastbp has a layer for (``Linear`` with bias, ``ReLU``,
        ``GELU``, ...), their parameters all float32 or all float64.

    Returns
    -------
    layers : list of Layer
        Independent of ``module``: the weights are copied.
    dtype : {"float32", "float64"}
    """
    torch = _torch()
    twins = _twins()
    modules = list(module) if isinstance(module, torch.nn.Sequential) else [module]
    layers, dtypes = [], set()
    for i, m in enumerate(modules):
        name = type(m).__name__
        if name not in twins or type(m) is not getattr(torch.nn, name, None):
            raise TypeError(f"module[{i}] is a {name}; fastbp supports {', '.join(twins)}")
        try:
            layers.append(twins[name].from_torch(m))
        except ValueError as e:
            raise ValueError(f"module[{i}]: {e}") from e
        dtypes.update(p.dtype for p in m.parameters())
    if len(dtypes) != 1 or not dtypes <= {torch.float32, torch.float64}:
        raise TypeError(f"the Linear layers must all be float32 or all float64, got {dtypes}")
    return layers, "float32" if dtypes == {torch.float32} else "float64"


def to_torch(net):
    """A ``torch.nn.Sequential`` computing what ``net`` computes, with copies of its
    weights, in its dtype (the loss is not part of it).

    Parameters
    ----------
    net : Network

    Returns
    -------
    torch.nn.Sequential
    """
    torch = _torch()
    dtype = {np.float32: torch.float32, np.float64: torch.float64}[net.dtype.type]
    net.internals.host_parameters()
    return torch.nn.Sequential(*(layer.to_torch(torch, dtype) for layer in net.layers))
