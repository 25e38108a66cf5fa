"""Interactive charts of the report page, as Vega-Lite specifications built with Altair.

Each function takes plain tables and returns a Vega-Lite spec (a dict, data
inlined) for one chart; :func:`javascript` is the Vega, Vega-Lite and
vega-embed bundle that the page inlines, so that it draws them with no network
access.  Vega-Lite rather than Plotly: the bundle is 0.9 MB against Plotly's
4.8 MB, and a page of six charts renders in about half the time (README,
"Report page").

Charts of a plan under uncertainty filter on a ``scenario`` parameter, which
the page's scenario selector sets on every chart at once.
"""

from __future__ import annotations

import functools

import altair as alt
import numpy as np
import pandas as pd

# colours that stay apart for readers with the common colour-vision deficiencies (Tableau 10)
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac"]
LIMIT = "#d62728"  # ceilings, budgets, unmet demand
HEIGHT = 260


@functools.cache
def javascript() -> str:
    """The Vega, Vega-Lite and vega-embed bundle (window.vegaEmbed) matching Altair's Vega-Lite version."""
    import vl_convert
    from altair.utils._importers import vl_version_for_vl_convert

    return vl_convert.javascript_bundle(vl_version=vl_version_for_vl_convert())


def _spec(chart) -> dict:
    spec = chart.to_dict()
    spec.setdefault("config", {}).update({
        "font": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
        "view": {"stroke": None},
        "axis": {"labelFontSize": 12, "titleFontSize": 12, "grid": True, "gridOpacity": 0.35},
        "legend": {"labelFontSize": 12, "titleFontSize": 12, "orient": "bottom", "direction": "horizontal",
                   "labelLimit": 320, "titleLimit": 480, "columns": 4},
        "title": {"fontSize": 14, "anchor": "start", "subtitleFontSize": 12, "subtitleColor": "#555"},
        "range": {"category": PALETTE},
    })
    return spec


def _base(data: pd.DataFrame, scenario: str | None):
    """A chart of ``data`` filtered on the page's scenario (a plan under uncertainty) or not."""
    chart = alt.Chart(data)
    if scenario is not None:
        chart = chart.transform_filter("datum.scenario == scenario")
    return chart


def _finish(chart, scenario: str | None, title: str, subtitle: str | list[str] = ""):
    if scenario is not None:
        chart = chart.add_params(alt.param(name="scenario", value=scenario))
    return _spec(chart.properties(width="container", height=HEIGHT,
                                  title=alt.Title(title, subtitle=subtitle or alt.Undefined)))


YEAR = alt.X("year:O", title=None, axis=alt.Axis(labelAngle=0))


def money_unit(top: float) -> tuple[float, str]:
    """The divisor and axis title that keep money axes readable: billion, million or plain USD."""
    for div, unit in ((1e9, "billion USD"), (1e6, "million USD")):
        if abs(top) >= div:
            return div, unit
    return 1.0, "USD"


def compute_unit(top: float) -> tuple[float, str]:
    return (1e3, "thousand PFLOP/s") if abs(top) >= 1e4 else (1.0, "PFLOP/s")


