"""The pipe of a solve: instance -> model -> HiGHS -> plan, and the solves that put a plan in context.

:func:`solve` builds and solves the program of an instance (the deterministic
equivalent of its scenario tree when it has one) and returns its
:class:`~optimizer.plan.Plan`.  Around that one solve it runs, in parallel
(local processes or a Dask cluster, :mod:`optimizer.parallel`), the
independent solves that the reports need:

* under uncertainty, the value of information (spec v2 section 4.3): each
  scenario solved alone (wait-and-see, WS), the base instance's plan, and the
  tree solved with the root decisions fixed to that base plan (EEV);
* with ``commit=``, the same instance solved without the commitment, for the
  commitment cost (section 6).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import Counter
from collections.abc import Callable

import pandas as pd

from formulations import Commitments
from formulations.model import node_values

from .instance import ROOT, Instance
from .parallel import Abandoned, Runner, default_workers
from .plan import Plan
from .plan.commit import commitments_from, commitments_of
from .plan.summary import NOT_IN_TIME, CommitmentSummary, TreeSummary
from .plan.tables import commitments_table
from .solver import ModelHandle, Progress, SolveOptions, SolveStatus
from .solver.staged import STAGED_START_SCENARIOS


def solve_model(
    instance: Instance,
    *,
    commitments: Commitments | None = None,
    time_limit: float | None = None,
    mip_gap: float = 1e-4,
    threads: int | None = None,
    log: bool = False,
    progress: Callable[[Progress], None] | None = None,
    warm_start: bool = True,
    hold: list | None = None,
    abs_gap: float | None = None,
    deadline: float | None = None,
    workers: int | None = None,
    race: bool | None = None,
) -> Plan:
    """One build and one solve: the plan of ``instance`` (holding ``commitments``), nothing around it.

    ``hold`` is a list of ``[variable name, index, value]`` to fix (the root decisions other than
    purchases and block starts, from :func:`root_values`; the EEV solves by first-stage branch);
    ``abs_gap`` stops at that absolute gap instead of ``mip_gap`` (:class:`~optimizer.solver.SolveOptions`);
    ``deadline`` (``time.time()``) ends the solve then at the latest, the build included; ``workers``: local
    processes for the leaves of a large tree's staged starting plan (:mod:`optimizer.solver.staged`); ``race``:
    a second search on an idle core (:class:`~optimizer.solver.SolveOptions`).
    """
    handle = ModelHandle(instance, commitments=commitments)
    handle.fix(hold or ())
    time_limit = search_limit(handle, deadline, time_limit)
    result = handle.solve(SolveOptions(time_limit=time_limit, mip_gap=0.0 if abs_gap is not None else mip_gap,
                                       abs_gap=abs_gap, threads=threads, log=log, progress=progress,
                                       warm_start=warm_start, workers=workers, race=race))
    return Plan.from_model(instance, handle.model, result)


WIND_DOWN_PER_BUILD = 3.0
"""Under a deadline the search is given this many times the model's build seconds less than what is left: the
time HiGHS takes to stop after its limit, then to load the plan and read its tables (:meth:`Plan.from_model`).
The reading walks every variable of the model, as the build does, so the build time measures it on the machine
at hand.  Measured at 1,000 scenarios (2 cores; build 38-40 s): HiGHS ended 5-52 s past its limit in four runs;
loading the plan and reading its tables took 54-66 s after it before the tables were read by node-year (now about
10 s); at 162 scenarios (build 7 s): 0-10 s and 2 s (docs/performance.md)."""


def search_limit(handle: ModelHandle, deadline: float | None, time_limit: float | None) -> float | None:
    """The time limit of ``handle``'s search under a whole run's ``deadline`` (``time.time()``): the build and
    the hand-off to HiGHS (done here) count against it, and so do stopping HiGHS and reading the results after
    the search, for which :data:`WIND_DOWN_PER_BUILD` times the build's seconds are kept."""
    if deadline is None:
        return time_limit
    handle.highs  # noqa: B018  (the hand-off, timed against the deadline)
    left = max(0.01, deadline - time.time() - WIND_DOWN_PER_BUILD * handle.build_seconds)
    return left if time_limit is None else min(time_limit, left)


