"""The mutable parameters of the model: the instance data a sweep may change in place, and variable bounds.

Each parameter is declared once (:class:`~formulations.registry.Parameter`):
the instance field it holds, its unit, and the shape of its values that
decides the model's structure (an absent limit has no rows; a zero demand
has no demand row).  :func:`param_values` gives every value in internal
units, for building and for updating a model in place.
"""

from __future__ import annotations

import math

import pyomo.environ as pyo

from .registry import Parameter, declare, given, positive_years
from .scaling import Scaling

HOURS_PER_YEAR = 8760.0
W_PER_MW = 1e6

declare(
    Parameter("p_price", "money units per chip unit", "price of one purchasable unit (p_g,t u_g)",
              "chips.*.price_usd", reads=("chips.*.price_usd", "chips.*.chips_per_unit")),
    Parameter("p_block", "money units per block", "capex of one campus block (kappa_r,t)", "regions.*.block_capex_usd",
              shape=positive_years),
    Parameter("p_elec", "money units per MW-year", "energy cost of one MW for a year (H e_r,t)",
              "regions.*.electricity_usd_per_mwh", shape=positive_years),
    Parameter("p_annual", "money units", "annual spend cap (A_t)", "budget.annual_max_usd", shape=given),
    Parameter("p_ceiling", "MW", "global power ceiling (P_t)", "power.ceiling_mw", shape=given),
    Parameter("p_max", "MW", "regional facility maximum (Mmax_r,t)", "regions.*.max_mw", shape=given),
    Parameter("p_supply", "units", "supply cap of a chip (s_g,t)", "chips.*.supply_units", shape=given),
    Parameter("p_demand", "compute units", "inference demand (D_d,t)", "regions.*.inference_demand_pflops",
              shape=positive_years),
    Parameter("p_train", "compute units", "training floor (T_t)", "training.min_pflops", shape=positive_years),
    Parameter("p_frontier", "compute units", "frontier cluster size (C_t)", "training.frontier_cluster_pflops",
              shape=positive_years),
    Parameter("p_nub", "units", "upper bound of n from supply, budget and power (a valid bound, not a limit)", None,
              reads=("chips.*.supply_units", "budget.total_usd", "budget.annual_max_usd", "chips.*.price_usd",
                     "regions.*.max_mw", "power.ceiling_mw", "chips.*.power_w", "regions.*.pue")),
    Parameter("p_kub", "blocks", "upper bound of k from the power caps once online and the budget", None,
              reads=("regions.*.max_mw", "power.ceiling_mw", "regions.*.existing_mw", "regions.*.block_mw",
                     "budget.total_usd", "regions.*.block_capex_usd")),
    Parameter("p_Kub", "blocks", "upper bound of K from the power caps of every later year and the budget", None,
              reads=("regions.*.max_mw", "power.ceiling_mw", "regions.*.existing_mw", "regions.*.block_mw",
                     "budget.total_usd", "regions.*.block_capex_usd")),
    Parameter("p_budget", "money units", "total budget of each scenario (B)", "budget.total_usd", shape=given),
)


def param_values(tree, S: Scaling, sets: dict[str, list]) -> dict[str, object]:
    """Values of the mutable parameters, in internal units (one source for building and updating)."""
    MU, FU = S.money_usd, S.compute_pflops
    D = tree.data
    ny = sets["NY"]
    base = tree.scenarios[0].instance

    def price(g, t, v):
        c = D(v).chips[g]
        return c.price_usd[t] * c.chips_per_unit / MU

    v: dict[str, object] = {
        "p_price": {i: price(*i) for i in dict.fromkeys((g, t, nd) for g, _, t, nd in sets["N_IDX"])},
        "p_block": {(r, t, nd): D(nd).regions[r].block_capex_usd[t] / MU for r, t, nd in sets["K_IDX"]
                    if D(nd).regions[r].block_capex_usd[t] > 0},
        "p_elec": {(r, t, nd): HOURS_PER_YEAR * D(nd).regions[r].electricity_usd_per_mwh[t] / MU
                   for r in base.regions for t, nd in ny if D(nd).regions[r].electricity_usd_per_mwh[t] > 0},
        "p_annual": {(t, nd): D(nd).budget.annual_max_usd[t] / MU for t, nd in ny
                     if D(nd).budget.annual_max_usd is not None},
        "p_ceiling": {(t, nd): D(nd).power.ceiling_mw[t] for t, nd in ny if D(nd).power.ceiling_mw is not None},
        "p_max": {(r, t, nd): D(nd).regions[r].max_mw[t] for r in base.regions for t, nd in ny
                  if D(nd).regions[r].max_mw is not None},
        "p_supply": {(g, t, nd): D(nd).chips[g].supply_units[t] for g in base.chips for t, nd in ny
                     if D(nd).chips[g].supply_units is not None},
        "p_demand": {(d, t, nd): D(nd).regions[d].inference_demand_pflops[t] / FU for d, t, nd in sets["D_IDX"]},
        "p_train": {(t, nd): D(nd).training.min_pflops[t] / FU for t, nd in ny if D(nd).training.min_pflops[t] > 0},
        "p_frontier": {(t, nd): D(nd).training.frontier_cluster_pflops[t] / FU for t, nd in sets["FT"]},
        "p_nub": {i: _or_inf(_n_upper(tree, *i)) for i in sets["N_IDX"]},
        "p_kub": {i: _or_inf(_k_upper(tree, *i)) for i in sets["K_IDX"]},
        "p_Kub": {i: _or_inf(_cum_k_upper(tree, *i)) for i in sets["K_IDX"]},
        "p_budget": {s.id: s.instance.budget.total_usd / MU for s in tree.scenarios
                     if s.instance.budget.total_usd is not None},
    }
    return v


