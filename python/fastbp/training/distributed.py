"""Data-parallel training on MPI through mpi4py.

:func:`broadcast_parameters`, :func:`allreduce_gradients` and
:func:`average_running_statistics` serve a custom loop of ``net.backward`` and
``optimizer.step``; :func:`agree` and :class:`DataParallel` are what
:meth:`fastbp.Network.fit` runs with ``comm=``. Every function here but :func:`rank` is
collective: each rank of the communicator calls it, in the same order. mpi4py is imported
only when a communicator is used, so ``import fastbp`` never loads MPI.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from .. import _validate
from ..optim.optimizers import Optimizer
from .callbacks import BAR_UPDATES_PER_EPOCH

if TYPE_CHECKING:
    from mpi4py import MPI

__all__ = [
    "allreduce_gradients",
    "average_running_statistics",
    "broadcast_parameters",
    "agree",
    "rank",
    "DataParallel",
]

Result = TypeVar("Result")


def _mpi(comm):
    """The ``mpi4py.MPI`` module, after checking that ``comm`` is an intracommunicator."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError("data-parallel training needs mpi4py: pip install 'fastbp[mpi]'") from e
    if not isinstance(comm, MPI.Intracomm):
        raise TypeError(
            "comm must be an mpi4py intracommunicator such as MPI.COMM_WORLD, "
            f"got {type(comm).__name__}"
        )
    return MPI


def rank(comm: MPI.Intracomm) -> int:
    """This process's rank in ``comm``, checked to be an mpi4py intracommunicator."""
    _mpi(comm)
    return comm.Get_rank()


def broadcast_parameters(
    net, comm: MPI.Intracomm, root: int = 0, optimizer: Optimizer | None = None
) -> None:
    """Give every rank the parameters, running statistics (BatchNorm's) and optimizer
    state of rank ``root``.

    Parameters
    ----------
    net : Network
        The same layers and dtype on every rank; ``net.params`` and the running
        statistics are overwritten in place.
    comm : mpi4py.MPI.Intracomm
        E.g. ``MPI.COMM_WORLD``; every rank calls this with the same ``root``.
    root : int
        The rank whose values the others receive, in ``[0, comm.size)``.
    optimizer : Optimizer, optional
        Also broadcast its state for ``net``: every state array (momentum buffer,
        moment estimates, ...) and the step count.
    """
    _mpi(comm)
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)):
        raise TypeError(f"root must be an int, got {type(root).__name__}")
    if not 0 <= root < comm.Get_size():
        raise ValueError(f"root must be a rank in [0, {comm.Get_size()}), got {root}")
    if optimizer is not None:
        _validate.instance(
            "optimizer", optimizer, Optimizer, "a fastbp optimizer (SGD, Adam, ...) or None"
        )
    comm.Bcast(net.params, root=root)  # read first: it brings a GPU's state to the host too
    core = net.internals.core
    if core.n_state:
        comm.Bcast(core.state, root=root)
    if optimizer is not None:
        state = optimizer.state_for(net)
        for array in state.arrays:
            comm.Bcast(array, root=root)
        state.steps = comm.bcast(state.steps, root=root)


def allreduce_gradients(net, comm: MPI.Intracomm, weight: float | None = None) -> None:
    """Replace every rank's ``net.grads`` by the sum over ranks of ``weight`` times them.

    One in-place ``Allreduce`` of the flat gradient buffer, no copy. The sum is the same
    on every rank, so the following ``optimizer.step(net)`` applies the same update
    everywhere. A gradient that is NaN or inf on one rank makes the sum NaN or inf on all,
    and ``optimizer.step`` refuses it on all; a non-finite loss with finite gradients is
    refused only on its own rank (``optimizer.step`` checks the loss of the rank's last
    ``backward``), so a loop that must stop on every rank reduces the loss too.

    Parameters
    ----------
    net : Network
        Its gradients as ``net.backward`` left them.
    comm : mpi4py.MPI.Intracomm
        Every rank calls this.
    weight : float, optional
        This rank's factor, >= 0. By default ``1 / comm.size``: the mean of the ranks'
        gradients, the gradient of the whole batch when every rank's batch has the same
        number of rows and the loss reduction is ``"mean"``. For batches of different
        sizes, ``rows / total rows`` under ``"mean"`` and 1 under ``"sum"``. A weight of 0
        contributes nothing: the rank's gradients are zeroed first, whatever they held, so
        a rank without a batch still takes part.
    """
    MPI = _mpi(comm)
    weight = 1.0 / comm.Get_size() if weight is None else _validate.real("weight", weight)
    grads = net.grads
    if weight == 0:
        grads.fill(0)  # not a product: 0 * inf is NaN
    elif weight != 1:
        grads *= weight
    comm.Allreduce(MPI.IN_PLACE, grads, op=MPI.SUM)


