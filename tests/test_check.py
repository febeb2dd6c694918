"""`ehkit check`: the demo store is clean, and every planted problem is found, with where."""

from __future__ import annotations

import datetime as dt

import pytest
from builders import add_moderator, base_rows, complete_audit, raw, save_rows
from conftest import DEMO_UNTIL

from ehkit import check, cli, netfs
from ehkit import db as store
from ehkit import template as templates

TODAY = dt.date(2026, 6, 1)


@pytest.fixture
def db(db_both):
    """The data-quality checks find the same on SQLite and on PostgreSQL (issue 18)."""
    return db_both


def codes(findings) -> list[tuple[str, str]]:
    return [(f.code, f.where) for f in findings]


def test_demo_database_has_no_problems(demo_copy_both):
    database = store.connect(demo_copy_both)
    try:
        assert check.check(database, today=DEMO_UNTIL) == []
        assert check.check(database) == []  # and on the real today
    finally:
        database.close()


def test_cli_check_says_no_problems_and_exits_0(demo_copy_both, capsys):
    assert cli.main(["check", "--db", demo_copy_both]) == 0
    out = capsys.readouterr().out
    assert "no problems found" in out and "chain head" in out


def test_cli_check_prints_each_finding_with_code_and_exits_1(db, store_at, capsys):
    base_rows(db)
    with store.transaction(db):
        db["episodes"].insert({"id": 2, "ehm_number": "EHM2", "start_date": "2026-02-01",
                               "status": "open", "lead_agency_id": 1})
    assert cli.main(["check", "--db", store_at]) == 1
    out = capsys.readouterr().out
    assert "DQ-EPISODE-NO-CHILDREN  episodes id 2 (EHM2)" in out
    assert "1 problem(s) found" in out


@pytest.fixture
def audited(db):
    base_rows(db)
    return db


def test_required_fields_blank_on_submitted_audit(audited):
    db = audited
    whole = complete_audit()
    whole["audit"]["overall_grade"] = None
    whole["audit"]["overall_reasons"] = "   "
    section = templates.load().graded_sections[1]
    whole["answers"] = [a for a in whole["answers"] if a["key"] != section.key]
    evidence = templates.load().graded_sections[2]
    blank = {evidence.key, *(i.key for i in evidence.items)}
    whole["answers"] = [{**a, "comment": None} if a["key"] in blank else a
                        for a in whole["answers"]]
    audit_id = save_rows(db, whole)
    draft = complete_audit(status="draft")
    draft["audit"]["overall_grade"] = None  # a draft may be incomplete
    save_rows(db, draft)
    assert codes(check.data_quality(db, today=TODAY)) == [
        ("AUDIT-OVERALL-GRADE", f"audit {audit_id}, overall grade"),
        ("AUDIT-OVERALL-REASONS", f"audit {audit_id}, overall reasons"),
        ("AUDIT-SECTION-GRADE", f"audit {audit_id}, section {section.key} ({section.title})"),
        ("AUDIT-SECTION-EVIDENCE",
         f"audit {audit_id}, section {evidence.key} ({evidence.title})"),
    ]


def test_grade_off_the_templates_scale(audited, tmp_path):
    db = audited
    text = templates.load().path.read_text(encoding="utf-8")
    start = text.index('  { value = 4, label = "Inadequate"')
    text = text[:start] + text[text.index("\n", start) + 1:]
    text = text.replace("inadequate_section_grade = 4", "inadequate_section_grade = 3")
    text = text.replace("overall_cap_grade = 3", "overall_cap_grade = 2")
    three = tmp_path / "three_grades.toml"
    three.write_text(text, encoding="utf-8")
    assert templates.load(three).grade_values == (1, 2, 3)
    whole = complete_audit(grade=3)
    whole["audit"]["template"] = str(three)
    whole["audit"]["overall_grade"] = 4
    audit_id = save_rows(db, whole)
    assert codes(check.data_quality(db, today=TODAY)) == [
        ("AUDIT-GRADE-SCALE", f"audit {audit_id}, overall grade")]


