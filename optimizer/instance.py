"""Loading and validating instance files (spec model-v1, section 1).

The boundary of capplan: a YAML file or a mapping goes in, a frozen
:class:`Instance` with every series resolved per horizon year comes out, or an
:class:`InstanceError` listing every problem with its key path.  Past this
module the data is trusted.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from .errors import InstanceError, Problem

# Limits that protect the machine from absurd inputs (documented in docs/model.md).
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_HORIZON_YEARS = 100
MAX_REGIONS = 200
MAX_CHIPS = 100
MAX_YAML_NODES = 500_000  # values in the YAML document, aliases expanded (the largest instance the
#                            other limits allow, every series listed year by year, has ~290,000)
YEAR_RANGE = (1900, 2200)
MAX_MAGNITUDE = 1e16  # no input number (resolved series included) may exceed this in absolute value:
#                        far above any real quantity (the default budget is 1e11 USD), low enough that
#                        products of two inputs (price x chips per unit, ...) stay finite in floating point
MIN_MAGNITUDE = 1e-12  # nor may a nonzero one be smaller: its products would underflow towards zero

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


@dataclass(frozen=True)
class Training:
    min_pflops: Series
    frontier_cluster_pflops: Series


@dataclass(frozen=True)
class Instance:
    """A validated, immutable planning instance.

    Every series is resolved to a read-only ``{year: value}`` mapping covering
    each horizon year.  ``raw`` keeps the mapping it was built from, so that
    :meth:`with_changes` can re-validate a modified copy.
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

    @property
    def years(self) -> tuple[int, ...]:
        return tuple(range(self.start, self.end + 1))

    def delta(self, year: int) -> float:
        """Discount weight (1+rho)^-(t-start)."""
        return (1.0 + self.discount_rate) ** -(year - self.start)

    def sources(self, demand_region: str) -> Mapping[str, float]:
        """Allowed source regions of a demand region with their efficiency."""
        return self.serving.get(demand_region, {demand_region: 1.0})

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical JSON form of the instance data."""
        return hashlib.sha256(canonical_json(self.raw).encode()).hexdigest()

    def with_changes(self, changes: Mapping[str, Any]) -> Instance:
        """A re-validated copy with values replaced at dotted key paths.

        >>> inst.with_changes({"budget.total_usd": 80e9, "regions.eu-west.max_mw": 900})

        A value of ``None`` removes the key (back to its default).  Missing
        intermediate sections are created.
        """
        raw = plain(self.raw)
        problems = []
        for path, value in changes.items():
            err = _set_path(raw, path, value)
            if err:
                problems.append(Problem(path, err))
        if problems:
            raise InstanceError(problems, self.source)
        return parse_instance(raw, source=self.source)


# --------------------------------------------------------------------------- loading


class _YAMLLimitError(yaml.composer.ComposerError):
    """The document is too big once aliases are expanded, or refers to itself."""


try:  # libyaml reads the events, ten times faster than pure Python
    from yaml.cyaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CParser = None

if _CParser is not None:

    class _SafeBase(_CParser, yaml.composer.Composer, yaml.constructor.SafeConstructor,
                    yaml.resolver.Resolver):
        def __init__(self, stream):
            _CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

else:  # pragma: no cover - PyYAML built without libyaml
    _SafeBase = yaml.SafeLoader


class _UniqueKeyLoader(_SafeBase):
    """Safe YAML loader that rejects duplicate keys (a silent overwrite hides typos).

    Only the safe constructors exist (no Python tags).  Nodes are composed in
    Python from the parser's events so that a document of more than
    :data:`MAX_YAML_NODES` values is stopped while it is read, and one whose
    aliases expand beyond that (a "billion laughs" bomb) or refer to a node
    that contains them is rejected before any object is built.  A scalar that
    cannot be read as its tag (``!!int abc``, ``2026-02-30``) is a YAML error
    with its line rather than a Python error.
    """

    _nodes = 0

    def get_single_node(self):
        return yaml.composer.Composer.get_single_node(self)

    def compose_node(self, parent, index):
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise _YAMLLimitError(None, None, f"the document has more than {MAX_YAML_NODES:,} values",
                                  self.peek_event().start_mark)
        return yaml.composer.Composer.compose_node(self, parent, index)

    def compose_document(self):
        node = yaml.composer.Composer.compose_document(self)
        _check_expansion(node)
        return node

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except (yaml.YAMLError, RecursionError):
            raise
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError):
            kind = str(node.tag).rsplit(":", 1)[-1]
            shown = _repr(node.value) if isinstance(node, yaml.ScalarNode) else "the value"
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {shown} as {kind}", node.start_mark
            ) from None


def _check_expansion(root) -> None:
    """Count the values of a composed document with aliases expanded, without expanding them."""
    sizes: dict[int, int] = {}  # id(node) -> values in its expanded subtree
    open_nodes: set[int] = set()  # nodes being counted (ancestors of the current one)
    stack = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        if finished:
            open_nodes.discard(key)
            total = 1 + sum(sizes[id(c)] for c in children)
            if total > MAX_YAML_NODES:
                raise _YAMLLimitError(
                    None, None,
                    f"the document has more than {MAX_YAML_NODES:,} values once its aliases are "
                    "expanded (an alias bomb?)", node.start_mark)
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise _YAMLLimitError(None, None, "an alias refers to a node that contains it "
                                  "(a recursive document)", node.start_mark)
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)


def _construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            continue  # the default constructor reports unhashable keys
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {_repr(key)}",
                key_node.start_mark,
            )
        seen[key] = True
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def load_instance(source: str | os.PathLike | Mapping[str, Any]) -> Instance:
    """Load and validate an instance from a YAML file path or a mapping.

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


