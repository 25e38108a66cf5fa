r"""One declaration per constraint family, parameter and variable of the model.

Each module of :mod:`formulations` declares what it adds, next to the code
that adds it: a :class:`Family` for each constraint family (its title, the
unit its rows are written in, the math, the instance fields it reads, its
role, the unit its marginal value is reported in, its weight in the elastic
program of ``explain`` and how ``explain`` words a violation), a
:class:`Parameter` for each mutable parameter (the instance field it holds,
its unit and the shape that decides the model's structure), and a
:class:`Variable` for each decision.  Everything that needs to know a family
reads it here: the marginal values (:mod:`optimizer.solver.duals`), the
explanations of infeasibility (:mod:`optimizer.analysis.diagnose`), the key
that decides whether a model can be updated in place
(:func:`formulations.model.structure_key`) and the tables of ``docs/model.md``
(:func:`markdown_tables`).  ``tests/test_registry.py`` fails when a
component of a built model has no declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ROLES = ("definition", "requirement", "limit", "commitment")


@dataclass(frozen=True)
class Words:
    """What ``explain`` says of a violated row: the amount, its unit and a sentence in the instance's terms."""

    amount: float
    unit: str
    message: str


@dataclass(frozen=True)
class Violation:
    """A row of family ``family`` moved by ``move`` (internal units; > 0 above its upper bound... see
    :func:`optimizer.analysis.diagnose.explain`), with what the wording needs."""

    family: str
    key: tuple  # the row's index without its node
    slack: float  # |move|
    move: float  # signed: + means the row's body had to rise (a lower bound short), - fall (an upper bound over)
    instance: Any  # the data of the row's node (or scenario, for per-scenario rows)
    when: Callable[[int], str]  # a year as named in messages (with the node in a tree)
    where: str  # " in scenario s" for per-scenario rows of a tree, else ""
    scaling: Any  # formulations.scaling.Scaling
    commitments: Any = None  # formulations.commitments.Commitments, for commit rows


@dataclass(frozen=True)
class Family:
    """A constraint family: one Pyomo ``Constraint`` component of the model."""

    name: str  # the component's name (``demand``)
    title: str  # what it is, in a planner's words
    math: str  # the rows, in the spec's symbols
    unit: str  # the unit its rows are written in (internal units are scaled; see formulations.scaling)
    reads: tuple[str, ...]  # instance fields it reads (dotted paths, ``*`` for every region or chip)
    role: str  # definition | requirement | limit | commitment
    index: str = "node"  # node: the last index is the node; scenario: the index is a scenario id; global
    marginal_unit: str | None = None  # how its marginal value is reported (None: not priced)
    marginal_scale: Callable[[Any], float] | None = None  # Scaling -> reporting units per internal rhs unit
    elastic_weight: float | None = None  # weight of its violation in explain's elastic program (None: hard)
    elastic_scale: Callable[[Any, tuple], float] | None = None  # (model, index) -> the size a violation is
    # measured against (default: the row's bound)
    words: Callable[[Violation], Words] | None = None  # how explain words a violation

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"family {self.name}: role must be one of {ROLES}, got {self.role!r}")
        if (self.marginal_unit is None) != (self.marginal_scale is None):
            raise ValueError(f"family {self.name}: a marginal unit needs its scale and the reverse")
        if self.elastic_weight is not None and self.words is None:
            raise ValueError(f"family {self.name}: a family explain may relax needs its words")


@dataclass(frozen=True)
class Parameter:
    """A mutable Pyomo ``Param`` of the model: data that a sweep may change in place."""

    name: str  # the component's name (``p_demand``)
    unit: str  # internal unit
    description: str
    path: str | None  # the instance field it holds (None: derived from several, e.g. a variable bound)
    reads: tuple[str, ...] = ()  # instance fields it is computed from (default: its path)
    # which values decide the structure (a row exists, a coefficient is 0): value -> shape; None: any value
    shape: Callable[[Any], Any] | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return self.reads or ((self.path,) if self.path else ())