def average_running_statistics(net, comm: MPI.Intracomm) -> None:
    """Replace every rank's running statistics (BatchNorm's ``running_mean`` and
    ``running_var``, every layer's at once) by their mean over the ranks, in place.

    Training normalises with each batch's own statistics, so the ranks' running
    statistics drift apart while their parameters stay equal; this makes them agree
    before inference reads them. Nothing to do, and no message sent, for a network
    without them (the same on every rank: its layers are).
    """
    MPI = _mpi(comm)
    if not net.internals.core.n_state:
        return
    net.internals.host_parameters()
    state = net.internals.core.state
    comm.Allreduce(MPI.IN_PLACE, state, op=MPI.SUM)
    state /= comm.Get_size()


def agree(comm: MPI.Intracomm, checks: Callable[[], Result]) -> Result:
    """Run ``checks`` on every rank and return its result once no rank has failed.

    When it raises on any rank, every rank raises the exception of the lowest rank that
    failed (on that rank chained to the original), so no rank is left waiting in a
    collective the failed one will never reach. The exception keeps its type, message and
    attributes where a pickle round trip, tried on the failing rank, rebuilds it; the
    message then starts with ``"rank 1 of 2: "`` when the message is its one argument,
    else a note names the rank. One that cannot be rebuilt (a class defined inside a
    function, a constructor pickle cannot call) arrives as a ``RuntimeError`` naming the
    rank, the original type and its message.
    """
    _mpi(comm)
    try:
        result, failure = checks(), None
    except Exception as e:  # noqa: BLE001 - every kind must reach the other ranks
        result, failure = None, e
    reports = comm.allgather(None if failure is None else _report(failure))
    for failed, report in enumerate(reports):
        if report is not None:
            raise _rebuilt(report, f"rank {failed} of {len(reports)}") from failure
    return result


