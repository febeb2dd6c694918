"""Wrong types through the public API (issue 13, part 4): an ehkit error saying what was
wrong, never a raw Python or database error, and never a Python repr stored as text."""

from __future__ import annotations

import datetime as dt

import pytest
from builders import add_moderator, audit_form, base_rows

from ehkit import actions, after_audit, audits, episodes, history, service_user_feedback
from ehkit import self_assessment as sa
from ehkit.errors import EhkitError, FeedbackError

TOO_BIG = 2**70  # no SQLite INTEGER holds it
TODAY = dt.date(2026, 11, 24)


@pytest.fixture
def db(db_both):
    """Every test here runs on SQLite and on PostgreSQL."""
    return db_both


@pytest.fixture
def held(db):
    """A store with a submitted audit (no. 1, with action 1), a draft (no. 2) and a submitted
    audit graded Requires Improvement overall (no. 3)."""
    base_rows(db)
    add_moderator(db, auditor=False)
    audits.submit(db, audits.save_draft(db, audit_form()), today=TODAY)
    audits.save_draft(db, audit_form())
    audits.submit(db, audits.save_draft(db, with_(overall_grade=3)), today=TODAY)
    return db


def snapshot(db) -> int:
    return db.execute("SELECT count(*) FROM change_log").fetchone()[0]


def with_(**changes) -> dict:
    return {**audit_form(), **changes}


BAD_AUDITS = {
    "answers a list": with_(answers=["x"]),
    "checklist text": with_(checklist="x"),
    "summary a dict": with_(summary={"said": "good"}),
    "learning a number": with_(learning=42),
    "episode too big": with_(episode_id=TOO_BIG),
    "auditor too big": with_(auditor1_id=TOO_BIG),
    "auditor a list": with_(auditor2_id=[3]),
    "answer not a dict": with_(answers={"impact": "x"}),
    "comment a list": with_(answers={"1.1": {"comment": ["x"]}}),
    "response a list": with_(answers={"1.1.1": {"response": ["yes"]}}),
    "checklist status a set": with_(checklist={"consent": {"status": {"accurate"}}}),
    "actions text": with_(actions="x"),
    "action not a dict": with_(actions=[["Review the plan"]]),
    "action id a list": with_(actions=[{**audit_form()["actions"][0], "id": [1]}]),
    "action owner too big": with_(actions=[{**audit_form()["actions"][0],
                                            "owner_id": TOO_BIG}]),
    "template a dict": with_(template={"key": "darlington"}),
    "audit a list": ["x"],
}


@pytest.mark.parametrize("audit", BAD_AUDITS.values(), ids=BAD_AUDITS)
def test_an_audit_of_the_wrong_shape_is_refused_and_nothing_stored(held, audit):
    before = snapshot(held)
    for attempt in (lambda: audits.save_draft(held, audit),
                    lambda: audits.save_draft(held, audit, audit_id=2),
                    lambda: audits.problems(held, audit)):
        with pytest.raises(audits.AuditRuleError) as e:
            found = attempt()
            if found:  # problems() lists them rather than raising
                raise audits.AuditRuleError(found)
        assert all(isinstance(m, str) and m for m in e.value.problems.values())
    assert snapshot(held) == before


def test_no_python_repr_is_stored_as_text(held):
    for audit in BAD_AUDITS.values():
        with pytest.raises(EhkitError):
            audits.save_draft(held, audit)
    for table, column in (("audits", "summary"), ("audits", "learning"),
                          ("answers", "comment"), ("checklist_answers", "note"),
                          ("actions", "action")):
        stored = [r[0] for r in held.execute(f"SELECT {column} FROM {table}")]
        assert not [v for v in stored if v and v[:1] in "{[("], (table, column)


BAD_IDS = [TOO_BIG, -1, 0, "1", 1.0, None, [1], True]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_an_audit_number_that_is_no_audit_number_is_refused_in_words(held, bad):
    before = snapshot(held)
    for call in (lambda: audits.load(held, bad),
                 lambda: audits.submit(held, bad, today=TODAY),
                 lambda: audits.reopen(held, bad, "A reason"),
                 lambda: audits.moderate(held, bad, 3, {}, {}),
                 lambda: audits.save_draft(held, audit_form(), audit_id=bad)
                 if bad is not None else audits.load(held, bad),
                 lambda: audits.case_note(held, bad),
                 lambda: audits.record_path(held, bad)):
        with pytest.raises(audits.AuditNotFound, match="audit number|no audit was given"):
            call()
    assert snapshot(held) == before


