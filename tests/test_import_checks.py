"""The episode import writes its new rows with SQLite's CHECKs set aside
(``ehkit.db.bulk_insert(..., checks_met=True)``): proved here, CHECK by CHECK, not assumed.
Every CHECK of the tables the import writes is read from the schema and has a row below that
would break it; the import must reject that row with its own reason and write nothing of it.
A CHECK added to the schema without a row here (and a rule in the import) fails the first
test."""

from __future__ import annotations

import csv
import datetime as dt
import re
import sqlite3

import pytest

from ehkit import cases, importing
from ehkit import db as store

TODAY = dt.date(2026, 11, 20)
AGENCY = "Oakvale Council Early Help Team North"
TABLES = ("episodes", "children")  # what the episode import inserts into
COLUMNS = ["ehm_number", "start_date", "end_date", "lead_agency", "began_as", "ended_as",
           "cross_authority", "first_review_date", "last_review_date", "child_name",
           "child_date_of_birth"]
# A mapping file's words for values the store does not keep (the import checks them too).
MAPPING = """[episodes.values]
began_as = { "Walk-in" = "walk_in" }
ended_as = { "Emigrated" = "emigrated" }
cross_authority = { "Perhaps" = "2" }
"""
GOOD = {"ehm_number": "EHM-G1", "start_date": "02/02/2026", "lead_agency": AGENCY,
        "began_as": "New request",
        "child_name": "Ivo Quarrendale", "child_date_of_birth": "04/04/2019"}
# Each row every other column of which passes: closed with reviews, across authorities.
GOOD_CLOSED = {**GOOD, "ehm_number": "EHM-G2", "end_date": "30/09/2026", "began_as": "Step down",
               "ended_as": "Outcomes achieved", "cross_authority": "Yes",
               "first_review_date": "01/03/2026", "last_review_date": "01/06/2026",
               "child_name": "Wren Quarrendale"}
EPISODE = {"ehm_number": "EHM-C1", "start_date": "2026-02-02", "status": "open",
           "lead_agency_id": 1, "began_as": "new_request", "cross_authority": 0}
CHILD = {"name": "Ivo Quarrendale", "date_of_birth": "2019-04-04"}
CLOSED = {"end_date": "2026-09-30", "status": "closed"}

