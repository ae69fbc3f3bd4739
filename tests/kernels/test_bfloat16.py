"""bfloat16 compute: the rounding, every bfloat16 GEMM path (forced with FASTBP_SIMD in a
fresh process) against the NumPy reference's emulation, and networks, estimators and
files with ``compute_dtype="bfloat16"`` against float32 and the reference."""

from __future__ import annotations

import os
import pathlib
import pickle
import shutil
import subprocess
import textwrap
import warnings

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import SIMD_PATHS, run_on_path

# 257 columns reach the wide kernels; depths span several KC blocks and the 32-deep AMX
# blocks with and without a remainder, and odd depths pad the last bfloat16 pair.
TAILS = (1, 2, 3, 15, 16, 17, 31, 33, 65, 257)
DEPTHS = (1, 2, 3, 31, 33, 64, 257, 2100)

SPECIALS = np.array(
    [
        0.0,
        -0.0,
        1.0,
        -1.0,
        np.inf,
        -np.inf,
        np.nan,
        3.4e38,
        -3.4e38,
        np.finfo(np.float32).max,
        1e-38,
        1.2e-45,
        65504.0,
    ],
    dtype=np.float32,
)
# float32's largest subnormal: the software rounding takes it up to 2**-126, a normal
# bfloat16; vcvtne2ps2bf16, which reads subnormals as zero, gives zero.
JUST_BELOW_NORMAL = np.nextafter(np.finfo(np.float32).tiny, np.float32(0))
SPECIALS = np.append(SPECIALS, JUST_BELOW_NORMAL)
# Exactly half-way between two bfloat16 neighbours: ties go to the even one.
TIES = np.array([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 2 + 2**-7], dtype=np.float32)


def _bits(x):
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def test_rounding_is_to_nearest_even_with_nan_and_overflow_kept():
    r = fb.reference.round_to_bfloat16(np.concatenate([SPECIALS, TIES]))
    assert (_bits(r) & 0xFFFF == 0).all()
    assert r[2] == 1.0 and r[4] == np.inf and r[5] == -np.inf and np.isnan(r[6])
    assert r[9] == np.inf  # float32's largest is past bfloat16's largest
    ties = r[len(SPECIALS) :]
    np.testing.assert_array_equal(ties, [1.0, 1 + 4 * 2**-8, -1.0, 2.0])


def test_rounding_matches_torch_bfloat16():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            SPECIALS,
            TIES,
            rng.standard_normal(10000).astype(np.float32) * 1e3,
            rng.standard_normal(1000).astype(np.float32) * 1e-30,
        ]
    )
    theirs = torch.from_numpy(x).to(torch.bfloat16).to(torch.float32).numpy()
    np.testing.assert_array_equal(fb.reference.round_to_bfloat16(x), theirs)


def test_core_rounds_its_operands_as_the_reference_does():
    """A 1-deep product by 1 is the rounded operand itself: C++'s rounding, bit for bit,
    under this path's rule for subnormal operands (-0.0 aside: the float32 sum starts at
    +0)."""
    rng = np.random.default_rng(1)
    finite = SPECIALS[np.isfinite(SPECIALS) & (np.abs(SPECIALS) < 3e38) & (SPECIALS != 0)]
    x = np.concatenate([finite, TIES, rng.standard_normal(300).astype(np.float32)])
    col = x[:, None]
    got = fb.ops.matmul(col, np.ones((1, 1), np.float32), compute_dtype="bfloat16")[:, 0]
    rule = fb.build_info()["bf16_subnormals"]
    np.testing.assert_array_equal(_bits(got), _bits(fb.reference.round_to_bfloat16(x, rule)))


CHECK = textwrap.dedent("""
    import itertools, sys
    import numpy as np
    import fastbp as fb

    path, tails, depths = sys.argv[1], eval(sys.argv[2]), eval(sys.argv[3])
    info = fb.build_info()
    assert info["simd"] == path, info
    rng = np.random.default_rng(0)
    failures = []
    for m, n, k in itertools.product(tails, tails, depths):
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        ra = fb.reference.round_to_bfloat16(a).astype(np.float64)
        rb = fb.reference.round_to_bfloat16(b).astype(np.float64)
        ref = ra @ rb
        # products of bfloat16 are exact in float32: only the float32 sums round
        tol = 2 * k * 2.0**-23 * (np.abs(ra) @ np.abs(rb)) + 1e-30
        for ta, tb in itertools.product((False, True), repeat=2):
            c = fb.ops.matmul(a.T.copy() if ta else a, b.T.copy() if tb else b, ta, tb,
                              compute_dtype="bfloat16")
            if c.dtype != np.float32 or not (np.abs(c - ref) <= tol).all():
                failures.append((m, n, k, ta, tb, float(np.max(np.abs(c - ref) / tol))))
    print(info["bf16_gemm"], "failures:", failures[:20], len(failures))
    sys.exit(1 if failures else 0)
""")

