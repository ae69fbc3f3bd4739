"""Input checks and conversions shared by the public API and the NumPy reference.
Pure NumPy (only the reduction names come from the core); every check runs before any
state changes."""

from __future__ import annotations

import inspect
import numbers
import sys
from collections.abc import Callable

import numpy as np

from . import _names

DTYPES = {"float32": np.float32, "float64": np.float64}
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
REDUCTIONS = tuple(_names.REDUCTIONS)


def choice(name: str, value, allowed) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")


INT64_MAX = 2**63 - 1


def dtype_name(value) -> str:
    """``"float32"`` or ``"float64"`` from that name, a NumPy dtype or a scalar type."""
    name = value
    if value is not None and not isinstance(value, str):  # np.dtype(None) is float64
        try:
            name = np.dtype(value).name
        except TypeError:
            name = None
    if name not in DTYPES:
        raise ValueError(
            f"dtype must be one of {sorted(DTYPES)} (or their NumPy dtypes), got {value!r}"
        )
    return name


#: The compute dtypes a float32 network or product may use besides its own.
COMPUTE_DTYPES = ("bfloat16",)
#: What a bfloat16 GEMM path does with values below 2**-126 (build_info()["bf16_subnormals"]).
SUBNORMAL_RULES = ("kept", "flushed")


def compute_dtype(value, dtype) -> str | None:
    """``value`` checked as a compute dtype (None: compute in ``dtype``, the storage
    dtype): ``"bfloat16"`` needs float32 storage."""
    if value is None:
        return None
    if value not in COMPUTE_DTYPES:
        raise ValueError(
            f"compute_dtype must be None or one of {list(COMPUTE_DTYPES)}, got {value!r}"
        )
    if np.dtype(dtype) != np.float32:
        raise ValueError(
            f"compute_dtype={value!r} needs float32 parameters and operands "
            f"(float32 master weights), got {np.dtype(dtype)}"
        )
    return value


def subnormals(value) -> str:
    """``value`` checked as a bfloat16 path's rule for subnormals: "kept" or "flushed"."""
    if value not in SUBNORMAL_RULES:
        raise ValueError(f"subnormals must be one of {list(SUBNORMAL_RULES)}, got {value!r}")
    return value


def integer(name: str, value) -> int:
    """An int (a Python or NumPy integer, not a bool), as a Python int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return int(value)


def positive_int(name: str, value) -> int:
    """An int in [1, 2**63 - 1]: every count fastbp takes reaches C++ as an int64."""
    value = integer(name, value)
    if not 1 <= value <= INT64_MAX:
        raise ValueError(f"{name} must be in [1, 2**63 - 1], got {value}")
    return value


def real(name: str, value, *, low: float = 0.0, strict: bool = False) -> float:
    """A finite real >= low (or > low when strict)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < low or (strict and value == low):
        raise ValueError(
            f"{name} must be a finite number {'>' if strict else '>='} {low}, got {value}"
        )
    return value


