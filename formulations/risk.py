r"""The risk measure of a scenario tree (spec v2 section 4.2): (1 - w) E + w CVaR.

max_training takes :math:`CVaR^- = \eta - \frac{1}{1-\alpha}\sum_s p_s u_s`, :math:`u_s \ge \eta - O_s`;
min_cost :math:`CVaR^+ = \eta + \frac{1}{1-\alpha}\sum_s p_s u_s`, :math:`u_s \ge O_s - \eta`
(:math:`u_s \ge 0`, :math:`\eta` free).
"""

from __future__ import annotations

import pyomo.environ as pyo

from .registry import Family, Variable, declare

declare(
    Variable("eta", "CVaR threshold (only with a risk weight)", "objective units", "continuous", "-"),
    Variable("u", "shortfall of a scenario beyond the CVaR threshold", "objective units", "continuous", "s"),
    Family("cvar", "each scenario's shortfall beyond the CVaR threshold", "u[s] >= eta - O[s] (max), O[s] - eta (min)",
           "objective units", reads=("uncertainty.risk",), role="definition", index="scenario"),
)


def add_cvar(m, tree, maximize: bool):
    """eta, u and the cvar rows; returns the CVaR expression."""
    alpha = tree.cvar_alpha
    m.eta = pyo.Var(domain=pyo.Reals)
    m.u = pyo.Var(m.SC, domain=pyo.NonNegativeReals)
    sign = 1.0 if maximize else -1.0  # shortfall below eta (max) or excess above it (min)
    m.cvar = pyo.Constraint(m.SC, rule=lambda m, s: m.u[s] >= sign * (m.eta - m.O[s]))
    prob = {s.id: s.probability for s in tree.scenarios}
    m.CVaR = pyo.Expression(expr=m.eta - sign / (1 - alpha) * sum(prob[s] * m.u[s] for s in m.SC))
    return m.CVaR
