"""Run scikit-learn's own MLP test suite against fastbp.sklearn.

Copies the installed scikit-learn's ``sklearn/neural_network/tests/test_mlp.py`` into a
temporary folder, imports fastbp.sklearn's ``MLPClassifier`` and ``MLPRegressor`` there in
place of scikit-learn's, gives it the ``global_random_seed`` fixture (42, or the integer in
``SKLEARN_TESTS_GLOBAL_RANDOM_SEED``), deselects the tests of scikit-learn's private
internals, and runs pytest on it under its own configuration (fastbp's pytest settings,
warnings as errors among them, do not apply). Arguments are passed on to pytest; the exit
status is pytest's.

    python tests/sklearn/sklearn_suite.py            # the whole suite, ends with pytest's summary
    python tests/sklearn/sklearn_suite.py -k warm    # a part of it
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tempfile

import sklearn.neural_network.tests

SKLEARN_IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor\n"
FASTBP_IMPORT = "from fastbp.sklearn import MLPClassifier, MLPRegressor\n"

# They call scikit-learn's private methods and attributes (_loss_grad_lbfgs,
# _optimizer.learning_rate), which fastbp's estimators do not have.
PRIVATE_API_TESTS = ("test_gradient", "test_learning_rate_warmstart", "test_adaptive_learning_rate")

CONFTEST = """\
import os

import pytest


@pytest.fixture
def global_random_seed():
    return int(os.environ.get("SKLEARN_TESTS_GLOBAL_RANDOM_SEED", "42"))
"""


def prepare(folder: pathlib.Path) -> pathlib.Path:
    """Write the suite, its conftest and an empty pytest configuration into ``folder``;
    return the suite's path."""
    source = pathlib.Path(sklearn.neural_network.tests.__file__).with_name("test_mlp.py")
    text = source.read_text()
    if text.count(SKLEARN_IMPORT) != 1:
        raise RuntimeError(
            f"{source} does not import the estimators as expected "
            f"({SKLEARN_IMPORT.strip()!r}): the import cannot be swapped"
        )
    suite = folder / "test_mlp.py"
    suite.write_text(text.replace(SKLEARN_IMPORT, FASTBP_IMPORT))
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "pytest.ini").write_text("[pytest]\n")
    return suite


def main(args: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        suite = prepare(folder)
        deselect = [f"--deselect={suite.name}::{name}" for name in PRIVATE_API_TESTS]
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(folder / "pytest.ini"),
            "--rootdir",
            str(folder),
            *deselect,
            suite.name,
            *args,
        ]
        return subprocess.run(command, cwd=folder).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
