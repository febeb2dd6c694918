"""The command line: every command has help; a person's mistakes are one line, not a traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from ehkit.cli import build_parser, main


def _run(*args):
    return subprocess.run([sys.executable, "-m", "ehkit.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_help_lists_commands_and_each_command_has_help():
    top = _run("--help")
    assert top.returncode == 0
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    names = list(sub.choices)
    assert {"demo", "report"} <= set(names)
    for name in names:
        assert name in top.stdout
        assert main_help(name)


def main_help(name: str) -> bool:
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    return e.value.code == 0


@pytest.mark.parametrize(("args", "message"), [
    (["report", "quarterly", "--db", "/nonexistent/ehkit.db"], "no database at"),
    (["report", "quarterly", "--period", "2026Q9"], "is not a period"),
    (["report", "quarterly", "--period", "2031Q1"], "no data in 2031Q1"),
    (["report", "quarterly", "--period", "2026-05"], "needs a quarter period"),
    (["report", "quarterly", "--audience", "press"], "unknown audience"),
])
def test_a_persons_mistake_is_one_clear_line(args, message, demo_db_path):
    if "--db" not in args:
        args = [*args, "--db", str(demo_db_path)]
    result = _run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in result.stderr


def test_demo_command_builds_a_database_and_refuses_to_overwrite(tmp_path):
    db = tmp_path / "d.db"
    first = _run("demo", "--db", str(db), "--episodes", "50", "--until", "2026-10-31")
    assert first.returncode == 0 and "50 episodes" in first.stdout
    again = _run("demo", "--db", str(db), "--episodes", "50")
    assert again.returncode == 2 and "--force" in again.stderr


def test_a_store_damaged_past_its_first_pages_is_one_line_not_a_traceback(tmp_path, capsys):
    import sqlite3 as sqlite

    from builders import base_rows, complete_audit, save_rows

    from ehkit import db as store

    path = tmp_path / "ehkit.db"
    database = store.connect(path)
    base_rows(database)
    save_rows(database, complete_audit())
    database.close()
    con = sqlite.connect(str(path))
    page = con.execute("PRAGMA page_size").fetchone()[0]
    (root,) = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'audits'").fetchone()
    con.close()
    with open(path, "r+b") as f:  # scribble over the audits' page, as a failing disk might
        f.seek((root - 1) * page)
        f.write(b"\x07" * page)
    assert main(["audit", "print", "1", "--db", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the store could not be read" in err[0], err
    assert "restore the latest good backup" in err[0]
