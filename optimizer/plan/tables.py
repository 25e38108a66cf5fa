"""The plan tables of spec model-v1, section 3, read from a solved model, in spec units."""

from __future__ import annotations

import math

import pandas as pd
import pyomo.environ as pyo

from formulations import HOURS_PER_YEAR

from ..instance import Instance

V1_TABLES = ("purchases", "fleet", "facilities", "compute", "serving", "spend", "split")
TABLES = (*V1_TABLES, "summary")
TREE_TABLES = ("scenarios", "commitments", "base_commitments")  # plans of an instance with uncertainty

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
                "solve_seconds", "solver", "solver_version", "instance_hash", "message", "terminal_value"],
    "scenarios": ["scenario", "probability", "objective", "total_spend_usd", "unmet_pflops_years",
                  "peak_capacity_mw", "wait_and_see_objective", "regret"],
    "commitments": ["year", "region", "item", "quantity", "chips", "mw"],
    "base_commitments": ["year", "region", "item", "quantity", "chips", "mw"],
}
# summary fields of a plan under uncertainty (spec v2 section 4.3), and of a re-plan (section 6)
TREE_SUMMARY = ["scenarios", "expected_objective", "cvar", "wait_and_see", "evpi", "base_plan_objective", "vss",
                "base_plan_status"]
COMMIT_SUMMARY = ["commitment_cost", "committed_through"]


def _clean(x: float, tol: float = 1e-9) -> float:
    return 0.0 if abs(x) < tol else float(x)


def _empty(names=V1_TABLES, scenario: bool = False) -> dict[str, pd.DataFrame]:
    return {n: pd.DataFrame(columns=(["scenario"] if scenario and n in V1_TABLES else []) + COLUMNS[n])
            for n in names}


def extract(inst: Instance, m) -> dict[str, pd.DataFrame]:
    """The v1 tables of a solved model: of the plan, or (a tree) of every scenario with a ``scenario`` column first."""
    tree = m._tree
    if tree.trivial:
        return _extract(inst, m)
    index = _PathIndex(m)
    per = [(s.id, _extract(s.instance, m, tree.path(s), index)) for s in tree.scenarios]
    return {name: pd.concat([df[name].assign(scenario=sid)[["scenario", *COLUMNS[name]]] for sid, df in per],
                            ignore_index=True)
            for name in V1_TABLES}


def commitments_table(inst: Instance, purchases: pd.DataFrame, facilities: pd.DataFrame,
                      years) -> pd.DataFrame:
    """What is signed in ``years``: units bought (item = the chip) and campus blocks started (item = blocks).

    ``inst`` gives the data of those years (the root node's); chips are counted
    with the facility MW they draw, blocks with the MW they bring online.
    """
    years = set(years)
    rows = []
    for r in purchases[purchases.year.isin(years)].itertuples(index=False):
        c = inst.chips[r.chip]
        mw = r.chips * c.power_w * inst.regions[r.region].pue / 1e6
        rows.append((int(r.year), r.region, r.chip, float(r.units), float(r.chips), mw))
    for r in facilities[facilities.year.isin(years) & (facilities.blocks_started > 0)].itertuples(index=False):
        rows.append((int(r.year), r.region, "blocks", float(r.blocks_started), 0.0,
                     r.blocks_started * inst.regions[r.region].block_mw))
    df = pd.DataFrame(rows, columns=COLUMNS["commitments"])
    return df.sort_values(["year", "region", "item"], kind="stable").reset_index(drop=True)


class _PathIndex:
    """The model's index sets grouped by (year, node) once, so that each scenario's tables read only its own
    indices (a scan of every set per scenario made a 1,000-scenario tree's tables quadratic)."""

    SETS = ("N_IDX", "X_IDX", "Y_IDX", "M_IDX", "K_IDX")

    def __init__(self, m):
        self.groups, self.values = {}, {}
        for name in self.SETS:
            groups = self.groups[name] = {}
            for pos, i in enumerate(getattr(m, name)):
                groups.setdefault((i[-2], i[-1]), []).append((pos, i))

    def value(self, expr, i) -> float:
        """``pyo.value(expr[i])``, once per index (the scenarios through a node share it)."""
        key = (expr.name, i)
        if key not in self.values:
            self.values[key] = pyo.value(expr[i])
        return self.values[key]

    def on(self, name: str, path: dict[int, str]) -> list:
        """The indices of set ``name`` on ``path``, in the set's order."""
        groups = self.groups[name]
        found = [x for t, nd in path.items() for x in groups.get((t, nd), ())]
        return [i for _, i in sorted(found, key=lambda x: x[0])]


