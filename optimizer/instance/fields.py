"""The building blocks of the instance format: numbers, years, text and series, and the section base model.

Every check raises :class:`~pydantic_core.PydanticCustomError` (one problem at
the field) or a :class:`~pydantic.ValidationError` of located problems (a
series with several bad years); pydantic prefixes the locations with the
field's path.  Each type also carries its JSON Schema: a number may be a YAML
number or a numeric string such as ``100e9`` (PyYAML reads that as text).
:class:`FormatModel` words the structural problems of a section (unknown and
missing keys, a value that is not a mapping).
"""

from __future__ import annotations

import difflib
import math
from typing import Annotated, Any, ClassVar, NoReturn

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from .limits import MAX_MAGNITUDE, MIN_MAGNITUDE, YEAR_RANGE
from .messages import _describe, _fmt, _key_text, _repr

ERROR = "capplan"  # the type of every error the format raises: its message is final

# a number written as text: what float() reads, less inf/nan (non-finite numbers are refused anyway)
NUMERIC_TEXT = r"^\s*[-+]?(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)([eE][-+]?\d+)?\s*$"
YEAR_KEY = r"^\s*(19\d\d|2[01]\d\d|2200)\s*$"


def fail(message: str) -> NoReturn:
    raise PydanticCustomError(ERROR, message)


class Located:
    """Collects problems with their locations inside one validator, then raises them together."""

    def __init__(self) -> None:
        self.items: list[tuple[tuple, str]] = []  # (location, message)

    def add(self, loc: tuple, message: str) -> None:
        self.items.append((loc, message))

    def nested(self, loc: tuple, exc: ValidationError | PydanticCustomError) -> None:
        """The problems of a nested validation, under ``loc``."""
        if isinstance(exc, PydanticCustomError):
            self.add(loc, exc.message())
        elif isinstance(exc, ValidationError):
            for e in exc.errors(include_url=False, include_context=False, include_input=False):
                self.add(loc + tuple(e["loc"]), message_of(e))
        else:  # a ChangeError: its message names the path
            self.add(loc, str(exc))

    def check(self, loc: tuple, fn, *args, **kwargs):
        """``fn(*args, **kwargs)``, or None with its problems recorded under ``loc``."""
        try:
            return fn(*args, **kwargs)
        except (PydanticCustomError, ValidationError) as exc:
            self.nested(loc, exc)
            return None

    def raise_any(self) -> None:
        if self.items:
            raise ValidationError.from_exception_data("instance", [
                InitErrorDetails(type=PydanticCustomError(ERROR, message), loc=loc, input=None)
                for loc, message in self.items])


