"""The plan a solve reports: the tables of spec model-v1, section 3, and their writers."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyomo.environ as pyo
import yaml

from formulations import HOURS_PER_YEAR

from .instance import Instance, load_instance, plain
from .solver import SolveResult, SolveStatus

TABLES = ("purchases", "fleet", "facilities", "compute", "serving", "spend", "split", "summary")
FORMATS = ("csv", "parquet", "xlsx", "json")
INSTANCE_COPY = "instance.yaml"

COLUMNS = {
    "purchases": ["year", "region", "chip", "units", "chips", "capex_usd"],
    "fleet": ["year", "region", "chip", "installed", "train", "infer", "idle"],
    "facilities": ["year", "region", "blocks_started", "capacity_mw", "draw_mw", "max_mw"],
    "compute": ["year", "region", "train_pflops", "infer_capacity_pflops", "demand_pflops",
                "served_pflops", "unmet_pflops"],
    "serving": ["year", "source", "demand_region", "pflops"],
    "spend": ["year", "chip_capex_usd", "facility_capex_usd", "energy_usd", "opex_usd",
              "total_usd", "cumulative_usd"],
    "split": ["year", "train_pflops", "infer_pflops", "training_share"],
    "summary": ["instance", "objective", "status", "mip_gap", "objective_bound", "total_spend_usd",
                "budget_used_share", "peak_capacity_mw", "build_seconds", "handoff_seconds",
                "solve_seconds", "solver", "solver_version", "instance_hash", "message"],
}


def _clean(x: float, tol: float = 1e-9) -> float:
    return 0.0 if abs(x) < tol else float(x)


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
        integer decisions (see :func:`optimizer.diagnose.fixed_lp_marginals`).
        Empty for a plan read back from disk.
        """
        from .diagnose import MARGINAL_COLUMNS, fixed_lp_marginals

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


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(target: Path, writer) -> Path:
    """Run ``writer(tmp_path)`` then rename onto ``target``; no partial file survives a crash."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    try:
        writer(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; give it the usual permissions
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _empty() -> dict[str, pd.DataFrame]:
    return {n: pd.DataFrame(columns=COLUMNS[n]) for n in TABLES if n != "summary"}


def _extract(inst: Instance, m) -> dict[str, pd.DataFrame]:
    """Read the solved model into spec-unit tables (index order chip, region, year everywhere)."""
    S = m.info.scaling
    FU = S.compute_pflops
    chips, regions = inst.chips, inst.regions
    v = pyo.value

    purchases = []
    for g, r, t in m.N_IDX:
        units = int(round(m.n[g, r, t].value or 0))
        if units > 0:
            n_chips = units * chips[g].chips_per_unit
            purchases.append((t, r, g, units, n_chips, chips[g].price_usd[t] * n_chips))

    fleet = []
    for g, r, t in m.X_IDX:
        u = chips[g].chips_per_unit
        installed = _clean(v(m.N[g, r, t]) * u)
        train = _clean((m.xT[g, r, t].value or 0.0) * u)
        infer = _clean((m.xI[g, r, t].value or 0.0) * u)
        excess = train + infer - installed
        if excess > 0:  # within HiGHS's feasibility tolerance: never report more than is installed
            cut = min(infer, excess)
            infer, train = infer - cut, max(0.0, train - (excess - cut))
        if installed > 0 or train > 0 or infer > 0:
            fleet.append((t, r, g, installed, train, infer, _clean(installed - train - infer, 1e-6)))

    k_set = set(m.K_IDX)
    facilities, compute = [], []
    train_by = {}
    infer_by = {}
    for g, r, t in m.X_IDX:
        c = chips[g]
        train_by[r, t] = train_by.get((r, t), 0.0) + \
            c.peak_pflops * c.util_train * c.chips_per_unit * (m.xT[g, r, t].value or 0.0)
        infer_by[r, t] = infer_by.get((r, t), 0.0) + \
            c.peak_pflops * c.util_infer * c.chips_per_unit * (m.xI[g, r, t].value or 0.0)
    served = {}
    for s, d, t in m.Y_IDX:
        served[d, t] = served.get((d, t), 0.0) + inst.sources(d)[s] * (m.y[s, d, t].value or 0.0) * FU
    unmet = {(d, t): (m.m[d, t].value or 0.0) * FU for d, t in m.M_IDX}
    for t in inst.years:
        for r, reg in regions.items():
            blocks = int(round(m.k[r, t].value or 0)) if (r, t) in k_set else 0
            facilities.append((t, r, blocks, _clean(v(m.Cap[r, t])), _clean(v(m.Draw[r, t])),
                               reg.max_mw[t] if reg.max_mw is not None else math.nan))
            compute.append((t, r, _clean(train_by.get((r, t), 0.0)), _clean(infer_by.get((r, t), 0.0)),
                            reg.inference_demand_pflops[t], _clean(served.get((r, t), 0.0)),
                            _clean(unmet.get((r, t), 0.0))))

    serving = []
    for s, d, t in m.Y_IDX:
        p = _clean((m.y[s, d, t].value or 0.0) * FU)
        if p > 0:
            serving.append((t, s, d, p))

    df = {
        "purchases": pd.DataFrame(purchases, columns=COLUMNS["purchases"]),
        "fleet": pd.DataFrame(fleet, columns=COLUMNS["fleet"]),
        "facilities": pd.DataFrame(facilities, columns=COLUMNS["facilities"]),
        "compute": pd.DataFrame(compute, columns=COLUMNS["compute"]),
        "serving": pd.DataFrame(serving, columns=COLUMNS["serving"]),
    }
    for name in ("purchases", "fleet", "serving"):
        key = {"purchases": ["year", "region", "chip"], "fleet": ["year", "region", "chip"],
               "serving": ["year", "source", "demand_region"]}[name]
        df[name] = df[name].sort_values(key, kind="stable").reset_index(drop=True)
    df["spend"] = _spend_table(inst, df)
    df["split"] = _split_table(df["compute"])
    return df


def _spend_table(inst: Instance, df) -> pd.DataFrame:
    """Spend per year recomputed in USD from the plan tables (not from scaled model values)."""
    rows = []
    cumulative = 0.0
    purchases, fleet, fac = df["purchases"], df["fleet"], df["facilities"]
    for t in inst.years:
        chip_capex = float(purchases.loc[purchases.year == t, "capex_usd"].sum())
        ft = fac[fac.year == t]
        facility = float(sum(inst.regions[r].block_capex_usd[t] * b
                             for r, b in zip(ft.region, ft.blocks_started)))
        energy = float(sum(HOURS_PER_YEAR * inst.regions[r].electricity_usd_per_mwh[t] * d
                           for r, d in zip(ft.region, ft.draw_mw)))
        fl = fleet[fleet.year == t]
        opex = float(sum(inst.chips[g].opex_usd_per_chip_year * n for g, n in zip(fl.chip, fl.installed)))
        total = chip_capex + facility + energy + opex
        cumulative += total
        rows.append((t, chip_capex, facility, energy, opex, total, cumulative))
    return pd.DataFrame(rows, columns=COLUMNS["spend"])


def _split_table(compute: pd.DataFrame) -> pd.DataFrame:
    g = compute.groupby("year", sort=True)[["train_pflops", "infer_capacity_pflops"]].sum()
    total = g.train_pflops + g.infer_capacity_pflops
    share = (g.train_pflops / total.where(total > 0)).fillna(0.0)
    out = pd.DataFrame({"year": g.index, "train_pflops": g.train_pflops.values,
                        "infer_pflops": g.infer_capacity_pflops.values, "training_share": share.values})
    return out.reset_index(drop=True)
