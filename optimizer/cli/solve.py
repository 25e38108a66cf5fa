"""``capplan solve``, ``validate``, ``explain``, ``plot`` and ``compare``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console

from ..errors import InstanceError
from ..instance import load_instance
from ..solver import SolveStatus
from .app import (
    EXIT_HELP,
    STATUS_EXIT,
    Exit,
    _load_instance_or_exit,
    _plan_from,
    _table,
    app,
    err,
    out,
    show,
    stderr_duplicate,
)
from .conventions import (
    COUNT,
    YEAR,
    CommandError,
    choice,
    force_option,
    formats_of,
    gap_option,
    instance_files,
    invalid_instance,
    json_option,
    number_option,
    output_dir,
    run_limit,
    scheduler_option,
    threads_option,
    time_limit_option,
    width,
    workers_option,
)

BY_YEAR_HEADERS = {"capacity_mw": "capacity", "draw_mw": "draw", "spend_usd": "spend", "train_pflops": "training",
                   "infer_pflops": "inference", "training_share": "train %", "demand_pflops": "demand",
                   "unmet_pflops": "unmet"}
BY_YEAR_LEGEND = ("capacity and draw in MW; training, inference, demand and unmet in effective PFLOP/s; "
                  "train %: training share of the compute in use")


def _show_plan(plan) -> None:
    from ..report.text import (
        purchases_by_year,
        render_pairs,
        summary_lines,
        unmet_demand_lines,
        wrap,
        yearly_overview,
    )

    show(render_pairs(summary_lines(plan), width()))
    if not plan.status.has_plan:
        return
    warning = unmet_demand_lines(plan)
    if warning:
        show()
        for line in warning:
            show(wrap(line, width(), indent="    " if line.startswith("  - ") else ""))
    show()
    if plan.stochastic:
        if plan.scenarios is not None and len(plan.scenarios) <= 8:
            cap = plan.facilities.pivot_table(index="year", columns="scenario", values="capacity_mw", aggfunc="sum")
            show(_table(cap[list(plan.scenarios.scenario)].reset_index(), "Facility capacity by scenario (MW)",
                        headers={s: s.replace("/", "/\n") for s in plan.scenarios.scenario}))
        show(wrap("each scenario's full plan: capplan solve FILE --out DIR (a scenario column in every table); "
                  "charts: capplan plot DIR", width()))
        return
    show(_table(yearly_overview(plan), "By year", money=("spend_usd",), pct=("training_share",),
                headers=BY_YEAR_HEADERS, legend=BY_YEAR_LEGEND))
    show()
    bought = purchases_by_year(plan)
    show(_table(bought, "Chips bought (chip, region)",
                headers={c: c.replace("@", "\n") for c in bought.columns if c != "year"}))
    blocks = plan.facilities[plan.facilities.blocks_started > 0][["year", "region", "blocks_started"]]
    if len(blocks):
        show()
        show(_table(blocks, "Campus blocks started", headers={"blocks_started": "blocks"}))


class _ProgressLine:
    """A live line on a terminal, fed by HiGHS's own MIP callbacks (not a spinner)."""

    def __init__(self):
        from rich.live import Live
        from rich.text import Text

        self._stream = stderr_duplicate()  # so the line reaches the screen while HiGHS runs
        console = Console(file=self._stream, force_terminal=True)
        self._text = Text
        self.live = Live(Text("HiGHS: building the model and a starting plan..."), console=console,
                         transient=True, refresh_per_second=4)

    def __enter__(self):
        self.live.__enter__()
        return self

    def __exit__(self, *exc):
        self.live.__exit__(*exc)
        self._stream.close()

    def step(self, text: str) -> None:
        """A step of the analyses that run beside the main solve."""
        self.live.update(self._text(f"{text}"), refresh=True)

    def __call__(self, p) -> None:
        from ..report.units import fmt_number

        if p.step is not None:  # before the search: a large tree's staged starting plan
            self.live.update(self._text(f"HiGHS {p.elapsed_seconds:6.1f} s   {p.step}"), refresh=True)
            return
        inc, bnd = fmt_number(p.incumbent), fmt_number(p.bound)
        gap = "-" if p.gap is None else f"{p.gap:.3%}"
        # render now: HiGHS may hold the GIL, so Live's own refresh thread cannot
        self.live.update(self._text(
            f"HiGHS {p.elapsed_seconds:6.1f} s   best plan {inc}   bound {bnd}   gap {gap}"), refresh=True)