def parse_yaml(text: str, name: str = "instance") -> dict:
    """Parse YAML text into a mapping, turning syntax errors into an InstanceError with the line."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - safe constructors only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = getattr(exc, "problem", None) or str(exc)
        ctx = getattr(exc, "context", None)
        if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int):
            where = f"line {text[: exc.position].count(chr(10)) + 1}: "
            what = f"unacceptable character #x{exc.character:04x}: {exc.reason}"
        if isinstance(exc, _YAMLLimitError):
            raise InstanceError([Problem("", f"{where}{what}")], name) from None
        msg = f"{where}not valid YAML: {what}" + (f" ({ctx})" if ctx else "")
        raise InstanceError([Problem("", msg)], name) from None
    except RecursionError:
        raise InstanceError([Problem("", "YAML nesting is too deep")], name) from None
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError) as exc:
        # a constructor failing outside construct_object (not expected; never a traceback)
        raise InstanceError([Problem("", f"not valid YAML: {type(exc).__name__}: {exc}")], name) from None
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else type(raw).__name__
        raise InstanceError(
            [Problem("", f"line 1: the file must be a YAML mapping of sections, got {kind}")], name
        )
    return raw


# --------------------------------------------------------------------------- validation

_TOP = {
    "name", "description", "horizon", "discount_rate", "budget", "power",
    "objective", "training", "regions", "chips", "serving",
}
_REGION_REQUIRED = {"pue", "electricity_usd_per_mwh", "block_mw", "block_capex_usd",
                    "build_lead_years"}
_REGION_OPTIONAL = {"existing_mw", "max_mw", "inference_demand_pflops"}
_CHIP_REQUIRED = {"price_usd", "power_w", "peak_pflops", "utilization", "lifetime_years"}
_CHIP_OPTIONAL = {"chips_per_unit", "available_from", "available_until",
                  "opex_usd_per_chip_year", "supply_units", "installed"}
_OBJECTIVE_KINDS = ("max_training", "min_cost")


class _Checker:
    """Collects problems while walking the raw mapping."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def err(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    # -- structure
    def mapping(self, value, path, required=(), optional=(), what="a mapping"):
        """Check ``value`` is a mapping with only known keys; report missing required keys."""
        if not isinstance(value, dict):
            self.err(path, f"must be {what}, got {_describe(value)}")
            return None
        allowed = set(required) | set(optional)
        for key in value:
            if key not in allowed:
                hint = difflib.get_close_matches(_key_text(key), sorted(allowed), n=1)
                extra = f"; did you mean '{hint[0]}'?" if hint else f" (allowed: {', '.join(sorted(allowed))})"
                self.err(_join(path, key), f"unknown key{extra}")
        for key in sorted(required):
            if key not in value or value[key] is None:
                self.err(_join(path, key), "required key is missing")
        return value

    # -- scalars
    def number(self, value, path, *, gt=None, ge=None, le=None, integer=False):
        """A finite number (YAML number or numeric string) within bounds, else None."""
        if isinstance(value, bool) or value is None:
            self.err(path, f"must be a number, got {_describe(value)}")
            return None
        if isinstance(value, str):
            try:
                num = float(value.strip())
            except ValueError:
                self.err(path, f"must be a number, got {_describe(value)}")
                return None
        elif isinstance(value, (int, float)):
            num = value
        else:
            self.err(path, f"must be a number, got {_describe(value)}")
            return None
        if isinstance(num, int) and not integer:
            try:
                num = float(num)
            except OverflowError:
                num = math.inf
        if isinstance(num, float) and not math.isfinite(num):
            self.err(path, f"must be a finite number, got {_repr(value)}")
            return None
        if integer and not isinstance(num, int):
            if not float(num).is_integer():
                self.err(path, f"must be an integer, got {_repr(value)}")
                return None
            num = int(num)
        elif not integer:
            num = float(num)
        shown = _fmt(value)
        if gt is not None and not num > gt:
            self.err(path, f"must be > {_fmt(gt)}, got {shown}")
            return None
        if ge is not None and not num >= ge:
            self.err(path, f"must be >= {_fmt(ge)}, got {shown}")
            return None
        if le is not None and not num <= le:
            self.err(path, f"must be <= {_fmt(le)}, got {shown}")
            return None
        if abs(num) > MAX_MAGNITUDE:
            self.err(path, f"must be at most {MAX_MAGNITUDE:.0e} in magnitude, got {_repr(value)}")
            return None
        if num and abs(num) < MIN_MAGNITUDE:
            self.err(path, f"must be 0 or at least {MIN_MAGNITUDE:.0e} in magnitude, got {_repr(value)}")
            return None
        return num

    def year(self, value, path):
        return self.number(value, path, integer=True, ge=YEAR_RANGE[0], le=YEAR_RANGE[1])

    def text(self, value, path):
        if not isinstance(value, str) or not value.strip():
            self.err(path, f"must be a non-empty string, got {_describe(value)}")
            return None
        return value

    # -- series
    def series(self, value, path, years, **bounds) -> dict[int, float] | None:
        """Resolve a series (scalar, year mapping, or growth form) to one value per year."""
        if isinstance(value, dict):
            if "start" in value or "growth" in value:
                return self._growth(value, path, years, **bounds)
            return self._year_map(value, path, years, **bounds)
        if isinstance(value, list):
            self.err(path, "must be a number, a {year: value} mapping or {start, growth}, got a list")
            return None
        v = self.number(value, path, **bounds)
        return None if v is None else {t: v for t in years}

    def _growth(self, value, path, years, **bounds):
        self.mapping(value, path, required=("start", "growth"))
        if "start" not in value or "growth" not in value:
            return None
        v0 = self.number(value["start"], _join(path, "start"), **bounds)
        g = self.number(value["growth"], _join(path, "growth"), gt=-1)
        if v0 is None or g is None or not years:
            return None
        out = {}
        for t in years:
            try:
                out[t] = v0 * (1.0 + g) ** (t - years[0])
            except OverflowError:
                out[t] = math.inf
            if not abs(out[t]) <= MAX_MAGNITUDE:
                self.err(path, f"grows beyond {MAX_MAGNITUDE:.0e} by {t}")
                return None
            if out[t] and abs(out[t]) < MIN_MAGNITUDE:
                self.err(path, f"shrinks below {MIN_MAGNITUDE:.0e} by {t}")
                return None
        return out

    def _year_map(self, value, path, years, **bounds):
        if not value:
            self.err(path, "a {year: value} mapping needs at least one year")
            return None
        points = {}
        for key, v in value.items():
            kpath = _join(path, key)
            year = _as_year(key)
            if year is None:
                self.err(kpath, f"series year must be an integer year, got {_repr(key)}")
                continue
            num = self.number(v, kpath, **bounds)
            if num is not None:
                points[year] = num
        if len(points) != len(value):
            return None
        return {t: _interpolate(points, t) for t in years}


