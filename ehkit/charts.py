"""Charts for reports: matplotlib figures with one colour per grade, everywhere.

Functions return a ``matplotlib.figure.Figure`` (no pyplot state, so nothing is shown twice);
the report layer shows each as an SVG image (:func:`svg`).

Margins are fitted to the chart's own labels (:func:`_fit`) from the font's measurements,
before anything is drawn. A layout engine would draw every chart twice to measure it: that
was two fifths of a report's chart time, and charts are most of a small report's own cost.
For the same reason the ticks are drawn as plain texts and marks (:func:`_plain_ticks`), and
every text is measured once a process, for fitting and for drawing (:func:`_metrics`).
"""

from __future__ import annotations

import functools
import io
import math
import re
from collections.abc import Callable, Sequence

from matplotlib import rc_context, rcParams
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure as MplFigure
from matplotlib.font_manager import FontProperties, fontManager
from matplotlib.lines import Line2D
from matplotlib.markers import TICKDOWN, TICKLEFT
from matplotlib.textpath import text_to_path
from matplotlib.ticker import FixedFormatter, FixedLocator, ScalarFormatter
from matplotlib.transforms import blended_transform_factory, offset_copy

# The same grade is always the same colour, in every chart (colour-blind-safe palette).
GRADE_COLOURS = {1: "#1b7837", 2: "#7fbf7b", 3: "#f1a340", 4: "#b2182b"}
NEUTRAL = "#4c72b0"
PAD = 0.1  # inches around the labels
BAR = 0.8  # a bar's thickness, of the space between two rows' centres (matplotlib's own)
TITLE_SIZE, LEGEND_SIZE = 11, 8
SHOWN_DPI = 110  # pixels an inch: charts show as large as they did as PNGs (8 in: 880 px)
# The margins are measured in DejaVu Sans (matplotlib's own font). Where a reader's computer
# lacks it, a font no wider stands in (Arial's widths), so no label outgrows its margin;
# not Verdana, matplotlib's next choice, which is wider.
SVG_FONTS = ["DejaVu Sans", "Arial", "Liberation Sans", "Helvetica"]


class _Chart(MplFigure):
    """A figure whose SVG drawing takes its texts' measurements from :func:`_metrics`.
    matplotlib keeps them for one drawing (a cache a renderer): a report's charts measured
    the same tick labels, legend keys and "lp" again in each, a tenth of their drawing."""

    def draw(self, renderer):
        from matplotlib.backends.backend_svg import RendererSVG  # svg() is drawing: loaded

        # only where the renderer would measure as _metrics does (in points, from the font)
        if getattr(renderer.get_text_width_height_descent, "__func__", None) is \
                RendererSVG.get_text_width_height_descent:
            renderer.get_text_width_height_descent = _metrics
        super().draw(renderer)


def _figure(width: float = 8, height: float = 4) -> tuple[MplFigure, object]:
    fig = _Chart(figsize=(width, height), dpi=100)
    return fig, fig.subplots()


def _title(ax, title: str) -> None:
    # y given: matplotlib then skips measuring the axes to place the title (a tenth of a
    # chart's drawing time); _fit leaves room for it above the axes.
    ax.set_title(title, loc="left", fontsize=TITLE_SIZE, y=1.0)


def _extent(texts: Sequence[str], size, rotation: float = 0) -> tuple[float, float]:
    """Width and height in inches of the widest and the tallest of ``texts`` at ``size``."""
    r = math.radians(rotation)
    width = height = 0.0
    for text in texts:
        if text:
            w, h = _measured(text, size)
            width = max(width, (w * abs(math.cos(r)) + h * abs(math.sin(r))) / 72)
            height = max(height, (w * abs(math.sin(r)) + h * abs(math.cos(r))) / 72)
    return width, height


def _measured(text: str, size) -> tuple[float, float]:
    """``text``'s width and height in points at ``size``, in the charts' font."""
    w, h, _ = _metrics(text, FontProperties(size=size), False)
    return w, h


def _metrics(text: str, font: FontProperties, ismath) -> tuple[float, float, float]:
    """``text``'s width, height and descent in points in ``font``, as an SVG is drawn:
    measured once a process (:func:`_measure`). A report's charts measure the same tick
    labels, "Xg" and "lp" again and again, to fit their margins and then to draw."""
    return _measure(text, font.copy(), ismath, fontManager.findfont(font))


@functools.lru_cache(maxsize=4096)
def _measure(text: str, font: FontProperties, ismath, file: str) -> tuple[float, float, float]:
    # keyed by the font file ``font`` finds too: the settings in force (rcParams) choose it
    return text_to_path.get_text_width_height_descent(text, font, ismath)


