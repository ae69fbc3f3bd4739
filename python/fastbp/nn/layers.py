"""Layers: the ``Layer`` base, ``Dense``, ``Dropout``, the norms ``LayerNorm``, ``RMSNorm``
and ``BatchNorm`` (the activations are in :mod:`fastbp.nn.activations`). A layer is a
description plus its parameters (and state); the network runs them in C++ (or NumPy for
``backend="numpy"``, through each layer's ``forward_numpy`` / ``backward_numpy``, whose
normalisation and dropout formulas live in :mod:`fastbp.nn._layer_math`)."""

from __future__ import annotations

import numpy as np

from .. import _core, _validate
from . import _layer_math

__all__ = [
    "Layer",
    "Dense",
    "Dropout",
    "LayerNorm",
    "RMSNorm",
    "BatchNorm",
    "INITS",
    "LAYER_TYPES",
]

INITS = ("xavier", "he", "zeros")

#: fastbp's layer classes by class name (what a saved network names them by), each
#: entered as it is defined (the activations when fastbp.nn.activations is imported).
LAYER_TYPES: dict[str, type] = {}


class Layer:
    """Base class of every layer; a layer belongs to at most one network.

    A layer describes itself to the network: the C++ unit it runs as (:meth:`core_spec`;
    ``kind`` is its member of the core enum that computes it, ``_core.LayerKind`` here,
    ``_core.Act`` for an activation, ``_core.NormKind`` for a row norm), how it changes
    the width of the rows (:meth:`out_width`), its
    trainable tensors (:meth:`param_shapes`, laid out in the network's flat buffers in
    that order, :meth:`initial_param`), its non-trainable state (:meth:`state_init`), and
    its NumPy maths (:meth:`forward_numpy`, :meth:`backward_numpy`), which the
    ``backend="numpy"`` network runs.
    """

    _owner = None
    kind: _core.LayerKind | _core.Act | _core.NormKind

    def __init_subclass__(cls, abstract: bool = False, **kwargs):
        # Only fastbp's own concrete layers: a user's subclass must not replace them.
        super().__init_subclass__(**kwargs)
        if not abstract and cls.__module__.startswith(__package__ + "."):
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
        """``{name: shape}`` of the trainable tensors, in flat-buffer order, as the core's
        plan lays them out (``_core.layer_tensors``, where each layer's are defined)."""
        return self._core_tensors()[0]

    def initial_param(self, name: str, rng: np.random.Generator) -> np.ndarray:
        """The value parameter ``name`` starts with when none was assigned (float64)."""
        return np.zeros(self.param_shapes()[name])

    def state_shapes(self) -> dict:
        """``{name: shape}`` of the non-trainable state (running statistics), which the
        network keeps in its state buffer, apart from the parameters; the core's layout
        as :meth:`param_shapes`."""
        return self._core_tensors()[1]

    def _core_tensors(self) -> tuple[dict, dict]:
        # A layer whose tensors have a size knows its own width (Dense, the norms); the
        # other layers have none, whatever the width their core_spec is given; no layout
        # depends on the dtype.
        return _core.layer_tensors(self.core_spec(1, np.float64))

    @property
    def n_state(self) -> int:
        """Number of state scalars this layer adds to a network."""
        return sum(int(np.prod(shape)) for shape in self.state_shapes().values())

    def state_init(self, dtype) -> dict:
        """``{name: initial value}`` of the state, in ``dtype``."""
        return {}

    def core_spec(self, width: int, dtype) -> _core.LayerSpec:
        """The C++ plan's description of this layer, taking rows of ``width`` in a
        network of ``dtype`` (a setting may depend on it, as a default eps)."""
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


