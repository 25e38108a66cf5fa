"""Charts a planner puts in a deck, drawn from the plan tables alone (PNG, slide size)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen needed; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from ..files import atomic_write  # noqa: E402
from ..plan import Plan  # noqa: E402

FIGSIZE = (12.8, 7.2)  # inches; at DPI 100 a 1280x720 slide image
DPI = 100
CHARTS = ("fleet", "capacity", "spend", "split", "purchases")

plt.rcParams.update({"font.size": 13, "axes.titlesize": 16, "axes.labelsize": 13,
                     "legend.fontsize": 11, "axes.grid": True, "grid.alpha": 0.3})


def _years(plan: Plan) -> list[int]:
    return list(plan.instance.years)


def _stack(ax, years, series: dict[str, np.ndarray], ylabel: str):
    bottom = np.zeros(len(years))
    for label, values in series.items():
        ax.bar(years, values, bottom=bottom, label=label, width=0.75)
        bottom = bottom + values
    ax.set_xlabel("year")
    ax.set_ylabel(ylabel)
    ax.set_xticks(years)
    return bottom


def _legend_below(fig, axes) -> None:
    """One legend for all axes of a chart, below the plot where it hides nothing."""
    handles, labels = [], []
    for ax in axes:
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += lab
    fig.legend(handles, labels, loc="lower center", ncols=min(6, max(1, len(labels))), frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))


def fleet_chart(plan: Plan):
    """Installed chips by generation over time (stacked), in thousands of chips."""
    years = _years(plan)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    piv = plan.fleet.pivot_table(index="year", columns="chip", values="installed", aggfunc="sum")
    piv = piv.reindex(years, fill_value=0).fillna(0)
    series = {c: piv[c].to_numpy() / 1e3 for c in plan.instance.chips if c in piv}
    _stack(ax, years, series, "installed chips (thousands)")
    ax.set_title(f"Installed fleet by chip generation — {plan.instance.name}")
    _legend_below(fig, [ax])
    return fig


def capacity_chart(plan: Plan):
    """Facility capacity (stacked by region) and total draw against the global ceiling;
    one small panel per region with its capacity, draw and regional maximum."""
    years = _years(plan)
    inst = plan.instance
    regions = list(inst.regions)
    fig = plt.figure(figsize=FIGSIZE)
    ncols = min(len(regions), 4)
    nrows = 1 + int(np.ceil(len(regions) / ncols))
    gs = fig.add_gridspec(nrows, ncols, height_ratios=[2.2] + [1] * (nrows - 1))
    ax = fig.add_subplot(gs[0, :])
    fac = plan.facilities
    cap = fac.pivot_table(index="year", columns="region", values="capacity_mw", aggfunc="sum")
    cap = cap.reindex(years, fill_value=0)
    _stack(ax, years, {r: cap[r].to_numpy() for r in regions if r in cap}, "facility MW")
    draw = fac.groupby("year").draw_mw.sum().reindex(years, fill_value=0)
    ax.plot(years, draw.to_numpy(), color="black", marker="o", label="total draw")
    if inst.power.ceiling_mw is not None:
        ax.step(years, [inst.power.ceiling_mw[t] for t in years], where="mid", color="red",
                linestyle="--", label="power ceiling")
    top = max(cap.sum(axis=1).max(), draw.max(),
              max(inst.power.ceiling_mw.values()) if inst.power.ceiling_mw is not None else 0)
    ax.set_ylim(0, top * 1.3)
    ax.legend(loc="upper left", ncols=4)
    ax.set_title(f"Facility capacity and draw — {inst.name}")
    for i, r in enumerate(regions):
        sub = fig.add_subplot(gs[1 + i // ncols, i % ncols])
        f = fac[fac.region == r].set_index("year").reindex(years)
        sub.step(years, f.capacity_mw, where="mid", label="capacity")
        sub.plot(years, f.draw_mw, marker=".", label="draw")
        if inst.regions[r].max_mw is not None:
            sub.step(years, f.max_mw, where="mid", linestyle="--", color="red", label="max")
        sub.set_title(r, fontsize=12)
        sub.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
        if i == 0:
            sub.legend(fontsize=8, loc="upper left")
        sub.set_ylabel("MW", fontsize=10)
        sub.tick_params(labelsize=9)
    fig.tight_layout()
    return fig


def spend_chart(plan: Plan):
    """Spend by year by component (stacked) and cumulative spend against the budget."""
    years = _years(plan)
    sp = plan.spend.set_index("year").reindex(years, fill_value=0)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    parts = {"chips": sp.chip_capex_usd, "campus blocks": sp.facility_capex_usd,
             "energy": sp.energy_usd, "opex": sp.opex_usd}
    _stack(ax, years, {k: v.to_numpy() / 1e9 for k, v in parts.items()}, "spend per year (billion USD)")
    ax2 = ax.twinx()
    ax2.plot(years, sp.cumulative_usd / 1e9, color="black", marker="o", label="cumulative")
    if plan.instance.budget.total_usd is not None:
        ax2.axhline(plan.instance.budget.total_usd / 1e9, color="red", linestyle="--", label="total budget")
    ax2.set_ylabel("cumulative spend (billion USD)")
    top = max(sp.cumulative_usd.max(), plan.instance.budget.total_usd or 0) / 1e9
    ax2.set_ylim(0, top * 1.1)
    ax2.grid(False)
    ax.set_title(f"Spend by year and against the budget — {plan.instance.name}")
    _legend_below(fig, [ax, ax2])
    return fig


def split_chart(plan: Plan):
    """Effective training vs inference capacity by year (stacked), with the training share."""
    years = _years(plan)
    sp = plan.split.set_index("year").reindex(years, fill_value=0)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    _stack(ax, years, {"training": sp.train_pflops.to_numpy() / 1e3,
                       "inference": sp.infer_pflops.to_numpy() / 1e3},
           "effective compute (thousand PFLOP/s)")
    ax2 = ax.twinx()
    ax2.plot(years, sp.training_share * 100, color="black", marker="o", label="training share")
    ax2.set_ylabel("training share (%)")
    ax2.set_ylim(0, 100)
    ax2.grid(False)
    ax.set_title(f"Training vs inference capacity — {plan.instance.name}")
    _legend_below(fig, [ax, ax2])
    return fig


def purchases_chart(plan: Plan):
    """Chips bought per year, stacked by region, in thousands of chips."""
    years = _years(plan)
    piv = plan.purchases.pivot_table(index="year", columns="region", values="chips", aggfunc="sum")
    piv = piv.reindex(years, fill_value=0).fillna(0)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    series = {r: piv[r].to_numpy() / 1e3 for r in plan.instance.regions if r in piv}
    _stack(ax, years, series or {"none": np.zeros(len(years))}, "chips bought (thousands)")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_title(f"Purchases by region — {plan.instance.name}")
    _legend_below(fig, [ax])
    return fig


def fan_chart(plan: Plan):
    """A plan under uncertainty: facility capacity and cumulative spend of every scenario (line weight by
    probability), the years before the first stage (shared by all) shaded."""
    years = _years(plan)
    inst = plan.instance
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=FIGSIZE)
    sc = plan.scenarios.set_index("scenario")
    top = sc.probability.max()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, sid in enumerate(sc.index):
        width = 0.8 + 5.0 * sc.probability[sid] / top
        label = f"{sid} (p {sc.probability[sid]:.2f})"
        color = colors[i % len(colors)]
        cap = plan.facilities[plan.facilities.scenario == sid].groupby("year").capacity_mw.sum()
        ax1.plot(years, cap.reindex(years).to_numpy(), linewidth=width, color=color, label=label, alpha=0.85)
        spend = plan.spend[plan.spend.scenario == sid].set_index("year").cumulative_usd
        ax2.plot(years, spend.reindex(years).to_numpy() / 1e9, linewidth=width, color=color, alpha=0.85)
    if inst.power.ceiling_mw is not None:
        ax1.step(years, [inst.power.ceiling_mw[t] for t in years], where="mid", color="red", linestyle="--",
                 label="power ceiling (base)")
    if inst.budget.total_usd is not None:
        ax2.axhline(inst.budget.total_usd / 1e9, color="red", linestyle="--")
    first = inst.uncertainty.stages[0].year
    for ax in (ax1, ax2):
        ax.axvspan(years[0] - 0.5, first - 0.5, color="grey", alpha=0.15)
        ax.set_xlabel("year (shaded: decided now, shared by every scenario)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.set_ylabel("facility capacity (MW)")
    ax2.set_ylabel("cumulative spend (billion USD)")
    ax1.set_title("Capacity by scenario")
    ax2.set_title("Spend by scenario")
    fig.suptitle(f"Plan under uncertainty — {inst.name}", fontsize=16)
    _legend_below(fig, [ax1])
    return fig


def commitments_chart(plan: Plan):
    """What to sign now: the root decisions, facility MW by region and item (chips draw, blocks bring online)."""
    c = plan.commitments
    fig, ax = plt.subplots(figsize=FIGSIZE)
    regions = list(plan.instance.regions)
    items = list(dict.fromkeys(c["item"])) if len(c) else []
    bottom = np.zeros(len(regions))
    for item in items:
        mw = c[c["item"] == item].groupby("region").mw.sum().reindex(regions, fill_value=0).to_numpy()
        label = "campus blocks (MW online)" if item == "blocks" else f"{item} (MW drawn)"
        ax.bar(regions, mw, bottom=bottom, label=label, width=0.6)
        bottom = bottom + mw
    first = plan.instance.uncertainty.stages[0].year
    years = f"{plan.instance.start}" + (f"-{first - 1}" if first - 1 > plan.instance.start else "")
    ax.set_ylabel("facility MW")
    ax.set_title(f"Commit now ({years}), before the first uncertainty is revealed — {plan.instance.name}")
    if not items:
        ax.text(0.5, 0.5, "nothing to commit before the first stage", transform=ax.transAxes, ha="center")
    _legend_below(fig, [ax])
    return fig


def ranges_chart(table, title: str = ""):
    """Near-optimal ranges: one bar per aggregate from its minimum to its maximum, the optimum marked;
    chips and campus MW on their own panels; robust aggregates in green."""
    groups = [("chips", "chips (thousands)", 1e3), ("MW", "campus blocks started (MW)", 1.0)]
    groups = [(u, label, div) for u, label, div in groups if (table["unit"] == u).any()]
    fig, axes = plt.subplots(1, len(groups), figsize=FIGSIZE, squeeze=False)
    for ax, (unit, label, div) in zip(axes[0], groups):
        rows = table[table["unit"] == unit].iloc[::-1]
        y = np.arange(len(rows))
        lo, hi = rows["min"].to_numpy() / div, rows["max"].to_numpy() / div
        colors = ["tab:green" if r else "tab:orange" for r in rows.robust]
        span = max(float(np.nanmax(hi)) if len(hi) else 0.0, 1e-9)
        ax.barh(y, np.maximum(hi - lo, 0.006 * span), left=lo, color=colors, height=0.5, alpha=0.8)  # a point: a sliver
        ax.scatter(rows.optimal.to_numpy() / div, y, marker="D", color="black", zorder=3, label="optimal plan")
        unproven = rows.status != "optimal"
        if unproven.any():
            ax.scatter(rows["min_bound"][unproven] / div, y[unproven.to_numpy()], marker="|", color="red", s=200)
            ax.scatter(rows["max_bound"][unproven] / div, y[unproven.to_numpy()], marker="|", color="red", s=200,
                       label="bound (not proven)")
        ax.set_yticks(y, [a.split(".", 1)[1] for a in rows["aggregate"]])
        ax.set_xlabel(label)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_xlim(left=0)
    handles = [plt.Rectangle((0, 0), 1, 1, color="tab:green", alpha=0.8),
               plt.Rectangle((0, 0), 1, 1, color="tab:orange", alpha=0.8)]
    fig.legend(handles + [axes[0][0].collections[0]], ["robust (range <= 5%)", "free to choose",
                                                     "optimal plan"], loc="lower center", ncols=3, frameon=False)
    fig.suptitle(title or "Near-optimal ranges", fontsize=16)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


CHART_FUNCS = {"fleet": fleet_chart, "capacity": capacity_chart, "spend": spend_chart,
               "split": split_chart, "purchases": purchases_chart}
TREE_CHART_FUNCS = {"fan": fan_chart, "commitments": commitments_chart}
MAX_SCENARIO_CHARTS = 12


def save(fig, path: Path) -> Path:
    """Write a figure as a slide-size PNG, atomically, and close it."""
    try:
        return atomic_write(path, lambda p: fig.savefig(p, dpi=DPI, format="png"))
    finally:
        plt.close(fig)


def plot_plan(plan: Plan, directory: str | os.PathLike) -> list[Path]:
    """Write every chart as ``<name>.png`` (1280x720) into ``directory``; returns the paths.

    A plan under uncertainty gets the fan chart and the commitments chart, and
    (up to 12 scenarios) the v1 charts of each scenario (``<name>-<scenario>.png``).
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    if not plan.stochastic:
        return [save(func(plan), out / f"{name}.png") for name, func in CHART_FUNCS.items()]
    paths = [save(func(plan), out / f"{name}.png") for name, func in TREE_CHART_FUNCS.items()]
    for sid in plan.scenarios.scenario[:MAX_SCENARIO_CHARTS]:
        one = plan.scenario(sid)
        safe = sid.replace("/", "_")
        paths += [save(func(one), out / f"{name}-{safe}.png") for name, func in CHART_FUNCS.items()]
    return paths


def series_count(fig) -> int:
    """Number of distinct labelled series drawn in a figure (used by the tests)."""
    labels = set()
    for ax in fig.axes:
        labels.update(ax.get_legend_handles_labels()[1])
    return len(labels)


__all__ = ["CHARTS", "capacity_chart", "commitments_chart", "fan_chart", "fleet_chart", "plot_plan",
           "purchases_chart", "ranges_chart", "save", "series_count",
           "spend_chart", "split_chart"]
