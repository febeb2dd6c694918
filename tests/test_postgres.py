"""PostgreSQL as the store (issue 18, the first slice): the schema, the change log and
``ehkit copy``, against a real PostgreSQL the tests start themselves (tests/pg.py), beside
SQLite. Only invented people."""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import sqlite3
import threading

import psycopg
import pytest
from builders import base_rows, raw

from ehkit import check, cli, postgres
from ehkit import db as store

REFUSED = (sqlite3.DatabaseError, psycopg.Error)
AWKWARD = 'a "quote", a \\ backslash, a\ttab, a\nnewline, \x01, é and ✓'


def logged(db, after: int = 0) -> list[tuple]:
    """The change log's rows without when and the hash (which the time changes)."""
    return [tuple(r) for r in db.execute(
        'SELECT "user", actor, table_name, row_key, audit_id, field, old, new, reason'
        " FROM change_log WHERE id > ? ORDER BY id", [after])]


def write_some(db) -> None:
    """The same writes on either back end: inserts, an update of two fields, deletes."""
    base_rows(db)
    with store.acting_as(actor="Ava Auditor", reason="a test"), store.transaction(db):
        db.execute("INSERT INTO audits (id, episode_id, template, auditor1_id, audit_date,"
                   " created_at, updated_at) VALUES (5, 1, 'darlington', 1, '2026-03-01',"
                   " '2026-03-01T10:00:00Z', '2026-03-01T10:00:00Z')")
        db.execute("INSERT INTO answers (audit_id, key, grade, comment) VALUES (5, '1', 2, ?)",
                   [AWKWARD])
        db.execute("UPDATE answers SET grade = 3, comment = NULL WHERE audit_id = 5")
        db.execute("DELETE FROM answers WHERE audit_id = 5")


def test_the_same_writes_log_the_same_rows_on_both_back_ends(pg_server, tmp_path):
    lite, pg = store.connect(tmp_path / "ehkit.db"), store.connect(pg_server.new_database())
    try:
        for db in (lite, pg):
            write_some(db)
        assert logged(pg) == logged(lite)
        assert ("answers", "5/1", 5, "grade", 2, 3) in [r[2:8] for r in logged(pg)]
        assert check.chain_checks(pg) == [] and check.chain_checks(lite) == []
    finally:
        lite.close()
        pg.close()


def test_a_session_plans_for_small_queries(pg_server):
    """ehkit's sessions, the reopened one too, compile no query (JIT: seconds compiling a
    report's view queries at a million episodes), start no parallel workers and read pages
    as cached (bench/RESULTS.md); another client of the server keeps the server's own."""
    url = pg_server.new_database()
    show = "SELECT current_setting('jit'), current_setting('max_parallel_workers_per_gather'), " \
           "current_setting('random_page_cost')"
    db = store.connect(url)
    try:
        assert db.execute(show).fetchone() == ("off", "0", "1.1")
        db.conn.raw.close()  # as a server dropping an idle connection
        assert db.execute(show).fetchone() == ("off", "0", "1.1")
    finally:
        db.close()
    with psycopg.connect(url) as other:
        assert other.execute(show).fetchone() == ("on", "2", "4")


def test_the_change_log_chain_verifies_and_names_the_person(db_both):
    write_some(db_both)
    assert check.chain_checks(db_both) == []
    user, actor, *_, reason = logged(db_both)[-1]
    assert (user, actor, reason) == (store.login_name(), "Ava Auditor", "a test")


def test_the_change_log_cannot_be_changed_or_deleted_from(db_both):
    write_some(db_both)
    with pytest.raises(REFUSED, match="the change log cannot be changed"):
        db_both.execute("UPDATE change_log SET reason = 'rewritten'")
    with pytest.raises(REFUSED, match="the change log cannot be deleted from"):
        db_both.execute("DELETE FROM change_log WHERE id = 1")
    if store.is_postgres(db_both):  # SQLite has no TRUNCATE
        with pytest.raises(REFUSED, match="cannot be deleted from"):
            db_both.execute("TRUNCATE change_log")
    assert check.chain_checks(db_both) == []


def test_a_date_that_does_not_exist_is_refused_on_both(db_both):
    base_rows(db_both)
    for bad in ("2026-02-30", "2026-2-3", "03/02/2026"):
        with pytest.raises(REFUSED, match="(?i)check"), store.transaction(db_both):
            db_both.execute("INSERT INTO episodes (ehm_number, start_date, status, lead_agency_id)"
                            " VALUES ('EHM7', ?, 'open', 1)", [bad])
    with store.transaction(db_both):
        db_both.execute("INSERT INTO episodes (ehm_number, start_date, end_date, status,"
                        " lead_agency_id) VALUES ('EHM7', '2024-02-28', '2024-03-01', 'closed', 1)")
    (days,) = db_both.execute("SELECT length_days FROM episodes WHERE ehm_number = 'EHM7'"
                              ).fetchone()
    assert days == 2  # a leap year, counted the same by both


def test_on_postgresql_a_log_row_altered_or_removed_outside_ehkit_is_found(pg_server):
    db = store.connect(pg_server.new_database())
    try:
        write_some(db)
        db.execute("ALTER TABLE change_log DISABLE TRIGGER USER")  # a tool with the owner's login
        db.execute("UPDATE change_log SET \"user\" = 'mallory' WHERE id = 3")
        (last,) = db.execute("SELECT max(id) FROM change_log").fetchone()
        db.execute("DELETE FROM change_log WHERE id = ?", [last])
        assert [(f.code, f.where) for f in check.chain_checks(db)] == [
            ("LOG-ALTERED", "change_log id 3"), ("LOG-REMOVED", f"change_log id {last}")]
    finally:
        db.close()


def test_the_log_counter_removed_outside_ehkit_is_found_by_its_own_name_on_either(db_both):
    write_some(db_both)
    counter = "change_log_counter" if store.is_postgres(db_both) else "sqlite_sequence"
    if store.is_postgres(db_both):
        db_both.execute("DELETE FROM change_log_counter")
    else:
        db_both.execute("DELETE FROM sqlite_sequence WHERE name = 'change_log'")
    assert [(f.code, f.where) for f in check.chain_checks(db_both)] == [("LOG-REMOVED", counter)]