def capacity(fac: pd.DataFrame, years: pd.DataFrame, scenario: str | None = None) -> dict:
    """Facility MW by region (stacked bars), total draw, and the power ceiling.

    ``fac``: year, region, capacity_mw, draw_mw (and scenario); ``years``: year,
    draw_mw, ceiling_mw (and scenario).
    """
    bars = _base(fac, scenario).mark_bar().encode(
        x=YEAR, y=alt.Y("sum(capacity_mw):Q", title="facility MW"),
        color=alt.Color("region:N", title="capacity by region"),
        tooltip=[alt.Tooltip("year:O"), alt.Tooltip("region:N"),
                 alt.Tooltip("capacity_mw:Q", title="capacity MW", format=",.0f"),
                 alt.Tooltip("draw_mw:Q", title="draw MW", format=",.0f")])
    lines = _base(years, scenario).transform_fold(["draw_mw", "ceiling_mw"], as_=["series", "mw"]).transform_filter(
        "isValid(datum.mw)").transform_calculate(
        line="datum.series == 'draw_mw' ? 'total draw' : 'power ceiling'").mark_line(point=True).encode(
        x=YEAR, y=alt.Y("mw:Q"),
        color=alt.Color("line:N", title=None, scale=alt.Scale(domain=["total draw", "power ceiling"],
                                                              range=["#222222", LIMIT]),
                        legend=alt.Legend(orient="top", direction="horizontal")),
        strokeDash=alt.StrokeDash("line:N", legend=None, scale=alt.Scale(domain=["total draw", "power ceiling"],
                                                                         range=[[1, 0], [6, 4]])),
        tooltip=[alt.Tooltip("year:O"), alt.Tooltip("line:N", title="series"),
                 alt.Tooltip("mw:Q", title="MW", format=",.0f")])
    chart = alt.layer(bars, lines).resolve_scale(color="independent")
    return _finish(chart, scenario, "Capacity against the power ceiling",
                   "facility MW online by region; the line is what the chips draw")


SPEND_PARTS = {"chip_capex_usd": "chips", "facility_capex_usd": "campus blocks", "energy_usd": "energy",
               "opex_usd": "chip opex"}


def spend(spend_table: pd.DataFrame, budget_usd: float | None, scenario: str | None = None) -> dict:
    """Spend per year by component (stacked bars, $B) and the cumulative spend against the total budget."""
    keys = ["scenario", "year"] if scenario is not None else ["year"]
    long = spend_table.melt(id_vars=keys, value_vars=list(SPEND_PARTS), var_name="part", value_name="usd")
    div, unit = money_unit(float(spend_table.cumulative_usd.max()))
    long["rank"] = long.part.map({k: i for i, k in enumerate(SPEND_PARTS)})
    long["part"] = long.part.map(SPEND_PARTS)
    long["busd"] = long.usd / div
    bars = _base(long, scenario).mark_bar().encode(
        x=YEAR, y=alt.Y("sum(busd):Q", title=unit),
        color=alt.Color("part:N", title="spend per year", sort=list(SPEND_PARTS.values())),
        order=alt.Order("rank:Q"),
        tooltip=[alt.Tooltip("year:O"), alt.Tooltip("part:N", title="component"),
                 alt.Tooltip("busd:Q", title=unit, format=",.2f")])
    cum = spend_table[keys + ["cumulative_usd"]].assign(busd=lambda d: d.cumulative_usd / div, line="cumulative")
    line = _base(cum, scenario).mark_line(point=True, color="#222222").encode(
        x=YEAR, y="busd:Q", tooltip=[alt.Tooltip("year:O"), alt.Tooltip("busd:Q", title=f"cumulative, {unit}",
                                                                          format=",.2f")])
    layers = [bars, line]
    if budget_usd:
        rule = alt.Chart(pd.DataFrame({"busd": [budget_usd / div], "what": ["total budget"]})).mark_rule(
            color=LIMIT, strokeDash=[6, 4], size=2).encode(
            y="busd:Q", tooltip=[alt.Tooltip("what:N", title=" "), alt.Tooltip("busd:Q", title=unit, format=",.2f")])
        layers.append(rule)
    subtitle = "bars: spend per year; line: cumulative" + ("; dashed: the total budget" if budget_usd else "")
    return _finish(alt.layer(*layers), scenario, "Spend against the budget", subtitle)


