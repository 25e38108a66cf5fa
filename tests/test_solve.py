"""Solver outcomes are honest, typed, and reproducible; generated plans pass the checker."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import tiny
from plan_checker import check_plan

from optimizer import SolveStatus, load_instance, solve
from optimizer.instance.generate import generate_instance


def test_optimal_tiny_by_hand():
    # 2 MW existing, 1 MW chips at $100, blocks of 1 MW for $10 online at once, demand 1 PFLOP/s.
    # Chips live 2 years, so buy everything in 2026: each chip + its block costs $110 and gives
    # 2 PFLOP/s-years; 2 chips fit the existing 2 MW ($200), then (1000-200)/110 = 7.27 -> 7 more
    # with 7 blocks ($770): 9 chips, $970. Train = 9 - 1 (demand) = 8 in each year -> 16.
    plan = solve(load_instance(tiny()))
    assert plan.status is SolveStatus.OPTIMAL
    assert plan.objective == pytest.approx(16.0, rel=1e-9)
    assert plan.mip_gap <= 1e-4
    check_plan(plan.instance, plan)


def test_infeasible_hard_demand():
    plan = solve(load_instance(tiny(regions__r__inference_demand_pflops=1e6)))
    assert plan.status is SolveStatus.INFEASIBLE
    assert plan.objective is None and plan.purchases.empty
    assert plan.summary.status.iloc[0] == "infeasible"


def test_infeasible_detected_while_building():
    # existing facilities above the regional maximum: no variable can fix that
    plan = solve(load_instance(tiny(regions__r__max_mw=1)))
    assert plan.status is SolveStatus.INFEASIBLE
    assert "r already has 2.0 MW of facilities, above its maximum of 1.0 MW" in plan.message


def test_unbounded_without_budget_or_caps():
    plan = solve(load_instance(tiny(budget=None)))
    assert plan.status is SolveStatus.UNBOUNDED
    assert plan.objective is None and "unbounded" in plan.message


@pytest.fixture(scope="module")
def hard():
    return load_instance(generate_instance(30, 10, 15, seed=0))


def test_time_limit_without_plan_is_not_a_plan(hard):
    plan = solve(hard, time_limit=0.01)
    assert plan.status is SolveStatus.NO_SOLUTION
    assert plan.objective is None and plan.mip_gap is None and plan.purchases.empty


def test_time_limit_with_incumbent_reports_gap_never_optimal(hard):
    plan = solve(hard, time_limit=4, mip_gap=0.0)
    assert plan.status is not SolveStatus.OPTIMAL
    if plan.status is SolveStatus.FEASIBLE:  # an incumbent was found in time
        assert plan.mip_gap > 0 and plan.result.bound is not None
        assert plan.result.bound >= plan.objective  # max_training: bound above incumbent
        assert "not proven optimal" in plan.message
        assert plan.summary.status.iloc[0] == "feasible"
        check_plan(hard, plan, rel_tol=1e-6)


@pytest.fixture
def limits_given(monkeypatch) -> list:
    """The (time limit, build seconds) each search is given, with every build taking 0.5 s and 30 s of the
    limit kept per 0.5 s of build (WIND_DOWN_PER_BUILD = 60)."""
    import optimizer.pipeline as pipeline
    from optimizer.solver import ModelHandle

    given = []
    real = ModelHandle.solve

    def solve_spy(self, options=None, **kwargs):
        given.append((options.time_limit, self.build_seconds))
        return real(self, options, **kwargs)

    monkeypatch.setattr(ModelHandle, "solve", solve_spy)
    monkeypatch.setattr(pipeline, "WIND_DOWN_PER_BUILD", 30.0 / 0.5)
    monkeypatch.setattr(ModelHandle, "build_seconds", property(lambda self: 0.5, lambda self, v: None),
                        raising=False)
    return given


def test_a_time_limit_keeps_time_for_the_tables_after_the_search(limits_given):
    """--time-limit bounds the whole run: the search gets what is left after the build, less the time HiGHS
    takes to stop and the plan's tables to read (WIND_DOWN_PER_BUILD times the build's).  The limit HiGHS is
    given is checked (not a wall time, which depends on the machine)."""
    given = limits_given
    plan = solve(load_instance(tiny()), time_limit=1000.0)
    (limit, build), = given
    assert build == 0.5
    assert 900.0 < limit <= 1000.0 - 30.0  # the 30 s kept for the tables, and only a little more for the build
    assert plan.status is SolveStatus.OPTIMAL


def test_an_analysis_solve_keeps_the_same_time_after_its_search(limits_given):
    """The value of information's solves (on workers) end by the whole run's deadline too: their search gets
    what is left after their own build, less the time kept to stop HiGHS and read the results."""
    import time

    import optimizer.pipeline as pipeline

    row = pipeline.solve_task({"instance": load_instance(tiny()), "time_limit": None, "mip_gap": 1e-4,
                               "deadline": time.time() + 1000.0})
    assert row["status"] == "optimal"
    ((limit, _),) = limits_given
    assert 900.0 < limit <= 1000.0 - 30.0


def test_analyses_left_at_the_deadline_are_not_started_nor_sent(monkeypatch):
    """Past the whole run's deadline the analysis solves not yet handed out are reported as not started
    without a worker being asked (1,000 of them took seconds to refuse, past the limit)."""
    import time

    import optimizer.pipeline as pipeline
    from optimizer.parallel import Runner

    inst = load_instance(Path(__file__).resolve().parent.parent / "instances" / "tiny-tree-hedge.yaml")
    calls = []
    real = pipeline.solve_task
    monkeypatch.setattr(pipeline, "solve_task", lambda payload: calls.append(1) or real(payload))
    jobs = pipeline._Jobs(inst, None, {"time_limit": None, "mip_gap": 1e-4, "deadline": time.time() - 1.0}, None)
    jobs.add("base", inst.base(), None, root=True)
    for s in inst.scenarios():
        jobs.add(f"ws:{s.id}", s.instance, None)
    with Runner(1) as runner:
        jobs.start(runner)
        results = jobs.finish(runner)
    assert not calls  # none leaves the queue
    assert set(results) == {"base", *(f"ws:{s.id}" for s in inst.scenarios())}
    assert all(r["message"] == pipeline.NOT_STARTED and r["status"] == "no_solution" for r in results.values())


@pytest.mark.parametrize("limit, margin", [(1800.0, 2.0), (10.0, 0.5)])
def test_the_analyses_end_before_the_whole_runs_deadline(monkeypatch, limit, margin):
    """The value of information's solves are given a deadline ANALYSES_MARGIN (at most 5% of the limit)
    before the plan's: joining their results and closing the workers come after them."""
    import optimizer.pipeline as pipeline

    seen = {}
    real_jobs, real_solve = pipeline._Jobs.__init__, pipeline.solve_model

    def jobs_spy(self, instance, commitments, options, on_step):
        seen["analyses"] = options["deadline"]
        real_jobs(self, instance, commitments, options, on_step)

    def solve_spy(*args, deadline=None, **kwargs):
        seen["plan"] = deadline
        return real_solve(*args, deadline=deadline, **kwargs)

    monkeypatch.setattr(pipeline._Jobs, "__init__", jobs_spy)
    monkeypatch.setattr(pipeline, "solve_model", solve_spy)
    inst = load_instance(Path(__file__).resolve().parent.parent / "instances" / "tiny-tree-hedge.yaml")
    plan = solve(inst, time_limit=limit, workers=1)
    assert plan.status.has_plan
    assert seen["plan"] - seen["analyses"] == pytest.approx(margin)


