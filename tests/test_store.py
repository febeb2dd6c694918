"""The store guards its own data: CHECK constraints and foreign keys, not only Python."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from builders import add_audit, add_episode, add_service, episode_row

from ehkit import db as store
from ehkit import episodes
from ehkit.settings import get as setting


@pytest.fixture
def db(db_both):
    """The store guards its data alike on SQLite and on PostgreSQL (issue 18)."""
    return db_both


def refused(db, kind: str = ""):
    """The store's refusal on its back end: a CHECK, a FOREIGN KEY (in either's words)."""
    return pytest.raises(store.integrity_errors(db), match=f"(?i){kind}")


@pytest.fixture
def service(db):
    add_service(db)
    add_episode(db, 1, "2026-01-10")
    add_audit(db, 1, 1, "2026-02-01", 2, {"planning": 2})
    return db


def test_connection_settings(db):
    if store.is_postgres(db):
        pytest.skip("SQLite's own settings of its file (PRAGMAs)")
    pragmas = {p: db.execute(f"PRAGMA {p}").fetchone()[0]
               for p in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")}
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 30000,
                       "synchronous": 2}


def test_migrations_are_numbered_and_recorded(db):
    recorded = [r["number"] for r in db.query("SELECT number FROM schema_migrations")]
    assert recorded == sorted(n for n, _, _ in store.migrations())
    if not store.is_postgres(db):  # PostgreSQL's are its baseline and twins (ehkit upgrade)
        assert store.apply_migrations(db) == []  # nothing left to do


def test_database_path_comes_from_argument_then_environment_then_default(monkeypatch, tmp_path):
    monkeypatch.setenv("EHKIT_DB", str(tmp_path / "env.db"))
    assert store.db_path("given.db").name == "given.db"
    assert store.db_path().name == "env.db"
    monkeypatch.delenv("EHKIT_DB")
    assert str(store.db_path()) == "data/ehkit.db"


def test_a_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(store.DatabaseMissing, match="ehkit demo"):
        store.connect(tmp_path / "nope.db", must_exist=True)


def test_grade_of_5_is_rejected(service):
    with refused(service, "check"):
        with store.transaction(service):
            service["answers"].insert({"audit_id": 1, "key": "review", "grade": 5})
    with refused(service, "check"):
        with store.transaction(service):
            service.execute("UPDATE audits SET overall_grade = 5 WHERE id = 1")


def test_unknown_status_is_rejected(service):
    with refused(service, "check"):
        with store.transaction(service):
            service.execute("UPDATE audits SET status = 'approved' WHERE id = 1")


def test_orphan_answer_is_rejected(service):
    with refused(service, "foreign key"):
        with store.transaction(service):
            service["answers"].insert({"audit_id": 99, "key": "planning", "grade": 2})


@pytest.mark.parametrize("bad", ["2026-02-31", "31/01/2026", "2026-1-5", ""])
def test_impossible_dates_are_rejected(service, bad):
    with refused(service, "check"):
        with store.transaction(service):
            service.execute("UPDATE episodes SET start_date = ? WHERE id = 1", [bad])


def test_episode_cannot_end_before_it_starts_or_be_closed_without_an_end(service):
    with refused(service):
        add_episode(service, 2, "2026-03-01", "2026-02-28", ended_as="other")
    with refused(service):
        with store.transaction(service):
            service.execute("UPDATE episodes SET status = 'closed' WHERE id = 1")


def test_a_failed_write_leaves_nothing_half_written(service):
    before = service["answers"].count
    with refused(service):
        with store.transaction(service):
            service["answers"].insert({"audit_id": 1, "key": "review", "grade": 3})
            service["answers"].insert({"audit_id": 1, "key": "impact", "grade": 9})
    assert service["answers"].count == before


def test_every_write_is_change_logged_in_the_same_transaction(service):
    with store.acting_as(actor="Auditor Testperson", reason="typo"), store.transaction(service):
        service.execute("UPDATE audits SET overall_grade = 3 WHERE id = 1")
    row = service.execute(
        "SELECT table_name, row_key, audit_id, field, old, new, actor, reason FROM change_log "
        "ORDER BY id DESC LIMIT 1").fetchone()
    assert row == ("audits", "1", 1, "overall_grade", 2, 3, "Auditor Testperson", "typo")


def test_the_change_log_cannot_be_changed(service):
    with refused(service, "cannot be changed"):
        service.execute("UPDATE change_log SET reason = 'x'")
    with refused(service, "cannot be deleted"):
        service.execute("DELETE FROM change_log")


def test_every_date_check_refuses_text_that_is_not_a_date():
    # `x = date(x, '+0 days')` lets '31/01/2026' through (NULL is not false); `IS` does not.
    import re

    for _, _, path in store.migrations():
        sql = path.read_text(encoding="utf-8")
        assert not re.search(r"=\s*date\(\s*\w+\s*,\s*'\+0 days'\)", sql), path.name


# -- only demo, an import or an explicit create makes a store ------------------------------
def _foreign(path):
    con = sqlite3.connect(str(path))
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
    con.commit()
    con.close()


NOT_STORES = [
    ("text file", lambda p: p.write_text("ehm_number,start_date\nEHM1,2026-01-05\n"),
     "is a text file (it begins 'ehm_number,start_date"),
    ("empty file", lambda p: p.write_bytes(b""), "is an empty file, not an ehkit store"),
    ("another program's SQLite database", _foreign,
     "is a SQLite database but not an ehkit store (its tables: orders)"),
]


@pytest.mark.parametrize("make,message", [c[1:] for c in NOT_STORES],
                         ids=[c[0] for c in NOT_STORES])
def test_a_file_that_is_not_a_store_is_named_and_left_alone(tmp_path, capsys, make, message):
    import hashlib

    from ehkit import cli

    path = tmp_path / "given.db"
    make(path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    for args in (["actions", "overdue"], ["history", "1"], ["backup"],
                 ["sample", "--month", "2026-11"], ["serve"]):
        assert cli.main([*args, "--db", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert cli.main(["check", "--db", str(path)]) == 1  # check reports it as a finding
    assert f"DB-UNREADABLE  database file: {path} {message.split(' (')[0]}" in (
        capsys.readouterr().out)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["given.db"]


def test_an_import_may_make_a_store_in_an_empty_file_but_not_in_a_foreign_database(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    store.connect(empty).close()  # as `ehkit import` opens it: a new store
    assert store.recorded_migrations(sqlite3.connect(str(empty))) == {
        n for n, _, _ in store.migrations()}
    foreign = tmp_path / "foreign.db"
    _foreign(foreign)
    with pytest.raises(store.NotAStore, match="not an ehkit store"):
        store.connect(foreign)


# -- the schema in one place ----------------------------------------------------------------------
PINNED = Path(__file__).with_name("schema.sql")
PINNED_HEAD = ("-- The schema of a new store, pinned by tests/test_store.py (the change-log triggers\n"
               "-- are made from the columns). A migration that changes it changes this file.\n\n")


def test_a_new_store_has_the_schema_pinned_in_tests_schema_sql(db, tmp_path):
    """Every table, column, constraint, index and view of a new store (the change-log triggers
    are made from the columns). A change to the schema is a choice: make it here too."""
    if store.is_postgres(db):
        pytest.skip("tests/schema.sql pins SQLite's schema (PostgreSQL's is its baseline.sql)")
    now = PINNED_HEAD + store.baseline_sql(db).split("\n\n", 1)[1]  # without its own head
    if now != PINNED.read_text(encoding="utf-8"):
        (tmp_path / "schema.sql").write_text(now, encoding="utf-8")
    assert now == PINNED.read_text(encoding="utf-8"), (
        f"the store's schema is not the pinned one: if the change is meant, copy "
        f"{tmp_path / 'schema.sql'} to tests/schema.sql")


def test_no_check_restates_a_list_the_settings_keep(db):
    """Sectors, referral reasons, concern themes and questions are the council's settings:
    a CHECK listing them would refuse a council's renamed or added one."""
    schema = (db.execute("SELECT string_agg(pg_get_constraintdef(oid), ' ') FROM pg_constraint"
                         " WHERE contype = 'c'").fetchone()[0] if store.is_postgres(db)
              else store.baseline_sql(db))
    listed = [*setting("agencies", "sectors"), *setting("episodes", "referral_reasons"),
              *setting("feedback", "concern_themes"),
              *(q["key"] for q in setting("feedback", "service_user_questions"))]
    assert [x for x in listed if f"'{x}'" in schema] == []


