"""The plan a solve reports: its tables, summary, writers and reader."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import yaml

from ..files import atomic_write
from ..instance import Instance, load_instance, plain
from ..solver import SolveResult, SolveStatus
from .kpis import Kpis, plan_repr
from .summary import CommitmentSummary, ObjectiveParts, TreeSummary
from .tables import (
    COLUMNS,
    COMMIT_SUMMARY,
    TREE_SUMMARY,
    TREE_TABLES,
    V1_TABLES,
    Values,
    _empty,
    commitments_table,
    extract,
)

FORMATS = ("csv", "parquet", "xlsx", "json")
INSTANCE_COPY = "instance.yaml"
MARGINALS = "marginals.csv"


@dataclass
class Plan:
    """An optimal (or best found) plan, as pandas tables in spec units.

    ``status`` says what the solver proved; tables are empty when there is no plan.
    A plan under uncertainty (an instance with an ``uncertainty`` section) has a
    ``scenario`` column first in every v1 table (each scenario's full plan) and
    the tables ``scenarios``, ``commitments`` and ``base_commitments`` (spec v2
    section 4.3); :meth:`scenario` gives one scenario's plan in the v1 shape.

    Typed results of the analyses behind the plan: ``parts`` (what the
    objective is made of), ``tree_summary`` (a plan under uncertainty: its
    expected objective, CVaR and, when solved, the value of information) and
    ``commitment`` (a re-plan: the commitment cost), set by
    :func:`optimizer.solve`; the summary table holds them too.

    ``instance`` is the instance solved and ``result`` the solver's
    :class:`~optimizer.solver.SolveResult`; the tables (docs and README: "The
    plan tables") are ``purchases``, ``fleet``, ``facilities``, ``compute``,
    ``serving``, ``spend``, ``split`` and the one-row ``summary``, whose fields
    :attr:`kpis` gives as plain values (``plan.kpis.total_spend_usd``).
    """

    instance: Instance
    result: SolveResult
    purchases: pd.DataFrame
    fleet: pd.DataFrame
    facilities: pd.DataFrame
    compute: pd.DataFrame
    serving: pd.DataFrame
    spend: pd.DataFrame
    split: pd.DataFrame
    summary: pd.DataFrame = field(repr=False)
    scenarios: pd.DataFrame | None = field(default=None, repr=False)
    commitments: pd.DataFrame | None = field(default=None, repr=False)
    base_commitments: pd.DataFrame | None = field(default=None, repr=False)
    parts: ObjectiveParts = field(default_factory=ObjectiveParts, repr=False)
    tree_summary: TreeSummary | None = field(default=None, repr=False)
    commitment: CommitmentSummary | None = field(default=None, repr=False)

    @property
    def status(self) -> SolveStatus:
        """What the solver proved (:class:`SolveStatus`); ``FEASIBLE`` is a plan with a gap, never optimal."""
        return self.result.status

    @property
    def objective(self) -> float | None:
        """The objective in the instance's units (None without a plan); :meth:`kpis` has the other fields."""
        return self.result.objective

    @property
    def mip_gap(self) -> float | None:
        """The relative gap between the plan and the best bound HiGHS proved (None without one)."""
        return self.result.mip_gap

    @property
    def message(self) -> str:
        """The solver's outcome in words."""
        return self.result.message

    @property
    def stochastic(self) -> bool:
        """A plan under uncertainty: one plan per scenario of the instance's tree."""
        return getattr(self.instance, "uncertainty", None) is not None

    @property
    def marginals(self) -> pd.DataFrame:
        """Duals of the plan's LP with its blocks and frontier sites fixed, in reporting units.

        Columns: family, year, where (region / chip), binding, marginal (objective
        change per unit increase of the constraint's limit), unit (per +$1B,
        per +100 MW, per +1 unit, per +1 PFLOP/s).  Local prices of the
        fixed-integer LP, not of the MIP: moving a limit far enough changes the
        integer decisions (see :func:`optimizer.solver.duals.fixed_lp_marginals`).
        A plan read back from disk has those its directory stored (``marginals.csv``), else none.
        """
        from ..solver.duals import MARGINAL_COLUMNS, fixed_lp_marginals

        if getattr(self, "_marginals", None) is None:
            if self.result.handle is None:
                return pd.DataFrame(columns=MARGINAL_COLUMNS)
            self._marginals = fixed_lp_marginals(self.result.handle)
        return self._marginals

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table of the plan by name (the v1 tables, the tree's tables under uncertainty, ``summary``)."""
        names = (*V1_TABLES, *(TREE_TABLES if self.stochastic else ()), "summary")
        return {name: getattr(self, name) for name in names}

    def scenario(self, sid: str) -> Plan:
        """Scenario ``sid``'s plan in the v1 shape, with that scenario's own instance and objective O_s."""
        if not self.stochastic:
            raise ValueError("a plan without uncertainty has one scenario: the plan itself")
        by_id = {s.id: s for s in self.instance.scenarios()}
        if sid not in by_id:
            raise KeyError(f"no scenario {sid!r}; the plan has {', '.join(by_id)}")
        tables = {n: getattr(self, n).loc[lambda df: df.scenario == sid].drop(columns="scenario")
                  .reset_index(drop=True) for n in V1_TABLES}
        row = self.scenarios.set_index("scenario").loc[sid] if self.scenarios is not None and len(self.scenarios) \
            else None
        objective = None if row is None or pd.isna(row.objective) else float(row.objective)
        result = replace(self.result, objective=objective, bound=None, handle=None)
        plan = Plan(by_id[sid].instance, result, **tables, summary=None,
                    parts=ObjectiveParts(self.parts.scenario_terminal_value.get(sid, 0.0)))
        plan.summary = plan._summary()
        return plan

    # ------------------------------------------------------------------ building

    @classmethod
    def from_model(cls, inst: Instance, model, result: SolveResult) -> Plan:
        """The plan of ``inst`` read from a solved Pyomo ``model`` and its solver ``result``."""
        stochastic = getattr(inst, "uncertainty", None) is not None
        tables = extract(inst, model) if result.status.has_plan else _empty(scenario=stochastic)
        plan = cls(inst, result, **tables, summary=None)
        if result.status.has_plan:
            plan.parts, plan.tree_summary = _objective_parts(model)
        if stochastic:
            plan.scenarios = _scenarios_table(plan, model) if result.status.has_plan else _empty(["scenarios"])[
                "scenarios"]
            plan.commitments = plan.root_decisions()
            plan.base_commitments = _empty(["base_commitments"])["base_commitments"]
        plan.summary = plan._summary()
        return plan

    def root_decisions(self) -> pd.DataFrame:
        """The decisions of the years before the first stage (shared by every scenario): what to sign now."""
        empty = pd.DataFrame(columns=COLUMNS["commitments"])
        if not self.stochastic or not self.status.has_plan:
            return empty
        years = list(self.instance.tree.root_years)
        sid = self.scenarios.scenario.iloc[0]
        p, f = self.purchases, self.facilities
        return commitments_table(self.instance, p[p.scenario == sid], f[f.scenario == sid], years)

    def _summary(self) -> pd.DataFrame:
        inst, r = self.instance, self.result
        if self.stochastic and self.scenarios is not None and len(self.scenarios):
            sc = self.scenarios
            spend = float((sc.probability * sc.total_spend_usd).sum())  # expected
            peak = float(sc.peak_capacity_mw.max())
        else:
            spend = float(self.spend["total_usd"].sum()) if len(self.spend) else math.nan
            peak = (float(self.facilities.groupby("year")["capacity_mw"].sum().max())
                    if len(self.facilities) else math.nan)
        budget = inst.budget.total_usd
        row = {
            "instance": inst.name,
            "objective": r.objective if r.objective is not None else math.nan,
            "status": r.status.value,
            "mip_gap": r.mip_gap if r.mip_gap is not None else math.nan,
            "objective_bound": r.bound if r.bound is not None else math.nan,
            "total_spend_usd": spend,
            "budget_used_share": spend / budget if budget else math.nan,
            "peak_capacity_mw": peak,
            "build_seconds": r.build_seconds,
            "handoff_seconds": r.handoff_seconds,
            "solve_seconds": r.solve_seconds,
            "solver": r.solver,
            "solver_version": r.solver_version,
            "instance_hash": inst.hash,
            "message": r.message,
            "terminal_value": self.parts.terminal_value if r.status.has_plan else math.nan,
        }
        columns = list(COLUMNS["summary"])
        if self.stochastic:
            columns += TREE_SUMMARY
            row.update(self.tree_summary.fields() if self.tree_summary else {})
        if self.commitment is not None:
            columns += COMMIT_SUMMARY
            row.update(self.commitment.fields())
        row.update({k: math.nan for k in columns if k not in row})
        return pd.DataFrame([row], columns=columns)


    # ------------------------------------------------------------------ writing

    def write(self, directory: str | os.PathLike, formats: Iterable[str] = ("csv",)) -> list[Path]:
        """Write every table in each of ``formats`` into ``directory``, atomically; returns the paths written.

        csv, parquet and json give one file per table (``purchases.csv``, ...);
        xlsx gives one workbook ``plan.xlsx`` with a sheet per table.  Always
        writes ``summary.json`` and ``instance.yaml`` (a copy of the instance
        with its hash), so a plan directory can be read back with
        :func:`read_plan`, and ``marginals.csv`` when :attr:`marginals` have
        been computed.  Each file
        is written to a temporary name in the same directory and renamed, so an
        interrupted write never leaves a partial file.
        """
        formats = list(formats)
        bad = [f for f in formats if f not in FORMATS]
        if bad:
            raise ValueError(f"unknown format(s) {', '.join(bad)}; choose from {', '.join(FORMATS)}")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        summary = json.loads(self.summary.to_json(orient="records"))[0]
        header = (f"# copy of the instance this plan was solved from\n"
                  f"# source: {self.instance.source or '(mapping)'}\n# sha256: {self.instance.hash}\n")
        written = [
            atomic_write(out / "summary.json",
                         lambda p: Path(p).write_text(json.dumps(summary, indent=1) + "\n")),
            atomic_write(out / INSTANCE_COPY,
                         lambda p: Path(p).write_text(header + yaml.safe_dump(
                             plain(self.instance.raw), sort_keys=False))),
        ]
        marginals = getattr(self, "_marginals", None)  # only when computed, while the model was as solved
        if marginals is not None and len(marginals):
            written.append(atomic_write(out / MARGINALS, lambda p: marginals.to_csv(p, index=False)))
        tables = self.tables()
        for fmt in formats:
            if fmt == "xlsx":
                def write_xlsx(tmp):
                    with pd.ExcelWriter(tmp, engine="openpyxl") as xl:
                        for name, df in tables.items():
                            df.to_excel(xl, sheet_name=name, index=False)

                written.append(atomic_write(out / "plan.xlsx", write_xlsx))
                continue
            for name, df in tables.items():
                target = out / f"{name}.{fmt}"
                if fmt == "csv":
                    written.append(atomic_write(target, lambda p, df=df: df.to_csv(p, index=False)))
                elif fmt == "parquet":
                    written.append(atomic_write(target, lambda p, df=df: df.to_parquet(p, index=False)))
                elif fmt == "json" and name != "summary":  # summary.json is the summary document
                    written.append(atomic_write(
                        target, lambda p, df=df: df.to_json(p, orient="records", indent=1)))
        return written

    def to_dict(self) -> dict:
        """A JSON-ready document: summary fields plus every table as records."""
        doc = json.loads(self.summary.to_json(orient="records"))[0]
        doc["tables"] = {n: json.loads(df.to_json(orient="records")) for n, df in self.tables().items()
                         if n != "summary"}
        return doc

    def _repr_html_(self) -> str:
        """A notebook shows the status in words, the key figures and the main table."""
        from .display import plan_html

        return plan_html(self)


    # ------------------------------------------------------------------ reading (issue 21)

    @property
    def kpis(self) -> Kpis:
        """The summary fields as plain values, by attribute or key: ``plan.kpis.total_spend_usd``,
        ``plan.kpis["evpi"]`` (see :class:`~optimizer.plan.kpis.Kpis`); ``summary`` stays the one-row table."""
        return Kpis(self.summary)

    def __repr__(self) -> str:
        return plan_repr(self)


def read_plan(directory: str | os.PathLike) -> Plan:
    """Read a plan directory written by :meth:`Plan.write` (any one format) back into a Plan."""
    d = Path(directory)
    if not (d / INSTANCE_COPY).is_file() or not (d / "summary.json").is_file():
        raise FileNotFoundError(f"{d} is not a plan directory (no {INSTANCE_COPY} and summary.json); "
                                "write one with capplan solve FILE --out DIR")
    inst = load_instance(d / INSTANCE_COPY)
    stochastic = getattr(inst, "uncertainty", None) is not None
    s = json.loads((d / "summary.json").read_text())
    tables = {}
    xlsx = d / "plan.xlsx"
    for name in (*V1_TABLES, *(TREE_TABLES if stochastic else ())):
        for fmt, reader in (("csv", pd.read_csv), ("parquet", pd.read_parquet),
                            ("json", lambda p: pd.read_json(p, orient="records"))):
            if (d / f"{name}.{fmt}").is_file():
                df = reader(d / f"{name}.{fmt}")
                break
        else:
            if not xlsx.is_file():
                raise FileNotFoundError(f"{d}: no {name}.csv/.parquet/.json nor plan.xlsx")
            df = pd.read_excel(xlsx, sheet_name=name)
        columns = (["scenario"] if stochastic and name in V1_TABLES else []) + COLUMNS[name]
        tables[name] = df.reindex(columns=columns) if len(df) else pd.DataFrame(columns=columns)
        if "scenario" in columns:
            tables[name]["scenario"] = tables[name]["scenario"].astype(str)

    def num(key):
        v = s.get(key)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    result = SolveResult(SolveStatus(s["status"]), s.get("message", ""), num("objective"),
                         num("objective_bound"), num("mip_gap"), num("build_seconds") or 0.0,
                         num("handoff_seconds") or 0.0, num("solve_seconds") or 0.0,
                         s.get("solver", "highs"), s.get("solver_version", ""))
    main = {n: tables.pop(n) for n in V1_TABLES}
    scenario_objective = {}
    if stochastic and len(tables["scenarios"]):
        scenario_objective = dict(zip(tables["scenarios"].scenario, tables["scenarios"].objective))
    parts = ObjectiveParts(num("terminal_value") or 0.0, scenario_objective)
    tree_summary = commitment = None
    if stochastic and s.get("scenarios") is not None:
        tree_summary = TreeSummary(int(s["scenarios"]), num("expected_objective"), num("cvar"),
                                   num("wait_and_see"), num("evpi"), num("base_plan_objective"),
                                   s.get("base_plan_status"), num("vss"), s.get("wait_and_see_status"))
    if "commitment_cost" in s:
        commitment = CommitmentSummary(num("commitment_cost"), int(s["committed_through"]))
    plan = Plan(inst, result, **main, summary=None, **tables, parts=parts, tree_summary=tree_summary,
                commitment=commitment)
    if (d / MARGINALS).is_file():
        m = pd.read_csv(d / MARGINALS)
        plan._marginals = m.assign(where=m["where"].fillna("").astype(str), binding=m.binding.astype(bool))
    plan.summary = plan._summary()
    return plan


def _objective_parts(model) -> tuple[ObjectiveParts, TreeSummary | None]:
    """The terminal value and each scenario's objective O_s; for a tree, the risk measure's parts.

    O_s is a sum over its path's node-years of Yearly and Terminal (formulations.model.add_objective): each
    node-year's value is evaluated once and O_s summed in its expression's own order.
    """
    tree, factor = model._tree, model.info.objective_factor
    value = Values()  # Yearly[t, v] and Terminal[t, v] evaluated once, shared by the scenarios through (t, v)
    objective = {sid: value(model.O[sid]) * factor for sid in model.SC}
    terminal = {s.id: factor * sum(value(model.Terminal[t, v]) for t, v in tree.path(s).items()
                                   if (t, v) in model.Terminal) for s in tree.scenarios}
    parts = ObjectiveParts(tree.expected(terminal), objective, terminal)
    if tree.trivial:
        return parts, None
    return parts, TreeSummary(len(tree.scenarios), tree.expected(objective), tree.cvar(objective))


def _scenarios_table(plan: Plan, model) -> pd.DataFrame:
    objective = plan.parts.scenario_objective
    def total(df, column):  # each scenario's sum as its own plan sums it (plan.scenario(sid)), to the bit
        return {sid: float(g.sum()) for sid, g in df.groupby("scenario", sort=False)[column]}

    spend, unmet = total(plan.spend, "total_usd"), total(plan.compute, "unmet_pflops")
    peak = plan.facilities.groupby(["scenario", "year"], sort=False).capacity_mw.sum().groupby(
        level="scenario", sort=False).max()
    rows = [(s.id, s.probability, objective[s.id], float(spend[s.id]), float(unmet[s.id]), float(peak[s.id]),
             math.nan, math.nan) for s in model._tree.scenarios]
    return pd.DataFrame(rows, columns=COLUMNS["scenarios"])
