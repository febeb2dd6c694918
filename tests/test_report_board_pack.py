"""The board pack as a reader meets it (issue 16): figures of a closed period as at its end,
definitions beside their figures, one subject per chart, and every table printed whole on A4.

Real reports: papermill runs the notebooks on a real store, nbconvert writes the HTML, and
headless Chromium prints it to PDF."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess

import pytest
from voila_harness import chromium_fixture  # noqa: F401

from ehkit import db as store
from ehkit import reports

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("report_board_pack")]

# A4 less the report's 12 mm page margins, in CSS pixels (96 per inch)
A4_WIDTH_PX = round((210 - 2 * 12) / 25.4 * 96)


@pytest.fixture(scope="module")
def board(demo_db_path, tmp_path_factory):
    """The quarterly report for the Early Help Board (suppressed), as the board gets it."""
    return reports.run("quarterly", db=demo_db_path, period="2026Q3", audience="board",
                       out_dir=tmp_path_factory.mktemp("board"))


def _figures(path) -> dict[str, str]:
    with open(path, encoding="utf-8") as f:
        return {r["key"]: r["value"] for r in csv.DictReader(f)}


def test_a_closed_month_reads_the_same_after_a_late_submission(demo_copy_both, tmp_path):
    """The monthly report is 'as at' the month end: audits submitted after it are not
    completed in it, so re-running the report later gives the same figures; the late ones
    are counted apart, labelled. On SQLite and on PostgreSQL."""
    path = demo_copy_both
    first = reports.run("monthly", db=path, period="2026-09", audience="head_of_service",
                        out_dir=tmp_path / "first")
    before = _figures(first.figures)
    # September's list was drawn on its last days: every audit of it came in October
    assert before["selection_completed"] == "0"
    late_before = int(before["selection_completed_after"])

    d = store.connect(path)
    from ehkit import sampling
    waiting = next(r for r in sampling.selection(d, "2026-09") if not r["completed_on"])
    model = dict(next(d.query("SELECT * FROM audits WHERE status = 'submitted' LIMIT 1")))
    model.pop("id")  # a new audit's id is the store's to give
    model.update(episode_id=waiting["episode_id"], audit_date="2026-10-20",
                 submitted_at="2026-10-20T10:00:00Z", created_at="2026-10-20T09:00:00Z")
    with store.transaction(d):
        d["audits"].insert(model)
    d.close()

    again = reports.run("monthly", db=path, period="2026-09", audience="head_of_service",
                        out_dir=tmp_path / "again")
    after = _figures(again.figures)
    assert int(after["selection_completed_after"]) == late_before + 1
    assert {k: v for k, v in after.items() if k != "selection_completed_after"} == \
        {k: v for k, v in before.items() if k != "selection_completed_after"}
    html = again.html.read_text(encoding="utf-8")
    assert "Audits submitted after the month end (not counted above)" in html


def _tables_as_printed(chromium, html) -> list[dict]:
    """Each table's width laid out as printed on A4 portrait, beside the room it has."""
    context = chromium.new_context(viewport={"width": A4_WIDTH_PX, "height": 1100})
    try:
        page = context.new_page()
        page.goto(html.as_uri())
        page.emulate_media(media="print")
        return page.evaluate("""() => [...document.querySelectorAll('.ehkit table')].map(t => ({
            right: t.getBoundingClientRect().right, width: t.scrollWidth,
            room: t.closest('.jp-OutputArea-output').clientWidth,
            title: t.previousElementSibling ? t.previousElementSibling.textContent : ''}))""")
    finally:
        context.close()


@pytest.mark.parametrize("kind,period,audience", [("monthly", "2026-09", "head_of_service"),
                                                  ("annual", "2025", "lscb")])
def test_every_table_of_the_other_reports_fits_a4(demo_db_path, chromium, tmp_path, kind,
                                                  period, audience):
    html = reports.run(kind, db=demo_db_path, period=period, audience=audience,
                       out_dir=tmp_path).html
    tables = _tables_as_printed(chromium, html)
    assert len(tables) >= 5
    for t in tables:
        assert t["width"] <= t["room"] and t["right"] <= A4_WIDTH_PX, t