def test_an_agency_may_be_in_any_sector_but_not_a_blank_one(db):
    with store.transaction(db):
        db["agencies"].insert({"name": "Oakvale Youth Justice", "kind": "council",
                               "sector": "Youth Justice"})
    with refused(db, "check"), store.transaction(db):
        db["agencies"].insert({"name": "Nowhere", "kind": "partner", "sector": " "})


def test_the_store_keeps_exactly_the_codes_the_settings_label(service):
    """How an episode began and ended: every code of ehkit.episodes is one the store keeps,
    and the settings label each of them (a CHECK keeps the codes: the figures count them)."""
    with store.transaction(service):
        for n, (began, ended) in enumerate(zip(episodes.BEGAN_AS * 2, episodes.ENDED_AS,
                                               strict=False)):
            service["episodes"].insert(episode_row(100 + n, "2026-01-01", "2026-02-01",
                                                   began_as=began, ended_as=ended))
    for fld, value in (("began_as", "stepped_sideways"), ("ended_as", "vanished")):
        with refused(service, "check"), store.transaction(service):
            service["episodes"].insert(episode_row(200, "2026-01-01", "2026-02-01",
                                                   **{fld: value}))
    assert tuple(setting("episodes", "began_as")) == episodes.BEGAN_AS
    assert tuple(setting("episodes", "ended_as")) == episodes.ENDED_AS


def test_a_sqlite_utils_plugin_does_not_reach_a_stores_connection(tmp_path):
    """A store runs ehkit's SQL functions only: an installed sqlite-utils plugin is not
    asked to prepare its connection (nor looked for: a process's every package read)."""
    from sqlite_utils import hookimpl
    from sqlite_utils.plugins import pm

    asked = []

    class Plugin:
        @hookimpl
        def prepare_connection(self, conn):
            asked.append(conn)

    plugin = Plugin()
    pm.register(plugin, name="test-plugin")
    try:
        database = store.connect(tmp_path / "plain.db")
        database.execute("SELECT 1").fetchall()
        database.close()
        import sqlite_utils

        sqlite_utils.Database(sqlite3.connect(":memory:"))  # the plugin is live elsewhere
    finally:
        pm.unregister(plugin)
    assert len(asked) == 1
