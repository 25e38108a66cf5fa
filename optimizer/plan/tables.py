"""The plan tables of spec model-v1, section 3, read from a solved model, in spec units."""

from __future__ import annotations

import math

import pandas as pd
import pyomo.environ as pyo
from pyomo.core.expr import numeric_expr as ne

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
                "base_plan_status", "wait_and_see_status"]
COMMIT_SUMMARY = ["commitment_cost", "committed_through"]


def _clean(x: float, tol: float = 1e-9) -> float:
    return 0.0 if abs(x) < tol else float(x)


def _empty(names=V1_TABLES, scenario: bool = False) -> dict[str, pd.DataFrame]:
    return {n: pd.DataFrame(columns=(["scenario"] if scenario and n in V1_TABLES else []) + COLUMNS[n])
            for n in names}


def extract(inst: Instance, m) -> dict[str, pd.DataFrame]:
    """The v1 tables of a solved model: of the plan, or (a tree) of every scenario with a ``scenario`` column first.

    A scenario's rows of year t depend only on its node of year t (spec v2 section 4.2: the scenarios through a
    node share its variables and its data), so each node-year's rows are read once and every scenario's tables
    are its path's rows: the 1,000-scenario benchmark tree reads its 5,266 node-years once, not 10,000 times.
    """
    tree = m._tree
    index = _PathIndex(m)
    cache: dict[tuple[int, str], _NodeYear] = {}

    def rows(data, path):
        for t, v in path.items():
            if (t, v) not in cache:
                cache[t, v] = _node_year(data(v), m, t, v, index)
        return [cache[t, v] for t, v in path.items()]

    if tree.trivial:
        return _tables([(None, rows(lambda v: inst, {t: "" for t in inst.years}))], stochastic=False)
    return _tables([(s.id, rows(tree.data, tree.path(s))) for s in tree.scenarios], stochastic=True)


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


class Values:
    """The values of a solved model's expressions, each named expression evaluated once.

    Pyomo evaluates an expression by a general tree walk, again for every expression naming it; the tables of a
    1,000-scenario tree read ~100,000 of them.  This walk knows the node types the formulations build (sums,
    products, negations, divisions, variables, named expressions, constants), applies the same operations in the
    same order as Pyomo's (so the values are Pyomo's to the bit), and hands anything else to ``pyo.value``.
    """

    def __init__(self):
        self.named: dict[int, float] = {}

    def __call__(self, e) -> float:
        kind = _KINDS.get(type(e))
        if kind is None:
            if isinstance(e, (int, float)):
                return e
            if isinstance(e, ne.SumExpression):
                kind = _SUM
            elif getattr(e, "is_named_expression_type", None) and e.is_named_expression_type():
                kind = _NAMED
            elif getattr(e, "is_variable_type", None) and e.is_variable_type():
                kind = _VAR
            else:
                return pyo.value(e)
            _KINDS[type(e)] = kind
        if kind is _SUM:
            args = e.args
            if not args:
                return 0
            it = iter(args)
            return sum(map(self, it), start=self(next(it)))  # Pyomo's own sum, in its order
        if kind is _PRODUCT:
            a, b = e.args
            return self(a) * self(b)
        if kind is _VAR:
            v = e.value
            return pyo.value(e) if v is None else v
        if kind is _NAMED:
            key = id(e)
            if key not in self.named:
                self.named[key] = self(e.expr)
            return self.named[key]
        if kind is _NEGATION:
            return -self(e.args[0])
        a, b = e.args  # division
        return self(a) / self(b)


_SUM, _PRODUCT, _VAR, _NAMED, _NEGATION, _DIVISION = "sum", "product", "var", "named", "negation", "division"
_KINDS: dict[type, str] = {ne.ProductExpression: _PRODUCT, ne.MonomialTermExpression: _PRODUCT,
                           ne.NPV_ProductExpression: _PRODUCT, ne.NegationExpression: _NEGATION,
                           ne.NPV_NegationExpression: _NEGATION, ne.DivisionExpression: _DIVISION,
                           ne.NPV_DivisionExpression: _DIVISION}


