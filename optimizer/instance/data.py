"""The frozen data of a validated instance (every series resolved per horizon year), and raw-data helpers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Series = Mapping[int, float]  # resolved: one value per horizon year


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Installed:
    region: str
    year: int
    chips: float


@dataclass(frozen=True)
class Region:
    id: str
    pue: float
    electricity_usd_per_mwh: Series
    existing_mw: float
    max_mw: Series | None
    block_mw: float
    block_capex_usd: Series
    build_lead_years: int
    inference_demand_pflops: Series


@dataclass(frozen=True)
class Chip:
    id: str
    chips_per_unit: int
    available_from: int
    available_until: int
    price_usd: Series
    power_w: float
    peak_pflops: float
    util_train: float
    util_infer: float
    lifetime_years: int
    opex_usd_per_chip_year: float
    supply_units: Series | None
    installed: tuple[Installed, ...]

    def purchasable(self, year: int) -> bool:
        return self.available_from <= year <= self.available_until

    def installed_chips(self, region: str, year: int) -> float:
        """Chips bought before the horizon still in service in ``year``."""
        return sum(
            e.chips
            for e in self.installed
            if e.region == region and e.year <= year <= e.year + self.lifetime_years - 1
        )


@dataclass(frozen=True)
class Budget:
    total_usd: float | None = None
    annual_max_usd: Series | None = None


@dataclass(frozen=True)
class Power:
    ceiling_mw: Series | None = None


@dataclass(frozen=True)
class Objective:
    kind: str = "max_training"
    unmet_penalty: float | None = None
    cost_weight: float = 0.0
    end_of_horizon: str = "truncate"  # or "salvage" (spec v2 section 5)


@dataclass(frozen=True)
class Training:
    min_pflops: Series
    frontier_cluster_pflops: Series


# --------------------------------------------------------------------------- scenario trees (spec v2 4.1)


@dataclass(frozen=True)
class Branch:
    """One outcome of a stage: its probability given the stages before, and its changes.

    ``changes`` maps a dotted path as written (``*`` included) to a plain value,
    a :class:`~optimizer.instance.changes.Factor` or a :class:`~optimizer.instance.changes.Shift`.
    """

    id: str
    probability: float
    changes: Mapping[str, Any]


@dataclass(frozen=True)
class Stage:
    """What becomes known at the start of ``year``: decisions of earlier years are shared by its branches."""

    year: int
    name: str | None
    branches: tuple[Branch, ...]


@dataclass(frozen=True)
class Uncertainty:
    stages: tuple[Stage, ...]
    cvar_alpha: float  # alpha in [0, 1)
    risk_weight: float  # w in [0, 1]; 0 is risk neutral


class FrozenDict(dict):
    """A read-only dict: the mappings of a validated instance (series, regions, chips, raw data).

    Reading is a plain dict's; every write raises.  Unlike a ``MappingProxyType``
    it pickles and deep-copies, so instances travel to worker processes and
    Dask workers as they are, without being validated again.
    """

    __slots__ = ()

    def _read_only(self, *args, **kwargs):
        raise TypeError("instance data is read-only: use Instance.with_changes for a changed copy")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _read_only

    def __reduce_ex__(self, protocol):
        return (type(self), (dict(self),))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        from copy import deepcopy

        return type(self)({k: deepcopy(v, memo) for k, v in self.items()})

    def __hash__(self):  # read-only, so hashable like a frozenset of its items
        return hash(frozenset(self.items()))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


def _ro(d):
    return None if d is None else FrozenDict(d)


def _freeze(obj):
    """Deep read-only view of a raw mapping."""
    if isinstance(obj, dict):
        return FrozenDict({k: _freeze(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return tuple(_freeze(v) for v in obj)
    return obj


def plain(obj):
    """Raw instance data (read-only mappings, tuples) as plain dicts and lists, for YAML, pickling and edits."""
    if isinstance(obj, Mapping):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def canonical_json(obj) -> str:
    def norm(o):
        if isinstance(o, Mapping):
            return {str(k): norm(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [norm(v) for v in o]
        return o

    return json.dumps(norm(obj), sort_keys=True, separators=(",", ":"), default=str)

