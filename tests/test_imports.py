"""The package's modules import each other at module level only, in a DAG: no import
cycle held together by imports inside functions, and none between its subpackages."""

from __future__ import annotations

import ast
import pathlib

import fastbp

PACKAGE = pathlib.Path(fastbp.__file__).parent


def module_name(path: pathlib.Path) -> str:
    """``fastbp.io.npz`` for io/npz.py, ``fastbp.io`` for io/__init__.py."""
    parts = ("fastbp", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(importer: str, node: ast.ImportFrom) -> set:
    """The package's modules that ``node`` (a relative import in ``importer``) runs: the
    module or package it names, each name that is a submodule, and the packages above
    them that ``importer`` is not already inside."""
    package = importer if MODULES[importer].name == "__init__.py" else importer.rpartition(".")[0]
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    target = f"{base}.{node.module}" if node.module else base
    named = {f"{target}.{alias.name}" for alias in node.names} & MODULES.keys()
    run = set()
    for module in named | {target}:
        parts = module.split(".")
        run |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
    inside = {importer.rsplit(".", i)[0] for i in range(importer.count(".") + 1)}
    return run - inside


def package_imports(type_checking: bool = False) -> tuple[dict, list]:
    """``(graph, local)``: module -> package modules it imports at module level (with
    ``type_checking``, also those it imports for type checkers alone), and the
    ``(module, imported)`` pairs imported inside functions or classes."""
    graph, local = {}, []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        graph[name] = set()
        typing_only = {
            id(n) for block in tree.body if is_type_checking_block(block) for n in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only and not type_checking:
                continue  # imported for type checkers alone, never at run time
            if not (isinstance(node, ast.ImportFrom) and node.level >= 1):
                continue
            imported = imported_modules(name, node)
            if node in tree.body or id(node) in typing_only:
                graph[name] |= imported
            else:
                local += [(name, module) for module in sorted(imported)]
    return graph, local


def is_type_checking_block(node) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )


def assert_acyclic(graph: dict) -> None:
    done, visiting = set(), []

    def visit(module):
        assert module not in visiting, "import cycle: " + " -> ".join(visiting + [module])
        if module in done:
            return
        visiting.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in graph:
        visit(module)


def test_no_function_local_imports_of_package_modules():
    # __init__'s set_num_threads keeps _validate's names out of the package namespace.
    assert package_imports()[1] == [("fastbp", "fastbp._validate")]


def test_module_level_imports_form_a_dag():
    graph, _ = package_imports()
    assert_acyclic(graph)
    assert {"fastbp.io.interop", "fastbp.io.npz"} <= graph["fastbp.network"]
    io = {module for module in graph if module.startswith("fastbp.io")}
    assert not any("fastbp.network" in graph[module] for module in io)


def test_imports_for_type_checkers_close_no_cycle_either():
    """A module imported under ``TYPE_CHECKING`` does not import the importer back: type
    checkers and readers see the same one-way layering as the interpreter."""
    graph, _ = package_imports(type_checking=True)
    assert_acyclic(graph)


def test_subpackages_import_each_other_in_one_direction():
    """nn and optim below io, io below training, all of them below network: collapsed to
    the package's top-level modules and subpackages, the imports still form a DAG."""
    graph, _ = package_imports()
    units = {}
    for module, imported in graph.items():
        if module == "fastbp":
            continue  # the package imports every part to export its names
        unit = module.split(".")[1]
        units.setdefault(unit, set()).update(
            other.split(".")[1] for other in imported if other.split(".")[1] != unit
        )
    assert_acyclic(units)
    assert units["nn"] <= {"_core", "_names", "_validate"}
