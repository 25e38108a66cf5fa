"""One self-contained HTML page of a result, for people who never run capplan.

The page opens anywhere with no network access: its styles, scripts (Vega,
Vega-Lite and vega-embed, :func:`optimizer.report.vega.javascript`) and data
are inlined.  It reads top-down as a planner asks: the status in words first
(a plan not proven optimal says so in the first line), then what to commit now,
the plan by year, what binds and what more budget or power is worth, and where
present the scenarios, the near-optimal ranges or the sweep curves.  Charts
show their numbers on hover; tables sort by a click on a header.

Each kind of result has a reader (for its output directory) and a page
function; :data:`KINDS` lists the directories, :func:`page` dispatches on the
result.  A new kind of result adds one of each.

>>> from optimizer import load_instance, solve
>>> from optimizer.report.html import report
>>> r = report(solve(load_instance("instances/tiny-supply-cap.yaml")))
>>> r.write("report.html")  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import os
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ..files import atomic_write
from ..plan import Plan, read_plan
from ..plan.display import headline, html_table, number, status_sentence
from ..solver import SolveStatus
from . import sections, vega
from .sections import Charts, Section


class ReportError(ValueError):
    """The path is no result a report can be made of (the message says what it expected)."""


# --------------------------------------------------------------------------- results other than a plan


@dataclass
class SweepResult:
    """A sweep's table (one row per scenario) with its varied paths, their kinds and the sweep mode."""

    table: pd.DataFrame
    paths: list[str]
    kinds: dict[str, str]
    mode: str
    instance: str = ""


@dataclass
class RangesResult:
    """Near-optimal ranges (the table of :class:`optimizer.Alternatives`) and the optimal plan they surround."""

    table: pd.DataFrame
    optimal: Plan


def read_plan_dir(path: Path) -> Plan:
    return read_plan(path)


def read_alternatives(path: Path) -> RangesResult:
    """An output directory of ``capplan alternatives --out``: alternatives.csv and the optimal plan (optimal/)."""
    if not (path / "optimal" / "summary.json").is_file():
        raise ReportError(f"{path} has alternatives.csv but no optimal/ plan directory: write it with "
                          "capplan alternatives FILE --out DIR")
    t = pd.read_csv(path / "alternatives.csv")
    t["robust"] = t.robust.astype(str).str.lower().isin(["true", "1", "yes"])
    if (path / "alternatives.json").is_file():  # the slack of the run (written since the page existed)
        t.attrs.update(json.loads((path / "alternatives.json").read_text()))
    return RangesResult(t, read_plan(path / "optimal"))


def read_sweep(path: Path) -> SweepResult:
    """An output directory of ``capplan sweep --out``: sweep.csv, with the paths and mode from sweep.sqlite."""
    df = pd.read_csv(path / "sweep.csv")
    cols = list(df.columns)
    if "label" not in cols or "status" not in cols:
        raise ReportError(f"{path / 'sweep.csv'} is not a sweep table (no label and status columns)")
    paths = cols[cols.index("label") + 1:cols.index("status")]
    meta = _sweep_meta(path / "sweep.sqlite")
    vary = json.loads(meta.get("vary", "{}"))
    kinds = {p: _kind(vary.get(p, [])) for p in paths}
    mode = meta.get("mode", "one_at_a_time" if df[paths].isna().all(axis=1).any() else "grid")
    return SweepResult(df, paths, kinds, {"oat": "one_at_a_time"}.get(mode, mode), meta.get("instance", ""))


def _sweep_meta(store: Path) -> dict[str, str]:
    if not store.is_file():
        return {}
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            return dict(db.execute("SELECT key, value FROM meta"))
    except sqlite3.DatabaseError:
        return {}


def _kind(labels: list[str]) -> str:
    if labels and all(str(v).startswith("x") for v in labels):
        return "factor"
    if labels and all(str(v).endswith("y") and str(v)[:1] in "+-" for v in labels):
        return "shift"
    return "value"


@dataclass(frozen=True)
class Kind:
    """A kind of output directory: the file that marks it, and its reader."""

    name: str
    marker: str
    read: Callable[[Path], object]


def read_simulation_dir(path: Path):
    """An output directory of ``capplan simulate --out``."""
    from ..plan.simulation import read_simulation

    try:
        return read_simulation(path)
    except ValueError as exc:
        raise ReportError(str(exc)) from None


