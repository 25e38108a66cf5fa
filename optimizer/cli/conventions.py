"""The conventions every ``capplan`` command follows, in one place.

* **Exit codes** (:class:`Exit`), the same for every command and listed in
  ``capplan -h`` and the README.
* **Errors**: one style, on standard error, never a traceback unless
  ``--debug``: ``error: <what is wrong, naming the option or file>``, then
  indented details and ``hint:`` lines, as git writes them.  A command raises
  :class:`CommandError`; the :class:`Group` renders it, and renders click's own
  usage errors (unknown option, missing argument) the same way.
* **Options** that take numbers are checked before anything runs, with
  their range and unit in the message (:class:`Number`: ``--gap``,
  ``--time-limit``, ``--workers``, ``--threads``, ``--slack``, ``--step``);
  ``--format`` lists are checked against the formats a plan can be written in.
* **Output directories** (``--out``) are new or empty, or ``--force`` lets a
  command replace the files it writes there (Calliope's ``allow_overwrite``,
  pip's ``--target`` with ``--upgrade``, ``git clone`` into a non-empty
  directory): a plan someone signed is never overwritten by accident.  A
  sweep's directory is continued with ``--resume``.  Every file is written
  atomically (:func:`optimizer.files.atomic_write`).
* **Output** is laid out for 80 columns when piped (what a file receives never
  depends on a terminal), for the terminal's width otherwise; a closed pipe
  (``capplan solve FILE | head -1``) ends the command quietly with exit code
  141, as git and every Unix tool do.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Sequence
from enum import IntEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from ..solver import SolveStatus

try:  # typer >= 0.20 carries its own copy of click, whose exceptions are the ones raised
    from typer import _click as click
except ImportError:  # pragma: no cover - older typer runs on click itself
    import click

_NoArgsIsHelp = getattr(click.exceptions, "NoArgsIsHelpError", ())
_Abort = (getattr(click.exceptions, "Abort", typer.Abort), typer.Abort)


class Exit(IntEnum):
    """The exit codes of every ``capplan`` command."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    INVALID = 3
    FEASIBLE = 4
    INFEASIBLE = 5
    UNBOUNDED = 6
    NO_SOLUTION = 7
    INTERRUPTED = 130
    BROKEN_PIPE = 141


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
    "7 no plan found before the time limit, 130 interrupted, 141 output pipe closed."
)

PIPED_WIDTH = 80


# --------------------------------------------------------------------------- consoles and width


class _Console(Console):
    """A rich console that ends the command quietly, with exit code 141, when its pipe is closed."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        _silence_stdout()
        raise SystemExit(Exit.BROKEN_PIPE)


def _silence_stdout() -> None:
    """Point standard output at /dev/null so that the interpreter's last flush finds no closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def console(stderr: bool = False) -> Console:
    """Rich on a terminal; plain text when piped (rich honours NO_COLOR itself).

    Lines are never wrapped by rich (``soft_wrap``): every text is laid out for
    :func:`width` by :mod:`optimizer.report.text` before it is printed.
    """
    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    return _Console(stderr=stderr, width=None if tty else 200, no_color=not tty, highlight=False, emoji=False,
                    soft_wrap=True)


out = console()
err = console(stderr=True)


def width() -> int:
    """The width output is laid out for: 80 columns when piped, the terminal's (40 to 160) otherwise."""
    if not out.is_terminal:
        return PIPED_WIDTH
    return max(40, min(160, out.width))


# --------------------------------------------------------------------------- errors


class CommandError(click.exceptions.ClickException):
    """An error the user can fix: rendered as ``error: message`` with details and hints; exits with ``code``."""

    def __init__(self, message: str, code: int = Exit.USAGE, details: Iterable[str] = (),
                 hints: Iterable[str] = ()):
        super().__init__(message)
        self.exit_code = int(code)
        self.details = list(details)
        self.hints = list(hints)


def report_error(message: str, details: Sequence[str] = (), hints: Sequence[str] = ()) -> None:
    """Write an error in capplan's one style on standard error."""
    err.print(f"[bold red]error:[/] {escape(message)}")
    for d in details:
        err.print(f"  {d}", markup=False)
    for h in hints:
        err.print(f"hint: {h}", markup=False)


def report_warning(message: str) -> None:
    """A warning in the same style (``warning: ...``) on standard error."""
    err.print(f"[bold yellow]warning:[/] {escape(message)}")


def invalid_instance(exc, what: str = "invalid instance") -> CommandError:
    """The :class:`CommandError` of an :class:`~optimizer.errors.InstanceError`: every problem with its path."""
    n = len(exc.problems)
    return CommandError(f"{what} {exc.source or ''}: {n} problem{'s' if n != 1 else ''}".replace("  ", " "),
                        Exit.INVALID, [f"- {p}" for p in exc.problems])


