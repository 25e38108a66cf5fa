"""A second search on an idle core (optimizer/solver/race.py): where it starts, what it reports, how it ends.

The helper is a real process in every test but the ones that stand it in with a
fixed result (to check, without timing, that the better plan and the tighter
bound are the ones reported).  No test waits on a clock: the helper is started
at once (``after=0``) and the tests wait for what it sends, with limits far above
what a busy machine needs (``slow_machine``: the solve waits up to 5 minutes for
the helper's last message, not 10 s).
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from plan_checker import check_plan

from optimizer import SolveStatus, load_instance, solve
from optimizer.instance.generate import generate_hard_instance
from optimizer.solver import ModelHandle, SolveOptions, highs, race

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "instances" / "aws-5gw-2026.yaml"


@pytest.fixture(autouse=True)
def slow_machine(monkeypatch):
    monkeypatch.setattr(race, "FINISH_WAIT", 300.0)


@pytest.fixture(scope="module")
def default():
    return load_instance(DEFAULT)


@pytest.fixture(scope="module")
def proven(default):
    """The default instance proven by one search: its plan's HiGHS columns, objective and bound."""
    h = ModelHandle(default)
    r = h.solve(SolveOptions(race=False))
    assert r.status is SolveStatus.OPTIMAL and r.helper is None
    return {"values": np.asarray(h.values()), "objective": r.objective, "bound": r.bound,
            "factor": h.info.objective_factor}


def test_where_a_second_search_may_start(monkeypatch):
    monkeypatch.setattr(race, "idle_cores", lambda: 1)
    monkeypatch.setattr(race, "parent_process", lambda: None)
    assert race.applies(None, None, True, True)
    assert not race.applies(None, None, True, False)  # no time limit: the plan stays reproducible to the bit
    assert not race.applies(None, 1, True, True)  # one thread asked for (PH subproblems, analyses on workers)
    assert not race.applies(None, None, False, True)  # a tree: its analyses use the other cores
    assert race.applies(True, 1, False, False) and not race.applies(False, None, True, True)  # forced
    monkeypatch.setattr(race, "idle_cores", lambda: 0)
    assert not race.applies(None, None, True, True)  # one core
    monkeypatch.setattr(race, "idle_cores", lambda: 3)
    monkeypatch.setattr(race, "parent_process", lambda: object())
    assert not race.applies(None, None, True, True)  # inside a worker process


def test_without_a_time_limit_one_search_by_default(monkeypatch, default):
    """The default starts no helper without a time limit, even one due at once; with a limit it does."""
    monkeypatch.setattr(race, "RACE_AFTER", 0.0)
    monkeypatch.setattr(race, "idle_cores", lambda: 1)
    assert solve(default).result.helper is None
    assert solve(default, time_limit=600).result.helper is not None


def test_better_and_tighter_follow_the_sense():
    assert race.better(3.0, 5.0, True) == 5.0 and race.better(3.0, 5.0, False) == 3.0
    assert race.tighter(3.0, 5.0, True) == 3.0 and race.tighter(3.0, 5.0, False) == 5.0
    assert race.better(None, 2.0, True) == 2.0 and race.tighter(4.0, None, False) == 4.0


def test_the_helper_alone_proves_the_program(default, proven):
    """The helper process holds the same program: left alone (the solve's search never runs), it proves the
    optimum the solve's own search proves, and hands back a plan of that value."""
    h = ModelHandle(default)
    racer = race.Racer(h.highs, maximize=True, rel_gap=1e-4, abs_gap=1e-9, deadline=None, options={}, after=0)
    racer.arm()
    end = time.monotonic() + 600
    while racer.result is None and time.monotonic() < end:
        racer.exchange(None, None)
        time.sleep(0.05)
    got = racer.finish()
    assert got is not None and got.values is not None, got
    # it stops itself once its own bound is within the gap (HiGHS's status then says interrupted)
    assert got.status in ("Optimal", "Interrupted by user") and abs(got.bound - got.incumbent) <= 1e-4 * got.incumbent
    factor = proven["factor"]
    assert got.incumbent * factor == pytest.approx(proven["objective"], rel=2e-4)
    assert got.bound * factor >= proven["objective"] * (1 - 1e-4)  # a bound of a maximisation: above its optimum
    assert got.bound * factor <= proven["bound"] * (1 + 1e-4)
    h.load(got.values)
    assert highs.pyo.value(h.model.obj) * factor == pytest.approx(got.incumbent * factor, rel=1e-9)


