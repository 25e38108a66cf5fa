"""capplan: plan AI compute capacity as a mixed-integer program solved by HiGHS.

>>> from optimizer import load_instance, solve
>>> plan = solve(load_instance("instances/aws-5gw-2026.yaml"))
>>> plan.status.value
'optimal'
"""

from .errors import InstanceError, Problem
from .instance import Instance, load_instance
from .plan import Plan
from .solver import Progress, SolveResult, SolveStatus, solve

__all__ = [
    "Instance",
    "InstanceError",
    "Plan",
    "Problem",
    "Progress",
    "SolveResult",
    "SolveStatus",
    "load_instance",
    "solve",
]
__version__ = "0.1.0"
