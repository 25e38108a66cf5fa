"""Near-optimal ranges (spec v2 section 7): the robust rule, honest bounds, the tree's root, parallel
workers, and the CLI with its plan directories.  The hand-derived ranges of tiny-alternatives are in
test_golden_v2.py."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from plan_checker import check_plan
from typer.testing import CliRunner

from optimizer import alternatives, load_instance, read_plan
from optimizer.analysis.alternatives import AlternativesError, _row
from optimizer.cli import Exit, app
from optimizer.instance.generate import generate_instance
from optimizer.pipeline import solve_model

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "instances" / "tiny-alternatives.yaml"


def proven(value):
    return {"status": "optimal", "value": value, "bound": value, "gap": 0.0, "seconds": 0.0}


@pytest.mark.parametrize("optimal, lo, hi, robust", [
    (100.0, 96.0, 101.0, True),     # range 5 = 5% of 100: robust (the bound is inclusive)
    (100.0, 95.0, 101.0, False),    # range 6 > 5
    (0.0, 0.0, 1.0, False),         # at 0 the rule reads 5% of max(|0|, 1) = 0.05
    (0.0, 0.0, 0.04, True),
    (-200.0, -205.0, -196.0, True),  # 9 <= 5% of 200
])
def test_robust_rule(optimal, lo, hi, robust):
    assert _row("chips.x", optimal, proven(lo), proven(hi))["robust"] is robust


def test_an_unproven_end_is_a_bound_never_proven():
    lo = {"status": "feasible", "value": 10.0, "bound": 4.0, "gap": 0.6, "seconds": 1.0}
    row = _row("regions.r", 10.0, lo, proven(10.0))
    assert row["status"] == "bound" and row["min_status"] == "feasible"
    assert row["min"] == 10.0 and row["min_bound"] == 4.0
    assert row["robust"] is False  # the outer range [4, 10] is too wide to call it forced
    narrow = {"status": "feasible", "value": 10.0, "bound": 9.9, "gap": 0.01, "seconds": 1.0}
    assert _row("regions.r", 10.0, narrow, proven(10.0))["robust"] is True


def test_time_limited_ranges_report_bounds():
    inst = load_instance(generate_instance(6, 4, 10, seed=1))
    best = solve_model(inst)
    res = alternatives(inst, slack=0.05, aggregates=["chips.g01", "regions.r00"], time_limit=0.05, plans=False,
                       optimal=best)
    assert res.optimal is best
    t = res.table
    for r in t.itertuples():
        for side in ("min", "max"):
            status = getattr(r, f"{side}_status")
            assert status in ("optimal", "feasible", "no_solution"), status
        if r.status == "optimal":
            assert r.min_status == r.max_status == "optimal"
        else:
            assert r.status in ("bound", "failed")
    # whatever stopped them, the optimal plan lies inside every reported range
    ok = t[t["min"].notna() & t["max"].notna()]
    assert ((ok["min"] <= ok.optimal + 1e-6) & (ok.optimal <= ok["max"] + 1e-6)).all()


def test_bad_arguments():
    inst = load_instance(TINY)
    with pytest.raises(AlternativesError, match="unknown aggregate chips.zz; choose from chips.a"):
        alternatives(inst, 0.1, ["chips.zz"])
    with pytest.raises(AlternativesError, match="slack must be a number in"):
        alternatives(inst, 1.5)


def test_ranges_of_a_tree_are_over_the_commitments():
    """tiny-tree-hedge commits 5 units of a in 2026 (RP 41); E(x) = 39 + 0.4x up to 5, 42 - 0.2x after, so
    within 1% (>= 40.59) x lies in 4..7 (E(3) = 40.2, E(7) = 40.6, E(8) = 40.4): chips.a over the root
    ranges from 4 to 7. b cannot be bought before the stage (2027): nothing to decide in the root."""
    inst = load_instance(ROOT / "instances" / "tiny-tree-hedge.yaml")
    t = alternatives(inst, 0.01, mip_gap=1e-9).table.set_index("aggregate")
    assert (t.loc["chips.a", "optimal"], t.loc["chips.a", "min"], t.loc["chips.a", "max"]) == (5, 4, 7)
    assert (t.loc["chips.b", "min"], t.loc["chips.b", "max"]) == (0, 0)


def test_workers_give_the_same_ranges():
    inst = load_instance(TINY)
    one = alternatives(inst, 0.1, mip_gap=1e-9).table
    two = alternatives(inst, 0.1, mip_gap=1e-9, workers=2).table
    cols = ["aggregate", "optimal", "min", "max", "robust", "status"]
    assert one[cols].equals(two[cols])


def test_cli_writes_table_chart_and_plan_directories(tmp_path):
    runner = CliRunner()
    out = tmp_path / "alt"
    result = runner.invoke(app, ["alternatives", str(TINY), "--slack", "0.1", "--gap", "0", "--out", str(out)])
    assert result.exit_code == Exit.OK, result.output
    assert "robust" in result.output and "regions.r" in result.output
    assert (out / "alternatives.csv").is_file() and (out / "ranges.png").stat().st_size > 10_000
    inst = load_instance(TINY)
    low = read_plan(out / "chips.a-min")
    assert low.purchases[low.purchases.chip == "a"].chips.sum() == 8
    assert low.objective == pytest.approx(44)  # the extreme's investments, operated at their best
    check_plan(inst, low)
    assert runner.invoke(app, ["plot", str(out / "chips.a-min"), "--out", str(tmp_path / "c")]).exit_code == 0
    result = runner.invoke(app, ["compare", str(out / "optimal"), str(out / "chips.a-min"), "--json"])
    assert result.exit_code == 0 and "headline" in result.output
    assert runner.invoke(app, ["alternatives", str(TINY), "--aggregate", "chips.q"]).exit_code == Exit.USAGE
    assert not math.isnan(float(low.summary.iloc[0]["objective"]))


def test_the_optimal_plan_keeps_its_prices_after_the_ranges():
    """The range solves change the model the optimal plan was solved on (a row added, other objectives):
    the optimal plan's marginal values are taken before, and its model is let go after."""
    import pandas as pd

    inst = load_instance(TINY)
    fresh = solve_model(inst).marginals
    best = solve_model(inst)
    res = alternatives(inst, slack=0.05, optimal=best)
    pd.testing.assert_frame_equal(res.optimal.marginals, fresh)
    assert res.optimal.result.handle is None
