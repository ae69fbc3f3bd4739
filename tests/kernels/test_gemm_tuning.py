"""The GEMM tuning file: saved by ``python -m fastbp.tune`` and ``fb.tune(net, X)``,
loaded at import when it is valid for this machine, version and path, ignored with a
warning otherwise; its cache blocks, kernel split and thread settings. No test here times
anything: the tuner runs, but what it picks is not asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastbp as fb
from fastbp import _core, _tuning, tune

LOAD = (
    "import json, fastbp; print(json.dumps([fastbp.build_info()['tuning'], fastbp.gemm_config()]))"
)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty user cache for this process and the processes it starts."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("FASTBP_TUNING", raising=False)
    monkeypatch.delenv("FASTBP_GEMM_BLOCKS", raising=False)
    return tmp_path


@pytest.fixture
def restore_config():
    """Puts back the blocks and kernel split this process had before the test."""
    before = fb.gemm_config()
    yield
    for dtype in _tuning.DTYPES:
        for k in before[dtype]["kernels"]:
            source = k["blocks"] if k["blocks"] in ("table", "analytic", "tuned") else "tuned"
            _core._gemm_set_blocks(dtype, k["name"], k["mc"], k["kc"], k["nc"], source)
        if before[dtype]["wide_from"] is not None:
            _core._gemm_set_wide_from(dtype, before[dtype]["wide_from"])
    _tuning.apply_threads(before[_tuning.THREADS])


# Thread settings unlike the defaults: every product but the smallest on all threads, and
# the rows and columns split for load balance alone.
ODD_THREADS = {"work_per_thread": 1000, "split_pack_cost": 0}


def odd_choices(config=None):
    """Valid choices unlike any default: small blocks, the wide kernel from 64 columns,
    ODD_THREADS."""
    config = fb.gemm_config() if config is None else config
    choices = {
        dtype: {
            "kernels": {
                k["name"]: [3 * k["mr"], 40, 2 * k["nr"]] for k in config[dtype]["kernels"]
            },
            "wide_from": None if config[dtype]["wide_from"] is None else 64,
        }
        for dtype in _tuning.DTYPES
    }
    return {**choices, _tuning.THREADS: dict(ODD_THREADS)}


def load_in_new_process(**env):
    result = subprocess.run(
        [sys.executable, "-W", "always", "-c", LOAD],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    tuning, config = json.loads(result.stdout)
    return tuning, config, result.stderr


def blocks_of(config):
    return {
        dtype: {k["name"]: [k["mc"], k["kc"], k["nc"]] for k in config[dtype]["kernels"]}
        for dtype in _tuning.DTYPES
    }


def test_a_saved_tuning_is_loaded_at_import_and_applied(cache):
    choices = odd_choices()
    path = _tuning.save(choices)
    assert path.parent == cache / "fastbp"
    tuning, config, stderr = load_in_new_process()
    assert tuning == str(path)
    assert "Warning" not in stderr
    for dtype in _tuning.DTYPES:
        assert blocks_of(config)[dtype] == choices[dtype]["kernels"]
        assert config[dtype]["wide_from"] == choices[dtype]["wide_from"]
        assert {k["blocks"] for k in config[dtype]["kernels"]} == {"tuned"}
    assert config[_tuning.THREADS] == ODD_THREADS


def test_tuning_off_and_explicit_blocks_ignore_the_cache(cache):
    _tuning.save(odd_choices())
    for env in ({"FASTBP_TUNING": "off"}, {"FASTBP_GEMM_BLOCKS": "table"}):
        tuning, config, stderr = load_in_new_process(**env)
        assert tuning is None
        assert "tuned" not in {k["blocks"] for k in config["float32"]["kernels"]}
        assert config[_tuning.THREADS] == fb.gemm_config()[_tuning.THREADS] != ODD_THREADS
        assert "Warning" not in stderr


def test_a_tuning_file_named_in_the_environment_is_used(cache, tmp_path):
    path = _tuning.save(odd_choices(), tmp_path / "mine.json")
    tuning, _, _ = load_in_new_process(FASTBP_TUNING=str(path))
    assert tuning == str(path)


def rewrite(path, edit):
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def resign(doc):
    """A checksum that matches the edited document: the key or values must reject it."""
    doc["checksum"] = _tuning._checksum(doc["key"], doc["choices"])


def edit_block(doc):
    name = next(iter(doc["choices"]["float32"]["kernels"]))
    doc["choices"]["float32"]["kernels"][name][1] += 8


def other_cpu(doc):
    doc["key"]["cpu"]["model"] += 1
    resign(doc)


def other_version(doc):
    doc["key"]["fastbp"] = "0.0.0"
    resign(doc)


def other_path(doc):
    doc["key"]["simd"] = "ref" if doc["key"]["simd"] != "ref" else "avx2"
    resign(doc)


def unknown_kernel(doc):
    kernels = doc["choices"]["float32"]["kernels"]
    kernels["sgemm_imaginary_8x8"] = kernels.popitem()[1]
    resign(doc)


def block_too_large(doc):
    name = next(iter(doc["choices"]["float64"]["kernels"]))
    doc["choices"]["float64"]["kernels"][name] = [1 << 30, 256, 4096]
    resign(doc)


def block_not_an_int(doc):
    name = next(iter(doc["choices"]["float64"]["kernels"]))
    doc["choices"]["float64"]["kernels"][name] = [True, 256.0, "4096"]
    resign(doc)


def negative_width(doc):
    doc["choices"]["float32"]["wide_from"] = -1
    resign(doc)


def unknown_setting(doc):
    doc["choices"]["threads"]["spin_microseconds"] = 100
    resign(doc)


def unknown_entry(doc):
    doc["choices"]["scheduler"] = {"policy": "fifo"}
    resign(doc)


def no_work_per_thread(doc):
    doc["choices"]["threads"]["work_per_thread"] = 0
    resign(doc)


def split_cost_too_large(doc):
    doc["choices"]["threads"]["split_pack_cost"] = (1 << 20) + 1
    resign(doc)


def thread_setting_not_an_int(doc):
    doc["choices"]["threads"]["work_per_thread"] = 524288.0
    resign(doc)


def edit_thread_setting(doc):
    doc["choices"]["threads"]["work_per_thread"] += 1


TAMPERED = [edit_block, other_cpu, other_version, other_path, unknown_kernel]
TAMPERED += [block_too_large, block_not_an_int, negative_width]
TAMPERED += [unknown_setting, unknown_entry, no_work_per_thread, split_cost_too_large]
TAMPERED += [thread_setting_not_an_int, edit_thread_setting]


@pytest.mark.parametrize("edit", TAMPERED, ids=[f.__name__ for f in TAMPERED])
def test_a_tampered_or_foreign_tuning_file_is_ignored_with_a_warning(cache, edit):
    path = _tuning.save(odd_choices())
    rewrite(path, edit)
    tuning, config, stderr = load_in_new_process()
    assert tuning is None
    assert stderr.count("ignoring the GEMM tuning file") == 1, stderr
    assert "tuned" not in {k["blocks"] for d in _tuning.DTYPES for k in config[d]["kernels"]}
    assert config[_tuning.THREADS] == fb.gemm_config()[_tuning.THREADS] != ODD_THREADS


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"\xff\xfe garbage", b"[1, 2]", b'{"format": 99}', b"[" * 100000],
    ids=["empty", "truncated", "binary", "a list", "other format", "deep nesting"],
)
def test_a_corrupt_tuning_file_is_ignored_with_a_warning(cache, content):
    path = _tuning.default_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    tuning, _, stderr = load_in_new_process()
    assert tuning is None
    assert "ignoring the GEMM tuning file" in stderr


def test_an_oversized_or_missing_named_file_is_ignored_with_a_warning(cache, tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (_tuning.MAX_FILE_BYTES + 1))
    for path in (big, tmp_path / "absent.json"):
        tuning, _, stderr = load_in_new_process(FASTBP_TUNING=str(path))
        assert tuning is None
        assert "ignoring the GEMM tuning file" in stderr


def test_validation_names_what_is_wrong():
    config = fb.gemm_config()
    with pytest.raises(_tuning.TuningError, match="keyed by"):
        _tuning.validate_choices({"float16": {}}, config)
    with pytest.raises(_tuning.TuningError, match="'kernels' and 'wide_from'"):
        _tuning.validate_choices({"float32": {"kernels": {}}}, config)
    one_kernel = {**config, "float32": {**config["float32"], "wide_from": None}}
    with pytest.raises(_tuning.TuningError, match="two kernels"):
        _tuning.validate_choices({"float32": {"kernels": {}, "wide_from": 64}}, one_kernel)
    with pytest.raises(_tuning.TuningError, match="'work_per_thread', 'split_pack_cost'"):
        _tuning.validate_choices({"threads": {"work_per_thread": 8}}, config)
    with pytest.raises(_tuning.TuningError, match="split_pack_cost must be an integer from 0"):
        _tuning.validate_choices({"threads": {"work_per_thread": 8, "split_pack_cost": -1}}, config)


def test_setting_blocks_checks_its_arguments(restore_config):
    name = fb.gemm_config()["float32"]["kernels"][0]["name"]
    with pytest.raises(ValueError, match="no GEMM kernel 'nope'"):
        _core._gemm_set_blocks("float32", "nope", 8, 8, 8, "tuned")
    with pytest.raises(ValueError, match="out of range"):
        _core._gemm_set_blocks("float32", name, 0, 8, 8, "tuned")
    with pytest.raises(ValueError, match="unknown GEMM dtype"):
        _core._gemm_set_blocks("int8", name, 8, 8, 8, "tuned")
    with pytest.raises(ValueError, match="unknown block source"):
        _core._gemm_set_blocks("float32", name, 8, 8, 8, "guess")
    with pytest.raises(ValueError, match="out of range"):
        _core._gemm_set_wide_from("float32", -1)
    with pytest.raises(ValueError, match=r"work per thread must be in \[1, "):
        _core._set_work_per_thread(0)
    with pytest.raises(ValueError, match="pack cost -1 is out of range"):
        _core._gemm_set_split_pack_cost(-1)
    assert fb.gemm_config()[_tuning.THREADS] != {"work_per_thread": 0, "split_pack_cost": -1}


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_products_stay_correct_under_applied_choices(restore_config, dtype):
    """The same products within the usual bound after choices are applied in this process;
    edge tiles, several K blocks and both kernels of a two-kernel path."""
    _tuning.apply(odd_choices())
    rng = np.random.default_rng(1)
    np_dtype = np.float64 if dtype == "float64" else np.float32
    for m, n, k in [(37, 70, 130), (5, 300, 90), (130, 33, 41)]:
        a = rng.standard_normal((m, k)).astype(np_dtype)
        b = rng.standard_normal((k, n)).astype(np_dtype)
        if dtype == "bfloat16":
            a, b = fb.reference.round_to_bfloat16(a), fb.reference.round_to_bfloat16(b)
        ref = a.astype(np.float64) @ b.astype(np.float64)
        eps = 2.0**-52 if dtype == "float64" else 2.0**-23
        tol = 2 * k * eps * (np.abs(a).astype(np.float64) @ np.abs(b)) + 1e-30
        compute = "bfloat16" if dtype == "bfloat16" else None
        assert (np.abs(fb.ops.matmul(a, b, compute_dtype=compute) - ref) <= tol).all()


SETTINGS = [
    {"work_per_thread": 1, "split_pack_cost": 0},
    {"work_per_thread": 1, "split_pack_cost": 1 << 20},
    {"work_per_thread": 1 << 40, "split_pack_cost": 16},
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_products_are_bitwise_the_same_under_every_thread_setting(restore_config, dtype):
    """Which thread computes a tile, and whether a product runs on one thread, never
    changes a result: the M/N split and the one-thread threshold move work, not sums."""
    rng = np.random.default_rng(2)
    np_dtype = np.float64 if dtype == "float64" else np.float32
    compute = "bfloat16" if dtype == "bfloat16" else None
    shapes = [(37, 70, 130), (5, 300, 90), (130, 33, 41), (256, 7, 300), (64, 512, 64)]
    operands = [
        (rng.standard_normal((m, k)).astype(np_dtype), rng.standard_normal((k, n)).astype(np_dtype))
        for m, n, k in shapes
    ]
    for trans in (False, True):
        expected = [
            fb.ops.matmul(a.T.copy() if trans else a, b, trans, False, compute) for a, b in operands
        ]
        for settings in SETTINGS:
            _tuning.apply_threads(settings)
            for (a, b), want in zip(operands, expected):
                got = fb.ops.matmul(a.T.copy() if trans else a, b, trans, False, compute)
                assert np.array_equal(got, want), (settings, a.shape, b.shape)
        _tuning.apply_threads({"work_per_thread": 1 << 19, "split_pack_cost": 16})


def test_choose_wide_from_takes_the_split_that_wins_on_the_shapes():
    shapes = [(64, 32, 64, False, False), (64, 128, 64, False, False), (64, 512, 64, False, False)]
    narrow, wide = [10.0, 10.0, 10.0], [5.0, 12.0, 20.0]  # wide wins from 128 columns
    assert tune.choose_wide_from(shapes, narrow, wide, 32, current=256) == 128
    assert tune.choose_wide_from(shapes, narrow, [20.0] * 3, 32, current=256) == 0
    assert tune.choose_wide_from(shapes, narrow, [1.0] * 3, 32, current=256) == tune.NEVER_WIDE
    # a tie, or a gain within the noise margin, keeps the split in use
    assert tune.choose_wide_from(shapes, narrow, [10.0] * 3, 32, current=256) == 256
    small_gain = [10.0, 10.0, 10.5]
    assert tune.choose_wide_from(shapes, narrow, small_gain, 32, tune.NEVER_WIDE) == tune.NEVER_WIDE


def test_blocks_in_use_are_kept_unless_another_candidate_is_clearly_faster():
    in_use, other = (100.0, "analytic", [1], []), (102.0, "table", [2], [])
    assert tune.pick([in_use, other]) is in_use
    faster = (110.0, "kc*2", [3], [])
    assert tune.pick([in_use, other, faster]) is faster


def test_candidates_are_whole_tiles_without_duplicates():
    kernel = {"mr": 12, "nr": 32, "mc": 240, "kc": 192, "nc": 4096, "blocks": "table"}
    kernel.update(table=(240, 192, 4096), analytic=(1536, 256, 8192))
    for full in (False, True):
        found = tune.candidates(kernel, full)
        blocks = [tuple(b) for _, b in found]
        assert len(blocks) == len(set(blocks))
        assert all(mc % 12 == 0 and nc % 32 == 0 and kc % 32 == 0 for mc, kc, nc in blocks)
        assert (240, 192, 4096) in blocks and (1536, 256, 8192) in blocks


def test_shapes_option_is_checked():
    assert tune.parse_shapes("4,5,6;7,8,9,T,F") == ((4, 5, 6, False, False), (7, 8, 9, True, False))
    for bad in ("4,5", "a,b,c", "0,5,6"):
        with pytest.raises(Exception, match="M,N,K|positive"):
            tune.parse_shapes(bad)


def test_the_tuner_saves_a_file_that_the_next_import_uses(cache, tmp_path):
    out = tmp_path / "tuned.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastbp.tune",
            "--shapes",
            "40,50,60;60,40,50,T,F",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"saved to {out}" in result.stdout
    assert result.stdout.count("*") >= len(_tuning.DTYPES)  # a winner per dtype at least
    choices = _tuning.read(out)
    assert set(choices) == {*_tuning.DTYPES, _tuning.THREADS}
    tuning, config, _ = load_in_new_process(FASTBP_TUNING=str(out))
    assert tuning == str(out)
    assert blocks_of(config) == {d: choices[d]["kernels"] for d in _tuning.DTYPES}


def test_the_tuner_starts_from_the_defaults_not_from_a_loaded_file(restore_config, monkeypatch):
    before = fb.gemm_config()
    monkeypatch.setattr(_tuning, "_untuned", before)  # as if a file had been loaded
    monkeypatch.setattr(_tuning, "_loaded_path", "/somewhere/tuning.json")
    _tuning.apply(odd_choices())
    _tuning.restore_untuned()
    after = fb.gemm_config()
    assert blocks_of(after) == blocks_of(before)
    for dtype in _tuning.DTYPES:
        assert after[dtype]["wide_from"] == before[dtype]["wide_from"]
        assert [k["blocks"] for k in after[dtype]["kernels"]] == [
            k["blocks"] for k in before[dtype]["kernels"]
        ]
    assert after[_tuning.THREADS] == before[_tuning.THREADS]
    assert fb.build_info()["tuning"] is None


def small_network(dtype="float32", compute_dtype=None, backend="cpu"):
    layers = [fb.Dense(30, 20), fb.ReLU(), fb.Dense(20, 40), fb.Tanh(), fb.Dense(40, 3)]
    return fb.Network(
        layers, fb.MSELoss(), dtype=dtype, compute_dtype=compute_dtype, backend=backend
    )


def test_network_shapes_are_the_products_of_a_training_step():
    """Forward X @ W and weight gradient X^T @ dZ per layer, the input gradient dZ @ W^T
    but for the first layer (whose input needs no gradient), at the batch size."""
    shapes = tune.network_shapes(small_network(), 16)
    forward = [(16, 20, 30, False, False), (16, 40, 20, False, False), (16, 3, 40, False, False)]
    weight_grad = [(30, 20, 16, True, False), (20, 40, 16, True, False), (40, 3, 16, True, False)]
    input_grad = [(16, 20, 40, False, True), (16, 40, 3, False, True)]
    assert sorted(shapes) == sorted(forward + weight_grad + input_grad)


def test_network_shapes_of_an_inference_pass_are_the_forward_products():
    shapes = tune.network_shapes(small_network(), 16, forward_only=True)
    assert shapes == (
        (16, 20, 30, False, False),
        (16, 40, 20, False, False),
        (16, 3, 40, False, False),
    )


def test_training_parts_follow_the_rows_and_threads(restore_threads):
    """One part per thread where each gets at least 128 rows (this network's weights ask
    no more), else one; a BatchNorm network's pass stays whole."""
    core = small_network().internals.core
    fb.set_num_threads(2)
    assert [core.training_parts(rows) for rows in (1, 255, 256, 1000)] == [1, 1, 2, 2]
    fb.set_num_threads(1)
    assert core.training_parts(1000) == 1
    fb.set_num_threads(2)
    norm = fb.Network([fb.Dense(30, 20), fb.BatchNorm(20), fb.Dense(20, 3)], fb.MSELoss())
    assert norm.internals.core.training_parts(1000) == 1
    with pytest.raises(ValueError, match="rows must be at least 1, got 0"):
        core.training_parts(0)
    assert small_network(backend="numpy").internals.core.training_parts(1000) == 1


