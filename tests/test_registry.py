"""Every constraint family, parameter and variable of the model is declared once, and the declarations hold.

- every component of a built model (over instances that together use every feature) has its declaration;
- the structure key never lets a model be updated in place with stale values: for every number of several
  instances, changed alone, either the key changes (the model is rebuilt) or the model updated in place
  gives HiGHS the same program as a model built afresh (checked array by array);
- the tables of docs/model.md are the ones the declarations generate;
- and each of these checks can fail (shown by breaking what it checks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyomo.environ as pyo
import pytest

import formulations.model as fm
from formulations import FAMILIES, PARAMETERS, VARIABLES, build_model, structure_key
from formulations.commitments import Commitments
from formulations.registry import DOC_END, DOC_START, ROLES, markdown_tables
from optimizer import load_instance
from optimizer.errors import InstanceError
from optimizer.instance import plain
from optimizer.instance.generate import generate_instance
from optimizer.solver import ModelHandle

ROOT = Path(__file__).resolve().parent.parent
INSTANCES = ROOT / "instances"
# together: annual budget, ceiling, regional maxima, supply caps, frontier cluster, training floor, unmet
# penalty, cross-region serving, installed chips, opex, salvage, min_cost, a tree with CVaR
COVERING = ["tiny-annual-budget.yaml", "tiny-power-ceiling.yaml", "tiny-frontier-cluster.yaml",
            "tiny-cross-region-serving.yaml", "tiny-salvage-min-cost.yaml", "tiny-tree-cvar.yaml",
            "tiny-tree-chip-delay.yaml"]


def _models():
    for name in COVERING:
        yield name, build_model(load_instance(INSTANCES / name))
    inst = load_instance(INSTANCES / "tiny-commit.yaml")
    yield "tiny-commit.yaml (committed)", build_model(inst, commitments=Commitments((2026,), {}, {}))
    yield "generated", build_model(load_instance(generate_instance(3, 3, 5, seed=1)))


def undeclared(m) -> list[str]:
    """Components of a built model without a declaration."""
    out = [c.name for c in m.component_objects(pyo.Constraint) if c.name not in FAMILIES]
    out += [p.name for p in m.component_objects(pyo.Param) if p.mutable and p.name not in PARAMETERS]
    return out + [v.name for v in m.component_objects(pyo.Var) if v.name not in VARIABLES]


def test_every_component_of_the_model_is_declared():
    seen = {"families": set(), "params": set(), "vars": set()}
    for name, m in _models():
        assert not undeclared(m), f"{name}: no declaration for {undeclared(m)}"
        seen["families"] |= {c.name for c in m.component_objects(pyo.Constraint)}
        seen["params"] |= {p.name for p in m.component_objects(pyo.Param) if p.mutable}
        seen["vars"] |= {v.name for v in m.component_objects(pyo.Var)}
    # and nothing is declared that no model has
    assert seen["families"] == set(FAMILIES)
    assert seen["params"] == set(PARAMETERS)
    assert seen["vars"] == set(VARIABLES)


def test_declarations_are_complete():
    for f in FAMILIES.values():
        assert f.title and f.math and f.unit and f.role in ROLES, f.name
        if f.role in ("requirement", "limit", "commitment"):
            assert f.elastic_weight is not None and f.words is not None, f"{f.name}: explain cannot relax it"
        if f.role == "definition":
            assert f.marginal_unit is None and f.elastic_weight is None, f.name
    for p in PARAMETERS.values():
        assert p.unit and p.description and p.fields, p.name
    for v in VARIABLES.values():
        assert v.title and v.unit and v.domain in ("integer", "binary", "continuous"), v.name


def test_the_docs_hold_the_generated_tables():
    text = (ROOT / "docs" / "model.md").read_text()
    block = text.split(DOC_START, 1)[1].split(DOC_END, 1)[0].strip()
    assert block == markdown_tables().strip(), "docs/model.md is out of date: python -m formulations --write " \
                                               "docs/model.md"


# ------------------------------------------------------------------ the structure key


def _numbers(obj, path=()):
    """Every number of a raw instance with its key path (booleans and years of series left out)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if path and path[0] == "uncertainty":
                continue
            yield from _numbers(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, path + (i,))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield path, obj


