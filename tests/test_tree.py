"""The program over a scenario tree (spec v2 section 4.2), its reports (4.3), its CLI, writers and analyses.

The hand-derived optima of the tiny trees are asserted in test_golden_v2.py; here: the v1 program
is the one-node case of the same code, non-anticipativity and the checker, EEV infeasible, the
value of information in parallel, plans written and read back, sweeps in place, charts and compare.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from plan_checker import check_plan, check_tree_plan
from typer.testing import CliRunner

from formulations import build_model
from optimizer import SolveStatus, load_instance, read_plan, solve, sweep
from optimizer.cli import Exit, app
from optimizer.instance.tree import ScenarioTree as Tree
from optimizer.instance.tree import cvar
from optimizer.report import plots
from optimizer.report.text import compare_plans

ROOT = Path(__file__).resolve().parent.parent
INSTANCES = ROOT / "instances"
HEDGE = INSTANCES / "tiny-tree-hedge.yaml"
GAP = 1e-9


def raw(stem: str) -> dict:
    return yaml.safe_load((INSTANCES / f"{stem}.yaml").read_text())


@pytest.fixture(scope="module")
def hedge():
    inst = load_instance(HEDGE)
    return inst, solve(inst, mip_gap=GAP)


# ----------------------------------------------------------------------------- one model, many uses


def test_a_tree_of_one_branch_per_stage_is_the_v1_program():
    """Same file, with and without a tree whose every stage has one branch: the same optimum and plan."""
    data = raw("tiny-supply-cap")
    v1 = solve(load_instance(data), mip_gap=GAP)
    data["uncertainty"] = {"stages": [{"year": 2027, "branches": {"only": {"probability": 1.0}}}]}
    tree = load_instance(data)
    plan = solve(tree, mip_gap=GAP)
    assert plan.status is SolveStatus.OPTIMAL and v1.status is SolveStatus.OPTIMAL
    assert plan.objective == v1.objective == 44.0  # exactly, not within a tolerance
    one = plan.scenario("only")
    pd.testing.assert_frame_equal(one.purchases, v1.purchases)
    pd.testing.assert_frame_equal(one.fleet, v1.fleet)
    assert plan.summary.iloc[0]["evpi"] == pytest.approx(0.0, abs=1e-9)
    assert plan.summary.iloc[0]["vss"] == pytest.approx(0.0, abs=1e-9)


def test_the_v1_model_is_the_one_node_tree():
    inst = load_instance(INSTANCES / "tiny-supply-cap.yaml")
    tree = Tree.of(inst)
    assert tree.trivial and {v for _, v in tree.node_years} == {""}
    m = build_model(inst)
    assert all(i[-1] == "" for i in m.N_IDX)  # the node is the last index of every variable


def test_nodes_of_a_two_stage_tree():
    tree = Tree.of(load_instance(INSTANCES / "tiny-tree-evpi-zero.yaml"))
    stages = tree.stage_years
    assert len(stages) == 2
    # one root node before the first stage, then the product of the branches revealed so far
    assert tree.nodes(tree.start) == [""]
    assert len(tree.nodes(stages[0])) == 2 and len(tree.nodes(stages[1])) == 4
    assert sum(tree.probability[v] for v in tree.nodes(stages[1])) == pytest.approx(1.0)


def test_the_tree_conditioned_on_a_revealed_history():
    """given(history): the subtree after the revealed branches, probabilities conditional on them, node ids
    and years of the whole tree; every stage revealed: the scenario's own v1 instance."""
    inst = load_instance(INSTANCES / "tiny-tree-evpi-zero.yaml")
    tree = inst.tree
    assert tree.given(()) is tree
    first = tree.stages[0].branches[0]
    sub = tree.given((first.id,))
    inside = [s for s in tree.scenarios if s.branches[0] == first.id]
    assert [s.id for s in sub.scenarios] == [s.id for s in inside]
    assert [s.probability for s in sub.scenarios] == pytest.approx([s.probability / first.probability
                                                                    for s in inside])
    assert sub.stage_years == tree.stage_years and sub.first_stage_year == tree.first_stage_year
    assert set(sub.node_years) <= set(tree.node_years)
    assert sub.probability[first.id] == pytest.approx(1.0)
    assert [s.instance for s in sub.scenarios] == [s.instance for s in inside]  # validated once
    assert sub.instance.scenarios() == sub.scenarios  # the subtree's instance owns the subtree
    leaf = tree.scenarios[-1]
    assert tree.given(leaf.branches).trivial and tree.given(leaf.branches).instance == leaf.instance
    with pytest.raises(KeyError, match="has no branch 'nope'"):
        tree.given(("nope",))
    with pytest.raises(ValueError, match="the tree has 2 stages"):
        tree.given(leaf.branches + ("x",))
    # the program over the subtree of a branch is the tree's program restricted to it: its objective is
    # the conditional expectation of the scenarios' objectives under the subtree's own optimal plan
    plan = solve(sub.instance, value_of_information=False)
    assert plan.status is SolveStatus.OPTIMAL
    assert plan.tree_summary.expected_objective == pytest.approx(plan.objective)


