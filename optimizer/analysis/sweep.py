"""Sensitivity sweeps and marginal values: many re-solves of one instance with some values changed.

A sweep varies dotted instance paths (the paths of :meth:`Instance.with_changes`)
over value lists, as a full grid or one at a time, and returns one row per
scenario with its status and plan KPIs.  Three kinds of value:

* an absolute value (``80e9``), set at the path;
* a :class:`Factor` (``x0.8``), scaling the value at the path - a number, each
  year of a ``{year: value}`` series, or the ``start`` of a growth series;
* a :class:`Shift` (``+1y``), moving an integer year (``chips.trn4.available_from``).

Each worker (an in-process loop, a local process or a Dask worker) keeps one
Pyomo model and its persistent HiGHS solver.  A scenario whose changes leave
the model's structure unchanged (:func:`formulations.model.structure_key`) is
applied in place (:func:`formulations.model.update_model`, then HiGHS's
``update_parameters``); any other scenario is built afresh and becomes the
worker's model.  Results go to a :class:`SweepStore` (SQLite) one committed row
per finished scenario, so a killed sweep keeps every finished scenario and a
resumed one skips them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InstanceError
from ..files import RowStore
from ..instance import Instance
from ..instance.changes import (
    _MISSING,
    ChangeError,
    Factor,
    Shift,
    Value,
    _add,
    _get,
    concrete_changes,
    parse_values,  # noqa: F401  (re-exported: the sweep API reads values from text)
    parse_vary,  # noqa: F401
    value_label,
    value_number,
)
from ..parallel import Runner, WorkersStopped, default_workers
from ..solver import ModelHandle, SolveOptions

STORE_NAME = "sweep.sqlite"

HOLD_AFTER = int(os.environ.get("CAPPLAN_TEST_HOLD_AFTER", "0") or 0)
"""For tests that interrupt a sweep (``CAPPLAN_TEST_HOLD_AFTER=N``): after N results are stored the sweep
waits until it is interrupted, so that the test never races the sweep's end.  0 (the default): never."""

KPI_COLUMNS = [
    "status", "objective", "mip_gap", "objective_bound", "total_spend_usd", "budget_used_share",
    "peak_capacity_mw", "peak_draw_mw", "training_pflops_years", "inference_pflops_years",
    "training_share", "unmet_pflops_years", "units_bought", "blocks_started",
]
TIMING_COLUMNS = ["path", "build_seconds", "handoff_seconds", "solve_seconds", "seconds", "message"]


SweepError = ChangeError  # one error type for bad paths and values, wherever they are given


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class SweepCase:
    """One point of a sweep: its index in the grid, the changes it makes and a stable id."""

    index: int
    changes: tuple[tuple[str, Value], ...]  # (path, value) in the order of ``vary``
    id: str

    @property
    def label(self) -> str:
        return ", ".join(f"{p}={value_label(v)}" for p, v in self.changes) or "base"


_MODES = {"oat": "one_at_a_time"}  # short names of sweep modes


def scenarios(base: Instance, vary: Mapping[str, Sequence[Value]], mode: str = "grid") -> list[SweepCase]:
    """The scenarios of a sweep: every combination (``grid``) or one path at a time (``one_at_a_time``,
    which starts with the base instance)."""
    if not vary:
        raise SweepError("nothing to vary: give at least one path with values")
    for path, values in vary.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise SweepError(f"{path}: give a non-empty list of values")
    mode = _MODES.get(mode, mode)
    if mode == "grid":
        combos = [tuple(zip(vary, combo)) for combo in itertools.product(*vary.values())]
    elif mode == "one_at_a_time":
        combos = [()] + [((p, v),) for p, values in vary.items() for v in values]
    else:
        raise SweepError(f"mode must be grid or one_at_a_time (oat), got {mode!r}")
    out = []
    for i, combo in enumerate(combos):
        ident = json.dumps([base.hash, [[p, value_label(v)] for p, v in combo]])
        out.append(SweepCase(i, combo, hashlib.sha256(ident.encode()).hexdigest()[:16]))
    return out


