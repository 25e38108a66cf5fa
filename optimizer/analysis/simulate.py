r"""Policy simulation (spec v3 section 8): how a planning policy does when it re-plans as the future is revealed.

A *policy file* P (the file the planner plans with) and a *truth* Q (a file
whose scenario tree says what can really happen; P itself by default) with
the same base data.  Each path is a leaf of Q's tree (every leaf with its
probability, or ``paths=N`` leaves drawn with replacement by probability,
each of weight 1/N).  Along a path, at each epoch e (the horizon start, the
stage years of Q and of P, every year with ``every_year``):

1. the stages of Q with year <= e are revealed for the path's branches
   (Q's node of year e: :meth:`~optimizer.instance.tree.ScenarioTree.revealed`);
2. the policy problem is the revealed data with P's stages of year > e on top
   (``stochastic``), or alone (``deterministic``);
3. every decision of every year before e is held at what the path realised
   (purchases, blocks and the operation);
4. the problem's decisions of the years e <= t < e_next (its root node) become
   the path's realised decisions.

``perfect`` is each path's own optimum (its scenario's v1 program, O*_s).
A policy problem is solved once per distinct (policy, revealed history,
epoch): the paths through the same node of Q share it, so the solves form a
tree, solved on a :class:`~optimizer.parallel.Runner` (local processes or
Dask) as their parents finish, the hardest first, each committed to a
:class:`SimulationStore` as it finishes (a resumed simulation solves none of
them twice).  Each path's realised decisions are then evaluated on its
scenario's instance: the realised objective O^pi_s (spec section 1, salvage
included), its plan tables, spend and unmet demand.

Where the spec is silent (docs/simulation.md): an infeasible path is the
worst outcome of every statistic (objective -inf for max_training, +inf for
min_cost); quantiles are the lower inverse of the weighted distribution; the
standard error and the 95% interval of sampled paths are the sample's
(paired between policies, which see the same paths).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from formulations import build_model
from formulations.model import DECISIONS, node_values

from ..errors import InstanceError, Problem
from ..files import RowStore
from ..instance import ROOT, Instance, parse_instance, plain
from ..instance.tree import cvar, weighted_quantile
from ..parallel import Runner, WorkersStopped, default_workers
from ..plan import Plan
from ..plan.simulation import PolicyValue, Simulation, read_simulation
from ..plan.tables import V1_TABLES
from ..solver import SolveOptions, SolveResult, SolveStatus, solver_version
from ..solver.highs import solve_held

POLICIES = ("stochastic", "deterministic", "perfect")
HOLD_AFTER = int(os.environ.get("CAPPLAN_TEST_HOLD_AFTER", "0") or 0)
"""For tests that interrupt a simulation (``CAPPLAN_TEST_HOLD_AFTER=N``): after N epoch solves are stored it
waits until it is interrupted, so that the test never races its end.  0 (the default): never."""
STORE_NAME = "simulation.sqlite"
WORST = ["optimal", "feasible", "no_solution", "unbounded", "infeasible", "error"]  # worst last
PATH_COLUMNS = ["policy", "path", "scenario", "weight", "status", "objective", "perfect_objective", "regret",
                "spend_usd", "unmet_pflops_years", "worst_status", "worst_gap", "infeasible_epoch", "message"]
SUMMARY_COLUMNS = ["policy", "paths", "expected_objective", "standard_error", "p10", "p50", "p90", "cvar",
                   "expected_regret", "infeasible_paths", "infeasible_weight"]
SOLVE_COLUMNS = ["policy", "epoch", "history", "status", "objective", "mip_gap", "seconds", "paths", "message"]


class SimulationError(ValueError):
    """A simulation that cannot run as asked: ``problems`` lists each reason, with its key path or option."""

    def __init__(self, problems: list[Problem], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        head = f"{source or 'simulation'}: {len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        super().__init__(head + "".join(f"\n  - {p}" for p in self.problems))


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class SimPath:
    """One path: a leaf of the truth's tree, with its weight."""

    index: int
    id: str  # the leaf's id, or "#k leaf" when sampled
    scenario: str  # the leaf's id
    weight: float


