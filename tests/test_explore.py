"""An analyst's own questions: a period's figures as DataFrames (ehkit.explore), the same
figures and keys the period's report computes, on the synthetic demo store (on SQLite and on
its PostgreSQL copy)."""

from __future__ import annotations

import math

import pytest

from ehkit import db as store
from ehkit import explore, metrics, periods


def _shown(path, kind, label):
    database = store.connect(path, must_exist=True)
    try:
        return metrics.shown_for(database, kind, periods.parse(label))
    finally:
        database.close()


def test_a_quarters_figures_are_the_reports_figures_by_key(demo_both):
    found = explore.load(demo_both, "2026Q3")
    grids, figures = _shown(demo_both, "quarterly", "2026Q3")
    assert found.period.label == "2026Q3"
    for f in figures + [f for g in grids for f in g.figures()]:
        got = found.figures.loc[f.key, "value"]
        assert (f.value is None and math.isnan(got)) or got == f.value, f.key
    assert set(found.grids) == {g.key for g in grids}


def test_a_grid_is_a_table_of_its_counts_by_label(demo_both):
    found = explore.load(demo_both, "2026Q3")
    grid = next(g for g in _shown(demo_both, "quarterly", "2026Q3")[0] if g.key == "by_sector")
    frame = found.grids["by_sector"]
    assert list(frame.index) == [label for _, label in grid.rows]
    assert list(frame.columns) == [label for _, label in grid.cols]
    assert frame.to_numpy().sum() == grid.value(metrics.TOTAL, metrics.TOTAL) > 0
    assert frame.attrs["title"] == grid.title


@pytest.mark.parametrize(("period", "label", "grid"), [
    (None, "2026Q3", "grades"),      # the last full quarter of the data (ends 31 Oct 2026)
    ("2026-09", "2026-09", "selection"),
    (2025, "2025", "volumes"),       # a year, as papermill's -p passes it
])
def test_each_kind_of_period_loads_its_reports_figures(demo_both, period, label, grid):
    found = explore.load(demo_both, period)
    assert found.period.label == label and grid in found.grids


@pytest.mark.parametrize(("period", "message"), [
    ("2026Q9", "is not a period"),
    ("2031Q1", "no data in 2031Q1"),
])
def test_a_period_that_cannot_be_read_is_a_clear_error(demo_both, period, message):
    with pytest.raises(periods.PeriodError, match=message):
        explore.load(demo_both, period)
