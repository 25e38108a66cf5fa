"""capplan benchmark suite: build, hand-off and solve times, gap, memory and size.

Run from the repository root:

    python benchmarks/run.py                 # full suite, compares with benchmarks/baseline.json
    python benchmarks/run.py --quick         # the small cases only
    python benchmarks/run.py --update-baseline

Each case runs in a fresh Python process (so peak memory is that case's own);
short cases are repeated and the median is reported, since identical HiGHS
solves vary by 10-25% from run to run.  Results go to
``benchmarks/results/latest.json``; a case whose total time is more than 20%
above the baseline is flagged as a regression.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "instances" / "aws-5gw-2026.yaml"
BASELINE = ROOT / "benchmarks" / "baseline.json"
LATEST = ROOT / "benchmarks" / "results" / "latest.json"

# name -> (source, time limit s); generated sizes are regions x chips x years
CASES = {
    "default": (str(DEFAULT), 120),
    "gen-3x3x10": ("3x3x10", 120),
    "gen-6x5x10": ("6x5x10", 120),
    "gen-12x8x15": ("12x8x15", 120),
    "gen-30x10x15": ("30x10x15", 120),
}
QUICK = ("default", "gen-3x3x10", "gen-6x5x10")
REGRESSION = 0.20


def run_case(source: str, time_limit: float) -> dict:
    """Build and solve one case in this process; return its measurements."""
    t0 = time.perf_counter()
    from optimizer import load_instance, solve
    from optimizer.instance.generate import generate_instance

    import_s = time.perf_counter() - t0
    if source.endswith(".yaml"):
        inst = load_instance(source)
    else:
        r, g, y = (int(x) for x in source.split("x"))
        inst = load_instance(generate_instance(r, g, y, seed=0))
    plan = solve(inst, time_limit=time_limit)
    res = plan.result
    return {
        "status": res.status.value,
        "objective": res.objective,
        "gap": res.mip_gap,
        "import_seconds": import_s,
        "build_seconds": res.build_seconds,
        "handoff_seconds": res.handoff_seconds,
        "solve_seconds": res.solve_seconds,
        "total_seconds": time.perf_counter() - t0,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": res.rows, "columns": res.columns, "integers": res.integers, "nonzeros": res.nonzeros,
    }


def in_subprocess(source: str, time_limit: float) -> dict:
    cmd = [sys.executable, __file__, "--case", source, "--time-limit", str(time_limit)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cli_seconds(repeats: int = 3) -> float:
    """End-to-end `capplan solve` on the default instance, Python start-up included."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "optimizer", "solve", str(DEFAULT), "--quiet"],
                       cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def median_runs(source: str, time_limit: float, repeats: int) -> dict:
    runs = [in_subprocess(source, time_limit)]
    if runs[0]["total_seconds"] < 10:
        runs += [in_subprocess(source, time_limit) for _ in range(repeats - 1)]
    out = dict(runs[0])
    for key in ("build_seconds", "handoff_seconds", "solve_seconds", "total_seconds", "peak_memory_mb"):
        out[key] = statistics.median(r[key] for r in runs)
    out["runs"] = len(runs)
    return out


def fit_exponent(xs, ys) -> float:
    """Least-squares slope of log(y) against log(x)."""
    lx, ly = [math.log(x) for x in xs], [math.log(max(y, 1e-6)) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def table(results: dict, baseline: dict) -> str:
    head = (f"{'case':<14}{'status':<10}{'gap':>9}{'build s':>9}{'handoff s':>10}{'solve s':>9}"
            f"{'total s':>9}{'base s':>8}{'change':>8}{'mem MB':>8}{'rows':>7}{'cols':>7}{'ints':>6}{'nnz':>8}")
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        base = baseline.get(name, {}).get("total_seconds")
        change = "" if base is None else f"{(r['total_seconds'] / base - 1):+.0%}"
        flag = " REGRESSION" if base is not None and r["total_seconds"] > base * (1 + REGRESSION) else ""
        gap = "-" if r["gap"] is None else f"{r['gap']:.2e}"
        lines.append(
            f"{name:<14}{r['status']:<10}{gap:>9}{r['build_seconds']:>9.2f}{r['handoff_seconds']:>10.2f}"
            f"{r['solve_seconds']:>9.2f}{r['total_seconds']:>9.2f}{'' if base is None else f'{base:.2f}':>8}"
            f"{change:>8}{r['peak_memory_mb']:>8.0f}{r['rows']:>7}{r['columns']:>7}{r['integers']:>6}"
            f"{r['nonzeros']:>8}{flag}")
    return "\n".join(lines)


def plot_growth(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gen = {k: v for k, v in results.items() if k.startswith("gen-")}
    cols = [v["columns"] for v in gen.values()]
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for key, label in (("build_seconds", "Pyomo build"), ("handoff_seconds", "hand-off to HiGHS"),
                       ("solve_seconds", "HiGHS solve")):
        ax.loglog(cols, [v[key] for v in gen.values()], marker="o", label=label)
    ax.set_xlabel("model columns")
    ax.set_ylabel("seconds")
    ax.set_title("capplan cost growth on generated instances")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--time-limit", type=float, default=120)
    ap.add_argument("--quick", action="store_true", help="small cases only")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each short case (median reported)")
    ap.add_argument("--update-baseline", action="store_true")
    ap.add_argument("--plot", type=Path, help="write the log-log cost-growth plot here")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.time_limit)))
        return

    names = QUICK if args.quick else tuple(CASES)
    results = {}
    for name in names:
        source, limit = CASES[name]
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results[name] = median_runs(source, limit, args.repeats)
    cli = cli_seconds()
    baseline = json.loads(BASELINE.read_text())["cases"] if BASELINE.is_file() else {}
    print(table(results, baseline))
    d = results["default"]
    share = (d["build_seconds"] + d["handoff_seconds"]) / d["total_seconds"]
    print(f"\ncapplan solve (default instance, end to end incl. Python start-up): {cli:.2f} s (median of 3)")
    print(f"default instance: build + hand-off = {share:.0%} of the in-process total")
    gen = {k: v for k, v in results.items() if k.startswith("gen-")}
    if len(gen) >= 3:
        cols = [v["columns"] for v in gen.values()]
        for key in ("build_seconds", "handoff_seconds", "solve_seconds"):
            print(f"fitted exponent of {key} vs columns: {fit_exponent(cols, [v[key] for v in gen.values()]):.2f}")
    doc = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "platform": platform.platform()},
           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "cli_seconds": cli, "cases": results}
    LATEST.parent.mkdir(parents=True, exist_ok=True)
    LATEST.write_text(json.dumps(doc, indent=1) + "\n")
    if args.update_baseline:
        BASELINE.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"baseline updated: {BASELINE}")
    if args.plot:
        plot_growth(results, args.plot)
    regressions = [n for n, r in results.items()
                   if n in baseline and r["total_seconds"] > baseline[n]["total_seconds"] * (1 + REGRESSION)]
    if regressions:
        print(f"\nregressed by more than {REGRESSION:.0%}: {', '.join(regressions)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