@dataclass(frozen=True)
class Variable:
    """A decision variable (one Pyomo ``Var`` component)."""

    name: str
    title: str
    unit: str
    domain: str  # integer | binary | continuous
    index: str  # its index, in the spec's symbols


FAMILIES: dict[str, Family] = {}
PARAMETERS: dict[str, Parameter] = {}
VARIABLES: dict[str, Variable] = {}


def declare(*items: Family | Parameter | Variable) -> None:
    """Register the families, parameters and variables a module adds (once each, at import)."""
    for item in items:
        table = {Family: FAMILIES, Parameter: PARAMETERS, Variable: VARIABLES}[type(item)]
        if item.name in table and table[item.name] != item:
            raise ValueError(f"{item.name} is declared twice")
        table[item.name] = item


def family(name: str) -> Family:
    """The declaration of constraint family ``name`` (a KeyError naming the known ones otherwise)."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"no constraint family {name!r}; declared: {', '.join(FAMILIES)}") from None


def marginal_unit(name: str, scaling) -> tuple[str, float] | None:
    """(reporting unit, multiplier from objective units per internal rhs unit), or None: not priced."""
    f = family(name)
    if f.marginal_unit is None:
        return None
    return f.marginal_unit, f.marginal_scale(scaling)


def elastic_weights(role: str) -> dict[str, float]:
    """The families of ``role`` that explain may relax, with their weights."""
    return {f.name: f.elastic_weight for f in FAMILIES.values() if f.role == role and f.elastic_weight is not None}


def param_paths() -> tuple[str, ...]:
    """The instance fields held in mutable parameters: a change of these alone (that keeps the structure
    key) is applied to a built model in place."""
    return tuple(p.path for p in PARAMETERS.values() if p.path)


# --------------------------------------------------------------------------- shapes


def given(value) -> bool:
    """The shape of an optional field: whether it is given (an absent limit has no rows)."""
    return value is not None


def positive_years(series) -> tuple | None:
    """The shape of a series whose zero years have no rows or terms: the years with a positive value."""
    return None if series is None else tuple(t for t, x in series.items() if x > 0)


# --------------------------------------------------------------------------- docs


def markdown_tables() -> str:
    """The tables of constraint families, parameters and variables for ``docs/model.md``, from the
    declarations (a test checks the document holds them as generated)."""
    lines = ["| family | what | unit | role | reads | marginal value |", "|---|---|---|---|---|---|"]
    for f in sorted(FAMILIES.values(), key=lambda f: ROLES.index(f.role)):
        reads = ", ".join(f"`{r}`" for r in f.reads) or "-"
        lines.append(f"| `{f.name}` | {f.title}: {f.math} | {f.unit} | {f.role} | {reads} | "
                     f"{f.marginal_unit or '-'} |")
    lines += ["", "| parameter | holds | unit | what |", "|---|---|---|---|"]
    for p in PARAMETERS.values():
        holds = f"`{p.path}`" if p.path else "derived from " + ", ".join(f"`{r}`" for r in p.fields)
        lines.append(f"| `{p.name}` | {holds} | {p.unit} | {p.description} |")
    lines += ["", "| variable | what | unit | domain | index |", "|---|---|---|---|---|"]
    for v in VARIABLES.values():
        lines.append(f"| `{v.name}` | {v.title} | {v.unit} | {v.domain} | {v.index} |")
    return "\n".join(lines) + "\n"


DOC_START = "<!-- registry:start (generated by: python -m formulations --write docs/model.md) -->"
DOC_END = "<!-- registry:end -->"


def write_docs(path: str) -> bool:
    """Replace the generated block of ``path`` (between :data:`DOC_START` and :data:`DOC_END`) with
    :func:`markdown_tables`; returns whether the file changed."""
    from pathlib import Path

    p = Path(path)
    text = p.read_text()
    head, _, rest = text.partition(DOC_START)
    _, _, tail = rest.partition(DOC_END)
    new = f"{head}{DOC_START}\n{markdown_tables()}{DOC_END}{tail}"
    if new != text:
        p.write_text(new)
    return new != text

