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