class _PathIndex:
    """The model's index sets grouped by node-year once, so that each node-year's rows read only its own
    indices (a scan of every set per scenario made a 1,000-scenario tree's tables quadratic), and the values of
    its expressions (each evaluated once: :class:`Values`)."""

    SETS = ("N_IDX", "X_IDX", "Y_IDX", "M_IDX", "K_IDX")

    def __init__(self, m):
        self.groups, self.value = {}, Values()
        for name in self.SETS:
            groups = self.groups[name] = {}
            for i in getattr(m, name):  # in the set's order
                groups.setdefault((i[-2], i[-1]), []).append(i)

    def on(self, name: str, t: int, nd: str) -> list:
        """The indices of set ``name`` in node-year (t, nd), in the set's order."""
        return self.groups[name].get((t, nd), [])


class _NodeYear:
    """The table rows of one node-year (sorted as the tables are), and its spend by kind."""

    __slots__ = ("year", "purchases", "fleet", "facilities", "compute", "serving", "spend")

    def __init__(self, year, purchases, fleet, facilities, compute, serving, spend):
        self.year, self.purchases, self.fleet, self.facilities = year, purchases, fleet, facilities
        self.compute, self.serving, self.spend = compute, serving, spend


def _node_year(inst: Instance, m, t: int, nd: str, index: _PathIndex) -> _NodeYear:
    """Read node-year (t, nd) of the solved model into spec-unit rows; ``inst`` holds the node's data."""
    S = m.info.scaling
    FU = S.compute_pflops
    chips, regions = inst.chips, inst.regions

    purchases = []
    for i in index.on("N_IDX", t, nd):
        g, r, _, _ = i
        units = int(round(m.n[i].value or 0))
        if units > 0:
            n_chips = units * chips[g].chips_per_unit
            purchases.append((t, r, g, units, n_chips, chips[g].price_usd[t] * n_chips))

    fleet = []
    x_on = index.on("X_IDX", t, nd)
    for i in x_on:
        g, r, _, _ = i
        u = chips[g].chips_per_unit
        installed = _clean(index.value(m.N[i]) * u)
        train = _clean((m.xT[i].value or 0.0) * u)
        infer = _clean((m.xI[i].value or 0.0) * u)
        excess = train + infer - installed
        if excess > 0:  # within HiGHS's feasibility tolerance: never report more than is installed
            cut = min(infer, excess)
            infer, train = infer - cut, max(0.0, train - (excess - cut))
        if installed > 0 or train > 0 or infer > 0:
            fleet.append((t, r, g, installed, train, infer, _clean(installed - train - infer, 1e-6)))

    k_set = set(index.on("K_IDX", t, nd))
    train_by, infer_by = {}, {}
    for i in x_on:
        g, r, _, _ = i
        c = chips[g]
        train_by[r] = train_by.get(r, 0.0) + c.peak_pflops * c.util_train * c.chips_per_unit * (m.xT[i].value or 0.0)
        infer_by[r] = infer_by.get(r, 0.0) + c.peak_pflops * c.util_infer * c.chips_per_unit * (m.xI[i].value or 0.0)
    served = {}
    y_on = index.on("Y_IDX", t, nd)
    for i in y_on:
        s, d, _, _ = i
        served[d] = served.get(d, 0.0) + inst.sources(d)[s] * (m.y[i].value or 0.0) * FU
    unmet = {d: (m.m[d, t, nd].value or 0.0) * FU for d, _, _ in index.on("M_IDX", t, nd)}
    facilities, compute = [], []
    for r, reg in regions.items():
        blocks = int(round(m.k[r, t, nd].value or 0)) if (r, t, nd) in k_set else 0
        facilities.append((t, r, blocks, _clean(index.value(m.Cap[r, t, nd])),
                           _clean(index.value(m.Draw[r, t, nd])),
                           reg.max_mw[t] if reg.max_mw is not None else math.nan))
        compute.append((t, r, _clean(train_by.get(r, 0.0)), _clean(infer_by.get(r, 0.0)),
                        reg.inference_demand_pflops[t], _clean(served.get(r, 0.0)), _clean(unmet.get(r, 0.0))))

    serving = []
    for i in y_on:
        s, d, _, _ = i
        p = _clean((m.y[i].value or 0.0) * FU)
        if p > 0:
            serving.append((t, s, d, p))

    purchases.sort(key=lambda row: (row[1], row[2]))  # within a year: region, chip (then source, demand region)
    fleet.sort(key=lambda row: (row[1], row[2]))
    serving.sort(key=lambda row: (row[1], row[2]))
    return _NodeYear(t, purchases, fleet, facilities, compute, serving, _spend(inst, t, purchases, fleet, facilities))


