"""The ``capplan`` application: exit codes, consoles and the helpers every command shares.

The exit codes are listed in :mod:`optimizer.cli` (and ``capplan --help``).
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from ..errors import InstanceError
from ..instance import load_instance
from ..solver import SolveStatus


class Exit(IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    INVALID = 3
    FEASIBLE = 4
    INFEASIBLE = 5
    UNBOUNDED = 6
    NO_SOLUTION = 7


STATUS_EXIT = {
    SolveStatus.OPTIMAL: Exit.OK,
    SolveStatus.FEASIBLE: Exit.FEASIBLE,
    SolveStatus.INFEASIBLE: Exit.INFEASIBLE,
    SolveStatus.UNBOUNDED: Exit.UNBOUNDED,
    SolveStatus.NO_SOLUTION: Exit.NO_SOLUTION,
    SolveStatus.ERROR: Exit.INTERNAL,
}

EXIT_HELP = (
    "Exit codes: 0 optimal / valid, 1 internal error, 2 usage error, 3 invalid instance, "
    "4 feasible but not proven optimal (time limit), 5 infeasible, 6 unbounded, "
    "7 no plan found before the time limit."
)

app = typer.Typer(
    name="capplan",
    help="Plan AI compute capacity: chips, datacenter blocks and the training/inference split.\n\n"
    + EXIT_HELP,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

def _console(stderr: bool = False) -> Console:
    """Rich on a terminal; plain, wide text when piped (rich honours NO_COLOR itself)."""
    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    return Console(stderr=stderr, width=None if tty else 200, no_color=not tty,
                   highlight=False, emoji=False)


out = _console()
err = _console(stderr=True)


def _print_problems(exc, what: str = "invalid instance") -> None:
    err.print(f"[bold red]{what}[/] {exc.source or ''}: "
              f"{len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''}", highlight=False)
    for p in exc.problems:
        err.print(f"  - {p}", highlight=False, markup=False)


def _table(df: pd.DataFrame, title: str, money=(), pct=(), ints=()) -> Table:
    from ..report.text import fmt_usd

    t = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for c in df.columns:
        text = pd.api.types.is_string_dtype(df[c]) or df[c].dtype == object
        t.add_column(str(c), justify="left" if text else "right")
    for row in df.itertuples(index=False):
        cells = []
        for c, v in zip(df.columns, row):
            if isinstance(v, str):
                cells.append(v)
            elif v is None or (isinstance(v, float) and math.isnan(v)):
                cells.append("-")
            elif c in money:
                cells.append(fmt_usd(v))
            elif c in pct:
                cells.append(f"{v:.1%}")
            elif c == "year":
                cells.append(str(int(v)))
            elif c in ints or float(v).is_integer():
                cells.append(f"{v:,.0f}")
            else:
                cells.append(f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}")
        t.add_row(*cells)
    return t


def dask_client(scheduler: str | None):
    """A client of the Dask cluster at ``scheduler`` (None without one); a usage error if it cannot be reached."""
    if not scheduler:
        return None
    try:
        from distributed import Client
    except ImportError:
        err.print("[bold red]usage:[/] --scheduler needs dask.distributed: pip install 'capplan[dask]'")
        raise typer.Exit(Exit.USAGE) from None
    try:
        return Client(scheduler, timeout=10)
    except OSError as exc:
        err.print(f"[bold red]error:[/] cannot reach the Dask scheduler at {scheduler}: {exc}")
        raise typer.Exit(Exit.USAGE) from None


def stderr_duplicate():
    """A text stream on a duplicate of standard error's descriptor, taken now.

    Pyomo points descriptors 1 and 2 at a pipe while HiGHS runs; what is
    written there meanwhile (progress) must go through a descriptor taken before.
    """
    return os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)


@contextmanager
def progress_lines(what: str):
    """A callback for the steps of a long analysis: one status line on a terminal, plain lines when piped."""
    if err.is_terminal:
        with err.status(f"{what}: starting...") as status:
            yield lambda text: status.update(f"{what}: {text}")
        return
    # the steps arrive while HiGHS runs: write to a duplicate of standard error taken now
    try:
        stream = stderr_duplicate()
    except (OSError, ValueError):  # no real descriptor (an embedding host): standard error as it is
        yield lambda text: err.print(f"{what}: {text}", highlight=False, markup=False)
        return
    with stream:
        yield lambda text: print(f"{what}: {text}", file=stream)


def _load_instance_or_exit(file: Path):
    try:
        return load_instance(file)
    except InstanceError as exc:
        _print_problems(exc)
        raise typer.Exit(Exit.INVALID) from None


def _plan_from(path: Path):
    """A plan directory (written with --out) is read; an instance file is solved."""
    from .. import pipeline
    from ..plan import read_plan

    if path.is_dir():
        try:
            return read_plan(path)
        except FileNotFoundError as exc:
            err.print(str(exc))
            raise typer.Exit(Exit.USAGE) from None
    plan = pipeline.solve(_load_instance_or_exit(path))
    if not plan.status.has_plan:
        err.print(f"{path}: {plan.status.value}: {plan.message}")
        raise typer.Exit(STATUS_EXIT[plan.status])
    return plan


def main() -> None:
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # never a traceback for users unless --debug
        if debug:
            raise
        err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc}\n"
                  "Run again with --debug for the traceback, and please report it.", highlight=False)
        sys.exit(Exit.INTERNAL)