def _as_year(key) -> int | None:
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        year = key
    elif isinstance(key, str):
        text = key.strip()
        digits = text[1:] if text.startswith("-") else text
        if not digits.isdigit() or len(digits) > 6:
            return None
        try:
            year = int(text)
        except ValueError:  # digits int() does not read, such as superscripts
            return None
    else:
        return None
    return year if YEAR_RANGE[0] <= year <= YEAR_RANGE[1] else None


def _interpolate(points: dict[int, float], t: int) -> float:
    """Linear between listed years, flat before the first and after the last."""
    ys = sorted(points)
    if t <= ys[0]:
        return points[ys[0]]
    if t >= ys[-1]:
        return points[ys[-1]]
    for a, b in zip(ys, ys[1:]):
        if a <= t <= b:
            w = (t - a) / (b - a)
            return points[a] + w * (points[b] - points[a])
    raise AssertionError("unreachable")


def parse_instance(raw: dict, source: str | None = None) -> Instance:
    """Validate a raw mapping (as read from YAML) into an :class:`Instance`."""
    c = _Checker()
    c.mapping(raw, "", required=("name", "horizon", "regions", "chips"), optional=_TOP)

    name = c.text(raw.get("name"), "name") if raw.get("name") is not None else None
    description = raw.get("description") or ""
    if not isinstance(description, str):
        c.err("description", f"must be a string, got {_describe(description)}")
        description = ""

    # horizon first: every series needs it
    years: tuple[int, ...] = ()
    start = end = None
    h = raw.get("horizon")
    if h is not None and c.mapping(h, "horizon", required=("start", "end")) is not None:
        start = c.year(h.get("start"), "horizon.start") if "start" in h else None
        end = c.year(h.get("end"), "horizon.end") if "end" in h else None
        if start is not None and end is not None:
            if end < start:
                c.err("horizon.end", f"must be >= horizon.start ({start}), got {end}")
            elif end - start + 1 > MAX_HORIZON_YEARS:
                c.err("horizon", f"{end - start + 1} years is above the limit of {MAX_HORIZON_YEARS}")
            else:
                years = tuple(range(start, end + 1))

    rho = 0.0
    if raw.get("discount_rate") is not None:
        rho = c.number(raw["discount_rate"], "discount_rate", ge=0) or 0.0

    budget = _budget(c, raw.get("budget"), years)
    power = _power(c, raw.get("power"), years)
    objective = _objective(c, raw.get("objective"))
    training = _training(c, raw.get("training"), years)
    regions, region_ids = _regions(c, raw.get("regions"), years)
    chips = _chips(c, raw.get("chips"), years, region_ids, start)
    serving = _serving(c, raw.get("serving"), region_ids)

    if c.problems:
        raise InstanceError(c.problems, source)
    return Instance(
        name=name,
        description=description,
        start=start,
        end=end,
        discount_rate=rho,
        budget=budget,
        power=power,
        objective=objective,
        training=training,
        regions=MappingProxyType(regions),
        chips=MappingProxyType(chips),
        serving=MappingProxyType({d: MappingProxyType(s) for d, s in serving.items()}),
        raw=_freeze(raw),
        source=source,
    )


