"""Layers: the ``Layer`` base and ``Dense`` (the activations are in
:mod:`fastbp.activations`). A layer is a description plus, for Dense, its parameters;
the network runs them in C++ (or NumPy for ``backend="numpy"``)."""

from __future__ import annotations

import numpy as np

from . import _validate

__all__ = ["Layer", "Dense", "INITS", "LAYER_TYPES"]

INITS = ("xavier", "he", "zeros")

#: fastbp's layer classes by class name (what a saved network names them by), each
#: entered as it is defined (the activations when fastbp.activations is imported).
LAYER_TYPES: dict[str, type] = {}


class Layer:
    """Base class of every layer; a layer belongs to at most one network."""

    _owner = None

    def __init_subclass__(cls, abstract: bool = False, **kwargs):
        # Only fastbp's own concrete layers: a user's subclass must not replace them.
        super().__init_subclass__(**kwargs)
        if not abstract and cls.__module__.startswith(__package__ + "."):
            LAYER_TYPES[cls.__name__] = cls

    @property
    def n_params(self) -> int:
        """Number of trainable scalars this layer adds to a network (0 for activations)."""
        return 0

    def config(self) -> dict:
        """What :meth:`fastbp.Network.save` stores to rebuild this layer."""
        return {"type": type(self).__name__}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _Param:
    """A parameter attribute: reads give the network's array; writes copy into it, so
    ``layer.W = arr`` and ``layer.W[...] = arr`` both set the parameter. On a GPU network
    the array is a host copy, refreshed on every read: read it again after training."""

    def __set_name__(self, owner, name):
        self.slot = "_" + name

    def __get__(self, layer, owner=None):
        if layer is None:
            return self
        if layer._owner is not None:
            layer._owner._host_parameters()
        return getattr(layer, self.slot)

    def __set__(self, layer, value):
        if layer._owner is not None:
            layer._owner._host_parameters()
        current = getattr(layer, self.slot)
        shape = (layer.in_features, layer.out_features) if self.slot == "_W" else (layer.out_features,)
        dtype = current.dtype if current is not None else np.float64
        arr = _validate.finite(self.slot[1:], _validate.float_array(self.slot[1:], value, dtype))
        if arr.shape != shape:
            raise ValueError(f"{self.slot[1:]} must have shape {shape}, got {arr.shape}")
        if current is None:
            setattr(layer, self.slot, arr.copy())
        else:
            current[...] = arr


class Dense(Layer):
    """Fully connected layer ``Z = X @ W + b`` with samples as rows.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input and output rows.
    init : {"xavier", "he", "zeros"}
        Weight initialisation: Glorot uniform (``torch.nn.init.xavier_uniform_``),
        He normal (``kaiming_normal_``, fan-in, ReLU gain) or zeros. Biases start at 0.
        The network draws the weights from its ``seed`` unless ``W`` was set before.

    Attributes
    ----------
    W : ndarray, shape (in_features, out_features)
    b : ndarray, shape (out_features,)
    dW, db : ndarray
        Gradients of the loss after :meth:`Network.backward`, same shapes.
    """

    W = _Param()
    b = _Param()

    def __init__(self, in_features: int, out_features: int, init: str = "xavier"):
        self.in_features = _validate.positive_int("in_features", in_features)
        self.out_features = _validate.positive_int("out_features", out_features)
        _validate.choice("init", init, INITS)
        self.init = init
        self._W = self._b = self._dW = self._db = None

    @property
    def dW(self):
        if self._owner is not None:
            self._owner._host_parameters()
        return self._dW

    @property
    def db(self):
        if self._owner is not None:
            self._owner._host_parameters()
        return self._db

    @property
    def n_params(self) -> int:
        """``in_features * out_features`` weights and ``out_features`` biases."""
        return self.in_features * self.out_features + self.out_features

    def initial_weights(self, rng: np.random.Generator) -> np.ndarray:
        """Weights drawn for ``init`` (float64; the network casts them)."""
        shape = (self.in_features, self.out_features)
        if self.init == "xavier":
            bound = np.sqrt(6.0 / (self.in_features + self.out_features))
            return rng.uniform(-bound, bound, size=shape)
        if self.init == "he":
            return rng.normal(0.0, np.sqrt(2.0 / self.in_features), size=shape)
        return np.zeros(shape)

    def config(self) -> dict:
        return {"type": "Dense", "in_features": self.in_features,
                "out_features": self.out_features, "init": self.init}

    # PyTorch's Linear computes x @ weight.T + bias with weight (out, in): W = weight.T.
    torch_type = "Linear"

    def to_torch(self, torch, dtype):
        """A ``torch.nn.Linear`` with copies of ``W`` and ``b``."""
        linear = torch.nn.Linear(self.in_features, self.out_features, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(self.W.T)))
            linear.bias.copy_(torch.from_numpy(self.b.copy()))
        return linear

    @classmethod
    def from_torch(cls, module) -> Dense:
        """A Dense with copies of a ``torch.nn.Linear``'s weight (transposed) and bias."""
        if module.bias is None:
            raise ValueError("a Linear without bias cannot become a Dense, which has one")
        dense = cls(module.in_features, module.out_features)
        dense.W = module.weight.detach().cpu().numpy().T
        dense.b = module.bias.detach().cpu().numpy()
        return dense

    def onnx_nodes(self, onnx, name: str, x: str, opset: int, dtype) -> tuple[list, list]:
        """ONNX's ``Gemm(x, W, b)`` without transposes, the weights in their dtype."""
        weights = [onnx.numpy_helper.from_array(np.ascontiguousarray(self.W), name + ".W"),
                   onnx.numpy_helper.from_array(np.ascontiguousarray(self.b), name + ".b")]
        return [onnx.helper.make_node("Gemm", [x, name + ".W", name + ".b"], [name],
                                      name=name)], weights

    def __repr__(self) -> str:
        return f"Dense({self.in_features}, {self.out_features}, init={self.init!r})"
