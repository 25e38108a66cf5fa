"""Solving a built model with HiGHS: typed outcomes, the persistent solver, and marginal values."""

from .highs import attach, coefficient_ranges, run_model, solver_version
from .result import Progress, SolveResult, SolveStatus

__all__ = ["Progress", "SolveResult", "SolveStatus", "attach", "coefficient_ranges", "run_model",
           "solver_version"]