def test_unknown_template_is_reported(audited):
    whole = complete_audit()
    whole["audit"]["template"] = "no_such_tool"
    audit_id = save_rows(audited, whole)
    assert codes(check.data_quality(audited, today=TODAY)) == [("DQ-TEMPLATE", f"audit {audit_id}")]


def test_dates_out_of_order(audited):
    db = audited
    whole = complete_audit()
    whole["audit"]["audit_date"] = "2026-01-01"  # the episode began 2026-01-05
    whole["audit"]["submitted_at"] = "2026-01-02T09:00:00Z"
    whole["actions"][0]["due_date"] = "2025-12-31"
    audit_id = save_rows(db, whole)
    with store.transaction(db):
        db["episodes"].insert({"id": 2, "ehm_number": "EHM2", "start_date": "2026-01-01",
                               "end_date": "2026-02-01", "status": "closed", "lead_agency_id": 1})
        db["children"].insert({"id": 2, "episode_id": 2, "name": "Late Born",
                               "date_of_birth": "2026-03-01"})
        db["children"].insert({"id": 3, "episode_id": 1, "name": "Future Born",
                               "date_of_birth": "2026-07-01"})
    assert codes(check.data_quality(db, today=TODAY)) == [
        ("AUDIT-DATE-BEFORE-EPISODE", f"audit {audit_id}"),
        ("ACTION-DUE-AFTER-AUDIT", f"audit {audit_id} action 1"),
        ("DQ-DATE-ORDER", "child 2 (episode 2)"),
        ("DOB_IN_FUTURE", "child 3 (episode 1)"),
    ]


def test_episode_with_no_children(audited):
    with store.transaction(audited):
        audited["episodes"].insert({"id": 2, "ehm_number": "EHM2", "start_date": "2026-02-01",
                                    "status": "open", "lead_agency_id": 1})
    assert codes(check.data_quality(audited, today=TODAY)) == [
        ("DQ-EPISODE-NO-CHILDREN", "episodes id 2 (EHM2)")]


def test_action_past_due_with_no_owner(audited):
    db = audited
    whole = complete_audit()
    base = dict(whole["actions"][0])
    whole["actions"] = [
        {**base, "number": 1, "owner_id": None, "by_whom": " ", "due_date": "2026-05-31"},
        {**base, "number": 2, "owner_id": None, "by_whom": None, "due_date": "2026-06-01"},
        {**base, "number": 3, "owner_id": None, "by_whom": None, "due_date": "2026-04-01",
         "completed_date": "2026-04-01"},
        {**base, "number": 4, "owner_id": None, "by_whom": "Leo Lead", "due_date": "2026-04-01"},
        {**base, "number": 5, "owner_id": 2, "by_whom": None, "due_date": "2026-04-01"},
    ]
    audit_id = save_rows(db, whole)
    # Only action 1: past due (due yesterday), open, no owner named either way.
    assert codes(check.data_quality(db, today=TODAY)) == [
        ("DQ-ACTION-NO-OWNER", f"audit {audit_id} action 1")]


def test_a_moderation_of_grades_the_audit_no_longer_holds_is_found(audited):
    """A moderation lost before moderations checked the version: the store holds a
    moderation agreeing with grade 2 while the audit says 3 (written here as the race did)."""
    db = audited
    add_moderator(db)
    audit_id = save_rows(db, complete_audit(grade=2))
    with store.transaction(db):
        db["moderations"].insert_all([
            {"audit_id": audit_id, "key": "overall", "moderator_id": 3,
             "moderated_on": "2026-03-10", "original_grade": 2, "moderated_grade": 2},
            {"audit_id": audit_id, "key": "impact", "moderator_id": 3,
             "moderated_on": "2026-03-10", "original_grade": 2, "moderated_grade": 2}])
        db["audits"].update(audit_id, {"status": "moderated"})
    assert [c for c in codes(check.data_quality(db, today=TODAY))
            if c[0] == "DQ-MODERATION-STALE"] == []
    with store.transaction(db):  # the auditor's regrade, which the moderation never saw
        db.execute("UPDATE audits SET overall_grade = 3 WHERE id = ?", [audit_id])
    assert [c for c in codes(check.data_quality(db, today=TODAY))
            if c[0] == "DQ-MODERATION-STALE"] == [("DQ-MODERATION-STALE",
                                                   f"audit {audit_id}, overall")]