def _set(raw, path, value):
    node = raw
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


def _lp(handle):
    """The program HiGHS holds as arrays, its matrix as (row, column, value) triplets in row order (HiGHS
    keeps it row-wise or column-wise depending on how it was last changed)."""
    lp = handle.highs.getLp()
    a = lp.a_matrix_
    start, index, value = np.array(a.start_), np.array(a.index_), np.array(a.value_)
    outer = np.repeat(np.arange(len(start) - 1), np.diff(start))
    rows, cols = (outer, index) if int(a.format_) == 2 else (index, outer)  # 2: row-wise
    keep = value != 0
    order = np.lexsort((cols[keep], rows[keep]))
    return {"cost": np.array(lp.col_cost_), "offset": np.array([lp.offset_]), "lo": np.array(lp.col_lower_),
            "hi": np.array(lp.col_upper_), "rlo": np.array(lp.row_lower_), "rhi": np.array(lp.row_upper_),
            "rows": rows[keep][order], "cols": cols[keep][order], "value": value[keep][order],
            "int": np.array([int(x) for x in lp.integrality_])}


def _same_program(a: dict, b: dict) -> bool:
    for k in a:
        if a[k].shape != b[k].shape:
            return False
        x, y = a[k], b[k]
        if k in ("rows", "cols", "int"):
            if not np.array_equal(x, y):
                return False
        elif not np.allclose(x, y, rtol=1e-12, atol=0.0, equal_nan=True):
            return False
    return True


def stale_updates(inst, key=structure_key) -> tuple[list[str], int]:
    """The numbers of ``inst`` whose change alone keeps ``key`` but gives, updated in place, another program
    than a model built afresh; and how many changes were updated in place."""
    raw = plain(inst.raw)
    base = ModelHandle(inst, key=key(inst))
    stale, in_place = [], 0
    for path, value in _numbers(raw):
        changed = plain(inst.raw)
        new = value + 1 if isinstance(value, int) else value * 1.1 + 1e-3
        if isinstance(value, int) and path and path[-1] in ("start", "end"):
            continue  # the horizon: every index changes
        _set(changed, path, new)
        try:
            other = load_instance(changed)
        except InstanceError:
            continue
        k = key(other)
        if k != base.key:
            continue
        handle = ModelHandle(inst, key=base.key)
        handle.size()  # handed to HiGHS: the update goes through update_parameters, as in a sweep
        assert handle.update(other, key=k)
        in_place += 1
        fresh = ModelHandle(other, scaling=handle.model._S)
        if not _same_program(_lp(handle), _lp(fresh)):
            stale.append(".".join(map(str, path)))
    return stale, in_place


@pytest.mark.parametrize("name", ["tiny-annual-budget.yaml", "tiny-frontier-cluster.yaml",
                                  "tiny-cross-region-serving.yaml", "tiny-salvage-min-cost.yaml",
                                  "tiny-tree-cvar.yaml", "generated"])
def test_the_structure_key_never_keeps_a_stale_model(name):
    inst = load_instance(generate_instance(2, 2, 4, seed=3) if name == "generated" else INSTANCES / name)
    stale, in_place = stale_updates(inst)
    assert not stale, f"updated in place with stale values after changing {stale}"
    assert in_place >= (10 if name == "generated" else 2)  # parameters' changes were updated in place


def test_the_structure_key_check_can_fail(monkeypatch):
    """A key that forgets a field the model reads (the PUE of each region) is caught."""
    real = fm.data_key

    def forgetful(inst):
        return tuple(item for item in real(inst) if not item[0].endswith(".pue"))

    monkeypatch.setattr(fm, "data_key", forgetful)
    inst = load_instance(INSTANCES / "tiny-annual-budget.yaml")
    stale, _ = stale_updates(inst)
    assert any(p.endswith(".pue") for p in stale), stale


def test_the_component_check_can_fail():
    m = build_model(load_instance(INSTANCES / "tiny-supply-cap.yaml"))
    m.undeclared = pyo.Constraint(expr=sum(m.n.values()) <= 10)
    assert undeclared(m) == ["undeclared"]