SOLVE_HELP = """Solve an instance and print the plan.

The summary says what the objective is made of and warns when inference
demand goes unmet (how much, which years, the likely cause); then the plan by
year, the chips bought, the campus blocks started and the top binding
constraints with their marginal values.

An instance with an `uncertainty` section is solved over its scenario tree:
the output starts with what to commit now (the decisions before the first
stage), then each scenario's objective and regret, then what knowing the
future is worth (EVPI) and what planning for the scenarios gains over
planning for the base forecast (VSS). The value-of-information solves run on
--workers local processes or a Dask cluster (--scheduler);
--no-value-of-information skips them.

--commit PLAN_DIR --through YEAR holds an earlier plan's purchases and block
starts of the years up to YEAR and reports what that costs against a free
re-plan.

""" + EXIT_HELP


@app.command(help=SOLVE_HELP)
def solve(
    file: Path = typer.Argument(..., metavar="FILE", help="Instance YAML file."),
    out_dir: Path | None = typer.Option(None, "--out", metavar="DIR", help="Write every plan table, summary.json and a "
                                        "copy of the instance to this directory (new or empty, or --force)."),
    force: bool = force_option(),
    fmt: str = typer.Option("csv", "--format", metavar="FORMATS",
                            help="Comma-separated formats: csv,parquet,xlsx,json."),
    time_limit: str | None = time_limit_option("the whole command: start-up, the solve, the analyses beside it "
                                               "and the report"),
    gap: str = gap_option(),
    threads: str | None = threads_option(),
    log: bool = typer.Option(False, "--log", help="Stream the HiGHS log."),
    as_json: bool = json_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the status line."),
    stats: bool = typer.Option(False, "--stats", help="Print the coefficient ranges of the matrix HiGHS sees."),
    commit: Path | None = typer.Option(None, "--commit", metavar="PLAN_DIR", help="Plan directory whose "
                                       "decisions are held (with --through)."),
    through: str | None = number_option(None, "--through", YEAR, "Last committed year (with --commit)."),
    voi: bool = typer.Option(True, "--value-of-information/--no-value-of-information",
                             help="Under uncertainty: solve each scenario alone and the base plan (EVPI, VSS)."),
    workers: str | None = workers_option(),
    scheduler: str | None = scheduler_option(),
    method: str = typer.Option("auto", "--method", metavar="METHOD",
                               help="How a scenario tree is solved: de (one MIP), ph (progressive hedging on MPI "
                               "ranks) or auto (ph under an MPI launcher, else de; docs/performance.md)."),
    ranks: str | None = number_option(None, "--ranks", COUNT, "MPI ranks --method ph starts on this machine "
                                      "(default 3: hub, bound spoke, plan spoke); under mpiexec or srun, theirs."),
) -> None:
    from .. import pipeline
    from ..plan.commit import CommitmentError, commitments_from
    from .app import dask_client, progress_lines

    entered = time.perf_counter()
    choice(method, "--method", pipeline.METHODS)
    formats = formats_of(fmt)
    if (commit is None) != (through is None):
        raise CommandError("--commit and --through go together", hints=["--commit PLAN_DIR --through YEAR"])
    inst = _load_instance_or_exit(file)
    if out_dir is not None:
        output_dir(out_dir, force=force)
    commitments = None
    if commit is not None:
        try:
            commitments = commitments_from(inst, commit, through)
        except CommitmentError as exc:
            raise invalid_instance(exc, "invalid commitment") from None
    client = dask_client(scheduler)
    extra = None if workers is None else workers - 1  # the main solve is one of the --workers processes
    # the limit is the command's: what start-up and reading the file took, and the report's share, come out of it
    limit = run_limit(time_limit, entered, len(inst.tree.scenarios))
    options = dict(time_limit=limit, mip_gap=gap, threads=threads, commit=commit, through=through,
                   value_of_information=voi, workers=extra, client=client, ranks=ranks)
    try:
        options["method"] = pipeline.choose_method(inst, method)
    except ValueError as exc:
        raise CommandError(f"--method {method}: {exc}") from None
    try:
        if options["method"] == "ph":
            from ..solver.ph import mpi_world, ph_available

            launched = mpi_world()[1]
            if launched == 1:
                ph_available()  # mpiexec, mpi4py and mpi-sppy, or a usage error saying what to install
            elif ranks is not None:
                raise ValueError(f"--ranks: capplan runs under an MPI launcher with {launched} ranks; "
                                 "give the count to the launcher (mpiexec -n N) instead")
        if err.is_terminal and not (log or quiet or as_json):
            with _ProgressLine() as line:
                plan = pipeline.solve(inst, progress=line, on_step=line.step, **options)
        else:
            with progress_lines("solve") as step:
                plan = pipeline.solve(inst, log=log, on_step=None if quiet or as_json else step, **options)
    except (ValueError, RuntimeError) as exc:
        if options["method"] != "ph":
            raise
        raise CommandError(f"--method ph: {exc}") from None
    finally:
        if client is not None:
            client.close()
    if plan is None:  # a rank of an MPI launch other than 0: it took part in PH, rank 0 reports
        raise typer.Exit(0)
    if out_dir is not None and plan.status.has_plan:
        plan.marginals  # noqa: B018  (taken now, from the model as solved: the directory keeps marginals.csv)
        plan.write(out_dir, formats)
    if as_json:
        sys.stdout.write(json.dumps(plan.to_dict(), indent=1, default=str) + "\n")
    elif quiet:
        from ..report.units import fmt_number

        obj = "" if plan.objective is None else f" objective {fmt_number(plan.objective)}"
        show(f"{plan.status.value}{obj}")
    else:
        if plan.stochastic:
            _show_tree(plan)
        _show_plan(plan)
        if plan.status.has_plan and not plan.stochastic:
            _show_binding(plan)
        if plan.commitment is not None:
            _show_commitment(plan)
        if plan.status is SolveStatus.INFEASIBLE:
            from ..analysis.diagnose import explain

            show()
            show(str(explain(inst, commitments=commitments, time_limit=60.0 if time_limit is None else time_limit)))
        if out_dir is not None and plan.status.has_plan:
            show(f"\nplan written to {out_dir}/ ({', '.join(formats)})")
    if stats and not as_json:
        _show_stats(plan)
    raise typer.Exit(STATUS_EXIT[plan.status])


