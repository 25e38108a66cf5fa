"""Changes to an instance at dotted key paths, and the value forms that describe them.

One place for what sweeps (``--vary PATH=VALUES``) and scenario trees
(``uncertainty.stages[i].branches.B.changes``) both need:

* :func:`set_path` sets a value at a dotted path of a raw instance mapping
  (ids may contain dots);
* three kinds of value: an absolute value (``80e9``), a :class:`Factor`
  (``x0.8``, scaling a number, each year of a ``{year: value}`` series, or the
  ``start`` of a growth series) and a :class:`Shift` (``+1y``, moving an
  integer year such as ``chips.trn4.available_from``);
* :func:`parse_values` reads them from text, :func:`concrete_changes` turns
  them into the absolute values :meth:`Instance.with_changes` takes.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


class ChangeError(ValueError):
    """A bad path or value of a change (named in the message)."""


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Factor:
    """Scale the value at a path (every year of a series) by ``value``."""

    value: float

    def __str__(self) -> str:
        return f"x{self.value:g}"


@dataclass(frozen=True)
class Shift:
    """Add ``years`` to an integer year at a path (an availability year)."""

    years: int

    def __str__(self) -> str:
        return f"{self.years:+d}y"


Value = float | int | str | Factor | Shift


def parse_values(text: str) -> list[Value]:
    """Values of ``--vary PATH=VALUES``.

    ``60e9,80e9,100e9`` (a list), ``50e9:150e9:11`` (11 evenly spaced values
    from 50e9 to 150e9), ``x0.8,x1,x1.2`` (factors), ``+0y,+1y,+2y`` (year
    shifts); a word that is not a number is kept as text (``min_cost``).
    """
    text = text.strip()
    if not text:
        raise ChangeError("no values given")
    if text.count(":") == 2 and "," not in text:
        a, b, n = (p.strip() for p in text.split(":"))
        try:
            lo, hi, count = float(a), float(b), int(n)
        except ValueError:
            raise ChangeError(f"range {text!r} must be START:STOP:COUNT, such as 50e9:150e9:11") from None
        if count < 1:
            raise ChangeError(f"range {text!r}: COUNT must be at least 1")
        return [_tidy(v) for v in np.linspace(lo, hi, count)] if count > 1 else [_tidy(lo)]
    out: list[Value] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            raise ChangeError(f"empty value in {text!r}")
        out.append(parse_token(token))
    return out


def parse_token(token: str) -> Value:
    """One value written as text: ``x0.8`` (a :class:`Factor`), ``+1y`` (a :class:`Shift`), a number
    (``100e9``, ``2029``), or else the text itself (``min_cost``).

    Sweeps read each ``--vary`` value with it, scenario trees each change value given as text.
    """
    token = token.strip()
    if token[:1] in ("x", "X", "*") and _is_number(token[1:]):
        return Factor(float(token[1:]))
    if re.fullmatch(r"[+-]\d+y", token):
        return Shift(int(token[:-1]))
    if _is_number(token):
        return _tidy(float(token)) if any(c in token for c in ".eE") else int(token)
    return token


def parse_vary(items: Iterable[str]) -> dict[str, list[Value]]:
    """``["budget.total_usd=60e9,80e9", ...]`` -> ``{"budget.total_usd": [60e9, 80e9], ...}``."""
    vary: dict[str, list[Value]] = {}
    for item in items:
        path, sep, values = item.partition("=")
        if not sep or not path.strip():
            raise ChangeError(f"--vary {item!r}: expected PATH=VALUES, such as budget.total_usd=60e9,80e9")
        try:
            vary[path.strip()] = parse_values(values)
        except ChangeError as exc:
            raise ChangeError(f"--vary {path.strip()}: {exc}") from None
    return vary


def _is_number(token: str) -> bool:
    try:
        return math.isfinite(float(token))
    except ValueError:
        return False


def _tidy(v: float) -> float:
    return float(f"{v:.12g}")


def value_label(v: Value) -> str:
    return str(v) if isinstance(v, (Factor, Shift)) else f"{v:g}" if isinstance(v, float) else str(v)


def value_number(v: Value) -> float:
    """The number a value is plotted at: the factor, the shift in years, or the value itself."""
    if isinstance(v, Factor):
        return v.value
    if isinstance(v, Shift):
        return float(v.years)
    return float(v) if isinstance(v, (int, float)) else math.nan


# --------------------------------------------------------------------------- changes


def _get(raw: Mapping, path: str):
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def concrete_changes(base, changes: Mapping[str, Value]) -> dict[str, Any]:
    """Turn factors and shifts into the absolute values :meth:`Instance.with_changes` takes.

    ``base`` is the instance the changes apply to, or its raw mapping (``Instance.raw``).
    """
    raw = base if isinstance(base, Mapping) else base.raw
    return {path: concrete_value(_get(raw, path), path, v) for path, v in changes.items()}


def concrete_value(cur, path: str, v: Value):
    """The absolute value that ``v`` gives at ``path``, whose current value is ``cur`` (or ``_MISSING``)."""
    if isinstance(v, Factor):
        return _scale(cur, path, v.value)
    if isinstance(v, Shift):
        if isinstance(cur, str) and cur.strip().lstrip("+-").isdigit():
            cur = int(cur)
        if isinstance(cur, bool) or not isinstance(cur, int):
            raise ChangeError(f"{path}: a shift ({v}) needs an integer year at the path, "
                             f"got {'nothing' if cur is _MISSING else repr(cur)}")
        return cur + v.years
    return v


def _numeric(x):
    """A raw value as a number where it is one (YAML reads ``100e9`` as text; the loader accepts it)."""
    if isinstance(x, str):
        try:
            return float(x.strip())
        except ValueError:
            return x
    return x


def _scale(cur, path: str, f: float):
    cur = _numeric(cur)
    if cur is _MISSING or cur is None:
        raise ChangeError(f"{path}: a factor needs a value at the path to scale, and the instance has none")
    if isinstance(cur, bool):
        raise ChangeError(f"{path}: cannot scale {cur!r}")
    if isinstance(cur, (int, float)):
        return cur * f
    if isinstance(cur, Mapping):
        try:
            if "start" in cur:  # growth form: scaling the start scales every year
                return {**cur, "start": _numeric(cur["start"]) * f}
            return {k: _numeric(x) * f for k, x in cur.items()}
        except TypeError:
            raise ChangeError(f"{path}: cannot scale {cur!r}") from None
    raise ChangeError(f"{path}: cannot scale {type(cur).__name__} {cur!r}")


def _add(cur, path: str, step: float, years: Sequence[int]):
    """The value at a path moved by ``step`` in every year (marginal values)."""
    cur = _numeric(cur)
    if cur is _MISSING or cur is None:
        raise ChangeError(f"{path}: the instance has no value there to move")
    if isinstance(cur, bool):
        raise ChangeError(f"{path}: cannot move {cur!r}")
    if isinstance(cur, int) and float(step).is_integer():
        return cur + int(step)
    if isinstance(cur, (int, float)):
        return cur + step
    if isinstance(cur, Mapping):
        try:
            if "start" in cur:  # growth form: write it out year by year, then move every year
                v0, g = float(cur["start"]), float(cur["growth"])
                return {t: v0 * (1 + g) ** (t - years[0]) + step for t in years}
            return {k: float(x) + step for k, x in cur.items()}
        except (TypeError, ValueError):
            raise ChangeError(f"{path}: cannot move {cur!r}") from None
    raise ChangeError(f"{path}: cannot move {type(cur).__name__} {cur!r}")


def set_path(raw: dict, path: str, value) -> str | None:
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
