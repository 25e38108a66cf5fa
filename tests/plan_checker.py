"""An independent checker of plans against spec model-v1.

:func:`check_plan` recomputes every quantity of the program (spec section 2)
from the plan's output tables and the :class:`~optimizer.Instance` alone; it
never looks at the Pyomo model.  It checks that

* the tables are well formed (columns, keys inside the instance, one row per key
  where the spec says "every year x region"),
* every constraint of section 2 holds (assign, facility, region_max, ceiling,
  supply, serve, demand, budget, annual, training, frontier, availability,
  integrality),
* every derived column equals its definition (installed fleet from purchases,
  pre-horizon chips and lifetimes; capacity from blocks and lead times; draw,
  compute, served, spend),
* the objective recomputed from the tables equals ``plan.objective``, and the
  split and summary tables agree with the rest.

Every violation is collected; one ``AssertionError`` lists them all.
Comparisons use ``abs_tol + rel_tol * scale`` where ``scale`` is the magnitude
of the terms involved, so that a 1e10 USD budget and a 2-chip fleet are both
held to a sensible tolerance.
"""

from __future__ import annotations

import math
from collections import defaultdict

import pandas as pd

HOURS_PER_YEAR = 8760.0
W_PER_MW = 1e6

COLUMNS = {
    "purchases": ["year", "region", "chip", "units", "chips", "capex_usd"],
    "fleet": ["year", "region", "chip", "installed", "train", "infer", "idle"],
    "facilities": ["year", "region", "blocks_started", "capacity_mw", "draw_mw", "max_mw"],
    "compute": ["year", "region", "train_pflops", "infer_capacity_pflops", "demand_pflops",
                "served_pflops", "unmet_pflops"],
    "serving": ["year", "source", "demand_region", "pflops"],
    "spend": ["year", "chip_capex_usd", "facility_capex_usd", "energy_usd", "opex_usd",
              "total_usd", "cumulative_usd"],
    "split": ["year", "train_pflops", "infer_pflops", "training_share"],
    "summary": ["objective", "status", "mip_gap", "total_spend_usd", "budget_used_share",
                "peak_capacity_mw", "build_seconds", "solve_seconds", "solver",
                "solver_version", "instance_hash"],
}

INT_TOL = 1e-6  # integrality of units and blocks (the plan reports rounded integers)
# The model counts chips in purchasable units and HiGHS accepts a MIP solution whose
# rows are violated by up to 1e-6 (mip_feasibility_tolerance): assignments of chips
# are allowed that much solver residue, in units, on top of abs_tol/rel_tol.
UNIT_FEAS_TOL = 1e-5


def _status_value(status) -> str:
    return str(getattr(status, "value", status)).lower()


def _isnan(x) -> bool:
    try:
        return x is None or (isinstance(x, float) and math.isnan(x)) or bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


class _Checker:
    def __init__(self, rel_tol: float, abs_tol: float) -> None:
        self.rel = rel_tol
        self.abs = abs_tol
        self.violations: list[str] = []

    def fail(self, msg: str) -> None:
        self.violations.append(msg)

    def tol(self, *scale: float) -> float:
        s = max((abs(x) for x in scale if not _isnan(x)), default=0.0)
        return self.abs + self.rel * s

    def eq(self, what: str, got, want, scale: float = 0.0) -> bool:
        """got == want within tolerance (NaN equals NaN)."""
        if _isnan(got) or _isnan(want):
            if not (_isnan(got) and _isnan(want)):
                self.fail(f"{what}: reported {got!r}, recomputed {want!r}")
                return False
            return True
        got, want = float(got), float(want)
        if abs(got - want) > self.tol(got, want, scale):
            self.fail(f"{what}: reported {got:.10g}, recomputed {want:.10g} "
                      f"(diff {got - want:.3g})")
            return False
        return True

    def le(self, what: str, lhs: float, rhs: float, scale: float = 0.0) -> bool:
        """lhs <= rhs within tolerance."""
        if lhs > rhs + self.tol(lhs, rhs, scale):
            self.fail(f"{what}: {lhs:.10g} > {rhs:.10g} (excess {lhs - rhs:.3g})")
            return False
        return True

    def integral(self, what: str, x: float) -> bool:
        if _isnan(x) or abs(x - round(x)) > INT_TOL:
            self.fail(f"{what}: {x!r} is not an integer")
            return False
        return True


