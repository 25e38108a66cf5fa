r"""Inference serving: compute sent from source regions to demand regions (y), unmet demand (m) and its penalty.

.. math::
    \sum_d y_{r,d,t,v} \le InferCap_{r,t,v}, \qquad
    \sum_s \varepsilon_{s,d}\, y_{s,d,t,v} + m_{d,t,v} \ge D_{d,t}

Objective term (with an unmet penalty :math:`\lambda`): :math:`-\lambda \sum_d m_{d,t}` in max_training
(PFLOP/s), :math:`+\lambda \sum_d m_{d,t}` in min_cost (USD per PFLOP/s-year).
"""

from __future__ import annotations

import pyomo.environ as pyo

from .registry import Family, Variable, Violation, Words, declare

declare(
    Variable("y", "inference compute sent from source s to demand region d", "compute units", "continuous",
             "s, d, t, node"),
    Variable("m", "unmet inference demand (only with an unmet penalty)", "compute units", "continuous",
             "d, t, node"),
)


def add_variables(m) -> None:
    m.y = pyo.Var(m.Y_IDX, domain=pyo.NonNegativeReals)
    m.m = pyo.Var(m.M_IDX, domain=pyo.NonNegativeReals)


def _demand_words(x: Violation) -> Words:
    d, t = x.key
    short = x.slack * x.scaling.compute_pflops
    need = x.instance.regions[d].inference_demand_pflops[t]
    sources = ", ".join(f"{s} ({e:g})" for s, e in x.instance.sources(d).items())
    return Words(short, "PFLOP/s",
                 f"{x.when(t)}: inference demand in {d} needs {need:,.0f} PFLOP/s, but {d}'s allowed sources "
                 f"[{sources}] can serve at most {need - short:,.0f} PFLOP/s within the instance's limits "
                 f"→ short by {short:,.0f} PFLOP/s")


declare(
    Family("serve", "inference sent from a region within its inference capacity",
           "sum_d y[r,d,t] <= InferCap[r,t]", "compute units",
           reads=("chips.*.peak_pflops", "chips.*.util_infer", "chips.*.chips_per_unit", "serving"),
           role="definition"),
    Family("demand", "inference demand met from the allowed sources (or left unmet at a penalty)",
           "sum_s eps[s,d] y[s,d,t] + m[d,t] >= D[d,t]", "compute units",
           reads=("regions.*.inference_demand_pflops", "serving", "objective.unmet_penalty"), role="requirement",
           marginal_unit="per +1 PFLOP/s", marginal_scale=lambda S: 1.0 / S.compute_pflops, elastic_weight=1.0,
           words=_demand_words),
)


def add_serve(m, tree) -> None:
    r"""serve: :math:`\sum_d y_{r,d,t,v} \le InferCap_{r,t,v}` (compute units)."""
    sent = {}
    for s, d, t, v in m.Y_IDX:
        sent.setdefault((s, t, v), []).append(d)
    order = {r: i for i, r in enumerate(m.R)}
    m.serve = pyo.Constraint(
        sorted(sent, key=lambda stv: (order[stv[0]], stv[1])),
        rule=lambda m, s, t, v: sum(m.y[s, d, t, v] for d in sent[s, t, v]) <= m.InferCap[s, t, v],
    )


def add_demand(m, tree) -> None:
    r"""demand: :math:`\sum_s \varepsilon_{s,d}\, y_{s,d,t,v} + m_{d,t,v} \ge D_{d,t}`."""
    m_set = set(m.M_IDX)
    sources = tree.scenarios[0].instance.sources

    def rule(m, d, t, v):
        served = sum(eps * m.y[s, d, t, v] for s, eps in sources(d).items())
        unmet = m.m[d, t, v] if (d, t, v) in m_set else 0
        return served + unmet >= m.p_demand[d, t, v]

    m.demand = pyo.Constraint(m.D_IDX, rule=rule)


def unmet_by_node(m) -> dict[tuple[int, str], list]:
    """The unmet-demand variables of each node-year."""
    unmet = {}
    for d, t, v in m.M_IDX:
        unmet.setdefault((t, v), []).append(m.m[d, t, v])
    return unmet