def _stand_in(monkeypatch, result_of):
    """Racer with no process: finish() returns ``result_of(handle)``."""
    monkeypatch.setattr(race.Racer, "arm", lambda self: None)
    monkeypatch.setattr(race.Racer, "finish", lambda self, wait=None: result_of(self))


def test_a_better_plan_and_a_tighter_bound_of_the_helper_are_reported(monkeypatch, default, proven):
    """The solve's own search stops at its first plan (mip_max_improving_sols=1, no starting plan); the helper
    stand-in holds the proven optimum and its bound: the solve reports that plan, proven, and the plan passes
    the independent checker.  (Without a starting plan the gap is relative to |objective| alone, where the proof
    above is at 1.2e-4: hence the gap of 2e-4.)"""
    factor = proven["factor"]
    _stand_in(monkeypatch, lambda self: race.HelperResult(
        "Optimal", proven["objective"] / factor, proven["bound"] / factor, proven["values"], 1.0, 0.0))
    monkeypatch.setitem(highs.EXTRA_OPTIONS, "mip_max_improving_sols", 1)
    alone = solve(default, warm_start=False, race=False, mip_gap=2e-4)
    assert alone.status is SolveStatus.FEASIBLE and alone.objective < proven["objective"] * (1 - 1e-3)
    plan = solve(default, warm_start=False, race=True, mip_gap=2e-4)
    assert plan.status is SolveStatus.OPTIMAL
    assert plan.objective == pytest.approx(proven["objective"], rel=1e-9)
    assert plan.result.helper["plan"] and plan.result.helper["bound_used"]
    assert plan.result.bound == pytest.approx(proven["bound"], rel=1e-12)
    check_plan(default, plan, rel_tol=1e-6)


def test_a_worse_plan_and_a_looser_bound_of_the_helper_are_not(monkeypatch, default, proven):
    factor = proven["factor"]
    worse = proven["values"].copy()
    _stand_in(monkeypatch, lambda self: race.HelperResult(
        "Interrupted by user", 0.5 * proven["objective"] / factor, 2 * proven["bound"] / factor, worse, 1.0, 5.0))
    plan = solve(default, race=True)
    assert plan.status is SolveStatus.OPTIMAL
    assert plan.objective == pytest.approx(proven["objective"], rel=1e-4)
    assert not plan.result.helper["plan"] and not plan.result.helper["bound_used"]
    assert plan.result.helper["started_after"] == 5.0 and plan.result.helper["seed"] == race.HELPER_SEED
    assert plan.result.bound < 2 * proven["bound"]
    check_plan(default, plan, rel_tol=1e-6)


def test_a_raced_solve_is_proven_and_checked(monkeypatch, default, proven):
    """The helper started at once beside the solve's search, as it would after RACE_AFTER seconds."""
    monkeypatch.setattr(race, "RACE_AFTER", 0.0)
    plan = solve(default, race=True)
    assert plan.status is SolveStatus.OPTIMAL
    assert plan.objective >= proven["objective"] * (1 - 1e-4)
    assert plan.result.bound >= proven["objective"] * (1 - 1e-9)
    helper = plan.result.helper
    assert helper is not None and helper["status"] != "lost"
    check_plan(default, plan, rel_tol=1e-6)


