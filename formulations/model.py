r"""The capacity-planning MIP of spec model-v1 section 2, over the scenario tree of model-v2 section 4.2.

:func:`build_model` is pure: no solving, no I/O.  It creates the sparse index
sets and the parameters, then lets each module add its variables and shared
expressions (fleet, facilities, spend), then calls one ``add_<family>``
function per constraint family in a fixed order, and finally assembles the
objective from the terms the modules contribute (the way GenX modules add
their own terms):

=================================  ===============================================================
:mod:`formulations.fleet`          chips bought, installed and assigned (n, N, xT, xI, Draw, Train)
:mod:`formulations.facilities`      campus blocks and power (K, k, Cap, facility, region_max, ceiling)
:mod:`formulations.serving`         inference served and unmet (y, m, serve, demand; the penalty term)
:mod:`formulations.money`           spend and budgets (Spend, budget, budget_annual; the spend term)
:mod:`formulations.training`        training floor and frontier cluster (z; the training term)
:mod:`formulations.salvage`         the terminal value of spec v2 section 5
:mod:`formulations.risk`            CVaR of spec v2 section 4.2
:mod:`formulations.commitments`     decisions of an earlier plan held (spec v2 section 6)
=================================  ===============================================================

Each family, parameter and variable is declared once in
:mod:`formulations.registry`.  Every year-t variable exists once per node of
year t (the instance's :class:`~optimizer.instance.tree.ScenarioTree`) and
carries the node as the last index: ``n[g,r,t,v]``.  A v1 instance is the
one-node tree (``v = ""`` in every year), so the deterministic program and
the deterministic equivalent of a scenario tree are built by the same code.

Internal units (see :mod:`formulations.scaling`): chip quantities in
purchasable units of each chip, money in ``S.money_usd``, compute in
``S.compute_pflops``, power in MW.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyomo.environ as pyo

from . import facilities, fleet, money, serving, training
from .commitments import Commitments, add_commitments
from .params import _cum_k_upper, _k_upper, _n_upper, add_params, param_values
from .registry import PARAMETERS
from .risk import add_cvar
from .rows import lo, tolerance
from .salvage import terminal_value
from .scaling import Scaling
from .sets import add_sets, index_sets

if TYPE_CHECKING:  # the model reads an Instance; it never imports the optimizer package
    from optimizer.instance import Instance, ScenarioTree


@dataclass
class ModelInfo:
    """What the solver and the reports need to know about a built model."""

    scaling: Scaling
    objective_factor: float  # spec objective = factor * internal objective value
    trivially_infeasible: list[tuple[str, str]] = field(default_factory=list)


def build_model(source: Instance | ScenarioTree, *, commitments: Commitments | None = None,
                scaling: Scaling | None = None) -> pyo.ConcreteModel:
    """Build the Pyomo model of an instance (spec section 2, over its scenario tree) or of a tree (a subtree
    from :meth:`~optimizer.instance.tree.ScenarioTree.given`).  Pure: no solving, no I/O.

    ``commitments`` fixes purchases and block starts of some years (spec v2
    section 6, :func:`~formulations.commitments.add_commitments`).  ``scaling``: the internal units
    (default: chosen for the instance, :meth:`Scaling.for_instance`).
    """
    tree = getattr(source, "tree", source)
    inst = tree.instance
    S = scaling or Scaling.for_instance(inst)
    m = pyo.ConcreteModel(name=inst.name)
    m.info = None  # set at the end; a plain attribute, not a component
    m._inst = inst
    m._tree = tree
    m._S = S
    m._infeasible = []
    m._constant_rows = []  # (name, lhs, rhs, what) of rows without variables, re-checked by update_model
    m._structural = []  # (name, message) infeasible by the model's structure alone; update_model keeps them

    add_sets(m, tree)
    add_params(m, tree, S)
    fleet.add_variables(m)
    facilities.add_variables(m)
    fleet.add_assignment_variables(m)
    serving.add_variables(m)
    training.add_variables(m)
    fleet.add_expressions(m, tree, S)
    facilities.add_expressions(m, tree)
    money.add_expressions(m, tree, S)

    facilities.add_cumulative_blocks(m, tree)
    fleet.add_assign(m, tree)
    facilities.add_facility(m, tree)
    facilities.add_region_max(m, tree)
    facilities.add_ceiling(m, tree)
    fleet.add_supply(m, tree)
    serving.add_serve(m, tree)
    serving.add_demand(m, tree)
    money.add_budget(m, tree, S)
    training.add_training(m, tree, S)
    training.add_frontier(m, tree, S)
    if commitments is not None:
        add_commitments(m, tree, commitments)

    factor = add_objective(m, tree, S)
    m.info = ModelInfo(S, factor, m._infeasible + m._structural)
    return m


# --------------------------------------------------------------------------- objective


def _training_term(m, tree, S, kind):
    """+Train (max_training)."""
    if kind == "max_training":
        return lambda t, v: (1.0, m.Train[t, v])
    return None


def _unmet_term(m, tree, S, kind):
    """-lambda sum_d m (max_training, PFLOP/s) or +lambda sum_d m (min_cost, USD per PFLOP/s-year)."""
    lam = tree.scenarios[0].instance.objective.unmet_penalty or 0.0
    unmet = serving.unmet_by_node(m)
    if kind == "max_training":
        return lambda t, v: (-1.0, lam * sum(unmet.get((t, v), [])))
    scale = lam * S.compute_pflops / S.money_usd
    return lambda t, v: (1.0, scale * sum(unmet.get((t, v), [])))


def _spend_term(m, tree, S, kind):
    """-epsilon Spend / 1e9 (max_training, the cost weight) or +Spend (min_cost)."""
    if kind == "max_training":
        o = tree.scenarios[0].instance.objective
        spend_w = o.cost_weight * S.money_usd / (1e9 * S.compute_pflops)
        return lambda t, v: (-1.0, spend_w * m.Spend[t, v])
    return lambda t, v: (1.0, m.Spend[t, v])


OBJECTIVE_TERMS = {
    "max_training": (_training_term, _unmet_term, _spend_term),
    "min_cost": (_spend_term, _unmet_term),
}
"""The terms each family contributes to a year's objective, by objective kind, in the order they are summed."""


