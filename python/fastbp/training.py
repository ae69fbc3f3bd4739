"""The training loop behind :meth:`fastbp.Network.fit`: epochs of calls into C++ (or, on
several MPI ranks, the steps of :class:`fastbp.distributed.DataParallel`), validation,
metrics, learning-rate schedules, callbacks, early stopping and the progress bar; and the
error for a diverged step."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from . import _validate, distributed, io
from .callbacks import (BAR_UPDATES_PER_EPOCH, EarlyStopping, ProgressBar, load_tqdm,
                        progress_default)
from .history import History
from .losses import MSELoss
from .metrics import METRICS
from .optim import CoreCalls, Optimizer
from .schedules import Schedule

if TYPE_CHECKING:
    from mpi4py import MPI


def diverged(where: str, error: FloatingPointError) -> FloatingPointError:
    """The error for a step that diverged, from the backend's (which has ``reason``)."""
    return FloatingPointError(f"training diverged at {where}: {error.reason}; the parameters "
                              "and optimizer state are those from before this step")


class _Run(NamedTuple):
    """What ``fit`` trains with, every argument checked."""

    epochs: int
    batch_size: int
    state: object
    calls: CoreCalls
    x: np.ndarray
    t: np.ndarray
    val: tuple | None
    metrics: list
    lrs: list
    callbacks: list
    stopper: EarlyStopping | None
    show_bar: bool


