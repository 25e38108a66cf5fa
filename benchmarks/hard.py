"""capplan hard benchmark set (issue 13): time to proof at gap 1e-4, median / p90 / max.

Run from the repository root:

    python benchmarks/hard.py                       # every case, current formulation
    python benchmarks/hard.py --cases mc-,def-      # cases whose name contains a pattern
    python benchmarks/hard.py --config base= --config nows=ws:0 --json out.json
    python benchmarks/hard.py --list                # the cases and their sources

Suite ``--suite quick`` runs instead the cases of ``benchmarks/run.py`` (default
instance, generated 3x3x10, 6x5x10, 12x8x15, 30x10x15 with seed 0), for
before/after checks of the existing benchmarks.

The set: 12 seeded instances from :func:`optimizer.instance.generate.generate_hard_instance`
(6 ``max_training`` with an unmet-demand penalty, 3 ``min_cost`` with an
unmet-demand penalty in USD and annual caps, 3 ``min_cost`` with hard demand and
annual caps) and 4 low-budget variants of ``instances/aws-5gw-2026.yaml``
($60B, $70B, $80B, and $80B with every Trainium3 price x1.1).

Each case runs in a fresh Python process through the library
(``optimizer.solve(inst, time_limit=..., mip_gap=1e-4)``).  A configuration
(``--config NAME=SPEC``, repeatable) selects HiGHS options and the starting
plan; SPEC is ``;``-separated items:

    o:threads=2          a HiGHS option (repeatable), value parsed as int, float, bool or text
    ws:0                 no starting-plan heuristic (optimizer.solver.highs._mip_start)
    race:0               no second search on an idle core (optimizer.solver.race; default: as solve decides)
    wsgap:1e-3           stopping gap of the starting-plan runs (optimizer.solver.highs.START_GAP)

(The formulation experiments of issue 13 are in docs/performance.md; the
formulation itself is changed in formulations/, not by a switch.)

With several configurations, runs are interleaved case by case (A, B, A, B, ...)
so that each comparison sees the same machine load; ``--repeats`` repeats each.
Besides wall seconds, every run records deterministic effort: HiGHS's node count
and simplex iterations of the final search (``h.getInfo()``), and the seconds of the
starting-plan phase.  Time to proof is the in-process seconds of ``solve``
(build, hand-off, starting plan and search); a case stopped by the time limit
counts at the limit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "instances" / "aws-5gw-2026.yaml"
GAP = 1e-4


def _cases() -> dict[str, dict]:
    cases = {}
    for s in range(6):
        cases[f"mt-s{s}"] = {"gen": "max_training", "seed": s}
    for s in range(3):
        cases[f"mc-pen-s{s}"] = {"gen": "min_cost", "demand": "penalty", "seed": s}
    for s in range(3):
        cases[f"mc-hard-s{s}"] = {"gen": "min_cost", "demand": "hard", "seed": s}
    for s in range(6):  # issue 18: min_cost with small (25 MW) blocks over 3 regions, the proof's tail
        cases[f"mc-hard25-s{s}"] = {"gen": "min_cost", "demand": "hard", "seed": s, "regions": 3, "block_mw": 25}
    cases["def-60B"] = {"default": {"budget.total_usd": 60e9}}
    cases["def-70B"] = {"default": {"budget.total_usd": 70e9}}
    cases["def-80B"] = {"default": {"budget.total_usd": 80e9}}
    cases["def-80B-trn3x1.1"] = {"default": {"budget.total_usd": 80e9}, "factor": {"chips.trn3.price_usd": 1.1}}
    # suite "quick": the cases of benchmarks/run.py (default instance, generate_instance seed 0)
    cases["q-default"] = {"default": {}, "suite": "quick"}
    for size in ("3x3x10", "6x5x10", "12x8x15", "30x10x15"):
        cases[f"q-gen-{size}"] = {"size": size, "suite": "quick"}
    return cases


CASES = _cases()


def load_case(name: str):
    from optimizer import load_instance
    from optimizer.instance.generate import generate_hard_instance

    spec = CASES[name]
    if "size" in spec:
        from optimizer.instance.generate import generate_instance

        return load_instance(generate_instance(*(int(x) for x in spec["size"].split("x")), seed=0))
    if "gen" in spec:
        return load_instance(generate_hard_instance(spec["seed"], kind=spec["gen"],
                                                    demand=spec.get("demand", "penalty"),
                                                    n_regions=spec.get("regions"), block_mw=spec.get("block_mw")))
    from optimizer.instance import Factor, concrete_changes

    inst = load_instance(DEFAULT)
    changes = dict(spec["default"])
    if spec.get("factor"):
        changes.update(concrete_changes(inst, {p: Factor(f) for p, f in spec["factor"].items()}))
    return inst.with_changes(changes)


def parse_spec(spec: str) -> dict:
    """``o:name=value;ws:0;wsgap:1e-3;race:0`` -> {"options": {...}, "warm_start": bool, "ws_gap": float,
    "race": bool | None}."""
    out = {"options": {}, "warm_start": True, "race": None}
    for item in filter(None, (s.strip() for s in spec.split(";"))):
        key, _, val = item.partition(":")
        if key == "o":
            name, _, raw = val.partition("=")
            out["options"][name] = _value(raw)
        elif key == "ws":
            out["warm_start"] = val not in ("0", "false", "off")
        elif key == "wsgap":
            out["ws_gap"] = float(val)
        elif key == "race":
            out["race"] = val not in ("0", "false", "off")
        else:
            raise SystemExit(f"unknown config item {item!r} (o:, ws:, wsgap:, race:)")
    return out


def _value(raw: str):
    for conv in (int, float):
        try:
            return conv(raw)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(raw.lower(), raw)


def run_child(name: str, spec: dict, time_limit: float) -> dict:
    """One case in this process."""
    t0 = time.perf_counter()
    import optimizer.solver.highs as so
    from optimizer import solve

    import_s = time.perf_counter() - t0
    so.EXTRA_OPTIONS.update(spec["options"])
    if "ws_gap" in spec:
        so.START_GAP = spec["ws_gap"]
    ws = {}
    inner = so._mip_start

    def timed_mip_start(h, *a, **k):
        t = time.perf_counter()
        out = inner(h, *a, **k)
        ws.update(seconds=time.perf_counter() - t, found=out[0])
        return out

    so._mip_start = timed_mip_start
    inst = load_case(name)
    t1 = time.perf_counter()
    plan = solve(inst, time_limit=time_limit, mip_gap=GAP, warm_start=spec["warm_start"], race=spec.get("race"))
    seconds = time.perf_counter() - t1
    res = plan.result
    nodes, iters = res.nodes, res.iterations
    return {"case": name, "status": res.status.value, "objective": res.objective, "bound": res.bound,
            "gap": res.mip_gap, "seconds": seconds, "import_seconds": import_s,
            "build_seconds": res.build_seconds, "handoff_seconds": res.handoff_seconds,
            "solve_seconds": res.solve_seconds, "nodes": nodes, "iterations": iters,
            "ws_seconds": ws.get("seconds"),
            "rows": res.rows, "columns": res.columns, "integers": res.integers, "nonzeros": res.nonzeros,
            "helper": res.helper}


def in_subprocess(name: str, spec_text: str, time_limit: float) -> dict:
    cmd = [sys.executable, __file__, "--child", name, "--spec", spec_text, "--time-limit", str(time_limit)]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}  # this checkout
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=time_limit * 3 + 120)
    if out.returncode != 0:
        return {"case": name, "status": "crash", "error": out.stderr[-2000:], "seconds": time.perf_counter() - t}
    return json.loads(out.stdout.strip().splitlines()[-1])


def percentile(xs: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default)."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def proof_seconds(r: dict, limit: float) -> float:
    return r["seconds"] if r.get("status") == "optimal" else limit


def summary(runs: list[dict], limit: float) -> dict:
    t = [proof_seconds(r, limit) for r in runs]
    nodes = [r["nodes"] for r in runs if r.get("nodes") is not None]
    return {"cases": len(runs), "median": statistics.median(t), "p90": percentile(t, 0.9), "max": max(t),
            "unproven": sum(r.get("status") != "optimal" for r in runs),
            "nodes_total": sum(nodes), "nodes_median": statistics.median(nodes) if nodes else None,
            "iterations_total": sum(r.get("iterations") or 0 for r in runs)}


def consistency(runs: dict[str, list[dict]]) -> list[str]:
    """Per case, whether every configuration's [objective, bound] interval contains a common point.

    A proven run says the optimum lies between its objective and its bound; two
    formulations with the same optimum must give overlapping intervals.  Also
    reports the largest objective difference relative to the largest |objective|.
    """
    lines = []
    names = dict.fromkeys(r["case"] for rs in runs.values() for r in rs)
    for name in names:
        mine = [r for rs in runs.values() for r in rs if r["case"] == name and r.get("objective") is not None
                and r.get("bound") is not None]
        if len(mine) < 2:
            continue
        objs = [r["objective"] for r in mine]
        bounds = [r["bound"] for r in mine]
        scale = max(abs(x) for x in objs + bounds)
        maximize = all(b >= o - 1e-9 * scale for o, b in zip(objs, bounds))
        lo, hi = (max(objs), min(bounds)) if maximize else (max(bounds), min(objs))
        ok = lo <= hi + 1e-9 * scale
        spread = (max(objs) - min(objs)) / max(1e-12, max(abs(x) for x in objs))
        lines.append(f"{name:<18}{'consistent' if ok else 'INCONSISTENT':<14}objective spread {spread:.2e}"
                     f"  common interval [{lo:.10g}, {hi:.10g}]")
    return lines


def fmt_table(runs: list[dict]) -> str:
    head = (f"{'case':<18}{'status':<10}{'objective':>20}{'gap':>10}{'seconds':>9}{'ws s':>7}"
            f"{'nodes':>9}{'iters':>10}{'ints':>6}  second search")
    lines = [head, "-" * len(head)]
    for r in runs:
        gap = "-" if r.get("gap") is None else f"{r['gap']:.2e}"
        obj = "-" if r.get("objective") is None else f"{r['objective']:.8g}"
        ws = "-" if r.get("ws_seconds") is None else f"{r['ws_seconds']:.2f}"
        lines.append(f"{r['case']:<18}{r['status']:<10}{obj:>20}{gap:>10}{r['seconds']:>9.2f}{ws:>7}"
                     f"{_i(r.get('nodes')):>9}{_i(r.get('iterations')):>10}"
                     f"{_i(r.get('integers')):>6}  {_second(r.get('helper'))}")
    return "\n".join(lines)


def _second(helper: dict | None) -> str:
    """What the second search gave: - (none ran), or from when, and whether its plan or bound is the one kept."""
    if not helper:
        return "-"
    kept = [w for w, used in (("plan", helper.get("plan")), ("bound", helper.get("bound_used"))) if used]
    return f"from {helper['started_after']:.0f} s, kept: {' and '.join(kept) or 'nothing'}"


def _i(x) -> str:
    return "-" if x is None else f"{x:,}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--spec", default="", help=argparse.SUPPRESS)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--cases", default="", help="comma-separated substrings of case names to run")
    ap.add_argument("--suite", default="hard", choices=("hard", "quick", "all"),
                    help="hard: the hard set (default); quick: benchmarks/run.py's cases (q-*)")
    ap.add_argument("--config", action="append", default=[],
                    help="NAME=SPEC, repeatable (see above); default: base= (current formulation)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json", type=Path, help="write every run and the summaries here")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child, parse_spec(args.spec), args.time_limit)))
        return
    if args.list:
        for name, spec in CASES.items():
            print(f"{name:<18}{spec}")
        return

    pats = [p for p in args.cases.split(",") if p]
    names = [n for n, spec in CASES.items() if (not pats or any(p in n for p in pats))
             and args.suite in ("all", spec.get("suite", "hard"))]
    configs = {}
    for c in args.config or ["base="]:
        name, _, spec = c.partition("=")
        parse_spec(spec)  # fail early
        configs[name] = spec
    runs: dict[str, list[dict]] = {c: [] for c in configs}
    for name in names:
        for rep in range(args.repeats):
            for cname, spec in configs.items():
                r = in_subprocess(name, spec, args.time_limit)
                r["config"], r["repeat"] = cname, rep
                runs[cname].append(r)
                print(f"  {cname:<12} {name:<18} {r['status']:<9} {r['seconds']:7.2f} s  "
                      f"nodes {_i(r.get('nodes'))}  gap {r.get('gap')}", file=sys.stderr, flush=True)
    doc = {"time_limit": args.time_limit, "gap": GAP, "cpus": os.cpu_count(),
           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "configs": configs, "runs": runs, "summary": {}}
    for cname, rs in runs.items():
        # with repeats, a case's time is its median over repeats
        per_case = []
        for name in names:
            mine = [r for r in rs if r["case"] == name]
            best = dict(mine[0])
            best["seconds"] = statistics.median(r["seconds"] for r in mine)
            if any(r.get("status") != "optimal" for r in mine):
                best["status"] = next(r["status"] for r in mine if r.get("status") != "optimal")
            per_case.append(best)
        s = summary(per_case, args.time_limit)
        doc["summary"][cname] = s
        print(f"\n== config {cname}: {configs[cname] or '(current code)'}")
        print(fmt_table(per_case))
        print(f"time to proof over {s['cases']} cases: median {s['median']:.2f} s, p90 {s['p90']:.2f} s, "
              f"max {s['max']:.2f} s; {s['unproven']} not proven at the {args.time_limit:g} s limit "
              f"(counted at the limit); nodes total {s['nodes_total']:,}")
    if len(runs) > 1:
        print("\n== optimum preservation: do the [objective, bound] intervals of all runs overlap?")
        print("\n".join(consistency(runs)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
