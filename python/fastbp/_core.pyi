"""Types of fastbp's compiled module. Use the fastbp package; this is its engine."""

from collections.abc import Sequence
from enum import Enum

import numpy as np
from numpy.typing import NDArray

class Act(Enum):
    """An activation kind: its members and their values are the compiled module's, which
    Python reads by name (``Act.ReLU``)."""

class Loss(Enum):
    """A loss kind: its members and their values are the compiled module's, which
    Python reads by name."""

class Reduction(Enum):
    """A loss's reduction: its members and their values are the compiled module's, which
    Python reads by name."""

class NormKind(Enum):
    """A row norm's kind: its members and their values are the compiled module's, which
    Python reads by name (``NormKind.LayerNorm``)."""

class Optimizer(Enum):
    SGD = 0
    Adam = 1
    RMSprop = 2
    Adagrad = 3
    Adadelta = 4

def set_num_threads(n: int) -> int: ...
def max_threads() -> int: ...
def get_num_threads() -> int: ...
def build_info() -> dict: ...
def gemm_config() -> dict: ...
def measure_peak(threads: int) -> dict: ...
def _gemm_analytic_blocks(
    caches: dict, mr: int, nr: int, k_bytes: int, k_align: int, fallback_nc: int
) -> tuple[int, int, int] | None: ...
def _gemm_caches_from_sysfs(root: str) -> dict: ...
def _gemm_set_blocks(dtype: str, kernel: str, mc: int, kc: int, nc: int, source: str) -> None: ...
def _gemm_set_wide_from(dtype: str, n: int) -> None: ...
def _gemm_set_split_pack_cost(cost: int) -> None: ...
def _set_work_per_thread(work: int) -> None: ...
def matmul(
    a: NDArray, b: NDArray, trans_a: bool = ..., trans_b: bool = ..., compute: Compute = ...
) -> NDArray: ...
def linear(x: NDArray, w: NDArray, b: NDArray) -> NDArray: ...
def activation(act: Act, x: NDArray, a: float = ..., b: float = ...) -> NDArray: ...
def activation_backward(
    act: Act, y: NDArray, grad: NDArray, x: NDArray | None = ..., a: float = ..., b: float = ...
) -> NDArray: ...
def act_uses_input(act: Act) -> bool: ...
def softmax(x: NDArray) -> NDArray: ...
def loss(
    kind: Loss,
    reduction: Reduction,
    y: NDArray,
    target: NDArray,
    with_grad: bool,
    params: Sequence[float] = ...,
) -> tuple[float, NDArray | None]: ...
def optimizer_step(
    kind: Optimizer,
    hyper: list[float],
    param: NDArray,
    grad: NDArray,
    states: list[NDArray],
    step: int,
) -> None: ...
def clip_grad_norm(grad: NDArray, max_norm: float) -> float: ...
def all_finite(x: NDArray) -> bool: ...
def row_norm(
    kind: NormKind, x: NDArray, weight: NDArray, bias: NDArray | None, eps: float
) -> NDArray: ...
def row_norm_backward(
    kind: NormKind, x: NDArray, weight: NDArray, grad: NDArray, eps: float
) -> tuple[NDArray, ...]: ...
def batch_norm(
    x: NDArray,
    weight: NDArray,
    bias: NDArray,
    running_mean: NDArray,
    running_var: NDArray,
    training: bool,
    momentum: float,
    eps: float,
) -> NDArray: ...
def batch_norm_backward(
    x: NDArray, weight: NDArray, grad: NDArray, eps: float
) -> tuple[NDArray, NDArray, NDArray]: ...
def dropout(x: NDArray, p: float, key: int) -> NDArray: ...
def dropout_backward(grad: NDArray, p: float, key: int) -> NDArray: ...
def dropout_key(seed: int, layer: int, pass_index: int) -> int: ...
def sigint_count() -> int: ...
def watch_sigint(on: bool) -> None: ...
def hold_sigint(on: bool) -> None: ...
def defer_sigint() -> None: ...
def resume_sigint() -> bool: ...

class Compute(Enum):
    Storage = 0
    Bfloat16 = 1

class LayerKind(Enum):
    Dense = 0
    Activation = 1
    Dropout = 2
    RowNorm = 3
    BatchNorm = 4

