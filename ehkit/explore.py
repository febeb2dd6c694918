"""A period's figures as pandas DataFrames, for an analyst's own questions (notebooks/explore.ipynb).

The figures are those the period's report shows (:func:`ehkit.metrics.shown_for`), with the
same keys as its figures file, but before any audience's disclosure control: they are for
analysts inside the service, never for a board.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ehkit import access, metrics, periods
from ehkit import db as store
from ehkit.presentation import resolve_period

# Which report covers a period of each kind.
REPORT_OF = {"month": "monthly", "quarter": "quarterly", "year": "annual",
             "financial_year": "annual"}


@dataclass(frozen=True)
class PeriodFigures:
    period: periods.Period
    figures: object  # DataFrame: one row per figure key (label, value, kind, numerator, denominator)
    grids: dict      # grid key -> DataFrame of counts, rows x columns by label (title in .attrs)


def load(db: str | Path, period: str | int | None = None) -> PeriodFigures:
    """The figures of ``period`` (a month, quarter, year or financial year; None: the last
    full quarter in the data) in the store at ``db``."""
    import pandas as pd

    period = None if period is None else str(period)  # papermill's -p reads 2026 as a number
    kind = REPORT_OF[periods.parse(period).kind] if period else "quarterly"
    database = store.connect(db, must_exist=True)
    try:
        access.require_any(database, "the figures before disclosure control (the analyst's "
                           "explore notebook)", "board_reports")
        p = resolve_period(database, kind, period)
        grids, figures = metrics.shown_for(database, kind, p)
    finally:
        database.close()
    every = figures + [f for g in grids for f in g.figures()]
    frame = (pd.DataFrame([dataclasses.asdict(f) for f in every])
             .drop_duplicates("key").set_index("key"))
    return PeriodFigures(p, frame, {g.key: _grid_frame(g) for g in grids})


def _grid_frame(grid: metrics.Grid):
    import pandas as pd

    frame = pd.DataFrame([[grid.value(r, c) for c, _ in grid.cols] for r, _ in grid.rows],
                         index=[label for _, label in grid.rows],
                         columns=[label for _, label in grid.cols])
    frame.attrs["title"] = grid.title
    return frame