def test_unlogged_data_changes_are_found(tmp_path):
    path = tmp_path / "ehkit.db"
    database = store.connect(path)
    base_rows(database)
    audit_id = save_rows(database, complete_audit())
    database.close()
    con = raw(path)
    for op in ("update", "insert", "delete"):
        con.execute(f"DROP TRIGGER log_children_{op}")
    con.execute("DROP TRIGGER log_audits_update")
    con.execute(f"UPDATE audits SET overall_grade = 1 WHERE id = {audit_id}")
    con.execute("UPDATE children SET name = 'Someone Else' WHERE id = 1")
    con.execute("INSERT INTO children (id, episode_id, name) VALUES (5, 1, 'Slipped In')")
    con.close()
    database = store.connect(path, migrate=False)
    try:
        found = check.check(database, today=TODAY)
    finally:
        database.close()
    assert sorted(codes(found)) == sorted([
        ("LOG-TRIGGER", "trigger log_audits_update"),
        ("LOG-TRIGGER", "trigger log_children_insert"),
        ("LOG-TRIGGER", "trigger log_children_update"),
        ("LOG-TRIGGER", "trigger log_children_delete"),
        ("LOG-UNLOGGED", "children 1"),
        ("LOG-UNLOGGED", "children 5"),
        ("LOG-UNLOGGED", f"audits {audit_id}"),
    ])
    msg = next(f.message for f in found if f.where == f"audits {audit_id}")
    assert "overall_grade changed outside ehkit" in msg


def test_row_deleted_outside_ehkit_is_found(tmp_path):
    path = tmp_path / "ehkit.db"
    database = store.connect(path)
    base_rows(database)
    audit_id = save_rows(database, complete_audit())
    database.close()
    con = raw(path)
    con.execute("DROP TRIGGER log_actions_delete")
    con.execute(f"DELETE FROM actions WHERE audit_id = {audit_id}")
    con.close()
    database = store.connect(path, migrate=False)
    try:
        found = codes(check.replay_checks(database))
    finally:
        database.close()
    assert len(found) == 1 and found[0][0] == "LOG-UNLOGGED" and found[0][1].startswith("actions ")


def test_foreign_key_problem_is_found(tmp_path):
    path = tmp_path / "ehkit.db"
    database = store.connect(path)
    base_rows(database)
    database.close()
    # A tool that logs like ehkit but runs with foreign keys off (sqlite3's default).
    con = raw(path)
    con.create_function("ehkit_user", 0, lambda: "tool")
    con.create_function("ehkit_actor", 0, lambda: None)
    con.create_function("ehkit_reason", 0, lambda: None)
    con.create_function("ehkit_hash", -1, store.chain_hash)
    con.execute("INSERT INTO children (id, episode_id, name) VALUES (7, 99, 'Orphan Row')")
    con.close()
    database = store.connect(path, migrate=False)
    try:
        assert codes(check.check(database, today=TODAY)) == [
            ("DB-FOREIGN-KEY", "children rowid 7")]
    finally:
        database.close()


def test_damaged_file_is_found_by_integrity_check(tmp_path, capsys):
    path = tmp_path / "ehkit.db"
    database = store.connect(path)
    base_rows(database)
    save_rows(database, complete_audit())
    page_size = database.conn.execute("PRAGMA page_size").fetchone()[0]
    root = database.conn.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'audits_status'").fetchone()[0]
    database.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    database.close()
    with open(path, "r+b") as f:  # scribble over one index page, as a failing disk might
        f.seek((root - 1) * page_size)
        f.write(b"\x07" * page_size)
    database = store.connect(path, migrate=False)
    try:
        found = check.database_checks(database)
    finally:
        database.close()
    assert found and {f.code for f in found} == {"DB-INTEGRITY"}
    # The command says so in one line and exits 1, no traceback.
    assert cli.main(["check", "--db", str(path)]) == 1
    out = capsys.readouterr().out
    assert "DB-INTEGRITY  database file:" in out and "restore the latest good backup" in out
    assert "Traceback" not in out


