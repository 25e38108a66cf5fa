"""Loading and validation (spec section 1): one test per rule, each asserting the key path."""

from __future__ import annotations

import copy
import textwrap

import pytest

from optimizer import Instance, InstanceError, load_instance


def base() -> dict:
    """A small valid instance as a mapping; tests mutate a copy."""
    return {
        "name": "base",
        "horizon": {"start": 2026, "end": 2030},
        "budget": {"total_usd": 1e9},
        "power": {"ceiling_mw": 500},
        "regions": {
            "us": {"pue": 1.1, "electricity_usd_per_mwh": 80, "block_mw": 100,
                   "block_capex_usd": 1e8, "build_lead_years": 1, "existing_mw": 50,
                   "inference_demand_pflops": 100},
            "eu": {"pue": 1.2, "electricity_usd_per_mwh": 150, "block_mw": 50,
                   "block_capex_usd": 6e7, "build_lead_years": 2},
        },
        "chips": {
            "trn3": {"price_usd": 20000, "power_w": 1200, "peak_pflops": 0.671,
                     "utilization": {"train": 0.4, "infer": 0.3}, "lifetime_years": 5,
                     "chips_per_unit": 64,
                     "installed": [{"region": "us", "year": 2025, "chips": 1000}]},
        },
        "serving": {"eu": {"eu": 1.0, "us": 0.8}},
    }


def problems_of(data) -> list[str]:
    with pytest.raises(InstanceError) as info:
        load_instance(data)
    return [str(p) for p in info.value.problems]


def mutate(path: str, value, data=None) -> dict:
    """Set (or delete with value=DELETE) the value at a dotted path of a copy of base()."""
    data = copy.deepcopy(data or base())
    *parents, last = path.split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


DELETE = object()


def test_base_is_valid():
    inst = load_instance(base())
    assert inst.years == (2026, 2027, 2028, 2029, 2030)
    assert inst.sources("eu") == {"eu": 1.0, "us": 0.8}
    assert inst.sources("us") == {"us": 1.0}  # unlisted demand region serves itself
    assert inst.chips["trn3"].available_from == 2026  # default horizon.start
    assert inst.chips["trn3"].available_until == 2030  # default horizon.end
    assert inst.objective.kind == "max_training" and inst.objective.unmet_penalty is None
    assert inst.regions["eu"].existing_mw == 0 and inst.regions["eu"].max_mw is None


# ---------------------------------------------------------------- one test per rule


