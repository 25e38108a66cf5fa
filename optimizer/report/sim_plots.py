"""Charts of a policy simulation (spec v3 section 8): how each policy's outcomes spread, and its plans by year.

* ``objectives.png``: the realised objective of every path under each policy (a dot per distinct outcome,
  its size by weight), with the expectation, P10 and P90 marked and the infeasible paths counted;
* ``capacity.png``, ``spend.png``, ``unmet.png``: fan charts by year, one panel per policy: the
  probability-weighted median and the 10-90% and 25-75% bands over the paths.

They read a simulation's tables alone (``paths`` and ``realised``), so they draw a simulation solved now or
read back from its directory.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..instance.tree import weighted_quantile
from .plots import DPI, FIGSIZE, _headroom, _legend_below, plt, save, scale_axis
from .units import count_scale, fmt_number, money_scale, power_scale

COLORS = {"stochastic": "tab:blue", "deterministic": "tab:orange", "perfect": "tab:green"}
FANS = {
    "capacity": ("facilities", "capacity_mw", "facility capacity", power_scale),
    "spend": ("spend", "total_usd", "spend in the year", money_scale),
    "unmet": ("compute", "unmet_pflops", "unmet inference demand", lambda top: count_scale(top, "PFLOP/s")),
}


def objectives_chart(sim):
    """Each policy's realised objectives: a dot per distinct outcome (size by weight), E, P10 and P90."""
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    policies = list(sim.policies)
    finite = sim.paths.objective[np.isfinite(sim.paths.objective.astype(float))]
    for i, name in enumerate(policies):
        df = sim.paths[sim.paths.policy == name]
        x, w = df.objective.astype(float).to_numpy(), df.weight.astype(float).to_numpy()
        ok = np.isfinite(x)
        if ok.any():
            outcomes = pd.Series(w[ok]).groupby(np.round(x[ok], 6)).sum()
            ax.scatter([i] * len(outcomes), outcomes.index, s=40 + 900 * outcomes.to_numpy() / w.sum(),
                       color=COLORS.get(name, "grey"), alpha=0.55, edgecolor="black", linewidth=0.5,
                       label=f"{name}: a path's outcome (size: weight)")
            mean = float(np.sum(w[ok] * x[ok]) / np.sum(w[ok])) if not (~ok).any() else None
            p10, p90 = weighted_quantile(x, w, 0.1), weighted_quantile(x, w, 0.9)
            for value, style in ((p10, ":"), (p90, ":")):
                if math.isfinite(value):
                    ax.hlines(value, i - 0.3, i + 0.3, colors="black", linestyles=style, linewidth=1.2)
            if mean is not None:
                ax.hlines(mean, i - 0.35, i + 0.35, colors="black", linewidth=2.2)
        bad = int((~ok).sum())
        if bad:
            ax.annotate(f"{bad} infeasible path{'s' if bad > 1 else ''}", (i, 0.02), xycoords=("data", "axes fraction"),
                        ha="center", color="red")
    ax.set_xticks(range(len(policies)), policies)
    ax.set_xlim(-0.6, len(policies) - 0.4)
    if len(finite):
        lo, hi = float(finite.min()), float(finite.max())
        pad = 0.08 * (hi - lo) if hi > lo else max(1.0, 0.05 * abs(hi))
        ax.set_ylim(lo - pad, hi + pad)
        if sim.truth.objective.kind == "min_cost":
            scale_axis(ax, money_scale(max(abs(lo), abs(hi))), what="realised objective (discounted cost)")
        else:
            ax.set_ylabel("realised objective (discounted PFLOP/s-years)")
            ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: fmt_number(v)))
    ax.set_title("Realised objective of each path (thick: expected; dotted: P10 and P90)")
    fig.suptitle(f"Policy simulation — {sim.policy_instance.name} against {sim.truth.name}", fontsize=16)
    _legend_below(fig, [ax])
    return fig


def fan_chart(sim, what: str):
    """Fan chart of ``what`` (capacity, spend or unmet) by year, one panel per policy."""
    table, column, title, scale_of = FANS[what]
    policies = [p for p in sim.policies if len(sim.realised[table][sim.realised[table].policy == p])]
    fig, axes = plt.subplots(1, max(1, len(policies)), figsize=FIGSIZE, dpi=DPI, sharey=True, squeeze=False)
    axes = list(axes[0])
    weights = sim.paths.drop_duplicates(["policy", "path"]).set_index(["policy", "path"]).weight
    years = list(sim.truth.years)
    top = 0.0
    for ax, name in zip(axes, policies):
        df = sim.realised[table]
        by = df[df.policy == name].groupby(["path", "year"])[column].sum().unstack("year").reindex(columns=years)
        w = np.array([weights.get((name, path), 0.0) for path in by.index])
        bands = {q: [weighted_quantile(by[t].to_numpy(), w, q) for t in years] for q in (0.1, 0.25, 0.5, 0.75, 0.9)}
        color = COLORS.get(name, "grey")
        ax.fill_between(years, bands[0.1], bands[0.9], color=color, alpha=0.18, label="10-90% of paths")
        ax.fill_between(years, bands[0.25], bands[0.75], color=color, alpha=0.35, label="25-75% of paths")
        ax.plot(years, bands[0.5], color=color, linewidth=2.2, label="median")
        ax.set_title(name)
        ax.set_xlabel("year")
        top = max(top, float(np.nanmax(bands[0.9])) if len(years) else 0.0)
    for ax in axes:
        scale_axis(ax, scale_of(top), what=title if ax is axes[0] else "")
        _headroom(ax, top)
    fig.suptitle(f"{title.capitalize()} by year under each policy — {sim.truth.name}", fontsize=16)
    handles, labels = axes[0].get_legend_handles_labels()
    _legend_below(fig, axes, handles=handles, labels=labels, rect_top=0.95)
    return fig


def plot_simulation(sim, directory: str | os.PathLike) -> list[Path]:
    """Write ``objectives.png`` and the fan charts (``capacity.png``, ``spend.png``, ``unmet.png``) into
    ``directory`` (1280x720, each atomically); returns the paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = [save(objectives_chart(sim), out / "objectives.png")]
    if any(len(df) for df in sim.realised.values()):
        paths += [save(fan_chart(sim, what), out / f"{what}.png") for what in FANS]
    return paths


__all__ = ["fan_chart", "objectives_chart", "plot_simulation"]
