"""`ehkit check` on PostgreSQL: PostgreSQL's own checks (amcheck, page checksums) where
SQLite's integrity_check has no meaning, run as ehkit's login: the database's owner, not a
superuser. What was checked, and what could not be and why, is said in the output."""

from __future__ import annotations

import psycopg
import pytest
from builders import base_rows

from ehkit import check, cli
from ehkit import db as store
from ehkit.pg_server import Server

APP = "council_app"  # ehkit's login: owns its database, is not a superuser


@pytest.fixture
def own_server():
    """A server of this test's own: one test damages its files."""
    server = Server()
    yield server
    server.stop()


def owned_store(server) -> tuple[str, psycopg.Connection]:
    """A store in a database ehkit's login owns; the superuser's connection to it (the DBA)."""
    admin = psycopg.connect(server.url("postgres"), autocommit=True)
    if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP]).fetchone():
        admin.execute(f"CREATE ROLE {APP} LOGIN")
    n = admin.execute("SELECT count(*) FROM pg_database").fetchone()[0]
    admin.execute(f"CREATE DATABASE owned_{n} OWNER {APP}")
    admin.close()
    url = server.url(f"owned_{n}").replace(f"//{'ehkit'}@", f"//{APP}@")
    db = store.connect(url)
    try:
        assert db.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                          ).fetchone() == (False,)
        base_rows(db)
    finally:
        db.close()
    return url, psycopg.connect(server.url(f"owned_{n}"), autocommit=True)


def checked(url, capsys, *more) -> tuple[int, str]:
    found = cli.main(["check", "--db", url, *more])
    return found, capsys.readouterr().out


def test_check_says_amcheck_is_missing_then_not_granted_then_checks_every_table_and_index(
        pg_server, capsys):
    url, dba = owned_store(pg_server)
    try:
        found, out = checked(url, capsys)
        assert found == 0 and "no problems found" in out
        assert "amcheck is not installed in this database. Ask your DBA" in out
        assert "page checksums off" in out and "Traceback" not in out
        advice = out.split("superuser in it: ", 1)[1].split(")\n", 1)[0]
        dba.execute("CREATE EXTENSION amcheck")
        found, out = checked(url, capsys)
        assert found == 0 and f"amcheck is installed but ehkit's login {APP} may not run" in out
        dba.execute(advice)  # the DBA runs what the check asked for, word for word
        found, out = checked(url, capsys)
        tables = dba.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                             ).fetchone()[0]
        indexes = dba.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"
                              ).fetchone()[0]
        assert found == 0 and tables > 20 and indexes > tables
        assert (f"amcheck checked {tables} tables and {indexes} indexes (and every row in each "
                "index)") in out
        assert "(--quick: not every row in each index)" in checked(url, capsys, "--quick")[1]
    finally:
        dba.close()


def test_a_damaged_index_is_a_finding_naming_it_not_a_raw_error(own_server, capsys):
    url, dba = owned_store(own_server)
    try:
        dba.execute("CREATE EXTENSION amcheck")
        dba.execute(f"GRANT EXECUTE ON FUNCTION bt_index_check(regclass, boolean) TO {APP}")
        dba.execute(f"GRANT EXECUTE ON FUNCTION verify_heapam(regclass, boolean, boolean, text,"
                    f" bigint, bigint) TO {APP}")
        (file,) = dba.execute("SELECT pg_relation_filepath('agencies_pkey')").fetchone()
    finally:
        dba.close()
    own_server.stop(keep=True)
    with open(own_server.data / file, "r+b") as index:  # its first leaf page overwritten
        index.seek(8192)
        index.write(b"\xff" * 8192)
    own_server.start()
    found, out = checked(url, capsys)
    assert found >= 1 and "Traceback" not in out
    assert [line for line in out.splitlines() if line.startswith("DB-INTEGRITY  agencies_pkey:")]
    assert "restore the latest good backup" in out
    db = store.connect(url, read_only=True)
    try:
        assert {f.where for f in check.check(db) if f.code == "DB-INTEGRITY"} == {"agencies_pkey"}
    finally:
        db.close()


# -- the migrations' records, as on SQLite ---------------------------------------------
@pytest.mark.parametrize("which, why", [("in the baseline", "holds it already"),
                                         ("the last", "cannot be applied")])
def test_a_migration_in_the_store_without_its_record_is_reported(which, why, pg_server, capsys):
    from ehkit import postgres

    url = pg_server.new_database()
    store.connect(url).close()
    number, name, _ = ([m for m in store.migrations() if m[0] <= postgres.baseline_number()]
                       if which == "in the baseline" else store.migrations())[-1]
    with psycopg.connect(url, autocommit=True) as dba:
        dba.execute("DELETE FROM schema_migrations WHERE number = %s", [number])
    assert cli.main(["check", "--db", url, "--quick"]) == 1
    out = capsys.readouterr().out
    assert f"DB-MIGRATION  migration {number:04d} ({name}): not recorded as applied" in out
    assert why in out and "Traceback" not in out


@pytest.mark.parametrize("twin, found", [
    ("ALTER TABLE agencies ADD COLUMN sector text;", 'column "sector" of relation "agencies" '
                                                     "already exists"),
    ("ALTER TABLE agencies ADD COLUMN note text;", None),
])
def test_a_later_migration_not_yet_applied_is_tried_and_nothing_is_kept(
        twin, found, pg_server, tmp_path, monkeypatch, capsys):
    import shutil

    from ehkit import postgres

    url = pg_server.new_database()
    store.connect(url).close()
    newer = tmp_path / "migrations"
    shutil.copytree(store.MIGRATIONS_DIR, newer)
    name = f"{store.migrations()[-1][0] + 10:04d}_agency_column.sql"
    (newer / name).write_text(f"-- An agency column\n{twin}\n", encoding="utf-8")
    (newer / "postgresql" / name).write_text(f"-- An agency column\n{twin}\n", encoding="utf-8")
    monkeypatch.setattr(store, "MIGRATIONS_DIR", newer)
    monkeypatch.setattr(postgres, "SCHEMA_DIR", newer / "postgresql")
    reader = store.connect(url, read_only=True)
    findings = check.migration_checks(reader)
    reader.close()
    if found:
        assert len(findings) == 1 and found in findings[0].message
    else:
        assert findings == []
    with psycopg.connect(url) as dba:
        columns = [c for (c,) in dba.execute("SELECT column_name FROM information_schema.columns"
                                             " WHERE table_name = 'agencies'")]
    assert "note" not in columns and columns.count("sector") == 1  # nothing tried was kept
