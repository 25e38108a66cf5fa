"""The ``uncertainty`` section (spec v2 section 4.1) in the format layer: one test per rule, each asserting
the problem's path, then the scenarios a tree expands to."""

from __future__ import annotations

import copy
import time

import pytest
import yaml

from optimizer import InstanceError, load_instance
from optimizer.instance import Factor, Scenario, Shift, parse_values
from optimizer.instance.limits import MAX_SCENARIOS

YEARS = (2026, 2027, 2028, 2029, 2030)


def base() -> dict:
    """Two regions, an installed chip on sale now (g3) and one on sale from 2029 (g4)."""
    return {
        "name": "tree",
        "horizon": {"start": 2026, "end": 2030},
        "budget": {"total_usd": 1e9, "annual_max_usd": 5e8},
        "power": {"ceiling_mw": 500},
        "training": {"min_pflops": 1, "frontier_cluster_pflops": 0},
        "regions": {
            "us": {"pue": 1.1, "electricity_usd_per_mwh": 80, "block_mw": 100, "block_capex_usd": 1e8,
                   "build_lead_years": 1, "existing_mw": 50, "max_mw": 400,
                   "inference_demand_pflops": {"start": 100, "growth": 0.5}},
            "eu": {"pue": 1.2, "electricity_usd_per_mwh": 150, "block_mw": 50, "block_capex_usd": 6e7,
                   "build_lead_years": 2, "inference_demand_pflops": 10},
        },
        "chips": {
            "g3": {"price_usd": 20000, "power_w": 1200, "peak_pflops": 0.671, "supply_units": 100,
                   "utilization": {"train": 0.4, "infer": 0.3}, "lifetime_years": 5, "chips_per_unit": 64,
                   "installed": [{"region": "us", "year": 2025, "chips": 1000}]},
            "g4": {"price_usd": 30000, "power_w": 1500, "peak_pflops": 2.0, "available_from": 2029,
                   "utilization": {"train": 0.4, "infer": 0.3}, "lifetime_years": 5, "supply_units": 50},
        },
    }


def tree(*stages, risk=None, data=None) -> dict:
    """``base()`` with an uncertainty section; a stage is (year, {branch: (probability, changes)})."""
    data = copy.deepcopy(data or base())
    data["uncertainty"] = {"stages": [
        {"year": year, "branches": {b: {"probability": p, **({"changes": c} if c else {})}
                                    for b, (p, c) in branches.items()}}
        for year, branches in stages]}
    if risk is not None:
        data["uncertainty"]["risk"] = risk
    return data


def two(changes=None, year=2028, other=None, data=None) -> dict:
    """One stage in ``year`` with branches a (the changes) and b (``other``), each with probability 0.5."""
    return tree((year, {"a": (0.5, changes), "b": (0.5, other)}), data=data)


def problems_of(data) -> list[str]:
    with pytest.raises(InstanceError) as info:
        load_instance(data)
    return [str(p) for p in info.value.problems]


def has(data, expect: str) -> list[str]:
    msgs = problems_of(data)
    assert any(m.startswith(expect) for m in msgs), msgs
    return msgs


def series(mapping) -> list[float]:
    return [mapping[t] for t in YEARS]


STAGE = "uncertainty.stages[0]"
CHANGES = "uncertainty.stages[0].branches.a.changes"


# ---------------------------------------------------------------- stages


def test_a_valid_tree_loads():
    inst = load_instance(two({"budget.total_usd": 2e9}))
    assert [s.id for s in inst.scenarios()] == ["a", "b"]


@pytest.mark.parametrize("stages, expect", [
    ([], "uncertainty.stages: must be a list of 1 to 6 stages, got 0 stages"),
    ([{"year": 2027 + (i % 3), "branches": {"x": {"probability": 1}}} for i in range(7)],
     "uncertainty.stages: must be a list of 1 to 6 stages, got 7 stages"),
    ({"year": 2028}, "uncertainty.stages: must be a list of 1 to 6 stages, got a mapping"),
])
def test_one_to_six_stages(stages, expect):
    data = base()
    data["uncertainty"] = {"stages": stages}
    has(data, expect)


