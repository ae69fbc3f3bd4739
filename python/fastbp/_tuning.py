"""The GEMM tuning that ``python -m fastbp.tune`` saves, and its loading at import.

One JSON file per machine, fastbp version and SIMD path, in the user cache
(``$XDG_CACHE_HOME/fastbp``, else ``~/.cache/fastbp``), named by a digest of its key. At
import a valid file's choices (cache blocks per kernel, the narrow/wide kernel split,
the multiply-adds a thread must get and how a product's threads split between M and N)
replace the defaults; a file that is unreadable, malformed, edited, or written
for another CPU, version or path is ignored with one warning. ``FASTBP_TUNING=off``
ignores the cache, ``FASTBP_TUNING=/path/file.json`` reads that file instead, and
``FASTBP_GEMM_BLOCKS`` (explicit blocks, or ``table``) wins over both.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

from . import _core

FORMAT = 1
ENV = "FASTBP_TUNING"
DTYPES = ("float32", "float64", "bfloat16")
MAX_BLOCK = 1 << 20  # the core's bound for a block size and the wide kernel's width
MAX_FILE_BYTES = 1 << 20
THREADS = "threads"  # the choices' entry for the thread settings, beside the dtypes'
# The core's bounds for the thread settings (kernels/threads.hpp, kernels/gemm/config.hpp).
THREAD_BOUNDS = {"work_per_thread": (1, 1 << 40), "split_pack_cost": (0, 1 << 20)}

_loaded_path: str | None = None
_untuned: dict | None = None  # gemm_config() before the file's choices were applied


class TuningError(ValueError):
    """A tuning file that must not be used; the message says why."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fastbp"


def machine_key() -> dict:
    """What a tuning is valid for: this CPU (vendor, family, model, stepping, the SIMD
    paths it runs, its caches, its logical CPUs), fastbp's version and the path in use."""
    config = _core.gemm_config()
    info = _core.build_info()
    return {
        "cpu": config["cpu"],
        "simd_available": info["simd_available"],
        "caches": {level: config["caches"][level] for level in ("l1d", "l2", "l3")},
        "logical_cpus": os.cpu_count(),
        "fastbp": info["version"],
        "simd": config["simd"],
    }


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def default_path(key: dict | None = None) -> Path:
    key = machine_key() if key is None else key
    return cache_dir() / f"gemm-{key['simd']}-{_digest(key)[:16]}.json"


def _kernels(config: dict, dtype: str) -> dict:
    return {k["name"]: k for k in config[dtype]["kernels"]}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_choices(choices, config: dict | None = None) -> dict:
    """``choices`` if every entry names a kernel of this path with sizes in bounds; raises
    TuningError saying what is wrong otherwise. The shape: ``{dtype: {"kernels": {name:
    [mc, kc, nc]}, "wide_from": n or None}, "threads": {"work_per_thread": n,
    "split_pack_cost": n}}``, every entry optional."""
    config = _core.gemm_config() if config is None else config
    if not isinstance(choices, dict) or not set(choices) <= {*DTYPES, THREADS}:
        raise TuningError(f"choices must be a dict keyed by {', '.join((*DTYPES, THREADS))}")
    for dtype, entry in choices.items():
        if dtype == THREADS:
            _validate_threads(entry)
        else:
            _validate_dtype(dtype, entry, config)
    return choices


def _validate_dtype(dtype: str, entry, config: dict) -> None:
    if not isinstance(entry, dict) or set(entry) != {"kernels", "wide_from"}:
        raise TuningError(f"{dtype}: expected the keys 'kernels' and 'wide_from'")
    known = _kernels(config, dtype)
    if not isinstance(entry["kernels"], dict):
        raise TuningError(f"{dtype}: 'kernels' must map kernel names to [mc, kc, nc]")
    for name, blocks in entry["kernels"].items():
        if name not in known:
            raise TuningError(f"{dtype}: unknown kernel {name!r} (this path has {list(known)})")
        if (
            not isinstance(blocks, list)
            or len(blocks) != 3
            or not all(_is_int(v) and 1 <= v <= MAX_BLOCK for v in blocks)
        ):
            raise TuningError(
                f"{dtype} {name}: blocks must be [mc, kc, nc] integers from 1 to {MAX_BLOCK}"
            )
    wide_from = entry["wide_from"]
    two_kernels = config[dtype]["wide_from"] is not None
    if wide_from is not None and not (
        two_kernels and _is_int(wide_from) and 0 <= wide_from <= MAX_BLOCK
    ):
        raise TuningError(
            f"{dtype}: wide_from must be an integer from 0 to {MAX_BLOCK} on a path with "
            "two kernels, else null"
        )