def test_tune_a_split_network_times_one_part_on_one_thread(
    cache, restore_config, monkeypatch, restore_threads
):
    """Where a training pass over the batch runs as two parts, the blocks are timed on
    one part's products (128 of 256 rows) with the pool at one thread, as they run there,
    and the thread settings on the whole batch's forward products at two threads."""
    fb.set_num_threads(2)
    monkeypatch.setattr(_tuning, "_loaded_path", None)  # the tuning file in use, restored
    monkeypatch.setattr(_tuning, "_untuned", fb.gemm_config())
    seen = {}

    def recording(name, real):
        def wrapper(dtype, shapes, plan):
            seen[name] = (tuple(shapes), fb.get_num_threads())
            return real(dtype, shapes, plan)

        return wrapper

    monkeypatch.setattr(tune, "tune_dtype", recording("blocks", tune.tune_dtype))
    monkeypatch.setattr(tune, "tune_threads", recording("threads", tune.tune_threads))
    net = small_network()
    X = np.random.default_rng(3).standard_normal((256, 30)).astype(np.float32)
    fb.tune(net, X)
    assert seen["blocks"] == (tune.network_shapes(net, 128), 1)
    assert seen["threads"] == (tune.network_shapes(net, 256, forward_only=True), 2)
    assert fb.get_num_threads() == 2
    seen.clear()
    fb.tune(net, X[:200])  # two parts would get 100 rows each: the pass runs whole
    assert seen["blocks"] == (tune.network_shapes(net, 200), 2)
    assert seen["threads"] == (tune.network_shapes(net, 200), 2)