def split(split_table: pd.DataFrame, scenario: str | None = None) -> dict:
    """Effective training and inference capacity per year (stacked, thousand PFLOP/s), the share in the tooltip."""
    keys = ["scenario", "year"] if scenario is not None else ["year"]
    long = split_table.melt(id_vars=keys + ["training_share"], value_vars=["train_pflops", "infer_pflops"],
                            var_name="use", value_name="pflops")
    long["rank"] = long.use.map({"train_pflops": 0, "infer_pflops": 1})
    long["use"] = long.use.map({"train_pflops": "training", "infer_pflops": "inference"})
    div, unit = compute_unit(float(split_table.train_pflops.max() + split_table.infer_pflops.max()))
    long["kpflops"] = long.pflops / div
    chart = _base(long, scenario).mark_bar().encode(
        x=YEAR, y=alt.Y("sum(kpflops):Q", title=unit),
        color=alt.Color("use:N", title=None, sort=["training", "inference"],
                        scale=alt.Scale(domain=["training", "inference"], range=[PALETTE[0], PALETTE[1]])),
        order=alt.Order("rank:Q"),
        tooltip=[alt.Tooltip("year:O"), alt.Tooltip("use:N"),
                 alt.Tooltip("pflops:Q", title="PFLOP/s", format=",.0f"),
                 alt.Tooltip("training_share:Q", title="training share", format=".1%")])
    return _finish(chart, scenario, "Training and inference", "effective compute the fleet gives each use")


def demand(years: pd.DataFrame, scenario: str | None = None) -> dict:
    """Inference demand per year: served (bars) and unmet (red, stacked on top), thousand PFLOP/s."""
    keys = ["scenario", "year"] if scenario is not None else ["year"]
    long = years.melt(id_vars=keys + ["demand_pflops"], value_vars=["served_pflops", "unmet_pflops"],
                      var_name="part", value_name="pflops")
    long["rank"] = long.part.map({"served_pflops": 0, "unmet_pflops": 1})
    long["part"] = long.part.map({"served_pflops": "served", "unmet_pflops": "unmet"})
    div, unit = compute_unit(float(years.demand_pflops.max()))
    long["kpflops"] = long.pflops / div
    chart = _base(long, scenario).mark_bar().encode(
        x=YEAR, y=alt.Y("sum(kpflops):Q", title=unit),
        color=alt.Color("part:N", title=None, scale=alt.Scale(domain=["served", "unmet"],
                                                              range=[PALETTE[4], LIMIT])),
        order=alt.Order("rank:Q"),
        tooltip=[alt.Tooltip("year:O"), alt.Tooltip("part:N"),
                 alt.Tooltip("pflops:Q", title="PFLOP/s", format=",.0f"),
                 alt.Tooltip("demand_pflops:Q", title="demand PFLOP/s", format=",.0f")])
    return _finish(chart, scenario, "Inference demand: served and unmet", "all regions")


def commitments(c: pd.DataFrame, regions: list[str]) -> dict:
    """What is signed now: facility MW by region, stacked by item (chips draw, blocks bring online)."""
    d = c.assign(what=c["item"].map(lambda i: "campus blocks (MW online)" if i == "blocks" else f"{i} (MW drawn)"))
    chart = alt.Chart(d).mark_bar().encode(
        x=alt.X("region:N", sort=regions, title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("sum(mw):Q", title="facility MW"),
        color=alt.Color("what:N", title=None),
        tooltip=[alt.Tooltip("year:O"), alt.Tooltip("region:N"), alt.Tooltip("item:N"),
                 alt.Tooltip("quantity:Q", format=",.0f"), alt.Tooltip("chips:Q", format=",.0f"),
                 alt.Tooltip("mw:Q", title="MW", format=",.1f")])
    return _finish(chart, None, "Commitments by region", "MW the chips bought now draw, and MW the blocks bring online")


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs) -> list[float]:
    """Quantiles of a discrete distribution: the smallest value whose cumulative probability reaches q."""
    order = np.argsort(values, kind="stable")
    v, w = np.asarray(values, float)[order], np.asarray(weights, float)[order]
    cum = np.cumsum(w) / w.sum()
    return [float(v[min(np.searchsorted(cum, q - 1e-12), len(v) - 1)]) for q in qs]