def _budget(c: _Checker, b, years) -> Budget:
    if b is None:
        return Budget()
    if c.mapping(b, "budget", optional=("total_usd", "annual_max_usd")) is None:
        return Budget()
    total = c.number(b["total_usd"], "budget.total_usd", ge=0) if b.get("total_usd") is not None else None
    annual = None
    if b.get("annual_max_usd") is not None:
        annual = _ro(c.series(b["annual_max_usd"], "budget.annual_max_usd", years, ge=0))
    return Budget(total, annual)


def _power(c: _Checker, p, years) -> Power:
    if p is None or c.mapping(p, "power", optional=("ceiling_mw",)) is None:
        return Power()
    if p.get("ceiling_mw") is None:
        return Power()
    return Power(_ro(c.series(p["ceiling_mw"], "power.ceiling_mw", years, ge=0)))


def _objective(c: _Checker, o) -> Objective:
    if o is None or c.mapping(o, "objective", optional=("kind", "unmet_penalty", "cost_weight")) is None:
        return Objective()
    kind = o.get("kind", "max_training")
    if kind not in _OBJECTIVE_KINDS:
        c.err("objective.kind", f"must be one of {', '.join(_OBJECTIVE_KINDS)}, got {_repr(kind)}")
        kind = "max_training"
    lam = None
    if o.get("unmet_penalty") is not None:
        lam = c.number(o["unmet_penalty"], "objective.unmet_penalty", ge=0)
    eps = 0.0
    if o.get("cost_weight") is not None:
        eps = c.number(o["cost_weight"], "objective.cost_weight", ge=0) or 0.0
        if eps and kind == "min_cost":
            c.err("objective.cost_weight", "applies to kind max_training only; remove it for min_cost")
    return Objective(kind, lam, eps)


