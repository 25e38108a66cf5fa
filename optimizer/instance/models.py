"""The instance format (spec model-v2: v1 section 1 plus ``uncertainty`` and ``objective.end_of_horizon``)
as pydantic models.

The same models validate files and generate the published JSON Schema
(:mod:`optimizer.instance.schema`).  Every model forbids unknown keys; a key
whose value is null counts as absent.  Problems keep capplan's own wording
(``chips.trn3.power_w: must be > 0, got -5``): the leaf types of
:mod:`.fields` raise worded errors, and :class:`~.fields.FormatModel` words
the structural ones (unknown and missing keys, a value that is not a mapping).
Cross-field rules read the fields validated before them (``info.data``) and
what the whole file defines (the validation ``context``: the horizon years,
the region and chip ids), so that every problem is found in one pass.

:func:`validate_raw` runs them and returns the fields of an
:class:`~optimizer.instance.core.Instance` and the problems, in section order.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    WrapValidator,
    field_validator,
)

from ..errors import Problem
from . import data as frozen
from .changes import Factor, Shift, parse_token
from .data import _ro
from .fields import (
    FormatModel,
    Located,
    Number,
    Series,
    SeriesSpec,
    Text,
    Year,
    _context,
    check_number,
    check_year,
    choice,
    fail,
    message_of,
    number_schema,
    quiet,
    years_of,
)
from .limits import MAX_BRANCHES, MAX_CHIPS, MAX_HORIZON_YEARS, MAX_REGIONS, MAX_SCENARIOS, MAX_STAGES
from .messages import _describe, _key_text, _known, _repr

OBJECTIVE_KINDS = ("max_training", "min_cost")
END_OF_HORIZON = ("truncate", "salvage")
BRANCH_ID = re.compile(r"[A-Za-z0-9_.-]+")
PROBABILITY_TOLERANCE = 1e-9


# --------------------------------------------------------------------------- v1 sections


class HorizonSection(FormatModel):
    """Inclusive planning years."""

    start: Year = Field(description="First planning year (horizon.start).")
    end: Year = Field(description="Last planning year, >= start (horizon.end); at most "
                      f"{MAX_HORIZON_YEARS} years in all.")

    def check_whole(self) -> None:
        if self.end < self.start:
            problems = Located()
            problems.add(("end",), f"must be >= horizon.start ({self.start}), got {self.end}")
            problems.raise_any()
        if self.end - self.start + 1 > MAX_HORIZON_YEARS:
            fail(f"{self.end - self.start + 1} years is above the limit of {MAX_HORIZON_YEARS}")

    @property
    def years(self) -> tuple[int, ...]:
        return tuple(range(self.start, self.end + 1))


class BudgetSection(FormatModel):
    total_usd: Number(ge=0) | None = Field(
        None, description="Cap on total spend over the horizon, nominal USD (B). Absent: no cap.")
    annual_max_usd: Series(ge=0) | None = Field(
        None, description="Cap on spend each year, USD (A_t); a series. Absent: no cap.")


class PowerSection(FormatModel):
    ceiling_mw: Series(ge=0) | None = Field(
        None, description="Cap on facility MW online summed over regions (P_t); a series. Absent: no cap.")


class ObjectiveSection(FormatModel):
    _keep_null: ClassVar[frozenset[str]] = frozenset({"kind"})

    kind: choice(OBJECTIVE_KINDS) = Field(
        "max_training", description="max_training: maximise discounted effective training PFLOP/s-years; "
        "min_cost: minimise discounted spend.")
    unmet_penalty: Number(ge=0) | None = Field(
        None, description="Penalty per PFLOP/s of inference demand left unmet for a year (lambda): objective "
        "units for max_training, USD for min_cost. Absent: demand is a hard constraint.")
    cost_weight: Number(ge=0) | None = Field(
        None, description="max_training only: tie-break weight per 1e9 USD of discounted spend (epsilon).")
    end_of_horizon: choice(END_OF_HORIZON) = Field(
        "truncate", description="truncate: nothing after horizon.end is valued (v1); salvage: chips still in "
        "service after it add a terminal value (spec v2 section 5).")

    @field_validator("cost_weight")
    @classmethod
    def _only_max_training(cls, eps, info: ValidationInfo):
        if eps and info.data.get("kind") == "min_cost":
            fail("applies to kind max_training only; remove it for min_cost")
        return eps


class TrainingSection(FormatModel):
    min_pflops: Series(ge=0) | None = Field(
        None, description="Floor on effective training PFLOP/s each year (T_t); a series. Default 0.")
    frontier_cluster_pflops: Series(ge=0) | None = Field(
        None, description="Effective training PFLOP/s one site must reach each year (C_t); a series. "
        "Default 0 (off).")


class RegionSection(FormatModel):
    """A region with datacenter campus blocks."""

    pue: Number(ge=1) = Field(description="Power usage effectiveness, >= 1 (pi_r).")
    electricity_usd_per_mwh: Series(ge=0) = Field(description="Electricity price, USD/MWh (e_{r,t}); a series.")
    existing_mw: Number(ge=0) | None = Field(
        None, description="Facility MW online before the horizon (M0_r). Default 0.")
    max_mw: Series(ge=0) | None = Field(
        None, description="Cap on facility MW online in the region (Mmax_{r,t}); a series. Absent: no cap.")
    block_mw: Number(gt=0) = Field(description="Size of one new campus block, MW (beta_r).")
    block_capex_usd: Series(ge=0) = Field(
        description="Cost of a block started in year t, USD (kappa_{r,t}); a series.")
    build_lead_years: Number(ge=0, integer=True) = Field(
        description="Years from starting a block to having it online (l_r): started in t, online from t + l_r.")
    inference_demand_pflops: Series(ge=0) | None = Field(
        None, description="Effective inference PFLOP/s to serve in the region (D_{r,t}); a series. Default 0.")


class UtilizationSection(FormatModel):
    train: Number(gt=0, le=1) = Field(description="Share of peak reached in training, in (0, 1] (eta^T_g).")
    infer: Number(gt=0, le=1) = Field(description="Share of peak reached in inference, in (0, 1] (eta^I_g).")


def _known_region(value, info: ValidationInfo):
    regions = _context(info).get("region_ids", ())
    if value not in regions:
        fail(f"unknown region {_repr(value)}{_known(regions)}")
    return value


class InstalledEntry(FormatModel):
    """Chips bought before the horizon, in service from ``year`` to year + L_g - 1."""

    region: Annotated[str, PlainValidator(_known_region), WithJsonSchema({"type": "string"})] = Field(
        description="Region id where the chips are installed.")
    year: Year = Field(description="Year bought, before horizon.start.")
    chips: Number(ge=0) = Field(description="Number of chips (not units).")

    @field_validator("year")
    @classmethod
    def _before_horizon(cls, year, info: ValidationInfo):
        start = _context(info).get("start")
        if start is not None and year >= start:
            fail(f"installed chips must be bought before horizon.start ({start}), got {year}")
        return year


def _list_of_installed(value, handler):
    if not isinstance(value, list):
        fail(f"must be a list of {{region, year, chips}}, got {_describe(value)}")
    return handler(value)


class ChipSection(FormatModel):
    """An accelerator generation that can be bought in units (servers or racks)."""

    chips_per_unit: Number(ge=1, integer=True) | None = Field(
        None, description="Chips per purchasable unit, integer >= 1 (u_g). Default 1.")
    available_from: Year | None = Field(
        None, description="First year units can be bought (a_g). Default horizon.start.")
    available_until: Year | None = Field(
        None, validate_default=True,
        description="Last year units can be bought, >= available_from (b_g). Default horizon.end.")
    price_usd: Series(gt=0) = Field(description="Price per chip in the year of purchase, USD (p_{g,t}); a series.")
    power_w: Number(gt=0) = Field(description="Average IT watts per chip including its host share, W (w_g).")
    peak_pflops: Number(gt=0) = Field(description="Peak PFLOP/s per chip (f_g).")
    utilization: UtilizationSection = Field(description="Share of peak reached in training and in inference.")
    lifetime_years: Number(ge=1, integer=True) = Field(
        description="Years in service, integer >= 1 (L_g): bought in tau, in service tau .. tau + L_g - 1.")
    opex_usd_per_chip_year: Number(ge=0) | None = Field(
        None, description="Non-energy cost per installed chip per year, USD (o_g). Default 0.")
    supply_units: Series(ge=0) | None = Field(
        None, description="Max units bought per year over all regions (s_{g,t}); a series. Absent: no cap.")
    installed: Annotated[list[InstalledEntry], WrapValidator(_list_of_installed)] | None = Field(
        None, description="Chips bought before the horizon: a list of {region, year, chips}.")

    @field_validator("available_until")
    @classmethod
    def _after_from(cls, until, info: ValidationInfo):
        if "available_from" not in info.data:  # itself invalid
            return until
        years = years_of(info)
        a = info.data["available_from"] if info.data["available_from"] is not None else (
            years[0] if years else None)
        b = until if until is not None else (years[-1] if years else None)
        if a is not None and b is not None and b < a:
            fail(f"must be >= available_from ({a}), got {b}")
        return until


def section_ids(section, limit: int) -> list[str]:
    """The ids of a regions or chips section (valid entries or not), for references to them."""
    if not isinstance(section, dict) or not section or len(section) > limit:
        return []
    return [k for k in section if isinstance(k, str) and k.strip()]


def _section(what: str, limit: int):
    def check(value, handler):
        if not isinstance(value, dict) or not value:
            fail(f"must be a non-empty mapping of {what} ids, got {_describe(value)}")
        if len(value) > limit:
            fail(f"{len(value)} {what}s is above the limit of {limit}")
        problems, ok = Located(), {}
        for key, entry in value.items():
            if isinstance(key, str) and key.strip():
                ok[key] = entry
            else:
                problems.add((_key_text(key),), f"{what} id must be a non-empty string, got {_repr(key)}")
        out = problems.check((), handler, ok)
        problems.raise_any()
        return out

    return WrapValidator(check)


def _serving(section, info: ValidationInfo) -> dict[str, dict[str, float]]:
    if not isinstance(section, dict):
        fail(f"must be a mapping {{demand region: {{source region: efficiency}}}}, got {_describe(section)}")
    regions = _context(info).get("region_ids", ())
    problems, out = Located(), {}
    for d, sources in section.items():
        loc = (_key_text(d),)
        if d not in regions:
            problems.add(loc, f"unknown demand region {_repr(d)}{_known(regions)}")
        if not isinstance(sources, dict) or not sources:
            problems.add(loc, f"must be a non-empty mapping {{source region: efficiency}}, got {_describe(sources)}")
            continue
        row = {}
        for s, eps in sources.items():
            sloc = loc + (_key_text(s),)
            if s not in regions:
                problems.add(sloc, f"unknown source region {_repr(s)}{_known(regions)}")
            v = problems.check(sloc, check_number, eps, gt=0, le=1)
            if v is not None:
                row[s] = v
        out[d] = row
    problems.raise_any()
    return out


Efficiency = number_schema(gt=0, le=1)
Serving = Annotated[dict[str, dict[str, float]], PlainValidator(_serving), WithJsonSchema({
    "type": "object", "additionalProperties": {
        "type": "object", "minProperties": 1, "additionalProperties": Efficiency,
        "description": "{source region: efficiency eps in (0, 1]}: the sources allowed to serve this region"}})]


def _description(value) -> str:
    value = value or ""
    if not isinstance(value, str):
        fail(f"must be a string, got {_describe(value)}")
    return value


# --------------------------------------------------------------------------- v2: uncertainty


def _changes(value, info: ValidationInfo) -> dict[str, Any]:
    """Each change path is allowed (spec v2 section 4.1 rules 1-3) and its value has an allowed form."""
    if not isinstance(value, dict):
        fail(f"must be a mapping {{path: value}}, got {_describe(value)}")
    ctx = _context(info)
    problems, out = Located(), {}
    for path, raw_value in value.items():
        loc = (_key_text(path),)
        found = problems.check(loc, change_targets, path, ctx.get("region_ids", ()), ctx.get("chip_ids", ()))
        if found is None:
            continue
        kind, spec, _ = found
        v = parse_token(raw_value) if isinstance(raw_value, str) else raw_value
        if kind != "chip" and isinstance(v, Shift):
            problems.add(loc, f"a year shift ({v}) moves an integer year (such as chips.G.available_from), "
                         "not this value")
        elif kind == "series" and v is None:
            problems.add(loc, "a series cannot be removed in a branch (null); give its values")
        elif kind == "series" and not isinstance(v, Factor):
            problems.check(loc, spec.resolve, v, years_of(info))
        out[path] = v
    problems.raise_any()
    return out


Changes = Annotated[dict[str, Any], PlainValidator(_changes), WithJsonSchema({
    "type": "object", "additionalProperties": {},
    "description": "{dotted path: value}, acting from the stage year on. A path is a series (regions.*.max_mw, "
    "chips.trn4.supply_units, ...), budget.total_usd, or any key of a chip with no chip in service before the "
    "stage year; * matches every region or chip. A value is a plain value (series forms included), a factor "
    "'x1.5' or a year shift '+1y' / '-1y'."})]


class BranchSection(FormatModel):
    probability: Number(gt=0, le=1) = Field(
        description="Probability of the branch given the stages before, > 0; a stage's branches sum to 1.")
    changes: Changes | None = Field(None, description="Changes from the stage year on (none: the parent's data).")


def _branches(value, handler):
    if not isinstance(value, dict) or not 1 <= len(value) <= MAX_BRANCHES:
        got = f"{len(value)} branches" if isinstance(value, dict) else _describe(value)
        fail(f"must be a mapping of 1 to {MAX_BRANCHES} branches {{id: {{probability, changes}}}}, got {got}")
    problems, ok = Located(), {}
    for key, entry in value.items():
        bid = str(key) if isinstance(key, int) and not isinstance(key, bool) else key
        if not isinstance(bid, str) or not BRANCH_ID.fullmatch(bid):
            problems.add((_key_text(key),), f"branch id must match [A-Za-z0-9_.-]+, got {_repr(key)}")
        elif bid in ok:
            problems.add((bid,), "duplicate branch id")
        else:
            ok[bid] = entry
    out = problems.check((), handler, ok)
    probabilities = [quiet(check_number, b.get("probability"), gt=0, le=1) if isinstance(b, dict) else None
                     for b in value.values()]
    if None not in probabilities:  # each valid (else reported): whatever else is wrong, check their sum
        total = math.fsum(probabilities)
        if abs(total - 1) > PROBABILITY_TOLERANCE:
            problems.add((), f"branch probabilities must sum to 1 (±{PROBABILITY_TOLERANCE:g}), got {total:.12g}")
    problems.raise_any()
    return out


class StageSection(FormatModel):
    year: Year = Field(description="Year the stage's outcome is known: decisions of years before it are shared "
                       "by its branches. In (horizon.start, horizon.end], increasing from stage to stage.")
    name: Text | None = Field(None, description="Label used in reports.")
    branches: Annotated[dict[str, BranchSection], WrapValidator(_branches)] = Field(
        description=f"1 to {MAX_BRANCHES} outcomes {{id: {{probability, changes}}}}; ids match [A-Za-z0-9_.-]+.",
        json_schema_extra={"minProperties": 1, "maxProperties": MAX_BRANCHES,
                           "propertyNames": {"pattern": "^[A-Za-z0-9_.-]+$"}})

    @field_validator("year")
    @classmethod
    def _inside_horizon(cls, year, info: ValidationInfo):
        years = years_of(info)
        if years and not years[0] < year <= years[-1]:
            fail(f"must be after horizon.start ({years[0]}) and at most horizon.end ({years[-1]}), got {year}")
        return year


def _stages(value, handler):
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_STAGES:
        got = f"{len(value)} stages" if isinstance(value, list) else _describe(value)
        fail(f"must be a list of 1 to {MAX_STAGES} stages, got {got}")
    problems = Located()
    out = problems.check((), handler, value)
    previous = None
    for i, stage in enumerate(value):
        year = quiet(check_year, stage.get("year")) if isinstance(stage, dict) else None
        if year is not None and previous is not None and year <= previous:
            problems.add((i, "year"), f"must be after the year of the stage before ({previous}), got {year}")
        previous = year if year is not None else previous
    count = math.prod(len(s["branches"]) for s in value
                      if isinstance(s, dict) and isinstance(s.get("branches"), dict))
    if count > MAX_SCENARIOS:
        problems.add((), f"{count:,} scenarios (the product of the stages' branch counts) is above the limit "
                     f"of {MAX_SCENARIOS:,}")
    problems.raise_any()
    return out


class RiskSection(FormatModel):
    cvar_alpha: Number(ge=0, lt=1) | None = Field(
        None, description="CVaR level alpha in [0, 1): the risk term is the mean objective over the worst "
        "1 - alpha of probability. Default 0.9.")
    weight: Number(ge=0, le=1) | None = Field(
        None, description="Weight w in [0, 1] of CVaR against the expectation. Default 0 (risk neutral).")


class UncertaintySection(FormatModel):
    """A scenario tree (spec v2 section 4.1): scenarios are the product of the stages' branches."""

    stages: Annotated[list[StageSection], WrapValidator(_stages)] = Field(
        description=f"1 to {MAX_STAGES} stages in increasing years; at most {MAX_SCENARIOS:,} scenarios.",
        json_schema_extra={"minItems": 1, "maxItems": MAX_STAGES})
    risk: RiskSection | None = Field(None, description="Risk aversion; absent: risk neutral.")