def _show_tree(plan) -> None:
    """What a planner reads first under uncertainty: commit now, the scenarios, and what knowing is worth."""
    from ..report.text import value_of_information_lines, wrap

    inst = plan.instance
    first = inst.tree.first_stage_year
    years = f"{inst.start}" + (f"-{first - 1}" if first - 1 > inst.start else "")
    if plan.status.has_plan:
        c = plan.commitments
        title = f"What to commit now ({years}, before the first uncertainty is revealed in {first})"
        if len(c):
            show(_table(c, title))
        else:
            show(wrap(f"{title}: nothing; every decision can wait", width()))
        show()
        sc = plan.scenarios[["scenario", "probability", "objective", "wait_and_see_objective", "regret",
                             "unmet_pflops_years", "total_spend_usd"]]
        show(_table(sc, "Scenarios (objective of this plan, and of perfect foresight)", money=("total_spend_usd",),
                    keys=("scenario",), formats={"probability": lambda v: f"{v:.3g}"},
                    headers={"probability": "p", "wait_and_see_objective": "foresight", "unmet_pflops_years":
                             "unmet", "total_spend_usd": "spend"},
                    legend="foresight: the objective with perfect foresight; regret: foresight minus this plan's; "
                           "unmet in PFLOP/s-years"))
        show()
    for line in value_of_information_lines(plan):
        show(wrap(line, width()))
    show()


def _show_commitment(plan) -> None:
    from ..report.units import fmt_number, objective_unit

    cost = plan.commitment.commitment_cost
    unit = objective_unit(plan.instance)
    through = plan.commitment.committed_through
    show()
    if cost == float("inf"):
        show(f"holding the committed decisions through {through} leaves no feasible plan")
    elif cost == cost:  # not NaN
        from ..report.text import wrap

        share = f" ({cost / abs(plan.objective):.2%} of this plan's objective)" if plan.objective else ""
        show(wrap(f"commitment cost: holding the decisions committed through {through} costs {fmt_number(cost)} "
                  f"{unit}{share} against a free re-plan", width()))


def _show_binding(plan, top: int = 8) -> None:
    from ..report.units import fmt_number
    from ..solver.duals import binding

    b = binding(plan.marginals, top)
    if len(b):
        b = b.assign(year=b.year.map(lambda y: "" if pd.isna(y) else str(int(y))))
        show()
        show(_table(b[["family", "year", "where", "marginal", "unit"]],
                    "Top binding constraints (objective change per unit; LP prices with the blocks fixed)",
                    keys=("family",), formats={"marginal": lambda v: fmt_number(v)}))