def _spend(inst: Instance, t: int, purchases, fleet, facilities) -> tuple[float, float, float, float]:
    """Chip capex, facility capex, energy and opex of year t in USD, recomputed from the year's rows (not from
    scaled model values)."""
    chip_capex = facility = energy = opex = 0.0
    for row in purchases:
        chip_capex += row[5]
    for _, r, b, _, d, _ in facilities:
        region = inst.regions[r]
        facility += region.block_capex_usd[t] * b
        energy += HOURS_PER_YEAR * region.electricity_usd_per_mwh[t] * d
    for _, _, g, n, *_ in fleet:
        opex += inst.chips[g].opex_usd_per_chip_year * n
    return float(chip_capex), float(facility), float(energy), float(opex)


def _tables(plans: list[tuple[str | None, list[_NodeYear]]], stochastic: bool) -> dict[str, pd.DataFrame]:
    """The v1 tables from each scenario's node-year rows (``plans``: ``[(scenario id, rows of its path)]``); a
    ``scenario`` column first when ``stochastic``, else the one plan's tables."""
    out = {}
    for name in ("purchases", "fleet", "facilities", "compute", "serving"):
        columns = COLUMNS[name]
        if stochastic:
            data = [(sid, *row) for sid, path in plans for ny in path for row in getattr(ny, name)]
            columns = ["scenario", *columns]
        else:
            data = [row for _, path in plans for ny in path for row in getattr(ny, name)]
        out[name] = pd.DataFrame(data, columns=columns)
    spend = []
    for sid, path in plans:
        cumulative = 0.0
        for ny in path:
            chip_capex, facility, energy, opex = ny.spend
            total = chip_capex + facility + energy + opex
            cumulative += total
            spend.append(((sid,) if stochastic else ()) + (ny.year, chip_capex, facility, energy, opex, total,
                                                           cumulative))
    out["spend"] = pd.DataFrame(spend, columns=(["scenario"] if stochastic else []) + COLUMNS["spend"])
    out["split"] = _split_table(out["compute"], by_scenario=stochastic)
    if stochastic:  # a table without rows types its scenario column as the others do
        for df in out.values():
            df["scenario"] = df["scenario"].astype(str)
    return out


def _split_table(compute: pd.DataFrame, by_scenario: bool = False) -> pd.DataFrame:
    keys = ["scenario", "year"] if by_scenario else ["year"]
    g = compute.groupby(keys, sort=not by_scenario)[["train_pflops", "infer_capacity_pflops"]].sum()
    total = g.train_pflops + g.infer_capacity_pflops
    share = (g.train_pflops / total.where(total > 0)).fillna(0.0)
    out = pd.DataFrame({"train_pflops": g.train_pflops.values, "infer_pflops": g.infer_capacity_pflops.values,
                        "training_share": share.values})
    for k in reversed(keys):
        out.insert(0, k, g.index.get_level_values(k))
    return out.reset_index(drop=True)