KINDS = (
    Kind("simulation", "truth.yaml", read_simulation_dir),
    Kind("sweep", "sweep.csv", read_sweep),
    Kind("alternatives", "alternatives.csv", read_alternatives),
    Kind("plan", "summary.json", read_plan_dir),
)


def read_result(path: str | os.PathLike):
    """The result in an output directory of capplan (a plan, a sweep, near-optimal ranges)."""
    path = Path(path)
    if not path.is_dir():
        raise ReportError(f"{path} is not a directory")
    for kind in KINDS:
        if (path / kind.marker).is_file():
            return kind.read(path)
    if (path / "sweep.sqlite").is_file():
        raise ReportError(f"{path} holds an unfinished sweep (sweep.sqlite, no sweep.csv): finish it with "
                          "capplan sweep ... --out DIR --resume")
    raise ReportError(f"{path} is not a plan, sweep, alternatives or simulation directory (none of "
                      f"{', '.join(k.marker for k in KINDS)}); write one with capplan solve FILE --out DIR")


# --------------------------------------------------------------------------- pages


@dataclass
class Page:
    """A report page: the status line first, a title, key figures and the sections."""

    title: str
    status: str
    level: str  # "ok", "warn" (a plan not proven optimal, a scenario without a plan) or "bad" (no plan)
    subtitle: str = ""
    figures: list[tuple[str, str]] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)


def _level(status: SolveStatus) -> str:
    return "ok" if status is SolveStatus.OPTIMAL else "warn" if status.has_plan else "bad"


def plan_sections(plan: Plan, marginals: pd.DataFrame | None = None) -> list[Section]:
    """The sections of a plan; ``marginals`` default to the plan's own (solved, or read back)."""
    if not plan.status.has_plan:
        return []
    out = [sections.decision(plan), sections.by_year(plan),
           sections.binding(plan, plan.marginals if marginals is None else marginals)]
    if plan.stochastic and plan.scenarios is not None and len(plan.scenarios):
        from .text import value_of_information_lines

        out.append(sections.scenarios(plan, value_of_information_lines(plan)))
    return out


def plan_page(plan: Plan) -> Page:
    inst = plan.instance
    what = "a plan under uncertainty" if plan.stochastic else "a plan"
    sub = [f"{inst.start}-{inst.end}", f"objective {inst.objective.kind}",
           f"{len(inst.regions)} regions, {len(inst.chips)} chips"]
    if plan.stochastic:
        sub.append(f"{len(inst.scenarios())} scenarios")
    return Page(f"Capacity plan: {inst.name}", status_sentence(plan), _level(plan.status),
                f"{what.capitalize()}, " + ", ".join(sub) + (f". {inst.description}" if inst.description else ""),
                headline(plan), plan_sections(plan))


def ranges_page(result) -> Page:
    """Near-optimal ranges (an :class:`optimizer.Alternatives` or a :class:`RangesResult`), then the optimal plan."""
    plan, t = result.optimal, result.table
    if getattr(result, "slack", None) is not None:
        t.attrs.setdefault("slack", result.slack)
    proven = (t.status == "optimal").all()
    status = status_sentence(plan) + (" Every near-optimal range is proven." if proven else
                                      f" {int((t.status != 'optimal').sum())} of {len(t)} ranges are not proven "
                                      "(a time limit): their bounds are shown.")
    level = _level(plan.status) if proven else "warn"
    # the optimal plan's marginals: only those read back (its model has served the range solves since)
    marg = getattr(plan, "_marginals", None)
    body = [sections.ranges(t, plan)] + plan_sections(plan, marg if marg is not None else pd.DataFrame())
    return Page(f"Near-optimal ranges: {plan.instance.name}", status, level,
                f"{len(t)} aggregates, {int(t.robust.sum())} forced; the optimal plan follows",
                headline(plan), body)


