"""Network.load refuses hostile files before allocating what they claim, and Network.save
writes only regular files, reporting filesystem errors with the path."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import stat
import subprocess
import sys
import textwrap
import time
import warnings
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastbp as fb
from fastbp.io import _archive, npz
from fbhelpers import make_net, needs_address_space_limits

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="measures memory through /proc and RLIMIT_AS"
)


def header_of(net) -> dict:
    return npz.network_config(net)


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def npy_preamble(descr: str, shape: tuple) -> bytes:
    """The .npy header of an array of ``descr`` and ``shape``, without its data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


def write_archive(path, members, compression=zipfile.ZIP_STORED) -> None:
    """A zip archive holding ``members`` (name -> bytes), in order, duplicates allowed."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)


def write_model(path, header, params, extra=()) -> None:
    """A network file with ``header`` (a dict, or JSON text as is) and ``params``."""
    text = header if isinstance(header, str) else json.dumps(header)
    write_archive(path, [("header.npy", npy(np.array(text))), ("params.npy", npy(params)), *extra])


@pytest.fixture
def net():
    return make_net((4, 9, 2), seed=0)


@pytest.fixture
def model(tmp_path, net):
    path = tmp_path / "model.npz"
    net.save(path)
    return path


# ---- sizes the file claims ------------------------------------------------------------

MEMORY_PROBE = textwrap.dedent("""
    import json, os, resource, sys
    import fastbp as fb

    def status(field):
        with open("/proc/self/status") as f:
            line = next(line for line in f if line.startswith(field + ":"))
        return int(line.split()[1]) * 1024

    fb.Network.load(sys.argv[3])  # imports, threads and first-call costs, not the file's
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    resource.setrlimit(resource.RLIMIT_AS, (mapped + int(sys.argv[2]), hard))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # restart the peak (VmHWM) from the current resident size
    before = status("VmRSS")
    try:
        fb.Network.load(sys.argv[1])
        outcome, message = "loaded", ""
    except BaseException as e:
        outcome, message = type(e).__name__, str(e)
    print(json.dumps({"outcome": outcome, "message": message,
                      "peak_growth": status("VmHWM") - before}))