def first_difference(a: Instance, b: Instance) -> str | None:
    """The first key path where the base data of two instances differ (everything but ``uncertainty``,
    ``name`` and ``description``), with both values; None when they are equal."""
    skip = {"name", "description", "raw", "source", "uncertainty"}
    names = {"util_train": "utilization.train", "util_infer": "utilization.infer"}

    def walk(path: str, x, y) -> str | None:
        if dataclasses.is_dataclass(x) and dataclasses.is_dataclass(y):
            for f in dataclasses.fields(x):
                if f.name in skip or (f.name == "id" and path):
                    continue
                found = walk(f"{path}.{names.get(f.name, f.name)}" if path else f.name,
                             getattr(x, f.name), getattr(y, f.name))
                if found:
                    return found
            return None
        if isinstance(x, Mapping) and isinstance(y, Mapping):
            for k in list(x) + [k for k in y if k not in x]:
                if k not in x or k not in y:
                    where = "the truth file" if k not in x else "the policy file"
                    return f"{path}.{k}: only in {where}"
                found = walk(f"{path}.{k}" if not isinstance(k, int) else f"{path} ({k})", x[k], y[k])
                if found:
                    return found
            return None
        if isinstance(x, tuple) and isinstance(y, tuple) and len(x) == len(y):
            for i, (u, v) in enumerate(zip(x, y)):
                found = walk(f"{path}[{i}]", u, v)
                if found:
                    return found
            return None
        if x != y:
            return f"{path}: {_shown(x)} in the policy file, {_shown(y)} in the truth file"
        return None

    return walk("", a, b)


def _shown(v) -> str:
    if isinstance(v, float):
        return f"{v:,.6g}"
    return "absent" if v is None else repr(v) if not isinstance(v, tuple) else f"{len(v)} entries"


def sample_paths(truth: Instance, paths: int | None, seed: int) -> tuple[list[SimPath], bool]:
    """The paths of a simulation and whether they were sampled (spec v3 section 8.1).

    ``paths=N`` with more than N leaves draws N leaves with replacement by probability
    (``numpy.random.default_rng(seed).choice``), each of weight 1/N; otherwise every leaf is a path with its
    probability as weight."""
    leaves = truth.tree.scenarios
    if paths is None or paths >= len(leaves):
        return [SimPath(i, s.id, s.id, s.probability) for i, s in enumerate(leaves)], False
    rng = np.random.default_rng(seed)
    p = np.array([s.probability for s in leaves])
    drawn = rng.choice(len(leaves), size=paths, replace=True, p=p / p.sum())
    return [SimPath(i, f"#{i} {leaves[j].id}", leaves[j].id, 1.0 / paths) for i, j in enumerate(drawn)], True


def epochs_of(policy: Instance, truth: Instance, every_year: bool = False) -> tuple[int, ...]:
    """E = {horizon start} u {stage years of the truth} u {stage years of the policy file} (every year of the
    horizon with ``every_year``)."""
    years = {truth.start, *truth.tree.stage_years, *policy.tree.stage_years}
    if every_year:
        years |= set(truth.years)
    return tuple(sorted(t for t in years if truth.start <= t <= truth.end))


def check(policy: Instance, truth: Instance, policies: Sequence[str], paths: int | None, seed: int) -> None:
    """Every problem of a simulation's inputs at once (:class:`SimulationError`)."""
    problems = []
    diff = first_difference(policy, truth)
    if diff:
        problems.append(Problem("truth", f"its base data differs from the policy file's at {diff}"))
    bad = [p for p in policies if p not in POLICIES]
    if bad or not policies:
        problems.append(Problem("policies", f"unknown polic{'ies' if len(bad) > 1 else 'y'} "
                                f"{', '.join(map(repr, bad))}; choose from {', '.join(POLICIES)}" if bad
                                else f"give at least one of {', '.join(POLICIES)}"))
    if paths is not None and (isinstance(paths, bool) or not isinstance(paths, int) or paths < 1):
        problems.append(Problem("paths", f"must be a whole number >= 1, got {paths!r}"))
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        problems.append(Problem("seed", f"must be a whole number >= 0, got {seed!r}"))
    if problems:
        raise SimulationError(problems, truth.source or policy.source)