class _Param:
    """A parameter (or state) attribute: reads give the network's array; writes copy into
    it, so ``layer.W = arr`` and ``layer.W[...] = arr`` both set the parameter. Before the
    layer joins a network it holds its own array, which the network takes over. On a GPU network
    the array is a host copy, refreshed on every read: read it again after training."""

    def __set_name__(self, owner, name):
        self.slot = "_" + name

    def __get__(self, layer, owner=None):
        if layer is None:
            return self
        if layer._owner is not None:
            layer._owner.internals.host_parameters()
        return getattr(layer, self.slot)

    def __set__(self, layer, value):
        if layer._owner is not None:
            layer._owner.internals.host_parameters()
        current = getattr(layer, self.slot)
        shape = {**layer.param_shapes(), **layer.state_shapes()}[self.slot[1:]]
        dtype = current.dtype if current is not None else np.float64
        arr = _validate.finite(self.slot[1:], _validate.float_array(self.slot[1:], value, dtype))
        if arr.shape != shape:
            raise ValueError(f"{self.slot[1:]} must have shape {shape}, got {arr.shape}")
        if current is None:
            setattr(layer, self.slot, arr.copy())
        else:
            current[...] = arr


class _Grad(_Param):
    """A gradient attribute (``layer.dW``): the network's array, filled by the backward
    pass; None before the layer joins a network. Read as a parameter is; read-only (write
    through the array)."""

    def __set__(self, layer, value):
        raise AttributeError(
            f"{self.slot[1:]} is read-only: write into it ({self.slot[1:]}[...] = value) instead"
        )


# ---- how a network takes a layer over ---------------------------------------------


def views(flat: np.ndarray, slices) -> dict:
    """``{name: view}`` of the flat buffer ``flat`` for each ``(name, offset, shape)`` of
    a network's layout."""
    return {
        name: flat[offset : offset + int(np.prod(shape))].reshape(shape)
        for name, offset, shape in slices
    }


def owner(layer: Layer):
    """The network ``layer`` belongs to, or None."""
    return layer._owner


def take_over(layer: Layer, params: dict, grads: dict, state: dict, rng) -> None:
    """Make the network's views ``{name: array}`` the layer's parameters, gradients and
    state: each parameter view filled with the value the user assigned, else the layer's
    initial one (drawn from ``rng`` even when assigned, so that a seed gives the other
    layers the same draws), each state view with its initial value."""
    for name, view in params.items():
        first = layer.initial_param(name, rng)
        assigned = getattr(layer, "_" + name)
        view[...] = first if assigned is None else assigned
        setattr(layer, "_" + name, view)
        setattr(layer, "_d" + name, grads[name])
    for name, view in state.items():
        view[...] = layer.state_init(view.dtype)[name]
        setattr(layer, "_" + name, view)


def join(layer: Layer, net) -> None:
    """Record that ``layer`` belongs to ``net``, whose buffers it now views (see
    :func:`take_over`)."""
    layer._owner = net


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

    dW = _Grad()
    db = _Grad()

    def out_width(self, width: int | None) -> int:
        if width is not None and width != self.in_features:
            raise ValueError(
                f"{self!r} expects {self.in_features} inputs but the layer before it gives {width}"
            )
        return self.out_features

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

    def core_spec(self, width: int, dtype) -> _core.LayerSpec:
        return _core.LayerSpec(self.kind, self.in_features, self.out_features)

    # ``compute``: the network's compute dtype (None, or "bfloat16" for products on
    # rounded operands); only Dense layers take it, the other layers compute no products.
    def forward_numpy(self, x, params, state, training, key, compute=None):
        return _layer_math.product(x, params["W"], compute) + params["b"], x

    def backward_numpy(self, grad, x, params, compute=None):
        return (
            _layer_math.product(grad, params["W"].T, compute),
            {"W": _layer_math.product(x.T, grad, compute), "b": grad.sum(axis=0)},
        )

    def config(self) -> dict:
        return {
            "type": "Dense",
            "in_features": self.in_features,
            "out_features": self.out_features,
            "init": self.init,
        }

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
        weights = [
            onnx.numpy_helper.from_array(np.ascontiguousarray(self.W), name + ".W"),
            onnx.numpy_helper.from_array(np.ascontiguousarray(self.b), name + ".b"),
        ]
        return [
            onnx.helper.make_node("Gemm", [x, name + ".W", name + ".b"], [name], name=name)
        ], weights

    def __repr__(self) -> str:
        return f"Dense({self.in_features}, {self.out_features}, init={self.init!r})"


