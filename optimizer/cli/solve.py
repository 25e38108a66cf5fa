"""``capplan solve``, ``validate``, ``explain``, ``plot`` and ``compare``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from ..errors import InstanceError
from ..instance import load_instance
from ..solver import SolveStatus
from .app import (
    EXIT_HELP,
    STATUS_EXIT,
    Exit,
    _load_instance_or_exit,
    _plan_from,
    _print_problems,
    _table,
    app,
    err,
    out,
    stderr_duplicate,
)


def _show_plan(plan) -> None:
    from ..report.text import purchases_by_year, summary_lines, yearly_overview

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in summary_lines(plan):
        grid.add_row(label, value)
    out.print(grid)
    if not plan.status.has_plan:
        return
    out.print()
    if plan.stochastic:
        if plan.scenarios is not None and len(plan.scenarios) <= 8:
            cap = plan.facilities.pivot_table(index="year", columns="scenario", values="capacity_mw", aggfunc="sum")
            out.print(_table(cap[list(plan.scenarios.scenario)].reset_index(),
                             "Facility capacity by scenario (MW)"))
        out.print("each scenario's full plan: capplan solve FILE --out DIR (a scenario column in every table); "
                  "charts: capplan plot DIR")
        return
    out.print(_table(yearly_overview(plan), "By year", money=("spend_usd",), pct=("training_share",)))
    out.print()
    out.print(_table(purchases_by_year(plan), "Chips bought (chip@region)"))
    blocks = plan.facilities[plan.facilities.blocks_started > 0][["year", "region", "blocks_started"]]
    if len(blocks):
        out.print()
        out.print(_table(blocks, "Campus blocks started"))


class _ProgressLine:
    """A live line on a terminal, fed by HiGHS's own MIP callbacks (not a spinner)."""

    def __init__(self):
        from rich.live import Live
        from rich.text import Text

        self._stream = stderr_duplicate()  # so the line reaches the screen while HiGHS runs
        console = Console(file=self._stream, force_terminal=True)
        self._text = Text
        self.live = Live(Text("HiGHS: building the model and a starting plan..."), console=console,
                         transient=True, refresh_per_second=4)

    def __enter__(self):
        self.live.__enter__()
        return self

    def __exit__(self, *exc):
        self.live.__exit__(*exc)
        self._stream.close()

    def step(self, text: str) -> None:
        """A step of the analyses that run beside the main solve."""
        self.live.update(self._text(f"{text}"), refresh=True)

    def __call__(self, p) -> None:
        inc = "-" if p.incumbent is None else f"{p.incumbent:,.6g}"
        bnd = "-" if p.bound is None else f"{p.bound:,.6g}"
        gap = "-" if p.gap is None else f"{p.gap:.3%}"
        # render now: HiGHS may hold the GIL, so Live's own refresh thread cannot
        self.live.update(self._text(
            f"HiGHS {p.elapsed_seconds:6.1f} s   best plan {inc}   bound {bnd}   gap {gap}"), refresh=True)


SOLVE_HELP = """Solve an instance and print the plan.

An instance with an `uncertainty` section is solved over its scenario tree:
the output starts with what to commit now (the decisions before the first
stage), then each scenario's objective and regret, then what knowing the
future is worth (EVPI) and what planning for the scenarios gains over
planning for the base forecast (VSS). The value-of-information solves run on
--workers local processes (default: the cores but one) or a Dask cluster
(--scheduler); --no-value-of-information skips them.

--commit PLAN_DIR --through YEAR holds an earlier plan's purchases and block
starts of the years up to YEAR and reports what that costs against a free
re-plan.

""" + EXIT_HELP