def _show_stats(plan) -> None:
    ranges = plan.result.ranges
    show()
    for name, (lo, hi) in ranges.items():
        ratio = f"{hi / lo:.1e}" if lo > 0 else "-"
        show(f"{name:<7} |coef| in [{lo:.3g}, {hi:.3g}]  ratio {ratio}")


@app.command()
def explain(
    file: Path = typer.Argument(..., metavar="FILE", help="Instance YAML file."),
    as_json: bool = json_option(),
) -> None:
    """Say why an instance is infeasible, in its own terms (years, regions, amounts).

    Exit codes: 0 the instance is feasible, 5 infeasible, 3 invalid instance.
    """
    from ..analysis.diagnose import explain as run

    result = run(_load_instance_or_exit(file))
    if as_json:
        doc = {"feasible": result.feasible, "messages": result.messages, "conflict": result.conflict,
               "violations": json.loads(result.violations.to_json(orient="records"))}
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
    else:
        show(str(result))
    raise typer.Exit(Exit.OK if result.feasible else Exit.INFEASIBLE)


@app.command()
def plot(
    source: Path = typer.Argument(..., metavar="PLAN_OR_FILE",
                                  help="A plan directory (from solve --out) or an instance file."),
    out_dir: Path = typer.Option(Path("charts"), "--out", metavar="DIR",
                                 help="Directory for the PNG charts (new or empty, or --force)."),
    force: bool = force_option(),
    scenarios: bool = typer.Option(False, "--scenarios", help="A plan under uncertainty: also each scenario's "
                                   "own charts (the first 12 scenarios)."),
) -> None:
    """Draw slide-ready PNG charts of a plan (fleet, capacity, spend, split, purchases; under uncertainty the
    fan chart and what to commit now), or of a simulation directory (the realised objectives, and fans of
    capacity, spend and unmet demand per policy)."""
    from ..report.plots import plot_plan
    from ..report.sim_plots import plot_simulation

    sim = _simulation_from(source)
    output_dir(out_dir, force=force)
    paths = plot_simulation(sim, out_dir) if sim is not None else plot_plan(_plan_from(source), out_dir,
                                                                            scenarios=scenarios)
    for p in paths:
        show(str(p))


COMPARE_HEADERS = {"chips_a": "a", "chips_b": "b", "chips_change": "b - a", "capacity_mw_a": "a",
                   "capacity_mw_b": "b", "capacity_mw_change": "b - a", "spend_usd_a": "a", "spend_usd_b": "b",
                   "spend_usd_change": "b - a", "train_pflops_a": "train a", "train_pflops_b": "train b",
                   "train_pflops_change": "b - a", "infer_pflops_a": "infer a", "infer_pflops_b": "infer b",
                   "infer_pflops_change": "b - a", "quantity_a": "a", "quantity_b": "b", "quantity_change": "b - a"}
COMPARE_TITLES = {"purchases": "purchases (chips)", "capacity": "capacity (facility MW)", "spend": "spend",
                  "split": "split (effective PFLOP/s)", "commitments": "commitments (what each signs now)"}


@app.command()
def compare(
    plan_a: Path = typer.Argument(..., metavar="A", help="First plan directory or instance file."),
    plan_b: Path = typer.Argument(..., metavar="B", help="Second plan directory or instance file."),
    as_json: bool = json_option(),
) -> None:
    """Show what changed between two plans (purchases, capacity, spend and split), or between two simulation
    directories (each policy's expected objective, quantiles, CVaR, regret and infeasible paths)."""
    from ..report.text import compare_plans
    from ..report.units import fmt_number, fmt_share, fmt_usd

    sims = _simulation_from(plan_a), _simulation_from(plan_b)
    if any(x is not None for x in sims):
        if not all(x is not None for x in sims):
            raise CommandError("compare takes two plans or two simulation directories, not one of each")
        _compare_simulations(*sims, plan_a, plan_b, as_json)
        return

    try:
        tables = compare_plans(_plan_from(plan_a), _plan_from(plan_b))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if as_json:
        doc = {k: json.loads(v.to_json(orient="records")) for k, v in tables.items()}
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
        return
    show(f"a = {plan_a}\nb = {plan_b}\n")
    for name, df in tables.items():
        if name == "purchases" and df.empty:
            show("purchases: identical\n")
            continue
        if name == "headline":
            def value(metric, v):
                if metric.endswith("_usd"):
                    return fmt_usd(v)
                return fmt_share(v) if metric.endswith("share") else fmt_number(v)

            df = df.assign(**{c: [value(m, v) for m, v in zip(df.metric, df[c])] for c in ("a", "b", "change")})
            show(_table(df, "headline", keys=("metric",), right=("a", "b", "change")))
        else:
            money = [c for c in df.columns if "_usd" in c]
            show(_table(df, COMPARE_TITLES.get(name, name), money=money, headers=COMPARE_HEADERS,
                        keys=tuple(c for c in ("scenario", "year") if c in df.columns)))
        show()


