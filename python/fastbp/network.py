"""``Network``: a sequence of layers, a loss, and one call into C++ per step or epoch."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import numpy as np

from . import _core, _validate, ops, reference
from .layers import Activation, Dense, Layer
from .losses import Loss, SoftmaxCrossEntropyLoss
from .optim import SGD

__all__ = ["Network", "History"]

BACKENDS = ("cpu", "cuda", "numpy")
_NO_OPTIMIZER = object()  # what no argument can be
_CORE_NETWORKS = {np.float32: _core.Network32, np.float64: _core.Network64}
# Present only when fastbp was built with the CUDA backend.
_CUDA_NETWORKS = ({np.float32: _core.CudaNetwork32, np.float64: _core.CudaNetwork64}
                  if hasattr(_core, "CudaNetwork32") else None)


def _cuda_network(dtype):
    """The CUDA core class for ``dtype``, or a RuntimeError saying why there is none."""
    if _CUDA_NETWORKS is None:
        raise RuntimeError("backend='cuda' is not available: this fastbp was built without "
                           "the CUDA backend (reinstall with the CUDA toolkit present, e.g. "
                           "pip install . -Ccmake.define.FASTBP_CUDA=ON)")
    info = _core.build_info()
    if not info["cuda_available"]:
        raise RuntimeError("backend='cuda' is not available: the CUDA backend is compiled "
                           f"but {info['cuda_status']}")
    return _CUDA_NETWORKS[dtype.type]


@dataclass
class History:
    """What :meth:`Network.fit` observed: the mean training loss of each epoch and,
    with ``validation_data``, the validation loss after each epoch."""

    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)


def _describe(layers) -> list:
    """``(dense, in, out, activation)`` per layer, checking that the sizes chain."""
    if not isinstance(layers, (list, tuple)) or not layers:
        raise TypeError(f"layers must be a non-empty list of fastbp layers, got {layers!r}")
    specs, width = [], None
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"layers[{i}] must be a fastbp Layer, got {type(layer).__name__}")
        if layer._owner is not None:
            raise ValueError(f"layers[{i}] ({layer!r}) already belongs to a network")
        if isinstance(layer, Dense):
            if width is not None and layer.in_features != width:
                raise ValueError(f"layers[{i}] expects {layer.in_features} inputs but the "
                                 f"layer before it gives {width}")
            width = layer.out_features
            specs.append((True, layer.in_features, layer.out_features, "identity"))
        elif isinstance(layer, Activation):
            if width is None:
                raise ValueError("the first layer must be Dense, got " + repr(layer))
            specs.append((False, width, width, layer.name))
        else:
            raise TypeError(f"layers[{i}] is an unsupported layer type {type(layer).__name__}")
    if len({id(layer) for layer in layers}) != len(layers):
        raise ValueError("a layer object appears twice in layers")
    return specs


def _diverged(where: str, error: FloatingPointError) -> FloatingPointError:
    """The error for a step that diverged, from the backend's (which has ``reason``)."""
    return FloatingPointError(f"training diverged at {where}: {error.reason}; the parameters "
                              "and optimizer state are those from before this step")