def test_first_stage_and_root_years():
    tree = load_instance(INSTANCES / "tiny-tree-evpi-zero.yaml").tree
    assert tree.first_stage_year == tree.stage_years[0]
    assert tree.root_years == tuple(t for t in tree.years if t < tree.stage_years[0])
    v1 = load_instance(INSTANCES / "tiny-supply-cap.yaml").tree
    assert v1.first_stage_year is None and v1.root_years == tuple(v1.years)


def test_cvar_of_a_discrete_distribution():
    # worst half of the mass of {80 (0.6), 20 (0.4)}: all of 20 and 0.1 of 80
    assert cvar([80, 20], [0.6, 0.4], 0.5, maximize=True) == pytest.approx((0.4 * 20 + 0.1 * 80) / 0.5)
    assert cvar([80, 20], [0.6, 0.4], 0.0, maximize=True) == pytest.approx(56)  # alpha 0: the mean
    assert cvar([1200, 1600], [0.5, 0.5], 0.5, maximize=False) == 1600  # min_cost: the highest costs


# ----------------------------------------------------------------------------- the checker


def test_tree_plan_passes_the_checker(hedge):
    inst, plan = hedge
    check_tree_plan(inst, plan)
    for s in inst.scenarios():
        check_plan(s.instance, plan.scenario(s.id))


def test_checker_catches_anticipation(hedge):
    """Scenarios that share the root must buy the same in 2026: a plan that does not is caught."""
    inst, plan = hedge
    bad = copy.copy(plan)
    p = plan.purchases.copy()
    row = p.index[(p.scenario == "weak") & (p.year == 2026)][0]
    p.loc[row, "units"] += 1
    bad.purchases = p
    with pytest.raises(AssertionError, match="non-anticipativity: purchases of 2026"):
        check_tree_plan(inst, bad)


def test_checker_catches_a_wrong_risk_measure(hedge):
    inst, plan = hedge
    bad = copy.copy(plan)
    bad.result = dataclasses.replace(plan.result, objective=plan.objective + 1)
    with pytest.raises(AssertionError, match="objective = "):
        check_tree_plan(inst, bad)


# ----------------------------------------------------------------------------- value of information


def eev_breaker() -> dict:
    """min_cost, hard demand: the base forecast (1 PFLOP/s in 2027) starts one 1-MW block in 2026 (lead 1);
    the high branch (x3) then cannot be served in 2027. The stochastic plan starts 3 blocks."""
    return {
        "name": "eev-breaker", "horizon": {"start": 2026, "end": 2027},
        "objective": {"kind": "min_cost"},
        "regions": {"r": {"pue": 1, "electricity_usd_per_mwh": 0, "block_mw": 1, "block_capex_usd": 100,
                          "build_lead_years": 1, "inference_demand_pflops": {2026: 0, 2027: 1}}},
        "chips": {"g": {"price_usd": 10, "power_w": 1e6, "peak_pflops": 1, "utilization": {"train": 1, "infer": 1},
                        "lifetime_years": 2}},
        "uncertainty": {"stages": [{"year": 2027, "name": "demand", "branches": {
            "base": {"probability": 0.5},
            "high": {"probability": 0.5, "changes": {"regions.r.inference_demand_pflops": "x3"}}}}]},
    }


