"""What runs on the MPI ranks of a PH solve (:mod:`optimizer.solver.ph`): mpi-sppy's scenario creator, hub and
spokes, and the entry point ``python -m optimizer.solver.ph_mpi PAYLOAD RESULT``.

This module imports mpi-sppy and mpi4py (which starts MPI), so only the ranks
import it; :mod:`optimizer.solver.ph` describes the decomposition and launches
this module.  Every rank reads the payload pickle (the instance and the
:class:`~optimizer.solver.ph.PHOptions`), builds its cylinder's scenarios and
spins mpi-sppy's wheel; rank 0 writes the :class:`~optimizer.solver.ph.PHResult`.
mpi-sppy's (and HiGHS's) output goes to the null device unless
``options.verbose``.

What capplan adds to mpi-sppy's cylinders (each measured, see
``benchmarks/ph.py`` and docs):

* PH's iteration 0 is capplan's own solve of each scenario (its starting plan
  and search, :class:`~optimizer.solver.ModelHandle`), handed to mpi-sppy as
  it takes a scenario solved before pickling; later solves start from the
  previous plan (``warmstart_subproblems``).
* Candidate plans (xhat) are evaluated by capplan's solve of each scenario
  with the candidate's investments fixed (:class:`Evaluator`), on a model of
  its own, instead of mpi-sppy's cold solves.
* ``rho_rule="value"``: PH's penalty per decision is the value of one unit
  (its spend over the horizon, priced at the objective's value of money)
  over the spread of the scenarios' first plans (the SEP rule of Watson and
  Woodruff, 2011, with a value instead of an objective coefficient, which
  max_training lacks).
* Spokes sleep between polls of the hub (:data:`IDLE_SECONDS`).
* The deadline: rank 0 fixes a wall-clock deadline (``time_limit`` after the
  ranks start) and every rank gets it.  :class:`Deadline`, an extension on
  every cylinder, gives every subproblem solve what is left until it (so a
  spoke's pass ends with it), and stops the hub when its next iteration would
  not end before it (measured from its longest iteration).  A Lagrangian
  solve cut short still gives a valid bound (HiGHS's dual bound); an xhat
  solve cut short without a plan rejects that candidate.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import pickle
import resource
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import replace

import pyomo.environ as pyo
from pyomo.repn import generate_standard_repn

from formulations.scaling import Scaling

from .highs import ModelHandle, SolveOptions
from .ph import INVESTMENTS, PHOptions, PHResult, TreeNames, check_tree, relative_gap

# mpi-sppy prints "Initializing mpi-sppy" when imported: silence it with the rest unless verbose; and some of its
# modules open log files (hub.log, xhateval.log, ...) in the working directory when imported: in a temporary one
_LOGS = tempfile.mkdtemp(prefix="capplan-mpisppy-")
atexit.register(shutil.rmtree, _LOGS, ignore_errors=True)
_CWD = os.getcwd()
os.chdir(_LOGS)
with contextlib.redirect_stdout(open(os.devnull, "w")):  # noqa: SIM115
    # imported by mpi-sppy only when a wheel spins: imported here, so that their log files land in _LOGS too
    import mpisppy.cylinders.hub  # noqa: F401
    import mpisppy.cylinders.xhatlooper_bounder  # noqa: F401
    import mpisppy.utils.sputils as sputils
    import mpisppy.utils.xhat_eval  # noqa: F401
    from mpisppy import MPI
    from mpisppy.cylinders.lagrangian_bounder import LagrangianOuterBound
    from mpisppy.cylinders.xhatshufflelooper_bounder import XhatShuffleInnerBound
    from mpisppy.extensions.extension import Extension
    from mpisppy.opt.ph import PH
    from mpisppy.opt.subgradient import Subgradient
    from mpisppy.scenario_tree import ScenarioNode
    from mpisppy.spin_the_wheel import WheelSpinner
    from mpisppy.utils import cfg_vanilla as vanilla
    from mpisppy.utils import config
os.chdir(_CWD)


# --------------------------------------------------------------------------- scenarios


def scenario_creator(sname: str, names: TreeNames, scaling: Scaling, start: float | None = None,
                     deadline: float | None = None, relax_units: bool = False, relax_start: bool | None = None):
    """The v1 program of scenario ``sname`` with its mpi-sppy node list and probability.

    Built by :func:`formulations.build_model` (through a
    :class:`~optimizer.solver.ModelHandle`) from the scenario's own instance,
    in the tree's internal units (``scaling``); the node list holds every
    non-leaf node of the scenario's path: its conditional probability, its
    years' objective terms and the investments of its years (``n`` and ``K``,
    in index order; see :mod:`optimizer.solver.ph`).

    With ``start`` (seconds), the scenario is first solved alone by capplan's
    own solve (at most ``start`` seconds and not past ``deadline``, but until
    it has a plan: PH cannot begin without one, so a time limit shorter than
    that first solve of every scenario is overrun); its plan stays in the
    variables and its objective and bound are handed to mpi-sppy as PH's
    iteration 0 (measured on the shipped tree: 1.5 to 4 s a scenario, where
    mpi-sppy's cold solve takes 3 to 16 s).  With ``relax_units`` the chip
    units ``n`` are continuous in mpi-sppy's solves, and in that first solve
    too unless ``relax_start`` is False (a relaxation: the bounds stay valid).
    """
    tree = names.tree
    s = names.scenario_of[sname]
    handle = ModelHandle(s.instance, scaling=scaling)
    m = handle.model
    if start:
        left = start if deadline is None else min(start, deadline - time.time())
        # relaxed: HiGHS alone (capplan's starting plan would make the units integer again), 0.4-1.8 s a scenario
        # of the shipped tree where the integer solve takes 1.5-4.5 s
        relax_start = relax_units if relax_start is None else relax_start
        with handle.relaxed(m.n) if relax_start else contextlib.nullcontext():
            opts = SolveOptions(time_limit=max(0.05, left), threads=1, warm_start=not relax_start)
            r = handle.solve(opts)
            while r.status.value == "no_solution":  # PH cannot begin without a plan of every scenario
                r = handle.solve(replace(opts, time_limit=max(start, deadline - time.time())))
        if not r.status.has_plan:
            raise RuntimeError(f"scenario {s.id}: {r.message}")  # infeasible, unbounded: so is the tree
        if r.bound is not None:
            # as mpi-sppy takes a scenario solved before pickling (options iter0_from_pickle); internal units
            f = m.info.objective_factor
            m._mpisppy_data = pyo.Block(name="For non-Pyomo mpi-sppy data")
            m._mpisppy_data.pickle_metadata = {"iter0_before_pickle": True, "iter0_outer_bound": r.bound / f,
                                               "iter0_inner_bound": r.objective / f}
    del handle  # the HiGHS copy is not needed again (mpi-sppy solves through its own plugin)
    if relax_units:  # a relaxation: its bounds stay valid, its solves are far easier (see PHOptions.relax_units)
        for v in m.n.values():
            v.domain = pyo.NonNegativeReals
    nodes, lists = [], []
    for depth in range(len(tree.stages)):
        years = set(tree.node_years_of("/".join(s.branches[:depth])))
        lists.append([m.component(name)[i] for name in INVESTMENTS
                      for i in sorted(m.component(name).keys()) if i[-2] in years])
    pads = [names.depth_size[d] - len(x) for d, x in enumerate(lists)]
    if any(p < 0 for p in pads):
        raise RuntimeError(f"scenario {s.id}: more investment decisions than its tree's index sets hold")
    # placeholders held at 0, so that every scenario has as many nonants (TreeNames.depth_size)
    m._capplan_pad = pyo.Var(range(sum(pads)), bounds=(0, 0), initialize=0.0)
    at = 0
    for depth in range(len(tree.stages)):
        node = "/".join(s.branches[:depth])
        nonants = lists[depth] + [m._capplan_pad[i] for i in range(at, at + pads[depth])]
        at += pads[depth]
        cost = sum(m.Yearly[t, ""] + (m.Terminal[t, ""] if (t, "") in m.Terminal else 0) for t in sorted(years))
        if depth == 0:
            cond = 1.0
        else:
            stage = tree.stages[depth - 1]
            cond = next(b.probability for b in stage.branches if b.id == s.branches[depth - 1])
        parent = None if depth == 0 else names.to_mpisppy["/".join(s.branches[:depth - 1])]
        nodes.append(ScenarioNode(names.to_mpisppy[node], cond, depth + 1, cost, nonants, m, parent_name=parent))
    m._mpisppy_node_list = nodes
    m._mpisppy_probability = s.probability
    m._capplan_sname = sname
    m._capplan_maximize = tree.maximize
    return m


def scenario_denouement(rank, sname, s) -> None:
    """Nothing to report per scenario (the result is gathered by :func:`run`)."""


def _coefficients(expr, variables) -> list[float]:
    """The linear coefficient of each of ``variables`` in ``expr``."""
    repn = generate_standard_repn(expr, compute_values=True, quadratic=False)
    coef = {id(v): c for v, c in zip(repn.linear_vars, repn.linear_coefs)}
    return [float(coef.get(id(v), 0.0)) for v in variables]


# --------------------------------------------------------------------------- candidate plans


def _investment(var) -> bool:
    """Whether a nonant is one of the model's investments (not a placeholder of :func:`scenario_creator`)."""
    return var.parent_component().name in INVESTMENTS


def _integral(var, x: float) -> float:
    """A candidate's value of an integer decision: chip units rounded down (from a plan with continuous units,
    fewer chips keep it within its budget and capacity), blocks to the nearest."""
    if var.parent_component().name == "n":
        return float(math.floor(x + 1e-6))
    return float(round(x))


def _repaired(s, candidate: dict[str, list[float]]) -> list[float]:
    """Scenario ``s``'s values of a candidate, integral (:func:`_integral`), along its path (root first), with
    the cumulative blocks ``K`` of each region made non-decreasing over the years (a candidate mixes nodes of
    several scenarios' plans, or their mean; K may never fall).  Depends only on the node and its ancestors, so
    the scenarios through a node agree on it."""
    out, most = [], {}
    for node in s._mpisppy_node_list:
        for var, x in zip(node.nonant_vardata_list, candidate[node.name]):
            x = _integral(var, x)
            if var.parent_component().name == "K":
                r, t = var.index()[0], var.index()[-2]
                x = max(x, max((k for (rr, tt), k in most.items() if rr == r and tt < t), default=0.0))
                most[r, t] = x
            out.append(x)
    return out


class Evaluator:
    """Evaluate candidate plans (investments of every non-leaf node) on a cylinder's scenarios by capplan's solve.

    Each local scenario gets a model and HiGHS copy of its own (built on first
    use), so that mpi-sppy's models (with PH's weights and proximal cuts) are
    left alone.  :meth:`evaluate` fixes the candidate's investments, solves
    every local scenario (starting plan and search, at most until the
    deadline), and returns the expected objective over all ranks of the
    cylinder, or None when a scenario has no plan (infeasible, or out of
    time).  The plan's values are put into mpi-sppy's models and its
    best-solution cache when it improves on the best so far.
    """

    def __init__(self, opt, names: TreeNames, scaling: Scaling, gap: float, deadline: float):
        self.opt, self.names, self.scaling, self.gap, self.deadline = opt, names, scaling, gap, deadline
        self._handles: dict[str, tuple[ModelHandle, list]] = {}
        self.evaluations = 0

    def _handle(self, sname: str, s) -> tuple[ModelHandle, list]:
        if sname not in self._handles:
            h = ModelHandle(self.names.scenario_of[s._capplan_sname].instance, scaling=self.scaling)
            own = [h.model.component(v.parent_component().name)[v.index()] if _investment(v) else None
                   for node in s._mpisppy_node_list for v in node.nonant_vardata_list]
            self._handles[sname] = (h, own)
        return self._handles[sname]

    def _record(self, s, seconds: float, status: str) -> None:
        ext = getattr(self.opt, "extobject", None)
        if ext is not None and isinstance(ext.parts[0], Deadline):
            ext.parts[0].solves.append((seconds, status))
        if self.opt.options.get("verbose"):
            print(f"[capplan] {type(self.opt.spcomm).__name__} candidate {self.evaluations} "
                  f"{s._capplan_sname}: {seconds:.2f} s, {status}", flush=True)

    def candidate_from(self, snamedict: dict[str, str]) -> dict[str, list[float]]:
        """The candidate that takes, at every node, the current nonant values of the scenario ``snamedict`` names
        (mpi-sppy's ``nonant_cache``, as its xhatshuffle spoke reads them)."""
        local = {}
        for sname, s in self.opt.local_scenarios.items():
            for node in s._mpisppy_node_list:
                if snamedict.get(node.name) == sname and node.name not in local:
                    start, length = s._mpisppy_data.cistart[node.name], s._mpisppy_data.nlens[node.name]
                    local[node.name] = [float(x) for x in s._mpisppy_data.nonant_cache[start:start + length]]
        merged = {}
        for part in self.opt.mpicomm.allgather(local):
            merged.update(part)
        return merged

    def candidate_xbar(self, values: str = "cache") -> dict[str, list[float]]:
        """The candidate that takes, at every node, the probability-weighted mean of its scenarios' nonants
        (PH's xbar): from mpi-sppy's ``nonant_cache`` (an xhat spoke), or the variables' values (the hub)."""
        local: dict[str, list] = {}
        for s in self.opt.local_scenarios.values():
            p = s._mpisppy_probability
            for node in s._mpisppy_node_list:
                if values == "cache":
                    start, length = s._mpisppy_data.cistart[node.name], s._mpisppy_data.nlens[node.name]
                    xs = s._mpisppy_data.nonant_cache[start:start + length]
                else:
                    xs = [v._value or 0.0 for v in node.nonant_vardata_list]
                row = local.setdefault(node.name, [0.0, [0.0] * len(xs)])
                row[0] += p
                row[1] = [a + p * float(x) for a, x in zip(row[1], xs)]
        total: dict[str, list] = {}
        for part in self.opt.mpicomm.allgather(local):
            for ndn, (p, sums) in part.items():
                row = total.setdefault(ndn, [0.0, [0.0] * len(sums)])
                row[0] += p
                row[1] = [a + b for a, b in zip(row[1], sums)]
        return {ndn: [x / p for x in sums] for ndn, (p, sums) in total.items()}

    def evaluate(self, candidate: dict[str, list[float]]) -> float | None:
        self.evaluations += 1
        local, ok = 0.0, True
        plans = {sname: _repaired(s, candidate) for sname, s in self.opt.local_scenarios.items()}
        for sname, s in self.opt.local_scenarios.items():
            values = plans[sname]
            left = self.deadline - time.time()
            if left <= 0.05 or not ok:
                ok = False
                continue
            h, own = self._handle(sname, s)
            vec = [0.0] * h.highs.getNumCol()
            for var, x in zip(own, values):
                j = None if var is None else h.column(var)
                if j is not None:
                    vec[j] = float(x)
            t0 = time.time()
            with h.fixed([v for v in own if v is not None], vec):
                r = h.solve(SolveOptions(time_limit=left, mip_gap=self.gap, threads=1))
            self._record(s, time.time() - t0, r.status.value)
            if not r.status.has_plan:
                ok = False
                continue
            s._mpisppy_data.inner_bound = r.objective / h.info.objective_factor  # mpi-sppy sends it with the plan
            local += s._mpisppy_probability * s._mpisppy_data.inner_bound
        ok = bool(self.opt.mpicomm.allreduce(int(ok), op=MPI.MIN))
        if not ok:
            return None
        total = self.opt.mpicomm.allreduce(local, op=MPI.SUM)
        saved = {}
        for sname, s in self.opt.local_scenarios.items():
            variables = [v for node in s._mpisppy_node_list for v in node.nonant_vardata_list]
            for var, x in zip(variables, plans[sname]):
                saved[id(var)] = (var, var._value)
                var._value = x
        self.opt.update_best_solution_if_improving(total)
        for var, x in saved.values():
            var._value = x
        return total


class _XhatShuffle(XhatShuffleInnerBound):
    """mpi-sppy's xhatshuffle spoke, with candidates evaluated by capplan's solve (:class:`Evaluator`), the mean
    of the hub's plans tried first whenever new ones come (measured on the shipped tree: the scenarios' own
    plans, which xhatshuffle combines, stayed 4.5% below the optimum for 3 minutes), and idle between polls for
    the hub's new plans (see :data:`IDLE_SECONDS`)."""

    def xhat_prep(self):
        out = super().xhat_prep()
        kw = self.opt.options["capplan"]
        self.evaluator = Evaluator(self.opt, kw["names"], kw["scaling"], kw["gap"], kw["deadline"])
        self._xbar_due = False
        return out

    def try_scenario_dict(self, xhat_scenario_dict):
        if self._xbar_due:  # first, with the hub's new plans: their mean
            self._xbar_due = False
            obj = self.evaluator.evaluate(self.evaluator.candidate_xbar())
            if obj is not None:
                self.update_if_improving(obj, update_best_solution_cache=False)
        obj = self.evaluator.evaluate(self.evaluator.candidate_from(xhat_scenario_dict))
        if obj is None:
            return False
        return self.update_if_improving(obj, update_best_solution_cache=False)

    def update_nonants(self):
        new = super().update_nonants()
        if new:
            self._xbar_due = self.opt.options["capplan"].get("xbar", True)
        else:
            time.sleep(IDLE_SECONDS)
        return new


class _Lagrangian(LagrangianOuterBound):
    """mpi-sppy's Lagrangian spoke, whose first bound (no prices: each scenario alone) is taken from the
    scenarios' first solves in :func:`scenario_creator`, as PH's hub does (``iter0_from_pickle``), instead of
    solving them again; idle between polls (:data:`IDLE_SECONDS`)."""

    def lagrangian(self, need_solution=True, warmstart=sputils.WarmstartStatus.PRIOR_SOLUTION):
        if not getattr(self, "_first_done", False):
            self._first_done = True
            meta = [getattr(s._mpisppy_data, "pickle_metadata", None) for s in self.opt.local_scenarios.values()]
            if all(meta):
                for s, md in zip(self.opt.local_scenarios.values(), meta):
                    s._mpisppy_data.outer_bound = md["iter0_outer_bound"]
                    s._mpisppy_data.inner_bound = md["iter0_inner_bound"]
                    s._mpisppy_data.solution_available = True
                return self.opt.Ebound(False)
        for s in self.opt.local_scenarios.values():
            s._capplan_bounded = False  # set by Deadline.post_solve when the solve gave a dual bound
        bound = super().lagrangian(need_solution=need_solution, warmstart=warmstart)
        # mpi-sppy keeps a scenario's previous bound when its solve fails (no plan in time, or unbounded under
        # these prices): a sum of bounds under different prices is no bound, so such a pass gives none
        ok = all(s._capplan_bounded for s in self.opt.local_scenarios.values())
        ok = bool(self.opt.mpicomm.allreduce(int(ok), op=MPI.MIN))
        self.passes = getattr(self, "passes", 0) + 1
        self.failed = getattr(self, "failed", 0) + (not ok)
        if ok:
            return bound
        return None if self.passes > 1 else (-math.inf if self.opt.is_minimizing else math.inf)  # the first is sent

    def do_while_waiting_for_new_Ws(self, need_solution, warmstart=sputils.WarmstartStatus.PRIOR_SOLUTION):
        time.sleep(IDLE_SECONDS)


class _Subgradient(Subgradient):
    """mpi-sppy's subgradient hub (prices moved by ``rho * (x - xbar)``, no proximal term: each iteration's
    solves are Lagrangian subproblems, so each gives a bound), whose bound is kept only from a pass in which
    every scenario's solve gave a dual bound (see :class:`_Lagrangian`)."""

    def solve_loop(self, *args, **kwargs):
        for s in self.local_scenarios.values():
            s._capplan_bounded = False
        PH.solve_loop(self, *args, **kwargs)  # not Subgradient's: it takes the bound whatever happened
        ok = all(s._capplan_bounded for s in self.local_scenarios.values())
        if self.mpicomm.allreduce(int(ok), op=MPI.MIN) and self._can_update_best_bound():
            self.best_bound_obj_val = self.Ebound(False)


IDLE_SECONDS = 0.05
"""How long a spoke sleeps when it polls the hub and finds nothing new.  mpi-sppy's spokes poll in a busy
loop, which is harmless with a core per rank but, with more ranks than cores (3 ranks on this machine's 2),
takes a core from the hub's solves (measured: PH's first iteration on the 3-scenario tree took 52 s in the
wheel against 7 s alone)."""


# --------------------------------------------------------------------------- extensions


class Deadline(Extension):
    """Every subproblem solve stops at the run's deadline; the hub stops before an iteration that would not end
    before it.  ``deadline`` is a wall-clock time (``time.time()``), the same on every rank.  Also records
    every solve's seconds and termination (:attr:`solves`)."""

    def __init__(self, opt, deadline: float, gap: float, hub: bool = False, absolute: bool = False):
        super().__init__(opt)
        self.deadline = deadline
        self.gap = gap
        self.absolute = absolute
        self.abs_gap = None  # set after iteration 0: gap * |wait-and-see|, the same for every scenario
        self.hub = hub
        self._last = None  # wall time at the previous miditer (an iteration's start)
        self._longest = 0.0
        self._t = time.time()
        self.solves: list[tuple[float, str | None]] = []

    def pre_solve(self, subproblem):
        options = subproblem._solver_plugin.options
        options["time_limit"] = max(0.01, self.deadline - time.time())
        if self.abs_gap is None:
            options["mip_rel_gap"] = self.gap
        else:
            options["mip_rel_gap"] = 0.0
            options["mip_abs_gap"] = self.abs_gap
        self._t = time.time()

    def post_iter0(self):
        """With ``absolute`` (the cylinders whose solves are bounds: the Lagrangian spoke, the subgradient hub),
        every later solve stops at the same absolute gap, ``gap`` times |wait-and-see| (the expected objective
        of the scenarios' first solves): the probability-weighted sum of their gaps is then within ``gap`` of
        the expected objective.  A relative gap of each solve's own objective is not: with prices, a scenario's
        objective can be near zero (measured: a Lagrangian solve of the shipped tree ran 175 s for such a gap)
        or far above the mean.  PH's own solves keep the relative gap: with the proximal term their objective
        is far larger, and the same absolute gap made one run 205 s (measured)."""
        local = sum(s._mpisppy_probability * s._mpisppy_data.inner_bound for s in self.opt.local_scenarios.values()
                    if getattr(s._mpisppy_data, "inner_bound", None) is not None)
        size = sum(s._mpisppy_probability * abs(s._mpisppy_data.inner_bound)
                   for s in self.opt.local_scenarios.values()
                   if getattr(s._mpisppy_data, "inner_bound", None) is not None)
        total = self.opt.mpicomm.allreduce(local, op=MPI.SUM)
        size = self.opt.mpicomm.allreduce(size, op=MPI.SUM)
        scale = max(abs(total), 1e-2 * size)
        if self.absolute and scale > 0 and math.isfinite(scale):
            self.abs_gap = self.gap * scale

    def post_solve(self, subproblem, results):
        cond = None if results is None else str(results.solver.termination_condition)
        subproblem._capplan_bounded = results is not None and not sputils.not_good_enough_results(results)
        self.solves.append((time.time() - self._t, cond))
        if self.opt.options.get("verbose"):
            print(f"[capplan] {type(self.opt.spcomm).__name__} iteration {getattr(self.opt, '_PHIter', '-')} "
                  f"{subproblem._capplan_sname}: {time.time() - self._t:.2f} s, {cond}", flush=True)
        return results

    def miditer(self):
        if not self.hub:
            return
        now = time.time()
        if self._last is not None:
            self._longest = max(self._longest, now - self._last)
        self._last = now
        if now + self._longest >= self.deadline:
            self.opt.options["time_limit"] = 0.0  # PH's own check (after miditer) then ends the loop


class ValueRho(Extension):
    """``rho_rule="value"``: after iteration 0, PH's penalty of each decision is ``rho * c / (max - min + 1)``.

    ``c`` is the value of one unit: for min_cost the decision's coefficient in
    the scenario's objective (discounted capex, energy and opex over its life);
    for max_training its spend over the horizon priced at the value of money
    of the first plans (|E objective| / E spend).  ``max - min`` is the spread
    of the decision over the scenarios through its node in those plans.  A
    decision of no value keeps the default ``rho``.
    """

    def __init__(self, opt, rho: float):
        super().__init__(opt)
        self.rho = rho

    def post_iter0(self):
        opt = self.opt
        obj = spend = 0.0
        value: dict[tuple, list[float]] = {}  # (node, i) -> [sum of p * value, sum of p], then the mean
        lo, hi = {}, {}
        for s in opt.local_scenarios.values():
            nonants = s._mpisppy_data.nonant_indices
            expr = sum(s.Spend[t, ""] for t, _ in s.NY) if s._capplan_maximize else s.obj.expr
            p = s._mpisppy_probability
            for (key, var), c in zip(nonants.items(), _coefficients(expr, list(nonants.values()))):
                row = value.setdefault(key, [0.0, 0.0])
                row[0] += p * abs(c)
                row[1] += p
                x = var._value or 0.0
                lo[key], hi[key] = min(lo.get(key, x), x), max(hi.get(key, x), x)
            obj += p * pyo.value(s.obj.expr)
            spend += p * sum(pyo.value(s.Spend[t, ""]) for t, _ in s.NY)
        obj = opt.mpicomm.allreduce(obj, op=MPI.SUM)
        spend = opt.mpicomm.allreduce(spend, op=MPI.SUM)
        total: dict[tuple, list[float]] = {}
        for part_value, part_lo, part_hi in opt.mpicomm.allgather((value, lo, hi)):
            for key, (pc, p) in part_value.items():
                row = total.setdefault(key, [0.0, 0.0])
                row[0] += pc
                row[1] += p
            for key, x in part_lo.items():
                lo[key] = min(lo.get(key, x), x)
            for key, x in part_hi.items():
                hi[key] = max(hi.get(key, x), x)
        maximize = next(iter(opt.local_scenarios.values()))._capplan_maximize
        money = (abs(obj) / spend if spend > 1e-12 else 0.0) if maximize else 1.0
        # one rho per decision and node, the same in every scenario through it: PH's prices then keep summing to
        # zero over the node's scenarios, which the Lagrangian bound needs
        for s in opt.local_scenarios.values():
            for key in s._mpisppy_data.nonant_indices:
                pc, p = total[key]
                v = money * pc / p / (hi[key] - lo[key] + 1.0) if p > 0 else 0.0
                if v > 0:
                    s._mpisppy_model.rho[key] = self.rho * v


class HubXhat(Extension):
    """A candidate plan evaluated by the hub itself every ``every`` iterations (for runs without an xhat spoke):
    at every node, the nonants of the scenario closest to PH's average there (distance in standard deviations,
    capped at 3, as mpi-sppy's ``xhatclosest``), evaluated by :class:`Evaluator`."""

    def __init__(self, opt, every: int, names, scaling, gap, deadline):
        super().__init__(opt)
        self.every = every
        self.evaluator = Evaluator(opt, names, scaling, gap, deadline)
        self._tried = set()

    def enditer(self):
        if self.opt._PHIter % self.every == 0:
            self.try_closest()

    def post_iter0(self):
        self.try_closest(first=True)

    def try_closest(self, first: bool = False) -> None:
        opt = self.opt
        best: dict[str, tuple[float, str, list[float]]] = {}
        for sname, s in opt.local_scenarios.items():
            for node in s._mpisppy_node_list:
                xs = [v._value or 0.0 for v in node.nonant_vardata_list]
                if first:
                    dist = 0.0  # no average yet: the first scenario of each node
                else:
                    dist = 0.0
                    for i, x in enumerate(xs):
                        xbar = s._mpisppy_model.xbars[node.name, i]._value
                        var = s._mpisppy_model.xsqbars[node.name, i]._value - xbar * xbar
                        if var > 1e-12:
                            dist += min(3.0, abs(x - xbar) / math.sqrt(var))
                key = (dist, sname)
                if node.name not in best or key < best[node.name][:2]:
                    best[node.name] = (dist, sname, xs)
        merged: dict[str, tuple[float, str, list[float]]] = {}
        for part in opt.mpicomm.allgather(best):
            for ndn, row in part.items():
                if ndn not in merged or row[:2] < merged[ndn][:2]:
                    merged[ndn] = row
        candidate = {ndn: row[2] for ndn, row in merged.items()}
        key = tuple((ndn, tuple(round(x) for x in xs)) for ndn, xs in sorted(candidate.items()))
        if key in self._tried:
            return
        self._tried.add(key)
        self.evaluator.evaluate(candidate)


class _Extensions(Extension):
    """Several extensions as one (mpi-sppy takes one extension class per cylinder)."""

    HOOKS = ("pre_solve", "post_solve", "pre_solve_loop", "post_solve_loop", "pre_iter0", "post_iter0",
             "iter0_post_solver_creation", "post_iter0_after_sync", "miditer", "enditer", "enditer_after_sync",
             "post_everything", "setup_hub", "sync_with_spokes", "register_send_fields", "register_receive_fields")

    def __init__(self, opt, parts):
        super().__init__(opt)
        self.parts = [cls(opt, **kw) for cls, kw in parts]

    def __getattribute__(self, name):
        if name in _Extensions.HOOKS:
            parts = object.__getattribute__(self, "parts")

            def call(*args, **kwargs):
                out = args[-1] if name == "post_solve" else None
                for p in parts:
                    if name == "post_solve":
                        out = getattr(p, name)(args[0], out)
                    else:
                        getattr(p, name)(*args, **kwargs)
                return out
            return call
        return object.__getattribute__(self, name)


# --------------------------------------------------------------------------- hub and spokes


def _config(options: PHOptions, names: TreeNames):
    cfg = config.Config()
    cfg.popular_args()
    cfg.two_sided_args()
    cfg.ph_args()
    cfg.multistage()
    cfg.lagrangian_args()
    cfg.xhatshuffle_args()
    cfg.subgradient_bounder_args()
    cfg.pre_pickle_args()
    cfg.solver_name = options.solver
    cfg.default_rho = options.rho
    cfg.max_iterations = options.max_iterations
    cfg.time_limit = options.time_limit
    cfg.rel_gap = options.rel_gap
    cfg.abs_gap = 0.0
    cfg.linearize_proximal_terms = options.linearize
    cfg.max_solver_threads = options.threads
    cfg.verbose = options.verbose
    cfg.solver_options = None  # the gaps are set per solve (Deadline.pre_solve)
    cfg.warmstart_subproblems = True  # each solve starts from the scenario's previous plan
    cfg.user_warmstart = bool(options.start_seconds)  # the first from capplan's own plan (scenario_creator)
    cfg.iter0_from_pickle = bool(options.start_seconds)  # ... which is PH's iteration 0
    if len(names.branching_factors) > 1:
        cfg.branching_factors = names.branching_factors
    return cfg


def cylinders(options: PHOptions, names: TreeNames, scaling: Scaling, ranks: int, deadline: float):
    """mpi-sppy's hub dict and spoke dicts for ``ranks`` ranks (:meth:`PHOptions.cylinders`)."""
    cfg = _config(options, names)
    beans = (cfg, scenario_creator, scenario_denouement, names.scenarios)
    kw = {"names": names, "scaling": scaling}
    warm = {**kw, "start": options.start_seconds, "deadline": deadline,  # the cylinders that solve with prices
            "relax_units": options.relax_units}
    nodenames = names.all_nodenames
    spokes = options.cylinders(ranks)
    capplan = {"names": names, "scaling": scaling, "gap": options.subproblem_gap, "deadline": deadline}

    def ext(*parts):
        return {"ph_extensions": _Extensions, "extension_kwargs": {"parts": list(parts)}}

    hub_parts = [(Deadline, {"deadline": deadline, "gap": options.subproblem_gap, "hub": True})]
    if options.rho_rule == "value":
        hub_parts.append((ValueRho, {"rho": options.rho}))
    if "xhatshuffle" not in spokes:
        hub_parts.append((HubXhat, {"every": options.hub_xhat_every, **capplan}))
    if options.hub == "subgradient":
        hub_parts[0][1]["absolute"] = True
        hub = vanilla.subgradient_hub(*beans, scenario_creator_kwargs=warm, all_nodenames=nodenames,
                                      **ext(*hub_parts))
        hub["opt_class"] = _Subgradient
    else:
        hub = vanilla.ph_hub(*beans, scenario_creator_kwargs=warm, all_nodenames=nodenames, **ext(*hub_parts))
    plain = ext((Deadline, {"deadline": deadline, "gap": options.subproblem_gap}))
    bounding = ext((Deadline, {"deadline": deadline, "gap": options.subproblem_gap, "absolute": True}))
    out = []
    for name in spokes:
        if name == "lagrangian":
            # its first bound from the integer scenarios: the wait-and-see bound, as tight as any relaxed one
            spoke = vanilla.lagrangian_spoke(*beans, scenario_creator_kwargs={**warm, "relax_start": False},
                                             all_nodenames=nodenames, **bounding)
            spoke["spoke_class"] = _Lagrangian
        elif name == "xhatshuffle":
            spoke = vanilla.xhatshuffle_spoke(*beans, scenario_creator_kwargs=kw, all_nodenames=nodenames, **plain)
            spoke["spoke_class"] = _XhatShuffle
            spoke["opt_kwargs"]["options"]["capplan"] = capplan
        else:  # PHOptions validated the names
            raise AssertionError(name)
        out.append(spoke)
    return hub, out


# --------------------------------------------------------------------------- the run


def _xhat_of(opt, names: TreeNames) -> dict:
    """The best plan's investments held by this rank's scenarios: {(var, index, node): value}."""
    if not opt.load_best_solution():
        return {}
    out = {}
    for s in opt.local_scenarios.values():
        for node in s._mpisppy_node_list:
            ours = names.to_ours[node.name]
            for var in node.nonant_vardata_list:
                if _investment(var):
                    index = var.index()
                    out[(var.parent_component().name, tuple(index[:-1]), ours)] = float(round(var.value))
    return out


def run(inst, options: PHOptions, comm=None) -> PHResult | None:
    """Spin the wheel on ``comm`` (default: every rank); rank 0 returns the result, the others None."""
    comm = comm or MPI.COMM_WORLD
    t0 = time.time()
    check_tree(inst)
    ranks = comm.Get_size()
    spokes = options.cylinders(ranks)
    deadline = comm.bcast(t0 + options.time_limit, root=0)
    names = TreeNames(inst.tree)
    scaling = Scaling.for_instance(inst)
    hub, spoke_dicts = cylinders(options, names, scaling, ranks, deadline)
    wheel = WheelSpinner(hub, spoke_dicts)
    wheel.spin(comm_world=comm)
    opt = wheel.spcomm.opt

    # the best plan: the hub's own (HubXhat) or a spoke's, whichever is better
    inner, source = None, None
    if wheel.global_rank == 0:
        inner, source = wheel.BestInnerBound, _source(wheel, "last_ib_idx", hub, spoke_dicts)
        own = opt.best_solution_obj_val
        if own is not None and (inner is None or not math.isfinite(inner)
                                or (own > inner if inst.tree.maximize else own < inner)):
            inner, source = own, type(wheel.spcomm).__name__ + " (HubXhat)"
    hub_wins = comm.bcast(source is not None and source.endswith("(HubXhat)"), root=0)
    winner = (wheel.strata_rank == 0) if hub_wins else wheel._determine_innerbound_winner()
    local = _xhat_of(opt, names) if winner else {}
    gathered = comm.gather(local, root=0)
    info = None
    if wheel.global_rank == 0:
        sample = next(iter(opt.local_scenarios.values()))
        info = {"factor": sample.info.objective_factor, "iterations": int(getattr(opt, "_PHIter", 0)),
                "trivial": getattr(opt, "trivial_bound", None), "inner": inner, "outer": wheel.BestOuterBound,
                "ib_source": source, "ob_source": _source(wheel, "last_ob_idx", hub, spoke_dicts)}
    memory = comm.gather(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, root=0)
    ext = getattr(opt, "extobject", None)
    solves = comm.gather((type(wheel.spcomm).__name__, ext.parts[0].solves if ext is not None else []), root=0)
    if comm.Get_rank() != 0:
        return None
    xhat = {}
    for part in gathered:
        xhat.update(part)
    result = _result(inst, options, ranks, spokes, info, xhat, memory, time.time() - t0)
    result.solves = _solve_stats(solves)
    return result


def _source(wheel, attr: str, hub, spokes) -> str | None:
    idx = getattr(wheel.spcomm, attr, None)
    if idx is None:
        return None
    dicts = [hub, *spokes]
    if 0 <= idx < len(dicts):
        return dicts[idx]["spcomm_class"].__name__
    return str(idx)


def _solve_stats(solves) -> dict:
    """Per cylinder: subproblem solves, their seconds (total, longest) and how many a time limit stopped."""
    out = {}
    for cylinder, rows in solves:
        o = out.setdefault(cylinder, {"solves": 0, "seconds": 0.0, "longest": 0.0, "stopped": 0})
        o["solves"] += len(rows)
        o["seconds"] += sum(r[0] for r in rows)
        o["longest"] = max([o["longest"], *(r[0] for r in rows)])
        o["stopped"] += sum(1 for r in rows if r[1] != "optimal")
    return out


def _result(inst, options, ranks, spokes, info, xhat, memory, seconds) -> PHResult:
    maximize = inst.tree.maximize
    factor = info["factor"]

    def finite(x):
        return None if x is None or not math.isfinite(x) else float(x) * factor

    objective = finite(info["inner"]) if xhat else None
    bound = finite(info["outer"])
    gap = relative_gap(objective, bound)
    if objective is None:
        status, msg = "no_solution", "no non-anticipative plan was found before the run ended"
    elif gap is not None and gap <= options.rel_gap * (1 + 1e-9):
        status, msg = "optimal", f"optimal within a relative gap of {options.rel_gap:g} (PH bounds)"
    else:
        status = "feasible"
        msg = (f"a plan {gap:.4%} from the best bound (not proven optimal)" if gap is not None
               else "a plan without a finite bound (not proven optimal)")
    if objective is not None and bound is not None:
        wrong = bound < objective if maximize else bound > objective
        if wrong and abs(bound - objective) > 1e-6 * max(1.0, abs(objective)):
            status, msg = "error", f"the bound {bound} is on the wrong side of the plan's objective {objective}"
    rows = sorted((name, index, node, value) for (name, index, node), value in xhat.items())
    return PHResult(status, msg, objective, bound, gap, info["iterations"], seconds, ranks, spokes, rows,
                    finite(info["trivial"]), max(memory), sum(memory), info["ob_source"], info["ib_source"])


def run_in_world(inst, options: PHOptions) -> PHResult | None:
    """PH on the ranks of the launch this process is part of (every rank calls it, e.g. under ``mpiexec -n 48
    capplan solve ...``): rank 0 returns the result, the others None.  The launcher's rank count must suit the
    cylinders (:meth:`PHOptions.cylinders`)."""
    t0 = time.perf_counter()
    result = run_quiet(inst, options)
    if result is not None:
        result = replace(result, launch_seconds=time.perf_counter() - t0)
    return result


def run_quiet(inst, options: PHOptions, comm=None) -> PHResult | None:
    """:func:`run` with mpi-sppy's and HiGHS's output silenced unless ``options.verbose`` (the file descriptor
    itself: HiGHS prints from C)."""
    saved = os.dup(1)
    if not options.verbose:
        sys.stdout.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    try:
        return run(inst, options, comm)
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    """``python -m optimizer.solver.ph_mpi PAYLOAD RESULT`` (under mpiexec): rank 0 writes RESULT."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: mpiexec -n R python -m optimizer.solver.ph_mpi PAYLOAD.pickle RESULT.pickle", file=sys.stderr)
        return 2
    comm = MPI.COMM_WORLD
    with open(argv[0], "rb") as f:
        payload = pickle.load(f)
    options: PHOptions = payload["options"]
    try:
        result = run_quiet(payload["instance"], options, comm)
    except Exception:
        print(f"rank {comm.Get_rank()}: PH failed\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        comm.Abort(1)
        return 1
    if result is not None:
        with open(argv[1], "wb") as f:
            pickle.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