def _usage_text(exc) -> str:
    missing = isinstance(exc, getattr(click.exceptions, "MissingParameter", ()))
    if isinstance(exc, click.exceptions.BadParameter) and exc.param is not None and not missing:
        opts = getattr(exc.param, "opts", None)
        if opts and getattr(exc.param, "param_type_name", "") == "option":
            name = opts[0]
        else:
            name = getattr(exc.param, "metavar", None) or str(exc.param.name).upper()
        return f"{name}: {exc.message}"
    text = exc.format_message().strip().rstrip(".")
    return text[:1].lower() + text[1:]


class Group(TyperGroup):
    """The ``capplan`` command group: every error in one style, a closed pipe ends quietly."""

    ORDER = ("solve", "validate", "explain", "plot", "compare", "report", "sweep", "marginal", "alternatives",
             "simulate", "schema")

    def list_commands(self, ctx):
        """The commands in the order a new user meets them (solve first), others after."""
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: (self.ORDER.index(n) if n in self.ORDER else len(self.ORDER), n))

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args=args, prog_name=prog_name or "capplan", complete_var=complete_var,
                                standalone_mode=False, **extra)
        except _NoArgsIsHelp as exc:
            out.print(exc.ctx.get_help(), markup=False)
            code = Exit.USAGE
        except CommandError as exc:
            report_error(exc.message, exc.details, exc.hints)
            code = exc.exit_code
        except click.exceptions.UsageError as exc:
            hint = f"'{exc.ctx.command_path} -h' lists the options" if exc.ctx is not None else "'capplan -h'"
            report_error(_usage_text(exc), hints=[hint])
            code = Exit.USAGE
        except click.exceptions.ClickException as exc:
            report_error(_usage_text(exc))
            code = exc.exit_code
        except _Abort:
            err.print("interrupted")
            code = Exit.INTERRUPTED
        except BrokenPipeError:
            _silence_stdout()
            code = Exit.BROKEN_PIPE
        if code is None:
            code = Exit.OK
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
            code = Exit.BROKEN_PIPE
        if standalone_mode:
            sys.exit(int(code))
        return code

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(Exit.BROKEN_PIPE) from None


# --------------------------------------------------------------------------- options


class Number:
    """A numeric option's type: parsed, finite, in range, or a usage error naming the option and the rule.

    Used as a typer ``callback`` on an option declared as text, so that every
    message is capplan's ("must be a number of seconds > 0, got -1") and not
    the parser's.
    """

    def __init__(self, metavar: str, rule: str, *, integer: bool = False, low: float | None = None,
                 high: float | None = None, low_open: bool = False, high_open: bool = False,
                 nonzero: bool = False):
        self.metavar = metavar
        self.rule = rule
        self.integer = integer
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open
        self.nonzero = nonzero

    def parse(self, value) -> float | int | None:
        """The value as a number, or :class:`typer.BadParameter` saying what it must be."""
        if value is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            x = value
        else:
            text = str(value).strip()
            try:
                x = int(text) if self.integer else float(text)
            except ValueError:
                raise typer.BadParameter(f"must be {self.rule}, got {value!r}") from None
        if self.integer and float(x) != int(x):
            raise typer.BadParameter(f"must be {self.rule}, got {value}")
        if not math.isfinite(x):
            raise typer.BadParameter(f"must be {self.rule}, got {value}")
        bad = ((self.low is not None and (x < self.low or (self.low_open and x == self.low)))
               or (self.high is not None and (x > self.high or (self.high_open and x == self.high)))
               or (self.nonzero and x == 0))
        if bad:
            raise typer.BadParameter(f"must be {self.rule}, got {value}")
        return int(x) if self.integer else float(x)

    def __call__(self, value):
        return self.parse(value)


SECONDS = Number("SECONDS", "a number of seconds > 0", low=0, low_open=True)
GAP = Number("GAP", "a relative gap from 0 to below 1 (0.01 is 1%)", low=0, high=1, high_open=True)
SLACK = Number("SLACK", "a relative slack from 0 to below 1 (0.01 is 1%)", low=0, high=1, high_open=True)
COUNT = Number("N", "a whole number >= 1", integer=True, low=1)
STEP = Number("STEP", "a nonzero number", nonzero=True)
YEAR = Number("YEAR", "a year (a whole number)", integer=True, low=1, high=9999)


def number_option(default, name: str, kind: Number, help: str, show_default: bool = True):
    """A ``typer.Option`` for a number checked by ``kind`` (declare the parameter as ``str``; it arrives parsed)."""
    return typer.Option(None if default is None else str(default), name, callback=kind.parse, metavar=kind.metavar,
                        help=help, show_default=show_default and default is not None)


ENTRY_POINT = False
"""True when the ``capplan`` entry point runs this process, so that the process's start (:func:`process_started`,
read only when a limit needs it) is the command's; False where commands run inside another program (tests,
notebooks): then a command counts from its own start."""

REPORT_SECONDS = 0.5
"""Seconds of a ``solve --time-limit`` kept for printing the report after the run (at most half the limit)..."""