def add_objective(m, tree, S: Scaling) -> float:
    r"""The spec objective, in internal units; returns the factor to spec units.

    Per scenario s (its path of node-years, plus the terminal value of spec v2 section 5 when
    ``end_of_horizon: salvage``):

    max_training: :math:`O_s = \sum_t \delta_t (Train_t - \lambda \sum_d m_{d,t}) - \epsilon \sum_t \delta_t
    Spend_t / 10^9`  (PFLOP/s-years, discounted)

    min_cost: :math:`O_s = \sum_t \delta_t (Spend_t + \lambda \sum_d m_{d,t})`  (USD, discounted)

    The objective is :math:`(1-w) E + w\,CVaR` with :math:`E = \sum_s p_s O_s` (:mod:`formulations.risk`).
    """
    base = tree.scenarios[0].instance
    o = base.objective
    terms = [make(m, tree, S, o.kind) for make in OBJECTIVE_TERMS[o.kind]]
    terms = [term for term in terms if term is not None]

    def yearly(m, t, v):
        parts = [term(t, v) for term in terms]
        total = parts[0][1] if parts[0][0] > 0 else -parts[0][1]
        for sign, expr in parts[1:]:
            total = total + expr if sign > 0 else total - expr
        return base.delta(t) * total

    m.Yearly = pyo.Expression(m.NY, rule=yearly)
    salvage = getattr(o, "end_of_horizon", "truncate") == "salvage"
    tv = terminal_value(m, tree, S) if salvage else {}
    m.Terminal = pyo.Expression(list(tv), rule=lambda m, t, v: tv[t, v])
    paths = {s.id: tree.path(s) for s in tree.scenarios}
    m.O = pyo.Expression(
        m.SC, rule=lambda m, s: sum(m.Yearly[t, v] + (m.Terminal[t, v] if (t, v) in tv else 0)
                                    for t, v in paths[s].items()))
    # E = sum_s p_s O_s, written per node-year: each node's terms weighted by the probability of reaching it
    expected = sum(tree.probability[v] * (m.Yearly[t, v] + (m.Terminal[t, v] if (t, v) in tv else 0))
                   for t, v in m.NY)
    maximize = o.kind == "max_training"
    sense = pyo.maximize if maximize else pyo.minimize
    if tree.risk:
        w = tree.risk_weight
        m.obj = pyo.Objective(expr=(1 - w) * expected + w * add_cvar(m, tree, maximize), sense=sense)
    else:
        m.obj = pyo.Objective(expr=expected, sense=sense)
    return S.compute_pflops if maximize else S.money_usd


# --------------------------------------------------------------------------- the structure of a model