def _or_inf(x):
    return float("inf") if x is None else float(x)


def add_params(m, tree, S: Scaling) -> None:
    for name, value in param_values(tree, S, m._sets).items():
        setattr(m, name, pyo.Param(list(value), initialize=value, mutable=True))


def _n_upper(tree, g: str, r: str, t: int, v: str) -> float:
    """A valid upper bound on n[g,r,t,v] from supply, budget and power in year t.

    Units bought in t are installed in t, so they must fit the supply cap, the
    year's spend (every other spend term is >= 0) and the facility power
    allowed in r in t (regional maximum and global ceiling).  Year-t data is
    the node's; the total budget is each scenario's through the node, so the
    largest of them bounds (with no bound if one scenario has none).
    """
    inst = tree.data(v)
    c = inst.chips[g]
    reg = inst.regions[r]
    bounds = []
    if c.supply_units is not None:
        bounds.append(c.supply_units[t])
    money = [x for x in (_largest(i.budget.total_usd for i in tree.instances_through(v)),
                         inst.budget.annual_max_usd[t] if inst.budget.annual_max_usd else None)
             if x is not None]
    if money:
        bounds.append(_ratio(min(money), c.price_usd[t] * c.chips_per_unit))
    mw = [x for x in (reg.max_mw[t] if reg.max_mw else None,
                      inst.power.ceiling_mw[t] if inst.power.ceiling_mw else None) if x is not None]
    if mw:
        bounds.append(_ratio(min(mw), c.chips_per_unit * c.power_w * reg.pue / W_PER_MW))
    return _floor_min(bounds)


def _k_upper(tree, r: str, t: int, v: str) -> float:
    """A valid upper bound on k[r,t,v]: the blocks must fit under the power caps once online.

    The online year may lie in later nodes, whose data differ by scenario:
    the bound is the largest over the scenarios through ``v``.
    """
    inst = tree.data(v)
    reg = inst.regions[r]
    online = t + reg.build_lead_years
    bounds = []

    def cap(i):
        mw = [x for x in (i.regions[r].max_mw[online] if i.regions[r].max_mw else None,
                          i.power.ceiling_mw[online] if i.power.ceiling_mw else None) if x is not None]
        return min(mw) if mw else None

    mw = _largest(cap(i) for i in tree.instances_through(v))
    if mw is not None:
        bounds.append(_ratio(max(0.0, mw - reg.existing_mw), reg.block_mw))
    budget = _largest(i.budget.total_usd for i in tree.instances_through(v))
    if budget is not None:
        bounds.append(_ratio(budget, reg.block_capex_usd[t]))
    return _floor_min(bounds)


def _cum_k_upper(tree, r: str, t: int, v: str) -> float:
    """A valid upper bound on K[r,t,v], the blocks started in r up to year t on v's path.

    Every block started by t is online from t + l_r on and stays, so K fits
    under the regional maximum and the ceiling of every year from t + l_r to
    the end, in every scenario through v (their later data differ: the largest
    of their bounds holds for all); and its capex fits the largest total budget
    among them at the cheapest block price up to t (shared years on the path).
    """
    inst = tree.data(v)
    reg = inst.regions[r]

    def cap(i):
        out = []
        for year in range(t + reg.build_lead_years, i.end + 1):
            mw = [x for x in (i.regions[r].max_mw[year] if i.regions[r].max_mw else None,
                              i.power.ceiling_mw[year] if i.power.ceiling_mw else None) if x is not None]
            if mw:
                out.append(min(mw))
        return min(out) if out else None

    bounds = []
    mw = _largest(cap(i) for i in tree.instances_through(v))
    if mw is not None:
        bounds.append(_ratio(max(0.0, mw - reg.existing_mw), reg.block_mw))
    budget = _largest(i.budget.total_usd for i in tree.instances_through(v))
    if budget is not None:
        bounds.append(_ratio(budget, min(reg.block_capex_usd[tau] for tau in range(tree.start, t + 1))))
    return _floor_min(bounds)


def _largest(values) -> float | None:
    """The largest value, or None when any is None (no limit in some scenario)."""
    values = list(values)
    return None if any(x is None for x in values) else max(values)


def _ratio(num: float, den: float) -> float | None:
    """num / den as a bound, or None (no bound) when den underflowed to 0 or the ratio overflows."""
    if not den > 0:
        return None
    q = num / den
    return q if math.isfinite(q) else None


def _floor_min(bounds: list) -> int | None:
    """The tightest of the finite bounds, rounded down to an integer; None if there is none."""
    finite = [b for b in bounds if b is not None and math.isfinite(b)]
    return math.floor(min(finite) + 1e-9) if finite else None
