"""The README is true: its set-up commands, the files it names, and the "writing your own instance" walk-through
(each step validates and solves as the text says)."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from conftest import ROOT

from optimizer import load_instance, solve

README = (ROOT / "README.md").read_text()


def test_the_two_setup_commands_stay():
    assert "python3 -m pip install -e . && capplan solve instances/aws-5gw-2026.yaml" in README
    assert "python3 -m pip install -e '.[test]' && python3 -m pytest -q" in README


def test_every_file_the_readme_names_exists():
    named = set(re.findall(r"(?<![\w/.-])((?:instances|tests/instances|docs|schema|benchmarks)/[\w./-]+\.\w+)",
                           README))
    assert named, "the pattern finds the README's paths"
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, missing
    assert "shared/spec" not in README and "variant.yaml" not in README
    assert "docs/model.md" in README


def _merge(base: dict, more: dict) -> dict:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def walkthrough() -> list[dict]:
    """The instance after each step of the walk-through: step 1 is a file, later steps merge into it."""
    section = README[README.index("## Writing your own instance"):README.index("## Conventions")]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) == 4 and blocks[0].startswith("# my-plan.yaml, step 1")
    data = yaml.safe_load(blocks[0])
    steps = [copy.deepcopy(data)]
    for block in blocks[1:]:
        data = _merge(data, yaml.safe_load(block))
        steps.append(copy.deepcopy(data))
    return steps


@pytest.fixture(scope="module")
def plans():
    return [solve(load_instance(step)) for step in walkthrough()]


def test_each_step_of_the_walkthrough_is_a_valid_instance_with_an_optimal_plan(plans):
    assert [p.status.value for p in plans] == ["optimal"] * 4
    assert [len(p.instance.regions) for p in plans] == [1, 2, 2, 2]
    assert [len(p.instance.chips) for p in plans] == [1, 1, 2, 2]
    assert plans[3].stochastic and len(plans[3].scenarios) == 2


def test_the_walkthrough_plans_are_as_the_readme_says(plans):
    one, two, three, four = plans
    bought = one.purchases.groupby("year").chips.sum()
    assert bought[2026] == 8333 and bought[2027] == 9564  # 10 MW / 1.2 kW per chip, then the budget
    assert one.facilities.set_index("year").blocks_started[2026] == 3
    blocks = two.facilities.set_index(["region", "year"]).blocks_started
    assert blocks["eu", 2026] == 1
    served = two.serving[(two.serving.year == 2026) & (two.serving.demand_region == "eu")]
    assert set(served.source) == {"home"}
    g2 = three.purchases[three.purchases.chip == "g2"]
    assert g2.chips.sum() == 400 and set(g2.year) == {2027}
    c = four.commitments
    assert c[c["item"] == "blocks"].quantity.sum() == 3 and c[c["item"] == "g1"].chips.sum() == 8333
