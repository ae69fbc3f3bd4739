"""Saving and loading networks: a .npz file holding a JSON header and the flat
parameters. Loading never unpickles, and checks every size the file claims before it
allocates anything of that size (see :mod:`fastbp.io._archive`).

This module sits below :mod:`fastbp.network`: what builds a network takes the network
class as an argument (``Network.load`` passes itself)."""

from __future__ import annotations

import errno
import json
import os
import re
import reprlib
import secrets
import stat
from collections.abc import Callable
from typing import BinaryIO

import numpy as np

from .. import _sigint, _validate
from ..nn.layers import LAYER_TYPES
from ..nn.losses import LOSS_TYPES, Loss
from . import _archive

__all__ = ["save", "load", "network_config", "values", "from_config", "atomic_write"]

FORMAT = "fastbp-network"
VERSION = 1
#: The deepest nesting of JSON arrays and objects a header may have; a network's is 3.
MAX_HEADER_DEPTH = 32
# A string runs to its closing quote or, unterminated, to the end: every quote then starts
# a match, so the scan is linear (a pattern that could fail would retry at every quote).
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.DOTALL)
_INNERMOST = re.compile(r"[\[{][^\[\]{}]*[\]}]")
_FILE_KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


def network_config(net) -> dict:
    """Everything but the parameters needed to rebuild ``net``."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "dtype": str(net.dtype),
        "compute_dtype": net.compute_dtype,
        "backend": net.backend,
        "layers": [layer.config() for layer in net.layers],
        "loss": net.loss_fn.config(),
    }


def values(net) -> np.ndarray:
    """A copy of the flat parameters followed by the flat state (running statistics) of
    ``net``, as a file stores them and :func:`from_config` takes them. Copied under the
    network's lock, so while another thread trains it the copy holds the values between
    two of its calls into the backend; the wait for the lock lets other threads run."""
    return net.internals.core.snapshot()


def from_config(
    network_cls: type, config: dict, params: np.ndarray, backend: str | None = None, dtype=None
):
    """A ``network_cls`` (:class:`fastbp.Network`) built from ``config`` with its flat
    parameters and state set from ``params`` (as :func:`values` gives them).

    Unpickling a network calls it, and :func:`load` too, so a pickle passes every check a
    file does. A ``dtype`` given overrides the file's and computes in it (no compute
    dtype); ``params`` must then be of that dtype.

    Raises ValueError, before the network is built, when ``config`` is not a header this
    fastbp writes, or when ``params`` is not the flat, finite array of the dtype and size
    the layers need.
    """
    layers, loss = _parts(_checked_config(config))
    count = sum(layer.n_params + layer.n_state for layer in layers)
    _check_values(params, count, np.dtype(dtype or config["dtype"]))
    net = network_cls(
        layers,
        loss,
        dtype=dtype or config["dtype"],
        backend=backend or config["backend"],
        compute_dtype=None if dtype else config.get("compute_dtype"),
    )
    internals = net.internals
    internals.host_parameters()
    internals.core.params[...] = params[: net.n_params]
    internals.core.state[...] = params[net.n_params :]
    return net


def _check_values(params, count: int, dtype: np.dtype) -> None:
    """Refuse ``params`` unless it is a flat ``dtype`` array of ``count`` finite values."""
    if not isinstance(params, np.ndarray) or params.dtype != dtype or params.shape != (count,):
        found = (
            f"a {params.dtype} array of shape {params.shape}"
            if isinstance(params, np.ndarray)
            else _described(params)
        )
        raise ValueError(
            f"the parameters are {found}; the layers need a flat {dtype} "
            f"array of {count} parameters and state"
        )
    if not np.isfinite(params).all():
        raise ValueError("the parameters hold NaN or inf")


def _parts(config: dict) -> tuple[list, Loss]:
    """The layers and the loss ``config`` describes; they hold no parameters yet, so
    building them allocates nothing whatever sizes they claim."""
    layers = [_built(f"layers[{i}]", spec, LAYER_TYPES) for i, spec in enumerate(config["layers"])]
    return layers, _built("loss", config["loss"], LOSS_TYPES)


def _built(field: str, spec: dict, types: dict):
    """The layer or loss that ``spec`` configures; a ValueError names ``field``."""
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in types:
        raise ValueError(
            f"malformed header: {field} has type {_described(kind)}; expected "
            f"one of {sorted(types)}"
        )
    try:
        return types[kind](**{k: v for k, v in spec.items() if k != "type"})
    except (TypeError, ValueError) as e:
        raise ValueError(f"malformed header: {field} ({kind}): {e}") from None


def _described(value) -> str:
    """``value``'s type and a shortened repr, for messages about untrusted headers."""
    return f"{type(value).__name__} {reprlib.repr(value)}"


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` atomically: ``write(f)`` fills a temporary binary file in the same
    folder, which is flushed to disk and renamed, so an interrupted write leaves any old
    file intact.

    A symbolic link at ``path`` stays a link: the file it points to (through a chain of
    links, to the end) is the one replaced, its temporary file made in that file's
    folder, as ``open(path, "w")`` would write through the link; a dangling link's
    target is created.

    The file gets the permissions ``open()`` would give a new file (0o666 less the
    umask), not those of a private temporary file.

    A Ctrl-C (SIGINT) on Python's main thread takes effect as the write ends: the file
    is then whole (written, or the old one if writing failed), no temporary file or file
    descriptor is left, and Python's handler raises KeyboardInterrupt (see
    :class:`fastbp._sigint.Deferred`).

    Raises
    ------
    IsADirectoryError
        When ``path`` is a directory.
    OSError
        When ``path`` exists but is not a regular file (a device, a FIFO, a socket):
        replacing it would not write to it; or is a loop of links. Also when writing
        fails (a full disk, a read-only folder). The message names ``path``; nothing is
        left behind and an old file at ``path`` is unchanged.
    """
    path = os.fspath(path)
    _check_target(path)
    target = os.path.realpath(path)  # where a link leads: replacing the link would cut it
    tmp = os.path.join(os.path.dirname(target), f".fastbp-{secrets.token_hex(8)}.tmp")
    # A Ctrl-C waits for the end: raised between creating the temporary file and renaming
    # or removing it, it would leave the file or its descriptor behind, or surface inside
    # np.savez as zipfile's ValueError.
    with _sigint.Deferred():
        try:
            # Mode 0o666: the kernel applies the umask (and a default ACL) as for open().
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
            )
        except OSError as e:
            raise _naming(e, path) from e
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException as e:
            if os.path.exists(tmp):
                os.unlink(tmp)
            if isinstance(e, OSError):
                raise _naming(e, path) from e
            raise


def npz_path(path) -> str:
    """``path`` with ``.npz`` appended unless it ends in it, as :func:`numpy.savez` names
    its files."""
    path = os.fsdecode(os.fspath(path))
    return path if path.endswith(".npz") else path + ".npz"


def save(net, path) -> str:
    """Write ``net`` atomically (see :func:`atomic_write`) to :func:`npz_path` of
    ``path``; returns that path."""
    path = npz_path(path)
    header = np.array(json.dumps(network_config(net)))
    atomic_write(path, lambda f: np.savez(f, header=header, params=values(net)))
    return path


def _check_target(path: str) -> None:
    """Refuse a ``path`` that exists and is not a regular file: os.replace would swap a
    device, FIFO or socket for a regular file rather than write to it."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:  # no file, or a dangling link: the write creates it
        return
    except OSError as e:  # a loop of links, a folder that cannot be searched
        raise _naming(e, path) from e
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "cannot write a model onto a directory", path)
    if not stat.S_ISREG(mode):
        kind = next((what for test, what in _FILE_KINDS if test(mode)), "a special file")
        raise OSError(
            errno.EINVAL,
            f"cannot write a model onto {kind}; models are written only to regular files",
            path,
        )


def _naming(err: OSError, path: str) -> OSError:
    """``err`` again, of the same class, with a message naming the file being written."""
    reason = err.strerror or str(err)
    if err.errno is None:
        return type(err)(f"{reason}; {path!r} was not written")
    return type(err)(err.errno, f"{reason}; the file was not written", path)


def load(path, network_cls: type, backend: str | None = None):
    """Rebuild the network saved at ``path``, as a ``network_cls``.

    Every size the file claims is checked against the others before anything of that
    size is allocated or decompressed (see :mod:`fastbp.io._archive`), and the header is
    parsed only if it is at most ``_archive.MAX_HEADER_CHARS`` characters and nests at
    most ``MAX_HEADER_DEPTH`` levels, so refusing a small file costs little memory.

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    OSError
        When the file cannot be opened.
    ValueError
        When the file is not a complete fastbp network file of a supported version; the
        message names the path and what is wrong.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        hint = (
            f" (save appends .npz: is it {npz_path(path)!r}?)"
            if os.path.isfile(npz_path(path))
            else ""
        )
        raise FileNotFoundError(f"no fastbp network file at {path!r}{hint}")
    with open(path, "rb") as file:
        try:
            with _archive.open_archive(file) as archive:
                header = _checked_header(_archive.read_header(archive))
                count = sum(layer.n_params + layer.n_state for layer in _parts(header)[0])
                params = _archive.read_params(archive, count, np.dtype(header["dtype"]))
            return from_config(network_cls, header, params, backend=backend)
        except (ValueError, *_archive.READ_ERRORS) as e:
            raise ValueError(f"cannot load {path!r}: {e}") from None


def _checked_header(text: str) -> dict:
    """The header's JSON object, once its nesting depth and its fields
    (:func:`_checked_config`) are as this fastbp writes them."""
    _check_depth(text)
    return _checked_config(json.loads(text))


def _checked_config(header) -> dict:
    """``header`` (a network's configuration, as :func:`network_config` gives it) once its
    format, version and field types are as this fastbp writes them; ValueError if not."""
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else header
        raise ValueError(
            f"it is not a fastbp network file (its header's format is "
            f"{_described(found)}, expected {FORMAT!r})"
        )
    version = header.get("version")
    if type(version) is not int or version != VERSION:  # bool is an int, but not a version
        raise ValueError(
            f"it has format version {reprlib.repr(version)} "
            f"({type(version).__name__}); "
            f"this fastbp reads version {VERSION} (an int)"
        )
    for field, kind, what in (
        ("dtype", str, "a str"),
        ("backend", str, "a str"),
        ("layers", list, "a list"),
        ("loss", dict, "an object"),
    ):
        if not isinstance(header.get(field), kind):
            raise ValueError(
                f"malformed header: field {field!r} must be {what}, got "
                f"{_described(header.get(field))}"
            )
    if header["dtype"] not in ("float32", "float64"):
        raise ValueError(
            f"it has parameter dtype {reprlib.repr(header['dtype'])}; fastbp "
            "networks are float32 or float64"
        )
    # A header without compute_dtype (an older file) computes in the storage dtype.
    compute = header.get("compute_dtype")
    try:
        _validate.compute_dtype(compute, header["dtype"])
    except ValueError:
        raise ValueError(
            f"it has compute dtype {reprlib.repr(compute)} for {header['dtype']} "
            f"parameters; fastbp computes float32 networks in one of "
            f"{list(_validate.COMPUTE_DTYPES)} or in float32 (null)"
        ) from None
    if not header["layers"]:
        raise ValueError("malformed header: field 'layers' is an empty list")
    for i, spec in enumerate(header["layers"]):
        if not isinstance(spec, dict):
            raise ValueError(
                f"malformed header: layers[{i}] must be an object, got {_described(spec)}"
            )
    return header


def _check_depth(text: str) -> None:
    """Refuse JSON nested deeper than ``MAX_HEADER_DEPTH`` before json.loads, which
    recurses once a level: each pass strips the innermost brackets left, outside strings."""
    skeleton = _JSON_STRING.sub("", text)
    for _ in range(MAX_HEADER_DEPTH):
        skeleton, stripped = _INNERMOST.subn("", skeleton)
        if not stripped:
            return
    if _INNERMOST.search(skeleton):
        raise ValueError(f"its header nests deeper than {MAX_HEADER_DEPTH} levels")
