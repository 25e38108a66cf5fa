"""A seeded generator of realistic instances of any size, for benchmarks and tests.

The numbers follow the shape of the default instance (prices, power, lead
times and demand growth of the same order) with seeded variation, so that
generated instances are as hard as real ones, not degenerate.
"""

from __future__ import annotations

import numpy as np


def generate_instance(n_regions: int = 3, n_chips: int = 3, n_years: int = 10, *,
                      seed: int = 0, start: int = 2026) -> dict:
    """Return a raw instance mapping (load it with :func:`optimizer.load_instance`)."""
    rng = np.random.default_rng(seed)
    end = start + n_years - 1
    regions = {}
    for i in range(n_regions):
        rid = f"r{i:02d}"
        existing = float(round(rng.uniform(0, 400) if i % 3 == 0 else 0.0))
        regions[rid] = {
            "pue": round(float(rng.uniform(1.08, 1.25)), 3),
            "electricity_usd_per_mwh": round(float(rng.uniform(60, 190)), 1),
            "existing_mw": existing,
            "max_mw": {start: existing + 300.0, start + 3: float(round(rng.uniform(800, 2500)))},
            "block_mw": float(rng.choice([50, 100, 150, 200])),
            "block_capex_usd": {"start": round(float(rng.uniform(9e6, 14e6)), -4) * 100,
                                "growth": 0.03},
            "build_lead_years": int(rng.integers(1, 4)),
            "inference_demand_pflops": {"start": round(float(rng.uniform(2e3, 2e4))),
                                        "growth": round(float(rng.uniform(0.1, 0.3)), 2)},
        }
    ids = list(regions)
    serving = {}
    for d in ids:
        others = [s for s in ids if s != d]
        picks = rng.choice(others, size=min(2, len(others)), replace=False) if others else []
        serving[d] = {d: 1.0, **{str(s): round(float(rng.uniform(0.7, 0.95)), 2) for s in picks}}
    chips = {}
    for j in range(n_chips):
        gid = f"g{j:02d}"
        first = start + int(round(j * max(1, n_years - 3) / max(1, n_chips)))
        gen = min(j, 20)  # generations beyond 20 repeat the 20th (1.6**j would leave any plausible range)
        perf = 0.667 * 1.6 ** gen
        chip = {
            "chips_per_unit": int(rng.choice([16, 64, 144])),
            "available_from": first,
            "available_until": min(end, first + 5),
            "price_usd": {"start": round(14000 * 1.35 ** gen * float(rng.uniform(0.9, 1.1))),
                          "growth": -0.05},
            "power_w": round(870 * 1.3 ** gen),
            "peak_pflops": round(perf, 3),
            "utilization": {"train": 0.4, "infer": round(float(rng.uniform(0.2, 0.3)), 2)},
            "lifetime_years": 5,
            "opex_usd_per_chip_year": 300,
            "supply_units": round(float(rng.uniform(5e3, 3e4))),
        }
        if j == 0:
            chip["installed"] = [{"region": ids[0], "year": start - 1,
                                  "chips": round(regions[ids[0]]["existing_mw"] * 900)}]
        chips[gid] = chip
    total_mw = sum(r["max_mw"][start + 3] for r in regions.values())
    return {
        "name": f"generated-{n_regions}x{n_chips}x{n_years}-s{seed}",
        "description": "seeded synthetic instance (optimizer.generate)",
        "horizon": {"start": start, "end": end},
        "discount_rate": 0.08,
        "budget": {"total_usd": float(round(total_mw * 2.0e7 * n_years / 10, -6))},
        "power": {"ceiling_mw": {start: 0.5 * total_mw, start + 3: 0.8 * total_mw}},
        "objective": {"kind": "max_training", "unmet_penalty": 2.0, "cost_weight": 0.01},
        "training": {"frontier_cluster_pflops": {start: 0, start + 2: 5000.0, end: 20000.0}},
        "regions": regions,
        "chips": chips,
        "serving": serving,
    }


