"""``capplan alternatives``: the near-optimal range of every aggregate decision (spec v2 section 7)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from .app import Exit, _load_instance_or_exit, _table, app, show
from .conventions import (
    SLACK,
    CommandError,
    force_option,
    formats_of,
    gap_option,
    json_option,
    number_option,
    output_dir,
    scheduler_option,
    time_limit_option,
    width,
    workers_option,
)

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
2 usage error, 3 invalid instance, 5 no plan to start from (infeasible)."""


@app.command(help=HELP)
def alternatives(
    file: Path = typer.Argument(..., metavar="FILE", help="Instance YAML file."),
    slack: str = number_option(0.01, "--slack", SLACK, "Relative distance from the optimum (0.01 is 1%)."),
    aggregate: list[str] = typer.Option(None, "--aggregate", help="chips.G or regions.R; repeat (default: all)."),
    out_dir: Path | None = typer.Option(None, "--out", metavar="DIR", help="Write the table, the chart and the "
                                        "extreme plans (a new or empty directory, or --force)."),
    force: bool = force_option(),
    fmt: str = typer.Option("csv", "--format", metavar="FORMATS",
                            help="Formats of the plan directories: csv,parquet,xlsx,json."),
    time_limit: str | None = time_limit_option(),
    gap: str = gap_option(),
    workers: str | None = workers_option(),
    scheduler: str | None = scheduler_option(),
    as_json: bool = json_option(),
) -> None:
    from ..analysis.alternatives import AlternativesError, aggregate_names
    from ..analysis.alternatives import alternatives as run
    from ..parallel import default_workers
    from ..report.plots import ranges_chart, save
    from ..report.text import wrap
    from ..report.units import fmt_number
    from .app import dask_client, progress_lines

    formats = formats_of(fmt)
    inst = _load_instance_or_exit(file)
    known = aggregate_names(inst)
    bad = [a for a in aggregate or () if a not in known]
    if bad:
        raise CommandError(f"--aggregate: unknown aggregate{'s' if len(bad) > 1 else ''} {', '.join(bad)}",
                           hints=[f"choose from {', '.join(known)}"])
    if out_dir is not None:
        output_dir(out_dir, force=force)
    client = dask_client(scheduler)
    try:
        with progress_lines("alternatives") as step:
            result = run(inst, slack, aggregate or None, time_limit=time_limit, mip_gap=gap,
                         workers=workers or default_workers(), client=client, plans=out_dir is not None,
                         on_step=step)
    except AlternativesError as exc:
        if "no plan" in str(exc):
            raise CommandError(str(exc), Exit.INFEASIBLE, hints=[f"capplan explain {file} says why"]) from None
        raise CommandError(str(exc)) from None
    finally:
        if client is not None:
            client.close()
    t = result.table
    kind = inst.objective.kind
    threshold = t.attrs["threshold"]
    unproven = t[t.status != "optimal"]
    if out_dir is not None:
        result.write(out_dir, formats)
        save(ranges_chart(t, f"Near-optimal ranges within {slack:.1%} of the optimum — {inst.name}"),
             out_dir / "ranges.png")
    if as_json:
        doc = {"objective": result.optimal.objective, "kind": kind, "slack": slack, "threshold": threshold,
               "ranges": json.loads(t.to_json(orient="records"))}
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
        raise typer.Exit(Exit.OK if unproven.empty else Exit.FEASIBLE)
    show(wrap(f"optimum {fmt_number(result.optimal.objective)} ({kind}); near-optimal plans: objective "
              f"{'>=' if kind == 'max_training' else '<='} {fmt_number(threshold)} (slack {slack:g})", width()))
    shown = t.assign(robust=t.robust.map({True: "yes", False: "no"}))[
        ["aggregate", "unit", "optimal", "min", "max", "robust", "status"]]
    show(_table(shown, f"Near-optimal ranges ({result.seconds:.1f} s)", keys=("aggregate",)))
    for r in unproven.itertuples():
        show(wrap(f"{r.aggregate}: not proven ({r.min_status} / {r.max_status}); the true range lies within "
                  f"[{fmt_number(r.min_bound)}, {fmt_number(r.max_bound)}]", width()))
    if out_dir is not None:
        show(wrap(f"written to {out_dir}/ (alternatives.csv, ranges.png, optimal/ and one plan directory per "
                  "extreme)", width()))
    raise typer.Exit(Exit.OK if unproven.empty else Exit.FEASIBLE)