KERNELS = {
    "ref": "bf16gemm_ref_",
    "avx2": "bf16gemm_avx2_",
    "avx512": "bf16gemm_avx512_",
    "avx512_bf16": "bf16gemm_avx512bf16_",
    "amx": "bf16gemm_amx_",
}


@pytest.mark.parametrize("path", SIMD_PATHS)
def test_bfloat16_path_matches_the_reference_emulation(path):
    result = run_on_path(path, CHECK, path, repr(TAILS), repr(DEPTHS), timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(KERNELS[path]), result.stdout


def test_bfloat16_products_stay_right_between_another_librarys_tile_kernels(restore_threads):
    """PyTorch's bfloat16 product (oneDNN's AMX kernels on a CPU with AMX, which set up
    and release the tiles their own way) runs on the same thread between fastbp's
    products: fastbp sets up the tiles for each product itself. The shape has edge tiles
    and more K than one block."""
    torch = pytest.importorskip("torch")
    fb.set_num_threads(1)  # fastbp's tiles run on this thread, where torch's ran
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rng = np.random.default_rng(7)
        a = rng.standard_normal((130, 1100)).astype(np.float32)
        b = rng.standard_normal((1100, 97)).astype(np.float32)
        ra = fb.reference.round_to_bfloat16(a).astype(np.float64)
        rb = fb.reference.round_to_bfloat16(b).astype(np.float64)
        tol = 2 * a.shape[1] * 2.0**-23 * (np.abs(ra) @ np.abs(rb)) + 1e-30
        ta, tb = (torch.from_numpy(x).to(torch.bfloat16) for x in (a, b))
        for _ in range(3):
            torch.matmul(ta, tb)
            c = fb.ops.matmul(a, b, compute_dtype="bfloat16")
            assert (np.abs(c - ra @ rb) <= tol).all()
    finally:
        torch.set_num_threads(torch_threads)


# The rule each path's kernels follow below 2**-126: the bfloat16 instructions flush.
SUBNORMAL_RULES = {
    "ref": "kept",
    "avx2": "kept",
    "avx512": "kept",
    "avx512_bf16": "flushed",
    "amx": "flushed",
}

SUBNORMAL_CHECK = textwrap.dedent("""
    import itertools, sys
    import numpy as np
    import fastbp as fb

    path, expected_rule = sys.argv[1], sys.argv[2]
    info = fb.build_info()
    assert info["simd"] == path, info
    rule = info["bf16_subnormals"]
    assert rule == expected_rule, (path, rule)
    tiny = float(np.finfo(np.float32).tiny)
    rng = np.random.default_rng(3)
    failures = []

    def product(a, b, ta, tb):
        return fb.ops.matmul(a.T.copy() if ta else a, b.T.copy() if tb else b, ta, tb,
                             compute_dtype="bfloat16")

    # Subnormal operands times 1: the rounded operand on a path that keeps them, zero on
    # one that flushes them; either way the emulation under the same rule, bit for bit.
    # Each operand, each transpose, narrow and wide products: every packer. The largest
    # subnormal rounds up to 2**-126 where kept, and reads as zero where flushed.
    just_below = np.nextafter(np.float32(tiny), np.float32(0))
    x = np.tile(np.float32([1e-38, -1e-39, 5e-40, 1.2e-45, 1.0, just_below]), 7)[:, None]
    for width in (1, 40):
        ones = np.ones((1, width), np.float32)
        emulated = fb.reference.matmul(x, ones, compute_dtype="bfloat16", subnormals=rule)
        for ta, tb in itertools.product((False, True), repeat=2):
            if not np.array_equal(product(x, ones, ta, tb), emulated):
                failures.append(("subnormal A", width, ta, tb, product(x, ones, ta, tb)[:6, 0]))
            if not np.array_equal(product(ones.T, x.T, ta, tb), emulated.T):
                failures.append(("subnormal B", width, ta, tb, product(ones.T, x.T, ta, tb)[0, :6]))

    # Normal operands whose products and every partial sum lie below 2**-126: zero on a
    # flushing path whatever the order of the sums; on a keeping path the float32 sum of
    # subnormals, each step rounded to 2**-149.
    for m, n, k in itertools.product((1, 17, 33, 65), (1, 17, 33, 65), (1, 2, 3, 33, 64)):
        a = (rng.uniform(0.5, 1.0, (m, k)) * 1e-20).astype(np.float32)
        b = (rng.uniform(0.5, 1.0, (k, n)) * 1e-20).astype(np.float32)
        ref = fb.reference.matmul(a, b, compute_dtype="bfloat16", subnormals=rule)
        for ta, tb in itertools.product((False, True), repeat=2):
            c = product(a, b, ta, tb)
            if not (np.abs(c.astype(np.float64) - ref) <= k * 2.0**-149).all():
                failures.append(("subnormal sums", m, n, k, ta, tb))
    if rule == "flushed" and failures == []:
        assert not fb.ops.matmul(a, b, compute_dtype="bfloat16").any()

    # Operands near 1e-19, products near 2**-126: within the rule's bound of the exact
    # product of the rounded operands (a flushed partial sum loses less than 2**-126).
    a = (rng.uniform(0.5, 1.5, (64, 300)) * 1e-19).astype(np.float32)
    b = (rng.uniform(0.5, 1.5, (300, 70)) * 1e-19).astype(np.float32)
    exact = (fb.reference.round_to_bfloat16(a).astype(np.float64)
             @ fb.reference.round_to_bfloat16(b).astype(np.float64))
    per_step = tiny if rule == "flushed" else 2.0**-149
    bound = 2 * 300 * 2.0**-23 * exact + 300 * per_step
    err = np.abs(product(a, b, False, False) - exact)
    if not (err <= bound).all():
        failures.append(("near 2**-126", float((err / bound).max())))
    print(rule, "relative error near 2**-126:", float((err / exact).max()))
    print("failures:", failures[:20], len(failures))
    sys.exit(1 if failures else 0)
""")


@pytest.mark.parametrize("path", SIMD_PATHS)
def test_bfloat16_path_follows_its_subnormal_rule(path):
    result = run_on_path(path, SUBNORMAL_CHECK, path, SUBNORMAL_RULES[path], timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_build_info_names_the_subnormal_rule_of_the_kernel_in_use():
    info = fb.build_info()
    assert info["bf16_subnormals"] == SUBNORMAL_RULES[info["simd"]], info


def test_flushing_emulation_reads_subnormal_operands_as_signed_zeros():
    x = np.array([1e-38, -1e-39, 1e-40, -1e-40, 2e-38, np.nan, -np.inf], np.float32)
    flushed = fb.reference.round_to_bfloat16(x, subnormals="flushed")
    kept = fb.reference.round_to_bfloat16(x)
    assert (kept[:4] != 0).all()
    np.testing.assert_array_equal(_bits(flushed[:4]), _bits(np.float32([0, -0.0, 0, -0.0])))
    np.testing.assert_array_equal(flushed[4:], kept[4:])


def test_flushing_emulation_reads_subnormals_as_zero_before_rounding():
    """As vcvtne2ps2bf16 does: the largest subnormal, which rounding alone would take up
    to 2**-126, is zero; NaN, infinity and normal values round as without flushing."""
    tiny = np.finfo(np.float32).tiny
    x = np.array([JUST_BELOW_NORMAL, -JUST_BELOW_NORMAL, tiny, np.nan, np.inf], np.float32)
    kept = fb.reference.round_to_bfloat16(x)
    flushed = fb.reference.round_to_bfloat16(x, subnormals="flushed")
    np.testing.assert_array_equal(kept[:3], [tiny, -tiny, tiny])
    np.testing.assert_array_equal(_bits(flushed[:2]), _bits(np.float32([0, -0.0])))
    np.testing.assert_array_equal(flushed[2:], kept[2:])
    product = fb.reference.matmul(
        x[:1, None], np.ones((1, 1), np.float32), compute_dtype="bfloat16", subnormals="flushed"
    )
    assert product[0, 0] == 0


def test_flushing_emulation_flushes_partial_sums_not_small_terms():
    """A term below 2**-126 still counts where the running sum is normal: the fused
    multiply-add rounds once, and only a subnormal sum is flushed."""
    tiny = np.finfo(np.float32).tiny
    a = np.array([[1e-20, 1.0, 1e-20]], np.float32)
    b = np.array([[1e-20], [4 * tiny], [1e-20]], np.float32)
    flushed = fb.reference.matmul(a, b, compute_dtype="bfloat16", subnormals="flushed")
    kept = fb.reference.matmul(a, b, compute_dtype="bfloat16")
    # The first term alone is flushed; the third is added to a normal sum and kept.
    third = float(fb.reference.round_to_bfloat16(np.float32(1e-20))) ** 2
    assert flushed[0, 0] == np.float32(np.float64(4 * tiny) + third)
    assert flushed[0, 0] < kept[0, 0]


def test_flushing_emulation_agrees_with_keeping_one_on_normal_products():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((17, 40)).astype(np.float32)
    b = rng.standard_normal((40, 9)).astype(np.float32)
    kept = fb.reference.matmul(a, b, compute_dtype="bfloat16")
    flushed = fb.reference.matmul(a, b, compute_dtype="bfloat16", subnormals="flushed")
    np.testing.assert_allclose(flushed, kept, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "call",
    [
        lambda: fb.reference.round_to_bfloat16(np.ones(2, np.float32), subnormals="daz"),
        lambda: fb.reference.matmul(
            np.ones((2, 2), np.float32),
            np.ones((2, 2), np.float32),
            compute_dtype="bfloat16",
            subnormals=None,
        ),
    ],
)
def test_unknown_subnormal_rules_are_refused(call):
    with pytest.raises(ValueError, match=r"subnormals must be one of \['kept', 'flushed'\]"):
        call()


def _build_cpp_check(tmp_path, name, flags, sources=()):
    """tests/cpp/<name>.cpp compiled with `flags` and csrc's `sources` into tmp_path;
    skips where there is no C++ compiler or no source tree."""
    root = pathlib.Path(__file__).resolve().parents[2]
    compiler = shutil.which(os.environ.get("CXX", "c++"))
    if compiler is None or not (root / "csrc").is_dir():
        pytest.skip("needs a C++ compiler and the source tree's csrc/")
    exe = tmp_path / name
    subprocess.run(
        [
            compiler,
            "-std=c++17",
            "-O1",
            *flags,
            f"-I{root / 'csrc'}",
            str(root / "tests" / "cpp" / f"{name}.cpp"),
            *(str(root / "csrc" / source) for source in sources),
            "-o",
            str(exe),
        ],
        check=True,
        timeout=300,
    )
    return exe


# tests/cpp/bf16_layouts.cpp built plain (the layouts, on any CPU) and for AVX512-BF16
# (the kernels' vector packers against the scalar ones, bit for bit).
AVX512_BF16_FLAGS = ["-mavx512f", "-mavx512bw", "-mavx512bf16"]
LAYOUT_BUILDS = {"scalar": [], "avx512_bf16": AVX512_BF16_FLAGS}


@pytest.mark.parametrize("build", LAYOUT_BUILDS)
def test_packed_bfloat16_layouts_match_emulated_instructions(tmp_path, build):
    """The AVX512-BF16 and AMX kernels' panels, checked on any CPU: tests/cpp/
    bf16_layouts.cpp packs with csrc's packers and multiplies by scalar emulations of
    vdpbf16ps and tdpbf16ps; on a CPU with AVX512-BF16 it also checks the vector
    packers the kernels use against the scalar ones."""
    if build != "scalar" and build not in fb.build_info()["simd_available"]:
        pytest.skip(f"the {build} path is not compiled in or this CPU cannot run it")
    exe = _build_cpp_check(tmp_path, "bf16_layouts", LAYOUT_BUILDS[build])
    result = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("vector packers" in result.stdout) == (build != "scalar"), result.stdout


def test_amx_kernel_applies_alpha_beta_and_edges_as_the_reference(tmp_path):
    """The AMX micro-kernel called as the driver calls it, on each way it finishes a
    tile: accumulating from zero or from C and storing straight to C (alpha 1, beta 0 or
    1), through its scratch tile (any other alpha and beta), and on edge tiles, into a C
    wider than the tile whose other elements stay untouched (tests/cpp/amx_kernel.cpp).
    Products fastbp runs use only alpha 1 and beta 0 or 1, so only a direct call reaches
    the rest."""
    if "amx" not in fb.build_info()["simd_available"]:
        pytest.skip("the amx path is not compiled in or this CPU cannot run it")
    amx_flags = [*AVX512_BF16_FLAGS, "-mamx-tile", "-mamx-bf16"]
    exe = _build_cpp_check(tmp_path, "amx_kernel", amx_flags, ["kernels/gemm/ukr_amx.cpp"])
    result = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 wrong elements" in result.stdout, result.stdout


def test_build_info_names_the_bfloat16_kernel_in_use():
    info = fb.build_info()
    assert info["bf16_gemm"].startswith(KERNELS[info["simd"]]), info


def test_bfloat16_product_differs_from_float32():
    """The operands really are rounded: the product moves by bfloat16's ~2**-9 error."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((64, 300)).astype(np.float32)
    b = rng.standard_normal((300, 40)).astype(np.float32)
    exact = a.astype(np.float64) @ b
    err32 = np.abs(fb.ops.matmul(a, b) - exact).max()
    err16 = np.abs(fb.ops.matmul(a, b, compute_dtype="bfloat16") - exact).max()
    assert err16 > 100 * err32


def _regression_data(n=512, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 12)).astype(np.float32)
    T = np.stack([np.sin(X[:, :4].sum(1)), np.tanh(X[:, 4:8] @ np.ones(4))], 1)
    return X, T.astype(np.float32)


def _regressor(compute, backend="cpu", seed=4):
    return fb.Network(
        [
            fb.Dense(12, 64),
            fb.Tanh(),
            fb.Dense(64, 64),
            fb.GELU(),
            fb.LayerNorm(64),
            fb.Dense(64, 2),
        ],
        fb.MSELoss(),
        seed=seed,
        backend=backend,
        compute_dtype=compute,
    )


def test_network_gradients_match_the_reference_emulation():
    X, T = _regression_data()
    grads = {}
    for backend in ("cpu", "numpy"):
        for compute in (None, "bfloat16"):
            net = _regressor(compute, backend)
            net.backward(X, T)
            grads[backend, compute] = net.grads.copy()
    scale = np.abs(grads["cpu", None]).max()
    gap_ref = np.abs(grads["cpu", "bfloat16"] - grads["numpy", "bfloat16"]).max() / scale
    gap_f32 = np.abs(grads["cpu", "bfloat16"] - grads["cpu", None]).max() / scale
    # A float32 sum that lands the other side of a rounding midpoint moves one operand by
    # a bfloat16 step, so the emulation agrees to ~1e-5, not to float32's ~1e-7.
    assert gap_ref < 1e-4, gap_ref
    assert gap_f32 > 30 * gap_ref, (gap_f32, gap_ref)  # the emulation tells bfloat16 apart


def test_network_trains_as_the_reference_emulation():
    X, T = _regression_data()
    nets = {}
    for backend in ("cpu", "numpy"):
        for compute in (None, "bfloat16"):
            net = nets[backend, compute] = _regressor(compute, backend)
            net.fit(X, T, epochs=3, batch_size=64, optimizer=fb.Adam(lr=1e-3), shuffle=False)
    bf_cpu, bf_ref = nets["cpu", "bfloat16"].params, nets["numpy", "bfloat16"].params
    gap_ref = np.abs(bf_cpu - bf_ref).max()
    gap_f32 = np.abs(bf_cpu - nets["cpu", None].params).max()
    assert gap_ref < 1e-4, gap_ref
    assert gap_f32 > 20 * gap_ref, (gap_f32, gap_ref)


def test_master_weights_gradients_and_state_stay_float32():
    X, T = _regression_data(128)
    net = _regressor("bfloat16")
    optimizer = fb.Adam(lr=1e-3)
    for _ in range(3):
        net.train_step(X, T, optimizer)
    assert net.compute_dtype == "bfloat16"
    assert net._core.compute == fb._core.Compute.Bfloat16
    for array in (net.params, net.grads, *optimizer.state_for(net).arrays):
        assert array.dtype == np.float32
    # float32 updates of float32 weights: almost none is a bfloat16 value any more
    assert np.mean(_bits(net.params) & 0xFFFF != 0) > 0.9


def test_regression_loss_within_a_few_percent_of_float32():
    X, T = _regression_data(2048)
    losses = {}
    for compute in (None, "bfloat16"):
        net = _regressor(compute)
        history = net.fit(X, T, epochs=40, batch_size=64, optimizer=fb.Adam(lr=2e-3))
        losses[compute] = history.loss[-1]
    assert losses["bfloat16"] == pytest.approx(losses[None], rel=0.05), losses


def test_digits_accuracy_within_half_a_point_of_float32():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[:1400], order[1400:]
    accuracy = {}
    for compute in (None, "bfloat16"):
        net = fb.Network(
            [fb.Dense(64, 64), fb.ReLU(), fb.Dense(64, 10)],
            fb.SoftmaxCrossEntropyLoss(),
            seed=0,
            compute_dtype=compute,
        )
        net.fit(
            X[train], y[train], epochs=30, batch_size=32, optimizer=fb.SGD(lr=0.1, momentum=0.9)
        )
        accuracy[compute] = np.mean(net.predict(X[test]).argmax(1) == y[test])
    assert accuracy[None] > 0.97
    assert abs(accuracy["bfloat16"] - accuracy[None]) <= 0.005, accuracy


def test_save_load_and_pickle_keep_the_compute_dtype(tmp_path):
    X, T = _regression_data(64)
    net = _regressor("bfloat16")
    net.fit(X, T, epochs=1, batch_size=16, optimizer=fb.SGD(lr=0.01))
    for again in (fb.Network.load(net.save(tmp_path / "m")), pickle.loads(pickle.dumps(net))):
        assert again.compute_dtype == "bfloat16" and again.dtype == np.float32
        np.testing.assert_array_equal(again.params, net.params)
        np.testing.assert_array_equal(again.predict(X), net.predict(X))
    assert "compute_dtype='bfloat16'" in repr(net)
    plain = _regressor(None)
    assert fb.Network.load(plain.save(tmp_path / "p")).compute_dtype is None


def test_divergence_is_caught_with_parameters_restored():
    X, T = _regression_data(256)
    net = _regressor("bfloat16")
    before = net.params.copy()
    with pytest.raises(FloatingPointError):
        net.fit(X, T * 1e30, epochs=2, batch_size=256, optimizer=fb.SGD(lr=1e6))
    assert np.isfinite(net.params).all()
    assert net.params.shape == before.shape


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"compute_dtype": "float16"}, "compute_dtype must be None or one of"),
        ({"compute_dtype": "bfloat16", "dtype": "float64"}, "needs float32 parameters"),
        ({"compute_dtype": "bfloat16", "backend": "cuda"}, "the CUDA backend computes"),
    ],
)
def test_bad_compute_dtypes_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fb.Network([fb.Dense(2, 1)], fb.MSELoss(), **kwargs)


def test_matmul_refuses_bfloat16_for_float64():
    a = np.ones((2, 2))
    with pytest.raises(ValueError, match="needs float32"):
        fb.ops.matmul(a, a, compute_dtype="bfloat16")
    with pytest.raises(ValueError, match="needs float32"):
        fb.reference.matmul(a, a, compute_dtype="bfloat16")


def test_sklearn_estimators_take_a_compute_dtype():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(return_X_y=True)
    X = X / 16  # float64: converted to float32 for a bfloat16 network
    from sklearn.exceptions import ConvergenceWarning

    from fastbp.sklearn import MLPClassifier, MLPRegressor

    with warnings.catch_warnings():  # few iterations, on purpose
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier((32,), compute_dtype="bfloat16", max_iter=20, random_state=0).fit(X, y)
        assert clf.network_.compute_dtype == "bfloat16" and clf.network_.dtype == np.float32
        assert clf.get_params()["compute_dtype"] == "bfloat16"
        plain = MLPClassifier((32,), max_iter=20, random_state=0).fit(X, y)
        assert abs(clf.score(X, y) - plain.score(X, y)) < 0.02
        reg = MLPRegressor(
            hidden_layer_sizes=(16,),
            compute_dtype="bfloat16",
            max_iter=5,
            solver="lbfgs",
            random_state=0,
        ).fit(X, X[:, 10])
    assert reg.network_.compute_dtype == "bfloat16"
    with pytest.raises(ValueError, match="compute_dtype must be None or one of"):
        MLPClassifier(compute_dtype="half").fit(X, y)
