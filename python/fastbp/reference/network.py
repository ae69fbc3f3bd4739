"""``ReferenceNetwork``: the network maths in NumPy (``backend="numpy"``)."""

from __future__ import annotations

import threading

import numpy as np

from .. import _core, _locks, _validate
from ..nn.layers import views
from ..optim import optimizers
from .ops import (
    LOSSES,
    OPTIMIZER_STEPS,
    bce_with_logits,
    clip_grad_norm,
    dropout_key,
    loss_with_settings,
    poisson_nll,
    softmax_cross_entropy,
    weighted_loss,
)

__all__ = ["ReferenceNetwork"]


class ReferenceNetwork:
    """The network maths in NumPy, with the interface of ``fastbp._core.Network32/64``:
    each layer's own :meth:`~fastbp.nn.layers.Layer.forward_numpy` and
    :meth:`~fastbp.nn.layers.Layer.backward_numpy`, chained as the C++ loop chains its units.

    Parameters and state live in flat arrays laid out as the C++ network lays them out:
    each layer's tensors in order, every ``param_shapes()`` entry in order. Calls are
    serialised by a lock, as the C++ network serialises them.
    """

    def __init__(self, layers, specs, loss, dtype, seed=0, compute=None):
        self._layers = list(layers)
        self.compute = compute  # None, or "bfloat16": the Dense products' arithmetic
        self.layout, n_params, n_state = [], 0, 0
        for layer in self._layers:
            params, state = [], []
            for name, shape in layer.param_shapes().items():
                params.append((name, n_params, tuple(shape)))
                n_params += int(np.prod(shape))
            for name, value in layer.state_init(dtype).items():
                state.append((name, n_state, value.shape))
                n_state += value.size
            self.layout.append((params, state))
        self.params = np.zeros(n_params, dtype=dtype)
        self.grads = np.zeros(n_params, dtype=dtype)
        self.state = np.zeros(n_state, dtype=dtype)
        self.n_params, self.n_state = n_params, n_state
        self.in_features, self.out_features = specs[0].inputs, specs[-1].outputs
        self._loss_name, self._loss_settings = loss.name, loss.settings
        self._loss = LOSSES[loss.name][0]
        self._loss_value, self._loss_grad, _ = loss_with_settings(loss.name, loss.settings)
        self._reduction = loss.reduction
        self._seed = seed
        self.passes = 0  # training forward passes, as the C++ network counts them
        self._last_loss = 0.0  # of the pass that filled grads, checked before an update
        self.updates = 0  # optimizer updates applied, as the C++ network's tally
        # Every call under it, as the C++ network's calls run under its mutex: a
        # snapshot then never sees half a step.
        self._lock = threading.RLock()

    def _compute_of(self, layer) -> dict:
        """The compute-dtype argument of ``layer``'s NumPy maths: Dense layers take it."""
        return {"compute": self.compute} if layer.kind == _core.LayerKind.Dense else {}

    def sync_host(self):
        """Nothing to do: the arrays are the network (the GPU network's interface)."""

    def training_parts(self, rows: int) -> int:
        """1: the reference runs every training pass whole, on NumPy's threads."""
        if rows < 1:
            raise ValueError(f"rows must be at least 1, got {rows}")
        return 1

    @_locks.serialised("_lock")
    def snapshot(self):
        """A copy of the flat parameters then the flat state, between two calls."""
        return np.concatenate([self.params, self.state])

    def after_fork_in_child(self):
        """Free the lock a thread of the parent held at the fork; in a forked child only."""
        self._lock = _locks.free_in_child(self._lock)

    def _forward(self, x, training):
        """The network's output and every layer's cache, the first layer's first."""
        caches = []
        for i, (layer, (params, state)) in enumerate(zip(self._layers, self.layout)):
            x, cache = layer.forward_numpy(
                x,
                views(self.params, params),
                views(self.state, state),
                training,
                dropout_key(self._seed, i, self.passes),
                **self._compute_of(layer),
            )
            caches.append(cache)
        if training:
            self.passes += 1
        return x, caches

    def check(self, x, t=None):
        """The checks fastbp._core makes on a batch, with the same errors: TypeError for
        anything but arrays of the exact dtype, ValueError for shapes and values."""
        n_in, n_out = self.in_features, self.out_features
        for name, arr in (("X", x), ("target", t)):
            if arr is None:
                continue
            labels = self._loss is softmax_cross_entropy and getattr(arr, "ndim", 0) == 1
            dtype = np.int64 if labels else self.params.dtype
            if not isinstance(arr, np.ndarray) or arr.dtype != dtype:
                raise TypeError(
                    f"{name} must be an array of dtype {np.dtype(dtype)}, got "
                    f"{getattr(arr, 'dtype', type(arr).__name__)}"
                )
        if x.ndim != 2 or x.shape[1] != n_in:
            raise ValueError(f"X must have shape (*, {n_in}), got {x.shape}")
        if x.shape[0] == 0:
            raise ValueError(f"X is an empty batch, shape {x.shape}")
        _validate.finite("X", x)
        if t is None:
            return
        m = x.shape[0]
        if t.ndim == 1 and self._loss is softmax_cross_entropy:
            if t.shape != (m,):
                raise ValueError(f"class labels must have shape ({m},), got {t.shape}")
            _validate.label_range(t, n_out)
            return
        if t.shape != (m, n_out) and not (n_out == 1 and t.shape == (m,)):
            raise ValueError(f"target must have shape ({m}, {n_out}), got {t.shape}")
        _validate.finite("target", t)
        if self._loss is bce_with_logits:
            _validate.probabilities("BCEWithLogitsLoss targets", t)
        elif self._loss is poisson_nll:
            _validate.nonnegative("PoissonNLLLoss targets", t)

    @_locks.serialised("_lock")
    def forward(self, x):
        self.check(x)
        return self._forward(x, False)[0]

    def _check_training_rows(self, m):
        """The C++ network's refusal, before anything changes, of a training batch too
        small for batch statistics."""
        if m < 2 and any(layer.kind == _core.LayerKind.BatchNorm for layer in self._layers):
            raise ValueError(
                f"BatchNorm needs batches of at least 2 rows in training, got a batch of {m}"
            )

    @_locks.serialised("_lock")
    def loss(self, x, t, training=False):
        self.check(x, t)
        if training:
            self._check_training_rows(x.shape[0])
        return self._loss_value(self._forward(x, training)[0], t, self._reduction)

    @_locks.serialised("_lock")
    def backward(self, x, t, sample_weight=None):
        """Fills the gradients and returns the loss, finite or not, as the C++ network:
        overflow shows in the values (and is refused by an update), not as warnings."""
        self.check(x, t)
        weights = self._row_weights(sample_weight, x.shape[0])
        self._check_training_rows(x.shape[0])
        return self._backward(x, t, weights)

    def _backward(self, x, t, weights=None):
        """:meth:`backward` of a checked batch, its rows weighted by ``weights`` if given."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            y, caches = self._forward(x, True)
            if weights is None:
                value = self._loss_value(y, t, self._reduction)
                delta = self._loss_grad(y, t, self._reduction)
            else:
                value, delta = weighted_loss(
                    self._loss_name, y, t, weights, self._reduction, **self._loss_settings
                )
            for i in range(len(self._layers) - 1, -1, -1):
                params = views(self.params, self.layout[i][0])
                delta, grads = self._layers[i].backward_numpy(
                    delta, caches[i], params, **self._compute_of(self._layers[i])
                )
                for name, view in views(self.grads, self.layout[i][0]).items():
                    view[...] = grads[name]
        self._last_loss = value
        return value

    def divergence_reason(self, value, bad):
        """nn::divergence_reason's words for loss ``value`` and the first non-finite
        gradient at flat index ``bad`` (-1: none)."""
        if not np.isfinite(value):
            return f"the loss is {value:g}"
        for i, (params, _) in enumerate(self.layout):
            for name, offset, shape in params:
                if offset <= bad < offset + int(np.prod(shape)):
                    kind = self._layers[i].kind
                    same = [j for j, layer in enumerate(self._layers) if layer.kind == kind]
                    return (
                        f"a gradient is NaN or inf (d{name} of {kind.name} layer "
                        f"{same.index(i) + 1} of {len(same)}; loss {value:g})"
                    )
        raise ValueError(f"index {bad} is in no parameter slice")

    def _divergence_reason(self):
        """Why the last backward pass must not update, or None when its loss and every
        gradient are finite."""
        bad = np.flatnonzero(~np.isfinite(self.grads))
        if np.isfinite(self._last_loss) and not bad.size:
            return None
        return self.divergence_reason(self._last_loss, int(bad[0]) if bad.size else -1)

    def _update(self, update, step):
        """``update()`` unless the last backward pass diverged: then, like the C++
        network, FloatingPointError with ``step`` (of this call) and ``reason``. update
        returns the gradient norm it clipped by (0.0: none), not finite when it changed
        nothing."""
        reason = self._divergence_reason()
        if reason is None:
            norm = update()
            if np.isfinite(norm):
                self.updates += 1
                return
            reason = f"the gradient norm is {norm:g}"
        error = FloatingPointError(f"{reason} at step {step + 1} of this call")
        error.step, error.reason = step, reason
        raise error

    def _step(self, x, t, update, step, weights=None, weight_penalty=0.0):
        """Backward, the penalty (:meth:`_penalise`) and ``update()`` of one checked
        batch (see :meth:`_update`)."""
        if t.ndim == 1 and self._loss is not softmax_cross_entropy:
            t = t.reshape(-1, 1)
        self._check_training_rows(x.shape[0])
        value = self._backward(x, t, weights)
        if weight_penalty > 0:
            value = self._penalise(weight_penalty / x.shape[0])
        self._update(update, step)
        return value

    def _penalise(self, decay):
        """scikit-learn's L2 penalty on the Dense layers' weight matrices, as the C++
        network adds it: ``decay * W`` to their gradients and ``decay / 2`` times their
        sum of squares (each matrix's in the network's dtype, as scikit-learn's, added
        in float64 one matrix after another) to the last loss, which it returns."""
        for layer, (params, _) in zip(self._layers, self.layout):
            if layer.kind != _core.LayerKind.Dense:
                continue
            p, g = views(self.params, params)["W"], views(self.grads, params)["W"]
            with np.errstate(over="ignore"):
                self._last_loss += 0.5 * decay * float(np.vdot(p, p))
                g += self.params.dtype.type(decay) * p
        return self._last_loss

    def _epoch(
        self,
        x,
        t,
        order,
        batch_size,
        update_for,
        loss_sum,
        sample_weight,
        interrupt_mark,
        weight_penalty,
    ):
        """A step with ``update_for(i)`` for batch i of the rows in ``order``; ``loss_sum``
        plus each batch's rows times its loss, added in batch order; stopped by a SIGINT
        before a batch (KeyboardInterrupt with ``step``), as the C++ network; each batch
        penalised by ``weight_penalty`` (see :meth:`_penalise`)."""
        self.check(x, t)
        rows = len(order)
        self._check_training_rows(min(batch_size, rows))
        self._check_training_rows(rows - (rows - 1) // batch_size * batch_size)
        weights = self._row_weights(sample_weight, x.shape[0])
        for i, start in enumerate(range(0, len(order), batch_size)):
            if interrupt_mark >= 0 and _core.sigint_count() != interrupt_mark:
                error = KeyboardInterrupt(f"interrupted after step {i} of this call")
                error.step = i
                raise error
            rows = order[start : start + batch_size]
            loss_sum += len(rows) * self._step(
                x[rows],
                t[rows],
                update_for(i),
                i,
                None if weights is None else weights[rows],
                weight_penalty,
            )
        return loss_sum

    def _row_weights(self, weights, rows):
        """The checks fastbp._core makes on sample weights, with the same errors."""
        if weights is None:
            return None
        if not isinstance(weights, np.ndarray) or weights.dtype != self.params.dtype:
            raise TypeError(
                f"sample_weight must have dtype {self.params.dtype}, got "
                f"{getattr(weights, 'dtype', type(weights).__name__)}"
            )
        return _validate.row_weights(weights, rows)

    def _optimizer(self, spec, states, step):
        """The update number ``step`` (from 1) that ``spec`` (a ``_core.UpdateSpec``, whose
        hyper-parameters the core checked) describes, clipping first when its
        ``max_grad_norm`` is not 0; the states checked as the core checks them, before
        anything changes."""
        kind, hyper, max_grad_norm = spec.kind, spec.hyper, spec.max_grad_norm
        names = optimizers.STATE_TYPES[kind].names
        if len(states) != len(names):
            raise ValueError(f"this optimizer takes {len(names)} state arrays, got {len(states)}")
        for name, array in zip(names, states):
            if (
                not isinstance(array, np.ndarray)
                or array.dtype != self.params.dtype
                or array.shape != (self.n_params,)
            ):
                raise ValueError(
                    f"{name} must be a {self.params.dtype} array of shape ({self.n_params},)"
                )

        def update():
            norm = 0.0
            if max_grad_norm != 0:
                norm = clip_grad_norm(self.grads, max_grad_norm)
                if not np.isfinite(norm):
                    return norm
            OPTIMIZER_STEPS[kind](self.params, self.grads, states, hyper, step)
            return norm

        return update

    @_locks.serialised("_lock")
    def step(self, spec, states, steps):
        self._update(self._optimizer(spec, states, steps + 1), 0)

    @_locks.serialised("_lock")
    def train_step(self, x, t, spec, states, steps):
        self.check(x, t)
        return self._step(x, t, self._optimizer(spec, states, steps + 1), 0)

    @_locks.serialised("_lock")
    def train_epoch(
        self,
        x,
        t,
        order,
        batch_size,
        spec,
        states,
        steps,
        loss_sum=0.0,
        sample_weight=None,
        interrupt_mark=-1,
        weight_penalty=0.0,
    ):
        self._optimizer(spec, states, steps + 1)  # its checks first
        weight_penalty = _validate.real("weight_penalty", weight_penalty)
        return self._epoch(
            x,
            t,
            order,
            batch_size,
            lambda i: self._optimizer(spec, states, steps + i + 1),
            loss_sum,
            sample_weight,
            interrupt_mark,
            weight_penalty,
        )
