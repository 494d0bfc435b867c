"""DESIGN.md §3 checked by walking the AST: layers import downward only, codecs
import no I/O library, only ``_transport/`` touches httpcore or h2, no module
reads another module's private members, and the public surface is what
``__all__`` says."""

from __future__ import annotations

import ast
import pathlib

import pytest

import ailib_sc

PKG = pathlib.Path(ailib_sc.__file__).parent

# Lower number = lower layer. A module may import only its own layer or lower.
LAYERS = {
    "_types": 0,
    "_content": 0,
    "_errors": 0,
    "_config": 0,
    "_registry": 0,
    "_secret": 0,
    "_validate": 0,
    "_policy": 0,
    "_tasks": 0,
    "_chunks": 0,
    "_rows": 0,
    "_wire": 1,
    "_sse": 1,
    "_transport": 2,
    "_engine": 3,
    "_retry": 3,
    "_streaming": 4,
    "_batch": 4,
    "_client": 5,
    "_quick": 6,
    "sync": 6,
    "bench": 6,
    "ray": 7,
    "_cli": 7,
    "__main__": 7,
    "__init__": 7,
}
IO_LIBS = {
    "anyio",
    "trio",
    "asyncio",
    "httpcore",
    "h2",
    "h11",
    "socket",
    "ssl",
    "sniffio",
}
SANS_IO = {
    "_secret",
    "_wire",
    "_sse",
    "_types",
    "_content",
    "_validate",
    "_errors",
    "_chunks",
    "_policy",
    "_rows",
}
TRANSPORT_ONLY = {"httpcore", "h2", "hpack"}


def _modules() -> list[pathlib.Path]:
    return [p for p in PKG.rglob("*.py") if "testing" not in p.relative_to(PKG).parts]


def _layer_key(path: pathlib.Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


def _imports(path: pathlib.Path) -> list[tuple[str, int]]:
    """(absolute module name, level) for every import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    rel = path.relative_to(PKG).with_suffix("")
    package = ["ailib_sc", *rel.parts[:-1]]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((a.name, 0) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((name, node.level))
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_layering(path: pathlib.Path) -> None:
    key = _layer_key(path)
    assert key in LAYERS, f"{key} has no layer in the table; add it"
    mine = LAYERS[key]
    for name, _ in _imports(path):
        top = name.split(".")[0]
        if top == "ailib_sc":
            parts = name.split(".")
            if len(parts) == 1:
                continue
            other = parts[1]
            if other == "testing":
                assert key in ("_cli", "__main__"), (
                    f"{path}: only the CLI may use testing"
                )
                continue
            assert LAYERS[other] <= mine, (
                f"{path} (layer {mine}) imports {name} (layer {LAYERS[other]})"
            )
        if key in SANS_IO:
            assert top not in IO_LIBS, f"{path} is sans-I/O but imports {name}"
        if top in TRANSPORT_ONLY:
            assert key == "_transport", f"{path} imports {name}; only _transport/ may"


# namedtuple's public API is spelt with a leading underscore.
_NAMEDTUPLE_API = frozenset({"_replace", "_asdict", "_fields", "_make"})


def _is_private(name: str) -> bool:
    return (
        name.startswith("_")
        and not (name.startswith("__") and name.endswith("__"))
        and name not in _NAMEDTUPLE_API
    )


def _owned_names(tree: ast.Module) -> set[str]:
    """Names a module defines: its functions, classes, module and class level
    assignments, ``__slots__`` entries, and attributes it sets on ``self``/``cls``."""
    owned: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            owned.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            owned.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            owned.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            owned.add(node.value)  # __slots__ entries and the like
    return owned


def _is_module(name: str, level: int, path: pathlib.Path, attr: str) -> bool:
    rel = path.relative_to(PKG).with_suffix("")
    base = PKG.joinpath(*rel.parts[:-1])
    for _ in range(level - 1):
        base = base.parent
    if level == 0:
        base = PKG.parent.joinpath(*name.split("."))
    elif name:
        tail = name.split(".")[len(["ailib_sc", *rel.parts[:-1]]) - level + 1 :]
        base = base.joinpath(*tail)
    return (base / f"{attr}.py").exists() or (base / attr / "__init__.py").exists()


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_no_module_reads_another_modules_private_members(path: pathlib.Path) -> None:
    """``x._name`` is allowed only on ``self``/``cls`` or for a name this module
    defines; ``from m import _name`` only for a module. Shared internals belong
    in a module of their own one layer down (STYLE.md rule 21)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    owned = _owned_names(tree)
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 0 and not base.startswith("ailib_sc"):
                continue
            for alias in node.names:
                if _is_private(alias.name) and not _is_module(
                    base, node.level, path, alias.name
                ):
                    bad.append(f"line {node.lineno}: imports {alias.name}")
        elif isinstance(node, ast.Attribute) and _is_private(node.attr):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if node.attr not in owned:
                bad.append(f"line {node.lineno}: reads .{node.attr}")
    assert not bad, f"{path.relative_to(PKG)} reads private members: {bad}"


def test_private_member_check_catches_a_violation() -> None:
    """The check above is not vacuous: the patterns it must refuse are refused."""
    tree = ast.parse(
        "def f(client):\n    return client._limiter\n"
        "class A:\n    def g(self):\n        return self._x\n"
    )
    owned = _owned_names(tree)
    reads = [
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute)
        and _is_private(n.attr)
        and not (isinstance(n.value, ast.Name) and n.value.id in ("self", "cls"))
        and n.attr not in owned
    ]
    assert reads == ["_limiter"]


def test_testing_package_does_not_use_library_structs() -> None:
    """The fake server's replies must not come from our own wire Structs."""
    for path in (PKG / "testing").rglob("*.py"):
        for name, _ in _imports(path):
            if name.startswith("ailib_sc"):
                assert name.startswith("ailib_sc.testing"), f"{path} imports {name}"


def test_all_is_sorted_tuple_of_public_names() -> None:
    assert isinstance(ailib_sc.__all__, tuple)
    assert list(ailib_sc.__all__) == sorted(ailib_sc.__all__)
    for name in ailib_sc.__all__:
        obj = getattr(ailib_sc, name)
        if isinstance(obj, type) or callable(obj):
            assert obj.__module__ == "ailib_sc", name
            assert obj.__doc__, f"{name} has no docstring"


def test_py_typed_shipped() -> None:
    assert (PKG / "py.typed").exists()