""")
HEADROOM = 200 * 2**20


def load_under_memory_limit(path) -> dict:
    """Load ``path`` in a subprocess that, once it has imported fastbp and loaded a valid
    file, may map only HEADROOM bytes more; what happened, and how far its peak resident
    size grew (bytes) while loading ``path``."""
    valid = os.path.join(os.path.dirname(path), "valid-warm-up.npz")
    make_net((4, 9, 2), seed=0).save(valid)
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(path), str(HEADROOM), valid],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"the loading process died: {result.returncode}\n{result.stderr}"
    return json.loads(result.stdout)


@linux_only
@needs_address_space_limits
def test_header_claiming_a_huge_layer_over_few_parameters_is_refused_in_bounded_memory(tmp_path):
    # 16384 x 16384 float64 weights would take 2 GiB; the file holds 8 parameters.
    path = tmp_path / "claims-huge.npz"
    header = header_of(make_net((4, 2)))
    header["layers"] = [fb.Dense(16384, 16384).config()]
    write_model(path, header, np.zeros(8))
    assert path.stat().st_size < 4096
    seen = load_under_memory_limit(path)
    assert seen["outcome"] == "ValueError", seen
    assert "268451840" in seen["message"], seen  # the count the layers need
    assert seen["peak_growth"] < path.stat().st_size + 2**20, seen


@pytest.fixture(scope="module")
def deflate_bomb(tmp_path_factory):
    """A zip whose params.npy member is 1 GiB of zeros deflated to about 5 MB: a
    ``(2**28,)`` float32 array, the size of ``Dense(16383, 16384)``. Written streaming at
    compression level 1 (4 GiB would take the test over ten seconds to write)."""
    path = tmp_path_factory.mktemp("bomb") / "params-only.zip"
    zeros = bytes(2**22)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("params.npy", "w", force_zip64=True) as member:
            member.write(npy_preamble("<f4", (2**28,)))
            for _ in range(2**30 // len(zeros)):
                member.write(zeros)
    return path


@linux_only
@needs_address_space_limits
@pytest.mark.parametrize(
    "layers",
    [[fb.Dense(16383, 16384)], [fb.Dense(4, 2)]],
    ids=["header-matches-the-claim", "header-needs-10-parameters"],
)
def test_deflated_params_bomb_is_refused_without_decompressing(tmp_path, deflate_bomb, layers):
    header = header_of(make_net((4, 2), dtype="float32"))
    header["layers"] = [layer.config() for layer in layers]
    path = tmp_path / "bomb.npz"
    path.write_bytes(deflate_bomb.read_bytes())
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("header.npy", npy(np.array(json.dumps(header))))
    seen = load_under_memory_limit(path)
    assert seen["outcome"] == "ValueError", seen
    assert "params.npy" in seen["message"] and "expand" in seen["message"], seen
    assert seen["peak_growth"] < path.stat().st_size + 2**20, seen


@pytest.mark.parametrize(
    "count,message",
    [
        (
            66,
            r"params\.npy holds a float64 array of shape \(66,\); the header's layers need a "
            r"flat float64 array of 65 parameters",
        ),
        (
            5000,
            r"params\.npy claims 40128 bytes uncompressed; 65 float64 parameters and a "
            r"\.npy header take at most",
        ),
    ],
    ids=["one-too-many", "thousands-too-many"],
)
def test_compressed_params_of_the_wrong_size_are_refused(tmp_path, net, count, message):
    path = tmp_path / "model.npz"
    params = np.random.default_rng(0).standard_normal(count)
    with open(path, "wb") as f:
        np.savez_compressed(f, header=np.array(json.dumps(header_of(net))), params=params)
    with pytest.raises(ValueError, match=message):
        fb.Network.load(path)


def test_compressed_model_file_loads(tmp_path, net):
    path = tmp_path / "model.npz"
    with open(path, "wb") as f:
        np.savez_compressed(f, header=np.array(json.dumps(header_of(net))), params=net._core.params)
    np.testing.assert_array_equal(fb.Network.load(path)._core.params, net._core.params)


def test_npy_header_claiming_a_huge_shape_is_refused(tmp_path, net):
    """The .npy header claims 2**40 parameters while the member holds the 65 the layers
    need: refused from the sizes, without allocating 8 TiB."""
    path = tmp_path / "model.npz"
    write_archive(
        path,
        [
            ("header.npy", npy(np.array(json.dumps(header_of(net))))),
            ("params.npy", npy_preamble("<f8", (2**40,)) + net._core.params.tobytes()),
        ],
    )
    with pytest.raises(ValueError, match=r"shape \(1099511627776,\).*holds 520 bytes"):
        fb.Network.load(path)


def test_stored_member_claiming_more_than_the_file_holds_is_refused(tmp_path, model):
    """A zip directory whose sizes for params.npy exceed the file: refused before any
    buffer of that size exists."""
    data = bytearray(model.read_bytes())
    # params.npy has the last central directory entry; its sizes lie at offsets 20 and 24
    entry = data.rfind(b"PK\x01\x02")
    assert data[entry + 46 : entry + 56] == b"params.npy"
    huge = (2**31).to_bytes(4, "little")
    data[entry + 20 : entry + 28] = huge + huge
    model.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="params.npy claims 2147483648 compressed bytes"):
        fb.Network.load(model)


# ---- the archive's members ------------------------------------------------------------


@pytest.mark.parametrize(
    "extra,token",
    [
        ([("extra.npy", npy(np.zeros(1)))], "extra.npy"),
        ([("params.npy", npy(np.zeros(1)))], "'params.npy', 'params.npy'"),
        ([("notes.txt", b"hello")], "notes.txt"),
    ],
    ids=["extra-array", "duplicate-params", "extra-text"],
)
def test_archive_with_unexpected_members_is_refused(tmp_path, net, extra, token):
    path = tmp_path / "model.npz"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
        write_model(path, header_of(net), net._core.params, extra)
    with pytest.raises(ValueError, match="exactly the members") as caught:
        fb.Network.load(path)
    assert token in str(caught.value)


def set_flag_bits(data: bytearray, bits: int) -> bytearray:
    """``data`` (a model file) with ``bits`` set in params.npy's general-purpose flags, in
    its local header and in its central directory entry (the last of each)."""
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.rfind(signature) + offset
        data[at] |= bits
    return data


@pytest.mark.parametrize(
    "case,message", [("bzip2", "compression method 12"), ("encrypted", "params.npy is encrypted")]
)
def test_encrypted_or_bzip2_member_is_refused(tmp_path, net, case, message):
    path = tmp_path / "model.npz"
    members = [
        ("header.npy", npy(np.array(json.dumps(header_of(net))))),
        ("params.npy", npy(net._core.params)),
    ]
    if case == "bzip2":
        write_archive(path, members, compression=zipfile.ZIP_BZIP2)
    else:
        write_archive(path, members)
        path.write_bytes(set_flag_bits(bytearray(path.read_bytes()), 0x1))
    with pytest.raises(ValueError, match=message):
        fb.Network.load(path)


class Payload:
    """Unpickling it creates the file ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize(
    "kind,message",
    [
        ("pickled", "header.npy declares a object array of shape (1,)"),
        ("floats", "header.npy holds a float64 array of shape (3,), expected a text"),
    ],
    ids=["pickled-objects", "floats"],
)
def test_header_that_is_not_a_text_is_refused_without_unpickling(tmp_path, net, kind, message):
    marker = tmp_path / "pwned"
    stored = io.BytesIO()
    if kind == "pickled":
        np.save(stored, np.array([Payload(str(marker))], dtype=object), allow_pickle=True)
    else:
        np.save(stored, np.zeros(3))
    path = tmp_path / "model.npz"
    write_archive(path, [("header.npy", stored.getvalue()), ("params.npy", npy(net._core.params))])
    with pytest.raises(ValueError, match=re.escape(message)):
        fb.Network.load(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "compute,dtype", [("float16", "float32"), ("bfloat16", "float64"), ([1], "float32")]
)
def test_header_with_a_bad_compute_dtype_is_refused(tmp_path, compute, dtype):
    net = make_net((4, 9, 2), dtype=dtype, seed=0)
    header = header_of(net)
    header["compute_dtype"] = compute
    path = tmp_path / "m.npz"
    write_model(path, header, npz.values(net))
    with pytest.raises(ValueError, match="compute dtype"):
        fb.Network.load(path)