def test_stage_years_strictly_increasing():
    data = tree((2028, {"x": (1, None)}), (2028, {"y": (1, None)}), (2027, {"z": (1, None)}))
    msgs = problems_of(data)
    assert "uncertainty.stages[1].year: must be after the year of the stage before (2028), got 2028" in msgs
    assert "uncertainty.stages[2].year: must be after the year of the stage before (2028), got 2027" in msgs


@pytest.mark.parametrize("year", [2026, 2031, 2020])
def test_stage_year_inside_the_horizon(year):
    has(tree((year, {"x": (1, None)})), f"{STAGE}.year: must be after horizon.start (2026) and at most "
                                        f"horizon.end (2030), got {year}")


def test_stage_year_may_be_the_last_year():
    assert load_instance(tree((2030, {"x": (1, None)}))).uncertainty.stages[0].year == 2030


def test_stage_keys_are_checked():
    data = tree((2028, {"x": (1, None)}))
    data["uncertainty"]["stages"][0]["yaer"] = 2029
    data["uncertainty"]["stages"][0]["name"] = ""
    msgs = problems_of(data)
    assert f"{STAGE}.yaer: unknown key; did you mean 'year'?" in msgs
    assert f"{STAGE}.name: must be a non-empty string, got the text ''" in msgs
    data = tree((2028, {"x": (1, None)}))
    del data["uncertainty"]["stages"][0]["year"]
    assert f"{STAGE}.year: required key is missing" in problems_of(data)


# ---------------------------------------------------------------- branches


@pytest.mark.parametrize("count", [0, 11])
def test_one_to_ten_branches_per_stage(count):
    data = tree((2028, {f"b{i}": (1 / max(count, 1), None) for i in range(count)}))
    has(data, f"{STAGE}.branches: must be a mapping of 1 to 10 branches {{id: {{probability, changes}}}}, "
              f"got {count} branches")


@pytest.mark.parametrize("bad", ["a b", "high/late", "", "é"])
def test_branch_ids_match_the_pattern(bad):
    has(tree((2028, {bad: (0.5, None), "ok": (0.5, None)})),
        f"{STAGE}.branches.{bad if bad else repr(bad)}: branch id must match [A-Za-z0-9_.-]+, got {bad!r}")


def test_branch_ids_allowed():
    inst = load_instance(tree((2028, {"A.b-c_9": (0.5, None), 7: (0.5, None)})))
    assert [b.id for b in inst.uncertainty.stages[0].branches] == ["A.b-c_9", "7"]  # a YAML integer key


@pytest.mark.parametrize("p, expect", [
    (0, "must be > 0, got 0"), (-0.5, "must be > 0, got -0.5"), ("lots", "must be a number, got the text"),
])
def test_probability_positive(p, expect):
    has(tree((2028, {"a": (p, None), "b": (1, None)})), f"{STAGE}.branches.a.probability: {expect}")


def test_probability_required():
    data = two()
    del data["uncertainty"]["stages"][0]["branches"]["a"]["probability"]
    has(data, f"{STAGE}.branches.a.probability: required key is missing")


@pytest.mark.parametrize("q, ok", [(0.5, True), (0.5 + 5e-10, True), (0.5 - 5e-10, True),
                                   (0.5 + 5e-9, False), (0.4, False)])
def test_probabilities_sum_to_one(q, ok):
    data = tree((2028, {"a": (0.5, None), "b": (q, None)}))
    if ok:
        load_instance(data)
    else:
        has(data, f"{STAGE}.branches: branch probabilities must sum to 1 (±1e-09), got")


def test_at_most_a_thousand_scenarios():
    ten = {f"b{i}": (0.1, None) for i in range(10)}
    ok = tree((2027, ten), (2028, ten), (2029, ten))
    assert len(load_instance(ok).scenarios()) == MAX_SCENARIOS
    too_many = tree((2027, ten), (2028, ten), (2029, ten), (2030, {"x": (0.5, None), "y": (0.5, None)}))
    assert problems_of(too_many) == [
        "uncertainty.stages: 2,000 scenarios (the product of the stages' branch counts) is above the limit of "
        "1,000"]


# ---------------------------------------------------------------- risk