def flag(name: str, value) -> bool:
    """A bool (not a number standing for one)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def numeric_array(name: str, value) -> np.ndarray:
    """``value`` as an array of real numbers (bool, complex, object and strings refused).
    NumPy arrays, the buffer protocol, ``__array__`` and DLPack producers on the CPU are
    read without a copy."""
    if not isinstance(value, np.ndarray) and hasattr(value, "__dlpack__"):
        try:
            value = np.from_dlpack(value)
        except (BufferError, RuntimeError, TypeError, ValueError):
            pass  # not on the CPU, or needs detaching: np.asarray says why, or converts
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def float_array(name: str, value, dtype) -> np.ndarray:
    """``value`` as a C-contiguous array of ``dtype``, copied only when it is not one.
    Values too large for ``dtype`` become inf, which the finiteness checks report."""
    return _contiguous(numeric_array(name, value), dtype)


def _contiguous(arr: np.ndarray, dtype) -> np.ndarray:
    if arr.dtype == dtype and arr.flags.c_contiguous:
        return arr  # the common case, without errstate's cost (microseconds per call)
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(arr, dtype=dtype)


def finite(name: str, arr: np.ndarray) -> np.ndarray:
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def probabilities(name: str, t: np.ndarray) -> None:
    """Every value of ``t`` in [0, 1]; the first that is not is reported, as _core does."""
    bad = np.flatnonzero(~((t >= 0) & (t <= 1)))
    if bad.size:
        raise ValueError(
            f"{name} must lie in [0, 1], got {float(t.flat[bad[0]]):f} at flat index {bad[0]}"
        )


def nonnegative(name: str, t: np.ndarray) -> None:
    """Every value of ``t`` >= 0; the first that is not is reported, as _core does."""
    bad = np.flatnonzero(~(t >= 0))
    if bad.size:
        raise ValueError(
            f"{name} must be >= 0, got {float(t.flat[bad[0]]):f} at flat index {bad[0]}"
        )


def row_weights(weights: np.ndarray, rows: int) -> np.ndarray:
    """Sample weights: shape (rows,), finite and >= 0 (the first negative is reported)."""
    if weights.shape != (rows,):
        raise ValueError(
            f"sample_weight must have one weight per row, shape ({rows},), got {weights.shape}"
        )
    finite("sample_weight", weights)
    negative = np.flatnonzero(weights < 0)
    if negative.size:
        raise ValueError(
            f"sample_weight must be >= 0, got {weights[negative[0]]} at index {negative[0]}"
        )
    return weights


def label_range(labels: np.ndarray, classes: int) -> None:
    """Class labels must lie in [0, classes); the first that does not is reported."""
    bad = np.flatnonzero((labels < 0) | (labels >= classes))
    if bad.size:
        raise ValueError(
            f"class labels must be in [0, {classes}), got {labels[bad[0]]} at index {bad[0]}"
        )


def class_labels(t: np.ndarray, classes: int) -> np.ndarray | None:
    """The class labels a target ``t`` of a loss over ``classes`` outputs holds, as int64
    (N,); None when ``t`` is to be read as probability rows (N, C) instead.

    Labels have shape (N,), or (N, 1) when there is more than one output (one output
    makes (N, 1) a probability row: the one-class softmax loss is 0 for either), and are
    integers or floats of whole value (``1.0``), as Keras's sparse cross-entropy and
    scikit-learn take them. A float that is not a whole number (NaN included) or not a
    class is reported with its index before any conversion; integer labels are checked in
    range by the caller."""
    if t.ndim == 2 and t.shape[1] == 1 and classes != 1:
        t = t[:, 0]
    elif t.ndim != 1:
        return None
    if t.dtype.kind == "f":
        fractional = np.flatnonzero(t != np.floor(t))
        if fractional.size:
            i = fractional[0]
            raise ValueError(
                f"class labels must be whole numbers, got {t[i]} at index {i} "
                f"(a target of probabilities has shape (N, {classes}))"
            )
        label_range(t, classes)  # before the conversion, which would wrap a huge value
    return np.ascontiguousarray(t, dtype=np.int64)


def common_float(**named) -> list:
    """Each named input as a C-contiguous array of their common float dtype: NumPy's
    promotion with float32, so float32 stays float32 and integers become float64."""
    arrays = [numeric_array(k, v) for k, v in named.items()]
    dtype = arrays[0].dtype
    if dtype not in FLOAT_DTYPES or any(a.dtype != dtype for a in arrays):
        dtype = np.result_type(*arrays, np.float32)
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"inputs must be float32 or float64 (or convertible), got {dtype}")
    return [_contiguous(a, dtype) for a in arrays]


def same_shape(**named) -> None:
    shapes = {k: np.shape(v) for k, v in named.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(
            "shapes must match, got " + ", ".join(f"{k} {s}" for k, s in shapes.items())
        )


def loss_inputs(y, target, reduction: str, labels_allowed: bool):
    """Outputs (N, C) and a target for a loss: float rows of the same shape, or (when
    ``labels_allowed``) class labels as :func:`class_labels` reads them, as int64 (N,),
    checked in range."""
    choice("reduction", reduction, REDUCTIONS)
    t = numeric_array("target", target)
    if labels_allowed and t.shape[1:] in ((), (1,)):
        (y,) = common_float(y=y)
        _two_d_outputs(y)
        labels = class_labels(t, y.shape[1])
        if labels is not None:
            if labels.shape != (y.shape[0],):
                raise ValueError(
                    f"class labels must have shape (N,) or (N, 1) for outputs "
                    f"(N, C), got {t.shape} for {y.shape}"
                )
            label_range(labels, y.shape[1])
            return y, labels
    same_shape(y=y, target=t)
    y, t = common_float(y=y, target=t)
    _two_d_outputs(y)
    return y, t


def _two_d_outputs(y: np.ndarray) -> None:
    if y.ndim != 2:
        raise ValueError(f"a loss takes 2-D outputs (N, C), got shape {y.shape}")


def update_buffers(param, grad, states: dict) -> np.ndarray:
    """Checked buffers of an in-place optimizer update: ``param`` and the named ``states``
    NumPy arrays of one float dtype and shape; returns ``grad`` converted to match."""
    for name, arr in (("param", param), *states.items()):
        if not isinstance(arr, np.ndarray):
            raise TypeError(
                f"{name} must be a NumPy array (updated in place), got {type(arr).__name__}"
            )
    dtypes = {arr.dtype for arr in (param, *states.values())}
    if len(dtypes) != 1 or param.dtype not in (np.float32, np.float64):
        raise TypeError(
            f"param and {', '.join(states) or 'its states'} must share dtype "
            f"float32 or float64, got {', '.join(str(d) for d in dtypes)}"
        )
    same_shape(param=param, grad=grad, **states)
    return float_array("grad", grad, param.dtype)


def instance(name: str, value, kind, expected: str) -> None:
    """TypeError unless ``value`` is an instance of ``kind`` (a class, a tuple of them, or
    :class:`collections.abc.Callable`), saying ``name`` must be ``expected``. A class is
    never accepted (calling one builds an object instead of computing), and a subclass
    of ``kind`` passed where its instance belongs (``fb.ReLU`` for ``fb.ReLU()``) is
    answered with the call that was meant."""
    if isinstance(value, kind) and not isinstance(value, type):
        return
    got = type(value).__name__
    if isinstance(value, type):
        got = f"the class {value.__qualname__}"
        if issubclass(value, kind):
            got += f" itself: did you mean `{_constructor_call(value)}`?"
    raise TypeError(f"{name} must be {expected}, got {got}")


def _constructor_call(cls: type) -> str:
    """How a user builds ``cls``: ``fb.ReLU()``, ``fb.callbacks.CSVLogger(...)`` (with
    ``...`` when an argument is required), by the public name fastbp exports it under."""
    package = sys.modules.get("fastbp")
    exported = {name: getattr(package, name) for name in getattr(package, "__all__", ())}
    namespaces = [
        name
        for name, value in exported.items()
        if inspect.ismodule(value) and getattr(value, cls.__name__, None) is cls
    ]
    if exported.get(cls.__name__) is cls:
        spelled = f"fb.{cls.__name__}"
    elif namespaces:
        spelled = f"fb.{namespaces[0]}.{cls.__qualname__}"
    else:
        spelled = cls.__qualname__
    try:
        required = any(
            p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            for p in inspect.signature(cls).parameters.values()
        )
    except (TypeError, ValueError):  # no signature to read: do not guess
        required = True
    return spelled + ("(...)" if required else "()")


def callables(name: str, values) -> list:
    """A list or tuple of callables (not classes), as a list."""
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{name} must be a list of callables, got {type(values).__name__}")
    for i, value in enumerate(values):
        instance(f"{name}[{i}]", value, Callable, "a function or a callable object")
    return list(values)


def norm_inputs(x, weight, other, other_name: str, eps, machine_eps: bool = False):
    """Checked inputs of a norm: ``x`` (N, C) with C >= 1, ``weight`` (C,), then ``bias``
    (C,) or ``grad`` (N, C) as ``other_name`` says (``other`` None: a norm without a
    shift, nothing to check), all converted to their common float dtype, and ``eps``
    (finite, > 0; None, where ``machine_eps`` allows it, is the machine epsilon of that
    dtype, as torch's default for RMS norm)."""
    named = (
        {"x": x, "weight": weight}
        if other is None
        else {"x": x, "weight": weight, other_name: other}
    )
    x, weight, *rest = common_float(**named)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"x must be 2-D (N, C) with C >= 1, got shape {x.shape}")
    if weight.shape != (x.shape[1],):
        raise ValueError(
            f"weight must have shape ({x.shape[1]},) for x {x.shape}, got {weight.shape}"
        )
    other = rest[0] if rest else None
    want = x.shape if other_name == "grad" else (x.shape[1],)
    if other is not None and other.shape != want:
        raise ValueError(f"{other_name} must have shape {want} for x {x.shape}, got {other.shape}")
    if eps is None and machine_eps:
        return x, weight, other, float(np.finfo(x.dtype).eps)
    return x, weight, other, real("eps", eps, strict=True)


