r"""Commitments (spec v2 section 6): the purchases and block starts of an earlier plan, held.

.. math::
    n_{g,r,t,v} = \bar n_{g,r,t}, \qquad k_{r,t,v} = \bar k_{r,t} \qquad \text{for every committed year } t
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyomo.environ as pyo

from .registry import Family, Violation, Words, declare


@dataclass(frozen=True)
class Commitments:
    """Decisions of an earlier plan to hold: units bought and blocks started in the committed years.

    ``units``: {(chip, region, year): units}; ``blocks``: {(region, year): blocks};
    ``years``: the committed years (every purchase and block start of those years is fixed,
    to 0 where the earlier plan has no row).
    """

    years: tuple[int, ...]
    units: dict = field(default_factory=dict)
    blocks: dict = field(default_factory=dict)

    def merged(self, other: Commitments | None) -> Commitments:
        """These commitments with ``other``'s added (``other`` wins where both hold a decision)."""
        if other is None:
            return self
        return Commitments(tuple(sorted(set(self.years) | set(other.years))), {**self.units, **other.units},
                           {**self.blocks, **other.blocks})


def _commit_words(x: Violation) -> Words:
    c = x.commitments
    if x.family == "commit_units":
        g, r, t = x.key
        held = c.units.get((g, r, t), 0)
        what, unit = f"{held:,} units of {g} bought in {r}", "units"
    else:
        r, t = x.key
        held = c.blocks.get((r, t), 0)
        what, unit = f"{held:,} campus blocks started in {r}", "blocks"
    allowed = held + x.move
    limit = "at most" if x.move < 0 else "at least"
    return Words(x.slack, unit, f"{x.when(t)}: the commitment of {what} cannot be held: the instance allows "
                 f"{limit} {allowed:,.0f} → change it by {x.move:+,.0f}")


declare(
    Family("commit_units", "purchases of a committed year held at the earlier plan's", "n[g,r,t] = nbar[g,r,t]",
           "units", reads=(), role="commitment", elastic_weight=1.0, words=_commit_words),
    Family("commit_blocks", "block starts of a committed year held at the earlier plan's", "k[r,t] = kbar[r,t]",
           "blocks", reads=(), role="commitment", elastic_weight=1.0, words=_commit_words),
)


def add_commitments(m, tree, c: Commitments) -> None:
    r"""commit: :math:`n_{g,r,t,v} = \bar n_{g,r,t}` and :math:`k_{r,t,v} = \bar k_{r,t}` for every committed year t.

    Rows, not fixed bounds, so that an infeasible commitment can be explained
    by the rows it makes impossible (:func:`optimizer.analysis.diagnose.explain`).
    """
    years = set(c.years)
    m.commit_units = pyo.Constraint(
        [i for i in m.N_IDX if i[2] in years],
        rule=lambda m, g, r, t, v: m.n[g, r, t, v] == c.units.get((g, r, t), 0))
    m.commit_blocks = pyo.Constraint(
        [i for i in m.K_IDX if i[1] in years],
        rule=lambda m, r, t, v: m.k[r, t, v] == c.blocks.get((r, t), 0))