@pytest.mark.parametrize("size, seed", [((3, 3, 10), 0), ((3, 2, 6), 1)])
def test_generated_plans_pass_the_checker(size, seed):
    inst = load_instance(generate_instance(*size, seed=seed))
    plan = solve(inst)
    assert plan.status is SolveStatus.OPTIMAL
    check_plan(inst, plan)


def test_same_instance_same_plan():
    inst = load_instance(generate_instance(3, 3, 10, seed=0))
    a, b = solve(inst), solve(inst)
    assert a.objective == b.objective
    for name, df in a.tables().items():
        if name != "summary":
            assert df.equals(b.tables()[name]), name


def test_summary_fields(default_plan):
    s = default_plan.summary.iloc[0]
    assert s.status == "optimal" and s.solver == "highs" and s.solver_version == "1.15.1"
    assert len(s.instance_hash) == 64
    assert s.total_spend_usd == pytest.approx(default_plan.spend.total_usd.sum())
    assert s.budget_used_share == pytest.approx(s.total_spend_usd / 100e9)
    assert s.peak_capacity_mw == pytest.approx(default_plan.facilities.groupby("year").capacity_mw.sum().max())
    assert not math.isnan(s.objective)


@pytest.mark.parametrize("make", [
    lambda: load_instance(generate_instance(3, 2, 6, seed=1)),
    lambda: load_instance(generate_instance(3, 3, 10, seed=0)),
    lambda: load_instance("instances/tiny-frontier-cluster.yaml"),
    lambda: load_instance("instances/tiny-chips-per-unit.yaml"),
    lambda: load_instance("instances/tiny-min-cost.yaml"),
])
def test_starting_plan_keeps_the_optimum(make):
    """The warm start only supplies an incumbent: the optimum is the same without it."""
    inst = make()
    with_start, without = solve(inst), solve(inst, warm_start=False)
    assert with_start.status is without.status is SolveStatus.OPTIMAL
    scale = max(abs(without.objective), 1.0)
    assert abs(with_start.objective - without.objective) <= 2e-4 * scale
    check_plan(inst, with_start)