BANDS = ((0.1, 0.9), (0.25, 0.75))


def fan(per: pd.DataFrame, value: str, probability: dict[str, float], first_stage: int, *, title: str,
        axis: str, limit: pd.DataFrame | None = None, limit_label: str = "", fmt: str = ",.0f") -> dict:
    """A fan chart: probability-weighted quantile bands (10-90%, 25-75%) and the median of ``value`` over the
    scenarios, each scenario's own line, the years decided now shaded; ``per`` has scenario, year, value."""
    rows = []
    for year, g in per.groupby("year"):
        w = g.scenario.map(probability).to_numpy()
        q10, q25, q50, q75, q90 = weighted_quantiles(g[value].to_numpy(), w, (0.1, 0.25, 0.5, 0.75, 0.9))
        rows.append({"year": int(year), "q10": q10, "q25": q25, "median": q50, "q75": q75, "q90": q90})
    bands = pd.DataFrame(rows)
    years = sorted(bands.year)
    scale = alt.Scale(domain=[years[0] - 0.3, years[-1] + 0.3], nice=False, zero=False)
    xaxis = alt.Axis(format="d", values=[int(y) for y in years], labelAngle=0)
    x = alt.X("year:Q", title=None, scale=scale, axis=xaxis)
    layers = []
    if first_stage > years[0]:
        shade = pd.DataFrame({"start": [years[0] - 0.3], "end": [first_stage - 0.5],
                              "what": [f"decided now ({years[0]}-{first_stage - 1}), shared by every scenario"
                                       if first_stage - 1 > years[0] else
                                       f"decided now ({years[0]}), shared by every scenario"]})
        layers.append(alt.Chart(shade).mark_rect(color="#888888", opacity=0.15).encode(
            x=alt.X("start:Q", title=None, scale=scale, axis=xaxis), x2="end:Q",
            tooltip=[alt.Tooltip("what:N", title=" ")]))
    tip = [alt.Tooltip("year:O")] + [alt.Tooltip(f"{c}:Q", format=fmt, title=t) for c, t in (
        ("q10", "10%"), ("q25", "25%"), ("median", "median"), ("q75", "75%"), ("q90", "90%"))]
    base = alt.Chart(bands)
    layers += [
        base.mark_area(color=PALETTE[0], opacity=0.18).encode(x=x, y=alt.Y("q10:Q", title=axis), y2="q90:Q",
                                                              tooltip=tip),
        base.mark_area(color=PALETTE[0], opacity=0.32).encode(x=x, y="q25:Q", y2="q75:Q", tooltip=tip),
    ]
    lines = per.assign(probability=per.scenario.map(probability))
    layers.append(alt.Chart(lines).mark_line(strokeWidth=1, opacity=0.55, color="#555555").encode(
        x=x, y=f"{value}:Q", detail="scenario:N",
        tooltip=[alt.Tooltip("scenario:N"), alt.Tooltip("probability:Q", format=".3g"), alt.Tooltip("year:O"),
                 alt.Tooltip(f"{value}:Q", title=axis, format=fmt)]))
    layers.append(base.mark_line(color=PALETTE[0], strokeWidth=3, point=True).encode(x=x, y="median:Q",
                                                                                    tooltip=tip))
    if limit is not None and len(limit):
        layers.append(alt.Chart(limit.assign(what=limit_label)).mark_line(color=LIMIT, strokeDash=[6, 4]).encode(
            x=x, y="limit:Q", tooltip=[alt.Tooltip("what:N", title=" "), alt.Tooltip("year:O"),
                                       alt.Tooltip("limit:Q", format=fmt, title=axis)]))
    subtitle = ["bands: 10-90% and 25-75% of the probability; thick line: median; thin: each scenario",
                "grey: decided now" + (f"; dashed: {limit_label}" if limit is not None and len(limit) else "")]
    return _finish(alt.layer(*layers), None, title, subtitle)