class LayerSpec:
    """One layer as the network's plan takes it."""

    def __init__(
        self,
        kind: LayerKind,
        inputs: int,
        outputs: int,
        act: Act = ...,
        act_a: float = ...,
        act_b: float = ...,
        p: float = ...,
        eps: float = ...,
        momentum: float = ...,
        norm: NormKind = ...,
    ) -> None: ...
    kind: LayerKind
    inputs: int
    outputs: int
    act: Act
    norm: NormKind

def layer_tensors(
    layer: LayerSpec,
) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]: ...

class UpdateSpec:
    """An optimizer's kind, hyper-parameters (checked on construction) and clipping norm
    (0.0: none), as the network's training calls take them."""

    def __init__(self, kind: Optimizer, hyper: list[float], max_grad_norm: float = 0.0) -> None: ...
    @property
    def kind(self) -> Optimizer: ...
    @property
    def hyper(self) -> tuple[float, ...]: ...
    @property
    def max_grad_norm(self) -> float: ...

Slices = list[tuple[str, int, tuple[int, ...]]]

class _Network:
    """Network32 (float32) and Network64 (float64): a network on backend "cpu" or "cuda"
    (built with FASTBP_CUDA), its flat parameter, gradient and state buffers, with one
    call per forward, backward, step or epoch. On "cuda" the buffers live on the GPU and
    the arrays below are host copies, synced on access."""

    def __init__(
        self,
        layers: list[LayerSpec],
        loss: Loss,
        reduction: Reduction,
        loss_params: Sequence[float] = (),
        seed: int = 0,
        backend: str = "cpu",
        compute: Compute = ...,
    ) -> None: ...
    @property
    def compute(self) -> Compute: ...
    @property
    def n_params(self) -> int: ...
    @property
    def n_state(self) -> int: ...
    @property
    def in_features(self) -> int: ...
    @property
    def out_features(self) -> int: ...
    @property
    def updates(self) -> int:
        """Optimizer updates applied since construction, by any call."""
    passes: int
    def training_parts(self, rows: int) -> int:
        """The parts a training pass over `rows` rows is split into at the current thread
        count, each run on a thread of its own (1: the pass runs whole)."""
    @property
    def layout(self) -> list[tuple[Slices, Slices]]:
        """Per layer, its parameters' and its state's (name, offset, shape)."""
    @property
    def params(self) -> NDArray: ...
    @property
    def grads(self) -> NDArray: ...
    @property
    def state(self) -> NDArray: ...
    def sync_host(self) -> None: ...
    def snapshot(self) -> NDArray:
        """A copy of the flat parameters then the flat state, taken under the lock every
        call holds (waited for with the GIL released): the values between two calls."""
    def after_fork_in_child(self) -> None:
        """Free the lock a thread of the parent held at the fork; in a forked child only."""
    def divergence_reason(self, loss: float, bad: int) -> str: ...
    def check(self, X: NDArray, T: NDArray) -> None: ...
    def forward(self, X: NDArray) -> NDArray: ...
    def loss(self, X: NDArray, T: NDArray, training: bool = False) -> float: ...
    def backward(self, X: NDArray, T: NDArray, sample_weight: NDArray | None = None) -> float: ...
    def step(self, spec: UpdateSpec, states: list[NDArray], steps: int) -> None:
        """One update from the current gradients; ``steps``: the updates before it."""
    def train_step(
        self, X: NDArray, T: NDArray, spec: UpdateSpec, states: list[NDArray], steps: int
    ) -> float: ...
    def train_epoch(
        self,
        X: NDArray,
        T: NDArray,
        order: NDArray[np.int64],
        batch_size: int,
        spec: UpdateSpec,
        states: list[NDArray],
        steps: int,
        loss_sum: float = 0.0,
        sample_weight: NDArray | None = None,
        interrupt_mark: int = -1,
        weight_penalty: float = 0.0,
    ) -> float:
        """One pass over the rows in ``order``; returns ``loss_sum`` plus each batch's rows
        times its loss, added in batch order (divide by the rows for the mean). With
        ``interrupt_mark`` (``sigint_count()`` before the call, while watched), a SIGINT
        stops it before the next batch: KeyboardInterrupt whose ``step`` counts the
        steps applied. ``sample_weight``: one weight per row of X (backend "cpu" only).
        ``weight_penalty``: scikit-learn's ``alpha`` on the Dense weight matrices (see
        ``fastbp.Network.fit``)."""

class Network32(_Network): ...
class Network64(_Network): ...
