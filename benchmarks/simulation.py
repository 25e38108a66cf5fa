"""Policy simulation of the shipped tree, end to end (issue 19): the times docs/simulation.md reports.

Run from the repository root:

    python benchmarks/simulation.py                      # the three cases below, 2 workers, gap 1e-3
    python benchmarks/simulation.py --cases shipped --gap 1e-4

Cases (policy file P = instances/aws-5gw-2026-scenarios.yaml in each):

- ``shipped``: Q = P, all three policies, every path (6 paths, 26 epoch solves);
- ``every-year``: the same with an epoch every year (2026-2035);
- ``truth54``: Q = P's base data with a 54-scenario tree (demand in 2027 and
  Trainium4 in 2028 as in P, then Trainium4's price x0.8 / x1 / x1.2 in 2029
  and electricity x0.8 / x1 / x1.25 in 2030), P's 6-scenario tree as the
  policy's.

Each case runs in this process, one after the other, with a fresh store; the
table gives the wall time, the epoch solves, the peak memory of this process
(it holds the results; the solves run in worker processes), the expected
objective per policy and the value of the stochastic policy.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "instances" / "aws-5gw-2026-scenarios.yaml"
EXTRA_STAGES = [
    {"year": 2029, "name": "trn4-price", "branches": {
        "cheap": {"probability": 0.25, "changes": {"chips.trn4.price_usd": "x0.8"}},
        "list": {"probability": 0.5},
        "dear": {"probability": 0.25, "changes": {"chips.trn4.price_usd": "x1.2"}}}},
    {"year": 2030, "name": "power-price", "branches": {
        "cheap": {"probability": 0.25, "changes": {"regions.*.electricity_usd_per_mwh": "x0.8"}},
        "base": {"probability": 0.5},
        "dear": {"probability": 0.25, "changes": {"regions.*.electricity_usd_per_mwh": "x1.25"}}}},
]


def truth54() -> dict:
    """P's data and tree with two more stages: 54 scenarios."""
    import yaml

    raw = yaml.safe_load(SHIPPED.read_text())
    raw["name"] = "aws-5gw-2026-truth54"
    raw["uncertainty"]["stages"] = raw["uncertainty"]["stages"] + EXTRA_STAGES
    return raw


def run(case: str, workers: int, gap: float, time_limit: float | None) -> dict:
    from optimizer import load_instance, simulate

    policy = load_instance(SHIPPED)
    truth = load_instance(truth54()) if case == "truth54" else None
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        sim = simulate(policy, truth, every_year=case == "every-year", workers=workers, store=tmp,
                       mip_gap=gap, time_limit=time_limit)
        seconds = time.perf_counter() - t0
    summary = sim.summary.set_index("policy")
    solves = sim.solves
    return {"case": case, "seconds": seconds, "solves": len(solves), "paths": int(summary["paths"].iloc[0]),
            "not_proven": int((solves["status"] != "optimal").sum()),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "expected": {p: float(v) for p, v in summary["expected_objective"].items()},
            "cvar": {p: float(v) for p, v in summary["cvar"].items()},
            "value": sim.value.value if sim.value is not None else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="shipped,truth54,every-year")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--gap", type=float, default=1e-3)
    ap.add_argument("--time-limit", type=float, default=None, help="seconds for each epoch solve")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    head = f"{'case':<12}{'paths':>6}{'solves':>7}{'unproven':>9}{'seconds':>9}{'peak MB':>8}" \
           f"{'E[stoch]':>12}{'E[det]':>12}{'E[perfect]':>12}{'value':>10}"
    print(head)
    print("-" * len(head), flush=True)
    results = []
    for case in args.cases.split(","):
        r = run(case, args.workers, args.gap, args.time_limit)
        results.append(r)
        e = r["expected"]
        print(f"{case:<12}{r['paths']:>6}{r['solves']:>7}{r['not_proven']:>9}{r['seconds']:>9.1f}{r['peak_mb']:>8.0f}"
              f"{e.get('stochastic', float('nan')):>12,.0f}{e.get('deterministic', float('nan')):>12,.0f}"
              f"{e.get('perfect', float('nan')):>12,.0f}{(r['value'] or float('nan')):>10,.0f}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
