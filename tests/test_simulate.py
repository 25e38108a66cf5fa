"""Policy simulation (spec v3 section 8): hand-checked results, the spec's properties, and the bookkeeping.

The hedge tree (instances/tiny-tree-hedge.yaml, worked out in its header): RP = 41 (buy 5 units of a in
2026), O*_on-spec = 60, O*_weak = 40.  The deterministic policy plans on the base data (on-spec): it buys
nothing in 2026, then re-plans in 2027 knowing the outcome: on-spec 60, weak 2*0 + ... = 25 (5 weak b and 5
a bought in 2027: 15 + 10), so E = 0.4 * 60 + 0.6 * 25 = 39, and the stochastic policy is worth 41 - 39 = 2.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plan_checker import check_plan

from optimizer import load_instance, solve
from optimizer.analysis import simulate as sim_module
from optimizer.analysis.simulate import SimulationError, epochs_of, sample_paths, simulate
from optimizer.instance.tree import weighted_quantile

INSTANCES = Path(__file__).resolve().parent.parent / "instances"
HEDGE = INSTANCES / "tiny-tree-hedge.yaml"
TWO_STAGES = INSTANCES / "tiny-tree-evpi-zero.yaml"
TREES = sorted(p.name for p in INSTANCES.glob("tiny-tree-*.yaml"))


@pytest.fixture(scope="module")
def hedge():
    inst = load_instance(HEDGE)
    return inst, simulate(inst, workers=1)


def _by(sim, policy):
    return sim.paths[sim.paths.policy == policy].set_index("path")


def test_the_hedge_tree_by_hand(hedge):
    inst, sim = hedge
    assert sim.epochs == (2026, 2027) and not sim.sampled
    s = sim.summary.set_index("policy")
    assert s.loc["stochastic", "expected_objective"] == pytest.approx(41)
    assert s.loc["deterministic", "expected_objective"] == pytest.approx(39)
    assert s.loc["perfect", "expected_objective"] == pytest.approx(48)
    assert sim.value.value == pytest.approx(2) and sim.value.low is None  # enumerated: no interval
    det = _by(sim, "deterministic")
    assert det.loc["on-spec", "objective"] == pytest.approx(60) and det.loc["weak", "objective"] == pytest.approx(25)
    assert det.loc["weak", "regret"] == pytest.approx(15)
    assert s.loc["deterministic", "expected_regret"] == pytest.approx(0.6 * 15)
    # the worst 10% of the mass (alpha 0.9) is in the weak path
    assert s.loc["stochastic", "cvar"] == pytest.approx(35) and s.loc["stochastic", "p10"] == pytest.approx(35)
    assert s.loc["stochastic", "p90"] == pytest.approx(50)
    # 2026 is implemented from the root solve: 5 units of a, by both paths
    buy = sim.realised["purchases"]
    first = buy[(buy.policy == "stochastic") & (buy.year == 2026)]
    assert set(first.path) == {"on-spec", "weak"} and set(first.units) == {5}


@pytest.mark.parametrize("name", TREES)
def test_time_consistency_and_no_path_beats_its_perfect_foresight(name):
    """P = Q, epochs at P's stage years: with an expectation objective E[stochastic] = RP within the gaps
    (the tree's plan is time consistent); every path is no better than its own optimum O*_s."""
    inst = load_instance(INSTANCES / name)
    sim = simulate(inst, policies=("stochastic", "deterministic"), workers=1)
    assert sim.epochs == epochs_of(inst, inst) == (inst.start, *inst.tree.stage_years)
    maximize = inst.objective.kind == "max_training"
    for p in ("stochastic", "deterministic"):
        df = _by(sim, p)
        slack = 1e-4 * np.maximum(1.0, np.abs(df.perfect_objective))
        if maximize:
            assert (df.objective <= df.perfect_objective + slack).all(), df
        else:
            assert (df.objective >= df.perfect_objective - slack).all(), df
    if inst.uncertainty.risk_weight == 0:
        rp = solve(inst, value_of_information=False)
        e = sim.summary.set_index("policy").loc["stochastic", "expected_objective"]
        assert e == pytest.approx(rp.objective, rel=2e-4, abs=1e-6)


@pytest.mark.parametrize("name", ["tiny-tree-hedge.yaml", "tiny-tree-evpi-zero.yaml", "tiny-tree-chip-delay.yaml",
                                  "tiny-tree-min-cost.yaml"])
def test_every_realised_plan_passes_the_plan_checker(name):
    inst = load_instance(INSTANCES / name)
    sim = simulate(inst, workers=1)
    for row in sim.paths.itertuples():
        plan = sim.plan(row.policy, row.path)
        scenario = inst.tree.scenario(row.scenario).instance
        assert plan.objective == pytest.approx(row.objective)
        check_plan(scenario, plan)
        # the realised tables hold the same plan
        for table in ("purchases", "facilities", "compute"):
            got = sim.realised[table]
            got = got[(got.policy == row.policy) & (got.path == row.path)].drop(columns=["policy", "path"])
            pd.testing.assert_frame_equal(got.reset_index(drop=True), getattr(plan, table).reset_index(drop=True),
                                          check_dtype=False)


def test_paths_with_the_same_history_share_their_decisions_until_they_part():
    """Two stages (2027 and 2028): paths through the same 2027 branch decide the same up to 2028."""
    inst = load_instance(TWO_STAGES)
    sim = simulate(inst, policies=("stochastic", "deterministic"), workers=1)
    tree = inst.tree
    checked = 0
    for policy in ("stochastic", "deterministic"):
        for a in tree.scenarios:
            for b in tree.scenarios:
                if a.id >= b.id:
                    continue
                part = next((y for y in tree.stage_years if tree.node_of(a, y) != tree.node_of(b, y)), None)
                assert part is not None
                for table in ("purchases", "fleet", "facilities", "serving"):
                    df = sim.realised[table]
                    df = df[(df.policy == policy) & (df.year < part)]
                    pa = df[df.path == a.id].drop(columns=["path"]).reset_index(drop=True)
                    pb = df[df.path == b.id].drop(columns=["path"]).reset_index(drop=True)
                    pd.testing.assert_frame_equal(pa, pb)
                checked += 1
    assert checked == 2 * len(tree.scenarios) * (len(tree.scenarios) - 1) // 2
    # and each policy solved each node once: as many 2027 solves as 2027 nodes
    solves = sim.solves[(sim.solves.policy == "stochastic") & (sim.solves.epoch == tree.stage_years[0])]
    assert len(solves) == len(tree.nodes(tree.stage_years[0]))


def test_a_one_scenario_tree_gives_the_v1_plan():
    inst = load_instance(INSTANCES / "tiny-supply-cap.yaml")
    plan = solve(inst)
    sim = simulate(inst, workers=1)
    assert list(sim.paths.path.unique()) == ["base"] and sim.epochs == (inst.start,)
    for policy in ("stochastic", "deterministic", "perfect"):
        row = _by(sim, policy).loc["base"]
        assert row.objective == pytest.approx(plan.objective) and row.regret == pytest.approx(0, abs=1e-9)
        got = sim.realised["purchases"]
        got = got[got.policy == policy].drop(columns=["policy", "path"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, plan.purchases.reset_index(drop=True), check_dtype=False)
    assert sim.value.value == pytest.approx(0, abs=1e-9)


def _budget_cut() -> dict:
    """One region of 10 MW (full), chip a: 1 MW, $100, 1 PFLOP/s, buyable 2026-2027, budget $1000.
    Stage 2027: the budget stays (0.5) or is cut to $500 (0.5).  The base forecast buys 10 chips in 2026
    ($1000); after the cut that spend is above the budget: the deterministic policy's 2027 problem is
    infeasible.  The stochastic policy buys 5 in 2026 (E = 0.5 * 15 + 0.5 * 10 = 12.5)."""
    return {
        "name": "budget-cut", "horizon": {"start": 2026, "end": 2027}, "discount_rate": 0,
        "budget": {"total_usd": 1000}, "objective": {"kind": "max_training"},
        "regions": {"r": {"pue": 1, "electricity_usd_per_mwh": 0, "existing_mw": 10, "max_mw": 10, "block_mw": 1,
                          "block_capex_usd": 1e9, "build_lead_years": 0, "inference_demand_pflops": 0}},
        "chips": {"a": {"available_from": 2026, "available_until": 2027, "price_usd": 100, "power_w": 1e6,
                        "peak_pflops": 2, "utilization": {"train": 0.5, "infer": 0.5}, "lifetime_years": 5}},
        "uncertainty": {"stages": [{"year": 2027, "branches": {
            "same": {"probability": 0.5}, "cut": {"probability": 0.5, "changes": {"budget.total_usd": 500}}}}]},
    }


def test_an_infeasible_epoch_is_reported_counted_and_explained():
    inst = load_instance(_budget_cut())
    sim = simulate(inst, workers=1)
    det = _by(sim, "deterministic")
    assert det.loc["cut", "status"] == "infeasible" and det.loc["cut", "infeasible_epoch"] == 2027
    assert "budget" in det.loc["cut", "message"] and "$500" in det.loc["cut", "message"].replace(",", "")
    assert det.loc["same", "objective"] == pytest.approx(20)
    s = sim.summary.set_index("policy")
    assert s.loc["deterministic", "infeasible_paths"] == 1 and s.loc["deterministic", "infeasible_weight"] == 0.5
    assert s.loc["deterministic", "expected_objective"] == -np.inf  # the worst outcome, never dropped
    assert s.loc["deterministic", "cvar"] == -np.inf and s.loc["deterministic", "p90"] == pytest.approx(20)
    assert s.loc["stochastic", "expected_objective"] == pytest.approx(12.5)
    assert s.loc["stochastic", "infeasible_paths"] == 0
    assert sim.value.value == np.inf
    assert not ((sim.realised["purchases"].policy == "deterministic") & (sim.realised["purchases"].path == "cut")).any()


def test_an_interrupted_simulation_resumes_with_nothing_lost_and_nothing_solved_twice(tmp_path, monkeypatch):
    inst = load_instance(TWO_STAGES)
    whole = simulate(inst, workers=1)
    solved = []
    real = sim_module.solve_epoch

    def counting(payload):
        solved.append(payload)
        return real(payload)

    monkeypatch.setattr(sim_module, "solve_epoch", counting)

    def stop_after_three(p):
        if p.done - p.skipped >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simulate(inst, workers=1, store=tmp_path, progress=stop_after_three)
    assert len(solved) == 3
    first = len(solved)
    resumed = simulate(inst, workers=1, store=tmp_path)
    assert len(solved) - first == len(whole.solves) - 3  # none solved twice
    pd.testing.assert_frame_equal(resumed.paths, whole.paths)
    pd.testing.assert_frame_equal(resumed.summary, whole.summary)
    again = simulate(inst, workers=1, store=tmp_path)  # everything stored: nothing to solve
    assert len(solved) - first == len(whole.solves) - 3
    pd.testing.assert_frame_equal(again.paths, whole.paths)


def _three_stages() -> dict:
    """tiny-tree-min-cost over four years, its demand revealed in 2027, 2028 and 2029: low (0.5, x1), high
    (0.3, x1.5) or drop (0.2, x0.5) each time: 27 paths."""
    raw = load_instance(INSTANCES / "tiny-tree-min-cost.yaml").raw
    from optimizer.instance import plain

    raw = plain(raw)
    raw["name"] = "three-stages"
    raw["horizon"] = {"start": 2026, "end": 2029}
    raw["regions"]["r"]["inference_demand_pflops"] = {2026: 0, 2027: 4, 2028: 6, 2029: 8}
    branches = {"low": {"probability": 0.5}, "high": {"probability": 0.3, "changes": {
        "regions.r.inference_demand_pflops": "x1.5"}}, "drop": {"probability": 0.2, "changes": {
            "regions.r.inference_demand_pflops": "x0.5"}}}
    raw["uncertainty"] = {"stages": [{"year": y, "branches": branches} for y in (2027, 2028, 2029)]}
    return raw


def test_sampled_paths_agree_with_the_enumeration_within_the_interval():
    inst = load_instance(_three_stages())
    assert len(inst.scenarios()) == 27
    policies = ("stochastic", "deterministic")
    exact = simulate(inst, policies=policies, workers=1)
    assert exact.value.value > 0  # planning for the tree is worth something here
    many = simulate(inst, policies=policies, paths=20, seed=1, workers=1)
    assert many.sampled and len(many.paths) == 2 * 20
    assert np.allclose(many.paths.weight, 1 / 20)
    v = many.value
    assert v.sampled and v.low < v.value < v.high
    assert v.low <= exact.value.value <= v.high
    for p in policies:
        e = exact.summary.set_index("policy").loc[p, "expected_objective"]
        s = many.summary.set_index("policy").loc[p]
        assert s.standard_error > 0 and abs(s.expected_objective - e) <= 3 * s.standard_error


def test_sampling_is_seeded_and_by_probability():
    inst = load_instance(_three_stages())  # 27 leaves
    a, sampled = sample_paths(inst, 26, seed=3)
    b, _ = sample_paths(inst, 26, seed=3)
    c, _ = sample_paths(inst, 26, seed=4)
    assert sampled and [p.scenario for p in a] == [p.scenario for p in b] != [p.scenario for p in c]
    drawn = [p.scenario for seed in range(60) for p in sample_paths(inst, 26, seed=seed)[0]]
    freq = pd.Series(drawn).value_counts(normalize=True)
    for s in inst.scenarios():
        assert abs(freq.get(s.id, 0) - s.probability) < 0.02, s.id
    every, sampled = sample_paths(inst, 27, seed=0)  # as many as the leaves: every leaf, by its probability
    assert not sampled and [p.weight for p in every] == [s.probability for s in inst.scenarios()]


def test_weighted_quantiles():
    v, w = np.array([30.0, 10.0, 20.0]), np.array([0.2, 0.5, 0.3])
    assert weighted_quantile(v, w, 0.1) == 10 and weighted_quantile(v, w, 0.5) == 10
    assert weighted_quantile(v, w, 0.51) == 20 and weighted_quantile(v, w, 0.9) == 30


# ------------------------------------------------------------------ bad input


def test_a_truth_with_other_base_data_names_the_first_differing_key_path():
    inst = load_instance(HEDGE)
    raw = copy.deepcopy(dict(inst.raw))
    from optimizer.instance import plain

    raw = plain(inst.raw)
    raw["chips"]["a"]["power_w"] = 2e6
    with pytest.raises(SimulationError, match=r"chips\.a\.power_w: 1e\+06 in the policy file, 2e\+06 in the truth"):
        simulate(inst, load_instance(raw), workers=1)
    raw = plain(inst.raw)
    raw["name"] = "another name"
    raw["description"] = "another description"
    del raw["uncertainty"]
    simulate(inst, load_instance(raw), policies=("perfect",), workers=1)  # names and trees may differ


@pytest.mark.parametrize("kwargs, words", [
    ({"paths": 0}, "paths: must be a whole number >= 1, got 0"),
    ({"seed": -1}, "seed: must be a whole number >= 0, got -1"),
    ({"policies": ("stochastic", "myopic")}, "unknown policy 'myopic'; choose from stochastic, deterministic, "
                                             "perfect"),
    ({"policies": ()}, "give at least one of"),
])
def test_bad_options_are_named(kwargs, words, tmp_path):
    with pytest.raises(SimulationError) as err:
        simulate(load_instance(HEDGE), workers=1, store=tmp_path / "out", **kwargs)
    assert words in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing written


def test_results_pickle_and_write(hedge, tmp_path):
    import pickle

    _, sim = hedge
    back = pickle.loads(pickle.dumps(sim))
    pd.testing.assert_frame_equal(back.paths, sim.paths)
    written = sim.write(tmp_path / "sim", formats=("csv", "xlsx"))
    names = {p.name for p in written}
    assert {"paths.csv", "summary.csv", "solves.csv", "realised_purchases.csv", "summary.json",
            "simulation.xlsx", "policy.yaml", "truth.yaml"} <= names
    assert pd.read_csv(tmp_path / "sim" / "paths.csv").shape == sim.paths.shape
