"""The report page (``capplan report``): its numbers against the plan's tables, its sections for each kind of
result, its errors and atomic writes, the notebook views, and the page as a reader sees it in headless
Chromium (no console errors, no network, every section and chart drawn, a screenshot)."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, solved_file
from typer.testing import CliRunner

from optimizer.cli import Exit, app
from optimizer.plan import read_plan
from optimizer.plan.display import status_sentence, usd
from optimizer.plan.tables import commitments_table
from optimizer.report import html as report_html
from optimizer.report.vega import weighted_quantiles

TREE = ROOT / "instances" / "tiny-tree-hedge.yaml"
INFEASIBLE = ROOT / "tests" / "instances" / "infeasible-demand.yaml"
runner = CliRunner()


# --------------------------------------------------------------------------- reading a page back


class Parsed(HTMLParser):
    """What a reader sees on a page: the status line, the sections, the tables (cell text and raw value)."""

    def __init__(self, text: str):
        super().__init__()
        self.status = ""
        self.status_class = ""
        self.first_text = None
        self.sections: list[str] = []
        self.tables: list[dict] = []
        self.options: list[tuple[str, bool]] = []
        self.paragraphs: list[str] = []
        self._in = None
        self._cell = None
        self._p = None
        self._caption = None
        self.charts = json.loads(re.search(r'id="capplan-charts">(.*?)</script>', text, re.S).group(1)) \
            if 'id="capplan-charts"' in text else {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "p" and a.get("id") == "status":
            self._in, self.status_class = "status", a.get("class", "")
        elif tag == "p":
            self._p = []
        elif tag == "section":
            self.sections.append(a["id"])
        elif tag == "table":
            self.tables.append({"caption": "", "header": [], "rows": [], "row_attrs": []})
        elif tag == "caption":
            self._caption = []
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
            self.tables[-1]["row_attrs"].append(a)
        elif tag in ("td", "th"):
            self._cell = {"v": a.get("data-v"), "text": [], "tag": tag}
        elif tag == "option":
            self.options.append((a["value"], "selected" in a))

    def handle_endtag(self, tag):
        if tag == "p" and self._in == "status":
            self._in = None
        elif tag == "p" and self._p is not None:
            self.paragraphs.append("".join(self._p))
            self._p = None
        elif tag == "caption" and self._caption is not None:
            self.tables[-1]["caption"] = "".join(self._caption)
            self._caption = None
        elif tag in ("td", "th") and self._cell is not None:
            cell, t = self._cell, self.tables[-1]
            text = "".join(cell["text"])
            if cell["tag"] == "th":
                t["header"].append(text)
            else:
                t["rows"][-1].append((text, None if cell["v"] in (None, "") else float(cell["v"])))
            self._cell = None

    def handle_data(self, data):
        if data.strip() and self.first_text is None and self.lasttag not in ("title", "style", "script"):
            self.first_text = data.strip()
        if self._in == "status":
            self.status += data
        if self._cell is not None:
            self._cell["text"].append(data)
        if self._caption is not None:
            self._caption.append(data)
        if self._p is not None:
            self._p.append(data)

    def table(self, caption: str, raw: bool = True) -> pd.DataFrame:
        """The table whose caption starts with ``caption``: raw values where a cell has one (``raw``), else its
        text as shown."""
        t = next(t for t in self.tables if t["caption"].startswith(caption))
        rows = [[v if v is not None and raw else text for text, v in r] for r in t["rows"] if r]
        df = pd.DataFrame(rows, columns=t["header"])
        attrs = [a for a, r in zip(t["row_attrs"], t["rows"]) if r]
        if attrs and "data-scenario" in attrs[0]:
            df.insert(0, "_scenario", [a["data-scenario"] for a in attrs])
        return df


def page_of(result) -> tuple[str, Parsed]:
    text = report_html.report(result).html
    return text, Parsed(text)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def default_page(default_plan):
    default_plan.marginals  # noqa: B018  (a solved plan's own marginals, as capplan report FILE takes them)
    return page_of(default_plan)


@pytest.fixture(scope="module")
def tree_plan():
    plan = solved_file(str(TREE))
    plan.marginals  # noqa: B018
    return plan


@pytest.fixture(scope="module")
def tree_page(tree_plan):
    return page_of(tree_plan)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    r = runner.invoke(app, ["sweep", str(ROOT / "instances" / "tiny-supply-cap.yaml"), "--vary",
                            "chips.a.supply_units=1,2,3", "--vary", "chips.a.price_usd=x0.8,x1.2", "--workers", "1",
                            "--out", str(d)])
    assert r.exit_code == 0, r.output
    return d


@pytest.fixture(scope="module")
def alternatives_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("alternatives")
    r = runner.invoke(app, ["alternatives", str(ROOT / "instances" / "tiny-alternatives.yaml"), "--slack", "0.1",
                            "--out", str(d)])
    assert r.exit_code == 0, r.output
    return d


def report_cli(source, out: Path, *extra) -> object:
    return runner.invoke(app, ["report", str(source), "--out", str(out), *map(str, extra)])


# --------------------------------------------------------------------------- a plan's numbers


def test_plan_page_reads_top_down_with_the_plans_numbers(default_plan, default_page):
    text, page = default_page
    plan = default_plan
    # the status first, in words, then the sections a planner asks for, in order
    assert page.first_text == status_sentence(plan) == page.status
    assert page.status.startswith("Proven optimal") and "ok" in page.status_class
    assert page.sections == ["decision", "by-year", "binding"]

    years = page.table("By year").set_index("year")
    assert list(years.index) == list(plan.instance.years)
    fac = plan.facilities.groupby("year")[["capacity_mw", "draw_mw"]].sum()
    pd.testing.assert_series_equal(years["capacity MW"], fac.capacity_mw, check_names=False, check_index_type=False)
    pd.testing.assert_series_equal(years["draw MW"], fac.draw_mw, check_names=False, check_index_type=False)
    assert years["ceiling MW"].tolist() == [plan.instance.power.ceiling_mw[t] for t in plan.instance.years]
    spend = plan.spend.set_index("year")
    assert years["spend"].tolist() == pytest.approx(spend.total_usd.tolist(), rel=1e-12)
    assert years["cumulative spend"].tolist() == pytest.approx(spend.cumulative_usd.tolist(), rel=1e-12)
    split = plan.split.set_index("year")
    assert years["training PFLOP/s"].tolist() == pytest.approx(split.train_pflops.tolist(), rel=1e-12)
    assert years["inference PFLOP/s"].tolist() == pytest.approx(split.infer_pflops.tolist(), rel=1e-12)
    unmet = plan.compute.groupby("year").unmet_pflops.sum()
    assert years["unmet PFLOP/s"].tolist() == pytest.approx(unmet.tolist(), rel=1e-12, abs=1e-9)

    # the decision now: the first year's purchases and block starts, with the MW they draw or bring
    c = page.table("Commitments")
    expected = commitments_table(plan.instance, plan.purchases, plan.facilities, [plan.instance.start])
    assert c[["region", "item"]].values.tolist() == expected[["region", "item"]].values.tolist()
    assert c.quantity.tolist() == pytest.approx(expected.quantity.tolist())
    assert c.MW.tolist() == pytest.approx(expected.mw.tolist())

    # what binds: the binding constraints' marginal values, largest first, as plan.marginals has them
    b = page.table("Binding constraints")
    m = plan.marginals[plan.marginals.binding & (plan.marginals.marginal != 0)]
    top = m.marginal.abs().sort_values(ascending=False)
    assert b.marginal.abs().tolist() == pytest.approx(top.tolist(), rel=1e-12)
    assert b.constraint.iloc[0] == "the total budget"  # the default plan spends its whole budget
    budget = m[m.family == "budget"].marginal.iloc[0]
    assert any(f"$1B more total budget adds {budget:,.0f}" in li for li in re.findall(r"<li>(.*?)</li>", text))

    # the key figures and a chart's data are the plan's too
    assert usd(plan.summary.total_spend_usd.iloc[0]) in text
    spend_chart = next(s for s in page.charts.values() if s["title"]["text"] == "Spend against the budget")
    bars = pd.DataFrame(spend_chart["datasets"][spend_chart["layer"][0]["data"]["name"]])
    assert (bars.groupby("year").busd.sum() * 1e9).tolist() == pytest.approx(spend.total_usd.tolist(), rel=1e-9)


def test_tree_page_commits_now_and_prices_the_scenarios(tree_plan, tree_page):
    """tiny-tree-hedge, worked by hand in the file: buy 5 units of a now; O = 50 and 35 against 60 and 40 with
    perfect foresight; EVPI 7, VSS 2."""
    text, page = tree_page
    assert page.sections == ["decision", "by-year", "binding", "scenarios"]
    c = page.table("Commitments")
    assert c[["year", "region", "item", "quantity"]].values.tolist() == [[2026, "r", "a", 5]]
    sc = page.table("Each scenario").set_index("scenario")
    assert sc.objective.to_dict() == pytest.approx({"on-spec": 50, "weak": 35}, abs=1e-3)
    assert sc["with perfect foresight"].to_dict() == pytest.approx({"on-spec": 60, "weak": 40}, abs=1e-3)
    assert sc.regret.to_dict() == pytest.approx({"on-spec": 10, "weak": 5}, abs=1e-3)
    items = re.findall(r"<li>(.*?)</li>", text)
    assert any("would be worth 7 PFLOP/s-years" in li for li in items), items
    assert any("gains 2 PFLOP/s-years" in li for li in items), items
    # the by-year section shows one scenario at a time, the most probable first
    assert page.options == [("on-spec", False), ("weak", True)]
    years = page.table("By year")
    assert sorted(set(years._scenario)) == ["on-spec", "weak"]
    assert (years._scenario == years.scenario).all()
    cap = tree_plan.facilities.groupby(["scenario", "year"]).capacity_mw.sum()
    assert years.set_index(["scenario", "year"])["capacity MW"].to_dict() == pytest.approx(cap.to_dict())
    # the fan chart's bands are the probability-weighted quantiles of the scenarios
    fan = next(s for s in page.charts.values() if s["title"]["text"].startswith("Facility capacity across"))
    assert any(layer.get("mark", {}).get("type") == "area" for layer in fan["layer"])


def test_weighted_quantiles_by_hand():
    values, weights = [3.0, 1.0, 2.0], [0.3, 0.2, 0.5]  # sorted: 1 (0.2), 2 (0.7 cumulative), 3 (1.0)
    assert weighted_quantiles(values, weights, (0.1, 0.2, 0.25, 0.5, 0.7, 0.75, 0.9)) == [1, 1, 2, 2, 2, 3, 3]


def test_unproven_plan_says_so_in_the_first_line(default_plan, tmp_path):
    d = tmp_path / "plan"
    default_plan.write(d)
    summary = json.loads((d / "summary.json").read_text())
    summary.update(status="feasible", mip_gap=0.025, message="time limit reached")
    (d / "summary.json").write_text(json.dumps(summary))
    r = report_cli(d, tmp_path / "r.html")
    assert r.exit_code == 0, r.output
    page = Parsed((tmp_path / "r.html").read_text())
    assert page.first_text.startswith("Not proven optimal")
    assert "by up to 2.50%" in page.first_text and "warn" in page.status_class


def test_marginals_kept_in_the_plan_directory(default_plan, tmp_path):
    plain = tmp_path / "plain"
    read_plan_copy = _written(default_plan, tmp_path / "first")
    assert read_plan_copy.marginals.empty  # the model is not on disk
    read_plan_copy.write(plain)  # a plan read back without marginals writes none
    assert not (plain / "marginals.csv").exists()
    page = Parsed(report_html.report(read_plan(plain)).html)
    assert any("Marginal values are not available" in p for p in page.paragraphs)

    default_plan.marginals  # noqa: B018
    full = tmp_path / "full"
    default_plan.write(full)
    back = read_plan(full)
    pd.testing.assert_frame_equal(back.marginals.drop(columns="year"),
                                  default_plan.marginals.drop(columns="year"), check_dtype=False)
    assert back.marginals.year.fillna(-1).tolist() == default_plan.marginals.year.fillna(-1).tolist()
    assert back.marginals.binding.dtype == bool


def _written(plan, d: Path):
    saved = getattr(plan, "_marginals", None)
    plan._marginals = None
    try:
        plan.write(d)
    finally:
        plan._marginals = saved
    return read_plan(d)


# --------------------------------------------------------------------------- sweeps and ranges


def test_sweep_directory_report(sweep_dir, tmp_path):
    r = report_cli(sweep_dir, tmp_path / "sweep.html")
    assert r.exit_code == 0, r.output
    page = Parsed((tmp_path / "sweep.html").read_text())
    assert page.sections == ["sweep", "sweep-table"]
    assert page.status == "All 6 scenarios of the sweep are proven optimal."
    df = pd.read_csv(sweep_dir / "sweep.csv")
    t = page.table("Scenarios")
    assert t.objective.tolist() == pytest.approx(df.objective.tolist(), rel=1e-12)
    shown = page.table("Scenarios", raw=False)
    assert shown["chips.a.price_usd"].tolist() == [f"x{v:g}" for v in df["chips.a.price_usd"]]  # as written
    result = report_html.read_result(sweep_dir)
    assert result.paths == ["chips.a.supply_units", "chips.a.price_usd"]
    assert result.kinds == {"chips.a.supply_units": "value", "chips.a.price_usd": "factor"}
    assert result.mode == "grid"
    titles = [s["title"]["text"] for s in page.charts.values()]
    assert titles == ["By chips.a.supply_units", "By chips.a.price_usd", "objective over the grid"]


def test_alternatives_directory_report(alternatives_dir, tmp_path):
    r = report_cli(alternatives_dir, tmp_path / "alt.html")
    assert r.exit_code == 0, r.output
    page = Parsed((tmp_path / "alt.html").read_text())
    assert page.sections == ["ranges", "decision", "by-year", "binding"]
    t = page.table("Ranges").set_index("aggregate")
    csv = pd.read_csv(alternatives_dir / "alternatives.csv").set_index("aggregate")
    for col in ("optimal", "min", "max"):
        assert t[col].to_dict() == pytest.approx(csv[col].to_dict())
    assert t.robust.to_dict() == {"chips.a": "no", "chips.b": "no", "regions.r": "yes"}  # as the file says


# --------------------------------------------------------------------------- errors and atomic writes


@pytest.mark.parametrize("case", ["missing", "empty-dir", "unfinished-sweep", "invalid", "infeasible",
                                  "out-missing-dir", "out-is-dir"])
def test_bad_input_exits_like_plot(case, tmp_path):
    out = tmp_path / "r.html"
    source = {"missing": tmp_path / "nothing", "infeasible": INFEASIBLE}.get(case, tmp_path / "src")
    expect = {"invalid": Exit.INVALID, "infeasible": Exit.INFEASIBLE}.get(case, Exit.USAGE)
    if case in ("empty-dir", "unfinished-sweep"):
        source.mkdir()
    if case == "unfinished-sweep":
        (source / "sweep.sqlite").write_bytes(b"")
    if case == "invalid":
        source = tmp_path / "bad.yaml"
        source.write_text("name: bad\nhorizon: {start: 2030, end: 2026}\n")
    if case in ("out-missing-dir", "out-is-dir"):
        source = ROOT / "instances" / "tiny-supply-cap.yaml"
        out = tmp_path / "no" / "r.html" if case == "out-missing-dir" else tmp_path
    r = report_cli(source, out)
    assert r.exit_code == expect, r.output
    words = {"missing": "no such file", "empty-dir": "not a plan, sweep, alternatives or simulation directory",
             "unfinished-sweep": "unfinished sweep", "invalid": "invalid instance", "infeasible": "infeasible",
             "out-missing-dir": "no directory", "out-is-dir": "is a directory"}[case]
    assert words in r.output
    assert not list(tmp_path.rglob("*.html"))


def test_report_written_whole_or_not_at_all(default_plan, tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    target.write_text("the previous report\n")

    def refuse(*_):
        raise OSError("disk full")

    monkeypatch.setattr("optimizer.files.os.replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        report_html.write_report(default_plan, target)
    assert target.read_text() == "the previous report\n"
    assert os.listdir(tmp_path) == ["report.html"]  # no temporary file left behind
    monkeypatch.undo()
    report_html.write_report(default_plan, target)
    assert target.read_text().startswith("<!DOCTYPE html>")


def test_the_page_needs_no_network(default_page):
    text, page = default_page
    # no external script, style, image or font: every script is inline, every link an anchor within the page
    assert not re.search(r"<script[^>]*\bsrc=", text) and "<link" not in text
    markup = re.sub(r"<script\b.*?</script>", "", text, flags=re.S)
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', markup)
    assert refs and all(r.startswith("#") for r in refs), [r for r in refs if not r.startswith("#")][:5]
    assert "@import" not in text and "url(http" not in text
    # commitments; capacity, spend, split, demand; marginal values
    assert len(page.charts) == 6 and text.count('data-chart="') == 6


# --------------------------------------------------------------------------- notebooks


def test_notebook_views(default_plan, tree_plan):
    nb = default_plan._repr_html_()
    assert status_sentence(default_plan).split(":")[0] in nb
    table = Parsed(nb).table("By year")
    assert table.year.tolist() == list(default_plan.instance.years)
    tree = Parsed(tree_plan._repr_html_())
    assert tree.table("What to commit now").quantity.tolist() == [5]
    assert tree.table("Scenarios").scenario.tolist() == ["on-spec", "weak"]

    from optimizer import alternatives, load_instance

    alt = alternatives(load_instance(ROOT / "instances" / "tiny-alternatives.yaml"), 0.1, plans=False)
    assert repr(alt) == "<Alternatives of tiny-alternatives within 0.1: 3 aggregates, 1 robust, 0 extreme plans>"
    ranges = Parsed(alt._repr_html_()).table("")
    assert ranges["aggregate"].tolist() == ["chips.a", "chips.b", "regions.r"]
    assert "within 10.0% of the optimum" in alt._repr_html_()


def test_a_sweep_table_shows_itself_as_a_report():
    from optimizer import load_instance, sweep

    df = sweep(load_instance(ROOT / "instances" / "tiny-supply-cap.yaml"), {"chips.a.supply_units": [1, 3]},
               workers=1)
    r = report_html.report(df)
    assert repr(r) == "<Report 'Sweep: tiny-supply-cap': 2 sections>"
    frame = r._repr_html_()
    assert frame.startswith("<iframe srcdoc=") and "All 2 scenarios of the sweep are proven optimal." in frame


# --------------------------------------------------------------------------- in a browser


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed: pip install -e '.[test]'")
    with sync_api.sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=ARGS, headless=True,
                                                        viewport={"width": 1280, "height": 900})
        try:
            yield context
        finally:
            context.close()


def open_page(context, path: Path):
    """Open a report file; returns the page and what it logged and requested (every request is refused)."""
    page = context.new_page()
    log = {"console": [], "errors": [], "requests": []}
    page.on("console", lambda m: log["console"].append(f"{m.type}: {m.text}") if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: log["errors"].append(str(e)))
    own = path.resolve().as_uri()

    def route(r):
        log["requests"].append(r.request.url)
        return r.continue_() if r.request.url == own else r.abort()

    page.route("**/*", route)
    page.goto(own, wait_until="load")
    page.wait_for_function("document.documentElement.dataset.rendered === 'yes'", timeout=120_000)
    return page, log


def check_rendered(page, log, sections: list[str], screenshot: Path) -> None:
    assert not log["errors"] and not log["console"], log
    assert len(log["requests"]) == 1, log["requests"]  # the page itself, nothing else
    for sid in sections:
        assert page.locator(f"section#{sid}").is_visible(), sid
    charts = page.locator("[data-chart]")
    assert charts.count() > 0
    for i in range(charts.count()):  # each chart drawn (vega-embed draws SVG), with marks in it
        drawn = charts.nth(i).locator("svg.marks")
        box = drawn.bounding_box()
        assert box and box["width"] > 200 and box["height"] > 100, (i, box)
        assert drawn.locator("path, rect, line").count() > 10, i
    page.screenshot(path=str(screenshot), full_page=True)
    import matplotlib.image as mpimg

    img = mpimg.imread(screenshot)
    assert img.shape[1] == 1280 and img.shape[0] > 900 and img.std() > 0.05  # a whole page, not blank


def test_plan_page_in_chromium(browser, default_plan, default_page, tmp_path):
    path = tmp_path / "plan.html"
    path.write_text(default_page[0])
    page, log = open_page(browser, path)
    check_rendered(page, log, ["decision", "by-year", "binding"], tmp_path / "plan.png")
    assert page.locator("#status").inner_text() == status_sentence(default_plan)
    # the numbers a reader sees are the plan's, and a click on a header sorts the table
    rows = page.locator("table:has(caption:text('By year')) tbody tr")
    cap = [float(rows.nth(i).locator("td").nth(1).get_attribute("data-v")) for i in range(rows.count())]
    assert cap == default_plan.facilities.groupby("year").capacity_mw.sum().tolist()
    header = page.locator("table:has(caption:text('By year')) th", has_text=re.compile("^spend$"))
    header.click()
    spend = [float(v) for v in rows.locator("td:nth-child(5)").evaluate_all("cs => cs.map(c => c.dataset.v)")]
    assert spend == sorted(spend) and header.get_attribute("aria-sort") == "ascending"
    header.click()
    spend = [float(v) for v in rows.locator("td:nth-child(5)").evaluate_all("cs => cs.map(c => c.dataset.v)")]
    assert spend == sorted(spend, reverse=True)
    page.close()


def test_tree_page_in_chromium(browser, tree_page, tmp_path):
    path = tmp_path / "tree.html"
    path.write_text(tree_page[0])
    page, log = open_page(browser, path)
    check_rendered(page, log, ["decision", "by-year", "binding", "scenarios"], tmp_path / "tree.png")
    visible = page.locator("table:has(caption:text('By year')) tbody tr:visible")
    assert set(visible.evaluate_all("rs => rs.map(r => r.dataset.scenario)")) == {"weak"}
    page.select_option("#scenario-select", "on-spec")
    page.wait_for_function("[...document.querySelectorAll('p[data-scenario]')].every(p => p.hidden === "
                           "(p.dataset.scenario !== 'on-spec'))")
    assert set(visible.evaluate_all("rs => rs.map(r => r.dataset.scenario)")) == {"on-spec"}
    assert not log["errors"] and not log["console"], log
    page.close()


def test_sweep_and_ranges_pages_in_chromium(browser, sweep_dir, alternatives_dir, tmp_path):
    for name, source, sections in (("sweep", sweep_dir, ["sweep", "sweep-table"]),
                                   ("alternatives", alternatives_dir, ["ranges", "decision", "by-year"])):
        path = tmp_path / f"{name}.html"
        assert report_cli(source, path).exit_code == 0
        page, log = open_page(browser, path)
        check_rendered(page, log, sections, tmp_path / f"{name}.png")
        page.close()
