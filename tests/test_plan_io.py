"""Plan tables: columns, writers in every format, atomic writes, and read-back."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from plan_checker import check_plan

from optimizer.plan import COLUMNS, TABLES, atomic_write, read_plan


def test_tables_have_spec_columns(default_plan):
    for name in TABLES:
        df = getattr(default_plan, name)
        assert list(df.columns) == COLUMNS[name], name
    years = list(default_plan.instance.years)
    assert default_plan.spend.year.tolist() == years
    assert len(default_plan.facilities) == len(years) * len(default_plan.instance.regions)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json", "xlsx"])
def test_write_and_read_back(default_plan, tmp_path, fmt):
    paths = default_plan.write(tmp_path, formats=[fmt])
    names = sorted(p.name for p in paths)
    if fmt == "xlsx":
        assert "plan.xlsx" in names
        sheets = pd.ExcelFile(tmp_path / "plan.xlsx").sheet_names
        assert sheets == list(TABLES)
    else:
        expected = [f"{t}.{fmt}" for t in TABLES if not (fmt == "json" and t == "summary")]
        assert set(expected) <= set(names)
    assert {"summary.json", "instance.yaml"} <= set(names)
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]  # no temporary left behind
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "optimal" and summary["instance_hash"] == default_plan.instance.hash
    back = read_plan(tmp_path)
    assert back.instance.hash == default_plan.instance.hash
    assert back.objective == pytest.approx(default_plan.objective, rel=1e-12)
    for name in ("purchases", "facilities", "spend", "split"):
        a, b = getattr(default_plan, name), getattr(back, name)
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                      check_dtype=False, check_exact=False, rtol=1e-9)
    check_plan(back.instance, back)  # the plan read back still checks


def test_unknown_format(default_plan, tmp_path):
    with pytest.raises(ValueError, match="unknown format"):
        default_plan.write(tmp_path, formats=["docx"])


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "t.csv"
    target.write_text("old\n")

    def crash(path):
        with open(path, "w") as f:
            f.write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert target.read_text() == "old\n"  # the previous complete file survives
    assert os.listdir(tmp_path) == ["t.csv"]


def test_read_plan_rejects_other_directories(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a plan directory"):
        read_plan(tmp_path)
