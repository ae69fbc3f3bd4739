"""PyTorch interop: networks to and from ``torch.nn.Sequential`` of ``Linear`` layers and
the activations fastbp has (needs PyTorch, imported only when called). This module sits
below :mod:`fastbp.network`, which builds the network in :func:`fastbp.from_torch` from
the layers :func:`torch_layers` reads.

PyTorch's ``Linear`` computes ``x @ weight.T + bias`` with ``weight`` (out, in); fastbp's
``Dense`` computes ``x @ W + b`` with ``W`` (in, out), so ``W = weight.T``.
"""

from __future__ import annotations

import numpy as np

from .layers import ACTIVATIONS, Dense, Layer

__all__ = ["torch_layers", "to_torch"]

# fastbp's activations carry the class names of their torch.nn twins.
_ACTIVATIONS = {cls.__name__: cls for cls in ACTIVATIONS.values()}


def _torch():
    try:
        import torch
    except ImportError as e:
        raise ImportError("PyTorch interop needs PyTorch: pip install torch") from e
    return torch


def torch_layers(module) -> tuple[list[Layer], str]:
    """fastbp layers with the weights of a PyTorch module, and their dtype.

    Parameters
    ----------
    module : torch.nn.Sequential or torch.nn.Linear
        ``Linear`` layers (with bias) and ``ReLU``, ``Tanh``, ``Sigmoid`` or ``Identity``
        activations, all float32 or all float64.

    Returns
    -------
    layers : list of Layer
        Independent of ``module``: the weights are copied.
    dtype : {"float32", "float64"}
    """
    torch = _torch()
    modules = list(module) if isinstance(module, torch.nn.Sequential) else [module]
    layers, dtypes = [], set()
    for i, m in enumerate(modules):
        if isinstance(m, torch.nn.Linear):
            if m.bias is None:
                raise ValueError(f"module[{i}] is a Linear without bias; fastbp's Dense has one")
            dense = Dense(m.in_features, m.out_features)
            dense.W = m.weight.detach().cpu().numpy().T
            dense.b = m.bias.detach().cpu().numpy()
            dtypes.add(m.weight.dtype)
            layers.append(dense)
        elif type(m).__name__ in _ACTIVATIONS and type(m).__module__.startswith("torch.nn"):
            layers.append(_ACTIVATIONS[type(m).__name__]())
        else:
            raise TypeError(f"module[{i}] is a {type(m).__name__}; fastbp supports Linear, "
                            f"{', '.join(_ACTIVATIONS)}")
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
    net._host_parameters()
    modules = []
    for layer in net.layers:
        if isinstance(layer, Dense):
            linear = torch.nn.Linear(layer.in_features, layer.out_features, dtype=dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.W.T)))
                linear.bias.copy_(torch.from_numpy(layer.b.copy()))
            modules.append(linear)
        else:
            name = next(k for k, v in _ACTIVATIONS.items() if type(layer) is v)
            modules.append(getattr(torch.nn, name)())
    return torch.nn.Sequential(*modules)
