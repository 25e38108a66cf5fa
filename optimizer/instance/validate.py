"""Validation of a raw instance mapping (spec model-v1, section 1): every problem with its key path."""

from __future__ import annotations

import difflib
import math
from types import MappingProxyType

from ..errors import Problem
from .data import Budget, Chip, Installed, Objective, Power, Region, Training, _ro
from .limits import MAX_CHIPS, MAX_HORIZON_YEARS, MAX_MAGNITUDE, MAX_REGIONS, MIN_MAGNITUDE, YEAR_RANGE
from .messages import _describe, _fmt, _join, _key_text, _known, _repr

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


def validate_raw(raw: dict) -> tuple[dict, list[Problem]]:
    """Validate a raw mapping (as read from YAML): the fields of an Instance, and every problem found."""
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

    fields = dict(
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
    )
    return fields, c.problems


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
