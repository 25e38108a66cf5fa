"""Values that travel: instances, plans, near-optimal ranges and sweep results pickle and deep-copy (a library
user sends them to a process pool or a Dask worker), and capplan's own workers receive validated instances
that they never validate again."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pandas as pd
import pytest

from optimizer import alternatives, load_instance, solve, sweep
from optimizer.instance import core as instance_core

INSTANCES = Path(__file__).resolve().parent.parent / "instances"
TREE = INSTANCES / "tiny-tree-hedge.yaml"
V1 = INSTANCES / "tiny-supply-cap.yaml"


def _roundtrips(obj):
    return [pickle.loads(pickle.dumps(obj)), copy.deepcopy(obj)]


@pytest.mark.parametrize("path", [V1, TREE, INSTANCES / "aws-5gw-2026-scenarios.yaml"])
def test_instances_pickle_and_deep_copy_without_validating_again(path, monkeypatch):
    inst = load_instance(path)
    assert inst.tree.scenarios  # the tree is built (and validated) once, with the instance

    def no_validation(*args, **kwargs):
        raise AssertionError("an instance was validated again")

    monkeypatch.setattr(instance_core, "parse_instance", no_validation)
    for other in _roundtrips(inst):
        assert other == inst and other.hash == inst.hash
        assert [(s.id, s.probability) for s in other.scenarios()] == [(s.id, s.probability) for s in inst.scenarios()]
        assert [s.instance for s in other.scenarios()] == [s.instance for s in inst.scenarios()]
        assert other.tree.node_years == inst.tree.node_years
        with pytest.raises(TypeError):  # still read-only
            other.regions[next(iter(other.regions))].inference_demand_pflops[other.start] = 0


def test_subtrees_travel_with_their_scenarios():
    inst = load_instance(INSTANCES / "aws-5gw-2026-scenarios.yaml")  # two stages
    sub = inst.tree.given(("high",))
    back = pickle.loads(pickle.dumps(sub.instance))
    assert [(s.id, s.probability) for s in back.scenarios()] == [(s.id, s.probability) for s in sub.scenarios]
    assert [s.id for s in back.scenarios()] == ["high/on-time", "high/late"]
    assert back.tree.stage_years == inst.tree.stage_years  # the revealed stage keeps its place


def _same_plan(a, b):
    assert a.status is b.status and a.objective == b.objective and a.mip_gap == b.mip_gap
    for name, df in a.tables().items():
        pd.testing.assert_frame_equal(df, b.tables()[name], check_dtype=False)
    assert a.tree_summary == b.tree_summary and a.parts == b.parts and a.commitment == b.commitment


@pytest.mark.parametrize("path", [V1, TREE])
def test_plans_pickle_and_deep_copy(path):
    plan = solve(load_instance(path), workers=1)
    assert plan.result.handle is not None
    for other in _roundtrips(plan):
        _same_plan(plan, other)
        assert other.result.handle is None  # the live solver stays behind; the tables travel
    assert plan.result.handle is not None  # and the original keeps it


def test_near_optimal_ranges_pickle():
    res = alternatives(load_instance(INSTANCES / "tiny-alternatives.yaml"), slack=0.05)
    for other in _roundtrips(res):
        pd.testing.assert_frame_equal(other.table, res.table)
        _same_plan(other.optimal, res.optimal)
        assert set(other.plans) == set(res.plans)
        for key, plan in res.plans.items():
            _same_plan(plan, other.plans[key])


def test_sweep_results_pickle():
    df = sweep(load_instance(V1), {"chips.a.supply_units": [1, 2]}, workers=1)
    for other in _roundtrips(df):
        pd.testing.assert_frame_equal(other, df)
        assert other.attrs == df.attrs


def test_workers_receive_validated_instances(monkeypatch):
    """The payload of a worker's solve holds the instance itself, and solving it validates nothing."""
    from optimizer import pipeline

    inst = load_instance(TREE)
    jobs = pipeline._Jobs(inst, None, {"time_limit": None, "mip_gap": 1e-4}, None)
    jobs.add("base", inst.base(), None, root=True)
    for s in inst.scenarios():
        jobs.add(f"ws:{s.id}", s.instance, None)
    payloads = [pickle.loads(pickle.dumps(p)) for _, p in jobs.tasks]  # as a worker receives them

    def no_validation(*args, **kwargs):
        raise AssertionError("a worker validated an instance again")

    monkeypatch.setattr(instance_core, "parse_instance", no_validation)
    for p in payloads:
        assert "raw" not in p
        row = pipeline.solve_task(p)
        assert row["status"] == "optimal"
