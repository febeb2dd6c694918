"""The reports' speed on PostgreSQL (issue 18): a bulk load leaves the planner's statistics
gathered (``ehkit copy`` and ``ehkit demo`` ANALYZE what they wrote, so a report run straight
after is planned for the rows there, not for empty tables), and what a report reads twice is
read once. Only invented people."""

from __future__ import annotations

from ehkit import cli, metrics, periods
from ehkit import db as store


def unanalyzed(url: str) -> dict[str, int]:
    """{table: rows} of the tables holding rows that no ANALYZE has read (autovacuum's own,
    which may come any time, is not counted), and whose planner estimate is not their count."""
    db = store.connect(url)
    try:
        out = {}
        for table in db.table_names():
            (rows,) = db.execute(f"SELECT count(*) FROM {store._q(table)}").fetchone()
            (analyzed, estimate) = db.execute(
                "SELECT s.last_analyze IS NOT NULL, c.reltuples FROM pg_stat_user_tables s"
                " JOIN pg_class c ON c.oid = s.relid WHERE s.relname = ?", [table]).fetchone()
            if rows and not (analyzed and estimate == rows):
                out[table] = rows
        return out
    finally:
        db.close()


def test_a_copy_into_postgresql_gathers_the_statistics(demo_db_path, pg_server, capsys):
    url = pg_server.new_database()
    # A new store: only its migrations' record and its log's counter, never analyzed (too
    # few rows for autovacuum)
    assert set(unanalyzed(url)) == {"schema_migrations", "change_log_counter"}
    assert cli.main(["copy", "--from", str(demo_db_path), "--to", url]) == 0
    assert "(verified)" in capsys.readouterr().out
    db = store.connect(url)
    try:
        assert db["episodes"].count == 400 and db["answers"].count > 1000
    finally:
        db.close()
    assert unanalyzed(url) == {}


def test_demo_on_postgresql_gathers_the_statistics(pg_server, capsys):
    url = pg_server.new_database()
    assert cli.main(["demo", "--db", url, "--episodes", "60", "--until", "2026-10-31"]) == 0
    capsys.readouterr()
    assert store.connect(url)["episodes"].count == 60
    assert unanalyzed(url) == {}


def test_the_actions_read_once_for_a_month_are_not_changed_by_their_readers(demo_both):
    """The monthly report's poor audits and overdue actions share one reading of every
    action as at the month end (remembered): neither's additions show in the other's."""
    db = store.connect(demo_both)
    try:
        month = periods.parse("2026-09")
        first = metrics.actions_as_at(db, month.end)
        as_read = [dict(r) for r in first]
        overdue = metrics.overdue_actions(db, month)
        poor = metrics.poor_audits(db, month)
        assert overdue and all(r["days_overdue"] > 0 for r in overdue)
        assert any(p["actions"] for p in poor)
        again = metrics.actions_as_at(db, month.end)
        assert again[0] is first[0]  # remembered: the same rows, not read again
        assert again == as_read  # ... and as read: no days_overdue, nothing added
        assert not any("days_overdue" in a for p in poor for a in p["actions"])
    finally:
        db.close()
