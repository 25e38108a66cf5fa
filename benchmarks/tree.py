"""Scenario trees of 6 to 1,000 scenarios on the default data: how far one command gets (issue 18).

Run from the repository root:

    python benchmarks/tree.py                        # 6, 18, 54, 162 scenarios, each with its target time
    python benchmarks/tree.py --sizes 500,1000       # the large trees (30 minutes each)
    python benchmarks/tree.py --shipped              # instances/aws-5gw-2026-scenarios.yaml end to end
    python benchmarks/tree.py --sizes 54 --time-limit 120 --repeat 3
    python benchmarks/tree.py --write trees/             # the trees as instance files, for capplan solve
    capplan solve trees/aws-5gw-2026-tree-162.yaml --time-limit 600

The trees follow issue 18 on the default instance's data (not tuned):
inference demand revealed in 2027, 2029 and 2031, Trainium4 on time or a year
late (with half its supply) in 2028, and a next generation ("trn5", below)
on time, better or cancelled in 2030:

    scenarios  demand 2027  trn4 2028  demand 2029  trn5 2030                    demand 2031
            6            3          2            -          -                              -
           18            3          2            3          -                              -
           54            3          2            3          3 (on time, better, cancelled)  -
          162            3          2            3          3                              3
          500            5          2            5          2 (on time, cancelled)         5
        1,000            5          2            5          4 (+ late)                     5

Trainium5 is a benchmark assumption, not a forecast: it is derived from
Trainium4 the way the default file derives Trainium4 from Trainium3 (3x the
FP8 peak, price x3 / 1.3^2 for two years of +30%/yr price-performance, PF 3c;
power x1.3; same UltraServer and utilisation), purchasable from 2030 with the
same ramp.  Each case runs in a fresh process (its peak memory is that
process's maximum resident set); ``--time-limit`` bounds the whole run, value
of information included (default: the issue's target for the size).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "instances" / "aws-5gw-2026.yaml"
SHIPPED = ROOT / "instances" / "aws-5gw-2026-scenarios.yaml"
DEMAND = "regions.*.inference_demand_pflops"
TRN5 = {"price_usd": 62000, "power_w": 2720, "peak_pflops": 22.65, "utilization": {"train": 0.20, "infer": 0.14},
        "lifetime_years": 5, "chips_per_unit": 144, "available_from": 2030, "available_until": 2035,
        "opex_usd_per_chip_year": 900, "supply_units": {2030: 2000, 2031: 10000}}
TARGETS = {6: 60, 18: 300, 54: 300, 162: 600, 500: 1800, 1000: 1800}  # seconds (issue 18; 18: between)


def _demand(year: int, factors: dict[str, tuple[float, float]]) -> dict:
    return {"year": year, "name": f"demand-{year}", "branches": {
        name: {"probability": p, **({"changes": {DEMAND: f"x{f:g}"}} if f != 1 else {})}
        for name, (p, f) in factors.items()}}


DEMAND3 = {2027: {"high": (0.3, 1.5), "base": (0.4, 1.0), "low": (0.3, 0.5)},
           2029: {"high": (0.3, 1.25), "base": (0.4, 1.0), "low": (0.3, 0.8)},
           2031: {"high": (0.3, 1.2), "base": (0.4, 1.0), "low": (0.3, 0.85)}}
FIVE = ("vhigh", "high", "base", "low", "vlow")
P5 = (0.1, 0.2, 0.4, 0.2, 0.1)
DEMAND5 = {2027: dict(zip(FIVE, zip(P5, (1.5, 1.25, 1.0, 0.75, 0.5)))),
           2029: dict(zip(FIVE, zip(P5, (1.3, 1.15, 1.0, 0.87, 0.75)))),
           2031: dict(zip(FIVE, zip(P5, (1.25, 1.1, 1.0, 0.9, 0.8))))}
TRN4 = {"year": 2028, "name": "trn4", "branches": {
    "on-time": {"probability": 0.7},
    "late": {"probability": 0.3, "changes": {"chips.trn4.available_from": "+1y", "chips.trn4.supply_units": "x0.5"}}}}
TRN5_BRANCHES = {
    "on-time": ({"probability": 0.5}, {}),
    "better": ({"probability": 0.2}, {"chips.trn5.peak_pflops": "x1.25"}),
    "cancelled": ({"probability": 0.3}, {"chips.trn5.supply_units": 0}),
    "late": ({"probability": 0.15}, {"chips.trn5.available_from": "+1y", "chips.trn5.supply_units": "x0.5"}),
}


def _trn5(names: list[str]) -> dict:
    probs = {"on-time": {"on-time": 0.7, "cancelled": 0.3},
             "better": {"on-time": 0.5, "better": 0.2, "cancelled": 0.3},
             "late": {"on-time": 0.4, "late": 0.15, "better": 0.15, "cancelled": 0.3}}
    table = probs["late" if "late" in names else "better" if "better" in names else "on-time"]
    return {"year": 2030, "name": "trn5", "branches": {
        n: {"probability": table[n], **({"changes": TRN5_BRANCHES[n][1]} if TRN5_BRANCHES[n][1] else {})}
        for n in names}}


SHAPES = {
    6: lambda: [_demand(2027, DEMAND3[2027]), TRN4],
    18: lambda: [_demand(2027, DEMAND3[2027]), TRN4, _demand(2029, DEMAND3[2029])],
    54: lambda: [_demand(2027, DEMAND3[2027]), TRN4, _demand(2029, DEMAND3[2029]),
                 _trn5(["on-time", "better", "cancelled"])],
    162: lambda: [_demand(2027, DEMAND3[2027]), TRN4, _demand(2029, DEMAND3[2029]),
                  _trn5(["on-time", "better", "cancelled"]), _demand(2031, DEMAND3[2031])],
    500: lambda: [_demand(2027, DEMAND5[2027]), TRN4, _demand(2029, DEMAND5[2029]),
                  _trn5(["on-time", "cancelled"]), _demand(2031, DEMAND5[2031])],
    1000: lambda: [_demand(2027, DEMAND5[2027]), TRN4, _demand(2029, DEMAND5[2029]),
                   _trn5(["on-time", "late", "better", "cancelled"]), _demand(2031, DEMAND5[2031])],
}


def tree_instance(scenarios: int) -> dict:
    """The raw instance of the tree with this many scenarios (a key of :data:`SHAPES`)."""
    import yaml

    raw = yaml.safe_load(DEFAULT.read_text())
    raw["name"] = f"aws-5gw-2026-tree-{scenarios}"
    raw["chips"]["trn5"] = dict(TRN5)
    raw["uncertainty"] = {"stages": SHAPES[scenarios]()}
    return raw


def write_trees(folder: Path, sizes: list[int]) -> list[Path]:
    """Write the trees of ``sizes`` as instance files in ``folder`` (created), each whole or not at all."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for n in sizes:
        path = folder / f"aws-5gw-2026-tree-{n}.yaml"
        head = (f"# The {n}-scenario tree of issue 18, written by `python benchmarks/tree.py --write`.\n"
                "# Every number is instances/aws-5gw-2026.yaml's, where each is sourced, except:\n"
                "# - chips.trn5 (Trainium5): a benchmark assumption, not a forecast, derived from Trainium4\n"
                "#   as that file derives Trainium4 from Trainium3 (see benchmarks/tree.py);\n"
                "# - uncertainty.stages: the issue's shape (demand revealed in 2027, 2029, 2031; Trainium4\n"
                "#   on time or late in 2028; Trainium5 on time, better, late or cancelled in 2030), with\n"
                "#   probabilities and factors chosen for the benchmark.\n")
        body = yaml.safe_dump(tree_instance(n), sort_keys=False, default_flow_style=None, width=110)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(head + body)
        tmp.replace(path)  # a killed run leaves no half-written file
        written.append(path)
    return written