def check_vary(base: Instance, vary: Mapping[str, Sequence[Value]]) -> None:
    """Check every path and value of a sweep before anything is solved; :class:`SweepError` lists each problem.

    A path must name an existing chip or region (``chips.trn9.price_usd`` is
    "no chip trn9", with the instance's chips), and each value must give a
    valid instance on its own: a factor needs a number at the path, a shift a
    year, a value the type and range the instance format wants.  (A
    combination of values that is invalid only together is still a row with
    status ``invalid``.)
    """
    problems: list[str] = []
    for path, values in vary.items():
        missing = _missing_id(base.raw, path) or _unknown_key(base, path)
        if missing:
            problems.append(f"{path}: {missing}")
            continue
        for v in dict.fromkeys(values):  # each distinct value once
            try:
                base.with_changes(concrete_changes(base, {path: v}))
            except SweepError as exc:
                problems.append(f"{path}={value_label(v)}: {str(exc).removeprefix(path + ': ')}")
            except InstanceError as exc:
                problems.append(f"{path}={value_label(v)}: " + "; ".join(str(p) for p in exc.problems))
    if problems:
        raise SweepError("\n".join(problems))


_COLLECTIONS = {"chips": "chip", "regions": "region"}


def _unknown_key(base: Instance, path: str) -> str | None:
    """The format's own word (``budgt: unknown key; did you mean 'budget'?``) for a path it does not have."""
    if _get(base.raw, path) is not _MISSING:
        return None
    try:
        base.with_changes({path: 0})
    except InstanceError as exc:
        unknown = [str(p) for p in exc.problems if "unknown key" in p.message]
        return "; ".join(unknown) or None
    return None


def _missing_id(raw: Mapping, path: str) -> str | None:
    """``no chip 'trn9' (the instance's chips: trn2, trn3, trn4)`` when ``path`` names an id the instance lacks."""
    head, _, rest = path.partition(".")
    if head not in _COLLECTIONS or not rest:
        return None
    ids = list(raw.get(head) or {})
    if any(rest == i or rest.startswith(i + ".") for i in ids):
        return None
    what = _COLLECTIONS[head]
    return f"no {what} '{rest.split('.')[0]}' (the instance's {head}: {', '.join(ids) or 'none'})"


# --------------------------------------------------------------------------- one worker


class Worker:
    """Solves scenarios of one base instance, keeping its model handle between them."""

    def __init__(self, base: Instance, *, in_place: bool = True, time_limit: float | None = None,
                 mip_gap: float = 1e-4, threads: int | None = 1):
        self.base = base
        self.in_place = in_place
        self.options = SolveOptions(time_limit=time_limit, mip_gap=mip_gap, threads=threads)
        self.handle: ModelHandle | None = None
        self.lock = threading.Lock()

    def solve(self, inst: Instance):
        """Solve ``inst``, in place when the kept model allows it; returns (plan, how)."""
        from ..plan import Plan

        if self.in_place and self.handle is not None:
            how = "in_place" if self.handle.update(inst) else "rebuild"
        else:
            self.handle, how = ModelHandle(inst), "rebuild"
        result = self.handle.solve(self.options)
        plan = Plan.from_model(inst, self.handle.model, result)
        if not self.in_place:
            self.handle = None
        return plan, how

    def run(self, changes: Sequence[tuple[str, Value]]) -> dict[str, Any]:
        """One scenario as a result row; never raises (a failure is a row with its status)."""
        t0 = time.perf_counter()
        with self.lock:
            try:
                inst = self.base.with_changes(concrete_changes(self.base, dict(changes)))
            except (InstanceError, SweepError) as exc:
                return {"status": "invalid", "message": _one_line(exc), "seconds": time.perf_counter() - t0}
            try:
                plan, how = self.solve(inst)
            except Exception as exc:  # a failed scenario is a row, never an aborted sweep
                self.handle = None
                return {"status": "error", "message": f"{type(exc).__name__}: {exc}",
                        "seconds": time.perf_counter() - t0}
        row = plan_kpis(plan)
        r = plan.result
        row.update(path=how, build_seconds=r.build_seconds, handoff_seconds=r.handoff_seconds,
                   solve_seconds=r.solve_seconds, seconds=time.perf_counter() - t0, message=r.message)
        return row


def _one_line(exc: Exception) -> str:
    return " | ".join(line.strip(" -") for line in str(exc).splitlines() if line.strip())


