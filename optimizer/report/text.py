"""Readable views of a plan for people: summary lines, what the objective is made of, warnings, and tables.

Everything here is plain text laid out for a given width (80 columns when
piped, so that what a file or a pipe receives never depends on a terminal):
:func:`render_pairs` for label/value blocks, :func:`render_table` for tables,
whose columns are split into several blocks rather than cut when they do not
fit.  Quantities are written in the one style of :mod:`.units`.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from ..plan import Plan
from ..plan.summary import NOT_IN_TIME
from ..solver import SolveStatus
from .units import fmt_number, fmt_objective, fmt_share, fmt_usd, objective_unit

__all__ = ["compare_pair", "compare_plans", "fmt_usd", "objective_lines", "objective_parts", "objective_unit",
           "purchases_by_year", "render_pairs", "render_table", "summary_lines", "unmet_demand_lines",
           "value_of_information_lines", "yearly_overview"]

WIDTH = 80


# --------------------------------------------------------------------------- layout


def render_pairs(pairs: Sequence[tuple[str, str]], width: int = WIDTH) -> str:
    """``label  value`` lines, values wrapped at word boundaries under each other within ``width``."""
    if not pairs:
        return ""
    left = max(len(label) for label, _ in pairs) + 2
    lines = []
    for label, value in pairs:
        wrapped = textwrap.wrap(value, max(20, width - left), break_long_words=False,
                                break_on_hyphens=False) or [""]
        lines.append(f"{label:<{left}}{wrapped[0]}".rstrip())
        lines += [" " * left + more for more in wrapped[1:]]
    return "\n".join(lines)


def wrap(text: str, width: int = WIDTH, indent: str = "") -> str:
    """A paragraph wrapped at word boundaries; continuation lines start with ``indent``."""
    return "\n".join(textwrap.wrap(text, width, subsequent_indent=indent, break_long_words=False,
                                    break_on_hyphens=False))


def _cell(v, fmt: Callable | None) -> str:
    if fmt is not None and not (v is None or (isinstance(v, float) and math.isnan(v))):
        return fmt(v)
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return fmt_number(float(v))


def render_table(df: pd.DataFrame, title: str = "", *, width: int = WIDTH, keys: Sequence[str] = ("year",),
                 headers: Mapping[str, str] | None = None, formats: Mapping[str, Callable] | None = None,
                 legend: str = "", right: Sequence[str] = ()) -> str:
    """A table as text no wider than ``width``: title, an optional legend line (units), a header, the rows.

    Text columns are left-aligned, numbers right-aligned; ``year`` is written
    without separators, other numbers in the style of :func:`fmt_number`
    unless ``formats`` gives a column its own formatter.  ``headers`` renames
    columns (keep them short and put units in the ``legend``).  When the
    columns do not fit, they are split into blocks, each repeating the
    ``keys`` columns: a number is never cut.  ``right`` right-aligns text
    columns that hold formatted numbers.
    """
    headers = dict(headers or {})
    formats = {"year": lambda v: v if isinstance(v, str) else str(int(v)), **dict(formats or {})}
    cols = list(df.columns)
    text = {c: [_cell(v, formats.get(c)) for v in df[c].tolist()] for c in cols}
    numeric = {c: not (pd.api.types.is_string_dtype(df[c]) or df[c].dtype == object
                       or pd.api.types.is_bool_dtype(df[c])) or c in right for c in cols}
    head = {c: headers.get(c, str(c)).split("\n") for c in cols}
    depth = max(len(h) for h in head.values())
    head = {c: [""] * (depth - len(h)) + h for c, h in head.items()}  # bottom-aligned header lines
    size = {c: max([*map(len, head[c]), *map(len, text[c])]) for c in cols}
    key_cols = [c for c in cols if c in keys]
    rest = [c for c in cols if c not in key_cols]
    blocks: list[list[str]] = []
    base = sum(size[c] + 2 for c in key_cols)
    current: list[str] = []
    used = base
    for c in rest:
        if current and used + size[c] > width:
            blocks.append(current)
            current, used = [], base
        current.append(c)
        used += size[c] + 2
    if current or not blocks:
        blocks.append(current)

    def line(cells: list[str], names: list[str]) -> str:
        return "  ".join(v.rjust(size[c]) if numeric[c] else v.ljust(size[c]) for c, v in zip(names, cells)).rstrip()

    out = []
    if title:
        out.append(wrap(title, width))
    if legend:
        out.append(wrap(legend, width, indent="  "))
    for i, block in enumerate(blocks):
        names = key_cols + block
        if i:
            out += ["", wrap(f"{title} (continued)" if title else "(continued)", width)]
        header = [line([head[c][k] for c in names], names) for k in range(depth)]
        out += header
        out.append("─" * (sum(size[c] for c in names) + 2 * (len(names) - 1)))
        out += [line([text[c][r] for c in names], names) for r in range(len(df))]
    return "\n".join(out)


# --------------------------------------------------------------------------- the summary


def summary_lines(plan: Plan) -> list[tuple[str, str]]:
    """(label, value) pairs describing the outcome of a solve, the objective's make-up included."""
    inst, r = plan.instance, plan.result
    kind = inst.objective.kind
    lines = [("instance", f"{inst.name} ({inst.start}-{inst.end})"),
             ("status", f"{r.status.value}: {r.message}")]
    if plan.stochastic:
        unc = inst.uncertainty
        stages = ", ".join(f"{s.name or 'stage'} in {s.year} ({len(s.branches)} branches)" for s in unc.stages)
        risk = f"; risk: CVaR at alpha {unc.cvar_alpha:g} with weight {unc.risk_weight:g}" if unc.risk_weight else ""
        lines.append(("scenarios", f"{len(inst.scenarios())}: {stages}{risk}"))
    if plan.status.has_plan:
        what = "objective" if not plan.stochastic else "objective (stochastic)"
        lines.append((what, f"{fmt_objective(plan.objective, inst)} ({kind})"))
        made_of = objective_lines(plan)
        if made_of:
            lines.append(("made of", made_of))
        t = plan.tree_summary
        if plan.stochastic and t is not None and _has(t.expected_objective):
            lines.append(("expected objective", fmt_number(t.expected_objective)
                          + (f"; CVaR {fmt_number(t.cvar)}" if inst.uncertainty.risk_weight else "")))
        if getattr(inst.objective, "end_of_horizon", "truncate") == "salvage":
            lines.append(("terminal value", f"{fmt_number(plan.parts.terminal_value)} (included; "
                          "chips in service after the horizon)"))
        if r.bound is not None:
            lines.append(("best bound", fmt_number(r.bound)))
        lines.append(("mip gap", f"{r.mip_gap:.4%}" if r.mip_gap is not None else "-"))
        s = plan.summary.iloc[0]
        spend = s.total_spend_usd
        budget = inst.budget.total_usd
        lines.append(("spend" if not plan.stochastic else "expected spend",
                      fmt_usd(spend) + (f" of {fmt_usd(budget)} budget ({spend / budget:.1%})"
                                        if budget else " (no total budget)")))
        fac = plan.facilities
        keys = ["scenario", "year"] if plan.stochastic else ["year"]
        cap = fac.groupby(keys).capacity_mw.sum()
        peak_year = int(cap.idxmax()[-1] if plan.stochastic else cap.idxmax())
        ceiling = inst.power.ceiling_mw
        text = f"{cap.max():,.0f} MW in {peak_year}" + (" (largest scenario)" if plan.stochastic else "")
        if ceiling is not None:
            text += f" (ceiling {ceiling[peak_year]:,.0f} MW)"
        lines.append(("peak facility capacity", text))
    lines.append(("model", f"{r.rows:,} rows, {r.columns:,} columns ({r.integers:,} integer), "
                           f"{r.nonzeros:,} nonzeros"))
    lines.append(("time", f"build {r.build_seconds:.2f} s, hand-off {r.handoff_seconds:.2f} s, "
                          f"HiGHS {r.solve_seconds:.2f} s ({r.solver} {r.solver_version})"))
    return lines