@pytest.mark.parametrize("by_branch", [True, False])
def test_eev_infeasible_names_the_scenario(by_branch, monkeypatch):
    from optimizer import pipeline

    monkeypatch.setattr(pipeline, "EEV_BY_BRANCH", by_branch)  # subtree by subtree, or the whole tree at once
    plan = solve(load_instance(eev_breaker()), mip_gap=GAP)
    s = plan.summary.iloc[0]
    assert plan.status is SolveStatus.OPTIMAL
    # RP: 3 blocks (300) + 1 or 3 chips (10 or 30): 0.5 * 310 + 0.5 * 330 = 320
    assert plan.objective == pytest.approx(320)
    assert plan.commitments.to_dict("records") == [
        {"year": 2026, "region": "r", "item": "blocks", "quantity": 3.0, "chips": 0.0, "mw": 3.0}]
    assert plan.base_commitments["quantity"].tolist() == [1.0]  # the base plan starts one block
    assert s["vss"] == float("inf") and pd.isna(s["base_plan_objective"])
    assert "infeasible" in s["base_plan_status"] and "scenario high" in s["base_plan_status"]
    # WS: base alone 110, high alone 330 -> 220; EVPI = RP - WS = 100 (min_cost)
    assert s["wait_and_see"] == pytest.approx(220) and s["evpi"] == pytest.approx(100)


def test_value_of_information_is_the_same_on_worker_processes(hedge):
    _, plan = hedge
    par = solve(load_instance(HEDGE), mip_gap=GAP, workers=2)
    for key in ("wait_and_see", "evpi", "base_plan_objective", "vss"):
        assert par.summary.iloc[0][key] == pytest.approx(plan.summary.iloc[0][key], abs=1e-9), key
    pd.testing.assert_frame_equal(par.scenarios, plan.scenarios)


TWO_STAGES = ["tiny-tree-hedge", "tiny-tree-chip-delay", "tiny-tree-evpi-zero", "tiny-tree-min-cost"]


def _eev(inst, monkeypatch, *, by_branch: bool, same=None):
    """The EEV row of the summary, and the keys of the solves behind it (from the progress steps)."""
    from optimizer import pipeline

    monkeypatch.setattr(pipeline, "EEV_BY_BRANCH", by_branch)
    if same is not None:
        monkeypatch.setattr(pipeline, "_same_values", same)
    steps: list[str] = []
    plan = solve(inst, mip_gap=GAP, on_step=steps.append)
    keys = [m.split("(")[-1].split(":")[0] for m in steps]
    return plan.summary.iloc[0], keys


@pytest.mark.parametrize("stem", TWO_STAGES)
def test_eev_by_first_stage_branch_equals_eev_of_the_whole_tree(stem, monkeypatch):
    """Solving EEV subtree by subtree (root purchases and blocks fixed) gives the whole tree's EEV, both when
    the subtrees' root operation agrees and when the others must be re-solved holding the worst one's."""
    inst = load_instance(INSTANCES / f"{stem}.yaml")
    whole, keys = _eev(inst, monkeypatch, by_branch=False)
    assert "eev" in keys and "eev-part" not in keys
    parts, keys = _eev(inst, monkeypatch, by_branch=True)
    assert keys.count("eev-part") == len(inst.uncertainty.stages[0].branches) and "eev" not in keys
    held, keys = _eev(inst, monkeypatch, by_branch=True, same=lambda a, b: False)
    assert keys.count("eev-hold") == len(inst.uncertainty.stages[0].branches) - 1
    for row in (parts, held):
        assert row["base_plan_status"] == "optimal"
        assert row["base_plan_objective"] == pytest.approx(whole["base_plan_objective"], rel=1e-7, abs=1e-7)
        assert row["vss"] == pytest.approx(whole["vss"], rel=1e-7, abs=1e-7)


def test_eev_under_cvar_is_solved_over_the_whole_tree(monkeypatch):
    """CVaR couples every scenario through its threshold: the EEV cannot be split by branch."""
    inst = load_instance(INSTANCES / "tiny-tree-cvar.yaml")
    row, keys = _eev(inst, monkeypatch, by_branch=True)
    assert "eev" in keys and "eev-part" not in keys
    assert row["base_plan_status"] == "optimal"


