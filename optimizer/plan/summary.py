"""Typed results of the analyses behind a plan: the objective's parts, the tree's value of information, and
the cost of a commitment.  They travel with the plan (pickled, deep-copied) and fill its summary table."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

NOT_IN_TIME = "not solved in time"
"""How ``wait_and_see_status`` and ``base_plan_status`` say that a time limit left a solve without a value."""


@dataclass(frozen=True)
class ObjectiveParts:
    """What the objective of a solved plan is made of, in spec objective units.

    ``terminal_value``: the terminal value of spec v2 section 5 (expected over the scenarios; 0 without
    salvage).  ``scenario_objective`` and ``scenario_terminal_value``: each scenario's O_s and its terminal
    value ({scenario id: value}; the one scenario ``base`` of a v1 plan).
    """

    terminal_value: float = 0.0
    scenario_objective: dict = field(default_factory=dict)
    scenario_terminal_value: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TreeSummary:
    """A plan under uncertainty (spec v2 sections 4.2-4.3), in spec objective units.

    ``expected_objective`` = sum_s p_s O_s and ``cvar`` (CVaR at alpha of the O_s in the objective's bad
    tail) of the plan; ``wait_and_see`` (WS: the risk measure of each scenario's own optimum), ``evpi``
    (WS - RP for max_training, RP - WS for min_cost), ``base_plan_objective`` (EEV: the tree with the base
    plan's first decisions held), ``vss`` (RP - EEV, or the reverse; infinite when the base plan's
    commitments leave a scenario infeasible) and ``base_plan_status`` (what is known of EEV, in words) when
    the value of information was solved; None otherwise.  ``wait_and_see_status`` says, when WS is not known
    although the value of information was asked for, why: how many scenarios' own solves gave no value, by
    reason (``"5 of 6 scenarios not solved in time"``); None otherwise.
    """

    scenarios: int
    expected_objective: float
    cvar: float
    wait_and_see: float | None = None
    evpi: float | None = None
    base_plan_objective: float | None = None
    base_plan_status: str | None = None
    vss: float | None = None
    wait_and_see_status: str | None = None

    def fields(self) -> dict:
        """The summary fields (None as NaN, as in the summary table)."""
        return {k: (math.nan if v is None else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class CommitmentSummary:
    """A re-plan holding an earlier plan's decisions (spec v2 section 6).

    ``commitment_cost``: what holding them costs against a free re-plan, in objective units (infinite when
    they leave no plan at all, NaN when the free re-plan failed); ``committed_through``: the last held year.
    """

    commitment_cost: float
    committed_through: int

    def fields(self) -> dict:
        return asdict(self)