def test_gap_is_relative_to_gross_training_when_objective_nearly_cancels():
    # $80B: unmet-demand penalties nearly cancel training (objective ~1e4 vs ~1e6 gross)
    inst = load_instance("instances/aws-5gw-2026.yaml").with_changes({"budget.total_usd": 80e9})
    plan = solve(inst, time_limit=120)
    assert plan.status is SolveStatus.OPTIMAL and plan.mip_gap <= 1e-4
    gross = sum(inst.delta(t) * tr for t, tr in zip(plan.split.year, plan.split.train_pflops))
    assert abs(plan.objective) < 0.05 * gross  # the degenerate case this definition is for
    assert abs(plan.result.bound - plan.objective) <= 1e-4 * gross * 1.01
    check_plan(inst, plan)


@pytest.mark.parametrize("source", ["instances/aws-5gw-2026.yaml", (3, 3, 10), (12, 8, 15), (30, 10, 15)])
def test_matrix_is_well_conditioned(source):
    """Internal scaling keeps the ranges HiGHS sees small (unscaled USD against MW would span ~1e12)."""
    from optimizer.solver import ModelHandle

    data = source if isinstance(source, str) else generate_instance(*source)
    ranges = ModelHandle(load_instance(data)).size()["ranges"]
    for name, limit in (("matrix", 1e6), ("rhs", 1e7), ("bounds", 1e7)):
        lo, hi = ranges[name]
        assert lo > 0 and hi / lo < limit, (name, lo, hi)


def test_solver_failure_is_an_error_status(monkeypatch):
    import highspy

    def broken(self, *args, **kwargs):
        raise RuntimeError("HiGHS crashed")

    monkeypatch.setattr(highspy.Highs, "run", broken)
    plan = solve(load_instance(tiny()), warm_start=False)
    assert plan.status is SolveStatus.ERROR and "HiGHS crashed" in plan.message
    assert plan.objective is None and plan.purchases.empty


def test_zero_cost_blocks_and_a_year_without_purchases():
    """Regression: a spend row whose only variable terms have zero cost crashed the build.

    One region with 10 MW (its maximum), blocks free, an annual cap of $1000 and a
    chip first sold in 2027: buy 10 chips in 2027 ($1000), train 10 PFLOP/s-years.
    """
    data = tiny(budget={"annual_max_usd": 1000}, regions__r__existing_mw=10, regions__r__max_mw=10,
                regions__r__block_capex_usd=0, regions__r__inference_demand_pflops=None,
                chips__g__available_from=2027)
    plan = solve(load_instance(data))
    assert plan.status is SolveStatus.OPTIMAL and plan.objective == pytest.approx(10.0, rel=1e-9)
    check_plan(plan.instance, plan)


def test_progress_reports_come_from_the_solver():
    calls = []
    plan = solve(load_instance(generate_instance(6, 5, 10, seed=0)), progress=calls.append)
    assert calls, "no progress reported"
    assert [c.elapsed_seconds for c in calls] == sorted(c.elapsed_seconds for c in calls)
    with_bound = [c for c in calls if c.bound is not None and c.incumbent is not None]
    assert with_bound and all(c.bound >= c.incumbent - 1e-6 * abs(c.incumbent) for c in with_bound)
    assert calls[-1].incumbent <= plan.result.bound + 1e-6 * abs(plan.result.bound)