def objective_parts(plan: Plan) -> dict[str, float]:
    """The terms of a plan's objective, recomputed from its tables (docs/model.md, "Objective").

    Each year's amount is weighted by the discount weight δ_t = (1+ρ)^-(t-start):

    * ``training``: Σ δ_t × training PFLOP/s (max_training only);
    * ``unmet``: Σ δ_t × unmet demand PFLOP/s, and ``penalty`` = unmet_penalty × unmet;
    * ``spend``: Σ δ_t × spend in USD; ``spend_term`` is what it adds to the objective
      (cost_weight × spend / 1e9 for max_training, the spend itself for min_cost);
    * ``terminal``: the terminal value (``end_of_horizon: salvage``), as it enters the objective;
    * ``total``: the objective these give (``training - penalty - spend_term + terminal`` for
      max_training, ``spend + penalty + terminal`` for min_cost), equal to ``plan.objective``
      within rounding.

    Empty for a plan without a solution and for a plan under uncertainty (whose objective is an
    expectation over scenarios: see each scenario's plan).
    """
    if not plan.status.has_plan or plan.stochastic:
        return {}
    inst = plan.instance
    obj = inst.objective
    delta = {t: inst.delta(t) for t in inst.years}

    def discounted(series: pd.Series) -> float:
        return float(sum(delta.get(int(t), 0.0) * float(v) for t, v in series.items()))

    training = discounted(plan.split.groupby("year").train_pflops.sum())
    unmet = discounted(plan.compute.groupby("year").unmet_pflops.sum())
    spend = discounted(plan.spend.groupby("year").total_usd.sum())
    penalty = (obj.unmet_penalty or 0.0) * unmet
    terminal = float(plan.parts.terminal_value or 0.0)
    if obj.kind == "max_training":
        spend_term = (obj.cost_weight or 0.0) * spend / 1e9
        total = training - penalty - spend_term + terminal
    else:
        spend_term = spend
        total = spend + penalty + terminal
    return {"training": training, "unmet": unmet, "penalty": penalty, "spend": spend, "spend_term": spend_term,
            "terminal": terminal, "total": total}