def strip(df: pd.DataFrame, value: str, group: str, weight: str, *, title: str, axis: str, money: bool) -> dict:
    """Each row a dot (size by weight) in its group's column: how the realised objectives spread by policy;
    infinite values (infeasible paths) are left out and counted in the subtitle."""
    finite = df[np.isfinite(df[value].astype(float))]
    div, unit = money_unit(float(finite[value].abs().max()) if len(finite) else 1.0) if money else (1.0, axis)
    data = finite.assign(shown=finite[value].astype(float) / div)
    order = list(dict.fromkeys(df[group]))
    chart = alt.Chart(data).mark_circle(opacity=0.55, stroke="#333333", strokeWidth=0.5).encode(
        x=alt.X(f"{group}:N", title=None, sort=order, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("shown:Q", title=unit if money else axis, scale=alt.Scale(zero=False)),
        size=alt.Size(f"{weight}:Q", legend=None, scale=alt.Scale(range=[30, 600])),
        color=alt.Color(f"{group}:N", legend=None, sort=order, scale=alt.Scale(range=PALETTE)),
        tooltip=[alt.Tooltip(f"{group}:N"), alt.Tooltip("path:N"), alt.Tooltip(f"{weight}:Q", format=".3g"),
                 alt.Tooltip("shown:Q", title=unit if money else axis, format=",.4~f" if money else ",.0f")],
    )
    bad = int((~np.isfinite(df[value].astype(float))).sum())
    subtitle = "a dot per path, its size by weight" + (f"; {bad} infeasible not shown" if bad else "")
    return _finish(chart, None, title, subtitle)


def marginals(b: pd.DataFrame) -> dict:
    """The binding constraints' marginal values (horizontal bars), largest first; ``b`` has label, marginal,
    family, unit."""
    chart = alt.Chart(b).mark_bar().encode(
        y=alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=420)),
        x=alt.X("marginal:Q", title="objective change per unit of the limit"),
        color=alt.Color("family:N", title="constraint"),
        tooltip=[alt.Tooltip("label:N", title="constraint"), alt.Tooltip("marginal:Q", format=",.4g"),
                 alt.Tooltip("unit:N")])
    return _spec(chart.properties(width="container", height=max(120, 22 * len(b)),
                                  title=alt.Title("What one more unit of each binding limit is worth",
                                                  subtitle="local prices of the plan's LP with its blocks fixed")))


def ranges(t: pd.DataFrame, unit: str, label: str) -> dict:
    """Near-optimal ranges of one unit's aggregates: a bar from min to max (green: robust), the optimum marked,
    the bounds of an unproven range as ticks."""
    d = t[t["unit"] == unit].assign(name=lambda x: x["aggregate"].str.split(".", n=1).str[1],
                                    kind=lambda x: np.where(x.robust, "robust (range within 5%)",
                                                            "free to choose"))
    y = alt.Y("name:N", sort=None, title=None)
    tip = [alt.Tooltip("aggregate:N"), alt.Tooltip("optimal:Q", format=",.0f"), alt.Tooltip("min:Q", format=",.0f"),
           alt.Tooltip("max:Q", format=",.0f"), alt.Tooltip("status:N")]
    color = alt.Color("kind:N", title=None, scale=alt.Scale(domain=["robust (range within 5%)", "free to choose"],
                                                            range=[PALETTE[2], PALETTE[1]]))
    layers = [alt.Chart(d).mark_bar(height=14, opacity=0.85).encode(y=y, x=alt.X("min:Q", title=label),
                                                                     x2="max:Q", color=color, tooltip=tip),
              alt.Chart(d).mark_tick(thickness=3, size=18).encode(y=y, x="min:Q", color=color, tooltip=tip),
              alt.Chart(d).mark_tick(thickness=3, size=18).encode(y=y, x="max:Q", color=color, tooltip=tip),
              alt.Chart(d).mark_point(shape="diamond", filled=True, size=90, color="#222222").encode(
                  y=y, x="optimal:Q", tooltip=tip)]
    unproven = d[d.status != "optimal"]
    if len(unproven):
        b = unproven.melt(id_vars=["name", "aggregate"], value_vars=["min_bound", "max_bound"], value_name="bound")
        layers.append(alt.Chart(b).mark_tick(color=LIMIT, thickness=2, size=20).encode(
            y=y, x="bound:Q", tooltip=[alt.Tooltip("aggregate:N"), alt.Tooltip("bound:Q", format=",.0f",
                                                                              title="bound (not proven)")]))
    return _spec(alt.layer(*layers).properties(
        width="container", height=max(90, 34 * len(d)),
        title=alt.Title(f"Near-optimal range: {label}", subtitle="bar: min to max over the near-optimal plans; "
                        "diamond: the optimal plan")))