@pytest.mark.parametrize("risk, expect", [
    ({"cvar_alpha": 1}, "uncertainty.risk.cvar_alpha: must be < 1, got 1"),
    ({"cvar_alpha": -0.1}, "uncertainty.risk.cvar_alpha: must be >= 0, got -0.1"),
    ({"weight": 1.5}, "uncertainty.risk.weight: must be <= 1, got 1.5"),
    ({"weight": -0.1}, "uncertainty.risk.weight: must be >= 0, got -0.1"),
    ({"alpha": 0.9}, "uncertainty.risk.alpha: unknown key; did you mean 'cvar_alpha'?"),
])
def test_risk_bounds(risk, expect):
    has(tree((2028, {"x": (1, None)}), risk=risk), expect)


def test_risk_defaults_and_bounds_included():
    u = load_instance(tree((2028, {"x": (1, None)}))).uncertainty
    assert (u.cvar_alpha, u.risk_weight) == (0.9, 0.0)  # risk neutral
    u = load_instance(tree((2028, {"x": (1, None)}), risk={"cvar_alpha": 0, "weight": 1})).uncertainty
    assert (u.cvar_alpha, u.risk_weight) == (0.0, 1.0)


# ---------------------------------------------------------------- which paths may change (rules 1-3)

SERIES_PATHS = [
    "budget.annual_max_usd", "power.ceiling_mw", "training.min_pflops", "training.frontier_cluster_pflops",
    "regions.us.electricity_usd_per_mwh", "regions.us.max_mw", "regions.us.block_capex_usd",
    "regions.us.inference_demand_pflops", "chips.g3.price_usd", "chips.g3.supply_units",
]


@pytest.mark.parametrize("path", SERIES_PATHS)
def test_rule1_every_series_may_change(path):
    inst = load_instance(two({path: "x2"}))
    a, b = (s.instance for s in inst.scenarios())
    section, *ident, key = path.split(".")

    def get(i):
        obj = getattr(i, section)
        return getattr(obj[ident[0]] if ident else obj, key)

    old, new = series(get(b)), series(get(a))
    assert new == [o if t < 2028 else 2 * o for t, o in zip(YEARS, old)]


def test_rule2_total_budget():
    a, b = load_instance(two({"budget.total_usd": "x1.5"}, other={"budget.total_usd": 7e8})).scenarios()
    assert (a.instance.budget.total_usd, b.instance.budget.total_usd) == (1.5e9, 7e8)


@pytest.mark.parametrize("path, value", [
    ("chips.g4.peak_pflops", 3.0), ("chips.g4.power_w", "x0.5"), ("chips.g4.available_from", "+1y"),
    ("chips.g4.utilization.train", 0.5), ("chips.g4.utilization", {"train": 0.5, "infer": 0.5}),
    ("chips.g4.lifetime_years", 4), ("chips.g4.chips_per_unit", 8), ("chips.g4.available_until", "-1y"),
])
def test_rule3_chip_keys_accepted_before_the_chip_is_in_service(path, value):
    """g4 is on sale from 2029: in a 2029 stage any of its keys may change."""
    a, b = load_instance(two({path: value}, year=2029)).scenarios()
    assert a.instance.chips["g4"] != b.instance.chips["g4"]


def test_rule3_rejected_when_purchasable_before_the_stage():
    has(two({"chips.g4.peak_pflops": 3}, year=2030),
        f"{CHANGES}.chips.g4.peak_pflops: chip g4 can be bought in 2029, before 2030 (the stage year); only "
        "its series may change")


def test_rule3_rejected_for_installed_chips():
    data = two({"chips.g3.power_w": 1000})
    data["chips"]["g3"]["available_from"] = 2029  # not on sale before the stage, but installed chips run
    has(data, f"{CHANGES}.chips.g3.power_w: chip g3 has installed chips, in service before 2028 (the stage year)")


def test_rule3_rejected_after_the_change():
    has(two({"chips.g4.available_from": "-2y"}, year=2029),
        f"{CHANGES}.chips.g4.available_from: after the change, chip g4 can be bought in 2027, before 2029 "
        "(the stage year)")