def test_a_save_rolled_back_leaves_no_gap_in_the_log_on_either(db_both, store_at, capsys):
    """The log's counter rolls back with its save, as SQLite's sqlite_sequence does (issue 18:
    an identity sequence did not, and `ehkit check` read the gap as rows removed)."""
    write_some(db_both)
    (last,) = db_both.execute("SELECT max(id) FROM change_log").fetchone()
    with pytest.raises(RuntimeError, match="given up"), store.transaction(db_both):
        db_both.execute("UPDATE audits SET summary = 'rolled back' WHERE id = 5")
        assert db_both.execute("SELECT max(id) FROM change_log").fetchone() == (last + 1,)
        raise RuntimeError("given up")  # the save fails after its log rows were written
    assert check.chain_checks(db_both) == []
    with store.transaction(db_both):
        db_both.execute("UPDATE audits SET summary = 'kept' WHERE id = 5")
    assert [r[0] for r in db_both.execute("SELECT id FROM change_log WHERE id > ?", [last])
            ] == [last + 1]  # the next save's row follows on, no gap
    capsys.readouterr()
    assert cli.main(["check", "--db", str(store_at), "--quick"]) == 0
    assert "LOG-REMOVED" not in capsys.readouterr().out


def test_on_postgresql_the_log_counter_is_written_once_a_save_not_once_a_log_row(pg_server):
    """Issue 18's counter stays cheap: a save of hundreds of log rows writes its row once as
    the save goes (marked moving) and once as it commits, never once a row (a row updated
    again and again in one transaction slows each update: the reverted fix's draw)."""
    db = store.connect(pg_server.new_database())
    written = ("SELECT pg_stat_get_xact_tuples_updated(c) FROM (SELECT "
               "'change_log_counter'::regclass AS c) AS x")

    def add_agencies(n: int) -> None:  # a statement a row, as a form's saves are
        for i in range(n):
            db.execute("INSERT INTO agencies (name, kind, sector) VALUES (?, 'partner', "
                       "'Health')", [f"Agency {i}"])
    try:
        write_some(db)
        (last,) = db.execute("SELECT max(id) FROM change_log").fetchone()
        with pytest.raises(RuntimeError, match="given up"), store.transaction(db):
            add_agencies(200)
            raise RuntimeError("given up")
        assert db.execute("SELECT seq, moving FROM change_log_counter").fetchone() == (
            last, False)  # the save rolled back: so did its counter
        with store.transaction(db):
            (before,) = db.execute(written).fetchone()  # (kept until flushed, not a save's)
            with pytest.raises(psycopg.errors.DivisionByZero), store.transaction(db):
                db.execute("UPDATE audits SET summary = 'part' WHERE id = 5")
                db.execute("SELECT 1/0")  # a part given up (a savepoint), its marking too
            add_agencies(200)  # marks the counter again: the save goes on
            assert db.execute(written).fetchone()[0] - before == 2  # not 201 times
        assert db.execute("SELECT seq, moving FROM change_log_counter").fetchone() == (
            last + 200, False)
        assert [r[0] for r in db.execute("SELECT id FROM change_log WHERE id > ? ORDER BY id",
                                         [last])] == list(range(last + 1, last + 201))
        assert check.chain_checks(db) == []
    finally:
        db.close()


def test_on_postgresql_the_log_counter_follows_a_save_whose_deferred_checks_ran_early(
        pg_server):
    """SET CONSTRAINTS ALL IMMEDIATE (as ``ehkit copy`` runs) moves the counter mid-save: the
    save's later log rows mark it again, so its commit moves it past them too."""
    db = store.connect(pg_server.new_database())
    try:
        write_some(db)
        (last,) = db.execute("SELECT max(id) FROM change_log").fetchone()
        with store.transaction(db):
            db.execute("UPDATE audits SET summary = 'first' WHERE id = 5")
            db.execute("SET CONSTRAINTS ALL IMMEDIATE")
            assert db.execute("SELECT seq, moving FROM change_log_counter").fetchone() == (
                last + 1, False)
            db.execute("SET CONSTRAINTS ALL DEFERRED")
            db.execute("UPDATE audits SET summary = 'second' WHERE id = 5")
        assert db.execute("SELECT seq, moving FROM change_log_counter").fetchone() == (
            last + 2, False)
        assert check.chain_checks(db) == []
    finally:
        db.close()


@contextlib.contextmanager
def _made_before(number: int, url: str, tmp_path, monkeypatch):
    """A council's older store: ``url`` made with this ehkit's migrations before ``number``
    (its file and its PostgreSQL twin left out), some audits written, open until the end."""
    older = tmp_path / "migrations"
    shutil.copytree(store.MIGRATIONS_DIR, older)
    for f in [*older.glob(f"{number:04d}_*.sql"), *older.glob(f"postgresql/{number:04d}_*.sql")]:
        f.unlink()
    with monkeypatch.context() as m:
        m.setattr(store, "MIGRATIONS_DIR", older)
        m.setattr(postgres, "SCHEMA_DIR", older / "postgresql")
        db = store.connect(url)
        try:
            write_some(db)
            yield db
        finally:
            db.close()


def test_a_postgresql_store_made_before_the_counter_upgrades_and_keeps_its_cut_found(
        pg_server, tmp_path, monkeypatch):
    """Migration 0133 on a store whose log's ids came from the identity sequence: the counter
    starts where the sequence stood, so rows cut from the end before it are still found."""
    url = pg_server.new_database()
    with _made_before(133, url, tmp_path, monkeypatch) as db:
        assert "change_log_counter" not in db.table_names()
        (last,) = db.execute("SELECT max(id) FROM change_log").fetchone()
        db.execute("ALTER TABLE change_log DISABLE TRIGGER USER")  # the last row cut
        db.execute("DELETE FROM change_log WHERE id = ?", [last])
        db.execute("ALTER TABLE change_log ENABLE TRIGGER USER")
    db = store.connect(url)  # upgraded
    try:
        assert db.execute("SELECT seq FROM change_log_counter").fetchone() == (last,)
        assert [(f.code, f.where) for f in check.chain_checks(db)] == [
            ("LOG-REMOVED", f"change_log id {last}")]
        with store.transaction(db):
            db.execute("UPDATE audits SET summary = 'after' WHERE id = 5")
        assert db.execute("SELECT max(id) FROM change_log").fetchone() == (last + 1,)
    finally:
        db.close()


