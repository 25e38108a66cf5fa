r"""Training: the floor on training compute, the frontier cluster at one site (z), and the training objective.

.. math::
    Train_{t,v} \ge T_t, \qquad \sum_{g,r} z_{g,r,t,v} \ge 1, \qquad
    f_g \eta^T_g u_g\, xT_{g,r,t,v} \ge C_t z_{g,r,t,v}

Objective term (max_training): :math:`+Train_t` (PFLOP/s).
"""

from __future__ import annotations

import pyomo.environ as pyo

from .registry import Family, Variable, Violation, Words, declare
from .rows import leq, row_label

declare(
    Variable("z", "1 if chip g in region r hosts the frontier training cluster in year t", "-", "binary",
             "g, r, t, node"),
)


def add_variables(m) -> None:
    m.z = pyo.Var(m.Z_IDX, domain=pyo.Binary)


def _training_words(x: Violation) -> Words:
    (t,) = x.key
    short = x.slack * x.scaling.compute_pflops
    floor = x.instance.training.min_pflops[t]
    return Words(short, "PFLOP/s", f"{x.when(t)}: the training floor of {floor:,.0f} PFLOP/s can be met only up to "
                 f"{floor - short:,.0f} PFLOP/s → short by {short:,.0f} PFLOP/s")


def _frontier_words(x: Violation) -> Words:
    g, r, t = x.key
    short = x.slack * x.scaling.compute_pflops
    c = x.instance.training.frontier_cluster_pflops[t]
    return Words(short, "PFLOP/s", f"{x.when(t)}: the frontier cluster needs {c:,.0f} PFLOP/s at one site; the "
                 f"best site ({g} in {r}) reaches {c - short:,.0f} PFLOP/s → short by {short:,.0f} PFLOP/s")


def _pick_words(x: Violation) -> Words:
    (t,) = x.key
    c = x.instance.training.frontier_cluster_pflops[t]
    return Words(x.slack, "sites", f"{x.when(t)}: no site (one chip generation in one region) can reach the "
                 f"frontier cluster of {c:,.0f} PFLOP/s")


def _frontier_scale(model, index) -> float:
    """Frontier rows read f eta u xT - C z >= 0: a violation is measured against C."""
    g, r, t, v = index
    return model._tree.data(v).training.frontier_cluster_pflops[t] / model.info.scaling.compute_pflops


_COMPUTE_READS = ("chips.*.peak_pflops", "chips.*.util_train", "chips.*.chips_per_unit")
_PER_PFLOPS = dict(marginal_unit="per +1 PFLOP/s", marginal_scale=lambda S: 1.0 / S.compute_pflops)

declare(
    Family("training", "training compute at least the floor", "Train[t] >= T[t]", "compute units",
           reads=("training.min_pflops", *_COMPUTE_READS), role="requirement", **_PER_PFLOPS, elastic_weight=1.0,
           words=_training_words),
    Family("frontier_pick", "a frontier site chosen in every year with a frontier cluster", "sum_g,r z[g,r,t] >= 1",
           "sites", reads=("training.frontier_cluster_pflops",), role="requirement", elastic_weight=100.0,
           words=_pick_words),
    Family("frontier", "the chosen site reaches the frontier cluster alone", "f eta u xT[g,r,t] >= C[t] z[g,r,t]",
           "compute units", reads=("training.frontier_cluster_pflops", *_COMPUTE_READS), role="requirement",
           marginal_unit="per +1 PFLOP/s of cluster", marginal_scale=lambda S: 1.0 / S.compute_pflops,
           elastic_weight=1.0, elastic_scale=_frontier_scale, words=_frontier_words),
)


def add_training(m, tree, S) -> None:
    r"""training: :math:`Train_{t,v} \ge T_t` (years with a floor)."""
    m.training = pyo.Constraint(
        list(m.p_train),
        rule=lambda m, t, v: leq(m, "training", (t, v), m.p_train[t, v], m.Train[t, v],
                                 lambda: f"{tree.label(t, v)}: a training floor of "
                                 f"{pyo.value(m.p_train[t, v]) * S.compute_pflops:,.1f} PFLOP/s but no chips "
                                 "can be in service"),
    )


def add_frontier(m, tree, S) -> None:
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
