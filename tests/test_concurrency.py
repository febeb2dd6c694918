"""Concurrent writers lose nothing: 8 processes x 200 complete audits through ehkit.audits."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import random
import traceback

import pytest
from builders import add_moderator, audit_form, base_rows, complete_audit

from ehkit import audits, check, episodes
from ehkit import db as store

PROCESSES = 8
AUDITS_EACH = 200
EPISODES = 20
WHOLE = complete_audit()


def _auditor(path: str, worker: int, results) -> None:
    """Save AUDITS_EACH complete audits, reading before each write as the form does."""
    rng = random.Random(worker)
    saved, errors = [], []
    database = store.connect(path)
    try:
        for n in range(AUDITS_EACH):
            try:
                episode = rng.randint(1, EPISODES)
                assert episodes.case_information(database, episode)["ehm_number"]
                form = audit_form(episode, text=f"worker {worker} audit {n}")
                audit_id = audits.save_draft(database, form)
                if n % 10 == 0:  # now and then: open it again, change it, save over it
                    again = audits.load(database, audit_id)
                    again["summary"] = f"worker {worker} audit {n}, edited"
                    audits.save_draft(database, again, audit_id=audit_id)
                saved.append(audit_id)
            except Exception:  # any error here would have reached an auditor
                errors.append(traceback.format_exc())
    finally:
        database.close()
        results.put((worker, saved, errors))


@pytest.mark.slow
def test_eight_processes_saving_200_audits_each_lose_nothing(tmp_path):
    path = tmp_path / "ehkit.db"
    database = store.connect(path)
    base_rows(database)
    with store.transaction(database):
        database["episodes"].insert_all(
            {"id": i, "ehm_number": f"EHM{i}", "start_date": "2026-01-05", "status": "open",
             "lead_agency_id": 1, "lead_professional_id": 2} for i in range(2, EPISODES + 1))
        database["children"].insert_all(
            {"episode_id": i, "name": f"Child {i}"} for i in range(2, EPISODES + 1))
    database.close()

    ctx = mp.get_context("fork")
    results = ctx.Queue()
    workers = [ctx.Process(target=_auditor, args=(str(path), w, results))
               for w in range(PROCESSES)]
    for w in workers:
        w.start()
    reports = [results.get(timeout=300) for _ in workers]
    for w in workers:
        w.join(60)
    errors = [e for _, _, errs in reports for e in errs]
    assert errors == [], errors[0]
    saved = [i for _, ids, _ in reports for i in ids]
    assert len(saved) == len(set(saved)) == PROCESSES * AUDITS_EACH

    database = store.connect(path)
    try:
        q = database.conn.execute
        assert q("SELECT count(*) FROM audits").fetchone()[0] == PROCESSES * AUDITS_EACH
        assert {r[0] for r in q("SELECT id FROM audits")} == set(saved)
        # Every audit has every one of its child rows.
        per_audit = q(
            "SELECT (SELECT count(*) FROM answers WHERE audit_id = a.id),"
            " (SELECT count(*) FROM checklist_answers WHERE audit_id = a.id),"
            " (SELECT count(*) FROM actions WHERE audit_id = a.id), count(*)"
            " FROM audits a GROUP BY 1, 2, 3").fetchall()
        assert per_audit == [(len(WHOLE["answers"]), len(WHOLE["checklist"]), 1,
                              PROCESSES * AUDITS_EACH)]
        edited = q("SELECT count(*) FROM audits WHERE summary LIKE '%, edited'").fetchone()[0]
        assert edited == PROCESSES * (AUDITS_EACH // 10)
        assert q("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert q("PRAGMA foreign_key_check").fetchall() == []
        # And every change is in the change log, chained.
        assert check.chain_checks(database) == []
        assert check.replay_checks(database) == []
    finally:
        database.close()


# -- no lost update between processes: a moderator and an auditor on the same audits ---------
ROUNDS = 30


def _race(path: str, role: str, ids: list[int], barrier, results) -> None:
    """Each round both open the same submitted audit, wait for each other, then act on what
    they loaded: the moderator agrees with every grade; the auditor reopens it and makes the
    overall grade Requires Improvement."""
    database = store.connect(path)
    done, refused, errors = [], [], []
    try:
        for audit_id in ids:
            seen = audits.load(database, audit_id)
            barrier.wait(60)
            try:
                if role == "moderator":
                    audits.moderate(database, audit_id, 3, {}, {},
                                    expected_version=seen["version"])
                else:
                    audits.reopen(database, audit_id, "New evidence",
                                  expected_version=seen["version"])
                    now = audits.load(database, audit_id)
                    audits.save_draft(database, {**now, "overall_grade": 3})
                    audits.submit(database, audit_id, today=dt.date(2026, 11, 24),
                                  expected_version=audits.load(database, audit_id)["version"])
                done.append(audit_id)
            except audits.StaleRecord:
                refused.append(audit_id)
            except Exception:  # any other error would have reached a person
                errors.append(traceback.format_exc())
    finally:
        database.close()
        results.put((role, done, refused, errors))


@pytest.mark.slow
def test_a_moderator_and_an_auditor_racing_in_two_processes_never_lose_an_update(store_at):
    path = store_at  # a SQLite file, and a PostgreSQL database (issue 18)
    database = store.connect(path)
    base_rows(database)
    add_moderator(database)
    ids = []
    for _ in range(ROUNDS):
        audit_id = audits.save_draft(database, audit_form())
        audits.submit(database, audit_id, today=dt.date(2026, 11, 24))
        ids.append(audit_id)
    database.close()

    ctx = mp.get_context("fork")
    results, barrier = ctx.Queue(), ctx.Barrier(2)
    racers = [ctx.Process(target=_race, args=(str(path), role, ids, barrier, results))
              for role in ("moderator", "auditor")]
    for r in racers:
        r.start()
    reports = {role: (done, refused, errors)
               for role, done, refused, errors in (results.get(timeout=300) for _ in racers)}
    for r in racers:
        r.join(60)
    assert reports["moderator"][2] == reports["auditor"][2] == []
    moderated, regraded = set(reports["moderator"][0]), set(reports["auditor"][0])
    # Each round exactly one of them acted; the other was refused, nothing half-done.
    assert moderated | regraded == set(ids) and not moderated & regraded
    assert set(reports["moderator"][1]) == regraded
    assert set(reports["auditor"][1]) == moderated

    database = store.connect(path)
    try:
        for audit_id in ids:
            held = audits.load(database, audit_id)
            final = database.execute("SELECT grade FROM final_overall WHERE audit_id = ?",
                                     [audit_id]).fetchone()[0]
            if audit_id in moderated:
                assert held["status"] == "moderated" and final == held["overall_grade"] == 2
                assert {m["original_grade"] for m in held["moderations"]} == {2}
            else:
                assert held["status"] == "submitted" and final == held["overall_grade"] == 3
                assert held["moderations"] == []
        assert check.chain_checks(database) == [] and check.replay_checks(database) == []
    finally:
        database.close()