@pytest.mark.parametrize("call, field", [
    pytest.param(lambda db: audits.moderate(db, 1, TOO_BIG, {}, {}), "moderator",
                 id="moderator too big"),
    pytest.param(lambda db: audits.moderate(db, 1, "x", {}, {}), "moderator",
                 id="moderator text"),
    pytest.param(lambda db: audits.moderate(db, 1, 3, ["x"], {}), "grades", id="grades a list"),
    pytest.param(lambda db: audits.moderate(db, 1, 3, {"impact": 3}, "x"), "reasons",
                 id="reasons text"),
    pytest.param(lambda db: audits.moderate(db, 1, 3, {"impact": 3}, {"impact": {"why": 1}}),
                 "impact", id="reason a dict"),
    pytest.param(lambda db: audits.moderate(db, 1, 3, {"impact": TOO_BIG}, {"impact": "x"}),
                 "impact", id="grade too big"),
    pytest.param(lambda db: audits.moderate(db, 1, 3, {}, {}, on="2026-11-24"), "on",
                 id="moderation date text"),
    pytest.param(lambda db: audits.reopen(db, 1, {"why": "x"}), "reason", id="reason a dict"),
    pytest.param(lambda db: audits.reopen(db, 1, "A reason", by=["me"]), "by",
                 id="reopened by a list"),
    pytest.param(lambda db: audits.find(db, status=["lost"]), "status",
                 id="unknown status"),
    pytest.param(lambda db: audits.find(db, limit=TOO_BIG), "limit", id="limit too big"),
])
def test_moderation_reopen_and_listing_arguments_of_the_wrong_type_are_refused(held, call, field):
    before = snapshot(held)
    with pytest.raises(audits.AuditRuleError) as e:
        call(held)
    assert field in e.value.problems
    assert snapshot(held) == before and held["moderations"].count == 0


@pytest.mark.parametrize("call", [
    pytest.param(lambda db: audits.find(db, auditor_id=TOO_BIG), id="auditor too big"),
    pytest.param(lambda db: episodes.case_information(db, TOO_BIG), id="episode too big"),
    pytest.param(lambda db: audits.moderate(db, 1, 3, {}, {}, expected_version="7"),
                 id="version text"),
    pytest.param(lambda db: audits.save_draft(db, {**audits.load(db, 2), "version": [1]}),
                 id="version a list"),
])
def test_other_audit_arguments_of_the_wrong_type_give_an_ehkit_error(held, call):
    with pytest.raises(EhkitError):
        call(held)


@pytest.mark.parametrize("call, message", [
    pytest.param(lambda db: actions.get(db, TOO_BIG), "no action number",
                 id="action too big"),
    pytest.param(lambda db: actions.get(db, "1"), "not an action number",
                 id="action text"),
    pytest.param(lambda db: actions.complete(db, TOO_BIG, "2026-04-01", "Done", today=TODAY),
                 "no action", id="completing action too big"),
    pytest.param(lambda db: actions.complete(db, 1, "2026-04-01", {"done": 1}, today=TODAY),
                 "text", id="note a dict"),
    pytest.param(lambda db: actions.complete(db, 1, "2026-04-01", "Done", today=TODAY,
                                             expected_version=1.5),
                 "version", id="version a float"),
    pytest.param(lambda db: actions.reassign(db, 1, TOO_BIG, "Leave"), "no owner number",
                 id="owner too big"),
    pytest.param(lambda db: actions.reassign(db, 1, 1, ["Leave"]), "text",
                 id="reason a list"),
    pytest.param(lambda db: actions.tracker(db, TODAY, owner_id=TOO_BIG), "no owner number",
                 id="filter owner too big"),
    pytest.param(lambda db: actions.tracker(db, TODAY, agency_id=[1]), "not an agency number",
                 id="agency a list"),
    pytest.param(lambda db: actions.tracker(db, TODAY, team=["North"]), "text",
                 id="team a list"),
    pytest.param(lambda db: actions.tracker(db, TODAY, states=[["open"]]), "states",
                 id="states nested"),
])
def test_action_arguments_of_the_wrong_type_are_refused_in_words(held, call, message):
    before = snapshot(held)
    with pytest.raises(actions.ActionError if message != "version" else EhkitError,
                       match=message):
        call(held)
    assert snapshot(held) == before
    assert held["actions"].get(1)["completed_date"] is None


