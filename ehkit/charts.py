"""Charts for reports: matplotlib figures with one colour per grade, everywhere.

Functions return a ``matplotlib.figure.Figure`` (no pyplot state, so nothing is shown twice);
the report layer turns them into embedded PNGs.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure as MplFigure

# The same grade is always the same colour, in every chart (colour-blind-safe palette).
GRADE_COLOURS = {1: "#1b7837", 2: "#7fbf7b", 3: "#f1a340", 4: "#b2182b"}
NEUTRAL = "#4c72b0"


def _figure(width: float = 8, height: float = 4) -> tuple[MplFigure, object]:
    fig = MplFigure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.subplots()


def stacked_grades(title: str, rows: Sequence[str], grades: Sequence[tuple[int, str]],
                   counts: dict[tuple[str, int], int]) -> MplFigure:
    """Horizontal 100% bars: for each row (a section), the share of each grade."""
    fig, ax = _figure(8, 0.45 * len(rows) + 1.6)
    lefts = [0.0] * len(rows)
    totals = [sum(counts.get((r, g), 0) for g, _ in grades) or 1 for r in rows]
    for g, label in grades:
        shares = [100 * counts.get((r, g), 0) / t for r, t in zip(rows, totals, strict=True)]
        ax.barh(rows, shares, left=lefts, color=GRADE_COLOURS.get(g, NEUTRAL), label=label)
        lefts = [a + b for a, b in zip(lefts, shares, strict=True)]
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of audits")
    ax.set_title(title, loc="left", fontsize=11)
    ax.legend(ncols=len(grades), loc="lower center", bbox_to_anchor=(0.5, 1.08), frameon=False,
              fontsize=8)
    return fig


def bars(title: str, labels: Sequence[str], values: Sequence[float], *, xlabel: str = "",
         ylabel: str = "", colour: str = NEUTRAL) -> MplFigure:
    fig, ax = _figure(8, 3.6)
    ax.bar(labels, values, color=colour)
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    return fig


def trend(title: str, periods: Sequence[str], series: dict[str, Sequence[float | None]], *,
          ylabel: str = "") -> MplFigure:
    """Lines over periods; a None value leaves a gap (not applicable or suppressed)."""
    fig, ax = _figure(8, 3.6)
    for name, values in series.items():
        ax.plot(periods, [float("nan") if v is None else v for v in values], marker="o",
                label=name)
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_xlabel("Period")
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize=8)
    return fig


def stacked_counts(title: str, rows: Sequence[str], grades: Sequence[tuple[int, str]],
                   counts: dict[tuple[str, int], int], *, ylabel: str = "",
                   xlabel: str = "Number of audits") -> MplFigure:
    """Horizontal bars of counts, one segment per grade (e.g. overall grades by quarter)."""
    fig, ax = _figure(8, 0.45 * len(rows) + 1.8)
    lefts = [0] * len(rows)
    for g, label in grades:
        values = [counts.get((r, g), 0) for r in rows]
        ax.barh(rows, values, left=lefts, color=GRADE_COLOURS.get(g, NEUTRAL), label=label)
        lefts = [a + b for a, b in zip(lefts, values, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left", fontsize=11)
    ax.legend(ncols=len(grades), loc="lower center", bbox_to_anchor=(0.5, 1.08), frameon=False,
              fontsize=8)
    return fig


def change_title(what: str, values: Sequence[float | None], periods: Sequence[str],
                 unit: str = "") -> str:
    """A title that says what the reader should see: how ``what`` moved over the periods."""
    known = [(p, v) for p, v in zip(periods, values, strict=True) if v is not None]
    if len(known) < 2:
        return f"{what}: too few quarters to show a trend"
    (p0, v0), (p1, v1) = known[0], known[-1]
    fmt = (lambda v: f"{v:.0f}{unit}") if unit else (lambda v: f"{v:,.0f}")
    if fmt(v1) == fmt(v0):
        return f"{what} held at {fmt(v1)} from {p0} to {p1}"
    return f"{what} {'rose' if v1 > v0 else 'fell'} from {fmt(v0)} in {p0} to {fmt(v1)} in {p1}"
