"""The README and docs/ held to the code: every list of supported names (marked in the
Markdown, see below) equals what the code has, every ``fb.`` name and ``net.`` attribute
they mention exists, every relative link resolves, the README's Python examples run, and
the README stays short.

A list is marked in the Markdown with HTML comments, which GitHub does not render:

- ``<!-- list: NAME -->`` ... ``<!-- /list -->``: its entries are the code spans inside
  that are names or calls (``fb.Dense``, ``fb.SGD(lr=0.01)``, ``relu``), each read as its
  last dotted name without arguments. A list may be split over several regions of one
  file (rows of a table); their union is compared.
- ``<!-- table: NAME -->`` ... ``<!-- /table -->``: a Markdown table whose rows' cells
  are compared column by column.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import platform
import re
from collections import defaultdict
from pathlib import Path

import pytest

import fastbp as fb
from fastbp.nn.activations import Activation
from fastbp.nn.layers import LAYER_TYPES
from fastbp.nn.losses import LOSS_TYPES

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
PACKAGE_SOURCES = sorted((ROOT / "python" / "fastbp").rglob("*.py*"))
README_MAX_LINES = 200

# A marker quoted in a code span (`<!-- list: NAME -->`) is prose about markers, not one.
REGION = re.compile(r"(?<!`)<!-- (list|table): ([\w-]+) -->(.*?)<!-- /\1 -->", re.S)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
# A name or a call as a code span gives it: `fb.Dense`, `fb.SGD(lr=0.01)`, `relu`.
NAME_OR_CALL = re.compile(r"([A-Za-z_][\w.]*)(\(.*\))?")


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _regions(kind: str) -> dict[tuple[str, str], list[str]]:
    """``{(file, name): [region text, ...]}`` for every region of ``kind`` in the docs."""
    found = defaultdict(list)
    for path in DOCS:
        for region_kind, name, text in REGION.findall(path.read_text()):
            if region_kind == kind:
                found[_relative(path), name].append(text)
    return found


def _entries(text: str) -> list[str]:
    """The names a list region gives, in order: the Python files a file tree names, or
    the names and calls its code spans give."""
    if text.strip().startswith("```"):
        return re.findall(r"\b\w+\.pyi?\b", text)
    names = []
    for span in CODE_SPAN.findall(text):
        match = NAME_OR_CALL.fullmatch(span)
        if match:
            names.append(match.group(1).rpartition(".")[2])
    return names


def _rows(text: str) -> list[list[str]]:
    """The body rows of the Markdown table in ``text``, as lists of stripped cells."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip().startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def _spans(cell: str) -> set[str]:
    return set(CODE_SPAN.findall(cell))


def _assert_same(where: str, documented, in_code) -> None:
    """Fails naming each entry the code has and the docs lack, and each the other way."""
    missing = sorted(set(in_code) - set(documented))
    unknown = sorted(set(documented) - set(in_code))
    problems = [f"{where}: {name} is in the code but not in this list" for name in missing]
    problems += [f"{where}: {name} is listed but the code has no such name" for name in unknown]
    assert not problems, "\n".join(problems)


def _concrete_subclasses(module, base: type) -> list[str]:
    """The names in ``module.__all__`` of ``base``'s subclasses, ``base`` left out."""
    return [
        name
        for name in module.__all__
        if isinstance(obj := getattr(module, name), type) and issubclass(obj, base)
        if obj is not base
    ]


#: Each list name the docs may mark, and the names the code has for it.
LISTS = {
    "layers": lambda: [n for n, c in LAYER_TYPES.items() if not issubclass(c, Activation)],
    "activations": lambda: [n for n, c in LAYER_TYPES.items() if issubclass(c, Activation)],
    "losses": lambda: list(LOSS_TYPES),
    "optimizers": lambda: _concrete_subclasses(fb.optim, fb.Optimizer),
    "schedules": lambda: _concrete_subclasses(fb.schedules, fb.schedules.Schedule),
    "callbacks": lambda: _concrete_subclasses(fb.callbacks, fb.callbacks.Callback),
    "ops": lambda: list(fb.ops.__all__),
    "modules": lambda: sorted({path.name for path in PACKAGE_SOURCES}),
}
#: Each table name the docs may mark; a test below checks each.
TABLES = ("layers", "simd-paths", "bf16-paths")


