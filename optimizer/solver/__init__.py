"""Solving with HiGHS: the model handle (:class:`ModelHandle`), typed options and outcomes, marginal values."""

from .highs import ModelHandle, SolveOptions, coefficient_ranges, solver_version
from .result import Progress, SolveResult, SolveStatus

__all__ = ["ModelHandle", "Progress", "SolveOptions", "SolveResult", "SolveStatus", "coefficient_ranges",
           "solver_version"]
