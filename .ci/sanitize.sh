#!/usr/bin/env bash
# Sanitizer job: build fastbp once with AddressSanitizer and UndefinedBehaviorSanitizer
# (CMake option FASTBP_SANITIZE) in a fresh virtual environment, then run the test suite
# and a longer fuzz of fastbp._core under them. Any report fails the job. Linux, GCC.
set -euo pipefail
cd "$(dirname "$0")/.."

export CXX="${CXX:-g++}"  # the runtime preloaded below must be this compiler's
tmp="$(mktemp -d)"
# Removed at exit without the ASan runtime preloaded below.
trap 'env -u LD_PRELOAD rm -rf "$tmp"' EXIT
venv="$tmp/venv"
python3 -m venv "$venv"
# shellcheck disable=SC1091
source "$venv/bin/activate"
# CPU code only: nvcc takes no sanitizer flags, and no GPU is needed to run the suite.
pip install --no-cache-dir -C cmake.define.FASTBP_SANITIZE=ON -C cmake.define.FASTBP_CUDA=OFF ".[test]"

# Python itself is not instrumented, so the ASan runtime must be loaded first, and
# libstdc++ with it: ASan finds the C++ throw it intercepts only in libraries loaded then.
LD_PRELOAD="$("$CXX" -print-file-name=libasan.so):$("$CXX" -print-file-name=libstdc++.so)"
export LD_PRELOAD
# CPython keeps objects alive at exit by design: leak reports would be its, not ours.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export FASTBP_FUZZ_EXAMPLES=1000

# The whole suite but tests/test_memory.py: under ASan the resident set measures its
# quarantine and shadow memory, not fastbp's.
python -m pytest -p no:cacheprovider --ignore=tests/test_memory.py
