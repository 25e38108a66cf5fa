"""The staged starting plan of large trees (optimizer/solver/staged.py): relax-and-fix by stage, leaves alone.

On small multi-stage trees (the threshold lowered so that the staged start applies), checked against the
deterministic equivalent solved to optimality: the staged plan is a plan of the tree (the independent checker
passes it: every constraint, non-anticipativity, the objective recomputed), never better than the optimum,
the LP bound never below it, and the search that starts from it still proves the optimum.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from plan_checker import check_tree_plan

from optimizer import SolveStatus, load_instance, solve
from optimizer.plan import Plan
from optimizer.solver import ModelHandle, staged
from optimizer.solver.highs import solve_leaf

ROOT = Path(__file__).resolve().parent.parent
GAP = 1e-9


def _raw(stem: str) -> dict:
    return yaml.safe_load((ROOT / "instances" / f"{stem}.yaml").read_text())


def _three_stage_frontier() -> dict:
    """tiny-frontier-cluster over three years (a frontier cluster in the first and the last) with demand and a
    chip price revealed in two stages (4 scenarios, max_training, frontier sites and blocks in every node)."""
    raw = _raw("tiny-frontier-cluster")
    raw["name"] = "tiny-frontier-tree"
    raw["horizon"]["end"] = 2028
    raw["training"]["frontier_cluster_pflops"] = {2026: 8, 2027: 0, 2028: 8}
    raw["uncertainty"] = {"stages": [
        {"year": raw["horizon"]["start"] + 1, "name": "demand", "branches": {
            "low": {"probability": 0.4},
            "high": {"probability": 0.6, "changes": {"regions.*.inference_demand_pflops": "x2"}}}},
        {"year": raw["horizon"]["start"] + 2, "name": "price", "branches": {
            "flat": {"probability": 0.5},
            "up": {"probability": 0.5, "changes": {"chips.*.price_usd": "x1.5"}}}}]}
    return raw


def _two_stage_min_cost() -> dict:
    """tiny-tree-min-cost with a third year and a second stage (4 scenarios, min_cost, blocks with a lead)."""
    raw = _raw("tiny-tree-min-cost")
    raw["horizon"]["end"] = 2028
    raw["regions"]["r"]["inference_demand_pflops"] = {2026: 0, 2027: 4, 2028: 5}
    raw["uncertainty"]["stages"].append({"year": 2028, "name": "surge", "branches": {
        "calm": {"probability": 0.7},
        "surge": {"probability": 0.3, "changes": {"regions.r.inference_demand_pflops": "x1.6"}}}})
    return raw


TREES = {"frontier-max-training": _three_stage_frontier, "min-cost": _two_stage_min_cost}


@pytest.fixture(params=sorted(TREES))
def tree(request):
    inst = load_instance(TREES[request.param]())
    assert len(inst.tree.stage_years) >= 2
    return inst


@pytest.fixture
def staged_on(monkeypatch):
    """The staged start for every tree of two stages or more (the tiny trees here have 4 scenarios)."""
    monkeypatch.setattr(staged, "STAGED_START_SCENARIOS", 1)


def _optimum(inst) -> Plan:
    plan = solve(inst, mip_gap=GAP, value_of_information=False)
    assert plan.status is SolveStatus.OPTIMAL
    return plan


def test_the_staged_plan_is_a_plan_of_the_tree_never_better_than_the_optimum(tree, staged_on):
    best = _optimum(tree)
    handle = ModelHandle(tree)
    h = handle.highs
    before = h.getLp()
    found = staged.staged_start(handle, None, leaf=solve_leaf, mip_gap=GAP, workers=1)
    assert found.values is not None, found.message
    # one leaf solve per scenario, each proven
    assert found.leaves == {"optimal": len(tree.tree.scenarios)}
    # the handle's program is left as it was found
    after = h.getLp()
    assert list(after.integrality_) == list(before.integrality_)
    assert list(after.col_lower_) == list(before.col_lower_) and list(after.col_upper_) == list(before.col_upper_)
    _check_staged_plan(tree, handle, found, best)


def _check_staged_plan(tree, handle, found, best) -> None:
    """Every integer held at the staged plan's value, the operation solved: the plan the search starts from,
    checked independently; never better than the optimum ``best``, and the LP bound never below it."""
    fixes = []
    for name in staged.INTEGERS:
        for index, var in handle.model.component(name).items():
            c = handle.column(var)
            if c is not None:
                fixes.append((name, index, float(round(found.values[c]))))
    handle.fix(fixes)
    result = handle.solve(mip_gap=GAP, warm_start=False)
    assert result.status is SolveStatus.OPTIMAL
    plan = Plan.from_model(tree, handle.model, result)
    check_tree_plan(tree, plan)  # every constraint, non-anticipativity, the objective recomputed
    factor = handle.info.objective_factor
    assert result.objective == pytest.approx(found.objective * factor, rel=1e-7, abs=1e-7)
    maximize = tree.objective.kind == "max_training"
    sign = 1.0 if maximize else -1.0
    tol = 1e-7 * max(1.0, abs(best.objective))
    assert sign * result.objective <= sign * best.objective + tol  # a plan is never better than the optimum
    assert sign * found.lp_bound * factor >= sign * best.objective - tol  # the LP relaxation bounds it


def test_the_search_from_the_staged_plan_proves_the_optimum(tree, staged_on):
    best = _optimum(tree)
    handle = ModelHandle(tree)
    reports = []
    result = handle.solve(mip_gap=GAP, progress=reports.append, workers=1)
    assert result.start is not None and result.start["method"] == "staged"  # the staged start was taken
    assert result.start["leaves"] == {"optimal": len(tree.tree.scenarios)}
    assert result.status is SolveStatus.OPTIMAL
    assert result.objective == pytest.approx(best.objective, rel=1e-7, abs=1e-7)
    sign = 1.0 if tree.objective.kind == "max_training" else -1.0
    assert sign * result.start["objective"] <= sign * result.objective + 1e-7 * max(1.0, abs(best.objective))
    # the steps before the search are reported (a large tree spends minutes there)
    steps = [p.step for p in reports if p.step is not None]
    assert any("stage 1 of" in s for s in steps) and any("last stage, each alone" in s for s in steps)
    assert steps[-1] == "starting plan: the whole tree with its integers held"


def test_solve_with_the_staged_start_on_worker_processes(staged_on):
    """The library's solve: leaves on two local workers, value of information beside; the checker passes the
    plan and the optimum is the deterministic equivalent's."""
    inst = load_instance(_three_stage_frontier())
    plan = solve(inst, mip_gap=GAP, workers=2)
    assert plan.status is SolveStatus.OPTIMAL
    check_tree_plan(inst, plan)
    assert plan.objective == pytest.approx(_optimum(inst).objective, rel=1e-7)


