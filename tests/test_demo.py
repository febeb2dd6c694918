"""The synthetic service: deterministic for a seed, plausible, and only invented people."""

from __future__ import annotations

import datetime as dt
import json

from ehkit import cli, demo
from ehkit import db as store

DATA_TABLES = ("agencies", "practitioners", "episodes", "children", "audits", "answers",
               "checklist_answers", "actions", "moderations", "audit_followups", "discussions",
               "discussion_attendees", "one_to_one_meetings", "service_user_feedback",
               "self_assessments", "self_assessment_items")
UNTIL = dt.date(2026, 10, 31)


def _dump(database):
    return {t: database.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
            for t in DATA_TABLES}


def _make(tmp_path, name, seed):
    database = store.connect(tmp_path / name)
    demo.generate(database, episodes=200, seed=seed, until=UNTIL)
    return database


def test_the_same_seed_gives_the_same_database(tmp_path):
    a, b = _make(tmp_path, "a.db", 5), _make(tmp_path, "b.db", 5)
    c = _make(tmp_path, "c.db", 6)
    assert _dump(a) == _dump(b)
    assert _dump(a)["episodes"] != _dump(c)["episodes"]


def test_the_same_seed_gives_the_same_rows_on_sqlite_and_postgresql(tmp_path, pg_server):
    """`ehkit demo` straight into PostgreSQL: every table holds the same rows, ids and all,
    as the SQLite store made with the same seed, lists drawn and audits done from them
    included; the change log verifies (ehkit check) and names the demo as the actor."""
    url = pg_server.new_database()
    assert cli.main(["demo", "--db", url, "--episodes", "200", "--seed", "5", "--until",
                     UNTIL.isoformat()]) == 0
    pg, lite = store.connect(url), _make(tmp_path, "a.db", 5)
    draws = "SELECT * FROM selection_draws ORDER BY id"
    tables = [*DATA_TABLES, "selections"]
    assert {t: pg.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables} == {
        t: lite.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}
    made = [{k: v for k, v in r.items() if k != "drawn_at"} for r in pg.query(draws)]
    assert made == [{k: v for k, v in r.items() if k != "drawn_at"} for r in lite.query(draws)]
    assert len(made) == 6 and pg["answers"].count > 1000
    assert cli.main(["check", "--db", url]) == 0
    assert {r[0] for r in pg.execute("SELECT DISTINCT actor FROM change_log")} == {"ehkit demo"}
    # The change log tells the same: as many rows for each table, and the same bulk inserts
    # (tables keyed by more than an id, an audit's answers, included), row for row.
    per_table = "SELECT table_name, count(*) FROM change_log GROUP BY 1 ORDER BY 1"
    assert pg.execute(per_table).fetchall() == lite.execute(per_table).fetchall()
    bulk = "SELECT table_name, new FROM change_log WHERE row_key IS NULL ORDER BY id"
    assert [(t, as_json(n)) for t, n in pg.execute(bulk)] == [
        (t, as_json(n)) for t, n in lite.execute(bulk)]


def as_json(value):
    """A change log's ``new`` as Python: SQLite's JSON text, PostgreSQL's jsonb (holding the
    same text, or read as Python already)."""
    return json.loads(value) if isinstance(value, str) else value


def test_demo_on_postgresql_fills_only_an_empty_database(pg_server, capsys):
    url = pg_server.new_database()
    assert cli.main(["demo", "--db", url, "--episodes", "30", "--until", "2026-10-31"]) == 0
    capsys.readouterr()
    assert cli.main(["demo", "--db", url, "--episodes", "30"]) == 2
    assert "already holds 30 episodes" in capsys.readouterr().err
    assert cli.main(["demo", "--db", url, "--episodes", "30", "--force"]) == 2
    assert "make a new one" in capsys.readouterr().err
    assert store.connect(url)["episodes"].count == 30


def test_demo_data_keeps_every_constraint(demo_db_path):
    # The generator sets the per-row checks aside while it fills a new file; the rows must
    # still satisfy every CHECK, NOT NULL, UNIQUE and foreign key, as if checked one by one.
    d = store.connect(demo_db_path)
    assert d.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert d.execute("PRAGMA foreign_key_check").fetchall() == []
    assert d.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert d.execute("PRAGMA ignore_check_constraints").fetchone() == (0,)


