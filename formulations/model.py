r"""The capacity-planning MIP of spec model-v1, section 2, as a Pyomo model.

:func:`build_model` is pure: no solving, no I/O.  It creates the sparse index
sets, the variables, the shared expressions (installed fleet, facility
capacity, draw, spend, training and inference capacity) and then calls one
``add_<family>`` function per constraint family, and finally the objective.

Internal units (see :mod:`formulations.scaling`): chip quantities in
purchasable units of each chip, money in ``S.money_usd``, compute in
``S.compute_pflops``, power in MW.  Symbols follow the spec:

=========  ==============================================================
n[g,r,t]   units of chip g bought in region r in year t (integer)
k[r,t]     campus blocks started in region r in year t (integer)
xT, xI     installed units of g in r assigned to training / inference
y[s,d,t]   inference compute sent from source s to demand region d
m[d,t]     unmet inference demand (only with an unmet penalty)
z[g,r,t]   1 if (g, r) hosts the frontier training cluster in year t
=========  ==============================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pyomo.environ as pyo
from pyomo.contrib.fbbt.fbbt import compute_bounds_on_expr
from pyomo.core.expr.numvalue import is_fixed

from optimizer.instance import Instance

from .scaling import Scaling

HOURS_PER_YEAR = 8760.0
W_PER_MW = 1e6
FEAS_TOL = 1e-9


@dataclass
class ModelInfo:
    """What the solver and the reports need to know about a built model."""

    scaling: Scaling
    objective_factor: float  # spec objective = factor * internal objective value
    trivially_infeasible: list[tuple[str, str]] = field(default_factory=list)


def build_model(inst: Instance) -> pyo.ConcreteModel:
    """Build the Pyomo model of ``inst`` (spec section 2). Pure: no solving, no I/O."""
    S = Scaling.for_instance(inst)
    m = pyo.ConcreteModel(name=inst.name)
    m.info = None  # set at the end; a plain attribute, not a component
    m._inst = inst
    m._S = S
    m._infeasible = []

    _sets(m, inst)
    _variables(m, inst)
    _expressions(m, inst, S)

    add_assign(m, inst)
    add_facility(m, inst)
    add_region_max(m, inst)
    add_ceiling(m, inst)
    add_supply(m, inst)
    add_serve(m, inst)
    add_demand(m, inst, S)
    add_budget(m, inst, S)
    add_training(m, inst, S)
    add_frontier(m, inst, S)

    factor = add_objective(m, inst, S)
    m.info = ModelInfo(S, factor, m._infeasible)
    return m


# --------------------------------------------------------------------------- sets


def _sets(m, inst: Instance) -> None:
    years = inst.years
    end = inst.end
    m.T = pyo.Set(initialize=years, ordered=True)
    m.R = pyo.Set(initialize=list(inst.regions), ordered=True)
    m.G = pyo.Set(initialize=list(inst.chips), ordered=True)

    # purchases: only inside each chip's purchase window
    n_idx = [(g, r, t) for g, c in inst.chips.items() for r in inst.regions for t in years
             if c.purchasable(t)]
    # blocks: only those that come online inside the horizon (others only cost money)
    k_idx = [(r, t) for r, reg in inst.regions.items() for t in years
             if t + reg.build_lead_years <= end]
    # fleet: (g, r, t) where some chips can be in service
    x_idx = []
    for g, c in inst.chips.items():
        for r in inst.regions:
            for t in years:
                bought = any(c.purchasable(tau) for tau in range(max(inst.start, t - c.lifetime_years + 1), t + 1))
                if bought or c.installed_chips(r, t) > 0:
                    x_idx.append((g, r, t))
    dem = [(d, t) for d, reg in inst.regions.items() for t in years
           if reg.inference_demand_pflops[t] > 0]
    y_idx = [(s, d, t) for d, t in dem for s in inst.sources(d)]
    m_idx = dem if inst.objective.unmet_penalty is not None else []
    frontier_years = [t for t in years if inst.training.frontier_cluster_pflops[t] > 0]
    z_idx = [(g, r, t) for (g, r, t) in x_idx if t in frontier_years]

    m.N_IDX = pyo.Set(initialize=n_idx, dimen=3, ordered=True)
    m.K_IDX = pyo.Set(initialize=k_idx, dimen=2, ordered=True)
    m.X_IDX = pyo.Set(initialize=x_idx, dimen=3, ordered=True)
    m.Y_IDX = pyo.Set(initialize=y_idx, dimen=3, ordered=True)
    m.M_IDX = pyo.Set(initialize=m_idx, dimen=2, ordered=True)
    m.D_IDX = pyo.Set(initialize=dem, dimen=2, ordered=True)
    m.FT = pyo.Set(initialize=frontier_years, ordered=True)
    m.Z_IDX = pyo.Set(initialize=z_idx, dimen=3, ordered=True)


# --------------------------------------------------------------------------- variables


def _n_upper(inst: Instance, g: str, r: str, t: int) -> float:
    """A valid upper bound on n[g,r,t] from supply, budget and power in year t.

    Units bought in t are installed in t, so they must fit the supply cap, the
    year's spend (every other spend term is >= 0) and the facility power
    allowed in r in t (regional maximum and global ceiling).
    """
    c = inst.chips[g]
    reg = inst.regions[r]
    bounds = []
    if c.supply_units is not None:
        bounds.append(c.supply_units[t])
    money = [x for x in (inst.budget.total_usd,
                         inst.budget.annual_max_usd[t] if inst.budget.annual_max_usd else None)
             if x is not None]
    if money:
        bounds.append(_ratio(min(money), c.price_usd[t] * c.chips_per_unit))
    mw = [x for x in (reg.max_mw[t] if reg.max_mw else None,
                      inst.power.ceiling_mw[t] if inst.power.ceiling_mw else None) if x is not None]
    if mw:
        bounds.append(_ratio(min(mw), c.chips_per_unit * c.power_w * reg.pue / W_PER_MW))
    return _floor_min(bounds)


def _k_upper(inst: Instance, r: str, t: int) -> float:
    """A valid upper bound on k[r,t]: the blocks must fit under the power caps once online."""
    reg = inst.regions[r]
    online = t + reg.build_lead_years
    bounds = []
    mw = [x for x in (reg.max_mw[online] if reg.max_mw else None,
                      inst.power.ceiling_mw[online] if inst.power.ceiling_mw else None)
          if x is not None]
    if mw:
        bounds.append(_ratio(max(0.0, min(mw) - reg.existing_mw), reg.block_mw))
    if inst.budget.total_usd is not None:
        bounds.append(_ratio(inst.budget.total_usd, reg.block_capex_usd[t]))
    return _floor_min(bounds)


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


def _variables(m, inst: Instance) -> None:
    m.n = pyo.Var(m.N_IDX, domain=pyo.NonNegativeIntegers,
                  bounds=lambda m, g, r, t: (0, _n_upper(inst, g, r, t)))
    m.k = pyo.Var(m.K_IDX, domain=pyo.NonNegativeIntegers,
                  bounds=lambda m, r, t: (0, _k_upper(inst, r, t)))
    m.xT = pyo.Var(m.X_IDX, domain=pyo.NonNegativeReals)
    m.xI = pyo.Var(m.X_IDX, domain=pyo.NonNegativeReals)
    m.y = pyo.Var(m.Y_IDX, domain=pyo.NonNegativeReals)
    m.m = pyo.Var(m.M_IDX, domain=pyo.NonNegativeReals)
    m.z = pyo.Var(m.Z_IDX, domain=pyo.Binary)


# --------------------------------------------------------------------------- expressions


def _expressions(m, inst: Instance, S: Scaling) -> None:
    r"""Shared expressions, the only things that link the constraint families.

    .. math::
        N_{g,r,t} &= \sum_{\tau=\max(a_g,\,t-L_g+1)}^{t} n_{g,r,\tau} + I_{g,r,t}/u_g
            \quad\text{(units)} \\
        Cap_{r,t} &= M0_r + \sum_{\tau+l_r\le t} \beta_r k_{r,\tau} \\
        Draw_{r,t} &= \sum_g N_{g,r,t}\, u_g w_g \pi_r / 10^6 \\
        Spend_t &= \sum p_{g,t} u_g n + \sum \kappa_{r,t} k + \sum_r Draw\,H\,e_{r,t}
                   + \sum o_g u_g N \\
        Train_t &= \sum f_g \eta^T_g u_g xT, \qquad InferCap_{r,t} = \sum_g f_g \eta^I_g u_g xI
    """
    chips, regions = inst.chips, inst.regions
    n_set = set(m.N_IDX)
    k_by_region = {}
    for r, tau in m.K_IDX:
        k_by_region.setdefault(r, []).append(tau)

    def fleet(m, g, r, t):
        c = chips[g]
        taus = range(max(c.available_from, t - c.lifetime_years + 1), t + 1)
        bought = sum(m.n[g, r, tau] for tau in taus if (g, r, tau) in n_set)
        return bought + c.installed_chips(r, t) / c.chips_per_unit

    m.N = pyo.Expression(m.X_IDX, rule=fleet)

    def capacity(m, r, t):
        reg = regions[r]
        online = [tau for tau in k_by_region.get(r, []) if tau + reg.build_lead_years <= t]
        return reg.existing_mw + sum(reg.block_mw * m.k[r, tau] for tau in online)

    m.Cap = pyo.Expression(m.R, m.T, rule=capacity)

    x_by_rt = {}
    for g, r, t in m.X_IDX:
        x_by_rt.setdefault((r, t), []).append(g)
    m._x_by_rt = x_by_rt

    def mw_per_unit(g, r):
        c = chips[g]
        return c.chips_per_unit * c.power_w * regions[r].pue / W_PER_MW

    def draw(m, r, t):
        return sum(mw_per_unit(g, r) * m.N[g, r, t] for g in x_by_rt.get((r, t), []))

    m.Draw = pyo.Expression(m.R, m.T, rule=draw)

    MU = S.money_usd

    def spend(m, t):
        capex = sum(chips[g].price_usd[t] * chips[g].chips_per_unit / MU * m.n[g, r, tt]
                    for g, r, tt in m.N_IDX if tt == t)
        blocks = sum(regions[r].block_capex_usd[t] / MU * m.k[r, tt] for r, tt in m.K_IDX
                     if tt == t and regions[r].block_capex_usd[t] > 0)
        energy = sum(HOURS_PER_YEAR * regions[r].electricity_usd_per_mwh[t] / MU * m.Draw[r, t]
                     for r in m.R if regions[r].electricity_usd_per_mwh[t] > 0)
        opex = sum(chips[g].opex_usd_per_chip_year * chips[g].chips_per_unit / MU * m.N[g, r, tt]
                   for g, r, tt in m.X_IDX if tt == t and chips[g].opex_usd_per_chip_year > 0)
        return capex + blocks + energy + opex

    m.Spend = pyo.Expression(m.T, rule=spend)

    FU = S.compute_pflops

    def train_coef(g):
        c = chips[g]
        return c.peak_pflops * c.util_train * c.chips_per_unit / FU

    def infer_coef(g):
        c = chips[g]
        return c.peak_pflops * c.util_infer * c.chips_per_unit / FU

    m._train_coef = {g: train_coef(g) for g in chips}
    m.Train = pyo.Expression(
        m.T, rule=lambda m, t: sum(train_coef(g) * m.xT[g, r, tt] for g, r, tt in m.X_IDX if tt == t)
    )
    m.InferCap = pyo.Expression(
        m.R, m.T, rule=lambda m, r, t: sum(infer_coef(g) * m.xI[g, r, t] for g in x_by_rt.get((r, t), []))
    )


# --------------------------------------------------------------------------- constraints


def _leq(m, name: str, key, lhs, rhs, what):
    """``lhs <= rhs``; a constraint without variables is checked here instead.

    A trivially violated one makes the instance infeasible: it is recorded
    with ``what()`` (a message in the instance's terms) and the solver is
    never called.
    """
    body = lhs - rhs
    scale = FEAS_TOL * max(1.0, abs(pyo.value(rhs)) if is_fixed(rhs) else 1.0)
    lower, upper = compute_bounds_on_expr(body)  # from variable bounds: every plan has body >= lower
    if is_fixed(body) or (lower is not None and lower == upper):  # no variable with a nonzero coefficient
        if lower > scale:
            m._infeasible.append((f"{name}[{key}]", what()))
        return pyo.Constraint.Skip
    if lower is not None and lower > scale:
        m._infeasible.append((f"{name}[{key}]", what()))
    return lhs <= rhs


def _lo(expr) -> float:
    lo = compute_bounds_on_expr(expr)[0]
    return -float("inf") if lo is None else lo


def _hi(expr) -> float:
    hi = compute_bounds_on_expr(expr)[1]
    return float("inf") if hi is None else hi


def add_assign(m, inst: Instance) -> None:
    r"""assign: :math:`xT_{g,r,t} + xI_{g,r,t} \le N_{g,r,t}` (units)."""
    m.assign = pyo.Constraint(
        m.X_IDX, rule=lambda m, g, r, t: m.xT[g, r, t] + m.xI[g, r, t] <= m.N[g, r, t]
    )


def add_facility(m, inst: Instance) -> None:
    r"""facility: :math:`Draw_{r,t} \le Cap_{r,t}` (MW)."""

    def rule(m, r, t):
        return _leq(m, "facility", (r, t), m.Draw[r, t], m.Cap[r, t],
                    lambda: f"{t}: chips installed in {r} draw at least {_lo(m.Draw[r, t]):,.1f} MW, "
                    f"above the {_hi(m.Cap[r, t]):,.1f} MW of facilities it can have")

    m.facility = pyo.Constraint(m.R, m.T, rule=rule)


def add_region_max(m, inst: Instance) -> None:
    r"""region_max: :math:`Cap_{r,t} \le Mmax_{r,t}` where a maximum is given."""
    idx = [(r, t) for r, reg in inst.regions.items() if reg.max_mw is not None for t in inst.years]

    def rule(m, r, t):
        mx = inst.regions[r].max_mw[t]
        return _leq(m, "region_max", (r, t), m.Cap[r, t], mx,
                    lambda: f"{t}: {r} already has {_lo(m.Cap[r, t]):,.1f} MW of facilities, "
                    f"above its maximum of {mx:,.1f} MW")

    m.region_max = pyo.Constraint(idx, rule=rule)


def add_ceiling(m, inst: Instance) -> None:
    r"""ceiling: :math:`\sum_r Cap_{r,t} \le P_t` where a ceiling is given."""
    P = inst.power.ceiling_mw
    idx = list(inst.years) if P is not None else []

    def rule(m, t):
        total = sum(m.Cap[r, t] for r in m.R)
        return _leq(m, "ceiling", t, total, P[t],
                    lambda: f"{t}: existing facilities total {_lo(total):,.1f} MW, "
                    f"above the power ceiling of {P[t]:,.1f} MW")

    m.ceiling = pyo.Constraint(idx, rule=rule)


def add_supply(m, inst: Instance) -> None:
    r"""supply: :math:`\sum_r n_{g,r,t} \le s_{g,t}` (units) where a supply cap is given."""
    idx = sorted({(g, t) for g, _, t in m.N_IDX if inst.chips[g].supply_units is not None},
                 key=lambda gt: (list(inst.chips).index(gt[0]), gt[1]))
    m.supply = pyo.Constraint(
        idx,
        rule=lambda m, g, t: sum(m.n[g, r, t] for r in m.R if (g, r, t) in m.N_IDX)
        <= inst.chips[g].supply_units[t],
    )


def add_serve(m, inst: Instance) -> None:
    r"""serve: :math:`\sum_d y_{r,d,t} \le InferCap_{r,t}` (compute units)."""
    sent = {}
    for s, d, t in m.Y_IDX:
        sent.setdefault((s, t), []).append(d)

    m.serve = pyo.Constraint(
        sorted(sent, key=lambda st: (list(inst.regions).index(st[0]), st[1])),
        rule=lambda m, s, t: sum(m.y[s, d, t] for d in sent[s, t]) <= m.InferCap[s, t],
    )


def add_demand(m, inst: Instance, S: Scaling) -> None:
    r"""demand: :math:`\sum_s \varepsilon_{s,d}\, y_{s,d,t} + m_{d,t} \ge D_{d,t}`."""
    m_set = set(m.M_IDX)

    def rule(m, d, t):
        served = sum(eps * m.y[s, d, t] for s, eps in inst.sources(d).items())
        unmet = m.m[d, t] if (d, t) in m_set else 0
        return served + unmet >= inst.regions[d].inference_demand_pflops[t] / S.compute_pflops

    m.demand = pyo.Constraint(m.D_IDX, rule=rule)


def add_budget(m, inst: Instance, S: Scaling) -> None:
    r"""budget: :math:`\sum_t Spend_t \le B`; annual: :math:`Spend_t \le A_t` where given."""
    B = inst.budget.total_usd
    A = inst.budget.annual_max_usd
    MU = S.money_usd
    if B is not None:
        total = sum(m.Spend[t] for t in m.T)
        m.budget = pyo.Constraint(
            rule=lambda m: _leq(m, "budget", "", total, B / MU,
                                lambda: f"spend already committed (energy and opex of installed chips) "
                                f"is ${_lo(total) * MU:,.0f}, above the ${B:,.0f} budget")
        )
    m.budget_annual = pyo.Constraint(
        list(inst.years) if A is not None else [],
        rule=lambda m, t: _leq(m, "budget_annual", t, m.Spend[t], A[t] / MU,
                               lambda: f"{t}: spend already committed is ${_lo(m.Spend[t]) * MU:,.0f}, "
                               f"above the annual cap of ${A[t]:,.0f}"),
    )


def add_training(m, inst: Instance, S: Scaling) -> None:
    r"""training: :math:`Train_t \ge T_t` (years with a floor)."""
    T = inst.training.min_pflops
    m.training = pyo.Constraint(
        [t for t in inst.years if T[t] > 0],
        rule=lambda m, t: _leq(m, "training", t, T[t] / S.compute_pflops, m.Train[t],
                               lambda: f"{t}: a training floor of {T[t]:,.1f} PFLOP/s but no chips can be in service"),
    )


def add_frontier(m, inst: Instance, S: Scaling) -> None:
    r"""frontier: in years with :math:`C_t > 0`, one site (chip g in region r) reaches C_t.

    .. math::
        \sum_{g,r} z_{g,r,t} \ge 1, \qquad f_g \eta^T_g u_g\, xT_{g,r,t} \ge C_t z_{g,r,t}
    """
    C = inst.training.frontier_cluster_pflops
    FU = S.compute_pflops
    by_year = {}
    for g, r, t in m.Z_IDX:
        by_year.setdefault(t, []).append((g, r))

    def pick(m, t):
        sites = by_year.get(t, [])
        if not sites:
            m._infeasible.append((f"frontier_pick[{t}]",
                                  f"{t}: a frontier cluster of {C[t]:,.1f} PFLOP/s is required "
                                  f"but no chip can be in service anywhere"))
            return pyo.Constraint.Skip
        return sum(m.z[g, r, t] for g, r in sites) >= 1

    m.frontier_pick = pyo.Constraint(m.FT, rule=pick)
    m.frontier = pyo.Constraint(
        m.Z_IDX,
        rule=lambda m, g, r, t: m._train_coef[g] * m.xT[g, r, t] >= C[t] / FU * m.z[g, r, t],
    )


# --------------------------------------------------------------------------- objective


def add_objective(m, inst: Instance, S: Scaling) -> float:
    r"""The spec objective, in internal units; returns the factor to spec units.

    max_training: :math:`\max \sum_t \delta_t (Train_t - \lambda \sum_d m_{d,t})
    - \epsilon \sum_t \delta_t Spend_t / 10^9`  (PFLOP/s-years, discounted)

    min_cost: :math:`\min \sum_t \delta_t (Spend_t + \lambda \sum_d m_{d,t})`  (USD, discounted)
    """
    o = inst.objective
    lam = o.unmet_penalty or 0.0
    MU, FU = S.money_usd, S.compute_pflops
    unmet = {t: sum(m.m[d, tt] for d, tt in m.M_IDX if tt == t) for t in inst.years}
    if o.kind == "max_training":
        spend_w = o.cost_weight * MU / (1e9 * FU)
        expr = sum(inst.delta(t) * (m.Train[t] - lam * unmet[t] - spend_w * m.Spend[t])
                   for t in inst.years)
        m.obj = pyo.Objective(expr=expr, sense=pyo.maximize)
        return FU
    expr = sum(inst.delta(t) * (m.Spend[t] + lam * FU / MU * unmet[t]) for t in inst.years)
    m.obj = pyo.Objective(expr=expr, sense=pyo.minimize)
    return MU
