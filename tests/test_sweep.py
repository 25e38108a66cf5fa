"""Sweeps: values and scenarios, in-place re-solves against rebuilding, local processes and Dask,
the store (resume, kill), marginal values and the sweep charts."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import DEFAULT, ROOT, tiny
from plan_checker import check_plan

from optimizer import load_instance, solve
from optimizer.analysis.sweep import (
    Factor,
    Shift,
    SweepError,
    Worker,
    concrete_changes,
    marginal,
    parse_values,
    parse_vary,
    scenarios,
    sweep,
)
from optimizer.report.sweep_plots import heatmap_chart, line_chart, plot_sweep, tornado_chart

SUPPLY = ROOT / "instances" / "tiny-supply-cap.yaml"
ENV = {**os.environ, "COLUMNS": "200"}



def _ctrl_c_as_at_a_terminal() -> None:
    """In the child: SIGINT handled as a foreground process's is, even when pytest itself was started in the
    background (a shell's background job ignores SIGINT, and its children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)

def supply_optimum(s: int) -> float:
    """tiny-supply-cap with supply_units s <= 5 of chip a (see the file's hand computation):
    a26 = a27 = s, b26 = 10 - 2s, objective 8s + 2(10 - 2s) + 4s = 20 + 8s."""
    return 20.0 + 8.0 * s


# ------------------------------------------------------------------ values and scenarios


@pytest.mark.parametrize("text, expect", [
    ("60e9,80e9,100e9", [60e9, 80e9, 100e9]),
    ("50e9:150e9:11", [50e9 + 10e9 * i for i in range(11)]),
    ("1:2:1", [1.0]),
    ("x0.8,x1,X1.2", [Factor(0.8), Factor(1.0), Factor(1.2)]),
    ("+0y,+1y,-2y", [Shift(0), Shift(1), Shift(-2)]),
    ("3, 4", [3, 4]),
    ("min_cost,max_training", ["min_cost", "max_training"]),
])
def test_parse_values(text, expect):
    assert parse_values(text) == pytest.approx(expect) if isinstance(expect[0], float) else \
        parse_values(text) == expect


@pytest.mark.parametrize("items, message", [
    (["budget.total_usd"], "expected PATH=VALUES"),
    (["budget.total_usd="], "budget.total_usd: no values given"),
    (["budget.total_usd=1,,2"], "empty value"),
    (["budget.total_usd=1:2:x"], "must be START:STOP:COUNT"),
    (["budget.total_usd=1:2:0"], "COUNT must be at least 1"),
])
def test_parse_vary_errors_name_the_path(items, message):
    with pytest.raises(SweepError, match=message):
        parse_vary(items)


def test_factors_scale_whole_series_and_shifts_move_years():
    inst = load_instance(tiny(chips__g__price_usd={"start": 100, "growth": 0.1},
                              regions__r__max_mw={2026: 10, 2027: 20}, chips__g__available_from=2026))
    ch = concrete_changes(inst, {"chips.g.price_usd": Factor(0.5), "regions.r.max_mw": Factor(2),
                                 "budget.total_usd": Factor(3), "chips.g.available_from": Shift(1)})
    assert ch == {"chips.g.price_usd": {"start": 50, "growth": 0.1}, "regions.r.max_mw": {2026: 20, 2027: 40},
                  "budget.total_usd": 3000, "chips.g.available_from": 2027}
    new = inst.with_changes(ch)
    assert [new.chips["g"].price_usd[t] for t in new.years] == pytest.approx([50, 55])
    assert new.chips["g"].available_from == 2027
    # YAML reads 1e3 (no dot) as text, which the loader accepts as a number: so do factors and shifts
    text = load_instance(tiny(budget={"total_usd": "1e3"}, chips__g__available_from="2026"))
    assert concrete_changes(text, {"budget.total_usd": Factor(2), "chips.g.available_from": Shift(-1)}) == {
        "budget.total_usd": 2000.0, "chips.g.available_from": 2025}
    with pytest.raises(SweepError, match="power.ceiling_mw: a factor needs a value"):
        concrete_changes(inst, {"power.ceiling_mw": Factor(2)})
    with pytest.raises(SweepError, match="chips.g.power_w: a shift .* needs an integer year"):
        concrete_changes(inst, {"chips.g.power_w": Shift(1)})


def test_grid_and_one_at_a_time_scenarios():
    inst = load_instance(SUPPLY)
    vary = {"chips.a.supply_units": [1, 2, 3], "regions.r.max_mw": [10, 12]}
    grid = scenarios(inst, vary, "grid")
    oat = scenarios(inst, vary, "oat")
    assert len(grid) == 6 and len(oat) == 1 + 3 + 2
    assert oat[0].label == "base" and oat[1].label == "chips.a.supply_units=1"
    assert len({s.id for s in grid + oat}) == len(grid) + len(oat)  # ids tell scenarios apart
    assert [s.id for s in scenarios(inst, vary, "grid")] == [s.id for s in grid]  # and are stable
    with pytest.raises(SweepError, match="mode must be grid or one_at_a_time"):
        scenarios(inst, vary, "random")


# ------------------------------------------------------------------ in place against rebuilding


def test_sweep_matches_the_hand_optimum_in_place():
    df = sweep(load_instance(SUPPLY), {"chips.a.supply_units": [3, 1, 2, 4, 5, 0]}, workers=1)
    assert list(df.status) == ["optimal"] * 6
    for s, obj in zip(df["chips.a.supply_units"], df.objective):
        assert obj == pytest.approx(supply_optimum(int(s)), rel=1e-6)
    # the first scenario builds; a supply of 0 fixes chip a's purchases at zero (another structure)
    assert list(df.path) == ["rebuild", "in_place", "in_place", "in_place", "in_place", "rebuild"]


CHANGES = [
    {"budget.total_usd": 80e9},
    {"budget.total_usd": 120e9, "power.ceiling_mw": Factor(1.2)},
    {"chips.trn3.price_usd": Factor(0.8), "regions.us-east.max_mw": Factor(0.9)},
    {"training.min_pflops": Factor(1.5), "regions.eu-west.inference_demand_pflops": Factor(1.3)},
    {"budget.total_usd": 105e9, "regions.us-east.electricity_usd_per_mwh": Factor(1.5)},
    {"budget.annual_max_usd": 30e9},  # a new family of rows: rebuilt
]


def test_in_place_plans_equal_rebuilt_plans_and_pass_the_checker():
    """Each scenario solved in place on one kept model: the plan passes the independent checker
    and its objective equals a fresh solve's within the MIP gap."""
    base = load_instance(DEFAULT)
    w = Worker(base, threads=None)
    w.solve(base)
    for changes in CHANGES:
        inst = base.with_changes(concrete_changes(base, changes))
        plan, how = w.solve(inst)
        assert how == ("rebuild" if "budget.annual_max_usd" in changes else "in_place"), changes
        fresh = solve(inst)
        assert plan.status == fresh.status
        if fresh.status.has_plan:
            check_plan(inst, plan, rel_tol=1e-6)
            assert plan.objective == pytest.approx(fresh.objective, rel=2e-4), changes


@pytest.mark.parametrize("seed", [0, 1])
def test_random_parameter_changes_in_place_equal_fresh_solves(seed):
    """Generated instances, random factors on two mutable paths at a time, one kept model."""
    import random

    from optimizer.instance.generate import generate_instance

    rng = random.Random(seed)
    base = load_instance(generate_instance(3, 3, 6, seed=seed))
    paths = ["budget.total_usd", "power.ceiling_mw", "training.min_pflops"]
    paths += [f"regions.{r}.{k}" for r in base.regions
              for k in ("inference_demand_pflops", "electricity_usd_per_mwh", "block_capex_usd")]
    paths += [f"chips.{g}.{k}" for g in base.chips for k in ("price_usd", "supply_units")]
    paths = [p for p in paths if _has(base, p)]
    w = Worker(base, threads=None)
    w.solve(base)
    for _ in range(5):
        changes = {p: Factor(rng.choice([0.7, 0.9, 1.1, 1.4])) for p in rng.sample(paths, 2)}
        inst = base.with_changes(concrete_changes(base, changes))
        plan, how = w.solve(inst)
        fresh = solve(inst)
        assert how == "in_place" and plan.status == fresh.status, changes
        if fresh.status.has_plan:
            check_plan(inst, plan)
            assert plan.objective == pytest.approx(fresh.objective, rel=2e-4), changes


def _has(inst, path: str) -> bool:
    node = inst.raw
    for part in path.split("."):
        if not hasattr(node, "get") or node.get(part) is None:
            return False
        node = node[part]
    return True


def test_structure_changes_rebuild_and_in_place_infeasibility_is_reported():
    # blocks take 2 years: none comes online in the 2-year horizon, so the ceiling rows have no variables
    base = load_instance(tiny(power={"ceiling_mw": 5}, chips__g__available_from=2026,
                              regions__r__build_lead_years=2))
    w = Worker(base)
    w.solve(base)
    # a ceiling below the 2 MW that already exist: such a row is re-checked in place
    plan, how = w.solve(base.with_changes({"power.ceiling_mw": 1}))
    assert how == "in_place" and plan.status.value == "infeasible"
    assert "above the power ceiling of 1.0 MW" in plan.result.message
    plan, how = w.solve(base.with_changes({"power.ceiling_mw": 4}))
    assert how == "in_place" and plan.status.value == "optimal"
    assert plan.objective == pytest.approx(solve(base.with_changes({"power.ceiling_mw": 4})).objective)
    plan, how = w.solve(base.with_changes({"chips.g.available_from": 2027}))  # fewer purchase years
    assert how == "rebuild"


def test_failed_and_invalid_scenarios_are_rows():
    df = sweep(load_instance(SUPPLY), {"chips.a.supply_units": [2, -1], "regions.r.max_mw": [10, 5]}, workers=1)
    assert len(df) == 4
    bad = df[df["chips.a.supply_units"] == -1]
    assert set(bad.status) == {"invalid"}
    assert bad.message.str.contains("chips.a.supply_units: must be >= 0, got -1").all()
    # max_mw 5 below the 10 MW that exist
    assert df[(df["chips.a.supply_units"] == 2) & (df["regions.r.max_mw"] == 5)].status.item() == "infeasible"


# ------------------------------------------------------------------ parallel: processes and Dask


GRID = {"chips.a.supply_units": [1, 2, 3, 4], "regions.r.max_mw": [10, 11]}
KEYS = ["scenario", "chips.a.supply_units", "regions.r.max_mw", "status"]


@pytest.fixture(scope="module")
def serial_table():
    return sweep(load_instance(SUPPLY), GRID, workers=1)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a[KEYS].reset_index(drop=True), b[KEYS].reset_index(drop=True))
    assert a.objective.to_numpy() == pytest.approx(b.objective.to_numpy(), rel=1e-6)
    assert a.total_spend_usd.to_numpy() == pytest.approx(b.total_spend_usd.to_numpy(), rel=1e-6)


