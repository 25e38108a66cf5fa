"""Internal units, chosen per instance so that the solver sees a well-conditioned matrix.

The model never works in dollars, single chips or single PFLOP/s.  Chip
quantities are counted in purchasable units of each chip (``u_g`` chips), money
in ``money_usd`` dollars and compute in ``compute_pflops`` PFLOP/s, each a power
of ten near the typical magnitude of the instance.  Reports convert back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import median
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model reads an Instance; it never imports the optimizer package
    from optimizer.instance import Instance



def _pow10(x: float) -> float:
    return 10.0 ** min(300, max(-300, math.floor(math.log10(x)))) if x > 0 else 1.0


@dataclass(frozen=True)
class Scaling:
    money_usd: float  # one internal money unit in USD
    compute_pflops: float  # one internal compute unit in PFLOP/s

    @classmethod
    def for_instance(cls, inst: Instance) -> Scaling:
        unit_prices = [
            c.price_usd[t] * c.chips_per_unit for c in inst.chips.values() for t in inst.years
        ]
        unit_compute = [
            c.peak_pflops * max(c.util_train, c.util_infer) * c.chips_per_unit
            for c in inst.chips.values()
        ]
        return cls(money_usd=_pow10(median(unit_prices)), compute_pflops=_pow10(median(unit_compute)))