def plan_kpis(plan) -> dict[str, Any]:
    """The summary KPIs of a plan, for one sweep row."""
    s = plan.summary.iloc[0]
    row = {"status": plan.status.value, "objective": s.objective, "mip_gap": s.mip_gap,
           "objective_bound": s.objective_bound, "total_spend_usd": s.total_spend_usd,
           "budget_used_share": s.budget_used_share, "peak_capacity_mw": s.peak_capacity_mw}
    if plan.status.has_plan:
        fac, split = plan.facilities, plan.split
        row["peak_draw_mw"] = float(fac.groupby("year").draw_mw.sum().max()) if len(fac) else 0.0
        train, infer = float(split.train_pflops.sum()), float(split.infer_pflops.sum())
        row.update(training_pflops_years=train, inference_pflops_years=infer,
                   training_share=train / (train + infer) if train + infer > 0 else math.nan)
        row["unmet_pflops_years"] = float(plan.compute["unmet_pflops"].sum()) if len(plan.compute) else 0.0
        row["units_bought"] = float(plan.purchases["units"].sum()) if len(plan.purchases) else 0.0
        row["blocks_started"] = float(fac.blocks_started.sum()) if len(fac) else 0.0
    return {k: _num(v) for k, v in row.items()}


def _num(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


# worker processes (local pool or Dask) keep their Worker between tasks
_WORKERS: dict[tuple, Worker] = {}
_MAX_KEPT = 4


def _worker_for(payload: dict) -> Worker:
    key = (payload["hash"], payload["in_place"], payload["time_limit"], payload["mip_gap"],
           payload["threads"], threading.get_ident())
    w = _WORKERS.pop(key, None)
    if w is None:
        w = Worker(payload["instance"], in_place=payload["in_place"], time_limit=payload["time_limit"],
                   mip_gap=payload["mip_gap"], threads=payload["threads"])
    _WORKERS[key] = w  # most recently used last
    while len(_WORKERS) > _MAX_KEPT:  # a long-lived Dask worker serves many sweeps: keep a few models only
        _WORKERS.pop(next(iter(_WORKERS)))
    return w


def run_remote(payload: dict, changes: tuple) -> dict[str, Any]:
    """Solve one scenario in a worker process (a local pool or a Dask worker)."""
    row = _worker_for(payload).run(changes)
    row["worker"] = f"{os.uname().nodename}:{os.getpid()}"
    return row


# --------------------------------------------------------------------------- the store


class SweepStore(RowStore):
    """Finished scenarios in SQLite, one committed row each: a kill loses none of them."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(path, name=STORE_NAME, error=SweepError,
                         table="results (id TEXT PRIMARY KEY, idx INTEGER, changes TEXT, row TEXT, finished REAL)")

    def done(self) -> dict[str, dict]:
        return self.rows("id", "results")

    def add(self, sc: SweepCase, row: Mapping[str, Any]) -> None:
        changes = json.dumps([[p, value_label(v)] for p, v in sc.changes])
        self.put("results", sc.id, sc.index, changes, dict(row), time.time())  # one transaction per scenario


# --------------------------------------------------------------------------- the sweep


@dataclass
class SweepProgress:
    done: int
    failed: int
    total: int
    elapsed: float
    skipped: int = 0  # finished in an earlier run (resume)


def sweep(
    instance: Instance,
    vary: Mapping[str, Sequence[Value]],
    *,
    mode: str = "grid",
    workers: int | None = None,
    client=None,
    store: str | os.PathLike | None = None,
    resume: bool = True,
    time_limit: float | None = None,
    mip_gap: float = 1e-4,
    in_place: bool = True,
    progress: Callable[[SweepProgress], None] | None = None,
    order: str = "hardest_first",
) -> pd.DataFrame:
    """Solve ``instance`` with the values of ``vary`` changed; one row per scenario.

    ``vary`` maps dotted paths to value lists (numbers, :class:`Factor`,
    :class:`Shift`).  ``mode`` is ``grid`` (every combination) or
    ``one_at_a_time`` / ``oat`` (the base, then each value of each path alone).
    ``workers``: local processes (default: the number of cores; 1 solves in
    this process).  They are started with ``spawn`` (forking a process that
    may hold HiGHS threads is unsafe), so a script calling ``sweep`` with
    more than one worker guards the call with ``if __name__ == "__main__":``.
    ``client``: a ``dask.distributed.Client``, whose workers
    solve instead.  ``time_limit`` and ``mip_gap`` apply to each scenario;
    ``in_place`` updates each worker's model rather than rebuilding it when a
    scenario allows it; ``progress`` is called with a :class:`SweepProgress`
    (done, failed, total, elapsed) as each scenario finishes.  ``store``: a directory (or ``.sqlite`` file) where each
    finished scenario is committed; with ``resume`` the ones already there are
    not solved again.  A scenario that is invalid, infeasible or fails is a
    row with that status.

    The columns: ``scenario`` (its index), ``label``, one column per varied
    path (the factor, shift or value, as a number), the KPIs (status,
    objective, mip_gap, total_spend_usd, peak_capacity_mw, training_share, ...),
    and timings (``path`` is ``in_place`` or ``rebuild``).

    ``order``: with more than one worker, ``hardest_first`` (the default) hands
    out the scenarios that look hardest first, so that a slow one does not
    start last and leave the other workers idle at the end; the estimate is
    the number of fractional purchase, block and frontier decisions in each
    scenario's LP relaxation, solved in place on one model (a fraction of a
    second for the whole grid; see docs/sweeps.md).  ``given`` keeps the grid order.
    """
    scs = scenarios(instance, vary, mode)
    db = SweepStore(store) if store is not None else None
    finished: dict[str, dict] = {}
    if db is not None:
        if resume:
            finished = db.done()
        elif db.done():
            db.close()
            raise SweepError(f"{db.path} already holds results: resume, or choose another store")
        db.set_meta({"instance": instance.name, "instance_hash": instance.hash, "mode": mode,
                     "vary": json.dumps({p: [value_label(v) for v in vs] for p, vs in vary.items()})})
    rows: dict[int, dict] = {sc.index: finished[sc.id] for sc in scs if sc.id in finished}
    pending = [sc for sc in scs if sc.index not in rows]
    t0 = time.perf_counter()
    state = {"done": 0, "failed": 0}

    def record(sc: SweepCase, row: dict) -> None:
        rows[sc.index] = row
        if db is not None:
            db.add(sc, row)
        state["done"] += 1
        state["failed"] += row.get("status") not in ("optimal", "feasible")
        if progress is not None:
            progress(SweepProgress(state["done"], state["failed"], len(pending),
                                   time.perf_counter() - t0, len(scs) - len(pending)))
        if HOLD_AFTER and state["done"] >= HOLD_AFTER:
            while True:  # until interrupted (tests only)
                time.sleep(0.1)

    if progress is not None:
        progress(SweepProgress(0, 0, len(pending), 0.0, len(scs) - len(pending)))
    try:
        if pending:
            payload = {"instance": instance, "hash": instance.hash,
                       "in_place": in_place, "time_limit": time_limit, "mip_gap": mip_gap, "threads": 1}
            n = workers or default_workers()
            if client is None and (n <= 1 or len(pending) == 1):
                w = Worker(instance, in_place=in_place, time_limit=time_limit, mip_gap=mip_gap, threads=None)
                for sc in pending:
                    record(sc, w.run(sc.changes))
            else:
                if order == "hardest_first" and len(pending) > (n if client is None else 1):
                    pending = hardest_first(instance, pending)
                _run_parallel(min(n, len(pending)), client, payload, pending, record)
    finally:
        if db is not None:
            db.close()
    df = _table(scs, rows, vary)
    df.attrs["mode"] = _MODES.get(mode, mode)
    df.attrs["objective_unit"] = _objective_unit(instance)
    df.attrs["instance"] = instance.name
    return df


def _objective_unit(inst: Instance) -> str:
    if inst.objective.kind == "max_training":
        return "PFLOP/s-years, discounted"
    return "USD, discounted"



def difficulty(instance: Instance, scenarios: Sequence[SweepCase]) -> dict[int, int]:
    """A cheap estimate of each scenario's difficulty: the fractional integer decisions (units, cumulative
    blocks, frontier sites) of its LP relaxation, solved in place on one model handle (0 for a
    scenario that is invalid or cannot be built; their rows come fast anyway)."""
    out: dict[int, int] = {}
    handle = None
    for sc in scenarios:
        try:
            inst = instance.with_changes(concrete_changes(instance, dict(sc.changes)))
            if handle is None:
                handle = ModelHandle(inst)
            else:
                handle.update(inst)
            m = handle.model
            out[sc.index] = handle.fractional(m.n, m.K, m.z)
        except Exception:  # an estimate only: a scenario that cannot be estimated is solved last
            out[sc.index] = 0
            handle = None
    return out


def hardest_first(instance: Instance, scenarios: list[SweepCase]) -> list[SweepCase]:
    """``scenarios`` ordered by :func:`difficulty`, largest first (stable: ties keep the grid order)."""
    est = difficulty(instance, scenarios)
    return sorted(scenarios, key=lambda sc: -est[sc.index])


def _run_parallel(n: int, client, payload: dict, pending: list[SweepCase], record) -> None:
    try:
        with Runner(n, client) as runner:
            shared = runner.share(payload)
            for sc in pending:
                runner.submit(sc, run_remote, shared, sc.changes)
            for sc, row, error in runner.results():
                if error is not None:  # the task failed outside Worker.run (which never raises)
                    row = {"status": "error", "message": f"worker failed: {type(error).__name__}: {error}"}
                record(sc, row)
    except WorkersStopped as exc:
        raise SweepError(f"{exc}; every scenario finished before is kept in the store") from None


def _table(scs: list[SweepCase], rows: dict[int, dict], vary: Mapping[str, Sequence[Value]]) -> pd.DataFrame:
    records = []
    for sc in scs:
        if sc.index not in rows:
            continue
        given = dict(sc.changes)
        rec = {"scenario": sc.index, "label": sc.label}
        for p in vary:
            rec[p] = value_number(given[p]) if p in given else math.nan
        rec.update({k: rows[sc.index].get(k) for k in KPI_COLUMNS + TIMING_COLUMNS + ["worker"]})
        records.append(rec)
    df = pd.DataFrame(records, columns=["scenario", "label", *vary, *KPI_COLUMNS, *TIMING_COLUMNS, "worker"])
    for c in KPI_COLUMNS[1:] + TIMING_COLUMNS[1:5]:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df.attrs["vary"] = {p: [value_label(v) for v in vs] for p, vs in vary.items()}
    df.attrs["kinds"] = {p: _kind(vs) for p, vs in vary.items()}
    return df


def _kind(values: Sequence[Value]) -> str:
    if all(isinstance(v, Factor) for v in values):
        return "factor"
    if all(isinstance(v, Shift) for v in values):
        return "shift"
    return "value"


# --------------------------------------------------------------------------- marginal values


def marginal(instance: Instance, param: str, step: float, *, time_limit: float | None = None,
             mip_gap: float = 1e-4) -> pd.DataFrame:
    """What moving ``param`` of ``instance`` by ``step`` (every year of a series) buys, by re-solving the MIP.

    LP duals of a MIP are not prices; this re-solves with the parameter moved
    up and down by the step and reports the change of the objective.  Rows:
    ``base``, ``up`` and ``down``, with the change of the parameter, the
    objective, ``delta`` (objective minus the base's) and ``slope`` (delta
    per unit of the parameter).  Both directions are given since a MIP's
    value is neither linear nor smooth.  ``time_limit`` and ``mip_gap`` apply
    to each of the three solves.
    """
    if not step or not math.isfinite(step):
        raise SweepError(f"--step must be a nonzero number, got {step!r}")
    cur = _get(instance.raw, param)
    moves = {"up": _add(cur, param, step, instance.years), "down": _add(cur, param, -step, instance.years)}
    w = Worker(instance, time_limit=time_limit, mip_gap=mip_gap, threads=None)
    base_plan, _ = w.solve(instance)
    unit = _objective_unit(instance)
    rows = [_marginal_row("base", 0.0, base_plan, None)]
    for direction, value in moves.items():
        try:
            inst = instance.with_changes({param: value})
        except InstanceError as exc:
            rows.append({"direction": direction, "change": step if direction == "up" else -step,
                         "status": "invalid", "message": _one_line(exc)})
            continue
        plan, _ = w.solve(inst)
        rows.append(_marginal_row(direction, step if direction == "up" else -step, plan, base_plan))
    df = pd.DataFrame(rows, columns=["direction", "change", "status", "objective", "mip_gap", "delta",
                                     "slope", "message"])
    df.attrs.update(param=param, step=step, unit=unit)
    return df


def _marginal_row(direction: str, change: float, plan, base) -> dict:
    row = {"direction": direction, "change": change, "status": plan.status.value,
           "objective": plan.objective, "mip_gap": plan.result.mip_gap, "message": plan.result.message}
    if base is not None and plan.objective is not None and base.objective is not None:
        delta = plan.objective - base.objective
        row["delta"] = delta
        row["slope"] = delta / change
    return row