@pytest.mark.parametrize("path, value, expect", [
    # unknown key (with a suggestion)
    ("chips.trn3.power_watts", 5, "chips.trn3.power_watts: unknown key; did you mean 'power_w'?"),
    ("regions.us.colour", "red", "regions.us.colour: unknown key"),
    ("budgett", 1, "budgett: unknown key; did you mean 'budget'?"),
    # wrong type
    ("chips.trn3.power_w", "lots", "chips.trn3.power_w: must be a number, got the text 'lots'"),
    ("chips.trn3.power_w", True, "chips.trn3.power_w: must be a number"),
    ("regions.us.pue", [1.1], "regions.us.pue: must be a number"),
    ("regions", [1, 2], "regions: must be a non-empty mapping"),
    ("chips.trn3.utilization", 0.4, "chips.trn3.utilization: must be a mapping"),
    ("name", 42, "name: must be a non-empty string"),
    # out of range
    ("chips.trn3.power_w", -5, "chips.trn3.power_w: must be > 0, got -5"),
    ("chips.trn3.price_usd", 0, "chips.trn3.price_usd: must be > 0, got 0"),
    ("chips.trn3.peak_pflops", 0, "chips.trn3.peak_pflops: must be > 0"),
    ("chips.trn3.lifetime_years", 0, "chips.trn3.lifetime_years: must be >= 1, got 0"),
    ("chips.trn3.lifetime_years", 2.5, "chips.trn3.lifetime_years: must be an integer, got 2.5"),
    ("chips.trn3.chips_per_unit", 0, "chips.trn3.chips_per_unit: must be >= 1"),
    ("chips.trn3.opex_usd_per_chip_year", -1, "chips.trn3.opex_usd_per_chip_year: must be >= 0"),
    ("chips.trn3.supply_units", -3, "chips.trn3.supply_units: must be >= 0"),
    ("regions.us.pue", 0.9, "regions.us.pue: must be >= 1, got 0.9"),
    ("regions.us.block_mw", 0, "regions.us.block_mw: must be > 0, got 0"),
    ("regions.us.build_lead_years", -1, "regions.us.build_lead_years: must be >= 0"),
    ("regions.us.build_lead_years", 1.5, "regions.us.build_lead_years: must be an integer"),
    ("regions.us.existing_mw", -1, "regions.us.existing_mw: must be >= 0"),
    ("regions.us.electricity_usd_per_mwh", -1, "regions.us.electricity_usd_per_mwh: must be >= 0"),
    ("regions.us.max_mw", -1, "regions.us.max_mw: must be >= 0"),
    ("regions.us.inference_demand_pflops", -1, "regions.us.inference_demand_pflops: must be >= 0"),
    ("regions.us.block_capex_usd", -1, "regions.us.block_capex_usd: must be >= 0"),
    ("discount_rate", -0.1, "discount_rate: must be >= 0, got -0.1"),
    ("budget.total_usd", -1, "budget.total_usd: must be >= 0"),
    ("budget.annual_max_usd", -1, "budget.annual_max_usd: must be >= 0"),
    ("power.ceiling_mw", -1, "power.ceiling_mw: must be >= 0"),
    ("training.min_pflops", -1, "training.min_pflops: must be >= 0"),
    ("serving.eu.us", 1.5, "serving.eu.us: must be <= 1, got 1.5"),
    ("serving.eu.us", 0, "serving.eu.us: must be > 0, got 0"),
    ("objective", {"kind": "max_profit"}, "objective.kind: must be one of max_training, min_cost"),
    ("objective", {"unmet_penalty": -1}, "objective.unmet_penalty: must be >= 0"),
    ("objective", {"cost_weight": -1}, "objective.cost_weight: must be >= 0"),
    # not finite
    ("chips.trn3.power_w", float("nan"), "chips.trn3.power_w: must be a finite number"),
    ("chips.trn3.power_w", float("inf"), "chips.trn3.power_w: must be a finite number"),
    ("chips.trn3.power_w", "nan", "chips.trn3.power_w: must be a finite number"),
    # utilization in (0, 1]
    ("chips.trn3.utilization", {"train": 1.2, "infer": 0.3}, "chips.trn3.utilization.train: must be <= 1"),
    ("chips.trn3.utilization", {"train": 0.4, "infer": 0}, "chips.trn3.utilization.infer: must be > 0"),
])
def test_rule_names_the_path(path, value, expect):
    msgs = problems_of(mutate(path, value))
    assert any(m.startswith(expect) for m in msgs), msgs


@pytest.mark.parametrize("path, expect", [
    ("name", "name: required key is missing"),
    ("horizon", "horizon: required key is missing"),
    ("regions", "regions: required key is missing"),
    ("chips", "chips: required key is missing"),
    ("horizon.end", "horizon.end: required key is missing"),
    ("chips.trn3.price_usd", "chips.trn3.price_usd: required key is missing"),
    ("chips.trn3.utilization", "chips.trn3.utilization: required key is missing"),
    ("chips.trn3.lifetime_years", "chips.trn3.lifetime_years: required key is missing"),
    ("regions.us.pue", "regions.us.pue: required key is missing"),
    ("regions.eu.build_lead_years", "regions.eu.build_lead_years: required key is missing"),
])
def test_missing_required_key(path, expect):
    assert expect in problems_of(mutate(path, DELETE))


def test_missing_utilization_field():
    data = mutate("chips.trn3.utilization", {"train": 0.4})
    assert "chips.trn3.utilization.infer: required key is missing" in problems_of(data)


