"""``capplan simulate`` as a user runs it: the printed policies, the files, plot and compare reading them, bad
input refused before anything is written, and an interrupted run resumed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from optimizer.cli import Exit

ROOT = Path(__file__).resolve().parent.parent
HEDGE = ROOT / "instances" / "tiny-tree-hedge.yaml"
ENV = {**os.environ, "COLUMNS": "80"}



def _ctrl_c_as_at_a_terminal() -> None:
    """In the child: SIGINT handled as a foreground process's is, even when pytest itself was started in the
    background (a shell's background job ignores SIGINT, and its children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)

def capplan(*args, check=None, env=ENV):
    proc = subprocess.run([sys.executable, "-m", "optimizer", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=900)
    if check is not None:
        assert proc.returncode == check, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "out"
    proc = capplan("simulate", HEDGE, "--out", out, "--workers", "1", "--format", "csv,xlsx", check=Exit.OK)
    return out, proc


def test_prints_each_policy_and_the_value_of_the_stochastic_policy(sim_dir):
    _, proc = sim_dir
    text = proc.stdout
    for line, numbers in (("stochastic", "41   35   35   50    35       7"),
                          ("deterministic", "39   25   25   60    25       9"),
                          ("perfect", "48   40   40   60    40       0")):
        row = next(x for x in text.splitlines() if x.startswith(line))
        assert " ".join(numbers.split()) in " ".join(row.split()), row
    assert "gains 2" in " ".join(text.split()) and "value of the stochastic policy" in text
    assert max(len(x) for x in text.splitlines()) <= 80
    assert "epoch solves done" in proc.stderr


def test_writes_every_table_summary_and_charts(sim_dir):
    out, _ = sim_dir
    for name in ("paths.csv", "summary.csv", "solves.csv", "realised_purchases.csv", "simulation.xlsx",
                 "summary.json", "objectives.png", "capacity.png", "spend.png", "unmet.png", "policy.yaml",
                 "truth.yaml"):
        assert (out / name).is_file(), name
    doc = json.loads((out / "summary.json").read_text())
    assert doc["kind"] == "simulation" and doc["value_of_stochastic_policy"]["value"] == pytest.approx(2)
    paths = pd.read_csv(out / "paths.csv")
    assert len(paths) == 6 and set(paths.policy) == {"stochastic", "deterministic", "perfect"}
    assert not list(out.glob("*.tmp*"))


def test_plot_and_compare_read_a_simulation_directory(sim_dir, tmp_path):
    out, _ = sim_dir
    proc = capplan("plot", out, "--out", tmp_path / "charts", check=Exit.OK)
    assert "objectives.png" in proc.stdout and (tmp_path / "charts" / "unmet.png").is_file()
    proc = capplan("compare", out, out, check=Exit.OK)
    assert "expected_objective" in proc.stdout and "value of the stochastic policy (a): 2" in proc.stdout
    proc = capplan("compare", out, HEDGE, check=Exit.USAGE)
    assert "two plans or two simulation directories" in proc.stderr


@pytest.mark.parametrize("args, words", [
    (("--paths", "0"), "--paths: must be a whole number >= 1, got 0"),
    (("--seed", "-1"), "--seed: must be a whole number >= 0, got -1"),
    (("--policy", "stochastic,myopic"), "--policy: unknown policy myopic"),
    (("--time-limit", "-5"), "--time-limit: must be a number of seconds > 0"),
])
def test_bad_options_exit_2_and_write_nothing(args, words, tmp_path):
    out = tmp_path / "out"
    proc = capplan("simulate", HEDGE, "--out", out, *args, check=Exit.USAGE)
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_a_truth_with_other_base_data_names_the_key_path(tmp_path):
    raw = yaml.safe_load(HEDGE.read_text())
    raw["chips"]["a"]["power_w"] = 2e6
    truth = tmp_path / "truth.yaml"
    truth.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    proc = capplan("simulate", HEDGE, "--truth", truth, "--out", out, check=Exit.INVALID)
    assert "chips.a.power_w: 1e+06 in the policy file, 2e+06 in the truth file" in proc.stderr
    assert not out.exists()


def _solves(store: Path) -> int:
    try:
        with sqlite3.connect(store) as db:
            return db.execute("SELECT COUNT(*) FROM solves").fetchone()[0]
    except sqlite3.OperationalError:  # created, its table not yet
        return 0


def test_an_interrupted_simulation_resumes(tmp_path):
    """Ctrl-C after three epoch solves (the run holds there until interrupted: no race with its end): exit 130,
    the solves kept; --resume solves only the rest and prints the same table."""
    out = tmp_path / "out"
    args = ["simulate", HEDGE, "--out", out, "--workers", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "optimizer", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**ENV, "CAPPLAN_TEST_HOLD_AFTER": "3"},
                            start_new_session=True,
                            preexec_fn=_ctrl_c_as_at_a_terminal)
    store = out / "simulation.sqlite"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not (store.exists() and _solves(store) >= 3):
        time.sleep(0.2)
    assert proc.poll() is None, "the simulation ended before it was interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == Exit.INTERRUPTED, err
    assert "every finished epoch solve is kept" in err and "--resume" in err and "Traceback" not in err
    assert _solves(store) == 3
    done = capplan(*args, "--resume", check=Exit.OK)
    assert "(3 from an earlier run)" in done.stderr
    assert _solves(store) == 8
    fresh = capplan("simulate", HEDGE, "--workers", "1", check=Exit.OK)
    assert done.stdout == fresh.stdout


def test_the_report_page_of_a_simulation(sim_dir, tmp_path):
    """capplan report reads a simulation directory: the policies' figures are those of its tables."""
    import re

    out, _ = sim_dir
    page = tmp_path / "sim.html"
    capplan("report", out, "--out", page, check=Exit.OK)
    text = page.read_text()
    assert "Policy simulation: tiny-tree-hedge against tiny-tree-hedge" in text
    assert "Every one of the 8 epoch solves is proven." in text
    assert 'id="policies"' in text and 'id="paths"' in text
    assert "gains 2 discounted PFLOP/s-years" in text
    summary = pd.read_csv(out / "summary.csv").set_index("policy")
    for policy in ("stochastic", "deterministic", "perfect"):
        shown = re.search(rf"<dt>expected, {policy}</dt><dd>([^<]+)</dd>", text)
        assert shown and float(shown.group(1).replace(",", "")) == summary.loc[policy, "expected_objective"]
    assert "<script src=" not in text  # scripts inlined: the page opens offline
