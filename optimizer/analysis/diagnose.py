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
from dataclasses import dataclass, field

import highspy
import pandas as pd

from formulations import Commitments, build_model, row_label, split_index

from ..instance import Instance
from ..solver import attach
from ..solver.duals import binding, fixed_lp_marginals, row_names

# families whose rows may be violated in the elastic program, with a weight
# multiplier: a frontier year with no site at all, and physical facility power,
# are blamed only when nothing else explains the conflict
REQUIREMENTS = {"demand": 1.0, "training": 1.0, "frontier": 1.0, "frontier_pick": 100.0}
LIMITS = {"budget": 1.0, "budget_annual": 1.0, "ceiling": 1.0, "region_max": 1.0, "supply": 1.0,
          "facility": 10.0}
COMMITMENTS = {"commit_units": 1.0, "commit_blocks": 1.0}


@dataclass
class Explanation:
    """What makes an instance infeasible, in its own terms."""

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


def _persistent(model):
    opt, _ = attach(model)
    h = opt._solver_model
    h.setOptionValue("output_flag", False)
    return opt, h, row_names(opt)


def explain(inst: Instance, *, commitments: Commitments | None = None, time_limit: float = 60.0) -> Explanation:
    """Explain why ``inst`` has no feasible plan (or say that it has one).

    With ``commitments`` (the decisions of an earlier plan held, spec v2
    section 6), the committed rows are tried first: when the instance is
    feasible once some of them change, the explanation names those rows.
    """
    model = build_model(inst, commitments=commitments)
    if model.info.trivially_infeasible:
        msgs = [what for _, what in model.info.trivially_infeasible]
        df = pd.DataFrame([{"family": n.split("[")[0], "key": n, "amount": math.nan, "unit": "",
                            "message": w} for n, w in model.info.trivially_infeasible])
        return Explanation(False, df, [n for n, _ in model.info.trivially_infeasible], msgs)

    S = model.info.scaling
    # first only the requirements may fall short (the answer a planner wants: what cannot be
    # met, by how much); if even that is infeasible, the limits may be exceeded too
    attempts = [REQUIREMENTS, {**REQUIREMENTS, **LIMITS}]
    if commitments is not None:
        attempts.insert(0, COMMITMENTS)
    for families in attempts:
        found = _elastic(model, families, time_limit)
        if found is not None:
            break
    else:
        return Explanation(False, pd.DataFrame(columns=["family", "key", "amount", "unit", "message"]),
                           _iis(model), ["no explanation found within the time limit"])
    records = [_describe(model, S, family, index, abs(move), move, commitments)
               for family, index, move in found]
    records.sort(key=lambda r: (str(r["family"]), str(r["key"])))
    df = pd.DataFrame(records, columns=["family", "key", "amount", "unit", "message"])
    if df.empty:
        return Explanation(True, df)
    return Explanation(False, df, _iis(model), df.message.tolist())


def _elastic(model, families: dict[str, float], time_limit: float):
    """Minimum weighted relative violation of ``families``; None if still infeasible."""
    opt, h, rows = _persistent(model)
    lp = h.getLp()
    ncol = lp.num_col_
    # elastic program: minimise weighted relative violations, original objective dropped
    h.changeColsCost(ncol, list(range(ncol)), [0.0] * ncol)
    h.changeObjectiveSense(highspy.ObjSense.kMinimize)
    slacks = {}
    for row, (family, index) in rows.items():
        if family not in families:
            continue
        lo, hi = lp.row_lower_[row], lp.row_upper_[row]
        for sign, bound in ((-1.0, hi), (1.0, lo)):  # -1: may exceed an upper bound; +1: fall short of a lower
            if abs(bound) >= highspy.kHighsInf:
                continue
            scale = abs(bound)
            if family == "frontier":  # rows read f*eta*u*xT - C z >= 0: measure against C
                g, r, t, v = index
                scale = model._tree.data(v).training.frontier_cluster_pflops[t] / model.info.scaling.compute_pflops
            weight = families[family] / max(1.0, scale)
            h.addCol(weight, 0.0, highspy.kHighsInf, 1, [row], [sign])
            slacks[h.getNumCol() - 1] = (sign, family, index)
    h.setOptionValue("time_limit", time_limit)
    h.setOptionValue("mip_rel_gap", 1e-3)
    h.run()
    if h.getInfo().primal_solution_status != 2:
        return None
    values = h.getSolution().col_value
    # the row moves by -sign * slack: above its upper bound (sign -1) or below its lower bound (+1)
    return [(family, index, -sign * values[col]) for col, (sign, family, index) in slacks.items()
            if values[col] > 1e-7]


def _iis(model) -> list[str]:
    """Constraint names of an irreducible infeasible subset of the LP relaxation, if HiGHS finds one."""
    opt, h, rows = _persistent(model)
    lp = h.getLp()
    ints = [c for c, t in enumerate(lp.integrality_) if t != highspy.HighsVarType.kContinuous]
    if ints:
        h.changeColsIntegrality(len(ints), ints, [highspy.HighsVarType.kContinuous] * len(ints))
    h.setOptionValue("iis_strategy", 22)  # from the LP, irreducible (measured: the default finds none)
    h.setOptionValue("time_limit", 20.0)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kInfeasible:
        return []  # the LP relaxation is feasible: the conflict needs integrality
    try:
        status, iis = h.getIis()
    except Exception:  # an older or failing IIS: the elastic explanation stands alone
        return []
    names = []
    for row in getattr(iis, "row_index_", []):
        family, index = rows.get(row, ("?", None))
        names.append(row_label(model, family, index))
    return names