def _columns(db, view: str) -> list[str]:
    return [r[0] for r in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema ="
        " current_schema() AND table_name = ? ORDER BY ordinal_position", [view])]


def test_a_postgresql_store_made_before_0134_gets_its_grade_views_in_sqlites_words(
        pg_server, tmp_path, monkeypatch):
    """Migration 0134 on an older store: its twin drops the grade views, which are made
    again from SQLite's migration (the rule written once), now with the audit's date; and
    PostgreSQL's own narrow indexes of episodes are made."""
    url = pg_server.new_database()
    with _made_before(134, url, tmp_path, monkeypatch) as db:
        assert _columns(db, "final_overall") == ["audit_id", "grade"]
    db = store.connect(url)  # upgraded
    try:
        assert _columns(db, "final_overall") == ["audit_id", "grade", "audit_date"]
        assert _columns(db, "final_section_grades") == ["audit_id", "key", "grade", "audit_date"]
        assert _columns(db, "final_grades") == ["audit_id", "key", "grade"]
        assert db.execute("SELECT grade, audit_date FROM final_overall WHERE audit_id = 5"
                          ).fetchone() == (None, "2026-03-01")
        indexes = {r[0] for r in db.execute("SELECT indexname FROM pg_indexes WHERE"
                                            " tablename = 'episodes'")}
        assert {"episodes_closed_as", "episodes_began_as"} <= indexes
        assert check.migration_checks(db) == []
    finally:
        db.close()


def test_on_postgresql_check_finds_a_log_trigger_dropped_disabled_or_altered(pg_server):
    db = store.connect(pg_server.new_database())
    try:
        write_some(db)
        assert check.trigger_checks(db) == []
        db.execute("DROP TRIGGER log_children ON children")
        db.execute("ALTER TABLE answers DISABLE TRIGGER log_answers")
        db.execute("ALTER TABLE change_log DISABLE TRIGGER change_log_no_update")
        db.execute("DROP TRIGGER log_actions ON actions")  # back, logging one column less
        db.execute("CREATE TRIGGER log_actions AFTER INSERT OR UPDATE OR DELETE ON actions"
                   " FOR EACH ROW EXECUTE FUNCTION ehkit_log('audit_id', 'id', 'id')")
        # the counter's: off, the log's last rows could be cut unseen
        db.execute("ALTER TABLE change_log_counter DISABLE TRIGGER change_log_counted")
        found = check.trigger_checks(db)
        assert sorted((f.where, f.message.partition(":")[0]) for f in found) == [
            ("trigger change_log_counted", "disabled outside ehkit"),
            ("trigger change_log_no_update", "disabled outside ehkit"),
            ("trigger log_actions", "altered outside ehkit"),
            ("trigger log_answers", "disabled outside ehkit"),
            ("trigger log_children", "missing")]
        assert "cut from the end" in next(f.message for f in found
                                          if f.where == "trigger change_log_counted")
        db.execute("DROP TRIGGER change_log_counted ON change_log_counter")
        assert ("trigger change_log_counted", "missing") in [
            (f.where, f.message.partition(":")[0]) for f in check.trigger_checks(db)]
    finally:
        db.close()


def test_on_postgresql_a_change_made_while_its_trigger_was_off_is_found(pg_server, capsys):
    url = pg_server.new_database()
    db = store.connect(url)
    try:
        write_some(db)
        db.execute("ALTER TABLE children DISABLE TRIGGER log_children")
        db.execute("UPDATE children SET name = 'Renamed Quietly' WHERE id = 1")
        db.execute("ALTER TABLE children ENABLE TRIGGER log_children")
    finally:
        db.close()
    assert cli.main(["check", "--db", url]) == 1
    out = capsys.readouterr().out
    assert "LOG-UNLOGGED  children 1: name changed outside ehkit" in out
    assert "1 problem(s) found" in out


