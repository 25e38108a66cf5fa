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
from typing import TYPE_CHECKING

import pyomo.environ as pyo
from pyomo.contrib.fbbt.fbbt import compute_bounds_on_expr
from pyomo.core.expr.numvalue import is_fixed

from .scaling import Scaling

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


def build_model(inst: Instance) -> pyo.ConcreteModel:
    """Build the Pyomo model of ``inst`` (spec section 2). Pure: no solving, no I/O."""
    S = Scaling.for_instance(inst)
    m = pyo.ConcreteModel(name=inst.name)
    m.info = None  # set at the end; a plain attribute, not a component
    m._inst = inst
    m._S = S
    m._infeasible = []
    m._constant_rows = []  # (name, lhs, rhs, what) of rows without variables, re-checked by update_model
    m._structural = []  # (name, message) infeasible by the model's structure alone; update_model keeps them

    _sets(m, inst)
    _params(m, inst, S)
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
    m.info = ModelInfo(S, factor, m._infeasible + m._structural)
    return m


# --------------------------------------------------------------------------- sets


def index_sets(inst: Instance) -> dict[str, list]:
    """The sparse index sets of the model (pure: a function of the instance only)."""
    years = inst.years
    end = inst.end
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
    fy = set(frontier_years)
    z_idx = [(g, r, t) for (g, r, t) in x_idx if t in fy]
    return dict(N_IDX=n_idx, K_IDX=k_idx, X_IDX=x_idx, Y_IDX=y_idx, M_IDX=m_idx, D_IDX=dem,
                FT=frontier_years, Z_IDX=z_idx)


def _sets(m, inst: Instance) -> None:
    m.T = pyo.Set(initialize=inst.years, ordered=True)
    m.R = pyo.Set(initialize=list(inst.regions), ordered=True)
    m.G = pyo.Set(initialize=list(inst.chips), ordered=True)
    m._sets = index_sets(inst)
    for name, idx in m._sets.items():
        setattr(m, name, pyo.Set(initialize=idx, dimen=_DIMEN[name], ordered=True))


_DIMEN = dict(N_IDX=3, K_IDX=2, X_IDX=3, Y_IDX=3, M_IDX=2, D_IDX=2, FT=1, Z_IDX=3)


# --------------------------------------------------------------------------- parameters


PARAM_PATHS = (
    "budget.total_usd", "budget.annual_max_usd", "power.ceiling_mw", "regions.*.max_mw",
    "regions.*.inference_demand_pflops", "regions.*.electricity_usd_per_mwh", "regions.*.block_capex_usd",
    "chips.*.price_usd", "chips.*.supply_units", "training.min_pflops", "training.frontier_cluster_pflops",
)
"""Instance data held in mutable Pyomo parameters: a change of these alone (that keeps
:func:`structure_key`) is applied to a built model in place by :func:`update_model`."""


def param_values(inst: Instance, S: Scaling, sets: dict[str, list]) -> dict[str, object]:
    """Values of the mutable parameters, in internal units (one source for building and updating)."""
    MU, FU = S.money_usd, S.compute_pflops
    years = inst.years
    B, A, P = inst.budget.total_usd, inst.budget.annual_max_usd, inst.power.ceiling_mw
    v: dict[str, object] = {
        "p_price": {(g, t): inst.chips[g].price_usd[t] * inst.chips[g].chips_per_unit / MU
                    for g, t in dict.fromkeys((g, t) for g, _, t in sets["N_IDX"])},
        "p_block": {(r, t): inst.regions[r].block_capex_usd[t] / MU for r, t in sets["K_IDX"]
                    if inst.regions[r].block_capex_usd[t] > 0},
        "p_elec": {(r, t): HOURS_PER_YEAR * reg.electricity_usd_per_mwh[t] / MU
                   for r, reg in inst.regions.items() for t in years if reg.electricity_usd_per_mwh[t] > 0},
        "p_annual": {t: A[t] / MU for t in years} if A is not None else {},
        "p_ceiling": {t: P[t] for t in years} if P is not None else {},
        "p_max": {(r, t): reg.max_mw[t] for r, reg in inst.regions.items() if reg.max_mw is not None
                  for t in years},
        "p_supply": {(g, t): c.supply_units[t] for g, c in inst.chips.items() if c.supply_units is not None
                     for t in years},
        "p_demand": {(d, t): inst.regions[d].inference_demand_pflops[t] / FU for d, t in sets["D_IDX"]},
        "p_train": {t: inst.training.min_pflops[t] / FU for t in years if inst.training.min_pflops[t] > 0},
        "p_frontier": {t: inst.training.frontier_cluster_pflops[t] / FU for t in sets["FT"]},
        "p_nub": {(g, r, t): _or_inf(_n_upper(inst, g, r, t)) for g, r, t in sets["N_IDX"]},
        "p_kub": {(r, t): _or_inf(_k_upper(inst, r, t)) for r, t in sets["K_IDX"]},
    }
    if B is not None:
        v["p_budget"] = B / MU
    return v