def test_rule3_is_judged_in_each_parent():
    """Once an earlier branch puts g4 on sale in 2028, a 2029 stage may no longer change its keys there."""
    data = tree((2027, {"early": (0.5, {"chips.g4.available_from": "-1y"}), "late": (0.5, None)}),
                (2029, {"fast": (0.5, {"chips.g4.peak_pflops": 3}), "slow": (0.5, None)}))
    assert problems_of(data) == [
        "uncertainty.stages[1].branches.fast.changes.chips.g4.peak_pflops: chip g4 can be bought in 2028, "
        "before 2029 (the stage year); only its series may change (after early)"]


def test_rule3_series_of_an_installed_chip_follow_rule1():
    a, _ = load_instance(two({"chips.g3.price_usd": 1000})).scenarios()
    assert series(a.instance.chips["g3"].price_usd) == [20000, 20000, 1000, 1000, 1000]


NOT_ALLOWED = ("cannot change in a branch: only the series, budget.total_usd and the keys of a chip with no chip "
               "in service before the stage year may change")


@pytest.mark.parametrize("path", [
    "regions.us.pue", "regions.*.block_mw", "regions.eu.build_lead_years", "regions.us.existing_mw",
    "objective.kind", "objective.unmet_penalty", "horizon.end", "discount_rate", "name", "serving.eu.us",
    "uncertainty.risk",
])
def test_other_paths_are_rejected(path):
    assert problems_of(two({path: 1})) == [f"{CHANGES}.{path}: {NOT_ALLOWED}"]


@pytest.mark.parametrize("path, expect", [
    ("chips.g9.power_w", "unknown chip 'g9' (defined: g3, g4)"),
    ("regions.mars.max_mw", "unknown region 'mars' (defined: eu, us)"),
    ("chips.g4.pwer_w", "unknown key 'pwer_w' of a chip; did you mean 'power_w'?"),
    ("regions.us.max_m", "unknown key 'max_m' of a region; did you mean 'max_mw'?"),
    ("budgett.total_usd", "unknown section 'budgett'; did you mean 'budget'?"),
    ("budget.total", "unknown key 'total' of budget; did you mean 'total_usd'?"),
    ("chips.g4", "name a key of the chip (chips.ID.KEY): a whole chip cannot be added or replaced in a branch"),
    ("budget", "name a key of budget (budget.KEY)"),
])
def test_unknown_paths_are_named(path, expect):
    assert problems_of(two({path: 1})) == [f"{CHANGES}.{path}: {expect}"]


def test_an_id_with_dots():
    data = base()
    data["regions"]["eu.west"] = data["regions"].pop("eu")
    a, b = load_instance(two({"regions.eu.west.inference_demand_pflops": 20}, data=data)).scenarios()
    assert series(a.instance.regions["eu.west"].inference_demand_pflops) == [10, 10, 20, 20, 20]


# ---------------------------------------------------------------- wildcards and value forms


def test_wildcard_matches_every_region():
    a, b = load_instance(two({"regions.*.inference_demand_pflops": "x2"})).scenarios()
    for r in ("us", "eu"):
        old, new = series(b.instance.regions[r].inference_demand_pflops), series(
            a.instance.regions[r].inference_demand_pflops)
        assert new == [o * (2 if t >= 2028 else 1) for t, o in zip(YEARS, old)]


def test_wildcard_problems_name_the_path_as_written():
    assert problems_of(two({"regions.*.pue": 1.3})) == [f"{CHANGES}.regions.*.pue: {NOT_ALLOWED}"]
    msgs = problems_of(two({"chips.*.peak_pflops": 3}, year=2029))  # g3 is in service, g4 is not
    assert msgs == [f"{CHANGES}.chips.*.peak_pflops: chip g3 has installed chips, in service before 2029 (the "
                    "stage year); only its series may change"]


def test_value_forms_are_read_as_sweeps_read_them():
    data = two({"regions.us.max_mw": "x0.5", "chips.g4.available_from": "+1y", "budget.total_usd": "100e9"},
               year=2029)
    changes = load_instance(data).uncertainty.stages[0].branches[0].changes
    assert dict(changes) == {"regions.us.max_mw": parse_values("x0.5")[0],
                             "chips.g4.available_from": parse_values("+1y")[0],
                             "budget.total_usd": parse_values("100e9")[0]}
    assert changes["regions.us.max_mw"] == Factor(0.5) and changes["chips.g4.available_from"] == Shift(1)


