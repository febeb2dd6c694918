"""The import frame: every import (episodes, practitioners, agencies, service-user feedback)
reads, checks, rejects, sums up and exits the same way."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from builders import base_rows, where

from ehkit import cli, importing, rules
from ehkit import db as store

# Each import: its command, the headings (as an export might write them), one good row.
IMPORTS = {
    "agencies": (["import", "agencies"], ["NAME", "Kind", "sector"],
                 ["Fernbridge Primary School", "Partner", "Education"]),
    "practitioners": (["import", "practitioners"], ["Name", "Agency"],
                      ["Pip Pondwhistle", "Test Team"]),
    "episodes": (["import", "episodes"], ["EHM Number", "Start Date", "Lead agency"],
                 ["EHM2", "01/02/2026", "Test Team"]),
    "service-user feedback": (["feedback", "import"], ["EHM number", "Given on", "Respondent",
                                                       "Stage"],
                              ["EHM1", "01/05/2026", "Parent or carer", "Closure"]),
}


def workbook(path, rows):
    wb = openpyxl.Workbook()
    for row in rows:
        wb.active.append(row)
    wb.save(path)
    return path


@pytest.fixture
def store_file(db_both):
    """The store on each back end, as --db names it."""
    base_rows(db_both)
    return where(db_both)


def run(command, path, store_file, tmp_path, capsys):
    code = cli.main([*command, str(path), "--db", store_file, "--rejects-dir", str(tmp_path)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("kind", IMPORTS)
def test_every_import_skips_title_rows_and_refuses_a_row_with_more_cells_than_headings(
        kind, store_file, tmp_path, capsys):
    command, headings, good = IMPORTS[kind]
    path = workbook(tmp_path / "export.xlsx", [
        ["Oakvale export, run 24/11/2026"],  # a title row: skipped
        headings,
        good,
        [],  # a blank row: not a row
        [*good, "a stray cell"]])
    code, out, err = run(command, path, store_file, tmp_path, capsys)
    assert (code, err) == (importing.EXIT_SOME_REJECTED, "")
    assert out.startswith("export.xlsx: read 2 rows = 1 inserted + 0 updated + 0 unchanged + "
                          "1 rejected\n")
    assert f"rejected rows and why: {tmp_path / 'export-rejects.csv'} (TOO_MANY_CELLS 1)" in out
    with open(tmp_path / "export-rejects.csv", encoding="utf-8-sig", newline="") as fh:
        (reject,) = list(csv.DictReader(fh))
    assert (reject["row"], reject["code"], reject["field"], reject["value"]) == (
        "5", "TOO_MANY_CELLS", "", "a stray cell")
    assert reject["reason"] == (rules.get("TOO_MANY_CELLS").message
                                + f": {len(headings)} headed columns")


@pytest.mark.parametrize("kind", IMPORTS)
def test_every_import_exits_0_when_every_row_is_in_and_says_so_again(kind, store_file,
                                                                     tmp_path, capsys):
    command, headings, good = IMPORTS[kind]
    path = workbook(tmp_path / "export.xlsx", [headings, good])
    assert run(command, path, store_file, tmp_path, capsys)[:2] == (
        importing.EXIT_IMPORTED, "export.xlsx: read 1 rows = 1 inserted + 0 updated + "
        "0 unchanged + 0 rejected\n")
    code, out, _ = run(command, path, store_file, tmp_path, capsys)
    assert (code, out.splitlines()[1:]) == (
        importing.EXIT_IMPORTED, ["nothing changed: every valid row is already in the store"])
    assert not (tmp_path / "export-rejects.csv").exists()


@pytest.mark.parametrize("kind", IMPORTS)
def test_every_import_refuses_a_file_without_its_columns_in_one_line_and_exits_2(
        kind, store_file, tmp_path, capsys):
    command, headings, good = IMPORTS[kind]
    path = workbook(tmp_path / "export.xlsx", [headings[1:], good[1:]])
    code, out, err = run(command, path, store_file, tmp_path, capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f"ehkit: error: export.xlsx: missing columns for {kind}: ")
    assert err.endswith("; nothing was imported\n") and err.count("\n") == 1


@pytest.mark.parametrize("kind", IMPORTS)
def test_every_import_names_a_file_that_is_not_there(kind, store_file, tmp_path, capsys):
    command, _, _ = IMPORTS[kind]
    code, _, err = run(command, tmp_path / "gone.csv", store_file, tmp_path, capsys)
    assert (code, err) == (2, f"ehkit: error: {tmp_path / 'gone.csv'}: no such file; "
                              "nothing was imported\n")


EPISODE_COLUMNS = importing.Columns(
    "episodes", {"ehm_number": ("EHM Number",), "start_date": ("Start Date",),
                 "lead_agency": ("Lead agency",), "child_name": ("Child name",)},
    ("ehm_number", "start_date", "lead_agency"), "add them")


def _written(path, rows, line_end, quoting):
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator=line_end, quoting=quoting).writerows(rows)
    return path


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
@pytest.mark.parametrize("odd_row", [None, ["EHM5", "01/02/2026"], ["EHM6", "01/02/2026",
                                                                   "Test Team", "Di", "stray"]])
def test_a_csv_without_quotes_is_read_as_csv_reader_reads_it(line_end, odd_row, tmp_path,
                                                             capsys):
    """A CSV without quotes is split a column at a time (importing._plain_columns) or, with a
    row of another width, a row at a time by its lines, not by csv.reader: the same rows, row
    numbers, refusals and import as the same file with every cell quoted (csv.reader's)."""
    rows = [["Oakvale export run 24/11/2026"], [],
            ["EHM Number", "Start Date", "Lead agency", "Child name"],
            ["EHM2", "01/02/2026", "Test Team", " Ann "], ["", "", "", ""],
            ["EHM3", "31/02/2026", "Test Team", "Bo"], [" ", "", "\t", ""],
            *([odd_row] if odd_row else []),
            ["EHM4", "2026-02-01", "  Test Team", "Cy"], ["EHM4", "2026-02-01", "Test Team", "Cy"]]
    for folder in ("plain", "quoted"):
        (tmp_path / folder).mkdir()
    plain = _written(tmp_path / "plain" / "export.csv", rows, line_end, csv.QUOTE_MINIMAL)
    quoted = _written(tmp_path / "quoted" / "export.csv", rows, line_end, csv.QUOTE_ALL)
    assert '"' not in plain.read_text() and '"' in quoted.read_text()
    a, b = (importing.open_file(p, EPISODE_COLUMNS) for p in (plain, quoted))
    assert (a.by_column is not None) == (odd_row is None)  # a row of another width: by rows
    assert b.by_column is None
    assert a.header_row == b.header_row == 3
    stray = [8] if odd_row and len(odd_row) > 4 else []  # refused: TOO_MANY_CELLS
    assert a.rows == b.rows and a.numbers == b.numbers == [
        n for n in range(4, len(rows) + 1) if n not in (5, 7, *stray)]  # 5, 7: blank
    assert a.refused == b.refused and [p.row for p in a.refused] == stray
    assert a.read == b.read == len(rows) - 5
    assert [a.original(n) for n in a.numbers] == [b.original(n) for n in b.numbers]
    outcomes = []
    for path in (plain, quoted):
        database = store.connect(path.parent / "ehkit.db")
        base_rows(database)
        database.close()
        code, out, err = run(["import", "episodes"], path, str(path.parent / "ehkit.db"),
                             path.parent, capsys)
        database = store.connect(path.parent / "ehkit.db")
        stored = database.execute(
            "SELECT e.id, ehm_number, start_date, lead_agency_id, c.name FROM episodes e "
            "LEFT JOIN children c ON c.episode_id = e.id ORDER BY e.id, c.id").fetchall()
        database.close()
        rejects = (path.parent / "export-rejects.csv").read_text()
        outcomes.append((code, out.replace(str(path.parent), "."), err, stored, rejects))
    assert outcomes[0] == outcomes[1]
    code, out, err, stored, rejects = outcomes[0]
    assert code == importing.EXIT_SOME_REJECTED and "IMPOSSIBLE_DATE" in rejects
    assert "DUPLICATE_ROW" in rejects  # the padded copy of a row, trimmed, is the same row
    assert [r[1:] for r in stored if r[1] != "EHM1"][:2] == [
        ("EHM2", "2026-02-01", 1, "Ann"), ("EHM4", "2026-02-01", 1, "Cy")]


def test_copies_and_differences_are_found_alike_by_a_plain_csvs_lines(tmp_path, capsys):
    """A plain CSV whose cells need no trimming and whose every column is a field's has its
    rows compared by their lines (importing.File.whole_rows): the same copies (of a sibling,
    not only of an episode's first row), differences and store as by its cells, with a column
    no field uses (compared by cells) or every cell quoted (csv.reader's)."""
    rows = [["EHM2", "01/02/2026", "Test Team", "2", "Ann"],
            ["EHM2", "01/02/2026", "Test Team", "2", "Bo"],
            ["EHM2", "01/02/2026", "Test Team", "2", "Bo"],  # a copy of the row above
            ["EHM2", "2026-02-01", "Test Team", "2", "Cy"],  # the same episode, another text
            ["EHM2", "01/02/2026", "Test Team", "1", "Di"],  # another lead: differs
            ["EHM3", "01/02/2026", "Test Team", "2", "Ann"],
            ["EHM3", "01/02/2026", "Test Team", "2", "Ann"]]
    head = ["EHM Number", "Start Date", "Lead agency", "Lead professional id", "Child name"]
    variants = {"lines": ([head, *rows], csv.QUOTE_MINIMAL),
                "cells": ([[*head, "Notes"], *[[*r, "x"] for r in rows]], csv.QUOTE_MINIMAL),
                "quoted": ([head, *rows], csv.QUOTE_ALL)}
    outcomes = []
    for folder, (lines, quoting) in variants.items():
        (tmp_path / folder).mkdir()
        path = _written(tmp_path / folder / "export.csv", lines, "\r\n", quoting)
        opened = importing.open_file(path, importing.Columns(
            "episodes", {"ehm_number": ("EHM Number",), "start_date": ("Start Date",),
                         "lead_agency": ("Lead agency",),
                         "lead_professional_id": ("Lead professional id",),
                         "child_name": ("Child name",)},
            ("ehm_number", "start_date", "lead_agency"), "add them"))
        assert (opened.whole_rows() is not None) == (folder == "lines")
        database = store.connect(tmp_path / folder / "ehkit.db")
        base_rows(database)
        database.close()
        code, _, _ = run(["import", "episodes"], path, str(tmp_path / folder / "ehkit.db"),
                         tmp_path / folder, capsys)
        database = store.connect(tmp_path / folder / "ehkit.db")
        stored = database.execute(
            "SELECT e.id, ehm_number, start_date, lead_professional_id, c.name FROM episodes e "
            "LEFT JOIN children c ON c.episode_id = e.id ORDER BY e.id, c.id").fetchall()
        database.close()
        with (tmp_path / folder / "export-rejects.csv").open(newline="",
                                                              encoding="utf-8-sig") as f:
            rejects = [r[:5] for r in csv.reader(f)]
        outcomes.append((code, stored, rejects))
    assert outcomes[0] == outcomes[1] == outcomes[2]
    code, stored, rejects = outcomes[0]
    assert code == importing.EXIT_SOME_REJECTED
    assert [(r[0], r[1], r[4].split(": ")[-1]) for r in rejects[1:]] == [
        ("4", "DUPLICATE_ROW", "same as row 3"), ("6", "DUPLICATE_DIFFERS", "row 2 has '2'; "
                                                  "differs in lead_professional_id"),
        ("8", "DUPLICATE_ROW", "same as row 7")]
    assert [r[1:] for r in stored if r[1] != "EHM1"] == [
        ("EHM2", "2026-02-01", 2, "Ann"), ("EHM2", "2026-02-01", 2, "Bo"),
        ("EHM2", "2026-02-01", 2, "Cy"), ("EHM3", "2026-02-01", 2, "Ann")]


@pytest.mark.parametrize("ends", [["\r\n"] * 3, ["\n"] * 3, ["\r\n", "\n", "\r\n"],
                                  ["\n", "\r\n", ""], ["\r\n", "\r", "\n"], ["\r\r\n", "\n", ""]])
def test_a_plain_csvs_lines_are_csv_readers_rows_whatever_its_line_ends(ends):
    """importing._plain_lines splits at Windows' line ends alone when every line end is one
    (no copy of the text), else as one line end each: csv.reader's rows either way, or
    None (csv.reader reads the file) for a lone "\\r", which it treats as a line end too."""
    cells = [["EHM Number", "Start Date"], ["EHM1", "01/02/2026"], ["", ""], ["EHM2", " x"]]
    text = "".join(",".join(row) + end for row, end in zip(cells, [*ends, ""], strict=True))
    lines = importing._plain_lines(text)
    expected = [row for row in csv.reader(io.StringIO(text, newline=""))]
    if lines is None:
        assert "\r" in text.replace("\r\n", "")  # a lone "\r": left to csv.reader
        return
    assert [line.split(",") if line else [] for line in lines] == expected


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_a_plain_csvs_columns_read_by_pandas_are_its_cells(delimiter):
    """importing._coded_columns gives each column's cells as the split text gives them, the
    distinct cells in the order first met and each row's index among them, one object for
    each distinct cell: blank, short and long cells, spaces kept, Welsh, emoji, and what
    pandas might read as something else (NA, null, #, a number, an escape)."""
    cells = ["", "a", "Ann", "12345678", "123456789", "1234567890123456", "12345678901234567",
             "Llŷr Siân", "🙂 Bo", "x" * 300, "Ann ", "ann", "NA", "null", "#1", "0012",
             "1e5", "a\\b", " lead"]
    rows = [[cells[(r * 5 + k * 3) % len(cells)] for k in range(4)] for r in range(40)]
    rows[-1][-1] = "y" * 70_000  # longer than a chunk pandas reads at once
    lines = [delimiter.join(row) for row in rows]
    columns = importing._coded_columns(lines, delimiter, 4)
    for k, column in enumerate(columns):
        expected = [row[k] for row in rows]
        assert type(column) is importing.Coded and column == expected
        assert column.distinct == list(dict.fromkeys(expected))
        assert [column.distinct[c] for c in column.codes] == expected
        assert len({id(c) for c in column}) == len(column.distinct)  # one object each