# CHECK (as the schema words it, spaces collapsed) -> (table, the row's cells, the same row's
# values as a store would hold them taken at face value, the import's (code, field)).
# ``status`` is not read from a file: the import sets it from the end date, so the row that
# could break a CHECK on it is one whose end date cannot be read.
CASES = {
    "trim(ehm_number) <> ''": (
        "episodes", {"ehm_number": "   "}, {"ehm_number": "   "},
        ("MISSING_VALUE", "ehm_number")),
    "start_date IS date(start_date, '+0 days')": (
        "episodes", {"start_date": "30/02/2026"}, {"start_date": "2026-02-30"},
        ("IMPOSSIBLE_DATE", "start_date")),
    "end_date IS NULL OR end_date IS date(end_date, '+0 days')": (
        "episodes", {"end_date": "31/04/2026"}, {**CLOSED, "end_date": "2026-04-31"},
        ("IMPOSSIBLE_DATE", "end_date")),
    "status IN ('open', 'closed')": (
        "episodes", {"end_date": "soon"}, {"status": "soon"}, ("BAD_DATE", "end_date")),
    "began_as IN ('new_request', 'step_down', 'other')": (
        "episodes", {"began_as": "Walk-in"}, {"began_as": "walk_in"},
        ("UNKNOWN_VALUE", "began_as")),
    "cross_authority IN (0, 1)": (
        "episodes", {"cross_authority": "Perhaps"}, {"cross_authority": 2},
        ("UNKNOWN_VALUE", "cross_authority")),
    "ended_as IN ('outcomes_achieved', 'stepped_up', 'stepped_down_universal', 'disengaged', "
    "'moved_away', 'other')": (
        "episodes", {"end_date": "30/09/2026", "ended_as": "Emigrated"},
        {**CLOSED, "ended_as": "emigrated"}, ("UNKNOWN_VALUE", "ended_as")),
    "first_review_date IS NULL OR first_review_date IS date(first_review_date, '+0 days')": (
        "episodes", {"first_review_date": "29/02/2026"}, {"first_review_date": "2026-02-29"},
        ("IMPOSSIBLE_DATE", "first_review_date")),
    "last_review_date IS NULL OR last_review_date IS date(last_review_date, '+0 days')": (
        "episodes", {"last_review_date": "2026-06-31"}, {"last_review_date": "2026-06-31"},
        ("IMPOSSIBLE_DATE", "last_review_date")),
    "end_date IS NULL OR end_date >= start_date": (
        "episodes", {"end_date": "01/01/2026"}, {**CLOSED, "end_date": "2026-01-01"},
        ("END_BEFORE_START", "end_date")),
    "(status = 'closed') = (end_date IS NOT NULL)": (
        "episodes", {"end_date": "when it closes"}, {"status": "closed"},
        ("BAD_DATE", "end_date")),
    "ended_as IS NULL OR status = 'closed'": (
        "episodes", {"ended_as": "Outcomes achieved"}, {"ended_as": "outcomes_achieved"},
        ("ENDED_WITHOUT_END_DATE", "ended_as")),
    "first_review_date IS NULL OR first_review_date >= start_date": (
        "episodes", {"first_review_date": "01/01/2026"}, {"first_review_date": "2026-01-01"},
        ("REVIEW_BEFORE_START", "first_review_date")),
    "last_review_date IS NULL OR first_review_date IS NULL OR last_review_date >= "
    "first_review_date": (
        "episodes", {"first_review_date": "01/06/2026", "last_review_date": "01/03/2026"},
        {"first_review_date": "2026-06-01", "last_review_date": "2026-03-01"},
        ("REVIEW_ORDER", "last_review_date")),
    "trim(name) <> ''": (
        "children", {"child_name": "  "}, {"name": "  "}, ("MISSING_VALUE", "child_name")),
    "date_of_birth IS NULL OR date_of_birth IS date(date_of_birth, '+0 days')": (
        "children", {"child_date_of_birth": "29/02/2019"}, {"date_of_birth": "2019-02-29"},
        ("IMPOSSIBLE_DATE", "child_date_of_birth")),
}


def spaced(text: str) -> str:
    return " ".join(text.split())


def schema_checks(conn: sqlite3.Connection, table: str) -> list[str]:
    """Each CHECK (...) in the table's CREATE statement, its text between the brackets."""
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                          (table,)).fetchone()
    found = []
    for m in re.finditer(r"\bCHECK\s*\(", sql, flags=re.IGNORECASE):
        depth, quoted = 1, False
        for end in range(m.end(), len(sql)):
            c = sql[end]
            if c == "'":
                quoted = not quoted
            elif not quoted and c in "()":
                depth += 1 if c == "(" else -1
                if depth == 0:
                    break
        found.append(sql[m.end():end])
    return found


@pytest.fixture
def sqlite_store(tmp_path):
    database = store.connect(tmp_path / "ehkit.db")
    yield database
    database.close()


def add_agency(db):
    with store.transaction(db):
        db["agencies"].insert({"id": 1, "name": AGENCY, "kind": "council",
                               "sector": "Local Authority"})


def test_every_check_of_the_tables_the_import_writes_has_a_row_here_that_breaks_it(
        sqlite_store):
    in_schema = {spaced(c): table for table in TABLES
                 for c in schema_checks(sqlite_store.conn, table)}
    assert len(in_schema) >= 16  # (the parse found them: the schema has at least these)
    missing = sorted(set(in_schema) - set(CASES))
    assert not missing, ("the import sets the store's CHECKs aside for its insert: give each "
                         f"new CHECK a row here and a rule in the import: {missing}")
    assert {c: in_schema[c] for c in CASES} == {c: case[0] for c, case in CASES.items()}


