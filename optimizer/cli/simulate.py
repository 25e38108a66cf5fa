"""``capplan simulate``: how a planning policy does when it re-plans as the future is revealed (spec v3 section 8)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer

from ..report.text import simulation_objective as _objective
from ..report.text import simulation_value_sentence as value_sentence
from ..report.text import wrap
from ..report.units import fmt_share
from .app import Exit, _load_instance_or_exit, _table, app, dask_client, err, show
from .conventions import (
    COUNT,
    CommandError,
    Number,
    force_option,
    formats_of,
    gap_option,
    json_option,
    number_option,
    output_dir,
    scheduler_option,
    time_limit_option,
    width,
    workers_option,
)

SEED = Number("SEED", "a whole number >= 0", integer=True, low=0)

SIMULATE_HELP = """Simulate planning policies along the futures of a scenario tree (spec v3 section 8).

Each path is a leaf of the truth's tree (--truth FILE, default FILE itself):
every leaf with its probability, or --paths N leaves drawn by probability
(--seed S). At each epoch (the start, every stage year of either file, every
year with --every-year) a policy re-plans with what has been revealed and the
past held: `stochastic` plans against FILE's remaining stages, `deterministic`
against the revealed data alone, `perfect` knows the path from the start (the
bound no policy beats). Each policy problem is solved once per history, on
--workers local processes or a Dask cluster (--scheduler), and kept in
OUT/simulation.sqlite as it finishes: an interrupted run continues with
--resume and solves nothing twice.

Prints, per policy, the expected realised objective, P10/P50/P90, CVaR, the
regret against perfect foresight and the infeasible paths, then the value of
the stochastic policy (stochastic - deterministic, with a 95% interval when
the paths are sampled). --out writes every table, summary.json and the charts.