def test_header_longer_than_the_limit_is_refused(tmp_path, net):
    header = header_of(net)
    header["note"] = "x" * _archive.MAX_HEADER_CHARS
    path = tmp_path / "model.npz"
    write_model(path, header, net._core.params)
    with pytest.raises(ValueError, match=f"more than the {_archive.MAX_HEADER_CHARS}"):
        fb.Network.load(path)


# ---- the header's JSON ----------------------------------------------------------------


def test_deeply_nested_header_is_refused(tmp_path, net):
    path = tmp_path / "model.npz"
    write_model(path, "[" * 100_000 + "]" * 100_000, net._core.params)
    with pytest.raises(ValueError, match=f"deeper than {npz.MAX_HEADER_DEPTH} levels"):
        fb.Network.load(path)


@pytest.mark.parametrize(
    "depth,loads",
    [(npz.MAX_HEADER_DEPTH, True), (npz.MAX_HEADER_DEPTH + 1, False)],
    ids=["at-the-limit", "one-past-it"],
)
def test_header_nesting_limit_counts_every_level(tmp_path, net, depth, loads):
    header = header_of(net)
    header["note"] = "@"  # the header object is level 1, so "note" nests depth - 1 more
    text = json.dumps(header).replace('"@"', "[" * (depth - 1) + "]" * (depth - 1))
    path = tmp_path / "model.npz"
    write_model(path, text, net._core.params)
    if loads:
        np.testing.assert_array_equal(fb.Network.load(path)._core.params, net._core.params)
    else:
        with pytest.raises(ValueError, match="deeper than"):
            fb.Network.load(path)


def test_brackets_inside_header_strings_do_not_count_as_nesting(tmp_path, net):
    header = header_of(net)
    header["note"] = '[{\\"' * 1000
    path = tmp_path / "model.npz"
    write_model(path, header, net._core.params)
    np.testing.assert_array_equal(fb.Network.load(path)._core.params, net._core.params)


