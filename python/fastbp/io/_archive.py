"""Reading the two arrays of a fastbp network file without trusting the sizes it claims.

A network file is the zip archive ``np.savez`` writes, holding exactly two ``.npy``
members: ``header.npy`` (a JSON text) and ``params.npy`` (the flat parameters, then the
flat state such as running statistics). Every
size the archive declares is checked against what the caller expects before anything of
that size is allocated or decompressed, so refusing a small file costs little memory:

- a member is stored or deflated, not encrypted, and its compressed bytes lie within
  the file; a stored member's uncompressed size is its compressed size;
- ``header.npy`` holds a text of at most ``MAX_HEADER_CHARS`` characters;
- a deflated ``params.npy`` expands at most ``MAX_EXPANSION`` times (plus
  ``_NPY_HEADER_BYTES``): trained float parameters barely compress, a decompression bomb
  does (so does an all-zero array, which ``np.savez_compressed`` could write; fastbp's own
  files are stored uncompressed);
- ``params.npy`` holds exactly the count and dtype the caller's layers need, and the zip
  directory's uncompressed size agrees with its ``.npy`` header.

Only the ``.npy`` headers are parsed (by NumPy's literal parser); the data is read as raw
bytes, never unpickled, and never more of it than the checks allowed.
"""

from __future__ import annotations

import contextlib
import math
import os
import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

__all__ = [
    "MEMBERS",
    "MAX_HEADER_CHARS",
    "MAX_EXPANSION",
    "READ_ERRORS",
    "open_archive",
    "read_header",
    "read_params",
]

MEMBERS = ("header.npy", "params.npy")
MAX_HEADER_CHARS = 2**20
MAX_EXPANSION = 16
# NumPy's .npy preamble: magic, version, length and a header dict it parses only up to
# 10000 characters long.
_NPY_HEADER_BYTES = 16 + 10000
_CHUNK = 2**20
#: What reading a corrupt archive raises besides ValueError: zipfile's and zlib's errors,
#: zipfile's refusal of features it lacks (a "zip version" byte, patch data), a read past
#: the end, and an OSError from seeking to a nonsensical offset.
READ_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError, OSError)


@contextlib.contextmanager
def open_archive(file: BinaryIO) -> Iterator[zipfile.ZipFile]:
    """The zip archive in ``file``, once its directory lists just the two members, each
    with sizes that fit the file.

    Raises
    ------
    ValueError
        Naming the member and the size or setting that is not as expected.
    """
    file_size = os.fstat(file.fileno()).st_size
    with zipfile.ZipFile(file) as archive:
        names = archive.namelist()
        if sorted(names) != sorted(MEMBERS):
            raise ValueError(
                f"a network file holds exactly the members {list(MEMBERS)}; this one holds {names}"
            )
        for info in archive.infolist():
            _check_sizes(info, file_size)
        yield archive


def _check_sizes(info: zipfile.ZipInfo, file_size: int) -> None:
    name, stored, size = info.filename, info.compress_size, info.file_size
    if info.flag_bits & 0x1:
        raise ValueError(f"{name} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ValueError(
            f"{name} uses compression method {info.compress_type}; only "
            f"stored ({zipfile.ZIP_STORED}) and deflated "
            f"({zipfile.ZIP_DEFLATED}) members are read"
        )
    if info.header_offset + stored > file_size:
        raise ValueError(
            f"{name} claims {stored} compressed bytes at offset "
            f"{info.header_offset}, beyond the file's {file_size} bytes"
        )
    if info.compress_type == zipfile.ZIP_STORED and size != stored:
        raise ValueError(
            f"{name} is stored uncompressed in {stored} bytes but claims {size} bytes uncompressed"
        )


