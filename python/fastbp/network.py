"""``Network``: a sequence of layers, a loss, and one call into C++ per step or epoch;
and :func:`from_torch`, which builds one from a PyTorch module."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from . import _core, _locks, _names, _sparse, _validate, ops, reference
from .io import interop, npz, onnx_export
from .nn import layers as nn_layers
from .nn.activations import Sigmoid
from .nn.layers import Layer
from .nn.losses import LOSS_TYPES, BCEWithLogitsLoss, Loss, SoftmaxCrossEntropyLoss
from .optim import optimizers
from .optim.optimizers import Optimizer
from .optim.schedules import Schedule
from .training.history import History
from .training.loop import checked_metrics, diverged, sample_weights
from .training.loop import evaluate as _evaluate
from .training.loop import fit as _fit

if TYPE_CHECKING:
    from mpi4py import MPI

__all__ = ["Network", "History", "from_torch"]

BACKENDS = ("cpu", "cuda", "numpy")
_NO_OPTIMIZER = object()  # what no argument can be
_CORE_NETWORKS = {np.float32: _core.Network32, np.float64: _core.Network64}


def _warn_on_squashed_logits(layers: list, loss: Loss) -> None:
    """A Sigmoid last, before a loss that applies its own sigmoid or softmax, squashes the
    outputs twice: it trains, but slowly and towards the wrong probabilities."""
    if (
        layers
        and isinstance(layers[-1], Sigmoid)
        and isinstance(loss, (BCEWithLogitsLoss, SoftmaxCrossEntropyLoss))
    ):
        warnings.warn(
            f"the network ends in Sigmoid, but {type(loss).__name__} applies its "
            f"own {'sigmoid' if isinstance(loss, BCEWithLogitsLoss) else 'softmax'} "
            "to the outputs: remove the Sigmoid to train on logits (a sigmoid or "
            "softmax of predict then gives the probabilities)",
            UserWarning,
            stacklevel=3,
        )


def _check_cuda() -> None:
    """RuntimeError saying why backend="cuda" cannot run here, if it cannot."""
    info = _core.build_info()
    if not info["cuda_compiled"]:
        raise RuntimeError(
            "backend='cuda' is not available: this fastbp was built without "
            "the CUDA backend (reinstall with the CUDA toolkit present, e.g. "
            "pip install . -Ccmake.define.FASTBP_CUDA=ON)"
        )
    if not info["cuda_available"]:
        raise RuntimeError(
            "backend='cuda' is not available: the CUDA backend is compiled "
            f"but {info['cuda_status']}"
        )


def _describe(layers, dtype: str) -> list:
    """The C++ plan's spec of each layer in a network of ``dtype``, checking that the
    widths chain."""
    if not isinstance(layers, (list, tuple)) or not layers:
        raise TypeError(f"layers must be a non-empty list of fastbp layers, got {layers!r}")
    specs, width = [], None
    for i, layer in enumerate(layers):
        _validate.instance(f"layers[{i}]", layer, Layer, "a fastbp Layer")
        if nn_layers.owner(layer) is not None:
            raise ValueError(f"layers[{i}] ({layer!r}) already belongs to a network")
        try:
            out = layer.out_width(width)
        except ValueError as e:
            raise ValueError(f"layers[{i}]: {e}") from None
        specs.append(layer.core_spec(out if width is None else width, np.dtype(dtype)))
        width = out
    if len({id(layer) for layer in layers}) != len(layers):
        raise ValueError("a layer object appears twice in layers")
    return specs


class Network:
    """A multilayer perceptron trained by backpropagation.

    Parameters
    ----------
    layers : list of Layer
        fastbp's layers (``fastbp.layers.LAYER_TYPES`` names them all), input first, the
        first a ``Dense``; kept as ``net.layers``.
    loss : Loss
        One of fastbp's losses (``fastbp.losses.LOSS_TYPES`` names them all).
    dtype : {"float32", "float64"} or the NumPy dtype
    backend : {"cpu", "cuda", "numpy"}
        ``"cpu"`` runs fastbp's C++ kernels; ``"cuda"`` its CUDA kernels on an NVIDIA GPU
        (RuntimeError when this build has no CUDA backend or no GPU is usable);
        ``"numpy"`` the pure-NumPy reference.
    seed : int or None
        Seeds the weight initialisation and the shuffling of :meth:`fit`.
    compute_dtype : {None, "bfloat16"}
        The arithmetic of the Dense layers' three products (forward, and both backward).
        None: the parameters' dtype. ``"bfloat16"`` (float32 networks, backends ``"cpu"``
        and ``"numpy"``): mixed precision as ``torch.autocast`` does it on the CPU. Each
        product's operands (the layer input, ``W``, the output gradient) are rounded to
        bfloat16 (to nearest, ties to even) as they are packed, and the products summed
        in float32. Everything else stays float32: the parameters (the master weights),
        gradients, optimizer state, bias, activations, losses, normalisation statistics
        and updates; so do the activations kept for the backward pass.
    """

    def __init__(
        self,
        layers,
        loss,
        dtype: str = "float32",
        backend: str = "cpu",
        seed: int | None = None,
        compute_dtype: str | None = None,
    ):
        specs = _describe(layers, _validate.dtype_name(dtype))
        _validate.instance("loss", loss, Loss, "a fastbp Loss")
        if not isinstance(loss, tuple(LOSS_TYPES.values())):
            raise TypeError(
                f"{type(loss).__name__} is a Loss subclass fastbp cannot compute: "
                f"a loss must be one of {', '.join(sorted(LOSS_TYPES))}"
            )
        dtype = _validate.dtype_name(dtype)
        _validate.choice("backend", backend, BACKENDS)
        compute_dtype = _validate.compute_dtype(compute_dtype, dtype)
        if compute_dtype is not None and backend == "cuda":
            raise ValueError(
                f"compute_dtype={compute_dtype!r} runs on backends 'cpu' and "
                "'numpy'; the CUDA backend computes in the parameters' dtype"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        self.layers = list(layers)
        self.loss_fn = loss
        _warn_on_squashed_logits(self.layers, loss)
        self.dtype = np.dtype(dtype)
        self.backend = backend
        self.compute_dtype = compute_dtype
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._core = self._make_core(specs)
        self._bind_parameters()
        self._last_optimizer, self._last_binding = _NO_OPTIMIZER, None
        # One training call at a time from Python threads: an optimizer's step count,
        # first-step flag and momentum buffer must change together with the parameters
        # (the C++ network serialises its own calls, but not this bookkeeping).
        # Re-entrant, so a fit callback may itself call train_step.
        self._training = threading.RLock()
        _locks.free_in_forked_children(self, type(self)._after_fork_in_child)
        self.internals = NetworkInternals(self)

    def _make_core(self, specs):
        # Drawn only for a network with dropout, so that a seed gives every other network
        # the initial weights and shuffles it would give without this draw.
        seed = (
            int(self._rng.integers(2**63))
            if any(s.kind == _core.LayerKind.Dropout for s in specs)
            else 0
        )
        if self.backend == "numpy":
            return reference.ReferenceNetwork(
                self.layers, specs, self.loss_fn, self.dtype, seed, self.compute_dtype
            )
        if self.backend == "cuda":
            _check_cuda()
        return _CORE_NETWORKS[self.dtype.type](
            specs,
            self.loss_fn.kind,
            _names.REDUCTIONS[self.loss_fn.reduction],
            self.loss_fn.core_params,
            seed,
            self.backend,
            _names.COMPUTE[self.compute_dtype],
        )

    def _after_fork_in_child(self) -> None:
        """Free the locks that a thread of the parent held at the fork."""
        self._training = _locks.free_in_child(self._training)
        self._core.after_fork_in_child()

    def _host_parameters(self) -> None:
        """Called before Python reads or writes a layer's W, b, dW or db. The CUDA
        backend then copies what the GPU changed into the host arrays those views show,
        and uploads them again before its next computation; the others share memory."""
        if self.backend == "cuda":
            self._core.sync_host()

    def _bind_parameters(self) -> None:
        """Point every layer's parameters (``layer.W``, ``layer.dW``, ...) and state
        (``layer.running_mean``, ...) at views of the network's flat buffers, with the
        values the user assigned or else the layer's initial ones."""
        params, grads = self._params, self._grads = self._core.params, self._core.grads
        self._state = self._core.state
        for layer, (param_slices, state_slices) in zip(self.layers, self._core.layout):
            nn_layers.take_over(
                layer,
                nn_layers.views(params, param_slices),
                nn_layers.views(grads, param_slices),
                nn_layers.views(self._state, state_slices),
                self._rng,
            )
        for layer in self.layers:
            nn_layers.join(layer, self)

    # ---- properties ---------------------------------------------------------------

    @property
    def params(self) -> np.ndarray:
        """The flat parameter buffer, 1-D, ``n_params`` long: each Dense layer's ``W``
        (row-major) then its ``b``, input layer first. Every layer's ``W`` and ``b`` is a
        view into it, so writing either writes the other. On the CUDA backend it is the
        host copy, brought up to date on every read (read it again after training) and
        uploaded before the next computation, as ``layer.W`` is."""
        self._host_parameters()
        return self._params

    @property
    def grads(self) -> np.ndarray:
        """The flat gradient buffer, laid out as :attr:`params`; every layer's ``dW`` and
        ``db`` is a view into it. Filled by :meth:`backward` and the training calls."""
        self._host_parameters()
        return self._grads

    @property
    def n_params(self) -> int:
        """Number of trainable scalars (every layer's parameters)."""
        return int(self._core.n_params)

    @property
    def in_features(self) -> int:
        return int(self._core.in_features)

    @property
    def out_features(self) -> int:
        return int(self._core.out_features)

    # ---- input checks -------------------------------------------------------------

    def _inputs(self, X):
        """X as a C-contiguous array of the network's dtype (copied only if it is not);
        _core checks its shape, that it is not empty and that it is finite. A sparse X
        (``scipy.sparse``) becomes a CSR matrix of the network's dtype, its width and
        values checked here; its rows reach the core as dense blocks (see
        :mod:`fastbp._sparse`)."""
        if type(X) is np.ndarray and X.dtype == self.dtype and X.flags.c_contiguous:
            return X
        if _sparse.issparse(X):
            x = _sparse.as_csr("X", X, self.dtype)
            if x.shape[1] != self.in_features:
                raise ValueError(
                    f"X has {x.shape[1]} features (columns), the network takes {self.in_features}"
                )
            return x
        return _validate.float_array("X", X, self.dtype)

    def _targets(self, T) -> np.ndarray:
        """T converted like X; class labels for the softmax cross-entropy (see
        :func:`_validate.class_labels`: (N,) or (N, 1), integers or whole floats) become
        int64 (N,), and (N,) becomes (N, 1) for a single output. _core checks shapes,
        label range and finiteness."""
        if (
            type(T) is np.ndarray
            and T.dtype == self.dtype
            and T.flags.c_contiguous
            and T.ndim == 2
            and T.shape[1] == self.out_features
        ):
            return T
        t = np.asarray(T)
        if t.dtype == np.bool_ and isinstance(self.loss_fn, BCEWithLogitsLoss):
            t = t.astype(self.dtype)  # binary targets as 0 and 1 (_core checks [0, 1])
        t = _validate.numeric_array("T", t)
        if isinstance(self.loss_fn, SoftmaxCrossEntropyLoss):
            labels = _validate.class_labels(t, self.out_features)
            if labels is not None:
                return labels
        if t.ndim == 1 and self.out_features == 1:
            t = t.reshape(-1, 1)
        return _validate.float_array("T", t, self.dtype)

    def _batch(self, X, T):
        return self._inputs(X), self._targets(T)

    def _dense_batch(self, X, T):
        """:meth:`_batch` for one step of training: a sparse X densified, as the core
        takes a batch whole."""
        x, t = self._batch(X, T)
        return _sparse.dense(x), t

    def _check(self, x, t) -> None:
        """The core's checks of a converted batch (:meth:`_batch`); a sparse ``x`` block
        by block, after its rows are matched with ``t``'s."""
        if not _sparse.issparse(x):
            self._core.check(x, t)
            return
        if x.shape[0] != t.shape[0]:
            raise ValueError(f"X has {x.shape[0]} rows and T has {t.shape[0]}: they must match")
        take = _sparse.Rows(x, _sparse.block_rows(x))
        for rows in _sparse.blocks(x):
            self._core.check(take(rows), t[rows])

    def _forward(self, x) -> np.ndarray:
        """The core's forward pass (inference) of a converted ``x``; a sparse one block by
        block."""
        if not _sparse.issparse(x):
            return self._core.forward(x)
        take = _sparse.Rows(x, _sparse.block_rows(x))
        return np.concatenate([self._core.forward(take(rows)) for rows in _sparse.blocks(x)])

    def _loss_value(self, x, t) -> float:
        """The core's loss of a converted batch; a sparse ``x`` block by block, the blocks'
        losses summed, or (``"mean"``) averaged weighted by their rows."""
        if not _sparse.issparse(x):
            return float(self._core.loss(x, t))
        total, take = 0.0, _sparse.Rows(x, _sparse.block_rows(x))
        for rows in _sparse.blocks(x):
            value = float(self._core.loss(take(rows), t[rows]))
            total += value if self.loss_fn.reduction == "sum" else value * len(t[rows])
        return total if self.loss_fn.reduction == "sum" else total / x.shape[0]

    def _bind_optimizer(self, optimizer) -> tuple:
        """``(state, core)``: the optimizer's state for this network and the core whose
        ``step`` / ``train_step`` / ``train_epoch`` take :meth:`Optimizer.core_args`; the
        last pair is cached, since a training loop passes the same optimizer every step.
        Raises RuntimeError when a fit on another thread drives ``optimizer``: while a fit
        drives it, nothing is cached, so that every call checks (see :meth:`_forget`)."""
        if optimizer is self._last_optimizer:
            return self._last_binding
        cacheable = optimizers.check_for_step(optimizer)
        state = optimizer.state_for(self)
        self._last_binding = state, self._core
        self._last_optimizer = optimizer if cacheable else _NO_OPTIMIZER
        # The core's updates not counted in state.steps: constant while this binding
        # trains, since every training call binds first (see _recount).
        self._uncounted = self._core.updates - state.steps
        return self._last_binding

    def _forget(self, optimizer) -> None:
        """Drop the cached binding of ``optimizer``, which a fit has just claimed, so the
        next call binds (and checks its thread) again."""
        if self._last_optimizer is optimizer:
            self._last_optimizer = _NO_OPTIMIZER

    def _recount(self, state) -> None:
        """Count in ``state`` (the bound optimizer's) every update the core applied: for
        a KeyboardInterrupt that Python raised after a core call returned but before
        its steps were counted."""
        state.steps = self._core.updates - self._uncounted

    # ---- computation --------------------------------------------------------------

    def forward(self, X) -> np.ndarray:
        """Network output for the batch ``X`` (N, in_features): an (N, out) array. A
        sparse ``X`` (``scipy.sparse``, any format) runs in dense blocks of its rows."""
        return self._forward(self._inputs(X))

    def predict(self, X) -> np.ndarray:
        """Same as :meth:`forward`; keeps no training state."""
        return self.forward(X)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities for ``X``: the softmax of each output row for a
        ``SoftmaxCrossEntropyLoss`` network, the sigmoid of each output for a
        ``BCEWithLogitsLoss`` one; an (N, out) array.

        Raises
        ------
        ValueError
            For any other loss, whose outputs are not logits.
        """
        if isinstance(self.loss_fn, SoftmaxCrossEntropyLoss):
            probabilities = reference.softmax if self.backend == "numpy" else ops.softmax
        elif isinstance(self.loss_fn, BCEWithLogitsLoss):
            probabilities = reference.sigmoid if self.backend == "numpy" else ops.sigmoid
        else:
            raise ValueError(
                "predict_proba needs a SoftmaxCrossEntropyLoss or "
                f"BCEWithLogitsLoss network, got {self.loss_fn!r}"
            )
        return probabilities(self.forward(X))

    def evaluate(self, X, T, metrics: Sequence[str] = ()) -> dict:
        """The loss and ``metrics`` of the network on ``(X, T)``, as :meth:`fit` computes
        them for its validation data; changes nothing (no gradients, no parameters).

        Parameters
        ----------
        X, T : array_like
            Inputs (N, in_features) and targets, as for :meth:`loss`.
        metrics : sequence of str
            ``["accuracy"]``: classification losses only.

        Returns
        -------
        dict
            ``{"loss": float, "accuracy": float, ...}``: the loss with the network's
            reduction, unweighted.
        """
        scored = checked_metrics(self, metrics)
        return _evaluate(self, *self._batch(X, T), scored)

    def loss(self, X, T) -> float:
        """The loss of the network's output for ``X`` against targets ``T``."""
        return self._loss_value(*self._batch(X, T))

    def backward(self, X, T, sample_weight=None) -> float:
        """Forward pass, loss and backpropagation; fills every ``dW``/``db``.

        Returns the loss. A loss or gradient that is NaN or inf is returned and kept as it
        is, for inspection, without raising: ``backward`` changes no parameter. The next
        ``optimizer.step(net)`` refuses to apply it (FloatingPointError), as
        :meth:`train_step` would. ``sample_weight`` weights each row's loss as in
        :meth:`fit` (not on ``backend="cuda"``).
        """
        x, t = self._dense_batch(X, T)
        if sample_weight is None:
            return float(self._core.backward(x, t))
        return float(self._core.backward(x, t, sample_weights(self, t, sample_weight)))

    def train_step(self, X, T, optimizer: Optimizer) -> float:
        """One forward/backward/update in a single call; returns the loss before it.

        Raises FloatingPointError, naming the optimizer's step count, when the loss or a
        gradient is NaN or inf; the update is then skipped (parameters and optimizer state
        unchanged). Raises RuntimeError, before anything changes, when a :meth:`fit` on
        another thread is driving ``optimizer`` (it sets the learning rate)."""
        # The lock by hand rather than @_locks.serialised or `with`: this is the hot path,
        # and acquire/release cost a third of a `with` block.
        lock = self._training
        lock.acquire()
        try:
            state, calls = self._bind_optimizer(optimizer)
            args = optimizer.core_args(state)
            train_step = calls.train_step
            try:
                try:  # arrays already in the network's dtype and layout go straight to C++
                    value = train_step(X, T, *args)
                except (TypeError, ValueError):
                    # _core takes exact dtypes and target shapes only (labels (N,), not
                    # (N, 1)), and checks before it changes anything: convert, let it check
                    value = train_step(*self._dense_batch(X, T), *args)
            except FloatingPointError as e:
                raise diverged(f"train_step {state.steps + 1}", e) from None
            except KeyboardInterrupt:  # raised as the step returned, before it was counted
                self._recount(state)
                raise
            state.steps += 1
            return value
        finally:
            lock.release()

    @_locks.serialised("_training")
    def _apply_update(self, opt: Optimizer) -> None:
        """``opt.step(self)``: one update in the backend, which checks the last backward
        pass's loss and the gradients first (see :meth:`Optimizer.step`)."""
        state, calls = self._bind_optimizer(opt)
        try:
            calls.step(*opt.core_args(state))
        except FloatingPointError as e:
            raise diverged(f"optimizer step {state.steps + 1}", e) from None
        except KeyboardInterrupt:  # raised as the update returned, before it was counted
            self._recount(state)
            raise
        state.steps += 1

    @_locks.serialised("_training")
    def fit(
        self,
        X,
        T,
        *,
        epochs: int,
        batch_size: int,
        optimizer: Optimizer,
        shuffle: bool = True,
        validation_data=None,
        validation_split: float = 0.0,
        metrics: Sequence[str] = (),
        lr_schedule: Schedule | Callable[[int], float] | None = None,
        callbacks: Sequence[Callable] = (),
        early_stopping: bool = False,
        patience: int = 10,
        progress: bool | None = None,
        sample_weight=None,
        class_weight: dict | None = None,
        weight_penalty: float = 0.0,
        comm: MPI.Intracomm | None = None,
    ) -> History:
        """Train for ``epochs`` passes over (X, T) in mini-batches of ``batch_size``.

        Each epoch runs in one call into C++ (batches gathered and shuffled there); Python
        runs once per epoch for validation, metrics, the schedule and the callbacks. With a
        progress bar, an epoch runs instead as up to 20 calls, each on the next
        ``ceil(batches / 20)`` batches of the epoch's row order (at least one batch; those
        rows copied into one array first), and the bar advances after each: the batches,
        the parameters and the recorded loss are bitwise the same as without the bar. A
        sparse ``X`` (``scipy.sparse``, any format; never densified whole) runs the same
        way, in calls of as many whole batches as a dense block of about 4 million values
        holds (at least one), each gathered from its rows: the same batches and
        parameters as the dense ``X`` gives, up to round-off.

        Parameters
        ----------
        X, T : array_like
            Inputs (N, in_features) and targets, as for :meth:`train_step`.
        epochs, batch_size : int
            >= 1; the last batch of an epoch may be smaller.
        optimizer : Optimizer
            Any fastbp optimizer; its state carries over between calls.
        shuffle : bool
            Visit the rows in a new random order each epoch.
        validation_data : tuple, optional
            ``(X_val, T_val)``, evaluated after each epoch.
        validation_split : float
            Instead of ``validation_data``: the fraction in (0, 1) of the rows held out
            for validation, ``round(validation_split * N)`` of them, drawn at random from
            the network's generator (its ``seed``), as scikit-learn's ``early_stopping``
            splits: stratified for a classification loss (each class, the label or the
            arg-max of a probability row or the rounded binary target, gives its share of
            the rows), so sorted data still validates on every class. The training rows
            keep their order.
        metrics : sequence of str
            ``["accuracy"]`` records ``accuracy`` (and ``val_accuracy``); classification
            losses only.
        lr_schedule : fastbp.schedules.Schedule or callable, optional
            The learning rate of each epoch (its History index, from 0): a ``Schedule``'s
            ``schedule(epoch, base_lr)``, ``base_lr`` being ``optimizer.lr`` when ``fit``
            starts, or any ``schedule(epoch)``; every epoch's rate is computed (and
            checked) before training starts. ``fit`` sets ``optimizer.lr`` at the start
            of each epoch to the scheduled rate times the factor by which callbacks have
            changed the rate since (the product of ``new / old`` over their changes, as
            PyTorch's chained schedulers multiply). Without a schedule ``fit`` never sets
            the rate: each epoch trains at ``optimizer.lr`` as it is, so a callback's
            change (``ReduceLROnPlateau``) holds. Either way ``optimizer.lr`` is set back
            to its value from before ``fit`` when ``fit`` ends.
        callbacks : sequence of callable
            Each called as ``callback(epoch, logs)`` after every epoch (``epoch`` its
            History index, from 0; messages count epochs from 1); returning
            ``False`` stops training. A :class:`fastbp.callbacks.Callback` (such as
            ``ModelCheckpoint``) is also asked whether it can work with the fit, before
            training, and told when ``fit`` starts and ends.
        early_stopping : bool
            Stop when the validation loss has not improved for ``patience`` epochs, and
            end with the weights of the best epoch. Needs validation data.
        patience : int
            >= 1, for ``early_stopping``.
        progress : bool, optional
            Show a tqdm progress bar (``pip install fastbp[progress]``): one bar over all
            the batches of the run, naming the epoch, with the epoch's running mean
            training loss and the last finished epoch's validation loss, metrics and
            learning rate. By default, when stderr is a terminal and tqdm is installed.
            With ``comm``, on rank 0 only.
        sample_weight : array_like, optional
            One finite weight >= 0 per row of (X, T), with Keras's definition: each row's
            loss (and gradient) is multiplied by its weight and the reduction's divisor
            stays the same, so a batch's ``"mean"`` loss is ``sum(w_i * loss_i) / N``
            (N its rows; for MSE and BCE ``loss_i`` is the row's mean over its outputs).
            A row of weight 0 adds exactly nothing to the loss and the gradients (its
            inputs and targets do not matter), though it still takes its place in its
            batch and in N. The recorded training loss is the weighted one, the
            validation loss and :meth:`evaluate` unweighted. Not with ``backend="cuda"``
            (NotImplementedError).
        class_weight : dict, optional
            ``{class: weight}`` instead of ``sample_weight``: each row weighs
            ``class_weight.get(its class, 1.0)``, its class being its label, the arg-max
            of its probability row, or (``BCEWithLogitsLoss`` with one output) its target
            rounded to 0 or 1, as Keras derives it. Classification losses only.
        weight_penalty : float
            A finite number >= 0: scikit-learn's ``alpha``, an L2 penalty on the weight
            matrices ``W`` of the Dense layers (not their biases, nor any other layer's
            parameters). A batch of ``n`` rows adds ``weight_penalty / (2 n)`` times the
            sum of their squares to its loss (so to the recorded loss) and
            ``weight_penalty / n * W`` to their gradients, before the finiteness check,
            clipping and the optimizer's own ``weight_decay`` (which, as PyTorch's, takes
            every parameter and adds nothing to the loss). Runs in the core's epoch, as
            the loss does. Not with ``comm`` (NotImplementedError).
        comm : mpi4py.MPI.Intracomm, optional
            Train data-parallel on every rank of ``comm`` (``pip install fastbp[mpi]``;
            see :mod:`fastbp.distributed`), each rank calling ``fit`` with its own shard
            (X, T) and the same other arguments; ``batch_size`` is per rank. Rank 0's
            parameters and optimizer state are broadcast first. Each step runs backward on
            every rank's next batch, sums the gradients weighted by each rank's share of
            the global batch's rows (``"sum"`` losses: unweighted) in one in-place
            allreduce, and applies the same update everywhere, so every rank ends every
            step with the same parameters. An epoch has as many steps as the largest shard
            needs; a rank whose rows are used up contributes none. With ``shuffle``, each
            rank permutes its own rows, from a seed drawn by rank 0. ``History``
            (validation and metrics over all ranks' rows, ``epoch_time`` of the slowest),
            early stopping, callbacks that stop training (on any rank) and divergence are
            the same on every rank. An argument refused on any rank raises the same
            exception type on every rank before training, naming that rank. Runs a
            Python loop over steps (one core call per step), on the cpu and numpy
            backends, without sample weights (NotImplementedError).

        Returns
        -------
        History
            Per-epoch ``loss``, ``val_loss``, metrics, ``lr`` and ``epoch_time``.

        Raises
        ------
        FloatingPointError
            When a step's loss or gradient is NaN or inf, naming the epoch (``"epoch 3
            (History index 2)"``) and step; the
            parameters and optimizer state are those from before that step.
        KeyboardInterrupt
            On Ctrl-C (SIGINT): when ``fit`` runs on Python's main thread with Python's
            default SIGINT handler, the epoch stops before its next batch, so within one
            batch's time; the parameters and optimizer state (step count included) are
            those after the last whole step, and training can go on from there.
        """
        return _fit(
            self,
            X,
            T,
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            shuffle=shuffle,
            validation_data=validation_data,
            validation_split=validation_split,
            metrics=metrics,
            lr_schedule=lr_schedule,
            callbacks=callbacks,
            early_stopping=early_stopping,
            patience=patience,
            progress=progress,
            sample_weight=sample_weight,
            class_weight=class_weight,
            weight_penalty=weight_penalty,
            comm=comm,
        )

    # ---- description --------------------------------------------------------------

    def summary(self, print_fn: Callable[[str], object] = print) -> None:
        """Print a table of the layers, their output shapes and parameter counts, as
        Keras's ``model.summary()`` does.

        Parameters
        ----------
        print_fn : callable
            Called with each line of the table (default: :func:`print`).
        """
        rows, width = [], None
        for i, layer in enumerate(self.layers):
            width = layer.out_width(width)
            rows.append(
                (
                    f"{type(layer).__name__.lower()}_{i} ({type(layer).__name__})",
                    f"(None, {width})",
                    f"{layer.n_params:,}",
                )
            )
        head = ("Layer (type)", "Output Shape", "Param #")
        cols = [max(len(r[c]) for r in rows + [head]) + 4 for c in range(3)]

        def line(row) -> str:
            return "".join(f"{v:<{w}}" for v, w in zip(row, cols)).rstrip()

        rule = "=" * sum(cols)
        compute = "" if self.compute_dtype is None else f" ({self.compute_dtype} compute)"
        print_fn(f"Network: {self.loss_fn!r}, {self.dtype}{compute}, backend {self.backend!r}")
        for text in (rule, line(head), rule, *map(line, rows), rule):
            print_fn(text)
        print_fn(f"Total params: {self.n_params:,} ({self.n_params * self.dtype.itemsize:,} bytes)")

    def to_torch(self):
        """A ``torch.nn.Sequential`` with this network's layers and a copy of its weights
        (see :func:`fastbp.io.interop.to_torch`; needs PyTorch)."""
        return interop.to_torch(self)

    def to_onnx(self, path: str | os.PathLike, opset: int = 17) -> None:
        """Write the network to ``path`` as an ONNX model whose output ``"output"`` is
        what :meth:`predict` returns, for a dynamic batch of ``"input"`` rows (see
        :func:`fastbp.io.onnx_export.to_onnx`; needs ``pip install "fastbp[onnx]"``)."""
        onnx_export.to_onnx(self, path, opset)

    # ---- persistence --------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> str:
        """Write the network (layers, loss, dtype, parameters, running statistics) as an
        .npz archive to ``path``, with ``.npz`` appended when ``path`` does not end in
        it, as :func:`numpy.savez` does (``save("model")`` writes ``model.npz``);
        returns the path written."""
        return npz.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str | None = None) -> Network:
        """Rebuild a network saved by :meth:`save`, on ``backend`` (default: as saved)."""
        return npz.load(path, cls, backend=backend)

    def __reduce__(self):
        """Pickled as its configuration and parameters (optimizer states stay behind),
        taken whole between two calls (see :func:`fastbp.io.values`)."""
        return npz.from_config, (
            type(self),
            npz.network_config(self),
            npz.values(self),
            self.backend,
        )

    def __repr__(self) -> str:
        inner = ", ".join(map(repr, self.layers))
        compute = "" if self.compute_dtype is None else f", compute_dtype={self.compute_dtype!r}"
        return (
            f"Network([{inner}], loss={self.loss_fn!r}, dtype={str(self.dtype)!r}, "
            f"backend={self.backend!r}{compute})"
        )


