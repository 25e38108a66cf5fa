"""Solving a built model with HiGHS (through Pyomo's persistent interface) and reading the outcome."""

from __future__ import annotations

import time
from collections.abc import Callable

import highspy
import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from .result import Progress, SolveResult, SolveStatus


def coefficient_ranges(lp) -> dict[str, tuple[float, float]]:
    """(smallest, largest) absolute nonzero of the matrix, costs, bounds and right-hand sides."""
    import numpy as np

    def rng(values) -> tuple[float, float]:
        a = np.abs(np.asarray(values, dtype=float))
        a = a[(a > 0) & (a < highspy.kHighsInf)]
        return (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)

    return {"matrix": rng(lp.a_matrix_.value_), "cost": rng(lp.col_cost_),
            "bounds": rng(list(lp.col_lower_) + list(lp.col_upper_)),
            "rhs": rng(list(lp.row_lower_) + list(lp.row_upper_))}


def solver_version() -> str:
    h = highspy.Highs()
    return f"{h.versionMajor()}.{h.versionMinor()}.{h.versionPatch()}"


_TC = TerminationCondition


def attach(model) -> tuple[Highs, float]:
    """A persistent HiGHS solver holding ``model``, and the seconds the hand-off took.

    Pyomo's automatic change detection is off: a caller that changes the
    model's mutable parameters calls ``opt.update_parameters()`` itself.
    """
    opt = Highs()
    auto = opt.config.auto_updates
    for flag in ("check_for_new_or_removed_constraints", "check_for_new_or_removed_vars",
                 "check_for_new_or_removed_params", "update_constraints", "update_vars",
                 "update_named_expressions", "check_for_new_objective", "update_objective",
                 "update_parameters"):  # update_parameters would re-send every bound and drop the MIP start
        setattr(auto, flag, False)
    t0 = time.perf_counter()
    opt.set_instance(model)
    return opt, time.perf_counter() - t0


def columns(opt: Highs, *components) -> list[int]:
    """HiGHS column indices of the variables of ``components`` that HiGHS holds.

    Pyomo sends only variables that appear in some row or in the objective: a
    block variable of a region where no chip fits, for example, has none.
    """
    col = opt._pyomo_var_to_solver_var_map
    return [col[id(v)] for var in components for v in var.values() if id(v) in col]


