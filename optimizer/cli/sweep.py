"""``capplan sweep`` and ``capplan marginal`` (registered on the main app)."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..files import atomic_write
from .app import Exit, _load_instance_or_exit, app, dask_client, err, out

SWEEP_HELP = """Solve an instance for many values of some of its parameters; one row per scenario.

PATH is a dotted instance path (as in `Instance.with_changes`), VALUES a list
(60e9,80e9,100e9), a range START:STOP:COUNT (50e9:150e9:11), factors on the
base value (x0.8,x1,x1.2; a whole series is scaled) or year shifts (+0y,+1y).

Each finished scenario is committed to OUT/sweep.sqlite at once: a killed
sweep keeps every finished scenario and `--resume` skips them. At the end
OUT/sweep.csv and a chart (tornado, line or heatmap) are written.

Exit codes: 0 every scenario solved, 4 some scenario has no proven optimal
plan (infeasible, time limit, invalid values), 2 usage error, 3 invalid
instance."""


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
    file: Path = typer.Argument(..., help="Instance YAML file."),
    vary: list[str] = typer.Option(..., "--vary", help="PATH=VALUES; repeat for more paths."),
    mode: str = typer.Option("grid", "--mode", help="grid (every combination) or oat (one at a time)."),
    workers: int | None = typer.Option(None, "--workers", help="Local worker processes (default: cores)."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Dask scheduler address "
                                         "(tcp://host:8786): solve on that cluster instead."),
    out_dir: Path = typer.Option(Path("sweep-out"), "--out", help="Directory for sweep.sqlite, sweep.csv "
                                 "and the chart."),
    resume: bool = typer.Option(False, "--resume", help="Keep the scenarios already in OUT and solve the rest."),
    time_limit: float | None = typer.Option(None, "--time-limit", help="Seconds per scenario."),
    gap: float = typer.Option(1e-4, "--gap", help="Relative MIP gap per scenario."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build every scenario's model afresh (no in-place "
                                 "updates; for comparison)."),
    metric: str = typer.Option("objective", "--metric", help="KPI to chart."),
) -> None:
    from ..analysis.sweep import KPI_COLUMNS, STORE_NAME, SweepError, parse_vary
    from ..analysis.sweep import sweep as run
    from ..report.sweep_plots import plot_sweep

    try:
        changes = parse_vary(vary)
    except SweepError as exc:
        err.print(f"[bold red]usage:[/] {exc}")
        raise typer.Exit(Exit.USAGE) from None
    if mode not in ("grid", "oat", "one_at_a_time"):
        err.print(f"[bold red]usage:[/] --mode must be grid or oat, got {mode!r}")
        raise typer.Exit(Exit.USAGE)
    if metric not in KPI_COLUMNS[1:]:
        err.print(f"[bold red]usage:[/] --metric must be one of {', '.join(KPI_COLUMNS[1:])}")
        raise typer.Exit(Exit.USAGE)
    inst = _load_instance_or_exit(file)
    store = out_dir / STORE_NAME
    if store.exists() and not resume:
        err.print(f"[bold red]usage:[/] {store} exists: pass --resume to continue that sweep, "
                  "or choose another --out")
        raise typer.Exit(Exit.USAGE)
    client = dask_client(scheduler)
    try:
        with _Bar() as bar:
            df = run(inst, changes, mode=mode, workers=workers, client=client, store=out_dir, resume=True,
                     time_limit=time_limit, mip_gap=gap, in_place=not rebuild, progress=bar)
    except SweepError as exc:
        err.print(f"[bold red]usage:[/] {exc}")
        raise typer.Exit(Exit.USAGE) from None
    except KeyboardInterrupt:
        err.print(f"interrupted: every finished scenario is kept in {store}; run the same command with "
                  "--resume to solve the rest")
        raise typer.Exit(130) from None
    finally:
        if client is not None:
            client.close()
    csv = atomic_write(out_dir / "sweep.csv", lambda tmp: df.to_csv(tmp, index=False))
    charts = []
    try:
        charts = plot_sweep(df, out_dir, metric)
    except ValueError as exc:
        err.print(f"no chart: {exc}")
    _print_sweep(df, list(changes), metric)
    err.print(f"wrote {csv}, {store}" + "".join(f", {c}" for c in charts))
    solved = df.status.eq("optimal").all()
    raise typer.Exit(Exit.OK if solved else Exit.FEASIBLE)


def _print_sweep(df, paths: list[str], metric: str) -> None:
    table = Table(title=f"sweep of {df.attrs.get('instance', '')}: {len(df)} scenarios", show_lines=False)
    cols = [*paths, "status", "objective", "mip_gap", "total_spend_usd", "peak_capacity_mw", "training_share"]
    if metric not in cols:
        cols.append(metric)
    cols.append("seconds")
    for c in cols:
        table.add_column(c, justify="left" if c == "status" else "right")
    kinds = df.attrs.get("kinds", {})
    for _, r in df.iterrows():
        table.add_row(*[_varied(kinds[c], r[c]) if c in paths else _cell(c, r[c]) for c in cols])
    out.print(table)


def _varied(kind: str, v) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "base"
    if kind == "factor":
        return f"x{v:g}"
    if kind == "shift":
        return f"{int(v):+d}y"
    return f"{v:,.6g}"


def _nan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _cell(col: str, v) -> str:
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if col == "mip_gap":
        return f"{v:.2e}"
    if col in ("training_share", "budget_used_share"):
        return f"{v:.1%}"
    if col == "seconds":
        return f"{v:.1f}"
    if col.endswith("_usd"):
        return f"${v / 1e9:,.2f}B" if abs(v) >= 1e8 else f"${v:,.0f}"
    return f"{v:,.6g}"


@app.command(help="What a step of one parameter buys: re-solve with it moved up and down.\n\n"
             "LP duals of a MIP are not prices; this re-solves the MIP. Examples: "
             "--param budget.total_usd --step 1e9; --param power.ceiling_mw --step 100 (every year); "
             "--param chips.trn4.available_from --step 1 (down = one year earlier).")
def marginal(
    file: Path = typer.Argument(..., help="Instance YAML file."),
    param: str = typer.Option(..., "--param", help="Dotted instance path."),
    step: float = typer.Option(..., "--step", help="Step, added to every year of a series."),
    time_limit: float | None = typer.Option(None, "--time-limit", help="Seconds per solve."),
    gap: float = typer.Option(1e-4, "--gap", help="Relative MIP gap per solve."),
) -> None:
    from ..analysis.sweep import SweepError
    from ..analysis.sweep import marginal as run

    inst = _load_instance_or_exit(file)
    try:
        df = run(inst, param, step, time_limit=time_limit, mip_gap=gap)
    except SweepError as exc:
        err.print(f"[bold red]usage:[/] {exc}")
        raise typer.Exit(Exit.USAGE) from None
    unit = df.attrs["unit"]
    table = Table(title=f"{param}: step {step:g}  (objective in {unit})")
    for c in ("direction", "change", "status", "objective", "mip_gap", "delta"):
        table.add_column(c, justify="left" if c in ("direction", "status") else "right")
    for _, r in df.iterrows():
        table.add_row(r.direction, f"{r.change:+g}", str(r.status), _cell("objective", r.objective),
                      _cell("mip_gap", r.mip_gap), "-" if _nan(r.delta) else f"{r.delta:+,.6g}")
    out.print(table)
    lines = []
    for _, r in df[df.direction != "base"].iterrows():
        if _nan(r.delta):
            lines.append(f"{r.change:+g} on {param}: {r.status} ({r.message})")
        else:
            lines.append(f"{r.change:+g} on {param}: objective {r.delta:+,.6g} ({unit})")
    gaps = df.mip_gap.dropna()
    if len(gaps):
        lines.append(f"each solve is optimal within a relative gap of {gaps.max():.1e}: differences smaller "
                     f"than about {gaps.max() * df.objective.abs().max():,.3g} are within solver tolerance")
    for line in lines:
        out.print(line)
    ok = df.status.eq("optimal").all()
    raise typer.Exit(Exit.OK if ok else Exit.FEASIBLE)


