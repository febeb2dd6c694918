"""Crashes leave whole records (on SQLite and on PostgreSQL); a full disk gives a clear error
and writes nothing half (SQLite's page limit stands in for the disk; PostgreSQL's full server
is told in words by ``ehkit.postgres.PERSON_ERRORS``)."""

from __future__ import annotations

import os
import random
import select
import signal
import time

import pytest
from builders import audit_form, base_rows, complete_audit

from ehkit import audits, check
from ehkit import db as store

KILLS = 60
WHOLE = complete_audit()


def _writer(path: str, ack_fd: int, seed: int) -> None:
    """Save audits until killed; after each save returns, acknowledge its id on the pipe."""
    rng = random.Random(seed)
    database = store.connect(path)
    while True:
        audit_id = audits.save_draft(database, audit_form(text=f"seed {seed}"))
        if rng.random() < 0.3:  # an edit of a saved audit (updates, deletes, inserts)
            again = audits.load(database, audit_id)
            again["summary"] = "edited"
            again["actions"] = [*again["actions"], {"action": "Another", "by_whom": "Leo Lead",
                                                    "due_date": "2026-05-01"}]
            audits.save_draft(database, again, audit_id=audit_id)
            audit_id = -audit_id  # acknowledged as edited
        os.write(ack_fd, f"{audit_id}\n".encode())


def _fork_writer(path, seed) -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_fd)
            _writer(str(path), write_fd, seed)
        finally:
            os._exit(code)
    os.close(write_fd)
    return pid, read_fd


def _first_ack(read_fd: int, timeout: float = 60) -> bytes:
    """Wait until the writer has acknowledged one save (it is warm and saving)."""
    ready, _, _ = select.select([read_fd], [], [], timeout)
    assert ready, "the writer saved nothing within a minute"
    return os.read(read_fd, 65536)


def _acks(read_fd: int, data: bytes = b"") -> list[int]:
    while chunk := os.read(read_fd, 65536):
        data += chunk
    os.close(read_fd)
    return [int(x) for x in data.decode().split()]  # a torn last line cannot happen: < PIPE_BUF


@pytest.mark.slow
def test_killing_a_writer_at_random_moments_leaves_every_acknowledged_save_whole(store_at):
    path = store_at  # a file, or a PostgreSQL database: the writer killed is its client
    database = store.connect(path)
    base_rows(database)
    database.close()
    rng = random.Random(7)
    acknowledged: dict[int, bool] = {}  # audit id -> edited
    unacknowledged: set[int] = set()
    for kill in range(KILLS):
        pid, read_fd = _fork_writer(path, seed=kill)
        first = _first_ack(read_fd)
        time.sleep(rng.uniform(0, 0.06))  # a random moment of the saves that follow
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        for a in _acks(read_fd, first):
            acknowledged[abs(a)] = acknowledged.get(abs(a), False) or a < 0

        database = store.connect(path)
        try:
            q = database.conn.execute
            ids = {r[0] for r in q("SELECT id FROM audits")}
            assert set(acknowledged) <= ids, "an acknowledged save is missing"
            unacknowledged = ids - set(acknowledged)  # committed, killed before the ack
            # No audit without all its rows, and no rows without their audit.
            shapes = q(
                "SELECT a.id, a.summary, (SELECT count(*) FROM answers WHERE audit_id = a.id),"
                " (SELECT count(*) FROM checklist_answers WHERE audit_id = a.id),"
                " (SELECT count(*) FROM actions WHERE audit_id = a.id) FROM audits a").fetchall()
            for audit_id, summary, n_answers, n_check, n_actions in shapes:
                edited = summary == "edited"
                assert (n_answers, n_check, n_actions) == (
                    len(WHOLE["answers"]), len(WHOLE["checklist"]), 2 if edited else 1), audit_id
                if acknowledged.get(audit_id):
                    assert edited
            if not store.is_postgres(database):  # PostgreSQL checks its keys at each write
                assert q("PRAGMA foreign_key_check").fetchall() == []
            if kill % 10 == 9:
                if not store.is_postgres(database):
                    assert q("PRAGMA integrity_check").fetchall() == [("ok",)]
                # No data change without its change-log row, and the chain unbroken.
                chain = check.chain_checks(database)
                assert chain == []
                assert check.replay_checks(database) == []
        finally:
            database.close()
    assert len(acknowledged) >= KILLS  # the writers really were saving when killed
    assert len(unacknowledged) <= KILLS  # at most the one save in flight at each kill


def _fill(database) -> None:
    """Give the store some size so one audit more needs new pages."""
    for _ in range(3):
        audits.save_draft(database, audit_form())


def test_full_disk_gives_a_clear_error_and_writes_nothing_half(db):
    base_rows(db)
    _fill(db)
    q = db.conn.execute
    before = {t: q(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("audits", "answers", "checklist_answers", "actions", "change_log")}
    pages = q("PRAGMA page_count").fetchone()[0]
    q(f"PRAGMA max_page_count = {pages}")  # the disk is now full
    big = audit_form(text="x" * 20_000)
    with pytest.raises(store.StoreFull) as err:
        audits.save_draft(db, big)
    message = str(err.value)
    assert "nothing was saved" in message and "Free disk space" in message
    assert "Traceback" not in message and "sqlite" not in message.lower()
    after = {t: q(f"SELECT count(*) FROM {t}").fetchone()[0] for t in before}
    assert after == before
    assert not db.conn.in_transaction
    assert q("PRAGMA integrity_check").fetchall() == [("ok",)]
    # Space freed: the same save now goes through, whole.
    q("PRAGMA max_page_count = 1073741823")
    audit_id = audits.save_draft(db, big)
    assert q("SELECT count(*) FROM answers WHERE audit_id = ?", [audit_id]).fetchone()[0] == len(
        WHOLE["answers"])
    assert check.chain_checks(db) == [] and check.replay_checks(db) == []


def test_full_disk_while_editing_keeps_the_previous_version(db):
    base_rows(db)
    _fill(db)
    audit_id = audits.save_draft(db, audit_form(text="first version"))
    kept = audits.load(db, audit_id)
    q = db.conn.execute
    q(f"PRAGMA max_page_count = {q('PRAGMA page_count').fetchone()[0]}")
    edit = dict(kept)
    edit["answers"] = {k: {**v, "comment": "y" * 20_000} if v.get("comment") else v
                       for k, v in kept["answers"].items()}
    with pytest.raises(store.StoreFull):
        audits.save_draft(db, edit, audit_id=audit_id)
    assert audits.load(db, audit_id) == kept
