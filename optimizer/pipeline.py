"""The pipe of one solve: instance -> model -> HiGHS -> plan."""

from __future__ import annotations

import time
from collections.abc import Callable

from formulations import build_model

from .instance import Instance
from .plan import Plan
from .solver import Progress, run_model


def solve(
    instance: Instance,
    *,
    time_limit: float | None = None,
    mip_gap: float = 1e-4,
    threads: int | None = None,
    log: bool = False,
    progress: Callable[[Progress], None] | None = None,
    warm_start: bool = True,
):
    """Build, solve and report the plan of an instance.

    Returns a :class:`~optimizer.plan.Plan` whatever the outcome: check
    ``plan.status`` (a :class:`SolveStatus`).  A time-limited solve returns its
    best plan with ``plan.mip_gap`` and status ``FEASIBLE``, never ``OPTIMAL``.

    >>> plan = solve(load_instance("instances/tiny-supply-cap.yaml"))
    >>> plan.status
    <SolveStatus.OPTIMAL: 'optimal'>
    """
    t0 = time.perf_counter()
    model = build_model(instance)
    build_seconds = time.perf_counter() - t0
    result = run_model(model, time_limit=time_limit, mip_gap=mip_gap, threads=threads, log=log,
                       progress=progress, build_seconds=build_seconds, warm_start=warm_start)
    return Plan.from_model(instance, model, result)