def _training(c: _Checker, t, years) -> Training:
    zero = _ro({y: 0.0 for y in years})
    if t is None or c.mapping(t, "training", optional=("min_pflops", "frontier_cluster_pflops")) is None:
        return Training(zero, zero)
    out = {}
    for key in ("min_pflops", "frontier_cluster_pflops"):
        out[key] = zero
        if t.get(key) is not None:
            out[key] = _ro(c.series(t[key], f"training.{key}", years, ge=0)) or zero
    return Training(**out)


def _ids(c: _Checker, section, path, limit, what) -> dict:
    if section is None:
        return {}
    if not isinstance(section, dict) or not section:
        c.err(path, f"must be a non-empty mapping of {what} ids, got {_describe(section)}")
        return {}
    if len(section) > limit:
        c.err(path, f"{len(section)} {what}s is above the limit of {limit}")
        return {}
    ok = {}
    for key, value in section.items():
        if not isinstance(key, str) or not key.strip():
            c.err(_join(path, key), f"{what} id must be a non-empty string, got {_repr(key)}")
            continue
        ok[key] = value
    return ok


def _regions(c: _Checker, section, years) -> tuple[dict[str, Region], list[str]]:
    """Valid regions, and every region id defined (valid or not) for reference checks."""
    out = {}
    ids = _ids(c, section, "regions", MAX_REGIONS, "region")
    for rid, r in ids.items():
        p = f"regions.{rid}"
        if c.mapping(r, p, _REGION_REQUIRED, _REGION_OPTIONAL) is None:
            continue
        n0 = len(c.problems)
        pue = c.number(r.get("pue"), f"{p}.pue", ge=1) if r.get("pue") is not None else None
        elec = c.series(r.get("electricity_usd_per_mwh"), f"{p}.electricity_usd_per_mwh", years, ge=0) \
            if r.get("electricity_usd_per_mwh") is not None else None
        existing = c.number(r["existing_mw"], f"{p}.existing_mw", ge=0) if r.get("existing_mw") is not None else 0.0
        max_mw = c.series(r["max_mw"], f"{p}.max_mw", years, ge=0) if r.get("max_mw") is not None else None
        block = c.number(r.get("block_mw"), f"{p}.block_mw", gt=0) if r.get("block_mw") is not None else None
        capex = c.series(r.get("block_capex_usd"), f"{p}.block_capex_usd", years, ge=0) \
            if r.get("block_capex_usd") is not None else None
        lead = c.number(r.get("build_lead_years"), f"{p}.build_lead_years", ge=0, integer=True) \
            if r.get("build_lead_years") is not None else None
        demand = {t: 0.0 for t in years}
        if r.get("inference_demand_pflops") is not None:
            demand = c.series(r["inference_demand_pflops"], f"{p}.inference_demand_pflops", years, ge=0)
        if len(c.problems) == n0 and years:
            out[rid] = Region(rid, pue, _ro(elec), existing, _ro(max_mw), block, _ro(capex), lead,
                              _ro(demand))
    return out, list(ids)


