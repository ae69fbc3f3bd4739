"""Each module of fastbp touches an underscore attribute of another object only where that
attribute is its own: the modules around a Network reach it through ``net.internals``, a
layer's or an optimizer's private parts stay in the module that defines them, and both
backends' networks offer the members the callers use."""

from __future__ import annotations

import ast
import pathlib
import pickle
import sys

import numpy as np
import pytest

import fastbp as fb
from fastbp import _core
from fastbp.network import NetworkInternals
from fastbp.reference import ReferenceNetwork

PACKAGE = pathlib.Path(fb.__file__).parent

#: The deliberate reaches, ``base.attribute`` as written, each with its reason.
ALLOWED = {
    "_core._gemm_set_blocks": "the compiled module's setter, private to keep it out of "
    "fastbp._core's documented surface: only the tuner sets cache blocks",
    "_core._gemm_set_wide_from": "the compiled module's setter, private as _gemm_set_blocks",
    "_core._gemm_set_split_pack_cost": "the compiled module's setter of the thread split, "
    "private as _gemm_set_blocks: only the tuner sets it",
    "_core._set_work_per_thread": "the compiled module's setter of the one-thread threshold, "
    "private as _gemm_set_blocks: only the tuner sets it",
}


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def own_names(tree: ast.Module) -> set:
    """The private names a module defines: its functions, classes and module or class
    variables, the attributes it sets on ``self`` or ``cls``, and those it names in a
    string (``object.__setattr__(self, "_spec", ...)``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if is_self(node.value):
                names.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)
    names -= {"_"} - string_names(tree)  # a throwaway variable; "_" + name builds attributes
    return {name for name in names if is_private(name)}


def string_names(tree: ast.Module) -> set:
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value == "_"}


def is_self(node: ast.expr) -> bool:
    """``self``, ``cls``, ``super()`` or ``type(self)``: the object's own class."""
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and (node.func.id == "super" or (node.func.id == "type" and is_self(node.args[0])))
    )


def private_reaches(tree: ast.Module) -> list:
    """``(line, "base.attribute")`` for each underscore attribute read or written on an
    object other than ``self``/``cls``, and each built by ``getattr``/``setattr`` from a
    name that starts with an underscore."""
    reaches = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr) and not is_self(node.value):
            reaches.append((node.lineno, f"{ast.unparse(node.value)}.{node.attr}", node.attr))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and not is_self(node.args[0])
        ):
            name = node.args[1]
            if isinstance(name, ast.BinOp) and isinstance(name.left, ast.Constant):
                name = name.left  # "_" + name
            if isinstance(name, ast.Constant) and is_private(str(name.value)):
                reaches.append((node.lineno, ast.unparse(node), str(name.value)))
    return reaches


def foreign_reaches() -> list:
    """Each reach into an underscore attribute that the module does not define itself:
    ``module:line: base.attribute``."""
    trees = {path: ast.parse(path.read_text()) for path in sorted(PACKAGE.rglob("*.py"))}
    owners = {}
    for path, tree in trees.items():
        for name in own_names(tree):
            owners.setdefault(name, set()).add(path)
    found = []
    for path, tree in trees.items():
        for line, text, name in private_reaches(tree):
            if path in owners.get(name, ()) or text in ALLOWED:
                continue
            found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {text}")
    return found


def test_no_module_reaches_into_another_objects_private_attributes():
    assert foreign_reaches() == []


def test_the_allowed_reaches_are_all_still_made():
    made = {
        text
        for tree in map(ast.parse, map(pathlib.Path.read_text, PACKAGE.rglob("*.py")))
        for _, text, _ in private_reaches(tree)
    }
    assert set(ALLOWED) <= made


