"""Charts a planner puts in a deck, drawn from the plan tables alone (PNG, slide size).

Every axis chooses its unit from the data (:mod:`.units`: chips, thousands or
millions; $M or $B; MW or GW) and labels its ticks with the decimals the step
needs; every legend sits below the plot area, inside the figure, never over
the data; bars and lines keep headroom under the frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen needed; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import Formatter, MaxNLocator  # noqa: E402

from ..files import atomic_write  # noqa: E402
from ..plan import Plan  # noqa: E402
from .units import Scale, count_scale, money_scale, power_scale, tick_text  # noqa: E402

FIGSIZE = (12.8, 7.2)  # inches; at DPI 100 a 1280x720 slide image
DPI = 100
CHARTS = ("fleet", "capacity", "spend", "split", "purchases")
HEADROOM = 1.12  # the top of a value axis: the largest value drawn times this

plt.rcParams.update({"font.size": 13, "axes.titlesize": 16, "axes.labelsize": 13,
                     "legend.fontsize": 11, "axes.grid": True, "grid.alpha": 0.3})


class UnitFormatter(Formatter):
    """Tick labels of an axis in the unit of a :class:`~optimizer.report.units.Scale` (data stay in their units)."""

    def __init__(self, scale: Scale):
        self.scale = scale
        self._ticks: list[float] = []

    def set_locs(self, locs) -> None:
        self._ticks = list(locs)

    def format_ticks(self, values) -> list[str]:
        self.set_locs(values)
        return tick_text(values, self.scale)

    def __call__(self, x, pos=None) -> str:
        labels = tick_text([*self._ticks, x], self.scale) if self._ticks else tick_text([x], self.scale)
        return labels[-1]


def scale_axis(ax, scale: Scale, axis: str = "y", what: str = "") -> Scale:
    """Label ``ax``'s axis ``what (unit)`` and its ticks in ``scale``'s unit (whole ticks for single chips)."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(UnitFormatter(scale))
    if scale.integer:
        target.set_major_locator(MaxNLocator(integer=True))
    if what:
        (ax.set_ylabel if axis == "y" else ax.set_xlabel)(scale.title(what))
    return scale


def _headroom(ax, top: float, axis: str = "y") -> None:
    """Start the value axis at 0 and leave room above the largest value (an empty chart: 0 to 1)."""
    top = float(top) if np.isfinite(top) and top > 0 else 1.0
    (ax.set_ylim if axis == "y" else ax.set_xlim)(0, top * HEADROOM)


def _years(plan: Plan) -> list[int]:
    return list(plan.instance.years)


def _stack(ax, years, series: dict[str, np.ndarray], ylabel: str = ""):
    bottom = np.zeros(len(years))
    for label, values in series.items():
        ax.bar(years, values, bottom=bottom, label=label, width=0.75)
        bottom = bottom + values
    ax.set_xlabel("year")
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.set_xticks(years)
    return bottom


def _legend_below(fig, axes, handles=None, labels=None, rect_top: float = 1.0) -> None:
    """One legend for all axes of a chart, below the plots, as many columns as fit the figure's width.

    The axes are laid out above it (``tight_layout``), so the legend covers no data and is not cut.
    """
    if handles is None:
        handles, labels = [], []
        for ax in axes:
            h, lab = ax.get_legend_handles_labels()
            handles += h
            labels += lab
    if not handles:
        fig.tight_layout(rect=(0, 0, 1, rect_top))
        return
    renderer = fig.canvas.get_renderer()
    width = fig.bbox.width
    for ncols in range(min(6, len(labels)), 0, -1):
        legend = fig.legend(handles, labels, loc="lower center", ncols=ncols, frameon=False,
                            bbox_to_anchor=(0.5, 0.005))
        box = legend.get_window_extent(renderer)
        if box.width <= 0.98 * width or ncols == 1:
            break
        legend.remove()
    bottom = min(0.5, (box.height + 8) / fig.bbox.height)
    fig.tight_layout(rect=(0, bottom, 1, rect_top))