def _discounting(inst) -> str:
    if not inst.discount_rate:
        return "every year counts the same (discount_rate 0)"
    return f"year t weighted by 1/{1 + inst.discount_rate:.4g}^(t-{inst.start})"


def objective_lines(plan: Plan) -> str:
    """In one sentence, what the objective is made of, with this plan's amounts where they are known."""
    inst = plan.instance
    obj = inst.objective
    lam, eps = obj.unmet_penalty or 0.0, obj.cost_weight or 0.0
    parts = objective_parts(plan)
    salvage = getattr(obj, "end_of_horizon", "truncate") == "salvage"
    if obj.kind == "max_training":
        if parts:
            text = f"training {fmt_number(parts['training'])}"
            if lam:
                text += (f" - unmet-demand penalty {fmt_number(parts['penalty'])} ({fmt_number(lam)} x "
                         f"{fmt_number(parts['unmet'])} unmet)")
            if eps:
                text += f" - spend tie-break {fmt_number(parts['spend_term'])} ({eps:g} x {fmt_usd(parts['spend'])})"
            if salvage:
                text += f" + terminal value {fmt_number(parts['terminal'])}"
        else:
            text = ("training" + (f" - {fmt_number(lam)} x unmet demand" if lam else "")
                    + (f" - {eps:g} x spend in $B" if eps else "") + (" + terminal value" if salvage else ""))
        return (f"{_expected(plan)}{text}, all in PFLOP/s-years (one effective PFLOP/s of training or demand for "
                f"a year) and discounted: {_discounting(inst)}")
    if parts:
        text = f"spend {fmt_usd(parts['spend'])}"
        if lam:
            text += (f" + unmet-demand penalty {fmt_usd(parts['penalty'])} ({fmt_usd(lam)} x "
                     f"{fmt_number(parts['unmet'])} PFLOP/s-years unmet)")
        if salvage:
            text += f" - resale value {fmt_usd(-parts['terminal'])}"
    else:
        text = ("spend" + (f" + {fmt_usd(lam)} x unmet demand in PFLOP/s-years" if lam else "")
                + (" - resale value" if salvage else ""))
    return f"{_expected(plan)}{text}, all discounted: {_discounting(inst)}"


def _expected(plan: Plan) -> str:
    if not plan.stochastic:
        return ""
    unc = plan.instance.uncertainty
    risk = f" mixed with its CVaR at alpha {unc.cvar_alpha:g} (weight {unc.risk_weight:g})" if unc.risk_weight else ""
    return f"the expectation over the scenarios{risk} of: "


