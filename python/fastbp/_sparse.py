"""Sparse inputs (``scipy.sparse`` matrices and arrays) without densifying them whole: the
rows of a batch, or of a block of at most :data:`BLOCK_ELEMENTS` values, are gathered into
a dense array, which the backends take as they take any input. SciPy stays optional: a
sparse matrix exists only where ``scipy.sparse`` has been imported."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np

#: The most values (rows times features) of a dense block gathered from a sparse matrix
#: for prediction, evaluation or a slice of an epoch: 32 MiB of float64.
BLOCK_ELEMENTS = 1 << 22


def issparse(x) -> bool:
    """Whether ``x`` is a ``scipy.sparse`` matrix or array."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(x)


def as_csr(name: str, x, dtype):
    """The sparse ``x`` as a 2-D CSR matrix of ``dtype`` (other formats converted, as
    scikit-learn converts them; copied only when it is not one), its stored values
    checked finite."""
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {x.shape}")
    csr = x.tocsr()
    if csr.dtype != dtype:
        with np.errstate(over="ignore"):
            csr = csr.astype(dtype)
    if not np.isfinite(csr.data).all():
        raise ValueError(f"{name} contains NaN or inf")
    return csr


def gather(x, rows) -> np.ndarray:
    """The ``rows`` (an index array or a slice) of ``x`` as a dense C-contiguous array: a
    sparse matrix's rows densified, an array's rows copied."""
    block = x[rows]
    return block.toarray() if issparse(block) else block


def block_rows(x) -> int:
    """How many rows of ``x`` a dense block of at most :data:`BLOCK_ELEMENTS` values holds
    (at least one)."""
    return max(1, BLOCK_ELEMENTS // max(1, x.shape[1]))


def blocks(x) -> Iterator[slice]:
    """Consecutive slices of the rows of ``x``, each of at most :func:`block_rows` rows."""
    step = block_rows(x)
    for start in range(0, x.shape[0], step):
        yield slice(start, min(start + step, x.shape[0]))


def dense(x) -> np.ndarray:
    """``x`` as a dense array: for a single batch (one training step), whose rows the
    core takes whole."""
    return x.toarray() if issparse(x) else x