@pytest.mark.parametrize("value, expect", [
    (300, [400, 400, 300, 300, 300]),
    ("3e2", [400, 400, 300, 300, 300]),
    ({2026: 100, 2030: 500}, [400, 400, 300, 400, 500]),  # resolved per year, then the years before 2028 kept
    ({"start": 100, "growth": 1.0}, [400, 400, 400, 800, 1600]),
    ("x0.5", [400, 400, 200, 200, 200]),
])
def test_a_series_takes_any_series_form(value, expect):
    a, _ = load_instance(two({"regions.us.max_mw": value})).scenarios()
    assert series(a.instance.regions["us"].max_mw) == expect


@pytest.mark.parametrize("path, value, expect", [
    ("regions.us.max_mw", "+1y", "a year shift (+1y) moves an integer year (such as chips.G.available_from), "
                                 "not this value"),
    ("budget.total_usd", "-2y", "a year shift (-2y) moves an integer year (such as chips.G.available_from), "
                                "not this value"),
    ("regions.us.max_mw", None, "a series cannot be removed in a branch (null); give its values"),
    ("regions.us.max_mw", -5, "must be >= 0, got -5"),
    ("regions.us.max_mw", "lots", "must be a number, got the text 'lots'"),
    ("chips.g3.price_usd", {"start": 1}, "growth: required key is missing"),
])
def test_bad_values_are_named_at_the_change(path, value, expect):
    msgs = problems_of(two({path: value}))
    assert any(m.startswith(f"{CHANGES}.{path}") and m.endswith(expect) for m in msgs), msgs


def test_null_removes_a_chip_key_or_the_total_budget():
    a, _ = load_instance(two({"chips.g4.available_until": None, "budget.total_usd": None}, year=2029)).scenarios()
    assert a.instance.chips["g4"].available_until == 2030 and a.instance.budget.total_usd is None


def test_where_two_paths_reach_one_key_the_later_wins():
    a, _ = load_instance(two({"chips.*.supply_units": "x2", "chips.g3.supply_units": 10})).scenarios()
    assert series(a.instance.chips["g3"].supply_units) == [100, 100, 10, 10, 10]
    assert series(a.instance.chips["g4"].supply_units) == [50, 50, 100, 100, 100]


def test_a_bad_series_year_is_named_under_the_change():
    assert problems_of(two({"regions.us.max_mw": {"2028x": 1}})) == [
        f"{CHANGES}.regions.us.max_mw.2028x: series year must be an integer year, got '2028x'"]


def test_a_series_the_file_does_not_give_cannot_change():
    has(two({"regions.eu.max_mw": 100}),
        f"{CHANGES}.regions.eu.max_mw: regions.eu.max_mw: the instance has none, so the years before 2028 (the "
        "stage year) would have no value; give the series in the file")


def test_a_changed_series_out_of_range_is_one_problem():
    assert problems_of(two({"regions.*.inference_demand_pflops": "x1e20"})) == [
        f"{CHANGES}.regions.*.inference_demand_pflops: gives regions.us.inference_demand_pflops.2028: must be at "
        "most 1e+16 in magnitude, got 2.25e+22 (and 2 more years)",
        f"{CHANGES}.regions.*.inference_demand_pflops: gives regions.eu.inference_demand_pflops.2028: must be at "
        "most 1e+16 in magnitude, got 1e+21 (and 2 more years)"]


# ---------------------------------------------------------------- each scenario is a valid v1 instance


def test_scenario_problems_carry_the_scenario_id():
    msgs = problems_of(two({"chips.g4.peak_pflops": -1}, year=2029))
    assert msgs == ["uncertainty: scenario a: chips.g4.peak_pflops: must be > 0, got -1"]
    data = tree((2029, {"x": (0.5, {"chips.g4.available_until": 2027}), "y": (0.5, None)}),
                (2030, {"p": (0.5, None), "q": (0.5, None)}))
    assert problems_of(data) == [
        "uncertainty: scenarios x/*: chips.g4.available_until: must be >= available_from (2029), got 2027"]