# --------------------------------------------------------------------------- the policy problems


def policy_problem(policy: Instance, revealed: Instance, epoch: int, stochastic: bool) -> Instance:
    """The problem a policy solves at ``epoch`` (spec v3 section 8.2, step 2): the revealed data with the
    policy file's stages of year > ``epoch`` on top (``stochastic``), or alone."""
    unc = plain(policy.raw).get("uncertainty")
    later = [st for st in (unc or {}).get("stages", []) if st.get("year", 0) > epoch] if stochastic else []
    if not later:
        return revealed
    raw = plain(revealed.raw)
    raw["uncertainty"] = {"stages": later, **({"risk": unc["risk"]} if unc.get("risk") else {})}
    try:
        return parse_instance(raw, source=policy.source)
    except InstanceError as exc:  # the policy's later stages do not apply to what was revealed
        raise SimulationError([Problem(p.path, f"after what is revealed by {epoch}: {p.message}")
                               for p in exc.problems], policy.source) from None


def _key(policy: str, epoch: int, history: str) -> str:
    return f"{policy}|{epoch}|{history}"


@dataclass
class _Solve:
    """One epoch solve: a node of the tree of solves."""

    key: str
    policy: str
    epoch: int
    history: str  # the truth's node at the epoch (the leaf id for perfect)
    parent: str | None  # the solve whose realised decisions it holds
    years: tuple[int, ...]  # the years it implements
    paths: int = 0  # paths through it
    size: int = 1  # scenarios of its problem times the years it decides (an estimate of how hard it is)


def solve_epoch(payload: dict) -> dict:
    """Solve one policy problem in a worker: the past held, the decisions of the implemented years out.

    Returns the status, objective, bound, gap, message and seconds; with a plan, ``decisions``
    (``[name, key without node, value]`` of the root node in the implemented years); without one, the
    explanation of why (infeasible)."""
    inst = payload["instance"]
    hold = [(name, (*key, ROOT), value) for name, key, value in payload["hold"]]
    handle, r = solve_held(inst, hold, SolveOptions(time_limit=payload["time_limit"], mip_gap=payload["mip_gap"],
                                                    threads=payload.get("threads")))
    out = {"status": r.status.value, "objective": r.objective, "bound": r.bound, "mip_gap": r.mip_gap,
           "message": r.message, "seconds": r.solve_seconds + r.build_seconds + r.handoff_seconds}
    if r.status.has_plan:
        out["decisions"] = [[name, list(index[:-1]), value]
                            for name, index, value in node_values(handle.model, ROOT, set(payload["years"]))]
    elif r.status is SolveStatus.INFEASIBLE:
        from .diagnose import explain

        why = explain(inst, hold=hold, time_limit=payload.get("explain_seconds", 60.0))
        out["explanation"] = why.messages
    return out


# --------------------------------------------------------------------------- the store


