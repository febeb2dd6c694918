"""The action tracker: states on a day (across month ends and weekends), filters, completing,
reassigning with a reason (kept in the change log), and ``ehkit actions overdue`` for cron."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from builders import add_audit, add_rows, add_service, episode_row, where, widget

from ehkit import actions
from ehkit import db as store
from ehkit.cli import main as ehkit

D = dt.date


@pytest.fixture
def db(db_both):
    """Every test here runs on SQLite and on PostgreSQL."""
    return db_both


def build(db) -> None:
    """Two teams in two agencies; three audits (one still a draft) with actions."""
    add_service(db)
    add_rows(db, episodes=[episode_row(1, "2026-01-05", ehm_number="EHM1"),
                           episode_row(2, "2026-01-05", agency=2, lead=3, ehm_number="EHM2")])
    add_audit(db, 1, 1, "2026-01-20", 3)
    add_audit(db, 2, 2, "2026-01-22", 4, status="moderated")
    add_audit(db, 3, 1, "2026-02-20", 3, status="draft")

    def act(id, audit, number, owner, due, completed=None):
        return {"id": id, "audit_id": audit, "number": number, "action": f"Action {id}",
                "owner_id": owner, "due_date": due, "completed_date": completed}
    add_rows(db, actions=[
        act(1, 1, 1, 2, "2026-01-31"),                 # due on a Saturday, month end
        act(2, 1, 2, 2, "2026-02-02"),                 # due on a Monday
        act(3, 1, 3, 2, "2026-02-28", "2026-02-27"),   # completed early
        act(4, 2, 1, 3, "2026-02-01"),                 # due on a Sunday
        act(5, 2, 2, 3, "2026-03-01"),                 # due the first of the month
        act(6, 2, 3, None, None),                      # no owner, no due date yet
        act(7, 3, 1, 2, "2026-01-25"),                 # draft audit: not yet listed
    ])


# -- the state rule ----------------------------------------------------------------------
@pytest.mark.parametrize("due, on, expected", [
    # month ends
    (D(2026, 1, 31), D(2026, 1, 31), "due this week"),  # due today is not overdue
    (D(2026, 1, 31), D(2026, 2, 1), "overdue"),
    (D(2026, 2, 28), D(2026, 3, 1), "overdue"),         # February is short
    (D(2028, 2, 29), D(2028, 2, 29), "due this week"),  # a leap day
    (D(2028, 2, 29), D(2028, 3, 1), "overdue"),
    (D(2026, 12, 31), D(2027, 1, 1), "overdue"),        # year end
    # weekends: a date, not a working day, decides
    (D(2026, 11, 27), D(2026, 11, 28), "overdue"),      # due Friday, checked Saturday
    (D(2026, 11, 28), D(2026, 11, 30), "overdue"),      # due Saturday, checked Monday
    (D(2026, 11, 29), D(2026, 11, 29), "due this week"),  # due Sunday, checked Sunday
    (D(2026, 11, 30), D(2026, 11, 28), "due this week"),  # due Monday, checked Saturday
    # the seven days from the day, then open
    (D(2026, 12, 4), D(2026, 11, 28), "due this week"),   # six days on
    (D(2026, 12, 5), D(2026, 11, 28), "open"),            # seven days on
])
def test_overdue_means_due_before_the_day_whatever_the_month_or_weekday(due, on, expected):
    assert actions.state(due, None, on) == expected
    assert actions.state(due.isoformat(), None, on.isoformat()) == expected


def test_completed_action_is_never_overdue():
    assert actions.state("2026-01-01", "2026-03-01", "2026-06-01") == "completed"


def test_action_without_due_date_is_open():
    assert actions.state(None, None, "2026-06-01") == "open"


def test_due_date_with_a_time_is_refused():
    with pytest.raises(actions.ActionError, match="not a date and time"):
        actions.state(dt.datetime(2026, 1, 31, 17, 0), None, D(2026, 2, 1))


# -- the tracker -------------------------------------------------------------------------
def test_overdue_list_across_month_end_and_weekend(db):
    build(db)
    # Monday 2 February 2026: 1 (Sat 31 Jan) and 4 (Sun 1 Feb) are overdue; 2 is due today;
    # 3 is completed; 5 is due in the coming week; 6 has no due date; 7 is a draft's.
    rows = actions.overdue(db, D(2026, 2, 2))
    assert [(r["id"], r["days_overdue"]) for r in rows] == [(1, 2), (4, 1)]
    # On Saturday 31 January nothing is overdue yet.
    assert actions.overdue(db, D(2026, 1, 31)) == []
    # Sunday 1 March: 1, 2 and 4 overdue; 5 due today.
    assert [r["id"] for r in actions.overdue(db, "2026-03-01")] == [1, 4, 2]


def test_tracker_filters_by_owner_team_agency_month_and_state(db):
    build(db)
    on = D(2026, 2, 2)

    def ids(**kw):
        return sorted(r["id"] for r in actions.tracker(db, on, **kw))

    assert ids() == [1, 2, 3, 4, 5, 6]  # the draft audit's action is not listed
    assert ids(owner_id=3) == [4, 5]
    assert ids(team="North") == [1, 2, 3]
    assert ids(team="Fern") == [4, 5, 6]  # no owner: the lead professional's team
    assert ids(agency_id=2) == [4, 5, 6]  # no owner: the episode's lead agency
    assert ids(due_month="2026-02") == [2, 3, 4]
    assert ids(states="overdue") == [1, 4]
    assert ids(states=["due this week", "open"]) == [2, 5, 6]
    assert ids(states="completed") == [3]
    assert ids(team="North", states="overdue") == [1]
    with pytest.raises(actions.ActionError, match="unknown action state"):
        actions.tracker(db, on, states="late")


def test_complete_action_with_date_and_note(db):
    build(db)
    actions.complete(db, 1, "2026-02-03", "Review TAF held", actor="Ana Auditor",
                     today=D(2026, 2, 3))
    row = db["actions"].get(1)
    assert (row["completed_date"], row["completion_note"]) == ("2026-02-03", "Review TAF held")
    assert actions.get(db, 1, on="2026-03-01")["state"] == "completed"


@pytest.mark.parametrize("day, note, message", [
    ("2026-02-04", "done", "in the future"),
    ("2026-01-19", "done", "before the audit"),
    ("2026-02-02", "  ", "completion note"),
    ("2026-02-30", "done", "not a date"),
])
def test_completion_refused_when_date_or_note_is_wrong(db, day, note, message):
    build(db)
    with pytest.raises(actions.ActionError, match=message):
        actions.complete(db, 1, day, note, today=D(2026, 2, 3))
    assert db["actions"].get(1)["completed_date"] is None


def test_completion_refusals_give_dates_as_people_read_them(db):
    build(db)
    with pytest.raises(actions.ActionError) as e:
        actions.complete(db, 1, "2026-02-09", "done", today=D(2026, 2, 3))
    assert "09/02/2026" in str(e.value) and "2026-02-09" not in str(e.value)


def test_reassign_keeps_the_reason_in_the_change_log(db):
    build(db)
    actions.reassign(db, 2, 1, "Worker on long-term leave", actor="Ana Auditor")
    row = db["actions"].get(2)
    assert (row["owner_id"], row["by_whom"]) == (1, "Mo Manager")
    log = list(db.query("SELECT old, new, reason, actor FROM change_log WHERE "
                        "table_name = 'actions' AND row_key = '2' AND field = 'owner_id'"))
    assert log == [{"old": 2, "new": 1, "reason": "Worker on long-term leave",
                    "actor": "Ana Auditor"}]


def test_reassign_needs_a_reason_and_a_real_owner(db):
    build(db)
    with pytest.raises(actions.ActionError, match="reason"):
        actions.reassign(db, 2, 1, "")
    with pytest.raises(actions.ActionError, match="no practitioner number 99"):
        actions.reassign(db, 2, 99, "leave")
    with pytest.raises(actions.ActionError, match="choose the practitioner"):
        actions.reassign(db, 2, None, "leave")
    assert db["actions"].get(2)["owner_id"] == 2


def test_completion_figures_for_a_period(db):
    build(db)
    with store.transaction(db):
        db["actions"].update(1, {"completed_date": "2026-02-05"})   # five days late
        db["actions"].update(4, {"completed_date": "2026-02-01"})   # on time (on the day)
    # Due 1 Jan - 28 Feb (non-draft): 1 (late, 5 Feb), 2 (open), 3 (early), 4 (on time).
    c = actions.completion(db, "2026-01-01", "2026-02-28")
    assert c == {"due": 4, "completed_on_time": 2, "completed_late": 1, "not_completed": 1,
                 "on_time_pct": 50.0, "completed_in_period": 3}
    # January only: action 1 was due, completed after the period ended: not completed by then.
    c = actions.completion(db, "2026-01-01", "2026-01-31")
    assert (c["due"], c["completed_late"], c["not_completed"]) == (1, 0, 1)


# -- the command for cron -----------------------------------------------------------------
def test_actions_overdue_command_exits_non_zero_when_any_is_overdue(db, capsys):
    build(db)
    path = where(db)
    assert ehkit(["actions", "overdue", "--db", path, "--on", "2026-02-02"]) == 1
    out = capsys.readouterr().out
    assert "2 action(s) overdue on 02/02/2026" in out
    assert "EHM1" in out and "EHM2" in out and "Action 1" in out
    assert ehkit(["actions", "overdue", "--db", path, "--on", "2026-01-31"]) == 0
    assert "No actions overdue on 31/01/2026" in capsys.readouterr().out


def test_actions_overdue_command_refuses_a_missing_database(tmp_path, capsys):
    assert ehkit(["actions", "overdue", "--db", str(tmp_path / "none.db")]) == 2
    assert "no database" in capsys.readouterr().err


def test_change_log_row_for_completion_names_the_actor(db):
    build(db)
    actions.complete(db, 5, "2026-02-02", "Done", actor="Ana Auditor", today=D(2026, 2, 2))
    rows = list(db.query("SELECT field, new, actor FROM change_log WHERE table_name = 'actions'"
                         " AND row_key = '5' AND field IS NOT NULL ORDER BY field"))
    assert rows == [{"field": "completed_date", "new": "2026-02-02", "actor": "Ana Auditor"},
                    {"field": "completion_note", "new": "Done", "actor": "Ana Auditor"}]
    assert json.loads(db.execute("SELECT new FROM change_log WHERE table_name = 'actions' AND "
                                 "row_key = '5' AND field IS NULL").fetchone()[0])["id"] == 5


def test_tracker_form_escapes_action_text_and_lists_overdue(db):
    from ehkit.forms.actions import tracker_form

    build(db)
    with store.transaction(db):
        db["actions"].update(1, {"action": "<script>alert(1)</script> review"})
    form = tracker_form(db, D(2026, 2, 2))
    attention = actions.tracker(db, D(2026, 2, 2), states=actions.NEEDS_ATTENTION)
    assert f"{len(attention)} action(s)" in widget(form, "action-count").value
    widget(form, "filter-state").value = ""  # All
    page = widget(form, "action-count").value + widget(form, "tracker-table").value
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; review" in page
    assert "6 action(s)" in page


def test_tracker_opens_on_overdue_then_due_this_week(db):
    from ehkit.forms.actions import tracker_form

    build(db)
    on = D(2026, 2, 2)
    form = tracker_form(db, on)
    states = [r["state"] for r in actions.tracker(db, on)]
    assert "completed" in states and "open" in states  # the store holds more than is shown
    shown = re.findall(r"<tr class='ehkit-tracker-row'><td>[^<]*</td><td>([^<]*)</td>",
                       widget(form, "tracker-table").value)
    assert shown and set(shown) <= set(actions.NEEDS_ATTENTION)
    assert shown == sorted(shown, key=["overdue", "due this week"].index)


# -- no lost update: a write acts only on the action as the person saw it ------------------
def test_completing_an_action_completed_since_it_was_shown_is_refused(db):
    build(db)
    shown = actions.get(db, 1, D(2026, 2, 2))  # two coordinators look at action 1
    actions.complete(db, 1, "2026-02-01", "TAF review held", actor="Mo Manager",
                     today=D(2026, 2, 2))
    before = db.execute("SELECT count(*) FROM change_log").fetchone()[0]
    with pytest.raises(actions.StaleRecord) as e:
        actions.complete(db, 1, "2026-02-02", "Plan updated", actor="Ana Auditor",
                         today=D(2026, 2, 2), expected_version=shown["version"])
    assert f"action (no. 1) was changed by Mo Manager (login {store.login_name()}) at" in str(
        e.value) and "reload it" in str(e.value)
    assert db.execute("SELECT count(*) FROM change_log").fetchone()[0] == before
    row = db["actions"].get(1)
    assert (row["completed_date"], row["completion_note"]) == ("2026-02-01", "TAF review held")


def test_reassigning_an_action_reassigned_since_it_was_shown_is_refused(db):
    build(db)
    shown = actions.get(db, 2)
    actions.reassign(db, 2, 1, "Worker on leave", actor="Mo Manager")
    with pytest.raises(actions.StaleRecord, match="changed by Mo Manager"):
        actions.reassign(db, 2, 3, "School leads now", expected_version=shown["version"])
    assert db["actions"].get(2)["owner_id"] == 1
    # Shown again, it can be reassigned.
    actions.reassign(db, 2, 3, "School leads now", expected_version=actions.get(db, 2)["version"])
    assert db["actions"].get(2)["owner_id"] == 3


def test_an_action_changed_by_a_reopened_audit_is_not_completed_as_shown(db):
    from ehkit import audits

    build(db)
    shown = actions.get(db, 2)
    audits.reopen(db, 1, "Action 2 was the wrong action", by="Ana Auditor")
    with store.acting_as(actor="Ana Auditor"), store.transaction(db):  # as their save would
        db["actions"].update(2, {"action": "Refer to the school nurse"})
    with pytest.raises(actions.StaleRecord, match="changed by Ana Auditor"):
        actions.complete(db, 2, "2026-02-02", "Done", today=D(2026, 2, 2),
                         expected_version=shown["version"])
    assert db["actions"].get(2)["completed_date"] is None


def test_tracker_form_says_the_action_changed_and_shows_it_again(db):
    from ehkit.forms.actions import tracker_form

    build(db)
    form = tracker_form(db, D(2026, 2, 2))
    widget(form, "pick").value = 1
    actions.complete(db, 1, "2026-02-01", "TAF review held", actor="Mo Manager",
                     today=D(2026, 2, 2))
    widget(form, "completion-note").value = "Plan updated"
    widget(form, "complete").click()
    shown = widget(form, "messages").value
    assert "changed by Mo Manager" in shown and "shown again as it now is" in shown
    assert "(no. 1)" not in shown  # the store's own number means nothing to a person
    assert "Something went wrong" not in shown and "Traceback" not in shown
    assert db["actions"].get(1)["completion_note"] == "TAF review held"
    # The tracker shows it anew: completed, so no longer offered to complete.
    assert 1 not in [v for _, v in widget(form, "pick").options]
