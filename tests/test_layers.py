"""The package's layers (issue 13, "the house to aim for"): no import runs upward, no circle.

Every ``import`` in ``src/genrec`` is read from the source (an AST walk: nothing is
imported, so the test costs milliseconds and sees imports inside functions and under
``TYPE_CHECKING`` too). A module may import its own layer or any lower one; the
top-level parts may not import each other in a circle, even within one layer.

A new top-level module or package must be given a layer here: the test fails on a part
it does not know, so nobody adds one without deciding where it sits.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "genrec"

#: part of the package → layer (the same table as the layer hook)
LAYERS = {
    # ground: errors, paths, atomic IO, config, ranking types and metric kernels, the version
    "errors": 1, "paths": 1, "_io": 1, "config": 1, "ranking": 1, "_version": 1, "presets": 1,
    # data: readers, catalogue, sequences, splits; prompts
    "data": 2, "prompts": 2,
    "model": 3,
    "decoding": 4,
    # training may decode to validate; GenRec may train to fit
    "training": 5, "recommenders": 5,
    "evaluation": 6,
    # the library faces; `genrec` itself (the package's __init__) hands out the API lazily
    "api": 7, "quickstart": 7, "genrec": 7,
    # thin faces on top
    "serving": 8, "cli": 8,
    "__main__": 9,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(dotted: str) -> bool:
    base = SRC.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def part_of(dotted: str) -> str | None:
    """The top-level part a ``genrec...`` module belongs to (``genrec`` for the package face)."""
    parts = dotted.split(".")
    if parts[0] != "genrec":
        return None
    return parts[1] if len(parts) > 1 else "genrec"


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported genrec module) for every import in one file, relative ones resolved.

    ``from X import name`` counts as importing ``X.name`` when that is a module of the
    package, else ``X`` (so ``from .. import __version__`` imports the package face).
    """
    me = _module_name(path)
    package = me.split(".") if path.name == "__init__.py" else me.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for a in node.names:
                sub = f"{module}.{a.name}"
                out.append((node.lineno, sub if a.name != "*" and _is_module(sub) else module))
    return [(line, m) for line, m in out if part_of(m)]


def _graph() -> tuple[dict[str, set[str]], list[str], list[str]]:
    """Part → parts it imports; upward imports; modules in parts with no layer."""
    edges: dict[str, set[str]] = {}
    upward, unknown = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = part_of(_module_name(path))
        rel = path.relative_to(SRC.parent)
        if me not in LAYERS:
            unknown.append(f"{rel} (part {me!r})")
            continue
        for line, target in imports(path):
            them = part_of(target)
            if them == me:
                continue
            edges.setdefault(me, set()).add(them)
            if them not in LAYERS:
                unknown.append(f"{rel}:{line} imports {target} (part {them!r})")
            elif LAYERS[them] > LAYERS[me]:
                upward.append(f"{rel}:{line} ({me}, layer {LAYERS[me]}) imports {target} ({them}, layer {LAYERS[them]})")
    return edges, sorted(set(upward)), sorted(set(unknown))


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one part (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

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
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_part_has_a_layer():
    _, _, unknown = _graph()
    assert not unknown, "give these parts a layer in tests/test_layers.py:\n" + "\n".join(unknown)


def test_no_import_runs_up_the_layers():
    _, upward, _ = _graph()
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_no_import_circle_between_parts():
    edges, _, _ = _graph()
    cycles = _cycles(edges)
    detail = [
        f"{' ↔ '.join(c)}: " + "; ".join(f"{a} → {b}" for a in c for b in sorted(edges.get(a, set()) & set(c)))
        for c in cycles
    ]
    assert not cycles, "parts that import each other in a circle:\n" + "\n".join(detail)


def test_the_checks_see_what_they_must():
    # the walk resolves relative imports and tells a submodule from a name in a package
    found = {m for _, m in imports(PACKAGE / "decoding" / "__init__.py")}
    assert {"genrec.decoding.trie", "genrec.errors"} <= found
    assert "genrec.decoding.Trie" not in found
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
