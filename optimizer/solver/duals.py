"""Marginal values of a solved plan: duals of its LP with the discrete decisions fixed, in reporting units.

They are local prices of that fixed-integer LP, not prices of the MIP; re-solve
with a step (``capplan marginal``) for MIP-valid values.  Which families are
priced, and in which unit, is each family's declaration
(:mod:`formulations.registry`).
"""

from __future__ import annotations

import pandas as pd

from formulations import split_index
from formulations.registry import marginal_unit

MARGINAL_COLUMNS = ["family", "year", "where", "binding", "marginal", "unit"]


def fixed_lp_marginals(handle, *, tol: float = 1e-7) -> pd.DataFrame:
    """Duals of the plan's LP with blocks and frontier sites fixed, in reporting units.

    ``handle`` is the :class:`~optimizer.solver.ModelHandle` that solved the
    plan.  The campus blocks k and frontier sites z are fixed at the plan's
    values and every integrality dropped; the chip units n stay free
    (continuous).  Fixing n as well (HiGHS's ``getFixedLp``) prices the budget
    and the power caps at zero by construction, since with every purchase
    fixed no continuous decision can use one more dollar or megawatt; units
    of 64-144 chips are close to continuous, blocks and sites are the
    discrete choices.
    """
    model = handle.model
    S, factor = model.info.scaling, model.info.objective_factor
    rows = handle.fixed_lp((model.k, model.z))
    if rows is None:
        return pd.DataFrame(columns=MARGINAL_COLUMNS)
    out = []
    for family, index, lo, hi, act, dual in rows.values():
        priced = marginal_unit(family, S)
        if priced is None:
            continue
        unit, mult = priced
        key, node = split_index(model, family, index)
        bound = hi if abs(act - hi) <= abs(act - lo) else lo
        binding = abs(act - bound) <= tol * max(1.0, abs(bound))
        year = next((k for k in key if isinstance(k, int)), None)
        place = [str(k) for k in key if not isinstance(k, int)] + ([node or "root"] if node is not None else [])
        out.append({"family": family, "year": year, "where": ",".join(place), "binding": binding,
                    "marginal": dual * factor * mult, "unit": unit})
    df = pd.DataFrame(out, columns=MARGINAL_COLUMNS)
    df["marginal"] = df.marginal.where(df.marginal.abs() > 1e-9, 0.0)
    return df.sort_values(["family", "year", "where"], kind="stable").reset_index(drop=True)


def binding(marg: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """The binding constraints, largest absolute marginal first."""
    b = marg[marg.binding].copy()
    b = b.reindex(b.marginal.abs().sort_values(ascending=False, kind="stable").index)
    return b.head(top).reset_index(drop=True) if top else b.reset_index(drop=True)
