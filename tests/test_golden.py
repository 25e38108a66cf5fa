"""Golden tests: tiny instances whose optimum was worked out by hand, and the
independent plan checker run on every instance file.

Each ``instances/tiny-*.yaml`` starts with a comment block deriving its optimum
step by step; the numbers in ``EXPECTED`` come from those derivations, never
from a solver run.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path

import pytest

from optimizer import SolveStatus, load_instance, solve

try:  # pytest puts tests/ on sys.path (rootdir import mode "prepend")
    from golden_v2 import V2_KEY_STEMS
    from plan_checker import check_plan, check_tree_plan
except ImportError:  # pragma: no cover - run as a package
    from tests.golden_v2 import V2_KEY_STEMS
    from tests.plan_checker import check_plan, check_tree_plan

INSTANCES = Path(__file__).resolve().parent.parent / "instances"

# instance file stem -> optimal objective, derived by hand in the file's header
EXPECTED = {
    "tiny-lifetime-expiry": 13.0,
    "tiny-build-lead": 26.0,
    "tiny-supply-cap": 44.0,
    "tiny-cross-region-serving": 10.0,
    "tiny-frontier-cluster": 25.0,
    "tiny-unmet-penalty": 13.0,
    "tiny-annual-budget": 9.0,
    "tiny-min-cost": 54760.0,
    "tiny-series-interpolation": 36.0,
    "tiny-series-growth": 42.25,
    "tiny-discount-rate": 1.5,
    "tiny-chips-per-unit": 8.0,
    "tiny-energy-budget": 5.995215,
    "tiny-power-ceiling": 7.0,
    # v1 files of the spec-v2 goldens (tests/test_golden_v2.py): the optimum
    # without commitment / the optimum whose near-optimal ranges are asserted
    "tiny-commit": 60.0,
    "tiny-alternatives": 48.0,
}

# every file is checked by the plan checker; the optima of files with spec-v2 keys (trees,
# salvage) are asserted in test_golden_v2.py
ALL_FILES = sorted(INSTANCES.glob("*.yaml"))


@functools.cache
def solved(path: str):
    """Load and solve an instance file once per test session (module-level cache)."""
    inst = load_instance(path)
    if Path(path).name.startswith("tiny-"):
        # goldens are asserted to 1e-6: ask for a proven optimum, not one within 1e-4
        plan = solve(inst, mip_gap=1e-9)
    elif inst.uncertainty is not None:
        # the plan checker needs a feasible plan of every scenario, not a proof (test_tree.py times it)
        plan = solve(inst, time_limit=30, value_of_information=False)
    else:
        plan = solve(inst, time_limit=600)
    return inst, plan


def test_every_golden_file_exists():
    stems = {p.stem for p in INSTANCES.glob("tiny-*.yaml")}
    assert set(EXPECTED) | V2_KEY_STEMS == stems


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_golden_objective(stem):
    inst, plan = solved(str(INSTANCES / f"{stem}.yaml"))
    assert plan.status == SolveStatus.OPTIMAL, plan.message
    assert plan.objective == pytest.approx(EXPECTED[stem], rel=1e-6)
    check_plan(inst, plan)


@pytest.mark.parametrize("path", ALL_FILES, ids=[p.stem for p in ALL_FILES])
def test_check_plan_on_every_instance(path):
    inst, plan = solved(str(path))
    assert plan.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE), plan.message
    if inst.uncertainty is not None:
        check_tree_plan(inst, plan)  # every scenario against its own instance, and non-anticipativity
    else:
        check_plan(inst, plan)


# --------------------------------------------------------------------------- the checker can fail


def _copy(plan, **tables):
    """A shallow copy of ``plan`` with some tables replaced."""
    out = copy.copy(plan)
    for name, df in tables.items():
        setattr(out, name, df)
    return out


@pytest.fixture(scope="module")
def base():
    """A plan with purchases, blocks, energy and opex: corrupt copies of it must fail."""
    return solved(str(INSTANCES / "tiny-min-cost.yaml"))


def _fails(inst, plan, *needles):
    with pytest.raises(AssertionError) as info:
        check_plan(inst, plan)
    text = str(info.value)
    for needle in needles:
        assert needle in text, text
    return text


def test_base_plan_passes(base):
    inst, plan = base
    check_plan(inst, plan)


def test_checker_catches_bumped_purchase(base):
    inst, plan = base
    p = plan.purchases.copy()
    p.loc[0, "units"] += 1
    _fails(inst, _copy(plan, purchases=p), "purchases[", ".chips", "fleet[")


def test_checker_catches_consistent_extra_purchase(base):
    # a purchase added consistently everywhere still breaks power, spend and objective
    inst, plan = base
    u = plan.purchases.copy()
    u.loc[0, ["units", "chips"]] += 1
    u.loc[0, "capex_usd"] = u.loc[0, "chips"] * inst.chips[u.loc[0, "chip"]].price_usd[2026]
    f = plan.fleet.copy()
    f.loc[(f.chip == u.loc[0, "chip"]), ["installed", "idle"]] += 1
    _fails(inst, _copy(plan, purchases=u, fleet=f), "facility[", "spend[", "objective")


def test_checker_catches_draw_above_capacity(base):
    inst, plan = base
    fac = plan.facilities.copy()
    fac.loc[0, "draw_mw"] = fac.loc[0, "capacity_mw"] + 1.0
    _fails(inst, _copy(plan, facilities=fac), "draw_mw")


def test_checker_catches_overassigned_fleet(base):
    inst, plan = base
    f = plan.fleet.copy()
    f.loc[0, "train"] += f.loc[0, "installed"]
    _fails(inst, _copy(plan, fleet=f), "assign[")


def test_checker_catches_unmet_demand(base):
    inst, plan = base
    s = plan.serving.copy()
    s["pflops"] = s["pflops"] * 0.5
    _fails(inst, _copy(plan, serving=s), "demand[")


def test_checker_catches_wrong_spend(base):
    inst, plan = base
    s = plan.spend.copy()
    s.loc[0, "energy_usd"] *= 0.5
    _fails(inst, _copy(plan, spend=s), "energy_usd")


def test_checker_catches_wrong_objective(base):
    inst, plan = base
    bad = _copy(plan)
    bad.result = dataclasses.replace(plan.result, objective=plan.objective * 1.01)
    _fails(inst, bad, "objective")


def test_checker_catches_missing_frontier():
    inst, plan = solved(str(INSTANCES / "tiny-frontier-cluster.yaml"))
    f = plan.fleet.copy()
    # spread 2026 training over the two chips so neither site reaches 8 PFLOP/s
    f.loc[f.year == 2026, "train"] = f.loc[f.year == 2026, "installed"] * 0.5
    f.loc[f.year == 2026, "idle"] = f.loc[f.year == 2026, "installed"] * 0.5
    _fails(inst, _copy(plan, fleet=f), "frontier[2026]")


def test_infeasible_instance_has_an_empty_plan():
    data = {
        "name": "tiny-infeasible",
        "horizon": {"start": 2026, "end": 2026},
        "regions": {"r": {"pue": 1, "electricity_usd_per_mwh": 0, "existing_mw": 1, "max_mw": 1,
                          "block_mw": 1, "block_capex_usd": 0, "build_lead_years": 0,
                          "inference_demand_pflops": 5}},
        "chips": {"g": {"price_usd": 100, "power_w": 1e6, "peak_pflops": 1,
                        "utilization": {"train": 1, "infer": 1}, "lifetime_years": 1}},
    }
    inst = load_instance(data)
    plan = solve(inst)
    assert plan.status == SolveStatus.INFEASIBLE
    check_plan(inst, plan)
