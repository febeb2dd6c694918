"""The command line, run in this process (one smoke test runs it as a program): every command
has help; a person's mistakes are one line, not a traceback."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import subprocess
import sys

import pytest

from ehkit.cli import build_parser, main


def ehkit(capsys, *args: str) -> tuple[int, str, str]:
    """``ehkit ARGS`` in this process: (exit code, what it printed, what it printed as errors)."""
    try:
        code = main(list(args))
    except SystemExit as e:  # argparse's own refusals and --help
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_the_installed_command_runs_and_lists_every_command():
    """The one smoke test in a process of its own: `python -m ehkit.cli` as a person runs it."""
    top = subprocess.run([sys.executable, "-m", "ehkit.cli", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert top.returncode == 0
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {"demo", "report"} <= set(sub.choices)
    for name in sub.choices:
        assert name in top.stdout


def test_each_command_has_help(capsys):
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name in sub.choices:
        code, out, _ = ehkit(capsys, name, "--help")
        assert code == 0 and f"ehkit {name}" in out, name


@pytest.mark.parametrize(("args", "message"), [
    (["report", "quarterly", "--db", "/nonexistent/ehkit.db"], "no database at"),
    (["report", "quarterly", "--period", "2026Q9"], "is not a period"),
    (["report", "quarterly", "--period", "2031Q1"], "no data in 2031Q1"),
    (["report", "quarterly", "--period", "2026-05"], "needs a quarter period"),
    (["report", "quarterly", "--audience", "press"], "unknown audience"),
])
def test_a_persons_mistake_is_one_clear_line(args, message, demo_db_path, capsys):
    if "--db" not in args:
        args = [*args, "--db", str(demo_db_path)]
    code, _, err = ehkit(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in err


def test_demo_command_builds_a_database_and_refuses_to_overwrite(tmp_path, capsys):
    db = str(tmp_path / "d.db")
    code, out, _ = ehkit(capsys, "demo", "--db", db, "--episodes", "50", "--until", "2026-10-31")
    assert code == 0 and "50 episodes" in out
    code, _, err = ehkit(capsys, "demo", "--db", db, "--episodes", "50")
    assert code == 2 and "--force" in err


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


# -- dates a person reads: day first (16/09/2015), never the store's ISO --------------------
ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
UK = re.compile(r"\b\d{2}/\d{2}/\d{4}\b")


@pytest.fixture
def demo_copy(demo_copy_both) -> str:
    """The demo store copied (the commands below may write to it), on each back end."""
    return demo_copy_both


def test_actions_overdue_prints_uk_dates(demo_copy, capsys):
    code, out, _ = ehkit(capsys, "actions", "overdue", "--db", demo_copy, "--on", "2026-10-31")
    assert code == 1 and "overdue on 31/10/2026:" in out
    due = out.splitlines()[1].split()[0]
    assert UK.fullmatch(due), due
    assert not ISO.search(out)
    code, out, _ = ehkit(capsys, "actions", "overdue", "--db", demo_copy, "--on", "2020-01-01")
    assert code == 0 and out.strip() == "No actions overdue on 01/01/2020."


def test_sample_prints_uk_dates(demo_copy, capsys):
    code, out, _ = ehkit(capsys, "sample", "--db", demo_copy, "--month", "2026-09")
    assert code == 0 and "drawn on 30/09/2026" in out
    table = out.split("\nreason ")[1]
    assert UK.search(table) and not ISO.search(out)


def test_check_says_dates_out_of_order_as_uk_dates(demo_copy, capsys):
    from ehkit import db as store

    database = store.connect(demo_copy)
    child, end = database.execute("SELECT c.id, e.end_date FROM children c JOIN episodes e"
                                  " ON e.id = c.episode_id WHERE e.end_date IS NOT NULL"
                                  " LIMIT 1").fetchone()
    born = (dt.date.fromisoformat(end) + dt.timedelta(days=1)).isoformat()
    with store.transaction(database):  # a child born the day after the episode ended
        database.execute("UPDATE children SET date_of_birth = ? WHERE id = ?", [born, child])
    database.close()
    code, out, _ = ehkit(capsys, "check", "--db", demo_copy, "--quick", "--today", "2026-10-31")
    said = next(line for line in out.splitlines()
                if line.startswith("DQ-DATE-ORDER") and f"child {child} " in line)
    assert code == 1 and "after the episode ended" in said
    assert len(UK.findall(said)) == 2 and not ISO.search(said)
