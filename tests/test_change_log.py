"""The change log: every data change logged in its own transaction, unchangeable, chained."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import psycopg
import pytest
from builders import audit_form, base_rows, complete_audit, raw, save_rows

from ehkit import check
from ehkit import db as store
from ehkit.errors import EhkitError

REFUSED = (sqlite3.DatabaseError, psycopg.Error)  # SQLite's refusal, PostgreSQL's


def log_rows(db, after: int = 0) -> list[dict]:
    return [dict(r) for r in db.query("SELECT * FROM change_log WHERE id > ? ORDER BY id",
                                      [after])]


def last_id(db) -> int:
    return db.conn.execute("SELECT coalesce(max(id), 0) FROM change_log").fetchone()[0]


# Every data table the issue names, with a row to insert and a field to change.
TABLE_CASES = [
    ("episodes", {"id": 2, "ehm_number": "EHM2", "start_date": "2026-02-01", "status": "open",
                  "lead_agency_id": 1}, "referral_reason", "Housing", "2"),
    ("children", {"id": 2, "episode_id": 1, "name": "Sol Testchild"}, "name", "Sol Renamed", "2"),
    ("audits", {"id": 7, "episode_id": 1, "template": "darlington", "auditor1_id": 1,
                "audit_date": "2026-03-01"}, "summary", "New summary", "7"),
    ("answers", {"audit_id": 5, "key": "1", "grade": 2}, "comment", "Because", "5/1"),
    ("checklist_answers", {"audit_id": 5, "item": "ehm_number", "status": "accurate"},
     "note", "Seen", "5/ehm_number"),
    ("actions", {"id": 3, "audit_id": 5, "number": 1, "action": "Do it"}, "by_whom", "Leo", "3"),
    ("moderations", {"id": 4, "audit_id": 5, "key": "overall", "moderator_id": 1,
                     "moderated_on": "2026-03-05", "original_grade": 2, "moderated_grade": 2},
     "reason", "Agreed", "4"),
    ("audit_followups", {"audit_id": 5}, "worker_notified_date", "2026-03-09", "5"),
    ("service_user_feedback", {"id": 6, "episode_id": 1, "given_on": "2026-03-01",
                               "respondent": "parent_carer", "stage": "closure"},
     "comments", "Helpful", "6"),
]


def with_an_audit(db):
    base_rows(db)
    with store.transaction(db):
        db["audits"].insert({"id": 5, "episode_id": 1, "template": "darlington",
                             "auditor1_id": 1, "audit_date": "2026-03-01"})
    return db


@pytest.fixture
def audit_db(db_both):
    """A store with an audit, on SQLite and on PostgreSQL (issue 18)."""
    return with_an_audit(db_both)


@pytest.fixture
def sqlite_audit_db(db):
    return with_an_audit(db)


@pytest.mark.parametrize("table,row,field,value,key", TABLE_CASES, ids=[c[0] for c in TABLE_CASES])
def test_every_insert_update_delete_is_logged_with_who_when_what(audit_db, monkeypatch,
                                                                 table, row, field, value, key):
    db = audit_db
    if table not in db.table_names():
        pytest.skip(f"{table} is not in the schema yet")
    monkeypatch.setenv("EHKIT_LOGIN", "hub-user-7")
    before = last_id(db)
    with store.acting_as(actor="Ava Auditor", reason="typo"), store.transaction(db):
        db[table].insert(row)
        db[table].update(key.split("/") if "/" in key else int(key), {field: value})
        db[table].delete(key.split("/") if "/" in key else int(key))
    rows = log_rows(db, before)
    assert [(r["table_name"], r["row_key"], r["field"]) for r in rows] == [
        (table, key, None), (table, key, field), (table, key, None)]
    ins, upd, dele = rows
    assert json.loads(ins["new"])[field] == row.get(field) and ins["old"] is None
    assert (upd["old"], upd["new"]) == (row.get(field), value)
    assert json.loads(dele["old"])[field] == value and dele["new"] is None
    for r in rows:
        assert (r["user"], r["actor"], r["reason"]) == ("hub-user-7", "Ava Auditor", "typo")
        when = dt.datetime.strptime(r["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
        assert abs(dt.datetime.now(dt.UTC) - when) < dt.timedelta(minutes=1)
    audit_ids = {r["audit_id"] for r in rows}
    assert audit_ids == ({5} if "audit_id" in row else {7} if table == "audits" else {None})


def test_a_rolled_back_change_leaves_no_log_row(audit_db):
    db = audit_db
    before = last_id(db)
    with pytest.raises(RuntimeError), store.transaction(db):
        db["children"].insert({"id": 9, "episode_id": 1, "name": "Gone Again"})
        assert last_id(db) == before + 1  # logged inside the same transaction ...
        raise RuntimeError("the save failed")
    assert last_id(db) == before  # ... and undone with it
    assert db["children"].count == 1


def test_user_is_the_login_the_hub_authenticated(audit_db, monkeypatch):
    # `ehkit serve --hub` starts each page's kernel with EHKIT_LOGIN from the request's hub
    # login; a JUPYTERHUB_USER the environment carries does not outrank it.
    monkeypatch.setenv("EHKIT_LOGIN", "hub-login-3")
    monkeypatch.setenv("JUPYTERHUB_USER", "someone-else")
    before = last_id(audit_db)
    with store.transaction(audit_db):
        audit_db["children"].update(1, {"name": "Kit Renamed"})
    (row,) = log_rows(audit_db, before)
    assert row["user"] == "hub-login-3"


def test_user_is_the_os_user_without_a_server_login(audit_db, monkeypatch):
    import getpass
    monkeypatch.delenv("EHKIT_LOGIN", raising=False)
    monkeypatch.setenv("JUPYTERHUB_USER", "someone-else")  # anyone can set it: never asked
    before = last_id(audit_db)
    with store.transaction(audit_db):
        audit_db["children"].update(1, {"name": "Kit Renamed"})
    (row,) = log_rows(audit_db, before)
    assert (row["user"], row["actor"], row["reason"]) == (getpass.getuser(), None, None)


def test_update_logs_only_changed_fields_one_row_each(audit_db):
    before = last_id(audit_db)
    with store.transaction(audit_db):
        audit_db["audits"].update(5, {"summary": "S", "overall_grade": 3, "template": "darlington"})
    rows = log_rows(audit_db, before)
    assert sorted((r["field"], r["old"], r["new"]) for r in rows) == [
        ("overall_grade", None, 3), ("summary", None, "S")]


def test_replace_logs_the_old_row_deleted(audit_db):
    before = last_id(audit_db)
    with store.transaction(audit_db):
        audit_db["children"].insert({"id": 1, "episode_id": 1, "name": "Kit Replaced"},
                                    replace=True)
    rows = log_rows(audit_db, before)
    assert [(r["field"], r["old"] is not None, r["new"] is not None) for r in rows] == [
        (None, True, False), (None, False, True)]
    assert json.loads(rows[0]["old"])["name"] == "Kit Testchild"


def test_cascade_delete_of_an_audit_logs_each_child_row(db):
    base_rows(db)
    audit_id = save_rows(db, complete_audit())
    n_answers = db["answers"].count
    before = last_id(db)
    with store.transaction(db):
        db["audits"].delete(audit_id)
    deleted = [r["table_name"] for r in log_rows(db, before) if r["new"] is None]
    assert deleted.count("answers") == n_answers
    assert deleted.count("audits") == 1 and deleted.count("actions") == 1
    assert deleted.count("checklist_answers") == len(complete_audit()["checklist"])


def test_the_change_log_cannot_be_updated_or_deleted(audit_db):
    with pytest.raises(REFUSED, match="cannot be changed"):
        audit_db.conn.execute("UPDATE change_log SET \"user\" = 'someone else'")
    with pytest.raises(REFUSED, match="cannot be deleted"):
        audit_db.conn.execute("DELETE FROM change_log WHERE id = 1")


def test_a_tool_outside_ehkit_cannot_change_data_without_dropping_triggers(sqlite_audit_db,
                                                                            tmp_path):
    con = raw(tmp_path / "ehkit.db")
    with pytest.raises(sqlite3.OperationalError, match="ehkit_user"):
        con.execute("UPDATE audits SET overall_grade = 1 WHERE id = 5")
    con.close()
    assert sqlite_audit_db["audits"].get(5)["overall_grade"] is None


def test_untouched_chain_verifies(db):
    base_rows(db)
    save_rows(db, complete_audit())
    assert check.chain_checks(db) == [] and check.replay_checks(db) == []


def test_hash_covers_what_is_stored_for_every_value_type(audit_db):
    # Integer keys, composite keys, REAL and text values, an actor given as a number.
    with store.acting_as(actor=42, reason=3.5), store.transaction(audit_db):
        audit_db["answers"].insert({"audit_id": 5, "key": "2", "grade": 1, "comment": 1.25})
        audit_db["answers"].update([5, "2"], {"comment": "x" * 5000})
    assert check.chain_checks(audit_db) == []
    assert check.replay_checks(audit_db) == []


@pytest.fixture
def tampered(tmp_path):
    """A store with one complete audit, then a plain-sqlite3 connection with the guards off."""
    database = store.connect(tmp_path / "ehkit.db")
    base_rows(database)
    save_rows(database, complete_audit())
    database.close()
    con = raw(tmp_path / "ehkit.db")
    con.execute("DROP TRIGGER change_log_no_update")
    con.execute("DROP TRIGGER change_log_no_delete")
    yield con, tmp_path / "ehkit.db"
    con.close()


def findings(path) -> list[check.Finding]:
    database = store.connect(path, migrate=False)
    try:
        return check.chain_checks(database)
    finally:
        database.close()


def test_chain_detects_a_row_altered_outside_ehkit(tampered):
    con, path = tampered
    con.execute("UPDATE change_log SET user = 'mallory' WHERE id = 10")
    assert [(f.code, f.where) for f in findings(path)] == [("LOG-ALTERED", "change_log id 10")]


def test_chain_detects_an_altered_row_whose_hash_was_recomputed(tampered):
    con, path = tampered
    cols = "at, user, actor, table_name, row_key, audit_id, field, old, new, reason"
    prev = con.execute("SELECT hash FROM change_log WHERE id = 9").fetchone()[0]
    row = con.execute(f"SELECT {cols} FROM change_log WHERE id = 10").fetchone()
    forged = store.chain_hash(prev, row[0], "mallory", *row[2:])
    con.execute("UPDATE change_log SET user = 'mallory', hash = ? WHERE id = 10", (forged,))
    assert [(f.code, f.where) for f in findings(path)] == [("LOG-ALTERED", "change_log id 11")]


def test_chain_detects_a_row_removed_in_the_middle(tampered):
    con, path = tampered
    con.execute("DELETE FROM change_log WHERE id IN (12, 13)")
    assert [(f.code, f.where) for f in findings(path)] == [("LOG-REMOVED", "change_log ids 12-13")]


def test_chain_detects_the_last_row_removed(tampered):
    con, path = tampered
    last = con.execute("SELECT max(id) FROM change_log").fetchone()[0]
    con.execute("DELETE FROM change_log WHERE id = ?", (last,))
    assert [(f.code, f.where) for f in findings(path)] == [("LOG-REMOVED", f"change_log id {last}")]


# -- history: the audit's story, and its state at an earlier time rebuilt from the log ------
def saved_copy(db, audit_id: int) -> dict:
    """The audit's rows as stored now, keyed like the change log (made with plain SQL)."""
    out = {"audits": {str(audit_id): dict(db.execute_returning_dicts(
        "SELECT * FROM audits WHERE id = ?", [audit_id])[0])}}
    for table, key in (("answers", "audit_id || '/' || key"),
                       ("checklist_answers", "audit_id || '/' || item"), ("actions", "id")):
        rows = db.execute_returning_dicts(
            f"SELECT CAST({key} AS TEXT) AS k, * FROM {table} WHERE audit_id = ?", [audit_id])
        if rows:
            out[table] = {r.pop("k"): r for r in rows}
    return out


