"""The published JSON Schema: generated from the models, committed, current, and true to the shipped instances
(checked with the independent ``jsonschema`` package)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from optimizer.cli import app
from optimizer.instance.schema import SCHEMA_PATH, instance_schema, schema_text

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / SCHEMA_PATH
SHIPPED = sorted((ROOT / "instances").glob("*.yaml"))
EDITOR_LINE = "# yaml-language-server: $schema=../schema/instance.schema.json"


def as_json(data):
    """What an editor validates: the YAML document as JSON (mapping keys such as years become text)."""
    return json.loads(json.dumps(data, default=str))


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(COMMITTED.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_current():
    assert COMMITTED.read_text() == schema_text(), (
        f"{SCHEMA_PATH} is out of date with the models in optimizer/instance/; regenerate it with "
        f"`capplan schema > {SCHEMA_PATH}` (or `python -m optimizer schema > {SCHEMA_PATH}`) and commit it")


def test_schema_command_prints_it():
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0 and result.stdout == schema_text()
    assert json.loads(result.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_instance_validates_against_the_schema(validator, path):
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(as_json(yaml.safe_load(path.read_text())))]
    assert not errors, errors


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_instance_names_the_schema_for_editors(path):
    assert path.read_text().splitlines()[0] == EDITOR_LINE


def _tiny() -> dict:
    return {"name": "t", "horizon": {"start": 2026, "end": 2027},
            "regions": {"r": {"pue": 1.1, "electricity_usd_per_mwh": {2026: "80", 2027: 90}, "block_mw": 1,
                              "block_capex_usd": {"start": "1e8", "growth": 0.03}, "build_lead_years": 0}},
            "chips": {"g": {"price_usd": "2e4", "power_w": 1e3, "peak_pflops": 1, "lifetime_years": 5,
                            "utilization": {"train": 0.4, "infer": 0.3}}},
            "uncertainty": {"stages": [{"year": 2027, "branches": {
                "hi": {"probability": 0.5, "changes": {"regions.*.block_capex_usd": "x1.2"}},
                "lo": {"probability": 0.5}}}]}}


def test_numbers_may_be_yaml_numbers_or_numeric_strings(validator):
    data = _tiny()
    data["budget"] = {"total_usd": "100e9"}
    assert not list(validator.iter_errors(as_json(data)))


@pytest.mark.parametrize("path, value", [
    ("chips.g.power_watts", 5),  # unknown key
    ("chips.g.power_w", -5),  # out of range
    ("chips.g.power_w", "lots"),  # not a number
    ("chips.g.utilization.train", 1.5),
    ("chips.g.lifetime_years", 2.5),  # not an integer
    ("regions.r.max_mw", {"2028x": 5}),  # not a year
    ("regions.r.max_mw", {"start": 5}),  # growth form without its rate
    ("objective", {"kind": "max_profit"}),
    ("horizon.end", 3000),
    ("uncertainty.risk", {"cvar_alpha": 1}),
])
def test_the_schema_flags_what_editors_should(validator, path, value):
    data = _tiny()
    *parents, last = path.split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    assert list(validator.iter_errors(as_json(data)))


def test_keys_are_documented_with_unit_and_symbol():
    defs = instance_schema()["$defs"]
    assert defs["Region"]["properties"]["existing_mw"]["description"] == (
        "Facility MW online before the horizon (M0_r). Default 0.")
    assert "W (w_g)" in defs["Chip"]["properties"]["power_w"]["description"]
    for name, model in defs.items():
        for key, prop in model.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{key} has no description"
