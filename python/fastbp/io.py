"""Saving and loading networks: a .npz file holding a JSON header and the flat
parameters. Loading never unpickles (``allow_pickle=False``).

This module sits below :mod:`fastbp.network`: what builds a network takes the network
class as an argument (``Network.load`` passes itself)."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from typing import BinaryIO

import numpy as np

from .layers import LAYER_TYPES
from .losses import LOSS_TYPES

__all__ = ["save", "load", "network_config", "from_config", "atomic_write"]

FORMAT = "fastbp-network"
VERSION = 1


def network_config(net) -> dict:
    """Everything but the parameters needed to rebuild ``net``."""
    return {"format": FORMAT, "version": VERSION, "dtype": str(net.dtype),
            "backend": net.backend, "layers": [layer.config() for layer in net.layers],
            "loss": net.loss_fn.config()}


def from_config(network_cls: type, config: dict, params: np.ndarray,
                backend: str | None = None, dtype=None):
    """A ``network_cls`` (:class:`fastbp.Network`) built from ``config`` with its flat
    parameters set to ``params``."""
    layers = []
    for spec in config["layers"]:
        spec = dict(spec)
        layers.append(LAYER_TYPES[spec.pop("type")](**spec))
    loss_spec = dict(config["loss"])
    loss = LOSS_TYPES[loss_spec.pop("type")](**loss_spec)
    net = network_cls(layers, loss, dtype=dtype or config["dtype"],
                      backend=backend or config["backend"])
    if params.shape != (net.n_params,):
        raise ValueError(f"the file holds {params.size} parameters but its layers need "
                         f"{net.n_params}")
    net._core.params[...] = params
    return net


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` atomically: ``write(f)`` fills a temporary binary file in the same
    folder, which is flushed to disk and renamed, so an interrupted write leaves any old
    file intact."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastbp-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(net, path) -> None:
    """Write ``net`` to ``path`` atomically (see :func:`atomic_write`)."""
    header = np.array(json.dumps(network_config(net)))
    atomic_write(path, lambda f: np.savez(f, header=header, params=net._core.params))


def load(path, network_cls: type, backend: str | None = None):
    """Rebuild the network saved at ``path``, as a ``network_cls``.

    Raises FileNotFoundError when there is no such file and ValueError when the file
    is not a complete fastbp network file of a supported version.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no fastbp network file at {path!r}")
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            params = np.array(data["params"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile,
            EOFError) as e:
        raise ValueError(f"{path!r} is not a readable fastbp network file: {e}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a fastbp network file")
    if header.get("version") != VERSION:
        raise ValueError(f"{path!r} has format version {header.get('version')!r}; this "
                         f"fastbp reads version {VERSION}")
    if header.get("dtype") not in ("float32", "float64"):
        raise ValueError(f"{path!r} has parameter dtype {header.get('dtype')!r}; fastbp "
                         "networks are float32 or float64")
    if params.ndim != 1 or params.dtype != np.dtype(header["dtype"]):
        raise ValueError(f"{path!r} holds parameters of dtype {params.dtype} and shape "
                         f"{params.shape}, expected a flat {header['dtype']} array")
    if not np.isfinite(params).all():
        raise ValueError(f"{path!r} holds NaN or inf parameters")
    try:
        return from_config(network_cls, header, params, backend=backend)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path!r} has a malformed header: {e}") from None
