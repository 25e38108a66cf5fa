r"""Spend and the budgets: what each year costs, the total budget of each scenario and the annual caps.

.. math::
    Spend_{t,v} = \sum p_{g,t} u_g n + \sum \kappa_{r,t} k + \sum_r Draw\,H\,e_{r,t} + \sum o_g u_g N

Objective term: :math:`-\epsilon\, Spend_t / 10^9` in max_training (the cost weight, PFLOP/s-years per
$1B), :math:`+Spend_t` in min_cost (USD).
"""

from __future__ import annotations

import pyomo.environ as pyo

from .registry import Family, Violation, Words, declare
from .rows import leq, lo


def add_expressions(m, tree, S) -> None:
    """Spend[t, v] (money units): chip capex, block capex, energy and opex of node-year (t, v)."""
    D = tree.data
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


# --------------------------------------------------------------------------- rows


def usd(x: float) -> str:
    """Money in words: $1.23B, $45.6M, $12,345 (the unit chosen from the amount)."""
    a = abs(x)
    if a >= 1e9:
        return f"${x / 1e9:,.2f}B"
    if a >= 1e6:
        return f"${x / 1e6:,.1f}M"
    return f"${x:,.0f}"


def _budget_words(x: Violation) -> Words:
    over = x.slack * x.scaling.money_usd
    b = x.instance.budget.total_usd
    return Words(over, "USD", f"budget{x.where}: meeting the other requirements costs at least "
                 f"{usd(b + over)}, above the {usd(b)} total budget → over by {usd(over)}")


def _annual_words(x: Violation) -> Words:
    (t,) = x.key
    over = x.slack * x.scaling.money_usd
    a = x.instance.budget.annual_max_usd[t]
    return Words(over, "USD", f"{x.when(t)}: spend must reach {usd(a + over)}, above the annual "
                 f"budget of {usd(a)} (budget.annual_max_usd) → over by {usd(over)}")


_SPEND_READS = ("chips.*.price_usd", "chips.*.chips_per_unit", "regions.*.block_capex_usd",
                "regions.*.electricity_usd_per_mwh", "chips.*.opex_usd_per_chip_year", "chips.*.power_w",
                "regions.*.pue")
_PER_1B = dict(marginal_unit="per +$1B", marginal_scale=lambda S: 1e9 / S.money_usd)

declare(
    Family("budget", "total spend of each scenario within its budget", "sum_t Spend[t] <= B", "money units",
           reads=("budget.total_usd", *_SPEND_READS), role="limit", index="scenario", **_PER_1B,
           elastic_weight=1.0, words=_budget_words),
    Family("budget_annual", "spend of each year within the annual cap", "Spend[t] <= A[t]", "money units",
           reads=("budget.annual_max_usd", *_SPEND_READS), role="limit", **_PER_1B, elastic_weight=1.0,
           words=_annual_words),
)


def add_budget(m, tree, S) -> None:
    r"""budget: :math:`\sum_t Spend_{t,v_s(t)} \le B_s` for each scenario s (one row each);
    annual: :math:`Spend_{t,v} \le A_t` where given."""
    MU = S.money_usd
    paths = {s.id: tree.path(s) for s in tree.scenarios}

    def total(m, s):
        spend = sum(m.Spend[t, v] for t, v in paths[s].items())
        return leq(m, "budget", s, spend, m.p_budget[s],
                   lambda: f"spend already committed (energy and opex of installed chips) is "
                   f"${lo(spend) * MU:,.0f}, above the ${pyo.value(m.p_budget[s]) * MU:,.0f} budget"
                   + ("" if tree.trivial else f" in scenario {s}"))

    m.budget = pyo.Constraint(list(m.p_budget), rule=total)
    m.budget_annual = pyo.Constraint(
        list(m.p_annual),
        rule=lambda m, t, v: leq(m, "budget_annual", (t, v), m.Spend[t, v], m.p_annual[t, v],
                                 lambda: f"{tree.label(t, v)}: spend already committed is "
                                 f"${lo(m.Spend[t, v]) * MU:,.0f}, above the annual cap of "
                                 f"${pyo.value(m.p_annual[t, v]) * MU:,.0f}"),
    )
