"""``History``: what :meth:`fastbp.Network.fit` observed, epoch by epoch.

How fastbp counts epochs: a message counts them from 1, as the progress bar does
("epoch 3/10"); every epoch number handed to code counts from 0, as the index of that
epoch's entries in History's lists (``history.loss[2]`` is the third epoch's loss):
``History.best_epoch`` and ``stopped_epoch``, the ``epoch`` a callback or a schedule is
called with, CSVLogger's ``epoch`` column, ``ModelCheckpoint.best_epoch`` and
``ReduceLROnPlateau.reductions``. A message naming an epoch gives both, through
:func:`epoch_name`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

__all__ = ["History", "epoch_name"]


def epoch_name(index: int) -> str:
    """How a message names the epoch at History index ``index`` (from 0):
    ``"epoch 3 (History index 2)"``."""
    return f"epoch {index + 1} (History index {index})"


@dataclass
class History:
    """Per-epoch records of :meth:`fastbp.Network.fit`, one entry per epoch trained: the
    epoch at index ``i`` of each list is the one messages call epoch ``i + 1``.

    Attributes
    ----------
    loss : list of float
        Sample-weighted mean training loss of each epoch (of the batches, each before its
        update).
    val_loss : list of float
        Validation loss after each epoch; empty without validation data.
    accuracy, val_accuracy : list of float
        Classification accuracy on the training and validation data after each epoch;
        filled with ``metrics=["accuracy"]``.
    lr : list of float
        The optimizer's learning rate during each epoch.
    epoch_time : list of float
        Wall-clock seconds of each epoch, evaluation included.
    stopped_epoch : int or None
        The History index (from 0) of the epoch after which a callback or early stopping
        ended training.
    best_epoch : int or None
        With ``early_stopping``: the History index (from 0) of the epoch whose weights
        the network holds at the end.
    """

    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    epoch_time: list = field(default_factory=list)
    stopped_epoch: int | None = None
    best_epoch: int | None = None

    def append(self, logs: dict) -> None:
        """Record one epoch's ``logs`` (keys named as the list attributes)."""
        for name, value in logs.items():
            getattr(self, name).append(value)

    @property
    def epochs(self) -> int:
        """The number of epochs recorded."""
        return len(self.loss)

    def to_dict(self) -> dict:
        """The non-empty per-epoch lists and the stop markers, as plain Python values."""
        out = {
            f.name: list(getattr(self, f.name))
            for f in fields(self)
            if isinstance(getattr(self, f.name), list) and getattr(self, f.name)
        }
        out.update(stopped_epoch=self.stopped_epoch, best_epoch=self.best_epoch)
        return out

    def plot(self, path=None, validation_label: str = "val"):
        """Draw the loss curves (and accuracy, when recorded) against the epoch (from 1).

        Parameters
        ----------
        path : str or os.PathLike, optional
            Where to save the figure (format from the extension, e.g. ``.png``).
        validation_label : str
            What the validation curves are called: ``"val"`` labels them ``val_loss``
            and ``val_accuracy``; ``"test"``, for validation data that is a test set,
            ``test_loss`` and ``test_accuracy``.

        Returns
        -------
        matplotlib.figure.Figure
            The figure; needs matplotlib (``pip install fastbp[plot]``).
        """
        if not isinstance(validation_label, str):
            raise TypeError(
                f"validation_label must be a str, got {type(validation_label).__name__}"
            )
        try:
            from matplotlib.figure import Figure
        except ImportError as e:
            raise ImportError("History.plot needs matplotlib: pip install 'fastbp[plot]'") from e
        panels = [("loss", ("loss", "val_loss"))]
        if self.accuracy or self.val_accuracy:
            panels.append(("accuracy", ("accuracy", "val_accuracy")))
        fig = Figure(figsize=(5.5 * len(panels), 4), layout="constrained")
        for ax, (label, names) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
            for name in names:
                values = getattr(self, name)
                if values:
                    curve = validation_label + name[3:] if name.startswith("val_") else name
                    ax.plot(range(1, len(values) + 1), values, label=curve)
            if self.best_epoch is not None:
                ax.axvline(self.best_epoch + 1, color="grey", linestyle=":", label="best")
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend()
        if path is not None:
            fig.savefig(path, dpi=100)
        return fig