def _ticks(axis) -> list[tuple[float, str]]:
    """The ticks the axis will show, each place and label (its locator and formatter, as at
    drawing time: the formatter given every place the locator gives, then those in view)."""
    lo, hi = sorted(axis.get_view_interval())
    span = (hi - lo) or 1
    locs = list(axis.get_major_locator()())
    labels = axis.get_major_formatter().format_ticks(locs)
    return [(v, t) for v, t in zip(locs, labels, strict=True)
            if lo - 1e-9 * span <= v <= hi + 1e-9 * span]


def _fit(fig: MplFigure, ax, *, x_rotation: float = 0, x_size=None,
         legend_above: bool = False) -> MplFigure:
    """Set the margins to what the ticks, axis labels, title and legend need."""
    for axis in (ax.xaxis, ax.yaxis):  # numbers in full: no "+1.8e5" offset for a reader
        if isinstance(axis.get_major_formatter(), ScalarFormatter):
            axis.get_major_formatter().set_useOffset(False)
            axis.get_major_formatter().set_scientific(False)
    tick = (rcParams["xtick.major.size"] + rcParams["xtick.major.pad"]) / 72
    ticks = {"x": _ticks(ax.xaxis), "y": _ticks(ax.yaxis)}
    y_ticks, _ = _extent([t for _, t in ticks["y"]], rcParams["ytick.labelsize"])
    x_w, x_ticks = _extent([t for _, t in ticks["x"]], x_size or rcParams["xtick.labelsize"],
                           x_rotation)
    label = _extent(["Xg"], rcParams["axes.labelsize"])[1] + PAD / 2
    left = PAD + y_ticks + tick + (label if ax.get_ylabel() else 0)
    bottom = PAD + x_ticks + tick + (label if ax.get_xlabel() else 0)
    top = PAD + _extent(["Xg"], TITLE_SIZE)[1] + rcParams["axes.titlepad"] / 72
    if legend_above:
        top += 2.5 * _extent(["Xg"], LEGEND_SIZE)[1] + PAD
    right = PAD + (0 if x_rotation else x_w / 2)
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                        top=1 - top / height)
    _plain_ticks(fig, ax, ticks, x_rotation, x_size or rcParams["xtick.labelsize"])
    # the axis labels beyond the tick labels, as matplotlib would place them after measuring
    # them again (labelpad), here from the sizes measured above ("lp": a line's least height)
    pad = rcParams["axes.labelpad"] / 72
    x_h = max(x_ticks, _extent(["lp"], x_size or rcParams["xtick.labelsize"], x_rotation)[1])
    ax.xaxis.set_label_coords(0.5, -(tick + x_h + pad) / (height - top - bottom))
    ax.yaxis.set_label_coords(-(tick + y_ticks + pad) / (width - left - right), 0.5)
    return fig


def _plain_ticks(fig: MplFigure, ax, ticks: dict[str, list[tuple[float, str]]],
                 x_rotation: float, x_size) -> None:
    """The axes' ``ticks`` (:func:`_ticks`) as plain artists: a text for each label, one line
    of marks per axis. matplotlib makes each tick five artists (two marks, a grid line, two
    labels) and measures its labels a second time at drawing to place the axis labels: the
    quarterly report's six charts (87 ticks) made a fifth fewer Python calls without them
    (bench/RESULTS.md). The same marks, labels and places (rcParams' sizes)."""
    for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
        x, rc = name == "x", f"{name}tick"
        place = (blended_transform_factory(ax.transData, ax.transAxes) if x
                 else blended_transform_factory(ax.transAxes, ax.transData))
        locs = [v for v, _ in ticks[name]]
        at = (locs, [0] * len(locs)) if x else ([0] * len(locs), locs)
        ax.add_artist(Line2D(*at, transform=place, linestyle="none", clip_on=False,
                             marker=TICKDOWN if x else TICKLEFT,
                             markersize=rcParams[f"{rc}.major.size"],
                             markeredgewidth=rcParams[f"{rc}.major.width"],
                             color=rcParams[f"{rc}.color"]))
        away = rcParams[f"{rc}.major.size"] + rcParams[f"{rc}.major.pad"]
        shifted = offset_copy(place, fig=fig, x=0 if x else -away, y=-away if x else 0,
                              units="points")
        for v, label in ticks[name]:
            if x:
                ax.text(v, 0, label, transform=shifted, ha="center", va="top",
                        rotation=x_rotation, fontsize=x_size)
            else:
                ax.text(0, v, label, transform=shifted, ha="right", va="center_baseline",
                        fontsize=rcParams["ytick.labelsize"])
        axis.set_ticks([])


