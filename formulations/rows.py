"""How rows are written and named: ``lhs <= rhs`` with constant rows checked at build, and row labels."""

from __future__ import annotations

import pyomo.environ as pyo
from pyomo.contrib.fbbt.fbbt import compute_bounds_on_expr
from pyomo.core.expr.numvalue import is_fixed

from .registry import FAMILIES

FEAS_TOL = 1e-9


def leq(m, name: str, key, lhs, rhs, what):
    """``lhs <= rhs``; a constraint without variables is checked here instead.

    A trivially violated one makes the instance infeasible: it is recorded
    with ``what()`` (a message in the instance's terms) and the solver is
    never called.
    """
    body = lhs - rhs
    scale = tolerance(rhs)
    lower, upper = compute_bounds_on_expr(body)  # from variable bounds: every plan has body >= lower
    label = row_label(m, name, key)
    if is_fixed(body) or (lower is not None and lower == upper):  # no variable with a nonzero coefficient
        m._constant_rows.append((label, lhs, rhs, what))
        if lower > scale:
            m._infeasible.append((label, what()))
        return pyo.Constraint.Skip
    if lower is not None and lower > scale:
        m._infeasible.append((label, what()))
    return lhs <= rhs


def split_index(m, family: str, index) -> tuple[tuple, str | None]:
    """A row or column index as (key without the node, node): the node is the last element of every
    node-year family, and the scenario id is the whole index of a per-scenario family (the total budget,
    CVaR).

    In a one-node model (a v1 instance) the node is ``None``: keys read as in spec v1
    (``demand[eu,2028]``)."""
    key = index if isinstance(index, tuple) else (() if index is None else (index,))
    kind = FAMILIES[family].index if family in FAMILIES else "node"
    if kind == "scenario":
        node = key[0] if key else None
        key = ()
    elif key and kind == "node":
        key, node = key[:-1], key[-1]
    else:
        node = None
    return key, (None if m._tree.trivial else node)


def row_label(m, family: str, index) -> str:
    """The name of a row in reports: ``family[key]`` (``demand[eu,2028]``), with the node where the
    tree has branches (``demand[eu,2028,@high]``), or the family alone (``budget``)."""
    key, node = split_index(m, family, index)
    parts = [*map(str, key)] + ([f"@{node or 'root'}"] if node is not None else [])
    return f"{family}[{','.join(parts)}]" if parts else family


def tolerance(rhs) -> float:
    """How far a row may be violated before it counts as violated (relative to a fixed right-hand side)."""
    return FEAS_TOL * max(1.0, abs(pyo.value(rhs)) if is_fixed(rhs) else 1.0)


def lo(expr) -> float:
    """A lower bound of ``expr`` from its variables' bounds (-inf if none)."""
    low = compute_bounds_on_expr(expr)[0]
    return -float("inf") if low is None else low


def hi(expr) -> float:
    """An upper bound of ``expr`` from its variables' bounds (+inf if none)."""
    high = compute_bounds_on_expr(expr)[1]
    return float("inf") if high is None else high
