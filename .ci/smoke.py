"""Smoke test of an installed fastbp, run from outside the source tree (by .ci/wheel.sh and
by cibuildwheel's test-command): import, build_info, a small fit whose loss falls, and a
save/load round trip (in float32 and with bfloat16 products on the CPU), once per SIMD
path this machine can run, each in its own process
because the path is fixed at import.

    python smoke.py                  # every path in build_info()["simd_available"]
    FASTBP_SIMD=avx2 python smoke.py # that path only
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np

import fastbp as fb


def fit_and_round_trip(backend: str, compute_dtype: str | None = None) -> str:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 8)).astype(np.float32)
    T = (X[:, :1] * X[:, 1:2] > 0).astype(np.float32)  # XOR of two signs: needs the hidden layer
    net = fb.Network(
        [fb.Dense(8, 32), fb.ReLU(), fb.Dense(32, 1)],
        loss=fb.BCEWithLogitsLoss(),
        backend=backend,
        seed=0,
        compute_dtype=compute_dtype,
    )
    history = net.fit(
        X, T, epochs=30, batch_size=32, optimizer=fb.SGD(lr=0.1, momentum=0.9), progress=False
    )
    first, last = history.loss[0], history.loss[-1]
    assert last < 0.5 * first, (backend, compute_dtype, history.loss)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "net.npz")
        net.save(path)
        same = fb.Network.load(path)
    assert same.compute_dtype == compute_dtype
    np.testing.assert_array_equal(same.predict(X), net.predict(X))
    name = backend if compute_dtype is None else f"{backend} {compute_dtype}"
    return f"{name}: loss {first:.3f} -> {last:.3f}, save/load equal"


def check_one_path() -> None:
    info = fb.build_info()
    assert info["simd"] == os.environ["FASTBP_SIMD"], info
    results = [fit_and_round_trip("cpu"), fit_and_round_trip("cpu", "bfloat16")]
    if info["cuda_available"]:
        results.append(fit_and_round_trip("cuda"))
    else:
        try:
            fb.Network([fb.Dense(2, 1)], loss=fb.MSELoss(), backend="cuda")
        except RuntimeError as e:
            results.append(f"cuda: refused as expected ({e})")
        else:
            raise AssertionError("backend='cuda' was accepted without a usable GPU")
    print(f"FASTBP_SIMD={info['simd']}:", "; ".join(results))


def main() -> None:
    if os.environ.get("FASTBP_SIMD"):
        check_one_path()
        return
    info = fb.build_info()
    # Installed, not imported from a source checkout next to the working folder.
    assert "site-packages" in fb.__file__, fb.__file__
    print(f"fastbp {info['version']} from {os.path.dirname(fb.__file__)}")
    print(
        f"  compiler {info['compiler']}; SIMD compiled {info['simd_compiled']}, "
        f"runnable here {info['simd_available']}"
    )
    print(f"  CUDA compiled: {info['cuda_compiled']}; status: {info['cuda_status']}")
    for path in info["simd_available"]:
        subprocess.run(
            [sys.executable, __file__], env=dict(os.environ, FASTBP_SIMD=path), check=True
        )


if __name__ == "__main__":
    main()