def _torch_module_of(module, cls) -> None:
    """TypeError unless ``module`` is the torch.nn class ``cls`` maps to."""
    if type(module).__name__ != cls.torch_type or not type(module).__module__.startswith(
        "torch.nn"
    ):
        raise TypeError(
            f"{cls.__name__}.from_torch takes a torch.nn.{cls.torch_type}, got "
            f"{type(module).__name__}"
        )


def _torch_copy(torch, target, source: np.ndarray) -> None:
    with torch.no_grad():
        target.copy_(torch.from_numpy(np.array(source)))


class Dropout(Layer):
    """``torch.nn.Dropout``: in training each element is zeroed with probability ``p``
    and the others are scaled by ``1 / (1 - p)``; in inference it passes its input on.

    The mask is drawn from the layer's key for the forward pass (see
    :func:`fastbp.ops.dropout_key`), and backward recomputes it from the same key.

    Parameters
    ----------
    p : float
        Probability of zeroing an element, in [0, 1).
    """

    torch_type = "Dropout"
    kind = _core.LayerKind.Dropout

    def __init__(self, p: float = 0.5):
        self.p = _validate.dropout_p(p)

    def out_width(self, width: int | None) -> int:
        if width is None:
            raise ValueError(
                "Dropout cannot be the first layer: it takes its width from the layer before it"
            )
        return width

    def core_spec(self, width: int, dtype) -> _core.LayerSpec:
        return _core.LayerSpec(self.kind, width, width, p=self.p)

    def forward_numpy(self, x, params, state, training, key):
        """``(y, cache)``; ``key`` (an int in [0, 2**64)) is used in training only."""
        if not training or self.p == 0:
            return x.copy(), None
        key = _validate.uint64("key", key)
        return _layer_math.dropout(x, self.p, key), key

    def backward_numpy(self, grad, cache, params):
        if cache is None:
            return grad.copy(), {}
        return _layer_math.dropout(grad, self.p, cache), {}

    def config(self) -> dict:
        return {"type": "Dropout", "p": self.p}

    def to_torch(self, torch, dtype):
        return torch.nn.Dropout(p=self.p)

    @classmethod
    def from_torch(cls, module) -> Dropout:
        _torch_module_of(module, cls)
        return cls(module.p)

    def onnx_nodes(self, onnx, name: str, x: str, opset: int, dtype) -> tuple[list, list]:
        """Inference: an ``Identity``."""
        return [onnx.helper.make_node("Identity", [x], [name], name=name)], []

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


class _Normalization(Layer, abstract=True):
    """A normalisation of rows of width ``n`` with a per-column scale ``W`` (ones), shape
    (n,), and its gradient ``dW`` after :meth:`Network.backward`; a kind with a shift adds
    ``b`` (zeros) and ``db``."""

    W = _Param()
    dW = _Grad()

    def __init__(self, n: int, eps: float):
        self.n = _validate.positive_int("n", n)
        self.eps = self._checked_eps(eps)
        # Allocated when the layer joins a network (or is assigned), so describing a
        # layer of any claimed size, as loading a file does, allocates nothing.
        self._W = self._dW = None

    def _checked_eps(self, eps):
        return _validate.real("eps", eps, strict=True)

    def eps_for(self, dtype) -> float:
        """The eps a network of ``dtype`` adds to the variance."""
        return self.eps

    def out_width(self, width: int | None) -> int:
        if width is not None and width != self.n:
            raise ValueError(f"{self!r} takes rows of width {self.n}, got {width}")
        return self.n

    def initial_param(self, name: str, rng: np.random.Generator) -> np.ndarray:
        """Scale ones, shift zeros."""
        return np.ones(self.n) if name == "W" else np.zeros(self.n)

    def _onnx_weights(self, onnx, name: str, dtype, **arrays) -> tuple[list, list]:
        """Initializers ``name.<p>`` of the parameters ``p`` and ``name.<key>`` of
        ``arrays``, all in ``dtype`` (the network's), and their names."""
        named = {**{p: getattr(self, p) for p in self.param_shapes()}, **arrays}
        inits = [
            onnx.numpy_helper.from_array(np.array(v, dtype=dtype), f"{name}.{k}")
            for k, v in named.items()
        ]
        return inits, [f"{name}.{k}" for k in named]