def unmet_demand_lines(plan: Plan) -> list[str]:
    """A warning when inference demand goes unmet: how much, in which years, and the likely causes.

    The causes are read from the plan's tables against the instance's limits:
    the power ceiling or a region's ``max_mw`` reached, the annual or the total
    budget spent, a chip's supply bought out, and the end of the horizon (a
    ``truncate`` objective values chips bought in the last years only until the
    horizon ends).  Empty when every year's demand is served.
    """
    if not plan.status.has_plan:
        return []
    if plan.stochastic:
        sc = plan.scenarios
        short = sc[sc.unmet_pflops_years > 1e-6] if sc is not None and len(sc) else sc
        if short is None or not len(short):
            return []
        names = ", ".join(f"{r.scenario} ({fmt_number(r.unmet_pflops_years)} PFLOP/s-years)"
                          for r in short.itertuples())
        return [f"warning: inference demand goes unmet in {len(short)} of {len(sc)} scenarios: {names}. "
                "capplan solve FILE --out DIR writes each scenario's compute table, with the years."]
    inst = plan.instance
    comp = plan.compute.groupby("year")[["demand_pflops", "unmet_pflops"]].sum()
    short = comp[comp.unmet_pflops > 1e-6 * max(1.0, float(comp.demand_pflops.max()))]
    if not len(short):
        return []
    years = [int(t) for t in short.index]
    amounts = ", ".join(
        f"{fmt_number(r.unmet_pflops)} PFLOP/s in {int(t)} ({_small_share(r.unmet_pflops / r.demand_pflops)} of "
        f"demand)" if r.demand_pflops else f"{fmt_number(r.unmet_pflops)} PFLOP/s in {int(t)}"
        for t, r in short.iterrows())
    head = (f"warning: inference demand goes unmet in {len(years)} of {len(inst.years)} years: {amounts}. "
            f"Each unmet PFLOP/s-year costs {fmt_number(inst.objective.unmet_penalty or 0)} in the objective "
            "(objective.unmet_penalty).")
    if plan.status is SolveStatus.FEASIBLE:
        gap = f" (gap {plan.mip_gap:.2%})" if _has(plan.mip_gap) else ""
        head += (f" This plan is not proven optimal{gap}: a longer --time-limit may find one that serves more "
                 "of it.")
    causes = _unmet_causes(plan, years)
    if not causes:
        return [head, "No limit of the instance is reached: serving this demand earns less than the capacity "
                      "does elsewhere at this penalty."]
    return [head, "Likely cause" + ("s:" if len(causes) > 1 else ":")] + [f"  - {c}" for c in causes]


def _small_share(x: float) -> str:
    return "<0.1%" if 0 < x < 0.001 else fmt_share(x)


def _years_text(years: list[int]) -> str:
    if len(years) > 1 and years == list(range(years[0], years[-1] + 1)):
        return f"{years[0]}-{years[-1]}"
    return ", ".join(map(str, years))


