"""Charts of a tiny plan and of the default plan: units chosen from the data, ticks that differ, headroom
above the bars, and legends inside the figure and off the data (issue 21, item 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, solved_file

from optimizer.report import plots

TINY = ROOT / "instances" / "tiny-min-cost.yaml"
TREE = ROOT / "instances" / "tiny-tree-hedge.yaml"


@pytest.fixture(scope="module")
def tiny_plan():
    return solved_file(str(TINY))


def drawn(fig):
    fig.canvas.draw()
    return fig


def labels(axis) -> list[str]:
    lo, hi = sorted(axis.axes.get_ylim() if axis is axis.axes.yaxis else axis.axes.get_xlim())
    return [t.get_text() for t, v in zip(axis.get_ticklabels(), axis.get_ticklocs()) if lo - 1e-9 <= v <= hi + 1e-9]


def check_layout(fig) -> None:
    """Every legend inside the figure and clear of every axes; ticks of every value axis distinct; no offset."""
    box = fig.bbox
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    renderer = fig.canvas.get_renderer()
    for legend in legends:
        lb = legend.get_window_extent(renderer)
        assert box.x0 - 1 <= lb.x0 and lb.x1 <= box.x1 + 1 and box.y0 - 1 <= lb.y0 and lb.y1 <= box.y1 + 1, \
            "legend cut at the figure's edge"
        for ax in fig.axes:
            ab = ax.get_window_extent(renderer)
            overlap = min(lb.x1, ab.x1) - max(lb.x0, ab.x0), min(lb.y1, ab.y1) - max(lb.y0, ab.y0)
            assert not (overlap[0] > 1 and overlap[1] > 1), f"legend over the axes {ax.get_title()!r}"
    for ax in fig.axes:
        for axis in (ax.yaxis, ax.xaxis):
            assert axis.get_offset_text().get_text() == "", "an offset or exponent on an axis"
        texts = labels(ax.yaxis)
        if len(texts) > 1 and all(texts):
            assert len(set(texts)) == len(texts), f"repeated tick labels {texts}"


def bar_top(ax) -> float:
    return max((p.get_y() + p.get_height() for p in ax.patches), default=0.0)


# ------------------------------------------------------------------ the tiny plan: single chips and dollars


def test_tiny_fleet_counts_single_chips(tiny_plan):
    fig = drawn(plots.fleet_chart(tiny_plan))
    try:
        ax = fig.axes[0]
        assert ax.get_ylabel() == "installed chips"
        assert labels(ax.yaxis) == ["0", "1", "2", "3", "4"]
        assert bar_top(ax) == 4 and ax.get_ylim()[1] >= 4 * 1.1  # headroom above the bar
        check_layout(fig)
    finally:
        plots.plt.close(fig)


def test_tiny_spend_in_thousands_of_dollars(tiny_plan):
    fig = drawn(plots.spend_chart(tiny_plan))
    try:
        ax, cumulative = fig.axes
        assert ax.get_ylabel() == "spend per year ($ thousands)"
        assert cumulative.get_ylabel() == "cumulative ($ thousands)"
        ticks = labels(ax.yaxis)
        assert ticks[0] == "0" and "50" in ticks  # $54,760 reads 54.76 thousand, not 5e-5 billion
        assert bar_top(ax) == pytest.approx(54_760) and ax.get_ylim()[1] > 54_760 * 1.05
        check_layout(fig)
    finally:
        plots.plt.close(fig)


@pytest.mark.parametrize("name", plots.CHARTS)
def test_every_tiny_chart_is_laid_out(tiny_plan, name):
    fig = drawn(plots.CHART_FUNCS[name](tiny_plan))
    try:
        check_layout(fig)
    finally:
        plots.plt.close(fig)


def test_ranges_of_a_tiny_instance_read_in_chips():
    table = pd.DataFrame({
        "aggregate": ["chips.a", "chips.b", "regions.r"], "unit": ["chips", "chips", "MW"],
        "optimal": [12.0, 0.0, 12.0], "min": [12.0, 0.0, 12.0], "max": [12.0, 0.0, 12.0],
        "robust": [True, True, True], "status": ["optimal"] * 3})
    fig = drawn(plots.ranges_chart(table, "tiny"))
    try:
        chips, mw = fig.axes
        assert chips.get_xlabel() == "chips" and mw.get_xlabel() == "campus blocks started (MW)"
        ticks = labels(chips.xaxis)
        assert len(set(ticks)) == len(ticks) > 2 and "12" in ticks  # not every tick "0"
        assert chips.get_xlim()[1] > 12  # the point at the maximum is inside the frame
        check_layout(fig)
    finally:
        plots.plt.close(fig)


def test_fan_chart_of_a_tiny_tree():
    plan = solved_file(str(TREE))
    fig = drawn(plots.fan_chart(plan))
    try:
        check_layout(fig)
        assert len(fig.legends) == 1
        names = [t.get_text() for t in fig.legends[0].get_texts()]
        assert all(any(s in n for n in names) for s in plan.scenarios.scenario)
    finally:
        plots.plt.close(fig)


# ------------------------------------------------------------------ the default plan: thousands, $B, MW


def test_default_purchases_in_thousands_with_headroom(default_plan):
    fig = drawn(plots.purchases_chart(default_plan))
    try:
        ax = fig.axes[0]
        assert ax.get_ylabel() == "chips bought (thousands)"
        most = default_plan.purchases.groupby("year").chips.sum().max()
        assert bar_top(ax) == pytest.approx(most)
        assert ax.get_ylim()[1] >= most * 1.1  # the largest bar (2027) does not touch the frame
        ticks = labels(ax.yaxis)
        assert ticks[:3] == ["0", "50", "100"]
        check_layout(fig)
    finally:
        plots.plt.close(fig)


def test_default_spend_in_billions_and_the_budget_on_its_own_axis(default_plan):
    fig = drawn(plots.spend_chart(default_plan))
    try:
        ax, cumulative = fig.axes
        assert ax.get_ylabel() == "spend per year ($B)" and cumulative.get_ylabel() == "cumulative ($B)"
        budget = [line for line in cumulative.get_lines() if line.get_label() == "total budget"]
        assert budget and budget[0].get_ydata()[0] == pytest.approx(100e9)
        assert not [line for line in ax.get_lines() if line.get_label() == "total budget"]  # not over the bars
        assert cumulative.get_ylim()[1] > 100e9  # the budget line inside the frame
        assert "100" in labels(cumulative.yaxis)
        check_layout(fig)
    finally:
        plots.plt.close(fig)


def test_default_capacity_legend_covers_no_panel(default_plan):
    fig = drawn(plots.capacity_chart(default_plan))
    try:
        assert fig.axes[0].get_ylabel() == "facility capacity (MW)"
        assert all(ax.get_legend() is None for ax in fig.axes)  # one legend, below, for all panels
        assert {"region max_mw", "power ceiling", "total draw"} <= {t.get_text() for t in fig.legends[0].get_texts()}
        for ax in fig.axes:  # every line and bar below the top of its frame
            top = max([bar_top(ax)] + [float(np.nanmax(line.get_ydata())) for line in ax.get_lines()])
            assert ax.get_ylim()[1] > top
        check_layout(fig)
    finally:
        plots.plt.close(fig)


@pytest.mark.parametrize("name", plots.CHARTS)
def test_every_default_chart_is_laid_out(default_plan, name):
    fig = drawn(plots.CHART_FUNCS[name](default_plan))
    try:
        check_layout(fig)
        for ax in fig.axes:
            assert ax.get_ylabel(), f"{name}: unlabeled y axis"
    finally:
        plots.plt.close(fig)


def test_the_layout_check_can_fail():
    fig, ax = plots.plt.subplots(figsize=plots.FIGSIZE)
    ax.plot([0, 1], [0, 1e-5], label="a line")
    ax.legend(loc="upper left")  # inside the axes
    drawn(fig)
    try:
        with pytest.raises(AssertionError, match="legend over the axes|offset"):
            check_layout(fig)
    finally:
        plots.plt.close(fig)