# --------------------------------------------------------------------------- the file


class InstanceFile(FormatModel):
    """A capplan instance: a multi-year compute capacity plan to optimise (spec model-v2)."""

    name: Text = Field(description="Identifies the instance in reports.")
    description: Annotated[str, PlainValidator(_description), WithJsonSchema({"type": "string"})] | None = Field(
        None, description="Free text.")
    horizon: HorizonSection = Field(description="Inclusive planning years {start, end}.")
    discount_rate: Number(ge=0) | None = Field(
        None, description="rho >= 0: year t weighs delta_t = (1 + rho)^-(t - horizon.start). Default 0.")
    budget: BudgetSection | None = Field(None, description="Spending caps (nominal USD).")
    power: PowerSection | None = Field(None, description="Facility power ceiling.")
    objective: ObjectiveSection | None = Field(None, description="What to optimise.")
    training: TrainingSection | None = Field(None, description="Training floors.")
    regions: Annotated[dict[str, RegionSection], _section("region", MAX_REGIONS)] = Field(
        description=f"Regions by id (1 to {MAX_REGIONS}).",
        json_schema_extra={"minProperties": 1, "maxProperties": MAX_REGIONS})
    chips: Annotated[dict[str, ChipSection], _section("chip", MAX_CHIPS)] = Field(
        description=f"Chips by id (1 to {MAX_CHIPS}).",
        json_schema_extra={"minProperties": 1, "maxProperties": MAX_CHIPS})
    serving: Serving | None = Field(
        None, description="{demand region: {source region: efficiency}}: where each listed demand region may "
        "be served from. An unlisted region serves itself with efficiency 1.")
    uncertainty: UncertaintySection | None = Field(
        None, description="Optional scenario tree (spec v2 section 4.1); absent: the deterministic program.")


