"""A starting plan for large scenario trees: relax-and-fix by stage, each scenario's last stage solved alone.

The deterministic equivalent of a tree of a few dozen scenarios or more does
not find good plans by itself: its integers (chip units, cumulative blocks,
frontier sites) sit in every node, and HiGHS's search spends the time limit
on a program thousands of integers wide (54 scenarios: a plan 5% below its
bound after 300 s; 1,000 scenarios: none in 30 minutes).  Most of those
integers belong to the leaves, and once the decisions above a node are held
the nodes below it no longer share anything.  So, on the handle of the whole
tree (docs/performance.md, "Trees a planner believes"):

1. every integer is relaxed; the LP relaxation's value is a valid bound;
2. stage by stage from the root, the integers of the nodes at that depth are
   held at integer values while those below stay relaxed (relax-and-fix):
   rounded from the relaxed plan (frontier sites first, then units and
   blocks to the nearest, else units down) and the LP re-solved from its
   basis, or, where no rounding fits, those integers made integer and that
   program solved as a MIP;
3. with every node above the leaves held, each scenario's leaf (the years
   after the last stage) is a v1 program of its own, its past held: solved
   alone, on local worker processes, until the whole solve's end nears; a
   leaf left without a plan then is rounded from the relaxed plan as a level
   is (its sites by a MIP of the sites alone where the most-used ones cannot
   be held), else the leaves left are solved as one MIP;
4. every integer of the whole tree is held at the values found and the rest
   of the program (operation, serving, money) is solved once more, jointly:
   a plan of the whole tree, feasible by construction and non-anticipative
   because each node's decisions are one set of columns.

The plan is handed to HiGHS as its incumbent; the search that follows keeps
improving plan and bound with the time left, so the result is never worse
than the deterministic equivalent's own.  Nothing here changes the program;
if any step finds no plan in its time the start is dropped (the search goes
on without it).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass, field

import highspy
import numpy as np

from formulations.model import DECISIONS

from ..parallel import Abandoned, Runner, default_workers
from .result import Progress

INF = highspy.kHighsInf
_CONT = highspy.HighsVarType.kContinuous
_INT = highspy.HighsVarType.kInteger
INTEGERS = ("n", "K", "z")
"""The integer decisions (chip units, cumulative blocks, frontier sites)."""

STAGED_START_SCENARIOS = 18
"""Trees with at least this many scenarios (and two stages) start from the staged plan; smaller trees (the
shipped one among them) from the starting plan of :func:`~optimizer.solver.highs._mip_start`, which proves
them sooner (docs/performance.md)."""

LEAF_SECONDS = 10.0
"""The least time limit of a leaf's solve, whatever the share of the time left (never past the leaves'
deadline, :data:`LPS_AFTER_LEAVES`)."""

LPS_AFTER_LEAVES = 3.0
"""The leaves end this many times the LP relaxation's seconds (at least 1 s) before the end of the whole
solve: the LPs after them (rounding the leaves left unsolved, the joined program) need that time."""

LEVEL_GAP = 1e-3
"""Relative gap of each relax-and-fix level (the levels are a heuristic: closer gaps there buy nothing that
the leaves and the search after them keep)."""


@dataclass
class StagedStart:
    """What :func:`staged_start` found: the plan (HiGHS's columns) or None, and how."""

    values: list[float] | None
    lp_bound: float | None = None  # the LP relaxation's objective (HiGHS's units and sense): a valid bound
    lp_values: list[float] | None = None  # the LP relaxation's columns
    objective: float | None = None  # the staged plan's objective (HiGHS's units and sense)
    levels: list[dict] = field(default_factory=list)  # per depth: integers, objective, gap, seconds
    leaves: dict = field(default_factory=dict)  # status -> count of the leaf solves
    seconds: float = 0.0
    message: str = ""

    def summary(self, factor: float) -> dict:
        """The start in spec units (``factor``: the model's objective factor), for :class:`SolveResult`."""
        return {"method": "staged", "objective": None if self.objective is None else self.objective * factor,
                "lp_bound": None if self.lp_bound is None else self.lp_bound * factor,
                "seconds": self.seconds, "levels": len(self.levels), "leaves": dict(self.leaves),
                "message": self.message}


def applies(tree) -> bool:
    """Whether a tree is large enough for the staged start (:data:`STAGED_START_SCENARIOS`)."""
    return len(tree.stage_years) >= 2 and len(tree.scenarios) >= STAGED_START_SCENARIOS


def _depth(node: str) -> int:
    return len(node.split("/")) if node else 0


def staged_start(handle, deadline: float | None, *, leaf, mip_gap: float = 1e-4, threads: int | None = None,
                 log: bool = False, workers: int | None = None, progress=None,
                 last_deadline: float | None = None) -> StagedStart:
    """The staged plan of the tree ``handle`` holds (module docstring), by ``deadline`` (``perf_counter``);
    the last step, the whole tree's LP with every integer held, may run on to ``last_deadline`` (the end of
    the whole solve) when the steps before it used up ``deadline``: it is what makes their work a plan;
    ``leaf`` is the task that solves one leaf (:func:`optimizer.solver.highs.solve_leaf`, a top-level function
    for the worker processes); ``progress`` (if given) receives a :class:`~optimizer.solver.result.Progress`
    naming each step.

    The handle's HiGHS object is left as it was found (integrality and bounds restored); its last solution
    is the staged plan's when there is one.
    """
    t0 = time.perf_counter()
    h = handle.highs
    m, tree = handle.model, handle.tree
    lp = h.getLp()
    integrality = list(lp.integrality_)  # one copy each: indexed reads of HiGHS's vectors copy them whole
    col_lower, col_upper = list(lp.col_lower_), list(lp.col_upper_)
    by_depth: dict[int, list[int]] = {}
    site_of: dict[int, tuple] = {}  # frontier-site columns -> (year, node): one site is picked per group
    node_of: dict[int, str] = {}
    units: set[int] = set()  # chip-unit columns
    for name in INTEGERS:
        for index, var in m.component(name).items():
            c = handle.column(var)
            if c is not None and integrality[c] != _CONT and col_lower[c] < col_upper[c]:
                by_depth.setdefault(_depth(index[-1]), []).append(c)
                node_of[c] = index[-1]
                if name == "n":
                    units.add(c)
                if name == "z":
                    site_of[c] = index[-2:]
    leaf_depth = len(tree.stage_years)
    cols = [c for cs in by_depth.values() for c in cs]
    out = StagedStart(None)
    if not cols:
        out.message = "no free integer"
        return out
    h.setOptionValue("output_flag", bool(log))
    h.setOptionValue("log_to_console", bool(log))
    if threads is not None:
        h.setOptionValue("threads", threads)
    saved_gap = (h.getOptionValue("mip_rel_gap")[1], h.getOptionValue("mip_abs_gap")[1])
    h.setOptionValue("mip_abs_gap", 0.0)
    levels = sorted(d for d in by_depth if d < leaf_depth)
    steps = len(levels) + 2  # the levels, the leaves and the joined program

    def say(text: str) -> None:
        if progress is not None:
            progress(Progress(time.perf_counter() - t0, None, None, None, step=f"starting plan: {text}"))

    def limit(weight: float = 1.0) -> float:
        """Seconds for the next MIP step (a level's MIP, the leaves): an equal share of what is left."""
        if deadline is None:
            return INF
        return max(0.01, weight * (deadline - time.perf_counter()) / max(1, steps))

    def left() -> float:
        """Seconds for an LP (the relaxation, a rounded level, the joined program): all that is left; LPs are
        the cheap steps and each is needed (at 1,000 scenarios one re-solve can take minutes)."""
        return INF if deadline is None else max(0.01, deadline - time.perf_counter())

    def to_end() -> float:
        """Seconds for the LPs after the leaves: to the end of the whole solve (``last_deadline``), at least 1."""
        end = left() if last_deadline is None else max(left(), last_deadline - time.perf_counter())
        return max(end, 1.0)

    def run(seconds: float, gap: float) -> bool:
        h.setOptionValue("time_limit", seconds)
        h.setOptionValue("mip_rel_gap", gap)
        h.run()
        return h.getInfo().primal_solution_status == 2

    try:
        h.changeColsIntegrality(len(cols), cols, [_CONT] * len(cols))
        say("the LP relaxation")
        t = time.perf_counter()
        if not run(left(), 0.0):
            out.message = "the LP relaxation has no solution"
            return out
        lp_seconds = time.perf_counter() - t
        out.lp_bound = h.getInfo().objective_function_value
        out.lp_values = list(h.getSolution().col_value)
        for i, d in enumerate(levels):
            level = by_depth[d]
            say(f"stage {i + 1} of {len(levels)} (relax-and-fix, {len(level):,} integers)")
            t = time.perf_counter()
            x = h.getSolution().col_value
            lo, hi = [col_lower[c] for c in level], [col_upper[c] for c in level]
            # rounded first: the level held at rounded values and the LP re-solved from its basis (seconds
            # even where the MIP's own root LP takes minutes): frontier sites, then chip units and blocks to
            # the nearest, else units rounded down (less spend and power where rounding up broke a budget or a
            # ceiling); where that finds no plan (a frontier site the held past cannot fill), the level's MIP.
            # Measured at 54 scenarios, rounding alone ended better than the level MIPs (51,696 against
            # 51,572 in HiGHS's units) in a fraction of the time
            how = "rounded"
            ok = _rounded(h, x, level, site_of, units, col_lower, col_upper, run, left) is not None
            if not ok:
                how = "MIP"
                ok = _held_by_mip(h, level, lo, hi, [integrality[c] for c in level], run, limit(),
                                  max(mip_gap, LEVEL_GAP), left)
            info = h.getInfo()
            out.levels.append({"depth": d, "integers": len(level), "how": how, "seconds": time.perf_counter() - t,
                               "objective": info.objective_function_value if ok else None})
            steps -= 1
            if not ok:
                out.message = f"no plan at depth {d} in its time"
                return out
        x = list(h.getSolution().col_value)
        leaves = by_depth.get(leaf_depth, [])
        if leaves:  # relaxed since the start, as every level is between its steps
            handle.load(x)
            say(f"{len(tree.scenarios):,} scenarios' last stage, each alone")
            t = time.perf_counter()
            # the leaves end in time for the LPs after them (a rounding of the leaves left, the joined program):
            # a time limit bounds the whole run (54 scenarios at 30 s: the leaves ran 22 s past the share)
            reserve = max(1.0, LPS_AFTER_LEAVES * lp_seconds)
            until = None if last_deadline is None else last_deadline - reserve
            fixes, unsolved = _solve_leaves(handle, leaf, limit(), mip_gap, workers, out, until=until)
            out.levels.append({"depth": leaf_depth, "integers": len(leaves), "objective": None,
                               "seconds": time.perf_counter() - t, "leaves": dict(out.leaves)})
            if fixes:
                lcols, lvals = zip(*fixes)
                h.changeColsBounds(len(lcols), list(lcols), list(lvals), list(lvals))
            if unsolved:  # leaves without a plan (out of time): their relaxed plan rounded, the others held
                say(f"{len(unsolved):,} leaves not solved in time: their relaxed plan rounded")
                rest = [c for c in leaves if node_of[c] in unsolved]

                def spare() -> float:  # a fallback MIP's seconds: the last LP's are kept
                    return max(0.05, to_end() - max(1.0, lp_seconds))

                fits = _rounded(h, x, rest, site_of, units, col_lower, col_upper, run, to_end,
                                sites_mip=spare) is not None
                if not fits:  # where no rounding fits: the leaves left as one MIP
                    fits = _held_by_mip(h, rest, [col_lower[c] for c in rest], [col_upper[c] for c in rest],
                                        [integrality[c] for c in rest], run, spare(), max(mip_gap, LEVEL_GAP), to_end)
                if not fits:
                    out.message = "a leaf found no plan in its time, nor a rounding or a MIP of the leaves left"
                    return out
        h.changeColsIntegrality(len(cols), cols, [integrality[c] for c in cols])
        steps = 1
        say("the whole tree with its integers held")
        # every integer held: an LP; it turns the steps before into a plan, so it may take the solve's own time
        # (at 1,000 scenarios on a busy machine the share was spent by then, and all the work was dropped)
        if not run(to_end(), 0.0):
            out.message = ("the whole tree with its integers held did not solve in the time left"
                           if h.getModelStatus() == highspy.HighsModelStatus.kTimeLimit
                           else "the whole tree with its integers held has no solution")
            return out
        out.values = list(h.getSolution().col_value)
        out.objective = h.getInfo().objective_function_value
        out.message = "staged plan"
        return out
    finally:
        h.changeColsIntegrality(len(cols), cols, [integrality[c] for c in cols])
        h.changeColsBounds(len(cols), cols, [col_lower[c] for c in cols], [col_upper[c] for c in cols])
        h.setOptionValue("mip_rel_gap", saved_gap[0])
        h.setOptionValue("mip_abs_gap", saved_gap[1])
        h.setOptionValue("time_limit", INF)
        out.seconds = time.perf_counter() - t0


def _held_by_mip(h, level: list[int], lo, hi, kinds, run, seconds: float, gap: float, left) -> bool:
    """The integers ``level`` freed (bounds ``lo``, ``hi``) and made integer (``kinds``), the program solved as
    a MIP for at most ``seconds``; with a plan, they are held at its values and the LP re-solved (for
    ``left()`` seconds: the solution the next step starts from).  Whether that gave a solution."""
    h.changeColsBounds(len(level), level, lo, hi)
    h.changeColsIntegrality(len(level), level, kinds)
    ok = run(seconds, gap)
    h.changeColsIntegrality(len(level), level, [_CONT] * len(level))
    if not ok:
        return False
    x = h.getSolution().col_value
    held = [float(round(x[c])) for c in level]
    h.changeColsBounds(len(level), level, held, held)
    return run(left(), 0.0)


def _rounded(h, x, level: list[int], site_of: dict[int, tuple], units: set[int], col_lower, col_upper, run,
             left, sites_mip=None):
    """Hold the integers ``level`` at a rounding of the relaxed plan ``x`` and re-solve the LP: the frontier
    sites first (the one used most, :func:`_pick_sites`), then the units and blocks to the nearest, else
    units rounded down (less spend and power where rounding up broke a budget or a ceiling), else blocks too
    (``units``: the chip-unit columns).  Returns the LP's solution with them held, or None where no rounding
    fits (the columns are left held either way).
    With ``sites_mip`` (a function giving seconds), sites the held past cannot fill are chosen by a MIP with
    the sites alone integer instead of giving up."""
    sites = [c for c in level if c in site_of]
    others = [c for c in level if c not in site_of]
    if sites:
        held = _pick_sites(x, sites, site_of)
        h.changeColsBounds(len(sites), sites, held, held)
        ok = run(left(), 0.0)
        if not ok and sites_mip is not None:
            ok = _held_by_mip(h, sites, [col_lower[c] for c in sites], [col_upper[c] for c in sites],
                              [_INT] * len(sites), run, sites_mip(), LEVEL_GAP, left)
        if not ok:
            return None
        x = h.getSolution().col_value
        if not others:
            return list(x)
    # to the nearest; else chip units down and blocks to the nearest (a block rounded down takes 125-200 MW of
    # chips with it); else everything down
    for down in (lambda c: False, lambda c: c in units, lambda c: True):
        held = [min(max(float(np.floor(x[c] + 1e-6)) if down(c) else float(round(x[c])), col_lower[c]),
                    col_upper[c]) for c in others]
        h.changeColsBounds(len(others), others, held, held)
        if run(left(), 0.0):
            return list(h.getSolution().col_value)
    return None


def _pick_sites(x, sites: list[int], site_of: dict[int, tuple]) -> list[float]:
    """One frontier site per year and node, the one the relaxed plan ``x`` used most: 1 there, 0 elsewhere."""
    best: dict[tuple, int] = {}
    for c in sites:
        key = site_of[c]
        if key not in best or x[c] > x[best[key]]:
            best[key] = c
    picked = set(best.values())
    return [1.0 if c in picked else 0.0 for c in sites]


def _solve_leaves(handle, leaf, seconds: float, mip_gap: float, workers: int | None,
                  out: StagedStart, until: float | None = None) -> tuple[list[tuple[int, float]], set[str]]:
    """Each scenario's leaf solved alone with the decisions of the years before it held (the values loaded
    in ``handle.model``); returns ``(column, value)`` of the integers of every leaf solved with a plan, and
    the leaf nodes without one.  ``until`` (``perf_counter``): the leaves still running or queued then are
    given up (their worker processes stopped), and no leaf's limit runs past it."""
    from ..instance import ROOT

    m, tree = handle.model, handle.tree
    first = tree.stage_years[-1]
    past = [t for t in tree.years if t < first]
    # the held past of each scenario: its path's decisions of those years, as a v1 model names them
    past_of: dict[str, list] = {s.id: [] for s in tree.scenarios}
    paths = {s.id: tree.path(s) for s in tree.scenarios}
    on_node: dict[tuple[int, str], list[str]] = {}
    for sid, path in paths.items():
        for t in past:
            on_node.setdefault((t, path[t]), []).append(sid)
    for name in DECISIONS:
        for index, var in m.component(name).items():
            sids = on_node.get((index[-2], index[-1]))
            if sids:
                value = 0.0 if var.value is None else float(var.value)
                for sid in sids:
                    past_of[sid].append((name, (*index[:-1], ROOT), value))
    n = workers if workers is not None else (default_workers() if mp.parent_process() is None else 1)
    n = max(1, min(n, len(tree.scenarios)))
    # each leaf gets at least LEAF_SECONDS (most prove in 1-3 s): a leaf left without a plan is only rounded
    per_leaf = seconds if seconds >= INF else max(LEAF_SECONDS, 0.9 * seconds * n / len(tree.scenarios))
    if until is not None:
        per_leaf = min(per_leaf, max(0.05, until - time.perf_counter()))
    wall = None if until is None else time.time() + (until - time.perf_counter())  # the runner's clock
    results = {}
    with Runner(n) as runner:
        for s in tree.scenarios:
            runner.submit(s.id, leaf, {"instance": s.instance, "commit": handle.commitments,
                                       "hold": past_of[s.id], "from": first, "time_limit": per_leaf,
                                       "mip_gap": mip_gap})
        for sid, row, error in runner.results(until=wall):
            if isinstance(error, Abandoned):
                row = {"status": "stopped" if error.started else "not started"}
            results[sid] = row if row is not None else {"status": "error", "message": str(error)}
    for row in results.values():
        out.leaves[row["status"]] = out.leaves.get(row["status"], 0) + 1
    fixes, unsolved = [], set()
    for s in tree.scenarios:
        leaf = tree.node_of(s, first)
        if "decisions" not in results.get(s.id, {}):
            unsolved.add(leaf)
            continue
        comps = {}
        for name, key, value in results[s.id]["decisions"]:
            comp = comps.setdefault(name, m.component(name))
            c = handle.column(comp[(*key, leaf)])
            if c is not None:
                fixes.append((c, value))
    return fixes, unsolved


def lp_gross(values: list[float] | None, gross_cols: dict[int, float]) -> float | None:
    """sum(coef * value) over ``gross_cols`` in ``values`` (the gross training of a plan), None without one."""
    if values is None or not gross_cols:
        return None
    x = np.asarray(values)
    return float(sum(coef * x[c] for c, coef in gross_cols.items()))


__all__ = ["STAGED_START_SCENARIOS", "StagedStart", "applies", "staged_start"]