def _chips(c: _Checker, section, years, regions, start) -> dict[str, Chip]:
    out = {}
    for gid, g in _ids(c, section, "chips", MAX_CHIPS, "chip").items():
        p = f"chips.{gid}"
        if c.mapping(g, p, _CHIP_REQUIRED, _CHIP_OPTIONAL) is None:
            continue
        n0 = len(c.problems)
        u = c.number(g["chips_per_unit"], f"{p}.chips_per_unit", ge=1, integer=True) \
            if g.get("chips_per_unit") is not None else 1
        a = c.year(g["available_from"], f"{p}.available_from") if g.get("available_from") is not None \
            else (years[0] if years else None)
        b = c.year(g["available_until"], f"{p}.available_until") if g.get("available_until") is not None \
            else (years[-1] if years else None)
        if a is not None and b is not None and b < a:
            c.err(f"{p}.available_until", f"must be >= available_from ({a}), got {b}")
        price = c.series(g.get("price_usd"), f"{p}.price_usd", years, gt=0) if g.get("price_usd") is not None else None
        power_w = c.number(g.get("power_w"), f"{p}.power_w", gt=0) if g.get("power_w") is not None else None
        peak = c.number(g.get("peak_pflops"), f"{p}.peak_pflops", gt=0) if g.get("peak_pflops") is not None else None
        eta_t = eta_i = None
        util = g.get("utilization")
        if util is not None and c.mapping(util, f"{p}.utilization", ("train", "infer")) is not None:
            if "train" in util:
                eta_t = c.number(util["train"], f"{p}.utilization.train", gt=0, le=1)
            if "infer" in util:
                eta_i = c.number(util["infer"], f"{p}.utilization.infer", gt=0, le=1)
        life = c.number(g.get("lifetime_years"), f"{p}.lifetime_years", ge=1, integer=True) \
            if g.get("lifetime_years") is not None else None
        opex = c.number(g["opex_usd_per_chip_year"], f"{p}.opex_usd_per_chip_year", ge=0) \
            if g.get("opex_usd_per_chip_year") is not None else 0.0
        supply = c.series(g["supply_units"], f"{p}.supply_units", years, ge=0) \
            if g.get("supply_units") is not None else None
        installed = _installed(c, g.get("installed"), f"{p}.installed", regions, start)
        if len(c.problems) == n0 and years:
            out[gid] = Chip(gid, u, a, b, _ro(price), power_w, peak, eta_t, eta_i, life, opex,
                            _ro(supply), installed)
    return out


