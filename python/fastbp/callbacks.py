"""What :meth:`fastbp.Network.fit` runs besides user callbacks: early stopping with the
best weights kept (after each epoch), and a progress bar (also within an epoch).

A callback is any callable ``callback(epoch, logs)``; ``epoch`` counts from 0 and
``logs`` holds that epoch's values (``loss``, ``val_loss``, ``accuracy``, ``lr``,
``epoch_time``, ...). Returning ``False`` stops training after that epoch.
"""

from __future__ import annotations

import math
import sys

from . import _validate

__all__ = ["EarlyStopping", "ProgressBar", "load_tqdm", "progress_default"]

# With a progress bar, fit moves it this many times per epoch at most: an epoch runs as
# that many core calls, so the bar moves within the epoch while the calls stay few (one
# slice is about 1/20 of the epoch).
BAR_UPDATES_PER_EPOCH = 20


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

    def __init__(self, net, patience: int = 10, min_delta: float = 0.0,
                 monitor: str = "val_loss"):
        self.net = net
        self.patience = _validate.positive_int("patience", patience)
        self.min_delta = _validate.real("min_delta", min_delta)
        self.monitor = monitor
        self.best, self.best_epoch, self.best_params = math.inf, -1, None

    def __call__(self, epoch: int, logs: dict) -> bool:
        value = logs[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch = value, epoch
            self.net._host_parameters()
            self.best_params = self.net._core.params.copy()
        return epoch - self.best_epoch < self.patience

    def restore_best(self) -> None:
        """Put the best epoch's weights back into the network (if any epoch was seen)."""
        if self.best_params is not None:
            self.net._host_parameters()
            self.net._core.params[...] = self.best_params


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
        self.bar = tqdm(total=epochs * batches, desc=f"epoch 1/{epochs}", unit="batch",
                        leave=True)

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
