"""The public names of fastbp and the module paths code imports them by, listed here one
by one: a name or a path that disappears fails a test."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

import fastbp as fb

#: ``fastbp.__all__``, which ``dir(fastbp)`` lists.
FASTBP = [
    "Activation",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "BCEWithLogitsLoss",
    "BatchNorm",
    "Dense",
    "Dropout",
    "ELU",
    "GELU",
    "History",
    "HuberLoss",
    "Identity",
    "L1Loss",
    "Layer",
    "LayerNorm",
    "LeakyReLU",
    "Loss",
    "MSELoss",
    "Network",
    "Optimizer",
    "PoissonNLLLoss",
    "RMSNorm",
    "RMSprop",
    "ReLU",
    "SGD",
    "SiLU",
    "Sigmoid",
    "SmoothL1Loss",
    "SoftmaxCrossEntropyLoss",
    "Softplus",
    "Tanh",
    "build_info",
    "callbacks",
    "cuda_available",
    "distributed",
    "from_torch",
    "gemm_config",
    "get_num_threads",
    "gradcheck",
    "ops",
    "reference",
    "schedules",
    "set_num_threads",
    "tune",
]

#: Every function of ``fastbp.ops`` (its ``__all__``) and its parameters.
OPS = {
    "adadelta_step": (
        "param, grad, square_avg, acc_delta, *, lr=1.0, rho=0.9, eps=1e-06, weight_decay=0.0, "
        "step=1"
    ),
    "adagrad_step": (
        "param, grad, sum, *, lr=0.01, lr_decay=0.0, weight_decay=0.0, eps=1e-10, step=1"
    ),
    "adam_step": (
        "param, grad, exp_avg, exp_avg_sq, *, lr=0.001, betas=(0.9, 0.999), eps=1e-08, "
        "weight_decay=0.0, decoupled_weight_decay=False, step=1"
    ),
    "adamw_step": (
        "param, grad, exp_avg, exp_avg_sq, *, lr=0.001, betas=(0.9, 0.999), eps=1e-08, "
        "weight_decay=0.01, step=1"
    ),
    "batch_norm": "x, weight, bias, running_mean, running_var, training, momentum=0.1, eps=1e-05",
    "batch_norm_backward": "x, weight, grad, eps=1e-05",
    "bce_with_logits": "y, target, reduction='mean'",
    "bce_with_logits_backward": "y, target, reduction='mean'",
    "clip_grad_norm": "grad, max_norm",
    "dropout": "x, p, key",
    "dropout_backward": "grad, p, key",
    "dropout_key": "seed, layer, pass_index",
    "elu": "x, alpha=1.0",
    "elu_backward": "x, grad, alpha=1.0",
    "gelu": "x",
    "gelu_backward": "x, grad",
    "gelu_tanh": "x",
    "gelu_tanh_backward": "x, grad",
    "huber": "y, target, delta=1.0, reduction='mean'",
    "huber_backward": "y, target, delta=1.0, reduction='mean'",
    "identity": "x",
    "identity_backward": "y, grad",
    "l1": "y, target, reduction='mean'",
    "l1_backward": "y, target, reduction='mean'",
    "layer_norm": "x, weight, bias, eps=1e-05",
    "layer_norm_backward": "x, weight, grad, eps=1e-05",
    "leaky_relu": "x, negative_slope=0.01",
    "leaky_relu_backward": "x, grad, negative_slope=0.01",
    "linear": "x, w, b",
    "matmul": "a, b, trans_a=False, trans_b=False, compute_dtype=None",
    "mse": "y, target, reduction='mean'",
    "mse_backward": "y, target, reduction='mean'",
    "poisson_nll": "y, target, log_input=True, full=False, eps=1e-08, reduction='mean'",
    "poisson_nll_backward": "y, target, log_input=True, full=False, eps=1e-08, reduction='mean'",
    "relu": "x",
    "relu_backward": "y, grad",
    "rms_norm": "x, weight, eps=None",
    "rms_norm_backward": "x, weight, grad, eps=None",
    "rmsprop_step": (
        "param, grad, square_avg, momentum_buffer, grad_avg, *, lr=0.01, alpha=0.99, "
        "eps=1e-08, weight_decay=0.0, momentum=0.0, centered=False, step=1"
    ),
    "sgd_step": (
        "param, grad, velocity, *, lr=0.01, momentum=0.0, dampening=0.0, nesterov=False, "
        "weight_decay=0.0, step=1"
    ),
    "sigmoid": "x",
    "sigmoid_backward": "y, grad",
    "silu": "x",
    "silu_backward": "x, grad",
    "softmax": "x",
    "smooth_l1": "y, target, beta=1.0, reduction='mean'",
    "smooth_l1_backward": "y, target, beta=1.0, reduction='mean'",
    "softmax_cross_entropy": "y, target, reduction='mean'",
    "softmax_cross_entropy_backward": "y, target, reduction='mean'",
    "softplus": "x, beta=1.0, threshold=20.0",
    "softplus_backward": "x, grad, beta=1.0, threshold=20.0",
    "tanh": "x",
    "tanh_backward": "y, grad",
}

#: ``fastbp.reference.__all__``: a NumPy twin of every op, and what only the reference has.
REFERENCE = [*OPS, "round_to_bfloat16", "OPTIMIZER_STEPS", "ReferenceNetwork"]
#: The reference's other public names: its tables of twins by name.
REFERENCE_TABLES = ["ACTIVATIONS", "LOSSES", "LOSS_TERMS", "loss_with_settings", "weighted_loss"]

#: Module paths and the names code imports from them (each module's ``__all__``): the
#: documented namespaces, and the modules whose paths pickles of fastbp's objects name.
MODULES = {
    "fastbp.ops": list(OPS),
    "fastbp.reference": REFERENCE + REFERENCE_TABLES,
    "fastbp.callbacks": [
        "Callback",
        "ModelCheckpoint",
        "CSVLogger",
        "ReduceLROnPlateau",
        "EarlyStopping",
        "ProgressBar",
        "load_tqdm",
        "progress_default",
    ],
    "fastbp.schedules": ["Schedule", "StepLR", "ExponentialLR", "CosineAnnealingLR"],
    "fastbp.distributed": [
        "allreduce_gradients",
        "average_running_statistics",
        "broadcast_parameters",
        "agree",
        "rank",
        "DataParallel",
    ],
    "fastbp.io": ["save", "load", "network_config", "values", "from_config", "atomic_write"],
    "fastbp.optim": ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta"],
    "fastbp.history": ["History", "epoch_name"],
    "fastbp.network": ["Network", "History", "from_torch"],
    "fastbp.layers": [
        "Layer",
        "Dense",
        "Dropout",
        "LayerNorm",
        "RMSNorm",
        "BatchNorm",
        "INITS",
        "LAYER_TYPES",
    ],
    "fastbp.activations": [
        "Activation",
        "Sigmoid",
        "ReLU",
        "Tanh",
        "Identity",
        "LeakyReLU",
        "ELU",
        "GELU",
        "SiLU",
        "Softplus",
        "ACTIVATIONS",
        "for_name",
        "op_signature",
    ],
    "fastbp.losses": [
        "Loss",
        "MSELoss",
        "SoftmaxCrossEntropyLoss",
        "BCEWithLogitsLoss",
        "L1Loss",
        "HuberLoss",
        "SmoothL1Loss",
        "PoissonNLLLoss",
        "LOSS_TYPES",
    ],
    "fastbp.metrics": ["accuracy", "METRICS"],
    "fastbp.tune": ["main", "peak", "tune"],
    "fastbp.onnx_export": ["to_onnx", "MIN_OPSET", "HEADS"],
    "fastbp.interop": ["torch_layers", "to_torch"],
    "fastbp.gradcheck": ["gradcheck"],
    "fastbp.training": [],
    "fastbp.sklearn": ["MLPClassifier", "MLPRegressor"],
}


def parameters(fn) -> str:
    """``fn``'s parameters as ``inspect`` writes them (``*`` before the keyword-only
    ones), without annotations."""
    signature = inspect.signature(fn)
    bare = [p.replace(annotation=p.empty) for p in signature.parameters.values()]
    return str(signature.replace(parameters=bare, return_annotation=signature.empty))[1:-1]


def test_the_package_exports_its_names():
    assert sorted(fb.__all__) == sorted(FASTBP)
    assert [name for name in dir(fb) if not name.startswith("_")] == sorted(FASTBP)
    for name in FASTBP:
        assert getattr(fb, name) is not None


def test_every_op_keeps_its_name_and_parameters():
    assert sorted(fb.ops.__all__) == sorted(OPS)
    assert {name: parameters(getattr(fb.ops, name)) for name in OPS} == OPS


def test_every_op_has_its_numpy_twin():
    assert sorted(fb.reference.__all__) == sorted(REFERENCE)
    for name in REFERENCE + REFERENCE_TABLES:
        assert getattr(fb.reference, name) is not None


def test_every_module_path_imports_with_its_names_in_a_fresh_interpreter():
    """``import fastbp.x``, ``fastbp.x.name`` and ``from fastbp.x import name``, as the
    documentation and pickles spell them, before anything else imports fastbp."""
    pytest.importorskip("sklearn")
    lines = []
    for path, names in MODULES.items():
        lines.append(f"import {path}")
        if path != "fastbp.gradcheck":  # fastbp.gradcheck is the function, not its module
            lines += [f"{path}.{name}" for name in names]
        if names:
            lines.append(f"from {path} import {', '.join(names)}")
    result = subprocess.run(
        [sys.executable, "-c", "\n".join(lines)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "path",
    [p for p in MODULES if p not in ("fastbp.reference", "fastbp.training", "fastbp.sklearn")],
)
def test_each_module_exports_what_is_imported_from_it(path):
    assert sorted(importlib.import_module(path).__all__) == sorted(MODULES[path])