def _describe(model, S, family: str, index, slack: float, move: float = 0.0, commitments=None) -> dict:
    """A violated requirement as a sentence with year, region and amount (and the node of a tree)."""
    FU, MU = S.compute_pflops, S.money_usd
    tree = model._tree
    key, node = split_index(model, family, index)
    if family == "budget":  # one row per scenario: that scenario's data
        inst = tree.scenario(index).instance
        where = "" if tree.trivial else f" in scenario {index}"
    else:
        raw_node = index[-1] if isinstance(index, tuple) else ""
        inst = tree.data(raw_node)
        where = ""
    key = tuple(key)
    label = key + ((f"@{node or 'root'}",) if node is not None else ())

    def rec(amount, unit, message):
        return {"family": family, "key": ",".join(map(str, label)), "amount": amount, "unit": unit,
                "message": message}

    def when(t):
        return tree.label(t, index[-1])

    if family == "demand":
        d, t = key
        short = slack * FU
        need = inst.regions[d].inference_demand_pflops[t]
        sources = ", ".join(f"{s} ({e:g})" for s, e in inst.sources(d).items())
        return rec(short, "PFLOP/s",
                   f"{when(t)}: inference demand in {d} needs {need:,.0f} PFLOP/s, but {d}'s allowed sources "
                   f"[{sources}] can serve at most {need - short:,.0f} PFLOP/s within the instance's limits "
                   f"→ short by {short:,.0f} PFLOP/s")
    if family == "training":
        (t,) = key
        short = slack * FU
        floor = inst.training.min_pflops[t]
        return rec(short, "PFLOP/s", f"{when(t)}: the training floor of {floor:,.0f} PFLOP/s can be met only up to "
                   f"{floor - short:,.0f} PFLOP/s → short by {short:,.0f} PFLOP/s")
    if family == "frontier":
        g, r, t = key
        short = slack * FU
        c = inst.training.frontier_cluster_pflops[t]
        return rec(short, "PFLOP/s", f"{when(t)}: the frontier cluster needs {c:,.0f} PFLOP/s at one site; the best "
                   f"site ({g} in {r}) reaches {c - short:,.0f} PFLOP/s → short by {short:,.0f} PFLOP/s")
    if family == "frontier_pick":
        (t,) = key
        c = inst.training.frontier_cluster_pflops[t]
        return rec(slack, "sites", f"{when(t)}: no site (one chip generation in one region) can reach the "
                   f"frontier cluster of {c:,.0f} PFLOP/s")
    if family == "budget":
        over = slack * MU
        b = inst.budget.total_usd
        return rec(over, "USD", f"budget{where}: meeting the other requirements costs at least "
                   f"${(b + over) / 1e9:,.2f}B, above the ${b / 1e9:,.2f}B total budget → over by ${over / 1e9:,.2f}B")
    if family == "budget_annual":
        (t,) = key
        over = slack * MU
        a = inst.budget.annual_max_usd[t]
        return rec(over, "USD", f"{when(t)}: spend must reach ${(a + over) / 1e9:,.2f}B, above the annual cap of "
                   f"${a / 1e9:,.2f}B → over by ${over / 1e9:,.2f}B")
    if family == "ceiling":
        (t,) = key
        p = inst.power.ceiling_mw[t]
        return rec(slack, "MW", f"{when(t)}: the plan needs {p + slack:,.0f} MW of facilities in all regions, above "
                   f"the power ceiling of {p:,.0f} MW → over by {slack:,.0f} MW")
    if family == "region_max":
        r, t = key
        mx = inst.regions[r].max_mw[t]
        return rec(slack, "MW", f"{when(t)}: {r} needs {mx + slack:,.0f} MW of facilities, above its maximum of "
                   f"{mx:,.0f} MW → over by {slack:,.0f} MW")
    if family == "supply":
        g, t = key
        cap = inst.chips[g].supply_units[t]
        return rec(slack, "units", f"{when(t)}: the plan needs {cap + slack:,.0f} units of {g}, above the supply cap "
                   f"of {cap:,.0f} units → over by {slack:,.0f} units")
    if family in ("commit_units", "commit_blocks"):
        if family == "commit_units":
            g, r, t = key
            held = commitments.units.get((g, r, t), 0)
            what = f"{held:,} units of {g} bought in {r}"
        else:
            r, t = key
            held = commitments.blocks.get((r, t), 0)
            what = f"{held:,} campus blocks started in {r}"
        allowed = held + move
        limit = "at most" if move < 0 else "at least"
        return rec(slack, "units" if family == "commit_units" else "blocks",
                   f"{when(t)}: the commitment of {what} cannot be held: the instance allows {limit} "
                   f"{allowed:,.0f} → change it by {move:+,.0f}")
    if family == "facility":
        r, t = key
        return rec(slack, "MW", f"{when(t)}: chips in {r} draw {slack:,.1f} MW more than its facilities can supply")
    return rec(slack, "", f"{row_label(model, family, index)} violated by {slack:g}")


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