def test_on_postgresql_writers_take_turns_so_the_chain_never_forks(pg_server):
    url = pg_server.new_database()
    db = store.connect(url)
    base_rows(db)

    def saver(n: int) -> None:
        mine = store.connect(url)
        try:
            for i in range(15):
                with store.transaction(mine):
                    mine.execute("INSERT INTO children (episode_id, name) VALUES (1, ?)",
                                 [f"Child {n}-{i}"])
        finally:
            mine.close()

    threads = [threading.Thread(target=saver, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert db.execute("SELECT count(*) FROM children").fetchone()[0] == 1 + 8 * 15
        assert check.chain_checks(db) == []
    finally:
        db.close()


def test_with_a_log_key_postgresql_seals_the_chain_as_sqlite_does(pg_server, log_key,
                                                                  monkeypatch):
    url = pg_server.new_database()
    db = store.connect(url)
    try:
        write_some(db)
        hashes = [r[0] for r in db.execute("SELECT hash FROM change_log")]
        assert hashes and all(h.startswith(store.KEYED) for h in hashes)
        assert check.chain_checks(db) == []
    finally:
        db.close()
    monkeypatch.delenv("EHKIT_LOG_KEY")
    db = store.connect(url, read_only=True)
    try:
        assert [f.code for f in check.chain_checks(db)] == ["LOG-KEY"]
    finally:
        db.close()


# -- ehkit copy ----------------------------------------------------------------------------
def rows_of(db, table: str) -> list[tuple]:
    names, pk, _ = store.table_columns(db, table)
    listed = ", ".join(map(store._q, names))
    return [tuple(r) for r in db.execute(
        f"SELECT {listed} FROM {store._q(table)} ORDER BY {', '.join(map(store._q, pk))}")]


def test_copy_moves_a_store_change_log_included_and_check_passes(demo_db_path, pg_server,
                                                                 monkeypatch, capsys):
    url = pg_server.new_database()
    assert cli.main(["copy", "--from", str(demo_db_path), "--to", url]) == 0
    assert "(verified)" in capsys.readouterr().out
    lite, pg = store.connect(demo_db_path, read_only=True), store.connect(url)
    try:
        for table in [*store.logged_tables(lite), "change_log"]:
            assert rows_of(pg, table) == rows_of(lite, table), table
        assert len(rows_of(pg, "change_log")) > 1000 and len(rows_of(pg, "audits")) > 50
        for view in ("final_grades", "counted_audits"):  # the grade that counts, the same
            sql = f"SELECT * FROM {view} ORDER BY 1, 2"
            assert [tuple(r) for r in pg.execute(sql)] == [tuple(r) for r in lite.execute(sql)]
        # The copy goes on where the store left off: the next id, the chain unbroken.
        (last_child,) = lite.execute("SELECT max(id) FROM children").fetchone()
        with store.transaction(pg):
            pg.execute("INSERT INTO children (episode_id, name) VALUES (1, 'Sam Newchild')")
        assert pg.execute("SELECT max(id) FROM children").fetchone()[0] == last_child + 1
        assert check.chain_checks(pg) == []
    finally:
        lite.close()
        pg.close()
    monkeypatch.setenv("EHKIT_DB", url)  # EHKIT_DB names it as --db does
    assert cli.main(["check"]) == 0
    assert "no problems found" in capsys.readouterr().out


def test_copy_refuses_a_database_that_holds_data(demo_db_path, pg_server, capsys):
    url = pg_server.new_database()
    assert cli.main(["copy", "--from", str(demo_db_path), "--to", url]) == 0
    capsys.readouterr()
    assert cli.main(["copy", "--from", str(demo_db_path), "--to", url]) == 2
    err = capsys.readouterr().err
    assert "already holds data" in err and "copy only into an empty database" in err
    assert "Traceback" not in err


def test_copy_of_a_store_whose_log_was_cut_is_refused_and_nothing_is_kept(
        demo_db_path, pg_server, tmp_path, capsys):
    cut = tmp_path / "cut.db"
    cut.write_bytes(demo_db_path.read_bytes())
    con = raw(cut)
    con.execute("DROP TRIGGER change_log_no_delete")
    con.execute("DELETE FROM change_log WHERE id = 20")
    con.close()
    url = pg_server.new_database()
    assert cli.main(["copy", "--from", str(cut), "--to", url]) == 2
    err = capsys.readouterr().err
    assert "does not verify" in err and "LOG-REMOVED" in err and "nothing was copied" in err
    db = store.connect(url)
    try:
        assert db.execute("SELECT count(*) FROM change_log").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM episodes").fetchone()[0] == 0
    finally:
        db.close()


def test_copy_needs_a_postgresql_target(demo_db_path, tmp_path, capsys):
    assert cli.main(["copy", "--from", str(demo_db_path), "--to", str(tmp_path / "x.db")]) == 2
    assert "is not a PostgreSQL URL" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


def test_an_unreachable_postgresql_store_is_one_line_without_its_password(tmp_path, capsys):
    url = f"postgresql://ehkit:hunter2@/nowhere?host={tmp_path}"
    assert cli.main(["check", "--db", url]) == 2
    err = capsys.readouterr().err
    assert "cannot be reached" in err and "postgresql://ehkit:***@/nowhere" in err
    assert "hunter2" not in err and "Traceback" not in err and err.count("\n") == 1


# -- the schema and the adapter ------------------------------------------------------------
def test_the_schema_is_the_same_on_both(pg_server, tmp_path):
    lite, pg = store.connect(tmp_path / "ehkit.db"), store.connect(pg_server.new_database())
    try:
        tables = sorted(t for t in lite.table_names() if not t.startswith("sqlite_"))
        assert "sqlite_sequence" in lite.table_names()  # the log's counter: PostgreSQL's is
        assert sorted({*tables, "change_log_counter"}) == pg.table_names()  # a table of ours
        for table in tables:
            expected = store.table_columns(lite, table)
            assert store.table_columns(pg, table) == expected, table
        sqlite_indexes = {r[0] for r in lite.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
        pg_indexes = {r[0] for r in pg.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND"
            " indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'")}
        assert pg_indexes == sqlite_indexes | postgres.OWN_INDEXES
        assert pg.view_names() == sorted(lite.view_names())
        assert (sorted(postgres.change_log_trigger_sql(pg))
                == sorted({f"log_{t}" for t in store.logged_tables(lite)}))
    finally:
        lite.close()
        pg.close()


def test_every_migration_after_the_postgresql_baseline_has_its_postgresql_twin():
    base = postgres.baseline_number()
    assert base <= max(n for n, _, _ in store.migrations())
    missing = [f.name for n, _, f in store.migrations()
               if n > base and not (postgres.SCHEMA_DIR / f.name).exists()]
    assert missing == [], "write each in ehkit/migrations/postgresql/, or move the baseline on"


@pytest.mark.parametrize("sqlite_sql,named,psycopg_sql", [
    ("SELECT * FROM t WHERE a = ? AND b = ?", False, "SELECT * FROM t WHERE a = %s AND b = %s"),
    ("SELECT '?', \"a?\" FROM t WHERE a = ? -- why?\n", False,
     "SELECT '?', \"a?\" FROM t WHERE a = %s -- why?\n"),
    ("SELECT strftime('%Y', x), a % 2 FROM t WHERE a = ?", False,
     "SELECT strftime('%%Y', x), a %% 2 FROM t WHERE a = %s"),
    ("SELECT x::text, '12:30' FROM t WHERE a = :on AND b = :on", True,
     "SELECT x::text, '12:30' FROM t WHERE a = %(on)s AND b = %(on)s"),
    ("SELECT 'it''s ?' WHERE a = ?", False, "SELECT 'it''s ?' WHERE a = %s"),
])
def test_sqlite_placeholders_become_psycopgs(sqlite_sql, named, psycopg_sql):
    assert postgres.placeholders(sqlite_sql, named) == psycopg_sql


# -- an audit saved and loaded, with the version check that loses no update ------------------
STAMPS = ("created_at", "updated_at")


def test_an_audit_saves_and_loads_the_same_on_both(pg_server, tmp_path):
    from builders import audit_form

    from ehkit import audits

    loaded = []
    for where in (tmp_path / "ehkit.db", pg_server.new_database()):
        db = store.connect(where)
        try:
            base_rows(db)
            first = audits.save_and_load(db, audit_form(text=AWKWARD))
            again = audits.save_and_load(db, {**first, "summary": "Second look",
                                              "actions": first["actions"][:1]})
            assert again["version"] > first["version"]
            loaded.append({k: v for k, v in again.items() if k not in STAMPS})
        finally:
            db.close()
    assert loaded[1] == loaded[0]
    assert loaded[0]["summary"] == "Second look" and loaded[0]["overall_reasons"] == AWKWARD


def test_a_save_over_someone_elses_newer_save_is_refused_on_both(db_both):
    from builders import audit_form

    from ehkit import audits

    base_rows(db_both)
    audit_id = audits.save_draft(db_both, audit_form())
    mine, theirs = audits.load(db_both, audit_id), audits.load(db_both, audit_id)
    audits.save_draft(db_both, {**theirs, "summary": "Theirs"}, audit_id=audit_id)
    before = db_both.execute("SELECT count(*) FROM change_log").fetchone()[0]
    with pytest.raises(audits.StaleRecord, match="since you opened it"):
        audits.save_draft(db_both, {**mine, "summary": "Mine"}, audit_id=audit_id)
    assert audits.load(db_both, audit_id)["summary"] == "Theirs"
    assert db_both.execute("SELECT count(*) FROM change_log").fetchone()[0] == before


def test_of_savers_racing_from_the_same_version_one_wins_and_none_is_lost(store_at):
    from builders import audit_form

    from ehkit import audits

    db = store.connect(store_at)
    base_rows(db)
    audit_id = audits.save_draft(db, audit_form())
    seen = audits.load(db, audit_id)
    savers, start, outcome = 6, threading.Barrier(6), {}

    def saver(n: int) -> None:
        mine = store.connect(store_at)
        try:
            start.wait(timeout=60)
            audits.save_draft(mine, {**seen, "summary": f"Saver {n}"}, audit_id=audit_id)
            outcome[n] = "saved"
        except audits.StaleRecord:
            outcome[n] = "refused"
        finally:
            mine.close()

    threads = [threading.Thread(target=saver, args=(n,)) for n in range(savers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        winners = [n for n, o in outcome.items() if o == "saved"]
        assert len(outcome) == savers and len(winners) == 1
        assert audits.load(db, audit_id)["summary"] == f"Saver {winners[0]}"
        assert check.chain_checks(db) == []
    finally:
        db.close()


def test_a_read_only_postgresql_store_refuses_a_copy_in_one_line(demo_db_path, pg_server,
                                                                 capsys):
    url = pg_server.new_database()
    db = store.connect(url)  # the schema made
    (name,) = db.execute("SELECT current_database()").fetchone()
    db.close()
    admin = psycopg.connect(pg_server.url("postgres"), autocommit=True)
    admin.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
    admin.close()
    assert cli.main(["copy", "--from", str(demo_db_path), "--to", url]) == 2
    err = capsys.readouterr().err
    assert "the PostgreSQL store is read-only" in err and "nothing was saved" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_a_lost_connection_is_told_as_such_and_nothing_is_saved(pg_server):
    url = pg_server.new_database()
    db = store.connect(url)
    try:
        base_rows(db)
        (pid,) = db.execute("SELECT pg_backend_pid()").fetchone()
        admin = psycopg.connect(pg_server.url("postgres"), autocommit=True)
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        admin.close()
        with pytest.raises(store.StoreError, match="connection to the PostgreSQL store was lost"
                           "|PostgreSQL server was shut down"), store.transaction(db):
            db.execute("INSERT INTO children (episode_id, name) VALUES (1, 'Never Saved')")
    finally:
        db.close()
    again = store.connect(url)
    try:
        assert again.execute("SELECT count(*) FROM children").fetchone()[0] == 1
    finally:
        again.close()


# -- a bulk insert, logged together -------------------------------------------------------
def bulk_children(db) -> None:
    base_rows(db)
    with store.acting_as(actor="loader"), store.transaction(db):
        store.bulk_insert(db, "children", ["episode_id", "name", "date_of_birth"],
                          [(1, f"{AWKWARD} {n}", None if n % 3 else "2019-05-0" + str(n % 9 + 1))
                           for n in range(10)])


def test_a_bulk_insert_is_logged_together_the_same_on_both(pg_server, tmp_path, monkeypatch):
    monkeypatch.setattr(store, "BULK_CHUNK", 4)
    lite, pg = store.connect(tmp_path / "ehkit.db"), store.connect(pg_server.new_database())
    try:
        for db in (lite, pg):
            bulk_children(db)
            assert check.chain_checks(db) == [] and check.replay_checks(db) == []
            assert check.trigger_checks(db) == []  # the insert trigger back in place
        assert logged(pg) == logged(lite)
        together = [r for r in logged(pg) if r[2] == "children" and r[3] is None]
        assert len(together) == 3  # ids 2-11 in chunks of 4 ids: 2-5, 6-9, 10-11
        with store.transaction(pg):  # a later change to a bulk row is logged on its own
            pg.execute("UPDATE children SET name = 'Renamed' WHERE id = 5")
        assert logged(pg)[-1][2:8] == ("children", "5", None, "name", f"{AWKWARD} 3", "Renamed")
        assert check.replay_checks(pg) == []
    finally:
        lite.close()
        pg.close()


def test_on_postgresql_a_bulk_insert_that_changes_other_rows_is_refused(pg_server):
    db = store.connect(pg_server.new_database())
    try:
        base_rows(db)
        before = db.execute("SELECT count(*) FROM change_log").fetchone()[0]
        with pytest.raises(RuntimeError, match="may only add rows after its last id"), \
                store.transaction(db), store.logged_together(db, "children"):
            db.execute("INSERT INTO children (episode_id, name) VALUES (1, 'Ann Added')")
            db.execute("UPDATE children SET name = 'Changed Unlogged' WHERE id = 1")
        assert db.execute("SELECT name FROM children").fetchall() == [("Kit Testchild",)]
        assert db.execute("SELECT count(*) FROM change_log").fetchone()[0] == before
        assert check.trigger_checks(db) == []
    finally:
        db.close()


def test_a_new_store_is_made_only_where_text_sorts_as_in_sqlite(demo_db_path, pg_server,
                                                                capsys):
    admin = psycopg.connect(pg_server.url("postgres"), autocommit=True)
    admin.execute("CREATE DATABASE by_language LOCALE_PROVIDER icu ICU_LOCALE 'en-GB'"
                  " LOCALE 'C' TEMPLATE template0")
    admin.close()
    url = pg_server.url("by_language")
    assert cli.main(["copy", "--from", str(demo_db_path), "--to", url]) == 2
    err = capsys.readouterr().err
    assert "sorts text by a language's rules" in err and "--locale=C" in err
    with psycopg.connect(url) as con:  # nothing made there
        assert con.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                           ).fetchone()[0] == 0


def test_a_store_sealed_with_the_log_key_is_copied_and_its_chain_goes_on_sealed(
        pg_server, tmp_path, log_key, capsys):
    source = tmp_path / "keyed.db"
    lite = store.connect(source)
    write_some(lite)
    lite.close()
    url = pg_server.new_database()
    assert cli.main(["copy", "--from", str(source), "--to", url]) == 0
    pg = store.connect(url)
    try:
        with store.transaction(pg):  # PostgreSQL's HMAC goes on from Python's
            pg.execute("UPDATE children SET name = 'Kit Renamed' WHERE id = 1")
        hashes = [r[0] for r in pg.execute("SELECT hash FROM change_log ORDER BY id")]
        assert all(h.startswith(store.KEYED) for h in hashes) and len(hashes) > 5
        assert check.chain_checks(pg) == []
    finally:
        pg.close()
    assert cli.main(["check", "--db", url]) == 0, capsys.readouterr().out


# -- backup and restore: pg_dump and pg_restore, with the same checks ------------------------
def test_a_postgresql_store_is_backed_up_with_pg_dump_and_restored_with_pg_restore(
        demo_db_path, pg_server, tmp_path, capsys):
    url, other = pg_server.new_database(), pg_server.new_database()
    assert cli.main(["copy", "--from", str(demo_db_path), "--to", url]) == 0
    assert cli.main(["backup", "--db", url, "--to", str(tmp_path / "backups")]) == 0
    out = capsys.readouterr().out
    (made,) = (tmp_path / "backups").glob("*.dump")
    lite = store.connect(demo_db_path, read_only=True)
    try:
        head = check.head(lite)
    finally:
        lite.close()
    assert f"{made} (" in out and f"chain head {head[1]}" in out
    assert (tmp_path / "backups" / "ehkit-anchors.txt").read_text().count(head[1]) == 1
    assert not list((tmp_path / "backups").glob("*.partial"))
    assert cli.main(["backup", "--db", other, "--restore", str(made)]) == 0
    restored = store.connect(other)
    try:
        assert check.head(restored) == head
        assert rows_of(restored, "audits") == rows_of(store.connect(url), "audits")
        assert check.trigger_checks(restored) == [] and check.chain_checks(restored) == []
    finally:
        restored.close()
    assert cli.main(["check", "--db", other]) == 0
    capsys.readouterr()
    # Into a database that holds a store: refused, nothing replaced.
    assert cli.main(["backup", "--db", other, "--restore", str(made)]) == 2
    assert "is not empty" in capsys.readouterr().err


def test_a_postgresql_backup_needs_a_folder_and_a_restore_needs_a_backup(pg_server, tmp_path,
                                                                         capsys):
    url = pg_server.new_database()
    store.connect(url).close()
    assert cli.main(["backup", "--db", url]) == 2
    assert "give one with --to" in capsys.readouterr().err
    not_a_dump = tmp_path / "notes.dump"
    not_a_dump.write_text("not a backup")
    assert cli.main(["backup", "--db", pg_server.new_database(), "--restore",
                     str(not_a_dump)]) == 2
    err = capsys.readouterr().err
    assert "is not a backup" in err and "Traceback" not in err and err.count("\n") == 1


# -- sixteen processes saving at once ------------------------------------------------------
SAVERS, SAVES_EACH = 16, 12


def _saver(url: str, worker: int, results) -> None:
    """Save whole audits through ehkit.audits, opening each again now and then to change it."""
    from builders import audit_form

    from ehkit import audits

    saved, errors = [], []
    database = store.connect(url)
    try:
        for n in range(SAVES_EACH):
            try:
                audit_id = audits.save_draft(database, audit_form(text=f"worker {worker} {n}"))
                if n % 4 == 0:
                    again = audits.load(database, audit_id)
                    audits.save_draft(database, {**again, "summary": f"{worker} {n}, edited"},
                                      audit_id=audit_id)
                saved.append(audit_id)
            except Exception:  # any error here would have reached an auditor
                import traceback

                errors.append(traceback.format_exc())
    finally:
        database.close()
        results.put((saved, errors))


@pytest.mark.slow
def test_sixteen_processes_saving_at_once_on_postgresql_lose_nothing(pg_server):
    import multiprocessing as mp

    from builders import complete_audit

    url = pg_server.new_database()
    database = store.connect(url)
    base_rows(database)
    database.close()
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    workers = [ctx.Process(target=_saver, args=(url, w, results)) for w in range(SAVERS)]
    for w in workers:
        w.start()
    reports = [results.get(timeout=280) for _ in workers]
    for w in workers:
        w.join(60)
    errors = [e for _, errs in reports for e in errs]
    assert errors == [], errors[0]
    saved = [i for ids, _ in reports for i in ids]
    assert len(saved) == len(set(saved)) == SAVERS * SAVES_EACH
    database = store.connect(url)
    try:
        whole = complete_audit()
        per_audit = database.execute(
            "SELECT (SELECT count(*) FROM answers WHERE audit_id = a.id),"
            " (SELECT count(*) FROM checklist_answers WHERE audit_id = a.id), count(*)"
            " FROM audits a GROUP BY 1, 2").fetchall()
        assert per_audit == [(len(whole["answers"]), len(whole["checklist"]), len(saved))]
        edited = database.execute("SELECT count(*) FROM audits WHERE summary LIKE '%, edited'"
                                  ).fetchone()[0]
        assert edited == SAVERS * -(-SAVES_EACH // 4)
        assert check.chain_checks(database) == [] and check.replay_checks(database) == []
    finally:
        database.close()


# -- an audit's whole life -----------------------------------------------------------------
def a_whole_life(db) -> dict:
    """Save, find, submit, moderate, reopen with a reason, save again, resubmit: what each
    step leaves (the figures' view of the grade that counts among it)."""
    from builders import add_moderator, audit_form

    from ehkit import audits

    day = dt.date(2026, 11, 24)
    base_rows(db)
    add_moderator(db)
    audit_id = audits.save_draft(db, audit_form())
    seen = {"found": [r["id"] for r in audits.find(db, ehm_number=" ehm1",
                                                     status=["draft", "submitted"]).rows]}
    audits.submit(db, audit_id, today=day)
    audits.moderate(db, audit_id, 3, {}, {}, on=day)
    seen["moderated"] = final_grades(db, audit_id)
    audits.reopen(db, audit_id, "New evidence on the file")
    seen["reopened"] = final_grades(db, audit_id)
    again = audits.load(db, audit_id)
    audits.save_draft(db, {**again, "overall_grade": 3, "overall_reasons": "Less evidence"})
    audits.submit(db, audit_id, today=day)
    whole = audits.load(db, audit_id)
    seen["audit"] = {k: v for k, v in whole.items() if k not in (*STAMPS, "submitted_at")}
    seen["final"] = final_grades(db, audit_id)
    seen["log"] = [r[2:] for r in logged(db)]  # without the login and actor
    seen["note"] = audits.case_note(db, audit_id)
    return seen


def final_grades(db, audit_id: int) -> list[tuple]:
    return [tuple(r) for r in db.execute(
        "SELECT key, grade FROM final_grades WHERE audit_id = ? ORDER BY key", [audit_id])]


def test_an_audits_whole_life_is_the_same_on_both(pg_server, tmp_path):
    lives = []
    for where in (tmp_path / "ehkit.db", pg_server.new_database()):
        db = store.connect(where)
        try:
            lives.append(a_whole_life(db))
        finally:
            db.close()
    sqlite_life, postgresql_life = lives
    assert sqlite_life["found"] == [1] and dict(sqlite_life["final"])["overall"] == 3
    assert sqlite_life["moderated"] == sqlite_life["reopened"] != sqlite_life["final"]
    for step in sqlite_life:
        if step == "log":  # the same rows, but times in the audit's own columns differ
            assert len(postgresql_life["log"]) == len(sqlite_life["log"])
            assert [r[:4] for r in postgresql_life["log"]] == [r[:4] for r in sqlite_life["log"]]
        else:
            assert postgresql_life[step] == sqlite_life[step], step


def test_check_of_an_empty_postgresql_database_says_there_is_no_store(pg_server, capsys):
    url = pg_server.new_database()
    assert cli.main(["check", "--db", url]) == 2
    err = capsys.readouterr().err
    assert "no ehkit store in" in err and "ehkit copy --from" in err
    with psycopg.connect(url) as con:  # and made none
        assert con.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                           ).fetchone()[0] == 0


def data_quality_cases(db) -> None:
    """An episode with no children, an action past due that nobody owns, and a moderation of
    a grade the audit no longer holds (changed behind it, as an older ehkit allowed)."""
    from builders import add_moderator, audit_form, episode_row

    from ehkit import audits

    day = dt.date(2026, 11, 24)
    base_rows(db)
    add_moderator(db)
    with store.transaction(db):
        db["episodes"].insert(episode_row(2, "2026-02-01", ehm_number="EHM2"))
    audit_id = audits.save_draft(db, audit_form())
    audits.submit(db, audit_id, today=day)
    audits.moderate(db, audit_id, 3, {}, {}, on=day)
    with store.transaction(db):
        db.execute("UPDATE audits SET overall_grade = 1 WHERE id = ?", [audit_id])
        db.execute("UPDATE actions SET owner_id = NULL, by_whom = NULL, due_date = '2026-06-10'"
                   " WHERE audit_id = ?", [audit_id])


def test_the_data_quality_rules_find_the_same_on_both(pg_server, tmp_path):
    found = []
    for where in (tmp_path / "ehkit.db", pg_server.new_database()):
        db = store.connect(where)
        try:
            data_quality_cases(db)
            found.append(check.data_quality(db, today=dt.date(2026, 11, 24)))
        finally:
            db.close()
    assert found[1] == found[0]
    assert {"DQ-EPISODE-NO-CHILDREN", "DQ-ACTION-NO-OWNER", "DQ-MODERATION-STALE"} <= {
        f.code for f in found[0]}


def test_on_postgresql_a_row_loaded_with_the_foreign_keys_off_is_found(pg_server):
    db = store.connect(pg_server.new_database())
    try:
        write_some(db)
        assert check.database_checks(db) == []
        db.execute("SET session_replication_role = replica")  # a superuser's bulk load
        db.execute("INSERT INTO children (id, episode_id, name) VALUES (7, 99, 'Orphan Row')")
        db.execute("INSERT INTO answers (audit_id, key) VALUES (98, '1')")
        db.execute("SET session_replication_role = DEFAULT")
        assert [(f.code, f.where, f.message) for f in check.database_checks(db)] == [
            ("DB-FOREIGN-KEY", "answers 98/1", "refers to a row of audits that does not exist"),
            ("DB-FOREIGN-KEY", "children 7", "refers to a row of episodes that does not exist")]
    finally:
        db.close()


def test_an_audits_history_is_the_same_on_both(pg_server, tmp_path, monkeypatch, capsys):
    """Its own changes, and the bulk inserts that hold rows of it, cut down to those rows."""
    from builders import complete_audit

    from ehkit import history

    monkeypatch.setattr(store, "BULK_CHUNK", 2)
    audit = {**complete_audit()["audit"], "created_at": "2026-03-02T09:00:00Z",
             "updated_at": "2026-03-02T09:00:00Z"}
    told = []
    for where in (tmp_path / "ehkit.db", pg_server.new_database()):
        db = store.connect(where)
        try:
            base_rows(db)
            with store.acting_as(actor="loader"), store.transaction(db):
                store.bulk_insert(db, "audits", ["id", *audit],
                                  [(i, *audit.values()) for i in (1, 2, 3)])
                store.bulk_insert(db, "actions", ["audit_id", "number", "action"],
                                  [(i, 1, f"Action for audit {i}") for i in (1, 2, 3)])
            with store.transaction(db):
                db.execute("UPDATE audits SET summary = ? WHERE id = 2", [AWKWARD])
        finally:
            db.close()
        assert cli.main(["history", "--db", str(where), "2"]) == 0
        lines = [line.split("  ", 1)[1] for line in capsys.readouterr().out.splitlines()]
        db = store.connect(where, read_only=True)
        try:
            told.append((lines, history.state_at(db, 2)))
            assert history.state_at(db, 2, "2000-01-01T00:00:00Z") == {}
            assert history.state_at(db, 2, "2999-01-01T00:00:00Z") == told[-1][1]
        finally:
            db.close()
    assert told[1] == told[0]
    lines, state = told[0]
    assert [line.split("  ", 1)[1] for line in lines[:2]] == [
        "audits: 1 row(s) added", "actions: 1 row(s) added"]
    assert state["audits"]["2"]["summary"] == AWKWARD
    assert state["actions"] == {"2": {"id": 2, "audit_id": 2, "number": 1,
                                      "action": "Action for audit 2", **dict.fromkeys(
                                          ("by_whom", "owner_id", "due_date", "discussed_date",
                                           "agreed_by", "completed_date", "completion_note"))}}


def test_the_demo_store_is_the_same_on_both_back_ends(demo_both, demo_db_path):
    """The `demo_both` fixture the other tests read: on PostgreSQL, the copy of the SQLite demo."""
    lite, either = store.connect(demo_db_path, read_only=True), store.connect(demo_both)
    try:
        assert store.is_postgres(either) == demo_both.startswith("postgresql://")
        for table in ("episodes", "audits", "answers"):
            assert rows_of(either, table) == rows_of(lite, table) and rows_of(lite, table), table
    finally:
        lite.close()
        either.close()


def test_upgrade_brings_a_postgresql_store_up_to_a_newer_ehkit_backing_it_up_first(
        pg_server, tmp_path, monkeypatch, capsys):
    """A store made by this ehkit, then an ehkit with one more migration (and its twin)."""
    import shutil

    url = pg_server.new_database()
    store.connect(url).close()
    newer = tmp_path / "migrations"
    shutil.copytree(store.MIGRATIONS_DIR, newer)
    last = max(n for n, _, _ in store.migrations())
    name = f"{last + 10:04d}_agency_notes.sql"
    (newer / name).write_text("-- A note on each agency\nALTER TABLE agencies ADD COLUMN note "
                              "TEXT;\n", encoding="utf-8")
    (newer / "postgresql" / name).write_text("-- A note on each agency\nALTER TABLE agencies "
                                             "ADD COLUMN note text;\n", encoding="utf-8")
    monkeypatch.setattr(store, "MIGRATIONS_DIR", newer)
    monkeypatch.setattr(postgres, "SCHEMA_DIR", newer / "postgresql")
    assert cli.main(["init", str(tmp_path / "work")]) == 0
    monkeypatch.setenv("EHKIT_HOME", str(tmp_path / "work"))
    capsys.readouterr()

    assert cli.main(["upgrade", "--db", url]) == 0
    out = capsys.readouterr().out
    (kept,) = (tmp_path / "work" / "backups").glob("*.dump")
    assert f"upgraded {url} for ehkit" in out and f"kept in {kept}" in out
    assert f"{last + 10:04d} agency_notes: A note on each agency" in out
    database = store.connect(url)
    try:
        with store.transaction(database):  # the new column is logged as every other is
            database.execute("INSERT INTO agencies (name, kind, sector, note) VALUES "
                             "('Oak Hall', 'partner', 'Health', 'new')")
        assert check.chain_checks(database) == []
        (logged,) = database.execute("SELECT new FROM change_log WHERE table_name = 'agencies' "
                                     "ORDER BY id DESC LIMIT 1").fetchone()
        assert '"note": "new"' in logged or '"note":"new"' in logged
    finally:
        database.close()
    assert cli.main(["upgrade", "--db", url]) == 0
    assert "is up to date (ehkit" in capsys.readouterr().out


def test_a_migration_that_cannot_be_applied_is_said_in_words_with_nothing_changed(pg_server):
    """A store whose schema already has a migration's change, unrecorded (made by hand):
    the upgrade stops in words, not psycopg's raw error, and nothing is changed."""
    url = pg_server.new_database()
    db = store.connect(url)
    try:
        db.execute("DELETE FROM schema_migrations WHERE number = 131")
        before = store.recorded_migrations(db.conn)
    finally:
        db.close()
    with pytest.raises(store.StoreError) as refused:
        store.connect(url)
    said = str(refused.value)
    assert said.startswith("migration 0131 (cases_hold_ids) could not be applied")
    assert "nothing was changed" in said and "ehkit check" in said
    db = store.connect(url, migrate=False)
    try:
        assert store.recorded_migrations(db.conn) == before and 131 not in before
    finally:
        db.close()
