"""Re-planning against a committed plan (spec v2 section 6) and the end of the horizon (section 5).

The hand-checked optima (tiny-commit, tiny-salvage-*) are in test_golden_v2.py; here: every error of
section 6 listed at once with its rows, an infeasible commitment explained by the committed row, the
default instance re-planned after a demand change, and the CLI.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from plan_checker import check_plan
from typer.testing import CliRunner

from optimizer import SolveStatus, explain, load_instance, solve
from optimizer.cli import Exit, app
from optimizer.plan.commit import CommitmentError, commitments_from

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "instances" / "tiny-commit.yaml"
PLAN = ROOT / "tests" / "instances" / "tiny-commit-plan"
INFEASIBLE = ROOT / "tests" / "instances" / "tiny-commit-infeasible-plan"


def write_decisions(d: Path, purchases: list[tuple], blocks: list[tuple]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(purchases, columns=["year", "region", "chip", "units", "chips"]).to_csv(d / "purchases.csv",
                                                                                        index=False)
    pd.DataFrame(blocks, columns=["year", "region", "blocks_started"]).to_csv(d / "facilities.csv", index=False)
    return d


def test_every_bad_row_is_listed_at_once(tmp_path):
    inst = load_instance(TINY)
    d = write_decisions(tmp_path / "bad", [
        (2026, "r", "zz", 1, 1),  # chip not defined
        (2026, "mars", "a", 1, 1),  # region not defined
        (2026, "r", "b", 1, 1),  # b is on sale only from 2027
        (2026, "r", "a", 2, 8),  # 4 chips per unit, the instance's a has 1
        (2027, "r", "a", 9, 9),  # after `through`: not committed, not checked
    ], [(2026, "moon", 1)])
    with pytest.raises(CommitmentError) as info:
        commitments_from(inst, d, 2026)
    text = [str(p) for p in info.value.problems]
    assert len(text) == 5, text
    assert text[0].startswith("purchases row 2026, r, zz: chip 'zz' is not defined in the instance (defined: a, b)")
    assert text[1].startswith("purchases row 2026, mars, a: region 'mars' is not defined")
    assert text[2] == "purchases row 2026, r, b: b can be bought only in 2027-2027"
    assert text[3].startswith("purchases row 2026, r, a: the plan bought 4 chips per unit")
    assert text[4].startswith("facilities row 2026, moon: region 'moon' is not defined")


def test_through_must_precede_the_first_stage():
    inst = load_instance(ROOT / "instances" / "tiny-tree-hedge.yaml")
    d = write_decisions(Path("/tmp") / "capplan-test-commit-tree", [(2026, "r", "a", 5, 5)], [])
    with pytest.raises(CommitmentError, match="through: must be before the first stage year 2027"):
        commitments_from(inst, d, 2027)
    plan = solve(inst, commit=d, through=2026, value_of_information=False, mip_gap=1e-9)
    assert plan.objective == pytest.approx(41)  # 5 units of a is the hedge anyway
    assert plan.summary.iloc[0]["commitment_cost"] == pytest.approx(0, abs=1e-9)


def test_infeasible_commitment_names_the_row():
    inst = load_instance(TINY)
    plan = solve(inst, commit=INFEASIBLE, through=2026)
    assert plan.status is SolveStatus.INFEASIBLE
    assert plan.summary.iloc[0]["commitment_cost"] == float("inf")
    why = explain(inst, commitments=commitments_from(inst, INFEASIBLE, 2026))
    text = str(why)
    assert "the commitment of 12 units of a bought in r cannot be held: the instance allows at most 10" in text
    assert "commit_units[a,r,2026]" in why.conflict


def test_cli_commit(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["solve", str(TINY), "--commit", str(PLAN), "--through", "2026", "--gap", "0"])
    assert result.exit_code == Exit.OK, result.output
    assert "commitment cost: holding the decisions committed through 2026 costs 8" in result.output
    result = runner.invoke(app, ["solve", str(TINY), "--commit", str(INFEASIBLE), "--through", "2026"])
    assert result.exit_code == Exit.INFEASIBLE
    assert "cannot be held" in result.output
    result = runner.invoke(app, ["solve", str(TINY), "--commit", str(tmp_path / "none"), "--through", "2026"])
    assert result.exit_code == Exit.INVALID
    assert runner.invoke(app, ["solve", str(TINY), "--through", "2026"]).exit_code == Exit.USAGE


def test_default_instance_replanned_after_a_demand_change(default_plan, tmp_path):
    """Sign the default plan's 2026-2027 decisions, then re-plan with 20% more inference demand."""
    default_plan.write(tmp_path / "signed")
    inst = default_plan.instance
    more = {f"regions.{r}.inference_demand_pflops": {t: 1.2 * reg.inference_demand_pflops[t] for t in inst.years}
            for r, reg in inst.regions.items() if any(reg.inference_demand_pflops.values())}
    changed = inst.with_changes(more)
    plan = solve(changed, commit=tmp_path / "signed", through=2027, time_limit=120)
    assert plan.status is SolveStatus.OPTIMAL, plan.message
    check_plan(changed, plan)
    for name, key, col in (("purchases", ["year", "region", "chip"], "units"),
                           ("facilities", ["year", "region"], "blocks_started")):
        old = getattr(default_plan, name)
        new = getattr(plan, name)
        a = old[old.year <= 2027].set_index(key)[col].sort_index()
        b = new[new.year <= 2027].set_index(key)[col].sort_index()
        pd.testing.assert_series_equal(a[a > 0], b[b > 0])  # the committed years are the old plan's
    cost = plan.summary.iloc[0]["commitment_cost"]
    assert cost >= -1e-4 * abs(plan.objective)  # holding the old plan never gains (up to the gap)