def _keyed(c: _Checker, df: pd.DataFrame, name: str, keys: list[str]) -> dict:
    """Rows of ``df`` by key tuple; duplicate keys are violations (first row kept)."""
    out = {}
    for row in df.itertuples(index=False):
        key = tuple(getattr(row, k) for k in keys)
        key = tuple(int(v) if k == "year" else v for k, v in zip(keys, key, strict=True))
        if key in out:
            c.fail(f"{name}: duplicate row for {dict(zip(keys, key, strict=True))}")
            continue
        out[key] = row
    return out


def check_plan(inst, plan, rel_tol: float = 1e-6, abs_tol: float = 1e-6) -> None:
    """Recompute ``plan`` from its tables and ``inst``; raise AssertionError listing violations."""
    c = _Checker(rel_tol, abs_tol)
    _check(c, inst, plan)
    if c.violations:
        shown = c.violations[:200]
        more = len(c.violations) - len(shown)
        text = "\n  - ".join(shown)
        raise AssertionError(
            f"plan of {inst.name!r} violates {len(c.violations)} check(s):\n  - {text}"
            + (f"\n  ... and {more} more" if more > 0 else "")
        )


def _check(c: _Checker, inst, plan) -> None:  # noqa: C901 - one pass over the spec, in order
    status = _status_value(plan.status)
    tables = {name: getattr(plan, name, None) for name in COLUMNS}
    for name, df in tables.items():
        if not isinstance(df, pd.DataFrame):
            c.fail(f"{name}: missing or not a DataFrame")
            return
        missing = [col for col in COLUMNS[name] if col not in df.columns]
        if missing:
            c.fail(f"{name}: missing columns {missing}")
    if c.violations:
        return

    if status not in ("optimal", "feasible"):
        # no plan: every table but the summary is empty
        for name, df in tables.items():
            if name != "summary" and len(df):
                c.fail(f"{name}: status {status} but the table has {len(df)} rows")
        return

    if plan.objective is None or not math.isfinite(float(plan.objective)):
        c.fail(f"objective: {plan.objective!r} is not a finite number")
        return

    years = list(inst.years)
    yset = set(years)
    regions, chips = inst.regions, inst.chips

    # ------------------------------------------------------------ purchases
    n = defaultdict(float)  # (g, r, t) -> units
    purchases = _keyed(c, tables["purchases"], "purchases", ["chip", "region", "year"])
    for (g, r, t), row in purchases.items():
        where = f"purchases[{g}, {r}, {t}]"
        if g not in chips or r not in regions or t not in yset:
            c.fail(f"{where}: chip, region or year outside the instance")
            continue
        chip = chips[g]
        c.integral(f"{where}.units", row.units)
        if row.units <= 0:
            c.fail(f"{where}.units: {row.units!r} (rows only for units > 0)")
        if not chip.available_from <= t <= chip.available_until:
            c.fail(f"{where}: bought outside availability "
                   f"[{chip.available_from}, {chip.available_until}]")
        c.eq(f"{where}.chips (= units * chips_per_unit {chip.chips_per_unit})",
             row.chips, row.units * chip.chips_per_unit)
        c.eq(f"{where}.capex_usd (= price * chips)", row.capex_usd,
             chip.price_usd[t] * row.units * chip.chips_per_unit)
        n[g, r, t] += float(row.units)

    # supply: sum_r n[g, r, t] <= s_{g,t}
    for g, chip in chips.items():
        if chip.supply_units is None:
            continue
        for t in years:
            bought = sum(n[g, r, t] for r in regions)
            c.le(f"supply[{g}, {t}]: units bought", bought, chip.supply_units[t])

    # ------------------------------------------------------------ installed fleet
    def installed(g: str, r: str, t: int) -> float:
        chip = chips[g]
        life = chip.lifetime_years
        bought = sum(n[g, r, tau] for tau in range(max(years[0], t - life + 1), t + 1))
        old = sum(e.chips for e in chip.installed
                  if e.region == r and e.year <= t <= e.year + life - 1)
        return chip.chips_per_unit * bought + old

    N = {(g, r, t): installed(g, r, t) for g in chips for r in regions for t in years}

    fleet = _keyed(c, tables["fleet"], "fleet", ["chip", "region", "year"])
    xT = defaultdict(float)
    xI = defaultdict(float)
    for (g, r, t), row in fleet.items():
        where = f"fleet[{g}, {r}, {t}]"
        if (g, r, t) not in N:
            c.fail(f"{where}: chip, region or year outside the instance")
            continue
        c.eq(f"{where}.installed (purchases + pre-horizon chips within lifetime)",
             row.installed, N[g, r, t])
        residue = UNIT_FEAS_TOL * chips[g].chips_per_unit  # chips
        for col in ("train", "infer"):
            val = float(getattr(row, col))
            if val < -c.tol(row.installed) - residue:
                c.fail(f"{where}.{col}: negative ({val!r})")
        c.le(f"assign[{g}, {r}, {t}]: train + infer <= installed",
             float(row.train) + float(row.infer) - residue, float(row.installed))
        c.eq(f"{where}.idle (= installed - train - infer)", row.idle,
             row.installed - row.train - row.infer, scale=row.installed)
        xT[g, r, t] = float(row.train)
        xI[g, r, t] = float(row.infer)
    for key, val in N.items():
        if val > c.tol(val) and key not in fleet:
            g, r, t = key
            c.fail(f"fleet[{g}, {r}, {t}]: no row but {val:.10g} chips are installed")

    # ------------------------------------------------------------ facilities
    facilities = _keyed(c, tables["facilities"], "facilities", ["region", "year"])
    k = defaultdict(float)
    for (r, t), row in facilities.items():
        if r not in regions or t not in yset:
            c.fail(f"facilities[{r}, {t}]: region or year outside the instance")
            continue
        if c.integral(f"facilities[{r}, {t}].blocks_started", row.blocks_started):
            if row.blocks_started < 0:
                c.fail(f"facilities[{r}, {t}].blocks_started: negative ({row.blocks_started})")
        k[r, t] = float(row.blocks_started)

    cap, draw = {}, {}
    for r, reg in regions.items():
        for t in years:
            cap[r, t] = reg.existing_mw + sum(
                reg.block_mw * k[r, tau] for tau in years if tau + reg.build_lead_years <= t)
            draw[r, t] = sum(N[g, r, t] * chip.power_w * reg.pue / W_PER_MW
                             for g, chip in chips.items())
            where = f"facilities[{r}, {t}]"
            row = facilities.get((r, t))
            if row is None:
                c.fail(f"{where}: missing row (one per year x region)")
                continue
            c.eq(f"{where}.capacity_mw (existing + blocks online after lead time)",
                 row.capacity_mw, cap[r, t])
            c.eq(f"{where}.draw_mw (= sum installed * W * pue / 1e6)", row.draw_mw, draw[r, t])
            c.le(f"facility[{r}, {t}]: draw_mw <= capacity_mw", draw[r, t], cap[r, t])
            c.le(f"facility[{r}, {t}]: reported draw_mw <= reported capacity_mw",
                 float(row.draw_mw), float(row.capacity_mw))
            if reg.max_mw is None:
                if not _isnan(row.max_mw):
                    c.fail(f"{where}.max_mw: {row.max_mw!r} but the region has no limit (NaN)")
            else:
                c.eq(f"{where}.max_mw", row.max_mw, reg.max_mw[t])
                c.le(f"region_max[{r}, {t}]: capacity_mw <= max_mw", cap[r, t], reg.max_mw[t])

    if inst.power.ceiling_mw is not None:
        for t in years:
            total = sum(cap[r, t] for r in regions)
            c.le(f"ceiling[{t}]: sum of capacity_mw <= ceiling", total, inst.power.ceiling_mw[t])

    # ------------------------------------------------------------ compute, serving, demand
    train_rt, infer_rt = {}, {}
    for r in regions:
        for t in years:
            train_rt[r, t] = sum(ch.peak_pflops * ch.util_train * xT[g, r, t]
                                 for g, ch in chips.items())
            infer_rt[r, t] = sum(ch.peak_pflops * ch.util_infer * xI[g, r, t]
                                 for g, ch in chips.items())

    y = defaultdict(float)
    serving = _keyed(c, tables["serving"], "serving", ["source", "demand_region", "year"])
    for (s, d, t), row in serving.items():
        where = f"serving[{s} -> {d}, {t}]"
        if s not in regions or d not in regions or t not in yset:
            c.fail(f"{where}: region or year outside the instance")
            continue
        if s not in inst.sources(d):
            c.fail(f"{where}: {s} may not serve {d} (allowed: {sorted(inst.sources(d))})")
            continue
        if row.pflops < -c.tol(row.pflops):
            c.fail(f"{where}.pflops: negative ({row.pflops!r})")
        y[s, d, t] = float(row.pflops)

    for s in regions:
        for t in years:
            sent = sum(y[s, d, t] for d in regions)
            c.le(f"serve[{s}, {t}]: PFLOP/s sent <= inference capacity", sent, infer_rt[s, t])

    lam = inst.objective.unmet_penalty
    unmet = defaultdict(float)
    compute = _keyed(c, tables["compute"], "compute", ["region", "year"])
    for key in compute:
        if key not in train_rt:
            c.fail(f"compute[{key[0]}, {key[1]}]: region or year outside the instance")
    for r, reg in regions.items():
        for t in years:
            where = f"compute[{r}, {t}]"
            demand = reg.inference_demand_pflops[t]
            terms = [inst.sources(r)[s] * y[s, r, t] for s in inst.sources(r)]
            served = sum(terms)
            row = compute.get((r, t))
            if row is None:
                c.fail(f"{where}: missing row (one per year x region)")
                continue
            c.eq(f"{where}.train_pflops (= sum f * eta_T * train)", row.train_pflops,
                 train_rt[r, t])
            c.eq(f"{where}.infer_capacity_pflops (= sum f * eta_I * infer)",
                 row.infer_capacity_pflops, infer_rt[r, t])
            c.eq(f"{where}.demand_pflops", row.demand_pflops, demand)
            c.eq(f"{where}.served_pflops (= sum eps * y)", row.served_pflops, served)
            m = float(row.unmet_pflops)
            if m < -c.tol(demand):
                c.fail(f"{where}.unmet_pflops: negative ({m!r})")
            if lam is None and m > c.tol(demand):
                c.fail(f"{where}.unmet_pflops: {m:.10g} but demand is hard (no unmet_penalty)")
            unmet[r, t] = m
            c.le(f"demand[{r}, {t}]: demand <= served + unmet", demand, served + m,
                 scale=sum(terms) + abs(m))

    # ------------------------------------------------------------ spend and budget
    spend_rows = []
    for t in years:
        chip_capex = sum(chips[g].price_usd[tt] * chips[g].chips_per_unit * units
                         for (g, r, tt), units in n.items() if tt == t)
        facility = sum(regions[r].block_capex_usd[t] * k[r, t] for r in regions)
        energy = sum(draw[r, t] * HOURS_PER_YEAR * regions[r].electricity_usd_per_mwh[t]
                     for r in regions)
        opex = sum(N[g, r, t] * chips[g].opex_usd_per_chip_year for g in chips for r in regions)
        spend_rows.append((t, chip_capex, facility, energy, opex,
                           chip_capex + facility + energy + opex))
    spend_t = {row[0]: row[5] for row in spend_rows}

    spend = _keyed(c, tables["spend"], "spend", ["year"])
    if list(tables["spend"]["year"].astype(int)) != years:
        c.fail(f"spend: years {list(tables['spend']['year'])}, expected {years} in order")
    cumulative = 0.0
    for t, chip_capex, facility, energy, opex, total in spend_rows:
        cumulative += total
        row = spend.get((t,))
        if row is None:
            c.fail(f"spend[{t}]: missing row")
            continue
        c.eq(f"spend[{t}].chip_capex_usd", row.chip_capex_usd, chip_capex)
        c.eq(f"spend[{t}].facility_capex_usd", row.facility_capex_usd, facility)
        c.eq(f"spend[{t}].energy_usd (= draw * 8760 * price)", row.energy_usd, energy)
        c.eq(f"spend[{t}].opex_usd (= installed * opex)", row.opex_usd, opex)
        c.eq(f"spend[{t}].total_usd", row.total_usd, total)
        c.eq(f"spend[{t}].total_usd (= sum of its columns)", row.total_usd,
             row.chip_capex_usd + row.facility_capex_usd + row.energy_usd + row.opex_usd)
        c.eq(f"spend[{t}].cumulative_usd", row.cumulative_usd, cumulative)
        if inst.budget.annual_max_usd is not None:
            c.le(f"annual[{t}]: spend <= annual_max_usd", total, inst.budget.annual_max_usd[t])
    total_spend = sum(spend_t.values())
    if inst.budget.total_usd is not None:
        c.le("budget: total spend <= total_usd", total_spend, inst.budget.total_usd)

    # ------------------------------------------------------------ training and frontier
    train_t = {t: sum(train_rt[r, t] for r in regions) for t in years}
    infer_t = {t: sum(infer_rt[r, t] for r in regions) for t in years}
    for t in years:
        c.le(f"training[{t}]: min_pflops <= training PFLOP/s", inst.training.min_pflops[t],
             train_t[t])
        need = inst.training.frontier_cluster_pflops[t]
        if need > 0:
            best = max(((ch.peak_pflops * ch.util_train * xT[g, r, t], g, r)
                        for g, ch in chips.items() for r in regions), default=(0.0, None, None))
            if best[0] < need - c.tol(need):
                c.fail(f"frontier[{t}]: no (chip, region) site trains {need:.10g} PFLOP/s; "
                       f"best is {best[1]} in {best[2]} with {best[0]:.10g}")

    # ------------------------------------------------------------ objective
    rho = inst.discount_rate
    terms = []
    for t in years:
        delta = (1.0 + rho) ** -(t - years[0])
        m_t = sum(unmet[r, t] for r in regions)
        lam_m = (lam or 0.0) * m_t
        if inst.objective.kind == "min_cost":
            terms += [delta * spend_t[t], delta * lam_m]
        else:
            terms += [delta * train_t[t], -delta * lam_m,
                      -inst.objective.cost_weight * delta * spend_t[t] / 1e9]
    # spec v2 section 5: the terminal value of chips bought in the horizon still in service after it
    terminal = 0.0
    if getattr(inst.objective, "end_of_horizon", "truncate") == "salvage":
        end = years[-1]
        for (g, _, tau), row in purchases.items():
            ch = chips[g]
            last = int(tau) + ch.lifetime_years - 1
            if last <= end:
                continue
            if inst.objective.kind == "max_training":
                weight = sum((1.0 + rho) ** -(t - years[0]) for t in range(end + 1, last + 1))
                terminal += row.chips * ch.peak_pflops * ch.util_train * weight
            else:
                terminal -= ((1.0 + rho) ** -(end + 1 - years[0]) * ch.price_usd[int(tau)] * row.chips
                             * (last - end) / ch.lifetime_years)
        terms.append(terminal)
        s = tables["summary"]
        if len(s) == 1 and "terminal_value" in s.columns:
            c.eq("summary.terminal_value (salvage)", s.iloc[0]["terminal_value"], terminal,
                 scale=max((abs(x) for x in terms), default=0.0))
    objective = sum(terms)
    c.eq(f"objective ({inst.objective.kind})", plan.objective, objective,
         scale=max((abs(x) for x in terms), default=0.0))

    # ------------------------------------------------------------ split
    split = _keyed(c, tables["split"], "split", ["year"])
    for t in years:
        row = split.get((t,))
        if row is None:
            c.fail(f"split[{t}]: missing row")
            continue
        c.eq(f"split[{t}].train_pflops", row.train_pflops, train_t[t])
        c.eq(f"split[{t}].infer_pflops", row.infer_pflops, infer_t[t])
        total = train_t[t] + infer_t[t]
        if total > c.tol(total):
            c.eq(f"split[{t}].training_share", row.training_share, train_t[t] / total, scale=1.0)
        elif not (_isnan(row.training_share) or abs(row.training_share) <= c.tol(1.0)):
            c.fail(f"split[{t}].training_share: {row.training_share!r} with no compute assigned")

    # ------------------------------------------------------------ summary
    summary = tables["summary"]
    if len(summary) != 1:
        c.fail(f"summary: {len(summary)} rows, expected 1")
        return
    s = summary.iloc[0]
    c.eq("summary.objective (= plan.objective)", s["objective"], plan.objective)
    if _status_value(s["status"]) != status:
        c.fail(f"summary.status: {s['status']!r}, plan.status {status!r}")
    if plan.mip_gap is not None:
        c.eq("summary.mip_gap (= plan.mip_gap)", s["mip_gap"], plan.mip_gap, scale=1.0)
    c.eq("summary.total_spend_usd", s["total_spend_usd"], total_spend)
    budget = inst.budget.total_usd
    if budget:
        c.eq("summary.budget_used_share", s["budget_used_share"], total_spend / budget, scale=1.0)
    peak = max(sum(cap[r, t] for r in regions) for t in years)
    c.eq("summary.peak_capacity_mw (= max over years of capacity summed over regions)",
         s["peak_capacity_mw"], peak)
    inst_hash = getattr(inst, "hash", None)
    if inst_hash is not None and s["instance_hash"] != inst_hash:
        c.fail(f"summary.instance_hash: {s['instance_hash']!r}, instance {inst_hash!r}")


