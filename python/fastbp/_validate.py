"""Input checks shared by the public API. Every check runs before any state changes."""

from __future__ import annotations

import numbers

import numpy as np

from . import _core

DTYPES = {"float32": np.float32, "float64": np.float64}


def choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def real(name: str, value, *, low: float = 0.0, strict: bool = False) -> float:
    """A finite real >= low (or > low when strict)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < low or (strict and value == low):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low}, "
                         f"got {value}")
    return value


def numeric_array(name: str, value) -> np.ndarray:
    """``value`` as an array of real numbers (bool, complex, object and strings refused)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def float_array(name: str, value, dtype, ndim: int | None = None) -> np.ndarray:
    """A C-contiguous copy (only if needed) of ``value`` in ``dtype``, checked finite."""
    arr = numeric_array(name, value)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not _core.all_finite(arr):
        raise ValueError(f"{name} contains NaN or inf")
    return arr
