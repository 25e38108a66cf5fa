"""The model handle: one built model and the HiGHS solver holding it.

Every solve of capplan goes through :class:`ModelHandle`: the plan of an
instance (:func:`optimizer.pipeline.solve`), the scenarios of a sweep
(updated in place), the near-optimal ranges (a row added, the objective
changed, solved again on the same handle, as PyPSA's ``optimize_mga`` does),
the elastic program and the conflict behind an explanation, the value of
information of a tree (with root decisions held), and the marginal values of
a plan.  This is the only module that imports ``highspy`` or touches Pyomo's
private solver attributes; everything else speaks to the handle.

Pyomo builds the model (:func:`formulations.build_model`) and hands it to
HiGHS once (``set_instance``, its automatic change detection off); the
handle then drives the ``highspy.Highs`` object itself: options set in one
place (:class:`SolveOptions`), one map from HiGHS's model status to
:class:`~optimizer.solver.result.SolveStatus`, and the solution loaded back
into the Pyomo variables for the plan tables.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.solvers.highs import Highs

from formulations import build_model, structure_key, update_model
from formulations.model import node_values

from . import race, staged
from ._racer import better as _better
from ._racer import tighter as _tighter
from ._racer import within as _within
from .result import Progress, SolveResult, SolveStatus

INF = highspy.kHighsInf
_S = highspy.HighsModelStatus
_CONT, _INT = highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger
_IMPROVING = highspy.cb.HighsCallbackType.kCallbackMipImprovingSolution
_SEARCHED = (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE, SolveStatus.NO_SOLUTION)  # a search ran; it may have a plan

EXTRA_OPTIONS: dict = {}
"""HiGHS options applied to every solve (starting plan and search); empty. A hook for benchmarks of solver
settings (``benchmarks/hard.py --config o:NAME=VALUE``)."""

STAGED_SHARE = 0.6
"""Share of a time limit the staged starting plan of a large tree may take (:mod:`optimizer.solver.staged`);
the search after it has the rest."""

RELAXED_SHARE = 0.8
"""Share of the starting plan's time for the run with continuous chip units (its bound is kept); the rest, at
least, for making its plan's units whole."""

START_GAP = 1e-4
"""Absolute stopping gap of the starting-plan runs (max_training), as a share of the LP's gross training."""


@dataclass(frozen=True)
class SolveOptions:
    """How to solve: one typed value for every solve of capplan.

    ``time_limit`` (seconds, None: none) bounds the whole solve, starting plan
    included; ``mip_gap`` is the relative gap at which the search stops (of
    the larger of |objective| and the gross discounted training for
    max_training, see docs/model.md); with ``abs_gap`` (objective units) the
    search also stops at that absolute gap (with ``mip_gap=0``, only there:
    a part of a larger sum, as in the EEV solves); ``warm_start`` computes capplan's starting plan
    (:func:`_mip_start`, or for a large tree :func:`~optimizer.solver.staged.staged_start`, whose leaves
    are solved on ``workers`` local processes: default the cores, 1 in this process); ``start`` is a HiGHS
    column vector to start from
    instead (a plan of the same handle); ``progress`` receives
    :class:`~optimizer.solver.result.Progress` reports during the search; ``race`` lets a search that has
    not proven its plan after :data:`~optimizer.solver.race.RACE_AFTER` seconds share the work with a second
    search on an idle core (:mod:`optimizer.solver.race`; None: under a time limit, where a core is idle;
    True/False: always/never).
    """

    time_limit: float | None = None
    mip_gap: float = 1e-4
    abs_gap: float | None = None
    threads: int | None = None
    log: bool = False
    warm_start: bool = True
    start: Sequence[float] | None = None
    progress: Callable[[Progress], None] | None = None
    workers: int | None = None
    race: bool | None = None

    def __post_init__(self):
        if self.time_limit is not None and not self.time_limit >= 0:
            raise ValueError(f"time_limit must be >= 0 seconds or None, got {self.time_limit!r}")
        if not (0 <= self.mip_gap < 1):
            raise ValueError(f"mip_gap must be in [0, 1), got {self.mip_gap!r}")
        if self.abs_gap is not None and not self.abs_gap >= 0:
            raise ValueError(f"abs_gap must be >= 0, got {self.abs_gap!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads!r}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers!r}")


def solver_version() -> str:
    """The version of HiGHS that solves (``1.15.1``)."""
    h = highspy.Highs()
    return f"{h.versionMajor()}.{h.versionMinor()}.{h.versionPatch()}"


def status_of(h: highspy.Highs) -> SolveStatus:
    """What a HiGHS run established: the one map from HiGHS's model status to :class:`SolveStatus`."""
    ms = h.getModelStatus()
    has_plan = h.getInfo().primal_solution_status == 2
    if ms == _S.kOptimal:
        return SolveStatus.OPTIMAL
    if ms in (_S.kTimeLimit, _S.kIterationLimit, _S.kInterrupt, _S.kSolutionLimit, _S.kObjectiveBound,
              _S.kObjectiveTarget):
        return SolveStatus.FEASIBLE if has_plan else SolveStatus.NO_SOLUTION
    if ms == _S.kInfeasible:
        return SolveStatus.INFEASIBLE
    if ms in (_S.kUnbounded, _S.kUnboundedOrInfeasible):
        return SolveStatus.UNBOUNDED
    return SolveStatus.ERROR