class Network:
    """A multilayer perceptron trained by backpropagation.

    Parameters
    ----------
    layers : list of Layer
        ``Dense`` layers and activations, input first; kept as ``net.layers``.
    loss : Loss
        ``MSELoss``, ``SoftmaxCrossEntropyLoss`` or ``BCEWithLogitsLoss``.
    dtype : {"float32", "float64"}
    backend : {"cpu", "cuda", "numpy"}
        ``"cpu"`` runs fastbp's C++ kernels; ``"cuda"`` its CUDA kernels on an NVIDIA GPU
        (RuntimeError when this build has no CUDA backend or no GPU is usable);
        ``"numpy"`` the pure-NumPy reference.
    seed : int or None
        Seeds the weight initialisation and the shuffling of :meth:`fit`.
    """

    def __init__(self, layers, loss, dtype: str = "float32", backend: str = "cpu",
                 seed: int | None = None):
        specs = _describe(layers)
        if not isinstance(loss, Loss):
            raise TypeError(f"loss must be a fastbp Loss, got {type(loss).__name__}")
        _validate.choice("dtype", dtype, _validate.DTYPES)
        _validate.choice("backend", backend, BACKENDS)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        self.layers = list(layers)
        self.loss_fn = loss
        self.dtype = np.dtype(dtype)
        self.backend = backend
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._core = self._make_core(specs)
        self._bind_parameters()
        self._last_optimizer, self._last_state = _NO_OPTIMIZER, None
        # One training call at a time from Python threads: an optimizer's step count,
        # first-step flag and momentum buffer must change together with the parameters
        # (the C++ network serialises its own calls, but not this bookkeeping).
        self._training = threading.Lock()

    def _make_core(self, specs):
        if self.backend == "numpy":
            return reference.ReferenceNetwork(specs, self.loss_fn.name, self.loss_fn.reduction,
                                              self.dtype)
        core_specs = [(d, i, o, getattr(_core.Act, ops.ACT_NAMES[a])) for d, i, o, a in specs]
        loss = getattr(_core.Loss, ops.LOSS_NAMES[self.loss_fn.name])
        reduction = getattr(_core.Reduction, self.loss_fn.reduction.capitalize())
        if self.backend == "cuda":
            return _cuda_network(self.dtype)(core_specs, loss, reduction)
        return _CORE_NETWORKS[self.dtype.type](core_specs, loss, reduction)

    def _host_parameters(self) -> None:
        """Called before Python reads or writes a layer's W, b, dW or db. The CUDA
        backend then copies what the GPU changed into the host arrays those views show,
        and uploads them again before its next computation; the others share memory."""
        if self.backend == "cuda":
            self._core.sync_host()

    def _bind_parameters(self) -> None:
        """Point every Dense layer's W, b, dW, db at the network's flat buffers,
        initialising the weights the user did not set."""
        params, grads = self._core.params, self._core.grads
        dense = [layer for layer in self.layers if isinstance(layer, Dense)]
        for layer, (w_off, b_off, n_in, n_out) in zip(dense, self._core.slots):
            w0 = layer.initial_weights(self._rng)
            W, b = params[w_off:b_off].reshape(n_in, n_out), params[b_off:b_off + n_out]
            W[...] = w0 if layer._W is None else layer._W
            b[...] = 0 if layer._b is None else layer._b
            layer._W, layer._b = W, b
            layer._dW = grads[w_off:b_off].reshape(n_in, n_out)
            layer._db = grads[b_off:b_off + n_out]
        for layer in self.layers:
            layer._owner = self

    # ---- properties ---------------------------------------------------------------

    @property
    def n_params(self) -> int:
        """Number of trainable scalars (every W and b)."""
        return int(self._core.n_params)

    @property
    def in_features(self) -> int:
        return self.layers[0].in_features

    @property
    def out_features(self) -> int:
        return self._core.slots[-1][3]

    # ---- input checks -------------------------------------------------------------

    def _inputs(self, X) -> np.ndarray:
        """X as a C-contiguous array of the network's dtype (copied only if it is not);
        _core checks its shape, that it is not empty and that it is finite."""
        if type(X) is np.ndarray and X.dtype == self.dtype and X.flags.c_contiguous:
            return X
        return _validate.float_array("X", X, self.dtype)

    def _targets(self, T) -> np.ndarray:
        """T converted like X; integer class labels (N,) become int64 for the softmax
        cross-entropy, and (N,) becomes (N, 1) for a single output. _core checks shapes,
        label range and finiteness."""
        if type(T) is np.ndarray and T.dtype == self.dtype and T.flags.c_contiguous \
                and T.ndim == 2:
            return T
        t = _validate.numeric_array("T", T)
        if t.ndim == 1 and isinstance(self.loss_fn, SoftmaxCrossEntropyLoss):
            if t.dtype.kind not in "iu":
                raise TypeError(f"class labels must be integers, got dtype {t.dtype}")
            return np.ascontiguousarray(t, dtype=np.int64)
        if t.ndim == 1 and self.out_features == 1:
            t = t.reshape(-1, 1)
        return _validate.float_array("T", t, self.dtype)

    def _batch(self, X, T):
        return self._inputs(X), self._targets(T)

    def _optimizer_state(self, optimizer):
        """The optimizer's state for this network; the last one used is cached, since a
        training loop passes the same optimizer every step."""
        if optimizer is self._last_optimizer:
            return self._last_state
        if not isinstance(optimizer, SGD):
            raise TypeError(f"optimizer must be a fastbp.SGD, got {type(optimizer).__name__}")
        self._last_optimizer, self._last_state = optimizer, optimizer.state_for(self)
        return self._last_state

    # ---- computation --------------------------------------------------------------

    def forward(self, X) -> np.ndarray:
        """Network output for the batch ``X`` (N, in_features): an (N, out) array."""
        return self._core.forward(self._inputs(X))

    def predict(self, X) -> np.ndarray:
        """Same as :meth:`forward`; keeps no training state."""
        return self.forward(X)

    def loss(self, X, T) -> float:
        """The loss of the network's output for ``X`` against targets ``T``."""
        return float(self._core.loss(*self._batch(X, T)))

    def backward(self, X, T) -> float:
        """Forward pass, loss and backpropagation; fills every ``dW``/``db``."""
        return float(self._core.backward(*self._batch(X, T)))

    def train_step(self, X, T, optimizer: SGD) -> float:
        """One forward/backward/update in a single call; returns the loss before it.

        Raises FloatingPointError, naming the optimizer's step count, when the loss or a
        gradient is NaN or inf; the update is then skipped (parameters and optimizer state
        unchanged)."""
        with self._training:
            return self._train_step(X, T, optimizer)

    def _train_step(self, X, T, optimizer: SGD) -> float:
        state = self._optimizer_state(optimizer)
        args = (state.velocity, *optimizer.hyper_parameters, state.steps == 0)
        try:
            try:  # arrays already in the network's dtype and layout go straight to C++
                value = self._core.train_step(X, T, *args)
            except TypeError:  # _core takes exact dtypes only: convert, then let it check
                value = self._core.train_step(*self._batch(X, T), *args)
        except FloatingPointError as e:
            raise _diverged(f"train_step {state.steps + 1}", e) from None
        state.steps += 1
        return value

    def _apply_sgd(self, opt: SGD) -> None:
        with self._training:
            self._sgd_update(opt)

    def _sgd_update(self, opt: SGD) -> None:
        state = self._optimizer_state(opt)
        if self.backend == "cuda":  # the parameters and gradients are on the GPU
            self._core.sgd_step(state.velocity, *opt.hyper_parameters, state.steps == 0)
            state.steps += 1
            return
        lr, momentum, dampening, nesterov, weight_decay = opt.hyper_parameters
        step = reference.sgd_step if self.backend == "numpy" else ops.sgd_step
        step(self._core.params, self._core.grads, state.velocity, lr=lr, momentum=momentum,
             dampening=dampening, nesterov=nesterov, weight_decay=weight_decay,
             first_step=state.steps == 0)
        state.steps += 1

    def fit(self, X, T, *, epochs: int, batch_size: int, optimizer: SGD, shuffle: bool = True,
            validation_data=None) -> History:
        """Train for ``epochs`` passes over (X, T) in mini-batches of ``batch_size``.

        Each epoch runs in one call into C++ (batches gathered and shuffled there).
        Returns a :class:`History` of the mean training loss per epoch and, given
        ``validation_data=(X_val, T_val)``, the validation loss after each epoch.

        Raises
        ------
        FloatingPointError
            When a step's loss or gradient is NaN or inf, naming the epoch and step; the
            parameters and optimizer state are those from before that step.
        """
        with self._training:
            return self._fit(X, T, epochs, batch_size, optimizer, shuffle, validation_data)

    def _fit(self, X, T, epochs, batch_size, optimizer, shuffle, validation_data) -> History:
        epochs = _validate.positive_int("epochs", epochs)
        batch_size = _validate.positive_int("batch_size", batch_size)
        state = self._optimizer_state(optimizer)
        x, t = self._batch(X, T)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("validation_data must be a pair (X_val, T_val)")
            val = self._batch(*validation_data)
            self._core.check(*val)
        history = History()
        for epoch in range(epochs):
            order = self._rng.permutation(x.shape[0]) if shuffle else np.arange(x.shape[0])
            try:
                mean = self._core.train_epoch(x, t, order.astype(np.int64), batch_size,
                                              state.velocity, *optimizer.hyper_parameters,
                                              state.steps == 0)
            except FloatingPointError as e:
                state.steps += e.step  # the epoch's batches before the failing one stay applied
                raise _diverged(f"epoch {epoch + 1}, step {e.step + 1}", e) from None
            state.steps += -(-x.shape[0] // batch_size)
            history.loss.append(float(mean))
            if val is not None:
                history.val_loss.append(float(self._core.loss(*val)))
        return history

    # ---- persistence --------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the network (layers, loss, dtype, parameters) to ``path`` (.npz)."""
        from .io import save

        save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str | None = None) -> "Network":
        """Rebuild a network saved by :meth:`save`, on ``backend`` (default: as saved)."""
        from .io import load

        return load(path, backend=backend)

    def _float64_copy(self) -> "Network":
        """An independent float64 network with this one's layers and parameters."""
        from .io import from_config, network_config

        return from_config(network_config(self), self._core.params.astype(np.float64),
                           dtype="float64")

    def __repr__(self) -> str:
        inner = ", ".join(map(repr, self.layers))
        return (f"Network([{inner}], loss={self.loss_fn!r}, dtype={str(self.dtype)!r}, "
                f"backend={self.backend!r})")