def _message(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder when its ``__str__`` itself fails."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - the report must always be sent
        return f"<{type(exc).__name__} whose message cannot be read>"


def _report(exc: Exception) -> tuple[bytes | None, str, str]:
    """What another rank needs to raise ``exc``: its pickle, when the round trip gives
    the same type and message here (else None), and always its type's name and message,
    so that a rank that cannot load the pickle still has both."""
    kind, message = type(exc), _message(exc)
    try:
        data = pickle.dumps(exc)
        copy = pickle.loads(data)
        if type(copy) is not kind or _message(copy) != message:
            data = None
    except Exception:  # noqa: BLE001 - whatever pickling raises, fall back to the text
        data = None
    return data, f"{kind.__module__}.{kind.__qualname__}", message


def _rebuilt(report: tuple[bytes | None, str, str], where: str) -> Exception:
    """The exception a :func:`_report` describes, naming ``where`` it was raised."""
    data, name, message = report
    try:
        exc = pickle.loads(data) if data is not None else None
    except Exception:  # noqa: BLE001 - a class this rank cannot import, say
        exc = None
    if exc is None:
        return RuntimeError(f"{where}: {name}: {message}")
    if len(exc.args) == 1 and isinstance(exc.args[0], str) and exc.args[0] == message:
        exc.args = (f"{where}: {message}",)
    else:  # the message is not its one argument (OSError's): Python 3.11+ prints notes
        exc.__notes__ = [*getattr(exc, "__notes__", ()), f"raised on {where}"]
    return exc


def _divergence(step: int, reason: str) -> FloatingPointError:
    """A diverged step as the network core reports one (``step``: steps applied before)."""
    error = FloatingPointError(reason)
    error.step, error.reason = step, reason
    return error


def _gradient_reason(net, loss: float) -> str:
    """Which gradient is not finite, worded as the core words it but with the loss of
    the global batch, so that every rank reports the same."""
    core = net.internals.core
    bad = int(np.flatnonzero(~np.isfinite(core.grads))[0])
    return core.divergence_reason(loss, bad)


class DataParallel:
    """One rank's part in data-parallel :meth:`fastbp.Network.fit`.

    Construction is collective: it checks that ``settings`` are the same on every rank,
    lays out the epoch's global steps (as many as the largest shard needs), derives the
    shuffling seed from rank 0's network, and broadcasts rank 0's parameters and
    optimizer state.

    Parameters
    ----------
    net : Network
    comm : mpi4py.MPI.Intracomm
    optimizer : Optimizer
        Its state for ``net`` is broadcast from rank 0.
    rows, batch_size, val_rows : int
        This rank's training rows, rows per batch and validation rows.
    shuffle : bool
        Permute this rank's rows every epoch.
    settings : dict
        What must be the same on every rank (name -> value), compared with rank 0's.
    """

    def __init__(
        self,
        net,
        comm: MPI.Intracomm,
        optimizer: Optimizer,
        *,
        rows: int,
        batch_size: int,
        val_rows: int,
        shuffle: bool,
        settings: dict,
    ):
        self._MPI = _mpi(comm)
        self.net, self.comm, self.rank = net, comm, comm.Get_rank()
        self.rows, self.batch_size, self.shuffle = rows, batch_size, shuffle
        everyone = comm.allgather((settings, rows, batch_size, val_rows))
        for other, (theirs, *_) in enumerate(everyone[1:], start=1):
            for name, value in everyone[0][0].items():
                if theirs[name] != value:
                    raise ValueError(
                        f"fit(comm=...) needs the same {name} on every rank: "
                        f"rank 0 has {value}, rank {other} has {theirs[name]}"
                    )
        shard_rows = np.array([e[1] for e in everyone], dtype=np.int64)
        batches = np.array([e[2] for e in everyone], dtype=np.int64)
        #: global steps per epoch
        self.steps = int(max(-(-shard_rows // batches)))
        starts = np.arange(self.steps, dtype=np.int64)[None, :] * batches[:, None]
        taken = np.clip(shard_rows[:, None] - starts, 0, batches[:, None])  # ranks x steps
        #: rows of this rank's batch and of the global batch, at each step
        self.step_rows, self.global_rows = taken[self.rank], taken.sum(axis=0)
        mean = net.loss_fn.reduction == "mean"
        # The global batch's loss and gradient are these weighted sums of the ranks':
        # each rank's mean counts by its share of the rows, each rank's sum counts once.
        self.weights = (
            self.step_rows / self.global_rows if mean else (self.step_rows > 0).astype(np.float64)
        )
        self.total_rows = int(shard_rows.sum())
        total_val = sum(e[3] for e in everyone)
        self._shares = {
            "train": rows / self.total_rows,
            "val": val_rows / total_val if total_val else 0.0,
        }
        self._val_loss_weight = self._shares["val"] if mean else 1.0
        self._loss = np.zeros(1)
        seed = comm.bcast(int(net.internals.rng.integers(2**63)), root=0)
        self._rng = np.random.default_rng([seed, self.rank])
        broadcast_parameters(net, comm, optimizer=optimizer)

    def train_epoch(
        self, x, t, optimizer: Optimizer, state, step: Callable[..., None], epoch: int, bar=None
    ) -> float:
        """Train one epoch of global steps on this rank's rows ``x``, ``t``.

        Each step: backward on this rank's batch (none once its rows are used up), one
        in-place allreduce of the weighted gradients and one of the weighted loss, the
        divergence verdict on those sums (so every rank reaches the same), then
        ``step(*optimizer.core_args(state))``, the network core's update. After the last
        step (or the diverged one), the running statistics are averaged over the ranks.

        Returns
        -------
        float
            The epoch's mean loss over all ranks' rows, the same on every rank.

        Raises
        ------
        FloatingPointError
            With ``step`` (the epoch's steps applied before it) and ``reason``, on every
            rank alike, when the global batch's loss or gradient is NaN or inf; that step
            is not applied.
        """
        try:
            mean = self._steps(x, t, optimizer, state, step, epoch, bar)
        except FloatingPointError:  # raised at the same step on every rank
            average_running_statistics(self.net, self.comm)
            raise
        # Once per epoch, not per step: no step reads the running statistics (training
        # normalises with the batch's own), and their update is linear in each batch's
        # statistics, so while every rank has a batch at every step this mean is, up to
        # rounding, the one averaging after every step would give.
        average_running_statistics(self.net, self.comm)
        return mean

    def _steps(
        self, x, t, optimizer: Optimizer, state, step: Callable[..., None], epoch: int, bar
    ) -> float:
        """:meth:`train_epoch`'s steps, without the running statistics' agreement."""
        MPI, core, net = self._MPI, self.net.internals.core, self.net
        order = self._rng.permutation(self.rows) if self.shuffle else None
        per_bar = -(-self.steps // BAR_UPDATES_PER_EPOCH)
        loss_sum, seen = 0.0, 0
        for k in range(self.steps):
            m, weight = int(self.step_rows[k]), float(self.weights[k])
            self._loss[0] = 0.0
            if m:
                start = k * self.batch_size
                rows = slice(start, start + m) if order is None else order[start : start + m]
                self._loss[0] = weight * core.backward(x[rows], t[rows])
            allreduce_gradients(net, self.comm, weight)
            self.comm.Allreduce(MPI.IN_PLACE, self._loss, op=MPI.SUM)
            loss = float(self._loss[0])
            if not math.isfinite(loss):
                raise _divergence(k, f"the loss is {loss:g}")
            try:
                step(*optimizer.core_args(state))
            except FloatingPointError:
                raise _divergence(k, _gradient_reason(net, loss)) from None
            state.steps += 1
            loss_sum += float(self.global_rows[k]) * loss
            seen += int(self.global_rows[k])
            if bar is not None and ((k + 1) % per_bar == 0 or k + 1 == self.steps):
                bar.advance(epoch, (k % per_bar) + 1, loss_sum / seen)
        return loss_sum / self.total_rows

    def combine(self, logs: dict) -> dict:
        """This rank's validation loss and metrics (each over its own rows) as the values
        over all ranks' rows, the same on every rank."""
        if not logs:
            return logs
        weights = [
            self._val_loss_weight
            if name == "val_loss"
            else self._shares["val" if name.startswith("val_") else "train"]
            for name in logs
        ]
        totals = np.array([w * v for w, v in zip(weights, logs.values())])
        self.comm.Allreduce(self._MPI.IN_PLACE, totals, op=self._MPI.SUM)
        return dict(zip(logs, map(float, totals)))

    def lead_rate(self, optimizer: Optimizer) -> None:
        """Give ``optimizer`` rank 0's learning rate on every rank: a callback that
        changed it on rank 0 alone sets it everywhere, one that changed it on another
        rank alone is overridden."""
        lr = self.comm.bcast(optimizer.lr, root=0)
        if optimizer.lr != lr:
            optimizer.lr = lr

    def slowest(self, seconds: float) -> float:
        """The longest of the ranks' ``seconds``, the same on every rank."""
        return self.comm.allreduce(seconds, op=self._MPI.MAX)

    def anyone(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank, the same on every rank."""
        return bool(self.comm.allreduce(bool(flag), op=self._MPI.LOR))
