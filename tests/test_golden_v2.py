"""Golden tests for spec v2: scenario trees (§4), salvage (§5), commitments (§6)
and near-optimal ranges (§7), on tiny instances whose numbers are derived by
hand in each file's header (values in ``golden_v2.py``).

The v1 parts (each tree's base instance, the truncate variants, the
uncommitted optimum) are cross-checks of the derivations with the v1 program.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import yaml

from optimizer import SolveStatus, load_instance, solve

try:  # pytest puts tests/ on sys.path (rootdir import mode "prepend")
    import golden_v2 as G
except ImportError:  # pragma: no cover - run as a package
    from tests import golden_v2 as G

ROOT = Path(__file__).resolve().parent.parent
INSTANCES = ROOT / "instances"
GAP = 1e-9  # goldens are asserted to 1e-6: ask for a proven optimum


def approx(x):
    return pytest.approx(x, rel=1e-6, abs=1e-6)


def raw(stem):
    with open(INSTANCES / f"{stem}.yaml") as f:
        return yaml.safe_load(f)


def purchases_of(df, years=None):
    """{(chip, region, year): units} of a purchases table (one scenario)."""
    out = {}
    for row in df.itertuples(index=False):
        if row.units and (years is None or row.year in years):
            key = (row.chip, row.region, int(row.year))
            out[key] = out.get(key, 0) + int(round(row.units))
    return out


def blocks_of(df, years=None):
    out = {}
    for row in df.itertuples(index=False):
        if row.blocks_started and (years is None or row.year in years):
            out[(row.region, int(row.year))] = int(round(row.blocks_started))
    return out


@functools.cache
def solved(stem):
    inst = load_instance(str(INSTANCES / f"{stem}.yaml"))
    return inst, solve(inst, mip_gap=GAP)


def test_every_v2_file_exists():
    for stem in G.V2_STEMS:
        assert (INSTANCES / f"{stem}.yaml").is_file(), stem
    for key in ("plan", "infeasible_plan"):
        d = ROOT / G.COMMIT[key]
        assert (d / "purchases.csv").is_file() and (d / "facilities.csv").is_file(), d


# --------------------------------------------------------------------------- v1 parts, run today


@pytest.mark.parametrize("stem", sorted(G.TREES))
def test_tree_base_instance(stem):
    """The file without `uncertainty` is a v1 instance; EEV depends on its root decisions."""
    data = raw(stem)
    first_stage = min(s["year"] for s in data["uncertainty"]["stages"])
    del data["uncertainty"]
    inst = load_instance(data)
    plan = solve(inst, mip_gap=GAP)
    exp = G.TREES[stem]
    assert plan.status == SolveStatus.OPTIMAL, plan.message
    assert plan.objective == approx(exp["base_objective"])
    root = range(inst.years[0], first_stage)
    assert purchases_of(plan.purchases, root) == exp["base_commitments"]
    assert blocks_of(plan.facilities, root) == exp["base_commitment_blocks"]


@pytest.mark.parametrize("stem", sorted(G.SALVAGE))
def test_truncate_is_v1(stem):
    data = raw(stem)
    del data["objective"]["end_of_horizon"]
    plan = solve(load_instance(data), mip_gap=GAP)
    exp = G.SALVAGE[stem]
    assert plan.status == SolveStatus.OPTIMAL, plan.message
    assert plan.objective == approx(exp["truncate_objective"])
    assert purchases_of(plan.purchases) == exp["truncate_purchases"]


def test_commit_instance_uncommitted():
    plan = solve(load_instance(str(INSTANCES / "tiny-commit.yaml")), mip_gap=GAP)
    assert plan.status == SolveStatus.OPTIMAL, plan.message
    assert plan.objective == approx(G.COMMIT["uncommitted_objective"])


def test_alternatives_instance_optimum():
    plan = solve(load_instance(str(INSTANCES / "tiny-alternatives.yaml")), mip_gap=GAP)
    assert plan.status == SolveStatus.OPTIMAL, plan.message
    assert plan.objective == approx(G.ALTERNATIVES["objective"])


# --------------------------------------------------------------------------- §4 scenario trees


def _check_tree(stem, plan, exp):
    assert plan.status == SolveStatus.OPTIMAL, plan.message
    assert plan.objective == approx(exp["objective"])
    summary = plan.summary.iloc[0]
    for key in ("expected_objective", "cvar", "wait_and_see", "evpi", "base_plan_objective", "vss"):
        if key in exp:
            assert summary[key] == approx(exp[key]), key
    sc = plan.scenarios.set_index("scenario")
    assert list(sc.index) == list(exp["scenarios"])  # stage order, then branch order in the file
    for sid, (p, o, o_star) in exp["scenarios"].items():
        assert sc.loc[sid, "probability"] == approx(p), sid
        assert sc.loc[sid, "objective"] == approx(o), sid
        assert sc.loc[sid, "wait_and_see_objective"] == approx(o_star), sid
        assert sc.loc[sid, "regret"] == approx(abs(o_star - o)), sid
    # the root decisions, identical in every scenario's rows
    data = raw(stem)
    first_stage = min(s["year"] for s in data["uncertainty"]["stages"])
    root = range(data["horizon"]["start"], first_stage)
    for sid in exp["scenarios"]:
        pur = plan.purchases[plan.purchases["scenario"] == sid]
        fac = plan.facilities[plan.facilities["scenario"] == sid]
        assert purchases_of(pur, root) == exp["commitments"], sid
        if "commitment_blocks" in exp:
            assert blocks_of(fac, root) == exp["commitment_blocks"], sid


@pytest.mark.parametrize("stem", sorted(G.TREES))
def test_tree(stem):
    _, plan = solved(stem)
    _check_tree(stem, plan, G.TREES[stem])


def test_tree_cvar_weight_moves_the_decision():
    inst, _ = solved("tiny-tree-cvar")
    neutral = inst.with_changes({"uncertainty.risk.weight": 0})
    _check_tree("tiny-tree-cvar", solve(neutral, mip_gap=GAP), G.CVAR_WEIGHT_ZERO)


def test_tree_branch_order_and_probabilities():
    # scenarios are the Cartesian product of the branches, probabilities multiply
    _, plan = solved("tiny-tree-evpi-zero")
    assert plan.scenarios["probability"].sum() == approx(1.0)
    assert plan.summary.iloc[0]["scenarios"] == 4


# --------------------------------------------------------------------------- §5 end of horizon


@pytest.mark.parametrize("stem", sorted(G.SALVAGE))
def test_salvage(stem):
    _, plan = solved(stem)
    exp = G.SALVAGE[stem]
    assert plan.status == SolveStatus.OPTIMAL, plan.message
    assert plan.objective == approx(exp["objective"])
    assert plan.summary.iloc[0]["terminal_value"] == approx(exp["terminal_value"])
    assert purchases_of(plan.purchases) == exp["purchases"]


# --------------------------------------------------------------------------- §6 commitments


def test_commit():
    inst = load_instance(str(INSTANCES / "tiny-commit.yaml"))
    plan = solve(inst, commit=ROOT / G.COMMIT["plan"], through=G.COMMIT["through"], mip_gap=GAP)
    assert plan.status == SolveStatus.OPTIMAL, plan.message
    assert plan.objective == approx(G.COMMIT["objective"])
    assert plan.summary.iloc[0]["commitment_cost"] == approx(G.COMMIT["commitment_cost"])
    assert purchases_of(plan.purchases) == G.COMMIT["purchases"]
    assert blocks_of(plan.facilities) == G.COMMIT["blocks"]
    # rows after `through` are not commitments
    later = solve(inst, commit=ROOT / G.COMMIT["plan"], through=2027, mip_gap=GAP)
    assert later.objective == approx(G.COMMIT["through_2027_objective"])


def test_commit_infeasible():
    inst = load_instance(str(INSTANCES / "tiny-commit.yaml"))
    plan = solve(inst, commit=ROOT / G.COMMIT["infeasible_plan"], through=G.COMMIT["through"])
    # purchases row 2026,r,a,12 draws 12 MW in 2026, above max_mw 10
    assert plan.status == SolveStatus.INFEASIBLE


# --------------------------------------------------------------------------- §7 near-optimal ranges


def test_alternatives():
    from optimizer import alternatives

    inst = load_instance(str(INSTANCES / "tiny-alternatives.yaml"))
    df = alternatives(inst, slack=G.ALTERNATIVES["slack"], mip_gap=GAP).table.set_index("aggregate")
    assert set(df.index) == set(G.ALTERNATIVES["rows"])
    for name, (opt, lo, hi, robust) in G.ALTERNATIVES["rows"].items():
        row = df.loc[name]
        assert row["optimal"] == approx(opt), name
        assert row["min"] == approx(lo), name
        assert row["max"] == approx(hi), name
        assert bool(row["robust"]) is robust, name
