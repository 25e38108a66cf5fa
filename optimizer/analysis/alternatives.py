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

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..files import atomic_write
from ..instance import Instance
from ..parallel import Runner
from ..pipeline import solve_model
from ..plan import Plan
from ..solver import ModelHandle, SolveOptions, SolveResult, SolveStatus, solver_version

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
    first = tree.first_stage_year
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
        """Write ``alternatives.csv``, ``alternatives.json`` (the slack, the threshold and the optimum), the
        optimal plan (``optimal/``) and each extreme plan (``chips.trn3-min/``, ...) into ``directory``, the plans
        in each of ``formats``; returns the paths written."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        meta = {"slack": self.slack, "threshold": self.table.attrs.get("threshold"),
                "objective": self.table.attrs.get("objective"), "seconds": self.seconds}
        written = [atomic_write(out / "alternatives.csv", lambda p: self.table.to_csv(p, index=False)),
                   atomic_write(out / "alternatives.json", lambda p: Path(p).write_text(json.dumps(meta, indent=1)
                                                                                     + "\n"))]
        written += self.optimal.write(out / "optimal", formats)
        for (name, sense), plan in self.plans.items():
            written += plan.write(out / f"{name}-{sense}", formats)
        return written

    def __repr__(self) -> str:
        robust = int(self.table.robust.sum()) if len(self.table) else 0
        return (f"<Alternatives of {self.optimal.instance.name} within {self.slack:g}: {len(self.table)} aggregates, "
                f"{robust} robust, {len(self.plans)} extreme plans>")

    def _repr_html_(self) -> str:
        from ..report.html import ranges_html

        return ranges_html(self)


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
    handle = optimal.result.handle
    model = handle.model
    start = handle.values()
    _ = optimal.marginals  # the optimal plan's prices, taken before the range solves change its model
    base_values = {name: sum(c * (v.value or 0.0) for v, c in _terms(model, name)) for name in names}
    threshold = _threshold(instance, optimal.objective, slack)
    payload = {"instance": instance, "objective": optimal.objective,
               "slack": slack, "time_limit": time_limit, "mip_gap": mip_gap, "plans": plans, "start": start}
    items = [(name, sense) for name in names for sense in ("min", "max")]
    results: dict[tuple[str, str], dict] = {}
    n = max(1, workers or 1)
    if client is None and n <= 1:
        ranger = Ranger(instance, optimal.objective, slack, time_limit, mip_gap, plans, start, handle)
        for i, item in enumerate(items, 1):
            results[item] = ranger.solve(*item)
            if on_step:
                on_step(f"{i} of {len(items)} range solves done ({item[0]} {item[1]})")
        # the handle now holds the near-optimal row: the optimal plan keeps its tables and prices, not the model
        optimal.result = dataclasses.replace(optimal.result, handle=None)
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
    """One persistent model with the near-optimal row; solves the min or max of any aggregate on it.

    The row is added once (:meth:`~optimizer.solver.ModelHandle.add_objective_bound`), then each range is
    "set the aggregate as the objective, solve from the optimal plan" on the same handle, as PyPSA's
    ``optimize_mga`` does.
    """

    def __init__(self, inst: Instance, objective: float, slack: float, time_limit, mip_gap, plans: bool,
                 start: list[float], handle: ModelHandle | None = None):
        self.inst, self.time_limit, self.mip_gap, self.plans = inst, time_limit, mip_gap, plans
        self.handle = handle if handle is not None else ModelHandle(inst)
        self.handle.add_objective_bound(_threshold(inst, objective, slack))
        self.start = start  # the optimal plan is near-optimal: the start of every range solve

    def solve(self, name: str, sense: str) -> dict:
        handle, model = self.handle, self.handle.model
        terms = [(v, c) for v, c in _terms(model, name) if handle.column(v) is not None]
        if not terms:  # nothing to decide: the aggregate is 0 in every plan
            return {"status": "optimal", "value": 0.0, "bound": 0.0, "gap": 0.0, "seconds": 0.0,
                    "message": "no decision of this aggregate exists", "tables": None}
        start = self.start
        scale = max(abs(sum(c * start[handle.column(v)] for v, c in terms)), max(c for _, c in terms))
        handle.set_objective(terms, sense)
        # a range may end at 0: an absolute gap too
        r = handle.solve(SolveOptions(time_limit=self.time_limit, mip_gap=self.mip_gap,
                                      abs_gap=self.mip_gap * scale, start=start, warm_start=False))
        out = {"status": r.status.value, "seconds": r.solve_seconds, "tables": None, "value": r.objective,
               "bound": r.bound, "gap": None, "message": r.message}
        if r.status.has_plan:
            value = r.objective
            out["gap"] = abs((r.bound if r.bound is not None else value) - value) / max(abs(value), scale)
            if r.status is SolveStatus.OPTIMAL and r.bound is None:
                out["bound"] = value
            if self.plans:
                operated = self._operate(handle.values())
                objective = operated.objective if operated.status.has_plan else None
                result = SolveResult(r.status, f"{sense} of {name} within slack", objective, None, out["gap"],
                                     0.0, 0.0, r.solve_seconds, "highs", solver_version())
                plan = Plan.from_model(self.inst, model, result)
                out.update(tables={n: df.to_dict("list") for n, df in plan.tables().items() if n != "summary"},
                           plan_status=r.status.value, objective=objective)
        handle.set_objective(None)
        return out

    def _operate(self, values: list[float]):
        """The best operation of an extreme plan's investments: its purchases, blocks and frontier sites
        fixed, the original objective restored (an LP); the extreme's own solve cares only for the
        aggregate and may leave chips idle.  Loads that plan into the model."""
        handle, m = self.handle, self.handle.model
        handle.set_objective(None)
        with handle.fixed((m.n, m.k, m.K, m.z), values):
            r = handle.solve(SolveOptions(warm_start=False))
        if not r.status.has_plan:  # keep the extreme's own plan
            handle.load(values)
        return r


_RANGERS: dict[tuple, Ranger] = {}


def range_task(payload: dict, item: tuple[str, str]) -> dict:
    """Solve one range in a worker, keeping the worker's persistent model between tasks."""
    key = (payload["instance"].hash, payload["objective"], payload["slack"], payload["time_limit"],
           payload["mip_gap"], payload["plans"])
    ranger = _RANGERS.get(key)
    if ranger is None:
        _RANGERS.clear()  # one model per worker
        ranger = _RANGERS[key] = Ranger(payload["instance"], payload["objective"], payload["slack"],
                                        payload["time_limit"], payload["mip_gap"], payload["plans"], payload["start"])
    return ranger.solve(*item)
