"""The package's shape, read from its own source: the import graph, private names, module sizes.

NOTE [Package shape]
The rules hold for every module of ``spectrumkit/`` and are read with :mod:`ast` (no third-party
tool, nothing imported):

- no import cycle between modules (a package's ``__init__`` counts as a module);
- ``spectrumkit/study/`` imports nothing from ``spectrumkit/cli/`` or ``spectrumkit/figures/``
  (studies run without the command line or the plotting stack);
- at most :data:`MAX_PRIVATE_IMPORTS` underscore names are imported from one module into another:
  a name two modules share is a plain name in a private module (its file name starts with ``_``);
- no module over :data:`MAX_LINES` lines.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections import defaultdict
from pathlib import Path

import pytest

import spectrumkit

PACKAGE = Path(spectrumkit.__file__).parent
MAX_PRIVATE_IMPORTS = 5
MAX_LINES = 500
MAX_PUBLIC_NAMES = 40


def _modules() -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (file, is a package __init__)}`` for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        if is_init:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_init)
    return out


MODULES = _modules()


def _resolve(module: str, is_init: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` statement reads from."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_init else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports() -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """The import graph between the package's modules, and the underscore names imported
    across modules as ``(importer, source, name)``. Imports inside functions count too: a lazy
    import is still a dependency."""
    edges: dict[str, set[str]] = defaultdict(set)
    private: list[tuple[str, str, str]] = []
    for module, (path, is_init) in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges[module].update(a.name for a in node.names if a.name in MODULES)
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(module, is_init, node)
                if source not in MODULES:
                    continue
                for alias in node.names:
                    child = f"{source}.{alias.name}"
                    if child in MODULES:  # ``from pkg import submodule``
                        edges[module].add(child)
                        continue
                    edges[module].add(source)
                    name = alias.name
                    if name.startswith("_") and not name.startswith("__") and source != module:
                        private.append((module, source, name))
    return edges, private


EDGES, PRIVATE = _imports()


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(set(edges) | {w for targets in edges.values() for w in targets}):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_known_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_scan_sees_the_package():
    assert "spectrumkit.study.runner" in MODULES
    assert "spectrumkit.errors" in EDGES["spectrumkit.masks"]


def test_no_import_cycle_between_modules():
    assert _cycles(EDGES) == []


def test_studies_import_neither_the_cli_nor_the_figures():
    bad = sorted((m, t) for m, targets in EDGES.items() if m.startswith("spectrumkit.study")
                 for t in targets
                 if t.startswith(("spectrumkit.cli", "spectrumkit.figures")))
    assert bad == []


def test_few_private_names_cross_modules():
    assert len(PRIVATE) <= MAX_PRIVATE_IMPORTS, PRIVATE


def test_no_module_over_the_line_limit():
    long = {m: n for m, (p, _) in MODULES.items()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_public_face_is_small():
    assert len(spectrumkit.__all__) <= MAX_PUBLIC_NAMES
    assert len(set(spectrumkit.__all__)) == len(spectrumkit.__all__)
    for name in spectrumkit.__all__:
        assert hasattr(spectrumkit, name), name


@pytest.mark.parametrize("info", [i for i in pkgutil.walk_packages(spectrumkit.__path__,
                                                                   "spectrumkit.")
                                  if not i.name.endswith(".__main__")], ids=lambda i: i.name)
def test_every_module_imports_as_a_module(info):
    """``import spectrumkit.<module> as m`` gives that module: no function shadows it."""
    module = importlib.import_module(info.name)
    parent, _, leaf = info.name.rpartition(".")
    assert getattr(importlib.import_module(parent), leaf) is module


def test_the_public_names_are_the_lazy_exports():
    assert spectrumkit.__all__ == list(spectrumkit._EXPORTS)
