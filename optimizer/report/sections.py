"""The sections of the report page, one function per question a planner asks of one kind of result.

A plan: what to commit now (:func:`decision`), the plan by year (:func:`by_year`),
what binds and what more budget or power is worth (:func:`binding`) and, under
uncertainty, the scenarios (:func:`scenarios`).  Near-optimal ranges
(:func:`ranges`) and sweep curves (:func:`sweep_curves`, :func:`sweep_table`)
serve the other kinds of result.  Each returns a :class:`Section`: HTML
blocks and Vega-Lite charts, assembled into a page by :mod:`optimizer.report.html`.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import pandas as pd

from ..plan import Plan
from ..plan.display import (
    COMMITMENT_FORMATS,
    YEAR_FORMATS,
    YEAR_LABELS,
    html_table,
    number,
    objective_unit,
    share,
    usd,
)
from ..plan.display import by_year as year_table
from ..plan.tables import commitments_table
from . import vega


@dataclass
class Charts:
    """A row of charts (one spans the page, two share it)."""

    specs: list[dict]


@dataclass
class Section:
    """One part of the page: an anchor id, a heading and its blocks (HTML text or a row of charts)."""

    id: str
    title: str
    blocks: list[str | Charts] = field(default_factory=list)


esc = html.escape


def p(text: str) -> str:
    return f"<p>{esc(text)}</p>"


def table(df: pd.DataFrame, formats=None, *, labels=None, caption: str | None = None, row_data: str | None = None,
          scroll: bool = False) -> str:
    """A sortable table (click a header), scrolled inside its box when long."""
    t = html_table(df, formats, cls="sortable", labels=labels, caption=caption, row_data=row_data)
    return f'<div class="table{" scroll" if scroll or len(df) > 14 else ""}">{t}</div>'


def _years_text(inst, years) -> str:
    years = sorted(years)
    return str(years[0]) if len(years) == 1 else f"{years[0]}-{years[-1]}"


def _effect(inst, value: float) -> str:
    """An objective change in words: training gained or lost (max_training), cost saved or added (min_cost)."""
    if inst.objective.kind == "max_training":
        return (f"{'adds' if value >= 0 else 'costs'} {number(abs(value))} discounted PFLOP/s-years of training")
    return f"{'saves' if value <= 0 else 'adds'} {usd(abs(value))} of discounted cost"


# --------------------------------------------------------------------------- a plan


def decision(plan: Plan) -> Section:
    """What to sign now: the decisions shared by every scenario (a tree), or the first year's (a plan)."""
    inst = plan.instance
    s = Section("decision", "The decision now")
    if plan.stochastic:
        first = inst.tree.first_stage_year
        years = [t for t in inst.years if t < first]
        names = [st.name for st in inst.uncertainty.stages if st.name]
        revealed = " and ".join(names) if names else "the first uncertainty"
        c = plan.commitments
        s.blocks.append(p(f"What to commit in {_years_text(inst, years)}, before {revealed} is known "
                          f"(revealed from {first}): these decisions are the same in every scenario."))
    else:
        years = [inst.start]
        c = commitments_table(inst, plan.purchases, plan.facilities, years)
        s.blocks.append(p(f"What the plan signs in {inst.start}, its first year; the later years are the plan as "
                          "it stands today and are decided when they come."))
    s.blocks.append(p(_commitment_words(c)))
    if len(c):
        s.blocks.append(Charts([vega.commitments(c, list(inst.regions))]))
        s.blocks.append(table(c, COMMITMENT_FORMATS, labels={"mw": "MW"}, caption="Commitments"))
    base = plan.base_commitments
    if plan.stochastic and base is not None and len(base):
        s.blocks.append(p("For comparison, a plan made for the base forecast alone would commit: "
                          + _commitment_words(base, lead="") + "."))
    return s


def _commitment_words(c: pd.DataFrame, lead: str = "In short: ") -> str:
    if not len(c):
        return "Nothing to commit now: every decision can wait."
    parts = []
    chips = c[c["item"] != "blocks"].groupby(["item", "region"], sort=False)[["chips", "mw"]].sum()
    for (item, region), r in chips.iterrows():
        parts.append(f"buy {number(r.chips)} {item} chips in {region} ({number(r.mw)} MW)")
    blocks = c[c["item"] == "blocks"].groupby("region", sort=False)[["quantity", "mw"]].sum()
    for region, r in blocks.iterrows():
        parts.append(f"start {number(r.quantity)} campus block{'s' if r.quantity != 1 else ''} in {region} "
                     f"({number(r.mw)} MW)")
    return lead + "; ".join(parts)