def generate_hard_instance(seed: int = 0, *, kind: str = "max_training", n_regions: int | None = None,
                           n_years: int = 10, start: int = 2026, demand: str = "penalty",
                           block_mw: float | None = None) -> dict:
    """Return a raw instance of the "hard" shape of issue 13 (seeded).

    The shape: integer campus blocks of 50-100 MW with one- and two-year lead
    times in ``n_regions`` (3-4 by default) regions with regional maxima; a
    power ceiling ramping from about 1 GW to 5 GW; a $100B budget; a frontier
    training cluster required from the first year and growing about eightfold;
    inference demand growing 50-70% a year; three chip generations of 64-144
    chips per unit with supply caps and 3-5 year lifetimes, the first of them
    already installed in the first region.

    ``kind`` is ``max_training`` (unmet-demand penalty in PFLOP/s-years) or
    ``min_cost`` (annual budget caps as well; ``demand="penalty"`` prices unmet
    demand in USD per PFLOP/s-year, ``demand="hard"`` makes demand a hard
    constraint).  ``block_mw`` gives every region blocks of that size (the small-block shape of issue 18).
    """
    if kind not in ("max_training", "min_cost"):
        raise ValueError(f"kind must be max_training or min_cost, got {kind!r}")
    rng = np.random.default_rng(10_000 + seed)
    end = start + n_years - 1
    nr = int(n_regions if n_regions is not None else rng.integers(3, 5))
    years = range(start, end + 1)
    capex_mw = float(rng.uniform(5e6, 12e6))  # USD per MW of campus, shared by the regions (+-10%)
    regions = {}
    for i in range(nr):
        rid = f"r{i}"
        existing = float(round(rng.uniform(400, 600))) if i == 0 else float(rng.choice([0.0, 0.0, 100.0, 150.0]))
        block = float(rng.choice([50, 60, 75, 80, 100]))
        if block_mw is not None:
            block = float(block_mw)
        lead = 2 if i == 0 else (1 if i == 1 else int(rng.integers(1, 3)))
        top = float(round(rng.uniform(1200, 2400), -1))
        mid = existing + float(round(rng.uniform(300, 800), -1))
        growth = float(round(rng.uniform(0.5, 0.7), 2))
        d0 = float(rng.uniform(0.6, 1.4)) * (30000.0 if kind == "max_training" else 12000.0) / nr
        regions[rid] = {
            "pue": round(float(rng.uniform(1.08, 1.25)), 3),
            "electricity_usd_per_mwh": round(float(rng.uniform(60, 180)), 1),
            "existing_mw": existing,
            "max_mw": {start: existing, start + 2: min(mid, top), start + 5: top},
            "block_mw": block,
            "block_capex_usd": {"start": round(capex_mw * float(rng.uniform(0.9, 1.1)) * block, -5),
                                "growth": round(float(rng.uniform(0.02, 0.04)), 3)},
            "build_lead_years": lead,
            "inference_demand_pflops": {t: round(d0 * (1 + growth) ** (t - start)) for t in years},
        }
    ids = list(regions)
    serving = {}
    for d in ids:
        others = [s for s in ids if s != d]
        picks = rng.choice(others, size=min(2, len(others)), replace=False)
        serving[d] = {d: 1.0, **{str(s): round(float(rng.uniform(0.75, 0.95)), 2) for s in picks}}
    gens = [  # (first year offset, buy years, price $, IT W, peak PF, infer util)
        (0, 4, 15000, 900, 1.3, 0.12),
        (0, 6, 21000, 1250, 2.5, 0.105),
        (2, n_years, 36000, 2100, 7.5, 0.14),
    ]
    chips = {}
    for j, (off, span, price, watts, peak, ui) in enumerate(gens):
        gid = f"g{j}"
        per_unit = int(rng.choice([64, 72, 128, 144]))
        chip = {
            "chips_per_unit": per_unit,
            "available_from": start + off,
            "available_until": min(end, start + off + span - 1),
            "price_usd": {"start": round(price * float(rng.uniform(0.9, 1.1)), -2),
                          "growth": round(float(rng.uniform(-0.08, -0.03)), 3)},
            "power_w": round(watts * float(rng.uniform(0.95, 1.05))),
            "peak_pflops": round(peak * float(rng.uniform(0.95, 1.05)), 3),
            "utilization": {"train": 0.2, "infer": ui},
            "lifetime_years": int(rng.integers(3, 6)),
            "opex_usd_per_chip_year": round(0.33 * watts, -1),
            "supply_units": {start + off: round(float(rng.uniform(2e5, 5e5)) / per_unit),
                             start + off + 2: round(float(rng.uniform(6e5, 1.2e6)) / per_unit)},
        }
        if j == 0:
            pue0 = regions[ids[0]]["pue"]
            n_inst = regions[ids[0]]["existing_mw"] * 0.9 / (chip["power_w"] * pue0 / 1e6)
            chip["lifetime_years"] = max(chip["lifetime_years"], 4)
            chip["installed"] = [{"region": ids[0], "year": start - 1, "chips": round(n_inst * 0.5, -3)},
                                 {"region": ids[0], "year": start - 2, "chips": round(n_inst * 0.5, -3)}]
        chips[gid] = chip
    ramp = int(rng.integers(4, 6))
    c0 = float(round(rng.uniform(25000, 50000), -3))
    growth8 = float(rng.uniform(7.0, 9.0))
    frontier = {t: round(c0 * growth8 ** ((t - start) / (n_years - 1)), -2) for t in years}
    raw = {
        "name": f"hard-{kind}-{demand}-s{seed}" if kind == "min_cost" else f"hard-{kind}-s{seed}",
        "description": "seeded hard instance of issue 13 (optimizer.generate.generate_hard_instance)",
        "horizon": {"start": start, "end": end},
        "discount_rate": 0.08,
        "budget": {"total_usd": 100e9},
        "power": {"ceiling_mw": {start: 1000.0, start + ramp: 5000.0}},
        "training": {"frontier_cluster_pflops": frontier},
        "regions": regions,
        "chips": chips,
        "serving": serving,
    }
    if kind == "max_training":
        raw["objective"] = {"kind": "max_training", "unmet_penalty": round(float(rng.uniform(1.5, 3.0)), 1),
                            "cost_weight": 0.01}
    else:
        raw["budget"]["annual_max_usd"] = {start: round(float(rng.uniform(12e9, 18e9)), -9),
                                           start + 4: round(float(rng.uniform(18e9, 25e9)), -9)}
        raw["objective"] = {"kind": "min_cost"}
        if demand == "penalty":
            raw["objective"]["unmet_penalty"] = round(float(rng.uniform(2e4, 6e4)), -3)
    return raw
