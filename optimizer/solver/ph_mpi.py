"""What runs on the MPI ranks of a PH solve (:mod:`optimizer.solver.ph`): mpi-sppy's scenario creator, hub and
spokes, and the entry point ``python -m optimizer.solver.ph_mpi PAYLOAD RESULT``.

This module imports mpi-sppy and mpi4py (which starts MPI), so only the ranks
import it; :mod:`optimizer.solver.ph` describes the decomposition and launches
this module.  Every rank reads the payload pickle (the instance and the
:class:`~optimizer.solver.ph.PHOptions`), builds its cylinder's scenarios and
spins mpi-sppy's wheel; rank 0 writes the :class:`~optimizer.solver.ph.PHResult`.
mpi-sppy's (and HiGHS's) output goes to the null device unless
``options.verbose``.

The deadline: rank 0 fixes a wall-clock deadline (``time_limit`` after the
ranks start) and every rank gets it.  :class:`Deadline`, an mpi-sppy extension
on every cylinder, gives every subproblem solve what is left until it (so a
spoke's pass ends with it), and stops the hub when its next iteration would
not end before it (measured from its last iteration).  A Lagrangian solve cut
short still gives a valid bound (HiGHS's dual bound); an xhat solve cut short
without a plan rejects that candidate.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import resource
import sys
import time
import traceback

import pyomo.environ as pyo
from formulations.scaling import Scaling

from .highs import ModelHandle, SolveOptions
from .ph import INVESTMENTS, PHOptions, PHResult, TreeNames, check_tree, relative_gap

# mpi-sppy prints "Initializing mpi-sppy" when imported: silence it with the rest unless verbose
with contextlib.redirect_stdout(open(os.devnull, "w")):  # noqa: SIM115 (kept open: mpi-sppy caches nothing)
    import mpisppy.utils.sputils as sputils
    from mpisppy import MPI
    from mpisppy.cylinders.lagrangian_bounder import LagrangianOuterBound
    from mpisppy.extensions.extension import Extension
    from mpisppy.scenario_tree import ScenarioNode
    from mpisppy.spin_the_wheel import WheelSpinner
    from mpisppy.utils import cfg_vanilla as vanilla
    from mpisppy.utils import config


# --------------------------------------------------------------------------- scenarios


def scenario_creator(sname: str, names: TreeNames, scaling: Scaling, start: float | None = None,
                     deadline: float | None = None):
    """The v1 program of scenario ``sname`` with its mpi-sppy node list and probability.

    Built by :func:`formulations.build_model` (through a
    :class:`~optimizer.solver.ModelHandle`) from the scenario's own instance,
    in the tree's internal units (``scaling``); the node list holds every
    non-leaf node of the scenario's path: its conditional probability, its
    years' objective terms and the investments of its years (``n`` and ``K``,
    in index order; see :mod:`optimizer.solver.ph`).

    With ``start`` (seconds), the scenario is first solved alone by capplan's
    own solve (its starting plan and search, at most ``start`` seconds and not
    past ``deadline``), and that plan stays in the variables: PH's first
    solves start from it (measured: a warm-started scenario solve takes about
    1 s where a cold one takes 3 to 16 s on the shipped tree).
    """
    tree = names.tree
    s = names.scenario_of[sname]
    handle = ModelHandle(s.instance, scaling=scaling)
    m = handle.model
    if start:
        left = start if deadline is None else min(start, deadline - time.time())
        r = handle.solve(SolveOptions(time_limit=max(0.05, left), threads=1))
        if not r.status.has_plan and r.status.value == "no_solution" and deadline is not None:
            r = handle.solve(SolveOptions(time_limit=max(0.05, deadline - time.time()), threads=1))
        if r.status.has_plan and r.bound is not None:
            # PH's iteration 0 is this solve: hand mpi-sppy its plan and bounds (internal units) as it takes
            # them from a pickled scenario solved before pickling (options iter0_from_pickle)
            f = m.info.objective_factor
            m._mpisppy_data = pyo.Block(name="For non-Pyomo mpi-sppy data")
            m._mpisppy_data.pickle_metadata = {"iter0_before_pickle": True, "iter0_outer_bound": r.bound / f,
                                               "iter0_inner_bound": r.objective / f}
    del handle
    nodes = []
    for depth in range(len(tree.stages)):
        node = "/".join(s.branches[:depth])
        years = set(tree.node_years_of(node))
        nonants = [m.component(name)[i] for name in INVESTMENTS
                   for i in sorted(m.component(name).keys()) if i[-2] in years]
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
    return m


def scenario_denouement(rank, sname, s) -> None:
    """Nothing to report per scenario (the result is gathered by :func:`run`)."""


# --------------------------------------------------------------------------- the deadline


class Deadline(Extension):
    """Every subproblem solve stops at the run's deadline; the hub stops before an iteration that would not end
    before it.  ``deadline`` is a wall-clock time (``time.time()``), the same on every rank."""

    def __init__(self, opt, deadline: float, hub: bool = False):
        super().__init__(opt)
        self.deadline = deadline
        self.hub = hub
        self._last = None  # wall time at the previous miditer (an iteration's start)
        self.solves: list[tuple[float, str | None]] = []  # (seconds, termination) of every subproblem solve
        self._longest = 0.0

    def pre_solve(self, subproblem):
        subproblem._solver_plugin.options["time_limit"] = max(0.01, self.deadline - time.time())
        self._t = time.time()

    def post_solve(self, subproblem, results):
        cond = None if results is None else str(results.solver.termination_condition)
        self.solves.append((time.time() - self._t, cond))
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


class _Lagrangian(LagrangianOuterBound):
    """mpi-sppy's Lagrangian spoke, whose first bound (no prices: each scenario alone) is taken from the
    scenarios' first solves in :func:`scenario_creator` when every local scenario has one, as PH's hub does
    (``iter0_from_pickle``), instead of solving them again."""

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
        return super().lagrangian(need_solution=need_solution, warmstart=warmstart)


class _Extensions(Extension):
    """Several extensions as one (mpi-sppy takes one extension class per cylinder)."""

    def __init__(self, opt, parts):
        super().__init__(opt)
        self.parts = [cls(opt, **kw) for cls, kw in parts]

    def __getattribute__(self, name):
        if name in ("pre_solve", "post_solve", "pre_solve_loop", "post_solve_loop", "pre_iter0", "post_iter0",
                    "iter0_post_solver_creation", "post_iter0_after_sync", "miditer", "enditer",
                    "enditer_after_sync", "post_everything", "setup_hub", "sync_with_spokes",
                    "register_send_fields", "register_receive_fields"):
            parts = object.__getattribute__(self, "parts")

            def call(*args, **kwargs):
                out = None
                for p in parts:
                    out = getattr(p, name)(*args, **kwargs)
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
    cfg.xhatxbar_args()
    cfg.subgradient_bounder_args()
    cfg.reduced_costs_args()
    cfg.pre_pickle_args()
    cfg.solver_name = options.solver
    cfg.default_rho = options.rho
    cfg.max_iterations = options.max_iterations
    cfg.time_limit = options.time_limit
    cfg.rel_gap = options.rel_gap
    cfg.abs_gap = 0.0
    cfg.linearize_proximal_terms = options.linearize
    cfg.max_solver_threads = options.threads
    cfg.solver_options = f"mip_rel_gap={options.subproblem_gap}"
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
    warm = {**kw, "start": options.start_seconds, "deadline": deadline}  # cylinders whose first solves are free
    nodenames = names.all_nodenames

    def ext(hub=False):
        return {"ph_extensions": _Extensions,
                "extension_kwargs": {"parts": [(Deadline, {"deadline": deadline, "hub": hub})]}}

    hub = vanilla.ph_hub(*beans, scenario_creator_kwargs=warm, all_nodenames=nodenames, **ext(hub=True))
    spokes = []
    for name in options.cylinders(ranks):
        if name == "lagrangian":
            spoke = vanilla.lagrangian_spoke(*beans, scenario_creator_kwargs=warm, all_nodenames=nodenames, **ext())
            spoke["spoke_class"] = _Lagrangian
        elif name == "subgradient":
            spoke = vanilla.subgradient_spoke(*beans, scenario_creator_kwargs=warm, all_nodenames=nodenames, **ext())
        elif name == "reduced_costs":
            spoke = vanilla.reduced_costs_spoke(*beans, scenario_creator_kwargs=warm, all_nodenames=nodenames,
                                                **ext())
        elif name == "xhatshuffle":
            spoke = vanilla.xhatshuffle_spoke(*beans, scenario_creator_kwargs=kw, all_nodenames=nodenames, **ext())
        elif name == "xhatxbar":
            spoke = vanilla.xhatxbar_spoke(*beans, scenario_creator_kwargs=kw, all_nodenames=nodenames, **ext())
        else:  # PHOptions validated the names
            raise AssertionError(name)
        spokes.append(spoke)
    return hub, spokes


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
    factor = 1.0
    hub, spoke_dicts = cylinders(options, names, scaling, ranks, deadline)
    wheel = WheelSpinner(hub, spoke_dicts)
    wheel.spin(comm_world=comm)

    # the best plan, from the cylinder that found it
    winner = wheel._determine_innerbound_winner()
    local = _xhat_of(wheel.spcomm.opt, names) if winner else {}
    gathered = comm.gather(local, root=0)
    info = None
    if wheel.global_rank == 0:
        opt = wheel.spcomm.opt
        sample = next(iter(opt.local_scenarios.values()))
        factor = sample.info.objective_factor
        info = {"iterations": int(getattr(opt, "_PHIter", 0)), "trivial": getattr(opt, "trivial_bound", None),
                "inner": wheel.BestInnerBound, "outer": wheel.BestOuterBound,
                "ib_source": _source(wheel, "last_ib_idx", hub, spoke_dicts),
                "ob_source": _source(wheel, "last_ob_idx", hub, spoke_dicts)}
    memory = comm.gather(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, root=0)
    ext = getattr(wheel.spcomm.opt, "extobject", None)
    solves = comm.gather((type(wheel.spcomm).__name__, ext.parts[0].solves if ext is not None else []), root=0)
    if comm.Get_rank() != 0:
        return None
    xhat = {}
    for part in gathered:
        xhat.update(part)
    result = _result(inst, options, ranks, spokes, info, factor, xhat, memory, time.time() - t0)
    result.solves = _solve_stats(solves)
    return result


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


def _source(wheel, attr: str, hub, spokes) -> str | None:
    idx = getattr(wheel.spcomm, attr, None)
    if idx is None:
        return None
    dicts = [hub, *spokes]
    if 0 <= idx < len(dicts):
        return dicts[idx]["spcomm_class"].__name__
    return str(idx)


def _result(inst, options, ranks, spokes, info, factor, xhat, memory, seconds) -> PHResult:
    maximize = inst.tree.maximize

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
    quiet = not options.verbose
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    if quiet:  # mpi-sppy prints from Python and HiGHS from C: silence the file descriptor itself
        sys.stdout.flush()
        os.dup2(devnull, 1)
    try:
        result = run(payload["instance"], options, comm)
    except Exception:
        os.dup2(saved, 1)
        print(f"rank {comm.Get_rank()}: PH failed\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        comm.Abort(1)
        return 1
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
    if result is not None:
        with open(argv[1], "wb") as f:
            pickle.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
