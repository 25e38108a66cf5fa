"""Progressive hedging (mpi-sppy, optimizer.solver.ph) against the deterministic equivalent (DE) on scenario trees.

Run from the repository root:

    python benchmarks/ph.py                                  # shipped tree, 18 and 54 scenarios; DE and PH on 3 ranks
    python benchmarks/ph.py --sizes shipped --ranks 1,2,3 --time-limit 120
    python benchmarks/ph.py --sizes 162 --no-de --json benchmarks/results/ph.json
    python benchmarks/ph.py --sizes 18 --config rho=0.3 --config spokes=lagrangian,xhatshuffle

Trees: ``shipped`` is instances/aws-5gw-2026-scenarios.yaml (6 scenarios);
``N`` scenarios (6, 18, 54, 162, 500, 1000) are the trees of
benchmarks/tree.py, built from the default data.  Both methods get the same time limit; the DE
is the one of ``optimizer.solve`` (capplan's starting plan and HiGHS, no
value of information), run in a fresh process so that its peak memory is its
own.  PH's peak memory is the largest rank's (``mem/rank``) and the sum over
its ranks (``mem sum``).  The gap of both is |bound - plan| / |plan|, the
plan being the best non-anticipative plan found (the inner bound).  ``wall``
is what the caller waited: for PH, the launch of ``mpiexec`` included.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
SHIPPED = ROOT / "instances" / "aws-5gw-2026-scenarios.yaml"
def instance(size: str):
    from optimizer import load_instance

    if size == "shipped":
        return load_instance(SHIPPED)
    from tree import SHAPES, tree_instance

    if int(size) not in SHAPES:
        raise SystemExit(f"no tree of {size} scenarios (known: shipped, {', '.join(map(str, SHAPES))})")
    return load_instance(tree_instance(int(size)))


def rel_gap(plan, bound):
    if plan is None or bound is None:
        return None
    return abs(bound - plan) / max(abs(plan), 1e-9)


def run_de(size: str, time_limit: float) -> dict:
    """The DE in this process (called in a fresh one by :func:`de_case`)."""
    from optimizer import solve

    inst = instance(size)
    t0 = time.perf_counter()
    plan = solve(inst, time_limit=time_limit, value_of_information=False)
    r = plan.result
    return {"method": "DE", "size": size, "scenarios": len(inst.tree.scenarios), "ranks": 1,
            "status": r.status.value, "plan": r.objective, "bound": r.bound, "gap": rel_gap(r.objective, r.bound),
            "own_gap": r.mip_gap, "wall": time.perf_counter() - t0, "iterations": None,
            "mem_rank": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "mem_sum": None,
            "load": os.getloadavg()[0]}


def de_case(size: str, time_limit: float) -> dict:
    cmd = [sys.executable, __file__, "--de-case", size, "--time-limit", str(time_limit)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def ph_case(size: str, ranks: int, time_limit: float, config: dict) -> dict:
    from optimizer.solver.ph import PHOptions, solve_ph

    inst = instance(size)
    load = os.getloadavg()[0]
    r = solve_ph(inst, ranks, PHOptions(time_limit=time_limit, **config))
    return {"method": "PH", "size": size, "scenarios": len(inst.tree.scenarios), "ranks": ranks,
            "cylinders": "+".join(("hub", *r.cylinders)), "status": r.status, "plan": r.objective,
            "bound": r.bound, "gap": r.gap, "wall": r.launch_seconds, "seconds_on_ranks": r.seconds,
            "iterations": r.iterations, "mem_rank": r.peak_memory_mb, "mem_sum": r.total_memory_mb,
            "first_bound": r.first_bound, "bound_source": r.bound_source, "plan_source": r.plan_source,
            "solves": r.solves, "message": r.message, "config": config, "load": load}


def parse_config(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if key == "spokes":
            out[key] = tuple(x for x in value.split(",") if x)
        elif key in ("rho_rule", "solver"):
            out[key] = value
        elif key in ("linearize", "verbose"):
            out[key] = value.lower() in ("1", "true", "yes")
        elif key in ("max_iterations", "hub_xhat_every", "threads"):
            out[key] = int(value)
        else:
            out[key] = None if value.lower() == "none" else float(value)
    return out


def table(rows: list[dict]) -> str:
    head = (f"{'tree':>8}{'scen':>5}{'method':>7}{'ranks':>6} {'cylinders':<27}{'status':>10}{'wall s':>8}{'iters':>6}"
            f"{'plan':>14}{'bound':>14}{'gap':>9}{'mem/rank':>9}{'mem sum':>8}{'load':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        def num(x, fmt):
            return "-" if x is None else format(x, fmt)
        lines.append(f"{r['size']:>8}{r['scenarios']:>5}{r['method']:>7}{r['ranks']:>6} {r.get('cylinders', '-'):<27}"
                     f"{r['status']:>10}{num(r['wall'], '.1f'):>8}{num(r['iterations'], 'd'):>6}"
                     f"{num(r['plan'], ',.0f'):>14}{num(r['bound'], ',.0f'):>14}{num(r['gap'], '.2%'):>9}"
                     f"{num(r['mem_rank'], '.0f'):>9}{num(r['mem_sum'], '.0f'):>8}{r['load']:>6.2f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--de-case", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="shipped,18,54", help="trees: shipped and/or scenario counts (18, 54, 162)")
    ap.add_argument("--ranks", default="3", help="PH rank counts to run, e.g. 1,2,3")
    ap.add_argument("--time-limit", type=float, default=300)
    ap.add_argument("--no-de", action="store_true", help="skip the deterministic equivalent")
    ap.add_argument("--no-ph", action="store_true", help="skip PH")
    ap.add_argument("--config", action="append", default=[], help="a PHOptions field, NAME=VALUE (repeatable)")
    ap.add_argument("--json", type=Path, help="append the rows to this JSON file")
    args = ap.parse_args()
    if args.de_case:
        print(json.dumps(run_de(args.de_case, args.time_limit)))
        return
    config = parse_config(args.config)
    rows = []
    for size in args.sizes.split(","):
        if not args.no_de:
            print(f"DE {size} ...", file=sys.stderr, flush=True)
            rows.append(de_case(size, args.time_limit))
        if not args.no_ph:
            for ranks in (int(x) for x in args.ranks.split(",")):
                print(f"PH {size} on {ranks} ranks ...", file=sys.stderr, flush=True)
                rows.append(ph_case(size, ranks, args.time_limit, config))
        print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        old = json.loads(args.json.read_text()) if args.json.exists() else []
        args.json.write_text(json.dumps(old + rows, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