def test_variables_in_no_row_do_not_break_the_solve():
    """A region where no chip fits (pue 1899) has block variables in no row: Pyomo does not send them
    to HiGHS, and the starting plan and the marginals must skip them (was a KeyError)."""
    import yaml

    raw = yaml.safe_load(Path("instances/tiny-cross-region-serving.yaml").read_text())
    raw["regions"]["remote"]["pue"] = 1899
    plan = solve(load_instance(raw))
    assert plan.status in (SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE)
    plan.marginals  # noqa: B018 - must not raise


@pytest.mark.parametrize("make", [
    lambda: load_instance("instances/tiny-chips-per-unit.yaml"),
    lambda: load_instance("instances/tiny-min-cost.yaml"),
    lambda: load_instance("instances/tiny-tree-hedge.yaml"),
    lambda: load_instance("instances/tiny-tree-min-cost.yaml"),
])
def test_a_loose_gap_stops_on_a_valid_bound(make):
    """The bound of the program with continuous chip units (from the starting plan) is a valid bound of the
    program: on the optimum's side of it; a solve that stops on it is within the gap it was asked for."""
    from optimizer.solver import ModelHandle, SolveOptions

    inst = make()
    exact = ModelHandle(inst).solve(SolveOptions(mip_gap=0, threads=1))
    loose = ModelHandle(inst).solve(SolveOptions(mip_gap=0.05, threads=1))
    assert exact.status is loose.status is SolveStatus.OPTIMAL
    sign = 1 if inst.objective.kind == "max_training" else -1
    tol = 1e-6 * max(1.0, abs(exact.objective))
    assert sign * (loose.bound - exact.objective) >= -tol  # never past the optimum
    assert sign * (exact.objective - loose.objective) >= -tol  # the plan is no better than the optimum
    assert abs(loose.bound - loose.objective) <= 0.05 * max(abs(loose.objective), loose.gross or 0) + tol


def test_tighter_bound_and_stopping_rule():
    from optimizer.solver.highs import _tighter, _within

    assert _tighter(10.0, 9.0, maximize=True) == 9.0 and _tighter(10.0, 9.0, maximize=False) == 10.0
    assert _tighter(None, 9.0, True) == 9.0 and _tighter(3.0, None, False) == 3.0 and _tighter(None, None, True) is None
    assert _within(100.0, 100.5, rel_gap=0.01, abs_gap=0.0)  # 0.5 <= 1% of 100
    assert not _within(100.0, 102.0, rel_gap=0.01, abs_gap=1.0)
    assert _within(100.0, 102.0, rel_gap=0.0, abs_gap=2.0)  # the absolute gap (of gross training) suffices
    assert not _within(100.0, None, rel_gap=0.5, abs_gap=10.0)


def test_the_relaxed_units_bound_is_tighter_than_the_search_at_its_stop():
    """Where the search stops early (a loose gap), the reported bound is the relaxed-units program's, which
    is tighter than the one HiGHS's own search holds at that point (the reason it is kept)."""
    from optimizer.solver import ModelHandle, SolveOptions

    h = ModelHandle(load_instance(generate_instance(3, 3, 10, seed=0)))
    r = h.solve(SolveOptions(mip_gap=0.05, threads=1))
    own = h.highs.getInfo().mip_dual_bound * h.info.objective_factor
    assert r.status is SolveStatus.OPTIMAL
    # max_training: an upper bound, and a smaller one (HiGHS's is +inf where it stopped before its root bound)
    assert r.bound < own and r.bound < 1.001 * r.objective


def test_a_handle_solved_again_is_proven_again():
    """The search stopped at the gap by capplan's interrupt leaves HiGHS's interrupt flag set; the next solve
    on the same handle (sweeps, alternatives) must not inherit it."""
    from optimizer.solver import ModelHandle, SolveOptions

    h = ModelHandle(load_instance("instances/aws-5gw-2026.yaml"))
    first = h.solve(SolveOptions(threads=1))
    again = h.solve(SolveOptions(threads=1))
    watched = h.solve(SolveOptions(threads=1, warm_start=False, progress=lambda p: None))
    assert first.status is again.status is watched.status is SolveStatus.OPTIMAL
    assert again.objective == pytest.approx(first.objective, rel=2e-4)


