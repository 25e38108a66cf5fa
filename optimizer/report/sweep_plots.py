"""Charts of a sweep table (PNG, slide size): tornado (one at a time), line (one path), heatmap (two).

Value axes take their unit from the data, as the plan charts do (:mod:`.units`).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, PercentFormatter

from ..files import atomic_write
from .plots import DPI, FIGSIZE, UnitFormatter, plt
from .units import Scale, count_scale, fmt_usd, money_scale

METRIC_LABELS = {
    "objective": "objective",
    "total_spend_usd": "total spend",
    "peak_capacity_mw": "peak facility capacity (MW)",
    "training_share": "training share of compute",
    "training_pflops_years": "training compute (PFLOP/s-years)",
    "unmet_pflops_years": "unmet inference demand (PFLOP/s-years)",
}
GOOD = ("optimal", "feasible")


def metric_label(df: pd.DataFrame, metric: str) -> str:
    """The metric in words with its unit: ``objective (PFLOP/s-years, discounted)``."""
    if metric == "objective":
        return f"objective ({df.attrs.get('objective_unit', 'objective units')})"
    return METRIC_LABELS.get(metric, metric)


def _money(df: pd.DataFrame, metric: str) -> bool:
    return metric.endswith("_usd") or (metric == "objective"
                                       and str(df.attrs.get("objective_unit", "")).startswith("USD"))


def metric_scale(df: pd.DataFrame, metric: str, values) -> Scale | None:
    """The unit of a metric's axis, chosen from ``values`` (None for shares, drawn in percent)."""
    if metric.endswith("share"):
        return None
    finite = np.abs(np.asarray(values, dtype=float))
    top = float(np.nanmax(finite)) if finite.size and np.isfinite(finite).any() else 0.0
    return money_scale(top) if _money(df, metric) else count_scale(top, "")


def _axis(ax, df: pd.DataFrame, metric: str, values, axis: str = "y", what: str | None = None) -> str:
    """Format ``ax``'s value axis for ``metric`` and return its label."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    label = what or metric_label(df, metric)
    scale = metric_scale(df, metric, values)
    if scale is None:
        target.set_major_formatter(PercentFormatter(1.0, decimals=0))
        return label
    target.set_major_formatter(UnitFormatter(scale))
    return f"{label}, in {scale.label}" if scale.label else label


def path_label(df: pd.DataFrame, path: str) -> str:
    kind = df.attrs.get("kinds", {}).get(path, "value")
    if kind == "factor":
        return f"{path} (factor on the base value)"
    if kind == "shift":
        return f"{path} (shift, years)"
    for suffix, unit in (("_usd", "USD"), ("_mw", "MW"), ("_pflops", "PFLOP/s"), ("_units", "units"),
                         ("_years", "years"), ("_w", "W")):
        if path.endswith(suffix):
            return f"{path} ({unit})"
    return path


def _values(df: pd.DataFrame, metric: str) -> pd.Series:
    """The metric where the scenario has a plan; NaN where it has none."""
    return df[metric].where(df.status.isin(GOOD))


def line_chart(df: pd.DataFrame, path: str, metric: str = "objective"):
    """The metric against one varied path; scenarios without a plan are marked on the axis."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    d = df.sort_values(path)
    y = _values(d, metric)
    ax.plot(d[path], y, marker="o", linewidth=2, label=metric_label(df, metric))
    bad = d[y.isna()]
    if len(bad):
        ax.scatter(bad[path], [np.nanmin(y) if y.notna().any() else 0] * len(bad), marker="x", color="red",
                   s=80, zorder=3, label="no plan (" + ", ".join(sorted(set(bad.status))) + ")")
    ax.set_xlabel(path_label(df, path))
    ax.set_ylabel(_axis(ax, df, metric, y))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_value(df, path, v)))
    ax.set_title(f"{metric_label(df, metric)} by {path}")
    from .plots import _legend_below

    _legend_below(fig, [ax])
    return fig