# --------------------------------------------------------------------------- change paths (spec v2 4.1)


def _annotation_metadata(annotation) -> list:
    """The Annotated metadata of a field type, looking inside ``X | None``."""
    if get_origin(annotation) is Annotated:
        return list(annotation.__metadata__)
    if get_origin(annotation) in (Union, type(int | None)):
        return [m for arg in get_args(annotation) for m in _annotation_metadata(arg)]
    return []


def _series_of(model: type[BaseModel]) -> dict[str, SeriesSpec]:
    out = {}
    for name, f in model.model_fields.items():
        spec = next((m for m in [*f.metadata, *_annotation_metadata(f.annotation)] if isinstance(m, SeriesSpec)),
                    None)
        if spec is not None:
            out[name] = spec
    return out


SECTIONS = {"budget": BudgetSection, "power": PowerSection, "training": TrainingSection, "regions": RegionSection,
            "chips": ChipSection}
SERIES = {name: _series_of(model) for name, model in SECTIONS.items()}  # rule 1: every series of section 1
CHIP_KEYS = ([k for k in ChipSection.model_fields if k != "utilization"]
             + ["utilization", *(f"utilization.{k}" for k in UtilizationSection.model_fields)])
NOT_ALLOWED = ("cannot change in a branch: only the series, budget.total_usd and the keys of a chip with no "
               "chip in service before the stage year may change")


