"""The elementwise activations, one class each: its settings, the NumPy maths of its
forward and backward pass (PyTorch's formulas), and its PyTorch and ONNX twins.

``kind`` is the class's member of ``_core.Act`` (the C++ kernels compute it from
csrc/common/act_math.hpp), and ``name``, derived from it (``"leaky_relu"``), names its
``fastbp.ops`` and ``fastbp.reference`` functions. Settings reach C++ as ``act_args``.
"""

from __future__ import annotations

import inspect

import numpy as np

from .. import _core, _names, _validate
from .layers import Layer

#: The classes fastbp exports at its top level.
CLASSES = [
    "Activation",
    "Sigmoid",
    "ReLU",
    "Tanh",
    "Identity",
    "LeakyReLU",
    "ELU",
    "GELU",
    "SiLU",
    "Softplus",
]
__all__ = [*CLASSES, "ACTIVATIONS", "for_name", "op_signature"]

#: The class computing each core activation, by ``name`` (``"relu"`` -> ``ReLU``;
#: ``"gelu_tanh"`` -> ``GELU``, whose ``approximate="tanh"`` computes it).
ACTIVATIONS: dict[str, type] = {}


def _erfc(x: np.ndarray) -> np.ndarray:
    """The complementary error function elementwise in x's dtype: NumPy has none, so
    GELU's NumPy maths (backend="numpy", fastbp.reference) borrow SciPy's."""
    try:
        from scipy import special
    except ImportError as e:
        raise ImportError("GELU's NumPy maths need SciPy's erfc: pip install scipy") from e
    return special.erfc(x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function through exp(-|x|), in x's dtype, without overflow."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _real(name, value):
    """A finite real number, any sign."""
    return _validate.real(name, value, low=-np.inf)


class Activation(Layer, abstract=True):
    """An elementwise activation ``y = f(x)`` (no parameters).

    Subclasses name their constructor keywords in ``settings`` (stored as attributes of
    those names, which are also their PyTorch twin's), the ones C++ takes as
    ``(a, b)`` in ``act_settings``, and implement ``_numpy_forward(x)`` and
    ``_numpy_backward(x, y, grad)``.
    """

    kind: _core.Act
    name = ""
    #: core kinds the class computes (more than one when a setting selects the kind)
    kinds: tuple = ()
    settings: tuple[str, ...] = ()
    act_settings: tuple[str, ...] = ()
    #: the ONNX operator computing it, for the activations that are one node
    onnx_op = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "kind"):
            cls.name = _names.snake_case(cls.kind.name)
            cls.kinds = cls.__dict__.get("kinds") or (cls.kind,)
            # The torch.nn class it maps to: fastbp's activations share their names.
            cls.torch_type = cls.__name__
            if cls.__module__ == __name__:
                for kind in cls.kinds:
                    ACTIVATIONS[_names.snake_case(kind.name)] = cls

    @classmethod
    def for_kind(cls, kind: _core.Act) -> Activation:
        """The activation computing ``kind`` (one of ``cls.kinds``) with default settings."""
        return cls()

    def with_act_settings(self, **values) -> Activation:
        """A copy of this activation with some of its ``act_settings`` changed."""
        return type(self)(**{**{s: getattr(self, s) for s in self.settings}, **values})

    @property
    def act_args(self) -> tuple[float, float]:
        """``(a, b)``, the settings C++ takes (``kernels::ActParams``), unused ones 0."""
        values = [float(getattr(self, s)) for s in self.act_settings]
        return tuple(values + [0.0] * (2 - len(values)))

    # ---- the layer protocol ---------------------------------------------------------

    def out_width(self, width: int | None) -> int:
        if width is None:
            raise ValueError(f"an activation cannot be the first layer, got {self!r}")
        return width

    def core_spec(self, width: int, dtype) -> _core.LayerSpec:
        a, b = self.act_args
        return _core.LayerSpec(_core.LayerKind.Activation, width, width, self.kind, a, b)

    def forward_numpy(self, x, params, state, training, key):
        y = self._numpy_forward(x)
        return y, (x, y)

    def backward_numpy(self, grad, cache, params):
        x, y = cache
        return self._numpy_backward(x, y, grad), {}

    def config(self) -> dict:
        return {"type": type(self).__name__, **{s: getattr(self, s) for s in self.settings}}

    def to_torch(self, torch, dtype):
        return getattr(torch.nn, self.torch_type)(**{s: getattr(self, s) for s in self.settings})

    @classmethod
    def from_torch(cls, module) -> Activation:
        return cls(**{s: getattr(module, s) for s in cls.settings})

    def onnx_nodes(self, onnx, name: str, x: str, opset: int, dtype) -> tuple[list, list]:
        """Nodes computing this activation of the tensor ``x`` into ``name`` (opset
        ``opset``, constants in ``dtype``), and their initializers."""
        return [onnx.helper.make_node(self.onnx_op, [x], [name], name=name)], []

    def _numpy_forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _numpy_backward(self, x: np.ndarray, y: np.ndarray, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        inner = ", ".join(f"{s}={getattr(self, s)!r}" for s in self.settings)
        return f"{type(self).__name__}({inner})"


def _float32(dtype) -> bool:
    """Whether ONNX's own operator can compute the activation in ``dtype``: its float
    attributes are float32, and onnxruntime has float32 kernels only for most of them; a
    float64 network composes it from double-precision constants instead."""
    return np.dtype(dtype) == np.float32


class _Graph:
    """Builds composed ONNX nodes: fresh tensor names under ``name``, constants in ``dtype``."""

    def __init__(self, onnx, name: str, dtype):
        self.onnx, self.name, self.dtype = onnx, name, np.dtype(dtype)
        self.nodes, self.initializers = [], []

    def const(self, value: float) -> str:
        tensor = f"{self.name}.c{len(self.initializers)}"
        self.initializers.append(
            self.onnx.numpy_helper.from_array(np.array(value, dtype=self.dtype), tensor)
        )
        return tensor

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs) -> str:
        out = out or f"{self.name}.t{len(self.nodes)}"
        self.nodes.append(
            self.onnx.helper.make_node(op_type, list(inputs), [out], name=out, **attrs)
        )
        return out