class _Shifted(_Normalization, abstract=True):
    """A normalisation with a per-column shift ``b`` (zeros) after the scale."""

    b = _Param()
    db = _Grad()

    def __init__(self, n: int, eps: float):
        super().__init__(n, eps)
        self._b = self._db = None


class _RowNorm(_Normalization, abstract=True):
    """A normalisation of each row by its own statistics: the core's row norm of ``kind``
    (a ``_core.NormKind`` member, named as the class). Its parameters are the core's
    layout of that kind (``W``, and ``b`` when it has a shift); ``centred`` says whether
    its statistics are about the row's mean (else about 0), for its NumPy maths."""

    centred = True

    def core_spec(self, width: int, dtype) -> _core.LayerSpec:
        return _core.LayerSpec(
            _core.LayerKind.RowNorm, self.n, self.n, eps=self.eps_for(dtype), norm=self.kind
        )

    def forward_numpy(self, x, params, state, training, key):
        xhat, rstd = _layer_math.normalize(x, 1, self.eps_for(x.dtype), self.centred)
        return _layer_math.affine(xhat, params["W"], params.get("b"), x.dtype), (xhat, rstd)

    def backward_numpy(self, grad, cache, params):
        xhat, rstd = cache
        dx, dW, db = _layer_math.normalize_backward(grad, xhat, rstd, params["W"], 1, self.centred)
        return dx, ({"W": dW, "b": db} if "b" in params else {"W": dW})

    def config(self) -> dict:
        return {"type": type(self).__name__, "n": self.n, "eps": self.eps}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.n}, eps={self.eps})"


class LayerNorm(_RowNorm, _Shifted):
    """``torch.nn.LayerNorm((n,))``: each row normalised by its own mean and biased
    variance, then ``* W + b``.

    Parameters
    ----------
    n : int
        Width of the rows.
    eps : float
        Added to the variance inside the square root, > 0.

    Attributes
    ----------
    W, b : ndarray, shape (n,)
        Scale (ones) and shift (zeros); values set before the layer joins a network are
        kept.
    dW, db : ndarray
        Gradients of the loss after :meth:`Network.backward`.
    """

    torch_type = "LayerNorm"
    kind = _core.NormKind.LayerNorm

    def __init__(self, n: int, eps: float = 1e-5):
        super().__init__(n, eps)

    def to_torch(self, torch, dtype):
        module = torch.nn.LayerNorm(self.n, eps=self.eps, elementwise_affine=True, dtype=dtype)
        _torch_copy(torch, module.weight, self.W)
        _torch_copy(torch, module.bias, self.b)
        return module

    @classmethod
    def from_torch(cls, module) -> LayerNorm:
        _torch_module_of(module, cls)
        if (
            len(module.normalized_shape) != 1
            or not module.elementwise_affine
            or module.bias is None
        ):
            raise ValueError(
                "LayerNorm.from_torch takes a LayerNorm over one dimension with "
                f"weight and bias, got {module!r}"
            )
        layer = cls(module.normalized_shape[0], eps=module.eps)
        layer.W = module.weight.detach().cpu().numpy()
        layer.b = module.bias.detach().cpu().numpy()
        return layer

    def onnx_nodes(self, onnx, name: str, x: str, opset: int, dtype) -> tuple[list, list]:
        """``LayerNormalization`` from opset 17; before it, the same from ``ReduceMean``,
        ``Sub``, ``Mul``, ``Add``, ``Sqrt`` and ``Div``."""
        make = onnx.helper.make_node
        if opset >= 17:
            inits, (w, b) = self._onnx_weights(onnx, name, dtype)
            return [
                make("LayerNormalization", [x, w, b], [name], name=name, axis=-1, epsilon=self.eps)
            ], inits
        inits, (w, b, eps) = self._onnx_weights(onnx, name, dtype, eps=self.eps)
        p = name + "."  # the intermediate tensors' names
        nodes = [
            make("ReduceMean", [x], [p + "mean"], axes=[-1], keepdims=1),
            make("Sub", [x, p + "mean"], [p + "centred"]),
            make("Mul", [p + "centred", p + "centred"], [p + "square"]),
            make("ReduceMean", [p + "square"], [p + "var"], axes=[-1], keepdims=1),
            make("Add", [p + "var", eps], [p + "var_eps"]),
            make("Sqrt", [p + "var_eps"], [p + "std"]),
            make("Div", [p + "centred", p + "std"], [p + "xhat"]),
            make("Mul", [p + "xhat", w], [p + "scaled"]),
            make("Add", [p + "scaled", b], [name], name=name),
        ]
        return nodes, inits


