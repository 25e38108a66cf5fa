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

import math
import time
from collections.abc import Callable

import pandas as pd

from formulations import build_model
from formulations.model import Commitments
from formulations.tree import risk_measure

from .instance import Instance, parse_instance, plain
from .parallel import Runner, default_workers
from .plan import Plan
from .plan.commit import as_payload, commitments_from, commitments_of, from_payload
from .plan.tables import commitments_table
from .solver import Progress, SolveStatus, run_model


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
) -> Plan:
    """One build and one solve: the plan of ``instance`` (holding ``commitments``), nothing around it."""
    t0 = time.perf_counter()
    model = build_model(instance, commitments=commitments)
    build_seconds = time.perf_counter() - t0
    result = run_model(model, time_limit=time_limit, mip_gap=mip_gap, threads=threads, log=log,
                       progress=progress, build_seconds=build_seconds, warm_start=warm_start)
    return Plan.from_model(instance, model, result)


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
) -> Plan:
    """Build, solve and report the plan of an instance.

    Returns a :class:`~optimizer.plan.Plan` whatever the outcome: check
    ``plan.status`` (a :class:`SolveStatus`).  A time-limited solve returns its
    best plan with ``plan.mip_gap`` and status ``FEASIBLE``, never ``OPTIMAL``.

    * An instance with an ``uncertainty`` section is solved over its scenario
      tree; unless ``value_of_information=False`` the wait-and-see, base-plan
      and EEV solves run too, on ``workers`` local processes (default: the
      cores but one, since this process solves the tree meanwhile) or on a
      Dask ``client``'s workers.
    * ``commit`` (a Plan or a plan directory) with ``through`` (a year) holds
      that plan's purchases and block starts of the years up to ``through``
      (spec v2 section 6) and reports ``commitment_cost``; a plan the instance
      cannot take raises :class:`~optimizer.plan.commit.CommitmentError`.
    * ``time_limit`` and ``mip_gap`` apply to every solve.

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
    options = dict(time_limit=time_limit, mip_gap=mip_gap)
    jobs = _Jobs(instance, commitments, options, on_step)
    if commitments is not None:
        jobs.add("free", instance, None)
    if stochastic and value_of_information:
        jobs.add("base", instance.base(), commitments, root=True)
        for s in instance.scenarios():
            jobs.add(f"ws:{s.id}", s.instance, commitments)
    n = workers if workers is not None else max(1, default_workers() - 1)
    with Runner(n if jobs else 1, client) as runner:
        jobs.start(runner)
        plan = solve_model(instance, commitments=commitments, threads=threads, log=log, progress=progress,
                           warm_start=warm_start, **options)
        results = jobs.finish(runner)
    if commitments is not None:
        _commitment_cost(plan, results["free"], through)
    if stochastic and value_of_information:
        _value_of_information(plan, results)
    plan.summary = plan._summary()
    return plan


class _Jobs:
    """The independent solves around the main one, and the EEV solve that waits for the base plan."""

    def __init__(self, instance: Instance, commitments, options: dict, on_step):
        self.instance = instance
        self.commitments = commitments
        self.options = options
        self.on_step = on_step
        self.tasks: list[tuple[str, dict]] = []

    def __bool__(self) -> bool:
        return bool(self.tasks)

    def payload(self, inst: Instance, commitments) -> dict:
        """What a worker needs to solve ``inst`` holding ``commitments``."""
        return {"raw": plain(inst.raw), "source": inst.source, "commit": as_payload(commitments), "threads": 1,
                **self.options}

    def add(self, key: str, inst: Instance, commitments, *, root: bool = False) -> None:
        payload = self.payload(inst, commitments)
        if root:
            payload["root_years"] = self._root_years()
        self.tasks.append((key, payload))

    def _root_years(self) -> list[int]:
        first = self.instance.uncertainty.stages[0].year
        return [t for t in self.instance.years if t < first]

    def start(self, runner: Runner) -> None:
        self.total = len(self.tasks) + (1 if any(k == "base" for k, _ in self.tasks) else 0)
        self.done = 0
        for key, payload in self.tasks:
            runner.submit(key, solve_task, payload)

    def finish(self, runner: Runner) -> dict[str, dict]:
        results: dict[str, dict] = {}
        for key, row, error in runner.results():
            if error is not None:
                row = {"status": "error", "message": f"{type(error).__name__}: {error}"}
            results[key] = row
            self.done += 1
            if self.on_step is not None:
                self.on_step(f"{self.done} of {self.total} solves for the analyses done ({key}: {row['status']})")
            if key == "base" and row["status"] in ("optimal", "feasible"):
                # EEV: the tree with the root decisions fixed to the base plan's
                fixed = _merge(self.commitments, Commitments(tuple(row["root_years"]), row["units"], row["blocks"]))
                self.eev_commitments = fixed
                runner.submit("eev", solve_task, self.payload(self.instance, fixed))
            if key == "eev" and row["status"] == "infeasible":  # name the scenarios those decisions break
                for s in self.instance.scenarios():
                    self.total += 1
                    runner.submit(f"eev-check:{s.id}", solve_task, self.payload(s.instance, self.eev_commitments))
        return results


def _merge(a: Commitments | None, b: Commitments) -> Commitments:
    if a is None:
        return b
    return Commitments(tuple(sorted(set(a.years) | set(b.years))), {**b.units, **a.units}, {**b.blocks, **a.blocks})


def solve_task(payload: dict) -> dict:
    """Solve one instance in a worker: its status, objective and (``root_years``) its decisions of those years."""
    inst = parse_instance(payload["raw"], source=payload.get("source"))
    plan = solve_model(inst, commitments=from_payload(payload.get("commit")), time_limit=payload["time_limit"],
                       mip_gap=payload["mip_gap"], threads=payload.get("threads"))
    out = {"status": plan.status.value, "objective": plan.objective, "mip_gap": plan.mip_gap,
           "message": plan.message, "seconds": plan.result.solve_seconds}
    if "root_years" in payload and plan.status.has_plan:
        c = commitments_of(plan, payload["root_years"])
        out.update(root_years=list(c.years), units=c.units, blocks=c.blocks,
                   table=commitments_table(inst, plan.purchases, plan.facilities, c.years).to_dict("list"))
    return out


def _ok(row: dict | None) -> bool:
    return row is not None and row.get("status") in ("optimal", "feasible")


def _commitment_cost(plan: Plan, free: dict, through: int) -> None:
    """Spec v2 section 6: what holding to the old plan costs against a free re-plan (objective units)."""
    maximize = plan.instance.objective.kind == "max_training"
    cost = math.nan
    if _ok(free) and plan.status.has_plan:
        cost = free["objective"] - plan.objective if maximize else plan.objective - free["objective"]
    elif _ok(free):
        cost = math.inf  # the commitment leaves no plan at all
    plan.extra.update(commitment_cost=cost, committed_through=through)


def _value_of_information(plan: Plan, results: dict[str, dict]) -> None:
    """WS, EVPI, EEV and VSS of spec v2 section 4.3 from the independent solves, into the plan's reports."""
    inst = plan.instance
    tree = inst.uncertainty
    maximize = inst.objective.kind == "max_training"
    scenarios = inst.scenarios()
    ws = {s.id: results.get(f"ws:{s.id}") for s in scenarios}
    sign = 1.0 if maximize else -1.0
    extra = {}
    if all(_ok(r) for r in ws.values()):
        values = [ws[s.id]["objective"] for s in scenarios]
        extra["wait_and_see"] = risk_measure(values, [s.probability for s in scenarios], tree.cvar_alpha,
                                             tree.risk_weight, maximize)
        if plan.status.has_plan:
            extra["evpi"] = sign * (extra["wait_and_see"] - plan.objective)
    if plan.scenarios is not None and len(plan.scenarios):
        star = plan.scenarios.scenario.map(lambda sid: ws[sid]["objective"] if _ok(ws[sid]) else math.nan)
        plan.scenarios["wait_and_see_objective"] = star
        plan.scenarios["regret"] = (star - plan.scenarios.objective).abs()
    base, eev = results.get("base"), results.get("eev")
    if _ok(base):
        plan.base_commitments = pd.DataFrame(base["table"], columns=plan.base_commitments.columns)
    if not _ok(base):
        extra["base_plan_status"] = f"base plan {base['status'] if base else 'not solved'}"
    elif _ok(eev):
        extra["base_plan_objective"] = eev["objective"]
        extra["base_plan_status"] = eev["status"]
        if plan.status.has_plan:
            extra["vss"] = sign * (plan.objective - eev["objective"])
    elif eev is not None and eev["status"] == "infeasible":
        broken = [s.id for s in scenarios if (results.get(f"eev-check:{s.id}") or {}).get("status") == "infeasible"]
        extra["base_plan_status"] = ("infeasible: the base plan's commitments leave "
                                     + (f"scenario{'s' if len(broken) > 1 else ''} {', '.join(broken)} infeasible"
                                        if broken else "the tree infeasible"))
        extra["vss"] = math.inf
    else:
        extra["base_plan_status"] = f"EEV {eev['status'] if eev else 'not solved'}"
    plan.extra.update(extra)


__all__ = ["SolveStatus", "solve", "solve_model", "solve_task"]