class Sigmoid(Activation):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, computed without overflow."""

    kind = _core.Act.Sigmoid
    onnx_op = "Sigmoid"

    def _numpy_forward(self, x):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    def _numpy_backward(self, x, y, grad):
        return grad * y * (1 - y)


class ReLU(Activation):
    """``max(x, 0)``, with NaN kept as NaN, as in torch."""

    kind = _core.Act.ReLU
    onnx_op = "Relu"

    def _numpy_forward(self, x):
        return np.where(x < 0, x.dtype.type(0), x)  # NaN and -0 pass through, as in torch

    def _numpy_backward(self, x, y, grad):
        return grad * ~(y <= 0)  # the gradient passes where y is NaN, as in torch


class Tanh(Activation):
    """Hyperbolic tangent."""

    kind = _core.Act.Tanh
    onnx_op = "Tanh"

    def _numpy_forward(self, x):
        return np.tanh(x)

    def _numpy_backward(self, x, y, grad):
        return grad * (1 - y * y)


class Identity(Activation):
    """``f(x) = x``: a linear output."""

    kind = _core.Act.Identity
    onnx_op = "Identity"

    def _numpy_forward(self, x):
        return x.copy()

    def _numpy_backward(self, x, y, grad):
        return grad.copy()


class LeakyReLU(Activation):
    """``x`` where ``x > 0``, else ``negative_slope * x`` (``torch.nn.LeakyReLU``).

    Parameters
    ----------
    negative_slope : float
        Finite; the slope for ``x <= 0``.
    """

    kind = _core.Act.LeakyReLU
    settings = act_settings = ("negative_slope",)

    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = _real("negative_slope", negative_slope)

    def _numpy_forward(self, x):
        return np.where(x > 0, x, x * x.dtype.type(self.negative_slope))

    def _numpy_backward(self, x, y, grad):
        return np.where(x > 0, grad, grad * grad.dtype.type(self.negative_slope))

    def onnx_nodes(self, onnx, name, x, opset, dtype):
        if _float32(dtype):
            return [
                onnx.helper.make_node(
                    "LeakyRelu", [x], [name], name=name, alpha=self.negative_slope
                )
            ], []
        g = _Graph(onnx, name, dtype)
        g.op(
            "Where",
            g.op("Greater", x, g.const(0.0)),
            x,
            g.op("Mul", x, g.const(self.negative_slope)),
            out=name,
        )
        return g.nodes, g.initializers


class ELU(Activation):
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)`` (``torch.nn.ELU``).

    Parameters
    ----------
    alpha : float
        Finite; the limit ``-alpha`` for ``x -> -inf``.
    """

    kind = _core.Act.ELU
    settings = act_settings = ("alpha",)

    def __init__(self, alpha: float = 1.0):
        self.alpha = _real("alpha", alpha)

    def _numpy_forward(self, x):
        alpha = x.dtype.type(self.alpha)
        with np.errstate(over="ignore"):
            return np.where(x <= 0, np.expm1(x) * alpha, x)

    def _numpy_backward(self, x, y, grad):
        alpha = grad.dtype.type(self.alpha)
        with np.errstate(over="ignore"):
            return np.where(x <= 0, grad * (alpha * np.exp(x)), grad)

    def onnx_nodes(self, onnx, name, x, opset, dtype):
        if _float32(dtype):
            return [onnx.helper.make_node("Elu", [x], [name], name=name, alpha=self.alpha)], []
        g = _Graph(onnx, name, dtype)
        negative = g.op("Mul", g.const(self.alpha), g.op("Sub", g.op("Exp", x), g.const(1.0)))
        g.op("Where", g.op("Greater", x, g.const(0.0)), x, negative, out=name)
        return g.nodes, g.initializers