@pytest.mark.parametrize("integer_step_time", [True, False])
def test_the_starting_plan_survives_a_relaxed_run_past_its_share(monkeypatch, integer_step_time):
    """HiGHS can run past the limit of the starting plan's run with continuous chip units (the shipped tree:
    31 s on a 24 s limit, which left the step that makes its units whole no time, and the search started from
    nothing: 3% at 60 s instead of 3e-4).  That step keeps its share; with no share at all the relaxed plan is
    still handed to HiGHS, which repairs its fractional units.  (Deterministic: the clock jumps after the
    relaxed run.)"""
    import highspy

    import optimizer.solver.highs as highs
    from optimizer.solver import ModelHandle, SolveOptions

    inst = load_instance(generate_instance(3, 2, 6, seed=1))
    assert inst.objective.kind == "max_training"
    handle = ModelHandle(inst)
    units = handle.columns(handle.model.n)
    clock, runs, starts = highs.time.perf_counter, [], []
    real_run, real_set = highspy.Highs.run, highspy.Highs.setSolution

    def run(self):
        out = real_run(self)
        runs.append(self.getInfo().primal_solution_status)
        return out

    def set_solution(self, sol):
        starts.append(list(sol.col_value))
        return real_set(self, sol)

    def perf_counter():  # the gross LP, then the relaxed run: from then on its share and the start's are spent
        return clock() + (1e6 if len(runs) >= 2 else 0.0)

    monkeypatch.setattr(highspy.Highs, "run", run)
    monkeypatch.setattr(highspy.Highs, "setSolution", set_solution)
    monkeypatch.setattr(highs.time, "perf_counter", perf_counter)
    if not integer_step_time:
        monkeypatch.setattr(highs, "RELAXED_SHARE", 1.0)
    handle._starting_plan(SolveOptions(time_limit=100), deadline=clock() + 100)
    assert len(starts) == 1
    fractional = [j for j in units if abs(starts[0][j] - round(starts[0][j])) > 1e-6]
    if integer_step_time:
        assert len(runs) == 3 and runs[2] == 2 and not fractional  # the whole-units step ran and found a plan
    else:
        assert len(runs) == 2 and fractional  # no step: the relaxed plan, fractional units and all
    monkeypatch.setattr(highs.time, "perf_counter", clock)
    result = handle.solve(SolveOptions(start=starts[0], mip_gap=1e-4))
    assert result.status is SolveStatus.OPTIMAL  # from either start, the search proves the optimum


def test_a_task_running_at_the_deadline_is_stopped_not_waited_for():
    """A solve in a worker can run past its own limit (a 162-scenario run ended 3 s past its 600 s waiting for
    one): at the runner's deadline it is given up and its worker stopped, and the task still queued behind it
    never starts.  (The task would sleep 1,000 s: the test ends long before, however busy the machine.)"""
    import time

    from optimizer.parallel import Abandoned, Runner

    with Runner(1, beside=True) as runner:
        runner.submit("slow", time.sleep, 1000)
        runner.submit("waiting", time.sleep, 1000)
        runner.window = 1
        rows = list(runner.results(until=time.time() + 3.0))
        ended = time.time()
    assert time.time() - ended < 60  # closing the runner did not wait for the sleeping worker
    assert [(key, type(err), err.started) for key, _, err in rows] == [("slow", Abandoned, True),
                                                                        ("waiting", Abandoned, False)]


def test_stopped_workers_leave_no_warning_from_the_resource_tracker(tmp_path):
    """Workers stopped at a deadline can leave their pool's semaphores to multiprocessing's resource tracker,
    which removes them at exit and warned of "leaked semaphore objects" after a run that kept its limit (seen
    at the end of `capplan solve` on a 54-scenario tree at 30 s).  The tracker starts with the warning options
    of the process: a runner with worker processes gives it the filter that silences that warning alone."""
    import subprocess
    import sys

    script = tmp_path / "leak.py"
    script.write_text(
        "import multiprocessing as mp, subprocess, sys\n"
        "from multiprocessing import resource_tracker\n"
        "from optimizer.parallel import Runner\n"
        "if __name__ == '__main__':\n"
        "    with Runner(1, beside=True):\n"
        "        pass\n"
        "    print(subprocess._args_from_interpreter_flags())\n"
        "    lock = mp.get_context('spawn').Lock()\n"
        "    resource_tracker.register(lock._semlock.name, 'semaphore')  # a semaphore left to the tracker\n"
        "    resource_tracker.register('/capplan-test-leak', 'semaphore')\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "-Wignore:resource_tracker:UserWarning" in run.stdout
    assert "leaked semaphore" not in run.stderr