def test_end_before_start():
    data = mutate("horizon", {"start": 2030, "end": 2026})
    assert "horizon.end: must be >= horizon.start (2030), got 2026" in problems_of(data)


def test_unknown_region_in_serving_and_installed():
    data = base()
    data["serving"] = {"asia": {"us": 1.0}, "eu": {"mars": 0.5}}
    data["chips"]["trn3"]["installed"][0]["region"] = "moon"
    msgs = problems_of(data)
    assert any(m.startswith("serving.asia: unknown demand region 'asia' (defined: eu, us)") for m in msgs)
    assert any(m.startswith("serving.eu.mars: unknown source region 'mars'") for m in msgs)
    assert any(m.startswith("chips.trn3.installed[0].region: unknown region 'moon'") for m in msgs)


def test_available_until_before_from():
    data = base()
    data["chips"]["trn3"].update(available_from=2029, available_until=2027)
    assert "chips.trn3.available_until: must be >= available_from (2029), got 2027" in problems_of(data)


def test_series_year_not_integer():
    data = mutate("regions.us.max_mw", {2026: 100, "next year": 200, 2027.5: 300})
    msgs = problems_of(data)
    assert any(m.startswith("regions.us.max_mw.next year: series year must be an integer year") for m in msgs)
    assert any(m.startswith("regions.us.max_mw.2027.5: series year must be an integer year") for m in msgs)


def test_series_growth_form_needs_both_keys():
    msgs = problems_of(mutate("regions.us.inference_demand_pflops", {"start": 10}))
    assert "regions.us.inference_demand_pflops.growth: required key is missing" in msgs
    msgs = problems_of(mutate("regions.us.inference_demand_pflops", {"start": 10, "growth": -1}))
    assert any(m.startswith("regions.us.inference_demand_pflops.growth: must be > -1") for m in msgs)


def test_installed_year_must_precede_horizon():
    data = base()
    data["chips"]["trn3"]["installed"][0]["year"] = 2026
    assert ("chips.trn3.installed[0].year: installed chips must be bought before horizon.start "
            "(2026), got 2026") in problems_of(data)


def test_installed_entry_keys():
    data = base()
    data["chips"]["trn3"]["installed"] = [{"region": "us", "chips": 5, "when": 2024}]
    msgs = problems_of(data)
    assert "chips.trn3.installed[0].year: required key is missing" in msgs
    assert any(m.startswith("chips.trn3.installed[0].when: unknown key") for m in msgs)


def test_all_problems_reported_at_once():
    data = base()
    data["chips"]["trn3"]["power_w"] = -5
    data["regions"]["us"]["pue"] = 0.5
    data["discount_rate"] = "abc"
    del data["regions"]["eu"]["block_mw"]
    msgs = problems_of(data)
    assert len(msgs) == 4, msgs


def test_numeric_strings_accepted():
    data = mutate("budget.total_usd", "100e9")
    data["chips"]["trn3"]["power_w"] = " 1.2e3 "
    inst = load_instance(data)
    assert inst.budget.total_usd == 100e9 and inst.chips["trn3"].power_w == 1200.0


def test_min_cost_rejects_cost_weight():
    data = mutate("objective", {"kind": "min_cost", "cost_weight": 0.1})
    assert any(m.startswith("objective.cost_weight: applies to kind max_training only") for m in problems_of(data))


# ---------------------------------------------------------------- series forms


def test_series_forms_resolve():
    data = base()
    data["regions"]["us"]["max_mw"] = {2027: 100, 2029: 300}
    data["regions"]["us"]["inference_demand_pflops"] = {"start": 100, "growth": 0.5}
    data["chips"]["trn3"]["price_usd"] = 20000
    inst = load_instance(data)
    mx = inst.regions["us"].max_mw
    # flat before the first listed year, linear between, flat after the last
    assert [mx[t] for t in inst.years] == [100, 100, 200, 300, 300]
    dem = inst.regions["us"].inference_demand_pflops
    assert [dem[t] for t in inst.years] == pytest.approx([100, 150, 225, 337.5, 506.25])
    assert set(inst.chips["trn3"].price_usd.values()) == {20000.0}


