"""The result of a policy simulation (spec v3 section 8): its tables, writers and reader.

:func:`optimizer.analysis.simulate.simulate` computes it; the reports, charts and the command line read it
(solved now, or read back from a directory written by :meth:`Simulation.write`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import Problem
from ..files import atomic_write, json_default
from ..instance import Instance, plain
from ..solver import SolveResult, SolveStatus, solver_version
from .core import FORMATS, Plan
from .tables import V1_TABLES


class SimulationFileError(ValueError):
    """A directory that is not a readable simulation: ``problems`` says why."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class PolicyValue:
    """The value of the stochastic policy (spec v3 section 8.3): E[O^stochastic] - E[O^deterministic]
    (max_training; the reverse for min_cost), in objective units.

    ``value``: the difference of the expectations; ``low`` and ``high``: its 95% interval when the paths are
    sampled (``sampled``; from the paired differences), None when every leaf is a path (the value is exact).
    """

    value: float
    low: float | None = None
    high: float | None = None
    sampled: bool = False


@dataclass
class Simulation:
    """The result of :func:`simulate`.

    ``policy_instance`` (P) and ``truth`` (Q) are the two files; ``policies`` the policies simulated;
    ``epochs`` the years each re-plans in; ``sampled`` whether the paths were drawn (with ``seed``).
    ``paths``: one row per policy and path (the realised objective, the perfect-foresight optimum O*_s, the
    regret, spend, unmet demand, the worst status and gap of its epoch solves); ``realised``: the v1 plan
    tables of every path's realised plan with ``policy`` and ``path`` columns; ``summary``: one row per
    policy (expected objective, its standard error when sampled, P10/P50/P90, CVaR, expected regret,
    infeasible paths); ``solves``: every epoch solve; ``value``: the value of the stochastic policy
    (:class:`PolicyValue`); ``seconds``: the run's wall time; ``unit``: the objective's unit; ``plans``:
    the realised plans computed in this process, by (policy, scenario) (see :meth:`plan`).
    """

    policy_instance: Instance
    truth: Instance
    policies: tuple[str, ...]
    epochs: tuple[int, ...]
    sampled: bool
    seed: int
    paths: pd.DataFrame
    realised: dict[str, pd.DataFrame]
    summary: pd.DataFrame
    solves: pd.DataFrame
    value: PolicyValue | None = None
    seconds: float = 0.0
    unit: str = ""
    plans: dict = field(default_factory=dict, repr=False)  # (policy, scenario) -> Plan of the realised decisions

    @property
    def maximize(self) -> bool:
        """Whether the objective is maximised (max_training) rather than minimised (min_cost)."""
        return self.truth.objective.kind == "max_training"

    def plan(self, policy: str, path: str) -> Plan:
        """The realised plan of one path under one policy (a v1 plan of the path's scenario instance)."""
        row = self.paths[(self.paths.policy == policy) & (self.paths.path == path)]
        if row.empty:
            raise KeyError(f"no path {path!r} under policy {policy!r}")
        row = row.iloc[0]
        if (policy, row.scenario) in self.plans:
            return self.plans[policy, row.scenario]
        if not math.isfinite(row.objective):
            raise KeyError(f"path {path!r} has no realised plan under {policy!r}: {row.status} in "
                           f"{row.infeasible_epoch:.0f}")
        tables = {n: df[(df.policy == policy) & (df.path == path)].drop(columns=["policy", "path"])
                  .reset_index(drop=True) for n, df in self.realised.items()}
        status = SolveStatus.OPTIMAL if row.worst_status == "optimal" else SolveStatus.FEASIBLE
        result = SolveResult(status, "realised decisions of a simulated policy", float(row.objective), None,
                             None if pd.isna(row.worst_gap) else float(row.worst_gap), 0.0, 0.0, 0.0, "highs",
                             solver_version())
        plan = Plan(self.truth.tree.scenario(row.scenario).instance, result, **tables, summary=None)
        plan.summary = plan._summary()
        return plan

    def summary_fields(self) -> dict:
        """The simulation as one JSON-ready document (``summary.json``)."""
        doc = {"kind": "simulation", "policy_file": self.policy_instance.name,
               "policy_hash": self.policy_instance.hash, "truth_file": self.truth.name,
               "truth_hash": self.truth.hash, "objective": self.truth.objective.kind, "unit": self.unit,
               "policies": list(self.policies), "epochs": list(self.epochs), "sampled": self.sampled,
               "seed": self.seed, "paths": int(self.paths.path.nunique()), "seconds": self.seconds,
               "solver_version": solver_version(),
               "summary": json.loads(self.summary.to_json(orient="records"))}
        if self.value is not None:
            doc["value_of_stochastic_policy"] = dataclasses.asdict(self.value)
        return doc

    def write(self, directory: str | os.PathLike, formats: Sequence[str] = ("csv",)) -> list[Path]:
        """Write every table in each of ``formats`` (``paths``, ``summary``, ``solves``, ``realised_<table>``),
        ``summary.json`` and copies of the policy and truth files into ``directory``, each atomically;
        returns the paths written."""
        bad = [f for f in formats if f not in FORMATS]
        if bad:
            raise ValueError(f"unknown format(s) {', '.join(bad)}; choose from {', '.join(FORMATS)}")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        tables = {"paths": self.paths, "summary": self.summary, "solves": self.solves,
                  **{f"realised_{n}": df for n, df in self.realised.items()}}
        import yaml

        written = [atomic_write(out / "summary.json", lambda p: Path(p).write_text(
            json.dumps(self.summary_fields(), indent=1, default=json_default) + "\n"))]
        for name, inst in (("policy.yaml", self.policy_instance), ("truth.yaml", self.truth)):
            written.append(atomic_write(out / name, lambda p, inst=inst: Path(p).write_text(
                f"# copy of the instance the simulation read\n# sha256: {inst.hash}\n"
                + yaml.safe_dump(plain(inst.raw), sort_keys=False))))
        for fmt in formats:
            if fmt == "xlsx":
                def write_xlsx(tmp):
                    with pd.ExcelWriter(tmp, engine="openpyxl") as xl:
                        for name, df in tables.items():
                            df.to_excel(xl, sheet_name=name[:31], index=False)

                written.append(atomic_write(out / "simulation.xlsx", write_xlsx))
                continue
            for name, df in tables.items():
                target = out / f"{name}.{fmt}"
                if fmt == "csv":
                    written.append(atomic_write(target, lambda p, df=df: df.to_csv(p, index=False)))
                elif fmt == "parquet":
                    written.append(atomic_write(target, lambda p, df=df: df.to_parquet(p, index=False)))
                elif fmt == "json":
                    written.append(atomic_write(target, lambda p, df=df: df.to_json(p, orient="records",
                                                                                   indent=1)))
        return written

    def __repr__(self) -> str:
        n = self.paths.path.nunique() if len(self.paths) else 0
        head = (f"Simulation({self.policy_instance.name!r} against {self.truth.name!r}: {n} path"
                f"{'s' if n != 1 else ''}{' sampled' if self.sampled else ''}, epochs {list(self.epochs)}")
        if self.value is not None and math.isfinite(self.value.value):
            head += f", value of the stochastic policy {self.value.value:,.6g}"
        return head + ")"