def test_every_board_table_prints_whole_on_a4_with_no_scrollbar(board, chromium, tmp_path):
    """Laid out as printed on A4 portrait, no table is wider than the page or its box (a
    wider one is cut off at the right with a scrollbar); sections follow on, not a page
    each. The PDF Chromium prints holds the last columns' headings."""
    tables = _tables_as_printed(chromium, board.html)
    assert len(tables) >= 10
    for t in tables:
        assert t["width"] <= t["room"] and t["right"] <= A4_WIDTH_PX, t
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(board.html.as_uri())
        page.emulate_media(media="print")
        breaks = page.evaluate("""() => [...document.querySelectorAll('h2')].map(
            h => getComputedStyle(h).breakBefore)""")
        assert breaks and "page" not in breaks
        pdf = tmp_path / "board.pdf"
        page.pdf(path=str(pdf), format="A4", prefer_css_page_size=True)
    finally:
        context.close()
    assert pdf.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftotext"):  # Debian's poppler-utils: the words as printed
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout
        for heading in ("% outcomes achieved", "% unacceptable", "% acceptable"):
            assert heading in text.replace("\n", " "), heading


def test_each_definition_names_the_figure_it_defines(board):
    html = board.html.read_text(encoding="utf-8")
    defined = re.search(r'<ul class="note definitions">(.*?)</ul>', html, re.S).group(1)
    terms = re.findall(r"<li><strong>(.*?)</strong>: ", defined)
    assert len(terms) == len(re.findall(r"<li>", defined)) >= 10
    for name in ("Open early help assessments at period end", "% of plans with successful outcomes",
                 "Median days from start to first review"):
        assert name in terms
        assert f"<td>{name}</td>" in html  # the same words as the figure's row


def test_audit_quality_figures_say_they_count_audits(board):
    html = board.html.read_text(encoding="utf-8")
    assert "% of audits judging the plan acceptable in quality" in html
    assert "plans judged acceptable" not in html


def test_each_headline_chart_has_one_subject(board):
    html = board.html.read_text(encoding="utf-8")
    alts = re.findall(r'<img [^>]*alt="([^"]*)"', html)
    outcomes = [a for a in alts if a.startswith("Plans with successful outcomes")]
    quality = [a for a in alts if a.startswith("Audits judging the plan acceptable")]
    assert len(outcomes) == len(quality) == 1, alts


def test_a_big_move_in_audits_says_why_when_ehkit_knows(board):
    """The demo's audit lists began in May 2026: audits went from 15 in 2026Q1 to 42."""
    html = board.html.read_text(encoding="utf-8")
    assert ("Audits completed in period rose from 15 in 2026Q1 to 42 in 2026Q2: the monthly "
            "audit lists (ehkit sample) began in May 2026") in html


def _table_after(html: str, title: str) -> tuple[list[str], list[str]]:
    """(row labels, numeric cells) of the table whose heading is ``title``."""
    table = html[html.index(title):]
    table = table[:table.index("</table>")]
    return (re.findall(r"<tr[^>]*><td>([^<]*)</td>", table),
            re.findall(r'<td class="num">([^<]*)</td>', table))


def test_small_referral_reasons_are_grouped_into_other_reasons_and_named(board):
    """The demo's quarter closes fewer than ten episodes for every reason: one Other
    reasons row, not thirteen rows of c; a note names the reasons it holds."""
    html = board.html.read_text(encoding="utf-8")
    rows, cells = _table_after(html, "Closed in the period: how episodes ended")
    assert rows == ["Other reasons (each fewer than 10 closed)", "Total"]
    assert cells.count("c") <= len(cells) // 2
    assert "Other reasons (each fewer than 10 closed): Parenting support, " in html


def test_moderation_agreement_is_over_the_rolling_year_to_the_quarter_end(demo_db_path, board):
    from ehkit import agreement, metrics, periods

    d = store.connect(demo_db_path)
    q3 = periods.parse("2026Q3")
    assert metrics.moderation_window(q3) == (q3.start.replace(year=2025, month=10), q3.end)
    pairs = {label: figs[0].value for label, figs in metrics.moderation_rows(d, q3)}
    quarter = {r["key"]: r["pairs"] for r in agreement.by_section(
        d, q3.start, q3.end, per_quarter=False)}
    assert pairs["Overall grading"] == d.execute(
        "SELECT count(*) FROM moderations WHERE key = 'overall' "
        "AND moderated_on BETWEEN '2025-10-01' AND '2026-09-30'").fetchone()[0]
    assert pairs["Overall grading"] > quarter["overall"]  # more than the quarter alone
    html = board.html.read_text(encoding="utf-8")
    assert "moderations dated in the 12 months from 1 October 2025 to 30 September 2026" in html