def _installed(c: _Checker, lst, path, regions, start) -> tuple[Installed, ...]:
    if lst is None:
        return ()
    if not isinstance(lst, list):
        c.err(path, f"must be a list of {{region, year, chips}}, got {_describe(lst)}")
        return ()
    out = []
    for i, e in enumerate(lst):
        p = f"{path}[{i}]"
        if c.mapping(e, p, ("region", "year", "chips")) is None:
            continue
        region = e.get("region")
        if "region" in e and region not in regions:
            c.err(f"{p}.region", f"unknown region {_repr(region)}{_known(regions)}")
        year = c.year(e["year"], f"{p}.year") if "year" in e else None
        if year is not None and start is not None and year >= start:
            c.err(f"{p}.year", f"installed chips must be bought before horizon.start ({start}), got {year}")
        chips = c.number(e["chips"], f"{p}.chips", ge=0) if "chips" in e else None
        if None not in (region, year, chips):
            out.append(Installed(region, year, chips))
    return tuple(out)


def _serving(c: _Checker, section, regions) -> dict[str, dict[str, float]]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        c.err("serving", "must be a mapping {demand region: {source region: efficiency}}, "
              f"got {_describe(section)}")
        return {}
    out = {}
    for d, sources in section.items():
        p = _join("serving", d)
        if d not in regions:
            c.err(p, f"unknown demand region {_repr(d)}{_known(regions)}")
        if not isinstance(sources, dict) or not sources:
            c.err(p, f"must be a non-empty mapping {{source region: efficiency}}, got {_describe(sources)}")
            continue
        row = {}
        for s, eps in sources.items():
            sp = _join(p, s)
            if s not in regions:
                c.err(sp, f"unknown source region {_repr(s)}{_known(regions)}")
            v = c.number(eps, sp, gt=0, le=1)
            if v is not None:
                row[s] = v
        out[d] = row
    return out


# --------------------------------------------------------------------------- helpers


def _join(path: str, key) -> str:
    key = _key_text(key)
    return f"{path}.{key}" if path else key


def _key_text(key) -> str:
    """A key as it appears in a path; a blank key is quoted so that the path still shows it."""
    if isinstance(key, str):
        return key if key.strip() else repr(key)
    if isinstance(key, int) and not isinstance(key, bool) and abs(key) >= 10**40:
        return _repr(key)
    return str(key)


def _repr(value, limit: int = 60) -> str:
    """repr() for messages: short, and safe for huge integers and self-referencing containers."""
    if isinstance(value, (dict, list, tuple, set)):
        return _describe(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**40:
        return f"an integer of {int(math.log10(abs(value))) + 1} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _known(ids) -> str:
    names = ", ".join(sorted(map(str, ids)))
    return f" (defined: {names})" if names else ""


def _describe(value) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the text {shown!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (tuple, set)):
        return f"a {type(value).__name__}"
    return f"{type(value).__name__} {_repr(value)}"


def _fmt(v) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10**40:
        return _repr(v)
    text = str(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _ro(d):
    return None if d is None else MappingProxyType(dict(d))


def _freeze(obj):
    """Deep read-only view of a raw mapping."""
    if isinstance(obj, dict):
        return MappingProxyType({k: _freeze(v) for k, v in obj.items()})
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


def _set_path(raw: dict, path: str, value) -> str | None:
    """Set ``value`` at a dotted path in ``raw`` (ids may contain dots). Returns an error or None."""
    parts = path.split(".")
    node = raw
    i = 0
    while i < len(parts) - 1:
        if not isinstance(node, dict):
            return "cannot descend into a non-mapping value"
        # longest key that exists (ids with dots), else create a section
        for j in range(len(parts) - 1, i, -1):
            key = ".".join(parts[i:j])
            if key in node:
                break
        else:
            key, j = parts[i], i + 1
            node[key] = {}
        if isinstance(node[key], list):
            return f"'{key}' is a list; change it as a whole"
        if node[key] is None:
            node[key] = {}
        elif not isinstance(node[key], dict):
            return f"'{key}' is a value, not a section"
        node = node[key]
        i = j
    if not isinstance(node, dict):
        return "cannot descend into a non-mapping value"
    last = ".".join(parts[i:])
    if value is None:
        node.pop(last, None)
    else:
        node[last] = copy.deepcopy(value)
    return None