def test_small_trees_keep_the_starting_plan_of_v1_files():
    """Below the threshold (the shipped tree has 6 scenarios) the staged start does not apply."""
    assert staged.STAGED_START_SCENARIOS > 6
    shipped = load_instance(ROOT / "instances" / "aws-5gw-2026-scenarios.yaml")
    assert not staged.applies(shipped.tree)
    assert not staged.applies(load_instance(ROOT / "instances" / "aws-5gw-2026.yaml").tree)


def test_a_level_whose_rounding_fails_is_solved_as_a_mip(staged_on, monkeypatch):
    """No frontier site picked (the rounded level breaks 'one site holds the cluster'): the level's MIP decides,
    and the staged plan is still a plan of the tree that the checker passes."""
    inst = load_instance(_three_stage_frontier())
    monkeypatch.setattr(staged, "_pick_sites", lambda x, sites, site_of: [0.0] * len(sites))
    handle = ModelHandle(inst)
    found = staged.staged_start(handle, None, leaf=solve_leaf, mip_gap=GAP, workers=1)
    assert found.values is not None, found.message
    hows = [level.get("how") for level in found.levels if "how" in level]
    assert hows and hows[0] == "MIP"  # the root holds a frontier year
    result = handle.solve(mip_gap=GAP, workers=1)
    assert result.status is SolveStatus.OPTIMAL
    check_tree_plan(inst, Plan.from_model(inst, handle.model, result))
    assert result.objective == pytest.approx(_optimum(inst).objective, rel=1e-7)


def _with_tree(stem: str, *, cvar: bool = False) -> dict:
    """A v1 tiny file over three years with demand revealed in the second year and chip prices in the third
    (6 scenarios), optionally with a CVaR objective."""
    raw = _raw(stem)
    start = raw["horizon"]["start"]
    raw["horizon"]["end"] = max(raw["horizon"]["end"], start + 2)
    raw["name"] = f"{stem}-tree"
    raw["uncertainty"] = {"stages": [
        {"year": start + 1, "name": "demand", "branches": {
            "low": {"probability": 0.3, "changes": {"regions.*.inference_demand_pflops": "x0.6"}},
            "base": {"probability": 0.5},
            "high": {"probability": 0.2, "changes": {"regions.*.inference_demand_pflops": "x1.6"}}}},
        {"year": start + 2, "name": "price", "branches": {
            "flat": {"probability": 0.6},
            "up": {"probability": 0.4, "changes": {"chips.*.price_usd": "x1.4"}}}}]}
    if cvar:
        raw["uncertainty"]["risk"] = {"cvar_alpha": 0.8, "weight": 0.5}
    return raw


@pytest.mark.parametrize("stem, cvar", [("tiny-build-lead", False), ("tiny-salvage-min-cost", False),
                                        ("tiny-commit", True), ("tiny-energy-budget", True),
                                        ("tiny-lifetime-expiry", False), ("tiny-chips-per-unit", True)])
