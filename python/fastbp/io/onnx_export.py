"""ONNX export: a network as an ONNX graph, each layer's nodes written by the layer
itself (``onnx_nodes``), with a dynamic batch dimension (needs the ``onnx`` package,
imported only when called). Weights and constants are stored in the network's dtype.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from types import ModuleType
from typing import Protocol

import numpy as np

from .. import _core
from ..nn.layers import Layer
from .npz import atomic_write

__all__ = ["to_onnx", "MIN_OPSET", "HEADS"]

#: The ops used here have their current meaning from opset 7 (Gemm's bias broadcast), but
#: opsets 7 and 8 come with IR version 3, which wants every weight listed as a graph input.
MIN_OPSET = 9
#: What may follow the network's output: nothing, a row-wise softmax (class
#: probabilities), an elementwise exp (rates from log-rates), or flattening a single
#: output column to shape (N,); ``head`` may also be a tuple of them, applied in order.
HEADS = (None, "softmax", "exp", "ravel")


class Exportable(Protocol):
    """What export reads of a network (a :class:`fastbp.Network` is one): its layers,
    each writing its own nodes, its dtype and widths; its ``repr`` documents the graph."""

    @property
    def layers(self) -> Sequence[Layer]: ...
    @property
    def dtype(self) -> np.dtype: ...
    @property
    def in_features(self) -> int: ...
    @property
    def out_features(self) -> int: ...


def _onnx() -> ModuleType:
    try:
        import onnx
        import onnx.helper
        import onnx.numpy_helper
    except ImportError as e:
        raise ImportError('ONNX export needs the onnx package: pip install "fastbp[onnx]"') from e
    return onnx


def _check_opset(opset: object, onnx: ModuleType) -> int:
    """``opset`` as an int, from MIN_OPSET to the newest the installed onnx knows."""
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral):
        raise TypeError(f"opset must be an int, got {type(opset).__name__} {opset!r}")
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(
            f"opset must be between {MIN_OPSET} (the oldest this export writes) "
            f"and {newest} (the newest onnx {onnx.__version__} knows), got {opset}"
        )
    return int(opset)


def _layer_nodes(onnx: ModuleType, net: Exportable, x: str, opset: int) -> tuple[list, list, str]:
    """The nodes and initializers computing ``net``'s layers from the tensor named ``x``,
    and the name of their output; TypeError for a layer without an ONNX mapping."""
    nodes, weights = [], []
    for i, layer in enumerate(net.layers):
        if not callable(getattr(layer, "onnx_nodes", None)):
            raise TypeError(
                f"layers[{i}] is a {type(layer).__name__}, which ONNX export does "
                "not support: it has no onnx_nodes"
            )
        # Named as net.summary() names the layers.
        name = f"{type(layer).__name__.lower()}_{i}"
        layer_nodes, layer_weights = layer.onnx_nodes(onnx, name, x, opset, net.dtype)
        nodes, weights, x = nodes + layer_nodes, weights + layer_weights, name
    return nodes, weights, x


def _head_nodes(onnx: ModuleType, head: str, x: str, output: str) -> tuple[list, list]:
    """The node (and initializers) turning the last layer's output ``x`` into ``output``."""
    if head == "softmax":
        return [onnx.helper.make_node("Softmax", [x], [output], name="softmax", axis=1)], []
    if head == "exp":
        return [onnx.helper.make_node("Exp", [x], [output], name="exp")], []
    shape = onnx.numpy_helper.from_array(np.array([-1], dtype=np.int64), "ravel.shape")
    return [onnx.helper.make_node("Reshape", [x, "ravel.shape"], [output], name="ravel")], [shape]


def to_onnx(
    net: Exportable,
    path: str | os.PathLike,
    opset: int = 17,
    *,
    head: str | None = None,
    output: str = "output",
) -> None:
    """Write ``net`` to ``path`` as an ONNX model, atomically as :meth:`Network.save` does.

    The graph has one input, ``"input"`` (batch, in_features), and one output, of the
    network's dtype (ONNX ``FLOAT`` or ``DOUBLE``); the batch dimension is dynamic.

    Parameters
    ----------
    net : Network
        Any of fastbp's layers (each writes its own nodes); any backend.
    path : str or os.PathLike
        The file to write; an existing file is replaced only once the new one is complete.
    opset : int
        The ONNX opset the model declares, from :data:`MIN_OPSET` to the newest the
        installed ``onnx`` knows.
    head : {None, "softmax", "exp", "ravel"} or a tuple of them
        What follows the last layer: nothing (the output is what ``net.predict`` returns),
        a softmax over each row, an elementwise exp, or flattening a single output column
        to shape (batch,); a tuple applies its steps in order.
    output : str
        The name of the graph's output.

    Raises
    ------
    ImportError
        When ``onnx`` is not installed.
    ValueError
        When ``opset`` is not an int in the supported range, or ``head`` is unknown.
    TypeError
        When a layer has no ONNX counterpart, naming it.
    """
    onnx = _onnx()
    opset = _check_opset(opset, onnx)
    steps = () if head is None else head if isinstance(head, tuple) else (head,)
    if (head is not None and not steps) or any(step not in HEADS[1:] for step in steps):
        raise ValueError(f"head must be one of {HEADS} or a tuple of them, got {head!r}")
    helper = onnx.helper
    elem = helper.np_dtype_to_tensor_dtype(net.dtype)
    nodes, weights, x = _layer_nodes(onnx, net, "input", opset)
    if not steps:
        nodes[-1].output[0] = output
    for i, step in enumerate(steps):
        y = output if i == len(steps) - 1 else f"head_{i}"
        head_nodes, head_weights = _head_nodes(onnx, step, x, y)
        nodes, weights, x = nodes + head_nodes, weights + head_weights, y
    out_shape = ["batch"] if "ravel" in steps else ["batch", net.out_features]
    graph = helper.make_graph(
        nodes,
        "fastbp_network",
        [helper.make_tensor_value_info("input", elem, ["batch", net.in_features])],
        [helper.make_tensor_value_info(output, elem, out_shape)],
        initializer=weights,
    )
    # The IR version the opset needs, not the newest, so older runtimes can load it.
    model = helper.make_model_gen_version(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="fastbp",
        producer_version=_core.__version__,
        doc_string=repr(net),
    )
    atomic_write(path, lambda f: f.write(model.SerializeToString()))
