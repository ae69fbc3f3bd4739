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
    return canonical(name, csr)


def canonical(name: str, csr):
    """The CSR matrix ``csr`` without duplicate entries (summed, in a copy: the caller's
    matrix is not changed), as :class:`Rows` writes each stored value once; its stored
    values checked finite."""
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    if not np.isfinite(csr.data).all():
        raise ValueError(f"{name} contains NaN or inf")
    return csr


class Rows:
    """Dense blocks of rows of ``x``, each valid until the next: an array's rows copied;
    a canonical CSR matrix's (see :func:`canonical`) written into one reused buffer of
    ``max_rows`` rows, where only the stored values are written and then cleared again,
    so that a block costs its nonzeros rather than its size (a fresh array of a wide
    block is zeroed page by page, ten times the cost at 0.5% density)."""

    def __init__(self, x, max_rows: int):
        self.x = x
        self.sparse = issparse(x)
        if self.sparse:
            self.buffer = np.zeros((min(max_rows, x.shape[0]), x.shape[1]), dtype=x.dtype)
            self.filled = None

    def __call__(self, rows) -> np.ndarray:
        """The ``rows`` (an index array or a slice) of ``x``, dense."""
        if not self.sparse:
            return self.x[rows]
        if self.filled is not None:
            self.buffer[self.filled] = 0
        block = self.x[rows]
        at = (np.repeat(np.arange(block.shape[0]), np.diff(block.indptr)), block.indices)
        self.buffer[at] = block.data
        self.filled = at
        return self.buffer[: block.shape[0]]


def block_rows(x) -> int:
    """How many rows of ``x`` a dense block of at most :data:`BLOCK_ELEMENTS` values holds
    (at least one)."""
    return max(1, BLOCK_ELEMENTS // max(1, x.shape[1]))


def blocks(x) -> Iterator[slice]:
    """Consecutive slices of the rows of ``x``, each of at most :func:`block_rows` rows;
    one empty slice when ``x`` has no rows (for the core to refuse, as it refuses an
    empty array)."""
    step = block_rows(x)
    for start in range(0, max(x.shape[0], 1), step):
        yield slice(start, min(start + step, x.shape[0]))


def dense(x) -> np.ndarray:
    """``x`` as a dense array: for a single batch (one training step), whose rows the
    core takes whole."""
    return x.toarray() if issparse(x) else x
