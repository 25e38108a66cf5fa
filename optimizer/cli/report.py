"""``capplan report``: one self-contained HTML page of a plan, a sweep or near-optimal ranges."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import STATUS_EXIT, Exit, _load_instance_or_exit, app, err, out, progress_lines

HELP = """Write one self-contained HTML page of a result, to pass around and open anywhere.

SOURCE is a plan directory (capplan solve FILE --out DIR), a sweep's output
directory (capplan sweep ... --out DIR), an alternatives output directory
(capplan alternatives ... --out DIR), or an instance file, solved first (with
the value of information, for a scenario tree).

The page needs no network: its scripts, styles and data are inlined. It
starts with the status in words (a plan not proven optimal says so in its
first line), then what to commit now, the plan by year, what binds and what
$1B or 100 MW more is worth, and where present the scenarios, the
near-optimal ranges or the sweep curves. Hover a chart for its numbers; click
a table header to sort.

Exit codes: 0 written, 2 usage error (SOURCE is no result, --out is no file
path), 3 invalid instance; for an instance file without a plan, the exit code
of capplan solve."""


@app.command(help=HELP)
def report(
    source: Path = typer.Argument(..., help="A plan, sweep or alternatives directory, or an instance file."),
    out_file: Path = typer.Option(Path("report.html"), "--out", help="The HTML file to write."),
    time_limit: float | None = typer.Option(None, "--time-limit", help="Seconds for HiGHS (an instance file)."),
    gap: float = typer.Option(1e-4, "--gap", help="Relative MIP gap (an instance file)."),
) -> None:
    from ..report.html import Report, ReportError, read_result

    if out_file.is_dir():
        err.print(f"[bold red]usage:[/] --out {out_file} is a directory; give the HTML file to write")
        raise typer.Exit(Exit.USAGE)
    if not out_file.parent.is_dir():
        err.print(f"[bold red]usage:[/] --out {out_file}: no directory {out_file.parent}")
        raise typer.Exit(Exit.USAGE)
    if source.is_dir():
        try:
            result = read_result(source)
        except (ReportError, FileNotFoundError) as exc:
            err.print(str(exc), highlight=False, markup=False)
            raise typer.Exit(Exit.USAGE) from None
    elif source.exists():
        result = _solve(source, time_limit, gap)
    else:
        err.print(f"[bold red]usage:[/] {source}: no such file or directory", highlight=False)
        raise typer.Exit(Exit.USAGE)
    path = Report(result, source=str(source)).write(out_file)
    out.print(f"report written to {path} ({path.stat().st_size / 1e6:.1f} MB)", highlight=False)


def _solve(file: Path, time_limit: float | None, gap: float):
    """The plan of an instance file, with its marginal values taken while its model is as solved."""
    from .. import pipeline

    inst = _load_instance_or_exit(file)
    with progress_lines("solve") as step:
        plan = pipeline.solve(inst, time_limit=time_limit, mip_gap=gap, on_step=step)
    if not plan.status.has_plan:
        err.print(f"{file}: {plan.status.value}: {plan.message}", highlight=False)
        raise typer.Exit(STATUS_EXIT[plan.status])
    plan.marginals  # noqa: B018  (computed now, from the model as solved)
    return plan