def message_of(error: dict) -> str:
    """A pydantic error in the format's words (the format's own errors are already worded)."""
    kind, value = error["type"], error.get("input")
    if kind == ERROR:
        return error["msg"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping, got {_describe(value)}"
    if kind == "list_type":
        return f"must be a list, got {_describe(value)}"
    return f"is not a valid value ({kind.replace('_', ' ')})"


# --------------------------------------------------------------------------- numbers


def check_number(value, *, gt=None, ge=None, lt=None, le=None, integer=False):
    """A finite number (YAML number or numeric string) within bounds and the magnitude limits."""
    if isinstance(value, bool) or value is None:
        fail(f"must be a number, got {_describe(value)}")
    if isinstance(value, str):
        try:
            num = float(value.strip())
        except ValueError:
            fail(f"must be a number, got {_describe(value)}")
    elif isinstance(value, (int, float)):
        num = value
    else:
        fail(f"must be a number, got {_describe(value)}")
    if isinstance(num, int) and not integer:
        try:
            num = float(num)
        except OverflowError:
            num = math.inf
    if isinstance(num, float) and not math.isfinite(num):
        fail(f"must be a finite number, got {_repr(value)}")
    if integer and not isinstance(num, int):
        if not float(num).is_integer():
            fail(f"must be an integer, got {_repr(value)}")
        num = int(num)
    elif not integer:
        num = float(num)
    shown = _fmt(value)
    if gt is not None and not num > gt:
        fail(f"must be > {_fmt(gt)}, got {shown}")
    if ge is not None and not num >= ge:
        fail(f"must be >= {_fmt(ge)}, got {shown}")
    if lt is not None and not num < lt:
        fail(f"must be < {_fmt(lt)}, got {shown}")
    if le is not None and not num <= le:
        fail(f"must be <= {_fmt(le)}, got {shown}")
    if abs(num) > MAX_MAGNITUDE:
        fail(f"must be at most {MAX_MAGNITUDE:.0e} in magnitude, got {_repr(value)}")
    if num and abs(num) < MIN_MAGNITUDE:
        fail(f"must be 0 or at least {MIN_MAGNITUDE:.0e} in magnitude, got {_repr(value)}")
    return num


def number_schema(*, gt=None, ge=None, lt=None, le=None, integer=False) -> dict:
    """JSON Schema of a number: a YAML number within the bounds, or a numeric string (checked on load)."""
    num: dict[str, Any] = {"type": "integer" if integer else "number"}
    for key, bound in (("exclusiveMinimum", gt), ("minimum", ge), ("exclusiveMaximum", lt), ("maximum", le)):
        if bound is not None:
            num[key] = bound
    return {"anyOf": [num, {"type": "string", "pattern": NUMERIC_TEXT}]}


def Number(*, gt=None, ge=None, lt=None, le=None, integer=False):  # noqa: N802 - a type factory
    """A number field: ``Number(gt=0)``, ``Number(ge=1, integer=True)``."""
    bounds = dict(gt=gt, ge=ge, lt=lt, le=le, integer=integer)
    return Annotated[int if integer else float,
                     PlainValidator(lambda v: check_number(v, **bounds)),
                     WithJsonSchema(number_schema(**bounds))]


def check_year(value) -> int:
    return check_number(value, integer=True, ge=YEAR_RANGE[0], le=YEAR_RANGE[1])


Year = Annotated[int, PlainValidator(check_year),
                 WithJsonSchema(number_schema(integer=True, ge=YEAR_RANGE[0], le=YEAR_RANGE[1]))]


def check_text(value) -> str:
    if not isinstance(value, str) or not value.strip():
        fail(f"must be a non-empty string, got {_describe(value)}")
    return value


Text = Annotated[str, PlainValidator(check_text), WithJsonSchema({"type": "string", "minLength": 1})]


def choice(options: tuple[str, ...]):
    """One of a few words (``objective.kind``)."""

    def check(value):
        if value not in options:
            fail(f"must be one of {', '.join(options)}, got {_repr(value)}")
        return value

    return Annotated[str, PlainValidator(check), WithJsonSchema({"enum": list(options)})]


def _context(info: ValidationInfo) -> dict:
    return info.context or {}


# --------------------------------------------------------------------------- sections


class FormatModel(BaseModel):
    """A section of the format: a mapping with known keys, each null value meaning "absent"."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    _keep_null: ClassVar[frozenset[str]] = frozenset()  # keys whose null is a value to check, not "absent"

    @model_validator(mode="wrap")
    @classmethod
    def _mapping(cls, data, handler):
        """Unknown keys (with a hint), then missing required keys, then the fields in order."""
        if not isinstance(data, dict):
            fail(f"must be a mapping, got {_describe(data)}")
        fields = cls.model_fields
        problems = Located()
        for key in data:
            if key not in fields:
                hint = difflib.get_close_matches(_key_text(key), sorted(fields), n=1)
                extra = f"; did you mean '{hint[0]}'?" if hint else f" (allowed: {', '.join(sorted(fields))})"
                problems.add((_key_text(key),), f"unknown key{extra}")
        for key in sorted(k for k, f in fields.items() if f.is_required()):
            if data.get(key) is None:
                problems.add((key,), "required key is missing")
        clean = {k: v for k, v in data.items() if k in fields and (v is not None or k in cls._keep_null)}
        try:
            model = handler(clean)
        except ValidationError as exc:
            model = None
            for e in exc.errors(include_url=False, include_context=False):
                if not (e["type"] == "missing" and len(e["loc"]) == 1):  # reported above, in key order
                    problems.add(tuple(e["loc"]), message_of(e))
        if model is not None:
            problems.check((), model.check_whole)
        problems.raise_any()
        return model

    def check_whole(self) -> None:
        """Rules between the fields of a valid section (raise a worded error); none by default."""


# --------------------------------------------------------------------------- series


class Growth(FormatModel):
    """Series growth form: value(t) = start * (1 + growth)^(t - horizon.start)."""

    start: Annotated[float, PlainValidator(lambda v, info: check_number(v, **_context(info).get("bounds", {}))),
                     WithJsonSchema(number_schema())] = Field(description="Value in horizon.start (v0).")
    growth: Number(gt=-1) = Field(description="Yearly growth rate g > -1 (0.2 = +20% a year).")


def as_year(key) -> int | None:
    """A series year written as a key (``2026`` or ``"2026"``), or None."""
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


def interpolate(points: dict[int, float], t: int) -> float:
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


class SeriesSpec:
    """How one series field reads its values: the bounds of every value (spec section 1, *series*).

    ``resolve(value, years)`` gives one value per horizon year (empty when the
    horizon itself is invalid) or raises the located problems.
    """

    def __init__(self, **bounds):
        self.bounds = bounds

    def resolve(self, value, years: tuple[int, ...]) -> dict[int, float]:
        if isinstance(value, dict):
            if "start" in value or "growth" in value:
                return self._growth(value, years)
            return self._year_map(value, years)
        if isinstance(value, list):
            fail("must be a number, a {year: value} mapping or {start, growth}, got a list")
        v = check_number(value, **self.bounds)
        return {t: v for t in years}

    def _growth(self, value, years):
        problems = Located()
        g = problems.check((), Growth.model_validate, value, context={"bounds": self.bounds})
        if g is None:  # a bad key does not hide a value that grows too far
            v0, rate = quiet(check_number, value.get("start"), **self.bounds), quiet(check_number, value.get(
                "growth"), gt=-1)
        else:
            v0, rate = g.start, g.growth
        out = {}
        for t in years if v0 is not None and rate is not None else ():
            try:
                out[t] = v0 * (1.0 + rate) ** (t - years[0])
            except OverflowError:
                out[t] = math.inf
            if not abs(out[t]) <= MAX_MAGNITUDE:
                problems.add((), f"grows beyond {MAX_MAGNITUDE:.0e} by {t}")
                break
            if out[t] and abs(out[t]) < MIN_MAGNITUDE:
                problems.add((), f"shrinks below {MIN_MAGNITUDE:.0e} by {t}")
                break
        problems.raise_any()
        return out

    def _year_map(self, value, years):
        if not value:
            fail("a {year: value} mapping needs at least one year")
        points, problems = {}, Located()
        for key, v in value.items():
            loc = (_key_text(key),)
            year = as_year(key)
            if year is None:
                problems.add(loc, f"series year must be an integer year, got {_repr(key)}")
                continue
            num = problems.check(loc, check_number, v, **self.bounds)
            if num is not None:
                points[year] = num
        problems.raise_any()
        return {t: interpolate(points, t) for t in years}

    def schema(self) -> dict:
        number = number_schema(**self.bounds)
        return {"anyOf": [
            number,
            {"type": "object", "description": "{year: value}: listed years as given, linear between them, "
                                              "flat before the first and after the last",
             "minProperties": 1, "propertyNames": {"pattern": YEAR_KEY}, "additionalProperties": number},
            {"$ref": "#/$defs/Growth"},
        ]}


def quiet(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, or None when it finds a problem (reported where the value is validated)."""
    try:
        return fn(*args, **kwargs)
    except (PydanticCustomError, ValidationError):
        return None


def years_of(info: ValidationInfo) -> tuple[int, ...]:
    return (info.context or {}).get("years", ())


def Series(**bounds):  # noqa: N802 - a type factory
    """A series field (one reusable type for the three forms): resolved to ``{year: value}``."""
    spec = SeriesSpec(**bounds)
    return Annotated[dict[int, float],
                     PlainValidator(lambda v, info: spec.resolve(v, years_of(info))),
                     WithJsonSchema(spec.schema()),
                     spec]
