"""Networks in files and other formats: save and load as .npz (:mod:`~fastbp.io.npz`,
which reads a file through the size checks of ``_archive``), ONNX export
(:mod:`~fastbp.io.onnx_export`) and PyTorch interop (:mod:`~fastbp.io.interop`). All sit
below :mod:`fastbp.network`: what builds a network takes the network class as an
argument."""

from __future__ import annotations

from . import npz
from .npz import *  # noqa: F403  (save, load, values, ...: npz.__all__)

__all__ = npz.__all__
