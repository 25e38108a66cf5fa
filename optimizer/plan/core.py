"""The plan a solve reports: its tables, summary, writers and reader."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from ..files import atomic_write
from ..instance import Instance, load_instance, plain
from ..solver import SolveResult, SolveStatus
from .tables import COLUMNS, TABLES, _empty, _extract

FORMATS = ("csv", "parquet", "xlsx", "json")
INSTANCE_COPY = "instance.yaml"


@dataclass
class Plan:
    """An optimal (or best found) plan, as pandas tables in spec units.

    ``status`` says what the solver proved; tables are empty when there is no plan.
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

    @property
    def status(self) -> SolveStatus:
        return self.result.status

    @property
    def objective(self) -> float | None:
        return self.result.objective

    @property
    def mip_gap(self) -> float | None:
        return self.result.mip_gap

    @property
    def message(self) -> str:
        return self.result.message

    @property
    def marginals(self) -> pd.DataFrame:
        """Duals of the plan's LP with its blocks and frontier sites fixed, in reporting units.

        Columns: family, year, where (region / chip), binding, marginal (objective
        change per unit increase of the constraint's limit), unit (per +$1B,
        per +100 MW, per +1 unit, per +1 PFLOP/s).  Local prices of the
        fixed-integer LP, not of the MIP: moving a limit far enough changes the
        integer decisions (see :func:`optimizer.solver.duals.fixed_lp_marginals`).
        Empty for a plan read back from disk.
        """
        from ..solver.duals import MARGINAL_COLUMNS, fixed_lp_marginals

        if getattr(self, "_marginals", None) is None:
            if self.result.handle is None:
                return pd.DataFrame(columns=MARGINAL_COLUMNS)
            model, opt = self.result.handle
            self._marginals = fixed_lp_marginals(model, opt)
        return self._marginals

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in TABLES}

    # ------------------------------------------------------------------ building

    @classmethod
    def from_model(cls, inst: Instance, model, result: SolveResult) -> Plan:
        tables = _extract(inst, model) if result.status.has_plan else _empty()
        plan = cls(inst, result, **tables, summary=None)
        plan.summary = plan._summary()
        return plan

    def _summary(self) -> pd.DataFrame:
        inst, r = self.instance, self.result
        spend = float(self.spend["total_usd"].sum()) if len(self.spend) else math.nan
        budget = inst.budget.total_usd
        peak = (float(self.facilities.groupby("year")["capacity_mw"].sum().max())
                if len(self.facilities) else math.nan)
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
        }
        return pd.DataFrame([row], columns=COLUMNS["summary"])

    # ------------------------------------------------------------------ writing

    def write(self, directory: str | os.PathLike, formats: Iterable[str] = ("csv",)) -> list[Path]:
        """Write every table in each format, atomically; returns the paths written.

        csv, parquet and json give one file per table (``purchases.csv``, ...);
        xlsx gives one workbook ``plan.xlsx`` with a sheet per table.  Always
        writes ``summary.json`` and ``instance.yaml`` (a copy of the instance
        with its hash), so a plan directory can be read back with
        :func:`read_plan`.  Each file
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



def read_plan(directory: str | os.PathLike) -> Plan:
    """Read a plan directory written by :meth:`Plan.write` (any one format) back into a Plan."""
    d = Path(directory)
    if not (d / INSTANCE_COPY).is_file() or not (d / "summary.json").is_file():
        raise FileNotFoundError(f"{d} is not a plan directory (no {INSTANCE_COPY} and summary.json); "
                                "write one with capplan solve FILE --out DIR")
    inst = load_instance(d / INSTANCE_COPY)
    s = json.loads((d / "summary.json").read_text())
    tables = {}
    xlsx = d / "plan.xlsx"
    for name in TABLES:
        if name == "summary":
            continue
        for fmt, reader in (("csv", pd.read_csv), ("parquet", pd.read_parquet),
                            ("json", lambda p: pd.read_json(p, orient="records"))):
            if (d / f"{name}.{fmt}").is_file():
                df = reader(d / f"{name}.{fmt}")
                break
        else:
            if not xlsx.is_file():
                raise FileNotFoundError(f"{d}: no {name}.csv/.parquet/.json nor plan.xlsx")
            df = pd.read_excel(xlsx, sheet_name=name)
        tables[name] = df.reindex(columns=COLUMNS[name]) if len(df) else pd.DataFrame(columns=COLUMNS[name])

    def num(key):
        v = s.get(key)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    result = SolveResult(SolveStatus(s["status"]), s.get("message", ""), num("objective"),
                         num("objective_bound"), num("mip_gap"), num("build_seconds") or 0.0,
                         num("handoff_seconds") or 0.0, num("solve_seconds") or 0.0,
                         s.get("solver", "highs"), s.get("solver_version", ""))
    plan = Plan(inst, result, **tables, summary=None)
    plan.summary = plan._summary()
    return plan

