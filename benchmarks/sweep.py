"""Sweep throughput: rebuilding every scenario's model against updating one model in place,
and one worker process against two.

Run from the repository root:

    python benchmarks/sweep.py            # default instance (15 scenarios) and a tiny one (60)
    python benchmarks/sweep.py --quick    # fewer scenarios

Prints a table (scenarios per second, the median seconds per scenario spent
outside HiGHS, which is what the in-place path saves, and the largest
objective difference from the serial in-place run) and writes
``benchmarks/results/sweep.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizer import load_instance  # noqa: E402
from optimizer.analysis.sweep import Factor, sweep  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "sweep.json"

CASES = {
    # the default instance: HiGHS dominates each scenario
    "default": (ROOT / "instances" / "aws-5gw-2026.yaml",
                {"budget.total_usd": [95e9, 100e9, 105e9, 110e9, 115e9],
                 "chips.trn3.price_usd": [Factor(0.9), Factor(1.0), Factor(1.1)]}),
    # a tiny instance: the model-building overhead dominates
    "tiny-supply-cap": (ROOT / "instances" / "tiny-supply-cap.yaml",
                        {"chips.a.supply_units": list(range(1, 6)),
                         "chips.b.price_usd": [50 + 10 * i for i in range(12)]}),
}
CONFIGS = [("rebuild", 1), ("in_place", 1), ("rebuild", 2), ("in_place", 2)]


def run(name: str, quick: bool) -> list[dict]:
    path, vary = CASES[name]
    if quick:
        vary = {p: v[:3] for p, v in vary.items()}
    inst = load_instance(path)
    rows = []
    for how, workers in CONFIGS:
        t0 = time.perf_counter()
        df = sweep(inst, vary, workers=workers, in_place=how == "in_place")
        wall = time.perf_counter() - t0
        overhead = (df.seconds - df.solve_seconds).median()
        rows.append({"case": name, "path": how, "workers": workers, "scenarios": len(df), "wall_s": wall,
                     "scenarios_per_s": len(df) / wall, "median_overhead_s": float(overhead),
                     "median_highs_s": float(df.solve_seconds.median()),
                     "in_place_share": float((df.path == "in_place").mean()),
                     "statuses": df.status.value_counts().to_dict(), "objectives": df.objective.tolist()})
    ref = rows[1]["objectives"]
    for r in rows:
        r["max_rel_diff"] = max((abs(a - b) / max(abs(b), 1e-9) for a, b in zip(r["objectives"], ref)
                                 if a == a and b == b), default=0.0)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--case", choices=list(CASES), action="append")
    args = ap.parse_args()
    results = []
    for name in args.case or list(CASES):
        results += run(name, args.quick)
    head = (f"{'case':<16} {'path':<9} {'workers':>7} {'scen':>5} {'wall s':>8} {'scen/s':>7} "
            f"{'overhead s':>10} {'HiGHS s':>8} {'in place':>8} {'max rel diff':>12}")
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['case']:<16} {r['path']:<9} {r['workers']:>7} {r['scenarios']:>5} {r['wall_s']:>8.2f} "
              f"{r['scenarios_per_s']:>7.2f} {r['median_overhead_s']:>10.4f} {r['median_highs_s']:>8.3f} "
              f"{r['in_place_share']:>8.0%} {r['max_rel_diff']:>12.1e}")
    print()
    for name in {r["case"] for r in results}:
        by = {(r["path"], r["workers"]): r["scenarios_per_s"] for r in results if r["case"] == name}
        print(f"{name}: in place / rebuild = {by[('in_place', 1)] / by[('rebuild', 1)]:.2f}x (1 worker), "
              f"{by[('in_place', 2)] / by[('rebuild', 2)]:.2f}x (2 workers); "
              f"2 workers / 1 worker (in place) = {by[('in_place', 2)] / by[('in_place', 1)]:.2f}x")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    doc = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "system": platform.platform()},
           "results": [{k: v for k, v in r.items() if k != "objectives"} for r in results]}
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, OUT)
    print(f"\nwrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