def test_eev_joined_from_subtrees_reports_the_gap_of_the_sum():
    """Hand-checked: subtrees a (p 0.25) and b (p 0.75) of a max_training tree. Joined plan
    0.25 * -400 + 0.75 * 1000 = 650; bound from the subtrees alone 0.25 * -396 + 0.75 * 1004 = 654;
    the gap is relative to max(|650|, 0.25 * 800 + 0.75 * 2000 = 1700): 4 / 1700 = 0.00235, above a
    1e-3 tolerance (feasible, not proven) and within 1e-2 (optimal). b was re-solved holding a's root
    operation (objective 1000, lower than its free 1003, whose bound 1004 still bounds it)."""
    from optimizer import pipeline

    inst = load_instance(HEDGE)
    for tol, status in ((1e-3, "feasible"), (1e-2, "optimal")):
        jobs = pipeline._Jobs(inst, None, {"time_limit": None, "mip_gap": tol}, None)
        jobs.parts = {"a": (0.25, {}), "b": (0.75, {})}
        parts = {"a": {"objective": -400.0, "bound": -396.0, "gross": 800.0, "seconds": 1.0},
                 "b": {"objective": 1003.0, "bound": 1004.0, "gross": 2000.0, "seconds": 2.0}}
        held = {"b": {"objective": 1000.0, "bound": 1000.5, "gross": 2000.0, "seconds": 3.0}}
        row = jobs._joined(parts, held)
        assert row["objective"] == pytest.approx(650.0)
        assert row["mip_gap"] == pytest.approx(4 / 1700)
        assert row["status"] == status
        assert row["seconds"] == 3.0
    # an unproven EEV carries its gap into the summary, and the sentence says VSS is within it
    from optimizer.report.text import value_of_information_lines

    plan = solve(inst, mip_gap=GAP, value_of_information=False)
    results = {"base": None, "eev": {**row, "status": "feasible"}}
    pipeline._value_of_information(plan, results)
    assert plan.tree_summary.base_plan_status == "base plan not solved"
    results["base"] = {"status": "optimal", "table": {c: [] for c in plan.base_commitments.columns}}
    pipeline._value_of_information(plan, results)
    assert plan.tree_summary.base_plan_status == "feasible (gap 0.235%)"
    assert plan.tree_summary.vss == pytest.approx(plan.objective - 650.0)
    assert value_of_information_lines(plan)[-1].startswith("EEV is not proven, feasible (gap 0.235%)")


def test_value_of_information_of_an_unproven_plan_says_so(hedge):
    """EVPI and VSS rest on RP: when RP is not proven (a time limit), the sentences say which way they can move."""
    from optimizer.report.text import value_of_information_lines

    _, plan = hedge
    proven = value_of_information_lines(plan)
    assert not any("not proven" in line for line in proven)
    unproven = copy.copy(plan)
    unproven.result = dataclasses.replace(plan.result, status=SolveStatus.FEASIBLE, mip_gap=0.0123)
    lines = value_of_information_lines(unproven)
    assert lines[:len(proven)] == proven
    assert "not proven optimal (gap 1.23%)" in lines[-1] and "EVPI is smaller and VSS larger" in lines[-1]
    # with VSS not known, the sentence speaks of EVPI alone
    unproven.tree_summary = dataclasses.replace(plan.tree_summary, vss=None, base_plan_status="EEV not solved in time")
    lines = value_of_information_lines(unproven)
    assert lines[1] == "VSS: not known (EEV not solved in time). A longer --time-limit gives those solves time."
    assert lines[-1].startswith("This value uses the stochastic plan RP") and "so EVPI is smaller than shown" in \
        lines[-1] and "VSS" not in lines[-1] and lines[-1].endswith("to prove it.")


def test_analyses_workers_yield_to_the_main_solve():
    """The worker processes beside the main solve run at a lower priority (os.nice), and start at once."""
    import os

    from optimizer.parallel import Runner

    own = os.nice(0)
    with Runner(2, nice=10) as runner:
        assert len(runner._pool._processes) == 2  # started before HiGHS redirects the standard streams
        runner.submit("a", os.nice, 0)
        runner.submit("b", os.nice, 0)
        got = {key: value for key, value, _ in runner.results()}
    assert got == {"a": min(19, own + 10), "b": min(19, own + 10)}


def test_value_of_information_on_a_dask_cluster(hedge):
    """The analyses (EEV by branch included) sent to a Dask cluster, taken in beside the main solve."""
    distributed = pytest.importorskip("distributed")
    _, plan = hedge
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        steps: list[str] = []
        par = solve(load_instance(HEDGE), mip_gap=GAP, client=client, on_step=steps.append)
    assert any("eev-part:" in m for m in steps)
    for key in ("wait_and_see", "evpi", "base_plan_objective", "vss"):
        assert par.summary.iloc[0][key] == pytest.approx(plan.summary.iloc[0][key], abs=1e-9), key
    assert par.summary.iloc[0]["base_plan_status"] == "optimal"