def _unmet_causes(plan: Plan, years: list[int]) -> list[str]:
    inst = plan.instance
    tol = 1e-6
    fac = plan.facilities
    cap = fac.groupby("year").capacity_mw.sum()
    spend = plan.spend.groupby("year").total_usd.sum()
    found: dict[str, list[int]] = {}

    def add(text: str, year: int) -> None:
        found.setdefault(text, []).append(year)

    unmet_regions = plan.compute[plan.compute.unmet_pflops > tol]
    for t in years:
        at_max, closed, waiting, full = [], [], [], False
        for d in unmet_regions[unmet_regions.year == t].region:
            for src in inst.sources(d):
                row = fac[(fac.year == t) & (fac.region == src)]
                region = inst.regions.get(src)
                if region is None or not len(row) or src in at_max + closed + waiting:
                    continue
                capacity, draw = float(row.capacity_mw.iloc[0]), float(row.draw_mw.iloc[0])
                if draw < capacity * (1 - 1e-3):  # room left: not what stops it
                    continue
                full = True
                if region.max_mw is not None and region.max_mw[t] == 0:
                    closed.append(src)
                elif region.max_mw is not None and capacity >= region.max_mw[t] * (1 - tol):
                    at_max.append(src)
                elif region.build_lead_years > 0 and t < inst.start + region.build_lead_years:
                    waiting.append(src)
        ceiling = inst.power.ceiling_mw
        if full and ceiling is not None and cap.get(t, 0.0) >= ceiling[t] * (1 - tol):
            add("the power ceiling is reached (power.ceiling_mw)", t)
        if at_max:
            add(" and ".join(at_max) + (" is" if len(at_max) == 1 else " are") + " full at max_mw (regions.R.max_mw)",
                t)
        if closed:
            add(" and ".join(closed) + " may have no capacity yet (regions.R.max_mw is 0)", t)
        if waiting:
            add(" and ".join(waiting) + (" is" if len(waiting) == 1 else " are") + " full and no block started in "
                "the horizon is online yet (regions.R.build_lead_years)", t)
        annual = inst.budget.annual_max_usd
        if annual is not None and spend.get(t, 0.0) >= annual[t] * (1 - 1e-4):
            add("the annual budget is spent (budget.annual_max_usd)", t)
        for g, chip in inst.chips.items():
            if chip.supply_units is None or not chip.purchasable(t):
                continue
            p = plan.purchases
            units = float(p[(p.year == t) & (p.chip == g)].units.sum()) if len(p) else 0.0
            if units >= chip.supply_units[t] * (1 - tol) and chip.supply_units[t] > 0:
                add(f"{g}'s supply is bought out (chips.{g}.supply_units)", t)
    end = inst.end
    last = [t for t in years if t >= end - 1]
    if (last and len(inst.years) >= 3 and inst.objective.kind == "max_training"
            and getattr(inst.objective, "end_of_horizon", "truncate") == "truncate"):
        for t in last:
            add(f"the end of the horizon: chips bought then count only until {end} "
                "(objective.end_of_horizon: salvage values them beyond it)", t)
    by_years: dict[str, list[str]] = {}
    for text, ys in found.items():
        by_years.setdefault(_years_text(sorted(set(ys))), []).append(text)
    out = [f"{when}: {'; '.join(texts)}" for when, texts in by_years.items()]
    budget = inst.budget.total_usd
    total = float(spend.sum())
    if budget and total >= budget * (1 - 1e-4):
        out.append(f"every year: the total budget is spent ({fmt_usd(total)} of {fmt_usd(budget)}, "
                   "budget.total_usd)")
    return out


def value_of_information_lines(plan: Plan) -> list[str]:
    """EVPI and VSS in sentences a planner reads (spec v2 section 4.3)."""
    inst = plan.instance
    t = plan.tree_summary
    evpi, ws, vss = (None, None, None) if t is None else (t.evpi, t.wait_and_see, t.vss)
    status = None if t is None else t.base_plan_status
    unit = "PFLOP/s-years" if inst.objective.kind == "max_training" else "USD"
    tree = inst.tree
    names = [s.name for s in tree.stages if s.name]
    many = len(tree.stages) > 1
    what = (" and ".join(names) + (" outcomes" if len(names) > 1 else " outcome")) if names else \
        f"outcome{'s' if many else ''} of the {len(tree.stages)} stage{'s' if many else ''}"
    first = tree.first_stage_year

    def amount(v):
        money = unit == "USD"
        text = fmt_usd(v) if money else f"{fmt_number(v)} {unit}"
        share = f" ({v / abs(plan.objective):.1%})" if plan.objective else ""
        return text + share

    lines = []
    if _has(evpi):
        lines.append(f"Knowing the {what} before {first} would be worth {amount(evpi)}: the expected value of "
                     f"perfect information (EVPI = {'WS - RP' if unit != 'USD' else 'RP - WS'}, within the gap).")
    elif ws is not None:
        lines.append("EVPI: not computed (a scenario alone has no proven plan).")
    elif t is not None and t.wait_and_see_status:
        lines.append(f"EVPI: not known: it needs every scenario solved alone ({t.wait_and_see_status})."
                     + _more_time(t.wait_and_see_status))
    if vss == float("inf"):
        lines.append("Value of the stochastic solution: the base forecast's plan cannot be held — "
                     f"{status}.")
    elif _has(vss):
        lines.append(f"Planning for the scenarios instead of the base forecast gains {amount(vss)}: the value of the "
                     f"stochastic solution (VSS = {'RP - EEV' if unit != 'USD' else 'EEV - RP'}; the base plan's "
                     f"commitments score EEV = {fmt_number(t.base_plan_objective)}).")
    if status and plan.status.has_plan and not _has(vss) and vss != float("inf"):
        lines.append(f"VSS: not known ({status})." + _more_time(status))
    if not lines:
        lines.append("Value of information: not computed (--no-value-of-information, or the plan has no solution).")
    elif plan.status is SolveStatus.FEASIBLE and (_has(evpi) or _has(vss)):
        gap = f" (gap {plan.mip_gap:.2%})" if _has(plan.mip_gap) else ""
        both = _has(evpi) and _has(vss)
        moves = " and ".join(x for x, known in (("EVPI is smaller", _has(evpi)), ("VSS larger", _has(vss))) if known)
        lines.append(f"{'These values use' if both else 'This value uses'} the stochastic plan RP, which is not "
                     f"proven optimal{gap}: the true RP can be higher for max_training (lower for min_cost), so "
                     f"{moves} than shown by up to that gap. Solve without a time limit to prove "
                     f"{'them' if both else 'it'}.")
    elif str(status or "optimal") != "optimal" and _has(vss):
        lines.append(f"EEV is not proven, {status}: VSS is known only within that gap.")
    return lines