def by_year(plan: Plan) -> Section:
    """Capacity against the ceiling, spend against the budget, the training/inference split and unmet demand."""
    inst = plan.instance
    s = Section("by-year", "The plan by year")
    years = year_table(plan)
    sid = None
    if plan.stochastic:
        sc = plan.scenarios
        sid = str(sc.scenario.iloc[int(sc.probability.to_numpy().argmax())])
        options = "".join(f'<option value="{esc(str(x))}"{" selected" if str(x) == sid else ""}>{esc(str(x))} '
                          f"(p {pr:.3g})</option>" for x, pr in zip(sc.scenario, sc.probability))
        s.blocks.append('<p class="picker"><label>Scenario: <select id="scenario-select">' + options
                        + "</select></label> Each scenario has its own plan after the decision now; the charts "
                        "and tables of this section show the one chosen (the most probable first).</p>")
    keys = ["scenario", "year"] if plan.stochastic else ["year"]
    fac = plan.facilities[keys + ["region", "capacity_mw", "draw_mw"]]
    s.blocks.append(Charts([vega.capacity(fac, years[keys + ["draw_mw", "ceiling_mw"]], sid),
                            vega.spend(plan.spend, inst.budget.total_usd, sid)]))
    demand = years.demand_pflops.abs().sum() > 0
    s.blocks.append(Charts([vega.split(plan.split, sid)] + ([vega.demand(years, sid)] if demand else [])))
    if plan.stochastic:
        s.blocks += [f'<p data-scenario="{esc(str(x))}">{esc(_year_words(plan, years, str(x)))}</p>'
                     for x in plan.scenarios.scenario]
    else:
        s.blocks.append(p(_year_words(plan, years, None)))
    cols = [*keys, "capacity_mw", "ceiling_mw", "draw_mw", "spend_usd", "cumulative_spend_usd", "train_pflops",
            "infer_pflops", "training_share", "demand_pflops", "unmet_pflops"]
    s.blocks.append(table(years[cols], YEAR_FORMATS, labels=YEAR_LABELS, caption="By year",
                          row_data="scenario" if plan.stochastic else None))
    bought = _purchases(plan)
    if len(bought):
        s.blocks.append(table(bought, {"year": lambda v: str(int(v))},
                              caption="Chips bought (chip in region) and campus blocks started",
                              row_data="scenario" if plan.stochastic else None))
    return s


def _year_words(plan: Plan, years: pd.DataFrame, sid: str | None) -> str:
    inst = plan.instance
    y = years[years.scenario == sid] if sid is not None else years
    peak = y.loc[y.capacity_mw.idxmax()]
    words = [f"Capacity peaks at {number(peak.capacity_mw)} MW in {int(peak.year)}"
             + (f" (ceiling {number(peak.ceiling_mw)} MW)." if not math.isnan(peak.ceiling_mw) else ".")]
    total = float(y.spend_usd.sum())
    budget = (next(s.instance for s in inst.scenarios() if s.id == sid) if sid is not None else inst).budget.total_usd
    words.append(f"Spend totals {usd(total)}" + (f", {total / budget:.1%} of the {usd(budget)} budget." if budget
                                                 else " (no total budget)."))
    train, infer = float(y.train_pflops.sum()), float(y.infer_pflops.sum())
    if train + infer > 0:
        words.append(f"Training takes {share(train / (train + infer))} of the compute over the horizon.")
    unmet = y[y.unmet_pflops > 1e-6]
    if len(unmet):
        worst = unmet.loc[unmet.unmet_pflops.idxmax()]
        words.append(f"Inference demand goes unmet in {len(unmet)} year{'s' if len(unmet) > 1 else ''}, most in "
                     f"{int(worst.year)} ({number(worst.unmet_pflops)} of {number(worst.demand_pflops)} PFLOP/s).")
    else:
        words.append("All inference demand is served.")
    if sid is not None:
        words.insert(0, f"Scenario {sid}:")
    return " ".join(words)


