"""The package's modules import each other at module level only, in a DAG: no import
cycle held together by imports inside functions."""

from __future__ import annotations

import ast
import pathlib

import fastbp

PACKAGE = pathlib.Path(fastbp.__file__).parent


def package_imports() -> tuple[dict, list]:
    """``(graph, local)``: module -> package modules it imports at module level, and the
    ``(module, imported)`` pairs imported inside functions or classes."""
    graph, local = {}, []
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        graph[path.stem] = set()
        typing_only = {
            id(n) for block in tree.body if is_type_checking_block(block) for n in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue  # imported for type checkers alone, never at run time
            if not (isinstance(node, ast.ImportFrom) and node.level == 1):
                continue
            names = [node.module] if node.module else [a.name for a in node.names]
            for name in names:
                if (PACKAGE / f"{name}.py").exists():
                    if node in tree.body:
                        graph[path.stem].add(name)
                    else:
                        local.append((path.stem, name))
    return graph, local


def is_type_checking_block(node) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )


def test_no_function_local_imports_of_package_modules():
    # __init__'s set_num_threads keeps _validate's names out of the package namespace.
    assert package_imports()[1] == [("__init__", "_validate")]


def test_module_level_imports_form_a_dag():
    graph, _ = package_imports()
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
    assert {"interop", "io"} <= graph["network"]
    assert "network" not in graph["io"] | graph["interop"]
