r"""The capacity-planning MIP of spec model-v1 section 2, over the scenario tree of model-v2 section 4.2.

:func:`build_model` is pure: no solving, no I/O.  It creates the sparse index
sets, the variables, the shared expressions (installed fleet, facility
capacity, draw, spend, training and inference capacity) and then calls one
``add_<family>`` function per constraint family, and finally the objective.

Every year-t variable exists once per node of year t (:mod:`formulations.tree`)
and carries the node as the last index: ``n[g,r,t,v]``.  A v1 instance is the
one-node tree (``v = ""`` in every year), so the deterministic program and the
deterministic equivalent of a scenario tree are built by the same code.

Internal units (see :mod:`formulations.scaling`): chip quantities in
purchasable units of each chip, money in ``S.money_usd``, compute in
``S.compute_pflops``, power in MW.  Symbols follow the spec:

===========  ==============================================================
n[g,r,t,v]   units of chip g bought in region r in year t (integer)
k[r,t,v]     campus blocks started in region r in year t (integer by K; continuous in the matrix)
K[r,t,v]     campus blocks started in region r up to year t (integer)
xT, xI       installed units of g in r assigned to training / inference
y[s,d,t,v]   inference compute sent from source s to demand region d
m[d,t,v]     unmet inference demand (only with an unmet penalty)
z[g,r,t,v]   1 if (g, r) hosts the frontier training cluster in year t
eta, u[s]    CVaR threshold and shortfalls (only with a risk weight)
===========  ==============================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyomo.environ as pyo
from pyomo.contrib.fbbt.fbbt import compute_bounds_on_expr
from pyomo.core.expr.numvalue import is_fixed

from .scaling import Scaling
from .tree import Tree

if TYPE_CHECKING:  # the model reads an Instance; it never imports the optimizer package
    from optimizer.instance import Instance

HOURS_PER_YEAR = 8760.0
W_PER_MW = 1e6
FEAS_TOL = 1e-9


@dataclass
class ModelInfo:
    """What the solver and the reports need to know about a built model."""

    scaling: Scaling
    objective_factor: float  # spec objective = factor * internal objective value
    trivially_infeasible: list[tuple[str, str]] = field(default_factory=list)


def build_model(inst: Instance, *, commitments: Commitments | None = None) -> pyo.ConcreteModel:
    """Build the Pyomo model of ``inst`` (spec section 2, over its scenario tree). Pure: no solving, no I/O.

    ``commitments`` fixes purchases and block starts of some years (spec v2
    section 6, :func:`add_commitments`).
    """
    tree = Tree.of(inst)
    S = Scaling.for_instance(inst)
    m = pyo.ConcreteModel(name=inst.name)
    m.info = None  # set at the end; a plain attribute, not a component
    m._inst = inst
    m._tree = tree
    m._S = S
    m._infeasible = []
    m._constant_rows = []  # (name, lhs, rhs, what) of rows without variables, re-checked by update_model
    m._structural = []  # (name, message) infeasible by the model's structure alone; update_model keeps them

    _sets(m, tree)
    _params(m, tree, S)
    _variables(m)
    _expressions(m, tree, S)

    add_cumulative_blocks(m, tree)
    add_assign(m, tree)
    add_facility(m, tree)
    add_region_max(m, tree)
    add_ceiling(m, tree)
    add_supply(m, tree)
    add_serve(m, tree)
    add_demand(m, tree)
    add_budget(m, tree, S)
    add_training(m, tree, S)
    add_frontier(m, tree, S)
    if commitments is not None:
        add_commitments(m, tree, commitments)

    factor = add_objective(m, tree, S)
    m.info = ModelInfo(S, factor, m._infeasible + m._structural)
    return m


# --------------------------------------------------------------------------- sets


def index_sets(tree: Tree) -> dict[str, list]:
    """The sparse index sets of the model (pure: a function of the tree only)."""
    end = tree.end
    data = tree.data
    base = tree.scenarios[0].instance
    regions, chips = list(base.regions), list(base.chips)
    by_year = {}
    for t, v in tree.node_years:
        by_year.setdefault(t, []).append(v)
    # purchases: only inside each chip's purchase window
    n_idx = [(g, r, t, v) for g in chips for r in regions for t in tree.years for v in by_year[t]
             if data(v).chips[g].purchasable(t)]
    # blocks: only those that come online inside the horizon (others only cost money)
    k_idx = [(r, t, v) for r in regions for t in tree.years for v in by_year[t]
             if t + base.regions[r].build_lead_years <= end]
    # fleet: (g, r, t, v) where some chips can be in service
    x_idx = []
    for g in chips:
        for r in regions:
            for t in tree.years:
                for v in by_year[t]:
                    c = data(v).chips[g]
                    bought = any(c.purchasable(tau) for tau in range(max(tree.start, t - c.lifetime_years + 1), t + 1))
                    if bought or c.installed_chips(r, t) > 0:
                        x_idx.append((g, r, t, v))
    dem = [(d, t, v) for d in regions for t in tree.years for v in by_year[t]
           if data(v).regions[d].inference_demand_pflops[t] > 0]
    y_idx = [(s, d, t, v) for d, t, v in dem for s in base.sources(d)]
    m_idx = dem if base.objective.unmet_penalty is not None else []
    frontier = [(t, v) for t, v in tree.node_years if data(v).training.frontier_cluster_pflops[t] > 0]
    fy = set(frontier)
    z_idx = [(g, r, t, v) for (g, r, t, v) in x_idx if (t, v) in fy]
    return dict(NY=list(tree.node_years), N_IDX=n_idx, K_IDX=k_idx, X_IDX=x_idx, Y_IDX=y_idx, M_IDX=m_idx,
                D_IDX=dem, FT=frontier, Z_IDX=z_idx, SC=[s.id for s in tree.scenarios])


_DIMEN = dict(NY=2, N_IDX=4, K_IDX=3, X_IDX=4, Y_IDX=4, M_IDX=3, D_IDX=3, FT=2, Z_IDX=4, SC=1)


def _sets(m, tree: Tree) -> None:
    base = tree.scenarios[0].instance
    m.T = pyo.Set(initialize=list(tree.years), ordered=True)
    m.R = pyo.Set(initialize=list(base.regions), ordered=True)
    m.G = pyo.Set(initialize=list(base.chips), ordered=True)
    m._sets = index_sets(tree)
    for name, idx in m._sets.items():
        setattr(m, name, pyo.Set(initialize=idx, dimen=_DIMEN[name], ordered=True))


def split_index(m, family: str, index) -> tuple[tuple, str | None]:
    """A row or column index as (key without the node, node): the node is the last element of every
    node-year family, and the scenario id is the whole index of the total budget and CVaR rows.

    In a one-node model (a v1 instance) the node is ``None``: keys read as in spec v1
    (``demand[eu,2028]``)."""
    key = index if isinstance(index, tuple) else (() if index is None else (index,))
    if family in _PER_SCENARIO:
        node = key[0] if key else None
        key = ()
    elif key and family not in _GLOBAL:
        key, node = key[:-1], key[-1]
    else:
        node = None
    return key, (None if m._tree.trivial else node)


_PER_SCENARIO = {"budget", "cvar", "commit_total"}
_GLOBAL = {"eta"}


# --------------------------------------------------------------------------- parameters


PARAM_PATHS = (
    "budget.total_usd", "budget.annual_max_usd", "power.ceiling_mw", "regions.*.max_mw",
    "regions.*.inference_demand_pflops", "regions.*.electricity_usd_per_mwh", "regions.*.block_capex_usd",
    "chips.*.price_usd", "chips.*.supply_units", "training.min_pflops", "training.frontier_cluster_pflops",
)
"""Instance data held in mutable Pyomo parameters: a change of these alone (that keeps
:func:`structure_key`) is applied to a built model in place by :func:`update_model`."""


def param_values(tree: Tree, S: Scaling, sets: dict[str, list]) -> dict[str, object]:
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


def _params(m, tree: Tree, S: Scaling) -> None:
    for name, value in param_values(tree, S, m._sets).items():
        setattr(m, name, pyo.Param(list(value), initialize=value, mutable=True))


def structure_key(inst: Instance) -> tuple:
    """What decides the model's structure: two instances with equal keys differ only in parameter values.

    Everything outside :data:`PARAM_PATHS` is part of the key (it appears as a
    constant coefficient), and so is, for the parameters, whatever decides
    which rows, columns and nonzeros exist: whether an optional limit is
    given, which coefficients are zero, and which purchase and block
    variables the bounds fix at zero (a row whose variables are all fixed at
    zero is not sent to the solver).  The tree's shape and probabilities are
    part of it too.
    """
    tree = Tree.of(inst)
    sets = index_sets(tree)
    scenarios = tuple((s.id, s.probability, _scenario_key(s.instance)) for s in tree.scenarios)
    zero_n = tuple(i for i in sets["N_IDX"] if _n_upper(tree, *i) == 0)
    zero_k = tuple(i for i in sets["K_IDX"] if _k_upper(tree, *i) == 0)
    zero_k += tuple(("K", *i) for i in sets["K_IDX"] if _cum_k_upper(tree, *i) == 0)
    return (tree.stage_years, tree.cvar_alpha, tree.risk_weight, scenarios,
            tuple((k, tuple(v)) for k, v in sets.items()), zero_n, zero_k)


def _scenario_key(inst: Instance) -> tuple:
    years = inst.years
    regions = tuple(
        (r, reg.pue, reg.existing_mw, reg.block_mw, reg.build_lead_years, reg.max_mw is None,
         tuple(t for t in years if reg.electricity_usd_per_mwh[t] > 0),
         tuple(t for t in years if reg.block_capex_usd[t] > 0))
        for r, reg in inst.regions.items())
    chips = tuple(
        (g, c.chips_per_unit, c.available_from, c.available_until, c.power_w, c.peak_pflops, c.util_train,
         c.util_infer, c.lifetime_years, c.opex_usd_per_chip_year, c.supply_units is None, c.installed)
        for g, c in inst.chips.items())
    serving = tuple((d, tuple(src.items())) for d, src in inst.serving.items())
    train_years = tuple(t for t in years if inst.training.min_pflops[t] > 0)
    return (inst.start, inst.end, inst.discount_rate, inst.objective, inst.budget.total_usd is None,
            inst.budget.annual_max_usd is None, inst.power.ceiling_mw is None, regions, chips, serving,
            train_years)


def update_model(m, inst: Instance) -> None:
    """Apply ``inst`` to a model built for an instance with the same :func:`structure_key`, in place.

    Sets the mutable parameters (coefficients, right-hand sides and bounds),
    keeps the model's internal scaling (reports read it from the model, so
    the units stay consistent), and re-checks the rows that have no
    variables.  A persistent solver then needs ``update_parameters()``.
    """
    tree = Tree.of(inst)
    for name, value in param_values(tree, m._S, m._sets).items():
        getattr(m, name).store_values(value)
    m._inst = inst
    m._tree = tree
    m.info.trivially_infeasible = m._structural + [
        (name, what()) for name, lhs, rhs, what in m._constant_rows if _lo(lhs - rhs) > _tolerance(rhs)
    ]


# --------------------------------------------------------------------------- variables


def _n_upper(tree: Tree, g: str, r: str, t: int, v: str) -> float:
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


def _k_upper(tree: Tree, r: str, t: int, v: str) -> float:
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


def _cum_k_upper(tree: Tree, r: str, t: int, v: str) -> float:
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


def _variables(m) -> None:
    m.n = pyo.Var(m.N_IDX, domain=pyo.NonNegativeIntegers, bounds=lambda m, *i: (0, m.p_nub[i]))
    # integer cumulative starts K, continuous yearly starts k = K[t] - K[t-1] (add_cumulative_blocks)
    m.K = pyo.Var(m.K_IDX, domain=pyo.NonNegativeIntegers, bounds=lambda m, *i: (0, m.p_Kub[i]))
    m.k = pyo.Var(m.K_IDX, domain=pyo.NonNegativeReals, bounds=lambda m, *i: (0, m.p_kub[i]))
    m.xT = pyo.Var(m.X_IDX, domain=pyo.NonNegativeReals)
    m.xI = pyo.Var(m.X_IDX, domain=pyo.NonNegativeReals)
    m.y = pyo.Var(m.Y_IDX, domain=pyo.NonNegativeReals)
    m.m = pyo.Var(m.M_IDX, domain=pyo.NonNegativeReals)
    m.z = pyo.Var(m.Z_IDX, domain=pyo.Binary)


# --------------------------------------------------------------------------- expressions


def _expressions(m, tree: Tree, S: Scaling) -> None:
    r"""Shared expressions, the only things that link the constraint families.

    With :math:`v(\tau)` the node of year :math:`\tau` on the path through node v:

    .. math::
        N_{g,r,t,v} &= \sum_{\tau=\max(a_g,\,t-L_g+1)}^{t} n_{g,r,\tau,v(\tau)} + I_{g,r,t}/u_g
            \quad\text{(units)} \\
        Cap_{r,t,v} &= M0_r + \beta_r K_{r,\,t-l_r,\,v(t-l_r)}
            = M0_r + \sum_{\tau+l_r\le t} \beta_r k_{r,\tau,v(\tau)} \\
        Draw_{r,t,v} &= \sum_g N_{g,r,t,v}\, u_g w_g \pi_r / 10^6 \\
        Spend_{t,v} &= \sum p_{g,t} u_g n + \sum \kappa_{r,t} k + \sum_r Draw\,H\,e_{r,t}
                   + \sum o_g u_g N \\
        Train_{t,v} &= \sum f_g \eta^T_g u_g xT, \qquad InferCap_{r,t,v} = \sum_g f_g \eta^I_g u_g xI
    """
    D = tree.data
    base = tree.scenarios[0].instance
    regions = base.regions
    n_set = set(m.N_IDX)
    k_by_region = {}
    for r, tau, _ in m.K_IDX:
        k_by_region.setdefault(r, []).append(tau)
    k_by_region = {r: list(dict.fromkeys(taus)) for r, taus in k_by_region.items()}

    def fleet(m, g, r, t, v):
        c = D(v).chips[g]
        taus = range(max(c.available_from, t - c.lifetime_years + 1), t + 1)
        bought = sum(m.n[g, r, tau, a] for tau in taus if (g, r, tau, a := tree.ancestor(v, tau)) in n_set)
        return bought + c.installed_chips(r, t) / c.chips_per_unit

    m.N = pyo.Expression(m.X_IDX, rule=fleet)

    def capacity(m, r, t, v):  # Cap = M0 + beta K[r, the last start year online by t]
        reg = regions[r]
        online = [tau for tau in k_by_region.get(r, []) if tau + reg.build_lead_years <= t]
        if not online:
            return reg.existing_mw
        return reg.existing_mw + reg.block_mw * m.K[r, online[-1], tree.ancestor(v, online[-1])]

    m.Cap = pyo.Expression([(r, t, v) for r in m.R for t, v in m.NY], rule=capacity)

    x_by = {}  # (r, t, v) -> chips g with a fleet there
    for g, r, t, v in m.X_IDX:
        x_by.setdefault((r, t, v), []).append(g)
    m._x_by = x_by

    def mw_per_unit(g, r, v):
        c = D(v).chips[g]
        return c.chips_per_unit * c.power_w * regions[r].pue / W_PER_MW

    m.Draw = pyo.Expression(
        [(r, t, v) for r in m.R for t, v in m.NY],
        rule=lambda m, r, t, v: sum(mw_per_unit(g, r, v) * m.N[g, r, t, v] for g in x_by.get((r, t, v), [])))

    MU = S.money_usd
    n_by, k_by, x_by_ny = {}, {}, {}
    for g, r, t, v in m.N_IDX:
        n_by.setdefault((t, v), []).append((g, r))
    for r, t, v in m.K_IDX:
        k_by.setdefault((t, v), []).append(r)
    for g, r, t, v in m.X_IDX:
        x_by_ny.setdefault((t, v), []).append((g, r))

    def spend(m, t, v):
        chips = D(v).chips
        capex = sum(m.p_price[g, t, v] * m.n[g, r, t, v] for g, r in n_by.get((t, v), []))
        blocks = sum(m.p_block[r, t, v] * m.k[r, t, v] for r in k_by.get((t, v), []) if (r, t, v) in m.p_block)
        energy = sum(m.p_elec[r, t, v] * m.Draw[r, t, v] for r in m.R if (r, t, v) in m.p_elec)
        opex = sum(chips[g].opex_usd_per_chip_year * chips[g].chips_per_unit / MU * m.N[g, r, t, v]
                   for g, r in x_by_ny.get((t, v), []) if chips[g].opex_usd_per_chip_year > 0)
        return capex + blocks + energy + opex

    m.Spend = pyo.Expression(m.NY, rule=spend)

    FU = S.compute_pflops

    def train_coef(g, v):
        c = D(v).chips[g]
        return c.peak_pflops * c.util_train * c.chips_per_unit / FU

    def infer_coef(g, v):
        c = D(v).chips[g]
        return c.peak_pflops * c.util_infer * c.chips_per_unit / FU

    m._train_coef = train_coef
    m.Train = pyo.Expression(
        m.NY, rule=lambda m, t, v: sum(train_coef(g, v) * m.xT[g, r, t, v] for g, r in x_by_ny.get((t, v), [])))
    m.InferCap = pyo.Expression(
        [(r, t, v) for r in m.R for t, v in m.NY],
        rule=lambda m, r, t, v: sum(infer_coef(g, v) * m.xI[g, r, t, v] for g in x_by.get((r, t, v), [])))


# --------------------------------------------------------------------------- constraints


def _leq(m, name: str, key, lhs, rhs, what):
    """``lhs <= rhs``; a constraint without variables is checked here instead.

    A trivially violated one makes the instance infeasible: it is recorded
    with ``what()`` (a message in the instance's terms) and the solver is
    never called.
    """
    body = lhs - rhs
    scale = _tolerance(rhs)
    lower, upper = compute_bounds_on_expr(body)  # from variable bounds: every plan has body >= lower
    label = row_label(m, name, key)
    if is_fixed(body) or (lower is not None and lower == upper):  # no variable with a nonzero coefficient
        m._constant_rows.append((label, lhs, rhs, what))
        if lower > scale:
            m._infeasible.append((label, what()))
        return pyo.Constraint.Skip
    if lower is not None and lower > scale:
        m._infeasible.append((label, what()))
    return lhs <= rhs


def row_label(m, family: str, index) -> str:
    """The name of a row in reports: ``family[key]`` (``demand[eu,2028]``), with the node where the
    tree has branches (``demand[eu,2028,@high]``), or the family alone (``budget``)."""
    key, node = split_index(m, family, index)
    parts = [*map(str, key)] + ([f"@{node or 'root'}"] if node is not None else [])
    return f"{family}[{','.join(parts)}]" if parts else family


def _tolerance(rhs) -> float:
    """How far a row may be violated before it counts as violated (relative to a fixed right-hand side)."""
    return FEAS_TOL * max(1.0, abs(pyo.value(rhs)) if is_fixed(rhs) else 1.0)


def _lo(expr) -> float:
    lo = compute_bounds_on_expr(expr)[0]
    return -float("inf") if lo is None else lo


def _hi(expr) -> float:
    hi = compute_bounds_on_expr(expr)[1]
    return float("inf") if hi is None else hi


def add_cumulative_blocks(m, tree: Tree) -> None:
    r"""k_cum: integer cumulative block counts, continuous yearly starts.

    .. math::
        K_{r,t,v} \in \mathbb{Z}_{\ge 0}, \qquad
        k_{r,t,v} = K_{r,t,v} - K_{r,t-1,v(t-1)} \quad (K_{r,\text{start}-1} = 0), \qquad
        Cap_{r,t,v} = M0_r + \beta_r K_{r,\,t-l_r,\,v(t-l_r)}

    on the index set of k (years t with :math:`t + l_r \le` end).  The map
    k -> K is unimodular, so the integer points and the LP relaxation are the
    spec's (k >= 0 keeps K non-decreasing; spend keeps :math:`\kappa_{r,t} k_{r,t}`);
    what changes is what HiGHS branches on: a branch on :math:`K_{r,t}` moves
    the capacity of year :math:`t + l_r` and every later year, one on
    :math:`k_{r,t}` only shifts blocks between years.  On the hard benchmark set
    this turned 3 of 16 unproven cases (60 s) into proofs in 3-7 s
    (docs/performance.md).
    """
    years = {}
    for r, t, _ in m.K_IDX:
        years.setdefault(r, set()).add(t)
    years = {r: sorted(ts) for r, ts in years.items()}
    before = {(r, ts[i]): (ts[i - 1] if i else None) for r, ts in years.items() for i in range(len(ts))}

    def rule(m, r, t, v):
        b = before[r, t]
        earlier = m.K[r, b, tree.ancestor(v, b)] if b is not None else 0
        return m.k[r, t, v] == m.K[r, t, v] - earlier

    m.k_cum = pyo.Constraint(m.K_IDX, rule=rule)


def add_assign(m, tree: Tree) -> None:
    r"""assign: :math:`xT_{g,r,t,v} + xI_{g,r,t,v} \le N_{g,r,t,v}` (units)."""
    m.assign = pyo.Constraint(m.X_IDX, rule=lambda m, *i: m.xT[i] + m.xI[i] <= m.N[i])


def add_facility(m, tree: Tree) -> None:
    r"""facility: :math:`Draw_{r,t,v} \le Cap_{r,t,v}` (MW)."""

    def rule(m, r, t, v):
        return _leq(m, "facility", (r, t, v), m.Draw[r, t, v], m.Cap[r, t, v],
                    lambda: f"{tree.label(t, v)}: chips installed in {r} draw at least {_lo(m.Draw[r, t, v]):,.1f} "
                    f"MW, above the {_hi(m.Cap[r, t, v]):,.1f} MW of facilities it can have")

    m.facility = pyo.Constraint([(r, t, v) for r in m.R for t, v in m.NY], rule=rule)


def add_region_max(m, tree: Tree) -> None:
    r"""region_max: :math:`Cap_{r,t,v} \le Mmax_{r,t}` where a maximum is given."""

    def rule(m, r, t, v):
        mx = m.p_max[r, t, v]
        return _leq(m, "region_max", (r, t, v), m.Cap[r, t, v], mx,
                    lambda: f"{tree.label(t, v)}: {r} already has {_lo(m.Cap[r, t, v]):,.1f} MW of facilities, "
                    f"above its maximum of {pyo.value(mx):,.1f} MW")

    m.region_max = pyo.Constraint(list(m.p_max), rule=rule)


def add_ceiling(m, tree: Tree) -> None:
    r"""ceiling: :math:`\sum_r Cap_{r,t,v} \le P_t` where a ceiling is given."""

    def rule(m, t, v):
        total = sum(m.Cap[r, t, v] for r in m.R)
        return _leq(m, "ceiling", (t, v), total, m.p_ceiling[t, v],
                    lambda: f"{tree.label(t, v)}: existing facilities total {_lo(total):,.1f} MW, "
                    f"above the power ceiling of {pyo.value(m.p_ceiling[t, v]):,.1f} MW")

    m.ceiling = pyo.Constraint(list(m.p_ceiling), rule=rule)


def add_supply(m, tree: Tree) -> None:
    r"""supply: :math:`\sum_r n_{g,r,t,v} \le s_{g,t}` (units) where a supply cap is given."""
    by = {}
    for g, r, t, v in m.N_IDX:
        if (g, t, v) in m.p_supply:
            by.setdefault((g, t, v), []).append(r)
    m.supply = pyo.Constraint(list(by), rule=lambda m, g, t, v: sum(m.n[g, r, t, v] for r in by[g, t, v])
                              <= m.p_supply[g, t, v])


def add_serve(m, tree: Tree) -> None:
    r"""serve: :math:`\sum_d y_{r,d,t,v} \le InferCap_{r,t,v}` (compute units)."""
    sent = {}
    for s, d, t, v in m.Y_IDX:
        sent.setdefault((s, t, v), []).append(d)
    order = {r: i for i, r in enumerate(m.R)}
    m.serve = pyo.Constraint(
        sorted(sent, key=lambda stv: (order[stv[0]], stv[1])),
        rule=lambda m, s, t, v: sum(m.y[s, d, t, v] for d in sent[s, t, v]) <= m.InferCap[s, t, v],
    )


def add_demand(m, tree: Tree) -> None:
    r"""demand: :math:`\sum_s \varepsilon_{s,d}\, y_{s,d,t,v} + m_{d,t,v} \ge D_{d,t}`."""
    m_set = set(m.M_IDX)
    sources = tree.scenarios[0].instance.sources

    def rule(m, d, t, v):
        served = sum(eps * m.y[s, d, t, v] for s, eps in sources(d).items())
        unmet = m.m[d, t, v] if (d, t, v) in m_set else 0
        return served + unmet >= m.p_demand[d, t, v]

    m.demand = pyo.Constraint(m.D_IDX, rule=rule)


def add_budget(m, tree: Tree, S: Scaling) -> None:
    r"""budget: :math:`\sum_t Spend_{t,v_s(t)} \le B_s` for each scenario s (one row each);
    annual: :math:`Spend_{t,v} \le A_t` where given."""
    MU = S.money_usd
    paths = {s.id: tree.path(s) for s in tree.scenarios}

    def total(m, s):
        spend = sum(m.Spend[t, v] for t, v in paths[s].items())
        return _leq(m, "budget", s, spend, m.p_budget[s],
                    lambda: f"spend already committed (energy and opex of installed chips) is "
                    f"${_lo(spend) * MU:,.0f}, above the ${pyo.value(m.p_budget[s]) * MU:,.0f} budget"
                    + ("" if tree.trivial else f" in scenario {s}"))

    m.budget = pyo.Constraint(list(m.p_budget), rule=total)
    m.budget_annual = pyo.Constraint(
        list(m.p_annual),
        rule=lambda m, t, v: _leq(m, "budget_annual", (t, v), m.Spend[t, v], m.p_annual[t, v],
                                  lambda: f"{tree.label(t, v)}: spend already committed is "
                                  f"${_lo(m.Spend[t, v]) * MU:,.0f}, above the annual cap of "
                                  f"${pyo.value(m.p_annual[t, v]) * MU:,.0f}"),
    )


def add_training(m, tree: Tree, S: Scaling) -> None:
    r"""training: :math:`Train_{t,v} \ge T_t` (years with a floor)."""
    m.training = pyo.Constraint(
        list(m.p_train),
        rule=lambda m, t, v: _leq(m, "training", (t, v), m.p_train[t, v], m.Train[t, v],
                                  lambda: f"{tree.label(t, v)}: a training floor of "
                                  f"{pyo.value(m.p_train[t, v]) * S.compute_pflops:,.1f} PFLOP/s but no chips "
                                  "can be in service"),
    )


def add_frontier(m, tree: Tree, S: Scaling) -> None:
    r"""frontier: in years with :math:`C_t > 0`, one site (chip g in region r) reaches C_t.

    .. math::
        \sum_{g,r} z_{g,r,t,v} \ge 1, \qquad f_g \eta^T_g u_g\, xT_{g,r,t,v} \ge C_t z_{g,r,t,v}
    """
    FU = S.compute_pflops
    by = {}
    for g, r, t, v in m.Z_IDX:
        by.setdefault((t, v), []).append((g, r))

    def pick(m, t, v):
        sites = by.get((t, v), [])
        if not sites:
            size = pyo.value(m.p_frontier[t, v]) * FU
            m._structural.append((row_label(m, "frontier_pick", (t, v)),
                                  f"{tree.label(t, v)}: a frontier cluster of {size:,.1f} PFLOP/s is "
                                  "required but no chip can be in service anywhere"))
            return pyo.Constraint.Skip
        return sum(m.z[g, r, t, v] for g, r in sites) >= 1

    m.frontier_pick = pyo.Constraint(m.FT, rule=pick)
    m.frontier = pyo.Constraint(
        m.Z_IDX,
        rule=lambda m, g, r, t, v: m._train_coef(g, v) * m.xT[g, r, t, v] >= m.p_frontier[t, v] * m.z[g, r, t, v],
    )


# --------------------------------------------------------------------------- commitments (spec v2 section 6)


@dataclass(frozen=True)
class Commitments:
    """Decisions of an earlier plan to hold: units bought and blocks started in the committed years.

    ``units``: {(chip, region, year): units}; ``blocks``: {(region, year): blocks};
    ``years``: the committed years (every purchase and block start of those years is fixed,
    to 0 where the earlier plan has no row).
    """

    years: tuple[int, ...]
    units: dict = field(default_factory=dict)
    blocks: dict = field(default_factory=dict)


def add_commitments(m, tree: Tree, c: Commitments) -> None:
    r"""commit: :math:`n_{g,r,t,v} = \bar n_{g,r,t}` and :math:`k_{r,t,v} = \bar k_{r,t}` for every committed year t.

    Rows, not fixed bounds, so that an infeasible commitment can be explained
    by the rows it makes impossible (:func:`optimizer.analysis.diagnose.explain`).
    """
    years = set(c.years)
    m.commit_units = pyo.Constraint(
        [i for i in m.N_IDX if i[2] in years],
        rule=lambda m, g, r, t, v: m.n[g, r, t, v] == c.units.get((g, r, t), 0))
    m.commit_blocks = pyo.Constraint(
        [i for i in m.K_IDX if i[1] in years],
        rule=lambda m, r, t, v: m.k[r, t, v] == c.blocks.get((r, t), 0))


# --------------------------------------------------------------------------- objective


def terminal_value(m, tree: Tree, S: Scaling) -> dict[tuple[int, str], object]:
    r"""The terminal value of spec v2 section 5 per node-year of purchase (internal objective units).

    max_training: :math:`\sum u_g n_{g,r,\tau} f_g \eta^T_g \sum_{t=end+1}^{\tau+L_g-1} \delta_t`;
    min_cost: :math:`-\sum \delta_{end+1}\, p_{g,\tau} u_g n_{g,r,\tau}\, R / L_g` with
    :math:`R = \max(0, \tau + L_g - 1 - end)` (straight-line resale value).
    """
    base = tree.scenarios[0].instance
    end = tree.end
    out = {}
    for g, r, tau, v in m.N_IDX:
        c = tree.data(v).chips[g]
        last = tau + c.lifetime_years - 1
        if last <= end:
            continue
        if base.objective.kind == "max_training":
            weight = sum(base.delta(t) for t in range(end + 1, last + 1))
            term = m._train_coef(g, v) * weight * m.n[g, r, tau, v]
        else:
            term = -base.delta(end + 1) * m.p_price[g, tau, v] * (last - end) / c.lifetime_years * m.n[g, r, tau, v]
        out[tau, v] = out.get((tau, v), 0) + term
    return out


def add_objective(m, tree: Tree, S: Scaling) -> float:
    r"""The spec objective, in internal units; returns the factor to spec units.

    Per scenario s (its path of node-years, plus the terminal value of spec v2 section 5 when
    ``end_of_horizon: salvage``):

    max_training: :math:`O_s = \sum_t \delta_t (Train_t - \lambda \sum_d m_{d,t}) - \epsilon \sum_t \delta_t
    Spend_t / 10^9`  (PFLOP/s-years, discounted)

    min_cost: :math:`O_s = \sum_t \delta_t (Spend_t + \lambda \sum_d m_{d,t})`  (USD, discounted)

    The objective is :math:`(1-w) E + w\,CVaR` with :math:`E = \sum_s p_s O_s`; with :math:`w > 0`,
    max_training takes :math:`CVaR^- = \eta - \frac{1}{1-\alpha}\sum_s p_s u_s`, :math:`u_s \ge \eta - O_s`,
    and min_cost :math:`CVaR^+ = \eta + \frac{1}{1-\alpha}\sum_s p_s u_s`, :math:`u_s \ge O_s - \eta`
    (:math:`u_s \ge 0`, :math:`\eta` free).
    """
    base = tree.scenarios[0].instance
    o = base.objective
    lam = o.unmet_penalty or 0.0
    MU, FU = S.money_usd, S.compute_pflops
    unmet = {}
    for d, t, v in m.M_IDX:
        unmet.setdefault((t, v), []).append(m.m[d, t, v])
    maximize = o.kind == "max_training"
    if maximize:
        spend_w = o.cost_weight * MU / (1e9 * FU)

        def yearly(m, t, v):
            return base.delta(t) * (m.Train[t, v] - lam * sum(unmet.get((t, v), [])) - spend_w * m.Spend[t, v])
    else:
        def yearly(m, t, v):
            return base.delta(t) * (m.Spend[t, v] + lam * FU / MU * sum(unmet.get((t, v), [])))

    m.Yearly = pyo.Expression(m.NY, rule=yearly)
    salvage = getattr(o, "end_of_horizon", "truncate") == "salvage"
    tv = terminal_value(m, tree, S) if salvage else {}
    m.Terminal = pyo.Expression(list(tv), rule=lambda m, t, v: tv[t, v])
    paths = {s.id: tree.path(s) for s in tree.scenarios}
    m.O = pyo.Expression(
        m.SC, rule=lambda m, s: sum(m.Yearly[t, v] + (m.Terminal[t, v] if (t, v) in tv else 0)
                                    for t, v in paths[s].items()))
    # E = sum_s p_s O_s, written per node-year: each node's terms weighted by the probability of reaching it
    expected = sum(tree.probability[v] * (m.Yearly[t, v] + (m.Terminal[t, v] if (t, v) in tv else 0))
                   for t, v in m.NY)
    sense = pyo.maximize if maximize else pyo.minimize
    if tree.risk:
        w, alpha = tree.risk_weight, tree.cvar_alpha
        m.eta = pyo.Var(domain=pyo.Reals)
        m.u = pyo.Var(m.SC, domain=pyo.NonNegativeReals)
        sign = 1.0 if maximize else -1.0  # shortfall below eta (max) or excess above it (min)
        m.cvar = pyo.Constraint(m.SC, rule=lambda m, s: m.u[s] >= sign * (m.eta - m.O[s]))
        prob = {s.id: s.probability for s in tree.scenarios}
        m.CVaR = pyo.Expression(expr=m.eta - sign / (1 - alpha) * sum(prob[s] * m.u[s] for s in m.SC))
        m.obj = pyo.Objective(expr=(1 - w) * expected + w * m.CVaR, sense=sense)
    else:
        m.obj = pyo.Objective(expr=expected, sense=sense)
    return FU if maximize else MU