def coefficient_ranges(lp) -> dict[str, tuple[float, float]]:
    """(smallest, largest) absolute nonzero of the matrix, costs, bounds and right-hand sides of a HiGHS LP."""

    def rng(values) -> tuple[float, float]:
        a = np.abs(np.asarray(values, dtype=float))
        a = a[(a > 0) & (a < INF)]
        return (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)

    return {"matrix": rng(lp.a_matrix_.value_), "cost": rng(lp.col_cost_),
            "bounds": rng(list(lp.col_lower_) + list(lp.col_upper_)),
            "rhs": rng(list(lp.row_lower_) + list(lp.row_upper_))}


class ModelHandle:
    """One built model and the HiGHS solver holding it.

    >>> h = ModelHandle(load_instance("instances/tiny-supply-cap.yaml"))
    >>> h.solve().status
    <SolveStatus.OPTIMAL: 'optimal'>

    Build from an instance (a tree or not) or a :class:`~optimizer.instance.tree.ScenarioTree`,
    holding ``commitments`` (spec v2 section 6); :meth:`update` applies
    another instance in place when its structure allows (else rebuilds);
    :meth:`fix` holds variables at values; :meth:`add_row` adds a row over
    the model's variables; :meth:`set_objective` replaces the objective (and
    restores the model's own); :meth:`solve` solves with one
    :class:`SolveOptions` and returns a :class:`~optimizer.solver.result.SolveResult`
    whose plan is loaded into the Pyomo variables (``handle.model``), ready
    for :meth:`optimizer.plan.Plan.from_model`.
    """

    def __init__(self, source, *, commitments=None, key: tuple | None = None, scaling=None):
        t0 = time.perf_counter()
        self.model = build_model(source, commitments=commitments, scaling=scaling)
        self.build_seconds = time.perf_counter() - t0
        self.commitments = commitments
        self.handoff_seconds = 0.0
        self._key = key
        self._opt: Highs | None = None
        self._custom = None  # (sense, offset) while an objective other than the model's is set
        self._added_rows = 0
        self.staged = None  # the staged starting plan of a large tree, once made (solver/staged.py)

    # ------------------------------------------------------------------ what it holds

    @property
    def instance(self):
        """The instance the model is built for (after :meth:`update`, the new one)."""
        return self.model._inst

    @property
    def tree(self):
        return self.model._tree

    @property
    def info(self):
        return self.model.info

    @property
    def key(self) -> tuple:
        """The model's :func:`~formulations.model.structure_key`."""
        if self._key is None:
            self._key = structure_key(self.tree)
        return self._key

    @property
    def highs(self) -> highspy.Highs:
        """The HiGHS object holding the model (the model is handed over on first use)."""
        return self._attached()._solver_model

    def _attached(self) -> Highs:
        """Pyomo's persistent HiGHS interface holding the model (handed over on first use)."""
        if self._opt is None:
            opt = Highs()
            auto = opt.config.auto_updates
            for flag in ("check_for_new_or_removed_constraints", "check_for_new_or_removed_vars",
                         "check_for_new_or_removed_params", "update_constraints", "update_vars",
                         "update_named_expressions", "check_for_new_objective", "update_objective",
                         "update_parameters"):  # update_parameters would re-send every bound and drop the MIP start
                setattr(auto, flag, False)
            t0 = time.perf_counter()
            opt.set_instance(self.model)
            self.handoff_seconds += time.perf_counter() - t0
            opt._solver_model.setOptionValue("output_flag", False)
            self._opt = opt
        return self._opt

    def columns(self, *components) -> list[int]:
        """HiGHS column indices of the variables of ``components`` (Pyomo ``Var`` components or variables).

        Pyomo sends only variables that appear in some row or in the objective: a
        block variable of a region where no chip fits, for example, has none.
        """
        col = self._attached()._pyomo_var_to_solver_var_map
        out = []
        for comp in components:
            for v in (comp.values() if comp.is_indexed() else [comp]):
                if id(v) in col:
                    out.append(col[id(v)])
        return out

    def column(self, var) -> int | None:
        """The HiGHS column of one variable (None: not sent to HiGHS)."""
        return self._attached()._pyomo_var_to_solver_var_map.get(id(var))

    def rows(self) -> dict[int, tuple[str, object]]:
        """HiGHS row index -> (constraint family, index) of the model's rows."""
        return {row: (con.parent_component().name, con.index())
                for con, row in self._attached()._pyomo_con_to_solver_con_map.items()}

    def size(self) -> dict:
        """Rows, columns, integers, nonzeros and coefficient ranges of what HiGHS holds."""
        lp = self.highs.getLp()
        integers = sum(1 for v in lp.integrality_ if v != _CONT)
        return dict(rows=lp.num_row_, columns=lp.num_col_, integers=integers,
                    nonzeros=len(lp.a_matrix_.value_), ranges=coefficient_ranges(lp))

    def values(self) -> list[float]:
        """The column vector of the last solution HiGHS holds (a starting plan for a later solve)."""
        return list(self.highs.getSolution().col_value)

    # ------------------------------------------------------------------ changing it

    def update(self, inst, *, key: tuple | None = None) -> bool:
        """Apply ``inst`` (same commitments): in place when its structure matches the model's (True), else
        by building afresh (False).  ``key``: ``inst``'s structure key when the caller has it."""
        key = structure_key(inst) if key is None else key
        if key == self.key and self._opt is not None and not self._added_rows and self._custom is None:
            t0 = time.perf_counter()
            update_model(self.model, inst)
            self._opt.update_parameters()
            self.handoff_seconds = time.perf_counter() - t0
            self.build_seconds = 0.0
            return True
        if key == self.key and self._opt is None:
            t0 = time.perf_counter()
            update_model(self.model, inst)
            self.build_seconds = time.perf_counter() - t0
            return True
        self.__init__(inst, commitments=self.commitments, key=key)
        return False

    def fix(self, values: Iterable[tuple[str, Sequence, float]]) -> None:
        """Hold variables at values: ``(component name, index, value)`` triples.  Before the model is handed
        to HiGHS they are fixed in the model (and sent as constants); after, as column bounds."""
        for name, index, value in values:
            var = self.model.component(name)[tuple(index)]
            if self._opt is None:
                var.fix(value, skip_validation=True)  # a held past may lie outside today's bounds
            else:
                c = self.column(var)
                if c is not None:
                    self.highs.changeColBounds(c, value, value)

    def add_row(self, terms: Iterable[tuple[object, float]], lower: float = -INF, upper: float = INF) -> int:
        """Add ``lower <= sum(coef * var) <= upper`` over the model's variables (in HiGHS only); its row index."""
        idx, coef = [], []
        for var, c in terms:
            j = self.column(var)
            if j is not None:
                idx.append(j)
                coef.append(float(c))
        h = self.highs
        h.addRow(lower, upper, len(idx), idx, coef)
        self._added_rows += 1
        return h.getNumRow() - 1

    def add_objective_bound(self, threshold: float) -> int:
        """The near-optimal row: the model's own objective at least ``threshold`` (max_training) or at most
        (min_cost), in spec objective units."""
        h = self.highs
        lp = h.getLp()
        cost, offset = list(lp.col_cost_), lp.offset_
        limit = threshold / self.info.objective_factor - offset
        nz = [j for j, c in enumerate(cost) if c != 0.0]
        maximize = lp.sense_ == highspy.ObjSense.kMaximize
        lower, upper = (limit, INF) if maximize else (-INF, limit)
        h.addRow(lower, upper, len(nz), nz, [cost[j] for j in nz])
        self._added_rows += 1
        return h.getNumRow() - 1

    def set_objective(self, terms: Iterable[tuple[object, float]] | None = None, sense: str = "min") -> None:
        """Make ``sum(coef * var)`` the objective, minimised or maximised (``sense``: min | max); ``None``
        restores the model's own objective."""
        h = self.highs
        n = h.getNumCol()
        if terms is None:
            if self._custom is not None:
                cost, offset, model_sense = self._saved
                h.changeColsCost(n, list(range(n)), cost)
                h.changeObjectiveOffset(offset)
                h.changeObjectiveSense(model_sense)
                self._custom = None
            return
        if self._custom is None:
            lp = h.getLp()
            self._saved = (list(lp.col_cost_), lp.offset_, lp.sense_)
        idx, coef = [], []
        for var, c in terms:
            j = self.column(var)
            if j is not None:
                idx.append(j)
                coef.append(float(c))
        h.changeColsCost(n, list(range(n)), [0.0] * n)
        if idx:
            h.changeColsCost(len(idx), idx, coef)
        h.changeObjectiveOffset(0.0)
        h.changeObjectiveSense(highspy.ObjSense.kMinimize if sense == "min" else highspy.ObjSense.kMaximize)
        self._custom = (sense, 0.0)

    @contextmanager
    def fixed(self, components, values: Sequence[float]):
        """Within the block, the columns of ``components`` are fixed at their ``values`` (a column vector, as
        from :meth:`values`; integers rounded); their bounds are restored after."""
        h = self.highs
        cols = self.columns(*components)
        lp = h.getLp()
        lower, upper = list(lp.col_lower_), list(lp.col_upper_)  # one copy each: an indexed read copies all
        saved = ([lower[j] for j in cols], [upper[j] for j in cols])
        fixed = [float(round(values[j])) for j in cols]
        if cols:
            h.changeColsBounds(len(cols), cols, fixed, fixed)
        try:
            yield
        finally:
            if cols:
                h.changeColsBounds(len(cols), cols, *saved)

    @contextmanager
    def relaxed(self, *components):
        """Within the block the integer columns of ``components`` (default: every one) are continuous."""
        h = self.highs
        lp = h.getLp()
        cols = self.columns(*components) if components else range(lp.num_col_)
        integrality = list(lp.integrality_)  # one copy: each indexed read of lp.integrality_ copies it all
        ints = [j for j in cols if integrality[j] != _CONT]
        kinds = [integrality[j] for j in ints]
        if ints:
            h.changeColsIntegrality(len(ints), ints, [_CONT] * len(ints))
        try:
            yield
        finally:
            if ints:
                h.changeColsIntegrality(len(ints), ints, kinds)

    # ------------------------------------------------------------------ solving

    def solve(self, options: SolveOptions | None = None, **kwargs) -> SolveResult:
        """Solve what the handle holds; load the plan into the model's variables if there is one.

        ``options`` (or its fields as keywords) say how.  With the model's own
        objective the result is in spec objective units; with an objective set
        by :meth:`set_objective`, in that objective's.  Never raises for a
        solver failure: the result's status is ``ERROR`` with the message.
        """
        opts = replace(options or SolveOptions(), **kwargs)
        version = solver_version()
        own = self._custom is None
        if own and self.info.trivially_infeasible:
            msg = "; ".join(what for _, what in self.info.trivially_infeasible)
            return SolveResult(SolveStatus.INFEASIBLE, msg, None, None, None, self.build_seconds, 0.0, 0.0,
                               "highs", version)
        h = self.highs
        size = self.size()
        factor = self.info.objective_factor if own else 1.0
        self.staged = None
        start = time.perf_counter()
        deadline = None if opts.time_limit is None else start + opts.time_limit
        # "bound": the bound of the program with continuous chip units (HiGHS's units), from the starting
        # plan; the search stops ("proven") once its incumbent is within the gap of it (on_event)
        state = {"final": False, "gross": None, "last": 0.0, "bound": None, "proven": False,
                 "max": _maximizing(h), "racer": None}

        def on_event(e):
            if not state["final"]:  # the starting-plan phases solve restricted programs
                return
            d = e.data_out
            inc = d.objective_function_value if abs(d.objective_function_value) < 1e50 else None
            bnd = _tighter(d.mip_dual_bound if abs(d.mip_dual_bound) < 1e50 else None, state["bound"],
                           state["max"])
            racer = state["racer"]
            if racer is not None:  # share with the second search; the better incumbent, the tighter bound
                plan = d.mip_solution if e.callback_type == _IMPROVING and inc is not None else None
                other_inc, other_bnd = racer.exchange(inc, bnd, plan)
                inc, bnd = _better(inc, other_inc, state["max"]), _tighter(bnd, other_bnd, state["max"])
            if e.data_in is not None:
                # HiGHS keeps the interrupt flag from one run to the next: set it on every call, either way.
                # HiGHS stops on its own bound; capplan on the relaxed bound and the second search's values,
                # which _result applies to the same incumbent.
                stop = inc is not None and _within(inc, bnd if racer is not None else state["bound"],
                                                   opts.mip_gap, state["abs_gap"])
                e.interrupt(stop)
                state["proven"] = state["proven"] or stop
            now = time.perf_counter()
            if opts.progress is None or now - state["last"] < 0.25:  # called often during the search
                return
            state["last"] = now
            gap = None
            if inc is not None and bnd is not None:
                gap = abs(bnd - inc) / max(abs(inc), abs(state["gross"] or 0.0), 1e-9)
            opts.progress(Progress(now - start, None if inc is None else inc * factor,
                                   None if bnd is None else bnd * factor, gap))

        for name, value in EXTRA_OPTIONS.items():  # the starting-plan runs read them from the HiGHS object
            h.setOptionValue(name, value)
        subscribed = False
        try:
            gross = None
            if opts.start is not None:
                self._set_start(opts.start)
            elif opts.warm_start and own:
                gross, state["bound"] = self._starting_plan(opts, deadline)
            abs_gap = 1e-6  # HiGHS's default
            if gross:  # gap relative to max(|objective|, gross training): see docs/model.md
                abs_gap = opts.mip_gap * abs(gross)
            if opts.abs_gap is not None:
                abs_gap = opts.abs_gap / abs(factor)
            state.update(final=True, gross=gross, abs_gap=abs_gap)
            limited = deadline is not None
            if own and size["integers"] and race.applies(opts.race, opts.threads, self.tree.trivial, limited):
                state["racer"] = race.Racer(h, maximize=state["max"], rel_gap=opts.mip_gap, abs_gap=abs_gap,
                                            deadline=deadline, options=EXTRA_OPTIONS, log=opts.log)
            if opts.progress is not None or state["bound"] is not None or state["racer"] is not None:
                h.cbMipImprovingSolution.subscribe(on_event)
                h.cbMipInterrupt.subscribe(on_event)
                subscribed = True
            self._options(opts, deadline, rel_gap=opts.mip_gap, abs_gap=abs_gap)
            if state["racer"] is not None:
                try:
                    state["racer"].arm()
                except Exception as exc:  # a second search is a help, never a reason to fail: search alone
                    if opts.log:
                        print(f"capplan: no second search ({exc})", file=sys.stderr)
                    state["racer"] = None
            try:
                h.run()
            except Exception as exc:  # the solver itself failed: report, never crash the caller
                return SolveResult(SolveStatus.ERROR, f"HiGHS failed: {exc}", None, None, None,
                                   self.build_seconds, self.handoff_seconds, time.perf_counter() - start, "highs",
                                   version, **size)
        finally:
            if subscribed:
                h.cbMipImprovingSolution.unsubscribe(on_event)
                h.cbMipInterrupt.unsubscribe(on_event)
            helper = state["racer"].finish() if state["racer"] is not None else None
        return self._result(opts, gross, factor, own, size, version, time.perf_counter() - start, abs_gap,
                            relaxed_bound=state["bound"], proven=state["proven"], helper=helper)

    def _options(self, opts: SolveOptions, deadline: float | None, *, rel_gap: float, abs_gap: float) -> None:
        """Every option of a run, set in one place."""
        h = self.highs
        left = INF if deadline is None else max(0.01, deadline - time.perf_counter())
        h.setOptionValue("output_flag", bool(opts.log))
        h.setOptionValue("log_to_console", bool(opts.log))
        h.setOptionValue("time_limit", left)
        h.setOptionValue("mip_rel_gap", rel_gap)
        h.setOptionValue("mip_abs_gap", abs_gap)
        if opts.threads is not None:
            h.setOptionValue("threads", opts.threads)
        h.setOptionValue("allow_unbounded_or_infeasible", False)
        h.setOptionValue("random_seed", 0)
        for name, value in EXTRA_OPTIONS.items():
            h.setOptionValue(name, value)

    def _result(self, opts: SolveOptions, gross, factor: float, own: bool, size: dict, version: str,
                seconds: float, abs_gap: float, relaxed_bound: float | None = None,
                proven: bool = False, helper: race.HelperResult | None = None) -> SolveResult:
        h = self.highs
        info = h.getInfo()
        status = status_of(h)
        has_plan = status.has_plan
        mip = info.mip_node_count >= 0
        maximize = _maximizing(h)
        inc = info.objective_function_value if has_plan else None
        plan = None  # the second search's plan, where it is the better one
        if (helper is not None and helper.values is not None and status in _SEARCHED
                and _better(inc, helper.incumbent, maximize) != inc):
            plan, inc, has_plan = helper.values, helper.incumbent, True
            if status is SolveStatus.NO_SOLUTION:
                status = SolveStatus.FEASIBLE
        gap = bound = None
        if mip:
            bound = info.mip_dual_bound if abs(info.mip_dual_bound) < 1e50 else None
            if has_plan:  # a relaxation's bound is valid only where the program has a plan
                bound = _tighter(bound, relaxed_bound, maximize)
                if helper is not None and status in _SEARCHED:  # the same program's: valid too
                    bound = _tighter(bound, helper.bound, maximize)
        elif status is SolveStatus.OPTIMAL:
            bound = info.objective_function_value
        if has_plan:
            gap = 0.0
            if mip and bound is not None:
                gap = abs(bound - inc) / max(abs(inc), abs(gross or 0.0), 1e-9)
                if (status is SolveStatus.FEASIBLE and (proven or helper is not None)
                        and _within(inc, bound, opts.mip_gap, abs_gap)):
                    status = SolveStatus.OPTIMAL  # stopped by capplan at the gap (see solve)
        second = None
        if helper is not None:
            scaled = {k: None if v is None else v * factor for k, v in (("incumbent", helper.incumbent),
                                                                          ("bound", helper.bound))}
            second = {"seed": race.HELPER_SEED, "started_after": helper.started_at, "seconds": helper.seconds,
                      "status": helper.status, **scaled, "plan": plan is not None,
                      "bound_used": bound is not None and helper.bound is not None and bound == helper.bound}
        if bound is not None:
            bound *= factor
        if status is SolveStatus.OPTIMAL:
            msg = f"optimal within a relative gap of {opts.mip_gap:g}"
            if opts.abs_gap is not None and opts.mip_gap == 0:
                msg = f"optimal within an absolute gap of {opts.abs_gap:g}"
            elif gross:
                msg += " (of the larger of |objective| and gross discounted training)"
        elif status is SolveStatus.FEASIBLE:
            msg = f"stopped by the time limit with a plan {gap:.4%} from the best bound (not proven optimal)"
        elif status is SolveStatus.NO_SOLUTION:
            msg = "stopped by the time limit before any plan was found"
        elif status is SolveStatus.INFEASIBLE:
            msg = "no plan satisfies every constraint of the instance"
        elif status is SolveStatus.UNBOUNDED:
            msg = "the objective is unbounded: add a budget, a power ceiling or regional maxima"
        else:
            msg = f"HiGHS ended with {h.modelStatusToString(h.getModelStatus())}"
        objective = None
        if plan is not None:  # HiGHS holds it from now on (values(), the analyses after the solve)
            self._set_start(plan)
        if has_plan:
            self.load(h.getSolution().col_value)
            objective = (pyo.value(self.model.obj) if own else inc) * factor
        return SolveResult(status, msg, objective, bound, gap, self.build_seconds, self.handoff_seconds, seconds,
                           "highs", version, **size, gross=None if not gross else abs(gross * factor),
                           handle=self if has_plan else None, nodes=info.mip_node_count,
                           iterations=info.simplex_iteration_count,
                           start=None if self.staged is None else self.staged.summary(factor), helper=second)

    def load(self, values: Sequence[float]) -> None:
        """Load a HiGHS column vector into the model's variables (integers made exact)."""
        col = self._opt._pyomo_var_to_solver_var_map
        for var in self.model.component_objects(pyo.Var, active=True):
            for v in var.values():
                if v.fixed:
                    continue
                c = col.get(id(v))
                v.set_value(None if c is None else float(values[c]), skip_validation=True)
        _round_integers(self.model)

    def _set_start(self, values: Sequence[float]) -> None:
        sol = highspy.HighsSolution()
        sol.col_value = list(values)
        sol.value_valid = True
        self.highs.setSolution(sol)

    def _starting_plan(self, opts: SolveOptions, deadline: float | None) -> tuple[float | None, float | None]:
        """capplan's starting plan (:func:`_mip_start`) within half of the time; returns the gross
        discounted training of the relaxed plan (max_training), the scale of the gap, and the bound of the
        program with continuous chip units (HiGHS's units; valid for the program, None if none)."""
        m = self.model
        units = self.columns(m.n)
        others = self.columns(m.k, m.z)
        tree = self.tree
        gross_cols = {}
        if self.instance.objective.kind == "max_training":  # expected discounted training
            for g, r, t, v in m.X_IDX:
                j = self.column(m.xT[g, r, t, v])
                if j is not None:
                    gross_cols[j] = tree.probability[v] * self.instance.delta(t) * m._train_coef(g, v)
        if staged.applies(tree):  # large trees: relax-and-fix by stage, leaves alone (solver/staged.py)
            until = None if deadline is None else time.perf_counter() + STAGED_SHARE * (deadline - time.perf_counter())
            found = staged.staged_start(self, until, leaf=solve_leaf, mip_gap=opts.mip_gap, threads=opts.threads,
                                        log=opts.log, workers=opts.workers, progress=opts.progress,
                                        last_deadline=deadline)
            self.staged = found
            if found.values is not None:
                self._set_start(found.values)
            return staged.lp_gross(found.lp_values, gross_cols), found.lp_bound
        budget = None if deadline is None else 0.5 * (deadline - time.perf_counter())
        _, gross, bound = _mip_start(self.highs, units, others, budget, opts.threads, opts.log, gross_cols)
        return gross, bound

    # ------------------------------------------------------------------ analyses on a copy of the program

    def _copy(self, time_limit: float | None) -> highspy.Highs:
        """A separate HiGHS object holding the same program (for analyses that change it)."""
        h2 = highspy.Highs()
        h2.setOptionValue("output_flag", False)
        h2.passModel(self.highs.getLp())
        h2.setOptionValue("random_seed", 0)
        if time_limit is not None:
            h2.setOptionValue("time_limit", max(0.01, float(time_limit)))
        return h2

    def fixed_lp(self, fix: Sequence) -> dict | None:
        """The LP of the last plan with the columns of ``fix`` (components) fixed at its values and every
        integrality dropped: per model row, ``(family, index, lower, upper, activity, dual)`` in internal
        units; None when that LP is not solved to optimality."""
        values = self.values()
        lp = self.highs.getLp()
        h2 = self._copy(None)
        ints = [c for c, t in enumerate(lp.integrality_) if t != _CONT]
        if ints:
            h2.changeColsIntegrality(len(ints), ints, [_CONT] * len(ints))
        cols = self.columns(*fix)
        if cols:
            vals = [float(round(values[c])) for c in cols]
            h2.changeColsBounds(len(cols), cols, vals, vals)
        h2.run()
        if h2.getModelStatus() != _S.kOptimal:
            return None
        sol = h2.getSolution()
        lower, upper, value, dual = list(lp.row_lower_), list(lp.row_upper_), list(sol.row_value), list(sol.row_dual)
        return {row: (family, index, lower[row], upper[row], value[row], dual[row])
                for row, (family, index) in self.rows().items()}

    def elastic(self, weights: dict[str, float], scale: Callable[[str, object, float], float],
                time_limit: float | None) -> list[tuple[str, object, float]] | None:
        """The smallest weighted violation of the rows of the families in ``weights``, the original
        objective dropped; ``scale(family, index, bound)`` is the size a violation is measured against.
        Returns ``(family, index, move)`` of each violated row (``move`` > 0: the row's body rose above
        its lower bound... i.e. had to move by that much), or None if even that is infeasible (or the time
        limit came first)."""
        h = self._copy(time_limit)
        lp = h.getLp()
        ncol = lp.num_col_
        h.changeColsCost(ncol, list(range(ncol)), [0.0] * ncol)
        h.changeObjectiveOffset(0.0)
        h.changeObjectiveSense(highspy.ObjSense.kMinimize)
        slacks = {}
        row_lower, row_upper = list(lp.row_lower_), list(lp.row_upper_)
        for row, (family, index) in self.rows().items():
            if family not in weights:
                continue
            lo, hi = row_lower[row], row_upper[row]
            for sign, bound in ((-1.0, hi), (1.0, lo)):  # -1: may exceed an upper bound; +1: fall short of a lower
                if abs(bound) >= INF:
                    continue
                weight = weights[family] / max(1.0, scale(family, index, bound))
                h.addCol(weight, 0.0, INF, 1, [row], [sign])
                slacks[h.getNumCol() - 1] = (sign, family, index)
        h.setOptionValue("mip_rel_gap", 1e-3)
        h.run()
        if h.getInfo().primal_solution_status != 2:
            return None
        x = h.getSolution().col_value
        # the row moves by -sign * slack: above its upper bound (sign -1) or below its lower bound (+1)
        return [(family, index, -sign * x[col]) for col, (sign, family, index) in slacks.items() if x[col] > 1e-7]

    def iis(self, time_limit: float | None) -> list[tuple[str, object]]:
        """Rows of an irreducible infeasible subset of the LP relaxation, if HiGHS finds one (else [])."""
        h = self._copy(time_limit)
        lp = h.getLp()
        ints = [c for c, t in enumerate(lp.integrality_) if t != _CONT]
        if ints:
            h.changeColsIntegrality(len(ints), ints, [_CONT] * len(ints))
        h.setOptionValue("iis_strategy", 22)  # from the LP, irreducible (measured: the default finds none)
        h.run()
        if h.getModelStatus() != _S.kInfeasible:
            return []  # the LP relaxation is feasible: the conflict needs integrality
        try:
            _, iis = h.getIis()
        except Exception:  # an older or failing IIS: the elastic explanation stands alone
            return []
        rows = self.rows()
        return [rows.get(row, ("?", None)) for row in getattr(iis, "row_index_", [])]

    def fractional(self, *components) -> int:
        """How many decisions of ``components`` are fractional in the LP relaxation (a cheap estimate of how
        hard the MIP is)."""
        h = self.highs
        cols = self.columns(*components)
        with self.relaxed(*components):
            h.setOptionValue("output_flag", False)
            h.setOptionValue("time_limit", INF)
            h.run()
            x = np.asarray(h.getSolution().col_value)[cols]
        frac = x - np.floor(x + 1e-9)
        return int(((frac > 1e-6) & (frac < 1 - 1e-6)).sum())


