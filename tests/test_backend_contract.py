"""csrc/nn/backend.hpp, the contract between the network loop and its backends, checked
at compile time: tests/cpp/backend_contract.cpp compiles as it is (both CPU backends and
a backend that declares every member meet it), and fails to compile, naming the member,
when one member has another signature or is missing."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def compile_contract(*defines):
    compiler = shutil.which(os.environ.get("CXX", "c++"))
    if compiler is None or not (ROOT / "csrc").is_dir():
        pytest.skip("needs a C++ compiler and the source tree's csrc/")
    return subprocess.run(
        [
            compiler,
            "-std=c++17",
            "-fsyntax-only",
            *(f"-D{d}" for d in defines),
            f"-I{ROOT / 'csrc'}",
            str(ROOT / "tests" / "cpp" / "backend_contract.cpp"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_backends_meet_the_contract():
    result = compile_contract()
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "define,message",
    [
        ("MISTYPED_COPY", "backend member: void copy(const T*, T*, int64_t)"),
        ("MISSING_IDLE", "backend member: void idle()"),
    ],
)
def test_a_mistyped_or_missing_member_fails_to_compile_naming_it(define, message):
    result = compile_contract(define)
    assert result.returncode != 0
    assert message in result.stderr
    assert result.stderr.count("static assertion failed") == 1, result.stderr
