"""Every command held to one convention (issue 21): bad option values, paths and output directories give a
clear ``error:`` naming the option and exit 2 before anything is solved; -h, --version and --debug exist;
output fits 80 columns whatever the terminal; a closed pipe ends quietly; the README's tables are true."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import DEFAULT, ROOT
from typer.testing import CliRunner

import optimizer
from optimizer.cli import Exit, app

TINY = ROOT / "instances" / "tiny-min-cost.yaml"
SUPPLY = ROOT / "instances" / "tiny-supply-cap.yaml"
ENV = {k: v for k, v in os.environ.items() if k != "COLUMNS"}


def run(*args, **extra):
    return CliRunner().invoke(app, [str(a) for a in args], **extra)


def capplan(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "optimizer", *map(str, args)], capture_output=True, text=True,
                          env={**ENV, **(env or {})}, timeout=300, **kw)


def usage_error(result, fragment: str) -> None:
    """Exit 2, ``error: ...`` with the fragment on standard error, nothing on standard output, no traceback."""
    assert result.exit_code == Exit.USAGE, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("error: "), result.stderr
    assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


VARY = ("--vary", "training.min_pflops=5,6")

BAD_VALUES = [
    (("solve", TINY, "--gap", "2"), "--gap: must be a relative gap from 0 to below 1 (0.01 is 1%), got 2"),
    (("solve", TINY, "--gap", "-1"), "--gap: must be a relative gap from 0 to below 1 (0.01 is 1%), got -1"),
    (("solve", TINY, "--gap", "abc"), "--gap: must be a relative gap from 0 to below 1 (0.01 is 1%), got 'abc'"),
    (("solve", TINY, "--time-limit", "-1"), "--time-limit: must be a number of seconds > 0, got -1"),
    (("solve", TINY, "--time-limit", "0"), "--time-limit: must be a number of seconds > 0, got 0"),
    (("solve", TINY, "--workers", "0"), "--workers: must be a whole number >= 1, got 0"),
    (("solve", TINY, "--threads", "0"), "--threads: must be a whole number >= 1, got 0"),
    (("solve", TINY, "--commit", "d", "--through", "20x"), "--through: must be a year (a whole number), got '20x'"),
    (("solve", TINY, "--commit", "d"), "--commit and --through go together"),
    (("solve", TINY, "--format", "docx"), "--format: unknown format docx"),
    (("solve", TINY, "--bogus"), "no such option: --bogus"),
    (("solve",), "missing argument 'FILE'"),
    (("sweep", TINY, *VARY, "--time-limit", "-1"), "--time-limit: must be a number of seconds > 0, got -1"),
    (("sweep", TINY, *VARY, "--workers", "0"), "--workers: must be a whole number >= 1, got 0"),
    (("sweep", TINY, *VARY, "--gap", "2"), "--gap: must be a relative gap"),
    (("sweep", TINY, *VARY, "--mode", "diagonal"), "--mode: must be one of grid, oat, one_at_a_time, got 'diagonal'"),
    (("sweep", TINY, *VARY, "--metric", "happiness"), "--metric: must be one of objective,"),
    (("sweep", TINY, *VARY, "--resume", "--force"), "--resume and --force exclude each other"),
    (("sweep", TINY, "--vary", "nonsense"), "expected PATH=VALUES"),
    (("marginal", TINY, "--param", "training.min_pflops", "--step", "0"), "--step: must be a nonzero number, got 0"),
    (("marginal", TINY, "--param", "training.min_pflops", "--step", "1", "--gap", "2"), "--gap: must be a relative"),
    (("marginal", TINY, "--param", "training.min_pflops"), "missing option '--step'"),
    (("marginal", TINY, "--param", "budgt.total_usd", "--step", "1"), "budgt: unknown key; did you mean 'budget'?"),
    (("alternatives", TINY, "--slack", "-1"), "--slack: must be a relative slack from 0 to below 1"),
    (("alternatives", TINY, "--slack", "1"), "--slack: must be a relative slack from 0 to below 1"),
    (("alternatives", TINY, "--workers", "0"), "--workers: must be a whole number >= 1, got 0"),
    (("alternatives", TINY, "--aggregate", "chips.zzz"), "--aggregate: unknown aggregate chips.zzz"),
]


@pytest.mark.parametrize(("args", "fragment"), BAD_VALUES, ids=[" ".join(map(str, a[:1] + a[2:])) for a, _ in
                                                                  BAD_VALUES])
def test_bad_option_values_are_usage_errors_naming_the_option(args, fragment):
    usage_error(run(*args), fragment)


def test_usage_errors_point_to_the_help():
    result = run("solve", TINY, "--gap", "2")
    assert result.stderr.splitlines()[-1] == "hint: 'capplan solve -h' lists the options"


# ------------------------------------------------------------------ --vary and --param before anything is solved


@pytest.mark.parametrize(("vary", "fragment"), [
    ("chips.trn9.price_usd=x1.1", "chips.trn9.price_usd: no chip 'trn9' (the instance's chips: a, b)"),
    ("regions.eu.max_mw=5", "regions.eu.max_mw: no region 'eu' (the instance's regions: r)"),
    ("training.min_pflops=abc", "training.min_pflops=abc: training.min_pflops: must be a number"),
    ("budgt.total_usd=1e9", "budgt.total_usd: budgt: unknown key; did you mean 'budget'?"),
    ("chips.a.price_usd=x1,-5", "chips.a.price_usd=-5: chips.a.price_usd: must be > 0, got -5"),
    ("chips.a.available_from=+1y", "chips.a.available_from=+1y: a shift (+1y) needs an integer year at the path"),
])
def test_every_vary_is_checked_before_anything_is_solved(tmp_path, vary, fragment):
    out = tmp_path / "sweep"
    usage_error(run("sweep", TINY, "--vary", vary, "--out", out), fragment)
    assert not (out / "sweep.sqlite").exists()  # nothing was solved


def test_all_vary_problems_are_listed_at_once(tmp_path):
    result = run("sweep", TINY, "--vary", "chips.trn9.price_usd=x1.1", "--vary", "training.min_pflops=abc",
                 "--out", tmp_path / "s")
    usage_error(result, "--vary: 2 problems")
    assert "no chip 'trn9'" in result.stderr and "training.min_pflops=abc" in result.stderr


# ------------------------------------------------------------------ --out: one rule for every command


OUT_COMMANDS = [("solve", TINY), ("plot", TINY), ("sweep", TINY, *VARY), ("alternatives", TINY)]


@pytest.mark.parametrize("command", OUT_COMMANDS, ids=[c[0] for c in OUT_COMMANDS])
def test_out_that_is_a_file_is_a_usage_error(tmp_path, command):
    existing = tmp_path / "existing.txt"
    existing.write_text("keep me")
    usage_error(run(*command, "--out", existing), f"--out {existing}: is a file; --out takes a directory")
    usage_error(run(*command, "--out", existing, "--force"), "is a file")
    assert existing.read_text() == "keep me"


@pytest.mark.parametrize("command", OUT_COMMANDS, ids=[c[0] for c in OUT_COMMANDS])
def test_out_that_holds_files_needs_force(tmp_path, command):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    usage_error(run(*command, "--out", out), f"--out {out}: the directory is not empty")
    assert "--force" in run(*command, "--out", out).stderr


def test_force_replaces_what_capplan_writes_and_leaves_the_rest(tmp_path):
    out = tmp_path / "plan"
    assert run("solve", TINY, "--out", out).exit_code == 0
    usage_error(run("solve", TINY, "--out", out), "the directory is not empty")
    (out / "notes.txt").write_text("mine")
    (out / "summary.json").write_text("{}")
    assert run("solve", TINY, "--out", out, "--force").exit_code == 0
    assert json.loads((out / "summary.json").read_text())["status"] == "optimal"
    assert (out / "notes.txt").read_text() == "mine"


def _rows(store: Path) -> int:
    with sqlite3.connect(store) as db:
        return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]


def test_a_sweep_directory_is_resumed_or_forced(tmp_path):
    out = tmp_path / "sw"
    assert run("sweep", SUPPLY, "--vary", "chips.a.supply_units=1,2", "--workers", "1", "--out", out).exit_code == 0
    again = run("sweep", SUPPLY, "--vary", "chips.a.supply_units=3", "--workers", "1", "--out", out)
    usage_error(again, f"--out {out}: holds an earlier sweep")
    assert "pass --resume to continue that sweep, or --force to start afresh" in again.stderr
    assert run("sweep", SUPPLY, "--vary", "chips.a.supply_units=1,2,3", "--workers", "1", "--out", out,
               "--resume").exit_code == 0
    assert _rows(out / "sweep.sqlite") == 3  # two kept, one solved
    assert run("sweep", SUPPLY, "--vary", "chips.a.supply_units=4", "--workers", "1", "--out", out,
               "--force").exit_code == 0
    assert _rows(out / "sweep.sqlite") == 1  # started afresh


# ------------------------------------------------------------------ -h, --version, --debug, --json, validate DIR


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"capplan {optimizer.__version__} (HiGHS ")


@pytest.mark.parametrize("command", ["solve", "validate", "explain", "plot", "compare", "sweep", "marginal",
                                     "alternatives", "schema"])
def test_every_command_has_short_help_that_fits_80_columns(command):
    result = run(command, "-h", terminal_width=80)
    assert result.exit_code == 0 and result.stdout.startswith(f"Usage: capplan {command}")
    assert max(map(len, result.stdout.splitlines())) <= 80
    assert "…" not in result.stdout


def test_help_shows_defaults_whole_and_documents_debug():
    text = run("solve", "-h", terminal_width=80).stdout
    assert "[default: 0.0001]" in re.sub(r"\s+", " ", text) and "--workers N" in text
    top = run("-h", terminal_width=80).stdout
    assert "--debug" in top and "--version" in top and "141" in top
    assert top.index("  solve") < top.index("  schema")  # solve first


def test_workers_default_is_the_same_everywhere():
    texts = [re.sub(r"\s+", " ", run(c, "-h", terminal_width=200).stdout) for c in ("solve", "sweep", "alternatives")]
    for text in texts:
        assert "(default: the number of cores" in text


def test_validate_a_directory_and_json(tmp_path):
    (tmp_path / "good.yaml").write_text(TINY.read_text())
    data = yaml.safe_load(TINY.read_text())
    data["chips"]["a"]["power_w"] = -5
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "bad.yml").write_text(yaml.safe_dump(data))
    result = run("validate", tmp_path)
    assert result.exit_code == Exit.INVALID
    assert f"valid {tmp_path / 'good.yaml'}" in result.stdout
    assert result.stderr.startswith(f"error: invalid instance {tmp_path / 'nested' / 'bad.yml'}: 1 problem")
    assert "chips.a.power_w: must be > 0, got -5" in result.stderr
    doc = json.loads(run("validate", tmp_path, "--json").stdout)
    assert [d["valid"] for d in doc] == [True, False] and doc[1]["problems"][0]["path"] == "chips.a.power_w"
    shipped = run("validate", ROOT / "instances")
    assert shipped.exit_code == 0
    assert shipped.stdout.count("valid ") == len(list((ROOT / "instances").glob("*.yaml")))


def test_json_on_the_analyses(tmp_path):
    m = run("marginal", SUPPLY, "--param", "chips.a.supply_units", "--step", "1", "--json")
    assert m.exit_code == 0
    rows = {r["direction"]: r for r in json.loads(m.stdout)["rows"]}
    assert rows["up"]["delta"] == pytest.approx(8) and rows["down"]["delta"] == pytest.approx(-8)
    s = run("sweep", SUPPLY, "--vary", "chips.a.supply_units=1,2", "--workers", "1", "--out", tmp_path / "s", "--json")
    assert s.exit_code == 0 and [r["status"] for r in json.loads(s.stdout)] == ["optimal", "optimal"]
    e = run("explain", TINY, "--json")
    assert e.exit_code == 0 and json.loads(e.stdout)["feasible"] is True


def test_marginal_never_says_smaller_than_about_zero():
    result = run("marginal", SUPPLY, "--param", "chips.a.supply_units", "--step", "1")
    assert result.exit_code == 0
    assert "smaller than about 0 " not in result.stdout
    assert "+1 on chips.a.supply_units: objective +8 " in result.stdout


# ------------------------------------------------------------------ the real entry point: width, pipes, errors


def test_piped_output_fits_80_columns_whatever_the_terminal():
    narrow = capplan("solve", TINY, env={"COLUMNS": "80"})
    wide = capplan("solve", TINY, env={"COLUMNS": "250"})
    assert narrow.returncode == wide.returncode == 0

    def stable(text):
        return re.sub(r"(?m)^time .*$", "time", text)

    assert stable(narrow.stdout) == stable(wide.stdout)
    assert max(map(len, narrow.stdout.splitlines())) <= 80


def test_default_plan_at_80_columns_is_whole():
    proc = capplan("solve", DEFAULT, env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(map(len, lines)) <= 80 and "…" not in proc.stdout
    header = next(line for line in lines if line.startswith("year  capacity"))
    assert header.split() == ["year", "capacity", "draw", "spend", "training", "inference", "train", "%", "demand",
                              "unmet"]
    assert re.search(r"^objective +1,\d{3},\d{3} discounted PFLOP/s-years \(max_training\)$", proc.stdout, re.M)
    assert re.search(r"^made of +training [\d,]+ - unmet-demand penalty", proc.stdout, re.M)
    assert "warning: inference demand goes unmet in" in proc.stdout
    spend = [line.split()[3] for line in lines[lines.index(header) + 2:lines.index(header) + 12]]
    assert all(re.fullmatch(r"\$\d+\.\d\dB", s) for s in spend), spend  # one money style, whole


@pytest.mark.parametrize("extra", [(), ("--json",)])
def test_a_closed_pipe_ends_quietly(extra):
    proc = subprocess.Popen([sys.executable, "-m", "optimizer", "solve", str(TINY), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    proc.stdout.close()  # the reader is gone before anything is written: `capplan solve FILE | head -0`
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == Exit.BROKEN_PIPE
    assert err == b""


def test_errors_come_in_one_style_from_the_real_entry_point(tmp_path):
    bad = capplan("solve", TINY, "--gap", "2")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --gap:")
    missing = capplan("solve", tmp_path / "nope.yaml")
    assert missing.returncode == Exit.INVALID and missing.stderr.startswith("error: invalid instance")
    debug = capplan("--debug", "solve", TINY, "--gap", "2")  # --debug is accepted anywhere
    assert debug.returncode == 2 and "Traceback" not in debug.stderr


def test_readme_exit_codes_are_the_ones_capplan_uses():
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| code | meaning |"):]
    codes = [int(m) for m in re.findall(r"^\| (\d+) \|", table[:table.index("\n\n")], re.M)]
    assert codes == sorted(int(e) for e in Exit)


IMPORTED = __import__("time").perf_counter()  # this test process started before its modules were imported


class _Stop(Exception):
    pass


@pytest.mark.parametrize(("limit", "spent", "expected"), [(60, 10, 49.5), (12, 10, 6.0), (60, None, 59.5)])
def test_the_time_limit_is_the_whole_commands(monkeypatch, limit, spent, expected):
    """`solve --time-limit T` is the command's limit: what the process spent before the run (Python's start-up,
    imports, reading the file: taken from the process's own start by the `capplan` entry point) and the
    report's share come out of what the run is given, so the command ends within T (the 1,000-scenario tree
    at 1,800 s used to end at 1,804.5 s). The run keeps at least half of T. Without the entry point (here,
    Typer's test runner) the command counts from its own start."""
    import time

    from optimizer import pipeline
    from optimizer.cli import conventions

    given = []

    def fake(inst, **options):
        given.append(options["time_limit"])
        raise _Stop

    monkeypatch.setattr(pipeline, "solve", fake)
    monkeypatch.setattr(conventions, "ENTRY_POINT", spent is not None)
    monkeypatch.setattr(conventions, "process_started", lambda: time.perf_counter() - spent)
    result = CliRunner().invoke(app, ["solve", str(DEFAULT), "--time-limit", str(limit), "-q"])
    assert isinstance(result.exception, _Stop), result.output
    assert expected - 3.0 <= given[0] <= expected + 1e-9, given  # reading the file, on a busy machine
    assert conventions.REPORT_SECONDS == 0.5
    monkeypatch.setattr(conventions, "ENTRY_POINT", False)  # a tree's report gets 3 ms per scenario more
    assert conventions.run_limit(1800, time.perf_counter(), 1000) == pytest.approx(1800 - 0.5 - 3.0, abs=0.5)
    assert conventions.run_limit(None, time.perf_counter(), 1000) is None


def test_the_capplan_entry_point_counts_from_the_processs_start(monkeypatch):
    from optimizer.cli import conventions, main

    monkeypatch.setattr(conventions, "ENTRY_POINT", False)
    monkeypatch.setattr(sys, "argv", ["capplan", "--version"])
    with pytest.raises(SystemExit):
        main()
    assert conventions.ENTRY_POINT
    started = conventions.process_started()
    assert started is not None and started < IMPORTED  # the process's start, not the moment of the call
