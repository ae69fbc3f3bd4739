"""ONNX export: Network.to_onnx and the estimators' to_onnx, checked by onnx's checker and
run by onnxruntime against fastbp's own predictions (skipped without onnx/onnxruntime)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import fastbp as fb
from fastbp.io.onnx_export import MIN_OPSET
from fbhelpers import BACKENDS, DTYPES, dense_layers, make_net, tol

onnx = pytest.importorskip("onnx", reason='onnx is not installed (pip install "fastbp[onnx]")')
ort = pytest.importorskip(
    "onnxruntime", reason='onnxruntime is not installed (pip install "fastbp[onnx]")'
)

#: Every activation and every loss in fastbp, found in their modules, so one added there
#: is exported here too.
ACTIVATION_TYPES = sorted(
    (
        cls
        for cls in vars(fb.nn.activations).values()
        if isinstance(cls, type) and issubclass(cls, fb.Activation) and cls is not fb.Activation
    ),
    key=lambda c: c.__name__,
)
LOSS_TYPES = sorted(
    (
        cls
        for cls in vars(fb.losses).values()
        if isinstance(cls, type) and issubclass(cls, fb.Loss) and cls is not fb.Loss
    ),
    key=lambda c: c.__name__,
)
#: Batch sizes to run the exported graph on; the export itself sees no batch.
RUN_BATCHES = (1, 7, 33)
ELEM_TYPES = {"float32": onnx.TensorProto.FLOAT, "float64": onnx.TensorProto.DOUBLE}


def run(path, X, output=None) -> np.ndarray:
    """The first output (or ``output``) of the model at ``path`` for the batch ``X``."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None if output is None else [output], {"input": X})[0]


def checked(path) -> onnx.ModelProto:
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    return model


def with_biases(net, rng):
    """``net`` with random biases: they start at 0, which would hide a misplaced bias."""
    for layer in dense_layers(net):
        layer.b = rng.standard_normal(layer.out_features)
    return net