def _mip_start(h: highspy.Highs, units: list[int], others: list[int], time_budget: float | None,
               threads: int | None, log: bool, gross_cols: dict[int, float]) -> tuple[bool, float | None, float | None]:
    """Give HiGHS a good starting plan; returns whether one was set, the gross scale and a bound.

    The gross scale is sum(coef * value) over ``gross_cols`` in the relaxed
    plan (the discounted training term of a max_training objective), used to
    measure the gap where penalties nearly cancel training.

    The chip-unit integers n make the program hard to close (a budget
    knapsack over units of 64-144 chips), while with n continuous it solves in
    a fraction of a second.  So: (1) solve with n continuous, (2) fix the
    blocks and frontier sites (k, z) of that plan and solve for integer n
    alone, (3) restore the full program and hand the plan to HiGHS as its
    incumbent.  The optimum is unchanged: this only supplies a feasible plan.

    The bound returned is the dual bound of run (1) (HiGHS's objective units
    and sense, None if it has none): the program with n continuous is a
    relaxation of the program, so its bound is valid for the program too, and
    it is usually far tighter than the one the full search proves in the same
    time (docs/performance.md, "The bound from continuous chip units").

    For max_training the two runs stop at an absolute gap of
    :data:`START_GAP` times the gross training of the LP relaxation, as the
    final search does: where training and penalties nearly cancel (low
    budgets) a gap relative to |objective| cannot close, and the runs used to
    spend their whole share of the time limit (docs/performance.md).
    """
    lp = h.getLp()
    n_units = len(units)
    h.setOptionValue("output_flag", log)
    if threads is not None:
        h.setOptionValue("threads", threads)
    deadline = None if time_budget is None else time.perf_counter() + time_budget

    def run(fraction: float, at_least: float = 0.0) -> bool:
        if deadline is not None:
            left = max(deadline - time.perf_counter(), at_least * time_budget)
            if left <= 0.01:
                return False
            h.setOptionValue("time_limit", left * fraction)
        # HiGHS takes the previous run's solution (with fractional integers) as a MIP start and first
        # solves a sub-MIP to repair it; measured, that helps (6x5x10: 3.8 s against 7.9 s when the
        # solution is cleared with clearSolver), so it is kept
        h.run()
        return h.getInfo().primal_solution_status == 2

    ok = False
    gross = bound = None
    saved = (h.getOptionValue("mip_rel_gap")[1], h.getOptionValue("mip_abs_gap")[1])
    try:
        if gross_cols:  # the scale of the starting runs' gap: gross training of the LP relaxation
            integrality = list(lp.integrality_)
            ints = [c for c, v in enumerate(integrality) if v != _CONT]
            h.changeColsIntegrality(len(ints), ints, [_CONT] * len(ints))
            h.run()
            if h.getInfo().primal_solution_status == 2:
                x = h.getSolution().col_value
                scale = abs(sum(c * x[j] for j, c in gross_cols.items()))
                h.setOptionValue("mip_abs_gap", max(1e-6, START_GAP * scale))
            h.changeColsIntegrality(len(ints), ints, [integrality[c] for c in ints])
        h.changeColsIntegrality(n_units, units, [_CONT] * n_units)
        solved = run(RELAXED_SHARE)
        if status_of(h) in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE, SolveStatus.NO_SOLUTION):
            info = h.getInfo()
            if info.mip_node_count >= 0 and abs(info.mip_dual_bound) < 1e50:
                bound = info.mip_dual_bound
        if solved:
            relaxed = list(h.getSolution().col_value)
            gross = sum(coef * relaxed[c] for c, coef in gross_cols.items())
            h.changeColsIntegrality(n_units, units, [_INT] * n_units)
            col_lower, col_upper = list(lp.col_lower_), list(lp.col_upper_)
            lo = [col_lower[c] for c in others]
            hi = [col_upper[c] for c in others]
            fixed = [float(round(relaxed[c])) for c in others]
            if others:
                h.changeColsBounds(len(others), others, fixed, fixed)
            # the step that makes the relaxed plan a plan: its share is kept even when HiGHS ran past the limit
            # of the relaxed run (the shipped tree: 31 s on a 24 s limit, and the start was dropped)
            ok = run(1.0, at_least=1 - RELAXED_SHARE)
            # else the relaxed plan itself: HiGHS first repairs a start's fractional integers by a sub-MIP
            start = list(h.getSolution().col_value) if ok else relaxed
            if others:
                h.changeColsBounds(len(others), others, lo, hi)
        h.changeColsIntegrality(n_units, units, [_INT] * n_units)
        if solved:
            sol = highspy.HighsSolution()
            sol.col_value = start
            sol.value_valid = True
            h.setSolution(sol)
    finally:
        h.setOptionValue("output_flag", True)
        h.setOptionValue("time_limit", INF)
        h.setOptionValue("mip_rel_gap", saved[0])
        h.setOptionValue("mip_abs_gap", saved[1])
    return ok, gross, bound


