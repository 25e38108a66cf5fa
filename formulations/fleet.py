r"""The fleet: chips bought (n), installed (N), and assigned to training (xT) or inference (xI).

With :math:`v(\tau)` the node of year :math:`\tau` on the path through node v:

.. math::
    N_{g,r,t,v} &= \sum_{\tau=\max(a_g,\,t-L_g+1)}^{t} n_{g,r,\tau,v(\tau)} + I_{g,r,t}/u_g
        \quad\text{(units)} \\
    Draw_{r,t,v} &= \sum_g N_{g,r,t,v}\, u_g w_g \pi_r / 10^6 \\
    Train_{t,v} &= \sum f_g \eta^T_g u_g xT, \qquad InferCap_{r,t,v} = \sum_g f_g \eta^I_g u_g xI
"""

from __future__ import annotations

import pyomo.environ as pyo

from .params import W_PER_MW
from .registry import Family, Variable, Violation, Words, declare

declare(
    Variable("n", "units of chip g bought in region r in year t", "units (u_g chips)", "integer", "g, r, t, node"),
    Variable("xT", "installed units assigned to training", "units", "continuous", "g, r, t, node"),
    Variable("xI", "installed units assigned to inference", "units", "continuous", "g, r, t, node"),
)


def add_variables(m) -> None:
    m.n = pyo.Var(m.N_IDX, domain=pyo.NonNegativeIntegers, bounds=lambda m, *i: (0, m.p_nub[i]))


def add_assignment_variables(m) -> None:
    m.xT = pyo.Var(m.X_IDX, domain=pyo.NonNegativeReals)
    m.xI = pyo.Var(m.X_IDX, domain=pyo.NonNegativeReals)


def add_expressions(m, tree, S) -> None:
    """N (installed units), Draw (MW), Train and InferCap (compute units); see the module docstring."""
    D = tree.data
    regions = tree.scenarios[0].instance.regions
    n_set = set(m.N_IDX)

    def fleet(m, g, r, t, v):
        c = D(v).chips[g]
        taus = range(max(c.available_from, t - c.lifetime_years + 1), t + 1)
        bought = sum(m.n[g, r, tau, a] for tau in taus if (g, r, tau, a := tree.ancestor(v, tau)) in n_set)
        return bought + c.installed_chips(r, t) / c.chips_per_unit

    m.N = pyo.Expression(m.X_IDX, rule=fleet)

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

    FU = S.compute_pflops

    def train_coef(g, v):
        c = D(v).chips[g]
        return c.peak_pflops * c.util_train * c.chips_per_unit / FU

    def infer_coef(g, v):
        c = D(v).chips[g]
        return c.peak_pflops * c.util_infer * c.chips_per_unit / FU

    x_by_ny = {}
    for g, r, t, v in m.X_IDX:
        x_by_ny.setdefault((t, v), []).append((g, r))
    m._train_coef = train_coef
    m.Train = pyo.Expression(
        m.NY, rule=lambda m, t, v: sum(train_coef(g, v) * m.xT[g, r, t, v] for g, r in x_by_ny.get((t, v), [])))
    m.InferCap = pyo.Expression(
        [(r, t, v) for r in m.R for t, v in m.NY],
        rule=lambda m, r, t, v: sum(infer_coef(g, v) * m.xI[g, r, t, v] for g in x_by.get((r, t, v), [])))


# --------------------------------------------------------------------------- rows


def _supply_words(x: Violation) -> Words:
    g, t = x.key
    cap = x.instance.chips[g].supply_units[t]
    return Words(x.slack, "units", f"{x.when(t)}: the plan needs {cap + x.slack:,.0f} units of {g}, above the "
                 f"supply cap of {cap:,.0f} units → over by {x.slack:,.0f} units")


declare(
    Family("assign", "installed units are either training, inference or idle",
           "xT[g,r,t] + xI[g,r,t] <= N[g,r,t]", "units",
           reads=("chips.*.available_from", "chips.*.available_until", "chips.*.lifetime_years",
                  "chips.*.installed", "chips.*.chips_per_unit"),
           role="definition"),
    Family("supply", "supply cap of each chip", "sum_r n[g,r,t] <= s[g,t]", "units",
           reads=("chips.*.supply_units",), role="limit", marginal_unit="per +1 unit",
           marginal_scale=lambda S: 1.0, elastic_weight=1.0, words=_supply_words),
)


def add_assign(m, tree) -> None:
    r"""assign: :math:`xT_{g,r,t,v} + xI_{g,r,t,v} \le N_{g,r,t,v}` (units)."""
    m.assign = pyo.Constraint(m.X_IDX, rule=lambda m, *i: m.xT[i] + m.xI[i] <= m.N[i])


def add_supply(m, tree) -> None:
    r"""supply: :math:`\sum_r n_{g,r,t,v} \le s_{g,t}` (units) where a supply cap is given."""
    by = {}
    for g, r, t, v in m.N_IDX:
        if (g, t, v) in m.p_supply:
            by.setdefault((g, t, v), []).append(r)
    m.supply = pyo.Constraint(list(by), rule=lambda m, g, t, v: sum(m.n[g, r, t, v] for r in by[g, t, v])
                              <= m.p_supply[g, t, v])
