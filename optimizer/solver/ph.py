r"""Progressive hedging (PH) for scenario trees, through mpi-sppy on MPI ranks (issue 18).

The deterministic equivalent (DE, :func:`optimizer.pipeline.solve`) of a large
tree is hard to prove: chip units form a budget knapsack in every scenario and
the DE's bound moves slowly.  Scenario decomposition solves each scenario's v1
program alone and ties them together: a PH hub moves the scenarios' plans
towards agreement, a Lagrangian spoke turns PH's prices (W) into an outer
bound, and an ``xhatshuffle`` spoke turns the scenarios' plans into
non-anticipative plans of the whole tree and evaluates them (the inner bound).
This module is the part that runs in an ordinary Python process: the options,
the result, the launch of ``mpiexec`` and the names that link mpi-sppy's tree
to ours.  What runs on the ranks (and imports mpi-sppy and mpi4py) is
:mod:`optimizer.solver.ph_mpi`.

Non-anticipativity
------------------
Scenario ``s``'s program is ``build_model(s.instance)`` (its own v1 instance,
node ``""`` in every year), in the internal units of the tree's instance, so
that every scenario's objective is in the same units.  The variables declared
non-anticipative at a tree node ``v`` (mpi-sppy's ``nonant_list``) are the
*investment* decisions of ``v``'s years only: chip units bought ``n[g,r,t]``
and cumulative campus blocks ``K[r,t]`` (the yearly block starts ``k`` are
differences of ``K``).  That suffices:

* spend (the only thing that links years, through the budget rows) is made of
  ``n``, ``k`` and the installed fleet (from ``n``); the operation of a year
  (``xT``, ``xI``, ``y``, ``m``, ``z``) appears only in that year's rows and in
  that year's objective term ``Yearly[t]`` (``tests/test_ph.py`` checks it
  on the built model: no row holds operation variables of two node-years);
* scenarios through ``v`` have the same data in ``v``'s years (spec v2
  section 4.1), so with ``v``'s investments fixed, an operation of a year of
  ``v`` that is feasible for one of them is feasible for all, with the same
  objective term.

Hence the *inner bound*: a candidate fixes ``n`` and ``K`` of every non-leaf
node, each scenario is solved alone (its operation free), and the expected
value of the scenarios' objectives is at most (max_training; at least, for
min_cost) the DE's objective with those investments fixed: the DE can use, at
every node-year, the best of the operations its scenarios chose.  The *outer
bound*: the Lagrangian relaxation of the DE in which only ``n`` and ``K`` are
tied relaxes the DE further (operation is not tied either), so its value, and
the dual bounds of its scenario MIPs, bound the DE from above (max_training)
or below (min_cost).  A CVaR objective (risk weight above 0) does not separate
by scenario this way; PH refuses it (solve the DE).

Names
-----
mpi-sppy names scenarios ``scen0, scen1, ...`` in our scenario order (first
stage slowest, so the scenarios of a node are contiguous, as mpi-sppy's
multi-stage trees require) and nodes ``ROOT``, ``ROOT_i``, ``ROOT_i_j`` (the
branch's position in its stage); :class:`TreeNames` maps both ways.  The plan
found (``PHResult.xhat``) is given in our naming: ``(variable, index without
the node, node id, value)``, ready for :func:`xhat_fixes` and
:meth:`~optimizer.solver.ModelHandle.fix` on the DE.

Running
-------
:func:`solve_ph` launches ``mpiexec -n R python -m optimizer.solver.ph_mpi
PAYLOAD RESULT`` (pickles) and reads the result; the same command runs under
an external launcher (``mpiexec -n 64 ...`` or ``srun``).  The number of ranks
must be a multiple of the number of cylinders (hub plus spokes,
:meth:`PHOptions.cylinders`).
"""

from __future__ import annotations

import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace

INVESTMENTS = ("n", "K")
"""The decisions declared non-anticipative (see the module docstring)."""

HUBS = ("ph", "subgradient")
"""The hub: progressive hedging, or subgradient steps on the Lagrangian prices (each iteration a bound)."""

SPOKES = ("lagrangian", "xhatshuffle")
"""The spokes :mod:`optimizer.solver.ph_mpi` can start."""

RHO_RULES = ("value", "uniform")
"""How PH's penalty is set per decision: ``value`` (:class:`~optimizer.solver.ph_mpi.ValueRho`) or ``uniform``
(``rho`` for every decision)."""


