"""What :meth:`fastbp.Network.fit` runs after each epoch, besides user callbacks: early
stopping with the best weights kept, and a progress bar.

A callback is any callable ``callback(epoch, logs)``; ``epoch`` counts from 0 and
``logs`` holds that epoch's values (``loss``, ``val_loss``, ``accuracy``, ``lr``,
``epoch_time``, ...). Returning ``False`` stops training after that epoch.
"""

from __future__ import annotations

import math
import sys

from . import _validate

__all__ = ["EarlyStopping", "ProgressBar", "progress_default"]


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


class ProgressBar:
    """A tqdm bar over the epochs, showing the latest losses and metrics.

    Parameters
    ----------
    epochs : int
        The bar's total.
    """

    def __init__(self, epochs: int):
        try:
            from tqdm.auto import tqdm
        except ImportError as e:
            raise ImportError("progress=True needs tqdm: pip install 'fastbp[progress]'") from e
        self.bar = tqdm(total=epochs, unit="epoch", leave=True)

    def __call__(self, epoch: int, logs: dict) -> None:
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k != "epoch_time"},
                             refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
