"""Charts of a sweep table (PNG, slide size): tornado (one at a time), line (one path), heatmap (two)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from ..files import atomic_write
from .plots import DPI, FIGSIZE, plt

METRIC_LABELS = {
    "objective": "objective",
    "total_spend_usd": "total spend (USD)",
    "peak_capacity_mw": "peak facility capacity (MW)",
    "training_share": "training share of compute",
    "training_pflops_years": "training compute (PFLOP/s-years)",
    "unmet_pflops_years": "unmet inference demand (PFLOP/s-years)",
}
GOOD = ("optimal", "feasible")


def metric_label(df: pd.DataFrame, metric: str) -> str:
    if metric == "objective":
        return f"objective ({df.attrs.get('objective_unit', 'objective units')})"
    return METRIC_LABELS.get(metric, metric)


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
    ax.set_ylabel(metric_label(df, metric))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_value(df, path, v)))
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax.set_title(f"{metric_label(df, metric)} by {path}")
    ax.legend(loc="best")
    fig.tight_layout()
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
    if data.size <= 400:
        for i in range(data.shape[0]):
            for j in range(data.shape[1]):
                v = data[i, j]
                text = "no plan" if not math.isfinite(v) else f"{v:,.3g}"
                ax.text(j, i, text, ha="center", va="center", fontsize=11,
                        color="white" if math.isfinite(v) and v < mid else "black")
    fig.colorbar(im, ax=ax, label=metric_label(df, metric))
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
    ax.xaxis.set_major_formatter(_THOUSANDS)
    ax.axvline(0, color="black", linewidth=1)
    ax.set_xlabel(f"change of {metric_label(df, metric)} from the base ({b:,.4g})")
    ax.set_title(f"Sensitivity of {metric} (one parameter at a time)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def fmt_value(df: pd.DataFrame, path: str, v: float) -> str:
    """A varied value as a planner reads it: x0.8, +1y, $90B, 1,200."""
    kind = df.attrs.get("kinds", {}).get(path, "value")
    if kind == "factor":
        return f"x{v:g}"
    if kind == "shift":
        return f"{int(v):+d}y"
    if path.endswith("_usd"):
        return rf"\${v / 1e9:,.4g}B" if abs(v) >= 1e8 else rf"\${v:,.6g}"  # \$: not mathtext
    return f"{v:,.6g}"


_THOUSANDS = FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.6g}")


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
