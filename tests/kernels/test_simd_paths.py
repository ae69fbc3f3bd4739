"""Every SIMD path this machine can run, forced with FASTBP_SIMD in a fresh process,
against NumPy: the three GEMM products on shapes that stress the vector tails, and a
whole training run against the NumPy backend."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import fastbp as fb
from fbhelpers import SIMD_PATHS, run_on_path

# 257 columns reach the AVX-512 path's wide kernel (from 256); 600 rows of depth span
# more than one KC block of every kernel.
TAILS = (1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 65, 127, 255, 257)
DEPTHS = (1, 7, 16, 17, 65, 257, 600)

CHECK = textwrap.dedent("""
    import itertools, sys
    import numpy as np
    import fastbp as fb

    path, tails, depths = sys.argv[1], eval(sys.argv[2]), eval(sys.argv[3])
    assert fb.build_info()["simd"] == path, fb.build_info()
    rng = np.random.default_rng(0)
    failures = []
    for dtype, eps in ((np.float32, 2.0**-23), (np.float64, 2.0**-52)):
        for m, n, k in itertools.product(tails, tails, depths):
            a = rng.standard_normal((m, k)).astype(dtype)
            b = rng.standard_normal((k, n)).astype(dtype)
            ref = a.astype(np.float64) @ b.astype(np.float64)
            # any summation order is within k * eps * (|a| @ |b|) of the exact product
            tol = 2 * k * eps * (np.abs(a).astype(np.float64) @ np.abs(b)) + 1e-30
            for ta, tb in itertools.product((False, True), repeat=2):
                c = fb.ops.matmul(a.T.copy() if ta else a, b.T.copy() if tb else b, ta, tb)
                if c.dtype != dtype or not (np.abs(c - ref) <= tol).all():
                    failures.append((np.dtype(dtype).name, m, n, k, ta, tb))
    for dtype, rtol in (("float32", 1e-4), ("float64", 1e-10)):
        nets = [fb.Network([fb.Dense(33, 17), fb.Tanh(), fb.Dense(17, 7)], fb.MSELoss(),
                           dtype=dtype, backend=backend, seed=3) for backend in ("cpu", "numpy")]
        X = rng.standard_normal((65, 33))
        T = rng.standard_normal((65, 7))
        for net in nets:
            net.fit(X, T, epochs=3, batch_size=16, optimizer=fb.SGD(lr=0.05, momentum=0.9),
                    shuffle=False)
        for la, lb in zip(nets[0].layers[::2], nets[1].layers[::2]):
            if not np.allclose(la.W, lb.W, rtol=rtol, atol=rtol):
                failures.append(("network", dtype))
    sources = sorted({k["blocks"] for d in ("float32", "float64", "bfloat16")
                      for k in fb.gemm_config()[d]["kernels"]})
    print("blocks:", sources, "tuning:", fb.build_info()["tuning"])
    print("failures:", failures[:20], len(failures))
    sys.exit(1 if failures else 0)
""")

# A tuning file for the path it runs on, with blocks, a kernel split and thread settings
# unlike the defaults: small odd blocks (many edge tiles, K split often), the wide kernel
# from 64, every product on all threads and its threads split for balance alone.
WRITE_TUNING = textwrap.dedent("""
    import sys
    import fastbp as fb
    from fastbp import _tuning

    config = fb.gemm_config()
    choices = {
        dtype: {
            "kernels": {k["name"]: [5 * k["mr"], 72, 3 * k["nr"]]
                        for k in config[dtype]["kernels"]},
            "wide_from": None if config[dtype]["wide_from"] is None else 64,
        }
        for dtype in _tuning.DTYPES
    }
    choices[_tuning.THREADS] = {"work_per_thread": 1, "split_pack_cost": 0}
    _tuning.save(choices, sys.argv[1])
""")


@pytest.mark.parametrize("path", SIMD_PATHS)
def test_simd_path_matches_numpy(path):
    """The default blocks: the analytic ones where the caches are known, no tuning file."""
    env = {"FASTBP_TUNING": "off", "FASTBP_GEMM_BLOCKS": ""}
    result = run_on_path(path, CHECK, path, repr(TAILS), repr(DEPTHS), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tuning: None" in result.stdout


@pytest.mark.parametrize("path", SIMD_PATHS)
def test_simd_path_matches_numpy_with_the_table_blocks(path):
    result = run_on_path(
        path, CHECK, path, repr(TAILS[::3]), repr(DEPTHS[::2]), env={"FASTBP_GEMM_BLOCKS": "table"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "blocks: ['table']" in result.stdout


@pytest.mark.parametrize("path", SIMD_PATHS)
def test_simd_path_matches_numpy_with_a_tuning_file(path, tmp_path):
    tuning = str(tmp_path / "tuning.json")
    written = run_on_path(path, WRITE_TUNING, tuning)
    assert written.returncode == 0, written.stderr
    env = {"FASTBP_TUNING": tuning, "FASTBP_GEMM_BLOCKS": ""}
    result = run_on_path(path, CHECK, path, repr(TAILS[::3]), repr(DEPTHS[::2]), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"blocks: ['tuned'] tuning: {tuning}" in result.stdout


@pytest.mark.parametrize("blocks", ["7,5,9", "300,1024,8192"], ids=["tiny", "large"])
def test_gemm_block_sizes_from_the_environment_keep_every_path_exact(blocks):
    """FASTBP_GEMM_BLOCKS, the tuning override, changes only speed: the same products
    within the same bound, on the best path here."""
    path = fb.build_info()["simd"]
    env = dict(os.environ, FASTBP_SIMD=path, FASTBP_GEMM_BLOCKS=blocks)
    result = subprocess.run(
        [sys.executable, "-c", CHECK, path, repr(TAILS[::3]), repr(DEPTHS[::2])],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("value", ["1,2", "0,256,4096", "a,b,c", "64,256,4096,1", "\xff"])
def test_bad_gemm_block_sizes_fail_the_import(value):
    env = dict(os.environ, FASTBP_GEMM_BLOCKS=value)
    result = subprocess.run(
        [sys.executable, "-c", "import fastbp"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "ImportError: FASTBP_GEMM_BLOCKS=" in result.stderr
    assert "is not MC,KC,NC" in result.stderr
    assert "or 'table'" in result.stderr


def test_unknown_simd_path_fails_the_import():
    env = dict(os.environ, FASTBP_SIMD="sse9")
    result = subprocess.run(
        [sys.executable, "-c", "import fastbp"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "sse9" in result.stderr


def test_undecodable_simd_path_fails_the_import_with_its_bytes_escaped():
    env = dict(os.environ)
    env_bytes = {k.encode(): v.encode() for k, v in env.items()}
    env_bytes[b"FASTBP_SIMD"] = b"\xff\x01"
    result = subprocess.run(
        [sys.executable, "-c", "import fastbp"],
        env=env_bytes,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: FASTBP_SIMD='\\xff\\x01' is not a known SIMD path"), last


def test_build_info_reports_the_path_in_use():
    info = fb.build_info()
    assert info["simd"] in info["simd_available"]
    assert set(info["simd_available"]) <= set(info["simd_compiled"])
    assert info["simd_compiled"][0] == "ref"
