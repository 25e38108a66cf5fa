"""A plan's summary fields as plain values (``plan.kpis``), and the short text of ``repr(plan)``."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd


def _plain(v: Any) -> Any:
    """A numpy scalar as the Python value; NaN (a field without a value) as None."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


class Kpis(Mapping):
    """The summary fields of a plan, read-only, by attribute or by key, as plain Python values.

    >>> plan.kpis.total_spend_usd        # a float (plan.summary.total_spend_usd is a one-row Series)
    >>> plan.kpis["evpi"], dict(plan.kpis)

    A field without a value (``evpi`` when the value of information was not
    computed, ``objective`` of a plan without a solution) is None.  A field the
    plan does not have at all (``commitment_cost`` of a plan solved without a
    commitment) raises :class:`AttributeError` (:class:`KeyError` by key) naming
    the fields it has.  ``summary`` is the one-row DataFrame these come from.
    """

    __slots__ = ("_values",)

    def __init__(self, summary: pd.DataFrame | None):
        row = summary.iloc[0].to_dict() if summary is not None and len(summary) else {}
        object.__setattr__(self, "_values", {str(k): _plain(v) for k, v in row.items()})

    def _missing(self, name: str) -> str:
        return f"{name!r} is not a summary field of this plan; its fields: {', '.join(self._values)}"

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise KeyError(self._missing(key)) from None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(self._missing(name)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a plan's KPIs are read-only")

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._values})

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in list(self._values.items())[:6])
        more = f", ... ({len(self._values)} fields)" if len(self._values) > 6 else ""
        return f"Kpis({shown}{more})"


def _number(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.6g}"


def plan_repr(plan) -> str:
    """``<Plan aws-5gw-2026 2026-2035: optimal, objective 1,697,449 (max_training), gap 0.0099%, spend $100.0B>``."""
    inst = plan.instance
    parts = [plan.status.value]
    if plan.objective is not None:
        parts.append(f"objective {_number(plan.objective)} ({inst.objective.kind})")
    if plan.mip_gap is not None:
        parts.append(f"gap {plan.mip_gap:.4%}")
    k = Kpis(plan.summary) if plan.summary is not None else {}
    spend = k.get("total_spend_usd")
    if spend is not None:
        parts.append(f"spend ${spend / 1e9:,.1f}B" if abs(spend) >= 1e8 else f"spend ${spend:,.0f}")
    if plan.stochastic and plan.scenarios is not None:
        parts.append(f"{len(plan.scenarios)} scenarios")
    return f"<Plan {inst.name} {inst.start}-{inst.end}: {', '.join(parts)}>"
