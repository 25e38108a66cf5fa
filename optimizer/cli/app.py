"""The ``capplan`` application: the command group, its global options and the helpers every command shares.

The conventions (exit codes, errors, option types, output directories, width)
are in :mod:`optimizer.cli.conventions`; the exit codes are also listed in
``capplan -h`` and the README.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import typer
from rich.text import Text

from ..errors import InstanceError
from ..instance import load_instance
from . import conventions
from .conventions import (
    EXIT_HELP,
    STATUS_EXIT,
    CommandError,
    Exit,
    Group,
    err,
    invalid_instance,
    out,
    report_error,
    width,
)

__all__ = ["EXIT_HELP", "STATUS_EXIT", "Exit", "app", "dask_client", "err", "main", "out", "progress_lines",
           "show", "stderr_duplicate"]

app = typer.Typer(
    name="capplan",
    cls=Group,
    help="Plan AI compute capacity: chips, datacenter blocks and the training/inference split.\n\n"
    + EXIT_HELP,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help, wrapped at the terminal's width: nothing is cut
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def version_text() -> str:
    """``capplan 0.1.0 (HiGHS 1.15.1, Pyomo 6.10.1, Python 3.11.7)``."""
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "unknown"

    python = ".".join(map(str, sys.version_info[:3]))
    return f"capplan {ver('capplan')} (HiGHS {ver('highspy')}, Pyomo {ver('pyomo')}, Python {python})"


def _show_version(value: bool) -> None:
    if value:
        out.print(version_text(), markup=False)
        raise typer.Exit(Exit.OK)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print capplan's version (and HiGHS's, Pyomo's) and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an internal error instead of a "
                               "one-line message (anywhere on the command line)."),
) -> None:
    """Plan AI compute capacity: chips, datacenter blocks and the training/inference split."""


def show(text: str | Text = "") -> None:
    """Print laid-out text on standard output as it is (no markup, no re-wrapping)."""
    out.print(text if isinstance(text, Text) else Text(text))


def _table(df: pd.DataFrame, title: str, money=(), pct=(), ints=(), *, headers=None, legend: str = "",
           keys=("year",), formats=None, right=()) -> Text:
    """A table laid out for the output width (:func:`optimizer.report.text.render_table`), money and
    shares in capplan's one style."""
    from ..report.text import render_table
    from ..report.units import fmt_number, fmt_share, fmt_usd

    fmts = {c: fmt_usd for c in money}
    fmts.update({c: fmt_share for c in pct})
    fmts.update({c: (lambda v: fmt_number(round(v))) for c in ints})
    fmts.update(formats or {})
    return Text(render_table(df, title, width=width(), keys=keys, headers=headers, formats=fmts, legend=legend,
                             right=right))


def dask_client(scheduler: str | None):
    """A client of the Dask cluster at ``scheduler`` (None without one); a usage error if it cannot be reached."""
    if not scheduler:
        return None
    try:
        from distributed import Client
    except ImportError:
        raise CommandError("--scheduler needs dask.distributed", hints=["pip install 'capplan[dask]'"]) from None
    try:
        return Client(scheduler, timeout=10)
    except OSError as exc:
        raise CommandError(f"--scheduler: cannot reach the Dask scheduler at {scheduler}: {exc}") from None


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


def _print_problems(exc, what: str = "invalid instance") -> None:
    """Write every problem of an :class:`InstanceError` in the error style (for commands that go on)."""
    e = invalid_instance(exc, what)
    report_error(e.message, e.details)


def _load_instance_or_exit(file: Path):
    """The instance in ``file``, or an error listing every problem (exit 3)."""
    try:
        return load_instance(file)
    except InstanceError as exc:
        raise invalid_instance(exc) from None


def _plan_from(path: Path):
    """A plan directory (written with --out) is read; an instance file is solved."""
    from .. import pipeline
    from ..plan import read_plan

    if path.is_dir():
        try:
            return read_plan(path)
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from None
        except InstanceError as exc:
            raise invalid_instance(exc, "invalid plan directory: its instance") from None
    plan = pipeline.solve(_load_instance_or_exit(path))
    if not plan.status.has_plan:
        raise CommandError(f"{path}: no plan to show: {plan.status.value} ({plan.message})", STATUS_EXIT[plan.status],
                           hints=[f"capplan solve {path} says why"])
    return plan


def main() -> None:
    """The ``capplan`` entry point: the app, with internal errors as one line unless ``--debug``."""
    conventions.ENTRY_POINT = True  # solve --time-limit counts the process's start-up
    args = sys.argv[1:]
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        app(args=args, prog_name="capplan")
    except SystemExit:
        raise
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(Exit.INTERRUPTED)
    except Exception as exc:  # never a traceback for users unless --debug
        if debug:
            raise
        report_error(f"internal error: {type(exc).__name__}: {exc}",
                     hints=["run again with --debug for the traceback, and please report it"])
        sys.exit(Exit.INTERNAL)
