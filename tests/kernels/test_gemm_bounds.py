"""A product that reads B in place (few rows of A) with a ragged last column panel reads
no element past B: B's last row ends at a page the process may not read, so a read
past it would kill the process. On every SIMD path, float32 and float64, for ragged
widths below, at and above one vector."""

from __future__ import annotations

import sys

import pytest

from fbhelpers import SIMD_PATHS, run_on_path

CHECK = r"""
import ctypes, mmap, sys
import numpy as np
import fastbp as fb

dtype, n = np.dtype(sys.argv[1]), int(sys.argv[2])
m, k = 5, 37
page = mmap.PAGESIZE
nbytes = k * n * dtype.itemsize
pages = -(-nbytes // page) + 1
buf = mmap.mmap(-1, pages * page, prot=mmap.PROT_READ | mmap.PROT_WRITE)
start = ctypes.addressof(ctypes.c_char.from_buffer(buf))
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
assert libc.mprotect(start + (pages - 1) * page, page, 0) == 0, ctypes.get_errno()
# B's last element is the last one before the unreadable page.
B = np.frombuffer(buf, dtype=dtype, count=k * n, offset=(pages - 1) * page - nbytes)
B = B.reshape(k, n)
rng = np.random.default_rng(n)
B[...] = rng.standard_normal((k, n))
A = rng.standard_normal((m, k)).astype(dtype)
C = fb.ops.matmul(A, B)
np.testing.assert_allclose(C, A.astype(np.float64) @ B.astype(np.float64), rtol=1e-4, atol=1e-4)
print("ok")
"""


@pytest.mark.skipif(sys.platform != "linux", reason="needs mmap and mprotect from Linux")
@pytest.mark.parametrize("path", SIMD_PATHS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [3, 10, 17, 100])
def test_ragged_b_read_in_place_stays_inside_b(path, dtype, n):
    result = run_on_path(path, CHECK, dtype, str(n), timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
