"""The command line through its real entry point (subprocess) and typer's runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import DEFAULT, tiny
from typer.testing import CliRunner

from optimizer.cli import Exit, app

ENV = {**os.environ, "COLUMNS": "200"}


def capplan(*args, check=None):
    proc = subprocess.run([sys.executable, "-m", "optimizer", *map(str, args)], capture_output=True,
                          text=True, env=ENV, timeout=300)
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def plan_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("plan")
    proc = capplan("solve", DEFAULT, "--out", d, "--format", "csv,xlsx,json,parquet", check=0)
    return d, proc


def test_solve_prints_plan(plan_dir):
    _, proc = plan_dir
    out = proc.stdout
    assert "status" in out and "optimal" in out and "objective" in out
    assert "By year" in out and "Chips bought" in out
    assert "\x1b[" not in out  # piped output has no colour codes
    assert proc.stderr == ""  # no progress line when not on a terminal


def test_solve_out_files_and_columns(plan_dir):
    d, _ = plan_dir
    for name in ("purchases", "fleet", "facilities", "compute", "serving", "spend", "split", "summary"):
        for ext in ("csv", "parquet"):
            assert (d / f"{name}.{ext}").is_file()
    assert list(pd.read_csv(d / "purchases.csv").columns) == ["year", "region", "chip", "units", "chips",
                                                              "capex_usd"]
    assert list(pd.read_parquet(d / "spend.parquet").columns)[:2] == ["year", "chip_capex_usd"]
    assert pd.ExcelFile(d / "plan.xlsx").sheet_names[0] == "purchases"
    assert json.loads((d / "summary.json").read_text())["status"] == "optimal"
    assert "sha256:" in (d / "instance.yaml").read_text()


def test_solve_json_parses():
    proc = capplan("solve", DEFAULT, "--json", check=0)
    doc = json.loads(proc.stdout)
    assert doc["status"] == "optimal" and set(doc["tables"]) >= {"purchases", "split", "spend"}


def test_solve_quiet():
    proc = capplan("solve", DEFAULT, "--quiet", check=0)
    assert proc.stdout.startswith("optimal objective")


def test_invalid_file_exit_code_and_no_traceback(tmp_path):
    bad = write_yaml(tmp_path / "bad.yaml", tiny(chips__g__power_w=-5, regions__r__pue=0.5))
    proc = capplan("solve", bad, check=Exit.INVALID)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "chips.g.power_w: must be > 0, got -5" in proc.stderr
    assert "regions.r.pue: must be >= 1, got 0.5" in proc.stderr
    assert "2 problems" in proc.stderr


def test_yaml_syntax_error_exit(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: x\nhorizon: [2026\n")
    proc = capplan("solve", bad, check=Exit.INVALID)
    assert "line 3" in proc.stderr and "Traceback" not in proc.stderr


def test_infeasible_exit_code(tmp_path):
    f = write_yaml(tmp_path / "inf.yaml", tiny(regions__r__inference_demand_pflops=1e6))
    proc = capplan("solve", f, check=Exit.INFEASIBLE)
    assert "infeasible" in proc.stdout


def test_unbounded_exit_code(tmp_path):
    f = write_yaml(tmp_path / "unb.yaml", tiny(budget=None))
    capplan("solve", f, check=Exit.UNBOUNDED)


def test_time_limit_exit_codes(tmp_path):
    from optimizer.instance.generate import generate_instance

    f = write_yaml(tmp_path / "big.yaml", generate_instance(30, 10, 15))
    proc = capplan("solve", f, "--time-limit", "0.01", check=Exit.NO_SOLUTION)
    assert "no_solution" in proc.stdout
    proc = capplan("solve", f, "--time-limit", "4", "--gap", "0")
    assert proc.returncode in (Exit.FEASIBLE, Exit.NO_SOLUTION), proc.stdout
    if proc.returncode == Exit.FEASIBLE:
        assert "not proven optimal" in proc.stdout


def test_usage_error_exit_code():
    proc = capplan("solve", DEFAULT, "--format", "docx")
    assert proc.returncode == Exit.USAGE and "unknown format" in proc.stderr
    assert capplan("solve", "--no-such-option").returncode == Exit.USAGE


def test_validate(tmp_path):
    good = write_yaml(tmp_path / "good.yaml", tiny())
    bad = write_yaml(tmp_path / "bad.yaml", tiny(chips__g__lifetime_years=0))
    proc = capplan("validate", good, DEFAULT, check=0)
    assert proc.stdout.count("valid ") == 2
    proc = capplan("validate", good, bad, check=Exit.INVALID)
    assert "chips.g.lifetime_years: must be >= 1, got 0" in proc.stderr


def test_help_lists_exit_codes():
    proc = capplan("--help", check=0)
    assert "Exit codes" in proc.stdout
    for cmd in ("solve", "validate", "plot", "compare"):
        assert cmd in proc.stdout
        assert capplan(cmd, "--help").returncode == 0


def test_compare(plan_dir, tmp_path):
    d, _ = plan_dir
    data = yaml.safe_load(DEFAULT.read_text())
    data["budget"]["total_usd"] = 110e9
    variant = write_yaml(tmp_path / "variant.yaml", data)
    proc = capplan("compare", d, variant, "--json", check=0)
    doc = json.loads(proc.stdout)
    head = {r["metric"]: r for r in doc["headline"]}
    assert head["total_spend_usd"]["change"] == pytest.approx(10e9, rel=1e-3)
    assert head["objective"]["change"] > 0  # more money, more training
    assert doc["purchases"]  # some purchases changed
    proc = capplan("compare", d, variant, check=0)
    assert "headline" in proc.stdout and "spend" in proc.stdout


def test_internal_error_has_no_traceback_unless_debug(monkeypatch):
    import optimizer.pipeline as solve_mod

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(solve_mod, "solve", boom)
    monkeypatch.setattr(sys, "argv", ["capplan", "solve", str(DEFAULT)])
    from optimizer.cli import main

    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == Exit.INTERNAL
    monkeypatch.setattr(sys, "argv", ["capplan", "--debug", "solve", str(DEFAULT)])
    with pytest.raises(RuntimeError, match="kaboom"):
        main()


def test_runner_solve_exit_code():
    result = CliRunner().invoke(app, ["solve", str(DEFAULT), "--quiet"])
    assert result.exit_code == 0, result.output