# -- network drives ------------------------------------------------------------------------
MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
//fileserver/early\\040help /mnt/early\\040help cifs rw,vers=3.0 0 0
fs1:/export /srv/nfs nfs4 rw 0 0
/dev/sdb1 /srv/nfs/local ext4 rw 0 0
"""


@pytest.mark.parametrize("path,expected", [
    ("/mnt/early help/ehkit/ehkit.db", "cifs"),
    ("/srv/nfs/data/ehkit.db", "nfs4"),
    ("/srv/nfs/local/ehkit.db", None),  # a local disk mounted inside the share
    ("/home/auditor/ehkit.db", None),
])
def test_network_file_system_is_detected_from_mounts(tmp_path, path, expected):
    mounts = tmp_path / "mounts"
    mounts.write_text(MOUNTS)
    assert netfs.network_filesystem(path, mounts) == expected


def test_network_warning_points_to_the_readme_advice():
    from pathlib import Path
    text = netfs.warning_text("/mnt/x/ehkit.db", "cifs")
    assert "network drive (cifs)" in text and 'README.md, section "Network drives"' in text
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert "## Network drives" in readme or "### Network drives" in readme


def test_opening_a_database_on_a_network_drive_warns_once(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text(MOUNTS)
    path = "/srv/nfs/data/ehkit-warn-test.db"
    with pytest.warns(netfs.NetworkFilesystemWarning, match="network drive \\(nfs4\\)"):
        assert netfs.warn_if_network(path, mounts) == "nfs4"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second open of the same file stays quiet
        assert netfs.warn_if_network(path, mounts) == "nfs4"
        assert netfs.warn_if_network("/home/a/ehkit.db", mounts) is None


def test_chain_written_before_migration_0040_still_verifies(db):
    if store.is_postgres(db):
        pytest.skip("SQLite's triggers before its migration 0040: PostgreSQL's never were")
    # The foundation's triggers hashed a one-column row key as a number: such a row is whole.
    base_rows(db)
    con = db.conn
    con.execute("DROP TRIGGER change_log_no_update")
    row = con.execute("SELECT id, at, user, actor, table_name, row_key, audit_id, field, old,"
                      " new, reason FROM change_log WHERE table_name = 'episodes'").fetchone()
    prev = con.execute("SELECT hash FROM change_log WHERE id = ?", [row[0] - 1]).fetchone()[0]
    legacy = store.chain_hash(prev, *row[1:5], int(row[5]), *row[6:])
    con.execute("UPDATE change_log SET hash = ? WHERE id = ?", [legacy, row[0]])
    nxt = con.execute("SELECT id, at, user, actor, table_name, row_key, audit_id, field, old,"
                      " new, reason FROM change_log WHERE id = ?", [row[0] + 1]).fetchone()
    con.execute("UPDATE change_log SET hash = ? WHERE id = ?",
                [store.chain_hash(legacy, *nxt[1:]), nxt[0]])
    assert check.chain_checks(db) == []
    con.execute("UPDATE change_log SET user = 'mallory' WHERE id = ?", [row[0]])
    assert codes(check.chain_checks(db)) == [("LOG-ALTERED", f"change_log id {row[0]}")]


# -- what a check must not miss or mishandle (issue 13, part 4) ----------------------------
def sha256(path) -> str:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored(tmp_path, audits: int = 1):
    path = tmp_path / "ehkit.db"
    database = store.connect(path)
    base_rows(database)
    ids = [save_rows(database, complete_audit()) for _ in range(audits)]
    database.close()
    return path, ids


def test_checking_a_backup_leaves_it_byte_for_byte_unchanged(tmp_path, capsys):
    from ehkit import backup
    path, _ = stored(tmp_path)
    made = backup.backup(path, tmp_path / "b").path
    before = sha256(made)
    assert cli.main(["check", "--db", str(made)]) == 0
    assert "no problems found" in capsys.readouterr().out
    assert sha256(made) == before
    assert sorted(p.name for p in made.parent.iterdir()) == sorted(
        [made.name, "ehkit-anchors.txt"])  # no -wal or -shm left beside it


@pytest.mark.parametrize("damage", ["start overwritten", "truncated"])
def test_an_unreadable_store_is_a_finding_not_a_traceback(tmp_path, capsys, damage):
    path, _ = stored(tmp_path, audits=20)
    if damage == "start overwritten":
        with open(path, "r+b") as f:
            f.write(b"\x00" * 100)
    else:
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size // 3)
    assert cli.main(["check", "--db", str(path)]) == 1
    captured = capsys.readouterr()
    assert "DB-UNREADABLE  database file:" in captured.out
    assert "restore the latest good backup" in captured.out
    assert "Traceback" not in captured.out + captured.err


def test_quick_check_finds_a_trigger_dropped_used_and_recreated(tmp_path, capsys):
    path, (audit_id,) = stored(tmp_path)
    con = raw(path)
    (sql,) = con.execute("SELECT sql FROM sqlite_master WHERE name = 'log_audits_update'"
                         ).fetchone()
    con.execute("DROP TRIGGER log_audits_update")
    con.execute(f"UPDATE audits SET overall_grade = 1 WHERE id = {audit_id}")
    con.execute(sql)  # put back exactly as it was
    con.close()
    for quick in (["--quick"], []):
        assert cli.main(["check", "--db", str(path), *quick]) == 1
        out = capsys.readouterr().out
        assert "LOG-TRIGGER  schema: changed outside ehkit" in out
    assert f"LOG-UNLOGGED  audits {audit_id}: overall_grade changed outside ehkit" in out


def test_ehkit_own_schema_changes_keep_the_quick_check_clean(tmp_path):
    path, _ = stored(tmp_path)  # migrations and bulk loads change the schema too
    database = store.connect(path)
    try:
        with store.transaction(database):
            store.bulk_insert(database, "children", ["id", "episode_id", "name"],
                              [(10 + i, 1, f"Bulk Testchild {i}") for i in range(3)])
        assert check.check(database, replay=False) == []
    finally:
        database.close()


def test_a_store_written_by_a_newer_ehkit_is_refused(tmp_path, capsys):
    path, _ = stored(tmp_path)
    con = raw(path)
    con.execute("INSERT INTO schema_migrations VALUES (9990, 'from_the_future', "
                "'2027-01-01T00:00:00Z')")
    con.close()
    before = sha256(path)
    for args in (["check"], ["history", "1"], ["actions", "overdue"], ["backup"]):
        assert cli.main([*args, "--db", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["ehkit: error: this store was written by a newer ehkit (migration 9990); "
                       "upgrade ehkit"]
    assert sha256(path) == before


def test_an_applied_migration_whose_record_is_missing_is_reported(tmp_path, capsys):
    path, _ = stored(tmp_path)
    con = raw(path)
    con.execute("DELETE FROM schema_migrations WHERE number = 85")
    con.close()
    assert cli.main(["check", "--db", str(path), "--quick"]) == 1
    out = capsys.readouterr().out
    assert "DB-MIGRATION  migration 0085 (episode_day_counts): not recorded as applied" in out
    assert "duplicate column name" in out
    # The app says the same in one line instead of SQLite's error, and changes nothing.
    assert cli.main(["actions", "overdue", "--db", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "migration 0085 (episode_day_counts) cannot be applied" in err[0]
    assert 85 not in store.recorded_migrations(raw(path))


def test_a_store_not_yet_migrated_is_not_a_finding(tmp_path, capsys):
    path, _ = stored(tmp_path)
    con = raw(path)  # as an older ehkit left it: without the last migration, really
    for op in ("insert", "update", "delete"):
        con.execute(f"DROP TRIGGER count_episodes_{op}")
    con.execute("DROP TABLE episode_counts")
    con.execute("DROP TABLE episode_days")
    con.execute("DELETE FROM schema_migrations WHERE number = 135")
    con.execute("PRAGMA user_version = 0")
    con.close()
    database = store.connect(path, read_only=True)
    try:
        assert check.migration_checks(database) == []
    finally:
        database.close()
    assert cli.main(["check", "--db", str(path), "--today", "2026-06-01"]) == 0
    assert "1 migration(s) are not yet applied" in capsys.readouterr().out
    assert store.recorded_migrations(raw(path)) == {n for n, _, _ in store.migrations()} - {135}