class SimulationStore(RowStore):
    """Finished epoch solves in SQLite, one committed row each: an interrupted simulation keeps them all."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(path, name=STORE_NAME, table="solves (key TEXT PRIMARY KEY, row TEXT, finished REAL)",
                         error=lambda message: SimulationError([Problem("store", message)]))

    def done(self) -> dict[str, dict]:
        return self.rows("key", "solves")

    def add(self, key: str, row: Mapping) -> None:
        self.put("solves", key, dict(row), time.time())


# --------------------------------------------------------------------------- the result


@dataclass
class SimulationProgress:
    """How far a simulation is: epoch solves done of the total (``skipped``: finished in an earlier run)."""

    done: int
    total: int
    elapsed: float
    skipped: int = 0
    last: str = ""

    @property
    def estimate(self) -> float | None:
        """Seconds left, from the pace so far (None before the first solve)."""
        solved = self.done - self.skipped
        if solved <= 0:
            return None
        return self.elapsed / solved * (self.total - self.done)


# --------------------------------------------------------------------------- the simulation


def simulate(
    policy_instance: Instance,
    truth: Instance | None = None,
    policies: Sequence[str] = POLICIES,
    paths: int | None = None,
    seed: int = 0,
    every_year: bool = False,
    *,
    workers: int | None = None,
    scheduler=None,
    client=None,
    store: str | os.PathLike | None = None,
    resume: bool = True,
    time_limit: float | None = None,
    mip_gap: float = 1e-4,
    progress: Callable[[SimulationProgress], None] | None = None,
) -> Simulation:
    """Simulate planning policies along the futures of ``truth`` (spec v3 section 8); see the module docstring.

    ``policy_instance``: the file the planner plans with (P); ``truth``: the file whose tree says what can
    happen (Q; default P), with the same base data.  ``policies``: any of ``stochastic``, ``deterministic``
    and ``perfect``.  ``paths``: draw that many leaves of Q (with replacement, by probability, seeded by
    ``seed``) instead of every leaf.  ``every_year``: re-plan every year, not only when something is
    revealed.  ``workers`` local processes (default: the cores) or a Dask ``client`` (or the address of its
    ``scheduler``) solve the epoch solves in parallel; ``store`` (a directory or ``.sqlite`` file) keeps
    each as it finishes, and with ``resume`` an interrupted simulation solves none of them again.
    ``time_limit`` and ``mip_gap`` apply to each epoch solve.  ``progress`` receives a
    :class:`SimulationProgress` after each.
    """
    t0 = time.perf_counter()
    truth = policy_instance if truth is None else truth
    policies = tuple(dict.fromkeys(policies))
    check(policy_instance, truth, policies, paths, seed)
    chosen, sampled = sample_paths(truth, paths, seed)
    epochs = epochs_of(policy_instance, truth, every_year)
    qtree = truth.tree
    solves = _plan_solves(policy_instance, truth, policies, chosen, epochs)

    if scheduler is not None and client is None:
        from distributed import Client

        client = Client(scheduler, timeout=10)
    db = SimulationStore(store) if store is not None else None
    finished: dict[str, dict] = {}
    try:
        if db is not None:
            meta = {"policy_hash": policy_instance.hash, "truth_hash": truth.hash, "epochs": json.dumps(epochs),
                    "time_limit": json.dumps(time_limit), "mip_gap": json.dumps(mip_gap)}
            old = db.meta()
            if old and any(old.get(k) != v for k, v in meta.items()):
                differ = [k for k, v in meta.items() if old.get(k) != v]
                raise SimulationError([Problem("store", f"{db.path} holds another simulation (its "
                                                        f"{', '.join(differ)} differ): choose another store")])
            if old and not resume and db.done():
                raise SimulationError([Problem("store", f"{db.path} already holds epoch solves: resume, or "
                                                        "choose another store")])
            db.set_meta(meta)
            finished = {k: v for k, v in db.done().items() if k in solves}
        results = _run(policy_instance, qtree, solves, finished, db, workers, client, time_limit, mip_gap,
                       progress, t0)
    finally:
        if db is not None:
            db.close()
        if scheduler is not None and client is not None:
            client.close()
    return _report(policy_instance, truth, policies, epochs, chosen, sampled, seed, solves, results,
                   time.perf_counter() - t0)


def _plan_solves(policy: Instance, truth: Instance, policies, chosen: list[SimPath],
                 epochs: tuple[int, ...]) -> dict[str, _Solve]:
    """The tree of epoch solves the paths need (each once), and the perfect solves (every path's O*_s)."""
    qtree = truth.tree
    solves: dict[str, _Solve] = {}
    nxt = {e: (epochs[i + 1] if i + 1 < len(epochs) else truth.end + 1) for i, e in enumerate(epochs)}
    for path in chosen:
        leaf = qtree.scenario(path.scenario)
        for name in (p for p in policies if p != "perfect"):
            parent = None
            for e in epochs:
                history = qtree.node_of(leaf, e)
                key = _key(name, e, history)
                s = solves.get(key)
                if s is None:  # its size: the scenarios of its problem times the years left to decide
                    size = (len(policy.tree.scenarios) if name == "stochastic" else 1) * (truth.end - e + 1)
                    s = solves[key] = _Solve(key, name, e, history, parent, tuple(range(e, nxt[e])), 0, size)
                s.paths += 1
                parent = key
        key = _key("perfect", truth.start, path.scenario)  # O*_s: needed for the regret of every policy
        s = solves.setdefault(key, _Solve(key, "perfect", truth.start, path.scenario, None,
                                          tuple(truth.years), 0, len(truth.years)))
        s.paths += 1
    return solves


def _run(policy: Instance, qtree, solves: dict[str, _Solve], finished: dict[str, dict], db, workers, client,
         time_limit, mip_gap, progress, t0) -> dict[str, dict]:
    """Solve the tree of epoch solves: each as soon as its parent is done, the hardest ready ones first."""
    results = dict(finished)
    children: dict[str | None, list[_Solve]] = {}
    for s in solves.values():
        children.setdefault(s.parent, []).append(s)
    state = SimulationProgress(len(finished), len(solves), 0.0, len(finished))
    instances: dict[tuple, Instance] = {}

    def problem(s: _Solve) -> Instance:
        if s.policy == "perfect":
            return qtree.scenario(s.history).instance
        k = (s.policy, s.epoch, s.history)
        if k not in instances:
            instances[k] = policy_problem(policy, qtree.revealed(s.history), s.epoch, s.policy == "stochastic")
        return instances[k]

    def hold(s: _Solve) -> list:
        out, p = [], s.parent
        while p is not None:
            out += results[p].get("decisions", [])
            p = solves[p].parent
        return out

    def ready(parent: str | None) -> list[_Solve]:
        """The solves whose parent is done (and has a plan), hardest first: larger problems, earlier epochs."""
        out = []
        for s in children.get(parent, []):
            if s.key in results:
                out += ready(s.key) if "decisions" in results[s.key] else []
            elif parent is None or "decisions" in results[parent]:
                out.append(s)
        return sorted(out, key=lambda s: (-s.size, s.epoch, s.key))

    n = workers if workers is not None else default_workers()
    threads = None if client is None and n <= 1 else 1  # one solve at a time in this process: HiGHS's choice

    def payload(s: _Solve) -> dict:
        return {"instance": problem(s), "hold": hold(s), "years": list(s.years), "time_limit": time_limit,
                "mip_gap": mip_gap, "threads": threads}

    if progress is not None:
        progress(dataclasses.replace(state, elapsed=time.perf_counter() - t0))
    pending = ready(None)
    if not pending:
        return results
    try:
        with Runner(min(n, max(1, len(solves))) if client is None else n, client) as runner:
            for s in pending:
                runner.submit(s.key, solve_epoch, payload(s), priority=s.size)
            for key, row, error in runner.results():
                if error is not None:
                    row = {"status": "error", "message": f"worker failed: {type(error).__name__}: {error}"}
                results[key] = row
                if db is not None:
                    db.add(key, row)
                state.done += 1
                state.last = f"{solves[key].policy} {solves[key].epoch} {solves[key].history or 'root'}: " \
                             f"{row['status']}"
                if progress is not None:
                    progress(dataclasses.replace(state, elapsed=time.perf_counter() - t0))
                if HOLD_AFTER and state.done - state.skipped >= HOLD_AFTER:
                    while True:  # until interrupted (tests only)
                        time.sleep(0.1)
                if "decisions" in row:
                    for s in ready(key):
                        runner.submit(s.key, solve_epoch, payload(s), priority=s.size)
    except WorkersStopped as exc:
        raise SimulationError([Problem("workers", f"{exc}; every epoch solve finished before is kept in the "
                                                  "store")]) from None
    return results


# --------------------------------------------------------------------------- evaluation and statistics


def _report(policy: Instance, truth: Instance, policies, epochs, chosen: list[SimPath], sampled: bool, seed: int,
            solves: dict[str, _Solve], results: dict[str, dict], seconds: float) -> Simulation:
    qtree = truth.tree
    maximize = truth.objective.kind == "max_training"
    worst_value = -math.inf if maximize else math.inf
    evaluated: dict[tuple[str, str], dict] = {}
    plans: dict[tuple[str, str], Plan] = {}

    def chain(name: str, leaf) -> list[str]:
        if name == "perfect":
            return [_key("perfect", truth.start, leaf.id)]
        return [_key(name, e, qtree.node_of(leaf, e)) for e in epochs]

    def evaluate(name: str, scenario: str) -> dict:
        if (name, scenario) in evaluated:
            return evaluated[name, scenario]
        leaf = qtree.scenario(scenario)
        keys = chain(name, leaf)
        rows = [results.get(k) for k in keys]
        statuses = [r["status"] if r else "not solved" for r in rows]
        gaps = [r.get("mip_gap") for r in rows if r and r.get("mip_gap") is not None]
        worst = max(statuses, key=lambda x: WORST.index(x) if x in WORST else len(WORST))
        out = {"worst_status": worst, "worst_gap": max(gaps) if gaps else math.nan, "infeasible_epoch": math.nan,
               "message": ""}
        failed = next((i for i, r in enumerate(rows) if not r or "decisions" not in r), None)
        if failed is not None:
            r = rows[failed] or {}
            out.update(status=r.get("status", "not solved"), objective=worst_value, spend_usd=math.nan,
                       unmet_pflops_years=math.nan, infeasible_epoch=solves[keys[failed]].epoch,
                       message="; ".join(r.get("explanation") or [r.get("message", "")]))
        else:
            decisions = [d for r in rows for d in r["decisions"]]
            plan = _realised_plan(leaf.instance, decisions, worst, max(gaps) if gaps else None)
            plans[name, scenario] = plan
            out.update(status="feasible" if worst != "optimal" else "optimal", objective=plan.objective,
                       spend_usd=float(plan.spend.total_usd.sum()) if len(plan.spend) else 0.0,
                       unmet_pflops_years=float(plan.compute.unmet_pflops.sum()) if len(plan.compute) else 0.0)
        evaluated[name, scenario] = out
        return out

    records = []
    for name in policies:
        for path in chosen:
            row = {"policy": name, "path": path.id, "scenario": path.scenario, "weight": path.weight,
                   **evaluate(name, path.scenario)}
            star = evaluate("perfect", path.scenario)["objective"]
            row["perfect_objective"] = star
            row["regret"] = _regret(row["objective"], star, maximize)
            records.append(row)
    paths_df = pd.DataFrame(records, columns=PATH_COLUMNS)
    alpha = policy.uncertainty.cvar_alpha if policy.uncertainty is not None else 0.9
    summary = pd.DataFrame([_statistics(name, paths_df[paths_df.policy == name], sampled, alpha, maximize)
                            for name in policies], columns=SUMMARY_COLUMNS)
    value = None
    if "stochastic" in policies and "deterministic" in policies:
        value = _policy_value(paths_df, sampled, maximize)
    realised = _realised_tables(policies, chosen, plans)
    solve_rows = [{"policy": s.policy, "epoch": s.epoch, "history": s.history or "root",
                   "status": results.get(s.key, {}).get("status", "not solved"),
                   "objective": results.get(s.key, {}).get("objective"),
                   "mip_gap": results.get(s.key, {}).get("mip_gap"),
                   "seconds": results.get(s.key, {}).get("seconds"), "paths": s.paths,
                   "message": results.get(s.key, {}).get("message", "")}
                  for s in solves.values()]
    unit = "PFLOP/s-years, discounted" if maximize else "USD, discounted"
    return Simulation(policy, truth, tuple(policies), tuple(epochs), sampled, seed, paths_df, realised, summary,
                      pd.DataFrame(solve_rows, columns=SOLVE_COLUMNS), value, seconds, unit, plans)


def _realised_plan(inst: Instance, decisions: list, worst: str, gap) -> Plan:
    """The realised decisions of a path as a plan of its scenario instance, with its objective O^pi_s."""
    m = build_model(inst)
    values = {(name, tuple(index)): value for name, index, value in decisions}
    for name in DECISIONS:
        for index, v in m.component(name).items():
            v.set_value(values.get((name, tuple(index[:-1])), 0.0), skip_validation=True)
    objective = float(pyo.value(m.obj)) * m.info.objective_factor
    status = SolveStatus.OPTIMAL if worst == "optimal" else SolveStatus.FEASIBLE
    result = SolveResult(status, "realised decisions of a simulated policy", objective, None,
                         gap, 0.0, 0.0, 0.0, "highs", solver_version())
    return Plan.from_model(inst, m, result)


def _regret(objective: float, star: float, maximize: bool) -> float:
    if star is None or (isinstance(star, float) and math.isnan(star)):
        return math.nan
    if math.isinf(objective):
        return math.inf
    return star - objective if maximize else objective - star


def _statistics(name: str, df: pd.DataFrame, sampled: bool, alpha: float, maximize: bool) -> dict:
    x = df.objective.to_numpy(dtype=float)
    w = df.weight.to_numpy(dtype=float)
    w = w / w.sum()
    infeasible = ~np.isfinite(x)
    expected = float(np.sum(w * x)) if not infeasible.any() else float(x[infeasible][0])
    stderr = math.nan
    if sampled and len(x) > 1:
        stderr = float(np.std(x, ddof=1) / math.sqrt(len(x))) if not infeasible.any() else math.inf
    regret = df.regret.to_numpy(dtype=float)
    return {"policy": name, "paths": len(df), "expected_objective": expected, "standard_error": stderr,
            "p10": weighted_quantile(x, w, 0.10), "p50": weighted_quantile(x, w, 0.50),
            "p90": weighted_quantile(x, w, 0.90), "cvar": cvar(list(x), list(w), alpha, maximize),
            "expected_regret": float(np.sum(w * regret)) if np.all(np.isfinite(regret)) else math.inf,
            "infeasible_paths": int(infeasible.sum()), "infeasible_weight": float(w[infeasible].sum())}


def _policy_value(paths: pd.DataFrame, sampled: bool, maximize: bool) -> PolicyValue:
    """E[O^stochastic] - E[O^deterministic] (the reverse for min_cost); its 95% interval from the paired
    differences when sampled (both policies see the same paths)."""
    s = paths[paths.policy == "stochastic"].set_index("path")
    d = paths[paths.policy == "deterministic"].set_index("path").loc[s.index]
    sign = 1.0 if maximize else -1.0
    w = s.weight.to_numpy(dtype=float)
    w = w / w.sum()
    xs, xd = s.objective.to_numpy(dtype=float), d.objective.to_numpy(dtype=float)
    es = float(np.sum(w * xs)) if np.all(np.isfinite(xs)) else float(xs[~np.isfinite(xs)][0])
    ed = float(np.sum(w * xd)) if np.all(np.isfinite(xd)) else float(xd[~np.isfinite(xd)][0])
    with np.errstate(invalid="ignore"):
        value = sign * (es - ed)  # nan when both policies leave some path infeasible
    diff = sign * (xs - xd)
    if not sampled or len(diff) < 2 or not np.all(np.isfinite(diff)):
        return PolicyValue(value, sampled=sampled)
    half = 1.96 * float(np.std(diff, ddof=1)) / math.sqrt(len(diff))
    return PolicyValue(value, value - half, value + half, sampled=True)


def _realised_tables(policies, chosen: list[SimPath], plans: dict) -> dict[str, pd.DataFrame]:
    out = {}
    for table in V1_TABLES:
        parts = []
        for name in policies:
            for path in chosen:
                plan = plans.get((name, path.scenario))
                if plan is None:
                    continue
                df = getattr(plan, table)
                parts.append(df.assign(policy=name, path=path.id)[["policy", "path", *df.columns]])
        cols = ["policy", "path", *getattr(next(iter(plans.values())), table).columns] if plans else ["policy",
                                                                                                       "path"]
        out[table] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    return out


__all__ = ["POLICIES", "PolicyValue", "SimPath", "Simulation", "SimulationError", "SimulationProgress",
           "SimulationStore", "epochs_of", "first_difference", "policy_problem", "read_simulation",
           "sample_paths", "simulate"]
