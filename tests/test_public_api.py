"""The library's public face: every name in ``optimizer.__all__`` and every parameter is documented, a plan
has a short repr and its summary fields as plain values (issue 21, item 8)."""

from __future__ import annotations

import enum
import inspect
import re

import pandas as pd
import pytest
from conftest import ROOT, solved_file

import optimizer

TINY = ROOT / "instances" / "tiny-min-cost.yaml"
COMMIT = ROOT / "instances" / "tiny-commit.yaml"

# documented by the lead's refactor of optimizer/analysis/diagnose.py (left alone here); the test below fails as
# soon as one of them is documented, so that it leaves this list
PENDING: set[str] = set()  # names documented later (none)


def _doc(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    if inspect.isclass(obj) and doc.startswith(f"{obj.__name__}("):  # a dataclass's generated signature
        return ""
    return doc


def _mentions(doc: str, name: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", doc) is not None


def _parameters(func) -> list[str]:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return []
    return [p.name for p in sig.parameters.values()
            if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def undocumented(names=None) -> list[str]:
    """Every public name, method, property and parameter of ``optimizer.__all__`` without documentation."""
    out = []
    for name in names or optimizer.__all__:
        obj = getattr(optimizer, name)
        doc = _doc(obj)
        if not doc:
            out.append(f"{name}: no docstring")
        if inspect.isfunction(obj):
            out += [f"{name}: {p}" for p in _parameters(obj) if not _mentions(doc, p)]
            continue
        if not inspect.isclass(obj) or issubclass(obj, enum.Enum):
            continue
        init = obj.__init__
        own_init = init is not object.__init__ and init.__qualname__.startswith(obj.__name__ + ".") \
            and not getattr(obj, "__dataclass_fields__", None)
        both = doc + ("\n" + (inspect.getdoc(init) or "") if own_init else "")
        out += [f"{name}(): {p}" for p in _parameters(obj) if not _mentions(both, p)]
        for attr, value in vars(obj).items():
            if attr.startswith("_"):
                continue
            if isinstance(value, property):
                if not (value.__doc__ or "").strip():
                    out.append(f"{name}.{attr}: no docstring")
                continue
            func = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
            if inspect.isfunction(func):
                fdoc = inspect.getdoc(func) or ""
                if not fdoc:
                    out.append(f"{name}.{attr}: no docstring")
                out += [f"{name}.{attr}: {p}" for p in _parameters(func) if not _mentions(fdoc, p)]
    return out


def test_every_public_name_and_parameter_is_documented():
    missing = [m for m in undocumented() if m not in PENDING]
    assert not missing, "undocumented:\n" + "\n".join(missing)
    still = [m for m in PENDING if m in undocumented()]
    assert sorted(still) == sorted(PENDING), f"documented now, remove from PENDING: {set(PENDING) - set(still)}"


def test_the_documentation_check_can_fail():
    def f(alpha, beta=1):
        """Uses alpha."""

    class C:
        def m(self, gamma):
            return gamma

        @property
        def p(self):
            return 1

    optimizer.__dict__["_probe_f"], optimizer.__dict__["_probe_c"] = f, C
    try:
        found = undocumented(["_probe_f", "_probe_c"])
    finally:
        del optimizer.__dict__["_probe_f"], optimizer.__dict__["_probe_c"]
    assert "_probe_f: beta" in found and "_probe_f: alpha" not in found
    assert {"_probe_c: no docstring", "_probe_c.m: no docstring", "_probe_c.m: gamma",
            "_probe_c.p: no docstring"} <= set(found)


def test_help_of_solve_describes_every_parameter():
    doc = inspect.getdoc(optimizer.solve)
    for p in ("progress", "warm_start", "on_step", "threads", "log", "time_limit", "mip_gap", "workers", "client"):
        assert _mentions(doc, p), p


# ------------------------------------------------------------------ repr and KPIs


def test_plan_repr_is_short_and_says_what_matters():
    plan = solved_file(str(TINY))
    text = repr(plan)
    assert text == "<Plan tiny-min-cost 2026-2026: optimal, objective 54,760 (min_cost), gap 0.0000%, spend $54,760>"
    assert len(text) < 200


def test_kpis_are_scalars_by_attribute_and_key():
    plan = solved_file(str(TINY))
    k = plan.kpis
    assert isinstance(plan.summary, pd.DataFrame) and len(plan.summary) == 1  # the table stays
    assert k.total_spend_usd == pytest.approx(54760) and isinstance(k.total_spend_usd, float)
    assert k["status"] == "optimal" and k.objective == pytest.approx(54760)
    assert k.budget_used_share is None  # no total budget: a field without a value
    assert dict(k)["instance"] == "tiny-min-cost" and len(k) == len(plan.summary.columns)
    with pytest.raises(AttributeError, match="'commitment_cost' is not a summary field of this plan"):
        _ = k.commitment_cost
    with pytest.raises(KeyError, match="evpi"):
        _ = k["evpi"]
    with pytest.raises(AttributeError, match="read-only"):
        k.objective = 1.0


def test_kpis_of_a_replan_hold_the_commitment_cost():
    """tiny-commit.yaml's hand computation: holding the earlier plan through 2026 costs 60 - 52 = 8."""
    from optimizer import load_instance, solve

    replan = solve(load_instance(COMMIT), commit=ROOT / "tests" / "instances" / "tiny-commit-plan", through=2026)
    assert replan.kpis.objective == pytest.approx(52)
    assert replan.kpis.commitment_cost == pytest.approx(8)
    assert replan.kpis.committed_through == 2026