def change_targets(path, region_ids, chip_ids) -> tuple[str, SeriesSpec | None, list[tuple]]:
    """What a change path names: its kind (``series``, ``total`` or ``chip``; rules 1, 2, 3), the series'
    spec, and the concrete key paths (tuples) it reaches, ``*`` expanded.  Raises a worded error."""
    if not isinstance(path, str) or not path.strip():
        fail(f"a change path must be a dotted key path such as budget.total_usd, got {_repr(path)}")
    section, _, rest = path.partition(".")
    if section in SECTIONS and not rest:
        fail(f"name a key of {section} ({section}.KEY)")
    if section in ("budget", "power", "training"):
        if (section, rest) == ("budget", "total_usd"):
            return "total", None, [(section, rest)]
        if rest in SERIES[section]:
            return "series", SERIES[section][rest], [(section, rest)]
        if rest in SECTIONS[section].model_fields:
            fail(NOT_ALLOWED)
        fail(f"unknown key {rest!r} of {section}{_hint(rest, SECTIONS[section].model_fields)}")
    if section in ("regions", "chips"):
        what, ids = section[:-1], region_ids if section == "regions" else chip_ids
        if rest.startswith("*.") or rest == "*":
            targets, key = list(ids), rest[2:]
        else:
            ident = max((i for i in ids if rest == i or rest.startswith(i + ".")), key=len, default=None)
            if ident is None:
                fail(f"unknown {what} {rest.split('.')[0]!r}{_known(ids)}")
            targets, key = [ident], rest[len(ident) + 1:]
        if not key:
            fail(f"name a key of the {what} ({section}.ID.KEY): a whole {what} cannot be added or replaced "
                 "in a branch")
        keys = list(RegionSection.model_fields) if section == "regions" else CHIP_KEYS
        if key in SERIES[section]:
            kind, spec = "series", SERIES[section][key]
        elif key not in keys:
            fail(f"unknown key {key!r} of a {what}{_hint(key, keys)}")
        elif section == "regions":
            fail(NOT_ALLOWED)
        else:
            kind, spec = "chip", None
        return kind, spec, [(section, i, *key.split(".")) for i in targets]
    if section in InstanceFile.model_fields:
        fail(NOT_ALLOWED)
    fail(f"unknown section {section!r}{_hint(section, InstanceFile.model_fields)}")


