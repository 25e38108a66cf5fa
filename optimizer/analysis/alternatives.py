r"""Near-optimal ranges (spec v2 section 7): which decisions are forced, which are free.

Let O* be the optimum.  The near-optimal plans are the feasible plans whose
objective is at least O* - slack |O*| (max_training) or at most
O* + slack |O*| (min_cost).  For each aggregate

* ``chips.G``: chips of G bought over the horizon, :math:`\sum_{r,t} u_g n_{g,r,t}`;
* ``regions.R``: MW of campus blocks started in R, :math:`\sum_t \beta_r k_{r,t}`

(over the root node, the commitments, for an instance with ``uncertainty``),
its value in the optimal plan and its minimum and maximum over the
near-optimal plans are each a MIP of their own, solved to the requested gap;
a time limit gives a bound, never a false "proven".  An aggregate is robust
when max - min <= 5% of max(|optimal value|, 1).

Each worker keeps one persistent model: the near-optimal row (the objective's
coefficients, bounded by the threshold) is added once, and only the
objective changes between the solves, each started from the optimal plan.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import highspy
import pandas as pd

from formulations import build_model

from ..files import atomic_write
from ..instance import Instance, parse_instance, plain
from ..parallel import Runner
from ..pipeline import solve_model
from ..plan import Plan
from ..solver import SolveResult, SolveStatus, attach
from ..solver.highs import columns, highs_status, load_columns, solver_version

ROBUST_SHARE = 0.05
COLUMNS = ["aggregate", "unit", "optimal", "min", "max", "robust", "status", "min_status", "max_status",
           "min_bound", "max_bound", "min_gap", "max_gap", "seconds"]


class AlternativesError(ValueError):
    """Near-optimal ranges cannot be computed: an unknown aggregate, a bad slack, or no optimal plan."""


def aggregate_names(inst: Instance) -> list[str]:
    """Every aggregate of spec section 7, in instance order: ``chips.G`` then ``regions.R``."""
    return [f"chips.{g}" for g in inst.chips] + [f"regions.{r}" for r in inst.regions]


def _unit(name: str) -> str:
    return "chips" if name.startswith("chips.") else "MW"


def _terms(model, name: str) -> list[tuple]:
    """The aggregate as (Pyomo variable, coefficient) pairs (root-node years only, for a tree)."""
    tree = model._tree
    first = tree.stage_years[0] if tree.stage_years else None
    kind, ident = name.split(".", 1)
    out = []
    if kind == "chips":
        for g, r, t, v in model.N_IDX:
            if g == ident and (first is None or t < first):
                out.append((model.n[g, r, t, v], float(tree.data(v).chips[g].chips_per_unit)))
    else:
        block = model._inst.regions[ident].block_mw
        for r, t, v in model.K_IDX:
            if r == ident and (first is None or t < first):
                out.append((model.k[r, t, v], float(block)))
    return out


@dataclass
class Alternatives:
    """The result of :func:`alternatives`: the ranges table, the optimal plan, and the plan at each extreme.

    ``slack`` is the relative distance from the optimum that was allowed,
    ``table`` the ranges (one row per aggregate), ``optimal`` the optimal plan,
    ``plans`` the plan at each extreme by (aggregate, "min" | "max"), and
    ``seconds`` the wall time of the whole analysis.
    """

    slack: float
    table: pd.DataFrame
    optimal: Plan
    plans: dict[tuple[str, str], Plan] = field(default_factory=dict)  # (aggregate, "min" | "max") -> plan
    seconds: float = 0.0

    def write(self, directory: str | os.PathLike, formats: Sequence[str] = ("csv",)) -> list[Path]:
        """Write ``alternatives.csv``, the optimal plan (``optimal/``) and each extreme plan (``chips.trn3-min/``,
        ...) into ``directory``, the plans in each of ``formats``; returns the paths written."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written = [atomic_write(out / "alternatives.csv", lambda p: self.table.to_csv(p, index=False))]
        written += self.optimal.write(out / "optimal", formats)
        for (name, sense), plan in self.plans.items():
            written += plan.write(out / f"{name}-{sense}", formats)
        return written


