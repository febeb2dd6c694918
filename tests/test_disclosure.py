"""Disclosure control: small counts print ``c``, true zeros print ``0``, no suppressed cell can be
worked out from the totals shown, and no percentage sits on a suppressed count.

The property tests check the rule with a method independent of the code under test: in a
table with row and column totals, a hidden cell can be worked out exactly when it is on no
cycle of hidden cells (rows and columns as the two sides of a graph, hidden cells as its
edges; moving one unit round a cycle changes no total, so a cell on a cycle has other
possible values).
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehkit import disclosure
from ehkit.metrics import TOTAL, Grid, PercentColumn

THRESHOLD = 5


def _with_totals(cells: list[list[int]]) -> dict:
    values = {(f"r{i}", f"c{j}"): v for i, row in enumerate(cells) for j, v in enumerate(row)}
    rows = [f"r{i}" for i in range(len(cells))]
    cols = [f"c{j}" for j in range(len(cells[0]))]
    for r in rows:
        values[(r, TOTAL)] = sum(values[(r, c)] for c in cols)
    for c in cols:
        values[(TOTAL, c)] = sum(values[(r, c)] for r in rows)
    values[(TOTAL, TOTAL)] = sum(values[(r, TOTAL)] for r in rows)
    return values


def _on_a_cycle(cell, hidden: set) -> bool:
    """Is the edge ``cell`` (row, col) on a cycle of the graph of hidden cells?"""
    graph = defaultdict(set)
    for r, c in hidden:
        if (r, c) != cell:
            graph[("row", r)].add(("col", c))
            graph[("col", c)].add(("row", r))
    start, goal = ("row", cell[0]), ("col", cell[1])
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        for nxt in graph[node] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return False


tables = st.integers(1, 5).flatmap(lambda n: st.lists(
    st.lists(st.one_of(st.integers(0, 7), st.integers(0, 60)), min_size=n, max_size=n),
    min_size=1, max_size=5))


@settings(max_examples=120, deadline=None)
@given(tables)
def test_no_suppressed_cell_can_be_worked_out_from_row_and_column_totals(cells):
    values = _with_totals(cells)
    rows = [f"r{i}" for i in range(len(cells))]
    cols = [f"c{j}" for j in range(len(cells[0]))]
    hidden = disclosure.protect(values, disclosure.grid_lines(
        rows, cols, row_totals=True, col_totals=True), THRESHOLD)
    for cell, v in values.items():
        if 0 < v <= THRESHOLD:
            assert cell in hidden, f"small count {cell}={v} shown"
    for cell in hidden:
        assert _on_a_cycle(cell, hidden), f"{cell}={values[cell]} can be worked out"


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 7), st.integers(0, 60)), min_size=1, max_size=8))
def test_a_column_with_only_its_total_never_leaves_one_suppressed_cell_alone(column):
    values = {(f"r{i}", "n"): v for i, v in enumerate(column)}
    values[(TOTAL, "n")] = sum(column)
    hidden = disclosure.protect(values, disclosure.grid_lines(
        [f"r{i}" for i in range(len(column))], ["n"], row_totals=False, col_totals=True),
        THRESHOLD)
    assert len(hidden) != 1, "a single suppressed cell is its total minus the others"
    assert all(c in hidden for c, v in values.items() if 0 < v <= THRESHOLD)


@settings(max_examples=80, deadline=None)
@given(tables)
def test_no_percentage_is_shown_on_a_suppressed_count(cells):
    """Through the decision every report reads: a % of a row's total built on a hidden
    numerator or denominator prints c; and shares that split a row are hidden together."""
    ncols = len(cells[0])
    grid = Grid("t", "t", tuple((f"r{i}", f"r{i}") for i in range(len(cells))),
                tuple((f"c{j}", f"c{j}") for j in range(ncols)),
                {(f"r{i}", f"c{j}"): v for i, row in enumerate(cells) for j, v in enumerate(row)},
                percents=(PercentColumn("first", "% first", ("c0",), TOTAL),
                          PercentColumn("rest", "% rest",
                                        tuple(f"c{j}" for j in range(1, ncols)), TOTAL)))
    hidden = {k for k, off in disclosure.decide([grid], [], THRESHOLD).items() if off}
    shown = {}
    for r in grid.row_keys:
        for c in grid.col_keys:
            f = grid.figure(r, c)
            shown[(r, c)] = "c" if f.key in hidden else f.value
        for pc in grid.percents:
            f = grid.percent_figure(r, pc)
            num = sum(grid.value(r, c) for c in pc.numerator)
            den = grid.value(r, TOTAL)
            off = f.key in hidden
            if 0 < num <= THRESHOLD or 0 < den <= THRESHOLD:
                assert off, f"{f.key} would show a percentage of a small count"
            if ncols > 1 and 0 < den - num <= THRESHOLD:
                assert off, f"{f.key} gives away its complement {den - num}"
            if any(shown[(r, c)] == "c" for c in pc.numerator) and not off:
                # a visible share over hidden cells: those cells' sum must not pin one down
                hidden_parts = [c for c in pc.numerator if shown[(r, c)] == "c"]
                assert len(hidden_parts) != 1, f"{f.key} reveals the hidden {hidden_parts}"


def test_small_counts_print_c_and_true_zero_prints_0():
    board = disclosure.audience("board")
    assert board.threshold == 5 and not board.names and not board.case_references
    assert [board.hides(n) for n in (0, 1, 5, 6)] == [False, True, True, False]
    hos = disclosure.audience("head_of_service")
    assert hos.names and hos.case_references and not hos.hides(1)


def test_secondary_suppression_hides_the_smallest_cells_that_close_a_cycle():
    # 3 is small: hiding it alone, row a (3 + 10 + 12 = 25) and column x (3 + 20 = 23) give
    # it away. The cheapest protection is a 2x2 rectangle: 3, 10 (row a), 20 (column x) and
    # 7 (row b, column y) -- then every row and column has two hidden cells.
    values = _with_totals([[3, 10, 12], [20, 7, 9]])
    hidden = disclosure.protect(values, disclosure.grid_lines(
        ["r0", "r1"], ["c0", "c1", "c2"], row_totals=True, col_totals=True), 5)
    assert hidden == {("r0", "c0"), ("r0", "c1"), ("r1", "c0"), ("r1", "c1")}


def test_a_published_total_is_never_chosen_as_a_complement():
    values = _with_totals([[3, 10], [20, 7]])
    lines = disclosure.grid_lines(["r0", "r1"], ["c0", "c1"], row_totals=True, col_totals=True)
    hidden = disclosure.protect(values, lines, 5, fixed={("r0", "c1")})
    assert ("r0", "c1") not in hidden
    assert ("r0", TOTAL) in hidden  # row r0 protects its 3 with its total instead
    for cell in hidden:
        assert _on_a_cycle(cell, hidden)


@pytest.mark.parametrize("value,shown", [(0, "0"), (3, "c"), (6, "6")])
def test_a_figure_prints_as_the_audience_sees_it(value, shown):
    from ehkit.metrics import count, percent
    from ehkit.presentation import Report

    report = Report.__new__(Report)
    report.audience = disclosure.audience("lscb")
    report.shown, report.hidden = [], set()
    report.decisions = {}  # in no table decided for the period: the primary rule alone
    assert report.shown_value(count("k", "K", value)) == shown
    pct = report.shown_value(percent("p", "P", value, 40))
    assert (pct == "c") == (shown == "c")


def test_figures_equal_by_definition_are_suppressed_together():
    """A sector's multi-agency total is its audits shown in another table (every audit
    grades every section): when the audits must be suppressed, so must the total."""
    def grades(same_as):
        return Grid("ma", "t", (("health", "Health"), ("police", "Police")),
                    (("1", "Good"), ("2", "Poor")),
                    {("health", "1"): 7, ("health", "2"): 9, ("police", "1"): 9,
                     ("police", "2"): 12}, col_totals=False, same_as=same_as)
    audits = Grid("audits", "t", (("health", "Health"), ("police", "Police")),
                  (("n", "Audited"),), {("health", "n"): 16, ("police", "n"): 21},
                  row_totals=False, key_format="audits.{row}")
    tied = disclosure.decide([grades({("health", TOTAL): "audits.health"}), audits], [],
                             THRESHOLD, suppressed={"audits.health"})
    assert tied["audits.health"] and tied["ma.health.total"]
    assert [k for k, off in tied.items() if off and k.startswith("ma.health.")] != [
        "ma.health.total"]  # and the total is not left alone in its row either
    untied = disclosure.decide([grades({}), audits], [], THRESHOLD, suppressed={"audits.health"})
    assert not untied["ma.health.total"]  # the tie is what does it


def test_a_published_figure_is_never_chosen_to_protect_another_and_a_suppressed_one_stays():
    row = Grid("g", "t", (("overall", "Overall"),), (("1", "A"), ("2", "B"), ("3", "C")),
               {("overall", "1"): 3, ("overall", "2"): 9, ("overall", "3"): 14},
               col_totals=False)
    decided = disclosure.decide([row], [], THRESHOLD, published={"g.overall.2"},
                                suppressed={"g.overall.3"})
    assert decided["g.overall.1"] and decided["g.overall.3"]
    assert not decided["g.overall.2"] and not decided["g.overall.total"]


def test_a_share_of_a_row_is_suppressed_when_the_rest_of_the_row_is_small():
    """Health's multi-agency working: 8 of 9 audits acceptable (88.9%) tells the reader that
    1 was not, though that count is shown nowhere."""
    grid = Grid("ma", "t", (("health", "Health"), ("police", "Police")),
                (("1", "Outstanding"), ("2", "Good"), ("3", "Poor")),
                {("health", "1"): 4, ("health", "2"): 4, ("health", "3"): 1,
                 ("police", "1"): 10, ("police", "2"): 12, ("police", "3"): 9},
                col_totals=False,
                percents=(PercentColumn("acceptable_pct", "% acceptable", ("1", "2"), TOTAL),))
    decided = disclosure.decide([grid], [], THRESHOLD)
    assert not decided["ma.health.total"] and decided["ma.health.acceptable_pct"]
    assert not decided["ma.police.acceptable_pct"]