def _purchases(plan: Plan) -> pd.DataFrame:
    """Chips bought per year, one column per chip in region, and blocks started per region (a column each)."""
    keys = ["scenario", "year"] if plan.stochastic else ["year"]
    pur = plan.purchases
    parts = []
    if len(pur):
        parts.append(pur.assign(where=pur.chip + " in " + pur.region).pivot_table(
            index=keys, columns="where", values="chips", aggfunc="sum", fill_value=0))
    fac = plan.facilities[plan.facilities.blocks_started > 0]
    if len(fac):
        parts.append(fac.assign(where="blocks in " + fac.region).pivot_table(
            index=keys, columns="where", values="blocks_started", aggfunc="sum", fill_value=0))
    if not parts:
        return pd.DataFrame()
    wide = pd.concat(parts, axis=1).fillna(0)
    wide.columns.name = None
    wide = wide.reset_index()
    if plan.stochastic:
        order = {x: i for i, x in enumerate(plan.scenarios.scenario)}
        wide = wide.sort_values(["scenario", "year"], key=lambda c: c.map(order) if c.name == "scenario" else c)
    return wide.reset_index(drop=True)


FAMILY_WORDS = {
    "budget": "the total budget", "budget_annual": "the annual spending cap", "ceiling": "the power ceiling",
    "facility": "facility capacity", "region_max": "a region's maximum MW", "supply": "chip supply",
    "demand": "inference demand", "training": "the training floor", "frontier": "the frontier cluster",
}


def binding(plan: Plan, marginals: pd.DataFrame | None) -> Section:
    """What binds, and what one more $1B or 100 MW is worth (local prices of the fixed-block LP)."""
    inst = plan.instance
    s = Section("binding", "What binds, and what more is worth")
    if marginals is None or not len(marginals):
        s.blocks.append(p("Marginal values are not available for this plan: they come from the solved model, "
                          "so solve it with capplan report FILE, or write the plan directory with capplan solve "
                          "--out (it stores marginals.csv)."))
        return s
    b = marginals[marginals.binding.astype(bool)].copy()
    b = b.reindex(b.marginal.abs().sort_values(ascending=False, kind="stable").index)
    b = b[b.marginal.abs() > 0]
    if not len(b):
        s.blocks.append(p("No limit binds with a nonzero price: one more dollar or megawatt would not change "
                          "the objective."))
        return s
    s.blocks.append(p(f"The objective is {objective_unit(inst)}. These are local prices of the plan's linear "
                      "program with its campus blocks fixed: they hold for small changes; for a step that can "
                      "change which blocks are built, re-solve (capplan marginal FILE --param ... --step ...)."))
    items = [f"<li>{esc(_marginal_words(inst, r))}</li>" for r in _headline_marginals(b).itertuples()]
    s.blocks.append("<ul class=findings>" + "".join(items) + "</ul>")
    top = b.head(15).assign(label=lambda d: [_label(r) for r in d.itertuples()])
    s.blocks.append(Charts([vega.marginals(top[["label", "marginal", "family", "unit"]])]))
    shown = b.assign(year=b.year.map(lambda y: "" if pd.isna(y) else str(int(y))),
                     constraint=b.family.map(lambda f: FAMILY_WORDS.get(f, f)))
    s.blocks.append(table(shown[["constraint", "year", "where", "marginal", "unit"]],
                          {"marginal": lambda v: f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.4g}"},
                          caption="Binding constraints, largest value first"))
    return s


def _headline_marginals(b: pd.DataFrame) -> pd.DataFrame:
    """The budget, then the three most valuable power limits, then the most valuable other limit."""
    budget = b[b.family.isin(["budget", "budget_annual"])].head(2)
    power = b[b.family.isin(["ceiling", "facility", "region_max"])].head(3)
    rest = b[~b.index.isin(budget.index) & ~b.index.isin(power.index)].head(1)
    return pd.concat([budget, power, rest])


def _label(r) -> str:
    year = "" if pd.isna(r.year) else f" {int(r.year)}"
    where = f" {r.where}" if isinstance(r.where, str) and r.where else ""
    return f"{r.family}{year}{where}"


def _marginal_words(inst, r) -> str:
    year = "" if pd.isna(r.year) else f" in {int(r.year)}"
    where = r.where if isinstance(r.where, str) else ""
    if getattr(inst, "uncertainty", None) is not None and r.family not in ("budget",) and where:
        *place, node = where.split(",")  # a tree's rows end with their node: the root is decided now
        year += " (decided now)" if node == "root" else f" (scenario branch {node})"
        where = ",".join(place)
    effect = _effect(inst, r.marginal)
    if r.family == "budget":
        return f"$1B more total budget{f' (scenario {where})' if where else ''} {effect}."
    if r.family == "budget_annual":
        return f"$1B more spending allowed{year} {effect}."
    if r.family == "ceiling":
        return f"100 MW more under the power ceiling{year} {effect}."
    if r.family == "facility":
        return f"100 MW more facility capacity in {where}{year} {effect}."
    if r.family == "region_max":
        return f"100 MW more allowed in {where}{year} {effect}."
    if r.family == "supply":
        return f"One more unit of supply ({where}){year} {effect}."
    if r.family in ("demand", "training", "frontier"):
        return f"1 PFLOP/s more of {FAMILY_WORDS[r.family]} ({where}){year} {effect}." if where else \
            f"1 PFLOP/s more of {FAMILY_WORDS[r.family]}{year} {effect}."
    return f"{r.family}{year} {where}: {r.marginal:,.4g} {r.unit}."