@pytest.mark.parametrize(
    ("dtype", "compute", "product"),
    [
        ("float32", None, "float32"),
        ("float64", None, "float64"),
        ("float32", "bfloat16", "bfloat16"),
    ],
)
def test_product_dtype_follows_the_network(dtype, compute, product):
    assert tune.product_dtype(small_network(dtype, compute)) == product


def test_tune_a_network_saves_applies_and_keeps_other_dtypes(cache, restore_config, monkeypatch):
    """fb.tune(net, X): the network's dtype and the thread settings are tuned, applied in
    this process and saved where the next import reads them; another dtype's choices from
    the file in use are kept."""
    earlier = odd_choices()
    earlier_path = _tuning.save(earlier)
    monkeypatch.setattr(_tuning, "_loaded_path", str(earlier_path))
    monkeypatch.setattr(_tuning, "_untuned", fb.gemm_config())
    net = small_network()
    X = np.random.default_rng(3).standard_normal((16, 30)).astype(np.float32)
    choices = fb.tune(net, X)
    assert set(choices) == {*_tuning.DTYPES, _tuning.THREADS}
    assert choices["float64"] == earlier["float64"]  # not this network's dtype: kept
    assert choices["bfloat16"] == earlier["bfloat16"]
    path = _tuning.default_path()
    assert fb.build_info()["tuning"] == str(path) == str(earlier_path)
    assert _tuning.read(path) == choices
    config = fb.gemm_config()
    assert blocks_of(config)["float32"] == choices["float32"]["kernels"]
    assert config[_tuning.THREADS] == choices[_tuning.THREADS]
    tuning, loaded, stderr = load_in_new_process()
    assert tuning == str(path) and "Warning" not in stderr
    assert loaded[_tuning.THREADS] == choices[_tuning.THREADS]