def _extract(inst: Instance, m, path: dict[int, str] | None = None,
             index: _PathIndex | None = None) -> dict[str, pd.DataFrame]:
    """Read the solved model into spec-unit tables (index order chip, region, year everywhere).

    ``path`` is the scenario's node in each year (the root node every year for
    a v1 instance); ``inst`` is that scenario's own instance; ``index`` the
    model's indices by node (built here when not given).
    """
    S = m.info.scaling
    FU = S.compute_pflops
    chips, regions = inst.chips, inst.regions
    path = path or {t: "" for t in inst.years}
    index = index or _PathIndex(m)

    purchases = []
    for i in index.on("N_IDX", path):
        g, r, t, _ = i
        units = int(round(m.n[i].value or 0))
        if units > 0:
            n_chips = units * chips[g].chips_per_unit
            purchases.append((t, r, g, units, n_chips, chips[g].price_usd[t] * n_chips))

    fleet = []
    x_on = index.on("X_IDX", path)
    for i in x_on:
        g, r, t, _ = i
        u = chips[g].chips_per_unit
        installed = _clean(index.value(m.N, i) * u)
        train = _clean((m.xT[i].value or 0.0) * u)
        infer = _clean((m.xI[i].value or 0.0) * u)
        excess = train + infer - installed
        if excess > 0:  # within HiGHS's feasibility tolerance: never report more than is installed
            cut = min(infer, excess)
            infer, train = infer - cut, max(0.0, train - (excess - cut))
        if installed > 0 or train > 0 or infer > 0:
            fleet.append((t, r, g, installed, train, infer, _clean(installed - train - infer, 1e-6)))

    k_set = set(index.on("K_IDX", path))
    facilities, compute = [], []
    train_by = {}
    infer_by = {}
    for i in x_on:
        g, r, t, _ = i
        c = chips[g]
        train_by[r, t] = train_by.get((r, t), 0.0) + \
            c.peak_pflops * c.util_train * c.chips_per_unit * (m.xT[i].value or 0.0)
        infer_by[r, t] = infer_by.get((r, t), 0.0) + \
            c.peak_pflops * c.util_infer * c.chips_per_unit * (m.xI[i].value or 0.0)
    served = {}
    y_on = index.on("Y_IDX", path)
    for i in y_on:
        s, d, t, _ = i
        served[d, t] = served.get((d, t), 0.0) + inst.sources(d)[s] * (m.y[i].value or 0.0) * FU
    unmet = {(d, t): (m.m[d, t, nd].value or 0.0) * FU for d, t, nd in index.on("M_IDX", path)}
    for t in inst.years:
        nd = path[t]
        for r, reg in regions.items():
            blocks = int(round(m.k[r, t, nd].value or 0)) if (r, t, nd) in k_set else 0
            facilities.append((t, r, blocks, _clean(index.value(m.Cap, (r, t, nd))),
                               _clean(index.value(m.Draw, (r, t, nd))),
                               reg.max_mw[t] if reg.max_mw is not None else math.nan))
            compute.append((t, r, _clean(train_by.get((r, t), 0.0)), _clean(infer_by.get((r, t), 0.0)),
                            reg.inference_demand_pflops[t], _clean(served.get((r, t), 0.0)),
                            _clean(unmet.get((r, t), 0.0))))

    serving = []
    for i in y_on:
        s, d, t, _ = i
        p = _clean((m.y[i].value or 0.0) * FU)
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
    purchases, fleet, fac = df["purchases"], df["fleet"], df["facilities"]
    chip_capex, facility, energy, opex = ({t: 0.0 for t in inst.years} for _ in range(4))
    for t, usd in zip(purchases.year.tolist(), purchases.capex_usd.tolist()):  # one pass over each table
        chip_capex[t] += usd
    for t, r, b, d in zip(fac.year.tolist(), fac.region.tolist(), fac.blocks_started.tolist(), fac.draw_mw.tolist()):
        region = inst.regions[r]
        facility[t] += region.block_capex_usd[t] * b
        energy[t] += HOURS_PER_YEAR * region.electricity_usd_per_mwh[t] * d
    for t, g, n in zip(fleet.year.tolist(), fleet.chip.tolist(), fleet.installed.tolist()):
        opex[t] += inst.chips[g].opex_usd_per_chip_year * n
    rows = []
    cumulative = 0.0
    for t in inst.years:
        total = chip_capex[t] + facility[t] + energy[t] + opex[t]
        cumulative += total
        rows.append((t, float(chip_capex[t]), float(facility[t]), float(energy[t]), float(opex[t]), total,
                     cumulative))
    return pd.DataFrame(rows, columns=COLUMNS["spend"])


def _split_table(compute: pd.DataFrame) -> pd.DataFrame:
    g = compute.groupby("year", sort=True)[["train_pflops", "infer_capacity_pflops"]].sum()
    total = g.train_pflops + g.infer_capacity_pflops
    share = (g.train_pflops / total.where(total > 0)).fillna(0.0)
    out = pd.DataFrame({"year": g.index, "train_pflops": g.train_pflops.values,
                        "infer_pflops": g.infer_capacity_pflops.values, "training_share": share.values})
    return out.reset_index(drop=True)