def alternatives(
    instance: Instance,
    slack: float = 0.01,
    aggregates: Sequence[str] | None = None,
    *,
    time_limit: float | None = None,
    mip_gap: float = 1e-4,
    workers: int | None = 1,
    client=None,
    plans: bool = True,
    optimal: Plan | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Alternatives:
    """The near-optimal range of each aggregate (spec v2 section 7); see the module docstring.

    ``slack``: the relative distance from the optimum O* that a near-optimal plan may have (0.01: within 1%).
    ``aggregates``: names such as ``chips.trn3`` or ``regions.us-east`` (default: all).
    ``time_limit`` and ``mip_gap`` apply to each of the 1 + 2 x aggregates solves.
    ``workers`` / ``client``: solve the ranges on local processes or a Dask cluster.
    ``plans``: keep the plan at each extreme (``result.plans``; written by ``write``).
    ``optimal``: the plan of ``instance`` solved already (by :func:`optimizer.pipeline.solve_model`, so
    that it holds its model): its objective is O* and its model is reused.
    ``on_step``: called with a line of text as each range solve finishes.
    """
    t0 = time.perf_counter()
    if not (isinstance(slack, (int, float)) and 0 <= slack < 1 and math.isfinite(slack)):
        raise AlternativesError(f"slack must be a number in [0, 1), got {slack!r}")
    known = aggregate_names(instance)
    names = list(aggregates) if aggregates else known
    bad = [a for a in names if a not in known]
    if bad:
        raise AlternativesError(f"unknown aggregate{'s' if len(bad) > 1 else ''} {', '.join(bad)}; "
                                f"choose from {', '.join(known)}")
    if optimal is None or optimal.result.handle is None:
        optimal = solve_model(instance, time_limit=time_limit, mip_gap=mip_gap)
    if not optimal.status.has_plan:
        raise AlternativesError(f"the instance has no plan to start from: {optimal.status.value} "
                                f"({optimal.message})")
    model, opt = optimal.result.handle
    start = list(opt._solver_model.getSolution().col_value)
    base_values = {name: sum(c * (v.value or 0.0) for v, c in _terms(model, name)) for name in names}
    threshold = _threshold(instance, optimal.objective, slack)
    payload = {"raw": plain(instance.raw), "source": instance.source, "objective": optimal.objective,
               "slack": slack, "time_limit": time_limit, "mip_gap": mip_gap, "plans": plans, "start": start}
    items = [(name, sense) for name in names for sense in ("min", "max")]
    results: dict[tuple[str, str], dict] = {}
    n = max(1, workers or 1)
    if client is None and n <= 1:
        ranger = Ranger(instance, optimal.objective, slack, time_limit, mip_gap, plans, start, model, opt)
        for i, item in enumerate(items, 1):
            results[item] = ranger.solve(*item)
            if on_step:
                on_step(f"{i} of {len(items)} range solves done ({item[0]} {item[1]})")
    else:
        with Runner(min(n, len(items)), client) as runner:
            shared = runner.share(payload)
            for item in items:
                runner.submit(item, range_task, shared, item)
            for i, (item, row, error) in enumerate(runner.results(), 1):
                results[item] = row if error is None else {"status": "error", "message": str(error)}
                if on_step:
                    on_step(f"{i} of {len(items)} range solves done ({item[0]} {item[1]})")
    rows, extreme = [], {}
    for name in names:
        lo, hi = results[name, "min"], results[name, "max"]
        rows.append(_row(name, base_values[name], lo, hi))
        for sense, r in (("min", lo), ("max", hi)):
            if plans and r.get("tables") is not None:
                extreme[name, sense] = _plan(instance, r)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs.update(slack=slack, threshold=threshold, objective=optimal.objective)
    return Alternatives(slack, table, optimal, extreme, time.perf_counter() - t0)


def _threshold(inst: Instance, objective: float, slack: float) -> float:
    if inst.objective.kind == "max_training":
        return objective - slack * abs(objective)
    return objective + slack * abs(objective)


def _row(name: str, optimal: float, lo: dict, hi: dict) -> dict:
    def value(r, key):
        v = r.get(key)
        return math.nan if v is None else v

    proven = lo.get("status") == "optimal" and hi.get("status") == "optimal"
    # the range proven (or, unproven, its outer bounds): robust only if even that is narrow
    low = value(lo, "value") if lo.get("status") == "optimal" else value(lo, "bound")
    high = value(hi, "value") if hi.get("status") == "optimal" else value(hi, "bound")
    robust = bool(high - low <= ROBUST_SHARE * max(abs(optimal), 1.0)) if not math.isnan(high - low) else False
    status = "optimal" if proven else "bound" if not math.isnan(high - low) else "failed"
    return {"aggregate": name, "unit": _unit(name), "optimal": optimal, "min": value(lo, "value"),
            "max": value(hi, "value"), "robust": robust, "status": status,
            "min_status": lo.get("status"), "max_status": hi.get("status"),
            "min_bound": value(lo, "bound"), "max_bound": value(hi, "bound"),
            "min_gap": value(lo, "gap"), "max_gap": value(hi, "gap"),
            "seconds": value(lo, "seconds") + value(hi, "seconds")}


def _plan(inst: Instance, r: dict) -> Plan:
    tables = {k: pd.DataFrame(v) for k, v in r["tables"].items()}
    result = SolveResult(SolveStatus(r["plan_status"]), r["message"], r["objective"], None, r["gap"], 0.0, 0.0,
                         r["seconds"], "highs", solver_version())
    plan = Plan(inst, result, **{k: tables[k] for k in tables if k != "summary"}, summary=None)
    plan.summary = plan._summary()
    return plan


class Ranger:
    """One persistent model with the near-optimal row; solves the min or max of any aggregate on it."""

    def __init__(self, inst: Instance, objective: float, slack: float, time_limit, mip_gap, plans: bool,
                 start: list[float], model=None, opt=None):
        self.inst, self.time_limit, self.mip_gap, self.plans = inst, time_limit, mip_gap, plans
        if model is None:
            model = build_model(inst)
            opt, _ = attach(model)
        self.model, self.opt = model, opt
        h = self.h = opt._solver_model
        h.setOptionValue("output_flag", False)
        h.setOptionValue("random_seed", 0)
        factor = model.info.objective_factor
        lp = h.getLp()
        self.ncol = lp.num_col_
        cost, offset = list(lp.col_cost_), lp.offset_
        maximize = inst.objective.kind == "max_training"
        limit = _threshold(inst, objective, slack) / factor - offset
        nz = [j for j, c in enumerate(cost) if c != 0.0]
        lo, hi = (limit, highspy.kHighsInf) if maximize else (-highspy.kHighsInf, limit)
        h.addRow(lo, hi, len(nz), nz, [cost[j] for j in nz])  # the objective row, added once
        self.cost, self.offset, self.factor = cost, offset, factor
        self.sense = lp.sense_
        self.ints = columns(opt, model.n, model.k, model.K, model.z)
        self.bounds = ([lp.col_lower_[j] for j in self.ints], [lp.col_upper_[j] for j in self.ints])
        self.start = start  # the optimal plan is near-optimal: the start of every range solve

    def solve(self, name: str, sense: str) -> dict:
        h = self.h
        terms = _terms(self.model, name)
        col = self.opt._pyomo_var_to_solver_var_map
        idx = [col[id(v)] for v, _ in terms if id(v) in col]
        coef = [c for v, c in terms if id(v) in col]
        t0 = time.perf_counter()
        if not idx:  # nothing to decide: the aggregate is 0 in every plan
            return {"status": "optimal", "value": 0.0, "bound": 0.0, "gap": 0.0, "seconds": 0.0,
                    "message": "no decision of this aggregate exists", "tables": None}
        h.changeColsCost(self.ncol, list(range(self.ncol)), [0.0] * self.ncol)
        h.changeColsCost(len(idx), idx, coef)
        h.changeObjectiveOffset(0.0)
        h.changeObjectiveSense(highspy.ObjSense.kMinimize if sense == "min" else highspy.ObjSense.kMaximize)
        h.setOptionValue("mip_rel_gap", self.mip_gap)
        scale = max(abs(sum(c * self.start[j] for j, c in zip(idx, coef))), max(coef))
        h.setOptionValue("mip_abs_gap", self.mip_gap * scale)  # a range may end at 0: an absolute gap too
        h.setOptionValue("time_limit", highspy.kHighsInf if self.time_limit is None else float(self.time_limit))
        sol = highspy.HighsSolution()
        sol.col_value = self.start
        sol.value_valid = True
        h.setSolution(sol)
        h.run()
        seconds = time.perf_counter() - t0
        status = highs_status(h)
        info = h.getInfo()
        out = {"status": status.value, "seconds": seconds, "tables": None, "value": None, "bound": None,
               "gap": None, "message": h.modelStatusToString(h.getModelStatus())}
        if abs(info.mip_dual_bound) < 1e50:
            out["bound"] = info.mip_dual_bound
        if status.has_plan:
            values = list(h.getSolution().col_value)
            out["value"] = sum(c * values[j] for j, c in zip(idx, coef))
            out["gap"] = abs((out["bound"] if out["bound"] is not None else out["value"]) - out["value"]) / max(
                abs(out["value"]), scale)
            if status is SolveStatus.OPTIMAL:
                out["bound"] = out["value"] if out["bound"] is None else out["bound"]
            if self.plans:
                values = self._operate(values)
                load_columns(self.model, self.opt, values)
                objective = self.factor * (sum(c * values[j] for j, c in enumerate(self.cost)) + self.offset)
                result = SolveResult(status, f"{sense} of {name} within slack", objective, None, out["gap"], 0.0, 0.0,
                                     seconds, "highs", solver_version())
                plan = Plan.from_model(self.inst, self.model, result)
                out.update(tables={n: df.to_dict("list") for n, df in plan.tables().items() if n != "summary"},
                           plan_status=status.value, objective=objective)
        return out


    def _operate(self, values: list[float]) -> list[float]:
        """The best operation of an extreme plan's investments: its purchases, blocks and frontier sites
        fixed, the original objective restored (an LP); the extreme's own solve cares only for the
        aggregate and may leave chips idle."""
        h, ints = self.h, self.ints
        fixed = [float(round(values[j])) for j in ints]
        h.changeColsBounds(len(ints), ints, fixed, fixed)
        h.changeColsCost(self.ncol, list(range(self.ncol)), self.cost)
        h.changeObjectiveOffset(self.offset)
        h.changeObjectiveSense(self.sense)
        try:
            h.run()
            if h.getInfo().primal_solution_status == 2:
                values = list(h.getSolution().col_value)
        finally:
            h.changeColsBounds(len(ints), ints, *self.bounds)
        return values


_RANGERS: dict[tuple, Ranger] = {}


def range_task(payload: dict, item: tuple[str, str]) -> dict:
    """Solve one range in a worker, keeping the worker's persistent model between tasks."""
    key = (payload["raw"]["name"], payload["objective"], payload["slack"], payload["time_limit"],
           payload["mip_gap"], payload["plans"])
    ranger = _RANGERS.get(key)
    if ranger is None:
        _RANGERS.clear()  # one model per worker
        inst = parse_instance(payload["raw"], source=payload["source"])
        ranger = _RANGERS[key] = Ranger(inst, payload["objective"], payload["slack"], payload["time_limit"],
                                        payload["mip_gap"], payload["plans"], payload["start"])
    return ranger.solve(*item)
