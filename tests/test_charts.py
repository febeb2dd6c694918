"""Charts people read: the same grade is the same colour in every chart, titles say what to
see, axes are labelled."""

from __future__ import annotations

from matplotlib.colors import to_hex

from ehkit import charts

GRADES = [(1, "Outstanding"), (2, "Good"), (3, "Requires Improvement"), (4, "Inadequate")]


def _legend_colours(fig) -> dict[str, str]:
    ax = fig.axes[0]
    handles, labels = ax.get_legend_handles_labels()
    return {label: to_hex(h.patches[0].get_facecolor()) for h, label in zip(handles, labels,
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


def test_trend_titles_say_which_way_a_figure_moved():
    q = ["2025Q3", "2025Q4", "2026Q1"]
    assert charts.change_title("Open cases", [88, None, 68], q) == \
        "Open cases fell from 88 in 2025Q3 to 68 in 2026Q1"
    assert charts.change_title("Acceptable", [50.2, 61, 64.4], q, "%") == \
        "Acceptable rose from 50% in 2025Q3 to 64% in 2026Q1"
    assert charts.change_title("Acceptable", [55.6, 40, 56.2], q, "%") == \
        "Acceptable held at 56% from 2025Q3 to 2026Q1"
    assert "too few" in charts.change_title("Open cases", [None, None, 3], q)
