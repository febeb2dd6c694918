"""Each shared idea written once (issue 14, item 3): the audits that count, dates, finding an
episode, an audit not found."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from builders import add_audit, add_episode, add_service

import ehkit
from ehkit import actions, after_audit, audits, dates, episodes, history
from ehkit import self_assessment as sa
from ehkit.errors import AuditNotFound, EhkitError, FeedbackError

SOURCE = Path(ehkit.__file__).parent


@pytest.fixture
def db(db_both):
    """Every test here runs on SQLite and on PostgreSQL."""
    return db_both


def test_the_audits_that_count_are_written_once_as_the_counted_audits_view():
    spelled = re.compile(r"status\s+(IN\s*\(\s*'submitted'|<>\s*'draft')"
                         r"|\(\s*[\"']submitted[\"'],\s*[\"']moderated[\"']\s*\)", re.I)
    found = [f"{p.relative_to(SOURCE)}:{n}" for p in sorted(SOURCE.rglob("*.py"))
             for n, line in enumerate(p.read_text().splitlines(), 1) if spelled.search(line)]
    assert found == []
    views = [p.name for p in SOURCE.joinpath("migrations").glob("*.sql")
             if "CREATE VIEW counted_audits" in p.read_text()]
    assert views == ["0100_counted_audits.sql"]


def test_counted_audits_are_the_submitted_and_moderated_never_a_draft(db):
    add_service(db)
    add_episode(db, 1, "2026-01-05")
    for id, status in ((1, "draft"), (2, "submitted"), (3, "moderated")):
        add_audit(db, id, 1, "2026-03-10", 2, status=status)
    assert [r[0] for r in db.execute("SELECT id FROM counted_audits ORDER BY id")] == [2, 3]


def test_an_action_of_a_draft_audit_is_found_but_not_listed(db):
    add_service(db)
    add_episode(db, 1, "2026-01-05")
    add_audit(db, 1, 1, "2026-03-10", 2, status="draft")
    add_audit(db, 2, 1, "2026-03-11", 2)
    with ehkit.db.transaction(db):
        db["actions"].insert_all([{"audit_id": a, "number": 1, "action": f"Plan {a}",
                                   "by_whom": "Worker", "due_date": "2026-04-10"} for a in (1, 2)])
    assert [r["audit_id"] for r in actions.tracker(db, on="2026-04-01")] == [2]
    assert actions.get(db, 1)["audit_id"] == 1


@pytest.mark.parametrize("when", ["31/02/2026", "2026-13-01", dt.datetime(2026, 3, 12, 10)])
def test_a_wrong_date_given_with_feedback_is_a_feedback_error(db, when):
    add_service(db)
    add_episode(db, 1, "2026-01-05")
    add_audit(db, 1, 1, "2026-03-10", 2)
    with pytest.raises(FeedbackError, match="discussion date"):
        after_audit.record_discussion(db, 1, when, [2, 1], "Use the child's words",
                                   today=dt.date(2026, 11, 24))
    with pytest.raises(FeedbackError, match="notified"):
        after_audit.record_worker_notified(db, 1, when, today=dt.date(2026, 11, 24))
    assert db["discussions"].count == 0


def test_a_wrong_date_given_with_a_self_assessment_is_its_own_error(db):
    add_service(db)
    add_episode(db, 1, "2026-01-05")
    with pytest.raises(sa.SelfAssessmentError, match="completed date '31/02/2026'"):
        sa.record(db, 1, 2, "31/02/2026", {})
    assert db["self_assessments"].count == 0


def test_a_date_is_read_with_the_callers_error_and_names_what_was_wrong():
    assert dates.as_date(" 2026-02-28 ") == dt.date(2026, 2, 28)
    with pytest.raises(actions.ActionError, match="due date '28/02/2026' is not a date like"):
        dates.as_date("28/02/2026", "due date", actions.ActionError)


def test_months_before_clamps_to_the_end_of_a_short_month():
    assert dates.months_before(dt.date(2026, 3, 31), 1) == dt.date(2026, 2, 28)
    assert dates.months_before(dt.date(2028, 2, 29), 12) == dt.date(2027, 2, 28)
    assert dates.months_before(dt.date(2026, 1, 15), 12) == dt.date(2025, 1, 15)


def test_a_day_is_shown_the_uk_way():
    assert dates.uk(dt.date(2015, 9, 16)) == dates.uk("2015-09-16") == "16/09/2015"


def test_an_audit_not_found_is_one_error_whether_asked_now_or_in_the_history(db):
    assert audits.AuditNotFound is history.AuditNotFound is AuditNotFound
    assert issubclass(AuditNotFound, EhkitError)
    with pytest.raises(AuditNotFound):
        audits.load(db, 7)
    with pytest.raises(AuditNotFound):
        history.history(db, "seven")


def test_an_episode_is_found_by_id_or_by_ehm_number_the_one_open_on_the_day(db_both):
    db = db_both  # on each back end: PostgreSQL's = minds letter case, SQLite's NOCASE not
    add_service(db)
    add_episode(db, 1, "2025-01-05", ehm_number="EHM1")
    add_episode(db, 2, "2026-09-01", ehm_number="EHM1")
    assert episodes.find_episode(db, 2) == 2
    assert episodes.find_episode(db, 9) is None
    assert episodes.find_episode(db, " EHM1 ") == 2
    assert episodes.find_episode(db, "ehm1") == 2  # typed in another case
    assert episodes.stored_ehm(db, "eHm1") == "EHM1"
    assert episodes.find_episode(db, "EHM1", "2026-05-01") == 1
    assert episodes.find_episode(db, "EHM1", episode_start="2026-09-01") == 2
    assert episodes.episode_info(db, "EHM1")["id"] == 2
    with pytest.raises(episodes.CaseNotFound, match="EHM404.*import the case list"):
        episodes.episode_info(db, "EHM404")
