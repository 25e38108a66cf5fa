"""The scenario tree of an instance (spec model-v2 sections 4.1-4.3): its one owner.

A scenario is a path of nodes, one per year: the node of scenario s in year t
is the tuple of s's branches at the stages whose year is <= t, written as the
branch ids joined with ``/`` (``""`` is the root, shared by every scenario in
the years before the first stage).  Every v1 decision of year t exists once
per node of year t; scenarios through the same node share it
(non-anticipativity by construction, not by equality rows).

A v1 instance (no ``uncertainty`` section) is the one-scenario tree: a single
root node in every year, so the v1 program is the special case of the same code.

Data: scenarios that share the node of year t have the same data for year t
(the change rules of spec section 4.1 guarantee it), so a node's data is read
from any scenario through it; :meth:`ScenarioTree.data` returns the first.

:meth:`ScenarioTree.given` conditions the tree on a revealed history (the
branches taken at the first stages): the subtree that follows it, with its
scenarios' instances and conditional probabilities, or the one-node tree of a
scenario once every stage is revealed.

This module reads instances but never builds or validates one: an
:class:`~optimizer.instance.core.Instance` owns its tree (``inst.tree``).
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .data import Branch, Stage, Uncertainty, _freeze, plain

ROOT = ""


@dataclass(frozen=True)
class Scenario:
    """A path through the tree: ``id`` joins its branch ids with "/" (``high/late``), ``probability`` is
    the product of theirs, ``instance`` is its own validated v1 instance."""

    id: str
    branches: tuple[str, ...]
    probability: float
    instance: Any  # an Instance (not imported: the instance owns its tree, not the reverse)


class ScenarioTree:
    """Stages, nodes, node-years, probabilities, the risk measure and the scenario instances of an instance.

    ``instance`` is the instance the tree belongs to (with its ``uncertainty``
    section, or the v1 instance itself); ``base`` is that instance without
    the section.  Built once per instance (``inst.tree``) and immutable.
    """

    def __init__(self, instance, base, stages: Sequence[Stage], scenarios: Sequence[Scenario],
                 cvar_alpha: float = 0.0, risk_weight: float = 0.0, revealed: dict | None = None):
        self.instance = instance
        self._revealed = dict(revealed or {"": base})
        self.base = base
        self.stages = tuple(stages)
        self.scenarios = tuple(scenarios)
        self.cvar_alpha = cvar_alpha
        self.risk_weight = risk_weight
        self.start, self.end = base.start, base.end
        self.stage_years = tuple(st.year for st in self.stages)
        self.node_years: list[tuple[int, str]] = []  # every (year, node), by year then scenario order
        self.probability: dict[str, float] = {}  # node -> probability of reaching it
        self.through: dict[str, list[str]] = {}  # node -> ids of the scenarios through it
        self._data: dict[str, Any] = {}
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

    @staticmethod
    def of(instance) -> ScenarioTree:
        """The tree of ``instance`` (``instance.tree``): its scenario tree, or the one-node tree of a v1 file."""
        return instance.tree

    @classmethod
    def single(cls, instance) -> ScenarioTree:
        """The one-node tree of a v1 instance: one scenario, ``base``, with probability 1."""
        return cls(instance, instance, (), (Scenario("base", (), 1.0, instance),))

    def __repr__(self) -> str:
        return (f"ScenarioTree({self.base.name!r}, {len(self.scenarios)} scenario"
                f"{'s' if len(self.scenarios) != 1 else ''}, stages {list(self.stage_years)})")

    # ------------------------------------------------------------------ the tree

    @property
    def years(self) -> range:
        return range(self.start, self.end + 1)

    @property
    def trivial(self) -> bool:
        """One scenario and one node a year: the v1 program."""
        return len(self.scenarios) == 1 and not self.stage_years

    @property
    def risk(self) -> bool:
        """Whether the objective mixes in CVaR (a risk weight above 0)."""
        return self.risk_weight > 0

    @property
    def first_stage_year(self) -> int | None:
        """The year of the first stage: decisions of the years before it are shared by every scenario."""
        return self.stage_years[0] if self.stage_years else None

    @property
    def root_years(self) -> tuple[int, ...]:
        """The years before the first stage (what to commit now); every year for a v1 instance."""
        first = self.first_stage_year
        return tuple(t for t in self.years if first is None or t < first)

    def depth(self, year: int) -> int:
        """How many stages are revealed by the start of ``year``."""
        return bisect.bisect_right(self.stage_years, year)

    def node_of(self, s: Scenario | str, year: int) -> str:
        """Scenario ``s``'s node in ``year``."""
        s = self._by_id[s] if isinstance(s, str) else s
        return "/".join(s.branches[: self.depth(year)])

    def ancestor(self, node: str, year: int) -> str:
        """The node of ``year`` on the path through ``node`` (``year`` not after ``node``'s years)."""
        k = self.depth(year)
        return "/".join(node.split("/")[:k]) if k else ROOT

    def path(self, s: Scenario | str) -> dict[int, str]:
        """Scenario ``s``'s node in each year."""
        return {t: self.node_of(s, t) for t in self.years}

    def scenario(self, sid: str) -> Scenario:
        """The scenario with id ``sid`` (a KeyError naming the ids otherwise)."""
        try:
            return self._by_id[sid]
        except KeyError:
            raise KeyError(f"no scenario {sid!r}; the tree has {', '.join(self._by_id)}") from None

    def data(self, node: str):
        """The data of ``node`` (the instance of the first scenario through it)."""
        return self._data[node]

    def revealed(self, node: str):
        """What is known at ``node``: the base data with the changes of the node's own branches only (the
        stages revealed by then), as a v1 instance.  A leaf's is its scenario's instance."""
        return self._revealed[node]

    def instances_through(self, node: str) -> list:
        """The instances of the scenarios through ``node``."""
        return [self._by_id[s].instance for s in self.through[node]]

    def nodes(self, year: int) -> list[str]:
        """The nodes of ``year``."""
        return [v for t, v in self.node_years if t == year]

    def node_years_of(self, node: str) -> tuple[int, ...]:
        """The years in which ``node`` is the node of its scenarios."""
        return tuple(t for t, v in self.node_years if v == node)

    def label(self, year: int, node: str) -> str:
        """How a node-year is named in messages: the year, and the node when the tree has branches."""
        return str(year) if self.trivial else f"{year} [{node or 'root'}]"

    # ------------------------------------------------------------------ the risk measure (spec v2 4.2)

    @property
    def maximize(self) -> bool:
        return self.base.objective.kind == "max_training"

    def expected(self, values: Mapping[str, float]) -> float:
        """The probability-weighted mean of per-scenario ``values`` ({scenario id: value})."""
        return sum(s.probability * values[s.id] for s in self.scenarios)

    def cvar(self, values: Mapping[str, float]) -> float:
        """CVaR at ``cvar_alpha`` of per-scenario ``values`` in the objective's bad tail (:func:`cvar`)."""
        return cvar([values[s.id] for s in self.scenarios], [s.probability for s in self.scenarios],
                    self.cvar_alpha, self.maximize)

    def risk_measure(self, values: Mapping[str, float]) -> float:
        """(1 - w) E + w CVaR of per-scenario ``values``: the tree's objective (spec v2 section 4.2)."""
        return risk_measure([values[s.id] for s in self.scenarios], [s.probability for s in self.scenarios],
                            self.cvar_alpha, self.risk_weight, self.maximize)

    # ------------------------------------------------------------------ conditioning

    def given(self, history: Sequence[str]) -> ScenarioTree:
        """The tree that follows a revealed ``history`` (the branch ids of the first stages, in order).

        The stages of ``history`` keep their place with the one branch taken
        (probability 1), so node ids and years are those of this tree; the
        scenarios are the ones through that history, with probabilities
        conditional on it; their instances are this tree's (validated once).
        Once every stage is revealed it is the one-node tree of that scenario's
        v1 instance.  ``given(())`` is the tree itself.
        """
        history = tuple(history)
        if not history:
            return self
        if len(history) > len(self.stages):
            raise ValueError(f"a history of {len(history)} branches, but the tree has {len(self.stages)} stages")
        for i, (stage, b) in enumerate(zip(self.stages, history)):
            if b not in {x.id for x in stage.branches}:
                raise KeyError(f"stage {i} ({stage.year}) has no branch {b!r}; it has "
                               f"{', '.join(x.id for x in stage.branches)}")
        if len(history) == len(self.stages):
            return self.scenario("/".join(history)).instance.tree
        inside = [s for s in self.scenarios if s.branches[: len(history)] == history]
        mass = sum(s.probability for s in inside)
        scenarios = [dataclasses.replace(s, probability=s.probability / mass) for s in inside]
        stages = tuple(
            Stage(st.year, st.name, (Branch(b, 1.0, next(x.changes for x in st.branches if x.id == b)),))
            if i < len(history) else st
            for i, (st, b) in enumerate(zip(self.stages, history + (None,) * len(self.stages))))
        unc = Uncertainty(stages, self.cvar_alpha, self.risk_weight)
        raw = plain(self.instance.raw)
        for i, b in enumerate(history):
            branches = raw["uncertainty"]["stages"][i]["branches"]
            branches = {b: {**(branches[b] or {}), "probability": 1.0}}
            raw["uncertainty"]["stages"][i]["branches"] = branches
        sub = dataclasses.replace(self.instance, uncertainty=unc, raw=_freeze(raw))
        def on_path(v: str) -> bool:  # an ancestor of the history, or a node below it
            parts = tuple(v.split("/")) if v else ()
            k = min(len(parts), len(history))
            return parts[:k] == history[:k]

        revealed = {v: x for v, x in self._revealed.items() if on_path(v)}
        tree = ScenarioTree(sub, self.base, stages, scenarios, self.cvar_alpha, self.risk_weight, revealed)
        object.__setattr__(sub, "_scenario_tree", tree)
        return tree


def tree_of(instance, base, uncertainty: Uncertainty | None, scenarios: Sequence[Scenario],
            revealed: dict | None = None) -> ScenarioTree:
    """The tree of ``instance``: its scenario tree, or the one-node tree of a v1 instance."""
    if uncertainty is None:
        return ScenarioTree.single(instance)
    return ScenarioTree(instance, base, uncertainty.stages, scenarios, uncertainty.cvar_alpha,
                        uncertainty.risk_weight, revealed)


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


def weighted_quantile(values, weights, q: float) -> float:
    """The lower inverse of a discrete weighted distribution: the smallest value whose cumulative weight
    reaches ``q`` of the total (P10 is ``q=0.1``).  Values may be infinite (an infeasible outcome)."""
    pairs = sorted(zip(values, weights), key=lambda vw: vw[0])
    total = sum(w for _, w in pairs)
    cum = 0.0
    for value, w in pairs:
        cum += w
        if cum >= q * total - 1e-12 * total:
            return float(value)
    return float(pairs[-1][0])