def run_model(
    model,
    *,
    time_limit: float | None = None,
    mip_gap: float = 1e-4,
    threads: int | None = None,
    log: bool = False,
    progress: Callable[[Progress], None] | None = None,
    build_seconds: float = 0.0,
    warm_start: bool = True,
    opt: Highs | None = None,
    handoff: float = 0.0,
    abs_gap: float | None = None,
) -> SolveResult:
    """Solve a model made by :func:`formulations.build_model`; load the plan into it if any.

    ``abs_gap`` (objective units) replaces the relative ``mip_gap`` as the
    stopping rule: the search stops when the plan is within that absolute
    distance of the bound (a part of a larger sum, as in the EEV solves).

    ``opt`` is a persistent solver already holding the model (see :func:`attach`),
    for re-solves after :func:`formulations.model.update_model`; ``handoff`` is
    then the seconds its update took.
    """
    info = model.info
    version = solver_version()
    if info.trivially_infeasible:
        msg = "; ".join(what for _, what in info.trivially_infeasible)
        return SolveResult(SolveStatus.INFEASIBLE, msg, None, None, None, build_seconds, 0.0, 0.0,
                           "highs", version)

    if opt is None:
        opt, handoff = attach(model)
    h = opt._solver_model  # the highspy.Highs object behind the persistent interface
    lp = h.getLp()
    integers = sum(1 for v in lp.integrality_ if v != highspy.HighsVarType.kContinuous)
    size = dict(rows=lp.num_row_, columns=lp.num_col_, integers=integers,
                nonzeros=len(lp.a_matrix_.value_), ranges=coefficient_ranges(lp))

    factor = info.objective_factor
    start = time.perf_counter()
    state = {"final": False, "gross": None, "last": 0.0}
    if progress is not None:
        def on_event(e):
            now = time.perf_counter()
            if not state["final"] or now - state["last"] < 0.25:  # starting-plan phases are restricted
                return
            state["last"] = now
            d = e.data_out
            inc = d.objective_function_value if abs(d.objective_function_value) < 1e50 else None
            bnd = d.mip_dual_bound if abs(d.mip_dual_bound) < 1e50 else None
            gap = None
            if inc is not None and bnd is not None:
                gap = abs(bnd - inc) / max(abs(inc), abs(state["gross"] or 0.0), 1e-9)
            progress(Progress(time.perf_counter() - start,
                              None if inc is None else inc * factor,
                              None if bnd is None else bnd * factor, gap))

        h.cbMipImprovingSolution.subscribe(on_event)
        h.cbMipInterrupt.subscribe(on_event)  # called often during the search: throttled above

    options = {"allow_unbounded_or_infeasible": False, "random_seed": 0, **EXTRA_OPTIONS}
    for name, value in EXTRA_OPTIONS.items():  # the starting-plan runs read them from the HiGHS object
        h.setOptionValue(name, value)
    remaining = time_limit
    gross = None
    if warm_start:
        col = opt._pyomo_var_to_solver_var_map
        units = columns(opt, model.n)
        others = columns(opt, model.k, model.z)
        inst, tree = model._inst, model._tree
        gross_cols = {}
        if inst.objective.kind == "max_training":  # expected discounted training
            gross_cols = {col[id(model.xT[g, r, t, v])]: tree.probability[v] * inst.delta(t) * model._train_coef(g, v)
                          for g, r, t, v in model.X_IDX if id(model.xT[g, r, t, v]) in col}
        budget = None if time_limit is None else 0.25 * time_limit
        t_ws = time.perf_counter()
        _, gross = _mip_start(h, units, others, budget, threads, log, gross_cols)
        if time_limit is not None:
            remaining = max(0.01, time_limit - (time.perf_counter() - t_ws))
        if gross:
            # gap relative to max(|objective|, gross training): see docs/model.md
            options["mip_abs_gap"] = mip_gap * abs(gross)
    state.update(final=True, gross=gross)
    rel_gap = mip_gap
    if abs_gap is not None:
        options["mip_abs_gap"] = abs_gap / abs(factor)
        rel_gap = 0.0
    try:
        res = opt.solve(
            model,
            tee=log,
            time_limit=remaining,
            rel_gap=rel_gap,
            threads=threads,
            load_solutions=False,
            raise_exception_on_nonoptimal_result=False,
            solver_options=options,
        )
    except Exception as exc:  # the solver itself failed: report, never crash the caller
        return SolveResult(SolveStatus.ERROR, f"HiGHS failed: {exc}", None, None, None,
                           build_seconds, handoff, time.perf_counter() - start, "highs", version,
                           **size)
    solve_seconds = time.perf_counter() - start

    tc = res.termination_condition
    has_plan = res.incumbent_objective is not None
    hinfo = h.getInfo()
    gap = None
    if has_plan:
        gap = 0.0
        if hinfo.mip_node_count >= 0 and abs(hinfo.mip_dual_bound) < 1e50:
            inc = hinfo.objective_function_value
            scale = max(abs(inc), abs(gross or 0.0), 1e-9)
            gap = abs(hinfo.mip_dual_bound - inc) / scale
    bound = None
    if res.objective_bound is not None and abs(res.objective_bound) < 1e50:
        bound = res.objective_bound * factor

    if tc == _TC.convergenceCriteriaSatisfied:
        status, msg = SolveStatus.OPTIMAL, f"optimal within a relative gap of {mip_gap:g}"
        if abs_gap is not None:
            msg = f"optimal within an absolute gap of {abs_gap:g}"
        elif gross:
            msg += " (of the larger of |objective| and gross discounted training)"
    elif tc in (_TC.maxTimeLimit, _TC.iterationLimit, _TC.interrupted):
        if has_plan:
            status = SolveStatus.FEASIBLE
            msg = f"stopped by the time limit with a plan {gap:.4%} from the best bound (not proven optimal)"
        else:
            status, msg = SolveStatus.NO_SOLUTION, "stopped by the time limit before any plan was found"
    elif tc == _TC.provenInfeasible:
        status, msg = SolveStatus.INFEASIBLE, "no plan satisfies every constraint of the instance"
    elif tc in (_TC.unbounded, _TC.infeasibleOrUnbounded):
        status = SolveStatus.UNBOUNDED
        msg = "the objective is unbounded: add a budget, a power ceiling or regional maxima"
    else:
        status, msg = SolveStatus.ERROR, f"HiGHS ended with {h.modelStatusToString(h.getModelStatus())}"

    objective = None
    if status.has_plan:
        res.solution_loader.load_vars()
        _round_integers(model)
        objective = pyo.value(model.obj) * factor
    return SolveResult(status, msg, objective, bound, gap, build_seconds, handoff, solve_seconds,
                       "highs", version, **size, gross=None if not gross else abs(gross * factor),
                       handle=(model, opt) if status.has_plan else None)


EXTRA_OPTIONS: dict = {}
"""HiGHS options applied to every solve (starting plan and search); empty. A hook for benchmarks of solver
settings (``benchmarks/hard.py --config o:NAME=VALUE``)."""

START_GAP = 1e-4
"""Absolute stopping gap of the starting-plan runs (max_training), as a share of the LP's gross training."""


