"""Networks and optimizers pickle (scikit-learn and multiprocessing need it)."""

from __future__ import annotations

import pathlib
import pickle
import pickletools
import re

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import BACKENDS, DTYPES, make_data, make_net


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_network_round_trip(rng, backend, dtype):
    widths = (3, 6, 2)
    X, T = make_data(widths, "mse_mean", 10, rng, dtype)
    net = make_net(widths, "tanh", "mse_mean", dtype, backend, seed=0)
    net.train_step(X, T, fb.SGD(lr=0.1))
    again = pickle.loads(pickle.dumps(net))
    assert repr(again) == repr(net) and again.dtype == net.dtype
    np.testing.assert_array_equal(again.predict(X), net.predict(X))
    again.layers[0].W[0, 0] += 1  # an independent copy
    assert again.layers[0].W[0, 0] != net.layers[0].W[0, 0]


@pytest.mark.parametrize(
    "opt", [fb.SGD(lr=0.1, momentum=0.9), fb.Adam(lr=0.01), fb.AdamW(lr=0.01, betas=(0.8, 0.9))]
)
def test_optimizer_round_trip_keeps_hyper_parameters_not_states(rng, opt):
    net = make_net((3, 2))
    X, T = make_data((3, 2), "mse_mean", 4, rng)
    net.train_step(X, T, opt)
    again = pickle.loads(pickle.dumps(opt))
    assert again.hyper_parameters == opt.hyper_parameters and repr(again) == repr(opt)
    assert again.state_for(net).steps == 0 and opt.state_for(net).steps == 1


class _Tampered:
    """Pickles as a call of ``fn(*args)``: a network's pickle with its contents replaced."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.mark.parametrize(
    "config,values,token",
    [
        (None, lambda v: np.where(np.arange(v.size) == 3, np.nan, v), "NaN or inf"),
        (None, lambda v: np.where(np.arange(v.size) == 0, -np.inf, v), "NaN or inf"),
        (
            lambda c: {**c, "dtype": "float32"},
            lambda v: np.where(np.arange(v.size) == 2, 1e300, v),
            "float64",
        ),
        (None, lambda v: v.astype(np.float32), "float32"),
        (None, lambda v: v.reshape(1, -1), "shape"),
        (None, lambda v: v.tolist(), "list"),
        (lambda c: {**c, "version": 2}, None, "version 2"),
        (lambda c: {**c, "format": "keras"}, None, "not a fastbp network"),
        (lambda c: {**c, "dtype": "float16"}, None, "float16"),
        (lambda c: {**c, "compute_dtype": "bfloat16"}, None, "compute dtype"),
        (lambda c: {**c, "layers": []}, None, "empty"),
    ],
    ids=[
        "nan",
        "inf",
        "1e300-in-float32",
        "dtype-mismatch",
        "2-D",
        "list",
        "version",
        "format",
        "float16",
        "bfloat16-float64",
        "no-layers",
    ],
)
def test_tampered_pickle_is_refused_as_load_refuses_a_tampered_file(config, values, token):
    """Unpickling runs the checks load runs: finite values of the header's dtype and
    size (float64 values too large for float32 are refused, not stored as inf), and a
    header as this fastbp writes it."""
    net = make_net((3, 4, 2), "tanh", "mse_mean", "float64", "cpu", seed=0)
    fn, (cls, header, stored, backend) = net.__reduce__()
    if config is not None:
        header = config(header)
    if values is not None:
        stored = values(stored)
    data = pickle.dumps(_Tampered(fn, (cls, header, stored, backend)))
    with pytest.raises(ValueError, match=re.escape(token)):
        pickle.loads(data)


#: Pickles (protocol 2) of a trained network, of layers, losses, optimizers, schedules,
#: callbacks and a History, which name their classes by the module paths
#: ``fastbp.network``, ``fastbp.io``, ``fastbp.layers``, ``fastbp.activations``,
#: ``fastbp.losses``, ``fastbp.optim``, ``fastbp.schedules``, ``fastbp.callbacks`` and
#: ``fastbp.history``; beside them, what each held (reprs, values, attributes). Arrays are
#: stored as ``numpy.array`` calls, which every NumPy reads.
SHORT_PATH_PICKLES = pathlib.Path(__file__).parents[1] / "data" / "flat_module_paths.pickle"


def test_pickles_naming_the_short_module_paths_load():
    data = SHORT_PATH_PICKLES.read_bytes()
    named = {arg.split()[0] for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
    assert named == {
        "fastbp._core",
        "fastbp.activations",
        "fastbp.callbacks",
        "fastbp.history",
        "fastbp.io",
        "fastbp.layers",
        "fastbp.losses",
        "fastbp.network",
        "fastbp.optim",
        "fastbp.schedules",
        "numpy",
    }
    loaded = pickle.loads(data)
    objects, expected = loaded["objects"], loaded["expected"]
    net = objects["network"]
    assert isinstance(net, fb.Network)
    assert (repr(net), fb.io.values(net).tolist()) == expected["network"]
    assert net.predict(np.zeros((2, 3))).shape == (2, 2)
    for kind in ("layers", "losses", "optimizers", "schedules"):
        assert [repr(obj) for obj in objects[kind]] == expected[kind]
    assert [(type(c).__name__, vars(c)) for c in objects["callbacks"]] == expected["callbacks"]
    assert isinstance(objects["history"], fb.History)
    assert vars(objects["history"]) == expected["history"]
