"""Callbacks for :meth:`fastbp.Network.fit`: checkpoints, a CSV log and learning-rate
reduction on a plateau (Keras's), and what fit runs itself: early stopping with the best
weights kept (after each epoch), and a progress bar (also within an epoch).

A callback is any callable ``callback(epoch, logs)``; ``epoch`` counts from 0, the
epoch's index in :class:`fastbp.History`'s lists (messages and the progress bar count
from 1: see :mod:`fastbp.training.history`), and ``logs`` holds that epoch's values (``loss``,
``val_loss``, ``accuracy``, ``lr``, ``epoch_time``, ...). Returning ``False`` stops
training after that epoch. A :class:`Callback` is also asked whether it can work with a
fit (with the network, the optimizer and the keys the logs will have) among fit's own
checks, then told when fit starts and when it ends.
"""

from __future__ import annotations

import csv
import math
import os
import sys
from collections.abc import Sequence

from .. import _validate
from ..io import npz
from .metrics import METRICS

__all__ = [
    "Callback",
    "ModelCheckpoint",
    "CSVLogger",
    "ReduceLROnPlateau",
    "EarlyStopping",
    "ProgressBar",
    "load_tqdm",
    "progress_default",
]

# With a progress bar, fit moves it this many times per epoch at most: an epoch runs as
# that many core calls, so the bar moves within the epoch while the calls stay few (one
# slice is about 1/20 of the epoch).
BAR_UPDATES_PER_EPOCH = 20

MODES = ("auto", "min", "max")


class Callback:
    """Base of the callbacks that need more than ``(epoch, logs)``. ``fit`` calls
    :meth:`check` with its own checks of its arguments, :meth:`on_fit_start` once every
    check has passed, the callback itself after each epoch, and :meth:`on_fit_end` when
    it ends, however it ends (the last epoch, a stop, an error or a KeyboardInterrupt)."""

    def check(self, net, optimizer, keys: Sequence[str]) -> None:
        """``net`` and ``optimizer`` are fit's; ``keys`` are those of every epoch's logs.
        Raises when the callback cannot work with them; changes nothing, since the fit
        may yet be refused: a refusal here comes before any callback has started (so a
        :class:`CSVLogger`'s file is still untouched)."""

    def on_fit_start(self, net, optimizer, keys: Sequence[str]) -> None:
        """``net`` and ``optimizer`` are fit's; ``keys`` are those of every epoch's logs.
        Called once every check of the fit has passed, just before the first epoch."""

    def __call__(self, epoch: int, logs: dict) -> bool | None:
        raise NotImplementedError

    def on_fit_end(self) -> None:
        """After the last epoch fit ran (or after it failed)."""


class _Monitor(Callback):
    """A callback watching ``logs[monitor]``: Keras's ``mode`` (``"auto"``: higher is better
    for the metrics, such as ``"val_accuracy"``, lower for the rest) and improvement by
    more than ``min_delta``; the best value persists across fits."""

    def __init__(self, monitor: str, mode: str, min_delta: float):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a logs key (str), got {type(monitor).__name__}")
        _validate.choice("mode", mode, MODES)
        self.monitor, self.mode = monitor, mode
        self.min_delta = _validate.real("min_delta", min_delta)
        name = monitor[4:] if monitor.startswith("val_") else monitor
        self._higher = mode == "max" or (mode == "auto" and name in METRICS)
        self.best = -math.inf if self._higher else math.inf

    def check(self, net, optimizer, keys: Sequence[str]) -> None:
        if self.monitor not in keys:
            raise ValueError(
                f"{type(self).__name__} monitors {self.monitor!r}, which fit "
                f"does not log here; it logs {list(keys)}"
            )

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats the best so far (NaN never does)."""
        if self._higher:
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta


class ModelCheckpoint(_Monitor):
    """Saves the network with :meth:`fastbp.Network.save` (atomic: a crash leaves the last
    checkpoint whole) after an epoch whose ``logs[monitor]`` improved on the best so far,
    or after every epoch. Keras's ``ModelCheckpoint``, whole networks only.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file written, each checkpoint replacing the last (``.npz`` appended
        when missing, as :meth:`fastbp.Network.save` does; ``self.path`` is the name
        written). A symbolic link there stays: the file it points to is replaced.
    monitor : str
        The logs key compared.
    save_best_only : bool
        Save only when ``monitor`` improved (the first epoch always does); else every epoch.
    mode : {"auto", "min", "max"}
        Whether lower or higher is better; ``"auto"``: higher for metrics such as
        ``"val_accuracy"``, lower for losses.

    Attributes
    ----------
    best : float
        The best value seen (it carries over to a later fit).
    best_epoch : int or None
        The History index (from 0) of the epoch saved last, in the last fit that
        improved.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        monitor: str = "val_loss",
        save_best_only: bool = True,
        mode: str = "auto",
    ):
        self.path = npz.npz_path(path)
        if not isinstance(save_best_only, bool):
            raise TypeError(f"save_best_only must be a bool, got {type(save_best_only).__name__}")
        super().__init__(monitor, mode, 0.0)
        self.save_best_only = save_best_only
        self.best_epoch = None
        self._net = None

    def check(self, net, optimizer, keys: Sequence[str]) -> None:
        if self.save_best_only:
            super().check(net, optimizer, keys)

    def on_fit_start(self, net, optimizer, keys: Sequence[str]) -> None:
        self._net = net

    def __call__(self, epoch: int, logs: dict) -> None:
        if self.save_best_only:
            if not self.improved(logs[self.monitor]):
                return
            self.best = logs[self.monitor]
        self._net.save(self.path)
        self.best_epoch = epoch

    def on_fit_end(self) -> None:
        self._net = None  # the checkpoint keeps no network alive after fit


