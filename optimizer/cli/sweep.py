"""``capplan sweep`` and ``capplan marginal`` (registered on the main app)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..files import atomic_write
from .app import Exit, _load_instance_or_exit, _table, app, dask_client, err, show
from .conventions import (
    STEP,
    CommandError,
    choice,
    force_option,
    gap_option,
    json_option,
    number_option,
    output_dir,
    report_warning,
    scheduler_option,
    time_limit_option,
    width,
    workers_option,
)

SWEEP_HELP = """Solve an instance for many values of some of its parameters; one row per scenario.

PATH is a dotted instance path (as in `Instance.with_changes`), VALUES a list
(60e9,80e9,100e9), a range START:STOP:COUNT (50e9:150e9:11), factors on the
base value (x0.8,x1,x1.2; a whole series is scaled) or year shifts (+0y,+1y).
Every path and value is checked before anything is solved.

Each finished scenario is committed to OUT/sweep.sqlite at once: a killed
sweep keeps every finished scenario and `--resume` solves only the rest;
`--force` starts afresh in an OUT that holds files. At the end OUT/sweep.csv
and a chart (tornado, line or heatmap) are written.

Exit codes: 0 every scenario solved, 4 some scenario has no proven optimal
plan (infeasible, time limit, invalid values), 2 usage error, 3 invalid
instance, 130 interrupted (finished scenarios are kept)."""


class _Bar:
    """A rich progress bar on a terminal (done, failed, time left); a line per 10% when piped."""

    def __init__(self):
        self.progress = None
        self.task = None
        self.tty = err.is_terminal
        self.next_mark = 0.1

    def __enter__(self):
        if self.tty:
            self.progress = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("[red]{task.fields[failed]} without a plan"),
                                     TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                                     console=err, transient=False)
            self.progress.__enter__()
        return self

    def __call__(self, p) -> None:
        if self.progress is not None:
            if self.task is None:
                self.task = self.progress.add_task("sweep", total=p.total, failed=0)
            self.progress.update(self.task, completed=p.done, failed=p.failed, refresh=True)
            return
        if p.done == 0:
            skipped = f" ({p.skipped} finished earlier)" if p.skipped else ""
            err.print(f"sweep: {p.total} scenarios to solve{skipped}")
        elif p.done / max(p.total, 1) >= self.next_mark or p.done == p.total:
            left = p.elapsed / p.done * (p.total - p.done)
            err.print(f"sweep: {p.done}/{p.total} done, {p.failed} without a plan, "
                      f"{p.elapsed:.0f} s elapsed, ~{left:.0f} s left")
            while self.next_mark <= p.done / max(p.total, 1):
                self.next_mark += 0.1

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.__exit__(*exc)


@app.command(help=SWEEP_HELP)
def sweep(
    file: Path = typer.Argument(..., metavar="FILE", help="Instance YAML file."),
    vary: list[str] = typer.Option(..., "--vary", metavar="PATH=VALUES", help="PATH=VALUES; repeat for more "
                                   "paths."),
    mode: str = typer.Option("grid", "--mode", help="grid (every combination) or oat (one at a time)."),
    workers: str | None = workers_option(),
    scheduler: str | None = scheduler_option(),
    out_dir: Path = typer.Option(Path("sweep-out"), "--out", metavar="DIR",
                                 help="Directory for sweep.sqlite, sweep.csv and the chart (new or empty; --resume "
                                 "or --force otherwise)."),
    resume: bool = typer.Option(False, "--resume", help="Keep the scenarios already in OUT and solve the rest."),
    force: bool = force_option(),
    time_limit: str | None = time_limit_option("each scenario"),
    gap: str = gap_option("each scenario"),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build every scenario's model afresh (no in-place "
                                 "updates; for comparison)."),
    metric: str = typer.Option("objective", "--metric", help="KPI to chart."),
    as_json: bool = json_option(),
) -> None:
    from ..analysis.sweep import KPI_COLUMNS, STORE_NAME, SweepError, check_vary, parse_vary
    from ..analysis.sweep import sweep as run
    from ..report.sweep_plots import plot_sweep

    try:
        changes = parse_vary(vary)
    except SweepError as exc:
        raise CommandError(str(exc)) from None
    choice(mode, "--mode", ("grid", "oat", "one_at_a_time"))
    choice(metric, "--metric", KPI_COLUMNS[1:])
    if resume and force:
        raise CommandError("--resume and --force exclude each other",
                           hints=["--resume continues the sweep in --out; --force starts afresh"])
    inst = _load_instance_or_exit(file)
    try:
        check_vary(inst, changes)
    except SweepError as exc:
        lines = str(exc).splitlines()
        raise CommandError(f"--vary: {len(lines)} problem{'s' if len(lines) > 1 else ''}",
                           details=[f"- {line}" for line in lines],
                           hints=["nothing was solved; fix the paths and values above"]) from None
    store = out_dir / STORE_NAME
    if store.exists() and not (resume or force):
        raise CommandError(f"--out {out_dir}: holds an earlier sweep ({store})",
                           hints=["pass --resume to continue that sweep, or --force to start afresh, or choose "
                                  "another --out"])
    output_dir(out_dir, force=force or (resume and store.exists()))  # --resume: the sweep's own directory
    if force and store.exists():
        store.unlink()
    client = dask_client(scheduler)
    try:
        with _Bar() as bar:
            df = run(inst, changes, mode=mode, workers=workers, client=client, store=out_dir, resume=True,
                     time_limit=time_limit, mip_gap=gap, in_place=not rebuild, progress=bar)
    except SweepError as exc:
        raise CommandError(str(exc)) from None
    except KeyboardInterrupt:
        err.print(f"interrupted: every finished scenario is kept in {store}; run the same command with "
                  "--resume to solve the rest", markup=False)
        raise typer.Exit(Exit.INTERRUPTED) from None
    finally:
        if client is not None:
            client.close()
    csv = atomic_write(out_dir / "sweep.csv", lambda tmp: df.to_csv(tmp, index=False))
    charts = []
    try:
        charts = plot_sweep(df, out_dir, metric)
    except ValueError as exc:
        report_warning(f"no chart: {exc}")
    if as_json:
        sys.stdout.write(json.dumps(json.loads(df.to_json(orient="records")), indent=1) + "\n")
    else:
        _print_sweep(df, list(changes), metric)
    err.print(f"wrote {csv}, {store}" + "".join(f", {c}" for c in charts), markup=False)
    solved = df.status.eq("optimal").all()
    raise typer.Exit(Exit.OK if solved else Exit.FEASIBLE)


SWEEP_HEADERS = {"objective": "objective", "mip_gap": "gap", "total_spend_usd": "spend", "peak_capacity_mw": "peak MW",
                 "training_share": "train %", "seconds": "s"}


def _print_sweep(df, paths: list[str], metric: str) -> None:
    cols = [*paths, "status", "objective", "mip_gap", "total_spend_usd", "peak_capacity_mw", "training_share"]
    if metric not in cols:
        cols.append(metric)
    cols.append("seconds")
    kinds = df.attrs.get("kinds", {})
    shown = df[cols].copy()
    given = [dict(part.partition("=")[::2] for part in str(label).split(", ")) if label != "base" else {}
             for label in df.label]  # the values as given (text values have no number in the table)
    for p in paths:
        shown[p] = [_varied(kinds.get(p, "value"), v, g.get(p)) for v, g in zip(df[p], given)]
    headers = {**SWEEP_HEADERS, **{p: p.replace(".", ".\n", 1) if len(p) > 16 else p for p in paths}}
    formats = {c: (lambda v, c=c: _cell(c, v)) for c in cols if c not in paths and c != "status"}
    unit = df.attrs.get("objective_unit", "objective units")
    show(_table(shown, f"sweep of {df.attrs.get('instance', '')}: {len(df)} scenarios", headers=headers,
                formats=formats, keys=tuple(paths), legend=f"objective in {unit}; gap: relative MIP gap; s: seconds"))


def _varied(kind: str, v, given: str | None = None) -> str:
    if isinstance(v, float) and math.isnan(v):
        return given if given is not None else "base"
    if kind == "factor":
        return f"x{v:g}"
    if kind == "shift":
        return f"{int(v):+d}y"
    return f"{v:,.6g}"


def _nan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _cell(col: str, v) -> str:
    from ..report.units import fmt_number, fmt_share, fmt_usd

    if isinstance(v, str):
        return v
    if _nan(v):
        return "-"
    if col == "mip_gap":
        return f"{v:.2e}"
    if col in ("training_share", "budget_used_share"):
        return fmt_share(v)
    if col == "seconds":
        return f"{v:.1f}"
    if col.endswith("_usd"):
        return fmt_usd(v)
    return fmt_number(v)


@app.command(help="What a step of one parameter buys: re-solve with it moved up and down.\n\n"
             "LP duals of a MIP are not prices; this re-solves the MIP. Examples: "
             "--param budget.total_usd --step 1e9; --param power.ceiling_mw --step 100 (every year); "
             "--param chips.trn4.available_from --step 1 (down = one year earlier).\n\n"
             "Exit codes: 0 every solve optimal, 4 some solve not proven optimal or invalid, 2 usage error, "
             "3 invalid instance.")
def marginal(
    file: Path = typer.Argument(..., metavar="FILE", help="Instance YAML file."),
    param: str = typer.Option(..., "--param", metavar="PATH", help="Dotted instance path."),
    step: str = number_option(None, "--step", STEP, "Step, added to every year of a series."),
    time_limit: str | None = time_limit_option(),
    gap: str = gap_option(),
    as_json: bool = json_option(),
) -> None:
    from ..analysis.sweep import SweepError, check_vary
    from ..analysis.sweep import marginal as run
    from ..report.text import wrap
    from ..report.units import fmt_number

    if step is None:
        raise CommandError("missing option '--step'", hints=["'capplan marginal -h' lists the options"])
    inst = _load_instance_or_exit(file)
    try:
        check_vary(inst, {param: ()})
        df = run(inst, param, step, time_limit=time_limit, mip_gap=gap)
    except SweepError as exc:
        raise CommandError(f"--param {exc}") from None
    unit = df.attrs["unit"]
    if as_json:
        sys.stdout.write(json.dumps({"param": param, "step": step, "unit": unit,
                                     "rows": json.loads(df.to_json(orient="records"))}, indent=1) + "\n")
        raise typer.Exit(Exit.OK if df.status.eq("optimal").all() else Exit.FEASIBLE)
    shown = df[["direction", "change", "status", "objective", "mip_gap", "delta"]]
    show(_table(shown, f"{param}: step {step:g} (objective in {unit})", keys=("direction",),
                formats={"change": lambda v: f"{v:+g}", "objective": lambda v: _cell("objective", v),
                         "mip_gap": lambda v: _cell("mip_gap", v), "delta": lambda v: fmt_number(v, signed=True)},
                headers={"mip_gap": "gap"}))
    lines = []
    for _, r in df[df.direction != "base"].iterrows():
        if _nan(r.delta):
            lines.append(f"{r.change:+g} on {param}: {r.status} ({r.message})")
        else:
            lines.append(f"{r.change:+g} on {param}: objective {fmt_number(r.delta, signed=True)} ({unit})")
    gaps = df.mip_gap.dropna()
    if len(gaps):
        tolerance = gaps.max() * df.objective.abs().max()
        if tolerance > 0:
            lines.append(f"each solve is optimal within a relative gap of {gaps.max():.1e}: differences smaller "
                         f"than about {fmt_number(tolerance)} are within solver tolerance")
        else:
            lines.append("each solve is proven optimal with no gap: the differences are exact")
    for line in lines:
        show(wrap(line, width()))
    ok = df.status.eq("optimal").all()
    raise typer.Exit(Exit.OK if ok else Exit.FEASIBLE)