def _helpers() -> list[int]:
    out = subprocess.run(["pgrep", "-f", str(race._HELPER)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


@pytest.fixture(scope="module")
def slow():
    """A program the helper searches for minutes at a gap of 0 (mc-hard25-s3 of the hard set)."""
    return load_instance(generate_hard_instance(3, kind="min_cost", demand="hard", n_regions=3, block_mw=25))


def _under_way(inst) -> race.Racer:
    racer = race.Racer(ModelHandle(inst).highs, maximize=False, rel_gap=0.0, abs_gap=0.0, deadline=None,
                       options={}, after=0)
    racer.arm()
    end = time.monotonic() + 300
    while racer.inc is None and time.monotonic() < end:  # its search has an incumbent
        racer.exchange(None, None)
        time.sleep(0.05)
    assert racer.inc is not None
    return racer


def test_the_helper_stops_when_the_solve_is_gone(slow):
    """The solve's end of the connection closed (its process killed, say): the helper stops its search and
    exits, on a program it would otherwise search for minutes."""
    racer = _under_way(slow)
    proc = racer._proc
    racer._conn.close()
    proc.wait(timeout=300)
    assert proc.returncode == 0
    racer._conn = None
    racer.finish()


def test_ctrl_c_is_the_solves_to_handle_not_the_helpers(slow):
    """Ctrl-C at a terminal reaches the helper too (its process group): it ignores it and goes on until the
    solve stops it, then sends its result."""
    racer = _under_way(slow)
    racer._proc.send_signal(signal.SIGINT)
    got = racer.finish(wait=300)
    assert got is not None and got.status == "Interrupted by user" and got.values is not None, got
    assert racer._proc.returncode == 0


def test_no_helper_is_left_after_a_solve(monkeypatch, default):
    monkeypatch.setattr(race, "RACE_AFTER", 0.0)
    before = set(_helpers())
    plan = solve(default, race=True)
    assert plan.result.helper is not None
    assert not set(_helpers()) - before


def test_the_search_hands_its_improving_plans_to_the_racer(monkeypatch, default, proven):
    """What the helper starts from: the search's latest improving plan, a whole column vector."""
    seen = []
    monkeypatch.setattr(race.Racer, "arm", lambda self: None)
    monkeypatch.setattr(race.Racer, "finish", lambda self, wait=None: None)
    real = race.Racer.exchange

    def spy(self, inc, bound, values=None):
        if values is not None:
            seen.append((inc, len(values)))
        return real(self, inc, bound, values)

    monkeypatch.setattr(race.Racer, "exchange", spy)
    plan = solve(default, race=True)
    assert plan.status is SolveStatus.OPTIMAL and plan.result.helper is None  # finish() gave nothing
    assert seen and all(n == len(proven["values"]) for _, n in seen)
    assert seen[-1][0] * proven["factor"] == pytest.approx(plan.objective, rel=1e-9)


def test_a_helper_that_cannot_start_leaves_the_search_alone(monkeypatch, default, proven):
    def fail(self):
        raise RuntimeError("no copy of the program")

    monkeypatch.setattr(race.Racer, "arm", fail)
    plan = solve(default, race=True)
    assert plan.status is SolveStatus.OPTIMAL and plan.result.helper is None
    assert plan.objective == pytest.approx(proven["objective"], rel=1e-4)


def test_a_helper_that_fails_says_so_and_the_search_goes_on(monkeypatch, default, proven):
    """A helper that cannot build the program (here: a matrix format HiGHS does not know) reports its error,
    which the result names; the solve's own search proves the plan as before."""
    monkeypatch.setattr(race, "RACE_AFTER", 0.0)
    real = race.Racer.arm

    def arm(self):
        real(self)
        self.payload["format"] = 99

    monkeypatch.setattr(race.Racer, "arm", arm)
    plan = solve(default, race=True)
    assert plan.status is SolveStatus.OPTIMAL
    assert plan.objective == pytest.approx(proven["objective"], rel=1e-4)
    helper = plan.result.helper
    assert helper is not None and helper["status"].startswith("error: ") and not helper["plan"], helper