def _validate_threads(entry) -> None:
    if not isinstance(entry, dict) or set(entry) != set(THREAD_BOUNDS):
        raise TuningError(f"{THREADS}: expected the keys {', '.join(map(repr, THREAD_BOUNDS))}")
    for name, (low, high) in THREAD_BOUNDS.items():
        if not (_is_int(entry[name]) and low <= entry[name] <= high):
            raise TuningError(f"{THREADS}: {name} must be an integer from {low} to {high}")


def _checksum(key: dict, choices: dict) -> str:
    return _digest({"format": FORMAT, "key": key, "choices": choices})


def save(choices: dict, path: Path | None = None, measured: list | None = None) -> Path:
    """Writes ``choices`` (validated) for this machine to ``path`` (default: the user
    cache), atomically; ``measured`` (the tuner's table) is kept for the reader only."""
    key = machine_key()
    validate_choices(choices)
    path = default_path(key) if path is None else Path(path)
    doc = {
        "format": FORMAT,
        "key": key,
        "choices": choices,
        "checksum": _checksum(key, choices),
        "measured": measured or [],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".gemm-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def read(path: Path) -> dict:
    """The validated choices in ``path``; TuningError (or OSError) when it must not be used."""
    path = Path(path)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise TuningError(f"larger than {MAX_FILE_BYTES} bytes")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise TuningError(f"not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise TuningError(f"not a format-{FORMAT} fastbp tuning file")
    key = machine_key()
    if doc.get("key") != key:
        raise TuningError("written for another CPU, fastbp version or SIMD path")
    choices = doc.get("choices")
    if doc.get("checksum") != _checksum(key, choices):
        raise TuningError("its checksum does not match its contents (edited or corrupted)")
    return validate_choices(choices)


def apply(choices: dict, source: str = "tuned") -> None:
    """Sets the validated ``choices`` on the active path and the thread pool."""
    for dtype, entry in choices.items():
        if dtype == THREADS:
            apply_threads(entry)
            continue
        for name, (mc, kc, nc) in entry["kernels"].items():
            _core._gemm_set_blocks(dtype, name, mc, kc, nc, source)
        if entry["wide_from"] is not None:
            _core._gemm_set_wide_from(dtype, entry["wide_from"])


def apply_threads(settings: dict) -> None:
    """Sets the thread settings ``{"work_per_thread": n, "split_pack_cost": n}``."""
    _core._set_work_per_thread(settings["work_per_thread"])
    _core._gemm_set_split_pack_cost(settings["split_pack_cost"])


def loaded_path() -> str | None:
    """The tuning file in use, or None when the analytic (or table) blocks are."""
    return _loaded_path


def untuned_config() -> dict:
    """gemm_config() as it was before a tuning file was applied (the analytic or table
    blocks, the built-in kernel split and thread settings), for comparing the two."""
    return _core.gemm_config() if _untuned is None else _untuned


def restore_untuned() -> None:
    """Undoes the tuning file's choices in this process (the tuner starts from the
    defaults, so that an earlier noisy choice does not stay in use by inertia)."""
    global _loaded_path
    for dtype in DTYPES:
        before = untuned_config()[dtype]
        for k in before["kernels"]:
            if k["blocks"] in ("table", "analytic"):
                _core._gemm_set_blocks(dtype, k["name"], k["mc"], k["kc"], k["nc"], k["blocks"])
        if before["wide_from"] is not None:
            _core._gemm_set_wide_from(dtype, before["wide_from"])
    apply_threads(untuned_config()[THREADS])
    _loaded_path = None


def load_at_import() -> None:
    setting = os.environ.get(ENV, "")
    if setting.lower() in ("off", "0", "false", "no") or os.environ.get("FASTBP_GEMM_BLOCKS"):
        return
    path = Path(setting) if setting else default_path()
    if not setting and not path.exists():
        return  # never tuned here: the analytic blocks
    try:
        choices = read(path)
    except (OSError, TuningError) as e:  # a speed hint: never fail the import over it
        warnings.warn(
            f"fastbp: ignoring the GEMM tuning file {path}: {e}; run `python -m fastbp.tune` "
            f"to write a new one, or set {ENV}=off",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    use(choices, path)


def use(choices: dict, path) -> None:
    """Applies the validated ``choices`` as those of the tuning file ``path``."""
    global _loaded_path, _untuned
    if _untuned is None:
        _untuned = _core.gemm_config()
    apply(choices)
    _loaded_path = str(path)