def sweep_line(df: pd.DataFrame, metrics: dict[str, str], title: str, xlabel: str,
               color_title: str | None = None) -> dict:
    """A KPI against one varied path, with a KPI selector under the chart.

    ``df`` has ``x`` (the path's value, scaled for its axis), ``label`` and
    ``status`` of each scenario, the metric columns and, to draw a line per
    value of a second path, ``c`` (its value) and ``c_label``.
    """
    color = "c" in df
    keep = ["x", "label", "status"] + (["c", "c_label"] if color else []) + list(metrics)
    long = df[keep].melt(id_vars=[c for c in keep if c not in metrics], var_name="metric", value_name="value")
    long["metric"] = long.metric.map(metrics)
    pick = alt.param(name="metric", value=next(iter(metrics.values())),
                     bind=alt.binding_select(options=list(metrics.values()), name="KPI "))
    enc = dict(x=alt.X("x:Q", title=xlabel, scale=alt.Scale(zero=False)),
               y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
               tooltip=[alt.Tooltip("label:N", title="scenario"), alt.Tooltip("status:N"),
                        alt.Tooltip("metric:N"), alt.Tooltip("value:Q", format=",.4g")])
    if color:
        order = list(dict.fromkeys(long.sort_values("c").c_label))
        enc["color"] = alt.Color("c_label:N", title=color_title, sort=order,
                                 scale=alt.Scale(scheme="viridis") if len(order) > 2 else alt.Undefined)
    chart = alt.Chart(long).transform_filter("datum.metric == metric").mark_line(point=True).encode(**enc)
    return _spec(chart.add_params(pick).properties(width="container", height=HEIGHT,
                                                   title=alt.Title(title, subtitle="choose the KPI below the chart")))


def sweep_heatmap(df: pd.DataFrame, metric: str, label: str, row_title: str, col_title: str) -> dict:
    """A KPI over the grid of two varied paths (blank where a scenario has no plan); ``df`` has ``row`` and
    ``col`` (numbers, for the order), ``row_label`` and ``col_label``."""
    d = df.assign(value=df[metric].where(df.status.isin(["optimal", "feasible"])))
    cols = list(dict.fromkeys(d.sort_values("col").col_label))
    rows = list(dict.fromkeys(d.sort_values("row", ascending=False).row_label))
    chart = alt.Chart(d).mark_rect().encode(
        x=alt.X("col_label:O", title=col_title, sort=cols, axis=alt.Axis(labelAngle=0, grid=False)),
        y=alt.Y("row_label:O", title=row_title, sort=rows, axis=alt.Axis(grid=False)),
        color=alt.Color("value:Q", title=label, scale=alt.Scale(scheme="viridis"),
                        legend=alt.Legend(orient="right", direction="vertical", gradientLength=180)),
        tooltip=[alt.Tooltip("label:N", title="scenario"), alt.Tooltip("status:N"),
                 alt.Tooltip("value:Q", title=label, format=",.4g")])
    return _spec(chart.properties(width="container", height=HEIGHT,
                                  title=alt.Title(f"{label} over the grid", subtitle=f"{row_title} by {col_title}")))