def _hint(word: str, options) -> str:
    hint = difflib.get_close_matches(word, sorted(options), n=1)
    return f"; did you mean {hint[0]!r}?" if hint else ""


# --------------------------------------------------------------------------- validation


def context_of(raw) -> dict:
    """What validators need from the whole file: the horizon years and start, the region and chip ids."""
    h = raw.get("horizon") if isinstance(raw, dict) else None
    start = quiet(check_year, h.get("start")) if isinstance(h, dict) and h.get("start") is not None else None
    years = quiet(lambda: HorizonSection.model_validate(h).years) or ()
    section = raw.get if isinstance(raw, dict) else lambda _: None
    return {"years": years, "start": start, "region_ids": section_ids(section("regions"), MAX_REGIONS),
            "chip_ids": section_ids(section("chips"), MAX_CHIPS)}


def path_of(loc: tuple) -> str:
    """A location as a key path: ``chips.trn3.installed[0].region``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def validate_raw(raw: dict) -> tuple[dict, list[Problem]]:
    """Validate a raw mapping (as read from YAML): the fields of an Instance, and every problem found."""
    ctx = context_of(raw)
    try:
        model = InstanceFile.model_validate(raw, context=ctx)
    except ValidationError as exc:
        return {}, [Problem(path_of(tuple(e["loc"])), message_of(e))
                    for e in exc.errors(include_url=False, include_context=False)]
    return instance_fields(model, ctx["years"]), []


def instance_fields(m: InstanceFile, years: tuple[int, ...]) -> dict:
    """The fields of a frozen Instance from a validated model."""
    zero = {t: 0.0 for t in years}
    o = m.objective or ObjectiveSection()
    t = m.training or TrainingSection()
    regions = {
        rid: frozen.Region(rid, r.pue, _ro(r.electricity_usd_per_mwh), r.existing_mw or 0.0, _ro(r.max_mw), r.block_mw,
                     _ro(r.block_capex_usd), r.build_lead_years, _ro(r.inference_demand_pflops or zero))
        for rid, r in m.regions.items()}
    chips = {
        gid: frozen.Chip(gid, g.chips_per_unit or 1,
                   g.available_from if g.available_from is not None else years[0],
                   g.available_until if g.available_until is not None else years[-1],
                   _ro(g.price_usd), g.power_w, g.peak_pflops, g.utilization.train, g.utilization.infer,
                   g.lifetime_years, g.opex_usd_per_chip_year or 0.0, _ro(g.supply_units),
                   tuple(frozen.Installed(e.region, e.year, e.chips) for e in g.installed or ()))
        for gid, g in m.chips.items()}
    return dict(
        name=m.name,
        description=m.description or "",
        start=years[0],
        end=years[-1],
        discount_rate=m.discount_rate or 0.0,
        budget=frozen.Budget(m.budget.total_usd, _ro(m.budget.annual_max_usd)) if m.budget else frozen.Budget(),
        power=frozen.Power(_ro(m.power.ceiling_mw)) if m.power else frozen.Power(),
        objective=frozen.Objective(o.kind, o.unmet_penalty, o.cost_weight or 0.0, o.end_of_horizon),
        training=frozen.Training(_ro(t.min_pflops or zero), _ro(t.frontier_cluster_pflops or zero)),
        regions=frozen.FrozenDict(regions),
        chips=frozen.FrozenDict(chips),
        serving=frozen.FrozenDict({d: frozen.FrozenDict(s) for d, s in (m.serving or {}).items()}),
        uncertainty=_uncertainty(m.uncertainty),
    )


def _uncertainty(u: UncertaintySection | None) -> UncertaintySection | None:
    if u is None:
        return None
    risk = u.risk or RiskSection()
    return frozen.Uncertainty(
        stages=tuple(frozen.Stage(s.year, s.name, tuple(
            frozen.Branch(bid, b.probability, frozen.FrozenDict(dict(b.changes or {})))
            for bid, b in s.branches.items())) for s in u.stages),
        cvar_alpha=risk.cvar_alpha if risk.cvar_alpha is not None else 0.9,
        risk_weight=risk.weight or 0.0,
    )