def read_simulation(directory: str | os.PathLike) -> Simulation:
    """Read a simulation directory written by :meth:`Simulation.write` (any one format) back."""
    from ..instance import load_instance

    d = Path(directory)
    doc_path = d / "summary.json"
    if not doc_path.is_file() or json.loads(doc_path.read_text()).get("kind") != "simulation":
        raise SimulationFileError([Problem("", f"{d} is not a simulation directory (no summary.json of kind "
                                               "simulation); write one with capplan simulate FILE --out DIR")])
    doc = json.loads(doc_path.read_text())

    def table(name: str) -> pd.DataFrame:
        for fmt, reader in (("csv", pd.read_csv), ("parquet", pd.read_parquet),
                            ("json", lambda p: pd.read_json(p, orient="records"))):
            if (d / f"{name}.{fmt}").is_file():
                return reader(d / f"{name}.{fmt}")
        if (d / "simulation.xlsx").is_file():
            return pd.read_excel(d / "simulation.xlsx", sheet_name=name[:31])
        raise SimulationFileError([Problem("", f"{d}: no {name}.csv/.parquet/.json nor simulation.xlsx")])

    paths = table("paths")
    for c in ("path", "scenario", "message", "status", "worst_status", "policy"):
        paths[c] = paths[c].fillna("").astype(str)
    realised = {n: table(f"realised_{n}") for n in V1_TABLES}
    for df in realised.values():
        if len(df):
            df["path"] = df["path"].astype(str)
    value = doc.get("value_of_stochastic_policy")
    return Simulation(load_instance(d / "policy.yaml"), load_instance(d / "truth.yaml"), tuple(doc["policies"]),
                      tuple(doc["epochs"]), bool(doc["sampled"]), int(doc["seed"]), paths, realised,
                      table("summary"), table("solves"), PolicyValue(**value) if value else None,
                      float(doc.get("seconds", 0.0)), doc.get("unit", ""))


__all__ = ["PolicyValue", "Simulation", "SimulationFileError", "read_simulation"]