def sweep_page(result: SweepResult) -> Page:
    df = result.table
    counts = df.status.value_counts()
    optimal = int(counts.get("optimal", 0))
    if optimal == len(df):
        status, level = f"All {len(df)} scenarios of the sweep are proven optimal.", "ok"
    else:
        others = ", ".join(f"{n} {s}" for s, n in counts.items() if s != "optimal")
        status = f"{optimal} of {len(df)} scenarios are proven optimal; the others: {others}."
        level = "warn" if df.status.isin(["optimal", "feasible"]).any() else "bad"
    figures = [("scenarios", number(len(df))), ("varied", ", ".join(result.paths))]
    good = df[df.status.isin(["optimal", "feasible"])]
    if len(good):
        figures.append(("objective range", f"{number(good.objective.min())} to {number(good.objective.max())}"))
    return Page(f"Sweep: {result.instance or 'capplan'}", status, level,
                f"{len(df)} scenarios varying {', '.join(result.paths)}", figures,
                [sections.sweep_curves(df, result.paths, result.kinds, result.mode),
                 sections.sweep_table(df, result.paths, result.kinds)])


def simulation_page(sim) -> Page:
    """A policy simulation: the policies side by side, the value of the stochastic policy, every path."""
    from .text import simulation_objective, simulation_value_sentence

    money = sim.truth.objective.kind == "min_cost"
    unproven = sim.solves[~sim.solves.status.isin(["optimal", "infeasible"])]
    n = sim.paths.path.nunique()
    if len(unproven):
        status, level = (f"{len(unproven)} of {len(sim.solves)} epoch solves are not proven optimal (worst gap "
                         f"{unproven.mip_gap.max():.3%}): the outcomes are those of the plans found."), "warn"
    else:
        status, level = f"Every one of the {len(sim.solves)} epoch solves is proven.", "ok"
    figures = [("paths", number(n) + (" (sampled)" if sim.sampled else "")),
               ("epochs", ", ".join(map(str, sim.epochs)))]
    if sim.value is not None:
        figures.append(("value of the stochastic policy", simulation_objective(sim.value.value, money)))
    for r in sim.summary.itertuples():
        figures.append((f"expected, {r.policy}", simulation_objective(r.expected_objective, money)))
    return Page(f"Policy simulation: {sim.policy_instance.name} against {sim.truth.name}", status, level,
                f"{sim.truth.start}-{sim.truth.end}, objective {sim.truth.objective.kind}, policies "
                f"{', '.join(sim.policies)}", figures,
                [sections.simulation_policies(sim, simulation_value_sentence(sim)), sections.simulation_paths(sim)])


def sweep_result(df: pd.DataFrame) -> SweepResult:
    """The table :func:`optimizer.sweep` returns, with its paths and kinds from its ``attrs``."""
    vary = df.attrs.get("vary") or {}
    paths = list(vary) or list(df.columns[df.columns.get_loc("label") + 1:df.columns.get_loc("status")])
    kinds = df.attrs.get("kinds") or {p: _kind(vary.get(p, [])) for p in paths}
    return SweepResult(df, paths, kinds, df.attrs.get("mode", "grid"), df.attrs.get("instance", ""))


def page(result) -> Page:
    """The page of a result: a Plan, a sweep (its table or a :class:`SweepResult`), or near-optimal ranges."""
    if isinstance(result, Plan):
        return plan_page(result)
    if isinstance(result, pd.DataFrame):
        return sweep_page(sweep_result(result))
    if isinstance(result, SweepResult):
        return sweep_page(result)
    if hasattr(result, "table") and isinstance(getattr(result, "optimal", None), Plan):
        return ranges_page(result)
    if hasattr(result, "policies") and hasattr(result, "realised"):
        return simulation_page(result)
    raise TypeError(f"no report for a {type(result).__name__}: give a Plan, a sweep table or Alternatives")


# --------------------------------------------------------------------------- the HTML