def fleet_chart(plan: Plan):
    """Installed chips by generation over time (stacked), in chips, thousands or millions."""
    years = _years(plan)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    piv = plan.fleet.pivot_table(index="year", columns="chip", values="installed", aggfunc="sum")
    piv = piv.reindex(years, fill_value=0).fillna(0)
    series = {c: piv[c].to_numpy() for c in plan.instance.chips if c in piv}
    top = _stack(ax, years, series or {"none": np.zeros(len(years))})
    scale_axis(ax, count_scale(top.max()), what="installed chips")
    _headroom(ax, top.max())
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
    cap = cap.reindex(years, fill_value=0).fillna(0)
    stacked = _stack(ax, years, {r: cap[r].to_numpy() for r in regions if r in cap})
    draw = fac.groupby("year").draw_mw.sum().reindex(years, fill_value=0)
    ax.plot(years, draw.to_numpy(), color="black", marker="o", label="total draw")
    ceiling = inst.power.ceiling_mw
    top = max(float(stacked.max()), float(draw.max()))
    if ceiling is not None:
        ax.step(years, [ceiling[t] for t in years], where="mid", color="red", linestyle="--",
                label="power ceiling")
        top = max(top, max(ceiling[t] for t in years))
    scale_axis(ax, power_scale(top), what="facility capacity")
    _headroom(ax, top)
    ax.set_title(f"Facility capacity and draw — {inst.name}")
    panel = []
    for i, r in enumerate(regions):
        sub = fig.add_subplot(gs[1 + i // ncols, i % ncols])
        f = fac[fac.region == r].set_index("year").reindex(years)
        lines = [sub.step(years, f.capacity_mw, where="mid", color="dimgray", linewidth=2,
                          label="region capacity")[0],
                 sub.plot(years, f.draw_mw, marker=".", color="black", label="region draw")[0]]
        high = np.nanmax([f.capacity_mw.max(), f.draw_mw.max(), 0.0])
        if inst.regions[r].max_mw is not None:
            maxima = [inst.regions[r].max_mw[t] for t in years]
            lines.append(sub.step(years, maxima, where="mid", linestyle="--", color="red",
                                  label="region max_mw")[0])
            high = max(high, max(maxima))
        if i == 0:
            panel = lines
        sub.set_title(r, fontsize=12)
        sub.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
        scale = power_scale(high)
        sub.yaxis.set_major_formatter(UnitFormatter(scale))
        sub.set_ylabel(scale.label, fontsize=10)
        _headroom(sub, high)
        sub.tick_params(labelsize=9)
    handles, labels = ax.get_legend_handles_labels()
    panel_handles = {h.get_label(): h for h in panel}
    for sub in fig.axes[1:]:
        for h in sub.get_lines():
            panel_handles.setdefault(h.get_label(), h)
    _legend_below(fig, [], handles + list(panel_handles.values()), labels + list(panel_handles))
    return fig


def spend_chart(plan: Plan):
    """Spend by year by component (stacked, top) and cumulative spend against the budget (below)."""
    years = _years(plan)
    sp = plan.spend.set_index("year").reindex(years, fill_value=0)
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=FIGSIZE, sharex=True, height_ratios=[2, 1])
    parts = {"chips": sp.chip_capex_usd, "campus blocks": sp.facility_capex_usd,
             "energy": sp.energy_usd, "opex": sp.opex_usd}
    top = _stack(ax, years, {k: v.to_numpy() for k, v in parts.items()})
    scale_axis(ax, money_scale(top.max()), what="spend per year")
    _headroom(ax, top.max())
    ax.set_xlabel("")
    budget = plan.instance.budget.total_usd
    ax2.plot(years, sp.cumulative_usd, color="black", marker="o", label="cumulative spend")
    if budget is not None:
        ax2.axhline(budget, color="red", linestyle="--", label="total budget")
    high = max(float(sp.cumulative_usd.max()), budget or 0.0)
    scale_axis(ax2, money_scale(high), what="cumulative")
    _headroom(ax2, high)
    ax2.set_xlabel("year")
    ax2.set_xticks(years)
    ax.set_title(f"Spend by year and against the budget — {plan.instance.name}")
    _legend_below(fig, [ax, ax2])
    return fig


def split_chart(plan: Plan):
    """Effective training vs inference capacity by year (stacked), with the training share."""
    years = _years(plan)
    sp = plan.split.set_index("year").reindex(years, fill_value=0)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    top = _stack(ax, years, {"training": sp.train_pflops.to_numpy(), "inference": sp.infer_pflops.to_numpy()})
    scale_axis(ax, count_scale(top.max(), "PFLOP/s"), what="effective compute")
    _headroom(ax, top.max())
    ax2 = ax.twinx()
    ax2.plot(years, sp.training_share * 100, color="black", marker="o", label="training share")
    ax2.set_ylabel("training share (%)")
    ax2.set_ylim(0, 100 * HEADROOM)
    ax2.set_yticks([0, 20, 40, 60, 80, 100])
    ax2.grid(False)
    ax.set_title(f"Training vs inference capacity — {plan.instance.name}")
    _legend_below(fig, [ax, ax2])
    return fig


def purchases_chart(plan: Plan):
    """Chips bought per year, stacked by region, in chips, thousands or millions."""
    years = _years(plan)
    piv = plan.purchases.pivot_table(index="year", columns="region", values="chips", aggfunc="sum")
    piv = piv.reindex(years, fill_value=0).fillna(0)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    series = {r: piv[r].to_numpy() for r in plan.instance.regions if r in piv}
    top = _stack(ax, years, series or {"none": np.zeros(len(years))})
    scale_axis(ax, count_scale(top.max()), what="chips bought")
    _headroom(ax, top.max())
    ax.set_title(f"Purchases by region — {plan.instance.name}")
    _legend_below(fig, [ax])
    return fig


FAN_LINES = 12
"""Up to this many scenarios the fan chart draws a line per scenario; past it, probability-weighted quantile
bands (10-90%, 25-75%) and the median."""


def fan_chart(plan: Plan):
    """A plan under uncertainty: facility capacity and cumulative spend by year, the years before the first
    stage (shared by all) shaded: a line per scenario (weight by probability) up to :data:`FAN_LINES`
    scenarios, quantile bands over the scenarios beyond."""
    from ..instance.tree import weighted_quantile

    years = _years(plan)
    inst = plan.instance
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=FIGSIZE)
    sc = plan.scenarios.set_index("scenario")
    most = sc.probability.max()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    cap_all = plan.facilities.groupby(["scenario", "year"]).capacity_mw.sum().unstack("year").reindex(
        index=sc.index, columns=years)
    spend_all = plan.spend.pivot_table(index="scenario", columns="year", values="cumulative_usd").reindex(
        index=sc.index, columns=years)
    top_mw, top_usd = float(np.nanmax(cap_all.to_numpy())), float(np.nanmax(spend_all.to_numpy()))
    if len(sc) <= FAN_LINES:
        for i, sid in enumerate(sc.index):
            width = 0.8 + 5.0 * sc.probability[sid] / most
            label = f"{sid} (p {sc.probability[sid]:.2f})"
            color = colors[i % len(colors)]
            ax1.plot(years, cap_all.loc[sid].to_numpy(), linewidth=width, color=color, label=label, alpha=0.85)
            ax2.plot(years, spend_all.loc[sid].to_numpy(), linewidth=width, color=color, alpha=0.85)
    else:
        w = sc.probability.to_numpy()
        tops = []
        for ax, table in ((ax1, cap_all), (ax2, spend_all)):
            q = {x: [weighted_quantile(table[t].to_numpy(), w, x) for t in years] for x in (0.1, 0.25, 0.5, 0.75, 0.9)}
            tops.append(max(q[0.9]))
            labelled = ax is ax1
            ax.fill_between(years, q[0.1], q[0.9], color=colors[0], alpha=0.18,
                            label=f"10-90% of {len(sc)} scenarios" if labelled else None)
            ax.fill_between(years, q[0.25], q[0.75], color=colors[0], alpha=0.35,
                            label="25-75%" if labelled else None)
            ax.plot(years, q[0.5], color=colors[0], linewidth=2.4, label="median" if labelled else None)
        top_mw, top_usd = tops  # the axes for the bands, not for the most extreme scenario
    if inst.power.ceiling_mw is not None:
        ax1.step(years, [inst.power.ceiling_mw[t] for t in years], where="mid", color="red", linestyle="--",
                 label="power ceiling (base)")
        top_mw = max(top_mw, max(inst.power.ceiling_mw[t] for t in years))
    if inst.budget.total_usd is not None:
        ax2.axhline(inst.budget.total_usd, color="red", linestyle="--", label="total budget")
        top_usd = max(top_usd, inst.budget.total_usd)
    first = inst.tree.first_stage_year
    for ax in (ax1, ax2):
        ax.axvspan(years[0] - 0.5, first - 0.5, color="grey", alpha=0.15)
        ax.set_xlabel("year (shaded: decided now, shared by every scenario)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    scale_axis(ax1, power_scale(top_mw), what="facility capacity")
    scale_axis(ax2, money_scale(top_usd), what="cumulative spend")
    _headroom(ax1, top_mw)
    _headroom(ax2, top_usd)
    ax1.set_title("Capacity by scenario")
    ax2.set_title("Spend by scenario")
    fig.suptitle(f"Plan under uncertainty — {inst.name}", fontsize=16)
    _legend_below(fig, [ax1, ax2])
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
    first = plan.instance.tree.first_stage_year
    years = f"{plan.instance.start}" + (f"-{first - 1}" if first - 1 > plan.instance.start else "")
    scale_axis(ax, power_scale(bottom.max() if len(bottom) else 0), what="facility power")
    _headroom(ax, bottom.max() if len(bottom) else 0)
    ax.set_title(f"Commit now ({years}), before the first uncertainty is revealed — {plan.instance.name}")
    if not items:
        ax.text(0.5, 0.5, "nothing to commit before the first stage", transform=ax.transAxes, ha="center")
    _legend_below(fig, [ax])
    return fig


def ranges_chart(table, title: str = ""):
    """Near-optimal ranges: one bar per aggregate from its minimum to its maximum, the optimum marked;
    chips and campus MW on their own panels, each in a unit chosen from its values; robust aggregates in green."""
    groups = [u for u in ("chips", "MW") if (table["unit"] == u).any()]
    fig, axes = plt.subplots(1, max(1, len(groups)), figsize=FIGSIZE, squeeze=False)
    for ax, unit in zip(axes[0], groups):
        rows = table[table["unit"] == unit].iloc[::-1]
        y = np.arange(len(rows))
        lo, hi = rows["min"].to_numpy(dtype=float), rows["max"].to_numpy(dtype=float)
        values = [*lo, *hi, *rows.optimal.to_numpy(dtype=float)]
        if "max_bound" in rows:
            values += list(rows["max_bound"].to_numpy(dtype=float))
        top = float(np.nanmax(values)) if len(values) and np.isfinite(values).any() else 0.0
        span = top if top > 0 else 1.0
        colors = ["tab:green" if r else "tab:orange" for r in rows.robust]
        ax.barh(y, np.maximum(hi - lo, 0.006 * span), left=lo, color=colors, height=0.5, alpha=0.8)  # a point: a sliver
        ax.scatter(rows.optimal.to_numpy(dtype=float), y, marker="D", color="black", zorder=3, label="optimal plan")
        unproven = rows.status != "optimal"
        if unproven.any():
            ax.scatter(rows["min_bound"][unproven], y[unproven.to_numpy()], marker="|", color="red", s=200)
            ax.scatter(rows["max_bound"][unproven], y[unproven.to_numpy()], marker="|", color="red", s=200,
                       label="bound (not proven)")
        ax.set_yticks(y, [a.split(".", 1)[1] for a in rows["aggregate"]])
        ax.set_ylim(-0.75, len(rows) - 0.25)
        if unit == "chips":
            scale_axis(ax, count_scale(top), axis="x", what="chips")
        else:
            scale_axis(ax, power_scale(top), axis="x", what="campus blocks started")
        _headroom(ax, top, axis="x")
    handles = [plt.Rectangle((0, 0), 1, 1, color="tab:green", alpha=0.8),
               plt.Rectangle((0, 0), 1, 1, color="tab:orange", alpha=0.8)]
    labels = ["robust (range <= 5%)", "free to choose"]
    if groups:
        handles.append(axes[0][0].collections[0])
        labels.append("optimal plan")
    fig.suptitle(title or "Near-optimal ranges", fontsize=16)
    _legend_below(fig, [], handles, labels)
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


def plot_plan(plan: Plan, directory: str | os.PathLike, *, scenarios: bool = False) -> list[Path]:
    """Write every chart as ``<name>.png`` (1280x720) into ``directory``; returns the paths.

    A plan under uncertainty gets the fan chart and the commitments chart; with
    ``scenarios`` also the v1 charts of each scenario (``<name>-<scenario>.png``,
    the first :data:`MAX_SCENARIO_CHARTS` scenarios).
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    if not plan.stochastic:
        return [save(func(plan), out / f"{name}.png") for name, func in CHART_FUNCS.items()]
    paths = [save(func(plan), out / f"{name}.png") for name, func in TREE_CHART_FUNCS.items()]
    for sid in plan.scenarios.scenario[:MAX_SCENARIO_CHARTS] if scenarios else ():
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