@dataclass(frozen=True)
class PHOptions:
    """How to run PH.

    ``hub`` is ``ph`` (progressive hedging, proximal terms linearized for
    HiGHS) or ``subgradient`` (the same price updates without proximal
    terms: every iteration solves Lagrangian subproblems and gives a bound).
    ``time_limit`` (seconds) bounds the whole spin on the ranks (the hub stops
    when the next iteration would not fit; every subproblem solve stops at the
    deadline); ``max_iterations`` caps PH iterations; ``rel_gap`` stops when
    the inner and outer bounds are that close (relative to the inner bound).
    ``rho`` is PH's penalty (internal objective units per unit of a decision,
    squared), scaled per decision by ``rho_rule`` (:data:`RHO_RULES`).
    ``hub_xhat_every``: without an xhatshuffle spoke the hub evaluates a
    candidate plan itself every that many iterations.
    ``spokes`` names the spokes (None: by the number of ranks, PH hub: 1 rank
    none, 2 ``lagrangian``, 3 ``lagrangian`` and ``xhatshuffle``; subgradient
    hub: 1 rank none, 2 ``xhatshuffle``).
    ``subproblem_gap`` is HiGHS's relative MIP gap in every scenario solve.
    ``start_seconds``: each scenario is first solved by capplan's own solve
    for at most that long, and PH's first solves start from its plan (None:
    they start cold).
    ``relax_units``: the hub's scenario solves and the Lagrangian spoke's
    (after its first: the scenarios alone, integer, the wait-and-see bound)
    take chip units ``n`` as continuous: a relaxation, so the bounds stay
    valid (they can only loosen), and the solves lose the budget knapsacks
    that make them hard; candidate plans are still evaluated with integer
    units (their ``n`` rounded down).
    ``linearize`` replaces PH's quadratic proximal term by cuts (HiGHS cannot
    solve a MIP with a quadratic objective).
    """

    time_limit: float = 300.0
    hub: str = "ph"
    max_iterations: int = 1000
    rel_gap: float = 1e-4
    rho: float = 1.0
    rho_rule: str = "value"
    spokes: tuple[str, ...] | None = None
    subproblem_gap: float = 1e-4
    start_seconds: float | None = 10.0
    relax_units: bool = True
    hub_xhat_every: int = 1
    threads: int = 1
    linearize: bool = True
    solver: str = "appsi_highs"
    verbose: bool = False

    def __post_init__(self):
        if not self.time_limit > 0:
            raise ValueError(f"time_limit must be > 0 seconds, got {self.time_limit!r}")
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {self.max_iterations!r}")
        if not self.rho > 0:
            raise ValueError(f"rho must be > 0, got {self.rho!r}")
        if self.hub not in HUBS:
            raise ValueError(f"unknown hub {self.hub!r}; known: {', '.join(HUBS)}")
        if self.rho_rule not in RHO_RULES:
            raise ValueError(f"unknown rho_rule {self.rho_rule!r}; known: {', '.join(RHO_RULES)}")
        if self.hub_xhat_every < 1:
            raise ValueError(f"hub_xhat_every must be >= 1, got {self.hub_xhat_every!r}")
        for s in self.spokes or ():
            if s not in SPOKES:
                raise ValueError(f"unknown spoke {s!r}; known: {', '.join(SPOKES)}")

    def cylinders(self, ranks: int) -> tuple[str, ...]:
        """The spokes beside the hub for ``ranks`` ranks (each cylinder gets ranks / cylinders of them)."""
        if self.spokes is not None:
            spokes = tuple(self.spokes)
        elif self.hub == "subgradient":  # the hub bounds: a spoke for plans when there is a rank for it
            spokes = ("xhatshuffle",) if ranks % 2 == 0 else ()
        elif ranks % 3 == 0:
            spokes = ("lagrangian", "xhatshuffle")
        elif ranks % 2 == 0:
            spokes = ("lagrangian",)
        else:
            spokes = ()
        if ranks % (len(spokes) + 1):
            raise ValueError(f"{ranks} ranks cannot share {len(spokes) + 1} cylinders (the hub and "
                             f"{', '.join(spokes) or 'no spoke'}): give a multiple of {len(spokes) + 1}")
        return spokes