def _mip_start(h: highspy.Highs, units: list[int], others: list[int], time_budget: float | None,
               threads: int | None, log: bool, gross_cols: dict[int, float]) -> tuple[bool, float | None]:
    """Give HiGHS a good starting plan; returns whether one was set, and the gross scale.

    The gross scale is sum(coef * value) over ``gross_cols`` in the relaxed
    plan (the discounted training term of a max_training objective), used to
    measure the gap where penalties nearly cancel training.

    The chip-unit integers n make the program hard to close (a budget
    knapsack over units of 64-144 chips), while with n continuous it solves in
    a fraction of a second.  So: (1) solve with n continuous, (2) fix the
    blocks and frontier sites (k, z) of that plan and solve for integer n
    alone, (3) restore the full program and hand the plan to HiGHS as its
    incumbent.  The optimum is unchanged: this only supplies a feasible plan.

    For max_training the two runs stop at an absolute gap of
    :data:`START_GAP` times the gross training of the LP relaxation, as the
    final search does: where training and penalties nearly cancel (low
    budgets) a gap relative to |objective| cannot close, and the runs used to
    spend their whole share of the time limit (docs/performance.md).
    """
    kInt, kCont = highspy.HighsVarType.kInteger, highspy.HighsVarType.kContinuous
    lp = h.getLp()
    n_units = len(units)
    h.setOptionValue("output_flag", log)
    if threads is not None:
        h.setOptionValue("threads", threads)
    deadline = None if time_budget is None else time.perf_counter() + time_budget

    def run(fraction: float) -> bool:
        if deadline is not None:
            left = deadline - time.perf_counter()
            if left <= 0.01:
                return False
            h.setOptionValue("time_limit", left * fraction)
        # HiGHS takes the previous run's solution (with fractional integers) as a MIP start and first
        # solves a sub-MIP to repair it; measured, that helps (6x5x10: 3.8 s against 7.9 s when the
        # solution is cleared with clearSolver), so it is kept
        h.run()
        return h.getInfo().primal_solution_status == 2

    ok = False
    gross = None
    saved = (h.getOptionValue("mip_rel_gap")[1], h.getOptionValue("mip_abs_gap")[1])
    try:
        if gross_cols:  # the scale of the starting runs' gap: gross training of the LP relaxation
            ints = [c for c, v in enumerate(lp.integrality_) if v != kCont]
            h.changeColsIntegrality(len(ints), ints, [kCont] * len(ints))
            h.run()
            if h.getInfo().primal_solution_status == 2:
                x = h.getSolution().col_value
                scale = abs(sum(c * x[j] for j, c in gross_cols.items()))
                h.setOptionValue("mip_abs_gap", max(1e-6, START_GAP * scale))
            h.changeColsIntegrality(len(ints), ints, [lp.integrality_[c] for c in ints])
        h.changeColsIntegrality(n_units, units, [kCont] * n_units)
        if run(0.5):
            relaxed = list(h.getSolution().col_value)
            gross = sum(coef * relaxed[c] for c, coef in gross_cols.items())
            h.changeColsIntegrality(n_units, units, [kInt] * n_units)
            lo = [lp.col_lower_[c] for c in others]
            hi = [lp.col_upper_[c] for c in others]
            fixed = [float(round(relaxed[c])) for c in others]
            if others:
                h.changeColsBounds(len(others), others, fixed, fixed)
            ok = run(1.0)
            start = list(h.getSolution().col_value) if ok else None
            if others:
                h.changeColsBounds(len(others), others, lo, hi)
        h.changeColsIntegrality(n_units, units, [kInt] * n_units)
        if ok:
            sol = highspy.HighsSolution()
            sol.col_value = start
            sol.value_valid = True
            h.setSolution(sol)
    finally:
        h.setOptionValue("output_flag", True)
        h.setOptionValue("time_limit", highspy.kHighsInf)
        h.setOptionValue("mip_rel_gap", saved[0])
        h.setOptionValue("mip_abs_gap", saved[1])
    return ok, gross


def _round_integers(model) -> None:
    """Integer variables come back within the solver's integrality tolerance; make them exact."""
    for var in (model.n, model.k, model.K, model.z):
        for v in var.values():
            if v.value is not None:
                v.set_value(float(round(v.value)), skip_validation=True)
    for var in (model.xT, model.xI, model.y, model.m):
        for v in var.values():
            if v.value is not None and v.value < 0:
                v.set_value(0.0, skip_validation=True)



def load_columns(model, opt: Highs, values) -> None:
    """Load a HiGHS column vector into the model's variables (integers made exact)."""
    col = opt._pyomo_var_to_solver_var_map
    for var in model.component_objects(pyo.Var, active=True):
        for v in var.values():
            c = col.get(id(v))
            v.set_value(None if c is None else float(values[c]), skip_validation=True)
    _round_integers(model)


def highs_status(h: highspy.Highs) -> SolveStatus:
    """What a direct HiGHS run established (for solves driven through the highspy object itself)."""
    ms = h.getModelStatus()
    S = highspy.HighsModelStatus
    has_plan = h.getInfo().primal_solution_status == 2
    if ms == S.kOptimal:
        return SolveStatus.OPTIMAL
    if ms in (S.kTimeLimit, S.kIterationLimit, S.kInterrupt, S.kSolutionLimit):
        return SolveStatus.FEASIBLE if has_plan else SolveStatus.NO_SOLUTION
    if ms == S.kInfeasible:
        return SolveStatus.INFEASIBLE
    if ms in (S.kUnbounded, S.kUnboundedOrInfeasible):
        return SolveStatus.UNBOUNDED
    return SolveStatus.ERROR