#: sqrt(2 / pi), 1 / sqrt(2), 1 / sqrt(2 pi) and the cubic's coefficient, as PyTorch's
#: GELU builds them from M_ constants.
_GELU_TANH_BETA = 1.4142135623730951 * 1.1283791670955126 * 0.5
_SQRT1_2 = 0.7071067811865476
_GELU_ERF_BETA = 1.1283791670955126 * 0.7071067811865476 * 0.5
_GELU_KAPPA = 0.044715
GELU_APPROXIMATIONS = ("none", "tanh")


class GELU(Activation):
    """Gaussian error linear unit ``x * Phi(x)`` (``torch.nn.GELU``).

    Parameters
    ----------
    approximate : {"none", "tanh"}
        ``"none"``: the exact ``0.5 * x * (1 + erf(x / sqrt(2)))``; ``"tanh"``:
        ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))``.
    """

    kind = _core.Act.GELU
    kinds = (_core.Act.GELU, _core.Act.GELUTanh)
    settings = ("approximate",)

    def __init__(self, approximate: str = "none"):
        if not isinstance(approximate, str):
            raise TypeError(f"approximate must be a str, got {type(approximate).__name__}")
        _validate.choice("approximate", approximate, GELU_APPROXIMATIONS)
        self.approximate = approximate
        if approximate == "tanh":
            self.kind, self.name = _core.Act.GELUTanh, _names.snake_case("GELUTanh")

    @classmethod
    def for_kind(cls, kind):
        return cls(approximate="tanh" if kind == _core.Act.GELUTanh else "none")

    def _numpy_forward(self, x):
        c = x.dtype.type
        # The cancellation-free forms C++ computes (common/act_math.hpp):
        # 1 + erf(x / sqrt 2) = erfc(-x / sqrt 2), (1 + tanh(u)) / 2 = sigmoid(2u).
        if self.approximate == "tanh":
            inner = c(_GELU_TANH_BETA) * (x + c(_GELU_KAPPA) * (x * x * x))
            return x * _sigmoid(c(2) * inner)
        return x * c(0.5) * _erfc(-x * c(_SQRT1_2))

    def _numpy_backward(self, x, y, grad):
        c = x.dtype.type
        if self.approximate == "tanh":
            x_sq = x * x
            inner = c(_GELU_TANH_BETA) * (x + c(_GELU_KAPPA) * x_sq * x)
            up, down = _sigmoid(c(2) * inner), _sigmoid(c(-2) * inner)
            inner_derivative = c(_GELU_TANH_BETA) * (1 + c(3 * _GELU_KAPPA) * x_sq)
            return grad * (up + c(2) * x * up * down * inner_derivative)
        cdf = c(0.5) * _erfc(-x * c(_SQRT1_2))
        pdf = np.exp(c(-0.5) * x * x) * c(_GELU_ERF_BETA)
        return grad * (cdf + x * pdf)

    def onnx_nodes(self, onnx, name, x, opset, dtype):
        if opset >= 20 and _float32(dtype):
            return [
                onnx.helper.make_node("Gelu", [x], [name], name=name, approximate=self.approximate)
            ], []
        g = _Graph(onnx, name, dtype)
        if self.approximate == "tanh":
            cube = g.op("Mul", g.op("Mul", x, x), x)
            inner = g.op(
                "Mul",
                g.const(_GELU_TANH_BETA),
                g.op("Add", x, g.op("Mul", g.const(_GELU_KAPPA), cube)),
            )
            phi = g.op("Add", g.const(1.0), g.op("Tanh", inner))
        else:
            scaled = g.op("Mul", x, g.const(_SQRT1_2))
            if _float32(dtype):
                erf = g.op("Erf", scaled)
            else:  # onnxruntime has no double Erf: float64 gets erf at float32 precision
                erf = g.op(
                    "Cast",
                    g.op("Erf", g.op("Cast", scaled, to=onnx.TensorProto.FLOAT)),
                    to=onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)),
                )
            phi = g.op("Add", g.const(1.0), erf)
        g.op("Mul", g.op("Mul", g.const(0.5), x), phi, out=name)
        return g.nodes, g.initializers