def test_integrity_check_would_find_a_broken_check_constraint(tmp_path):
    # The test above relies on integrity_check reading CHECK constraints: prove it does.
    d = store.connect(tmp_path / "x.db")
    d.execute("PRAGMA ignore_check_constraints = ON")
    with store.transaction(d):
        d.execute("INSERT INTO agencies (id, name, kind, sector) VALUES (1, 'A', 'nonsense', 'Health')")
    d.execute("PRAGMA ignore_check_constraints = OFF")
    assert d.execute("PRAGMA integrity_check").fetchall() == [("CHECK constraint failed in agencies",)]


def test_demo_service_is_plausible(demo_db_path):
    d = store.connect(demo_db_path)
    kinds = dict(d.execute("SELECT kind, count(*) FROM agencies GROUP BY kind").fetchall())
    assert kinds["council"] >= 5 and kinds["partner"] >= 10
    assert 80 <= d["practitioners"].count <= 150
    status = dict(d.execute("SELECT status, count(*) FROM episodes GROUP BY status").fetchall())
    assert status["open"] > 0 and status["closed"] > status["open"]
    ages = d.execute("""SELECT min((julianday(e.start_date) - julianday(c.date_of_birth)) / 365.25),
                               max((julianday(e.start_date) - julianday(c.date_of_birth)) / 365.25)
                        FROM children c JOIN episodes e ON e.id = c.episode_id""").fetchone()
    assert 0 <= ages[0] and ages[1] < 18
    # Some open cases are drifting: open over six months with no review in three.
    drifting = d.execute("""SELECT count(*) FROM episodes WHERE status = 'open'
        AND start_date < date(:until, '-6 months')
        AND (last_review_date IS NULL OR last_review_date < date(:until, '-3 months'))""",
                         {"until": UNTIL.isoformat()}).fetchone()[0]
    assert drifting > 0
    # About 180 audits a year at 1,500 episodes over three years: 0.36 per episode.
    # plus the audits done from the last six months' audit lists.
    from_lists = d.execute("""SELECT count(DISTINCT a.id) FROM audits a
        JOIN selections s ON s.episode_id = a.episode_id AND a.audit_date >= s.selected_on
        """).fetchone()[0]
    assert from_lists > 0
    assert d["audits"].count >= round(400 * 0.36)
    assert d.execute("SELECT count(DISTINCT month) FROM selection_draws").fetchone()[0] == 6
    assert d.execute("SELECT count(*) FROM audits WHERE auditor2_id IS NOT NULL").fetchone()[0]
    assert d.execute("SELECT count(*) FROM audits WHERE status = 'moderated'").fetchone()[0]
    # The loop after audits, and feedback around episodes, are there for the reports.
    for table in ("discussions", "one_to_one_meetings", "service_user_feedback",
                  "self_assessments"):
        assert d[table].count > 0, table
    assert d.execute("SELECT count(*) FROM service_user_feedback WHERE concern_raised = 1"
                     ).fetchone()[0] > 0


def test_demo_auditors_never_audit_their_own_team(demo_both):
    d = store.connect(demo_both)
    clashes = d.execute("""
        SELECT count(*) FROM audits a JOIN episodes e ON e.id = a.episode_id
        JOIN practitioners lp ON lp.id = e.lead_professional_id
        WHERE a.auditor1_id IN (e.lead_professional_id, lp.line_manager_id, e.team_manager_id)
           OR a.auditor2_id IN (e.lead_professional_id, lp.line_manager_id, e.team_manager_id)
    """).fetchone()[0]
    assert clashes == 0


def test_demo_refuses_to_fill_a_database_that_has_data(demo_both, tmp_path):
    import shutil

    import pytest

    target = demo_both  # refused before anything is written, so the shared store is safe
    if not store.postgres_url(target):
        target = tmp_path / "copy.db"
        shutil.copy(demo_both, target)
    database = store.connect(target)
    (logged,) = database.execute("SELECT max(id) FROM change_log").fetchone()
    with pytest.raises(store.StoreError, match="already holds 400 episodes"):
        demo.generate(database, episodes=10)
    assert database.execute("SELECT max(id) FROM change_log").fetchone()[0] == logged