class RMSNorm(_RowNorm):
    """``torch.nn.RMSNorm((n,))``: each row divided by its root mean square,
    ``x / sqrt(mean(x**2) + eps)``, then ``* W``; no shift.

    Parameters
    ----------
    n : int
        Width of the rows.
    eps : float or None
        Added to the mean square inside the square root, > 0; None (torch's default) is
        the machine epsilon of the network's dtype (``numpy.finfo(dtype).eps``).

    Attributes
    ----------
    W : ndarray, shape (n,)
        Scale (ones); values set before the layer joins a network are kept.
    dW : ndarray
        Gradient of the loss after :meth:`Network.backward`.
    """

    torch_type = "RMSNorm"
    kind = _core.NormKind.RMSNorm
    centred = False

    def __init__(self, n: int, eps: float | None = None):
        super().__init__(n, eps)

    def _checked_eps(self, eps):
        return None if eps is None else super()._checked_eps(eps)

    def eps_for(self, dtype) -> float:
        return float(np.finfo(dtype).eps) if self.eps is None else self.eps

    def to_torch(self, torch, dtype):
        module = torch.nn.RMSNorm(self.n, eps=self.eps, elementwise_affine=True, dtype=dtype)
        _torch_copy(torch, module.weight, self.W)
        return module

    @classmethod
    def from_torch(cls, module) -> RMSNorm:
        _torch_module_of(module, cls)
        if len(module.normalized_shape) != 1 or not module.elementwise_affine:
            raise ValueError(
                "RMSNorm.from_torch takes an RMSNorm over one dimension with a weight, "
                f"got {module!r}"
            )
        layer = cls(module.normalized_shape[0], eps=module.eps)
        layer.W = module.weight.detach().cpu().numpy()
        return layer

    def onnx_nodes(self, onnx, name: str, x: str, opset: int, dtype) -> tuple[list, list]:
        """``ReduceMean(x * x) + eps``, ``Sqrt``, ``Div`` and ``Mul`` by ``W`` (no ONNX
        operator of opset 17 is RMS norm)."""
        make = onnx.helper.make_node
        inits, (w, eps) = self._onnx_weights(onnx, name, dtype, eps=self.eps_for(dtype))
        p = name + "."  # the intermediate tensors' names
        if opset >= 18:  # ReduceMean takes its axes as an input from opset 18
            inits.append(onnx.numpy_helper.from_array(np.array([-1], np.int64), p + "axes"))
            mean = make("ReduceMean", [p + "square", p + "axes"], [p + "mean_square"], keepdims=1)
        else:
            mean = make("ReduceMean", [p + "square"], [p + "mean_square"], axes=[-1], keepdims=1)
        nodes = [
            make("Mul", [x, x], [p + "square"]),
            mean,
            make("Add", [p + "mean_square", eps], [p + "mean_square_eps"]),
            make("Sqrt", [p + "mean_square_eps"], [p + "rms"]),
            make("Div", [x, p + "rms"], [p + "xhat"]),
            make("Mul", [p + "xhat", w], [name], name=name),
        ]
        return nodes, inits


