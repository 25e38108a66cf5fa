"""The ``capplan`` command line: a thin shell over the library, one module per command group.

Exit codes (also in ``capplan --help`` and the README):

  0  optimal plan (or, for validate, every file valid)
  1  internal error (a bug or a solver failure)
  2  usage error (bad option or argument)
  3  invalid instance file
  4  feasible plan, not proven optimal (time limit reached)
  5  infeasible instance
  6  unbounded instance
  7  no plan found before the time limit
  130 interrupted (Ctrl-C)
  141 the output pipe was closed (``capplan solve FILE | head -1``)

The conventions every command follows (errors, option ranges, output
directories, width) are in :mod:`optimizer.cli.conventions`.
"""

from . import alternatives, report, schema, simulate, solve, sweep  # noqa: F401  (each command module registers its commands on `app`)
from .app import Exit, app, main

__all__ = ["Exit", "app", "main"]