def test_serial_sweep_values(serial_table):
    df = serial_table
    ok = df[df["regions.r.max_mw"] == 10]
    assert ok.objective.to_numpy() == pytest.approx([supply_optimum(s) for s in ok["chips.a.supply_units"]])


def test_local_processes_give_the_serial_table(serial_table):
    df = sweep(load_instance(SUPPLY), GRID, workers=2)
    _same(df, serial_table)
    assert df.worker.nunique() == 2  # both processes solved scenarios


def test_dask_local_cluster_gives_the_serial_table(serial_table):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        df = sweep(load_instance(SUPPLY), GRID, client=client)
        assert set(df.worker) <= {f"{os.uname().nodename}:{w.pid}" for w in cluster.workers.values()}
    _same(df, serial_table)
    assert (df.path == "in_place").sum() >= len(df) - 2 - 2  # each worker builds once (+ max_mw 11 rebuild)


def test_cli_scheduler_sends_scenarios_to_a_running_dask_cluster(tmp_path, serial_table):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster:
        proc = subprocess.run([sys.executable, "-m", "optimizer", "sweep", str(SUPPLY),
                               "--vary", "chips.a.supply_units=1,2,3,4", "--vary", "regions.r.max_mw=10,11",
                               "--scheduler", cluster.scheduler_address, "--out", str(tmp_path)],
                              capture_output=True, text=True, env=ENV, timeout=300)
        pids = {w.pid for w in cluster.workers.values()}
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(tmp_path / "sweep.csv")
    _same(df, serial_table)
    assert {int(w.rsplit(":", 1)[1]) for w in df.worker} <= pids  # solved by the cluster's workers
    bad = subprocess.run([sys.executable, "-m", "optimizer", "sweep", str(SUPPLY), "--vary",
                          "chips.a.supply_units=1", "--scheduler", "tcp://127.0.0.1:1", "--out",
                          str(tmp_path / "x")], capture_output=True, text=True, env=ENV, timeout=300)
    assert bad.returncode == 2 and "cannot reach the Dask scheduler" in bad.stderr