LIST_REGIONS = _regions("list")


def test_the_marked_lists_are_those_this_test_checks():
    marked = {name for _, name in LIST_REGIONS}
    assert marked == set(LISTS), (
        "each list name must be marked somewhere, and only those this test knows: "
        f"marked {sorted(marked)}, known {sorted(LISTS)}"
    )


@pytest.mark.parametrize("region", sorted(LIST_REGIONS), ids=":".join)
def test_each_marked_list_names_what_the_code_has(region):
    path, name = region
    documented = [entry for text in LIST_REGIONS[path, name] for entry in _entries(text)]
    _assert_same(f"{path}, list {name!r}", documented, LISTS.get(name, list)())


def test_the_marked_tables_are_those_this_test_checks():
    marked = {name for _, name in _regions("table")}
    assert marked == set(TABLES), f"marked tables {sorted(marked)}, checked {sorted(TABLES)}"


def _table(name: str) -> tuple[str, list[list[str]]]:
    ((path, _), texts), *more = [item for item in _regions("table").items() if item[0][1] == name]
    assert not more and len(texts) == 1, f"table {name!r} must be marked once"
    return path, _rows(texts[0])


def _layer_rows() -> tuple[str, dict[str, list[str]]]:
    path, rows = _table("layers")
    return path, {CODE_SPAN.fullmatch(row[0]).group(1): row for row in rows}


def test_layer_table_lists_every_layer_with_its_torch_twin():
    path, rows = _layer_rows()
    _assert_same(f"{path}, table 'layers'", rows, LAYER_TYPES)
    for name, row in rows.items():
        assert _spans(row[1]) == {LAYER_TYPES[name].torch_type}, (
            f"{path}, table 'layers': {name} converts to and from torch.nn."
            f"{LAYER_TYPES[name].torch_type}, the table says {row[1]}"
        )


def _instance(cls: type):
    """``cls`` built with 4 for each required argument (the widths) and defaults for the rest."""
    required = [
        p
        for p in inspect.signature(cls).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return cls(*[4] * len(required))


def _onnx_ops(layer, onnx, tmp_path: Path) -> set[str]:
    """The ONNX operator types of ``layer``'s nodes in an exported float32 network
    (opset 17), between two Dense layers so that its nodes keep their names."""
    net = fb.Network([fb.Dense(4, 4), layer, fb.Dense(4, 4)], fb.MSELoss(), seed=0)
    path = tmp_path / f"{type(layer).__name__}.onnx"
    net.to_onnx(path, opset=17)
    prefix = f"{type(layer).__name__.lower()}_1"  # the export's name for layers[1]
    return {
        node.op_type
        for node in onnx.load(path).graph.node
        if node.output[0] == prefix or node.output[0].startswith(prefix + ".")
    }


def test_layer_table_gives_each_layers_onnx_nodes(tmp_path):
    onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx package")
    path, rows = _layer_rows()
    for name, row in rows.items():
        exported = _onnx_ops(_instance(LAYER_TYPES[name]), onnx, tmp_path)
        assert _spans(row[2]) == exported, (
            f"{path}, table 'layers': {name} exports as {sorted(exported)}, the table says {row[2]}"
        )


@pytest.mark.parametrize("table", ["simd-paths", "bf16-paths"])
def test_each_simd_path_table_lists_every_path(table):
    path, rows = _table(table)
    documented = [name for row in rows for name in CODE_SPAN.findall(row[0])]
    compiled = fb.build_info()["simd_compiled"]
    if platform.machine().lower() in ("x86_64", "amd64"):  # an x86-64 build has every path
        _assert_same(f"{path}, table {table!r}", documented, compiled)
    else:
        assert set(compiled) <= set(documented), f"{path}: {compiled} not all in {documented}"


def test_bf16_path_table_gives_this_paths_subnormal_rule():
    path, rows = _table("bf16-paths")
    info = fb.build_info()
    (row,) = [row for row in rows if info["simd"] in CODE_SPAN.findall(row[0])]
    assert row[-1] == info["bf16_subnormals"], (
        f"{path}, table 'bf16-paths': path {info['simd']} {info['bf16_subnormals']} "
        f"subnormals, the table says {row[-1]}"
    )


# ---- names, links and examples ------------------------------------------------------

FB_NAME = re.compile(r"\b(fb|fastbp)((?:\.[A-Za-z_]\w*)+)")
NET_ATTRIBUTE = re.compile(r"(?<![\w.])net\.([A-Za-z_]\w*)")


def _resolve(dotted: str) -> None:
    """Import or get ``dotted`` (``fastbp.ops.relu``), raising what fails."""
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[: i + 1]))


