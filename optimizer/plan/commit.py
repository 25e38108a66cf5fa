"""Re-planning against a committed plan (spec v2 section 6): the decisions of an earlier plan to hold.

:func:`commitments_from` reads the purchases and block starts of the years
``start .. through`` from a :class:`~optimizer.plan.Plan` (or a plan directory
written by ``capplan solve --out``), checks each row against the instance,
and returns the :class:`formulations.model.Commitments` the model fixes.  Every
row the instance cannot take is listed at once in a :class:`CommitmentError`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from formulations import Commitments

from ..errors import Problem
from ..instance import Instance


class CommitmentError(ValueError):
    """A committed plan the instance cannot take: ``problems`` lists each offending row."""

    def __init__(self, problems: list[Problem], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        n = len(self.problems)
        head = f"{source or 'commitment'}: {n} problem{'s' if n != 1 else ''}"
        super().__init__(head + "".join(f"\n  - {p}" for p in self.problems))


def commitments_from(inst: Instance, plan, through: int) -> Commitments:
    """The decisions of ``plan`` in the years ``inst.start .. through``, checked against ``inst``.

    ``plan`` is a :class:`~optimizer.plan.Plan`, a plan directory, or a directory with just the
    signed decisions (``purchases.csv`` and ``facilities.csv`` in the plan's columns).  A plan
    under uncertainty commits its root decisions (the years before its first
    stage).  With an ``uncertainty`` section in ``inst``, ``through`` must be
    before its first stage year.
    """
    from .core import Plan

    source = None
    if not isinstance(plan, Plan):
        source = str(plan)
        plan = _read(Path(os.fspath(plan)), source)
    problems: list[Problem] = []
    years = tuple(range(inst.start, through + 1))
    if not inst.start <= through <= inst.end:
        problems.append(Problem("through", f"must be a year of the horizon {inst.start}-{inst.end}, got {through}"))
    first = inst.tree.first_stage_year
    if first is not None and through >= first:
        problems.append(Problem("through", f"must be before the first stage year {first} of the "
                                           f"instance's uncertainty section, got {through}"))
    if isinstance(plan, Plan) and not plan.status.has_plan:
        problems.append(Problem("", f"the plan has no decisions to commit (status {plan.status.value})"))
    if problems:
        raise CommitmentError(problems, source)

    purchases, facilities = plan.purchases, plan.facilities
    if getattr(plan, "stochastic", False):  # the decisions shared by every scenario: the root node's
        first = plan.instance.tree.first_stage_year
        if through >= first:
            raise CommitmentError([Problem("through", f"the committed plan is under uncertainty: only its "
                                                      f"decisions before {first} are shared by every scenario, "
                                                      f"so through must be before {first}, got {through}")],
                                  source)
        sid = plan.scenarios.scenario.iloc[0]
        purchases = purchases[purchases.scenario == sid]
        facilities = facilities[facilities.scenario == sid]

    units, blocks = {}, {}
    for row in purchases[purchases.year.isin(years)].itertuples(index=False):
        where = f"purchases row {int(row.year)}, {row.region}, {row.chip}"
        g, r, t = row.chip, row.region, int(row.year)
        c = inst.chips.get(g)
        n = float(row.units)
        if c is None:
            problems.append(Problem(where, f"chip {g!r} is not defined in the instance{_known(inst.chips)}"))
        if r not in inst.regions:
            problems.append(Problem(where, f"region {r!r} is not defined in the instance{_known(inst.regions)}"))
        if c is None or r not in inst.regions:
            continue
        if not c.purchasable(t):
            problems.append(Problem(where, f"{g} can be bought only in {c.available_from}-{c.available_until}"))
        if not n.is_integer() or n < 0:
            problems.append(Problem(where, f"units must be a whole number >= 0, got {n:g}"))
        per_unit = float(row.chips) / n if n else c.chips_per_unit
        if not math.isclose(per_unit, c.chips_per_unit):
            problems.append(Problem(where, f"the plan bought {per_unit:g} chips per unit, the instance's "
                                           f"{g} has chips_per_unit {c.chips_per_unit}"))
        units[g, r, t] = units.get((g, r, t), 0) + int(n)
    started = facilities[facilities.year.isin(years) & (facilities.blocks_started > 0)]
    for row in started.itertuples(index=False):
        where = f"facilities row {int(row.year)}, {row.region}"
        r, t, k = row.region, int(row.year), float(row.blocks_started)
        reg = inst.regions.get(r)
        if reg is None:
            problems.append(Problem(where, f"region {r!r} is not defined in the instance{_known(inst.regions)}"))
            continue
        if t + reg.build_lead_years > inst.end:
            problems.append(Problem(where, f"{k:g} blocks started in {t} would come online in "
                                           f"{t + reg.build_lead_years}, after horizon.end ({inst.end})"))
        if not k.is_integer():
            problems.append(Problem(where, f"blocks_started must be a whole number, got {k:g}"))
        blocks[r, t] = blocks.get((r, t), 0) + int(k)
    if problems:
        raise CommitmentError(problems, source)
    return Commitments(years, units, blocks)


def _read(d: Path, source: str):
    """A plan directory (``capplan solve --out``), or a directory with just the signed decisions:
    ``purchases`` (year, region, chip, units, chips) and ``facilities`` (year, region, blocks_started)
    as csv, parquet or json."""
    from types import SimpleNamespace

    from .core import INSTANCE_COPY, read_plan

    if not d.is_dir():
        raise CommitmentError([Problem("", "is not a plan directory (write one with capplan solve FILE --out DIR)")],
                              source)
    if (d / INSTANCE_COPY).is_file():
        try:
            return read_plan(d)
        except FileNotFoundError as exc:
            raise CommitmentError([Problem("", str(exc))], source) from None
    tables, problems = {}, []
    for name, needed in (("purchases", ["year", "region", "chip", "units", "chips"]),
                         ("facilities", ["year", "region", "blocks_started"])):
        found = [d / f"{name}.{ext}" for ext in ("csv", "parquet", "json") if (d / f"{name}.{ext}").is_file()]
        if not found:
            problems.append(Problem(name, f"no {name}.csv (or .parquet, .json) in the directory"))
            continue
        f = found[0]
        df = (pd.read_csv(f) if f.suffix == ".csv" else pd.read_parquet(f) if f.suffix == ".parquet"
              else pd.read_json(f, orient="records"))
        missing = [c for c in needed if c not in df.columns]
        if missing:
            problems.append(Problem(f.name, f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}"))
        tables[name] = df
    if problems:
        raise CommitmentError(problems, source)
    return SimpleNamespace(purchases=tables["purchases"], facilities=tables["facilities"], stochastic=False)


def _known(ids) -> str:
    return f" (defined: {', '.join(sorted(ids))})" if ids else ""


def commitments_of(plan, years) -> Commitments:
    """The purchases and block starts of ``years`` of a plan's (first) scenario, unchecked (EEV, reports)."""
    p, f = plan.purchases, plan.facilities
    if "scenario" in p.columns:
        sid = plan.scenarios.scenario.iloc[0]
        p, f = p[p.scenario == sid], f[f.scenario == sid]
    years = tuple(years)
    p = p[p.year.isin(years)]
    f = f[f.year.isin(years)]
    units = {(g, r, int(t)): int(n) for g, r, t, n in zip(p.chip, p.region, p.year, p.units)}
    blocks = {(r, int(t)): int(k) for r, t, k in zip(f.region, f.year, f.blocks_started) if k > 0}
    return Commitments(years, units, blocks)


__all__ = ["CommitmentError", "commitments_from", "commitments_of"]