def test_no_value_of_information():
    from optimizer.report.text import value_of_information_lines

    plan = solve(load_instance(HEDGE), value_of_information=False)
    s = plan.summary.iloc[0]
    assert plan.objective == pytest.approx(41)
    assert pd.isna(s["evpi"]) and pd.isna(s["vss"]) and plan.scenarios.wait_and_see_objective.isna().all()
    assert pd.isna(s["wait_and_see_status"]) and pd.isna(s["base_plan_status"])
    assert value_of_information_lines(plan) == [
        "Value of information: not computed (--no-value-of-information, or the plan has no solution)."]


def test_the_value_of_information_says_why_a_part_is_not_known():
    """WS needs every scenario solved alone and VSS the EEV: what is missing is counted by reason, kept in the
    summary (and a written plan), and said in the report; what is known is still reported."""
    from optimizer import pipeline
    from optimizer.report.text import value_of_information_lines

    inst = load_instance(INSTANCES / "tiny-tree-evpi-zero.yaml")  # 4 scenarios
    plan = solve(inst, value_of_information=False)
    ids = [s.id for s in inst.tree.scenarios]
    ok = {"status": "optimal", "objective": 50.0, "bound": 50.0}
    results = {f"ws:{ids[0]}": ok, f"ws:{ids[1]}": pipeline.out_of_time(started=True),
               f"ws:{ids[2]}": {"status": "infeasible", "objective": None},
               "base": {"status": "optimal", "table": {c: [] for c in plan.base_commitments.columns}},
               "eev": pipeline.out_of_time(started=False)}
    results.update({f"ws:{i}": ok for i in ids[3:]})
    pipeline._value_of_information(plan, results)
    t = plan.tree_summary
    assert t.wait_and_see is None and t.evpi is None and t.vss is None
    assert t.wait_and_see_status == f"1 of {len(ids)} scenarios not solved in time, 1 infeasible"
    assert t.base_plan_status == "EEV not solved in time"
    assert value_of_information_lines(plan) == [
        f"EVPI: not known: it needs every scenario solved alone (1 of {len(ids)} scenarios not solved in time, "
        "1 infeasible). A longer --time-limit gives those solves time.",
        "VSS: not known (EEV not solved in time). A longer --time-limit gives those solves time."]
    # the scenario solved alone still gives its foresight column
    assert plan.scenarios.set_index("scenario").wait_and_see_objective[ids[0]] == 50.0
    # every WS solved, EEV missing: EVPI is reported, VSS says why not
    results.update({f"ws:{i}": ok for i in ids})
    pipeline._value_of_information(plan, results)
    assert plan.tree_summary.wait_and_see_status is None and plan.tree_summary.evpi is not None
    lines = value_of_information_lines(plan)
    assert lines[0].startswith("Knowing the") and "VSS: not known (EEV not solved in time)." in lines[1]


# ----------------------------------------------------------------------------- reports, writers, CLI


@pytest.mark.parametrize("fmt", ["csv", "parquet", "xlsx", "json"])
def test_written_tree_plan_reads_back(hedge, tmp_path, fmt):
    inst, plan = hedge
    plan.write(tmp_path, [fmt])
    names = {"scenarios", "commitments", "base_commitments"}
    if fmt != "xlsx":
        assert {f"{n}.{fmt}" for n in names} <= {p.name for p in tmp_path.iterdir()}
    back = read_plan(tmp_path)
    assert back.stochastic and back.objective == pytest.approx(plan.objective)
    assert list(back.purchases.columns)[0] == "scenario"
    for name in ("purchases", "facilities", "scenarios", "commitments", "base_commitments"):
        a, b = getattr(plan, name), getattr(back, name)
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)
    for key in ("evpi", "vss", "wait_and_see", "expected_objective", "scenarios"):
        assert back.summary.iloc[0][key] == pytest.approx(plan.summary.iloc[0][key]), key
    assert back.tree_summary == plan.tree_summary
    check_tree_plan(inst, back)


def test_to_dict_carries_the_tree(hedge):
    _, plan = hedge
    doc = json.loads(json.dumps(plan.to_dict(), default=str))
    assert {"scenarios", "commitments", "base_commitments"} <= set(doc["tables"])
    assert doc["evpi"] == pytest.approx(7) and doc["vss"] == pytest.approx(2)
    assert doc["tables"]["purchases"][0]["scenario"] in ("on-spec", "weak")


