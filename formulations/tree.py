r"""The scenario tree the program is written over (spec model-v2, section 4.2).

A scenario is a path of nodes, one per year: the node of scenario s in year t
is the tuple of s's branches at the stages whose year is <= t, written as the
branch ids joined with ``/`` (``""`` is the root, shared by every scenario in
the years before the first stage).  Every v1 variable of year t exists once
per node of year t; scenarios through the same node share it
(non-anticipativity by construction, not by equality rows).

A v1 instance (no ``uncertainty`` section) is the one-scenario tree: a single
root node in every year, so the v1 program is the special case of the same code.

Data: scenarios that share the node of year t have the same data for year t
(the change rules of spec section 4.1 guarantee it), so a node's data is read
from any scenario through it; :meth:`Tree.data` returns the first.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model reads an Instance; it never imports the optimizer package
    from optimizer.instance import Instance

ROOT = ""


@dataclass(frozen=True)
class TreeScenario:
    """One scenario: its id, its branch at each stage, its probability and its own v1 instance."""

    id: str
    branches: tuple[str, ...]
    probability: float
    instance: Instance


@dataclass
class Tree:
    start: int
    end: int
    stage_years: tuple[int, ...]
    scenarios: tuple[TreeScenario, ...]
    cvar_alpha: float = 0.0
    risk_weight: float = 0.0
    # derived
    node_years: list[tuple[int, str]] = field(init=False)  # every (year, node), by year then scenario order
    probability: dict[str, float] = field(init=False)  # node -> probability of reaching it
    through: dict[str, list[str]] = field(init=False)  # node -> ids of the scenarios through it
    _data: dict[str, Instance] = field(init=False, repr=False)
    _by_id: dict[str, TreeScenario] = field(init=False, repr=False)

    def __post_init__(self):
        self.node_years, self.probability, self.through, self._data = [], {}, {}, {}
        self._by_id = {s.id: s for s in self.scenarios}
        seen = set()
        for t in self.years:
            for s in self.scenarios:
                v = self.node_of(s, t)
                if (t, v) not in seen:
                    seen.add((t, v))
                    self.node_years.append((t, v))
        for s in self.scenarios:
            for v in dict.fromkeys(self.node_of(s, t) for t in self.years):
                self.probability[v] = self.probability.get(v, 0.0) + s.probability
                self.through.setdefault(v, []).append(s.id)
                self._data.setdefault(v, s.instance)

    # ------------------------------------------------------------------ construction

    @classmethod
    def of(cls, inst: Instance) -> Tree:
        """The tree of an instance: its scenario tree, or the one-node tree of a v1 instance."""
        unc = getattr(inst, "uncertainty", None)
        if unc is None:
            return cls(inst.start, inst.end, (), (TreeScenario("base", (), 1.0, inst),))
        scenarios = tuple(TreeScenario(s.id, tuple(s.branches), s.probability, s.instance)
                          for s in inst.scenarios())
        return cls(inst.start, inst.end, tuple(st.year for st in unc.stages), scenarios,
                   unc.cvar_alpha, unc.risk_weight)

    # ------------------------------------------------------------------ queries

    @property
    def years(self) -> range:
        return range(self.start, self.end + 1)

    @property
    def trivial(self) -> bool:
        """One scenario and one node a year: the v1 program."""
        return len(self.scenarios) == 1 and not self.stage_years

    @property
    def risk(self) -> bool:
        return self.risk_weight > 0

    def depth(self, year: int) -> int:
        """How many stages are revealed by the start of ``year``."""
        return bisect.bisect_right(self.stage_years, year)

    def node_of(self, s: TreeScenario | str, year: int) -> str:
        s = self._by_id[s] if isinstance(s, str) else s
        return "/".join(s.branches[: self.depth(year)])

    def ancestor(self, node: str, year: int) -> str:
        """The node of ``year`` on the path through ``node`` (``year`` not after ``node``'s years)."""
        k = self.depth(year)
        return "/".join(node.split("/")[:k]) if k else ROOT

    def path(self, s: TreeScenario | str) -> dict[int, str]:
        """Scenario ``s``'s node in each year."""
        return {t: self.node_of(s, t) for t in self.years}

    def scenario(self, sid: str) -> TreeScenario:
        return self._by_id[sid]

    def data(self, node: str) -> Instance:
        """The data of ``node`` (the instance of the first scenario through it)."""
        return self._data[node]

    def instances_through(self, node: str) -> list[Instance]:
        return [self._by_id[s].instance for s in self.through[node]]

    def nodes(self, year: int) -> list[str]:
        return [v for t, v in self.node_years if t == year]

    def label(self, year: int, node: str) -> str:
        """How a node-year is named in messages: the year, and the node when the tree has branches."""
        return str(year) if self.trivial else f"{year} [{node or 'root'}]"


def cvar(values: list[float], probabilities: list[float], alpha: float, maximize: bool) -> float:
    """The conditional value at risk of a discrete distribution (spec v2 section 4.2).

    max_training (``maximize``): the probability-weighted mean of the worst (lowest) ``1 - alpha`` of
    probability mass, CVaR- = max over eta of eta - 1/(1-alpha) sum_s p_s max(0, eta - O_s);
    min_cost: the mean of the highest ``1 - alpha``, CVaR+ = min over eta of eta + 1/(1-alpha) sum_s
    p_s max(0, O_s - eta).  A scenario at the boundary counts with the part of its mass inside.
    """
    order = sorted(zip(values, probabilities), key=lambda vp: vp[0], reverse=not maximize)
    mass = 1.0 - alpha
    left, total = mass, 0.0
    for value, p in order:
        take = min(p, left)
        total += take * value
        left -= take
        if left <= 1e-15:
            break
    return total / mass


def risk_measure(values: list[float], probabilities: list[float], alpha: float, weight: float,
                 maximize: bool) -> float:
    """(1 - w) E + w CVaR: the objective of spec v2 section 4.2 applied to scenario values."""
    expected = sum(p * v for v, p in zip(values, probabilities))
    if weight <= 0:
        return expected
    return (1 - weight) * expected + weight * cvar(values, probabilities, alpha, maximize)