Exit codes: 0 every epoch solve proven (infeasible paths are an outcome, shown),
4 some epoch solve not proven (time limit), 2 usage error, 3 invalid instance
(or a truth file whose base data differs), 130 interrupted (finished solves are
kept with --out)."""


class _Progress:
    """A live line on a terminal (solves done / total, elapsed, estimate); a line per 10% when piped."""

    def __init__(self):
        self.tty = err.is_terminal
        self.live = None
        self.next_mark = 0.1

    def __enter__(self):
        if self.tty:
            from rich.live import Live
            from rich.text import Text

            self._text = Text
            self.live = Live(Text("simulate: planning the epoch solves..."), console=err, transient=True,
                             refresh_per_second=4)
            self.live.__enter__()
        return self

    def line(self, p) -> str:
        left = p.estimate
        est = "" if left is None else f", ~{left:,.0f} s left"
        skipped = f" ({p.skipped} from an earlier run)" if p.skipped else ""
        return f"simulate: {p.done}/{p.total} epoch solves done{skipped}, {p.elapsed:,.0f} s{est}" + \
            (f"  [{p.last}]" if p.last else "")

    def __call__(self, p) -> None:
        if self.live is not None:
            self.live.update(self._text(self.line(p)), refresh=True)
            return
        share = p.done / max(p.total, 1)
        if p.done == p.skipped or share >= self.next_mark or p.done == p.total:
            err.print(self.line(p), markup=False, highlight=False)
            while self.next_mark <= share:
                self.next_mark += 0.1

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.__exit__(*exc)


@app.command(help=SIMULATE_HELP)
def simulate(
    file: Path = typer.Argument(..., metavar="FILE", help="The policy's instance: the file the planner plans with."),
    truth: Path | None = typer.Option(None, "--truth", metavar="FILE", help="The truth: a file whose tree says "
                                      "what can happen, with FILE's base data (default: FILE)."),
    policy: str = typer.Option("stochastic,deterministic,perfect", "--policy", metavar="NAMES",
                               help="Comma-separated policies: stochastic, deterministic, perfect."),
    paths: str | None = number_option(None, "--paths", COUNT, "Draw this many leaves of the truth's tree (with "
                                      "replacement, by probability) instead of every leaf."),
    seed: str = number_option(0, "--seed", SEED, "Seed of the draw of --paths."),
    every_year: bool = typer.Option(False, "--every-year", help="Re-plan every year, not only when something is "
                                    "revealed."),
    workers: str | None = workers_option(),
    scheduler: str | None = scheduler_option(),
    out_dir: Path | None = typer.Option(None, "--out", metavar="DIR", help="Write every table (--format), "
                                        "summary.json and the charts here (new or empty; --resume or --force "
                                        "otherwise)."),
    fmt: str = typer.Option("csv", "--format", metavar="FORMATS", help="Comma-separated: csv,parquet,xlsx,json."),
    resume: bool = typer.Option(False, "--resume", help="Keep the epoch solves already in OUT and solve the rest."),
    force: bool = force_option(),
    time_limit: str | None = time_limit_option("each epoch solve"),
    gap: str = gap_option("each epoch solve"),
    as_json: bool = json_option(),
) -> None:
    from ..analysis.simulate import POLICIES, STORE_NAME, SimulationError
    from ..analysis.simulate import simulate as run
    from ..report.sim_plots import plot_simulation

    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICIES]
    if unknown or not names:
        raise CommandError(f"--policy: unknown polic{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}"
                           if unknown else "--policy: no policy given",
                           hints=[f"choose from {', '.join(POLICIES)}, comma-separated"])
    formats = formats_of(fmt)
    if resume and force:
        raise CommandError("--resume and --force exclude each other",
                           hints=["--resume continues the simulation in --out; --force starts afresh"])
    if resume and out_dir is None:
        raise CommandError("--resume needs --out (the directory of the simulation to continue)")
    inst = _load_instance_or_exit(file)
    truth_inst = _load_instance_or_exit(truth) if truth is not None else inst
    from ..analysis.simulate import check

    try:  # every input checked before anything is written or solved
        check(inst, truth_inst, names, paths, seed)
    except SimulationError as exc:
        code = Exit.INVALID if any(p.path == "truth" for p in exc.problems) else Exit.USAGE
        raise CommandError(f"cannot simulate {file}" + (f" against {truth}" if truth else ""), code,
                           [f"- {p}" for p in exc.problems]) from None
    store = None
    if out_dir is not None:
        store = out_dir / STORE_NAME
        if store.exists() and not (resume or force):
            raise CommandError(f"--out {out_dir}: holds an earlier simulation ({store})",
                               hints=["pass --resume to continue it, or --force to start afresh, or choose "
                                      "another --out"])
        output_dir(out_dir, force=force or (resume and store.exists()))
        if force and store.exists():
            store.unlink()
    client = dask_client(scheduler)
    t0 = time.perf_counter()
    try:
        with _Progress() as bar:
            sim = run(inst, truth_inst, names, paths, seed, every_year, workers=workers, client=client,
                      store=out_dir, resume=True, time_limit=time_limit, mip_gap=gap, progress=bar)
    except SimulationError as exc:
        raise CommandError(f"cannot simulate {file}", Exit.USAGE, [f"- {p}" for p in exc.problems]) from None
    except KeyboardInterrupt:
        kept = f"every finished epoch solve is kept in {store}; run the same command with --resume to go on" \
            if store is not None else "nothing was kept (no --out)"
        err.print(f"interrupted: {kept}", markup=False)
        raise typer.Exit(Exit.INTERRUPTED) from None
    finally:
        if client is not None:
            client.close()
    if as_json:
        doc = sim.summary_fields()
        doc["paths_table"] = json.loads(sim.paths.to_json(orient="records"))
        sys.stdout.write(json.dumps(doc, indent=1, default=str) + "\n")
    else:
        show_simulation(sim)
    if out_dir is not None:
        written = sim.write(out_dir, formats)
        written += plot_simulation(sim, out_dir)
        err.print(f"wrote {len(written)} files to {out_dir}/ (time {time.perf_counter() - t0:,.0f} s)",
                  markup=False)
    proven = (sim.solves.status.isin(["optimal", "infeasible"])).all()
    raise typer.Exit(Exit.OK if proven else Exit.FEASIBLE)


def show_simulation(sim) -> None:
    """The policies' summary, the paths (a dozen at most) and the value of the stochastic policy."""
    money = sim.truth.objective.kind == "min_cost"
    n = sim.paths.path.nunique()
    head = (f"simulation of {sim.policy_instance.name} against {sim.truth.name}: {n} path{'s' if n != 1 else ''}"
            f"{' sampled (seed ' + str(sim.seed) + ')' if sim.sampled else ''}, epochs "
            f"{', '.join(map(str, sim.epochs))}")
    s = sim.summary.copy()
    cols = ["policy", "expected_objective", "standard_error", "p10", "p50", "p90", "cvar", "expected_regret",
            "infeasible_paths"]
    if not sim.sampled:
        cols.remove("standard_error")
    headers = {"expected_objective": "expected", "standard_error": "std err", "p10": "P10", "p50": "P50",
               "p90": "P90", "cvar": "CVaR", "expected_regret": "regret", "infeasible_paths": "infeasible"}
    formats = {c: (lambda v: _objective(v, money)) for c in cols[1:-1]}
    formats["infeasible_paths"] = lambda v: f"{int(v):,}"
    alpha = sim.policy_instance.uncertainty.cvar_alpha if sim.policy_instance.uncertainty else 0.9
    unit = "USD, discounted" if money else "discounted PFLOP/s-years"
    show(_table(s[cols], head, headers=headers, formats=formats, keys=("policy",),
                legend=f"realised objective in {unit}; CVaR: mean of the worst {fmt_share(1 - alpha)}; regret: "
                       "against perfect foresight; infeasible: paths whose re-plan had no plan (the worst outcome)"))
    if n <= 12:
        pivot = sim.paths.pivot_table(index=["path"], columns="policy", values="objective", aggfunc="first",
                                      sort=False)[list(sim.policies)].reset_index()
        weights = sim.paths.drop_duplicates("path").set_index("path").weight
        pivot.insert(1, "weight", pivot.path.map(weights))
        show()
        show(_table(pivot, "realised objective by path", keys=("path",),
                    formats={**{p: (lambda v: _objective(v, money)) for p in sim.policies},
                             "weight": fmt_share}))
    bad = sim.paths[sim.paths.status.isin(["infeasible", "error", "no_solution", "not solved"])]
    for r in bad.head(5).itertuples():
        show(wrap(f"{r.policy}, path {r.path}: {r.status} in {r.infeasible_epoch:.0f}: {r.message}", width(), "  "))
    show()
    show(wrap(value_sentence(sim), width()))
    unproven = sim.solves[~sim.solves.status.isin(["optimal", "infeasible"])]
    if len(unproven):
        show(wrap(f"{len(unproven)} of {len(sim.solves)} epoch solves are not proven optimal (worst gap "
                  f"{unproven.mip_gap.max():.3%}): the outcomes are those of the plans found.", width()))
