"""The scenarios of a scenario tree (spec v2 section 4.1), each its own validated v1 instance.

A scenario is a path through the stages, one branch per stage (the Cartesian
product, first stage slowest).  Its instance is the file without its
``uncertainty`` section with the branches' changes applied in stage order,
each acting from its stage year Y on:

* a series (rule 1) is resolved per year from the parent (the instance of
  the stages before), changed, and every year < Y takes the parent's value
  again: the scenario's series is written out year by year;
* ``budget.total_usd`` (rule 2) takes its new value;
* a key of chip G (rule 3) takes its new value, provided G has no chip in
  service in any year < Y in the parent and after the change (no installed
  chips, not purchasable in any year of horizon.start .. Y-1).

Each node of the tree (a scenario, or the part of it up to a stage) is built
once from its parent and validated as a v1 instance; its problems carry its
id (``scenario high/late: ...``; ``scenarios high/*: ...`` for a node before
the last stage, shared by every scenario through it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from ..errors import InstanceError, Problem
from .changes import _MISSING, ChangeError, Factor, concrete_value
from .data import Branch, Uncertainty, plain
from .fields import Located
from .models import change_targets, path_of
from .tree import Scenario

_CHIP_ATTRS = {"utilization.train": "util_train", "utilization.infer": "util_infer"}


def expand(base, uncertainty: Uncertainty,
           parse: Callable[[dict], Any]) -> tuple[tuple[Scenario, ...], dict[str, Any], list]:
    """The scenarios of ``base`` under ``uncertainty``, the revealed data of every node (the instance with
    the changes of the node's own branches only: what is known once those stages are revealed), or the
    problems found (``parse`` validates a raw v1 mapping into an Instance)."""
    problems: dict[tuple[str, str], None] = {}  # ordered and without repeats
    nodes = [((), 1.0, base)]
    revealed = {"": base}
    n = len(uncertainty.stages)
    for i, stage in enumerate(uncertainty.stages):
        rule3: dict[tuple[str, str], list[str]] = {}
        invalid: dict[str, list[str]] = {}  # problem of a node's instance -> the nodes that have it
        children = []
        for ids, p, parent in nodes:
            for branch in stage.branches:
                where = f"uncertainty.stages[{i}].branches.{branch.id}.changes"
                child = _apply(parent, branch, stage.year, where, parse, problems, rule3, invalid,
                               "/".join(ids), _label(ids + (branch.id,), n))
                if child is not None:
                    children.append((ids + (branch.id,), p * branch.probability, child))
                    revealed["/".join(ids + (branch.id,))] = child
        for (path, message), parents in rule3.items():
            if i and len(parents) < len(nodes):
                message += f" (after {', '.join(parents)})"
            problems[(path, message)] = None
        for message, labels in invalid.items():
            shown = ", ".join(labels[:5]) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")
            kind = "scenario" if len(labels) == 1 and "*" not in labels[0] else "scenarios"
            problems[("uncertainty", f"{kind} {shown}: {message}")] = None
        nodes = children
    if problems:
        return (), {}, [Problem(path, message) for path, message in problems]
    return tuple(Scenario("/".join(ids), ids, p, inst) for ids, p, inst in nodes), revealed, []


def _label(ids: tuple[str, ...], stages: int) -> str:
    return "/".join(ids + ("*",) * (stages - len(ids)))


def _apply(parent, branch: Branch, year: int, where: str, parse, problems, rule3, invalid, after, label):
    """The child of ``parent`` through ``branch`` (None when some change or the result is invalid)."""
    if not branch.changes:
        return parent
    raw = plain(parent.raw)
    ok = True
    chips_changed = []
    for path, value in branch.changes.items():
        loc = f"{where}.{path}"
        kind, spec, targets = change_targets(path, list(parent.regions), list(parent.chips))
        value = plain(value)
        for target in targets:
            dotted = ".".join(target)
            try:
                if kind == "series":
                    new = _series(parent, target, spec, value, year)
                else:
                    new = concrete_value(_current(parent, raw, target), dotted, value)
            except (ChangeError, PydanticCustomError, ValidationError) as exc:
                errors = Located()
                errors.nested((loc,), exc)
                for where_, message in errors.items:
                    problems[(path_of(where_), message)] = None
                ok = False
                continue
            if kind == "chip":
                reason = _in_service_before(parent, target[1], year)
                if reason:
                    rule3.setdefault((loc, f"chip {target[1]} {reason}; only its series may change"),
                                     []).append(after)
                    ok = False
                    continue
                chips_changed.append((loc, target[1]))
            _set(raw, target, new)
    if not ok:
        return None
    try:
        child = parse(raw)
    except InstanceError as exc:
        for p in exc.problems:
            invalid.setdefault(str(p), []).append(label)
        return None
    for loc, gid in chips_changed:
        reason = _in_service_before(child, gid, year)
        if reason:
            rule3.setdefault((loc, f"after the change, chip {gid} {reason}"), []).append(after)
            ok = False
    return child if ok else None


def _in_service_before(inst, gid: str, year: int) -> str | None:
    """Why chip ``gid`` has chips in service in some year before ``year`` (rule 3), or None."""
    g = inst.chips[gid]
    if g.installed:
        return f"has installed chips, in service before {year} (the stage year)"
    first, last = max(g.available_from, inst.start), min(g.available_until, year - 1)
    if first <= last:
        return f"can be bought in {first}, before {year} (the stage year)"
    return None


def _resolved(inst, target: tuple):
    """The parent's resolved series at a target path (None when the instance has none)."""
    if target[0] in ("regions", "chips"):
        return getattr(getattr(inst, target[0])[target[1]], target[2])
    return getattr(getattr(inst, target[0]), target[1])


def _series(parent, target: tuple, spec, value, year: int) -> dict[int, float]:
    """Rule 1: the parent's series, changed from ``year`` on, written out year by year."""
    old = _resolved(parent, target)
    name = ".".join(target)
    if old is None:
        raise ChangeError(f"{name}: the instance has none, so the years before {year} (the stage year) would "
                          "have no value; give the series in the file")
    if isinstance(value, Factor):
        new = {t: old[t] * value.value for t in parent.years}
    else:
        new = spec.resolve(value, parent.years)
    out = {t: (old[t] if t < year else new[t]) for t in parent.years}
    try:  # the changed years within the field's bounds: one problem for the change, not one per year
        spec.resolve(out, parent.years)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        more = f" (and {len(errors) - 1} more years)" if len(errors) > 1 else ""
        raise ChangeError(f"gives {name}.{errors[0]['loc'][0]}: {errors[0]['msg']}{more}") from None
    return out


def _current(parent, raw: dict, target: tuple):
    """The value at a target path as the file holds it, else the instance's (a default such as
    ``available_until``), else missing."""
    node: Any = raw
    for key in target:
        if not isinstance(node, dict) or key not in node:
            break
        node = node[key]
    else:
        return node
    if target[0] == "chips":  # a default: available_from, available_until, chips_per_unit, ...
        key = ".".join(target[2:])
        value = getattr(parent.chips[target[1]], _CHIP_ATTRS.get(key, key), _MISSING)
        return value if isinstance(value, (int, float)) else _MISSING
    if target == ("budget", "total_usd") and parent.budget.total_usd is not None:
        return parent.budget.total_usd
    return _MISSING


def _set(raw: dict, target: tuple, value) -> None:
    node = raw
    for key in target[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if value is None:
        node.pop(target[-1], None)
    else:
        node[target[-1]] = value