def test_state_at_an_earlier_time_is_rebuilt_from_the_log(db):
    from ehkit import audits, history

    base_rows(db)
    first = audit_form()
    audit_id = audits.save_draft(db, first)
    copy_then = saved_copy(db, audit_id)
    then = db.execute("SELECT max(at) FROM change_log").fetchone()[0]
    import time
    time.sleep(0.01)  # the log keeps milliseconds

    later = audits.load(db, audit_id)
    later["summary"] = "Rewritten summary"
    later["answers"] = dict(later["answers"])
    dropped = next(iter(later["answers"]))
    del later["answers"][dropped]
    item = next(iter(later["checklist"]))
    later["checklist"] = {**later["checklist"], item: {"status": "not_recorded",
                                                       "note": "missing"}}
    later["actions"] = []
    audits.save_draft(db, later, audit_id=audit_id)
    audits.submit(db, audit_id, today=dt.date(2026, 6, 1))
    audits.reopen(db, audit_id, "Grade for section 2 entered wrongly")

    assert saved_copy(db, audit_id) != copy_then
    assert history.state_at(db, audit_id, then) == copy_then
    assert history.state_at(db, audit_id) == saved_copy(db, audit_id)
    # Before the audit existed there is nothing.
    assert history.state_at(db, audit_id, "2000-01-01T00:00:00Z") == {}

    story = history.format_history(history.history(db, audit_id))
    assert any("audits " + str(audit_id) + " status: 'submitted' -> 'draft'" in line
               and "(reason: Grade for section 2 entered wrongly)" in line for line in story)
    assert any(f"answers {audit_id}/{dropped} removed" in line for line in story)