# ------------------------------------------------------------------ the store: resume and kill


def test_store_resume_skips_finished_scenarios(tmp_path, serial_table):
    inst = load_instance(SUPPLY)
    seen = []
    first = sweep(inst, {"chips.a.supply_units": [1, 2, 3, 4]}, workers=1, store=tmp_path)
    assert len(first) == 4
    df = sweep(inst, GRID, workers=1, store=tmp_path, progress=seen.append)
    assert seen[0].skipped == 0 and seen[0].total == 8  # a different sweep: its ids differ
    seen.clear()
    again = sweep(inst, GRID, workers=1, store=tmp_path, progress=seen.append)
    assert seen[-1].skipped == 8 and seen[-1].total == 0
    _same(again, df)
    _same(again, serial_table)
    with pytest.raises(SweepError, match="already holds results"):
        sweep(inst, GRID, workers=1, store=tmp_path, resume=False)


def _rows(store: Path) -> int:
    with sqlite3.connect(store) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        except sqlite3.OperationalError:  # the file exists a moment before its table (a busy machine shows it)
            return 0


def test_killed_sweep_keeps_finished_scenarios_and_resumes(tmp_path):
    """Kill a real `capplan sweep` (SIGKILL, whole process group) after some scenarios; every finished
    one is in the store, and --resume solves only the rest.  The sweep holds after two stored results
    (``CAPPLAN_TEST_HOLD_AFTER``), so the kill never races its end."""
    out = tmp_path / "out"
    args = [sys.executable, "-m", "optimizer", "sweep", str(DEFAULT), "--vary",
            "budget.total_usd=95e9:125e9:7", "--workers", "1", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**ENV, "CAPPLAN_TEST_HOLD_AFTER": "2"}, start_new_session=True)
    store = out / "sweep.sqlite"
    deadline = time.time() + 600
    try:
        while time.time() < deadline and proc.poll() is None:
            if store.exists() and _rows(store) >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the sweep ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    kept = _rows(store)
    assert kept == 2
    assert not (out / "sweep.csv").exists()  # written only at the end; nothing half-written
    assert not list(out.glob("*.tmp*"))
    done = subprocess.run(args + ["--resume"], capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{7 - kept} scenarios to solve ({kept} finished earlier)" in done.stderr
    df = pd.read_csv(out / "sweep.csv")
    assert len(df) == 7 and set(df.status) == {"optimal"}
    assert df["budget.total_usd"].tolist() == pytest.approx([95e9 + 5e9 * i for i in range(7)])
    assert df.objective.is_monotonic_increasing  # more budget never buys less training


def test_interrupted_sweep_says_how_to_resume(tmp_path):
    """Ctrl-C (SIGINT to the process group): exit 130, finished scenarios kept, a hint to resume.

    The sweep holds after its first stored result (``CAPPLAN_TEST_HOLD_AFTER``) until it is interrupted,
    so the test never races its end, however busy the machine."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "optimizer", "sweep", str(DEFAULT), "--vary",
                             "budget.total_usd=95e9:125e9:7", "--workers", "1", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**ENV, "CAPPLAN_TEST_HOLD_AFTER": "1"}, start_new_session=True,
                            preexec_fn=_ctrl_c_as_at_a_terminal)
    store = out / "sweep.sqlite"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not (store.exists() and _rows(store) >= 1):
        time.sleep(0.2)
    assert proc.poll() is None, "the sweep ended before it was interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "every finished scenario is kept" in err and "--resume" in err and "Traceback" not in err
    assert _rows(store) == 1


# ------------------------------------------------------------------ marginal values


def test_marginal_of_supply_matches_the_hand_computation():
    df = marginal(load_instance(SUPPLY), "chips.a.supply_units", 1)
    by = df.set_index("direction")
    assert by.loc["base", "objective"] == pytest.approx(44)
    assert by.loc["up", "objective"] == pytest.approx(52) and by.loc["up", "delta"] == pytest.approx(8)
    assert by.loc["down", "objective"] == pytest.approx(36) and by.loc["down", "delta"] == pytest.approx(-8)
    assert by.loc["down", "slope"] == pytest.approx(8)


def test_marginal_moves_every_year_of_a_series():
    inst = load_instance(tiny(power={"ceiling_mw": {"start": 4, "growth": 0.5}}))
    df = marginal(inst, "power.ceiling_mw", 1)
    assert list(df.status) == ["optimal"] * 3
    with pytest.raises(SweepError, match="budget.annual_max_usd: the instance has no value there"):
        marginal(inst, "budget.annual_max_usd", 1e9)


# ------------------------------------------------------------------ charts and the command line


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_sweep_charts(serial_table, tmp_path):
    from optimizer.report import plots

    fig = heatmap_chart(serial_table, "chips.a.supply_units", "regions.r.max_mw")
    assert fig.axes[0].images and fig.axes[0].get_xlabel() == "regions.r.max_mw (MW)"
    plots.plt.close(fig)
    one = serial_table[serial_table["regions.r.max_mw"] == 10]
    fig = line_chart(one, "chips.a.supply_units")
    assert plots.series_count(fig) == 1 and fig.axes[0].get_ylabel().startswith("objective (PFLOP/s-years")
    plots.plt.close(fig)
    oat = sweep(load_instance(SUPPLY), {"chips.a.supply_units": [2, 4], "regions.r.max_mw": [10, 11]},
                mode="oat", workers=1)
    fig = tornado_chart(oat)
    assert len(fig.axes[0].patches) == 4  # low and high bar for each path
    plots.plt.close(fig)
    (path,) = plot_sweep(oat, tmp_path)
    assert png_size(path) == (1280, 720)


def test_cli_sweep_and_marginal(tmp_path):
    out = tmp_path / "sw"
    inst = tmp_path / "inst.yaml"
    inst.write_text(SUPPLY.read_text())
    proc = subprocess.run([sys.executable, "-m", "optimizer", "sweep", str(inst), "--vary",
                           "chips.a.supply_units=1:5:5", "--vary", "regions.r.max_mw=x1,x1.2",
                           "--workers", "1", "--out", str(out)], capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(out / "sweep.csv")
    assert len(df) == 10 and {"status", "objective", "training_share", "path", "seconds"} <= set(df.columns)
    assert png_size(out / "sweep-objective.png") == (1280, 720)
    assert "\x1b[" not in proc.stdout  # piped: no colour codes
    again = subprocess.run([sys.executable, "-m", "optimizer", "sweep", str(inst), "--vary",
                            "chips.a.supply_units=1:5:5", "--out", str(out)], capture_output=True, text=True)
    assert again.returncode == 2 and "pass --resume" in again.stderr
    bad = subprocess.run([sys.executable, "-m", "optimizer", "sweep", str(inst), "--vary", "nonsense"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "expected PATH=VALUES" in bad.stderr and "Traceback" not in bad.stderr
    m = subprocess.run([sys.executable, "-m", "optimizer", "marginal", str(inst), "--param",
                        "chips.a.supply_units", "--step", "1"], capture_output=True, text=True, env=ENV)
    assert m.returncode == 0, m.stderr
    assert "+1 on chips.a.supply_units: objective +8 " in m.stdout
    assert "-1 on chips.a.supply_units: objective -8 " in m.stdout


def test_cli_sweep_reports_infeasible_scenarios_with_exit_4(tmp_path):
    data = yaml.safe_load(SUPPLY.read_text())
    inst = tmp_path / "i.yaml"
    inst.write_text(yaml.safe_dump(data))
    proc = subprocess.run([sys.executable, "-m", "optimizer", "sweep", str(inst), "--vary", "regions.r.max_mw=5,10",
                           "--workers", "1", "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 4, proc.stderr
    df = pd.read_csv(tmp_path / "o" / "sweep.csv")
    assert df.status.tolist() == ["infeasible", "optimal"]
    assert not math.isnan(df.objective[1])


def test_objectives_agree_within_the_reported_gap_across_worker_counts():
    """Two runs of one sweep with different worker counts (different in-place histories) may return different
    plans, but never incompatible proofs: for every scenario, each run's [objective, bound] interval contains
    the other's objective (max_training: objective <= optimum <= bound)."""
    from optimizer.instance.generate import generate_instance

    inst = load_instance(generate_instance(3, 3, 8, seed=4))
    grid = {"budget.total_usd": [Factor(0.6), Factor(0.8)], "chips.g01.price_usd": [Factor(0.9), Factor(1.1)]}
    one = sweep(inst, grid, workers=1)
    two = sweep(inst, grid, workers=2)
    assert one.status.eq("optimal").all() and two.status.eq("optimal").all()
    for a, b in zip(one.itertuples(), two.itertuples()):
        assert a.label == b.label
        tol = 1e-9 * max(1.0, abs(a.objective))
        assert a.objective <= b.objective_bound + tol and b.objective <= a.objective_bound + tol, (a, b)


def test_hardest_first_orders_by_the_lp_estimate_and_keeps_the_table():
    from optimizer.analysis.sweep import difficulty, hardest_first

    inst = load_instance(SUPPLY)
    scs = scenarios(inst, GRID)
    est = difficulty(inst, scs)
    assert set(est) == {sc.index for sc in scs} and all(v >= 0 for v in est.values())
    ordered = hardest_first(inst, scs)
    assert [est[sc.index] for sc in ordered] == sorted(est.values(), reverse=True)
    given = sweep(inst, GRID, workers=2, order="given")
    _same(sweep(inst, GRID, workers=2), given)  # the order of solving never changes the table
