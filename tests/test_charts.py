"""Charts people read: the same grade is the same colour in every chart, titles say what to
see, axes are labelled."""

from __future__ import annotations

import pytest
from matplotlib.colors import to_hex

from ehkit import charts

GRADES = [(1, "Outstanding"), (2, "Good"), (3, "Requires Improvement"), (4, "Inadequate")]


def _legend_colours(fig) -> dict[str, str]:
    ax = fig.axes[0]
    handles, labels = ax.get_legend_handles_labels()
    return {label: to_hex(h.get_facecolor()[0]) for h, label in zip(handles, labels,
                                                                   strict=True)}


def test_each_grade_has_one_colour_in_every_grade_chart():
    counts = {("A", 1): 2, ("A", 4): 1, ("B", 2): 3, ("B", 3): 5}
    expected = {label: charts.GRADE_COLOURS[g] for g, label in GRADES}
    shares = charts.stacked_grades("t", ["A", "B"], GRADES, counts)
    totals = charts.stacked_counts("t", ["A", "B"], GRADES, counts)
    assert _legend_colours(shares) == expected == _legend_colours(totals)
    assert len(set(charts.GRADE_COLOURS.values())) == 4


def test_charts_have_axis_labels():
    fig = charts.stacked_counts("t", ["2026Q1"], GRADES, {("2026Q1", 2): 4}, ylabel="Quarter")
    assert fig.axes[0].get_xlabel() == "Number of audits"
    assert fig.axes[0].get_ylabel() == "Quarter"
    fig = charts.trend("t", ["2026Q1", "2026Q2"], {"x": [1, None]}, ylabel="Days")
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("Period", "Days")


def test_a_trend_of_two_lines_has_a_key_and_of_one_line_none():
    """One line is named by the chart's title and axis; a key would only repeat them."""
    q = ["2026Q1", "2026Q2"]
    two = charts.trend("t", q, {"Successful": [1, 2], "Stepped up": [2, 1]}, ylabel="%")
    assert [t.get_text() for t in two.axes[0].get_legend().get_texts()] == ["Successful",
                                                                            "Stepped up"]
    one = charts.trend("Median days rose", q, {"Median days": [1, 2]}, ylabel="Days")
    assert one.axes[0].get_legend() is None
    # the room a key takes above the axes is left only where there is one
    assert one.subplotpars.top > two.subplotpars.top


def test_trend_titles_say_which_way_a_figure_moved():
    q = ["2025Q3", "2025Q4", "2026Q1"]
    assert charts.change_title("Open cases", [88, None, 68], q) == \
        "Open cases fell from 88 in 2025Q3 to 68 in 2026Q1"
    assert charts.change_title("Acceptable", [50.2, 61, 64.4], q, "%") == \
        "Acceptable rose from 50% in 2025Q3 to 64% in 2026Q1"
    assert charts.change_title("Acceptable", [55.6, 40, 56.2], q, "%") == \
        "Acceptable held at 56% from 2025Q3 to 2026Q1"
    assert "too few" in charts.change_title("Open cases", [None, None, 3], q)