def _stacked_bars(ax, rows: Sequence[str], grades: Sequence[tuple[int, str]],
                  value: Callable[[str, int], float]) -> float:
    """Horizontal bars, a row each from the top, a segment each grade in its colour: one
    collection of rectangles a grade. ``barh`` makes each segment an artist and measures it
    for the axes' limits: a quarterly report's grade chart has 40, half of its making
    (bench/RESULTS.md). Returns the longest bar."""
    lefts = [0.0] * len(rows)
    for g, label in grades:
        widths = [value(r, g) for r in rows]
        ax.add_collection(PolyCollection(
            [((x, y - BAR / 2), (x + w, y - BAR / 2), (x + w, y + BAR / 2), (x, y + BAR / 2))
             for y, (x, w) in enumerate(zip(lefts, widths, strict=True))],
            facecolors=GRADE_COLOURS.get(g, NEUTRAL), linewidths=0, label=label),
            autolim=False)
        lefts = [a + b for a, b in zip(lefts, widths, strict=True)]
    ax.yaxis.set_major_locator(FixedLocator(range(len(rows))))
    ax.yaxis.set_major_formatter(FixedFormatter(rows))
    ax.set_ylim(len(rows) - 0.5, -0.5)
    return max(lefts, default=0.0)


def svg(fig: MplFigure) -> str:
    """The chart as an SVG document, its text as text: a third of the CPU of a PNG (glyphs
    drawn to pixels, then compressed: 0.3 s of a quarterly report's 0.4 s of charts,
    bench/RESULTS.md), under half its bytes, and sharp at any zoom (WCAG 1.4.4). The same
    figure gives the same bytes: ids from a fixed salt, no date."""
    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "ehkit",
                     "font.sans-serif": SVG_FONTS}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    width, height = fig.get_size_inches() * SHOWN_DPI
    # matplotlib sizes it in points (96 px a 72 pt inch); the viewBox scales it to this
    return re.sub(r'width="[\d.]+pt" height="[\d.]+pt"',
                  f'width="{width:.0f}px" height="{height:.0f}px"', buf.getvalue(), count=1)


def stacked_grades(title: str, rows: Sequence[str], grades: Sequence[tuple[int, str]],
                   counts: dict[tuple[str, int], int]) -> MplFigure:
    """Horizontal 100% bars: for each row (a section), the share of each grade."""
    fig, ax = _figure(8, 0.45 * len(rows) + 1.6)
    totals = {r: sum(counts.get((r, g), 0) for g, _ in grades) or 1 for r in rows}
    _stacked_bars(ax, rows, grades, lambda r, g: 100 * counts.get((r, g), 0) / totals[r])
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of audits")
    _title(ax, title)
    ax.legend(ncols=len(grades), loc="lower center", bbox_to_anchor=(0.5, 1.08), frameon=False,
              fontsize=LEGEND_SIZE)
    return _fit(fig, ax, legend_above=True)


def bars(title: str, labels: Sequence[str], values: Sequence[float], *, xlabel: str = "",
         ylabel: str = "", colour: str = NEUTRAL) -> MplFigure:
    fig, ax = _figure(8, 3.6)
    ax.bar(labels, values, color=colour)
    _title(ax, title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    return _fit(fig, ax, x_rotation=20, x_size=8)


def trend(title: str, periods: Sequence[str], series: dict[str, Sequence[float | None]], *,
          ylabel: str = "") -> MplFigure:
    """Lines over periods; a None value leaves a gap (not applicable or suppressed)."""
    fig, ax = _figure(8, 3.6)
    for name, values in series.items():
        ax.plot(periods, [float("nan") if v is None else v for v in values], marker="o",
                label=name)
    # counts, days and percentages start at zero: a small change must look small
    top = max([v for vs in series.values() for v in vs if v is not None], default=1) * 1.08 or 1
    ax.set_ylim(0, top)
    # none past the top; a locator, not set_yticks, which makes five artists a tick
    ax.yaxis.set_major_locator(FixedLocator([t for t in ax.yaxis.get_major_locator()()
                                             if 0 <= t <= top]))
    _title(ax, title)
    ax.set_xlabel("Period")
    ax.set_ylabel(ylabel)
    keyed = len(series) > 1  # one line needs no key: its title and axis name it
    if keyed:  # above the lines, as the grade charts' legends: it never hides a point, and
        # matplotlib need not try nine places for it ("best", a tenth of the chart's drawing)
        ax.legend(ncols=len(series), loc="lower center", bbox_to_anchor=(0.5, 1.08),
                  frameon=False, fontsize=LEGEND_SIZE)
    return _fit(fig, ax, legend_above=keyed)


def stacked_counts(title: str, rows: Sequence[str], grades: Sequence[tuple[int, str]],
                   counts: dict[tuple[str, int], int], *, ylabel: str = "",
                   xlabel: str = "Number of audits") -> MplFigure:
    """Horizontal bars of counts, one segment per grade (e.g. overall grades by quarter)."""
    fig, ax = _figure(8, 0.45 * len(rows) + 1.8)
    longest = _stacked_bars(ax, rows, grades, lambda r, g: counts.get((r, g), 0))
    ax.set_xlim(0, (longest or 1) * 1.05)  # as matplotlib's margin would, from zero
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _title(ax, title)
    ax.legend(ncols=len(grades), loc="lower center", bbox_to_anchor=(0.5, 1.08), frameon=False,
              fontsize=LEGEND_SIZE)
    return _fit(fig, ax, legend_above=True)


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