def test_cli_history_prints_the_story_and_an_earlier_state(db, tmp_path, capsys):
    from ehkit import cli

    base_rows(db)
    audit_id = save_rows(db, complete_audit())
    assert cli.main(["history", "--db", str(tmp_path / "ehkit.db"), str(audit_id)]) == 0
    out = capsys.readouterr().out
    assert f"as Ava Auditor  audits {audit_id} added" in out
    assert cli.main(["history", "--db", str(tmp_path / "ehkit.db"), "999"]) == 2
    assert "nothing about audit 999" in capsys.readouterr().err
    assert cli.main(["history", "--db", str(tmp_path / "ehkit.db"), str(audit_id),
                     "--at", "2000-01-01T00:00"]) == 2
    assert "did not exist" in capsys.readouterr().err


def test_history_reads_and_prints_the_clock_here(db, tmp_path, capsys):
    """Times are printed by the UK clock (BST in summer), and a printed time given back to
    --at includes the change printed at it."""
    from ehkit import cli, history

    summer = {"at": "2026-07-01T09:05:03.250Z", "user": "ava", "actor": None,
              "table_name": "audits", "row_key": "7", "field": "summary", "old": "a",
              "new": "b", "reason": None}
    (line,) = history.format_history([summer])
    assert line.startswith("01/07/2026 10:05:03  ava  audits 7 summary")
    assert history.log_time("01/07/2026 10:05:03") == "2026-07-01T09:05:03.999Z"
    assert history.log_time("15/01/2026 10:00") == "2026-01-15T10:00:00.999Z"
    assert history.log_time("2026-07-01T10:05") == "2026-07-01T09:05:00.999Z"
    assert history.log_time("2026-07-01T09:05:03.250Z") == "2026-07-01T09:05:03.250Z"
    with pytest.raises(EhkitError, match="24/11/2026 14:30"):
        history.log_time("yesterday")

    base_rows(db)
    audit_id = save_rows(db, complete_audit())
    assert cli.main(["history", "--db", str(tmp_path / "ehkit.db"), str(audit_id)]) == 0
    printed = capsys.readouterr().out.splitlines()[-1][:19]  # e.g. 24/11/2026 14:30:05
    assert cli.main(["history", "--db", str(tmp_path / "ehkit.db"), str(audit_id),
                     "--at", printed]) == 0
    assert json.loads(capsys.readouterr().out)["audits"][str(audit_id)]["id"] == audit_id