def _outside(fig) -> list[str]:
    """Texts drawn (even in part) outside the figure: a margin too small for its labels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    width, height = fig.canvas.get_width_height()
    out = []
    for t in fig.findobj(Text):
        if t.get_visible() and t.get_text():
            b = t.get_window_extent(renderer)
            if b.x0 < -0.5 or b.y0 < -0.5 or b.x1 > width + 0.5 or b.y1 > height + 0.5:
                out.append(t.get_text())
    return out


@pytest.mark.parametrize("make", [
    lambda: charts.stacked_grades("A long title about every section of the audit tool, graded",
                                  ["Management oversight and supervision", "Impact"], GRADES,
                                  {("Impact", 2): 3}),
    lambda: charts.bars("Open assessments", ["Health and Social Care Partnership", "Police"],
                        [1_234_567, 3], xlabel="Lead agency sector", ylabel="Open"),
    lambda: charts.trend("Open early help assessments rose from 186,202 to 187,151",
                         ["2025Q3", "2025Q4", "2026Q1"], {"Open": [186_202, 186_900, 187_151]},
                         ylabel="Early help assessments"),
    lambda: charts.stacked_counts("Overall grades by quarter", ["2026Q1", "2026Q2"], GRADES,
                                  {("2026Q1", 2): 12_000}, ylabel="Quarter"),
], ids=["stacked_grades", "bars", "trend", "stacked_counts"])
def test_every_label_fits_inside_the_chart_and_numbers_show_in_full(make):
    fig = make()
    assert _outside(fig) == []
    for ax in fig.axes:
        assert ax.xaxis.get_offset_text().get_text() == ""
        assert ax.yaxis.get_offset_text().get_text() == ""


def test_trend_axes_start_at_zero_so_a_small_change_looks_small():
    """Days from 48 to 51 is a small change: the axis runs from 0, not from 48."""
    fig = charts.trend("Median days", ["2026Q1", "2026Q2", "2026Q3"],
                       {"Median days": [48, None, 51]}, ylabel="Days")
    low, high = fig.axes[0].get_ylim()
    assert low == 0 and 51 <= high < 60
    empty = charts.trend("Nothing yet", ["2026Q1"], {"x": [None]})
    assert empty.axes[0].get_ylim()[0] == 0


def test_a_chart_is_shown_as_svg_with_its_words_as_text_the_same_each_time():
    """Text, not glyphs drawn as shapes or pixels: sharp at any zoom, and cheap to make. The
    same chart gives the same bytes (no date, no random ids), as large as the PNGs were."""
    from xml.etree import ElementTree

    fig = charts.bars("Health leads the most open assessments (12)", ["Health", "Police & Fire"],
                      [12, 3], xlabel="Lead agency sector", ylabel="Open")
    svg = charts.svg(fig)
    assert svg == charts.svg(fig)
    root = ElementTree.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    words = {t.text for t in root.iter(f"{ns}text")}
    assert {"Health leads the most open assessments (12)", "Police & Fire", "Lead agency sector",
            "Open"} <= words
    width, height = fig.get_size_inches() * charts.SHOWN_DPI
    assert (root.get("width"), root.get("height")) == (f"{width:.0f}px", f"{height:.0f}px")
    assert root.get("viewBox") == f"0 0 {width / charts.SHOWN_DPI * 72:g} {height / charts.SHOWN_DPI * 72:g}"
    # measured in DejaVu Sans; a reader without it gets a font no wider, never Verdana
    fonts = {t.get("style") for t in root.iter(f"{ns}text")}
    assert all("font-family: 'DejaVu Sans', 'Arial'" in f and "Verdana" not in f for f in fonts)
    assert not list(root.iter(f"{ns}script"))


def test_each_text_is_measured_once_a_process_and_draws_the_same_svg():
    """Each text is measured once a process, for fitting the margins and for drawing
    (charts._measure): a second chart of the same labels measures nothing new, and its SVG
    is the same as one drawn with every measurement made afresh."""
    def make():
        return charts.trend("Median days to the first review held at 30",
                            ["2026Q1", "2026Q2", "2026Q3"],
                            {"Median": [30, 31, 30], "Lowest": [10, 12, 11]}, ylabel="Days")

    charts._measure.cache_clear()
    fresh = charts.svg(make())
    measured = charts._measure.cache_info().misses
    assert measured > 0
    again = charts.svg(make())
    assert charts._measure.cache_info().misses == measured
    assert again == fresh


def test_only_an_svg_drawing_takes_the_shared_measurements():
    """A raster's texts are measured in its pixels, not the SVG's points: an Agg drawing
    (as the fitting test's) keeps matplotlib's own measurements."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = charts.trend("t", ["2026Q1", "2026Q2"], {"x": [1, 2]}, ylabel="Days")
    charts._measure.cache_clear()
    FigureCanvasAgg(fig).draw()
    assert charts._measure.cache_info().currsize == 0
    charts.svg(fig)
    assert charts._measure.cache_info().currsize > 0


def test_a_text_is_measured_again_in_the_font_the_settings_choose():
    """The measurements kept are each of a font file: under other settings (a council's
    matplotlibrc), the same text in the same family is measured in the font they choose."""
    from matplotlib import rc_context

    sans = charts._measured("Requires Improvement", 10)
    with rc_context({"font.sans-serif": ["DejaVu Serif"]}):
        serif = charts._measured("Requires Improvement", 10)
    assert serif != sans
    assert charts._measured("Requires Improvement", 10) == sans
