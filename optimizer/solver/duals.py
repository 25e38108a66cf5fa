"""Marginal values of a solved plan: duals of its LP with the discrete decisions fixed, in reporting units.

They are local prices of that fixed-integer LP, not prices of the MIP; re-solve
with a step (``capplan marginal``) for MIP-valid values.
"""

from __future__ import annotations

import highspy
import pandas as pd

from formulations import split_index

from .highs import columns


def row_names(opt) -> dict[int, tuple[str, object]]:
    """HiGHS row index -> (constraint family, index) for a persistent Pyomo HiGHS solver."""
    return {row: (con.parent_component().name, con.index())
            for con, row in opt._pyomo_con_to_solver_con_map.items()}



# family -> (reporting unit, multiplier from "objective units per internal rhs unit")
def _unit(family: str, S) -> tuple[str, float]:
    MU, FU = S.money_usd, S.compute_pflops
    if family in ("budget", "budget_annual"):
        return "per +$1B", 1e9 / MU
    if family in ("ceiling", "region_max", "facility"):
        return "per +100 MW", 100.0
    if family == "supply":
        return "per +1 unit", 1.0
    if family in ("demand", "training"):
        return "per +1 PFLOP/s", 1.0 / FU
    if family == "frontier":
        return "per +1 PFLOP/s of cluster", 1.0 / FU
    return "per unit of rhs", 1.0


def fixed_lp_marginals(model, opt, *, tol: float = 1e-7) -> pd.DataFrame:
    """Duals of the plan's LP with blocks and frontier sites fixed, in reporting units.

    The campus blocks k and frontier sites z are fixed at the plan's values
    and every integrality dropped; the chip units n stay free (continuous).
    Fixing n as well (HiGHS's ``getFixedLp``) prices the budget and the power
    caps at zero by construction, since with every purchase fixed no
    continuous decision can use one more dollar or megawatt; units of 64-144
    chips are close to continuous, blocks and sites are the discrete choices.
    """
    S, factor = model.info.scaling, model.info.objective_factor
    h = opt._solver_model
    rows = row_names(opt)
    values = h.getSolution().col_value
    lp = h.getLp()
    h2 = highspy.Highs()
    h2.setOptionValue("output_flag", False)
    h2.passModel(lp)
    ints = [c for c, t in enumerate(lp.integrality_) if t != highspy.HighsVarType.kContinuous]
    if ints:
        h2.changeColsIntegrality(len(ints), ints, [highspy.HighsVarType.kContinuous] * len(ints))
    fixed = columns(opt, model.k, model.z)
    if fixed:
        vals = [float(round(values[c])) for c in fixed]
        h2.changeColsBounds(len(fixed), fixed, vals, vals)
    h2.run()
    if h2.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return pd.DataFrame(columns=MARGINAL_COLUMNS)
    sol = h2.getSolution()
    out = []
    for row, (family, index) in rows.items():
        if family in ("assign", "serve", "frontier_pick", "cvar", "commit_units", "commit_blocks", "k_cum"):
            continue
        key, node = split_index(model, family, index)
        lo, hi, act = lp.row_lower_[row], lp.row_upper_[row], sol.row_value[row]
        bound = hi if abs(act - hi) <= abs(act - lo) else lo
        slack = abs(act - bound)
        binding = slack <= tol * max(1.0, abs(bound))
        dual = sol.row_dual[row]
        unit, mult = _unit(family, S)
        year = next((k for k in key if isinstance(k, int)), None)
        place = [str(k) for k in key if not isinstance(k, int)] + ([node or "root"] if node is not None else [])
        place = ",".join(place)
        out.append({"family": family, "year": year, "where": place, "binding": binding,
                    "marginal": dual * factor * mult, "unit": unit})
    df = pd.DataFrame(out, columns=MARGINAL_COLUMNS)
    df["marginal"] = df.marginal.where(df.marginal.abs() > 1e-9, 0.0)
    return df.sort_values(["family", "year", "where"], kind="stable").reset_index(drop=True)


MARGINAL_COLUMNS = ["family", "year", "where", "binding", "marginal", "unit"]



def binding(marg: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """The binding constraints, largest absolute marginal first."""
    b = marg[marg.binding].copy()
    b = b.reindex(b.marginal.abs().sort_values(ascending=False, kind="stable").index)
    return b.head(top).reset_index(drop=True) if top else b.reset_index(drop=True)

