"""`ehkit backup`: a dated, whole copy taken while others save; a restore puts it back."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from builders import base_rows, complete_audit, save_rows

from ehkit import backup, check, cli
from ehkit import db as store


def _keep_saving(path: str, stop, saved) -> None:
    database = store.connect(path)
    while not stop.is_set():
        save_rows(database, complete_audit())
        with saved.get_lock():
            saved.value += 1
    database.close()


def counts(path) -> dict[str, int]:
    con = sqlite3.connect(str(path))
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("audits", "answers", "checklist_answers", "actions", "change_log")}
    finally:
        con.close()


def _backed_up_while_saving(target: str, folder: Path):
    """The store at ``target`` backed up while another process saves audits, before and
    after the backup (five saves each side at least)."""
    ctx = mp.get_context("spawn")
    stop, saved = ctx.Event(), ctx.Value("i", 0)
    writer = ctx.Process(target=_keep_saving, args=(target, stop, saved))
    writer.start()
    try:
        while saved.value < 5:
            time.sleep(0.01)
        made = backup.backup(target, folder,
                             now=dt.datetime(2026, 11, 24, 14, 30, 5, tzinfo=dt.UTC))
        at_backup = saved.value
        while saved.value < at_backup + 5:  # the writer went on saving meanwhile
            time.sleep(0.01)
    finally:
        stop.set()
        writer.join(30)
    return made


@pytest.mark.slow
def test_backup_while_another_process_saves_is_whole_and_restores(tmp_path):
    path = tmp_path / "live" / "ehkit.db"
    database = store.connect(path)
    base_rows(database)
    database.close()
    per_audit = complete_audit()
    made = _backed_up_while_saving(str(path), tmp_path / "backups")
    assert made.path == tmp_path / "backups" / "ehkit-2026-11-24T143005Z.db"
    # One self-contained file: no half-written copy, no WAL file beside it; and its anchor.
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == sorted(
        [made.path.name, "ehkit-anchors.txt"])
    n = counts(made.path)
    # Whole audits only: every audit in the copy has all its rows and their log rows.
    assert n["answers"] == n["audits"] * len(per_audit["answers"])
    assert n["checklist_answers"] == n["audits"] * len(per_audit["checklist"])
    assert n["actions"] == n["audits"]
    copy = store.connect(made.path, migrate=False)
    try:
        assert check.check(copy) == []
    finally:
        copy.close()
    live_audits = counts(path)["audits"]
    assert live_audits > n["audits"]

    # Restore over the live store: the backup's state comes back, and the store as it was is
    # itself kept first, so the restore can be undone.
    before = backup.restore(made.path, path, force=True)
    assert counts(path) == n
    assert counts(before)["audits"] == live_audits
    restored = store.connect(path)
    try:
        assert check.check(restored) == []
        audit_id = save_rows(restored, complete_audit())  # and it takes new saves
        assert audit_id == n["audits"] + 1
    finally:
        restored.close()


def test_two_backups_in_the_same_second_do_not_overwrite(db, tmp_path):
    base_rows(db)
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    first = backup.backup(tmp_path / "ehkit.db", tmp_path / "b", now=when).path
    second = backup.backup(tmp_path / "ehkit.db", tmp_path / "b", now=when).path
    assert first != second and first.exists() and second.exists()


def test_restore_refuses_to_replace_without_force(db, tmp_path):
    base_rows(db)
    made = backup.backup(tmp_path / "ehkit.db", tmp_path / "b").path
    with pytest.raises(backup.BackupError, match="--force"):
        backup.restore(made, tmp_path / "ehkit.db")


def test_restore_refuses_a_tampered_backup(db, tmp_path):
    base_rows(db)
    save_rows(db, complete_audit())
    made = backup.backup(tmp_path / "ehkit.db", tmp_path / "b").path
    con = sqlite3.connect(str(made), isolation_level=None)
    con.execute("DROP TRIGGER change_log_no_update")
    con.execute("UPDATE change_log SET user = 'mallory' WHERE id = 3")
    con.close()
    target = tmp_path / "new" / "ehkit.db"
    with pytest.raises(backup.BackupError, match="LOG-ALTERED"):
        backup.restore(made, target)
    assert not target.exists()


def test_cli_backup_names_the_dated_file(demo_db_path, tmp_path, capsys):
    path = tmp_path / "demo.db"
    shutil.copy(demo_db_path, path)
    assert cli.main(["backup", "--db", str(path), "--to", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    (made,) = (tmp_path / "b").glob("demo-*.db")
    assert str(made) in out and "chain head" in out
    assert counts(made) == counts(path)


def test_backup_of_a_missing_database_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["backup", "--db", str(tmp_path / "nothing.db")]) == 2
    assert "no database at" in capsys.readouterr().err


def test_the_next_backup_removes_a_copy_an_interrupted_backup_left(db, tmp_path, capsys):
    import os
    base_rows(db)
    folder = tmp_path / "b"
    folder.mkdir()
    left = folder / "ehkit-2026-01-01T000000Z.db.partial"
    left.write_bytes(b"half a copy")
    hours_ago = time.time() - 2 * 3600
    os.utime(left, (hours_ago, hours_ago))
    running = folder / "ehkit-2026-01-02T000000Z.db.partial"  # another backup, still writing
    running.write_bytes(b"being written")
    assert cli.main(["backup", "--db", str(tmp_path / "ehkit.db"), "--to", str(folder)]) == 0
    assert f"removed {left}, a copy an interrupted backup left half-written" in (
        capsys.readouterr().out)
    assert not left.exists() and running.exists()


def test_a_backup_and_its_restore_keep_the_schema_as_ehkit_left_it(db, tmp_path, capsys):
    # SQLite's backup starts the copy's count of schema changes again: ehkit seals it anew.
    base_rows(db)
    live = tmp_path / "ehkit.db"
    made = backup.backup(live, tmp_path / "b").path
    assert cli.main(["check", "--db", str(made), "--quick"]) == 0
    backup.restore(made, live, force=True)
    assert cli.main(["check", "--db", str(live), "--quick"]) == 0, capsys.readouterr().out
    # ... but a store changed outside ehkit stays found in its backup.
    con = sqlite3.connect(str(live), isolation_level=None)
    (sql,) = con.execute("SELECT sql FROM sqlite_master WHERE name = 'log_audits_update'"
                         ).fetchone()
    con.execute("DROP TRIGGER log_audits_update")
    con.execute(sql)
    con.close()
    later = backup.backup(live, tmp_path / "b").path
    capsys.readouterr()
    assert cli.main(["check", "--db", str(later), "--quick"]) == 1
    assert "LOG-TRIGGER  schema: changed outside ehkit" in capsys.readouterr().out


@pytest.mark.slow
def test_a_postgresql_backup_while_another_process_saves_is_whole_and_restores(pg_server,
                                                                                tmp_path):
    """pg_dump of the snapshot whose change log was checked, while a writer goes on saving:
    whole audits only, and ehkit check passes on its restore (the rest of this file's checks
    on PostgreSQL are tests/test_postgres.py's)."""
    url, other = pg_server.new_database(), pg_server.new_database()
    database = store.connect(url)
    base_rows(database)
    database.close()
    per_audit = complete_audit()
    made = _backed_up_while_saving(url, tmp_path / "backups")
    assert made.path.suffix == ".dump" and not list(made.path.parent.glob("*.partial"))
    backup.restore(made.path, other)
    restored = store.connect(other)
    try:
        n = {t: restored.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
             for t in ("audits", "answers", "checklist_answers", "actions")}
        assert n["answers"] == n["audits"] * len(per_audit["answers"])
        assert n["checklist_answers"] == n["audits"] * len(per_audit["checklist"])
        assert n["actions"] == n["audits"]
        assert check.check(restored) == []
        live = store.connect(url)
        try:
            assert live.execute("SELECT count(*) FROM audits").fetchone()[0] > n["audits"]
        finally:
            live.close()
        assert save_rows(restored, complete_audit()) == n["audits"] + 1  # it takes new saves
    finally:
        restored.close()
