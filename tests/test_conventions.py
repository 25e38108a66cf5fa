"""The conventions of issue 21 in isolation: one style for quantities, text laid out for a width, checked
option values, the --out rule, and what a summary says about the objective and unmet demand."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import yaml
from conftest import ROOT, solved_file

from optimizer.cli.conventions import (
    COUNT,
    GAP,
    SECONDS,
    SLACK,
    STEP,
    CommandError,
    Exit,
    formats_of,
    instance_files,
    output_dir,
)
from optimizer.report.text import (
    objective_lines,
    objective_parts,
    render_pairs,
    render_table,
    unmet_demand_lines,
)
from optimizer.report.units import count_scale, fmt_number, fmt_usd, money_scale, power_scale, tick_text

INSTANCES = ROOT / "instances"


# ------------------------------------------------------------------ quantities


@pytest.mark.parametrize(("value", "text"), [
    (54760, "$54,760"), (999_999, "$999,999"), (1e6, "$1.00M"), (19.1e9, "$19.10B"), (100e9, "$100.00B"),
    (2.5e12, "$2.50T"), (-2.5e9, "-$2.50B"), (0, "$0"), (float("nan"), "-"), (None, "-")])
def test_one_money_style(value, text):
    assert fmt_usd(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (1_697_448.8, "1,697,449"), (-6.294e6, "-6,294,000"), (100, "100"), (12.34, "12.3"), (0.774, "0.774"),
    (2.5e-5, "2.500e-05"), (3e16, "3.000e+16"), (0, "0"), (float("nan"), "-")])
def test_numbers_have_separators_and_no_exponent_in_the_usual_range(value, text):
    assert fmt_number(value) == text


def test_signed_numbers():
    assert fmt_number(8, signed=True) == "+8" and fmt_number(-85_300, signed=True) == "-85,300"
    assert fmt_number(0, signed=True) == "+0"


@pytest.mark.parametrize(("top", "label", "divisor"), [
    (4, "", 1), (999, "", 1), (1_000, "thousands", 1e3), (388_368, "thousands", 1e3), (1.9e6, "millions", 1e6)])
def test_count_scale_is_chosen_from_the_data(top, label, divisor):
    s = count_scale(top)
    assert (s.label, s.divisor) == (label, divisor)
    assert s.integer == (divisor == 1)  # single chips: whole ticks only


@pytest.mark.parametrize(("top", "label"), [
    (54_760, "$ thousands"), (999, "USD"), (19.1e9, "$B"), (450e6, "$M"), (1.2e12, "$T")])
def test_money_scale_is_chosen_from_the_data(top, label):
    assert money_scale(top).label == label


def test_power_scale_switches_to_gw_at_ten_gw():
    assert power_scale(5_000).label == "MW" and power_scale(12_000).label == "GW"


def test_tick_text_writes_each_tick_exactly_and_differently():
    assert tick_text([0, 2.5e9, 5e9, 7.5e9], money_scale(7e9)) == ["0.0", "2.5", "5.0", "7.5"]
    assert tick_text([0, 5e9, 1e10], money_scale(1e10)) == ["0", "5", "10"]
    assert tick_text([0, 1_000, 2_000], count_scale(4_000, "PFLOP/s")) == ["0", "1", "2"]
    assert tick_text([0, 0.001, 0.002], count_scale(0.002, "PFLOP/s")) == ["0.000", "0.001", "0.002"]
    assert tick_text([-200e3, 0, 200e3], count_scale(300e3)) == ["-200", "0", "200"]


# ------------------------------------------------------------------ layout


def _wide() -> pd.DataFrame:
    return pd.DataFrame({"year": [2026, 2027], **{f"trn{i}@region-{i}": [123_456.0 * i, 0.0] for i in range(1, 9)}})


def test_a_table_too_wide_is_split_into_blocks_never_cut():
    df = _wide()
    text = render_table(df, "Chips bought", width=80)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80
    assert "…" not in text
    assert "Chips bought (continued)" in text
    for col in df.columns[1:]:
        assert sum(line.split().count(col) for line in lines) == 1  # every header once
    assert "987,648" in text  # trn8's number whole
    assert text.count("2026") == text.count("(continued)") + 1  # the key column repeated in each block


def test_a_table_that_fits_is_one_block_and_aligned():
    df = pd.DataFrame({"year": [2026, 2035], "region": ["us-east", "ap-northeast"], "unmet": [0.0, 215_398.4]})
    text = render_table(df, "t", headers={"unmet": "unmet PFLOP/s"})
    lines = text.splitlines()
    assert lines[1].split() == ["year", "region", "unmet", "PFLOP/s"] and set(lines[2]) == {"─"}
    assert lines[3].endswith("0") and lines[4].endswith("215,398")
    assert len(lines[3]) == len(lines[4])  # numbers right-aligned
    assert lines[4].startswith("2035  ap-northeast")


def test_two_line_headers_are_bottom_aligned():
    df = pd.DataFrame({"year": [2026], "trn3@us-east": [9_360.0]})
    lines = render_table(df, headers={"trn3@us-east": "trn3\nus-east"}).splitlines()
    assert lines[0].split() == ["trn3"] and lines[1].split() == ["year", "us-east"]


def test_pairs_wrap_under_their_value():
    text = render_pairs([("status", "optimal: " + "word " * 40), ("mip gap", "0.0099%")], width=60)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 60
    assert lines[1].startswith(" " * len("mip gap  ")) and lines[-1] == "mip gap  0.0099%"


# ------------------------------------------------------------------ option values


@pytest.mark.parametrize(("kind", "value", "expected"), [
    (GAP, "0", 0.0), (GAP, "1e-4", 1e-4), (GAP, "0.999", 0.999), (SECONDS, "0.5", 0.5), (COUNT, "3", 3),
    (SLACK, "0", 0.0), (STEP, "-200", -200.0), (GAP, None, None)])
def test_option_values_in_range_are_parsed(kind, value, expected):
    assert kind.parse(value) == expected


@pytest.mark.parametrize(("kind", "value"), [
    (GAP, "2"), (GAP, "1"), (GAP, "-1"), (GAP, "abc"), (GAP, "nan"), (SECONDS, "-1"), (SECONDS, "0"),
    (SECONDS, "inf"), (COUNT, "0"), (COUNT, "1.5"), (COUNT, "two"), (SLACK, "-1"), (STEP, "0")])
def test_option_values_out_of_range_say_the_rule_and_the_value(kind, value):
    import typer

    with pytest.raises(typer.BadParameter) as info:
        kind.parse(value)
    assert f"must be {kind.rule}" in str(info.value.message) and str(value) in str(info.value.message)


def test_formats_are_checked():
    assert formats_of("csv, XLSX,csv") == ["csv", "xlsx"]
    with pytest.raises(CommandError, match="unknown formats docx, pdf") as info:
        formats_of("csv,docx,pdf")
    assert info.value.exit_code == Exit.USAGE


# ------------------------------------------------------------------ the --out rule


def test_output_dir_new_empty_or_forced(tmp_path):
    assert output_dir(tmp_path / "new" / "deep").is_dir()  # created, parents too
    assert output_dir(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"  # empty: fine
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "summary.json").write_text("{}")
    with pytest.raises(CommandError, match="not empty") as info:
        output_dir(tmp_path / "full")
    assert info.value.exit_code == Exit.USAGE and "--force" in info.value.hints[0]
    assert output_dir(tmp_path / "full", force=True) == tmp_path / "full"
    assert (tmp_path / "full" / "summary.json").exists()  # --force replaces only what is written, later
    assert output_dir(tmp_path / "full", own=("summary.json",)) == tmp_path / "full"  # a sweep's own store


def test_output_dir_that_is_a_file_is_a_usage_error_even_with_force(tmp_path):
    f = tmp_path / "existing.txt"
    f.write_text("keep me")
    for force in (False, True):
        with pytest.raises(CommandError, match="is a file") as info:
            output_dir(f, force=force)
        assert info.value.exit_code == Exit.USAGE
    assert f.read_text() == "keep me"


def test_instance_files_expands_directories(tmp_path):
    (tmp_path / "a.yaml").write_text("x: 1")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text("x: 1")
    (tmp_path / "notes.txt").write_text("")
    assert instance_files([tmp_path]) == [tmp_path / "a.yaml", tmp_path / "sub" / "b.yml"]
    assert instance_files([tmp_path / "notes.txt"]) == [tmp_path / "notes.txt"]  # a file as given
    (tmp_path / "empty").mkdir()
    with pytest.raises(CommandError, match="no .yaml or .yml files"):
        instance_files([tmp_path / "empty"])


# ------------------------------------------------------------------ the objective and unmet demand


@pytest.mark.parametrize("name", ["tiny-min-cost", "tiny-unmet-penalty", "tiny-salvage-max-training",
                                  "tiny-salvage-min-cost", "tiny-discount-rate", "aws-5gw-2026"])
def test_objective_parts_recomputed_from_the_tables_add_up_to_the_objective(name):
    plan = solved_file(str(INSTANCES / f"{name}.yaml"))
    parts = objective_parts(plan)
    assert parts["total"] == pytest.approx(plan.objective, rel=1e-9, abs=1e-9)


def test_objective_sentence_of_the_unmet_penalty_instance():
    """tiny-unmet-penalty.yaml by hand: 16 training - 1.5 x 2 unmet = 13."""
    plan = solved_file(str(INSTANCES / "tiny-unmet-penalty.yaml"))
    p = objective_parts(plan)
    assert (p["training"], p["unmet"], p["penalty"]) == pytest.approx((16, 2, 3))
    text = objective_lines(plan)
    assert text.startswith("training 16 - unmet-demand penalty 3 (1.5 x 2 unmet)")
    assert "PFLOP/s-years" in text and "every year counts the same" in text


def test_objective_sentence_of_min_cost_with_resale():
    plan = solved_file(str(INSTANCES / "tiny-salvage-min-cost.yaml"))
    assert objective_lines(plan).startswith("spend $120 - resale value $40, all discounted: year t weighted by 1/2^")


def test_unmet_demand_warning_of_the_unmet_penalty_instance():
    plan = solved_file(str(INSTANCES / "tiny-unmet-penalty.yaml"))
    head, *causes = unmet_demand_lines(plan)
    assert head.startswith("warning: inference demand goes unmet in 1 of 1 years: 2 PFLOP/s in 2026 (33.3% of "
                           "demand)")
    assert "objective.unmet_penalty" in head
    assert not any("end of the horizon" in c for c in causes)  # a one-year horizon has no end effect


def test_unmet_demand_warning_of_an_unproven_plan_says_so():
    from dataclasses import replace

    from optimizer.solver import SolveStatus

    plan = solved_file(str(INSTANCES / "tiny-unmet-penalty.yaml"))
    stopped = replace(plan, result=replace(plan.result, status=SolveStatus.FEASIBLE, mip_gap=0.5))
    head = unmet_demand_lines(stopped)[0]
    assert head.endswith("This plan is not proven optimal (gap 50.00%): a longer --time-limit may find one that "
                         "serves more of it.")
    assert "not proven" not in unmet_demand_lines(plan)[0]


def test_no_warning_when_demand_is_served():
    assert unmet_demand_lines(solved_file(str(INSTANCES / "tiny-min-cost.yaml"))) == []


def test_unmet_demand_warning_of_the_default_plan(default_plan):
    """The default plan leaves demand unmet in 2027 (the ceiling binds) and 2034-2035 (the end of the horizon)."""
    comp = default_plan.compute.groupby("year").unmet_pflops.sum()
    years = [int(t) for t in comp.index if comp[t] > 1]
    head, title, *causes = unmet_demand_lines(default_plan)
    assert f"in {len(years)} of 10 years" in head
    for t in years:
        assert f"PFLOP/s in {t} (" in head
    assert f"{fmt_number(comp[2035])} PFLOP/s in 2035" in head
    assert title == "Likely causes:"
    text = "\n".join(causes)
    assert "2027: the power ceiling is reached (power.ceiling_mw)" in text
    assert "2034-2035: the end of the horizon" in text and "end_of_horizon: salvage" in text
    assert "every year: the total budget is spent ($100.00B of $100.00B" in text


def test_unmet_causes_annual_budget_and_supply():
    """tiny-unmet-penalty.yaml with room to build and a $500 annual cap: five chips, two of them b (its whole
    supply) serving 4 of the 6 PFLOP/s; the warning names both limits by their keys."""
    from optimizer import load_instance, solve

    data = yaml.safe_load((INSTANCES / "tiny-unmet-penalty.yaml").read_text())
    data["regions"]["r"].update(existing_mw=100, max_mw=100)
    data["budget"] = {"annual_max_usd": 500}
    plan = solve(load_instance(data))
    assert plan.purchases.units.sum() == 5
    head, title, cause = unmet_demand_lines(plan)
    assert "2 PFLOP/s in 2026" in head and title == "Likely cause:"
    assert cause == ("  - 2026: the annual budget is spent (budget.annual_max_usd); b's supply is bought out "
                     "(chips.b.supply_units)")


def test_stochastic_plans_are_described_without_per_year_amounts():
    plan = solved_file(str(INSTANCES / "tiny-tree-hedge.yaml"))
    assert objective_parts(plan) == {}
    assert objective_lines(plan).startswith("the expectation over the scenarios of: training")
    assert math.isfinite(plan.objective)
