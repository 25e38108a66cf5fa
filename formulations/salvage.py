r"""The end of the horizon (spec v2 section 5): the terminal value of chips still in service after it."""

from __future__ import annotations


def terminal_value(m, tree, S) -> dict[tuple[int, str], object]:
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
