"""A plan in words and small HTML tables: its status said plainly, its main table, and a notebook view.

What a reader needs first is whether the plan can be trusted: :func:`status_sentence`
says it in words (a plan that is not proven optimal says so first).  :func:`by_year`
is the plan's year-by-year overview from its tables alone, and :func:`html_table` an
escaped HTML table whose numeric cells carry their raw value (``data-v``), so that
a page can sort them and a test can read them back.  :func:`plan_html` is what a
:class:`~optimizer.plan.Plan` shows in a notebook (``Plan._repr_html_``); the full
report page is :mod:`optimizer.report.html`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping

import pandas as pd

from ..solver import SolveStatus


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def usd(x) -> str:
    """$1.23B, $450.00M, $12k: money as a reader says it."""
    if _missing(x):
        return "-"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"${x / div:,.2f}{suffix}"
    return f"${x:,.0f}"


def number(x, digits: int = 0) -> str:
    """1,234 (or 1,234.5 with ``digits``); '-' for a missing value."""
    if _missing(x):
        return "-"
    return f"{x:,.{digits}f}"


def share(x, digits: int = 1) -> str:
    return "-" if _missing(x) else f"{x:.{digits}%}"


def objective_unit(inst) -> str:
    return "discounted PFLOP/s-years of training" if inst.objective.kind == "max_training" else "discounted USD"


def gap_text(gap: float) -> str:
    """A relative gap as a percentage, never rounded to a misleading 0.00%."""
    if gap <= 0:
        return "0%"
    return f"{gap:.2%}" if gap >= 5e-5 else "less than 0.01%"


def status_sentence(plan) -> str:
    """The plan's status in words, for the first line a reader sees: proven or not, and by how much."""
    s, gap = plan.status, plan.mip_gap
    if s is SolveStatus.OPTIMAL:
        within = f" within a gap of {gap_text(gap)}" if not _missing(gap) else ""
        return f"Proven optimal{within}: no plan of this instance is better by more than that."
    if s is SolveStatus.FEASIBLE:
        by = f"by up to {gap_text(gap)}" if not _missing(gap) else "by an amount the solver could not bound"
        return (f"Not proven optimal: this is the best plan found before the solver stopped (a time limit); "
                f"a better plan may exist, {by}.")
    words = {
        SolveStatus.NO_SOLUTION: "No plan: the solver found none before the time limit.",
        SolveStatus.INFEASIBLE: "No plan: the instance is infeasible (capplan explain FILE says why).",
        SolveStatus.UNBOUNDED: "No plan: the objective is unbounded (a budget or a power ceiling is missing).",
        SolveStatus.ERROR: "No plan: the solver failed.",
    }
    return words[s] + (f" {plan.message}" if plan.message else "")


def by_year(plan) -> pd.DataFrame:
    """One row per year (and scenario, for a plan under uncertainty): capacity against the ceiling, draw,
    spend, the training/inference split and unmet demand, from the plan's tables alone."""
    keys = ["scenario", "year"] if plan.stochastic else ["year"]
    fac = plan.facilities.groupby(keys)[["capacity_mw", "draw_mw"]].sum()
    comp = plan.compute.groupby(keys)[["demand_pflops", "served_pflops", "unmet_pflops"]].sum()
    spend = plan.spend.set_index(keys)[["total_usd", "cumulative_usd"]]
    split = plan.split.set_index(keys)[["train_pflops", "infer_pflops", "training_share"]]
    df = pd.concat([fac, spend, split, comp], axis=1).reset_index()
    df = df.rename(columns={"total_usd": "spend_usd", "cumulative_usd": "cumulative_spend_usd"})
    ceilings = {}
    for sid, inst in _instances(plan).items():
        ceiling = inst.power.ceiling_mw
        for t in inst.years:
            ceilings[sid, t] = ceiling[t] if ceiling is not None else math.nan
    sids = df.scenario if plan.stochastic else [None] * len(df)
    df.insert(df.columns.get_loc("capacity_mw") + 1, "ceiling_mw",
              [ceilings.get((s, int(t)), math.nan) for s, t in zip(sids, df.year)])
    if plan.stochastic:
        order = {s: i for i, s in enumerate(plan.scenarios.scenario)}
        df = df.sort_values(["scenario", "year"], key=lambda c: c.map(order) if c.name == "scenario" else c,
                            kind="stable").reset_index(drop=True)
    df["year"] = df.year.astype(int)
    return df


def _instances(plan) -> dict:
    """Each scenario's own instance (its own ceiling, budget, ...), keyed by scenario id (None: the plan's)."""
    if not plan.stochastic:
        return {None: plan.instance}
    return {s.id: s.instance for s in plan.instance.scenarios()}


Formatter = Callable[[object], str]