def public_members(cls) -> set:
    return {name for name in dir(cls) if not name.startswith("_")}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_numpy_backend_has_every_member_of_the_compiled_network(dtype):
    def core(backend):
        layers = [fb.Dense(2, 3), fb.BatchNorm(3), fb.Dense(3, 1)]
        return fb.Network(layers, fb.MSELoss(), dtype=dtype, backend=backend).internals.core

    compiled, reference = core("cpu"), core("numpy")
    assert isinstance(compiled, (_core.Network32, _core.Network64))
    assert isinstance(reference, ReferenceNetwork)
    assert public_members(reference) >= public_members(compiled)


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_the_internals_work_on_every_backend(backend, rng):
    net = fb.Network(
        [fb.Dense(3, 4), fb.ReLU(), fb.BatchNorm(4), fb.Dense(4, 2)],
        fb.SoftmaxCrossEntropyLoss(),
        backend=backend,
        seed=0,
    )
    internals = net.internals
    assert isinstance(internals, NetworkInternals)
    assert public_members(NetworkInternals) == {
        "core", "rng", "host_parameters", "batch", "check", "forward", "loss_value",
        "bind_optimizer", "forget", "recount", "apply_update",
    }  # fmt: skip
    x, t = internals.batch(rng.normal(size=(6, 3)), [0, 1, 1, 0, 1, 0])
    internals.check(x, t)
    assert t.dtype == np.int64 and x.dtype == net.dtype
    np.testing.assert_array_equal(internals.forward(x), net.predict(x))
    assert internals.loss_value(x, t) == net.loss(x, t)
    internals.host_parameters()
    assert internals.core.params is not None and internals.core.n_state == 8
    np.testing.assert_array_equal(internals.core.params, net.params)
    optimizer = fb.SGD(lr=0.1)
    state, core = internals.bind_optimizer(optimizer)
    assert core is internals.core and state.steps == 0
    net.backward(x, t)
    internals.apply_update(optimizer)
    assert state.steps == 1 == core.updates
    state.steps = 0
    internals.recount(state)
    assert state.steps == 1
    internals.forget(optimizer)
    assert internals.bind_optimizer(optimizer)[0] is state
    assert isinstance(internals.rng, np.random.Generator)


def private_reads_from_other_modules(monkeypatch) -> set:
    """Records ``(module, name)`` for each underscore attribute of a Network that code of
    another fastbp module reads while the test runs (the lock decorator excepted, which
    network.py names its lock to)."""
    reads, read = set(), object.__getattribute__

    def watched(net, name):
        if is_private(name):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.startswith("fastbp") and caller not in ("fastbp.network", "fastbp._locks"):
                reads.add((caller, name))
        return read(net, name)

    monkeypatch.setattr(fb.Network, "__getattribute__", watched)
    return reads


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_training_saving_and_checking_read_no_private_attribute_of_the_network(
    backend, monkeypatch, tmp_path, rng
):
    reads = private_reads_from_other_modules(monkeypatch)
    X, T = rng.normal(size=(40, 3)), rng.integers(0, 2, size=40)
    net = fb.Network(
        [fb.Dense(3, 4), fb.Tanh(), fb.BatchNorm(4), fb.Dense(4, 2)],
        fb.SoftmaxCrossEntropyLoss(),
        dtype="float64",
        backend=backend,
        seed=0,
    )
    optimizer = fb.Adam(lr=0.01, max_grad_norm=1.0)
    net.fit(X, T, epochs=3, batch_size=8, optimizer=optimizer, validation_split=0.25,
            metrics=["accuracy"], early_stopping=True, patience=1,
            callbacks=[fb.callbacks.ModelCheckpoint(tmp_path / "best")])  # fmt: skip
    net.evaluate(X, T, metrics=["accuracy"])
    net.train_step(X, T, optimizer)
    net.backward(X, T)
    optimizer.step(net)
    fb.Network.load(net.save(tmp_path / "net"))
    pickle.loads(pickle.dumps(net))
    assert fb.gradcheck(net, X[:4], T[:4]) < 1e-4
    with pytest.raises(FloatingPointError):
        net.fit(X * 1e200, T, epochs=2, batch_size=8, optimizer=fb.SGD(lr=1e200))
    assert reads == set()


def test_the_watch_sees_a_private_read(monkeypatch):
    reads = private_reads_from_other_modules(monkeypatch)
    net = fb.Network([fb.Dense(2, 1)], fb.MSELoss())
    assert net._core is not None and reads == set()  # the test's own reads are not a module's
    exec("net._core", {"__name__": "fastbp.elsewhere", "net": net})
    assert reads == {("fastbp.elsewhere", "_core")}


def test_the_checker_finds_a_reach_into_a_network():
    tree = ast.parse("def f(net, layer):\n    net._core.params\n    setattr(layer, '_' + n, 0)\n")
    assert sorted(text for _, text, _ in private_reaches(tree)) == [
        "net._core",
        "setattr(layer, '_' + n, 0)",
    ]
