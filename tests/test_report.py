"""The quarterly report end to end: papermill runs the real notebook, nbconvert writes one
self-contained HTML file, and the figures file holds exactly what ehkit.metrics computes."""

from __future__ import annotations

import base64
import csv
import re
from html import unescape
from xml.etree import ElementTree

import pytest

import ehkit
from ehkit import db as store
from ehkit import metrics, periods, reports
from ehkit.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("report_quarterly")]


@pytest.fixture(scope="module")
def quarterly(demo_both, tmp_path_factory):
    """The quarterly report of the demo store on each back end (issue 18)."""
    out = tmp_path_factory.mktemp("reports")
    return reports.run("quarterly", db=demo_both, period="2026Q3",
                       audience="head_of_service", out_dir=out)


def _figures(path):
    with open(path, encoding="utf-8") as f:
        return {r["key"]: r for r in csv.DictReader(f)}


def test_report_files_are_named_for_kind_period_and_audience(quarterly):
    assert quarterly.html.name == "quarterly-2026Q3-head_of_service.html"
    assert quarterly.figures.name == "quarterly-2026Q3-head_of_service.figures.csv"


def test_html_is_one_self_contained_file_with_figures_charts_and_footer(quarterly):
    html = quarterly.html.read_text(encoding="utf-8")
    assert "<h1>Early Help quality assurance: quarterly report</h1>" in html
    assert "Q3 2026 (1 Jul 2026 to 30 Sep 2026)" in html
    assert "How these figures are defined" in html
    shown = re.findall(r'<img alt="([^"]+)" src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert len(shown) >= 2
    for alt, data in shown:  # each chart an SVG image, named by its title
        chart = ElementTree.fromstring(base64.b64decode(data))
        assert unescape(alt) in {t.text for t in chart.iter("{http://www.w3.org/2000/svg}text")}
    assert "<script" not in html                      # nothing runs, nothing loads
    assert not re.search(r'(src|href)="https?://', html)
    assert "def " not in html and "import " not in html  # code is hidden
    footer = html[html.index("<footer>"):]
    assert f"ehkit {ehkit.__version__}" in footer and "template darlington" in footer
    assert "data fingerprint" in footer and "period=2026Q3" in footer


def test_a_cells_headings_notes_and_tables_are_one_output_broken_only_by_its_charts(quarterly):
    """papermill and nbconvert carry each output at a cost: a cell's markup is held and
    shown as one output when the cell ends (or a chart or the footer comes)."""
    import nbformat

    html = quarterly.html.read_text(encoding="utf-8")
    cells = [c for c in nbformat.read(reports.notebook_for("quarterly"), as_version=4).cells
             if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
    charts = html.count('<img alt="')
    markups = html.count('<div class="ehkit">')
    assert charts >= 2 and markups <= len(cells) + charts, (markups, len(cells), charts)


def test_outside_ipython_a_reports_markup_is_shown_at_once(capsys):
    from ehkit.presentation import Report

    report = Report.__new__(Report)
    report._held = []
    report.note("a note")
    assert report._held == [] and "HTML object" in capsys.readouterr().out


def test_the_analysts_note_is_left_out_of_the_board_html(quarterly):
    import nbformat

    nb = nbformat.read(reports.NOTEBOOKS / "quarterly_report.ipynb", as_version=4)
    heading = nb.cells[0].source.splitlines()[0].lstrip("# ")  # the note's first line
    assert heading.startswith("Quarterly report")
    html = quarterly.html.read_text(encoding="utf-8")
    assert heading not in html and "ehkit report quarterly" not in html


def test_figures_file_matches_ehkit_metrics_for_the_same_database(quarterly, demo_both):
    written = _figures(quarterly.figures)
    d = store.connect(demo_both)
    q3 = periods.parse("2026Q3")
    expected = (metrics.partnership(d, q3) + metrics.by_sector(d, q3)
                + metrics.grade_distribution(d, q3))
    for f in expected:
        assert written[f.key]["label"] == f.label
        value = written[f.key]["value"]
        assert (value == "" if f.value is None else float(value) == pytest.approx(f.value)), f.key
    html = quarterly.html.read_text(encoding="utf-8")
    for key in ("open_at_end", "closed_in_period", "audits_completed"):
        assert f"<td class=\"num\">{int(float(written[key]['value'])):,}</td>" in html


def test_board_report_suppresses_small_counts(demo_both, tmp_path):
    result = reports.run("quarterly", db=demo_both, period="2026Q3", audience="board",
                         out_dir=tmp_path)
    written = _figures(result.figures)
    d = store.connect(demo_both)
    q3 = periods.parse("2026Q3")
    small = [f for f in metrics.by_sector(d, q3) if 0 < f.value <= 5]
    assert small, "the demo quarter should have a small count to suppress"
    for f in small:
        assert written[f.key]["value"] == "c"
    zeros = [f for f in metrics.by_sector(d, q3) if f.value == 0]
    for f in zeros:
        assert written[f.key]["value"] == "0"


def test_report_command_prints_the_paths(demo_both, tmp_path, capsys):
    assert main(["report", "quarterly", "--db", demo_both, "--period", "2026Q3",
                 "--audience", "lscb", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "quarterly-2026Q3-lscb.html") in out
    assert (tmp_path / "quarterly-2026Q3-lscb.figures.csv").exists()


def test_report_html_keeps_its_tables_and_drops_what_could_run():
    """The sanitiser (nh3) keeps a report's structure and classes and removes every tag,
    attribute and link that could run or load something; escaped text stays text."""
    table = ('<div class="ehkit"><table><tr><th scope="col" class="num">Cases</th>'
             '<td class="num" colspan="2">5</td></tr></table>'
             '<abbr title="Early help assessment">EHA</abbr></div>')
    assert reports.clean_html(table).replace("<tbody>", "").replace("</tbody>", "") == table
    hostile = ('<p onclick="x()">Plan</p><script>alert(1)</script><img src=x onerror=alert(2)>'
               '<style>body{}</style><a href="javascript:alert(3)">link</a><!-- note -->'
               '<iframe src="https://example.org"></iframe>Mum said &lt;script&gt;')
    cleaned = reports.clean_html(hostile.encode())
    for gone in ("onclick", "<script", "alert(1)", "<img", "onerror", "<style", "javascript:",
                 "note", "<iframe"):
        assert gone not in cleaned
    assert cleaned.startswith("<p>Plan</p>") and cleaned.endswith("Mum said &lt;script&gt;")


def test_the_export_shows_nothing_of_a_reports_figures_and_warns_of_nothing():
    """A report's figures (the CSV's) ride in an output of their own, which nothing shows:
    exporting it (JupyterLab's menu, `jupyter nbconvert --to ehkit_report`) must not warn a
    person that nbconvert cannot show it."""
    import warnings

    import nbformat

    from ehkit.presentation import FIGURES_MIME

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("report.footer()", outputs=[
        nbformat.v4.new_output("display_data", data={FIGURES_MIME: '[{"key": "open_at_end"}]'}),
        nbformat.v4.new_output("display_data", data={"text/html": "<p>Footer</p>"})])])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        html = reports.export_html(nb, title="Quarterly report")
    assert "<p>Footer</p>" in html and "open_at_end" not in html


def test_a_chart_is_an_image_in_the_html_so_nothing_in_it_runs():
    """An SVG shown inline would be live markup (a script in it would run); as an image it
    is inert. The exporter embeds it as an <img>, named by its alternative text."""
    import nbformat

    hostile = ('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
               '<script>alert(1)</script><text>Open cases</text></svg>')
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("chart()", outputs=[
        nbformat.v4.new_output("display_data", data={"image/svg+xml": hostile},
                               metadata={"image/svg+xml": {"alt": "Open cases <rose>"}})])])
    html = reports.export_html(nb, title="Quarterly report")
    assert "<svg" not in html and "<script" not in html
    (data,) = re.findall(r'<img alt="Open cases &lt;rose&gt;" src="data:image/svg\+xml;base64,'
                         r'([^"]+)"', html)
    assert base64.b64decode(data).decode() == hostile  # the image as the kernel made it
