"""The one rule for every CSV and .xlsx ehkit writes: nothing a spreadsheet would run as a
formula (OWASP: cells starting = + - @ tab or carriage return), and real numbers stay numbers.
Each writer (figures, import rejects, feedback rejects, audit lists) is also tested with its
own file in test_free_text, test_import, test_feedback and test_sampling."""

from __future__ import annotations

import csv

import openpyxl
import pytest

from ehkit import spreadsheet

RUNS = ['=HYPERLINK("http://evil.example/","Open")', "+1+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)", "\t=1+1", "\r=1+1", "-", "=", "+cmd"]
NUMBERS = [-3, -1.5, 0, 12, "-3", "-1.5", "+2", "-.5", "1e3", "-2E-3"]


@pytest.mark.parametrize("text", RUNS)
def test_a_cell_a_spreadsheet_would_run_is_written_as_text(text):
    assert spreadsheet.safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", [*NUMBERS, "Good", "", None, "Quarter 2026Q3", "c"])
def test_numbers_and_ordinary_text_are_written_as_they_are(value):
    assert spreadsheet.safe_cell(value) == value


def test_csv_and_excel_files_hold_text_not_formulas_and_numbers_as_numbers(tmp_path):
    rows = [[t, n] for t, n in zip(RUNS, NUMBERS, strict=False)]
    path = spreadsheet.write_csv(tmp_path / "f.csv", ["text", "number"], rows, excel=False)
    with path.open(encoding="utf-8", newline="") as f:
        back = list(csv.reader(f))[1:]
    assert [r[0] for r in back] == ["'" + t for t, _ in rows]
    assert [r[1] for r in back] == [str(n) for _, n in rows]
    ws = openpyxl.load_workbook(spreadsheet.write_xlsx(tmp_path / "f.xlsx", ["text", "number"],
                                                       rows, sheet="list")).active
    # (XML reads a carriage return back as a line feed)
    assert [c.value for c in ws["A"][1:]] == ["'" + t.replace("\r", "\n") for t, _ in rows]
    assert [c.value for c in ws["B"][1:]] == [n for _, n in rows]  # -3 and -1.5 still numbers
    assert not any(c.data_type == "f" for row in ws.iter_rows() for c in row)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv", "f.xlsx"]  # no leftovers