class NetworkInternals:
    """What fastbp's own modules use of a :class:`Network` beyond its public API, listed
    here and nowhere else: the training loop, the optimizers' ``step``, the callbacks,
    data-parallel training, save/load and interop, :func:`fastbp.gradcheck` and the
    scikit-learn estimators reach a network's machinery through ``net.internals``, never
    through its underscore attributes. Not part of the public API.

    Every member works on each backend: :attr:`core` is the compiled network
    (``"cpu"``, ``"cuda"``) or a :class:`fastbp.reference.ReferenceNetwork`
    (``"numpy"``), which has the same members.
    """

    __slots__ = ("_net",)

    def __init__(self, net: Network):
        self._net = net

    @property
    def core(self):
        """The backend's network: the flat ``params``, ``grads`` and ``state`` buffers
        (host copies on the GPU: call :meth:`host_parameters` first), ``n_state``,
        ``snapshot()``, ``backward``, ``loss``, ``divergence_reason``, ``passes``, ..."""
        return self._net._core

    @property
    def rng(self) -> np.random.Generator:
        """The network's generator, seeded by its ``seed``: shuffles and splits draw
        from it."""
        return self._net._rng

    def host_parameters(self) -> None:
        """Bring the host buffers up to date before Python reads or writes them (the CUDA
        backend; the others share memory)."""
        self._net._host_parameters()

    def batch(self, X, T) -> tuple:
        """``(x, t)``: X and T converted to the arrays the core takes (a sparse X stays
        sparse), unchecked."""
        return self._net._batch(X, T)

    def check(self, x, t) -> None:
        """The core's checks of a converted batch, a sparse one block by block."""
        self._net._check(x, t)

    def forward(self, x) -> np.ndarray:
        """The core's inference pass on a converted ``x``."""
        return self._net._forward(x)

    def loss_value(self, x, t) -> float:
        """The core's loss of a converted batch."""
        return self._net._loss_value(x, t)

    def bind_optimizer(self, optimizer: Optimizer) -> tuple:
        """``(state, core)``: ``optimizer``'s state for this network and the core whose
        ``step``, ``train_step`` and ``train_epoch`` take its ``core_args(state)``;
        checks the optimizer and the thread first."""
        return self._net._bind_optimizer(optimizer)

    def forget(self, optimizer: Optimizer) -> None:
        """Drop the cached binding of ``optimizer``, which a fit has just claimed."""
        self._net._forget(optimizer)

    def recount(self, state) -> None:
        """Count in ``state`` every update the core applied (after a KeyboardInterrupt
        raised before Python counted them)."""
        self._net._recount(state)

    def apply_update(self, optimizer: Optimizer) -> None:
        """One update by ``optimizer`` from the current gradients, under the network's
        training lock: what ``optimizer.step(net)`` does."""
        self._net._apply_update(optimizer)


def from_torch(module, loss: Loss, backend: str = "cpu", seed: int | None = None) -> Network:
    """A :class:`fastbp.Network` with the layers and weights of a PyTorch module.

    Parameters
    ----------
    module : torch.nn.Sequential or torch.nn.Linear
        ``torch.nn`` modules that fastbp's layers convert from (each layer class's
        ``torch_type``: ``Linear`` with bias, ``ReLU``, ``LayerNorm``, ...), their
        parameters all float32 or all float64 (the network's dtype).
    loss : Loss
        The network's loss. Required: a torch module does not carry one, and a guessed
        loss would train a classifier as a regressor without a word.
    backend : {"cpu", "cuda", "numpy"}
    seed : int, optional
        Seeds the network's shuffling in ``fit``.

    Returns
    -------
    Network
        Independent of ``module``: the weights are copied.
    """
    layers, dtype = interop.torch_layers(module)
    return Network(layers, loss, dtype=dtype, backend=backend, seed=seed)