class SiLU(Activation):
    """Sigmoid linear unit ``x / (1 + exp(-x))`` (``torch.nn.SiLU``, swish)."""

    kind = _core.Act.SiLU

    def _numpy_forward(self, x):
        with np.errstate(over="ignore"):
            return x / (1 + np.exp(-x))

    def _numpy_backward(self, x, y, grad):
        with np.errstate(over="ignore"):
            s = 1 / (1 + np.exp(-x))
        return grad * (s * (1 + x * (1 - s)))

    def onnx_nodes(self, onnx, name, x, opset, dtype):
        g = _Graph(onnx, name, dtype)
        g.op("Mul", x, g.op("Sigmoid", x), out=name)
        return g.nodes, g.initializers


def for_name(name: str) -> Activation:
    """The activation computing the core activation ``name`` with default settings."""
    return ACTIVATIONS[name].for_kind(_names.ACTIVATIONS[name])


def op_signature(activation: Activation, arrays: tuple[str, ...]) -> inspect.Signature:
    """The signature of an op of ``activation``: the array arguments ``arrays``, then its
    ``act_settings`` with the activation's values as defaults."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature(
        [inspect.Parameter(a, kind) for a in arrays]
        + [
            inspect.Parameter(s, kind, default=getattr(activation, s))
            for s in activation.act_settings
        ]
    )


class Softplus(Activation):
    """``log(1 + exp(beta * x)) / beta``, and ``x`` where ``beta * x > threshold``
    (``torch.nn.Softplus``).

    Parameters
    ----------
    beta : float
        Finite and > 0.
    threshold : float
        Finite; above it (in ``beta * x``) the function is linear.
    """

    kind = _core.Act.Softplus
    settings = act_settings = ("beta", "threshold")

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        self.beta = _validate.real("beta", beta, strict=True)
        self.threshold = _real("threshold", threshold)

    def _numpy_forward(self, x):
        beta, threshold = x.dtype.type(self.beta), x.dtype.type(self.threshold)
        with np.errstate(over="ignore"):
            return np.where(x * beta > threshold, x, np.log1p(np.exp(x * beta)) / beta)

    def _numpy_backward(self, x, y, grad):
        beta, threshold = x.dtype.type(self.beta), x.dtype.type(self.threshold)
        with np.errstate(over="ignore", invalid="ignore"):
            z = np.exp(x * beta)
            return np.where(x * beta > threshold, grad, grad * (z / (z + 1)))

    def onnx_nodes(self, onnx, name, x, opset, dtype):
        g = _Graph(onnx, name, dtype)
        bx = g.op("Mul", x, g.const(self.beta))
        # onnxruntime has no double Softplus: float64 composes log(1 + exp(bx)).
        soft = (
            g.op("Softplus", bx)
            if _float32(dtype)
            else g.op("Log", g.op("Add", g.op("Exp", bx), g.const(1.0)))
        )
        smooth = g.op("Div", soft, g.const(self.beta))
        g.op("Where", g.op("Greater", bx, g.const(self.threshold)), x, smooth, out=name)
        return g.nodes, g.initializers
