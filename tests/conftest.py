"""Shared fixtures: solved plans are cached per session (solving is the slow part)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # plan_checker

DEFAULT = ROOT / "instances" / "aws-5gw-2026.yaml"


@functools.cache
def solved_file(path: str):
    from optimizer import load_instance, solve

    return solve(load_instance(path))


@pytest.fixture(scope="session")
def default_plan():
    return solved_file(str(DEFAULT))


def tiny(**over) -> dict:
    """A one-region, one-chip instance with round numbers, for status tests."""
    data = {
        "name": "tiny",
        "horizon": {"start": 2026, "end": 2027},
        "budget": {"total_usd": 1000},
        "regions": {"r": {"pue": 1, "electricity_usd_per_mwh": 0, "block_mw": 1, "block_capex_usd": 10,
                          "build_lead_years": 0, "existing_mw": 2, "inference_demand_pflops": 1}},
        "chips": {"g": {"price_usd": 100, "power_w": 1e6, "peak_pflops": 1,
                        "utilization": {"train": 1, "infer": 1}, "lifetime_years": 2}},
    }
    for path, value in over.items():
        node = data
        *parents, last = path.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return data