def test_cli_prints_commitments_scenarios_and_the_value_of_information():
    result = CliRunner().invoke(app, ["solve", str(HEDGE), "--gap", "0", "--workers", "1"])
    assert result.exit_code == Exit.OK, result.output
    text = result.output
    first = text.index("What to commit now")
    assert first < text.index("Scenarios") < text.index("Knowing the chip-b outcome before 2027")
    assert first < text.index("instance")  # above everything else
    assert "worth 7 PFLOP/s-years (17.1%)" in text
    assert "gains 2 PFLOP/s-years" in text


def test_plot_and_compare_tree_plans(hedge, tmp_path):
    inst, plan = hedge
    fig = plots.fan_chart(plan)
    assert len(fig.axes[0].lines) >= 2  # one line per scenario
    plots.plt.close(fig)
    paths = plots.plot_plan(plan, tmp_path / "charts")
    names = {p.name for p in paths}
    assert names == {"fan.png", "commitments.png"}  # each scenario's own charts only on request
    names = {p.name for p in plots.plot_plan(plan, tmp_path / "more", scenarios=True)}
    assert {"fan.png", "commitments.png", "capacity-weak.png", "capacity-on-spec.png"} <= names
    other = solve(inst.with_changes({"chips.a.price_usd": 50}), mip_gap=GAP)
    tables = compare_plans(plan, other)
    assert list(tables["headline"].columns)[0] == "scenario"
    assert set(tables["headline"].scenario) == {"on-spec", "weak"}
    assert "commitments" in tables
    plan.write(tmp_path / "a")
    other.write(tmp_path / "b")
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.output)) >= {"headline", "purchases", "commitments"}


# ----------------------------------------------------------------------------- sweeps in place


def test_sweep_over_a_tree_updates_the_model_in_place():
    inst = load_instance(eev_breaker())
    df = sweep(inst, {"regions.r.block_capex_usd": [100, 200, 300]}, workers=1, mip_gap=GAP)
    assert df.status.eq("optimal").all()
    assert df.path.tolist() == ["rebuild", "in_place", "in_place"]
    for value, objective in zip([100, 200, 300], df.objective):
        fresh = solve(inst.with_changes({"regions.r.block_capex_usd": value}), mip_gap=GAP,
                      value_of_information=False)
        assert objective == pytest.approx(fresh.objective)
        # 3 blocks at the capex, 1 or 3 chips: 3 c + 20
        assert objective == pytest.approx(3 * value + 20)


def test_salvage_in_every_scenario_of_a_tree():
    """end_of_horizon: salvage values each scenario's own purchases; the checker recomputes every scenario's
    objective with its terminal value, and the summary's terminal value is their expectation."""
    data = raw("tiny-tree-hedge")
    data["objective"] = {"end_of_horizon": "salvage"}
    inst = load_instance(data)
    plan = solve(inst, mip_gap=GAP, value_of_information=False)
    check_tree_plan(inst, plan)
    # every chip (lifetime 5) bought in 2026-2027 serves 3-4 more years: salvage can only raise the optimum
    assert plan.objective > 41
    terminal = plan.parts.scenario_terminal_value
    assert all(v > 0 for v in terminal.values())
    expected = sum(s.probability * terminal[s.id] for s in inst.scenarios())
    assert plan.summary.iloc[0]["terminal_value"] == pytest.approx(expected)


def test_the_fan_chart_of_a_large_tree_shows_quantile_bands(tmp_path):
    """Past a dozen scenarios the fan chart draws probability-weighted bands and the median, not a line each."""
    from test_simulate import _three_stages

    inst = load_instance(_three_stages())  # 27 scenarios
    plan = solve(inst, value_of_information=False)
    fig = plots.fan_chart(plan)
    ax = fig.axes[0]
    assert len(ax.collections) >= 2 and len(ax.lines) == 1  # two bands and the median
    labels = ax.get_legend_handles_labels()[1]
    assert "10-90% of 27 scenarios" in labels and "median" in labels
    plots.save(fig, tmp_path / "fan.png")