@pytest.mark.parametrize("doc", DOCS, ids=_relative)
def test_every_fastbp_name_the_docs_mention_exists(doc):
    missing = []
    for _, tail in set(FB_NAME.findall(doc.read_text())):
        dotted = "fastbp" + tail
        try:
            _resolve(dotted)
        except ModuleNotFoundError as e:
            if not (e.name or "").startswith("fastbp"):
                continue  # an optional dependency of that module is not installed
            missing.append(dotted)
        except (AttributeError, ImportError):
            missing.append(dotted)
    assert not missing, f"{_relative(doc)} mentions names fastbp lacks: {sorted(missing)}"


@pytest.mark.parametrize("doc", DOCS, ids=_relative)
def test_every_network_attribute_the_docs_mention_exists(doc):
    net = fb.Network([fb.Dense(2, 3), fb.ReLU(), fb.Dense(3, 1)], fb.MSELoss(), seed=0)
    missing = {name for name in NET_ATTRIBUTE.findall(doc.read_text()) if not hasattr(net, name)}
    assert not missing, f"{_relative(doc)} mentions Network attributes it lacks: {sorted(missing)}"


SOURCE_FILE = re.compile(r"(?<![\w/.])((?:[\w-]+/)*[\w-]+\.(?:hpp|cpp|cuh|cu))\b")


def _source_exists(mention: str) -> bool:
    """Whether a C++ file named in prose exists: a path from the repository or from
    csrc/, or a bare file name anywhere under csrc/ or tests/cpp/."""
    if "/" in mention:
        return (ROOT / mention).is_file() or (ROOT / "csrc" / mention).is_file()
    return any((ROOT / top).rglob(mention) for top in ("csrc", "tests/cpp"))


@pytest.mark.parametrize("doc", DOCS + PACKAGE_SOURCES, ids=_relative)
def test_every_cpp_file_named_exists(doc):
    missing = sorted({m for m in SOURCE_FILE.findall(doc.read_text()) if not _source_exists(m)})
    assert not missing, f"{_relative(doc)} names C++ files that do not exist: {missing}"


TEST_FILE = re.compile(r"(?<![\w/])(tests/[\w/]+\.py)(?:::(\w+))?")
TEST_NAME = re.compile(r"`(test_\w+)`")
#: Names in the docs that look like fastbp's tests but are not: History's keys when the
#: validation data is called "test", and scikit-learn's own MLP tests (docs/sklearn.md).
NOT_FASTBP_TESTS = {
    "test_loss",
    "test_accuracy",
    "test_adaptive_learning_rate",
    "test_fit",
    "test_gradient",
    "test_learning_rate_warmstart",
    "test_mlp_regressor_dtypes_casting",
    "test_sparse_matrices",
}


def _defined_tests() -> dict[str, str]:
    """Every test function's name, and the text of the file it is in."""
    found = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        text = path.read_text()
        for name in re.findall(r"^def (test_\w+)", text, re.M):
            found[name] = _relative(path)
    return found


@pytest.mark.parametrize("doc", DOCS, ids=_relative)
def test_every_test_the_docs_cite_exists(doc):
    text, tests = doc.read_text(), _defined_tests()
    missing = []
    for file, name in TEST_FILE.findall(text):
        if not (ROOT / file).is_file():
            missing.append(file)
        elif name and tests.get(name) != file:
            missing.append(f"{file}::{name}")
    missing += [
        name for name in TEST_NAME.findall(text) if name not in tests.keys() | NOT_FASTBP_TESTS
    ]
    assert not missing, f"{_relative(doc)} cites tests that do not exist: {sorted(set(missing))}"