def test_scenario_problems_of_several_scenarios_are_listed_once():
    data = tree((2027, {"x": (0.5, None), "y": (0.5, None)}),
                (2029, {"p": (0.5, {"chips.g4.lifetime_years": 0}), "q": (0.5, None)}))
    assert problems_of(data) == [
        "uncertainty: scenarios x/p, y/p: chips.g4.lifetime_years: must be >= 1, got 0"]


def test_all_problems_at_once_in_section_order():
    data = two({"regions.us.pue": 2})
    data["chips"]["g3"]["power_w"] = -5
    data["uncertainty"]["stages"][0]["branches"]["b"]["probability"] = 0
    assert problems_of(data) == [
        "chips.g3.power_w: must be > 0, got -5",
        f"{CHANGES}.regions.us.pue: {NOT_ALLOWED}",
        f"{STAGE}.branches.b.probability: must be > 0, got 0"]


def test_uncertainty_must_be_a_mapping():
    data = base()
    data["uncertainty"] = [1]
    assert problems_of(data) == ["uncertainty: must be a mapping, got a list"]
    data["uncertainty"] = {"stage": []}
    assert problems_of(data) == ["uncertainty.stage: unknown key; did you mean 'stages'?",
                                 "uncertainty.stages: required key is missing"]


def test_a_yaml_file_with_a_bad_tree(tmp_path):
    text = yaml.safe_dump(base()) + """\
uncertainty:
  stages:
    - year: 2028
      branches:
        a: {probability: 0.5, changes: {"regions.*.pue": 1.2}}
        b: {probability: 0.6}
"""
    p = tmp_path / "tree.yaml"
    p.write_text(text)
    with pytest.raises(InstanceError) as info:
        load_instance(p)
    assert str(info.value) == (
        f"{p}: 2 problems\n"
        f"  - {CHANGES}.regions.*.pue: {NOT_ALLOWED}\n"
        f"  - {STAGE}.branches: branch probabilities must sum to 1 (±1e-09), got 1.1")


# ---------------------------------------------------------------- scenarios


def test_a_v1_file_has_one_scenario_the_instance_itself():
    inst = load_instance(base())
    assert inst.uncertainty is None and inst.objective.end_of_horizon == "truncate"
    assert inst.scenarios() == (Scenario("base", (), 1.0, inst),)
    assert inst.base() is inst


def test_scenarios_are_the_product_of_the_branches_in_order():
    data = tree((2027, {"high": (0.25, None), "mid": (0.5, None), "low": (0.25, None)}),
                (2029, {"on-time": (0.7, None), "late": (0.3, None)}))
    got = [(s.id, s.branches, s.probability) for s in load_instance(data).scenarios()]
    assert got == [
        ("high/on-time", ("high", "on-time"), pytest.approx(0.175)), ("high/late", ("high", "late"), 0.075),
        ("mid/on-time", ("mid", "on-time"), 0.35), ("mid/late", ("mid", "late"), 0.15),
        ("low/on-time", ("low", "on-time"), pytest.approx(0.175)), ("low/late", ("low", "late"), 0.075)]
    assert sum(p for *_, p in got) == pytest.approx(1)


def test_a_scenario_instance_is_the_file_without_its_tree_changed():
    inst = load_instance(two({"regions.us.max_mw": 100}, other=None))
    a, b = inst.scenarios()
    assert b.instance == inst.base() and "uncertainty" not in inst.base().raw
    assert inst.base().uncertainty is None and a.instance.uncertainty is None
    assert a.instance.raw["regions"]["us"]["max_mw"] == {2026: 400, 2027: 400, 2028: 100, 2029: 100, 2030: 100}
    assert inst.base().regions == load_instance(base()).regions  # the fields are the file's


def test_changes_apply_in_stage_order_each_from_its_year():
    data = tree((2027, {"x": (1, {"regions.eu.inference_demand_pflops": "x2"})}),
                (2029, {"y": (1, {"regions.eu.inference_demand_pflops": "x3"})}))
    (s,) = load_instance(data).scenarios()
    assert s.id == "x/y" and series(s.instance.regions["eu"].inference_demand_pflops) == [10, 20, 20, 60, 60]