def _simulation_from(path: Path):
    """The simulation in a directory written by ``capplan simulate --out`` (None for anything else)."""
    from ..plan.simulation import read_simulation

    doc = path / "summary.json"
    if not (path.is_dir() and doc.is_file()):
        return None
    try:
        if json.loads(doc.read_text()).get("kind") != "simulation":
            return None
        return read_simulation(path)
    except ValueError as exc:
        raise CommandError(f"{path}: not a readable simulation directory: {exc}") from None
    except InstanceError as exc:
        raise invalid_instance(exc, "invalid simulation directory: its instance") from None


SIM_METRICS = ("expected_objective", "p10", "p50", "p90", "cvar", "expected_regret", "infeasible_paths")


def _compare_simulations(a, b, name_a, name_b, as_json: bool) -> None:
    """Each policy's summary in two simulations, side by side with the change."""
    import pandas as pd

    from ..report.units import fmt_number, fmt_usd

    money = a.truth.objective.kind == "min_cost"
    rows = []
    sa, sb = a.summary.set_index("policy"), b.summary.set_index("policy")
    for policy in dict.fromkeys([*sa.index, *sb.index]):
        for metric in SIM_METRICS:
            x = float(sa.loc[policy, metric]) if policy in sa.index else float("nan")
            y = float(sb.loc[policy, metric]) if policy in sb.index else float("nan")
            rows.append({"policy": policy, "metric": metric, "a": x, "b": y, "change": y - x})
    df = pd.DataFrame(rows)
    if as_json:
        sys.stdout.write(json.dumps({"simulations": json.loads(df.to_json(orient="records")),
                                     "value_a": a.value.value if a.value else None,
                                     "value_b": b.value.value if b.value else None}, indent=1) + "\n")
        return

    def cell(v):
        if isinstance(v, float) and v != v:
            return "-"
        return fmt_usd(v) if money else fmt_number(v)

    show(f"a = {name_a}\nb = {name_b}\n")
    show(_table(df, "policies (realised objective)", keys=("policy", "metric"), right=("a", "b", "change"),
                formats={c: cell for c in ("a", "b", "change")}))
    for label, sim in (("a", a), ("b", b)):
        if sim.value is not None:
            show(f"value of the stochastic policy ({label}): {cell(sim.value.value)}")


@app.command()
def validate(
    files: list[Path] = typer.Argument(..., metavar="FILE_OR_DIR",
                                       help="Instance YAML files, or directories (their .yaml and .yml files, "
                                       "recursively)."),
    as_json: bool = json_option(),
) -> None:
    """Check instance files without solving; list every problem with its key path.

    Exit codes: 0 every file valid, 3 some file invalid.
    """
    from .conventions import report_error

    bad = 0
    docs = []
    for f in instance_files(files):
        try:
            inst = load_instance(f)
        except InstanceError as exc:
            bad += 1
            docs.append({"file": str(f), "valid": False,
                         "problems": [{"path": p.path, "message": p.message} for p in exc.problems]})
            if not as_json:
                e = invalid_instance(exc)
                report_error(e.message, e.details)
            continue
        docs.append({"file": str(f), "valid": True, "name": inst.name, "start": inst.start, "end": inst.end,
                     "regions": len(inst.regions), "chips": len(inst.chips)})
        if not as_json:
            out.print(f"[green]valid[/] {f}: {inst.name}, {inst.start}-{inst.end}, "
                      f"{len(inst.regions)} regions, {len(inst.chips)} chips", highlight=False)
    if as_json:
        sys.stdout.write(json.dumps(docs, indent=1) + "\n")
    raise typer.Exit(Exit.INVALID if bad else Exit.OK)