CSS = """
:root { --ink:#1d2330; --muted:#5b6474; --line:#dde2ea; --bg:#f5f7fa; --ok:#1f7a3f; --warn:#9a5b00;
  --bad:#b3261e; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
header, main > section, nav { max-width:1180px; margin:0 auto; }
header { padding:20px 24px 8px; }
.status { margin:0 0 10px; padding:10px 14px; border-radius:6px; font-weight:600; border-left:6px solid; }
.status.ok { background:#e8f5ec; border-color:var(--ok); color:var(--ok); }
.status.warn { background:#fff4e0; border-color:var(--warn); color:var(--warn); }
.status.bad { background:#fdecea; border-color:var(--bad); color:var(--bad); }
h1 { font-size:26px; margin:6px 0 2px; }
.subtitle { color:var(--muted); margin:0 0 14px; }
.figures { display:grid; grid-template-columns:repeat(auto-fit,minmax(200px,1fr)); gap:12px; margin:0; }
.figures div { background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
.figures dt { color:var(--muted); font-size:13px; }
.figures dd { margin:2px 0 0; font-size:18px; font-weight:600; }
nav { padding:4px 24px 0; display:flex; flex-wrap:wrap; gap:6px 16px; font-size:14px; }
nav a { color:#2b5797; text-decoration:none; }
main > section { background:#fff; border:1px solid var(--line); border-radius:10px; margin:16px auto;
  padding:6px 24px 18px; }
h2 { font-size:20px; margin:14px 0 8px; }
.charts { display:grid; grid-template-columns:repeat(auto-fit,minmax(420px,1fr)); gap:16px; margin:12px 0; }
.charts.one { grid-template-columns:minmax(0,1fr); }
.chart { width:100%; min-width:0; }
.table { margin:12px 0; overflow-x:auto; }
.table.scroll { max-height:440px; overflow-y:auto; border:1px solid var(--line); border-radius:6px; }
table { border-collapse:collapse; font-size:13px; font-variant-numeric:tabular-nums; min-width:50%; }
caption { text-align:left; font-weight:600; padding:4px 0 6px; color:var(--ink); }
th, td { padding:4px 10px; border-bottom:1px solid var(--line); text-align:left; white-space:nowrap; }
th { background:#f0f3f7; position:sticky; top:0; cursor:pointer; user-select:none; white-space:normal;
  vertical-align:bottom; }
th.num, td.num { text-align:right; }
th[aria-sort=ascending]::after { content:" \\25B2"; font-size:10px; }
th[aria-sort=descending]::after { content:" \\25BC"; font-size:10px; }
tbody tr:hover { background:#f7f9fc; }
ul.findings { margin:8px 0; padding-left:20px; }
ul.findings li { margin:3px 0; }
.picker select { font:inherit; padding:2px 6px; }
footer { max-width:1180px; margin:0 auto 24px; padding:0 24px; color:var(--muted); font-size:12px; }
@media print { nav { display:none; } main > section { break-inside:avoid-page; } }
"""

SORT_JS = """
(function () {
  function key(cell) {
    if (cell.dataset.v !== undefined) { return cell.dataset.v === '' ? NaN : parseFloat(cell.dataset.v); }
    return cell.textContent;
  }
  function sortBy(table, th, i) {
    var dir = th.getAttribute('aria-sort') === 'ascending' ? 'descending' : 'ascending';
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir);
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows), sign = dir === 'ascending' ? 1 : -1;
    rows.sort(function (a, b) {
      var x = key(a.cells[i]), y = key(b.cells[i]);
      if (typeof x === 'number') {
        if (isNaN(x) || isNaN(y)) { return isNaN(x) - isNaN(y); }
        return sign * (x - y);
      }
      return sign * String(x).localeCompare(String(y), undefined, {numeric: true});
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    table.querySelectorAll('th').forEach(function (th, i) {
      th.tabIndex = 0;
      th.title = 'sort';
      th.addEventListener('click', function () { sortBy(table, th, i); });
      th.addEventListener('keydown', function (e) { if (e.key === 'Enter') { sortBy(table, th, i); } });
    });
  });
})();
"""

CHARTS_JS = """
const specs = JSON.parse(document.getElementById('capplan-charts').textContent);
const views = [];
const select = document.getElementById('scenario-select');
function showScenario() {
  if (!select) { return Promise.resolve(); }
  document.querySelectorAll('[data-scenario]').forEach(function (el) {
    el.hidden = el.dataset.scenario !== select.value;
  });
  return Promise.all(views.filter(function (v) { return v.scenario; }).map(function (v) {
    return v.view.signal('scenario', select.value).runAsync();
  }));
}
if (select) { select.addEventListener('change', showScenario); }
const jobs = Array.prototype.map.call(document.querySelectorAll('[data-chart]'), function (el) {
  const spec = specs[el.dataset.chart];
  return vegaEmbed(el, spec, {actions: false}).then(function (result) {
    views.push({view: result.view, scenario: (spec.params || []).some(function (p) { return p.name === 'scenario'; })});
  }).catch(function (e) {
    el.textContent = 'This chart could not be drawn: ' + e;
    console.error(e);
  });
});
Promise.all(jobs).then(showScenario).then(function () { document.documentElement.dataset.rendered = 'yes'; });
"""