class BatchNorm(_Shifted):
    """``torch.nn.BatchNorm1d(n)``: each column normalised, in training by the batch's
    mean and biased variance (at least 2 rows), in inference by the running statistics,
    then ``* W + b``. Each training pass moves the running mean and variance towards the
    batch's mean and unbiased variance by ``momentum``.

    Parameters
    ----------
    n : int
        Width of the rows (torch's ``num_features``).
    eps : float
        Added to the variance inside the square root, > 0.
    momentum : float
        In (0, 1]: the weight of the batch's statistics in the running ones.

    Attributes
    ----------
    W, b : ndarray, shape (n,)
        Scale (ones) and shift (zeros); values set before the layer joins a network are
        kept.
    dW, db : ndarray
        Gradients of the loss after :meth:`Network.backward`.
    running_mean, running_var : ndarray, shape (n,)
        The running statistics (zeros and ones at first); state, not trained.
    """

    torch_type = "BatchNorm1d"
    kind = _core.LayerKind.BatchNorm
    running_mean = _Param()
    running_var = _Param()

    def __init__(self, n: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(n, eps)
        self.momentum = _validate.momentum_fraction(momentum)
        self._running_mean = self._running_var = None

    def core_spec(self, width: int, dtype) -> _core.LayerSpec:
        return _core.LayerSpec(self.kind, self.n, self.n, eps=self.eps, momentum=self.momentum)

    def state_init(self, dtype) -> dict[str, np.ndarray]:
        """Copies of the running statistics in ``dtype``: zeros and ones, unless set."""
        mean, var = self._running_mean, self._running_var
        return {
            "running_mean": np.zeros(self.n, dtype) if mean is None else mean.astype(dtype),
            "running_var": np.ones(self.n, dtype) if var is None else var.astype(dtype),
        }

    def forward_numpy(self, x, params, state, training, key):
        """``(y, cache)``; in training ``state``'s running statistics are updated in
        place."""
        if training:
            _validate.batch_rows(x)
            xhat, rstd = _layer_math.normalize(x, 0, self.eps)
            _layer_math.update_running_stats(
                x, state["running_mean"], state["running_var"], self.momentum
            )
            axis = 0
        else:
            xhat, rstd = _layer_math.running_normalize(
                x, state["running_mean"], state["running_var"], self.eps
            )
            axis = None
        return _layer_math.affine(xhat, params["W"], params["b"], x.dtype), (xhat, rstd, axis)

    def backward_numpy(self, grad, cache, params):
        xhat, rstd, axis = cache
        dx, dW, db = _layer_math.normalize_backward(grad, xhat, rstd, params["W"], axis)
        return dx, {"W": dW, "b": db}

    def config(self) -> dict:
        return {"type": "BatchNorm", "n": self.n, "eps": self.eps, "momentum": self.momentum}

    def to_torch(self, torch, dtype):
        module = torch.nn.BatchNorm1d(
            self.n,
            eps=self.eps,
            momentum=self.momentum,
            affine=True,
            track_running_stats=True,
            dtype=dtype,
        )
        for target, source in (
            (module.weight, self.W),
            (module.bias, self.b),
            (module.running_mean, self.running_mean),
            (module.running_var, self.running_var),
        ):
            _torch_copy(torch, target, source)
        return module

    @classmethod
    def from_torch(cls, module) -> BatchNorm:
        _torch_module_of(module, cls)
        if not module.affine or not module.track_running_stats or module.momentum is None:
            raise ValueError(
                "BatchNorm.from_torch takes a BatchNorm1d with affine=True, "
                "track_running_stats=True and a momentum (not None), got "
                f"{module!r}"
            )
        layer = cls(module.num_features, eps=module.eps, momentum=module.momentum)
        layer.W = module.weight.detach().cpu().numpy()
        layer.b = module.bias.detach().cpu().numpy()
        layer.running_mean = module.running_mean.detach().cpu().numpy()
        layer.running_var = module.running_var.detach().cpu().numpy()
        return layer

    def onnx_nodes(self, onnx, name: str, x: str, opset: int, dtype) -> tuple[list, list]:
        """Inference: a ``BatchNormalization`` with the running statistics."""
        inits, names = self._onnx_weights(
            onnx, name, dtype, running_mean=self.running_mean, running_var=self.running_var
        )
        return [
            onnx.helper.make_node(
                "BatchNormalization", [x, *names], [name], name=name, epsilon=self.eps
            )
        ], inits

    def __repr__(self) -> str:
        return f"BatchNorm({self.n}, eps={self.eps}, momentum={self.momentum})"