def test_the_time_limit_bounds_the_whole_run_value_of_information_included(monkeypatch):
    """Every analysis solve gets what is left of the run's time limit; once it is spent none starts, and the
    value of information says it was not computed.  (Deterministic: the clock is moved, not raced.)"""
    from optimizer import pipeline

    inst = load_instance(INSTANCES / "tiny-tree-hedge.yaml")
    limits = []
    real = pipeline.ModelHandle.solve

    def recording(self, options=None, **kwargs):
        limits.append(options.time_limit)
        return real(self, options, **kwargs)

    monkeypatch.setattr(pipeline.ModelHandle, "solve", recording)
    plan = solve(inst, time_limit=300, workers=0)
    assert len(limits) >= 1 + 1 + len(inst.scenarios())  # main, base, WS, EEV...
    assert 200 < limits[0] <= 300 and all(0 < x <= 300 for x in limits[1:])  # the build counts against it
    assert plan.tree_summary.evpi == pytest.approx(7)
    # a run whose limit is spent when the analyses start: they do not start, and say so
    clock = pipeline.time.time
    limits.clear()

    def later():  # a million seconds on once the main solve has started (its limit is recorded as it starts)
        return clock() + (1e6 if limits else 0)

    monkeypatch.setattr(pipeline.time, "time", later)
    late = solve(inst, time_limit=300, workers=0)
    assert late.status is SolveStatus.OPTIMAL  # the main solve had its time
    assert late.tree_summary.evpi is None and late.tree_summary.base_plan_status == "base plan not solved in time"
    n = len(inst.tree.scenarios)
    assert late.tree_summary.wait_and_see_status == f"{n} of {n} scenarios not solved in time"
    # the report says what is not known and why, not "not computed (--no-value-of-information ...)"
    from optimizer.report.text import value_of_information_lines

    lines = value_of_information_lines(late)
    assert lines == [f"EVPI: not known: it needs every scenario solved alone ({n} of {n} scenarios not solved in "
                     "time). A longer --time-limit gives those solves time.",
                     "VSS: not known (base plan not solved in time). A longer --time-limit gives those solves time."]


def test_the_wait_and_see_bound_proves_a_plan_the_tree_solve_left_open():
    """Each scenario alone bounds what the tree can do in it: the expectation of the scenarios' own bounds
    bounds the tree's optimum.  A plan whose tree solve stopped with a loose bound is proven by it when
    within the gap; a looser wait-and-see bound changes nothing, nor does a CVaR objective."""
    from optimizer.pipeline import _bound_by_wait_and_see

    for name, sign in (("tiny-tree-evpi-zero.yaml", 1), ("tiny-tree-min-cost.yaml", -1)):
        inst = load_instance(INSTANCES / name)
        plan = solve(inst, value_of_information=False)
        assert plan.status is SolveStatus.OPTIMAL
        opt = plan.objective
        loose = dataclasses.replace(plan.result, status=SolveStatus.FEASIBLE, bound=opt + sign * 0.5 * abs(opt),
                                    mip_gap=0.5)
        ws = {f"ws:{s.id}": {"status": "optimal", "bound": opt, "objective": opt} for s in inst.tree.scenarios}
        plan.result = loose
        _bound_by_wait_and_see(plan, ws, 1e-4)  # EVPI 0 / a bound at the optimum: proven
        assert plan.status is SolveStatus.OPTIMAL and plan.result.bound == pytest.approx(opt)
        assert "wait-and-see" in plan.result.message
        plan.result = loose
        far = {k: dict(v, bound=opt + sign * 0.8 * abs(opt)) for k, v in ws.items()}
        _bound_by_wait_and_see(plan, far, 1e-4)  # looser than the tree's own: unchanged
        assert plan.result is loose
        half = {k: dict(v, bound=opt + sign * 0.1 * abs(opt)) for k, v in ws.items()}
        _bound_by_wait_and_see(plan, half, 1e-4)  # tighter but not within the gap: the bound, not the status
        assert plan.status is SolveStatus.FEASIBLE and plan.result.bound == pytest.approx(opt + sign * 0.1 * abs(opt))
        assert plan.mip_gap == pytest.approx(0.1 * abs(opt) / max(abs(opt), plan.result.gross or 0.0))
        missing = dict(ws)
        missing.pop(next(iter(ws)))
        plan.result = loose
        _bound_by_wait_and_see(plan, missing, 1e-4)  # a scenario not solved: no bound
        assert plan.result is loose
    cvar = load_instance(INSTANCES / "tiny-tree-cvar.yaml")
    plan = solve(cvar, value_of_information=False)
    loose = dataclasses.replace(plan.result, status=SolveStatus.FEASIBLE, bound=None)
    plan.result = loose
    _bound_by_wait_and_see(plan, {f"ws:{s.id}": {"status": "optimal", "bound": 0.0, "objective": 0.0}
                                  for s in cvar.tree.scenarios}, 1e-4)
    assert plan.result is loose


# ----------------------------------------------------------------------------- reading a solved model


