"""Infeasibility explained in the instance's terms, and marginal values that mean something."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DEFAULT

from optimizer import SolveStatus, load_instance, solve
from optimizer.analysis.diagnose import explain
from optimizer.solver.duals import binding

HERE = Path(__file__).resolve().parent / "instances"

# instance -> (family violated, words every explanation must contain, constraint the IIS must name)
CASES = {
    "infeasible-demand": ("demand", ["2028", "eu", "80,000 PFLOP/s", "short by 45,000 PFLOP/s"],
                          "demand[eu,2028]"),
    "infeasible-frontier": ("frontier", ["2028", "frontier cluster", "200,000 PFLOP/s", "trn3 in us",
                                         "short by 60,000 PFLOP/s"], "frontier_pick[2028]"),
    "infeasible-training-budget": ("training", ["2027", "training floor of 60,000 PFLOP/s",
                                                "short by 50,000 PFLOP/s"], "budget"),
    "infeasible-supply": ("training", ["2026", "training floor of 60,000 PFLOP/s"], "supply[trn3,2026]"),
    "infeasible-annual-budget": ("training", ["2026", "training floor of 20,000 PFLOP/s"],
                                 "budget_annual[2026]"),
    "infeasible-region-ceiling": ("ceiling", ["2026", "120.0 MW", "power ceiling of 80.0 MW"], "ceiling[2026]"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_explanation_names_year_region_and_constraint(name):
    inst = load_instance(HERE / f"{name}.yaml")
    assert solve(inst).status is SolveStatus.INFEASIBLE
    why = explain(inst)
    family, words, conflict = CASES[name]
    assert not why.feasible
    assert family in set(why.violations.family), why
    text = str(why)
    for w in words:
        assert w in text, (w, text)
    assert conflict in why.conflict, why.conflict


def test_feasible_instance_has_nothing_to_explain():
    why = explain(load_instance(DEFAULT))
    assert why.feasible and why.violations.empty and str(why) == "the instance is feasible"


def test_marginals_agree_with_resolving(default_plan):
    inst = default_plan.instance
    m = default_plan.marginals
    assert {"budget", "ceiling", "region_max", "supply", "demand"} <= set(m.family)
    budget = m[m.family == "budget"].iloc[0]
    assert budget.unit == "per +$1B" and budget.binding
    up = solve(inst.with_changes({"budget.total_usd": 101e9})).objective - default_plan.objective
    down = default_plan.objective - solve(inst.with_changes({"budget.total_usd": 99e9})).objective
    assert up > 0 and budget.marginal > 0
    # the local LP price lies near the finite differences of the MIP (same sign, same size)
    assert 0.5 * min(up, down) <= budget.marginal <= 2.0 * max(up, down)

    # one more 100 MW of ceiling in 2027: the fixed-block LP says it is worth nothing (no block
    # can use it), and re-solving agrees
    ceiling = m[(m.family == "ceiling") & (m.year == 2027)].iloc[0]
    assert ceiling.unit == "per +100 MW"
    P = dict(inst.power.ceiling_mw)
    P[2027] += 100
    more = solve(inst.with_changes({"power.ceiling_mw": P})).objective - default_plan.objective
    assert abs(ceiling.marginal) <= 1e-6 * default_plan.objective
    assert abs(more) <= 1e-4 * default_plan.objective


def test_binding_constraints_listed(default_plan):
    b = binding(default_plan.marginals, top=5)
    assert len(b) == 5 and b.binding.all()
    assert (b.marginal.abs().diff().dropna() <= 1e-9).all()  # largest first
    assert "budget" in set(b.family)


def test_explain_keeps_to_the_callers_time_limit(monkeypatch):
    """Every solve behind an explanation (the elastic programs and the conflict search) gets only what is
    left of the caller's time limit, never a fixed allowance of its own."""
    from optimizer.solver import ModelHandle

    given = []
    elastic, iis = ModelHandle.elastic, ModelHandle.iis

    def recording_elastic(self, weights, scale, time_limit):
        given.append(("elastic", time_limit))
        return elastic(self, weights, scale, time_limit)

    def recording_iis(self, time_limit):
        given.append(("iis", time_limit))
        return iis(self, time_limit)

    monkeypatch.setattr(ModelHandle, "elastic", recording_elastic)
    monkeypatch.setattr(ModelHandle, "iis", recording_iis)
    why = explain(load_instance(HERE / "infeasible-training-budget.yaml"), time_limit=7.0)
    assert not why.feasible
    assert [kind for kind, _ in given][-1] == "iis" and "elastic" in [kind for kind, _ in given]
    limits = [t for _, t in given]
    assert all(0 < t <= 7.0 for t in limits), given
    assert limits == sorted(limits, reverse=True), given  # what is left, shrinking


def test_explain_with_no_time_left_says_so():
    why = explain(load_instance(HERE / "infeasible-demand.yaml"), time_limit=0.0)
    assert not why.feasible and why.messages == ["no explanation found within the time limit"]
