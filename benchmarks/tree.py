"""How the scenario-tree program grows with the number of scenarios (issue 11), and the shipped tree's time.

Run from the repository root:

    python benchmarks/tree.py                  # 1, 3, 6, 18, 54 scenarios on the default instance
    python benchmarks/tree.py --shipped        # instances/aws-5gw-2026-scenarios.yaml end to end, with VOI
    python benchmarks/tree.py --time-limit 120 --workers 2

The trees are built on the default instance's data (not tuned): the demand
(x1.5 / x1 / x0.5 revealed in 2027), Trainium4 on time or a year late with
half the supply (2028), Trainium4's price (x0.8 / x1 / x1.2, 2029) and the
electricity price (x0.8 / x1 / x1.25, 2030): 1, 3, 6, 18 and 54 scenarios,
each the product of the first stages.  Each case runs in a fresh process;
the table gives the tree's size (node-years, rows, columns, integers), the
stochastic solve, and the value-of-information solves (WS, base plan, EEV).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "instances" / "aws-5gw-2026.yaml"
SHIPPED = ROOT / "instances" / "aws-5gw-2026-scenarios.yaml"
DEMAND = ["regions.us-east.inference_demand_pflops", "regions.eu-west.inference_demand_pflops",
          "regions.ap-northeast.inference_demand_pflops"]
STAGES = [
    {"year": 2027, "name": "demand", "branches": {
        "high": {"probability": 0.3, "changes": {p: "x1.5" for p in DEMAND}},
        "base": {"probability": 0.4},
        "low": {"probability": 0.3, "changes": {p: "x0.5" for p in DEMAND}}}},
    {"year": 2028, "name": "trn4", "branches": {
        "on-time": {"probability": 0.7},
        "late": {"probability": 0.3, "changes": {"chips.trn4.available_from": "+1y",
                                                 "chips.trn4.supply_units": "x0.5"}}}},
    {"year": 2029, "name": "trn4-price", "branches": {
        "cheap": {"probability": 0.25, "changes": {"chips.trn4.price_usd": "x0.8"}},
        "list": {"probability": 0.5},
        "dear": {"probability": 0.25, "changes": {"chips.trn4.price_usd": "x1.2"}}}},
    {"year": 2030, "name": "power-price", "branches": {
        "cheap": {"probability": 0.25, "changes": {"regions.*.electricity_usd_per_mwh": "x0.8"}},
        "base": {"probability": 0.5},
        "dear": {"probability": 0.25, "changes": {"regions.*.electricity_usd_per_mwh": "x1.25"}}}},
]
SIZES = {1: 0, 3: 1, 6: 2, 18: 3, 54: 4}  # scenarios -> stages used


def tree_instance(stages: int) -> dict:
    import yaml

    raw = yaml.safe_load(DEFAULT.read_text())
    raw["name"] = f"aws-5gw-2026-tree-{stages}"
    if stages:
        raw["uncertainty"] = {"stages": STAGES[:stages]}
    return raw


def run_case(source: str, time_limit: float, workers: int, voi: bool) -> dict:
    from optimizer import load_instance, solve

    t0 = time.perf_counter()
    inst = load_instance(SHIPPED if source == "shipped" else tree_instance(int(source)))
    tree = inst.tree
    t1 = time.perf_counter()
    plan = solve(inst, time_limit=time_limit, workers=workers, value_of_information=voi)
    total = time.perf_counter() - t1
    r, s = plan.result, plan.summary.iloc[0]

    def num(key):
        v = s.get(key)
        return None if v is None or v != v else float(v)

    return {"scenarios": len(tree.scenarios), "node_years": len(tree.node_years), "rows": r.rows,
            "columns": r.columns, "integers": r.integers, "status": r.status.value, "gap": r.mip_gap,
            "objective": r.objective, "load_seconds": t1 - t0, "build_seconds": r.build_seconds,
            "solve_seconds": r.solve_seconds, "total_seconds": total, "voi_seconds": total - r.solve_seconds
            - r.build_seconds - r.handoff_seconds,
            **{k: num(k) for k in ("expected_objective", "wait_and_see", "evpi", "base_plan_objective", "vss")},
            "base_plan_status": s.get("base_plan_status"),
            "commitments": None if plan.commitments is None else plan.commitments.to_dict("records")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--time-limit", type=float, default=120)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shipped", action="store_true", help="the shipped scenarios instance, with VOI")
    ap.add_argument("--no-voi", action="store_true", help="skip the value-of-information solves")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="scenario counts to run")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.time_limit, args.workers, not args.no_voi)))
        return
    cases = ["shipped"] if args.shipped else [str(SIZES[int(n)]) for n in args.sizes.split(",")]
    results = {}
    for case in cases:
        print(f"running {case} ...", file=sys.stderr, flush=True)
        cmd = [sys.executable, __file__, "--case", case, "--time-limit", str(args.time_limit),
               "--workers", str(args.workers)] + (["--no-voi"] if args.no_voi else [])
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
        results[case] = json.loads(out.stdout.strip().splitlines()[-1])
    head = (f"{'scenarios':>9}{'node-yrs':>9}{'rows':>7}{'cols':>7}{'ints':>6}{'status':>10}{'gap':>10}"
            f"{'solve s':>9}{'VOI s':>8}{'total s':>9}{'EVPI':>12}{'VSS':>12}")
    print(head)
    print("-" * len(head))
    for r in results.values():
        gap = "-" if r["gap"] is None else f"{r['gap']:.1e}"
        evpi = "-" if r["evpi"] is None else f"{r['evpi']:,.0f}"
        vss = "-" if r["vss"] is None else f"{r['vss']:,.0f}"
        print(f"{r['scenarios']:>9}{r['node_years']:>9}{r['rows']:>7}{r['columns']:>7}{r['integers']:>6}"
              f"{r['status']:>10}{gap:>10}{r['solve_seconds']:>9.1f}{r['voi_seconds']:>8.1f}"
              f"{r['total_seconds']:>9.1f}{evpi:>12}{vss:>12}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