class CSVLogger(Callback):
    """Writes one row per epoch to a CSV file: the header (``epoch`` and the logs' keys)
    when fit starts, then each epoch's ``epoch`` (its History index, from 0, as Keras
    writes it) and logs, flushed at once, so the file is complete up to the last epoch
    even if training is interrupted. Keras's ``CSVLogger``.

    Parameters
    ----------
    path : str or os.PathLike
    separator : str
        One character between the fields.
    append : bool
        Add to an existing file (without a second header when it is not empty) instead of
        replacing it. A file whose header (read with ``separator``) is not the one this
        fit would write is refused (ValueError) before training starts: its rows would
        fall under the wrong columns.
    """

    def __init__(self, path: str | os.PathLike, separator: str = ",", append: bool = False):
        self.path = os.fspath(path)
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator must be one character, got {separator!r}")
        if not isinstance(append, bool):
            raise TypeError(f"append must be a bool, got {type(append).__name__}")
        self.separator, self.append = separator, append
        self._file = self._writer = None

    def check(self, net, optimizer, keys: Sequence[str]) -> None:
        if not self.append:
            return
        expected, found = ["epoch", *keys], self._header()
        if found is not None and found != expected:
            raise ValueError(
                f"CSVLogger(append=True) cannot add to {self.path!r}: its header "
                f"is {found} (read with separator {self.separator!r}), while "
                f"this fit logs {expected}"
            )

    def _header(self) -> list | None:
        """The fields of the file's first line, or None when there is no file or it is
        empty."""
        try:
            with open(self.path, newline="", encoding="utf-8") as f:
                return next(csv.reader(f, delimiter=self.separator), None)
        except FileNotFoundError:
            return None
        except (UnicodeDecodeError, csv.Error) as e:
            raise ValueError(
                f"CSVLogger(append=True) cannot read the header of {self.path!r}: {e}"
            ) from None

    def on_fit_start(self, net, optimizer, keys: Sequence[str]) -> None:
        header = not (self.append and os.path.isfile(self.path) and os.path.getsize(self.path) > 0)
        self._file = open(self.path, "a" if self.append else "w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(
            self._file, ["epoch", *keys], delimiter=self.separator, extrasaction="ignore"
        )
        if header:
            self._writer.writeheader()
            self._file.flush()

    def __call__(self, epoch: int, logs: dict) -> None:
        self._writer.writerow({"epoch": epoch, **logs})
        self._file.flush()

    def on_fit_end(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = self._writer = None


class ReduceLROnPlateau(_Monitor):
    """Multiplies the optimizer's ``lr`` by ``factor`` (not below ``min_lr``) once
    ``logs[monitor]`` has not improved by more than ``min_delta`` for ``patience`` epochs
    in a row, then waits ``cooldown`` epochs before counting again: Keras's
    ``ReduceLROnPlateau`` (PyTorch's reduces one epoch later, after ``patience + 1``
    epochs without improvement, and measures improvement relative to the best).

    The new rate holds for the rest of the fit (see :meth:`fastbp.Network.fit` for how it
    combines with ``lr_schedule``); fit sets ``optimizer.lr`` back to its value from
    before the fit when it ends.

    Parameters
    ----------
    monitor : str
        The logs key watched.
    factor : float
        In (0, 1).
    patience : int
        >= 1.
    min_lr : float
        >= 0, the lowest rate it sets.
    mode : {"auto", "min", "max"}
        As for :class:`ModelCheckpoint`.
    min_delta : float
        >= 0, the least change that counts as an improvement.
    cooldown : int
        >= 0 epochs after a reduction before epochs without improvement count again.

    Attributes
    ----------
    reductions : list of tuple
        ``(epoch, new_lr)`` of each reduction (History indices, from 0, of their fit).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        min_lr: float = 0.0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
    ):
        super().__init__(monitor, mode, min_delta)
        self.factor = _validate.real("factor", factor, strict=True)
        if self.factor >= 1:
            raise ValueError(f"factor must be in (0, 1), got {self.factor}")
        self.patience = _validate.positive_int("patience", patience)
        self.min_lr = _validate.real("min_lr", min_lr)
        if isinstance(cooldown, bool) or not isinstance(cooldown, int) or cooldown < 0:
            raise ValueError(f"cooldown must be an int >= 0, got {cooldown!r}")
        self.cooldown = cooldown
        self.reductions: list = []
        self._optimizer = None
        self._wait = self._cooling = 0

    def on_fit_start(self, net, optimizer, keys: Sequence[str]) -> None:
        self._optimizer = optimizer
        self._wait = self._cooling = 0

    def __call__(self, epoch: int, logs: dict) -> None:
        if self._cooling > 0:
            self._cooling -= 1
            self._wait = 0
        if self.improved(logs[self.monitor]):
            self.best, self._wait = logs[self.monitor], 0
            return
        if self._cooling > 0:
            return
        self._wait += 1
        lr = self._optimizer.lr
        if self._wait >= self.patience and lr > self.min_lr:
            self._optimizer.lr = new = max(lr * self.factor, self.min_lr)
            self.reductions.append((epoch, new))
            self._cooling, self._wait = self.cooldown, 0

    def on_fit_end(self) -> None:
        self._optimizer = None


class EarlyStopping:
    """Stops when ``logs[monitor]`` has not improved by more than ``min_delta`` for
    ``patience`` epochs, keeping a copy of the best epoch's weights.

    Parameters
    ----------
    net : Network
        The network being trained; :meth:`restore_best` writes its best weights back.
    patience : int
        Epochs without improvement before stopping, >= 1.
    min_delta : float
        The least decrease that counts as an improvement, >= 0.
    monitor : str
        The logs key to minimise.
    """

    def __init__(self, net, patience: int = 10, min_delta: float = 0.0, monitor: str = "val_loss"):
        self.net = net
        self.patience = _validate.positive_int("patience", patience)
        self.min_delta = _validate.real("min_delta", min_delta)
        self.monitor = monitor
        self.best, self.best_epoch, self.best_params = math.inf, -1, None

    def __call__(self, epoch: int, logs: dict) -> bool:
        value = logs[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch = value, epoch
            self.net.internals.host_parameters()
            core = self.net.internals.core
            self.best_params = (core.params.copy(), core.state.copy())
        return epoch - self.best_epoch < self.patience

    def restore_best(self) -> None:
        """Put the best epoch's weights and running statistics back into the network (if
        any epoch was seen)."""
        if self.best_params is not None:
            self.net.internals.host_parameters()
            core = self.net.internals.core
            core.params[...], core.state[...] = self.best_params


def progress_default() -> bool:
    """Whether ``fit`` shows a progress bar when not told: when stderr is a terminal and
    tqdm is installed."""
    if not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def load_tqdm():
    """tqdm's ``tqdm.auto.tqdm``, or an ImportError saying how to install it."""
    try:
        from tqdm.auto import tqdm
    except ImportError as e:
        raise ImportError("progress=True needs tqdm: pip install 'fastbp[progress]'") from e
    return tqdm


