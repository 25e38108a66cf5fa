"""Readable views of a plan for people: summary lines and compact tables."""

from __future__ import annotations

import math

import pandas as pd

from ..plan import Plan
from ..solver import SolveStatus


def fmt_usd(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"${x / div:,.2f}{suffix}"
    return f"${x:,.0f}"


def objective_unit(inst) -> str:
    return "discounted PFLOP/s-years" if inst.objective.kind == "max_training" else "discounted USD"


def summary_lines(plan: Plan) -> list[tuple[str, str]]:
    """(label, value) pairs describing the outcome of a solve."""
    inst, r = plan.instance, plan.result
    kind = inst.objective.kind
    unit = objective_unit(inst)
    lines = [("instance", f"{inst.name} ({inst.start}-{inst.end})"),
             ("status", f"{r.status.value}: {r.message}")]
    if plan.stochastic:
        unc = inst.uncertainty
        stages = ", ".join(f"{s.name or 'stage'} in {s.year} ({len(s.branches)} branches)" for s in unc.stages)
        risk = f"; risk: CVaR at alpha {unc.cvar_alpha:g} with weight {unc.risk_weight:g}" if unc.risk_weight else ""
        lines.append(("scenarios", f"{len(inst.scenarios())}: {stages}{risk}"))
    if plan.status.has_plan:
        what = "objective" if not plan.stochastic else "objective (stochastic)"
        lines.append((what, f"{plan.objective:,.6g} {unit} ({kind})"))
        if plan.stochastic and plan.extra.get("expected_objective") is not None:
            lines.append(("expected objective", f"{plan.extra['expected_objective']:,.6g}"
                          + (f"; CVaR {plan.extra['cvar']:,.6g}" if inst.uncertainty.risk_weight else "")))
        if getattr(inst.objective, "end_of_horizon", "truncate") == "salvage":
            lines.append(("terminal value", f"{plan.extra.get('terminal_value', 0.0):,.6g} (included; chips in "
                          "service after the horizon)"))
        if r.bound is not None:
            lines.append(("best bound", f"{r.bound:,.6g}"))
        lines.append(("mip gap", f"{r.mip_gap:.4%}" if r.mip_gap is not None else "-"))
        s = plan.summary.iloc[0]
        spend = s.total_spend_usd
        budget = inst.budget.total_usd
        lines.append(("spend" if not plan.stochastic else "expected spend",
                      fmt_usd(spend) + (f" of {fmt_usd(budget)} budget ({spend / budget:.1%})"
                                        if budget else " (no total budget)")))
        fac = plan.facilities
        keys = ["scenario", "year"] if plan.stochastic else ["year"]
        cap = fac.groupby(keys).capacity_mw.sum()
        peak_year = int(cap.idxmax()[-1] if plan.stochastic else cap.idxmax())
        ceiling = inst.power.ceiling_mw
        text = f"{cap.max():,.0f} MW in {peak_year}" + (" (largest scenario)" if plan.stochastic else "")
        if ceiling is not None:
            text += f" (ceiling {ceiling[peak_year]:,.0f} MW)"
        lines.append(("peak facility capacity", text))
    lines.append(("model", f"{r.rows:,} rows, {r.columns:,} columns ({r.integers:,} integer), "
                           f"{r.nonzeros:,} nonzeros"))
    lines.append(("time", f"build {r.build_seconds:.2f} s, hand-off {r.handoff_seconds:.2f} s, "
                          f"HiGHS {r.solve_seconds:.2f} s ({r.solver} {r.solver_version})"))
    return lines


def value_of_information_lines(plan: Plan) -> list[str]:
    """EVPI and VSS in sentences a planner reads (spec v2 section 4.3)."""
    inst = plan.instance
    x = plan.extra
    unit = "PFLOP/s-years" if inst.objective.kind == "max_training" else "USD"
    unc = inst.uncertainty
    names = [s.name for s in unc.stages if s.name]
    many = len(unc.stages) > 1
    what = (" and ".join(names) + (" outcomes" if len(names) > 1 else " outcome")) if names else \
        f"outcome{'s' if many else ''} of the {len(unc.stages)} stage{'s' if many else ''}"
    first = unc.stages[0].year

    def amount(v):
        money = unit == "USD"
        text = fmt_usd(v) if money else f"{v:,.0f} {unit}"
        share = f" ({v / abs(plan.objective):.1%})" if plan.objective else ""
        return text + share

    lines = []
    if _has(x.get("evpi")):
        lines.append(f"Knowing the {what} before {first} would be worth {amount(x['evpi'])}: the expected value of "
                     f"perfect information (EVPI = {'WS - RP' if unit != 'USD' else 'RP - WS'}, within the gap).")
    elif "wait_and_see" in x or _has(x.get("wait_and_see")):
        lines.append("EVPI: not computed (a scenario alone has no proven plan).")
    vss = x.get("vss")
    if vss == float("inf"):
        lines.append("Value of the stochastic solution: the base forecast's plan cannot be held — "
                     f"{x.get('base_plan_status')}.")
    elif _has(vss):
        lines.append(f"Planning for the scenarios instead of the base forecast gains {amount(vss)}: the value of the "
                     f"stochastic solution (VSS = {'RP - EEV' if unit != 'USD' else 'EEV - RP'}; the base plan's "
                     "commitments score EEV = " + f"{x['base_plan_objective']:,.6g}).")
    if not lines:
        lines.append("Value of information: not computed (--no-value-of-information, or the plan has no solution).")
    elif plan.status is SolveStatus.FEASIBLE and (_has(x.get("evpi")) or _has(vss)):
        gap = f" (gap {plan.mip_gap:.2%})" if _has(plan.mip_gap) else ""
        lines.append(f"These values use the stochastic plan RP, which is not proven optimal{gap}: the true RP can "
                     "be higher for max_training (lower for min_cost), so EVPI is smaller and VSS larger than shown "
                     "by up to that gap. Solve without a time limit to prove them.")
    elif str(x.get("base_plan_status", "optimal")) != "optimal" and _has(vss):
        lines.append(f"EEV is not proven, {x.get('base_plan_status')}: VSS is known only within that gap.")
    return lines


def _has(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and v == v and abs(v) != float("inf")


def yearly_overview(plan: Plan) -> pd.DataFrame:
    """One row per year: capacity, draw, spend, training and inference compute."""
    fac = plan.facilities.groupby("year")[["capacity_mw", "draw_mw"]].sum()
    comp = plan.compute.groupby("year")[["demand_pflops", "served_pflops", "unmet_pflops"]].sum()
    df = pd.DataFrame({
        "capacity_mw": fac.capacity_mw,
        "draw_mw": fac.draw_mw,
        "spend_usd": plan.spend.set_index("year").total_usd,
        "train_pflops": plan.split.set_index("year").train_pflops,
        "infer_pflops": plan.split.set_index("year").infer_pflops,
        "training_share": plan.split.set_index("year").training_share,
        "demand_pflops": comp.demand_pflops,
        "unmet_pflops": comp.unmet_pflops,
    })
    return df.reset_index().rename(columns={"index": "year"})


def purchases_by_year(plan: Plan) -> pd.DataFrame:
    """Chips bought per year, one column per chip@region."""
    p = plan.purchases
    if p.empty:
        return pd.DataFrame({"year": list(plan.instance.years)})
    wide = p.assign(where=p.chip + "@" + p.region).pivot_table(
        index="year", columns="where", values="chips", aggfunc="sum", fill_value=0)
    wide = wide.reindex(list(plan.instance.years), fill_value=0)
    wide.columns.name = None
    return wide.reset_index()


def compare_plans(a: Plan, b: Plan) -> dict[str, pd.DataFrame]:
    """What changed from plan ``a`` to plan ``b``, scenario by scenario for plans under uncertainty.

    Two plans under uncertainty are compared on their common scenarios, a plan
    under uncertainty and a plain one scenario by scenario against the plain
    one; every table then has a ``scenario`` column first, and ``commitments``
    compares what each signs now.  See :func:`compare_pair` for the tables.
    """
    if not (a.stochastic or b.stochastic):
        return compare_pair(a, b)
    ids_a = list(a.scenarios.scenario) if a.stochastic else None
    ids_b = list(b.scenarios.scenario) if b.stochastic else None
    if ids_a is not None and ids_b is not None:
        pairs = [(s, s) for s in ids_a if s in ids_b]
        if not pairs:
            raise ValueError(f"the plans share no scenario (a: {', '.join(ids_a)}; b: {', '.join(ids_b)})")
    else:
        pairs = [(s, None) for s in ids_a] if ids_a is not None else [(None, s) for s in ids_b]
    per = []
    for sa, sb in pairs:
        tables = compare_pair(a.scenario(sa) if sa is not None else a, b.scenario(sb) if sb is not None else b)
        per.append((sa or sb, tables))
    out = {name: pd.concat([t[name].assign(scenario=sid) for sid, t in per], ignore_index=True)
           for name in per[0][1]}
    out = {name: df[["scenario", *[c for c in df.columns if c != "scenario"]]] for name, df in out.items()}
    if a.stochastic and b.stochastic:
        key = ["year", "region", "item"]
        ca = a.commitments.groupby(key).quantity.sum()
        cb = b.commitments.groupby(key).quantity.sum()
        c = pd.concat([ca.rename("quantity_a"), cb.rename("quantity_b")], axis=1).fillna(0.0)
        c["quantity_change"] = c.quantity_b - c.quantity_a
        out["commitments"] = c.reset_index()
    return out


def compare_pair(a: Plan, b: Plan) -> dict[str, pd.DataFrame]:
    """What changed from plan ``a`` to plan ``b``: one table per aspect, with a, b and b - a.

    - headline: objective, spend, peak capacity, training share
    - purchases: chips bought per (year, chip, region)
    - capacity: facility MW per year and region
    - spend: total spend per year
    - split: training and inference PFLOP/s per year
    """

    def side_by_side(sa: pd.Series, sb: pd.Series, name: str) -> pd.DataFrame:
        df = pd.concat([sa.rename(f"{name}_a"), sb.rename(f"{name}_b")], axis=1).fillna(0.0)
        df[f"{name}_change"] = df[f"{name}_b"] - df[f"{name}_a"]
        return df

    key = ["year", "chip", "region"]
    pa = a.purchases.groupby(key).chips.sum()
    pb = b.purchases.groupby(key).chips.sum()
    purchases = side_by_side(pa, pb, "chips").reset_index()
    purchases = purchases[purchases.chips_change != 0].reset_index(drop=True)

    ca = a.facilities.set_index(["year", "region"]).capacity_mw
    cb = b.facilities.set_index(["year", "region"]).capacity_mw
    capacity = side_by_side(ca, cb, "capacity_mw").reset_index()

    spend = side_by_side(a.spend.set_index("year").total_usd, b.spend.set_index("year").total_usd,
                         "spend_usd").reset_index()
    sa, sb = a.split.set_index("year"), b.split.set_index("year")
    split = pd.concat([side_by_side(sa.train_pflops, sb.train_pflops, "train_pflops"),
                       side_by_side(sa.infer_pflops, sb.infer_pflops, "infer_pflops")], axis=1).reset_index()

    def headline(p: Plan) -> dict:
        s = p.summary.iloc[0]
        split_tot = p.split[["train_pflops", "infer_pflops"]].sum()
        tot = split_tot.sum()
        return {"objective": s.objective, "total_spend_usd": s.total_spend_usd,
                "peak_capacity_mw": s.peak_capacity_mw,
                "training_share": split_tot.train_pflops / tot if tot else 0.0}

    ha, hb = headline(a), headline(b)
    head = pd.DataFrame({"metric": list(ha), "a": list(ha.values()), "b": list(hb.values())})
    head["change"] = head.b - head.a
    return {"headline": head, "purchases": purchases, "capacity": capacity, "spend": spend, "split": split}
