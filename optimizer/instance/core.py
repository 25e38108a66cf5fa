"""Loading and validating instance files (spec model-v1 section 1, model-v2 sections 4.1 and 5).

The boundary of capplan: a YAML file or a mapping goes in, a frozen
:class:`Instance` with every series resolved per horizon year comes out, or an
:class:`InstanceError` listing every problem with its key path.  Past this
package the data is trusted.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InstanceError, Problem
from .changes import set_path
from .data import (
    Budget,
    Chip,
    Objective,
    Power,
    Region,
    Training,
    Uncertainty,
    _freeze,
    canonical_json,
    plain,
)
from .limits import MAX_FILE_BYTES
from .loader import parse_yaml
from .models import validate_raw
from .scenarios import expand
from .tree import Scenario, ScenarioTree, tree_of


@dataclass(frozen=True)
class Instance:
    """A validated, immutable planning instance.

    Every series is resolved to a read-only ``{year: value}`` mapping covering
    each horizon year.  ``raw`` keeps the mapping it was built from, so that
    :meth:`with_changes` can re-validate a modified copy.

    With an ``uncertainty`` section (spec v2 section 4.1) the fields are those
    of the file without it (:meth:`base`), ``uncertainty`` describes the tree,
    and :meth:`scenarios` gives each scenario with its own v1 instance.

    The fields follow the file's sections (docs/model.md, "Sets and data"):
    ``name`` and ``description``; the horizon ``start`` and ``end`` years;
    ``discount_rate``; ``budget``, ``power``, ``objective`` and ``training``;
    ``regions`` and ``chips`` by id; ``serving`` (for each demand region, its
    source regions with their efficiency); ``source``, the file it was loaded
    from (None for a mapping).
    """

    name: str
    description: str
    start: int
    end: int
    discount_rate: float
    budget: Budget
    power: Power
    objective: Objective
    training: Training
    regions: Mapping[str, Region]
    chips: Mapping[str, Chip]
    serving: Mapping[str, Mapping[str, float]]
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    source: str | None = field(default=None, compare=False)
    uncertainty: Uncertainty | None = None

    @property
    def years(self) -> tuple[int, ...]:
        """The horizon's years, ``start`` to ``end``."""
        return tuple(range(self.start, self.end + 1))

    def delta(self, year: int) -> float:
        """Discount weight of ``year``: (1+rho)^-(year-start)."""
        return (1.0 + self.discount_rate) ** -(year - self.start)

    def sources(self, demand_region: str) -> Mapping[str, float]:
        """Allowed source regions of ``demand_region`` with their serving efficiency."""
        return self.serving.get(demand_region, {demand_region: 1.0})

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical JSON form of the instance data."""
        return hashlib.sha256(canonical_json(self.raw).encode()).hexdigest()

    @property
    def tree(self) -> ScenarioTree:
        """The scenario tree: stages, nodes, probabilities, the risk measure and each scenario's instance
        (the one-node tree of a v1 instance).  Built when the instance is validated."""
        tree = self.__dict__.get("_scenario_tree")
        if tree is None:  # a v1 instance, or a copy made without its tree
            tree = ScenarioTree.single(self) if self.uncertainty is None else _expand(self, plain(self.raw))
            object.__setattr__(self, "_scenario_tree", tree)
        return tree

    def base(self) -> Instance:
        """The instance without its ``uncertainty`` section (itself when it has none)."""
        return self.tree.base

    def scenarios(self) -> tuple[Scenario, ...]:
        """The scenarios of the tree, ordered by stage then by branch order in the file (Cartesian
        product), each with its id (branch ids joined by "/"), probability and validated v1 instance.

        An instance without ``uncertainty`` has one: ``Scenario("base", (), 1.0, self)``.
        """
        return self.tree.scenarios

    def with_changes(self, changes: Mapping[str, Any]) -> Instance:
        """A re-validated copy with values replaced at dotted key paths: ``changes`` maps each path to its value.

        >>> inst.with_changes({"budget.total_usd": 80e9, "regions.eu-west.max_mw": 900})

        A value of ``None`` removes the key (back to its default).  Missing
        intermediate sections are created.
        """
        raw = plain(self.raw)
        problems = []
        for path, value in changes.items():
            err = set_path(raw, path, value)
            if err:
                problems.append(Problem(path, err))
        if problems:
            raise InstanceError(problems, self.source)
        return parse_instance(raw, source=self.source)


# --------------------------------------------------------------------------- loading


def load_instance(source: str | os.PathLike | Mapping[str, Any]) -> Instance:
    """Load and validate an instance from ``source``: a YAML file path or a mapping.

    Raises :class:`InstanceError` listing every problem, each with its key path.

    >>> inst = load_instance("instances/aws-5gw-2026.yaml")
    >>> inst.years[0], inst.years[-1]
    (2026, 2035)
    """
    if isinstance(source, Mapping):
        return parse_instance(copy.deepcopy(dict(source)), source=None)
    path = Path(source)
    name = str(source)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InstanceError([Problem("", f"cannot read file: {exc.strerror}")], name) from None
    if path.is_dir():
        raise InstanceError([Problem("", "is a directory, not an instance file")], name)
    if size > MAX_FILE_BYTES:
        raise InstanceError(
            [Problem("", f"file is {size:,} bytes, above the limit of {MAX_FILE_BYTES:,}")], name
        )
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InstanceError([Problem("", f"line {line}: file is not valid UTF-8 text")], name) from None
    raw = parse_yaml(text, name)
    return parse_instance(raw, source=name)



def parse_instance(raw: dict, source: str | None = None) -> Instance:
    """Validate a raw mapping (as read from YAML) into an :class:`Instance`.

    With an ``uncertainty`` section every scenario's instance is built and
    validated too; its problems name the scenario (path ``uncertainty``).
    """
    fields, problems = validate_raw(raw)
    if problems:
        raise InstanceError(problems, source)
    inst = Instance(**fields, raw=_freeze(raw), source=source)
    if inst.uncertainty is not None:
        _expand(inst, raw, fields)
    return inst


def _expand(inst: Instance, raw: dict, fields: dict | None = None) -> ScenarioTree:
    """Build, validate and keep the base instance, the scenarios and the tree of an instance with a tree."""
    base_raw = {k: v for k, v in raw.items() if k != "uncertainty"}
    if fields is None:
        base = parse_instance(base_raw, source=inst.source)
    else:
        base = Instance(**{**fields, "uncertainty": None}, raw=_freeze(base_raw), source=inst.source)
    scenarios, revealed, problems = expand(base, inst.uncertainty, lambda r: parse_instance(r, source=inst.source))
    if problems:
        raise InstanceError(problems, inst.source)
    tree = tree_of(inst, base, inst.uncertainty, scenarios, revealed)
    object.__setattr__(inst, "_scenario_tree", tree)
    return tree
