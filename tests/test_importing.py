"""The import frame: every import (episodes, practitioners, agencies, service-user feedback)
reads, checks, rejects, sums up and exits the same way."""

from __future__ import annotations

import csv

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
def store_file(db_both, request):
    """The store on each back end (``ehkit feedback`` is not yet one on PostgreSQL's list)."""
    if store.is_postgres(db_both) and request.node.callspec.params.get("kind") == (
            "service-user feedback"):
        pytest.skip("`ehkit feedback` does not work on a PostgreSQL store yet")
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