def test_tune_checks_its_arguments_before_timing(cache):
    X = np.zeros((8, 30), np.float32)
    with pytest.raises(TypeError, match="expects a fastbp Network, got list"):
        fb.tune([fb.Dense(30, 3)], X)
    with pytest.raises(ValueError, match="backend is 'numpy', expected 'cpu'"):
        fb.tune(small_network(backend="numpy"), X)
    with pytest.raises(ValueError, match=r"2-D batch with at least one row, got shape \(30,\)"):
        fb.tune(small_network(), X[0])
    with pytest.raises(ValueError, match="input width 30, got 29 columns"):
        fb.tune(small_network(), X[:, 1:])
    assert not (cache / "fastbp").exists()
    assert fb.build_info()["tuning"] is None


def test_the_tuner_times_nothing_past_its_time_limit(restore_config):
    """A plan whose time is up keeps every setting in use, times no candidate and writes
    no kernel's blocks into the choices."""
    before = fb.gemm_config()
    lines = []
    plan = tune.Plan(full=False, repeats=1, block_seconds=0.001, end=0.0, out=lines.append)
    choices, rows = tune.run(list(_tuning.DTYPES), [(8, 8, 8, False, False)], plan)
    assert rows == [r for r in rows if r[1] == "wide kernel from"]
    after = fb.gemm_config()
    assert blocks_of(after) == blocks_of(before)
    for dtype in _tuning.DTYPES:
        assert choices[dtype] == {"kernels": {}, "wide_from": before[dtype]["wide_from"]}
        assert after[dtype]["wide_from"] == before[dtype]["wide_from"]
        assert [k["blocks"] for k in after[dtype]["kernels"]] == [
            k["blocks"] for k in before[dtype]["kernels"]
        ]
    assert choices[_tuning.THREADS] == before[_tuning.THREADS]
    assert any("time limit" in line for line in lines)


def test_thread_candidates_are_unique_and_in_bounds():
    low, high = _tuning.THREAD_BOUNDS["work_per_thread"]
    for current in (1, 1 << 19, high):
        for full in (False, True):
            values = [v for _, v in tune.work_candidates(current, full)]
            assert values[0] == current and len(values) == len(set(values)) > 1
            assert all(low <= v <= high for v in values)
            costs = [v for _, v in tune.split_candidates(16, full)]
            assert costs[0] == 16 and 0 in costs and tune.ALWAYS_M in costs