@pytest.mark.parametrize("check", CASES)
def test_each_rows_values_break_their_check_in_the_store(sqlite_store, check):
    """The row's values, written by any other path, are refused by that very CHECK."""
    table, _, values, _ = CASES[check]
    add_agency(sqlite_store)
    conn = sqlite_store.conn
    if table == "children":
        with store.transaction(sqlite_store):
            sqlite_store["episodes"].insert(EPISODE)
        row = {**CHILD, "episode_id": 1, **values}
    else:
        row = {**EPISODE, **values}
    with pytest.raises(sqlite3.IntegrityError) as refused, store.transaction(sqlite_store):
        conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES "
                     f"({', '.join('?' * len(row))})", list(row.values()))
    assert spaced(str(refused.value)) == f"CHECK constraint failed: {check}"


@pytest.mark.parametrize("check", CASES)
def test_the_import_rejects_each_row_that_would_break_a_check(db_both, tmp_path, check):
    """The import's own rule rejects the row with its reason; the good rows around it go in
    whole; nothing of the bad row is written; SQLite finds every CHECK kept, and refuses a
    bad value on the same connection afterwards."""
    _, cells, values, (code, field) = CASES[check]
    add_agency(db_both)
    bad = {**GOOD, "ehm_number": "EHM-B1", "child_name": "Oli Brackenfold", **cells}
    path = tmp_path / "export.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([COLUMNS, *([r.get(c, "") for c in COLUMNS]
                                             for r in (GOOD, bad, GOOD_CLOSED))])
    mapping = tmp_path / "ours.toml"
    mapping.write_text(MAPPING, encoding="utf-8")
    s = cases.import_episodes(db_both, path, mapping=mapping, rejects_dir=tmp_path,
                              today=TODAY)
    assert [(p.row, p.code, p.field) for p in s.problems] == [(3, code, field)]
    assert (s.read, s.inserted, s.rejected) == (3, 2, 1)
    rows = db_both.execute("SELECT e.ehm_number, e.status, e.began_as, e.cross_authority, "
                           "e.ended_as, c.name FROM episodes e JOIN children c ON "
                           "c.episode_id = e.id ORDER BY e.id").fetchall()
    assert [tuple(r) for r in rows] == [
        ("EHM-G1", "open", "new_request", 0, None, "Ivo Quarrendale"),
        ("EHM-G2", "closed", "step_down", 1, "outcomes_achieved", "Wren Quarrendale")]
    if store.is_postgres(db_both):
        return
    conn = db_both.conn
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA ignore_check_constraints").fetchone() == (0,)
    table = CASES[check][0]
    row = {**CHILD, "episode_id": 1, **values} if table == "children" else {**EPISODE, **values}
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"), \
            store.transaction(db_both):
        conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES "
                     f"({', '.join('?' * len(row))})", list(row.values()))


def test_a_refused_import_puts_the_checks_back_too(sqlite_store, tmp_path):
    """The store refuses a child mid-insert (as a full disk would): the CHECKs are on again."""
    add_agency(sqlite_store)
    conn = sqlite_store.conn
    conn.execute("CREATE TEMP TRIGGER refuse BEFORE INSERT ON children WHEN NEW.name = "
                 "'Boom Refused' BEGIN SELECT RAISE(ABORT, 'refused'); END")
    path = tmp_path / "export.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([COLUMNS, [GOOD.get(c, "") for c in COLUMNS],
                                  [{**GOOD, "ehm_number": "EHM-B1", "child_name": "Boom Refused"}
                                   .get(c, "") for c in COLUMNS]])
    with pytest.raises(importing.ImportFailed, match="nothing was imported"):
        cases.import_episodes(sqlite_store, path, rejects_dir=tmp_path, today=TODAY)
    assert conn.execute("PRAGMA ignore_check_constraints").fetchone() == (0,)
    assert sqlite_store["episodes"].count == 0
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"), \
            store.transaction(sqlite_store):
        conn.execute("INSERT INTO episodes (ehm_number, start_date, status, lead_agency_id) "
                     "VALUES ('EHM-X', '2026-02-30', 'open', 1)")