def _or_inf(x):
    return float("inf") if x is None else float(x)


def _params(m, inst: Instance, S: Scaling) -> None:
    for name, value in param_values(inst, S, m._sets).items():
        if isinstance(value, dict):
            setattr(m, name, pyo.Param(list(value), initialize=value, mutable=True))
        else:
            setattr(m, name, pyo.Param(initialize=value, mutable=True))


def structure_key(inst: Instance) -> tuple:
    """What decides the model's structure: two instances with equal keys differ only in parameter values.

    Everything outside :data:`PARAM_PATHS` is part of the key (it appears as a
    constant coefficient), and so is, for the parameters, whatever decides
    which rows, columns and nonzeros exist: whether an optional limit is
    given, which coefficients are zero, and which purchase and block
    variables the bounds fix at zero (a row whose variables are all fixed at
    zero is not sent to the solver).
    """
    years = inst.years
    sets = index_sets(inst)
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
    zero_n = tuple(i for i in sets["N_IDX"] if _n_upper(inst, *i) == 0)
    zero_k = tuple(i for i in sets["K_IDX"] if _k_upper(inst, *i) == 0)
    train_years = tuple(t for t in years if inst.training.min_pflops[t] > 0)
    return (inst.start, inst.end, inst.discount_rate, inst.objective, inst.budget.total_usd is None,
            inst.budget.annual_max_usd is None, inst.power.ceiling_mw is None, regions, chips, serving,
            tuple((k, tuple(v)) for k, v in sets.items()), zero_n, zero_k, train_years)


def update_model(m, inst: Instance) -> None:
    """Apply ``inst`` to a model built for an instance with the same :func:`structure_key`, in place.

    Sets the mutable parameters (coefficients, right-hand sides and bounds),
    keeps the model's internal scaling (reports read it from the model, so
    the units stay consistent), and re-checks the rows that have no
    variables.  A persistent solver then needs ``update_parameters()``.
    """
    for name, value in param_values(inst, m._S, m._sets).items():
        param = getattr(m, name)
        if isinstance(value, dict):
            param.store_values(value)
        else:
            param.set_value(value)
    m._inst = inst
    m.info.trivially_infeasible = m._structural + [
        (name, what()) for name, lhs, rhs, what in m._constant_rows if _lo(lhs - rhs) > _tolerance(rhs)
    ]


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
    m.n = pyo.Var(m.N_IDX, domain=pyo.NonNegativeIntegers, bounds=lambda m, g, r, t: (0, m.p_nub[g, r, t]))
    m.k = pyo.Var(m.K_IDX, domain=pyo.NonNegativeIntegers, bounds=lambda m, r, t: (0, m.p_kub[r, t]))
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
        capex = sum(m.p_price[g, t] * m.n[g, r, tt] for g, r, tt in m.N_IDX if tt == t)
        blocks = sum(m.p_block[r, tt] * m.k[r, tt] for r, tt in m.K_IDX if tt == t and (r, tt) in m.p_block)
        energy = sum(m.p_elec[r, t] * m.Draw[r, t] for r in m.R if (r, t) in m.p_elec)
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
    scale = _tolerance(rhs)
    lower, upper = compute_bounds_on_expr(body)  # from variable bounds: every plan has body >= lower
    if is_fixed(body) or (lower is not None and lower == upper):  # no variable with a nonzero coefficient
        m._constant_rows.append((f"{name}[{key}]", lhs, rhs, what))
        if lower > scale:
            m._infeasible.append((f"{name}[{key}]", what()))
        return pyo.Constraint.Skip
    if lower is not None and lower > scale:
        m._infeasible.append((f"{name}[{key}]", what()))
    return lhs <= rhs


def _tolerance(rhs) -> float:
    """How far a row may be violated before it counts as violated (relative to a fixed right-hand side)."""
    return FEAS_TOL * max(1.0, abs(pyo.value(rhs)) if is_fixed(rhs) else 1.0)


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
        mx = m.p_max[r, t]
        return _leq(m, "region_max", (r, t), m.Cap[r, t], mx,
                    lambda: f"{t}: {r} already has {_lo(m.Cap[r, t]):,.1f} MW of facilities, "
                    f"above its maximum of {pyo.value(mx):,.1f} MW")

    m.region_max = pyo.Constraint(idx, rule=rule)