def read_header(archive: zipfile.ZipFile) -> str:
    """The text in ``header.npy``: a 0-d unicode array of at most ``MAX_HEADER_CHARS``
    characters."""
    # NumPy stores text as UCS-4, 4 bytes a character, without trailing NULs.
    with _open_npy(
        archive, "header.npy", 4 * MAX_HEADER_CHARS, f"a text of {MAX_HEADER_CHARS} characters"
    ) as (member, dtype, shape):
        if dtype.kind != "U" or shape != ():
            raise ValueError(
                f"header.npy holds a {dtype} array of shape {shape}, expected "
                "a text (a 0-d unicode array)"
            )
        if dtype.itemsize > 4 * MAX_HEADER_CHARS:
            raise ValueError(
                f"header.npy holds a text of {dtype.itemsize // 4} "
                f"characters, more than the {MAX_HEADER_CHARS} allowed"
            )
        data = bytearray(dtype.itemsize)
        _read_into(member, memoryview(data))
    # Decoded by Python, which refuses code points no str may hold.
    encoding = "utf-32-le" if dtype == dtype.newbyteorder("<") else "utf-32-be"
    return data.decode(encoding).rstrip("\0")


def read_params(archive: zipfile.ZipFile, count: int, dtype: np.dtype) -> np.ndarray:
    """The flat array of ``count`` parameters of ``dtype`` in ``params.npy``, allocated
    only once the archive's sizes agree with ``count``."""
    # The header's layers may claim gigabytes; a file that small may not hold them.
    info = archive.getinfo("params.npy")
    if info.file_size > MAX_EXPANSION * info.compress_size + _NPY_HEADER_BYTES:
        raise ValueError(
            f"params.npy claims to expand from {info.compress_size} compressed "
            f"bytes to {info.file_size}, more than {MAX_EXPANSION} times"
        )
    with _open_npy(
        archive, "params.npy", count * dtype.itemsize, f"{count} {dtype} parameters"
    ) as (member, stored_dtype, shape):
        if stored_dtype != dtype or shape != (count,):
            raise ValueError(
                f"params.npy holds a {stored_dtype} array of shape {shape}; "
                f"the header's layers need a flat {dtype} array of {count} "
                "parameters"
            )
        params = np.empty(count, dtype)
        _read_into(member, memoryview(params).cast("B"))
    return params


@contextlib.contextmanager
def _open_npy(
    archive: zipfile.ZipFile, name: str, max_data: int, expected: str
) -> Iterator[tuple[BinaryIO, np.dtype, tuple]]:
    """Member ``name`` opened past its ``.npy`` header, with the dtype and shape that header
    declares; refused if the zip directory claims more than ``max_data`` bytes of data
    (``expected`` says what they would be), or other than the declared array needs."""
    info = archive.getinfo(name)
    if info.file_size > max_data + _NPY_HEADER_BYTES:
        raise ValueError(
            f"{name} claims {info.file_size} bytes uncompressed; {expected} "
            f"and a .npy header take at most {max_data + _NPY_HEADER_BYTES}"
        )
    with archive.open(info) as member:
        shape, dtype = _npy_header(member, name)
        stored = info.file_size - member.tell()
        needed = math.prod(shape) * dtype.itemsize
        if stored != needed:
            raise ValueError(
                f"{name} declares a {dtype} array of shape {shape} "
                f"({needed} bytes) but holds {stored} bytes of data"
            )
        yield member, dtype, shape


def _npy_header(member: BinaryIO, name: str) -> tuple[tuple, np.dtype]:
    """The shape and dtype in the ``.npy`` header at the start of ``member``."""
    version = np.lib.format.read_magic(member)
    readers = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }
    if version not in readers:
        raise ValueError(
            f"{name} is a .npy file of version {version}; versions 1.0 and 2.0 are read"
        )
    try:
        shape, _, dtype = readers[version](member)
    except TypeError as e:  # NumPy's literal parser, on a header such as {[]: 1}
        raise ValueError(f"{name} has a malformed .npy header: {e}") from None
    return shape, dtype


def _read_into(member: BinaryIO, out: memoryview) -> None:
    """Fill ``out`` from ``member`` a chunk at a time (zipfile checks the CRC once the
    member's last byte is read)."""
    filled = 0
    while filled < len(out):
        chunk = member.read(min(_CHUNK, len(out) - filled))
        if not chunk:
            raise ValueError(f"{member.name} ends after {filled} of its {len(out)} bytes of data")
        out[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