def solve_held(instance, hold: Iterable[tuple[str, Sequence, float]], options: SolveOptions, *,
               commitments=None) -> tuple[ModelHandle, SolveResult]:
    """A program with part of it held: ``instance`` (one scenario's v1 program, in the uses here) built, ``hold``
    fixed (``(name, index, value)``, :meth:`ModelHandle.fix`), solved with ``options``.  The leaves of a large
    tree's staged start (:func:`solve_leaf`) and the epochs of a policy simulation
    (:func:`optimizer.analysis.simulate.solve_epoch`) are such solves."""
    handle = ModelHandle(instance, commitments=commitments)
    handle.fix(hold)
    return handle, handle.solve(options)


def solve_leaf(payload: dict) -> dict:
    """One scenario's leaf in a worker: its v1 program with the past held; the integers of the years from
    ``payload["from"]`` (``[name, key without node, value]``)."""
    from ..instance import ROOT

    limit = payload["time_limit"]
    handle, r = solve_held(payload["instance"], payload["hold"],
                           SolveOptions(time_limit=None if limit >= INF else limit, mip_gap=payload["mip_gap"],
                                        threads=1), commitments=payload.get("commit"))
    out = {"status": r.status.value, "objective": r.objective, "seconds": r.solve_seconds}
    if r.status.has_plan:
        years = [t for t in handle.model.T if t >= payload["from"]]
        out["decisions"] = [(name, index[:-1], float(round(value)))
                            for name, index, value in node_values(handle.model, ROOT, years)
                            if name in staged.INTEGERS]
    return out


def _maximizing(h: highspy.Highs) -> bool:
    """Whether HiGHS maximizes (read from the sense alone: getLp() would copy the whole program)."""
    return h.getObjectiveSense()[1] == highspy.ObjSense.kMaximize


def _round_integers(model) -> None:
    """Integer variables come back within the solver's integrality tolerance; make them exact."""
    for var in (model.n, model.k, model.K, model.z):
        for v in var.values():
            if v.value is not None and not v.fixed:
                v.set_value(float(round(v.value)), skip_validation=True)
    for var in (model.xT, model.xI, model.y, model.m):
        for v in var.values():
            if v.value is not None and v.value < 0 and not v.fixed:
                v.set_value(0.0, skip_validation=True)


__all__ = ["EXTRA_OPTIONS", "ModelHandle", "SolveOptions", "coefficient_ranges", "solver_version", "status_of"]