def scenarios(plan: Plan, value_lines: list[str]) -> Section:
    """The scenarios: fan charts of capacity and spend, EVPI and VSS in sentences, and each scenario's outcome."""
    inst = plan.instance
    s = Section("scenarios", "Scenarios")
    sc = plan.scenarios
    unc = inst.uncertainty
    stages = "; ".join(f"{st.name or 'a stage'} revealed in {st.year} ({len(st.branches)} outcomes: "
                       f"{', '.join(b.id for b in st.branches)})" for st in unc.stages)
    s.blocks.append(p(f"{len(sc)} scenarios: {stages}."))
    s.blocks.append("<ul class=findings>" + "".join(f"<li>{esc(line)}</li>" for line in value_lines) + "</ul>")
    prob = dict(zip(sc.scenario.astype(str), sc.probability))
    first = inst.tree.first_stage_year
    cap = plan.facilities.groupby(["scenario", "year"], as_index=False).capacity_mw.sum()
    div, unit = vega.money_unit(float(plan.spend.cumulative_usd.max()))
    spend = plan.spend[["scenario", "year", "cumulative_usd"]].assign(busd=lambda d: d.cumulative_usd / div)
    years = list(inst.years)
    ceiling = (pd.DataFrame({"year": years, "limit": [inst.power.ceiling_mw[t] for t in years]})
               if inst.power.ceiling_mw is not None else None)
    budget = (pd.DataFrame({"year": years, "limit": inst.budget.total_usd / div})
              if inst.budget.total_usd else None)
    s.blocks.append(Charts([
        vega.fan(cap, "capacity_mw", prob, first, title="Facility capacity across the scenarios",
                 axis="facility MW", limit=ceiling, limit_label="power ceiling (base)"),
        vega.fan(spend, "busd", prob, first, title="Cumulative spend across the scenarios", axis=unit,
                 limit=budget, limit_label="total budget (base)", fmt=",.2f"),
    ]))
    cols = ["scenario", "probability", "objective", "wait_and_see_objective", "regret", "total_spend_usd",
            "unmet_pflops_years", "peak_capacity_mw"]
    s.blocks.append(table(sc[cols], {"probability": lambda v: f"{v:.3g}", "total_spend_usd": usd},
                          labels={"wait_and_see_objective": "with perfect foresight", "total_spend_usd": "spend",
                                  "unmet_pflops_years": "unmet PFLOP/s-years", "peak_capacity_mw": "peak MW"},
                          caption="Each scenario: this plan's objective, the best with perfect foresight, and the "
                                  "regret between them"))
    return s


# --------------------------------------------------------------------------- near-optimal ranges


def ranges(table_df: pd.DataFrame, optimal: Plan) -> Section:
    """Which decisions are forced and which are free: each aggregate's range over the near-optimal plans."""
    s = Section("ranges", "Near-optimal ranges")
    t = table_df
    robust = t[t.robust.astype(bool)]
    free = t[~t.robust.astype(bool)]
    slack = t.attrs.get("slack")
    within = f"within {slack:.1%} of the optimum" if slack is not None else "within the slack of the run"
    s.blocks.append(p(f"Over every plan {within}, each aggregate (chips of a generation bought, MW of campus "
                      "blocks started in a region"
                      + (", counted over the decisions made now" if optimal.stochastic else "")
                      + ") ranges from its minimum to its maximum. A narrow range (at most 5%) is forced by the "
                      "numbers; a wide one is a free choice that costs little."))
    words = []
    if len(robust):
        words.append("Forced: " + ", ".join(robust["aggregate"]) + ".")
    if len(free):
        words.append("Free to choose: " + "; ".join(
            f"{r.aggregate} from {number(r.min)} to {number(r.max)} {r.unit} (optimal plan {number(r.optimal)})"
            for r in free.itertuples()) + ".")
    unproven = t[t.status != "optimal"]
    if len(unproven):
        words.append("Not proven (a time limit): " + ", ".join(unproven["aggregate"])
                     + "; their true ranges lie within the bounds shown.")
    s.blocks.append("<ul class=findings>" + "".join(f"<li>{esc(w)}</li>" for w in words) + "</ul>")
    groups = [("chips", "chips bought"), ("MW", "campus MW started")]
    s.blocks.append(Charts([vega.ranges(t, unit, label) for unit, label in groups if (t["unit"] == unit).any()]))
    cols = ["aggregate", "unit", "optimal", "min", "max", "robust", "status"]
    s.blocks.append(table(t[cols].assign(robust=t.robust.map({True: "yes", False: "no"})), caption="Ranges"))
    return s