class ProgressBar:
    """One tqdm bar over all the batches of a ``fit`` run: the description names the
    epoch, the postfix shows the epoch's running mean training loss and the last
    finished epoch's other logs (validation loss, metrics, learning rate).

    Parameters
    ----------
    epochs : int
        Epochs of the run.
    batches : int
        Batches per epoch; the bar's total is ``epochs * batches``.
    """

    def __init__(self, epochs: int, batches: int):
        tqdm = load_tqdm()
        self.epochs = epochs
        self.postfix: dict = {}
        self.bar = tqdm(total=epochs * batches, desc=f"epoch 1/{epochs}", unit="batch", leave=True)

    def advance(self, epoch: int, batches: int, loss: float) -> None:
        """``batches`` more batches of ``epoch`` (from 0) are done; ``loss`` is the
        epoch's mean training loss so far."""
        self.bar.set_description(f"epoch {epoch + 1}/{self.epochs}", refresh=False)
        self.postfix["loss"] = f"{loss:.4g}"
        self.bar.set_postfix(self.postfix, refresh=False)
        self.bar.update(batches)

    def __call__(self, epoch: int, logs: dict) -> None:
        """After ``epoch``: show its logs until the next epoch's batches replace the loss."""
        self.postfix = {k: f"{v:.4g}" for k, v in logs.items() if k != "epoch_time"}
        self.bar.set_postfix(self.postfix, refresh=False)

    def close(self) -> None:
        self.bar.close()