def batch_rows(x: np.ndarray) -> None:
    """Batch norm in training needs two rows or more, as torch.nn.BatchNorm1d."""
    if x.shape[0] < 2:
        raise ValueError(
            f"batch norm in training needs at least 2 rows (the variance of one "
            f"value per column is undefined), got x of shape {x.shape}"
        )


def momentum_fraction(momentum) -> float:
    """A running-statistics momentum in (0, 1]."""
    if isinstance(momentum, numbers.Real) and not isinstance(momentum, bool):
        momentum = float(momentum)
    else:
        real("momentum", momentum)  # the TypeError
    if not 0 < momentum <= 1:
        raise ValueError(f"momentum must be in (0, 1], got {momentum}")
    return momentum


def running_stats(x: np.ndarray, running_mean, running_var, writeable: bool) -> None:
    """The running statistics of a batch norm of ``x``: NumPy arrays of x's dtype and
    shape (C,), C-contiguous and, when they are to be updated, writeable."""
    for name, arr in (("running_mean", running_mean), ("running_var", running_var)):
        if not isinstance(arr, np.ndarray):
            raise TypeError(
                f"{name} must be a NumPy array (updated in place), got {type(arr).__name__}"
            )
        if arr.dtype != x.dtype:
            raise TypeError(f"{name} must have x's dtype {x.dtype}, got {arr.dtype}")
        if arr.shape != (x.shape[1],):
            raise ValueError(
                f"{name} must have shape ({x.shape[1]},) for x {x.shape}, got {arr.shape}"
            )
        if not arr.flags.c_contiguous:
            raise TypeError(f"{name} must be C-contiguous")
        if writeable and not arr.flags.writeable:
            raise ValueError(f"{name} must be writeable")


def dropout_p(p) -> float:
    """A dropout probability in [0, 1)."""
    if isinstance(p, numbers.Real) and not isinstance(p, bool):
        p = float(p)
    else:
        real("p", p)  # the TypeError
    if not 0 <= p < 1:
        raise ValueError(f"p must be in [0, 1), got {p}")
    return p


def uint64(name: str, value) -> int:
    """An int in [0, 2**64), such as a dropout key or seed."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value < 2**64:
        raise ValueError(f"{name} must be in [0, 2**64), got {value}")
    return int(value)