def _script(text: str) -> str:
    """JavaScript safe inside a <script> element (no closing tag within)."""
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE)


def _json(value) -> str:
    """JSON safe inside a <script> element: every ``<`` escaped."""
    return json.dumps(value, allow_nan=False).replace("<", "\\u003c")


def render(pg: Page, *, source: str = "") -> str:
    """The page as one HTML document with everything it needs inlined."""
    esc = html.escape
    specs: dict[str, dict] = {}
    body = []
    for sec in pg.sections:
        body.append(f'<section id="{esc(sec.id)}"><h2>{esc(sec.title)}</h2>')
        for block in sec.blocks:
            if isinstance(block, Charts):
                divs = []
                for spec in block.specs:
                    key = f"c{len(specs)}"
                    specs[key] = spec
                    divs.append(f'<div class="chart" data-chart="{key}" role="img" '
                                f'aria-label="{esc(_chart_title(spec))}"></div>')
                body.append(f'<div class="charts{" one" if len(divs) == 1 else ""}">' + "".join(divs) + "</div>")
            else:
                body.append(block)
        body.append("</section>")
    nav = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in pg.sections)
    figures = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in pg.figures)
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    scripts = ""
    if specs:
        scripts = (f'<script type="application/json" id="capplan-charts">{_json(specs)}</script>'
                   f'<script type="module">{_script(vega.javascript())}\n{CHARTS_JS}</script>')
    else:
        scripts = "<script>document.documentElement.dataset.rendered = 'yes';</script>"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(pg.title)}</title><style>{CSS}</style></head><body>"
        f'<header><p class="status {esc(pg.level)}" id="status">{esc(pg.status)}</p>'
        f"<h1>{esc(pg.title)}</h1><p class=subtitle>{esc(pg.subtitle)}</p>"
        + (f'<dl class="figures">{figures}</dl>' if figures else "")
        + f"</header><nav>{nav}</nav><main>{''.join(body)}</main>"
        f"<footer>Made by capplan on {made}{' from ' + esc(source) if source else ''}. Hover a chart for its "
        "numbers; click a table header to sort.</footer>"
        f"<script>{_script(SORT_JS)}</script>{scripts}</body></html>\n"
    )


def _chart_title(spec: dict) -> str:
    t = spec.get("title")
    return t.get("text", "") if isinstance(t, dict) else str(t or "chart")


# --------------------------------------------------------------------------- writing, notebooks


class Report:
    """A result's report page: :meth:`write` it as one HTML file; a notebook shows it inline."""

    def __init__(self, result, *, source: str = ""):
        self.page = page(result)
        self.source = source
        self._html: str | None = None

    @property
    def html(self) -> str:
        if self._html is None:
            self._html = render(self.page, source=self.source)
        return self._html

    def write(self, path: str | os.PathLike) -> Path:
        """Write the page atomically: the file is whole or not there."""
        path = Path(path)
        if path.parent and not path.parent.is_dir():
            raise ReportError(f"{path.parent} is not a directory")
        text = self.html
        return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" style="width:100%;height:900px;border:0" '
                f'title="{html.escape(self.page.title)}"></iframe>')

    def __repr__(self) -> str:
        return f"<Report {self.page.title!r}: {len(self.page.sections)} sections>"


def report(result, *, source: str = "") -> Report:
    """The report page of a result (a Plan, a sweep table, Alternatives); ``.write(path)`` saves it."""
    return Report(result, source=source)


def write_report(result, path: str | os.PathLike, *, source: str = "") -> Path:
    return Report(result, source=source).write(path)


def ranges_html(result) -> str:
    """A compact notebook view of near-optimal ranges: the optimal plan's status and the ranges table."""
    t = result.table
    slack = getattr(result, "slack", None)
    head = (f"<p><b>{html.escape(result.optimal.instance.name)}</b>: near-optimal ranges"
            + (f" within {slack:.1%} of the optimum" if slack is not None else "")
            + f" ({int(t.robust.sum())} of {len(t)} forced). {html.escape(status_sentence(result.optimal))}</p>")
    cols = ["aggregate", "unit", "optimal", "min", "max", "robust", "status"]
    return "<div>" + head + html_table(t[cols].assign(robust=t.robust.map({True: "yes", False: "no"}))) + "</div>"
