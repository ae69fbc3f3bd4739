"""Layers: ``Dense`` and the activations. A layer is a description plus, for Dense,
its parameters; the network runs them in C++ (or NumPy for ``backend="numpy"``)."""

from __future__ import annotations

import numpy as np

from . import _core, _names, _validate

__all__ = ["Layer", "Dense", "Sigmoid", "ReLU", "Tanh", "Identity", "INITS", "LAYER_TYPES",
           "ACTIVATIONS"]

INITS = ("xavier", "he", "zeros")

#: fastbp's layer classes by class name (what a saved network names them by), each
#: entered as it is defined.
LAYER_TYPES: dict[str, type] = {}
#: fastbp's activation classes by ``name`` (``"relu"`` -> ``ReLU``).
ACTIVATIONS: dict[str, type] = {}


class Layer:
    """Base class of every layer; a layer belongs to at most one network.

    A layer describes itself to the network: the C++ unit it runs as (``kind`` and
    :meth:`core_spec`), how it changes the width of the rows (:meth:`out_width`), its
    trainable tensors (:meth:`param_shapes`, laid out in the network's flat buffers in
    that order, :meth:`initial_param`), its non-trainable state (:meth:`state_init`), and
    its NumPy maths (:meth:`forward_numpy`, :meth:`backward_numpy`), which the
    ``backend="numpy"`` network runs.
    """

    _owner = None
    kind: _core.LayerKind

    def __init_subclass__(cls, abstract: bool = False, **kwargs):
        # Only fastbp's own concrete layers: a user's subclass must not replace them.
        super().__init_subclass__(**kwargs)
        if not abstract and cls.__module__ == __name__:
            LAYER_TYPES[cls.__name__] = cls

    @property
    def n_params(self) -> int:
        """Number of trainable scalars this layer adds to a network (0 for activations)."""
        return sum(int(np.prod(shape)) for shape in self.param_shapes().values())

    def out_width(self, width: int | None) -> int:
        """The width of this layer's output rows for input rows of ``width`` (None: the
        layer is the first); ValueError when it cannot take ``width``."""
        if width is None:
            raise ValueError(f"the first layer must be Dense, got {self!r}")
        return width

    def param_shapes(self) -> dict:
        """``{name: shape}`` of the trainable tensors, in flat-buffer order."""
        return {}

    def initial_param(self, name: str, rng: np.random.Generator) -> np.ndarray:
        """The value parameter ``name`` starts with when none was assigned (float64)."""
        return np.zeros(self.param_shapes()[name])

    def state_init(self) -> dict:
        """``{name: initial value}`` of the non-trainable state (float64), e.g. running
        statistics; the network keeps it apart from the parameters."""
        return {}

    def core_spec(self, width: int) -> _core.LayerSpec:
        """The C++ plan's description of this layer, taking rows of ``width``."""
        return _core.LayerSpec(self.kind, width, self.out_width(width))

    def forward_numpy(self, x, params: dict, state: dict, training: bool, key):
        """``(y, cache)``: the layer's output for ``x`` in plain NumPy, and what
        :meth:`backward_numpy` needs. ``params`` and ``state`` map names to the network's
        arrays; ``key`` is the layer's dropout key for this training pass."""
        raise NotImplementedError

    def backward_numpy(self, grad, cache, params: dict):
        """``(dL/dx, {name: dL/dparam})`` from ``grad = dL/dy``, in plain NumPy."""
        raise NotImplementedError

    def config(self) -> dict:
        """What :meth:`fastbp.Network.save` stores to rebuild this layer."""
        return {"type": type(self).__name__}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Activation(Layer, abstract=True):
    """An elementwise activation ``A = f(Z)``: ``kind`` is its member of ``_core.Act``,
    and ``name``, derived from it (``"relu"``), keys the ops and the NumPy reference."""

    act: _core.Act
    kind = _core.LayerKind.Activation
    name = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "act"):
            cls.name = _names.snake_case(cls.act.name)
            if cls.__module__ == __name__:
                ACTIVATIONS[cls.name] = cls

    @property
    def act_args(self) -> tuple:
        """The activation's settings as the C++ kernels take them."""
        return (0.0, 0.0)

    def core_spec(self, width: int) -> _core.LayerSpec:
        a, b = self.act_args
        return _core.LayerSpec(self.kind, width, width, self.act, a, b)

    def forward_numpy(self, x, params, state, training, key):
        y = self._numpy_forward(x)
        return y, (x, y)

    def backward_numpy(self, grad, cache, params):
        x, y = cache
        return self._numpy_backward(x, y, grad), {}


class Sigmoid(Activation):
    """Logistic sigmoid ``1 / (1 + exp(-z))``, computed without overflow."""

    act = _core.Act.Sigmoid

    def _numpy_forward(self, x):
        return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x)))).astype(x.dtype, copy=False)

    def _numpy_backward(self, x, y, grad):
        return grad * y * (1 - y)


class ReLU(Activation):
    """``max(z, 0)``."""

    act = _core.Act.ReLU

    def _numpy_forward(self, x):
        return np.maximum(x, 0)

    def _numpy_backward(self, x, y, grad):
        return grad * (y > 0)


class Tanh(Activation):
    """Hyperbolic tangent."""

    act = _core.Act.Tanh

    def _numpy_forward(self, x):
        return np.tanh(x)

    def _numpy_backward(self, x, y, grad):
        return grad * (1 - y * y)


class Identity(Activation):
    """``f(z) = z``: a linear output."""

    act = _core.Act.Identity

    def _numpy_forward(self, x):
        return x.copy()

    def _numpy_backward(self, x, y, grad):
        return grad.copy()


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
        shape = layer.param_shapes()[self.slot[1:]]
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
    kind = _core.LayerKind.Dense

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

    def out_width(self, width: int | None) -> int:
        if width is not None and width != self.in_features:
            raise ValueError(f"{self!r} expects {self.in_features} inputs but the layer "
                             f"before it gives {width}")
        return self.out_features

    def param_shapes(self) -> dict:
        return {"W": (self.in_features, self.out_features), "b": (self.out_features,)}

    def initial_param(self, name: str, rng: np.random.Generator) -> np.ndarray:
        """Weights drawn for ``init``, biases 0 (float64; the network casts them)."""
        if name == "b":
            return np.zeros(self.out_features)
        shape = (self.in_features, self.out_features)
        if self.init == "xavier":
            bound = np.sqrt(6.0 / (self.in_features + self.out_features))
            return rng.uniform(-bound, bound, size=shape)
        if self.init == "he":
            return rng.normal(0.0, np.sqrt(2.0 / self.in_features), size=shape)
        return np.zeros(shape)

    def core_spec(self, width: int) -> _core.LayerSpec:
        return _core.LayerSpec(self.kind, self.in_features, self.out_features)

    def forward_numpy(self, x, params, state, training, key):
        return x @ params["W"] + params["b"], x

    def backward_numpy(self, grad, x, params):
        return grad @ params["W"].T, {"W": x.T @ grad, "b": grad.sum(axis=0)}

    def config(self) -> dict:
        return {"type": "Dense", "in_features": self.in_features,
                "out_features": self.out_features, "init": self.init}

    def __repr__(self) -> str:
        return f"Dense({self.in_features}, {self.out_features}, init={self.init!r})"