def test_instance_is_immutable():
    inst = load_instance(base())
    with pytest.raises(AttributeError):
        inst.name = "x"
    with pytest.raises(AttributeError):
        inst.regions["us"].max_mw = {}  # frozen dataclass
    with pytest.raises(TypeError):
        inst.regions["new"] = None


# ---------------------------------------------------------------- YAML files


def write(tmp_path, text: str, name="inst.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_yaml_syntax_error_gives_line(tmp_path):
    p = write(tmp_path, """\
        name: x
        horizon: {start: 2026, end: 2030
        regions: {}
        """)
    with pytest.raises(InstanceError) as info:
        load_instance(p)
    msg = str(info.value)
    assert str(p) in msg and "line 3" in msg and "not valid YAML" in msg


def test_yaml_not_a_mapping(tmp_path):
    p = write(tmp_path, "- a\n- b\n")
    with pytest.raises(InstanceError, match="line 1: the file must be a YAML mapping"):
        load_instance(p)


def test_yaml_duplicate_key_is_an_error(tmp_path):
    p = write(tmp_path, "name: a\nname: b\n")
    with pytest.raises(InstanceError, match="line 2.*duplicate key 'name'"):
        load_instance(p)


def test_yaml_unsafe_tag_rejected(tmp_path):
    p = write(tmp_path, "name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(InstanceError, match="not valid YAML"):
        load_instance(p)


def test_missing_file(tmp_path):
    with pytest.raises(InstanceError, match="cannot read file"):
        load_instance(tmp_path / "nope.yaml")


def test_not_utf8(tmp_path):
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(InstanceError, match="line 1: file is not valid UTF-8"):
        load_instance(p)


def test_error_message_names_file(tmp_path):
    p = write(tmp_path, """\
        name: x
        horizon: {start: 2026, end: 2027}
        regions:
          us: {pue: 1, electricity_usd_per_mwh: 0, block_mw: 1, block_capex_usd: 1, build_lead_years: 0}
        chips:
          trn3: {price_usd: 1, power_w: -5, peak_pflops: 1, utilization: {train: 1, infer: 1}, lifetime_years: 1}
        """)
    with pytest.raises(InstanceError) as info:
        load_instance(p)
    assert str(info.value) == f"{p}: 1 problem\n  - chips.trn3.power_w: must be > 0, got -5"


# ---------------------------------------------------------------- with_changes


def test_with_changes_round_trip():
    inst = load_instance(base())
    changed = inst.with_changes({"budget.total_usd": 80e9, "regions.eu.max_mw": 900})
    assert changed.budget.total_usd == 80e9
    assert set(changed.regions["eu"].max_mw.values()) == {900.0}
    assert inst.budget.total_usd == 1e9 and inst.regions["eu"].max_mw is None  # original untouched
    back = changed.with_changes({"budget.total_usd": 1e9, "regions.eu.max_mw": None})
    assert back == inst and back.hash == inst.hash
    assert changed.hash != inst.hash


def test_with_changes_creates_sections_and_series():
    inst = load_instance(base())
    changed = inst.with_changes({"training.min_pflops": {2028: 10, 2030: 30},
                                 "objective.unmet_penalty": 5})
    assert [changed.training.min_pflops[t] for t in changed.years] == [10, 10, 10, 20, 30]
    assert changed.objective.unmet_penalty == 5.0


def test_with_changes_revalidates():
    inst = load_instance(base())
    with pytest.raises(InstanceError) as info:
        inst.with_changes({"chips.trn3.power_w": -5, "regions.us.pue": 0})
    assert info.value.paths == ["regions.us.pue", "chips.trn3.power_w"]


def test_with_changes_bad_path():
    inst = load_instance(base())
    with pytest.raises(InstanceError, match="budget.total_usd.x: 'total_usd' is a value"):
        inst.with_changes({"budget.total_usd.x": 1})


def test_hash_is_stable():
    assert load_instance(base()).hash == load_instance(base()).hash
    assert isinstance(load_instance(base()), Instance)