def test_every_data_table_has_its_three_change_log_triggers(db):
    tables = set(store.logged_tables(db))
    assert {"audits", "answers", "checklist_answers", "actions", "episodes", "children",
            "moderations"} <= tables
    triggers = {r[0] for r in db.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    for table in tables:
        assert {f"log_{table}_{op}" for op in ("insert", "update", "delete")} <= triggers
    assert check.trigger_checks(db) == []


def test_a_log_rewritten_wholesale_is_caught_against_a_backup_or_noted_head(tmp_path, capsys):
    from ehkit import backup, cli

    path = tmp_path / "ehkit.db"
    database = store.connect(path)
    base_rows(database)
    save_rows(database, complete_audit())
    database.close()
    earlier = backup.backup(path, tmp_path / "b")
    noted = f"{earlier.change_log_rows}:{earlier.chain_head}"
    # Someone who knows the hashing changes who made row 2 and recomputes every hash after it.
    con = raw(path)
    con.execute("DROP TRIGGER change_log_no_update")
    cols = "at, user, actor, table_name, row_key, audit_id, field, old, new, reason"
    prev = None
    for row in con.execute(f"SELECT id, {cols} FROM change_log ORDER BY id").fetchall():
        fields = list(row[1:])
        if row[0] == 2:
            fields[1] = "mallory"
        prev = store.chain_hash(prev, *fields)
        con.execute("UPDATE change_log SET user = ?, hash = ? WHERE id = ?",
                    [fields[1], prev, row[0]])
    con.close()
    # The chain alone cannot tell (there is no secret) ...
    assert cli.main(["check", "--db", str(path)]) == 1  # (only the dropped guard shows)
    out = capsys.readouterr().out
    assert "LOG-ALTERED" not in out and "LOG-TRIGGER  trigger change_log_no_update" in out
    # ... but a backup, or the head noted from it, kept elsewhere can.
    for against in (str(earlier.path), noted):
        assert cli.main(["check", "--db", str(path), "--against", against]) == 1
        out = capsys.readouterr().out
        assert f"LOG-REWRITTEN  change_log id {earlier.change_log_rows}" in out
    # And an untouched store passes against its own backup.
    other = tmp_path / "other.db"
    database = store.connect(other)
    base_rows(database)
    database.close()
    made = backup.backup(other, tmp_path / "c")
    database = store.connect(other)
    save_rows(database, complete_audit())  # the log goes on after the backup
    database.close()
    assert cli.main(["check", "--db", str(other), "--against", str(made.path)]) == 0


def test_history_shows_control_and_direction_characters_without_obeying_them(db):
    from ehkit import history

    base_rows(db)
    audit_id = save_rows(db, complete_audit())
    sneaky = "typo\x1b[2J\u202eexe.gnp"
    with store.acting_as(actor="Ava\x07 Auditor", reason=sneaky), store.transaction(db):
        db["audits"].update(audit_id, {"summary": "new\x1b[31m"})
    (line,) = [x for x in history.format_history(history.history(db, audit_id))
               if "summary" in x]
    assert all(c.isprintable() for c in line)
    assert "(reason: typo\\x1b[2J\\u202eexe.gnp)" in line and "as Ava\\x07 Auditor" in line


# -- anchors kept with the backups, and a keyed log -----------------------------------------
LOG_FIELDS = "at, user, actor, table_name, row_key, audit_id, field, old, new, reason"


def rewrite_from(path, first_id: int) -> None:
    """A careful forger: changes who made row ``first_id``, recomputes every hash after it,
    puts the guard back and resets ehkit's schema seal, so the store looks untouched."""
    con = raw(path)
    (guard,) = con.execute("SELECT sql FROM sqlite_master WHERE name = 'change_log_no_update'"
                           ).fetchone()
    con.execute("DROP TRIGGER change_log_no_update")
    prev = None
    for row in con.execute(f"SELECT id, {LOG_FIELDS}, hash FROM change_log ORDER BY id"
                           ).fetchall():
        if row[0] < first_id:
            prev = row[-1]
            continue
        fields = list(row[1:-1])
        if row[0] == first_id:
            fields[1] = "mallory"
        prev = store.chain_hash(prev, *fields)
        con.execute("UPDATE change_log SET user = ?, hash = ? WHERE id = ?",
                    [fields[1], prev, row[0]])
    con.execute(guard)
    (version,) = con.execute("PRAGMA schema_version").fetchone()
    con.execute(f"PRAGMA user_version = {version}")
    con.close()


def test_a_plain_check_finds_a_rewrite_of_what_an_earlier_backup_or_check_anchored(
        tmp_path, capsys):
    from ehkit import backup, cli

    path = tmp_path / "ehkit.db"
    database = store.connect(path)
    base_rows(database)
    database.close()
    first = backup.backup(path)  # anchors its head in data's backups/ehkit-anchors.txt
    database = store.connect(path)
    save_rows(database, complete_audit())
    database.close()
    assert cli.main(["check", "--db", str(path)]) == 0  # ... and so does a clean check
    checked = last_id(store.connect(path, read_only=True))
    capsys.readouterr()
    lines = (tmp_path / "backups" / "ehkit-anchors.txt").read_text().splitlines()
    assert [line.split(", ")[2:] for line in lines] == [
        [str(first.change_log_rows), first.chain_head], [str(checked), mock_head(path)]]

    rewrite_from(path, first.change_log_rows + 1)  # after the backup's head
    assert cli.main(["check", "--db", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"LOG-REWRITTEN  change_log id {checked}: its hash differs from the anchor" in out
    assert "LOG-ALTERED" not in out and "LOG-TRIGGER" not in out  # nothing else shows it

    rewrite_from(path, 1)  # from the very start: the store's identity changes too
    assert cli.main(["check", "--db", str(path)]) == 1
    assert "LOG-REWRITTEN  change_log id 1: " in capsys.readouterr().out


def mock_head(path) -> str:
    con = raw(path)
    try:
        return con.execute("SELECT hash FROM change_log ORDER BY id DESC LIMIT 1").fetchone()[0]
    finally:
        con.close()


def test_a_restore_starts_a_new_line_of_anchors(tmp_path, capsys):
    from ehkit import backup, cli

    path = tmp_path / "ehkit.db"
    database = store.connect(path)
    base_rows(database)
    database.close()
    older = backup.backup(path, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).path
    database = store.connect(path)
    save_rows(database, complete_audit())
    database.close()
    backup.backup(path)  # anchors a later head, which the restore takes the log back from
    backup.restore(older, path, force=True)
    assert cli.main(["check", "--db", str(path)]) == 0, capsys.readouterr().out


def test_with_a_log_key_a_row_added_with_a_recomputed_hash_is_found(tmp_path, log_key,
                                                                   monkeypatch, capsys):
    from ehkit import cli

    path = tmp_path / "ehkit.db"
    database = store.connect(path)
    base_rows(database)
    audit_id = save_rows(database, complete_audit())
    database.close()
    assert mock_head(path).startswith("hmac:")
    assert cli.main(["check", "--db", str(path)]) == 0
    # A tool that logs exactly as ehkit does, but without the key: data and log agree.
    con = raw(path)
    con.create_function("ehkit_user", 0, lambda: "tool")
    con.create_function("ehkit_actor", 0, lambda: None)
    con.create_function("ehkit_reason", 0, lambda: None)
    con.create_function("ehkit_hash", -1, store.chain_hash)
    con.execute(f"UPDATE audits SET overall_grade = 1 WHERE id = {audit_id}")
    (forged,) = con.execute("SELECT max(id) FROM change_log").fetchone()
    con.close()
    assert cli.main(["check", "--db", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"LOG-ALTERED  change_log id {forged}: added outside ehkit" in out
    assert "LOG-UNLOGGED" not in out  # the data matches the forged log: only the key tells
    # Without the key a check cannot vouch for the log, and says so.
    monkeypatch.delenv("EHKIT_LOG_KEY")
    assert cli.main(["check", "--db", str(path)]) == 1
    assert "LOG-KEY  change_log id 1: " in capsys.readouterr().out


def test_a_log_key_others_may_read_is_refused(tmp_path, log_key, capsys):
    from ehkit import cli

    log_key.chmod(0o640)
    assert cli.main(["demo", "--db", str(tmp_path / "d.db"), "--episodes", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "may be read by others (mode 640)" in err[0]
    assert f"chmod 600 {log_key}" in err[0]
    assert not (tmp_path / "d.db").exists()


def test_a_new_demo_store_where_another_was_anchored_is_not_taken_for_a_rewrite(tmp_path,
                                                                                capsys):
    from ehkit import backup, cli

    path = tmp_path / "ehkit.db"
    demo = ["demo", "--db", str(path), "--episodes", "20", "--years", "1", "--until",
            "2026-10-31"]
    assert cli.main(demo) == 0
    backup.backup(path)  # anchors the first store's head
    assert cli.main([*demo, "--force"]) == 0  # a new store in its place, as `make demo` does
    assert cli.main(["check", "--db", str(path), "--today", "2026-10-31"]) == 0, (
        capsys.readouterr().out)


def test_an_edited_line_of_the_anchor_file_is_reported(tmp_path, capsys):
    from ehkit import backup, cli

    path = tmp_path / "ehkit.db"
    database = store.connect(path)
    base_rows(database)
    database.close()
    backup.backup(path)
    anchor_file = tmp_path / "backups" / "ehkit-anchors.txt"
    with open(anchor_file, "a", encoding="ascii") as f:
        f.write("someone was here\n")
    assert cli.main(["check", "--db", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"LOG-ANCHOR  {anchor_file} line 2: not an anchor" in out
    assert len(anchor_file.read_text().splitlines()) == 2  # nothing anchored after a finding
