"""fastbp: fast backpropagation for multilayer perceptrons.

Build a :class:`Network` from layers and a loss, train it with ``fit`` or ``train_step``
and one of the optimizers (:mod:`fastbp.optim`); the heavy lifting runs in C++
(``fastbp._core``), and :mod:`fastbp.reference` holds the same maths in NumPy.
"""

from __future__ import annotations

import sys
import warnings

from . import _core, _threadpool, _tuning, ops, optim, reference
from .gradcheck import gradcheck
from .io import interop, onnx_export
from .network import Network, from_torch
from .nn import activations, layers, losses
from .nn.activations import *  # noqa: F403  (the classes in activations.__all__)
from .nn.layers import BatchNorm, Dense, Dropout, Layer, LayerNorm, RMSNorm
from .nn.losses import *  # noqa: F403  (the classes in losses.__all__)
from .optim import *  # noqa: F403 (every optimizer, as optim.__all__ lists them)
from .optim import schedules
from .training import callbacks, distributed, history, metrics
from .training.history import History

# fastbp.callbacks, fastbp.schedules and fastbp.distributed (the documented namespaces),
# and fastbp.layers, fastbp.losses, ... (the paths pickles name classes by): each short
# path is the subpackage's module itself, for `import` and unpickling alike.
for _module in (
    activations,
    callbacks,
    distributed,
    history,
    interop,
    layers,
    losses,
    metrics,
    onnx_export,
    schedules,
):
    sys.modules[f"{__name__}.{_module.__name__.rpartition('.')[2]}"] = _module
del _module

__version__ = _core.__version__
_threadpool.register_with_threadpoolctl()
_tuning.load_at_import()

__all__ = [
    "BatchNorm",
    "Dense",
    "Dropout",
    "Layer",
    "LayerNorm",
    "RMSNorm",
    *activations.CLASSES,
    *losses.CLASSES,
    "History",
    "Network",
    *optim.__all__,
    "callbacks",
    "distributed",
    "from_torch",
    "gradcheck",
    "ops",
    "reference",
    "schedules",
    "build_info",
    "cuda_available",
    "gemm_config",
    "get_num_threads",
    "set_num_threads",
    "tune",  # noqa: F405 (imported on first use, by __getattr__ below)
]


def build_info() -> dict:
    """How this fastbp was built and what it uses here: version, compiler, SIMD paths
    compiled and in use, the x86-64 level the elementwise kernels run at
    (``elementwise``: ``"x86-64-v4"``, ``"x86-64-v3"`` or ``"baseline"``), the bfloat16
    GEMM's kernel (``bf16_gemm``) and its rule for
    subnormals (``bf16_subnormals``: ``"kept"`` or ``"flushed"``), the thread count, CUDA
    compiled and available (``cuda_device``: the GPU's name, ``cuda_status``: the device or
    why none is usable), and the GEMM tuning file in use (``tuning``: its path, or None
    when the blocks derived from the caches are in use; see :func:`gemm_config`)."""
    info = _core.build_info()
    info["tuning"] = _tuning.loaded_path()
    return info


def gemm_config() -> dict:
    """The matrix products' configuration on this machine: the CPU (``cpu``), the caches
    read from it (``caches``: size, ways, line bytes and CPUs sharing each of ``l1d``,
    ``l2``, ``l3``, and ``source``: ``"cpuid"``, ``"sysfs"`` or ``"none"``), the SIMD
    path, and per product dtype (``float32``, ``float64``, ``bfloat16``) its kernels with
    their cache blocks: in use (``mc``, ``kc``, ``nc``, from ``blocks``: ``"analytic"``,
    ``"table"``, ``"tuned"`` or ``"environment"``), the built-in table's and the
    analytic model's; ``wide_from`` is the width from which the wide kernel runs (None
    on a path with one kernel). ``threads``: the multiply-adds a thread must get
    (``work_per_thread``: a product below twice that runs on one thread) and the pack
    cost that splits a product's threads between its rows and columns
    (``split_pack_cost``). ``tuning`` is the tuning file in use, or None."""
    config = _core.gemm_config()
    config["tuning"] = _tuning.loaded_path()
    return config


def cuda_available() -> bool:
    """Whether ``backend="cuda"`` can run here: the CUDA backend is compiled and a usable
    NVIDIA GPU is present (``build_info()["cuda_status"]`` says why not)."""
    return bool(_core.build_info()["cuda_available"])


def get_num_threads() -> int:
    """Threads fastbp's kernels use, the calling thread included (default:
    ``FASTBP_NUM_THREADS``, else ``OMP_NUM_THREADS``, else the CPUs this process may use)."""
    return _core.get_num_threads()


def set_num_threads(n: int) -> None:
    """Set the threads fastbp's kernels use, for every Python thread.

    ``n`` must be in ``[1, 4 x the CPUs this process may use]`` (``_core.max_threads()``),
    else ``ValueError``. When the operating system cannot start ``n`` threads now (a
    memory or thread limit), fastbp uses as many as it could start and warns.
    """
    from ._validate import integer

    n = integer("n", n)
    got = _core.set_num_threads(n)  # the core checks the range, in one wording
    if got < n:
        warnings.warn(
            f"the system could start only {got} of the {n} threads asked for; fastbp uses {got}",
            RuntimeWarning,
            stacklevel=2,
        )


def __getattr__(name: str):
    # fb.tune, the tuner (fastbp/tune.py, callable as fb.tune(net, X)), is imported on first
    # use, so that `python -m fastbp.tune` runs a module the package has not imported yet.
    if name == "tune":
        import importlib

        return importlib.import_module(".tune", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    # The public names only: not the modules and helpers the package imports for itself.
    return sorted(__all__)
