"""bptt's modules import each other without a cycle (issue 18): every import counts, including
those inside functions, so the layering holds for readers as well as for the interpreter.

The layers, bottom up: settings, cells, kernels → functional → layers, losses, optim → data, io
(files: configurations, arrays and layers, never a network) → model → train → tmva (options,
the layers they describe, the network and its training arguments, the tutorial) → cli. A cycle makes
two modules one unit that cannot be read, tested or replaced alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

import bptt

PACKAGE = Path(bptt.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _targets(module: str, is_package: bool, node: ast.AST, known: set[str]) -> set[str]:
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".")
            if not is_package:
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            stem = ".".join(base + ([node.module] if node.module else []))
        else:
            stem = node.module or ""
        names = [stem] + [f"{stem}.{a.name}" for a in node.names]
    return {n for n in names if n in known}


def import_graph() -> dict[str, set[str]]:
    """module → the bptt modules it imports (anywhere in its file).

    Importing ``bptt.a.b`` runs ``bptt/a/__init__.py`` first, so it is an edge to ``bptt.a`` too.
    An import of a module's own ancestor package (``from .. import x`` inside ``bptt.io``) is not
    an edge: a package's ``__init__`` runs before its modules in any case; nor is the root
    package ``bptt``, inside which every module is.
    """
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges: set[str] = set()
        for node in ast.walk(tree):
            edges |= _targets(name, path.name == "__init__.py", node, known)
        # importing bptt.a.b runs bptt/a/__init__.py first: an edge to each package on the way
        # (but the root package, which every module is inside)
        for t in list(edges):
            parts = t.split(".")
            edges |= {".".join(parts[:k]) for k in range(2, len(parts))} & known
        graph[name] = {t for t in edges if t != name and not name.startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    # bptt.model imports bptt.train inside Sequential.fit, not at the top of the file
    assert "bptt.train" in graph["bptt.model"]
    assert "bptt.functional" in graph["bptt.layers.recurrent"] or any(
        t.startswith("bptt.functional") for t in graph["bptt.layers.recurrent"])


def test_no_import_cycle_in_bptt():
    found = cycles(import_graph())
    assert not found, "import cycles (each line one cycle's modules):\n" + "\n".join(" ↔ ".join(c) for c in found)


def test_the_graph_sees_the_packages_an_import_runs():
    # bptt.model imports bptt.tmva.layers inside Sequential.from_tmva: bptt/tmva/__init__.py runs too
    graph = import_graph()
    assert {"bptt.tmva", "bptt.tmva.layers"} <= graph["bptt.model"]


def test_the_tmva_package_parses_without_the_network():
    # bptt.model imports bptt.tmva: the package's __init__ must not import bptt.model back
    graph = import_graph()
    assert "bptt.model" not in graph["bptt.tmva"]
    assert "bptt.model" not in graph["bptt.tmva.layers"]


def test_io_never_imports_the_network():
    graph = import_graph()
    offenders = {m: sorted(t for t in ts if t == "bptt.model" or t.startswith("bptt.train"))
                 for m, ts in graph.items() if m.startswith("bptt.io")}
    assert not {m: t for m, t in offenders.items() if t}, offenders