def _more_time(why: str) -> str:
    """The hint after a value of information a time limit left unknown."""
    return " A longer --time-limit gives those solves time." if NOT_IN_TIME in why else ""


def _has(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and v == v and abs(v) != float("inf")


def yearly_overview(plan: Plan) -> pd.DataFrame:
    """One row per year: capacity, draw, spend, training and inference compute."""
    fac = plan.facilities.groupby("year")[["capacity_mw", "draw_mw"]].sum()
    comp = plan.compute.groupby("year")[["demand_pflops", "served_pflops", "unmet_pflops"]].sum()
    df = pd.DataFrame({
        "capacity_mw": fac.capacity_mw,
        "draw_mw": fac.draw_mw,
        "spend_usd": plan.spend.set_index("year").total_usd,
        "train_pflops": plan.split.set_index("year").train_pflops,
        "infer_pflops": plan.split.set_index("year").infer_pflops,
        "training_share": plan.split.set_index("year").training_share,
        "demand_pflops": comp.demand_pflops,
        "unmet_pflops": comp.unmet_pflops,
    })
    return df.reset_index().rename(columns={"index": "year"})


def purchases_by_year(plan: Plan) -> pd.DataFrame:
    """Chips bought per year, one column per chip@region."""
    p = plan.purchases
    if p.empty:
        return pd.DataFrame({"year": list(plan.instance.years)})
    wide = p.assign(where=p.chip + "@" + p.region).pivot_table(
        index="year", columns="where", values="chips", aggfunc="sum", fill_value=0)
    wide = wide.reindex(list(plan.instance.years), fill_value=0)
    wide.columns.name = None
    return wide.reset_index()


def compare_plans(a: Plan, b: Plan) -> dict[str, pd.DataFrame]:
    """What changed from plan ``a`` to plan ``b``, scenario by scenario for plans under uncertainty.

    Two plans under uncertainty are compared on their common scenarios, a plan
    under uncertainty and a plain one scenario by scenario against the plain
    one; every table then has a ``scenario`` column first, and ``commitments``
    compares what each signs now.  See :func:`compare_pair` for the tables.
    """
    if not (a.stochastic or b.stochastic):
        return compare_pair(a, b)
    ids_a = list(a.scenarios.scenario) if a.stochastic else None
    ids_b = list(b.scenarios.scenario) if b.stochastic else None
    if ids_a is not None and ids_b is not None:
        pairs = [(s, s) for s in ids_a if s in ids_b]
        if not pairs:
            raise ValueError(f"the plans share no scenario (a: {', '.join(ids_a)}; b: {', '.join(ids_b)})")
    else:
        pairs = [(s, None) for s in ids_a] if ids_a is not None else [(None, s) for s in ids_b]
    per = []
    for sa, sb in pairs:
        tables = compare_pair(a.scenario(sa) if sa is not None else a, b.scenario(sb) if sb is not None else b)
        per.append((sa or sb, tables))
    out = {name: pd.concat([t[name].assign(scenario=sid) for sid, t in per], ignore_index=True)
           for name in per[0][1]}
    out = {name: df[["scenario", *[c for c in df.columns if c != "scenario"]]] for name, df in out.items()}
    if a.stochastic and b.stochastic:
        key = ["year", "region", "item"]
        ca = a.commitments.groupby(key).quantity.sum()
        cb = b.commitments.groupby(key).quantity.sum()
        c = pd.concat([ca.rename("quantity_a"), cb.rename("quantity_b")], axis=1).fillna(0.0)
        c["quantity_change"] = c.quantity_b - c.quantity_a
        out["commitments"] = c.reset_index()
    return out


def compare_pair(a: Plan, b: Plan) -> dict[str, pd.DataFrame]:
    """What changed from plan ``a`` to plan ``b``: one table per aspect, with a, b and b - a.

    - headline: objective, spend, peak capacity, training share
    - purchases: chips bought per (year, chip, region)
    - capacity: facility MW per year and region
    - spend: total spend per year
    - split: training and inference PFLOP/s per year
    """

    def side_by_side(sa: pd.Series, sb: pd.Series, name: str) -> pd.DataFrame:
        df = pd.concat([sa.rename(f"{name}_a"), sb.rename(f"{name}_b")], axis=1).fillna(0.0)
        df[f"{name}_change"] = df[f"{name}_b"] - df[f"{name}_a"]
        return df

    key = ["year", "chip", "region"]
    pa = a.purchases.groupby(key).chips.sum()
    pb = b.purchases.groupby(key).chips.sum()
    purchases = side_by_side(pa, pb, "chips").reset_index()
    purchases = purchases[purchases.chips_change != 0].sort_values(key).reset_index(drop=True)

    ca = a.facilities.set_index(["year", "region"]).capacity_mw
    cb = b.facilities.set_index(["year", "region"]).capacity_mw
    capacity = side_by_side(ca, cb, "capacity_mw").reset_index()

    spend = side_by_side(a.spend.set_index("year").total_usd, b.spend.set_index("year").total_usd,
                         "spend_usd").reset_index()
    sa, sb = a.split.set_index("year"), b.split.set_index("year")
    split = pd.concat([side_by_side(sa.train_pflops, sb.train_pflops, "train_pflops"),
                       side_by_side(sa.infer_pflops, sb.infer_pflops, "infer_pflops")], axis=1).reset_index()

    def headline(p: Plan) -> dict:
        s = p.summary.iloc[0]
        split_tot = p.split[["train_pflops", "infer_pflops"]].sum()
        tot = split_tot.sum()
        return {"objective": s.objective, "total_spend_usd": s.total_spend_usd,
                "peak_capacity_mw": s.peak_capacity_mw,
                "training_share": split_tot.train_pflops / tot if tot else 0.0}

    ha, hb = headline(a), headline(b)
    head = pd.DataFrame({"metric": list(ha), "a": list(ha.values()), "b": list(hb.values())})
    head["change"] = head.b - head.a
    return {"headline": head, "purchases": purchases, "capacity": capacity, "spend": spend, "split": split}


# --------------------------------------------------------------------------- policy simulation


def simulation_objective(v: float, money: bool) -> str:
    """A realised objective in words: money or PFLOP/s-years with separators, ``infeasible`` for an infinite one."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if math.isinf(v):
        return "infeasible"
    return fmt_usd(v) if money else fmt_number(v)


def simulation_value_sentence(sim) -> str:
    """The value of the stochastic policy in one sentence, with its interval when sampled."""
    v = sim.value
    if v is None:
        return "Value of the stochastic policy: not computed (it needs both the stochastic and the deterministic " \
               "policy)."
    money = sim.truth.objective.kind == "min_cost"
    unit = "" if money else " discounted PFLOP/s-years"
    what = ("Planning against the tree, and re-planning as the future is revealed, " + ("saves" if money else
            "gains"))
    if math.isnan(v.value):
        return "Value of the stochastic policy: undefined (both policies leave some path infeasible)."
    if math.isinf(v.value):
        worse = "deterministic" if v.value > 0 else "stochastic"
        return f"Value of the stochastic policy: unbounded: the {worse} policy leaves some path infeasible."
    text = (f"{what} {simulation_objective(v.value, money)}{unit} in expectation over re-planning on the base "
            "forecast (the value of the stochastic policy)")
    if v.sampled and v.low is not None:
        text += (f", 95% interval {simulation_objective(v.low, money)} to {simulation_objective(v.high, money)} "
                 "over the sampled paths")
    return text + "."