def html_table(df: pd.DataFrame, formats: Mapping[str, Formatter] | None = None, *, cls: str = "",
               labels: Mapping[str, str] | None = None, row_data: str | None = None,
               caption: str | None = None) -> str:
    """An escaped HTML table of ``df``; numeric cells carry ``data-v`` (their raw value) and class ``num``.

    ``formats`` maps a column to the function that writes its cells (default: a
    number with thousands separators); ``labels`` gives column headers;
    ``row_data`` names a column whose value each row carries as ``data-<name>``.
    """
    formats, labels = formats or {}, labels or {}
    out = [f'<table class="{html.escape(cls)}">' if cls else "<table>"]
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    numeric = {c: pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
               for c in df.columns}
    out.append("<thead><tr>" + "".join(
        f'<th{" class=num" if numeric[c] else ""} scope="col">{html.escape(str(labels.get(c, c)))}</th>'
        for c in df.columns) + "</tr></thead><tbody>")
    for row in df.itertuples(index=False):
        values = dict(zip(df.columns, row))
        attr = f' data-{row_data}="{html.escape(str(values[row_data]))}"' if row_data else ""
        cells = []
        for c, v in values.items():
            fmt = formats.get(c)
            if numeric[c]:
                raw = "" if _missing(v) else repr(float(v))
                text = fmt(v) if fmt else number(v, 0 if _missing(v) or float(v).is_integer() else 1)
                cells.append(f'<td class="num" data-v="{raw}">{html.escape(text)}</td>')
            else:
                text = fmt(v) if fmt else ("-" if _missing(v) else str(v))
                cells.append(f"<td>{html.escape(text)}</td>")
        out.append(f"<tr{attr}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


YEAR_FORMATS: dict[str, Formatter] = {
    "year": lambda v: str(int(v)),
    "spend_usd": usd, "cumulative_spend_usd": usd,
    "training_share": share,
}
YEAR_LABELS = {
    "capacity_mw": "capacity MW", "ceiling_mw": "ceiling MW", "draw_mw": "draw MW", "spend_usd": "spend",
    "cumulative_spend_usd": "cumulative spend", "train_pflops": "training PFLOP/s",
    "infer_pflops": "inference PFLOP/s", "training_share": "training share", "demand_pflops": "demand PFLOP/s",
    "served_pflops": "served PFLOP/s", "unmet_pflops": "unmet PFLOP/s",
}
COMMITMENT_FORMATS: dict[str, Formatter] = {"year": lambda v: str(int(v)), "mw": lambda v: number(v, 1)}


def headline(plan) -> list[tuple[str, str]]:
    """(label, value) pairs of the plan's key figures: objective, spend against the budget, peak capacity."""
    inst = plan.instance
    if not plan.status.has_plan:
        return []
    s = plan.summary.iloc[0]
    budget = inst.budget.total_usd
    tree = plan.stochastic
    spend = usd(s.total_spend_usd) + (f" of {usd(budget)} ({s.total_spend_usd / budget:.1%})" if budget else "")
    unmet = float(plan.compute.unmet_pflops.sum()) if len(plan.compute) else 0.0
    if tree and plan.scenarios is not None and len(plan.scenarios):
        unmet = float((plan.scenarios.probability * plan.scenarios.unmet_pflops_years).sum())
    return [
        ("objective" + (" (over the scenarios)" if tree else ""),
         f"{number(plan.objective)} {objective_unit(inst)}"),
        ("expected spend" if tree else "spend", spend),
        ("peak facility capacity" + (" (largest scenario)" if tree else ""), f"{number(s.peak_capacity_mw)} MW"),
        ("unmet inference demand" + (" (expected)" if tree else ""), f"{number(unmet)} PFLOP/s-years"),
    ]


def plan_html(plan) -> str:
    """A compact notebook view: the status in words, the key figures and the plan's main table
    (the years; under uncertainty what to commit now and the scenarios)."""
    inst = plan.instance
    esc = html.escape
    parts = [f"<div><p><b>{esc(inst.name)}</b> ({inst.start}-{inst.end}, {esc(inst.objective.kind)}): "
             f"{esc(status_sentence(plan))}</p>"]
    figures = headline(plan)
    if figures:
        parts.append("<p>" + " &middot; ".join(f"{esc(k)}: <b>{esc(v)}</b>" for k, v in figures) + "</p>")
    if plan.status.has_plan and plan.stochastic:
        c = plan.commitments
        if c is not None and len(c):
            parts.append(html_table(c, COMMITMENT_FORMATS, caption="What to commit now (shared by every scenario)"))
        else:
            parts.append("<p>Nothing to commit now: every decision can wait for the first stage.</p>")
        sc = plan.scenarios[["scenario", "probability", "objective", "total_spend_usd", "unmet_pflops_years",
                             "peak_capacity_mw", "regret"]]
        parts.append(html_table(sc, {"probability": lambda v: f"{v:.3g}", "total_spend_usd": usd},
                                caption="Scenarios"))
    elif plan.status.has_plan:
        cols = ["year", "capacity_mw", "ceiling_mw", "draw_mw", "spend_usd", "train_pflops", "infer_pflops",
                "training_share", "unmet_pflops"]
        parts.append(html_table(by_year(plan)[cols], YEAR_FORMATS, labels=YEAR_LABELS, caption="By year"))
    parts.append("</div>")
    return "".join(parts)