def test_the_staged_start_on_the_features_of_v1_files(stem, cvar, staged_on):
    """Build leads, salvage with min_cost, existing commitments, an energy budget, chip lifetimes, chips per
    unit, CVaR: on each, the staged plan passes the independent checker, is never better than the optimum,
    and the search from it proves the optimum."""
    inst = load_instance(_with_tree(stem, cvar=cvar))
    assert len(inst.tree.scenarios) == 6 and bool(inst.tree.risk) is cvar
    best = _optimum(inst)
    found = staged.staged_start(ModelHandle(inst), None, leaf=solve_leaf, mip_gap=GAP, workers=1)
    assert found.values is not None, found.message
    assert found.leaves == {"optimal": 6}
    _check_staged_plan(inst, ModelHandle(inst), found, best)
    result = ModelHandle(inst).solve(mip_gap=GAP, workers=1)
    assert result.start["method"] == "staged" and result.start["objective"] is not None
    assert result.status is SolveStatus.OPTIMAL
    assert result.objective == pytest.approx(best.objective, rel=1e-7, abs=1e-7)


def test_the_last_step_may_use_the_whole_solves_time(staged_on, monkeypatch):
    """When the steps before it spent the staged start's share, the whole tree's LP with every integer held
    (what makes their work a plan) runs on with the time of the whole solve, not the 1 s left of the share
    (at 1,000 scenarios on a busy machine the share ran out there and every leaf's work was dropped).  The
    clock is faked: it jumps past the share once the leaves are solved."""
    inst = load_instance(_three_stage_frontier())
    handle = ModelHandle(inst)
    h = handle.highs
    real = staged.time.perf_counter
    staged_time = staged.time
    jump = {"by": 0.0}

    class Clock:
        @staticmethod
        def perf_counter():
            return real() + jump["by"]

        @staticmethod
        def time():  # the worker runner's deadline is on the wall clock
            return staged_time.time() + jump["by"]

    solve_leaves = staged._solve_leaves

    def leaves_then_late(*args, **kwargs):
        out = solve_leaves(*args, **kwargs)
        jump["by"] = 1e4  # the share (1e3 s) is gone; the solve (1e6 s) is not
        return out

    limits = []
    set_option = h.setOptionValue

    def spy(name, value):
        if name == "time_limit":
            limits.append(value)
        return set_option(name, value)

    monkeypatch.setattr(staged, "time", Clock)
    monkeypatch.setattr(staged, "_solve_leaves", leaves_then_late)
    monkeypatch.setattr(h, "setOptionValue", spy)
    now = real()
    found = staged.staged_start(handle, now + 1e3, leaf=solve_leaf, mip_gap=GAP, workers=1, last_deadline=now + 1e6)
    assert found.values is not None, found.message
    assert limits[-2] > 9e5  # the joined LP's limit (the last one restores "no limit")


def _leaf_or_sleep(payload: dict) -> dict:
    """A leaf task for worker processes: the leaves whose chip price went up in 2028 never end (they sleep),
    the others are solved."""
    import time

    if any(c.price_usd[2028] > 100 for c in payload["instance"].chips.values()):
        time.sleep(1000)
    return solve_leaf(payload)


def test_leaves_not_solved_in_time_are_rounded_from_the_relaxed_plan(tree, staged_on):
    """A leaf without a plan (its solve stopped by the time limit) no longer drops the whole start: its
    integers are rounded from the relaxed plan (frontier sites first, then units and blocks), the solved
    leaves held, and the joined program is a plan of the tree (checked independently), never better than the
    optimum."""
    best = _optimum(tree)
    handle = ModelHandle(tree)
    calls = []

    def leaf(payload):  # in this process (one worker): the first leaf is solved, the others stop without a plan
        calls.append(payload)
        if len(calls) == 1:
            return solve_leaf(payload)
        return {"status": "no_solution", "objective": None, "seconds": 0.0}

    found = staged.staged_start(handle, None, leaf=leaf, mip_gap=GAP, workers=1)
    assert found.values is not None, found.message
    n = len(tree.tree.scenarios)
    assert found.leaves == {"optimal": 1, "no_solution": n - 1}
    _check_staged_plan(tree, handle, found, best)


def test_the_leaves_end_in_time_for_the_end_of_the_solve(staged_on):
    """On worker processes, a leaf still running when the whole solve's end nears is stopped (not waited for)
    and its integers rounded: the staged start keeps its plan and ends long before that leaf would.  (The
    leaf sleeps for 1,000 s; the solve's end is 10 s away: the leaves that finish by then are held, the
    others rounded, so no race against the machine's speed decides the outcome.)"""
    inst = load_instance(_three_stage_frontier())
    best = _optimum(inst)
    handle = ModelHandle(inst)
    t0 = staged.time.perf_counter()
    found = staged.staged_start(handle, t0 + 3, leaf=_leaf_or_sleep, mip_gap=GAP, workers=2, last_deadline=t0 + 10)
    assert found.seconds < 100  # the sleeping leaf was given up at the deadline
    assert found.values is not None, found.message
    assert found.leaves.get("stopped", 0) + found.leaves.get("not started", 0) >= 1
    _check_staged_plan(inst, handle, found, best)
