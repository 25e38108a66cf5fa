r"""Campus blocks and facility power: blocks started (k, K), capacity online (Cap) and the caps on it.

.. math::
    Cap_{r,t,v} = M0_r + \beta_r K_{r,\,t-l_r,\,v(t-l_r)} = M0_r + \sum_{\tau+l_r\le t} \beta_r k_{r,\tau,v(\tau)}
"""

from __future__ import annotations

import pyomo.environ as pyo

from .registry import Family, Variable, Violation, Words, declare
from .rows import hi, leq, lo

declare(
    Variable("K", "campus blocks started in region r up to year t", "blocks", "integer", "r, t, node"),
    Variable("k", "campus blocks started in region r in year t (integer through K)", "blocks", "continuous",
             "r, t, node"),
)


def add_variables(m) -> None:
    # integer cumulative starts K, continuous yearly starts k = K[t] - K[t-1] (add_cumulative_blocks)
    m.K = pyo.Var(m.K_IDX, domain=pyo.NonNegativeIntegers, bounds=lambda m, *i: (0, m.p_Kub[i]))
    m.k = pyo.Var(m.K_IDX, domain=pyo.NonNegativeReals, bounds=lambda m, *i: (0, m.p_kub[i]))


def add_expressions(m, tree) -> None:
    """Cap (MW online): existing MW plus the blocks started at least ``l_r`` years before."""
    regions = tree.scenarios[0].instance.regions
    k_by_region = {}
    for r, tau, _ in m.K_IDX:
        k_by_region.setdefault(r, []).append(tau)
    k_by_region = {r: list(dict.fromkeys(taus)) for r, taus in k_by_region.items()}

    def capacity(m, r, t, v):  # Cap = M0 + beta K[r, the last start year online by t]
        reg = regions[r]
        online = [tau for tau in k_by_region.get(r, []) if tau + reg.build_lead_years <= t]
        if not online:
            return reg.existing_mw
        return reg.existing_mw + reg.block_mw * m.K[r, online[-1], tree.ancestor(v, online[-1])]

    m.Cap = pyo.Expression([(r, t, v) for r in m.R for t, v in m.NY], rule=capacity)


# --------------------------------------------------------------------------- rows


def _facility_words(x: Violation) -> Words:
    r, t = x.key
    return Words(x.slack, "MW", f"{x.when(t)}: chips in {r} draw {x.slack:,.1f} MW more than its facilities can "
                 "supply")


def _region_max_words(x: Violation) -> Words:
    r, t = x.key
    mx = x.instance.regions[r].max_mw[t]
    return Words(x.slack, "MW", f"{x.when(t)}: {r} needs {mx + x.slack:,.0f} MW of facilities, above its maximum "
                 f"of {mx:,.0f} MW → over by {x.slack:,.0f} MW")


def _ceiling_words(x: Violation) -> Words:
    (t,) = x.key
    p = x.instance.power.ceiling_mw[t]
    return Words(x.slack, "MW", f"{x.when(t)}: the plan needs {p + x.slack:,.0f} MW of facilities in all regions, "
                 f"above the power ceiling of {p:,.0f} MW → over by {x.slack:,.0f} MW")


_PER_100_MW = dict(marginal_unit="per +100 MW", marginal_scale=lambda S: 100.0)
_CAP_READS = ("regions.*.existing_mw", "regions.*.block_mw", "regions.*.build_lead_years")

declare(
    Family("k_cum", "blocks started each year are the change of the cumulative count",
           "k[r,t] = K[r,t] - K[r,t-1]", "blocks", reads=("regions.*.build_lead_years",), role="definition"),
    Family("facility", "chips draw no more power than their region's facilities supply",
           "Draw[r,t] <= Cap[r,t]", "MW",
           reads=("chips.*.power_w", "chips.*.chips_per_unit", "regions.*.pue", *_CAP_READS), role="limit",
           **_PER_100_MW, elastic_weight=10.0, words=_facility_words),
    Family("region_max", "facility capacity of a region under its maximum", "Cap[r,t] <= Mmax[r,t]", "MW",
           reads=("regions.*.max_mw", *_CAP_READS), role="limit", **_PER_100_MW, elastic_weight=1.0,
           words=_region_max_words),
    Family("ceiling", "facility capacity of all regions under the power ceiling", "sum_r Cap[r,t] <= P[t]", "MW",
           reads=("power.ceiling_mw", *_CAP_READS), role="limit", **_PER_100_MW, elastic_weight=1.0,
           words=_ceiling_words),
)


def add_cumulative_blocks(m, tree) -> None:
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


def add_facility(m, tree) -> None:
    r"""facility: :math:`Draw_{r,t,v} \le Cap_{r,t,v}` (MW)."""

    def rule(m, r, t, v):
        return leq(m, "facility", (r, t, v), m.Draw[r, t, v], m.Cap[r, t, v],
                   lambda: f"{tree.label(t, v)}: chips installed in {r} draw at least {lo(m.Draw[r, t, v]):,.1f} "
                   f"MW, above the {hi(m.Cap[r, t, v]):,.1f} MW of facilities it can have")

    m.facility = pyo.Constraint([(r, t, v) for r in m.R for t, v in m.NY], rule=rule)


def add_region_max(m, tree) -> None:
    r"""region_max: :math:`Cap_{r,t,v} \le Mmax_{r,t}` where a maximum is given."""

    def rule(m, r, t, v):
        mx = m.p_max[r, t, v]
        return leq(m, "region_max", (r, t, v), m.Cap[r, t, v], mx,
                   lambda: f"{tree.label(t, v)}: {r} already has {lo(m.Cap[r, t, v]):,.1f} MW of facilities, "
                   f"above its maximum of {pyo.value(mx):,.1f} MW")

    m.region_max = pyo.Constraint(list(m.p_max), rule=rule)


def add_ceiling(m, tree) -> None:
    r"""ceiling: :math:`\sum_r Cap_{r,t,v} \le P_t` where a ceiling is given."""

    def rule(m, t, v):
        total = sum(m.Cap[r, t, v] for r in m.R)
        return leq(m, "ceiling", (t, v), total, m.p_ceiling[t, v],
                   lambda: f"{tree.label(t, v)}: existing facilities total {lo(total):,.1f} MW, "
                   f"above the power ceiling of {pyo.value(m.p_ceiling[t, v]):,.1f} MW")

    m.ceiling = pyo.Constraint(list(m.p_ceiling), rule=rule)
