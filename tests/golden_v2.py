"""Expected values of the spec-v2 tiny instances (``instances/tiny-tree-*``,
``tiny-salvage-*``, ``tiny-commit``, ``tiny-alternatives``).

Every number here is derived by hand in the header of its instance file and was
checked by an independent brute-force enumeration (root decisions enumerated,
each scenario solved alone), never by capplan's own solver.

Keys use the names of spec v2: summary fields (``expected_objective``, ``cvar``,
``wait_and_see``, ``evpi``, ``base_plan_objective``, ``vss``,
``terminal_value``, ``commitment_cost``) and the ``scenarios`` table
(probability, objective O_s, wait_and_see_objective O*_s).
"""

from __future__ import annotations

# Scenario trees (§4). "commitments": units bought before the first stage year,
# {(chip, region, year): units}; "commitment_blocks": {(region, year): blocks}.
# "base_*": the file without `uncertainty`, solved as a v1 instance.
TREES = {
    "tiny-tree-hedge": {
        "objective": 41.0,
        "expected_objective": 41.0,
        "wait_and_see": 48.0,
        "evpi": 7.0,
        "base_plan_objective": 39.0,  # EEV
        "vss": 2.0,
        "scenarios": {"on-spec": (0.4, 50.0, 60.0), "weak": (0.6, 35.0, 40.0)},
        "commitments": {("a", "r", 2026): 5},
        "commitment_blocks": {},
        "base_objective": 60.0,
        "base_commitments": {},
        "base_commitment_blocks": {},
    },
    "tiny-tree-evpi-zero": {
        "objective": 21.25,
        "expected_objective": 21.25,
        "wait_and_see": 21.25,
        "evpi": 0.0,
        "base_plan_objective": 21.25,
        "vss": 0.0,
        "scenarios": {
            "base/calm": (0.25, 24.0, 24.0),
            "base/surge": (0.25, 23.0, 23.0),
            "high/calm": (0.25, 20.0, 20.0),
            "high/surge": (0.25, 18.0, 18.0),
        },
        "commitments": {("a", "r", 2026): 10},
        "commitment_blocks": {},
        "base_objective": 24.0,
        "base_commitments": {("a", "r", 2026): 10},
        "base_commitment_blocks": {},
    },
    "tiny-tree-cvar": {  # risk {cvar_alpha 0.5, weight 0.8}
        "objective": 40.0,
        "expected_objective": 40.0,
        "cvar": 40.0,
        "wait_and_see": 51.2,
        "evpi": 11.2,
        "base_plan_objective": 36.8,
        "vss": 3.2,
        "scenarios": {"on-spec": (0.6, 40.0, 80.0), "weak": (0.4, 40.0, 40.0)},
        "commitments": {("a", "r", 2026): 10},
        "commitment_blocks": {},
        "base_objective": 80.0,
        "base_commitments": {},
        "base_commitment_blocks": {},
    },
    "tiny-tree-min-cost": {
        "objective": 1400.0,
        "expected_objective": 1400.0,
        "wait_and_see": 1200.0,
        "evpi": 200.0,  # RP - WS for min_cost
        "base_plan_objective": 1800.0,
        "vss": 400.0,  # EEV - RP for min_cost
        "scenarios": {"low": (0.5, 1200.0, 800.0), "high": (0.5, 1600.0, 1600.0)},
        "commitments": {},
        "commitment_blocks": {("r", 2026): 8},
        "base_objective": 800.0,
        "base_commitments": {},
        "base_commitment_blocks": {("r", 2026): 4},
    },
    "tiny-tree-chip-delay": {
        "objective": 65.0,
        "expected_objective": 65.0,
        "wait_and_see": 66.5,
        "evpi": 1.5,
        "base_plan_objective": 65.0,
        "vss": 0.0,
        "scenarios": {"on-time": (0.7, 80.0, 80.0), "late": (0.3, 30.0, 35.0)},
        "commitments": {},
        "commitment_blocks": {},
        "base_objective": 80.0,
        "base_commitments": {},
        "base_commitment_blocks": {},
    },
}

# tiny-tree-cvar with uncertainty.risk.weight = 0 (risk neutral): the root moves.
CVAR_WEIGHT_ZERO = {
    "objective": 56.0,
    "expected_objective": 56.0,
    "cvar": 32.0,
    "wait_and_see": 64.0,
    "evpi": 8.0,
    "base_plan_objective": 56.0,
    "vss": 0.0,
    "scenarios": {"on-spec": (0.6, 80.0, 80.0), "weak": (0.4, 20.0, 40.0)},
    "commitments": {},
}

# End of horizon (§5): objective and terminal_value with salvage, objective
# with truncate; purchases {(chip, region, year): units} of each optimum.
SALVAGE = {
    "tiny-salvage-max-training": {
        "objective": 34.0,
        "terminal_value": 24.0,
        "purchases": {("b", "r", 2027): 6},
        "truncate_objective": 28.0,
        "truncate_purchases": {("a", "r", 2026): 6},
    },
    "tiny-salvage-min-cost": {
        "objective": 80.0,
        "terminal_value": -40.0,  # the resale term as it enters the objective
        "purchases": {("b", "r", 2027): 2},
        "truncate_objective": 100.0,
        "truncate_purchases": {("a", "r", 2027): 2},
    },
}

# Re-planning against a committed plan (§6).
COMMIT = {
    "instance": "tiny-commit",
    "plan": "tests/instances/tiny-commit-plan",
    "through": 2026,
    "objective": 52.0,
    "uncommitted_objective": 60.0,
    "commitment_cost": 8.0,
    "purchases": {("a", "r", 2026): 4, ("b", "r", 2027): 6},
    "blocks": {("r", 2026): 1, ("r", 2027): 2},
    "through_2027_objective": 28.0,
    # purchases row 2026,r,a,12: 12 MW drawn in 2026 > max_mw 10
    "infeasible_plan": "tests/instances/tiny-commit-infeasible-plan",
}

# Near-optimal ranges (§7): aggregate -> (optimal, min, max, robust).
ALTERNATIVES = {
    "instance": "tiny-alternatives",
    "slack": 0.1,
    "objective": 48.0,
    "rows": {
        "chips.a": (12.0, 8.0, 12.0, False),
        "chips.b": (0.0, 0.0, 4.0, False),
        "regions.r": (12.0, 12.0, 12.0, True),
    },
}

# files that use v2 keys (`uncertainty`, `objective.end_of_horizon`)
V2_KEY_STEMS = set(TREES) | set(SALVAGE)
# every v2 golden file (tiny-commit and tiny-alternatives are plain v1 files)
V2_STEMS = V2_KEY_STEMS | {COMMIT["instance"], ALTERNATIVES["instance"]}