REPORT_SECONDS_PER_SCENARIO = 0.003
"""... and per scenario of a tree (its tables have a row per scenario): measured, the 1,000-scenario tree ended
1.1 s past 30 minutes with 0.5 s kept in all."""


def process_started() -> float | None:
    """``time.perf_counter()`` at this process's start (interpreter and imports included), None if unknown."""
    import time

    try:
        import psutil

        return time.perf_counter() - max(0.0, time.time() - psutil.Process().create_time())
    except Exception:  # psutil missing or refused: the command counts from its own start
        return None


def run_limit(time_limit: float | None, entered: float, scenarios: int = 1) -> float | None:
    """What a command's ``--time-limit`` leaves for its run: the seconds since the process started (or since
    the command was entered, ``entered``: Python's start-up, imports, reading the file) and the report's
    share (:data:`REPORT_SECONDS`, more for a tree's ``scenarios``) come out of it, so that the command ends
    within the limit; the run keeps at least half of it (a limit shorter than the start-up is overrun rather
    than left no time at all)."""
    import time

    if time_limit is None:
        return None
    started = process_started() if ENTRY_POINT else None
    started = entered if started is None else min(started, entered)
    spent = time.perf_counter() - started
    report = REPORT_SECONDS + (REPORT_SECONDS_PER_SCENARIO * scenarios if scenarios > 1 else 0.0)
    return max(time_limit - spent - report, 0.5 * time_limit)


def time_limit_option(what: str = "each solve"):
    """``--time-limit SECONDS``: HiGHS's time limit; positive, or a usage error."""
    return number_option(None, "--time-limit", SECONDS, f"Seconds for HiGHS, {what} (default: no limit).")


def gap_option(what: str = "each solve"):
    """``--gap GAP``: the relative MIP gap at which HiGHS stops, from 0 to below 1."""
    return number_option(1e-4, "--gap", GAP, f"Relative MIP gap at which HiGHS stops, {what} (0.01 is 1%).")


def workers_option():
    """``--workers N``: local processes solving at once; one default for every command."""
    from ..parallel import default_workers

    return number_option(None, "--workers", COUNT, "Processes solving at once on this machine, this one "
                         f"included (default: the number of cores, {default_workers()} here).")


def threads_option():
    """``--threads N``: HiGHS's threads for the main solve."""
    return number_option(None, "--threads", COUNT, "HiGHS threads (default: HiGHS's choice).")


def scheduler_option():
    """``--scheduler ADDRESS``: solve on a running Dask cluster instead of local processes."""
    return typer.Option(None, "--scheduler", metavar="ADDRESS",
                        help="Dask scheduler address (tcp://host:8786): solve on that cluster instead.")


def json_option():
    """``--json``: one JSON document on standard output instead of tables."""
    return typer.Option(False, "--json", help="Print one JSON document on standard output instead of tables.")


def force_option():
    """``--force``: write into a non-empty ``--out`` directory, replacing the files of the same names."""
    return typer.Option(False, "--force", help="Write into a non-empty --out directory, replacing the files "
                        "capplan writes there (other files are left alone).")


def formats_of(text: str, option: str = "--format") -> list[str]:
    """``csv,xlsx`` -> ``["csv", "xlsx"]``, or a usage error naming the unknown formats."""
    from ..plan import FORMATS

    formats = list(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise CommandError(f"{option}: unknown format{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"
                           if unknown else f"{option}: no format given",
                           hints=[f"choose from {', '.join(FORMATS)}, comma-separated"])
    return formats


def choice(value: str, option: str, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``, else a usage error listing them."""
    if value not in allowed:
        raise CommandError(f"{option}: must be one of {', '.join(allowed)}, got {value!r}")
    return value


# --------------------------------------------------------------------------- output directories


def output_dir(path: Path, *, force: bool = False, option: str = "--out", own: Sequence[str] = ()) -> Path:
    """Check (and create) an output directory before any work is done; the one rule of every command.

    A new or empty directory is used as it is; a non-empty one only with
    ``--force`` (its files of the same names are replaced, each atomically);
    a file, or a directory that cannot be created or written, is a usage
    error.  ``own``: names whose presence alone does not count (a sweep's
    store, which ``--resume`` continues).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CommandError(f"{option} {path}: is a file; {option} takes a directory",
                           hints=[f"choose a new or empty directory for {option}"])
    if path.is_dir() and not force and any(p.name not in own for p in path.iterdir()):
        raise CommandError(f"{option} {path}: the directory is not empty",
                           hints=[f"pass --force to replace the files capplan writes there, or choose another "
                                  f"{option}"])
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"{option} {path}: cannot create the directory: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CommandError(f"{option} {path}: the directory is not writable")
    return path


def instance_files(paths: Iterable[Path]) -> list[Path]:
    """Files to validate: each file as given, each directory's ``*.yaml`` / ``*.yml`` files (recursively, sorted)."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and q.is_file())
            if not found:
                raise CommandError(f"{p}: no .yaml or .yml files in this directory")
            files += found
        else:
            files.append(p)
    return files
