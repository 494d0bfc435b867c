"""DESIGN.md §3 checked by walking imports: layers import downward only, codecs
import no I/O library, only ``_transport/`` touches httpcore or h2, and the
public surface is what ``__all__`` says."""

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
    "_validate": 0,
    "_policy": 0,
    "_tasks": 0,
    "_chunks": 0,
    "_wire": 1,
    "_sse": 1,
    "_transport": 2,
    "_client": 3,
    "_streaming": 3,
    "_batch": 3,
    "_retry": 3,
    "_quick": 3,
    "_cli": 4,
    "__main__": 4,
    "__init__": 4,
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
    "_wire",
    "_sse",
    "_types",
    "_content",
    "_validate",
    "_errors",
    "_chunks",
    "_policy",
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