def assert_runs_as_predict(path, net, rng, tolerance=None):
    for n in RUN_BATCHES:
        X = (3 * rng.standard_normal((n, net.in_features))).astype(net.dtype)
        got = run(path, X)
        assert got.dtype == net.dtype and got.shape == (n, net.out_features)
        np.testing.assert_allclose(got, net.predict(X), **(tolerance or tol(net.dtype)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTIVATION_TYPES, ids=lambda c: c.__name__)
def test_every_activation_exports_and_runs_as_predict(tmp_path, rng, act, dtype):
    net = with_biases(
        fb.Network(
            [fb.Dense(5, 9), act(), fb.Dense(9, 4), act()], fb.MSELoss(), dtype=dtype, seed=0
        ),
        rng,
    )
    net.to_onnx(tmp_path / "net.onnx")
    checked(tmp_path / "net.onnx")
    # onnxruntime has no double Erf: a float64 GELU's erf runs at float32 precision.
    erf32 = act is fb.GELU and dtype == "float64"
    assert_runs_as_predict(
        tmp_path / "net.onnx", net, rng, dict(rtol=1e-6, atol=1e-7) if erf32 else None
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opset", [MIN_OPSET, 17, 20])
@pytest.mark.parametrize(
    "make",
    [
        lambda: fb.LeakyReLU(0.2),
        lambda: fb.ELU(alpha=0.7),
        lambda: fb.GELU(),
        lambda: fb.GELU(approximate="tanh"),
        lambda: fb.SiLU(),
    ],
    ids=["leaky_relu", "elu", "gelu", "gelu_tanh", "silu"],
)
def test_activation_settings_export_at_every_opset(tmp_path, rng, make, opset, dtype):
    if opset > onnx.defs.onnx_opset_version():
        pytest.skip(f"onnx {onnx.__version__} knows no opset {opset}")
    net = with_biases(
        fb.Network([fb.Dense(3, 7), make(), fb.Dense(7, 2)], fb.MSELoss(), dtype=dtype, seed=2), rng
    )
    net.to_onnx(tmp_path / "net.onnx", opset=opset)
    checked(tmp_path / "net.onnx")
    erf32 = net.layers[1].name == "gelu" and dtype == "float64"
    assert_runs_as_predict(
        tmp_path / "net.onnx", net, rng, dict(rtol=1e-6, atol=1e-7) if erf32 else None
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", LOSS_TYPES, ids=lambda c: c.__name__)
def test_every_loss_exports_predicts_raw_outputs(tmp_path, rng, loss, dtype):
    # predict returns the last layer's output (logits for the classification losses), and
    # so does the graph: no softmax or sigmoid is added for the loss.
    net = with_biases(make_net((6, 11, 3), "relu", loss(), dtype, seed=1), rng)
    net.to_onnx(tmp_path / "net.onnx")
    model = checked(tmp_path / "net.onnx")
    assert [node.op_type for node in model.graph.node] == ["Gemm", "Relu", "Gemm"]
    assert_runs_as_predict(tmp_path / "net.onnx", net, rng)


@pytest.mark.parametrize("dtype", DTYPES)
def test_graph_has_named_input_and_output_with_a_dynamic_batch(tmp_path, dtype):
    net = make_net((4, 6, 2), "tanh", dtype=dtype)
    net.to_onnx(tmp_path / "net.onnx")
    graph = checked(tmp_path / "net.onnx").graph
    (inp,), (out,) = graph.input, graph.output
    assert (inp.name, out.name) == ("input", "output")
    for value, width in ((inp, 4), (out, 2)):
        assert value.type.tensor_type.elem_type == ELEM_TYPES[dtype]
        batch, features = value.type.tensor_type.shape.dim
        assert batch.dim_param == "batch" and not batch.HasField("dim_value")
        assert features.dim_value == width


@pytest.mark.parametrize("backend", BACKENDS)
def test_network_on_every_backend_exports_its_predictions(tmp_path, rng, backend):
    net = with_biases(make_net((3, 5, 2), "sigmoid", backend=backend), rng)
    net.to_onnx(tmp_path / "net.onnx")
    assert_runs_as_predict(tmp_path / "net.onnx", net, rng)


@pytest.mark.parametrize("as_path", [str, pathlib.Path], ids=["str", "Path"])
def test_path_may_be_a_str_or_a_pathlib_path(tmp_path, rng, as_path):
    net = with_biases(make_net((3, 4, 2)), rng)
    net.to_onnx(as_path(tmp_path / "net.onnx"))
    assert_runs_as_predict(tmp_path / "net.onnx", net, rng)


@pytest.mark.parametrize("opset", [MIN_OPSET, 13, 17])
def test_supported_opsets_are_declared_and_run(tmp_path, rng, opset):
    net = with_biases(make_net((3, 4, 2), "relu", dtype="float32"), rng)
    net.to_onnx(tmp_path / "net.onnx", opset=opset)
    model = checked(tmp_path / "net.onnx")
    assert [(o.domain, o.version) for o in model.opset_import] == [("", opset)]
    assert_runs_as_predict(tmp_path / "net.onnx", net, rng)


@pytest.mark.parametrize(
    "opset,exc",
    [
        ("17", TypeError),
        (17.0, TypeError),
        (True, TypeError),
        (None, TypeError),
        (MIN_OPSET - 1, ValueError),
        (0, ValueError),
        (onnx.defs.onnx_opset_version() + 1, ValueError),
    ],
)
def test_bad_opset_raises_and_writes_nothing(tmp_path, opset, exc):
    with pytest.raises(exc, match="opset must be"):
        make_net((3, 4, 2)).to_onnx(tmp_path / "net.onnx", opset=opset)
    assert list(tmp_path.iterdir()) == []


def test_unsupported_layer_raises_type_error_naming_it(tmp_path):
    class Scale(fb.Layer):
        pass

    net = make_net((3, 4, 2))
    net.layers[1] = Scale()  # a layer type the exporter has no mapping for
    with pytest.raises(TypeError, match=r"layers\[1\] is a Scale"):
        net.to_onnx(tmp_path / "net.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("head", ["sigmoid", (), ("exp", "sigmoid"), (None,), ["exp"]])
def test_unknown_head_raises_value_error(tmp_path, head):
    from fastbp.io.onnx_export import to_onnx

    with pytest.raises(ValueError, match="head must be one of"):
        to_onnx(make_net((3, 4, 2)), tmp_path / "net.onnx", head=head)
    assert list(tmp_path.iterdir()) == []


def test_importing_fastbp_and_its_exporter_does_not_need_onnx():
    code = "import sys; sys.modules['onnx'] = None; import fastbp, fastbp.io.onnx_export"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_missing_onnx_raises_import_error_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r'pip install "fastbp\[onnx\]"'):
        make_net((3, 4, 2)).to_onnx(tmp_path / "net.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_replaces_an_old_file_only_once_the_new_one_is_complete(tmp_path, rng, monkeypatch):
    path = tmp_path / "net.onnx"
    old, new = make_net((3, 4, 2), seed=0), make_net((3, 4, 2), seed=1)
    old.to_onnx(path)

    def fail(fd):
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", fail)  # the new model is written, then fails before the rename
        with pytest.raises(OSError, match="disk full"):
            new.to_onnx(path)
    assert [p.name for p in tmp_path.iterdir()] == ["net.onnx"]  # no temporary left
    assert_runs_as_predict(path, old, rng)
    new.to_onnx(path)
    assert_runs_as_predict(path, new, rng)


# ---- scikit-learn estimators ---------------------------------------------------------


@pytest.fixture
def sklearn():
    return pytest.importorskip("fastbp.sklearn", reason="scikit-learn is not installed")


# Labels of each kind a classifier takes, and the columns of its predict_proba.
CLASSIFIER_TARGETS = {
    "binary": (lambda rng: np.array(["ant", "bee"])[rng.integers(0, 2, 60)], 2),
    "multiclass": (lambda rng: np.array(["ant", "bee", "cat", "dog"])[rng.integers(0, 4, 60)], 4),
    "multilabel": (lambda rng: (rng.random((60, 3)) < 0.5).astype(int), 3),
}


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer. Maximum iterations")  # 5 epochs
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(CLASSIFIER_TARGETS))
def test_classifier_exports_predict_proba(tmp_path, rng, sklearn, kind, dtype):
    X = rng.standard_normal((60, 5)).astype(dtype)
    labels, columns = CLASSIFIER_TARGETS[kind]
    clf = sklearn.MLPClassifier((7,), activation="tanh", max_iter=5, random_state=0)
    clf.fit(X, labels(rng))
    clf.to_onnx(tmp_path / "clf.onnx")
    model = checked(tmp_path / "clf.onnx")
    assert [o.name for o in model.graph.output] == ["probabilities"]
    for n in RUN_BATCHES:
        Xn = (3 * rng.standard_normal((n, 5))).astype(dtype)
        got = run(tmp_path / "clf.onnx", Xn)
        assert got.shape == (n, columns)
        np.testing.assert_allclose(got, clf.predict_proba(Xn), **tol(dtype))


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer. Maximum iterations")  # 5 epochs
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("targets", [1, 3], ids=["single", "multi"])
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_regressor_exports_predict_with_its_shape(tmp_path, rng, sklearn, targets, dtype, loss):
    X = rng.standard_normal((50, 4)).astype(dtype)
    y = rng.standard_normal((50, targets)).squeeze()
    y = np.abs(y) if loss == "poisson" else y  # rates: predict is exp of the outputs
    reg = sklearn.MLPRegressor(loss, hidden_layer_sizes=(6,), max_iter=5, random_state=0).fit(X, y)
    reg.to_onnx(pathlib.Path(tmp_path, "reg.onnx"))
    checked(tmp_path / "reg.onnx")
    for n in RUN_BATCHES:
        Xn = rng.standard_normal((n, 4)).astype(dtype)
        want = reg.predict(Xn)
        got = run(tmp_path / "reg.onnx", Xn)
        assert got.shape == want.shape == ((n,) if targets == 1 else (n, targets))
        np.testing.assert_allclose(got, want, **tol(dtype))


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_unfitted_estimator_raises_not_fitted_error(tmp_path, sklearn, name):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        getattr(sklearn, name)().to_onnx(tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []
