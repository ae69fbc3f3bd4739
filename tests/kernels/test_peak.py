"""The measured peak (``fastbp.tune.peak``): on every SIMD path this machine runs, the
loop of the instruction that path's products use and that path's wide float32
micro-kernel on panels in L1, each a finite positive rate, and None for a unit the path
lacks; its thread count checked before anything runs. No rate is asserted
beyond being positive: timings depend on the machine and its load."""

from __future__ import annotations

import json
import math
import textwrap

import pytest

import fastbp as fb
from fbhelpers import SIMD_PATHS, run_on_path

#: Per path, the instruction of the float32 loop and of the bfloat16 one (None: absent),
#: and the wide float32 micro-kernel.
INSTRUCTIONS = {
    "ref": (None, None, "sgemm_ref_4x8"),
    "avx2": ("vfmadd231ps ymm", None, "sgemm_avx2_6x16"),
    "avx512": ("vfmadd231ps zmm", None, "sgemm_avx512_6x64"),
    "avx512_bf16": ("vfmadd231ps zmm", "vdpbf16ps zmm", "sgemm_avx512_6x64"),
    "amx": ("vfmadd231ps zmm", "tdpbf16ps", "sgemm_avx512_6x64"),
}

PEAK = textwrap.dedent("""
    import json, fastbp as fb
    print(json.dumps([fb.tune.peak(1), fb.tune.peak()]))
""")


def check_unit(unit, instruction, threads):
    if instruction is None:
        assert unit is None
        return
    assert unit["instruction"] == instruction
    assert unit["threads"] == threads
    assert math.isfinite(unit["gflops"]) and unit["gflops"] > 0


@pytest.mark.parametrize("path", SIMD_PATHS)
def test_peak_runs_the_paths_instructions_on_one_thread_and_on_the_pool(path):
    result = run_on_path(path, PEAK, env={"FASTBP_NUM_THREADS": "2"})
    assert result.returncode == 0, result.stderr
    one, pool = json.loads(result.stdout)
    for peak, threads in ((one, 1), (pool, 2)):
        assert peak["simd"] == path
        float32, bfloat16, kernel = INSTRUCTIONS[path]
        check_unit(peak["float32"], float32, threads)
        check_unit(peak["bfloat16"], bfloat16, threads)
        check_unit(peak["float32_kernel"], kernel, threads)


def test_peak_defaults_to_fastbps_thread_count():
    peak = fb.tune.peak()
    assert peak["simd"] == fb.build_info()["simd"]
    for unit in (peak["float32"], peak["bfloat16"], peak["float32_kernel"]):
        assert unit is None or unit["threads"] == fb.get_num_threads()
    assert peak["float32_kernel"] is not None


@pytest.mark.parametrize("threads", [0, -1, "pool+1", 2**70])
def test_peak_refuses_a_thread_count_outside_the_pool(threads):
    if threads == "pool+1":
        threads = fb.get_num_threads() + 1
    with pytest.raises(
        ValueError, match=rf"threads must be in \[1, {fb.get_num_threads()}\].*got {threads}"
    ):
        fb.tune.peak(threads)


@pytest.mark.parametrize("threads", ["2", 1.0, True])
def test_peak_refuses_a_thread_count_that_is_not_an_int(threads):
    with pytest.raises(TypeError, match="threads must be an int"):
        fb.tune.peak(threads)