def run_case(source: str, time_limit: float, workers: int, voi: bool, gap: float) -> dict:
    from optimizer import load_instance, solve

    t0 = time.perf_counter()
    inst = load_instance(SHIPPED if source == "shipped" else tree_instance(int(source)))
    tree = inst.tree
    t1 = time.perf_counter()
    plan = solve(inst, time_limit=time_limit, workers=workers, value_of_information=voi, mip_gap=gap)
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
            "base_plan_status": s.get("base_plan_status"), "bound": r.bound, "time_limit": time_limit,
            "mip_gap_asked": gap,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "start": r.start,
            "commitments": None if plan.commitments is None else plan.commitments.to_dict("records")}


def _row(r: dict) -> str:
    gap = "-" if r["gap"] is None else f"{r['gap']:.1e}"
    evpi = "-" if r["evpi"] is None else f"{r['evpi']:,.0f}"
    return (f"{r['scenarios']:>6}{r['node_years']:>7}{r['rows']:>8}{r['columns']:>8}{r['integers']:>7}"
            f"{r['status']:>10}{gap:>9}{r['time_limit']:>7.0f}{r['solve_seconds']:>8.1f}{r['voi_seconds']:>7.1f}"
            f"{r['total_seconds']:>8.1f}{r['peak_mb']:>8.0f}{evpi:>10}")


