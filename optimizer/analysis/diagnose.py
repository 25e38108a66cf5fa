"""Why, not just what: infeasibility explained in the instance's terms, and marginal values.

- :func:`explain` solves an *elastic* copy of the program: every soft-able
  requirement (demand, training floor, frontier cluster, budgets, ceiling,
  regional maxima, supply caps, facility power) gets a priced slack, and the
  smallest weighted violation is found.  Each violated requirement becomes a
  sentence with its year, region and amount.  The irreducible infeasible
  subset of the LP relaxation, where HiGHS finds one, names the conflicting
  constraints.
- :func:`marginals` solves an instance and prices the constraints of its plan
  (:mod:`optimizer.solver.duals`: the duals of the LP with the discrete
  decisions fixed, local prices of that LP, not of the MIP; re-solve with a
  step, ``capplan marginal``, for MIP-valid values).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import pandas as pd

from formulations import Commitments, row_label, split_index
from formulations.registry import Violation, elastic_weights, family

from ..instance import Instance
from ..solver import ModelHandle
from ..solver.duals import binding, fixed_lp_marginals

# families whose rows may be violated in the elastic program, with their weights (each family's
# declaration in formulations): a frontier year with no site at all, and physical facility power, weigh
# more, so they are blamed only when nothing else explains the conflict
REQUIREMENTS = elastic_weights("requirement")
LIMITS = elastic_weights("limit")
COMMITMENTS = elastic_weights("commitment")
IIS_SECONDS = 20.0
"""At most this long for the conflicting constraints of the LP relaxation (within the caller's time limit)."""


@dataclass
class Explanation:
    """What makes an instance infeasible, in its own terms.

    ``feasible``: whether the instance has a plan after all; ``violations``: one row per requirement that
    cannot be met or limit that must be exceeded (family, key, amount, unit, message); ``conflict``: the
    constraint names of an irreducible infeasible subset of the LP relaxation, when HiGHS finds one;
    ``messages``: the violations as sentences in the instance's terms.
    """

    feasible: bool
    violations: pd.DataFrame  # family, key, amount, unit, message
    conflict: list[str] = field(default_factory=list)  # constraint names of an IIS of the LP relaxation
    messages: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.feasible:
            return "the instance is feasible"
        lines = ["the instance is infeasible:"] + [f"  - {m}" for m in self.messages]
        if self.conflict:
            shown = ", ".join(self.conflict[:12]) + (" ..." if len(self.conflict) > 12 else "")
            lines.append(f"  conflicting constraints (irreducible subset of the LP relaxation): {shown}")
        return "\n".join(lines)


def explain(inst: Instance, *, commitments: Commitments | None = None, time_limit: float | None = 60.0,
            hold=None) -> Explanation:
    """Explain why ``inst`` (an :class:`~optimizer.instance.Instance`) has no feasible plan (or say that it has
    one), as an :class:`Explanation`.

    With ``commitments`` (the decisions of an earlier plan held, spec v2
    section 6), the committed rows are tried first: when the instance is
    feasible once some of them change, the explanation names those rows.
    ``time_limit`` (seconds, None: none) bounds the whole explanation: every
    elastic solve and the conflict search share it.  ``hold``: decisions held
    at values, ``(variable name, index, value)`` (a past already realised, as
    in a policy simulation): never blamed, since they cannot change.
    """
    deadline = None if time_limit is None else time.perf_counter() + time_limit

    def left() -> float | None:
        return None if deadline is None else deadline - time.perf_counter()

    handle = ModelHandle(inst, commitments=commitments)
    handle.fix(hold or ())
    model = handle.model
    if model.info.trivially_infeasible:
        msgs = [what for _, what in model.info.trivially_infeasible]
        df = pd.DataFrame([{"family": n.split("[")[0], "key": n, "amount": math.nan, "unit": "",
                            "message": w} for n, w in model.info.trivially_infeasible])
        return Explanation(False, df, [n for n, _ in model.info.trivially_infeasible], msgs)

    # first only the requirements may fall short (the answer a planner wants: what cannot be
    # met, by how much); if even that is infeasible, the limits may be exceeded too
    attempts = [REQUIREMENTS, {**REQUIREMENTS, **LIMITS}]
    if commitments is not None:
        attempts.insert(0, COMMITMENTS)
    found = None
    for families in attempts:
        if left() is not None and left() <= 0:
            break
        found = handle.elastic(families, lambda f, index, bound: _scale(model, f, index, bound), left())
        if found is not None:
            break
    if found is None:
        return Explanation(False, pd.DataFrame(columns=["family", "key", "amount", "unit", "message"]),
                           _iis(handle, left()), ["no explanation found within the time limit"])
    records = [_describe(model, name, index, move, commitments) for name, index, move in found]
    records.sort(key=lambda r: (str(r["family"]), str(r["key"])))
    df = pd.DataFrame(records, columns=["family", "key", "amount", "unit", "message"])
    if df.empty:
        return Explanation(True, df)
    return Explanation(False, df, _iis(handle, left()), df.message.tolist())


def _scale(model, name: str, index, bound: float) -> float:
    """What a violation of a row is measured against: its bound, or what its family declares."""
    f = family(name)
    return f.elastic_scale(model, index) if f.elastic_scale is not None else abs(bound)


def _iis(handle: ModelHandle, seconds: float | None) -> list[str]:
    """Constraint names of an irreducible infeasible subset of the LP relaxation, if HiGHS finds one in time."""
    seconds = IIS_SECONDS if seconds is None else min(IIS_SECONDS, seconds)
    if seconds <= 0:
        return []
    return [row_label(handle.model, name, index) for name, index in handle.iis(seconds)]


def _describe(model, name: str, index, move: float, commitments=None) -> dict:
    """A violated row as a sentence with year, region and amount (and the node of a tree), in the words its
    family declares."""
    tree = model._tree
    key, node = split_index(model, name, index)
    f = family(name)
    if f.index == "scenario":  # one row per scenario: that scenario's data
        inst, where = tree.scenario(index).instance, ("" if tree.trivial else f" in scenario {index}")
    else:
        inst, where = tree.data(index[-1] if isinstance(index, tuple) else ""), ""
    label = tuple(key) + ((f"@{node or 'root'}",) if node is not None else ())
    x = Violation(name, tuple(key), abs(move), move, inst, lambda t: tree.label(t, index[-1]), where,
                  model.info.scaling, commitments)
    w = f.words(x) if f.words is not None else None
    if w is None:
        return {"family": name, "key": ",".join(map(str, label)), "amount": abs(move), "unit": "",
                "message": f"{row_label(model, name, index)} violated by {abs(move):g}"}
    return {"family": name, "key": ",".join(map(str, label)), "amount": w.amount, "unit": w.unit,
            "message": w.message}


# --------------------------------------------------------------------------- marginals
def marginals(inst: Instance, *, time_limit: float | None = None) -> pd.DataFrame:
    """Solve ``inst`` and return the fixed-integer LP marginals of its optimal plan (``plan.marginals``).

    Each row: constraint family, year, where (region / chip), whether it binds,
    and the objective change per unit increase of its limit, in reporting
    units (per +$1B of budget, per +100 MW, per +1 unit of supply, per +1
    PFLOP/s of demand or training floor).  These are local prices of the LP
    with the integer decisions fixed, not prices of the MIP.
    """
    from ..pipeline import solve

    return solve(inst, time_limit=time_limit).marginals

__all__ = ["Explanation", "binding", "explain", "fixed_lp_marginals", "marginals"]