@dataclass
class PHResult:
    """What a PH run established, in spec objective units.

    ``objective`` is the value of the best non-anticipative plan found (the
    inner bound; None without one), ``bound`` the best outer bound (an upper
    bound for max_training, a lower bound for min_cost; None without one),
    ``gap`` their distance relative to ``max(|objective|, 1e-9)``.  ``status``
    is ``optimal`` only when that gap is within ``PHOptions.rel_gap``;
    ``feasible`` with a plan otherwise; ``no_solution`` without one;
    ``error`` when the run failed (``message`` says why).  ``xhat`` is the
    plan's investments, ``(variable, index without the node, node id,
    value)``; ``first_bound`` the bound of the hub's first iteration (each
    scenario solved alone, mpi-sppy's trivial bound: the wait-and-see value's
    bound, of the scenarios with continuous units under ``relax_units``).
    """

    status: str
    message: str
    objective: float | None
    bound: float | None
    gap: float | None
    iterations: int
    seconds: float
    ranks: int
    cylinders: tuple[str, ...]
    xhat: list[tuple[str, tuple, str, float]] = field(default_factory=list)
    first_bound: float | None = None
    peak_memory_mb: float | None = None  # the largest resident set of any rank
    total_memory_mb: float | None = None  # the sum over the ranks
    bound_source: str | None = None
    plan_source: str | None = None
    launch_seconds: float | None = None  # wall time of the whole launch, as seen by the caller
    solves: dict = field(default_factory=dict)  # per cylinder: subproblem solves, seconds, longest, stopped early
    log: str = ""

    @property
    def proven(self) -> bool:
        return self.status == "optimal"


class TreeNames:
    """mpi-sppy's names for our tree's scenarios and nodes, both ways (see the module docstring)."""

    def __init__(self, tree):
        self.tree = tree
        self.scenarios = [f"scen{i}" for i in range(len(tree.scenarios))]
        self.scenario_of = {name: s for name, s in zip(self.scenarios, tree.scenarios)}
        self.branching_factors = [len(st.branches) for st in tree.stages]
        self.to_mpisppy: dict[str, str] = {}
        for s in tree.scenarios:
            for depth in range(len(tree.stages)):  # the non-leaf nodes on s's path
                node = "/".join(s.branches[:depth])
                if node not in self.to_mpisppy:
                    pos = [[b.id for b in st.branches].index(b) for st, b in zip(tree.stages, s.branches[:depth])]
                    self.to_mpisppy[node] = "_".join(["ROOT", *map(str, pos)])
        self.to_ours = {v: k for k, v in self.to_mpisppy.items()}
        # mpi-sppy wants as many nonants in every scenario; a node's count can differ from its siblings' (a chip
        # purchasable in one branch's years and not in another's): nodes of a depth are padded to the largest
        from formulations.sets import index_sets

        sets = index_sets(tree)
        count = dict.fromkeys(self.to_mpisppy, 0)
        for idx in (*sets["N_IDX"], *sets["K_IDX"]):
            if idx[-1] in count:
                count[idx[-1]] += 1
        self.depth_size = [max((c for v, c in count.items() if _depth(v) == d), default=0)
                           for d in range(len(tree.stages))]

    @property
    def all_nodenames(self) -> list[str] | None:
        """Every node name, leaves included (None for a two-stage tree, mpi-sppy's convention)."""
        if len(self.branching_factors) <= 1:
            return None
        names = ["ROOT"]
        level = ["ROOT"]
        for bf in self.branching_factors:
            level = [f"{p}_{i}" for p in level for i in range(bf)]
            names += level
        return names


def _depth(node: str) -> int:
    return 0 if node == "" else node.count("/") + 1


def check_tree(inst) -> None:
    """Raise ValueError when PH cannot solve ``inst``'s tree (no tree, or a CVaR objective)."""
    tree = inst.tree
    if not tree.stages:
        raise ValueError(f"{inst.name} has no scenario tree: solve it directly")
    if tree.risk:
        raise ValueError("PH solves expected-value objectives only: with a CVaR risk weight above 0 the "
                         "scenarios do not separate (solve the deterministic equivalent)")


def xhat_fixes(xhat) -> list[tuple[str, tuple, float]]:
    """``(variable, index with the node, value)`` of a PH plan, for :meth:`ModelHandle.fix` on the DE."""
    return [(name, (*index, node), value) for name, index, node, value in xhat]


def mpiexec() -> str | None:
    """The ``mpiexec`` to launch with: ``$CAPPLAN_MPIEXEC``, else the one on PATH or beside this Python."""
    env = os.environ.get("CAPPLAN_MPIEXEC")
    if env:
        return env
    found = shutil.which("mpiexec")
    if found:
        return found
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.access(beside, os.X_OK) else None


_WORLD = (("PMI_RANK", "PMI_SIZE"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
          ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE"), ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS"))