def structure_key(inst: Instance | ScenarioTree) -> tuple:
    """What decides the model's structure: two instances with equal keys differ only in parameter values.

    Derived, not listed: every field of every scenario's instance is part of
    the key (:func:`data_key`), except the fields held in a mutable parameter
    (:data:`~formulations.registry.PARAMETERS`), of which only the shape
    counts (whether an optional limit is given, which years are zero).  So is
    whatever decides which columns exist or are fixed at zero (the index sets,
    and the purchase and block variables whose bounds are zero: a row whose
    variables are all fixed at zero is not sent to the solver), and the tree's
    shape, probabilities and risk measure.
    """
    tree = getattr(inst, "tree", inst)
    sets = index_sets(tree)
    scenarios = tuple((s.id, s.probability, data_key(s.instance)) for s in tree.scenarios)
    zero_n = tuple(i for i in sets["N_IDX"] if _n_upper(tree, *i) == 0)
    zero_k = tuple(i for i in sets["K_IDX"] if _k_upper(tree, *i) == 0)
    zero_k += tuple(("K", *i) for i in sets["K_IDX"] if _cum_k_upper(tree, *i) == 0)
    return (tree.stage_years, tree.cvar_alpha, tree.risk_weight, scenarios,
            tuple((k, tuple(v)) for k, v in sets.items()), zero_n, zero_k)


KEY_EXCLUDED = ("name", "description", "raw", "source", "uncertainty")
"""Instance fields the model never reads (the tree's structure is keyed from the tree itself)."""


def data_key(inst: Instance) -> tuple:
    """Every field of a (v1) instance the model reads, as a hashable tuple of ``(path, value)``; a field held
    in a mutable parameter contributes only its shape."""
    shapes = {p.path: p.shape for p in PARAMETERS.values() if p.path}
    out = []

    def shape_of(path: str):
        for pattern, shape in shapes.items():
            if fnmatch.fnmatchcase(path, pattern):
                return True, shape
        return False, None

    def walk(path: str, value) -> None:
        held, shape = shape_of(path)
        if held:
            out.append((path, "param", None if shape is None else shape(value)))
        elif dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                if f.name != "id":
                    walk(f"{path}.{f.name}", getattr(value, f.name))
        elif isinstance(value, Mapping):
            if value and all(isinstance(k, int) for k in value):  # a series
                out.append((path, tuple(value.items())))
            else:
                for k, v in value.items():
                    walk(f"{path}.{k}", v)
        elif isinstance(value, tuple):
            out.append((path, tuple(dataclasses.astuple(x) if dataclasses.is_dataclass(x) else x for x in value)))
        else:
            out.append((path, value))

    for f in dataclasses.fields(inst):
        if f.name not in KEY_EXCLUDED:
            walk(f.name, getattr(inst, f.name))
    return tuple(out)


def update_model(m, inst: Instance | ScenarioTree) -> None:
    """Apply ``inst`` to a model built for an instance with the same :func:`structure_key`, in place.

    Sets the mutable parameters (coefficients, right-hand sides and bounds),
    keeps the model's internal scaling (reports read it from the model, so
    the units stay consistent), and re-checks the rows that have no
    variables.  A persistent solver then needs ``update_parameters()``.
    """
    tree = getattr(inst, "tree", inst)
    for name, value in param_values(tree, m._S, m._sets).items():
        getattr(m, name).store_values(value)
    m._inst = tree.instance
    m._tree = tree
    m.info.trivially_infeasible = m._structural + [
        (name, what()) for name, lhs, rhs, what in m._constant_rows if lo(lhs - rhs) > tolerance(rhs)
    ]


DECISIONS = ("n", "K", "k", "xT", "xI", "y", "m", "z")
"""The decision variables indexed by node (the last index), in the order they are declared."""


def node_variables(m, node: str, years=None) -> list[tuple[str, tuple, object]]:
    """``(name, index, variable)`` of every decision of ``node`` (in ``years``, default all of them): the
    variables the scenarios through the node share (mpi-sppy calls them the node's non-anticipative
    variables)."""
    out = []
    for name in DECISIONS:
        var = m.component(name)
        for index, v in var.items():
            if index[-1] == node and (years is None or index[-2] in years):
                out.append((name, index, v))
    return out


def node_values(m, node: str, years=None) -> list[tuple[str, tuple, float]]:
    """``(name, index, value)`` of the decisions of ``node`` in a solved model (:func:`node_variables`)."""
    return [(name, index, 0.0 if v.value is None else float(v.value)) for name, index, v in
            node_variables(m, node, years)]


__all__ = ["DECISIONS", "OBJECTIVE_TERMS", "Commitments", "ModelInfo", "build_model", "data_key", "node_values",
           "node_variables", "structure_key", "update_model"]
