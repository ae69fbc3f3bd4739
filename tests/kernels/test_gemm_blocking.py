"""The GEMM's cache blocks from the caches the CPU reports: the analytic model as a
function of cache sizes, the reading of the caches, and the table as the fallback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastbp as fb
from fastbp import _core

SYSFS = Path("/sys/devices/system/cpu/cpu0/cache")
KIB = 1024


def level(size, ways, line=64, shared_by=1):
    return {"size": size, "ways": ways, "line": line, "shared_by": shared_by}


# Haswell: 32 KiB 8-way L1d, 256 KiB 8-way L2, 8 MiB 16-way L3.
HASWELL = {"l1d": level(32 * KIB, 8), "l2": level(256 * KIB, 8), "l3": level(8192 * KIB, 16)}


def blocks(caches, mr, nr, k_bytes, k_align=1, fallback_nc=4096):
    return _core._gemm_analytic_blocks(caches, mr, nr, k_bytes, k_align, fallback_nc)


def test_model_gives_blis_haswell_dgemm_depth():
    """6 x 8 doubles on Haswell: 3 of the 7 free L1 ways hold the A micro-panel, so KC =
    3 x 64 sets x 64 bytes / (6 x 8 bytes) = 256, BLIS's choice there; the A block takes
    the 6 L2 ways the B micro-panel and C leave: MC = 6 x 32 KiB / (256 x 8) = 96; the B
    panel the 14 L3 ways the A block and C leave: NC = 14 x 512 KiB / 2 KiB = 3584."""
    assert blocks(HASWELL, 6, 8, 8) == (96, 256, 3584)


# Sapphire Rapids: 48 KiB 12-way L1d, 2 MiB 16-way L2.
SAPPHIRE = {**HASWELL, "l1d": level(48 * KIB, 12), "l2": level(2048 * KIB, 16)}


def test_model_gives_a_kernel_too_wide_for_l1_one_way_of_l2():
    """6 x 64 floats leave no L1 way for A ((12 - 1) x 6 / 70 < 1): the B micro-panel
    takes one 128 KiB way of L2, KC = 128 KiB / (64 x 4) = 512, the depth a hand sweep
    found fastest on that CPU; bfloat16 pairs (2 bytes per K step) go twice as deep."""
    assert blocks(SAPPHIRE, 6, 64, 4)[1] == 512
    assert blocks(SAPPHIRE, 6, 64, 2, k_align=2)[1] == 1024


def test_model_blocks_fit_the_cache_shares_they_are_derived_from():
    for mr, nr, k_bytes in [(6, 16, 4), (12, 32, 4), (6, 64, 4), (12, 16, 8), (32, 32, 2)]:
        for caches in (HASWELL, SAPPHIRE):
            mc, kc, nc = blocks(caches, mr, nr, k_bytes, fallback_nc=4096)
            l1, l2 = caches["l1d"], caches["l2"]
            assert mc % mr == 0 and nc % nr == 0 and kc % 16 == 0
            assert 256 <= kc <= 2048 and mr <= mc <= 1536 and 1024 <= nc <= 8192
            if kc == 256:
                pass  # the floor: no fit to check in L1
            elif (l1["ways"] - 1) * mr // (mr + nr) >= 1:  # both micro-panels in L1 less a way
                assert (mr + nr) * kc * k_bytes <= l1["size"] * (l1["ways"] - 1) // l1["ways"]
            else:  # the B micro-panel in one L2 way
                assert nr * kc * k_bytes <= l2["size"] // l2["ways"]
            if mr < mc < 1536:  # the A block in L2 less a way for C and one for B
                assert mc * kc * k_bytes <= l2["size"] * (l2["ways"] - 2) // l2["ways"]


def test_model_keeps_k_blocks_at_least_256_deep():
    """6 x 16 floats on Haswell: one L1 way for A gives KC = 4096 / 24 = 170, raised to
    256 (BLIS's choice there)."""
    assert blocks(HASWELL, 6, 16, 4)[1] == 256


def test_model_needs_l1_and_l2_and_falls_back_for_nc_without_l3():
    assert blocks({**HASWELL, "l1d": None}, 6, 8, 8) is None
    assert blocks({**HASWELL, "l2": None}, 6, 8, 8) is None
    assert blocks({**HASWELL, "l3": None}, 6, 8, 8, fallback_nc=2000) == (96, 256, 2000)


def test_model_divides_a_shared_l3_among_the_cpus_sharing_it():
    alone = blocks(HASWELL, 6, 8, 8)
    shared = blocks({**HASWELL, "l3": level(8192 * KIB, 16, shared_by=4)}, 6, 8, 8)
    assert shared[:2] == alone[:2] and shared[2] < alone[2]


def test_model_depth_follows_the_element_size_and_k_alignment():
    _, kc_float, _ = blocks(SAPPHIRE, 12, 32, 4)
    _, kc_bf16, _ = blocks(SAPPHIRE, 12, 32, 2, k_align=2)
    _, kc_amx, _ = blocks(SAPPHIRE, 32, 32, 2, k_align=32)
    assert kc_bf16 == 2 * kc_float
    assert kc_amx % 32 == 0


def write_cache_tree(root: Path, levels):
    for i, (lvl, kind, size, ways, shared) in enumerate(levels):
        d = root / f"index{i}"
        d.mkdir(parents=True)
        for name, value in [
            ("level", lvl),
            ("type", kind),
            ("size", size),
            ("ways_of_associativity", ways),
            ("coherency_line_size", 64),
            ("shared_cpu_list", shared),
        ]:
            (d / name).write_text(f"{value}\n")


def test_sysfs_reader_takes_data_and_unified_caches(tmp_path):
    """An ARM-like tree: no L3, an instruction cache to skip, sizes in K and M."""
    write_cache_tree(
        tmp_path,
        [
            (1, "Data", "64K", 4, "0"),
            (1, "Instruction", "64K", 4, "0"),
            (2, "Unified", "1M", 8, "0-3"),
        ],
    )
    caches = _core._gemm_caches_from_sysfs(str(tmp_path))
    assert caches["source"] == "sysfs"
    assert caches["l1d"] == level(64 * KIB, 4)
    assert caches["l2"] == level(1024 * KIB, 8, shared_by=4)
    assert caches["l3"] is None


@pytest.mark.parametrize("broken", ["missing", "garbage"])
def test_sysfs_reader_reports_nothing_it_cannot_read(tmp_path, broken):
    if broken == "garbage":
        write_cache_tree(tmp_path, [(1, "Data", "lots", "many", "?"), (2, "Unified", "", 8, "")])
    caches = _core._gemm_caches_from_sysfs(str(tmp_path))
    assert caches["source"] == "none"
    assert caches["l1d"] is None and caches["l2"] is None


@pytest.mark.skipif(not SYSFS.is_dir(), reason="no /sys cache tree on this system")
def test_caches_read_at_import_match_sysfs():
    read = fb.gemm_config()["caches"]
    if read["source"] == "none":
        pytest.skip("this CPU reports no caches")
    sysfs = _core._gemm_caches_from_sysfs(str(SYSFS))
    for name in ("l1d", "l2", "l3"):
        if sysfs[name] is None:
            continue
        for field in ("size", "ways", "line"):
            assert read[name][field] == sysfs[name][field], (name, field)


def fresh_config(tmp_path, **env) -> dict:
    """gemm_config() in a new process, with no tuning file in its user cache."""
    result = subprocess.run(
        [sys.executable, "-c", "import json, fastbp; print(json.dumps(fastbp.gemm_config()))"],
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def kernels(config):
    return [k for dtype in ("float32", "float64", "bfloat16") for k in config[dtype]["kernels"]]


def test_kernels_run_the_analytic_blocks_where_the_caches_are_known(tmp_path):
    config = fresh_config(tmp_path, FASTBP_GEMM_BLOCKS="", FASTBP_TUNING="")
    if config["caches"]["source"] == "none":
        pytest.skip("this CPU reports no caches")
    assert config["tuning"] is None
    for k in kernels(config):
        # the AMX tile kernel is not one the model describes: it keeps the table's
        source = "table" if k["name"].startswith("bf16gemm_amx") else "analytic"
        assert k["blocks"] == source
        assert [k["mc"], k["kc"], k["nc"]] == k[source]


def test_environment_forces_the_table(tmp_path):
    config = fresh_config(tmp_path, FASTBP_GEMM_BLOCKS="table")
    for k in kernels(config):
        assert k["blocks"] == "table"
        assert [k["mc"], k["kc"], k["nc"]] == k["table"]


def test_environment_blocks_apply_to_every_kernel_in_whole_tiles(tmp_path):
    config = fresh_config(tmp_path, FASTBP_GEMM_BLOCKS="7,100,9")
    for k in kernels(config):
        assert k["blocks"] == "environment"
        assert k["kc"] == 100
        assert k["mc"] % k["mr"] == 0 and k["mc"] >= 7 and k["mc"] - 7 < k["mr"]
        assert k["nc"] % k["nr"] == 0 and k["nc"] >= 9 and k["nc"] - 9 < k["nr"]


def test_gemm_config_describes_the_cpu_and_path():
    config = fb.gemm_config()
    assert config["simd"] == fb.build_info()["simd"]
    assert set(config["cpu"]) == {"vendor", "family", "model", "stepping"}
    for dtype in ("float32", "float64", "bfloat16"):
        ks = config[dtype]["kernels"]
        assert 1 <= len(ks) <= 2
        assert (config[dtype]["wide_from"] is None) == (len(ks) == 1)
