"""``capplan alternatives``: the near-optimal range of every aggregate decision (spec v2 section 7)."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import Exit, _load_instance_or_exit, _table, app, err, out

HELP = """Which decisions are forced and which are free: for each aggregate (chips of each
generation, MW of campus blocks started in each region; the commitments of a
scenario tree) its value in the optimal plan, and its minimum and maximum over
every plan within SLACK of the optimum, each a MIP proven at --gap (a bound is
shown when a time limit stops one). An aggregate is robust when its range is
at most 5% of max(|optimal|, 1).

With --out DIR: alternatives.csv, ranges.png, and the optimal plan and the
plan at each extreme as plan directories (DIR/chips.trn3-min/, ...) that
capplan plot and capplan compare read.

Exit codes: 0 every range proven, 4 some range is only bounded (time limit),
2 usage error, 3 invalid instance, 5 no plan to start from."""


@app.command(help=HELP)
def alternatives(
    file: Path = typer.Argument(..., help="Instance YAML file."),
    slack: float = typer.Option(0.01, "--slack", help="Relative distance from the optimum (0.01 = 1%)."),
    aggregate: list[str] = typer.Option(None, "--aggregate", help="chips.G or regions.R; repeat (default: all)."),
    out_dir: Path | None = typer.Option(None, "--out", help="Write the table, the chart and the extreme plans."),
    fmt: str = typer.Option("csv", "--format", help="Formats of the plan directories: csv,parquet,xlsx,json."),
    time_limit: float | None = typer.Option(None, "--time-limit", help="Seconds per solve."),
    gap: float = typer.Option(1e-4, "--gap", help="Relative MIP gap per solve."),
    workers: int = typer.Option(1, "--workers", help="Local worker processes for the range solves."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Dask scheduler address (tcp://host:8786)."),
) -> None:
    from ..analysis.alternatives import AlternativesError
    from ..analysis.alternatives import alternatives as run
    from ..report.plots import ranges_chart, save
    from .app import dask_client, progress_lines

    inst = _load_instance_or_exit(file)
    formats = [f.strip() for f in fmt.split(",") if f.strip()]
    client = dask_client(scheduler)
    try:
        with progress_lines("alternatives") as step:
            result = run(inst, slack, aggregate or None, time_limit=time_limit, mip_gap=gap, workers=workers,
                         client=client, plans=out_dir is not None, on_step=step)
    except AlternativesError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(Exit.INFEASIBLE if "no plan" in str(exc) else Exit.USAGE) from None
    finally:
        if client is not None:
            client.close()
    t = result.table
    kind = inst.objective.kind
    threshold = t.attrs["threshold"]
    out.print(f"optimum {result.optimal.objective:,.6g} ({kind}); near-optimal plans: objective "
              f"{'>=' if kind == 'max_training' else '<='} {threshold:,.6g} (slack {slack:g})", highlight=False)
    shown = t.assign(robust=t.robust.map({True: "yes", False: "no"}))[
        ["aggregate", "unit", "optimal", "min", "max", "robust", "status"]]
    out.print(_table(shown, f"Near-optimal ranges ({result.seconds:.1f} s)"))
    unproven = t[t.status != "optimal"]
    for r in unproven.itertuples():
        out.print(f"{r.aggregate}: not proven ({r.min_status} / {r.max_status}); the true range lies within "
                  f"[{r.min_bound:,.6g}, {r.max_bound:,.6g}]", highlight=False)
    if out_dir is not None:
        result.write(out_dir, formats)
        save(ranges_chart(t, f"Near-optimal ranges within {slack:.1%} of the optimum — {inst.name}"),
             out_dir / "ranges.png")
        out.print(f"written to {out_dir}/ (alternatives.csv, ranges.png, optimal/ and one plan directory per "
                  "extreme)")
    raise typer.Exit(Exit.OK if unproven.empty else Exit.FEASIBLE)