#: Phrases that narrate how the code came to be, which a reader cannot act on.
HISTORY = (
    "development vm",
    "earlier run",
    "used to",
    "no longer",
    "previously",
    "this month",
    "last session",
    "not yet",
    "so far",
)


@pytest.mark.parametrize("doc", DOCS, ids=_relative)
def test_the_docs_describe_the_code_not_its_history(doc):
    text = " ".join(doc.read_text().lower().split())
    found = [phrase for phrase in HISTORY if phrase in text]
    assert not found, f"{_relative(doc)} narrates history: {found}"


DOCUMENTED_CALL = re.compile(r"`((?:fb|fastbp)\.[\w.]+)\(([^`]*)\)`")


def _documented_parameters(args: str) -> list[tuple[str, object]]:
    """``[(name, default or inspect.Parameter.empty)]`` of a call written as a signature:
    ``n, eps=1e-5`` -> ``[("n", empty), ("eps", 1e-05)]``."""
    call = ast.parse(f"f({args})", mode="eval").body
    names = [(arg.id, inspect.Parameter.empty) for arg in call.args]
    return names + [(kw.arg, ast.literal_eval(kw.value)) for kw in call.keywords]


def test_every_signature_in_the_api_reference_matches_the_code():
    """Each parameter docs/api.md writes in a call (``fb.LayerNorm(n, eps=1e-5)``) is the
    code's, in the code's order, with the code's default; it may leave parameters out."""
    doc, wrong = ROOT / "docs" / "api.md", []
    for dotted, args in DOCUMENTED_CALL.findall(doc.read_text()):
        if "..." in args or "/" in args:
            continue  # an abbreviation or a choice of values, not a signature
        obj = fb
        for part in dotted.split(".")[1:]:
            obj = getattr(obj, part)
        code = inspect.signature(obj).parameters
        documented = _documented_parameters(args)
        order = [list(code).index(name) if name in code else -1 for name, _ in documented]
        if -1 in order or order != sorted(order):
            wrong.append(f"{dotted}({args}): the code's parameters are {list(code)}")
        elif any(code[name].default != default for name, default in documented):
            wrong.append(f"{dotted}({args}): the code's signature is {inspect.signature(obj)}")
    assert not wrong, f"{_relative(doc)}:\n" + "\n".join(wrong)


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_anchor(h) for h in re.findall(r"^#+ (.+)$", path.read_text(), re.M)}


@pytest.mark.parametrize("doc", DOCS, ids=_relative)
def test_every_relative_link_resolves(doc):
    broken = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # a web address: not fetched here
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists():
            broken.append(f"{target} (no file {path})")
        elif anchor and anchor not in _anchors(path):
            broken.append(f"{target} (no heading with anchor #{anchor} in {_relative(path)})")
    assert not broken, f"{_relative(doc)} has broken links: {broken}"


def test_the_readme_links_every_docs_page():
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for target in LINK.findall(README.read_text())
    }
    unlinked = [_relative(page) for page in DOCS[1:] if page not in linked]
    assert not unlinked, f"README.md does not link {unlinked}"


def test_the_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines, at most {README_MAX_LINES}"


#: What a README example needs beyond this process, and why it is skipped.
NEEDS = {"mpi4py": "it needs MPI ranks", 'backend="cuda"': "it needs a GPU"}
README_EXAMPLES = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.M | re.S)


@pytest.mark.parametrize("code", README_EXAMPLES, ids=lambda code: code.splitlines()[0][:40])
def test_readme_python_examples_run(code, tmp_path, monkeypatch):
    for needle, reason in NEEDS.items():
        if needle in code:
            pytest.skip(f"the README example needs more than this process: {reason}")
    monkeypatch.chdir(tmp_path)  # where the example writes its files
    exec(compile(code, "README.md example", "exec"), {"__name__": "readme_example"})


def test_the_readme_has_a_python_example():
    assert README_EXAMPLES, "README.md has no ```python block"
