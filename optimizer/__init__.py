"""capplan: plan AI compute capacity as a mixed-integer program solved by HiGHS.

Data flows one way: instance (``optimizer.instance``) -> model (``formulations``)
-> solve (``optimizer.solver``) -> plan (``optimizer.plan``) -> reports
(``optimizer.report``); analyses that re-solve (``optimizer.analysis``) sit
above the solve, and the command line (``optimizer.cli``) is a thin shell on top.

>>> from optimizer import load_instance, solve
>>> plan = solve(load_instance("instances/aws-5gw-2026.yaml"))
>>> plan.status.value
'optimal'
"""

from .analysis.alternatives import Alternatives, alternatives
from .analysis.diagnose import Explanation, explain
from .analysis.simulate import simulate
from .analysis.sweep import marginal, sweep
from .errors import InstanceError, Problem
from .instance import Factor, Instance, Shift, load_instance
from .pipeline import solve
from .plan import Plan, read_plan
from .plan.simulation import PolicyValue, Simulation, read_simulation
from .solver import Progress, SolveResult, SolveStatus

__all__ = [
    "Alternatives",
    "Explanation",
    "Factor",
    "Instance",
    "InstanceError",
    "Plan",
    "PolicyValue",
    "Problem",
    "Progress",
    "Shift",
    "Simulation",
    "SolveResult",
    "SolveStatus",
    "alternatives",
    "explain",
    "load_instance",
    "marginal",
    "read_plan",
    "read_simulation",
    "simulate",
    "solve",
    "sweep",
]
__version__ = "0.1.0"