ANALYSES_MARGIN = 2.0
"""Seconds (at most 5% of the time limit) by which the analyses beside a solve end before its deadline: what
follows them (joining their results into the plan, closing the worker processes) and the tail of the last
small solve handed out.  A 1,000-scenario run ended 0.5 s past its 1,800 s with the analyses ending at the
deadline itself (docs/performance.md)."""

NOT_STARTED = "not started: the time limit of the whole run was spent"
NOT_FINISHED = "stopped: the time limit of the whole run was spent"


def out_of_time(started: bool = False) -> dict:
    """The row of an analysis solve the whole run's time limit left no time for (``started``: stopped)."""
    return {"status": SolveStatus.NO_SOLUTION.value, "objective": None, "mip_gap": None, "bound": None,
            "gross": None, "seconds": None if started else 0.0, "message": NOT_FINISHED if started else NOT_STARTED}


METHODS = ("auto", "de", "ph")
"""How a scenario tree is solved: ``de`` the deterministic equivalent (one MIP, HiGHS), ``ph`` progressive
hedging on MPI ranks (:mod:`optimizer.solver.ph`), ``auto`` chosen by :func:`choose_method`."""

PH_RANKS = 3
"""Ranks PH starts on one machine: its hub, a Lagrangian (bound) spoke and an xhatshuffle (plan) spoke."""

PH_SECONDS = 600.0
"""PH's time without a time limit (it has no other natural end before its gap closes)."""