def fb(**changes) -> dict:
    """Service-user feedback for episode 1, as the form gives it, with ``changes``."""
    return {"episode_id": 1, "given_on": "2026-05-01", "respondent": "parent_carer",
            "stage": "taf_meeting", "ratings": {"listened_to": 5}, "comments": "Kind staff",
            "concern_raised": False, **changes}


@pytest.mark.parametrize("call, message", [
    pytest.param(lambda db: after_audit.record_worker_notified(db, TOO_BIG, "2026-03-01",
                                                            today=TODAY),
                 "no audit number", id="notified: audit too big"),
    pytest.param(lambda db: after_audit.record_feedback_sent(db, "1", "2026-03-03", today=TODAY),
                 "not an audit number", id="sent: audit text"),
    pytest.param(lambda db: after_audit.record_discussion(db, 1, "2026-03-03", [TOO_BIG], "Learnt",
                                                       today=TODAY),
                 "no attendee number", id="attendee too big"),
    pytest.param(lambda db: after_audit.record_discussion(db, 1, "2026-03-03", "12", "Learnt",
                                                       today=TODAY),
                 "list of practitioner numbers", id="attendees text"),
    pytest.param(lambda db: after_audit.record_discussion(db, 1, "2026-03-03", [2],
                                                       {"learnt": 1}, today=TODAY),
                 "should be text", id="learning a dict"),
    pytest.param(lambda db: after_audit.record_one_to_one(db, 1, "2026-03-03", ["notes"],
                                                       today=TODAY),
                 "should be text", id="1-1 notes a list"),
    pytest.param(lambda db: after_audit.record_one_to_one(db, 1, "2026-03-03", "Notes",
                                                       held_by_id=TOO_BIG, today=TODAY),
                 "no practitioner number", id="1-1 held by too big"),
    pytest.param(lambda db: after_audit.record_one_to_one(db, 3, "2026-03-03", "Notes",
                                                       held_by_id=99, today=TODAY),
                 "no practitioner 99", id="1-1 held by nobody in the store"),
    pytest.param(lambda db: after_audit.letter_context(db, 1, signed_by_id=TOO_BIG),
                 "no practitioner signing number", id="letter signer too big"),
    pytest.param(lambda db: service_user_feedback.record_service_user_feedback(db, ["x"], today=TODAY),
                 "dict of its fields", id="feedback a list"),
    pytest.param(lambda db: service_user_feedback.record_service_user_feedback(
        db, fb(comments={"kind": 1}), today=TODAY), "comments: should be text",
                 id="comments a dict"),
    pytest.param(lambda db: service_user_feedback.record_service_user_feedback(
        db, fb(episode_id=TOO_BIG), today=TODAY), "not an episode number",
                 id="episode too big"),
    pytest.param(lambda db: service_user_feedback.record_service_user_feedback(
        db, fb(respondent=["parent_carer"]), today=TODAY), "respondent",
                 id="respondent a list"),
    pytest.param(lambda db: service_user_feedback.record_service_user_feedback(
        db, fb(ratings=[5]), today=TODAY), "ratings", id="ratings a list"),
])
def test_feedback_arguments_of_the_wrong_type_are_refused_in_words(held, call, message):
    before = snapshot(held)
    with pytest.raises(FeedbackError, match=message):
        call(held)
    assert snapshot(held) == before


@pytest.mark.parametrize("call", [
    pytest.param(lambda db: history.history(db, TOO_BIG), id="history: audit too big"),
    pytest.param(lambda db: history.state_at(db, "1"), id="state at: audit text"),
    pytest.param(lambda db: sa.for_episode(db, TOO_BIG), id="self-assessments: episode too big"),
    pytest.param(lambda db: sa.record(db, TOO_BIG, 1, "2026-05-01", {}, today=TODAY),
                 id="self-assessment: episode too big"),
    pytest.param(lambda db: sa.record(db, 1, [1], "2026-05-01", {}, today=TODAY),
                 id="self-assessment: practitioner a list"),
    pytest.param(lambda db: sa.record(db, 1, 1, "2026-05-01", 5, today=TODAY),
                 id="self-assessment: answers a number"),
    pytest.param(lambda db: sa.record(db, 1, 1, "2026-05-01",
                                      {i.key: True for i in sa.load().items}, {"n": 1},
                                      today=TODAY),
                 id="self-assessment: notes a dict"),
])
def test_history_and_self_assessment_arguments_of_the_wrong_type_give_an_ehkit_error(held, call):
    before = snapshot(held)
    with pytest.raises(EhkitError):
        call(held)
    assert snapshot(held) == before
