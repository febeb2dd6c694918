"""A bulk load into PostgreSQL leaves the planner's statistics gathered (issue 18, the
reports' speed): ``ehkit copy`` and ``ehkit demo`` ANALYZE what they wrote, so a report run
straight after is planned for the rows there, not for empty tables. Only invented people."""

from __future__ import annotations

from ehkit import cli
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
    # A new store: only its migrations' record, never analyzed (too few rows for autovacuum)
    assert set(unanalyzed(url)) == {"schema_migrations"}
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