@pytest.mark.parametrize("stem", ["tiny-tree-cvar", "tiny-tree-min-cost", "tiny-salvage-max-training",
                                  "tiny-chips-per-unit", "aws-5gw-2026-scenarios"])
def test_the_tables_read_every_expression_as_pyomo_evaluates_it(stem):
    """The plan's tables read a solved model's expressions (installed chips, capacity, draw, each year's and
    each scenario's objective) through their own evaluator, memoised per node-year: every value must be
    Pyomo's, to the bit, or a table or O_s drifts from the model."""
    import pyomo.environ as pyo

    from optimizer.plan.tables import Values
    from optimizer.solver import ModelHandle

    handle = ModelHandle(load_instance(INSTANCES / f"{stem}.yaml"))
    with handle.relaxed():  # the LP's values: fractional, so no product is a round number
        assert handle.solve(warm_start=False).status.has_plan
    value, checked = Values(), 0
    for component in handle.model.component_objects(pyo.Expression, active=True):
        for e in component.values():
            assert value(e) == pyo.value(e), (component.name, e.name)
            checked += 1
    for c in handle.model.component_data_objects(pyo.Constraint, active=True):  # bodies mix every node type
        assert value(c.body) == pyo.value(c.body), c.name
        checked += 1
    assert checked >= 10  # not vacuous: the smallest model has 12


def test_with_one_worker_and_a_time_limit_the_analyses_run_beside_the_main_solve(monkeypatch):
    """On two cores the default is one worker.  In this process the analyses would start after the main
    solve, and a main solve that spends the time limit (any hard tree) left them none: the shipped tree at
    60 s reported no value of information at all.  With a time limit one worker is a process beside the main
    solve.  (Deterministic: the clock of capplan's pipeline in this process jumps past the deadline once the
    main solve has started; the worker's clock does not, nor the runner's, and the analyses finish.)"""
    import time
    import types

    from optimizer import pipeline

    inst = load_instance(INSTANCES / "tiny-tree-hedge.yaml")
    started = []
    real = pipeline.ModelHandle.solve

    def main_solve(self, options=None, **kwargs):  # its limit is set as it starts
        started.append(True)
        return real(self, options, **kwargs)

    def later():
        return time.time() + (1e6 if started else 0)

    monkeypatch.setattr(pipeline.ModelHandle, "solve", main_solve)
    monkeypatch.setattr(pipeline, "time", types.SimpleNamespace(time=later, perf_counter=time.perf_counter))
    steps = []
    plan = solve(inst, time_limit=300, workers=1, on_step=steps.append)
    assert plan.status is SolveStatus.OPTIMAL
    assert plan.tree_summary.evpi == pytest.approx(7), steps  # every wait-and-see solve ran, in the worker
    assert not any("not started" in s or "no_solution" in s for s in steps), steps


def test_the_benchmark_trees_are_written_as_instance_files_capplan_reads(tmp_path):
    """`python benchmarks/tree.py --write DIR` gives a user the trees of issue 18 as files for `capplan solve`:
    each file reads back to the tree the benchmark builds (same scenarios, probabilities and changes), passes
    `capplan validate`, and a size the benchmark does not have is a usage error, not a traceback."""
    import subprocess
    import sys

    script = ROOT / "benchmarks" / "tree.py"
    out = subprocess.run([sys.executable, str(script), "--write", str(tmp_path), "--sizes=6,54"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    files = sorted(tmp_path.glob("*.yaml"))
    assert [p.name for p in files] == ["aws-5gw-2026-tree-54.yaml", "aws-5gw-2026-tree-6.yaml"]
    assert not list(tmp_path.glob("*.tmp"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from tree import tree_instance

    for n in (6, 54):
        path = tmp_path / f"aws-5gw-2026-tree-{n}.yaml"
        assert path.read_text().startswith(f"# The {n}-scenario tree of issue 18")
        written, built = load_instance(path).tree, load_instance(tree_instance(n)).tree
        assert len(written.scenarios) == n
        assert [(s.id, s.probability) for s in written.scenarios] == [(s.id, s.probability) for s in built.scenarios]
        assert written.node_years == built.node_years
        assert [s.instance for s in written.scenarios] == [s.instance for s in built.scenarios]
    result = CliRunner().invoke(app, ["validate", *map(str, files)])
    assert result.exit_code == 0, result.output
    bad = subprocess.run([sys.executable, str(script), "--write", str(tmp_path / "x"), "--sizes", "7"],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "no tree of [7] scenarios" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x").exists()
