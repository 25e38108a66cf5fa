"""What a solve established, as typed values: never strings to compare."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class SolveStatus(str, enum.Enum):
    """What the solver established, never more.

    OPTIMAL      proven optimal within the requested relative gap
    FEASIBLE     a plan was found but optimality was not proven (time limit); see the gap
    NO_SOLUTION  the solver stopped (time limit) before finding any plan
    INFEASIBLE   no plan satisfies the instance
    UNBOUNDED    the objective can grow without limit (a missing budget or ceiling)
    ERROR        the solver failed
    """

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    NO_SOLUTION = "no_solution"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    ERROR = "error"

    @property
    def has_plan(self) -> bool:
        """Whether the solve returned a plan: OPTIMAL or FEASIBLE."""
        return self in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


@dataclass(frozen=True)
class Progress:
    """A progress report from a running solve, in spec objective units.

    ``elapsed_seconds`` since HiGHS started; ``incumbent``: the objective of
    the best plan found so far, ``bound``: the best bound proven, ``gap``: the
    relative gap between them (each None until HiGHS has one); ``step``: what
    runs before the search, where that takes long (a large tree's staged
    starting plan), else None.
    """

    elapsed_seconds: float
    incumbent: float | None
    bound: float | None
    gap: float | None
    step: str | None = None


@dataclass
class SolveResult:
    """What one solve proved and how long it took.

    ``status`` (a :class:`SolveStatus`) and ``message`` say what the solver
    proved; ``objective`` (of the loaded plan), ``bound`` (the best proven
    bound) and ``mip_gap`` are in spec units, None where there is none.
    ``build_seconds``, ``handoff_seconds`` and ``solve_seconds`` time the
    Pyomo build, the hand-off to HiGHS and HiGHS itself; ``solver`` and
    ``solver_version`` name it.  ``rows``, ``columns``, ``integers``,
    ``nonzeros`` and ``ranges`` (coefficient ranges) describe the matrix
    HiGHS saw; ``gross`` is the gross discounted training the gap of a
    max_training plan is relative to; ``nodes`` and ``iterations`` count
    HiGHS's branch-and-bound nodes (-1: solved as an LP) and simplex
    iterations; ``start`` describes a large tree's staged starting plan
    (:mod:`optimizer.solver.staged`); ``helper`` the second search on an idle
    core (:mod:`optimizer.solver.race`), where one ran; ``handle`` is the :class:`~optimizer.solver.ModelHandle`
    holding the solved model (for marginal values and re-solves; never
    pickled).
    """

    status: SolveStatus
    message: str
    objective: float | None  # spec units, of the loaded plan
    bound: float | None  # spec units
    mip_gap: float | None
    build_seconds: float
    handoff_seconds: float
    solve_seconds: float
    solver: str
    solver_version: str
    rows: int = 0
    columns: int = 0
    integers: int = 0
    nonzeros: int = 0
    ranges: dict = field(default_factory=dict)  # coefficient ranges of the matrix HiGHS sees
    # max_training: the relaxed plan's gross discounted training (spec units); the gap is relative to the
    # larger of it and |objective| (docs/model.md). None for min_cost or without a starting plan.
    gross: float | None = None
    nodes: int | None = None  # branch-and-bound nodes HiGHS explored (-1: solved as an LP)
    iterations: int | None = None  # simplex iterations
    # a large tree's staged starting plan (solver/staged.py): its objective and LP bound (spec units), seconds,
    # leaf solves by status, and what happened; None where none was made
    start: dict | None = None
    # the second search on an idle core (solver/race.py), where one ran: its seed, when it started and how long
    # it ran (seconds), HiGHS's status of it, its incumbent and bound (spec units), whether its plan is the one
    # reported ("plan") and whether its bound is the one reported ("bound_used"); None where none ran
    helper: dict | None = None
    # the ModelHandle holding the solved model, for marginals and re-solves (not pickled: see __getstate__)
    handle: object = field(default=None, repr=False, compare=False)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["handle"] = None  # a live solver does not travel; the plan's tables do
        return state
