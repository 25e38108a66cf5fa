"""The architecture holds: data flows one way and no import circle exists.

instance -> model (formulations) -> solve -> plan -> reports, with the
analyses (sweeps, marginal values, diagnostics, value of information,
near-optimal ranges) above the solve and the CLI a thin shell on top.  Every
import of the project's own modules, at module level or inside a function
(but not under ``if TYPE_CHECKING:``), is an edge of the graph checked here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("optimizer", "formulations")

# rank of each part: an import may only go to a part of lower or equal rank, and to an equal
# rank only inside the same part
RANKS = {
    "optimizer.errors": 0, "optimizer.files": 0, "optimizer.parallel": 0,
    "optimizer.instance": 1,
    "formulations": 2,
    "optimizer.solver": 3,
    "optimizer.plan": 4,
    "optimizer.pipeline": 5,
    "optimizer.report": 6,
    "optimizer.analysis": 7,
    "optimizer.cli": 9,
    "optimizer": 10, "optimizer.__main__": 10,
}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()

    def resolve(mod: str) -> str | None:
        while mod and mod not in MODULES:  # a name imported from a module, not a submodule
            mod = mod.rpartition(".")[0]
        return mod or None

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.split(".")[0] in PACKAGES:
                        found.add(resolve(a.name))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = here[: len(here) - (child.level - 1)]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                if mod.split(".")[0] not in PACKAGES:
                    continue
                for a in child.names:
                    target = f"{mod}.{a.name}"
                    found.add(target if target in MODULES else resolve(mod))
            visit(child)

    visit(tree)
    found.discard(None)
    found.discard(name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _part(module: str) -> str:
    best = max((p for p in RANKS if module == p or module.startswith(p + ".")), key=len)
    return best


def test_every_module_belongs_to_a_part():
    for m in MODULES:
        assert _part(m) in RANKS, m


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module: the import circles."""
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(comp)

    for v in graph:
        if v not in index:
            strong(v)
    return [sorted(c) for c in comps if len(c) > 1]


def test_no_import_circle():
    assert not circles(GRAPH), f"import circles: {circles(GRAPH)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_data_flows_one_way(module):
    part = _part(module)
    for target in GRAPH[module]:
        tpart = _part(target)
        assert RANKS[tpart] < RANKS[part] or tpart == part, (
            f"{module} ({part}) imports {target} ({tpart}): against the flow "
            "instance -> model -> solve -> plan -> reports / analyses -> cli")


def test_the_checks_can_fail():
    """A circle is found, and the graph has relative, absolute and function-level imports."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
    assert "optimizer.instance" in GRAPH["optimizer.plan.core"]
    assert "optimizer.pipeline" in GRAPH["optimizer.analysis.diagnose"]  # a function-level import
    assert "optimizer" not in GRAPH["formulations.model"]  # TYPE_CHECKING only
    assert not any(t.startswith("optimizer") for t in GRAPH["formulations.model"])


def test_every_package_folder_is_a_regular_package():
    """pyproject's `packages.find` ships only folders with an `__init__.py`: a folder without one works from
    a clone (as a namespace package) and is silently missing from an installed wheel."""
    for top in ("optimizer", "formulations"):
        for folder in sorted({p.parent for p in (ROOT / top).rglob("*.py")}):
            assert (folder / "__init__.py").exists(), f"{folder.relative_to(ROOT)} has no __init__.py"