def choose_method(instance: Instance, method: str = "auto") -> str:
    """``de`` or ``ph`` for ``instance`` (see docs/performance.md, "Which method").

    A file without a scenario tree is always solved directly (no MPI, ever).  ``auto`` takes PH only when
    capplan runs under an MPI launcher on more than one rank (``mpiexec -n 64 capplan solve ...``, ``srun``)
    and the tree can be decomposed (an expectation objective, no commitments held); on one machine the
    deterministic equivalent was better at every size measured (6 to 162 scenarios on 2 cores, PH on 3 ranks:
    docs/performance.md), so ``auto`` keeps it there.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    stochastic = getattr(instance, "uncertainty", None) is not None
    if method == "ph" and not stochastic:
        raise ValueError(f"{instance.name} has no scenario tree: progressive hedging decomposes trees "
                         "(solve it with method 'de' or 'auto')")
    if method != "auto":
        return method
    from .solver.ph import mpi_world

    if stochastic and mpi_world()[1] > 1 and not instance.tree.risk:
        return "ph"
    return "de"


def _solve_ph(instance: Instance, *, time_limit: float | None, mip_gap: float, threads: int | None,
              log: bool, ranks: int | None) -> Plan | None:
    """The tree by progressive hedging, then its plan: PH's investments fixed in the deterministic equivalent,
    whose operation is solved with the time left (the scenarios then separate), and PH's Lagrangian bound as
    the bound.  Optimal only when that plan is within ``mip_gap`` of PH's bound.  Under an MPI launcher
    every rank takes part; rank 0 returns the plan, the others None."""
    from .solver.ph import PHOptions, mpi_world, solve_ph, xhat_fixes
    from .solver.result import SolveResult

    start = time.perf_counter()
    ph_seconds = PH_SECONDS if time_limit is None else max(1.0, 0.85 * time_limit)  # the rest: the plan
    options = PHOptions(time_limit=ph_seconds, rel_gap=mip_gap, verbose=log)
    rank, size = mpi_world()
    if size > 1:
        from .solver.ph_mpi import run_in_world  # imports mpi4py: only on the ranks of a launch

        res = run_in_world(instance, options)
        if rank != 0:
            return None
    else:
        res = solve_ph(instance, ranks or PH_RANKS, options)
    handle = ModelHandle(instance)
    where = f"progressive hedging on {res.ranks} ranks, {res.iterations} iterations"
    if not res.xhat:
        status = SolveStatus.ERROR if res.status == "error" else SolveStatus.NO_SOLUTION
        result = SolveResult(status, f"{where}: {res.message}", None, res.bound, None, 0.0, 0.0,
                             time.perf_counter() - start, "highs", "", nodes=None)
        return Plan.from_model(instance, handle.model, result)
    handle.fix(xhat_fixes(res.xhat))
    left = None if time_limit is None else max(0.01, time_limit - (time.perf_counter() - start))
    r = handle.solve(SolveOptions(time_limit=left, mip_gap=mip_gap, threads=threads, log=log))
    if not r.status.has_plan:  # PH evaluated this plan; the whole tree did not take it (or ran out of time)
        result = dataclasses.replace(r, message=f"{where}: its plan, fixed in the whole tree: {r.message}",
                                     bound=res.bound, solve_seconds=time.perf_counter() - start)
        return Plan.from_model(instance, handle.model, result)
    bound, maximize = res.bound, instance.tree.maximize
    scale = max(abs(r.objective), r.gross or 0.0, 1e-9)
    gap = None if bound is None else abs(bound - r.objective) / scale
    if bound is not None and (r.objective - bound if maximize else bound - r.objective) > 1e-6 * scale:
        status, message = SolveStatus.ERROR, (f"{where}: the plan's objective {r.objective:,.6g} is past PH's "
                                              f"bound {bound:,.6g}; the bound is not valid (please report it)")
    elif gap is not None and gap <= mip_gap * (1 + 1e-9) and r.status is SolveStatus.OPTIMAL:
        status, message = SolveStatus.OPTIMAL, f"optimal within a relative gap of {mip_gap:g} ({where})"
    else:
        status = SolveStatus.FEASIBLE
        message = (f"{where}: a plan {gap:.4%} from PH's bound (not proven optimal)" if gap is not None
                   else f"{where}: a plan without a bound (not proven optimal)")
    result = dataclasses.replace(r, status=status, message=message, bound=bound, mip_gap=gap,
                                 solve_seconds=time.perf_counter() - start)
    return Plan.from_model(instance, handle.model, result)


def solve(
    instance: Instance,
    *,
    time_limit: float | None = None,
    mip_gap: float = 1e-4,
    threads: int | None = None,
    log: bool = False,
    progress: Callable[[Progress], None] | None = None,
    warm_start: bool = True,
    commit=None,
    through: int | None = None,
    value_of_information: bool = True,
    workers: int | None = None,
    client=None,
    on_step: Callable[[str], None] | None = None,
    method: str = "auto",
    ranks: int | None = None,
    race: bool | None = None,
) -> Plan | None:
    """Build, solve and report the plan of an instance.

    Returns a :class:`~optimizer.plan.Plan` whatever the outcome: check
    ``plan.status`` (a :class:`SolveStatus`).  A time-limited solve returns its
    best plan with ``plan.mip_gap`` and status ``FEASIBLE``, never ``OPTIMAL``.

    * An instance with an ``uncertainty`` section is solved over its scenario
      tree; unless ``value_of_information=False`` the wait-and-see, base-plan
      and EEV solves run too, beside the tree's solve, on ``workers`` local
      processes (default: the cores but one, at least one, since this
      process solves the tree meanwhile) or on a Dask ``client``'s workers.
      One worker is this process, after the tree's solve, unless a
      ``time_limit`` bounds the run or the tree has 18 scenarios or more
      (then it is a process of its own beside it); ``workers=0``: always
      this process.  A tree of 18 scenarios or more starts from
      a staged plan whose leaves are solved alone on ``workers`` local
      processes too (default: the cores; :mod:`optimizer.solver.staged`).
    * ``commit`` (a Plan or a plan directory) with ``through`` (a year) holds
      that plan's purchases and block starts of the years up to ``through``
      (spec v2 section 6) and reports ``commitment_cost``; a plan the instance
      cannot take raises :class:`~optimizer.plan.commit.CommitmentError`.
    * ``time_limit`` (seconds) bounds the whole run: the main solve gets it, and
      every analysis solve beside it (value of information, the free re-plan)
      gets what is left of it when it starts (none once it is spent: its
      result then says so); ``mip_gap`` applies to every solve.
    * ``threads``: HiGHS threads for the main solve (default: HiGHS's choice);
      ``log`` streams the HiGHS log; ``progress`` is called with a
      :class:`~optimizer.solver.Progress` (elapsed time, best plan, bound, gap)
      from HiGHS's callbacks; ``warm_start`` hands HiGHS a starting plan first
      (docs/model.md, "Starting plan"); ``on_step`` is called with a line of
      text as each analysis solve beside the main one finishes.
    * ``race``: a search of a v1 program still unproven after 5 s shares the
      work with a second search (another random seed) on an idle core, and
      reports the better plan and the tighter bound (:mod:`optimizer.solver.race`).
      Default: under a ``time_limit`` (which already makes the plan depend
      on the machine's speed; without one the plan is reproducible to the
      bit), where a core is idle (never while analyses run on local workers
      beside the solve); ``True`` in any case, ``False`` never.
    * ``method`` (``auto``, ``de``, ``ph``; :func:`choose_method`) says how a
      tree is solved: ``ph`` decomposes it by progressive hedging on ``ranks``
      MPI ranks started through ``mpiexec`` (default 3), or on the ranks of
      the MPI launcher capplan runs under; there every rank calls ``solve``,
      rank 0 gets the plan and the others None.  Its bound is PH's
      Lagrangian bound; the plan is optimal only within ``mip_gap`` of it.

    >>> plan = solve(load_instance("instances/tiny-supply-cap.yaml"))
    >>> plan.status
    <SolveStatus.OPTIMAL: 'optimal'>
    """
    commitments = None
    if commit is not None:
        if through is None:
            raise ValueError("commit= needs through= (the last committed year)")
        commitments = commitments_from(instance, commit, through)
    stochastic = getattr(instance, "uncertainty", None) is not None
    method = choose_method(instance, method)
    if method == "ph":
        from .solver.ph import check_tree, mpi_world

        if commitments is not None:
            raise ValueError("progressive hedging does not hold commitments: solve with method 'de'")
        try:
            check_tree(instance)
        except ValueError as exc:
            raise ValueError(f"{exc} (method 'de')") from None

        if mpi_world()[0] != 0:  # a rank of a launch: PH's part, nothing around it
            return _solve_ph(instance, time_limit=time_limit, mip_gap=mip_gap, threads=threads, log=log,
                             ranks=ranks)
    options = dict(time_limit=time_limit, mip_gap=mip_gap)
    deadline = None if time_limit is None else time.time() + time_limit  # wall clock: shared with the workers
    # the analyses end a little earlier: after them come joining their results and closing the workers
    analyses_end = None if deadline is None else deadline - min(ANALYSES_MARGIN, 0.05 * time_limit)
    jobs = _Jobs(instance, commitments, {**options, "deadline": analyses_end}, on_step)
    if commitments is not None:
        jobs.add("free", instance, None)
    if stochastic and value_of_information:
        jobs.add("base", instance.base(), commitments, root=True)
        for s in instance.scenarios():
            jobs.add(f"ws:{s.id}", s.instance, commitments)
    n = workers if workers is not None else max(1, default_workers() - 1)
    # one worker is a process of its own beside the main solve when a time limit bounds the run (in this process
    # the analyses would start after the main solve, which spends it: on two cores none ran) or the tree is
    # large (its analyses take long); else it is this process, after the main solve (small trees: faster than
    # starting a process).  workers=0: always here.  Local workers yield to this process: on a machine with
    # fewer free cores than workers, the plan the user waits for (and its time limit) comes first
    large = stochastic and len(instance.scenarios()) >= STAGED_START_SCENARIOS
    beside = bool(jobs) and n >= 1 and (time_limit is not None or large)
    with Runner(max(1, n), client, nice=10, beside=beside) as runner:
        jobs.start(runner)
        # on workers, the analyses' results are taken in as they come while this process solves (HiGHS
        # releases the GIL), so that the solves that wait for another (EEV after the base plan) start early
        side = None if runner.local else _Beside(jobs.finish, runner)
        if method == "ph":
            plan = _solve_ph(instance, threads=threads, log=log, ranks=ranks, **options)
        else:
            plan = solve_model(instance, commitments=commitments, threads=threads, log=log, progress=progress,
                               warm_start=warm_start, deadline=deadline, workers=_leaf_workers(workers, client),
                               race=False if race is None and jobs and runner.client is None and not runner.local
                               else race, **options)
        results = jobs.finish(runner) if side is None else side.join()
    if commitments is not None:
        _commitment_cost(plan, results["free"], through)
    if stochastic and value_of_information:
        _value_of_information(plan, results)
        _bound_by_wait_and_see(plan, results, mip_gap)
    plan.summary = plan._summary()
    return plan


def _leaf_workers(workers: int | None, client) -> int | None:
    """Local processes for a large tree's staged start (None: its default; on a Dask cluster, that too)."""
    return None if workers is None or client is not None else max(1, workers)


class _Beside(threading.Thread):
    """``fn(*args)`` on a thread beside the caller's work; :meth:`join` returns its value or raises its error."""

    def __init__(self, fn, *args):
        super().__init__(daemon=True)
        self._call, self._value, self._error = (fn, args), None, None
        self.start()

    def run(self) -> None:
        fn, args = self._call
        try:
            self._value = fn(*args)
        except BaseException as exc:  # re-raised in the caller's thread by join()
            self._error = exc

    def join(self, timeout=None):
        super().join(timeout)
        if self._error is not None:
            raise self._error
        return self._value


class _Jobs:
    """The independent solves around the main one, and the EEV solves that wait for the base plan.

    EEV (the tree with the root's purchases and block starts fixed to the base
    plan's) is solved by first-stage branch when the objective is an
    expectation (risk weight 0): once the root's n and k are fixed, the only
    link between the subtrees below the first stage is the root years'
    operation (allocation, serving, frontier sites), shared by all.  Each
    subtree is solved alone ("eev-part:<branch>", in parallel); the
    probability-weighted sum of their bounds bounds EEV, since it lets each
    subtree choose the root operation.  Where the subtrees chose the same root
    operation their plans join into a plan of the whole tree and EEV is
    proven; where they did not, the subtrees that differ are solved again
    holding the root operation of the subtree with the worst objective (the
    most constrained outcome; "eev-hold:<branch>"), which gives a plan of the
    whole tree, reported with its gap to the bound.  Should that fail, the
    whole tree is solved ("eev").  See docs/model.md.
    """

    def __init__(self, instance: Instance, commitments, options: dict, on_step):
        self.instance = instance
        self.commitments = commitments
        self.options = options
        self.on_step = on_step
        self.tasks: list[tuple[str, dict]] = []
        self.results: dict[str, dict] = {}
        self.done = self.total = 0

    def __bool__(self) -> bool:
        return bool(self.tasks)

    def payload(self, inst: Instance, commitments, **more) -> dict:
        """What a worker needs to solve ``inst`` (a validated instance: it travels as it is) holding
        ``commitments``."""
        return {"instance": inst, "commit": commitments, "threads": 1, **self.options, **more}

    def add(self, key: str, inst: Instance, commitments, *, root: bool = False) -> None:
        more = {"root_years": self._root_years()} if root else {}
        self.tasks.append((key, self.payload(inst, commitments, **more)))

    def _root_years(self) -> list[int]:
        return list(self.instance.tree.root_years)

    def _submit(self, runner: Runner, key: str, payload: dict) -> None:
        self.total += 1
        runner.submit(key, solve_task, payload)

    def start(self, runner: Runner) -> None:
        for key, payload in self.tasks:
            self._submit(runner, key, payload)

    def finish(self, runner: Runner) -> dict[str, dict]:
        # past the whole run's deadline the tasks not yet handed out are not started (nor sent to a worker to
        # say so: at 1,000 scenarios that alone took seconds), and the ones still running are stopped (a
        # 162-scenario run ended 3 s past its limit waiting for one)
        for key, row, error in runner.results(until=self.options.get("deadline")):
            if isinstance(error, Abandoned):
                row = out_of_time(error.started)
            elif error is not None:
                row = {"status": "error", "message": f"{type(error).__name__}: {error}"}
            self._take(runner, key, row)
        return self.results

    def _take(self, runner: Runner, key: str, row: dict) -> None:
        """Take in one finished solve and start the ones that were waiting for it."""
        results = self.results
        results[key] = row
        self.done += 1
        if self.on_step is not None:
            self.on_step(f"{self.done} of {self.total} solves for the analyses done ({key}: {row['status']})")
        if key == "base" and _ok(row):
            base = Commitments(tuple(row["root_years"]), row["units"], row["blocks"])
            self.eev_commitments = base if self.commitments is None else base.merged(self.commitments)
            self._start_eev(runner, row)
        elif key.startswith("eev-part:") and all(f"eev-part:{b}" in results for b in self.parts):
            self._after_parts(runner)
        elif key.startswith("eev-hold:") and all(f"eev-hold:{b}" in results for b in self.held):
            self._after_held(runner)
        elif key == "eev":  # the whole tree solved at once
            self._eev_row(row, runner)

    # ------------------------------------------------------------------ EEV by first-stage branch

    def _start_eev(self, runner: Runner, base: dict) -> None:
        unc = self.instance.uncertainty
        if not EEV_BY_BRANCH or unc.risk_weight > 0 or len(unc.stages[0].branches) < 2:
            self._submit(runner, "eev", self.payload(self.instance, self.eev_commitments))
            return
        self.parts = {}  # branch -> (probability, the instance of its subtree)
        # each subtree stops at the same absolute gap, the tolerance of the whole on the base plan's scale, so
        # that the weighted sum of their gaps stays within the tolerance of the sum (not of each part)
        self.part_gap = self.options["mip_gap"] * max(abs(base["objective"]), base.get("gross") or 0.0, 1e-9)
        tree = self.instance.tree
        for b in unc.stages[0].branches:
            sub = tree.given((b.id,)).instance
            self.parts[b.id] = (b.probability, sub)
            self._submit(runner, f"eev-part:{b.id}",
                         self.payload(sub, self.eev_commitments, root_ops=self._root_years(), abs_gap=self.part_gap))

    def _after_parts(self, runner: Runner) -> None:
        rows = {b: self.results[f"eev-part:{b}"] for b in self.parts}
        if any(r["status"] == "infeasible" for r in rows.values()):
            self._eev_row({"status": "infeasible"}, runner)
            return
        if not all(_ok(r) for r in rows.values()):
            bad = next(r for r in rows.values() if not _ok(r))
            self._eev_row({"status": bad["status"], "message": bad.get("message", "")}, runner)
            return
        # hold the root operation of the worst subtree (the most constrained: lowest training, highest cost)
        sign = 1.0 if self.instance.objective.kind == "max_training" else -1.0
        self.reference = min(self.parts, key=lambda b: sign * rows[b]["objective"])
        hold = rows[self.reference]["root_ops"]
        self.held = [b for b in self.parts if b != self.reference and not _same_values(rows[b]["root_ops"], hold)]
        if not self.held:
            self._eev_row(self._joined(rows), runner)
            return
        for b in self.held:
            self._submit(runner, f"eev-hold:{b}",
                         self.payload(self.parts[b][1], self.eev_commitments, hold=hold, abs_gap=self.part_gap))

    def _after_held(self, runner: Runner) -> None:
        rows = {b: self.results[f"eev-part:{b}"] for b in self.parts}
        held = {b: self.results[f"eev-hold:{b}"] for b in self.held}
        if not all(_ok(r) for r in held.values()):  # the reference's root operation does not fit them all
            self._submit(runner, "eev", self.payload(self.instance, self.eev_commitments))
            return
        self._eev_row(self._joined(rows, held), runner)

    def _joined(self, parts: dict[str, dict], held: dict[str, dict] | None = None) -> dict:
        """EEV from the subtrees: the plan joined from ``held`` (else ``parts``), bounded by ``parts``' bounds."""
        p = {b: self.parts[b][0] for b in parts}
        plans = {**parts, **(held or {})}
        objective = sum(p[b] * plans[b]["objective"] for b in parts)
        bounds = [parts[b].get("bound") for b in parts]
        grosses = [parts[b].get("gross") for b in parts]
        gap = math.nan
        if all(x is not None for x in bounds):
            bound = sum(p[b] * x for b, x in zip(parts, bounds))
            scale = abs(objective)
            if all(g is not None for g in grosses):
                scale = max(scale, sum(p[b] * g for b, g in zip(parts, grosses)))
            gap = abs(bound - objective) / max(scale, 1e-9)
        proven = gap <= self.options["mip_gap"] * (1 + 1e-9)  # False for nan
        return {"status": "optimal" if proven else "feasible", "objective": objective, "mip_gap": gap,
                "method": f"by first-stage branch ({len(parts)} subtrees, {len(held or {})} re-solved)",
                "seconds": max(r.get("seconds") or 0.0 for r in plans.values())}

    def _eev_row(self, row: dict, runner: Runner) -> None:
        """EEV's result; when infeasible, each scenario is solved with those decisions, to name the ones they break."""
        self.results["eev"] = row
        if row["status"] == "infeasible":
            for s in self.instance.scenarios():
                self._submit(runner, f"eev-check:{s.id}", self.payload(s.instance, self.eev_commitments))


EEV_BY_BRANCH = True
"""Solve EEV by first-stage branch (see :class:`_Jobs`); False solves the whole tree at once (tests compare)."""


def _same_values(a: list, b: list) -> bool:
    """Whether two lists of ``[name, index, value]`` (same order, same model structure) hold the same values."""
    return len(a) == len(b) and all(abs(x[2] - y[2]) <= 1e-6 * max(1.0, abs(x[2]), abs(y[2])) for x, y in zip(a, b))


def root_values(model, years) -> list:
    """``[name, index, value]`` of every decision of the root node in ``years`` other than the purchases
    and block starts (n, k, K): the root operation that subtrees below the first stage share."""
    return [[name, list(index), value] for name, index, value in node_values(model, ROOT, years)
            if name not in ("n", "k", "K")]


def solve_task(payload: dict) -> dict:
    """Solve one instance in a worker: its status, objective and bound; with ``root_years`` its decisions of
    those years, with ``root_ops`` the root operation of those years (:func:`root_values`)."""
    inst = payload["instance"]
    deadline = payload.get("deadline")  # the whole run's: the build, the search and the reading end by then
    if deadline is not None and deadline - time.time() <= 0.05:
        return out_of_time()
    handle = ModelHandle(inst, commitments=payload.get("commit"))
    handle.fix(payload.get("hold") or ())
    limit = search_limit(handle, deadline, payload["time_limit"])
    abs_gap = payload.get("abs_gap")
    r = handle.solve(SolveOptions(time_limit=limit,
                                  mip_gap=0.0 if abs_gap is not None else payload["mip_gap"],
                                  threads=payload.get("threads"), abs_gap=abs_gap))
    out = {"status": r.status.value, "objective": r.objective, "mip_gap": r.mip_gap,
           "bound": r.bound, "gross": r.gross, "message": r.message, "seconds": r.solve_seconds}
    if "root_years" in payload and r.status.has_plan:
        plan = Plan.from_model(inst, handle.model, r)
        c = commitments_of(plan, payload["root_years"])
        out.update(root_years=list(c.years), units=c.units, blocks=c.blocks,
                   table=commitments_table(inst, plan.purchases, plan.facilities, c.years).to_dict("list"))
    if "root_ops" in payload and r.status.has_plan:
        out["root_ops"] = root_values(handle.model, set(payload["root_ops"]))
    return out


def _ok(row: dict | None) -> bool:
    return row is not None and row.get("status") in ("optimal", "feasible")


def _why_unsolved(row: dict | None) -> str:
    """Why an analysis solve gave no value, in words: ``not solved in time`` (stopped, or not started, by a
    time limit: HiGHS's ``no_solution``), ``not solved`` (no row), or its status (``infeasible``, ...)."""
    if row is None:
        return "not solved"
    return NOT_IN_TIME if row.get("status") == SolveStatus.NO_SOLUTION.value else str(row.get("status"))


def _commitment_cost(plan: Plan, free: dict, through: int) -> None:
    """Spec v2 section 6: what holding to the old plan costs against a free re-plan (objective units)."""
    maximize = plan.instance.objective.kind == "max_training"
    cost = math.nan
    if _ok(free) and plan.status.has_plan:
        cost = free["objective"] - plan.objective if maximize else plan.objective - free["objective"]
    elif _ok(free):
        cost = math.inf  # the commitment leaves no plan at all
    plan.commitment = CommitmentSummary(cost, through)


def _bound_by_wait_and_see(plan: Plan, results: dict[str, dict], mip_gap: float) -> None:
    """The wait-and-see bound of a risk-neutral tree: each scenario solved alone does at least as well as the
    tree's plan does in it (it knows its future), so the expectation of the scenarios' own bounds bounds the
    tree's optimum.  Where it is tighter than the tree solve's bound it becomes the plan's bound, and the plan
    is optimal when it is within ``mip_gap`` of it.  (A CVaR mix is left alone.)"""
    tree, r = plan.instance.tree, plan.result
    if tree.risk or not r.status.has_plan or r.status is SolveStatus.OPTIMAL:
        return
    ws = [(s.probability, results.get(f"ws:{s.id}")) for s in tree.scenarios]
    if not all(row and row["status"] in ("optimal", "feasible") and row.get("bound") is not None for _, row in ws):
        return
    bound = sum(p * row["bound"] for p, row in ws)
    if r.bound is not None and (bound >= r.bound if tree.maximize else bound <= r.bound):
        return
    gap = abs(bound - r.objective) / max(abs(r.objective), r.gross or 0.0, 1e-9)
    if gap <= mip_gap * (1 + 1e-9):
        status, message = SolveStatus.OPTIMAL, (f"optimal within a relative gap of {mip_gap:g} (the bound: each "
                                                "scenario solved alone, the wait-and-see value)")
    else:
        status, message = r.status, (f"stopped by the time limit with a plan {gap:.4%} from the best bound (the "
                                     "wait-and-see value; not proven optimal)")
    plan.result = dataclasses.replace(r, status=status, message=message, bound=bound, mip_gap=gap)


def _value_of_information(plan: Plan, results: dict[str, dict]) -> None:
    """WS, EVPI, EEV and VSS of spec v2 section 4.3 from the independent solves, into the plan's reports."""
    tree = plan.instance.tree
    scenarios = tree.scenarios
    ws = {s.id: results.get(f"ws:{s.id}") for s in scenarios}
    sign = 1.0 if tree.maximize else -1.0
    # every field of the value of information, set anew (what a call does not find is None)
    found = dict.fromkeys(("wait_and_see", "evpi", "base_plan_objective", "base_plan_status", "vss",
                           "wait_and_see_status"))
    unsolved = Counter(_why_unsolved(r) for r in ws.values() if not _ok(r))
    if unsolved:  # why WS is not known, in words: "5 of 6 scenarios not solved in time, 1 infeasible"
        (why, n), *more = unsolved.items()
        found["wait_and_see_status"] = ", ".join([f"{n} of {len(ws)} scenarios {why}",
                                                  *(f"{k} {other}" for other, k in more)])
    if not unsolved:
        found["wait_and_see"] = tree.risk_measure({sid: r["objective"] for sid, r in ws.items()})
        if plan.status.has_plan:
            found["evpi"] = sign * (found["wait_and_see"] - plan.objective)
    if plan.scenarios is not None and len(plan.scenarios):
        star = plan.scenarios.scenario.map(lambda sid: ws[sid]["objective"] if _ok(ws[sid]) else math.nan)
        plan.scenarios["wait_and_see_objective"] = star
        plan.scenarios["regret"] = (star - plan.scenarios.objective).abs()
    base, eev = results.get("base"), results.get("eev")
    if _ok(base):
        plan.base_commitments = pd.DataFrame(base["table"], columns=plan.base_commitments.columns)
    if not _ok(base):
        found["base_plan_status"] = f"base plan {_why_unsolved(base)}"
    elif _ok(eev):
        found["base_plan_objective"] = eev["objective"]
        gap = eev.get("mip_gap")
        unproven = eev["status"] != "optimal" and gap is not None and math.isfinite(gap)
        found["base_plan_status"] = f"{eev['status']} (gap {gap:.3%})" if unproven else eev["status"]
        if plan.status.has_plan:
            found["vss"] = sign * (plan.objective - eev["objective"])
    elif eev is not None and eev["status"] == "infeasible":
        broken = [s.id for s in scenarios if (results.get(f"eev-check:{s.id}") or {}).get("status") == "infeasible"]
        found["base_plan_status"] = ("infeasible: the base plan's commitments leave "
                                     + (f"scenario{'s' if len(broken) > 1 else ''} {', '.join(broken)} infeasible"
                                        if broken else "the tree infeasible"))
        found["vss"] = math.inf
    else:
        found["base_plan_status"] = f"EEV {_why_unsolved(eev)}"
    if plan.tree_summary is not None:
        plan.tree_summary = dataclasses.replace(plan.tree_summary, **found)
    else:  # no plan of the tree: what the analyses found, beside it
        plan.tree_summary = TreeSummary(len(scenarios), math.nan, math.nan, **found)


__all__ = ["SolveStatus", "solve", "solve_model", "solve_task"]
