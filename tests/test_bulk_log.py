"""Bulk inserts (demo data, imports) logged together: as accountable as rows logged one by one."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from builders import base_rows, complete_audit, raw

from ehkit import check, history
from ehkit import db as store


@pytest.fixture
def bulk(db, monkeypatch):
    """Three audits with their answers, put in by bulk inserts of 4 rows a change-log row."""
    return _bulk(db, monkeypatch)


@pytest.fixture
def bulk_both(db_both, monkeypatch):
    """As :func:`bulk`, on each back end (PostgreSQL stages the answers, keyed by more than
    an id, to log them in order: ehkit.postgres.copy_staged)."""
    return _bulk(db_both, monkeypatch)


def _bulk(db, monkeypatch):
    monkeypatch.setattr(store, "BULK_CHUNK", 4)
    base_rows(db)
    whole = complete_audit()
    audit_cols = [c for c in whole["audit"]]
    with store.acting_as(actor="loader"), store.transaction(db):
        store.bulk_insert(db, "audits", ["id", *audit_cols],
                          [(i, *whole["audit"].values()) for i in (1, 2, 3)])
        store.bulk_insert(db, "answers", ["audit_id", "key", "grade", "comment", "response"],
                          [(i, a["key"], a["grade"], a["comment"], a["response"])
                           for i in (1, 2, 3) for a in whole["answers"]])
    return db, len(whole["answers"])


def bulk_rows(db, table):
    return [dict(r) for r in db.query("SELECT * FROM change_log WHERE table_name = ? AND "
                                      "row_key IS NULL ORDER BY id", [table])]


def test_a_bulk_insert_writes_one_log_row_a_chunk_holding_its_rows(bulk_both):
    db, n = bulk_both
    logged = bulk_rows(db, "answers")
    assert len(logged) == -(-3 * n // 4)  # 4 rows a change-log row, the last one fewer
    assert sum(len(json.loads(r["new"])["rows"]) for r in logged) == 3 * n
    assert {(r["actor"], r["field"], r["old"], r["audit_id"]) for r in logged} == {
        ("loader", None, None, None)}
    # every row of the table, exactly as stored, is in the log
    replayed, problems = check.replay(db, "answers")
    assert problems == [] and len(replayed) == 3 * n
    stored = {f"{r['audit_id']}/{r['key']}": dict(r) for r in db.query("SELECT * FROM answers")}
    assert replayed == stored


def test_a_bulk_loaded_store_checks_clean_and_its_triggers_are_back(bulk):
    db, _ = bulk
    assert check.check(db) == []
    live = dict(db.conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    assert live["log_answers_insert"] == store.change_log_trigger_sql(db)["log_answers_insert"]


def test_later_changes_to_bulk_rows_are_logged_one_by_one_as_ever(bulk_both):
    db, _ = bulk_both
    with store.transaction(db):
        db["answers"].update([2, "pre_eha"], {"grade": 4})
    (row,) = db.query("SELECT * FROM change_log WHERE row_key = '2/pre_eha'")
    assert (row["field"], row["old"], row["new"], row["audit_id"]) == ("grade", 2, 4, 2)
    assert check.check(db) == []


def test_history_of_a_bulk_loaded_audit_shows_only_its_own_rows(bulk_both):
    db, n = bulk_both
    story = history.history(db, 2)
    assert {r["table_name"] for r in story} == {"audits", "answers"}
    held = [row for r in story for row in history.bulk_rows(r["new"])]
    assert len(held) == 1 + n and {row.get("audit_id", row.get("id")) for row in held} == {2}
    lines = history.format_history(story)
    added = [re.search(r"(audits|answers): (\d+) row\(s\) added$", line) for line in lines]
    assert all(added) and sum(int(m[2]) for m in added if m[1] == "answers") == n
    assert [m[2] for m in added if m[1] == "audits"] == ["1"]
    state = history.state_at(db, 2)
    assert set(state) == {"audits", "answers"} and len(state["answers"]) == n
    assert state["answers"]["2/pre_eha"]["grade"] == 2


def test_a_bulk_row_altered_outside_ehkit_is_found(bulk, tmp_path):
    db, _ = bulk
    path = db.conn.execute("PRAGMA database_list").fetchone()[2]
    con = raw(path)
    con.execute("DROP TRIGGER log_answers_update")
    con.execute("UPDATE answers SET grade = 1 WHERE audit_id = 3 AND key = 'pre_eha'")
    con.close()
    found = check.check(store.connect(path))
    assert [(f.code, f.where) for f in found if f.code == "LOG-UNLOGGED"] == [
        ("LOG-UNLOGGED", "answers 3/pre_eha")]


def test_a_bulk_log_row_altered_breaks_the_chain(bulk):
    db, _ = bulk
    path = db.conn.execute("PRAGMA database_list").fetchone()[2]
    target = bulk_rows(db, "answers")[1]
    con = raw(path)
    con.execute("DROP TRIGGER change_log_no_update")
    con.execute("UPDATE change_log SET new = replace(new, '\"yes\"', '\"no\"') WHERE id = ?",
                (target["id"],))
    con.close()
    found = [f for f in check.chain_checks(store.connect(path)) if f.code == "LOG-ALTERED"]
    assert [f.where for f in found] == [f"change_log id {target['id']}"]


def test_a_failed_bulk_insert_leaves_nothing_and_puts_the_trigger_back(bulk):
    db, _ = bulk
    before = db.conn.execute("SELECT count(*) FROM change_log").fetchone()[0]
    with pytest.raises(sqlite3.IntegrityError), store.transaction(db):
        store.bulk_insert(db, "children", ["id", "episode_id", "name"],
                          [(5, 1, "Ada Bulkchild"), (6, 1, "  ")])  # the second: a blank name
    assert db["children"].count == 1
    assert db.conn.execute("SELECT count(*) FROM change_log").fetchone()[0] == before
    assert check.trigger_checks(db) == []


def test_a_bulk_insert_must_add_rows_after_the_last_one(bulk):
    db, _ = bulk
    with pytest.raises(RuntimeError, match="after its last rowid"), store.transaction(db):
        store.bulk_insert(db, "children", ["id", "episode_id", "name"], [(0, 1, "Low Id")])
    with pytest.raises(RuntimeError, match="inside store.transaction"):
        store.bulk_insert(db, "children", ["episode_id", "name"], [(1, "No Transaction")])


# -- on both back ends: a table keyed by two columns (answers), logged the same ---------------
def bulk_answers(where, monkeypatch) -> list[tuple]:
    """Three audits' answers, put in by two bulk inserts in one transaction (4 rows a
    change-log row), in the template's order, not the key's; gives the bulk log rows."""
    monkeypatch.setattr(store, "BULK_CHUNK", 4)
    db = store.connect(where)
    try:
        base_rows(db)
        whole = complete_audit()
        whole["audit"].update(created_at="2026-03-02T09:00:00Z", updated_at="2026-03-02T09:00:00Z")
        answers = [(i, a["key"], a["grade"], a["comment"] and f"{a['comment']} \u2014 'ok' %s",
                    a["response"]) for i in (3, 1, 2) for a in reversed(whole["answers"])]
        with store.acting_as(actor="loader"), store.transaction(db):
            store.bulk_insert(db, "audits", ["id", *whole["audit"]],
                              [(i, *whole["audit"].values()) for i in (1, 2, 3)])
            for part in (answers[:7], answers[7:]):
                store.bulk_insert(db, "answers", ["audit_id", "key", "grade", "comment",
                                                  "response"], part)
        assert check.check(db) == []
        replayed, problems = check.replay(db, "answers")
        stored = {f"{r['audit_id']}/{r['key']}": dict(r) for r in db.query("SELECT * FROM answers")}
        assert problems == [] and replayed == stored and len(stored) == len(answers)
        return [(r["table_name"], r["actor"], r["new"]) for r in db.query(
            "SELECT * FROM change_log WHERE row_key IS NULL ORDER BY id")]
    finally:
        db.close()


def test_a_bulk_insert_into_answers_is_logged_the_same_on_both(pg_server, tmp_path,
                                                                monkeypatch, capsys):
    from ehkit import cli

    lite = bulk_answers(tmp_path / "ehkit.db", monkeypatch)
    url = pg_server.new_database()
    pg = bulk_answers(url, monkeypatch)
    assert pg == lite  # the same JSON, row for row, in the order the rows went in
    n = len(complete_audit()["answers"]) * 3
    answers = [json.loads(new) for table, _, new in pg if table == "answers"]
    assert len(answers) == -(-7 // 4) + -(-(n - 7) // 4)  # each bulk insert chunked alone
    assert [row[:2] for a in answers for row in a["rows"]][:2] == [
        [3, complete_audit()["answers"][-1]["key"]], [3, complete_audit()["answers"][-2]["key"]]]
    assert cli.main(["check", "--db", url]) == 0
    assert "no problems found" in capsys.readouterr().out


def test_on_postgresql_a_failed_bulk_insert_into_answers_leaves_nothing(pg_server):
    import psycopg

    db = store.connect(pg_server.new_database())
    try:
        base_rows(db)
        whole = complete_audit()
        with store.transaction(db):
            store.bulk_insert(db, "audits", ["id", *whole["audit"]], [(1, *whole["audit"].values())])
        before = db.execute("SELECT count(*) FROM change_log").fetchone()[0]
        rows = [(1, "pre_eha", 2), (1, "voice_of_child", 9)]  # the second: off the scale
        with pytest.raises(psycopg.errors.CheckViolation), store.transaction(db):
            store.bulk_insert(db, "answers", ["audit_id", "key", "grade"], rows)
        assert db.execute("SELECT count(*) FROM change_log").fetchone()[0] == before
        assert db["answers"].count == 0 and check.trigger_checks(db) == []
        with store.transaction(db):  # the same connection loads again, its helpers gone
            store.bulk_insert(db, "answers", ["audit_id", "key", "grade"], rows[:1])
        assert db["answers"].count == 1 and check.chain_checks(db) == []
        assert check.replay_checks(db) == [] and check.trigger_checks(db) == []
    finally:
        db.close()


def test_the_demos_bulk_loads_are_logged_alike_on_both(pg_server, tmp_path):
    """`ehkit demo` on each back end: every table's bulk load, answers and checklist included
    (keyed by the audit and a key), in the same change-log rows holding the same JSON."""
    import datetime as dt

    from ehkit import demo

    logs = []
    for where in (tmp_path / "demo.db", pg_server.new_database()):
        db = store.connect(where)
        try:
            demo.generate(db, episodes=120, seed=3, until=dt.date(2026, 10, 31))
            logs.append([(r["table_name"], r["new"]) for r in db.query(
                "SELECT table_name, new FROM change_log WHERE row_key IS NULL ORDER BY id")])
            assert check.chain_checks(db) == [] and check.replay_checks(db) == []
        finally:
            db.close()
    assert logs[0] == logs[1]
    answers = [json.loads(new) for table, new in logs[1] if table == "answers"]
    assert answers and sum(len(a["rows"]) for a in answers) > 1000
