"""How capplan writes quantities for people: one style for money, power, compute and counts.

Text (terminal tables, summaries) and charts use the same rules, so that a
figure reads the same wherever it is shown:

* **money**: whole dollars with separators below $1M (``$54,760``); from $1M
  in millions, billions or trillions with two decimals (``$19.10B``);
* **numbers** (objective values, PFLOP/s, chips): separators and no decimals
  from 100 on (``1,697,452``), three significant digits below (``0.504``),
  scientific only beyond 1e15 or below 1e-4 (``2.5e-05``);
* **shares** with one decimal (``53.2%``); **power** in MW (``2,700 MW``).

Chart axes choose their unit from the data (:func:`money_scale`,
:func:`count_scale`, :func:`power_scale`): a tiny plan's axis reads "chips" from
0 to 4, the default plan's "thousand chips" or "$B"; the tick labels carry
as many decimals as the tick step needs, never an offset or an exponent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MONEY_STEPS = ((1e12, "T", "trillion"), (1e9, "B", "billion"), (1e6, "M", "million"))
COUNT_STEPS = ((1e9, "billion"), (1e6, "million"), (1e3, "thousand"))


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt_usd(x: float | None) -> str:
    """Money in capplan's one style: ``$54,760``, ``$19.10M``, ``$19.10B``, ``-$2.50B``; ``-`` when missing."""
    if _missing(x):
        return "-"
    if math.isinf(x):
        return "-$inf" if x < 0 else "$inf"
    sign = "-" if x < 0 else ""
    a = abs(x)
    for div, suffix, _ in MONEY_STEPS:
        if a >= div:
            return f"{sign}${a / div:,.2f}{suffix}"
    return f"{sign}${a:,.0f}"


def fmt_number(x: float | None, signed: bool = False) -> str:
    """A quantity with separators: ``1,697,452``, ``12.3``, ``0.504``, ``2.5e-05``; ``+`` first with ``signed``."""
    if _missing(x):
        return "-"
    sign = "+" if signed else ""
    if math.isinf(x):
        return f"{'-' if x < 0 else sign}inf"
    a = abs(x)
    if a == 0:
        return f"{sign}0" if signed else "0"
    if a >= 1e15 or a < 1e-4:
        return f"{x:{sign}.3e}"
    if a >= 100:
        return f"{x:{sign},.0f}"
    return f"{x:{sign},.3g}"


def fmt_share(x: float | None) -> str:
    """A share as a percentage with one decimal: ``53.2%``."""
    return "-" if _missing(x) else f"{x:.1%}"


def fmt_mw(x: float | None) -> str:
    """Power in MW: ``2,700 MW``."""
    return "-" if _missing(x) else f"{fmt_number(x)} MW"


def objective_unit(inst) -> str:
    """The unit of an instance's objective, in words."""
    return "discounted PFLOP/s-years" if inst.objective.kind == "max_training" else "discounted USD"


def fmt_objective(value: float | None, inst) -> str:
    """An objective value with its unit: ``1,697,452 discounted PFLOP/s-years`` or ``$54,760 discounted``."""
    if _missing(value):
        return "-"
    if inst.objective.kind == "max_training":
        return f"{fmt_number(value)} discounted PFLOP/s-years"
    return f"{fmt_usd(value)} discounted"


# --------------------------------------------------------------------------- chart scales


@dataclass(frozen=True)
class Scale:
    """The unit an axis shows: values are divided by ``divisor``; ``label`` names the unit ('' for none)."""

    divisor: float
    label: str
    integer: bool = False  # ticks at whole numbers only (single chips)

    def title(self, what: str) -> str:
        """An axis label: ``what`` with the unit in parentheses, e.g. ``installed chips (thousands)``."""
        return f"{what} ({self.label})" if self.label else what


def _finite_max(value) -> float:
    try:
        v = abs(float(value))
    except (TypeError, ValueError):
        return 0.0
    return v if math.isfinite(v) else 0.0


def money_scale(max_value: float) -> Scale:
    """USD, $ thousands, $M, $B or $T: the largest step the data reaches (so the axis reads 1 to 999)."""
    v = _finite_max(max_value)
    for div, name in ((1e12, "$T"), (1e9, "$B"), (1e6, "$M"), (1e3, "$ thousands")):
        if v >= div:
            return Scale(div, name)
    return Scale(1.0, "USD")


def count_scale(max_value: float, unit: str | None = None) -> Scale:
    """A count in units, thousands, millions or billions: the largest step the data reaches.

    Without ``unit`` (chips: the quantity is in the axis title) the label is
    ``thousands`` / ``millions`` (or none, with whole-number ticks); with a unit
    it is ``thousand PFLOP/s`` or ``PFLOP/s``.
    """
    v = _finite_max(max_value)
    for div, name in COUNT_STEPS:
        if v >= div:
            return Scale(div, f"{name} {unit}" if unit else f"{name}s")
    return Scale(1.0, unit or "", integer=unit is None)


def power_scale(max_value: float) -> Scale:
    """MW up to 10 GW, GW beyond (planners give campus and regional sizes in MW)."""
    return Scale(1e3, "GW") if _finite_max(max_value) >= 1e4 else Scale(1.0, "MW")


def tick_text(values, scale: Scale) -> list[str]:
    """Tick labels for ``values`` (data units) on an axis of ``scale``: the decimals the step needs, separators."""
    shown = [float(v) / scale.divisor for v in values]
    finite = [v for v in shown if math.isfinite(v)]
    decimals = 0
    if not scale.integer:
        for decimals in range(7):  # the fewest decimals that write every tick exactly (2.5 -> 1, 0.004 -> 3)
            f = 10 ** decimals
            if all(abs(v * f - round(v * f)) <= 1e-6 * max(1.0, abs(v * f)) for v in finite):
                break
    out = []
    for v in shown:
        if not math.isfinite(v):
            out.append("")
            continue
        text = f"{abs(v):,.{decimals}f}"
        negative = v < 0 and float(text.replace(",", "")) != 0
        out.append(("-" if negative else "") + text)
    return out