def test_a_tree_of_one_branch_per_stage_is_the_base_instance():
    (s,) = load_instance(tree((2028, {"only": (1, None)}))).scenarios()
    assert s.instance == load_instance(base()) and s.probability == 1


def test_end_of_horizon():
    data = base()
    data["objective"] = {"end_of_horizon": "salvage"}
    assert load_instance(data).objective.end_of_horizon == "salvage"
    data["objective"] = {"end_of_horizon": "keep"}
    assert problems_of(data) == ["objective.end_of_horizon: must be one of truncate, salvage, got 'keep'"]


def test_with_changes_keeps_the_tree():
    inst = load_instance(two({"budget.total_usd": "x2"}))
    cheaper = inst.with_changes({"budget.total_usd": 5e8})
    assert [s.instance.budget.total_usd for s in cheaper.scenarios()] == [1e9, 5e8]
    assert cheaper.uncertainty == inst.uncertainty
    with pytest.raises(InstanceError, match="chips.g3.power_w: must be > 0"):
        inst.with_changes({"chips.g3.power_w": -1})


def test_a_copy_rebuilds_its_scenarios():
    inst = load_instance(two({"budget.total_usd": "x2"}))
    back = copy.copy(inst)
    back.__dict__.pop("_scenario_tree", None)
    assert back == inst and [s.instance for s in back.scenarios()] == [s.instance for s in inst.scenarios()]


def test_a_thousand_scenarios_load_in_reasonable_time():
    ten = {f"b{i}": (0.1, {"regions.*.inference_demand_pflops": f"x{1 + i / 10}"}) for i in range(10)}
    data = tree((2027, ten), (2028, ten), (2029, ten))
    t0 = time.perf_counter()
    inst = load_instance(data)
    assert len(inst.scenarios()) == 1000
    assert time.perf_counter() - t0 < 60  # about 2 s on one core; a loose bound for loaded machines
    s = inst.scenarios()[-1]
    assert s.id == "b9/b9/b9" and s.probability == pytest.approx(1e-3)
    assert series(s.instance.regions["eu"].inference_demand_pflops) == pytest.approx(
        [10, 19, 36.1, 68.59, 68.59])


# ---------------------------------------------------------------- never a traceback

PATHS = [*SERIES_PATHS, "budget.total_usd", "chips.g4.available_from", "chips.g4.utilization", "chips.*.power_w",
         "chips.g4.installed", "regions.*.max_mw", "regions.us", "chips.g3.installed", "objective.kind", "", "*",
         "chips.*", "regions.*.*", "chips.g4.utilization.train.x", 7, None]
VALUES = [None, True, 0, -1, 1.5, 1e300, 10**400, float("nan"), "", "x", "x0", "x-1", "x1e300", "+1y", "-999y",
          "100e9", [], [1], {}, {"start": 1}, {"start": 1, "growth": 5}, {2028: 1, "x": 2}, {"train": "a"},
          [{"region": "us", "year": 2020, "chips": 1}]]


@pytest.mark.parametrize("seed", range(40))
def test_random_trees_load_or_name_their_problems(seed):
    import random

    rng = random.Random(seed)
    stages = []
    for year in sorted(rng.sample(range(2025, 2032), rng.randint(1, 3))):
        branches = {}
        for b in range(rng.randint(1, 3)):
            changes = {rng.choice(PATHS): copy.deepcopy(rng.choice(VALUES)) for _ in range(rng.randint(0, 3))}
            branches[f"b{b}"] = (rng.choice([0.5, 1, 0.25, "x"]), changes)
        stages.append((year, branches))
    try:
        inst = load_instance(tree(*stages))
    except InstanceError as exc:
        assert exc.problems and all(isinstance(p.path, str) and p.message for p in exc.problems)
        assert all(p.path.startswith("uncertainty") for p in exc.problems), exc
        str(exc)
    else:
        assert all(s.instance.uncertainty is None for s in inst.scenarios())
