"""The coordinator's and practitioners' forms, without a browser, on SQLite and on PostgreSQL
(issue 18): what follows an audit, service-user feedback, the self-assessment checklist and
the coordinator's app, each saving through its buttons into the store. Only invented people."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from builders import where, widget
from test_feedback import TODAY, build

from ehkit import db as store
from ehkit import service_user_feedback as feedback
from ehkit.forms.actions import actions_app
from ehkit.forms.feedback import followup_form, service_user_form
from ehkit.forms.self_assessment import self_assessment_form


@pytest.fixture
def db(db_both):
    build(db_both)
    return db_both


def said(form) -> str:
    shown = widget(form, "messages").value
    assert "Something went wrong" not in shown and "Traceback" not in shown, shown
    return shown


def count(db, sql: str, params=()) -> int:
    return db.execute(sql, list(params)).fetchone()[0]


def test_what_follows_an_audit_is_saved_through_its_form(db, tmp_path):
    form = followup_form(db, TODAY, tmp_path / "letters")
    assert "audit(s) with the discussion still to hold" in form.children[-1].value
    widget(form, "audit-id").value = 1  # Inadequate, submitted
    widget(form, "open").click()
    widget(form, "notified-on").value = dt.date(2026, 3, 1)
    widget(form, "save-notified").click()
    assert "the worker was told on 01/03/2026" in said(form)
    assert db.execute("SELECT worker_notified_date FROM audit_followups WHERE audit_id = 1"
                      ).fetchone()[0] == "2026-03-01"
    widget(form, "discussion-on").value = dt.date(2026, 3, 12)
    assert set(widget(form, "attendees").value) == {2, 1}  # the author and their manager
    widget(form, "learning").value = "Use the child's own words"
    widget(form, "save-discussion").click()
    assert "Saved the discussion of audit 1" in said(form)
    assert count(db, "SELECT count(*) FROM discussion_attendees t JOIN discussions d ON"
                 " d.id = t.discussion_id WHERE d.audit_id = 1") == 2
    widget(form, "letter").click()
    assert "Letter drafted (not sent)" in said(form)
    assert count(db, "SELECT count(*) FROM letters WHERE audit_id = 1") == 1
    assert len(list((tmp_path / "letters").iterdir())) == 2


def test_service_user_feedback_is_saved_through_its_form(db):
    form = service_user_form(db, TODAY)
    widget(form, "ehm").value = "ehm2"  # any case: found as EHM2
    widget(form, "given-on").value = dt.date(2026, 5, 1)
    first = feedback.questions()[0]["key"]
    widget(form, f"rating-{first}").value = 4
    widget(form, "comments").value = "They listened to us"
    widget(form, "save").click()
    assert "Saved feedback number" in said(form)
    (episode, given_on, ratings, comments), = db.execute(
        "SELECT episode_id, given_on, ratings, comments FROM service_user_feedback").fetchall()
    assert (episode, given_on, json.loads(ratings), comments) == (
        2, "2026-05-01", {first: 4}, "They listened to us")
    summary = feedback.service_user_summary(db, "2026-05-01", "2026-05-31")
    assert summary["feedback"] == 1
    assert next(r for r in summary["ratings"] if r["key"] == first) == {
        "key": first, "question": feedback.questions()[0]["text"], "average": 4.0,
        "answered": 1}


def test_a_self_assessment_is_saved_through_its_form(db):
    form = self_assessment_form(db, TODAY)
    widget(form, "ehm").value = "EHM2"
    widget(form, "practitioner").value = 3
    widget(form, "completed-on").value = dt.date(2026, 3, 1)
    boxes = [b for b in form.children if "ehkit-item" in getattr(b, "_dom_classes", ())]
    for b in boxes[1:]:
        b.value = True
    widget(form, "save").click()
    assert f"({len(boxes) - 1} of {len(boxes)} met)" in said(form)
    assert count(db, "SELECT count(*) FROM self_assessment_items WHERE met = 0") == 1
    assert count(db, "SELECT count(*) FROM self_assessments WHERE episode_id = 2") == 1


def test_the_coordinators_app_opens_on_both(db):
    app = actions_app(where(db), TODAY)
    assert [app.get_title(i) for i in range(2)] == ["Action tracker", "After the audit"]
    assert "action(s)" in widget(app.children[0], "action-count").value


def test_a_form_whose_database_connection_was_dropped_says_so_then_works_again(pg_server):
    """The database server restarted, or closed an idle connection, under a form left open:
    the click that finds it says so in words, and the next works on a new connection."""
    database = store.connect(pg_server.new_database())
    build(database)
    form = followup_form(database, TODAY)
    widget(form, "audit-id").value = 1
    other = store.connect(database.url)
    (ended,), = other.execute("SELECT pg_terminate_backend(?)",
                              [database.conn.raw.info.backend_pid]).fetchall()
    other.close()
    assert ended
    widget(form, "open").click()
    shown = said(form)
    # (terminated by hand: PostgreSQL says it was shut down, as for a restart)
    assert "the PostgreSQL server was shut down" in shown and "Try again" in shown
    widget(form, "open").click()
    assert said(form) == "" and "<b>Audit 1</b>" in form.children[3].children[0].value
    widget(form, "save-notified").click()
    assert "the worker was told on" in said(form)
    assert database.execute("SELECT count(*) FROM audit_followups").fetchone()[0] == 1
    database.close()