# --------------------------------------------------------------------------- plans under uncertainty


def check_tree_plan(inst, plan, rel_tol: float = 1e-6, abs_tol: float = 1e-6) -> None:
    """Check a plan under uncertainty (spec v2 section 4) from its tables alone.

    * every scenario's plan passes :func:`check_plan` against that scenario's own v1 instance;
    * non-anticipativity: scenarios that share the node of year t (the same branches at every stage
      with year <= t) have identical decisions in year t: purchases, blocks, the fleet's training
      and inference assignment, serving and unmet demand;
    * the scenarios table: probabilities are the products of the branch probabilities, each
      objective is that scenario's v1 objective, and the plan's objective is (1 - w) E + w CVaR of them;
    * the commitments table lists exactly the root node's purchases and blocks.
    """
    c = _Checker(rel_tol, abs_tol)
    unc = inst.uncertainty
    scenarios = inst.scenarios()
    stage_years = [s.year for s in unc.stages]
    # probabilities: products of the branches', in stage order then file order
    expected = [()]
    for st in unc.stages:
        expected = [(*e, b) for e in expected for b in st.branches]
    ids = ["/".join(b.id for b in e) for e in expected]
    if [s.id for s in scenarios] != ids:
        c.fail(f"scenarios: {[s.id for s in scenarios]}, expected the product {ids}")
    prob = {"/".join(b.id for b in e): math.prod(b.probability for b in e) for e in expected}
    table = plan.scenarios.set_index("scenario")
    values = []
    for s in scenarios:
        c.eq(f"scenarios[{s.id}].probability", table.loc[s.id, "probability"], prob.get(s.id, math.nan), 1.0)
        one = plan.scenario(s.id)
        try:
            check_plan(s.instance, one, rel_tol, abs_tol)
        except AssertionError as exc:
            c.fail(f"scenario {s.id}: {exc}")
        values.append(one.objective)
    # the risk measure of the scenarios' objectives is the plan's objective
    maximize = inst.objective.kind == "max_training"
    e = sum(prob[s.id] * v for s, v in zip(scenarios, values))
    rp = e
    if unc.risk_weight > 0:
        ordered = sorted(zip(values, [prob[s.id] for s in scenarios]), reverse=not maximize)
        left, tail = 1.0 - unc.cvar_alpha, 0.0
        for v, p in ordered:
            take = min(p, left)
            tail += take * v
            left -= take
        rp = (1 - unc.risk_weight) * e + unc.risk_weight * tail / (1.0 - unc.cvar_alpha)
    c.eq("objective = (1 - w) E + w CVaR of the scenario objectives", plan.objective, rp,
         scale=max(abs(v) for v in values))
    # non-anticipativity, from the tables alone
    decisions = {
        "purchases": (["region", "chip"], ["units"]),
        "facilities": (["region"], ["blocks_started"]),
        "fleet": (["region", "chip"], ["train", "infer"]),
        "serving": (["source", "demand_region"], ["pflops"]),
        "compute": (["region"], ["unmet_pflops"]),
    }
    for t in inst.years:
        depth = sum(1 for y in stage_years if y <= t)
        groups: dict[str, list[str]] = {}
        for s in scenarios:
            groups.setdefault("/".join(s.id.split("/")[:depth]), []).append(s.id)
        for node, members in groups.items():
            for name, (key, cols) in decisions.items():
                df = getattr(plan, name)
                rows = df[(df.year == t) & df.scenario.isin(members)]
                first = rows[rows.scenario == members[0]].set_index(key)[cols].sort_index()
                for other in members[1:]:
                    them = rows[rows.scenario == other].set_index(key)[cols].sort_index()
                    same = first.index.equals(them.index) and all(
                        abs(a - b) <= c.tol(a, b) for a, b in zip(first.to_numpy().ravel(), them.to_numpy().ravel()))
                    if not same:
                        c.fail(f"non-anticipativity: {name} of {t} differ between {members[0]} and {other}, "
                               f"which share the node {node or 'root'}")
    # the commitments are the root node's decisions
    first_stage = stage_years[0]
    s0 = scenarios[0].id
    p0 = plan.purchases[(plan.purchases.scenario == s0) & (plan.purchases.year < first_stage)]
    f0 = plan.facilities[(plan.facilities.scenario == s0) & (plan.facilities.year < first_stage)
                         & (plan.facilities.blocks_started > 0)]
    want = {(int(r.year), r.region, r.chip): float(r.units) for r in p0.itertuples()}
    want.update({(int(r.year), r.region, "blocks"): float(r.blocks_started) for r in f0.itertuples()})
    got = {(int(r.year), r.region, r.item): float(r.quantity) for r in plan.commitments.itertuples()}
    if got != want:
        c.fail(f"commitments: {got}, the root node's decisions are {want}")
    if c.violations:
        raise AssertionError(f"plan of {inst.name!r} under uncertainty violates {len(c.violations)} check(s):\n  - "
                             + "\n  - ".join(c.violations[:100]))