# --------------------------------------------------------------------------- sweeps


SWEEP_METRICS = {
    "objective": "objective", "total_spend_usd": "spend (USD)", "peak_capacity_mw": "peak capacity (MW)",
    "training_share": "training share", "unmet_pflops_years": "unmet demand (PFLOP/s-years)",
    "blocks_started": "blocks started", "units_bought": "units bought",
}


def sweep_curves(df: pd.DataFrame, paths: list[str], kinds: dict[str, str], mode: str) -> Section:
    """Each KPI against each varied path (a line per value of a second path in a grid), and a heatmap of the
    objective over a two-path grid."""
    s = Section("sweep", "Sweep curves")
    ok = df.status.isin(["optimal", "feasible"])
    s.blocks.append(p(f"{len(df)} scenarios ({'one path at a time' if mode == 'one_at_a_time' else 'a grid'} of "
                      f"{', '.join(paths)}); {int(ok.sum())} with a plan"
                      + (f", {int((~ok).sum())} without ({', '.join(sorted(set(df.status[~ok])))})."
                         if (~ok).any() else ".")))
    metrics = {c: label for c, label in SWEEP_METRICS.items() if c in df and df[c].notna().any()}
    good = df[ok]
    shown = {q: _shown(df[q], kinds.get(q, "value"), q) for q in paths}
    charts = []
    for path in paths:
        d = good.copy()
        if mode == "one_at_a_time":
            base = d[d[paths].isna().all(axis=1)]
            d = d[d[path].notna()]
            neutral = {"factor": 1.0, "shift": 0.0}.get(kinds.get(path, "value"))
            if neutral is not None and len(base):
                d = pd.concat([d, base.assign(**{path: neutral})])
        d = d.dropna(subset=[path])
        if not len(d):
            continue
        div, title, _ = shown[path]
        d = d.assign(x=d[path] / div)
        other = [q for q in paths if q != path] if mode != "one_at_a_time" else []
        if len(other) == 1:
            d = d.assign(c=d[other[0]], c_label=d[other[0]].map(shown[other[0]][2]))
        charts.append(vega.sweep_line(d.sort_values("x"), metrics, f"By {path}", title,
                                      shown[other[0]][1] if len(other) == 1 else None))
    for i in range(0, len(charts), 2):
        s.blocks.append(Charts(charts[i:i + 2]))
    if mode != "one_at_a_time" and len(paths) == 2:
        row, col = paths
        d = df.assign(row=df[row], col=df[col], row_label=df[row].map(shown[row][2]),
                      col_label=df[col].map(shown[col][2]))
        s.blocks.append(Charts([vega.sweep_heatmap(d, "objective", "objective", shown[row][1], shown[col][1])]))
    return s


def _shown(values: pd.Series, kind: str, path: str):
    """How a varied path's values are shown: (divisor for an axis, axis title, label of one value)."""
    if kind == "factor":
        return 1.0, f"{path} (factor on the base value)", lambda v: "base" if pd.isna(v) else f"x{v:g}"
    if kind == "shift":
        return 1.0, f"{path} (shift, years)", lambda v: "base" if pd.isna(v) else f"{int(v):+d}y"
    top = float(values.abs().max()) if values.notna().any() else 0.0
    if path.endswith("_usd"):
        div, unit = vega.money_unit(top)
        return div, f"{path} ({unit})", lambda v: "base" if pd.isna(v) else usd(v)
    return 1.0, path, lambda v: "base" if pd.isna(v) else f"{v:,.6g}"


