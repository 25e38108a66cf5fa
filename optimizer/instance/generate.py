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