def add_ceiling(m, inst: Instance) -> None:
    r"""ceiling: :math:`\sum_r Cap_{r,t} \le P_t` where a ceiling is given."""
    P = inst.power.ceiling_mw
    idx = list(inst.years) if P is not None else []

    def rule(m, t):
        total = sum(m.Cap[r, t] for r in m.R)
        return _leq(m, "ceiling", t, total, m.p_ceiling[t],
                    lambda: f"{t}: existing facilities total {_lo(total):,.1f} MW, "
                    f"above the power ceiling of {pyo.value(m.p_ceiling[t]):,.1f} MW")

    m.ceiling = pyo.Constraint(idx, rule=rule)


def add_supply(m, inst: Instance) -> None:
    r"""supply: :math:`\sum_r n_{g,r,t} \le s_{g,t}` (units) where a supply cap is given."""
    idx = sorted({(g, t) for g, _, t in m.N_IDX if inst.chips[g].supply_units is not None},
                 key=lambda gt: (list(inst.chips).index(gt[0]), gt[1]))
    m.supply = pyo.Constraint(
        idx,
        rule=lambda m, g, t: sum(m.n[g, r, t] for r in m.R if (g, r, t) in m.N_IDX) <= m.p_supply[g, t],
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
        return served + unmet >= m.p_demand[d, t]

    m.demand = pyo.Constraint(m.D_IDX, rule=rule)


def add_budget(m, inst: Instance, S: Scaling) -> None:
    r"""budget: :math:`\sum_t Spend_t \le B`; annual: :math:`Spend_t \le A_t` where given."""
    B = inst.budget.total_usd
    A = inst.budget.annual_max_usd
    MU = S.money_usd
    if B is not None:
        total = sum(m.Spend[t] for t in m.T)
        m.budget = pyo.Constraint(
            rule=lambda m: _leq(m, "budget", "", total, m.p_budget,
                                lambda: f"spend already committed (energy and opex of installed chips) "
                                f"is ${_lo(total) * MU:,.0f}, above the ${pyo.value(m.p_budget) * MU:,.0f} budget")
        )
    m.budget_annual = pyo.Constraint(
        list(inst.years) if A is not None else [],
        rule=lambda m, t: _leq(m, "budget_annual", t, m.Spend[t], m.p_annual[t],
                               lambda: f"{t}: spend already committed is ${_lo(m.Spend[t]) * MU:,.0f}, "
                               f"above the annual cap of ${pyo.value(m.p_annual[t]) * MU:,.0f}"),
    )


def add_training(m, inst: Instance, S: Scaling) -> None:
    r"""training: :math:`Train_t \ge T_t` (years with a floor)."""
    T = inst.training.min_pflops
    m.training = pyo.Constraint(
        [t for t in inst.years if T[t] > 0],
        rule=lambda m, t: _leq(m, "training", t, m.p_train[t], m.Train[t],
                               lambda: f"{t}: a training floor of {pyo.value(m.p_train[t]) * S.compute_pflops:,.1f} "
                               "PFLOP/s but no chips can be in service"),
    )


def add_frontier(m, inst: Instance, S: Scaling) -> None:
    r"""frontier: in years with :math:`C_t > 0`, one site (chip g in region r) reaches C_t.

    .. math::
        \sum_{g,r} z_{g,r,t} \ge 1, \qquad f_g \eta^T_g u_g\, xT_{g,r,t} \ge C_t z_{g,r,t}
    """
    FU = S.compute_pflops
    by_year = {}
    for g, r, t in m.Z_IDX:
        by_year.setdefault(t, []).append((g, r))

    def pick(m, t):
        sites = by_year.get(t, [])
        if not sites:
            size = pyo.value(m.p_frontier[t]) * FU
            m._structural.append((f"frontier_pick[{t}]", f"{t}: a frontier cluster of {size:,.1f} PFLOP/s is "
                                  "required but no chip can be in service anywhere"))
            return pyo.Constraint.Skip
        return sum(m.z[g, r, t] for g, r in sites) >= 1

    m.frontier_pick = pyo.Constraint(m.FT, rule=pick)
    m.frontier = pyo.Constraint(
        m.Z_IDX,
        rule=lambda m, g, r, t: m._train_coef[g] * m.xT[g, r, t] >= m.p_frontier[t] * m.z[g, r, t],
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