def test_header_scan_stays_fast_on_an_unterminated_string(tmp_path, net):
    """A header that is one unterminated string of escaped quotes (``"\\"\\"\\"...``, a
    mebibyte): finding its strings must stay linear, where a pattern that failed and
    retried at every quote took minutes."""
    path = tmp_path / "model.npz"
    write_model(path, '"\\' * (_archive.MAX_HEADER_CHARS // 2), net._core.params)
    started = time.perf_counter()
    with pytest.raises(ValueError, match="Unterminated string"):
        fb.Network.load(path)
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    "version,got",
    [(True, "True (bool)"), (1.0, "1.0 (float)"), ("1", "'1' (str)"), ([1], "[1] (list)")],
    ids=["bool", "float", "str", "list"],
)
def test_version_must_be_an_int_not_a_bool(tmp_path, net, version, got):
    path = tmp_path / "model.npz"
    write_model(path, {**header_of(net), "version": version}, net._core.params)
    with pytest.raises(ValueError, match=f"format version {re.escape(got)}.*an int"):
        fb.Network.load(path)


@pytest.mark.parametrize(
    "field,value,message",
    [
        (
            "format",
            1,
            "not a fastbp network file (its header's format is int 1, expected 'fastbp-network')",
        ),
        ("dtype", 32, "field 'dtype' must be a str, got int 32"),
        ("backend", None, "field 'backend' must be a str, got NoneType None"),
        ("layers", {"type": "Dense"}, "field 'layers' must be a list, got dict"),
        ("layers", [], "field 'layers' is an empty list"),
        ("layers", ["Dense"], "layers[0] must be an object, got str 'Dense'"),
        ("layers", [{"type": ["Dense"]}], "layers[0] has type list ['Dense']; expected one of"),
        (
            "layers",
            [{"type": "Dense", "in_features": "4", "out_features": 9}],
            "layers[0] (Dense): in_features must be an int, got str",
        ),
        ("loss", "MSELoss", "field 'loss' must be an object, got str 'MSELoss'"),
    ],
    ids=[
        "format-int",
        "dtype-int",
        "backend-null",
        "layers-object",
        "layers-empty",
        "layer-a-string",
        "layer-type-a-list",
        "layer-size-a-string",
        "loss-a-string",
    ],
)
def test_header_field_of_the_wrong_type_is_named(tmp_path, net, field, value, message):
    path = tmp_path / "model.npz"
    write_model(path, {**header_of(net), field: value}, net._core.params)
    with pytest.raises(ValueError) as caught:
        fb.Network.load(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_header_that_is_not_a_json_object_is_refused(tmp_path, net):
    path = tmp_path / "model.npz"
    write_model(path, json.dumps([header_of(net)]), net._core.params)
    with pytest.raises(ValueError, match="not a fastbp network file"):
        fb.Network.load(path)


# ---- save's target --------------------------------------------------------------------


def assert_refused_untouched(net, target, exc, kind):
    before = os.stat(target)
    with pytest.raises(exc, match=kind) as caught:
        net.save(target)
    assert caught.value.filename == str(target)
    assert str(target) in str(caught.value)
    after = os.stat(target)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (
        before.st_mode,
        before.st_ino,
        before.st_rdev,
    )
    folder = os.path.dirname(os.path.abspath(target))
    assert not [name for name in os.listdir(folder) if name.startswith(".fastbp-")]


def test_save_onto_a_fifo_is_refused(tmp_path, net):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    assert_refused_untouched(net, fifo, OSError, "onto a FIFO")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_atomic_write_of_other_models_refuses_a_fifo_as_save_does(tmp_path):
    """ONNX export writes through atomic_write too."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="onto a FIFO") as caught:
        npz.atomic_write(fifo, lambda f: f.write(b"model"))
    assert caught.value.filename == str(fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_save_onto_a_directory_is_refused(tmp_path, net):
    folder = tmp_path / "models.npz"
    folder.mkdir()
    assert_refused_untouched(net, folder, IsADirectoryError, "onto a directory")
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_save_onto_a_device_is_refused_and_the_device_stays(net, monkeypatch, tmp_path):
    def never_replace(src, dst):
        raise AssertionError(f"save tried to replace {dst}")

    # A guard in case the check fails: without it, this test (as root) would turn the
    # machine's /dev/full into a regular file.
    monkeypatch.setattr(os, "replace", never_replace)
    device = tmp_path / "full.npz"  # a name save keeps as it is, pointing at the device
    device.symlink_to("/dev/full")
    assert_refused_untouched(net, device, OSError, "onto a character device")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


# ---- save's filesystem errors ---------------------------------------------------------


def test_full_disk_is_reported_with_the_path_and_keeps_the_old_file(model, monkeypatch):
    old = model.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left on device") as caught:
        make_net((4, 9, 2), seed=1).save(model)
    assert caught.value.errno == errno.ENOSPC
    assert str(model) in str(caught.value)
    assert model.read_bytes() == old
    assert sorted(p.name for p in model.parent.iterdir()) == ["model.npz"]


def test_read_only_folder_is_reported_with_the_path(model, monkeypatch):
    """Creating the temporary file fails with EACCES, as in a read-only folder (which a
    test cannot make: as root, permission bits do not stop a write)."""
    old = model.read_bytes()
    real_open = os.open

    def refuse_in_folder(name, *args, **kwargs):
        if os.path.dirname(os.fspath(name)) == str(model.parent):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse_in_folder)
    with pytest.raises(PermissionError) as caught:
        make_net((4, 9, 2), seed=1).save(model)
    assert caught.value.filename == str(model)
    assert "Permission denied" in str(caught.value)
    assert model.read_bytes() == old
    assert sorted(p.name for p in model.parent.iterdir()) == ["model.npz"]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_saved_file_gets_the_mode_open_would_give(tmp_path, net, umask):
    previous = os.umask(umask)
    try:
        with open(tmp_path / "by-open", "wb"):
            pass
        net.save(tmp_path / "model.npz")
        net.save(tmp_path / "model.npz")  # replacing a file does the same
    finally:
        os.umask(previous)
    mode = stat.S_IMODE(os.stat(tmp_path / "model.npz").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "by-open").st_mode) == 0o666 & ~umask


# ---- fuzzing --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def valid_file(tmp_path_factory):
    """A valid model file's bytes, stored and deflated, its header text and parameters,
    and a scratch path to write mutations to."""
    folder = tmp_path_factory.mktemp("fuzz")
    net = make_net((3, 4, 2), seed=0)
    net.save(folder / "stored.npz")
    text = json.dumps(header_of(net))
    with open(folder / "deflated.npz", "wb") as f:
        np.savez_compressed(f, header=np.array(text), params=net._core.params)
    return SimpleNamespace(
        stored=(folder / "stored.npz").read_bytes(),
        deflated=(folder / "deflated.npz").read_bytes(),
        text=text,
        params=net._core.params.copy(),
        scratch=folder / "fuzzed.npz",
    )


def assert_loads_or_refuses(path) -> None:
    try:
        fb.Network.load(path)
    except (ValueError, FileNotFoundError, OSError):
        pass


FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None)


@FUZZ
@given(data=st.data())
def test_fuzz_load_mutated_files(valid_file, data):
    original = data.draw(st.sampled_from([valid_file.stored, valid_file.deflated]))
    mutated = bytearray(original)
    for at, value in data.draw(
        st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255)), max_size=8)
    ):
        mutated[at] = value
    cut = data.draw(st.none() | st.integers(0, len(original)))
    valid_file.scratch.write_bytes(bytes(mutated[:cut]))
    assert_loads_or_refuses(valid_file.scratch)


JSON_PIECES = st.sampled_from(
    [
        "{",
        "}",
        "[",
        "]",
        '"',
        ",",
        ":",
        "0",
        "-1",
        "1e999",
        "true",
        "null",
        "NaN",
        '"Dense"',
        '"type"',
        '"in_features"',
        "99999",
        "\\",
    ]
)


@FUZZ
@given(data=st.data())
def test_fuzz_load_mutated_headers(valid_file, data):
    text = valid_file.text
    start = data.draw(st.integers(0, len(text)))
    stop = data.draw(st.integers(start, min(len(text), start + 20)))
    inserted = "".join(data.draw(st.lists(JSON_PIECES | st.text(max_size=3), max_size=6)))
    mutated = text[:start] + inserted + text[stop:]
    write_model(valid_file.scratch, mutated, valid_file.params)
    assert_loads_or_refuses(valid_file.scratch)
