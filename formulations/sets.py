"""The sparse index sets of the model: which decisions and rows exist, by node-year (pure: a function of the tree)."""

from __future__ import annotations

import pyomo.environ as pyo


def index_sets(tree) -> dict[str, list]:
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


def add_sets(m, tree) -> None:
    base = tree.scenarios[0].instance
    m.T = pyo.Set(initialize=list(tree.years), ordered=True)
    m.R = pyo.Set(initialize=list(base.regions), ordered=True)
    m.G = pyo.Set(initialize=list(base.chips), ordered=True)
    m._sets = index_sets(tree)
    for name, idx in m._sets.items():
        setattr(m, name, pyo.Set(initialize=idx, dimen=_DIMEN[name], ordered=True))
