"""A store on read-only media: the commands that only read work; the others say why not."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import pytest
from builders import base_rows, complete_audit, save_rows

from ehkit import cli
from ehkit import db as store


@pytest.fixture
def read_only_store(tmp_path):
    """A store with one audit in a folder that cannot be written: a read-only mount when we
    may mount (root ignores file modes), else a folder and file without write permission."""
    src = tmp_path / "src"
    database = store.connect(src / "ehkit.db")
    base_rows(database)
    save_rows(database, complete_audit())
    database.close()
    media = tmp_path / "media"
    media.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "--bind", "-o", "ro", str(src), str(media)], capture_output=True).returncode == 0
    if mounted:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(media)], check=True)
    else:
        media.rmdir()
        shutil.copytree(src, media)
        (media / "ehkit.db").chmod(0o444)
        media.chmod(0o555)
    path = media / "ehkit.db"
    assert not os.access(media, os.W_OK)
    yield path
    if mounted:
        subprocess.run(["umount", "--lazy", str(media)], check=True)  # even if a file is open
    else:
        media.chmod(0o755)


def test_check_history_and_backup_read_a_store_on_read_only_media(read_only_store, tmp_path,
                                                                   capsys):
    before = hashlib.sha256(read_only_store.read_bytes()).hexdigest()
    assert cli.main(["check", "--db", str(read_only_store)]) == 0
    assert "no problems found" in capsys.readouterr().out
    assert cli.main(["history", "1", "--db", str(read_only_store)]) == 0
    assert "audits 1 added" in capsys.readouterr().out
    assert cli.main(["backup", "--db", str(read_only_store), "--to", str(tmp_path / "b")]) == 0
    (made,) = (tmp_path / "b").glob("ehkit-*.db")
    assert str(made) in capsys.readouterr().out
    assert cli.main(["check", "--db", str(made)]) == 0
    assert hashlib.sha256(read_only_store.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("args", [["sample", "--month", "2026-11"],
                                  ["import", "agencies", "agencies.csv"],
                                  ["feedback", "import", "feedback.csv"]])
def test_commands_that_change_the_store_say_in_one_line_it_is_read_only(read_only_store, args,
                                                                       capsys, tmp_path):
    assert cli.main([*args, "--db", str(read_only_store)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{read_only_store} is read-only" in err[0], err


# -- PostgreSQL: a store that may only be read (a standby, or a database set read-only) -------
@pytest.fixture
def read_only_pg_store(pg_server):
    """A PostgreSQL store with one audit whose database now only reads, as a hot standby or a
    replica does: its URL. (ehkit's own login owns its store: a login granted SELECT alone
    is for other tools, and a write through it is told by postgres.PERSON_ERRORS' 42501.)"""
    import psycopg

    url = pg_server.new_database()
    database = store.connect(url)
    base_rows(database)
    save_rows(database, complete_audit())
    (name,) = database.execute("SELECT current_database()").fetchone()
    database.close()
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
    return url


def test_check_history_and_backup_read_a_read_only_postgresql_store(read_only_pg_store,
                                                                    tmp_path, capsys):
    url = read_only_pg_store
    assert cli.main(["check", "--db", url]) == 0
    assert "no problems found" in capsys.readouterr().out
    assert cli.main(["history", "1", "--db", url]) == 0
    assert "audits 1 added" in capsys.readouterr().out
    assert cli.main(["backup", "--db", url, "--to", str(tmp_path / "b")]) == 0
    (made,) = (tmp_path / "b").glob("*.dump")
    assert str(made) in capsys.readouterr().out


@pytest.mark.parametrize("args", [["sample", "--month", "2026-11"],
                                  ["import", "agencies", "agencies.csv"],
                                  ["feedback", "import", "feedback.csv"]])
def test_commands_that_change_a_read_only_postgresql_store_say_so_in_one_line(
        read_only_pg_store, args, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "agencies.csv").write_text("name,kind,sector\nNew Team,council,Local Authority\n")
    (tmp_path / "feedback.csv").write_text(
        "EHM number,Given on,Respondent,Stage\nEHM1,2026-03-01,parent_carer,closure\n")
    database = store.connect(read_only_pg_store, read_only=True)
    before = database.execute("SELECT count(*) FROM change_log").fetchone()[0]
    database.close()
    assert cli.main([*args, "--db", read_only_pg_store]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "read-only" in err[0] and "Traceback" not in err[0], err
    database = store.connect(read_only_pg_store, read_only=True)
    assert database.execute("SELECT count(*) FROM change_log").fetchone()[0] == before
    database.close()