@app.command(help=SOLVE_HELP)
def solve(
    file: Path = typer.Argument(..., help="Instance YAML file."),
    out_dir: Path | None = typer.Option(None, "--out", help="Write every plan table, summary.json and a "
                                        "copy of the instance to this directory."),
    fmt: str = typer.Option("csv", "--format", help="Comma-separated formats: csv,parquet,xlsx,json."),
    time_limit: float | None = typer.Option(None, "--time-limit", help="Seconds for HiGHS (each solve)."),
    gap: float = typer.Option(1e-4, "--gap", help="Relative MIP gap at which HiGHS stops."),
    threads: int | None = typer.Option(None, "--threads", help="HiGHS threads."),
    log: bool = typer.Option(False, "--log", help="Stream the HiGHS log."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the status line."),
    stats: bool = typer.Option(False, "--stats", help="Print the coefficient ranges of the matrix HiGHS sees."),
    commit: Path | None = typer.Option(None, "--commit", help="Plan directory whose decisions are held "
                                       "(with --through)."),
    through: int | None = typer.Option(None, "--through", help="Last committed year (with --commit)."),
    voi: bool = typer.Option(True, "--value-of-information/--no-value-of-information",
                             help="Under uncertainty: solve each scenario alone and the base plan (EVPI, VSS)."),
    workers: int | None = typer.Option(None, "--workers", help="Local processes for the extra solves "
                                       "(default: cores - 1)."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Dask scheduler address (tcp://host:8786)."),
) -> None:
    from .. import pipeline
    from ..plan import FORMATS
    from ..plan.commit import CommitmentError, commitments_from
    from .app import dask_client, progress_lines

    formats = [f.strip() for f in fmt.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        err.print(f"unknown format {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
        raise typer.Exit(Exit.USAGE)
    if (commit is None) != (through is None):
        err.print("--commit and --through go together: --commit PLAN_DIR --through YEAR")
        raise typer.Exit(Exit.USAGE)
    inst = _load_instance_or_exit(file)
    commitments = None
    if commit is not None:
        try:
            commitments = commitments_from(inst, commit, through)
        except CommitmentError as exc:
            _print_problems(exc, "invalid commitment")
            raise typer.Exit(Exit.INVALID) from None
    client = dask_client(scheduler)
    options = dict(time_limit=time_limit, mip_gap=gap, threads=threads, commit=commit, through=through,
                   value_of_information=voi, workers=workers, client=client)
    try:
        if err.is_terminal and not (log or quiet or as_json):
            with _ProgressLine() as line:
                plan = pipeline.solve(inst, progress=line, on_step=line.step, **options)
        else:
            with progress_lines("solve") as step:
                plan = pipeline.solve(inst, log=log, on_step=None if quiet or as_json else step, **options)
    finally:
        if client is not None:
            client.close()
    if out_dir is not None and plan.status.has_plan:
        plan.marginals  # noqa: B018  (taken now, from the model as solved: the directory keeps marginals.csv)
        plan.write(out_dir, formats)
    if as_json:
        sys.stdout.write(json.dumps(plan.to_dict(), indent=1, default=str) + "\n")
    elif quiet:
        obj = "" if plan.objective is None else f" objective {plan.objective:,.6g}"
        out.print(f"{plan.status.value}{obj}")
    else:
        if plan.stochastic:
            _show_tree(plan)
        _show_plan(plan)
        if plan.status.has_plan and not plan.stochastic:
            _show_binding(plan)
        if "commitment_cost" in plan.extra:
            _show_commitment(plan)
        if plan.status is SolveStatus.INFEASIBLE:
            from ..analysis.diagnose import explain

            out.print()
            out.print(str(explain(inst, commitments=commitments, time_limit=60.0 if time_limit is None
                                  else time_limit)), markup=False)
        if out_dir is not None and plan.status.has_plan:
            out.print(f"\nplan written to {out_dir}/ ({', '.join(formats)})")
    if stats and not as_json:
        _show_stats(plan)
    raise typer.Exit(STATUS_EXIT[plan.status])


def _show_tree(plan) -> None:
    """What a planner reads first under uncertainty: commit now, the scenarios, and what knowing is worth."""
    from ..report.text import value_of_information_lines

    inst = plan.instance
    first = inst.uncertainty.stages[0].year
    years = f"{inst.start}" + (f"-{first - 1}" if first - 1 > inst.start else "")
    if plan.status.has_plan:
        c = plan.commitments
        title = f"What to commit now ({years}, before the first uncertainty is revealed in {first})"
        if len(c):
            out.print(_table(c, title))
        else:
            out.print(f"{title}: nothing; every decision can wait")
        out.print()
        sc = plan.scenarios[["scenario", "probability", "objective", "wait_and_see_objective", "regret",
                             "unmet_pflops_years", "total_spend_usd"]]
        out.print(_table(sc, "Scenarios (objective of this plan, and of perfect foresight)",
                         money=("total_spend_usd",)))
        out.print()
    for line in value_of_information_lines(plan):
        out.print(line, highlight=False)
    out.print()


def _show_commitment(plan) -> None:
    from ..report.text import objective_unit

    cost = plan.extra["commitment_cost"]
    unit = objective_unit(plan.instance)
    through = int(plan.extra["committed_through"])
    out.print()
    if cost == float("inf"):
        out.print(f"holding the committed decisions through {through} leaves no feasible plan", highlight=False)
    elif cost == cost:  # not NaN
        share = f" ({cost / abs(plan.objective):.2%} of this plan's objective)" if plan.objective else ""
        out.print(f"commitment cost: holding the decisions committed through {through} costs {cost:,.6g} {unit}"
                  f"{share} against a free re-plan", highlight=False)


def _show_binding(plan, top: int = 8) -> None:
    from ..solver.duals import binding

    b = binding(plan.marginals, top)
    if len(b):
        b = b.assign(year=b.year.map(lambda y: "" if pd.isna(y) else str(int(y))))
        out.print()
        out.print(_table(b[["family", "year", "where", "marginal", "unit"]],
                         "Top binding constraints (objective change per unit, fixed-block LP prices)"))


def _show_stats(plan) -> None:
    ranges = plan.result.ranges
    out.print()
    for name, (lo, hi) in ranges.items():
        ratio = f"{hi / lo:.1e}" if lo > 0 else "-"
        out.print(f"{name:<7} |coef| in [{lo:.3g}, {hi:.3g}]  ratio {ratio}", highlight=False)


@app.command()
def explain(file: Path = typer.Argument(..., help="Instance YAML file.")) -> None:
    """Say why an instance is infeasible, in its own terms (years, regions, amounts)."""
    from ..analysis.diagnose import explain as run

    result = run(_load_instance_or_exit(file))
    out.print(str(result), markup=False)
    raise typer.Exit(Exit.OK if result.feasible else Exit.INFEASIBLE)


@app.command()
def plot(
    source: Path = typer.Argument(..., help="A plan directory (from solve --out) or an instance file."),
    out_dir: Path = typer.Option(Path("charts"), "--out", help="Directory for the PNG charts."),
) -> None:
    """Draw slide-ready PNG charts of a plan: fleet, capacity, spend, split, purchases."""
    from ..report.plots import plot_plan

    paths = plot_plan(_plan_from(source), out_dir)
    for p in paths:
        out.print(str(p))


@app.command()
def compare(
    plan_a: Path = typer.Argument(..., help="First plan directory or instance file."),
    plan_b: Path = typer.Argument(..., help="Second plan directory or instance file."),
    as_json: bool = typer.Option(False, "--json", help="Print the tables as one JSON document."),
) -> None:
    """Show what changed between two plans: purchases, capacity, spend and split."""
    from ..report.text import compare_plans

    tables = compare_plans(_plan_from(plan_a), _plan_from(plan_b))
    if as_json:
        doc = {k: json.loads(v.to_json(orient="records")) for k, v in tables.items()}
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
        return
    out.print(f"a = {plan_a}\nb = {plan_b}\n")
    for name, df in tables.items():
        if name == "purchases" and df.empty:
            out.print("purchases: identical\n")
            continue
        money = [c for c in df.columns if "_usd" in c]
        out.print(_table(df, name, money=money))
        out.print()


@app.command()
def validate(files: list[Path] = typer.Argument(..., help="Instance YAML files.")) -> None:
    """Check instance files without solving; list every problem with its key path."""
    bad = 0
    for f in files:
        try:
            inst = load_instance(f)
        except InstanceError as exc:
            bad += 1
            _print_problems(exc)
            continue
        out.print(f"[green]valid[/] {f}: {inst.name}, {inst.start}-{inst.end}, "
                  f"{len(inst.regions)} regions, {len(inst.chips)} chips", highlight=False)
    raise typer.Exit(Exit.INVALID if bad else Exit.OK)