HEAD = (f"{'scen':>6}{'n-yrs':>7}{'rows':>8}{'cols':>8}{'ints':>7}{'status':>10}{'gap':>9}{'limit':>7}"
        f"{'solve s':>8}{'VOI s':>7}{'total s':>8}{'peak MB':>8}{'EVPI':>10}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--time-limit", type=float, help="seconds for each whole run (default: the size's target)")
    ap.add_argument("--gap", type=float, default=1e-4, help="relative MIP gap asked (default 1e-4)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each case")
    ap.add_argument("--shipped", action="store_true", help="the shipped scenarios instance, with VOI")
    ap.add_argument("--no-voi", action="store_true", help="skip the value-of-information solves")
    ap.add_argument("--sizes", help=f"scenario counts, of {sorted(SHAPES)} (default: 6,18,54,162; with --write, all)")
    ap.add_argument("--json", type=Path, help="append the results to this JSON list")
    ap.add_argument("--write", type=Path, metavar="DIR",
                    help="write the trees of --sizes (default: all) as instance files in DIR, and run nothing")
    args = ap.parse_args()
    sizes = (sorted(SHAPES) if args.write else [6, 18, 54, 162]) if args.sizes is None else \
        [int(n) if n.strip().isdigit() else n.strip() for n in args.sizes.split(",")]
    bad = [n for n in sizes if n not in SHAPES]
    if bad:
        ap.error(f"--sizes: no tree of {bad} scenarios; the sizes are {sorted(SHAPES)}")
    if args.write:
        for path in write_trees(args.write, sizes):
            print(path)
        return
    if args.case:
        print(json.dumps(run_case(args.case, args.time_limit, args.workers, not args.no_voi, args.gap)))
        return
    cases = ["shipped"] if args.shipped else [str(n) for n in sizes]
    results = []
    print(HEAD, flush=True)
    print("-" * len(HEAD), flush=True)
    for case in cases:
        limit = args.time_limit or (60 if case == "shipped" else TARGETS[int(case)])
        for _ in range(args.repeat):
            cmd = [sys.executable, __file__, "--case", case, "--time-limit", str(limit), "--gap", str(args.gap),
                   "--workers", str(args.workers)] + (["--no-voi"] if args.no_voi else [])
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if out.returncode:
                print(f"{case}: failed\n{out.stderr[-2000:]}", flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r["case"], r["load"] = case, __import__("os").getloadavg()[0]
            results.append(r)
            print(_row(r), flush=True)
            if args.json:  # appended as each case finishes: an interrupted run keeps what it measured
                old = json.loads(args.json.read_text()) if args.json.exists() else []
                tmp = args.json.with_suffix(".tmp")
                tmp.write_text(json.dumps(old + [r], indent=1) + "\n")
                tmp.replace(args.json)


if __name__ == "__main__":
    main()
