"""The training loop behind :meth:`fastbp.Network.fit`: epochs of calls into C++ (or, on
several MPI ranks, the steps of :class:`fastbp.distributed.DataParallel`), sample
weights, validation, metrics, learning-rate schedules, callbacks, early stopping, the
progress bar and Ctrl-C; the error for a diverged step; and the evaluation behind
:meth:`fastbp.Network.evaluate`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .. import _sigint, _sparse, _validate
from ..io import npz
from ..nn.losses import BCEWithLogitsLoss
from ..optim import optimizers
from ..optim.optimizers import FitClaim, Optimizer
from ..optim.schedules import Schedule
from . import distributed
from .callbacks import (
    BAR_UPDATES_PER_EPOCH,
    Callback,
    EarlyStopping,
    ProgressBar,
    load_tqdm,
    progress_default,
)
from .history import History, epoch_name
from .metrics import METRICS

if TYPE_CHECKING:
    from mpi4py import MPI


def diverged(where: str, error: FloatingPointError) -> FloatingPointError:
    """The error for a step that diverged, from the backend's (which has ``reason``)."""
    return FloatingPointError(
        f"training diverged at {where}: {error.reason}; the parameters "
        "and optimizer state are those from before this step"
    )


class _Run(NamedTuple):
    """What ``fit`` trains with, every argument checked."""

    epochs: int
    batch_size: int
    x: np.ndarray
    t: np.ndarray
    w: np.ndarray | None
    val: tuple | None
    metrics: list
    lrs: list | None
    callbacks: list
    stopper: EarlyStopping | None
    show_bar: bool
    weight_penalty: float


def fit(net, X, T, *, optimizer: Optimizer, **options) -> History:
    """:meth:`fastbp.Network.fit` (documented there), on ``net``, under its lock, with
    ``optimizer`` claimed for this fit alone (see :class:`fastbp.optim.optimizers.FitClaim`) from
    the last of its checks to its end."""
    claim = FitClaim(optimizer)
    try:
        return _train(net, X, T, optimizer=optimizer, claim=claim, **options)
    finally:
        claim.release()