def fit(net, X, T, *, epochs: int, batch_size: int, optimizer: Optimizer,
        shuffle: bool = True, validation_data=None, validation_split: float = 0.0,
        metrics: Sequence[str] = (), lr_schedule: Schedule | None = None,
        callbacks: Sequence[Callable] = (), early_stopping: bool = False, patience: int = 10,
        progress: bool | None = None, comm: MPI.Intracomm | None = None) -> History:
    """:meth:`fastbp.Network.fit` (documented there), on ``net``, under its lock."""
    def checks() -> _Run:
        if comm is not None and net.backend == "cuda":
            raise NotImplementedError("fit(comm=...) trains on the cpu and numpy backends, "
                                      "got backend='cuda'")
        run = _checked(net, X, T, epochs, batch_size, optimizer, validation_data,
                       validation_split, metrics, lr_schedule, callbacks, early_stopping,
                       patience, progress if lead else False)
        if comm is not None and run.show_bar:
            load_tqdm()  # refused before training, as a bad argument, not on rank 0 alone
        return run

    # Data-parallel: the checks' verdict is agreed by all ranks, and the bar is rank 0's.
    lead = comm is None or distributed.rank(comm) == 0
    run = checks() if comm is None else distributed.agree(comm, checks)
    group = None if comm is None else _data_parallel(net, comm, optimizer, run, shuffle)
    n_batches = -(-run.x.shape[0] // run.batch_size) if group is None else group.steps
    bar = ProgressBar(run.epochs, n_batches) if run.show_bar else None
    history, base_lr = History(), optimizer.lr
    try:
        for epoch in range(run.epochs):
            start = time.perf_counter()
            if optimizer.lr != run.lrs[epoch]:  # the setter validates: skip it when idle
                optimizer.lr = run.lrs[epoch]
            if group is None:
                order = net._rng.permutation(run.x.shape[0]) if shuffle else \
                    np.arange(run.x.shape[0])
                mean = _run_epoch(run.calls.train_epoch, run.x, run.t,
                                  order.astype(np.int64, copy=False), run.batch_size,
                                  optimizer, run.state, epoch, bar)
                logs = {"loss": mean, **_evaluate(net, run.x, run.t, run.val, run.metrics)}
            else:
                try:
                    mean = group.train_epoch(run.x, run.t, optimizer, run.state,
                                             run.calls.step, epoch, bar)
                except FloatingPointError as e:
                    raise diverged(f"epoch {epoch + 1}, step {e.step + 1}", e) from None
                logs = {"loss": mean,
                        **group.combine(_evaluate(net, run.x, run.t, run.val, run.metrics))}
            elapsed = time.perf_counter() - start
            logs.update(lr=run.lrs[epoch],
                        epoch_time=elapsed if group is None else group.slowest(elapsed))
            history.append(logs)
            if bar is not None:
                bar(epoch, logs)
            keep = [callback(epoch, logs) is not False for callback in run.callbacks]
            if run.stopper is not None:
                keep.append(run.stopper(epoch, logs))
            stop = not all(keep)
            if group is not None:  # a callback may stop one rank: then all stop
                stop = group.anyone(stop)
            if stop:
                history.stopped_epoch = epoch
                break
    finally:
        optimizer.lr = base_lr
        if bar is not None:
            bar.close()
    if run.stopper is not None and run.stopper.best_params is not None:
        run.stopper.restore_best()
        history.best_epoch = run.stopper.best_epoch
    return history


def _checked(net, X, T, epochs, batch_size, optimizer, validation_data, validation_split,
             metrics, lr_schedule, callbacks, early_stopping, patience, progress) -> _Run:
    """Every argument of ``fit`` checked and converted, before anything changes."""
    epochs = _validate.positive_int("epochs", epochs)
    batch_size = _validate.positive_int("batch_size", batch_size)
    # Refuses a bad optimizer before anything runs.
    state, calls = net._bind_optimizer(optimizer)
    x, t = net._batch(X, T)
    # Checked whole here: with a progress bar the core sees slices (and would name rows
    # of a slice), and without rows no epoch reaches the core at all.
    net._core.check(x, t)
    x, t, val = _validation(net, x, t, validation_data, validation_split)
    scored = _metrics(net, metrics)
    lrs = _learning_rates(lr_schedule, epochs, optimizer.lr)
    callbacks = _validate.callables("callbacks", callbacks)
    if early_stopping and val is None:
        raise ValueError("early_stopping needs validation_data or validation_split")
    stopper = EarlyStopping(net, patience) if early_stopping else None
    return _Run(epochs, batch_size, state, calls, x, t, val, scored, lrs, callbacks, stopper,
                progress_default() if progress is None else progress)


def _data_parallel(net, comm: MPI.Intracomm, optimizer: Optimizer, run: _Run,
                   shuffle: bool) -> distributed.DataParallel:
    """This rank's part in training on every rank of ``comm``, which starts from rank 0's
    parameters and optimizer state; refuses settings that differ between the ranks."""
    settings = {"network": io.network_config(net), "optimizer": repr(optimizer),
                "epochs": run.epochs, "learning rates": run.lrs, "metrics": run.metrics,
                "shuffle": shuffle, "validation": run.val is not None,
                "early stopping patience": run.stopper.patience if run.stopper else None}
    return distributed.DataParallel(
        net, comm, optimizer, rows=run.x.shape[0], batch_size=run.batch_size,
        val_rows=0 if run.val is None else run.val[0].shape[0], shuffle=shuffle,
        settings=settings)


def _run_epoch(train_epoch: Callable[..., float], x, t, order, batch_size: int,
               optimizer: Optimizer, state, epoch: int, bar: ProgressBar | None) -> float:
    """Train on the rows of ``x`` in ``order`` through the network core's
    ``train_epoch`` for ``optimizer`` (``state``: ``optimizer``'s for the network, whose
    step count it advances); returns the epoch's sample-weighted mean loss. Without a
    bar, one core call; with one, calls on consecutive slices of ``order`` of whole
    batches, each continuing the previous call's loss sum, so the batches, the updates
    and the sum are exactly those of one call."""
    n_batches = -(-len(order) // batch_size)
    per_call = n_batches if bar is None else -(-n_batches // BAR_UPDATES_PER_EPOCH)
    loss_sum = 0.0
    for first in range(0, n_batches, per_call):
        if per_call == n_batches:
            args = (x, t, order)
        else:  # the core takes an order over all of its rows: hand it the slice's rows
            rows = order[first * batch_size:(first + per_call) * batch_size]
            args = (x[rows], t[rows], np.arange(len(rows), dtype=np.int64))
        try:
            loss_sum = train_epoch(*args, batch_size, *optimizer.core_args(state),
                                   loss_sum=loss_sum)
        except FloatingPointError as e:
            state.steps += e.step  # the epoch's batches before it stay applied
            raise diverged(f"epoch {epoch + 1}, step {first + e.step + 1}", e) from None
        done = min(per_call, n_batches - first)
        state.steps += done
        if bar is not None:
            bar.advance(epoch, done, loss_sum / min(len(order), (first + done) * batch_size))
    return float(loss_sum) / len(order)


def _validation(net, x, t, validation_data, validation_split):
    """``(x, t, val)``: the training rows and the validation batch (or None)."""
    split = _validate.real("validation_split", validation_split)
    if validation_data is not None:
        if split:
            raise ValueError("give validation_data or validation_split, not both")
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (X_val, T_val)")
        val = net._batch(*validation_data)
        net._core.check(*val)
        return x, t, val
    if not split:
        return x, t, None
    n_val = int(round(split * x.shape[0]))
    if split >= 1 or not 0 < n_val < x.shape[0]:
        raise ValueError(f"validation_split={split} leaves no rows to train or to validate "
                         f"on, of {x.shape[0]}")
    cut = x.shape[0] - n_val
    return x[:cut], t[:cut], (x[cut:], t[cut:])


def _metrics(net, metrics) -> list:
    """The metric names checked: known, and meaningful for this network's loss."""
    if isinstance(metrics, str) or not isinstance(metrics, (list, tuple)):
        raise TypeError(f"metrics must be a list of names, got {metrics!r}")
    for name in metrics:
        _validate.choice("metric", name, METRICS)
        if isinstance(net.loss_fn, MSELoss):
            raise ValueError(f"metric {name!r} needs a classification loss, got "
                             f"{net.loss_fn!r}")
    return list(metrics)


def _learning_rates(schedule, epochs: int, base_lr: float) -> list:
    """The learning rate of every epoch, checked before training starts."""
    if schedule is None:
        return [base_lr] * epochs
    if not isinstance(schedule, Schedule):
        raise TypeError("lr_schedule must be a fastbp.schedules.Schedule, got "
                        f"{type(schedule).__name__}")
    return [_validate.real(f"{schedule!r} learning rate at epoch {epoch}",
                           schedule(epoch, base_lr), strict=True)
            for epoch in range(epochs)]


def _evaluate(net, x, t, val, metrics) -> dict:
    """Validation loss and the metrics after an epoch, as log entries."""
    logs = {}
    if val is not None:
        logs["val_loss"] = float(net._core.loss(*val))
    for name in metrics:
        logs[name] = METRICS[name](net._core.forward(x), t, net.loss_fn.name)
        if val is not None:
            logs["val_" + name] = METRICS[name](net._core.forward(val[0]), val[1],
                                                net.loss_fn.name)
    return logs
