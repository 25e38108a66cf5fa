"""Charts: valid PNGs of slide size with the expected series, from the CLI and the library."""

from __future__ import annotations

import subprocess
import sys

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import pytest
from conftest import DEFAULT

from optimizer.report import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_chart_series(default_plan):
    inst = default_plan.instance
    n_chips_in_fleet = default_plan.fleet.chip.nunique()
    n_regions = len(inst.regions)
    expected = {
        "fleet": n_chips_in_fleet,
        # regions stacked + total draw + ceiling (+ capacity/draw/max in the region panels)
        "capacity": n_regions + 2 + 3,
        "spend": 4 + 2,  # chips, blocks, energy, opex + cumulative, budget
        "split": 2 + 1,  # training, inference + share
        "purchases": default_plan.purchases.region.nunique(),
    }
    for name, func in plots.CHART_FUNCS.items():
        fig = func(default_plan)
        try:
            assert plots.series_count(fig) == expected[name], name
            for ax in fig.axes:
                assert ax.get_ylabel(), f"{name}: unlabeled y axis"
            assert fig.axes[0].get_title()
        finally:
            plt.close(fig)


def test_plot_command_writes_slide_pngs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "optimizer", "plot", str(DEFAULT), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for name in plots.CHARTS:
        path = tmp_path / f"{name}.png"
        assert path.read_bytes()[:8] == PNG_MAGIC
        img = mpimg.imread(path)
        assert img.shape[:2] == (720, 1280), name
        assert img.std() > 0.05  # not blank


@pytest.mark.parametrize("name", plots.CHARTS)
def test_plot_from_plan_dir(default_plan, tmp_path, name):
    default_plan.write(tmp_path / "plan")
    from optimizer.plan import read_plan

    paths = plots.plot_plan(read_plan(tmp_path / "plan"), tmp_path / "charts")
    assert (tmp_path / "charts" / f"{name}.png") in paths