def _train(
    net,
    X,
    T,
    *,
    epochs: int,
    batch_size: int,
    optimizer: Optimizer,
    claim: FitClaim,
    shuffle: bool = True,
    validation_data=None,
    validation_split: float = 0.0,
    metrics: Sequence[str] = (),
    lr_schedule: Schedule | Callable | None = None,
    callbacks: Sequence[Callable] = (),
    early_stopping: bool = False,
    patience: int = 10,
    progress: bool | None = None,
    sample_weight=None,
    class_weight=None,
    weight_penalty: float = 0.0,
    comm: MPI.Intracomm | None = None,
) -> History:
    """:func:`fit`'s work. Every check that may refuse the fit, the callbacks' included,
    runs before any callback starts, so a refused fit changes nothing."""

    def checks() -> _Run:
        if comm is not None and net.backend == "cuda":
            raise NotImplementedError(
                "fit(comm=...) trains on the cpu and numpy backends, got backend='cuda'"
            )
        if comm is not None and _sparse.issparse(X):
            raise NotImplementedError(
                "fit(comm=...) takes dense X; convert a sparse X with X.toarray() per shard"
            )
        if comm is not None and (sample_weight is not None or class_weight is not None):
            raise NotImplementedError(
                "fit(comm=...) does not take sample_weight or class_weight yet"
            )
        if comm is not None and weight_penalty != 0:
            raise NotImplementedError("fit(comm=...) does not take a weight_penalty yet")
        run = _checked(
            net,
            X,
            T,
            epochs,
            batch_size,
            optimizer,
            validation_data,
            validation_split,
            metrics,
            lr_schedule,
            callbacks,
            early_stopping,
            patience,
            progress if lead else False,
            sample_weight,
            class_weight,
            weight_penalty,
        )
        for callback in run.callbacks:  # each may refuse its settings (a monitor not logged)
            if isinstance(callback, Callback):
                callback.check(net, optimizer, _log_keys(run.val, run.metrics))
        if run.show_bar:
            load_tqdm()  # refused as a bad argument is, and with comm not on rank 0 alone
        claim.take()  # last: the one check that changes something (released by fit)
        return run

    # Data-parallel: the checks' verdict is agreed by all ranks, and the bar is rank 0's.
    lead = comm is None or distributed.rank(comm) == 0
    run = checks() if comm is None else distributed.agree(comm, checks)
    group = None if comm is None else _data_parallel(net, comm, optimizer, run, shuffle)
    n_batches = -(-run.x.shape[0] // run.batch_size) if group is None else group.steps
    history, base_lr = History(), optimizer.lr
    started, bar, mark = [], None, _sigint.UNWATCHED
    try:
        for callback in run.callbacks:
            if isinstance(callback, Callback):
                callback.on_fit_start(net, optimizer, _log_keys(run.val, run.metrics))
                started.append(callback)
        bar = ProgressBar(run.epochs, n_batches) if run.show_bar else None
        mark = _sigint.watch()
        # The schedule's rate times what callbacks did to it since (PyTorch's chained
        # schedulers multiply the same way); without a schedule, fit leaves lr alone.
        scale = 1.0
        for epoch in range(run.epochs):
            start = time.perf_counter()
            if run.lrs is not None and optimizer.lr != run.lrs[epoch] * scale:
                optimizer.lr = run.lrs[epoch] * scale  # the setter validates: skip it when idle
            if group is not None:  # a callback may have changed it on one rank alone
                group.lead_rate(optimizer)
            lr = optimizer.lr
            if group is None:
                order = (
                    net.internals.rng.permutation(run.x.shape[0])
                    if shuffle
                    else np.arange(run.x.shape[0])
                )
                mean = _run_epoch(
                    net,
                    optimizer,
                    run.x,
                    run.t,
                    run.w,
                    order.astype(np.int64, copy=False),
                    run.batch_size,
                    epoch,
                    bar,
                    mark,
                    run.weight_penalty,
                )
                logs = {"loss": mean, **_evaluate(net, run.x, run.t, run.val, run.metrics)}
            else:
                state, calls = net.internals.bind_optimizer(optimizer)
                try:
                    mean = group.train_epoch(run.x, run.t, optimizer, state, calls.step, epoch, bar)
                except FloatingPointError as e:
                    raise diverged(f"{epoch_name(epoch)}, step {e.step + 1}", e) from None
                logs = {
                    "loss": mean,
                    **group.combine(_evaluate(net, run.x, run.t, run.val, run.metrics)),
                }
            elapsed = time.perf_counter() - start
            logs.update(lr=lr, epoch_time=elapsed if group is None else group.slowest(elapsed))
            history.append(logs)
            if bar is not None:
                bar(epoch, logs)
            keep = [callback(epoch, logs) is not False for callback in run.callbacks]
            if run.stopper is not None:
                keep.append(run.stopper(epoch, logs))
            if run.lrs is not None and optimizer.lr != lr:
                scale *= optimizer.lr / lr
            stop = not all(keep)
            if group is not None:  # a callback may stop one rank: then all stop
                stop = group.anyone(stop)
            if stop:
                history.stopped_epoch = epoch
                break
    finally:
        _sigint.unwatch(mark)
        optimizer.lr = base_lr
        if bar is not None:
            bar.close()
        for callback in started:
            callback.on_fit_end()
    if run.stopper is not None and run.stopper.best_params is not None:
        run.stopper.restore_best()
        history.best_epoch = run.stopper.best_epoch
    return history


def _checked(
    net,
    X,
    T,
    epochs,
    batch_size,
    optimizer,
    validation_data,
    validation_split,
    metrics,
    lr_schedule,
    callbacks,
    early_stopping,
    patience,
    progress,
    sample_weight,
    class_weight,
    weight_penalty,
) -> _Run:
    """Every argument of ``fit`` checked and converted, before anything changes."""
    epochs = _validate.positive_int("epochs", epochs)
    weight_penalty = _validate.real("weight_penalty", weight_penalty, low=0.0)
    batch_size = _validate.positive_int("batch_size", batch_size)
    optimizers.check(optimizer)
    x, t = net.internals.batch(X, T)
    # Checked whole here: with a progress bar or a sparse X the core sees slices (and
    # would name rows of a slice), and without rows no epoch reaches the core at all.
    net.internals.check(x, t)
    w = sample_weights(net, t, sample_weight, class_weight)
    scored = checked_metrics(net, metrics)
    lrs = _learning_rates(lr_schedule, epochs, optimizer.lr)
    callbacks = _validate.callables("callbacks", callbacks)
    # Last of the checks: a validation split draws from the network's generator.
    x, t, w, val = _validation(net, x, t, w, validation_data, validation_split)
    if early_stopping and val is None:
        raise ValueError("early_stopping needs validation_data or validation_split")
    stopper = EarlyStopping(net, patience) if early_stopping else None
    return _Run(
        epochs,
        batch_size,
        x,
        t,
        w,
        val,
        scored,
        lrs,
        callbacks,
        stopper,
        progress_default() if progress is None else progress,
        weight_penalty,
    )


def _data_parallel(
    net, comm: MPI.Intracomm, optimizer: Optimizer, run: _Run, shuffle: bool
) -> distributed.DataParallel:
    """This rank's part in training on every rank of ``comm``, which starts from rank 0's
    parameters and optimizer state; refuses settings that differ between the ranks."""
    settings = {
        "network": npz.network_config(net),
        "optimizer": repr(optimizer),
        "epochs": run.epochs,
        "learning rates": run.lrs,
        "metrics": run.metrics,
        "shuffle": shuffle,
        "validation": run.val is not None,
        "early stopping patience": run.stopper.patience if run.stopper else None,
    }
    return distributed.DataParallel(
        net,
        comm,
        optimizer,
        rows=run.x.shape[0],
        batch_size=run.batch_size,
        val_rows=0 if run.val is None else run.val[0].shape[0],
        shuffle=shuffle,
        settings=settings,
    )


def _run_epoch(
    net,
    optimizer: Optimizer,
    x,
    t,
    w,
    order,
    batch_size: int,
    epoch: int,
    bar: ProgressBar | None,
    mark: int,
    weight_penalty: float,
) -> float:
    """Train ``net`` with ``optimizer`` on the rows of ``x`` (weighted by ``w``, or not)
    in ``order``, with ``weight_penalty`` (see :meth:`fastbp.Network.fit`), through the
    network core's ``train_epoch``, advancing the optimizer's step count; returns the
    epoch's row-weighted mean loss. Without a bar, one core call;
    with one, calls on consecutive slices of ``order`` of whole batches, each continuing
    the previous call's loss sum, so the batches, the updates and the sum are exactly
    those of one call. ``mark`` (see :mod:`fastbp._sigint`) lets a Ctrl-C stop a call
    between batches."""
    n_batches = -(-len(order) // batch_size)
    per_call = n_batches if bar is None else -(-n_batches // BAR_UPDATES_PER_EPOCH)
    if _sparse.issparse(x):  # the rows of a call are gathered into one dense block
        per_call = min(per_call, max(1, _sparse.block_rows(x) // batch_size))
    take = _sparse.Rows(x, per_call * batch_size)
    loss_sum = 0.0
    # No callback runs within an epoch, so one optimizer state counts all of its steps.
    state = net.internals.bind_optimizer(optimizer)[0]
    start = state.steps
    try:
        for first in range(0, n_batches, per_call):
            # Bound again for every call: a callback may have trained with another optimizer.
            state, calls = net.internals.bind_optimizer(optimizer)
            weights = {} if w is None else {"sample_weight": w}
            if per_call == n_batches and not _sparse.issparse(x):
                args = (x, t, order)
            else:  # the core takes an order over all of its rows: hand it the slice's rows
                rows = order[first * batch_size : (first + per_call) * batch_size]
                args = (take(rows), t[rows], np.arange(len(rows), dtype=np.int64))
                weights = {k: v[rows] for k, v in weights.items()}
            with _sigint.Held(mark):
                try:
                    loss_sum = calls.train_epoch(
                        *args,
                        batch_size,
                        *optimizer.core_args(state),
                        loss_sum=loss_sum,
                        interrupt_mark=mark,
                        weight_penalty=weight_penalty,
                        **weights,
                    )
                except FloatingPointError as e:
                    state.steps += e.step  # the epoch's batches before it stay applied
                    raise diverged(f"{epoch_name(epoch)}, step {first + e.step + 1}", e) from None
                except KeyboardInterrupt:
                    net.internals.recount(state)  # the steps the core applied, whoever raised
                    raise
                done = min(per_call, n_batches - first)
                state.steps += done
            if bar is not None:
                bar.advance(epoch, done, loss_sum / min(len(order), (first + done) * batch_size))
    except KeyboardInterrupt:
        # From the core, from Held, or from Python's handler between two calls (a bar's
        # slices): the steps counted are those applied.
        raise KeyboardInterrupt(
            f"training interrupted in {epoch_name(epoch)} after step {state.steps - start} of "
            f"{n_batches}: the parameters and optimizer state are those after it"
        ) from None
    return float(loss_sum) / len(order)


def sample_weights(net, t, sample_weight, class_weight=None):
    """One weight per row of ``t``, from ``sample_weight`` or ``class_weight`` (Keras's
    definitions), as an array of the network's dtype; None when both are None."""
    if sample_weight is not None and class_weight is not None:
        raise ValueError("give sample_weight or class_weight, not both")
    if sample_weight is None and class_weight is None:
        return None
    if net.backend == "cuda":
        raise NotImplementedError(
            "backend='cuda' does not take sample_weight or "
            "class_weight: its loss kernels are unweighted"
        )
    if class_weight is not None:
        return _class_weights(net, t, class_weight)
    return _validate.row_weights(
        _validate.float_array("sample_weight", sample_weight, net.dtype), t.shape[0]
    )


def _class_weights(net, t, class_weight: dict):
    """Each row's weight ``class_weight.get(class, 1.0)``, its class as
    :func:`_row_classes` reads it."""
    if not isinstance(class_weight, dict):
        raise TypeError(
            f"class_weight must be a dict class -> weight, got {type(class_weight).__name__}"
        )
    if not net.loss_fn.classifies:
        raise ValueError(f"class_weight needs a classification loss, got {net.loss_fn!r}")
    rows = _row_classes(net, t)
    if rows is None:
        raise ValueError(
            "class_weight with BCEWithLogitsLoss needs one output (binary "
            f"targets), got {net.out_features}"
        )
    classes, labels = rows
    table = np.ones(classes, dtype=net.dtype)
    for label, weight in class_weight.items():
        if (
            isinstance(label, bool)
            or not isinstance(label, (int, np.integer))
            or not 0 <= label < classes
        ):
            raise ValueError(
                f"class_weight keys must be class indices in [0, {classes}), got {label!r}"
            )
        table[label] = _validate.real(f"class_weight[{label}]", weight)
    return table[labels]


def _row_classes(net, t):
    """``(classes, labels)`` of checked targets: each row's class is its label, the
    arg-max of its probability row, or its rounded binary target (one BCE output); None
    when rows have no single class (a regression loss, BCE over several outputs)."""
    if not net.loss_fn.classifies:
        return None
    if isinstance(net.loss_fn, BCEWithLogitsLoss):
        if net.out_features != 1:
            return None
        return 2, np.round(t[:, 0]).astype(np.int64)
    return net.out_features, t if t.ndim == 1 else t.argmax(axis=1)


def _validation(net, x, t, w, validation_data, validation_split):
    """``(x, t, w, val)``: the training rows, their weights and the validation batch (or
    None); the validation loss is never weighted."""
    split = _validate.real("validation_split", validation_split)
    if validation_data is not None:
        if split:
            raise ValueError("give validation_data or validation_split, not both")
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (X_val, T_val)")
        try:
            val = net.internals.batch(*validation_data)
            net.internals.check(*val)
        except (TypeError, ValueError) as e:  # say which data the error is about
            raise type(e)(f"validation_data: {e}") from e
        return x, t, w, val
    if not split:
        return x, t, w, None
    n = x.shape[0]
    n_val = int(round(split * n))
    if split >= 1 or not 0 < n_val < n:
        raise ValueError(
            f"validation_split={split} leaves no rows to train or to validate on, of {n}"
        )
    held = _held_out_rows(net, t, n_val)
    keep = np.setdiff1d(np.arange(n), held, assume_unique=True)
    return x[keep], t[keep], None if w is None else w[keep], (x[held], t[held])


def _held_out_rows(net, t, n_val: int) -> np.ndarray:
    """``n_val`` row indices (ascending) drawn from the network's generator: at random,
    or, for a classification loss with binary or single-class-per-row targets, from each
    class in proportion to its rows (largest remainders), as a stratified split does."""
    n, rng, rows = t.shape[0], net.internals.rng, _row_classes(net, t)
    if rows is None:
        return np.sort(rng.permutation(n)[:n_val])
    _, labels = rows
    classes, counts = np.unique(labels, return_counts=True)
    share = n_val * counts / n
    take = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - take), kind="stable")
    take[order[: n_val - take.sum()]] += 1
    held = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(held))


def checked_metrics(net, metrics) -> list:
    """The metric names checked: known, and meaningful for this network's loss."""
    if isinstance(metrics, str) or not isinstance(metrics, (list, tuple)):
        raise TypeError(f"metrics must be a list of names, got {metrics!r}")
    for name in metrics:
        _validate.choice("metric", name, METRICS)
        if not net.loss_fn.classifies:
            raise ValueError(f"metric {name!r} needs a classification loss, got {net.loss_fn!r}")
    return list(metrics)


def _learning_rates(schedule, epochs: int, base_lr: float) -> list | None:
    """The scheduled learning rate of every epoch, checked before training starts, or
    None without a schedule. A :class:`Schedule` is called as ``schedule(epoch,
    base_lr)``, any other callable as ``schedule(epoch)``."""
    if schedule is None:
        return None
    _validate.instance(
        "lr_schedule",
        schedule,
        Callable,
        "a fastbp.schedules.Schedule or a callable epoch -> learning rate",
    )
    args = (base_lr,) if isinstance(schedule, Schedule) else ()
    return [
        _validate.real(
            f"{schedule!r} learning rate of {epoch_name(epoch)}",
            schedule(epoch, *args),
            strict=True,
        )
        for epoch in range(epochs)
    ]


def _log_keys(val, metrics) -> list:
    """The keys of each epoch's logs, in the order :func:`fit` fills them."""
    keys = ["loss"] + (["val_loss"] if val is not None else [])
    for name in metrics:
        keys += [name] + (["val_" + name] if val is not None else [])
    return keys + ["lr", "epoch_time"]


def evaluate(net, x, t, metrics) -> dict:
    """``{"loss": ..., metric: ...}`` of ``net`` on the checked batch ``(x, t)``."""
    scores = {"loss": net.internals.loss_value(x, t)}
    if metrics:
        y = net.internals.forward(x)
        scores.update((name, METRICS[name](y, t, net.loss_fn.name)) for name in metrics)
    return scores


def _evaluate(net, x, t, val, metrics) -> dict:
    """Validation loss and the metrics after an epoch, as log entries: the validation
    scores are :func:`evaluate`'s."""
    logs = {}
    scores = evaluate(net, *val, metrics) if val is not None else {}
    if val is not None:
        logs["val_loss"] = scores["loss"]
    if metrics:
        y = net.internals.forward(x)
        for name in metrics:
            logs[name] = METRICS[name](y, t, net.loss_fn.name)
            if val is not None:
                logs["val_" + name] = scores[name]
    return logs