def sweep_table(df: pd.DataFrame, paths: list[str], kinds: dict[str, str]) -> Section:
    s = Section("sweep-table", "Every scenario of the sweep")
    cols = ["scenario", *paths, "status", "objective", "mip_gap", "total_spend_usd", "budget_used_share",
            "peak_capacity_mw", "training_share", "unmet_pflops_years", "seconds"]
    cols = [c for c in cols if c in df]
    fmts = {q: _shown(df[q], kinds.get(q, "value"), q)[2] for q in paths}
    fmts |= {"total_spend_usd": usd, "budget_used_share": share, "training_share": share,
            "mip_gap": lambda v: "-" if pd.isna(v) else f"{v:.2e}", "seconds": lambda v: number(v, 1),
            "scenario": lambda v: str(int(v)), "objective": lambda v: number(v)}
    labels = {"mip_gap": "gap", "total_spend_usd": "spend", "budget_used_share": "budget used",
              "peak_capacity_mw": "peak MW", "training_share": "training share",
              "unmet_pflops_years": "unmet PFLOP/s-years"}
    s.blocks.append(table(df[cols], fmts, labels=labels, caption="Scenarios (click a header to sort)"))
    return s


# --------------------------------------------------------------------------- policy simulation


def simulation_policies(sim, value_sentence: str) -> Section:
    """The policies side by side: their realised objectives, the value of the stochastic policy, the spread."""
    s = Section("policies", "The policies, re-planning as the future is revealed")
    money = sim.truth.objective.kind == "min_cost"
    fmt = usd if money else (lambda v: "infeasible" if isinstance(v, float) and math.isinf(v) else number(v))
    n = sim.paths.path.nunique()
    s.blocks.append(p(f"{n} path{'s' if n != 1 else ''} of {sim.truth.name}"
                      + (f", drawn by probability (seed {sim.seed})" if sim.sampled else ", every leaf with its "
                         "probability") + f"; each policy re-plans in {', '.join(map(str, sim.epochs))} with what "
                      "is known then and its past held. stochastic: plans against the policy file's remaining "
                      "stages; deterministic: against what has been revealed alone; perfect: knows the path from "
                      "the start (the bound no policy beats)."))
    s.blocks.append(f"<ul class=findings><li>{esc(value_sentence)}</li></ul>")
    cols = ["policy", "expected_objective", "standard_error", "p10", "p50", "p90", "cvar", "expected_regret",
            "infeasible_paths"]
    if not sim.sampled:
        cols.remove("standard_error")
    s.blocks.append(table(sim.summary[cols], {c: fmt for c in cols[1:-1]},
                          labels={"expected_objective": "expected", "standard_error": "std error", "p10": "P10",
                                  "p50": "P50", "p90": "P90", "cvar": "CVaR", "expected_regret": "regret",
                                  "infeasible_paths": "infeasible paths"},
                          caption="Realised objective of each policy over the paths"))
    charts = [vega.strip(sim.paths, "objective", "policy", "weight", title="Realised objective of each path",
                         axis="realised objective", money=money)]
    weights = sim.paths.drop_duplicates(["policy", "path"]).set_index(["policy", "path"]).weight
    fac = sim.realised["facilities"]
    if len(fac):
        years = list(sim.truth.years)
        for policy in sim.policies:
            per = fac[fac.policy == policy].groupby(["path", "year"], as_index=False).capacity_mw.sum()
            if not len(per):
                continue
            prob = {path: float(weights.get((policy, path), 0.0)) for path in per.path.unique()}
            charts.append(vega.fan(per.rename(columns={"path": "scenario"}), "capacity_mw", prob,
                                   sim.epochs[1] if len(sim.epochs) > 1 else years[0],
                                   title=f"Facility capacity, {policy} policy", axis="facility MW"))
    s.blocks.append(Charts(charts))
    return s


def simulation_paths(sim) -> Section:
    """Every path under every policy: its weight, status, realised and perfect-foresight objectives, regret."""
    s = Section("paths", "Paths")
    money = sim.truth.objective.kind == "min_cost"
    fmt = usd if money else (lambda v: "infeasible" if isinstance(v, float) and math.isinf(v) else number(v))
    cols = ["policy", "path", "weight", "status", "objective", "perfect_objective", "regret", "spend_usd",
            "unmet_pflops_years", "message"]
    s.blocks.append(table(sim.paths[cols], {"weight": lambda v: f"{v:.3g}", "objective": fmt,
                                             "perfect_objective": fmt, "regret": fmt, "spend_usd": usd},
                          labels={"perfect_objective": "with perfect foresight", "spend_usd": "spend",
                                  "unmet_pflops_years": "unmet PFLOP/s-years"},
                          caption="Each path's realised objective, the best with perfect foresight, and the regret",
                          scroll=True))
    return s