def mpi_world() -> tuple[int, int]:
    """``(rank, size)`` of the MPI launch this process is part of, from the launcher's environment (MPICH,
    Open MPI, MVAPICH, Slurm's srun); ``(0, 1)`` outside one.  Read without importing mpi4py, which would
    start MPI."""
    for rank, size in _WORLD:
        if rank in os.environ and size in os.environ:
            try:
                return int(os.environ[rank]), int(os.environ[size])
            except ValueError:
                continue
    return 0, 1


def ph_available() -> str:
    """The ``mpiexec`` PH launches with, once mpi-sppy and mpi4py are found (without importing them: mpi4py
    would start MPI); RuntimeError saying what to install otherwise."""
    import importlib.util

    missing = [name for name, module in (("mpi-sppy", "mpisppy"), ("mpi4py", "mpi4py"))
               if importlib.util.find_spec(module) is None]
    exe = mpiexec()
    if exe is not None and shutil.which(exe) is None:
        exe = None
    if exe is None:
        missing.append("mpich (for mpiexec)")
    if missing:
        raise RuntimeError(f"progressive hedging needs MPI and mpi-sppy; missing: {', '.join(missing)}. Install "
                           "them with `pip install -e '.[mpi]'` (or set CAPPLAN_MPIEXEC to your site's launcher), "
                           "or solve with --method de")
    return exe


LAUNCH_GRACE = 60.0
"""Seconds past the time limit after which a launch that has not ended is stopped (start-up and
finalisation take a few seconds; a hung MPI job must not hang the caller)."""


def solve_ph(inst, ranks: int = 3, options: PHOptions | None = None, *, mpiexec_path: str | None = None,
             extra_args: tuple[str, ...] = ()) -> PHResult:
    """Run PH on ``inst``'s tree on ``ranks`` MPI ranks, from an ordinary Python process.

    Writes the payload (``inst`` and ``options``) to a temporary pickle,
    runs ``mpiexec -n ranks python -m optimizer.solver.ph_mpi PAYLOAD
    RESULT`` and returns the result rank 0 wrote.  mpi-sppy's output is
    captured (``PHResult.log``), and printed as it comes with
    ``options.verbose``.  A missing ``mpiexec`` raises RuntimeError with
    what to install; a failed launch returns status ``error``.
    """
    options = options or PHOptions()
    check_tree(inst)
    options.cylinders(ranks)  # raises early on a bad rank count
    exe = ph_available() if mpiexec_path is None else mpiexec_path
    with tempfile.TemporaryDirectory(prefix="capplan-ph-") as tmp:
        payload, out = os.path.join(tmp, "payload.pickle"), os.path.join(tmp, "result.pickle")
        with open(payload, "wb") as f:
            pickle.dump({"instance": inst, "options": options}, f)
        cmd = [exe, "-n", str(ranks), *extra_args, sys.executable, "-m", "optimizer.solver.ph_mpi", payload, out]
        t0 = time.perf_counter()
        # a session of its own: on a timeout (or an interrupt) the launcher and every rank are stopped together
        proc = subprocess.Popen(cmd, stdout=None if options.verbose else subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        try:
            log, _ = proc.communicate(timeout=options.time_limit + LAUNCH_GRACE)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            _stop(proc)
            log, code = proc.communicate()[0], None
        except BaseException:
            _stop(proc)
            raise
        log = log or ""
        seconds = time.perf_counter() - t0
        if code == 0 and os.path.exists(out):
            with open(out, "rb") as f:
                result = pickle.load(f)
            return replace(result, launch_seconds=seconds, log=log)
    if code is None:  # the time limit came first (the ranks could not even end their first pass): no plan
        return PHResult("no_solution", f"the MPI run did not end within the time limit and {LAUNCH_GRACE:g} s more "
                        "and was stopped: no plan was found", None, None, None, 0, seconds, ranks,
                        options.cylinders(ranks), launch_seconds=seconds, log=log)
    tail = "\n".join(log.strip().splitlines()[-20:])
    return PHResult("error", f"the MPI run ended with exit code {code}" + (f":\n{tail}" if tail else ""), None, None,
                    None, 0, seconds, ranks, options.cylinders(ranks), launch_seconds=seconds, log=log)


def _stop(proc: subprocess.Popen) -> None:
    """Stop a launch and its ranks (its process group): SIGTERM, then SIGKILL after 5 s."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """|bound - objective| / max(|objective|, 1e-9), or None without both."""
    if objective is None or bound is None or not (math.isfinite(objective) and math.isfinite(bound)):
        return None
    return abs(bound - objective) / max(abs(objective), 1e-9)


__all__ = ["INVESTMENTS", "PHOptions", "PHResult", "TreeNames", "check_tree", "mpiexec", "relative_gap",
           "solve_ph", "xhat_fixes"]