def heatmap_chart(df: pd.DataFrame, row_path: str, col_path: str, metric: str = "objective"):
    """The metric over a grid of two varied paths (blank where a scenario has no plan)."""
    d = df.assign(_v=_values(df, metric))
    piv = d.pivot_table(index=row_path, columns=col_path, values="_v", aggfunc="first", dropna=False)
    piv = piv.sort_index().sort_index(axis=1)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    data = piv.to_numpy(dtype=float)
    im = ax.imshow(np.ma.masked_invalid(data), aspect="auto", origin="lower", cmap="viridis")
    ax.set_xticks(range(len(piv.columns)), [fmt_value(df, col_path, c) for c in piv.columns], rotation=30)
    ax.set_yticks(range(len(piv.index)), [fmt_value(df, row_path, r) for r in piv.index])
    ax.set_xlabel(path_label(df, col_path))
    ax.set_ylabel(path_label(df, row_path))
    ax.grid(False)
    finite = data[np.isfinite(data)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0
    scale = metric_scale(df, metric, finite) or Scale(0.01, "%")
    if data.size <= 400:
        for i in range(data.shape[0]):
            for j in range(data.shape[1]):
                v = data[i, j]
                text = "no plan" if not math.isfinite(v) else f"{v / scale.divisor:,.3g}"
                ax.text(j, i, text, ha="center", va="center", fontsize=11,
                        color="white" if math.isfinite(v) and v < mid else "black")
    bar = fig.colorbar(im, ax=ax)
    bar.set_label(_axis(bar.ax, df, metric, finite))
    ax.set_title(f"{metric_label(df, metric)} by {row_path} and {col_path}")
    fig.tight_layout()
    return fig


def tornado_chart(df: pd.DataFrame, metric: str = "objective"):
    """One-at-a-time sweep: for each path, the metric's change from the base at its lowest and
    highest value, the widest bar on top."""
    base = df[df.label == "base"]
    if base.empty or base.status.iloc[0] not in GOOD:
        raise ValueError("a tornado chart needs the base scenario solved (a one-at-a-time sweep)")
    b = float(base[metric].iloc[0])
    paths = [p for p in df.attrs.get("vary", {}) if p in df]
    bars = []
    for p in paths:
        d = df[df[p].notna()].sort_values(p)
        y = _values(d, metric)
        if y.notna().sum() == 0:
            continue
        lo, hi = d.iloc[0], d.iloc[-1]
        bars.append((p, (y.iloc[0] - b), (y.iloc[-1] - b), lo[p], hi[p]))
    bars.sort(key=lambda x: max(abs(np.nan_to_num(x[1])), abs(np.nan_to_num(x[2]))))
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ys = np.arange(len(bars))
    low = [x[1] for x in bars]
    high = [x[2] for x in bars]
    ax.barh(ys, low, color="tab:red", label="lowest value")
    ax.barh(ys, high, color="tab:blue", alpha=0.8, label="highest value")
    ax.set_yticks(ys, [f"{p}\n({fmt_value(df, p, lo)} .. {fmt_value(df, p, hi)})" for p, _, _, lo, hi in bars])
    ax.axvline(0, color="black", linewidth=1)
    change = f"change of {metric_label(df, metric)} from the base"
    ax.set_xlabel(_axis(ax, df, metric, [*low, *high], axis="x", what=change))
    ax.set_title(f"Sensitivity of {metric} (one parameter at a time)")
    from .plots import _legend_below

    _legend_below(fig, [ax])
    return fig


def fmt_value(df: pd.DataFrame, path: str, v: float) -> str:
    """A varied value as a planner reads it: x0.8, +1y, $90B, 1,200."""
    kind = df.attrs.get("kinds", {}).get(path, "value")
    if kind == "factor":
        return f"x{v:g}"
    if kind == "shift":
        return f"{int(v):+d}y"
    if path.endswith("_usd"):
        return re.sub(r"\.00([kMBT]?)$", r"\1", fmt_usd(v)).replace("$", r"\$")  # \$: not mathtext
    return f"{v:,.6g}"


def plot_sweep(df: pd.DataFrame, directory: str | os.PathLike, metric: str = "objective") -> list[Path]:
    """The chart that fits the sweep: tornado (one at a time), line (one path) or heatmap (two paths).

    Writes ``sweep-<metric>.png`` (atomically) and returns its path; an empty
    list when no chart fits (a grid of more than two paths).
    """
    paths = list(df.attrs.get("vary", {}))
    if "base" in set(df.label) and len(paths) >= 1 and df.attrs.get("mode") == "one_at_a_time":
        fig = tornado_chart(df, metric) if len(paths) > 1 else line_chart(df[df.label != "base"], paths[0],
                                                                          metric)
    elif len(paths) == 1:
        fig = line_chart(df, paths[0], metric)
    elif len(paths) == 2:
        fig = heatmap_chart(df, paths[0], paths[1], metric)
    else:
        return []
    target = Path(directory) / f"sweep-{metric}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(target, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    finally:
        plt.close(fig)
    return [target]
