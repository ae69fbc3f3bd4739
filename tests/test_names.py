"""Names defined once: the enums the core exports, and everything in Python that takes
its names from them (layers, losses, ops, the NumPy reference, save files, interop,
scikit-learn), plus the optimizers' one path to their core calls."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

import fastbp as fb
from fastbp import _core, _names, sklearn
from fastbp.io import interop
from fastbp.nn import activations, layers, losses
from fastbp.optim import optimizers


@pytest.mark.parametrize(
    "name,snake",
    [
        ("Identity", "identity"),
        ("ReLU", "relu"),
        ("Tanh", "tanh"),
        ("MSE", "mse"),
        ("SoftmaxCrossEntropy", "softmax_cross_entropy"),
        ("BCEWithLogits", "bce_with_logits"),
        ("LeakyReLU", "leaky_relu"),
        ("GELU", "gelu"),
        ("SiLU", "silu"),
        ("Mean", "mean"),
        ("PoissonNLL", "poisson_nll"),
        ("SmoothL1", "smooth_l1"),
    ],
)
def test_snake_case(name, snake):
    assert _names.snake_case(name) == snake


def test_name_tables_are_the_core_enums():
    for table, enum in (
        (_names.ACTIVATIONS, _core.Act),
        (_names.LOSSES, _core.Loss),
        (_names.REDUCTIONS, _core.Reduction),
    ):
        assert list(table.values()) == list(enum.__members__.values())
    assert fb._validate.REDUCTIONS == ("mean", "sum")


def test_every_core_activation_has_a_layer_an_op_and_a_reference_twin(rng):
    assert set(activations.ACTIVATIONS) == set(_names.ACTIVATIONS)
    x = rng.standard_normal((3, 5))
    for name, kind in _names.ACTIVATIONS.items():
        cls = activations.ACTIVATIONS[name]
        # GELU computes two kinds, picked by its approximate setting.
        assert kind in cls.kinds and (cls.kind is kind) == (cls.name == name)
        assert cls.for_kind(kind).kind is kind and cls.for_kind(kind).name == name
        assert layers.LAYER_TYPES[cls.__name__] is cls
        assert getattr(fb, cls.__name__) is cls
        y = getattr(fb.ops, name)(x)
        np.testing.assert_allclose(y, getattr(fb.reference, name)(x), rtol=1e-12)
        np.testing.assert_allclose(
            getattr(fb.ops, name + "_backward")(y, x),
            getattr(fb.reference, name + "_backward")(y, x),
            rtol=1e-12,
        )
        assert name in fb.ops.__all__ and name + "_backward" in fb.ops.__all__


def test_every_core_loss_has_a_class_and_a_reference_twin():
    assert {cls.kind for cls in losses.LOSS_TYPES.values()} == set(_names.LOSSES.values())
    for cls in losses.LOSS_TYPES.values():
        assert _names.LOSSES[cls.name] is cls.kind
        assert getattr(fb, cls.__name__) is cls
        assert callable(getattr(fb.ops, cls.name)) and callable(getattr(fb.reference, cls.name))


def test_save_files_interop_and_sklearn_name_the_registered_classes():
    assert set(layers.LAYER_TYPES) == {
        "Dense",
        "Dropout",
        "LayerNorm",
        "RMSNorm",
        "BatchNorm",
        *(c.__name__ for c in activations.ACTIVATIONS.values()),
    }
    assert interop._twins() == {
        "Linear": fb.Dense,
        "Dropout": fb.Dropout,
        "LayerNorm": fb.LayerNorm,
        "RMSNorm": fb.RMSNorm,
        "BatchNorm1d": fb.BatchNorm,
        **{c.__name__: c for c in activations.ACTIVATIONS.values()},
    }
    assert sklearn._ACTIVATIONS == {
        "identity": fb.Identity,
        "logistic": fb.Sigmoid,
        "tanh": fb.Tanh,
        "relu": fb.ReLU,
    }


def test_user_subclasses_do_not_replace_fastbp_classes():
    class MyReLU(fb.ReLU):
        pass

    class MyLoss(fb.MSELoss):
        pass

    assert MyReLU.name == "relu" and MyLoss.name == "mse"
    assert activations.ACTIVATIONS["relu"] is fb.ReLU and "MyReLU" not in layers.LAYER_TYPES
    assert "MyLoss" not in losses.LOSS_TYPES


def test_stub_enums_declare_the_core_members_or_none():
    stub = (pathlib.Path(fb.__file__).parent / "_core.pyi").read_text()
    enums = dict(re.findall(r"^class (\w+)\(Enum\):\n((?:    .*\n)*)", stub, re.M))
    core_enums = {
        n
        for n in dir(_core)
        if isinstance(getattr(_core, n), type) and hasattr(getattr(_core, n), "__members__")
    }
    assert set(enums) == core_enums
    memberless = set()
    for name, body in enums.items():
        members = dict(re.findall(r"^    (\w+) = (\d+)$", body, re.M))
        if not members:
            # Python reads these members by name only: the stub leaves them to the core.
            assert "compiled module" in body, name
            memberless.add(name)
            continue
        enum = getattr(_core, name)
        assert members == {m: str(int(v)) for m, v in enum.__members__.items()}, name
    assert {"Act", "Loss", "Reduction", "NormKind"} <= memberless


def test_stub_functions_are_the_core_functions_with_their_parameters():
    stub = (pathlib.Path(fb.__file__).parent / "_core.pyi").read_text()
    for name, params in re.findall(r"^def (\w+)\(\s*([^)]*)\)", stub, re.M):
        function = getattr(_core, name)
        stub_names = re.findall(r"(\w+):", params)
        core_line = function.__doc__.splitlines()[0]
        core_names = re.findall(r"[(,] ?(\w+): ", core_line[core_line.index("(") :])
        assert stub_names == core_names, name


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("opt", [fb.SGD(lr=0.1), fb.Adam(), fb.RMSprop()])
def test_optimizer_supplies_its_core_args(opt, backend):
    net = fb.Network([fb.Dense(2, 3), fb.Tanh(), fb.Dense(3, 1)], fb.MSELoss(), backend=backend)
    state, core = net._bind_optimizer(opt)
    spec, states, steps = opt.core_args(state)
    assert core is net._core and spec.kind == opt.kind and states is state.arrays
    assert len(states) == len(optimizers.STATE_TYPES[spec.kind].names) and steps == 0
    assert spec.max_grad_norm == 0.0 and all(type(h) is float for h in spec.hyper)
