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
        import os

        from rich.live import Live
        from rich.text import Text

        # Pyomo captures file descriptors 1 and 2 while HiGHS runs; write to a duplicate of the
        # terminal's descriptor, taken now, so the line reaches the screen
        self._stream = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
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

    def __call__(self, p) -> None:
        inc = "-" if p.incumbent is None else f"{p.incumbent:,.6g}"
        bnd = "-" if p.bound is None else f"{p.bound:,.6g}"
        gap = "-" if p.gap is None else f"{p.gap:.3%}"
        # render now: HiGHS may hold the GIL, so Live's own refresh thread cannot
        self.live.update(self._text(
            f"HiGHS {p.elapsed_seconds:6.1f} s   best plan {inc}   bound {bnd}   gap {gap}"), refresh=True)


@app.command(help="Solve an instance and print the plan.\n\n" + EXIT_HELP)
def solve(
    file: Path = typer.Argument(..., help="Instance YAML file."),
    out_dir: Path | None = typer.Option(None, "--out", help="Write every plan table, summary.json and a "
                                        "copy of the instance to this directory."),
    fmt: str = typer.Option("csv", "--format", help="Comma-separated formats: csv,parquet,xlsx,json."),
    time_limit: float | None = typer.Option(None, "--time-limit", help="Seconds for HiGHS."),
    gap: float = typer.Option(1e-4, "--gap", help="Relative MIP gap at which HiGHS stops."),
    threads: int | None = typer.Option(None, "--threads", help="HiGHS threads."),
    log: bool = typer.Option(False, "--log", help="Stream the HiGHS log."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the status line."),
    stats: bool = typer.Option(False, "--stats", help="Print the coefficient ranges of the matrix HiGHS sees."),
) -> None:
    from .. import pipeline
    from ..plan import FORMATS

    formats = [f.strip() for f in fmt.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        err.print(f"unknown format {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
        raise typer.Exit(Exit.USAGE)
    inst = _load_instance_or_exit(file)
    live = err.is_terminal and not (log or quiet or as_json)
    if live:
        with _ProgressLine() as line:
            plan = pipeline.solve(inst, time_limit=time_limit, mip_gap=gap, threads=threads, progress=line)
    else:
        plan = pipeline.solve(inst, time_limit=time_limit, mip_gap=gap, threads=threads, log=log)
    if out_dir is not None and plan.status.has_plan:
        plan.write(out_dir, formats)
    if as_json:
        sys.stdout.write(json.dumps(plan.to_dict(), indent=1, default=str) + "\n")
    elif quiet:
        obj = "" if plan.objective is None else f" objective {plan.objective:,.6g}"
        out.print(f"{plan.status.value}{obj}")
    else:
        _show_plan(plan)
        if plan.status.has_plan:
            _show_binding(plan)
        if plan.status is SolveStatus.INFEASIBLE:
            from ..analysis.diagnose import explain

            out.print()
            out.print(str(explain(inst)), markup=False)
        if out_dir is not None and plan.status.has_plan:
            out.print(f"\nplan written to {out_dir}/ ({', '.join(formats)})")
    if stats and not as_json:
        _show_stats(plan)
    raise typer.Exit(STATUS_EXIT[plan.status])


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


