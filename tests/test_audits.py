"""The audit tool's rules (ehkit/audits.py), each at its boundary, on a hand-built store."""

from __future__ import annotations

import datetime as dt
import socket
import sqlite3
from zoneinfo import ZoneInfo

import pytest
from builders import COUNCIL, add_rows, episode_row, where

from ehkit import audits, episodes
from ehkit import db as store
from ehkit import template as templates
from ehkit.audits import AuditRuleError

TODAY = dt.date(2026, 11, 24)
AUDIT_DATE = "2026-11-02"
# People: 1 Head of Service > 2 Service Manager > 3 Team Manager > 4 Family Support Worker.
# 5 and 6 are QA auditors under the service manager.
PEOPLE = [
    (1, "Hana Oakmallow", "Head of Service", None, 0),
    (2, "Sol Pebbleford", "Service Manager", 1, 1),
    (3, "Tam Quillthorpe", "Team Manager", 2, 1),
    (4, "Wren Applebridge", "Family Support Worker", 3, 0),
    (5, "Ivo Kettlewade", "Advanced Practitioner", 2, 1),
    (6, "Orla Fennimore", "Advanced Practitioner", 2, 1),
]


@pytest.fixture
def db(db_both):
    """Every test here runs on SQLite and on PostgreSQL."""
    return db_both


@pytest.fixture
def service(db):
    add_rows(db, agencies=[{"id": 1, "name": "Oakvale Early Help North", **COUNCIL}],
             practitioners=[{"id": i, "name": n, "role": r, "agency_id": 1, "team": "North",
                             "line_manager_id": m, "is_auditor": a} for i, n, r, m, a in PEOPLE],
             episodes=[
                 # Episode 1: worker 4 leads, their line manager 3 is the team manager.
                 episode_row(1, "2026-01-10", lead=4, ehm_number="EHM1001", team_manager_id=3),
                 # Episode 2: the team manager named on the episode (6) is not the line manager.
                 episode_row(2, "2026-03-01", lead=4, ehm_number="EHM1002", team_manager_id=6)],
             children=[
                 {"episode_id": 1, "name": "Pip Dimbleford", "date_of_birth": "2015-04-02"},
                 {"episode_id": 2, "name": "Mae Inkwhistle", "date_of_birth": "2019-07-09"}])
    return db


def complete(grades=None, overall=2, **extra) -> dict:
    """An audit of episode 1 by auditor 5 that meets every rule (all Good unless told)."""
    tpl = templates.load()
    grades = grades or {s.key: 2 for s in tpl.graded_sections}
    answers = {k: {"grade": g} for k, g in grades.items()}
    for s in tpl.graded_sections:
        answers[s.items[0].key] = {"comment": f"Evidence for {s.title} seen on the file."}
    audit = {"episode_id": 1, "auditor1_id": 5, "audit_date": AUDIT_DATE, "summary": "Summary",
             "overall_grade": overall, "overall_reasons": "Consistent practice.",
             "answers": answers, "checklist": {"consent": {"status": "accurate"}}, "actions": []}
    audit.update(extra)
    return audit


def probs(db, audit):
    return audits.problems(db, audit, today=TODAY)


def all_good_but(**changes) -> dict:
    tpl = templates.load()
    g = {s.key: 2 for s in tpl.graded_sections}
    g.update(changes)
    return g


ACTION = {"action": "Hold a review TAF meeting and update the plan", "by_whom": "Wren Applebridge",
          "due_date": "2026-12-01"}


# -- guidance 1: who may audit -----------------------------------------------------------------
def test_complete_audit_has_no_problems(service):
    assert probs(service, complete()) == {}


def test_lead_professional_cannot_audit_own_case(service):
    assert "lead professional" in probs(service, complete(auditor1_id=4))["auditor1"]


def test_line_manager_cannot_audit_own_team_members_case(service):
    # On episode 2 the named team manager is someone else, so only line management applies.
    p = probs(service, complete(episode_id=2, auditor1_id=3))
    assert "line manager" in p["auditor1"]


def test_team_manager_named_on_episode_cannot_audit(service):
    assert "team manager" in probs(service, complete(episode_id=2, auditor1_id=6))["auditor1"]


def test_manager_two_levels_up_may_audit(service):
    # 2 manages 3 who manages the lead professional 4: not their own team member.
    assert probs(service, complete(auditor1_id=2)) == {}


def test_auditor2_is_checked_for_conflict_too(service):
    assert "line manager" in probs(service, complete(auditor2_id=3))["auditor2"]
    assert "different person" in probs(service, complete(auditor2_id=5))["auditor2"]


# -- guidance 12: grades supported by evidence --------------------------------------------------
def test_every_graded_section_needs_a_grade(service):
    audit = complete()
    del audit["answers"]["planning"]
    p = probs(service, audit)
    assert set(p) == {"planning"} and "grade" in p["planning"]


def test_every_graded_section_needs_an_evidence_comment(service):
    audit = complete()
    audit["answers"]["3.1"] = {"comment": "   "}  # blank does not count as evidence
    p = probs(service, audit)
    assert set(p) == {"planning"} and "evidence" in p["planning"]


def test_evidence_in_any_item_of_a_section_counts(service):
    audit = complete()
    audit["answers"]["1.1"] = {}
    audit["answers"]["1.2"] = {"comment": "Step-down documents on file."}
    assert probs(service, audit) == {}


# -- guidance 9.1: the overall grade reflects the dimensions ------------------------------------
def test_overall_not_better_than_median_rounded_towards_worse(service):
    # Four Outstanding and four Good: median 1.5, rounded towards worse is Good.
    grades = {k: (1 if i < 4 else 2) for i, k in enumerate(all_good_but())}
    assert "no better than Good" in probs(service, complete(grades, overall=1))["overall"]
    assert probs(service, complete(grades, overall=2)) == {}


def test_requires_improvement_overall_allowed_with_one_inadequate_section(service):
    grades = all_good_but(impact=4)
    audit = complete(grades, overall=3, actions=[ACTION])
    assert probs(service, audit) == {}


def test_overall_good_refused_with_one_inadequate_section(service):
    # The median is Good, but an Inadequate section caps the overall at Requires Improvement.
    p = probs(service, complete(all_good_but(impact=4), overall=2, actions=[ACTION]))
    assert "no better than Requires Improvement" in p["overall"]


def test_overall_may_be_worse_than_sections(service):
    assert probs(service, complete(overall=3, actions=[ACTION])) == {}


def test_overall_rule_comes_from_the_template(service, tmp_path):
    path = tmp_path / "strict.toml"
    lines = []  # the shipped template with one rule changed
    src = templates.load().path.read_text(encoding="utf-8")
    for line in src.splitlines():
        if line == 'key = "darlington"':
            line = 'key = "strict"'
        if line.startswith("overall_limit = "):
            line = 'overall_limit = "worst"'
        lines.append(line)
    path.write_text("\n".join(lines), encoding="utf-8")
    grades = all_good_but(impact=3)  # median Good, worst Requires Improvement
    default = complete(grades, overall=2, actions=[ACTION])
    assert probs(service, default) == {}
    strict = complete(grades, overall=2, actions=[ACTION], template=str(path))
    assert "no better than Requires Improvement" in probs(service, strict)["overall"]


def test_overall_grade_and_reasons_required(service):
    p = probs(service, complete(overall=None, overall_reasons=""))
    assert "overall" in p and "overall_reasons" in p


# -- guidance 16: actions where practice requires improvement ------------------------------------
def test_action_required_when_a_section_requires_improvement(service):
    p = probs(service, complete(all_good_but(review=3), overall=2))
    assert set(p) == {"actions"}


def test_action_required_when_overall_requires_improvement(service):
    assert set(probs(service, complete(overall=3))) == {"actions"}


def test_no_action_required_when_all_good(service):
    assert "actions" not in probs(service, complete())


def test_action_due_on_the_audit_date_is_refused(service):
    action = {**ACTION, "due_date": AUDIT_DATE}
    p = probs(service, complete(overall=3, actions=[action]))
    assert set(p) == {"actions.1.due_date"} and "after the audit date" in p["actions.1.due_date"]


def test_action_due_the_day_after_the_audit_is_accepted(service):
    action = {**ACTION, "due_date": "2026-11-03"}
    assert probs(service, complete(overall=3, actions=[action])) == {}


def test_action_needs_an_owner_and_a_due_date(service):
    action = {"action": "Record consent on the case file"}
    p = probs(service, complete(overall=3, actions=[ACTION, action]))
    assert set(p) == {"actions.2.by_whom", "actions.2.due_date"}


def test_empty_action_rows_are_ignored(service):
    p = probs(service, complete(overall=3, actions=[{"action": " ", "by_whom": ""}]))
    assert set(p) == {"actions"}


# -- dates ----------------------------------------------------------------------------------------
def test_audit_date_not_in_future_nor_before_episode(service):
    assert "future" in probs(service, complete(audit_date="2026-11-25"))["audit_date"]
    assert "before this episode" in probs(service, complete(audit_date="2026-01-09"))["audit_date"]


# -- drafts and the lifecycle ---------------------------------------------------------------------
def test_draft_saves_incomplete(service):
    audit_id = audits.save_draft(service, {"episode_id": 1, "auditor1_id": 5,
                                           "audit_date": AUDIT_DATE,
                                           "answers": {"1.1": {"comment": "Half done"}}})
    saved = audits.load(service, audit_id)
    assert saved["status"] == "draft"
    assert saved["answers"] == {"1.1": {"grade": None, "comment": "Half done", "response": None}}
    assert probs(service, saved)  # not submittable yet


def test_draft_needs_case_auditor_and_date_to_be_stored(service):
    with pytest.raises(AuditRuleError) as e:
        audits.save_draft(service, {"answers": {}})
    assert set(e.value.problems) == {"episode", "auditor1", "audit_date"}
    assert service["audits"].count == 0


def test_save_draft_stores_every_child_row_and_drops_removed_ones(service):
    audit = complete(overall=3, actions=[ACTION, {**ACTION, "action": "Second"}])
    audit["answers"]["1.1.1"] = {"response": "yes"}
    audit_id = audits.save_draft(service, audit)
    n_answers = len(audit["answers"])
    assert service.execute("SELECT count(*) FROM answers WHERE audit_id = ?",
                           [audit_id]).fetchone()[0] == n_answers
    assert service.execute("SELECT count(*) FROM checklist_answers").fetchone()[0] == 1
    # Remove the first action and an answer: the second action becomes number 1.
    del audit["answers"]["1.1.1"]
    audit["actions"] = [{**ACTION, "action": "Second"}]
    audits.save_draft(service, audit, audit_id=audit_id)
    assert service.execute("SELECT count(*) FROM answers").fetchone()[0] == n_answers - 1
    assert service.execute("SELECT number, action FROM actions").fetchall() == [(1, "Second")]


def test_a_renumbered_action_keeps_its_own_id(service):
    """The form sends each action's id back, so removing action 1 leaves action 2 under the
    id the action tracker knows it by, renumbered 1; without ids the number is the match."""
    audit_id = audits.save_draft(service, complete(actions=[ACTION, {**ACTION, "action": "Second"}]))
    second = audits.load(service, audit_id)["actions"][1]
    second_id = second["id"]
    audits.save_draft(service, complete(actions=[second]), audit_id=audit_id)
    assert service.execute("SELECT id, number, action FROM actions").fetchall() == [
        (second_id, 1, "Second")]
    audits.save_draft(service, complete(actions=[{**ACTION, "action": "Third"}]), audit_id=audit_id)
    assert service.execute("SELECT id, number, action FROM actions").fetchall() == [
        (second_id, 1, "Third")]


def test_save_draft_writes_nothing_when_a_value_cannot_be_stored(service):
    audit = complete(overall=3, actions=[{**ACTION, "due_date": "2026-02-31"}])
    with pytest.raises(AuditRuleError) as e:
        audits.save_draft(service, audit)
    assert set(e.value.problems) == {"actions.1.due_date"}
    assert service["audits"].count == 0 and service["answers"].count == 0


def test_a_draft_with_auditor_2_the_same_as_auditor_1_is_refused_in_words(service):
    with pytest.raises(AuditRuleError) as e:  # not the store's CHECK constraint error
        audits.save_draft(service, complete(auditor2_id=5))
    assert e.value.problems == {"auditor2": "Auditor 2 must be a different person from "
                                            "auditor 1."}
    assert service["audits"].count == 0


def test_an_action_owned_by_nobody_in_the_store_is_refused_in_words(service):
    with pytest.raises(AuditRuleError) as e:  # not the store's foreign-key error
        audits.save_draft(service, complete(actions=[{**ACTION, "owner_id": 99}]))
    assert "not in the store" in e.value.problems["actions.1.by_whom"]
    assert service["audits"].count == 0


def test_actions_given_as_any_iterable_are_read_once_with_their_owners(service):
    """The owners' names are read before the actions are: a generator is not used up by that."""
    given = ({**ACTION, "action": f"Step {n}", "owner_id": o} for n, o in ((1, 4), (2, 6)))
    audit_id = audits.save_draft(service, complete(actions=given))
    assert service.execute("SELECT number, action, owner_id FROM actions WHERE audit_id = ?"
                           " ORDER BY number", [audit_id]).fetchall() == [
        (1, "Step 1", 4), (2, "Step 2", 6)]


def test_a_save_on_postgresql_sends_a_pinned_number_of_statements(service, monkeypatch):
    """Each statement is a round trip to the server, so their number is pinned: a new audit
    is the login's users, the case, the people it names (one query), the writers' lock, the
    person for the change log, the audit, and its answers, checklist and actions (each a
    batch); a save changing the summary reads the audit's row and version, updates it, and
    reads the child rows back to write only what changed. Counted at psycopg's cursor."""
    if not store.is_postgres(service):
        pytest.skip("round trips are PostgreSQL's: SQLite is in the same process")
    import psycopg

    sent: list[str] = []
    for call in ("execute", "executemany"):
        real = getattr(psycopg.Cursor, call)
        monkeypatch.setattr(psycopg.Cursor, call, lambda cur, sql, *a, _real=real, **k: (
            sent.append(str(sql)), _real(cur, sql, *a, **k))[1])
    audit = complete(actions=[{**ACTION, "owner_id": 4}, {**ACTION, "owner_id": 6}])
    audits.save_draft(service, {**audit, "audit_date": "2026-06-01"})
    sent.clear()  # the first save on a connection also reads the tables' keys (once)
    audit_id = audits.save_draft(service, audit)
    assert len(sent) == 9, sent
    assert sum("FROM practitioners" in s for s in sent) == 1
    sent.clear()
    loaded = audits.load(service, audit_id)
    sent.clear()
    loaded["summary"] = "Summary, revised"
    audits.save_draft(service, loaded)
    assert len(sent) == 11, sent
    assert service.execute("SELECT summary FROM audits WHERE id = ?",
                           [audit_id]).fetchone()[0] == "Summary, revised"


def test_values_the_browser_should_not_send_are_refused(service):
    audit = complete()
    audit["answers"]["9.9"] = {"comment": "x"}
    audit["answers"]["planning"] = {"grade": 7}
    audit["answers"]["1.1.1"] = {"response": "maybe"}
    with pytest.raises(AuditRuleError) as e:
        audits.save_draft(service, audit)
    assert set(e.value.problems) == {"9.9", "planning", "1.1.1"}


def test_submit_refuses_with_the_problems(service):
    audit = complete()
    del audit["answers"]["impact"]
    audit_id = audits.save_draft(service, audit)
    with pytest.raises(AuditRuleError) as e:
        audits.submit(service, audit_id, today=TODAY)
    assert set(e.value.problems) == {"impact"}
    assert audits.load(service, audit_id)["status"] == "draft"


def test_submitted_audit_cannot_be_saved_without_reopening(service):
    audit_id = audits.save_draft(service, complete())
    audits.submit(service, audit_id, today=TODAY)
    saved = audits.load(service, audit_id)
    assert saved["status"] == "submitted" and saved["submitted_at"]
    with pytest.raises(AuditRuleError) as e:
        audits.save_draft(service, {**saved, "summary": "changed"}, audit_id=audit_id)
    assert "reopen" in e.value.problems["status"]
    assert audits.load(service, audit_id)["summary"] == "Summary"


def test_reopen_needs_a_reason_and_keeps_it_in_the_change_log(service):
    audit_id = audits.save_draft(service, complete())
    audits.submit(service, audit_id, today=TODAY)
    with pytest.raises(AuditRuleError):
        audits.reopen(service, audit_id, "  ")
    audits.reopen(service, audit_id, "Lead professional added new evidence")
    assert audits.load(service, audit_id)["status"] == "draft"
    rows = service.execute(
        "SELECT actor, old, new FROM change_log WHERE table_name = 'audits' AND field = 'status'"
        " AND reason = 'Lead professional added new evidence' AND audit_id = ?",
        [audit_id]).fetchall()
    assert rows == [("Ivo Kettlewade", "submitted", "draft")]
    # Reopened, it saves again.
    audits.save_draft(service, {**complete(), "summary": "Updated"}, audit_id=audit_id)
    assert audits.load(service, audit_id)["summary"] == "Updated"


def test_changes_are_logged_with_the_auditor_as_actor(service):
    audit_id = audits.save_draft(service, complete())
    audits.save_draft(service, complete(summary="Second look"), audit_id=audit_id)
    row = service.execute("SELECT actor, old, new FROM change_log WHERE table_name = 'audits'"
                          " AND field = 'summary'").fetchone()
    assert row == ("Ivo Kettlewade", "Summary", "Second look")


def test_save_over_someone_elses_newer_save_is_refused(service):
    audit_id = audits.save_draft(service, complete())
    mine, theirs = audits.load(service, audit_id), audits.load(service, audit_id)
    audits.save_draft(service, {**theirs, "summary": "Theirs"}, audit_id=audit_id)
    with pytest.raises(audits.StaleRecord) as e:
        audits.save_draft(service, {**mine, "summary": "Mine"}, audit_id=audit_id)
    assert "changed by Ivo Kettlewade" in str(e.value) and "reload it" in str(e.value)
    assert audits.load(service, audit_id)["summary"] == "Theirs"


def test_drafts_lists_an_auditors_drafts_only(service):
    mine = audits.save_draft(service, complete())
    audits.save_draft(service, complete(auditor1_id=6))
    done = audits.save_draft(service, complete())
    audits.submit(service, done, today=TODAY)
    assert [d["id"] for d in audits.drafts(service, auditor_id=5)] == [mine]
    assert len(audits.drafts(service)) == 2


# -- finding a saved audit, however old (issue 16) ---------------------------------------------
def many_audits(db, n: int = 45) -> list[int]:
    """``n`` drafts, audited 1, 2, ... days after 1 March 2026: the even ones of EHM1002 by
    Ivo with Orla as auditor 2, the odd ones of EHM1001 by Orla alone."""
    ids = []
    for i in range(1, n + 1):
        day = (dt.date(2026, 3, 1) + dt.timedelta(days=i)).isoformat()
        who = {"auditor1_id": 5, "auditor2_id": 6} if i % 2 == 0 else {"auditor1_id": 6}
        ids.append(audits.save_draft(db, {**complete(**who), "audit_date": day,
                                          "episode_id": 2 if i % 2 == 0 else 1}))
    return ids


def test_find_opens_the_oldest_audit_by_its_number(service):
    ids = many_audits(service)
    for number in (ids[0], str(ids[0]), f" {ids[0]} "):
        found = audits.find(service, number=number)
        assert [r["id"] for r in found.rows] == [ids[0]] and found.total == 1


def test_find_by_ehm_number_in_any_case(service):
    many_audits(service, 6)
    found = audits.find(service, ehm_number=" ehm1002")
    assert found.total == 3 and {r["ehm_number"] for r in found.rows} == {"EHM1002"}


def test_find_by_auditor_either_auditor_status_and_dates_both_days_included(service):
    ids = many_audits(service, 10)
    assert audits.find(service, auditor_id=5).total == 5
    assert audits.find(service, auditor_id=6).total == 10  # auditor 2 of the even ones too
    audits.submit(service, ids[0], today=TODAY)
    assert [r["id"] for r in audits.find(service, status="submitted").rows] == [ids[0]]
    assert audits.find(service, status=["draft", "submitted"]).total == 10
    found = audits.find(service, audited_from=dt.date(2026, 3, 3), audited_to="2026-03-05")
    assert sorted(r["id"] for r in found.rows) == ids[1:4]


def test_find_pages_twenty_at_a_time_newest_change_first(service):
    ids = many_audits(service)
    pages = [audits.find(service, page=n) for n in (1, 2, 3)]
    assert [(f.page, f.pages, f.total, len(f.rows)) for f in pages] == [
        (1, 3, 45, 20), (2, 3, 45, 20), (3, 3, 45, 5)]
    shown = [r["id"] for f in pages for r in f.rows]
    assert shown == sorted(ids, reverse=True)  # each once, the last saved first
    past = audits.find(service, page=9)
    assert past.page == 3 and [r["id"] for r in past.rows] == shown[40:]
    nothing = audits.find(service, ehm_number="EHM9999")
    assert (nothing.total, nothing.page, nothing.pages, nothing.rows) == (0, 1, 1, [])


@pytest.mark.parametrize(("terms", "field", "words"), [
    ({"number": "12a"}, "number", "is not an audit number"),
    ({"number": 0}, "number", "is not an audit number"),
    ({"audited_from": "2026-03-05", "audited_to": "2026-03-03"}, "audited_to", "swap them"),
    ({"audited_from": "last week"}, "audited_from", "is not a date"),
    ({"status": "lost"}, "status", "choose statuses"),
    ({"page": 0}, "page", "from 1"),
])
def test_find_refuses_what_it_cannot_search_for_in_words(service, terms, field, words):
    with pytest.raises(AuditRuleError) as e:
        audits.find(service, **terms)
    assert words in e.value.problems[field]


def test_the_form_finds_and_opens_any_saved_audit_a_page_at_a_time(service, tmp_path):
    from ehkit.forms.audit import AuditForm

    ids = many_audits(service)
    form = AuditForm(where(service))
    form.refresh()
    f = form.finder
    assert "45 audits found" in f.said.value and "page 1 of 3" in f.said.value
    assert f.previous.disabled and not f.next.disabled
    f.next.click()
    f.next.click()
    shown = [label for label, _ in f.results.options]
    assert len(shown) == 5 and "page 3 of 3" in f.said.value and f.next.disabled
    assert shown[-1] == (f"Open no. {ids[0]}: Draft - EHM1001 - audited 02/03/2026 by "
                         "Orla Fennimore")
    f.ehm.value, f.auditor.value = "ehm1002", 5
    f.find.click()
    assert "22 audits found" in f.said.value and "page 1 of 2" in f.said.value
    f.show_all()
    f.number.value = str(ids[0])
    f.find.click()
    f.results.value = ids[0]  # pressed
    assert form.model.audit_id == ids[0] and "Opened audit no." in form.messages.widget.value
    assert f.results.value is None  # ready to be pressed again
    f.number.value = "twelve"
    f.find.click()
    assert "is not an audit number" in f.said.value and "Traceback" not in f.said.value


# -- moderation -----------------------------------------------------------------------------------
def submitted(service, **kw) -> int:
    audit_id = audits.save_draft(service, complete(**kw))
    audits.submit(service, audit_id, today=TODAY)
    return audit_id


def test_moderation_keeps_both_grades(service):
    audit_id = submitted(service)
    audits.moderate(service, audit_id, 6, {"impact": 3, "overall": 3},
                    {"impact": "No evidence the child's day has improved",
                     "overall": "Impact drags it down"}, on=dt.date(2026, 11, 10))
    rows = {r[0]: r[1:] for r in service.execute(
        "SELECT key, original_grade, moderated_grade, reason FROM moderations")}
    assert rows["impact"] == (2, 3, "No evidence the child's day has improved")
    assert rows["planning"] == (2, 2, None)  # agreement is recorded too
    assert len(rows) == 9  # eight sections and the overall grade
    audit = audits.load(service, audit_id)
    assert audit["status"] == "moderated"
    assert audit["answers"]["impact"]["grade"] == 2  # the auditor's grade is untouched


def test_moderated_grade_change_needs_a_reason(service):
    audit_id = submitted(service)
    with pytest.raises(AuditRuleError) as e:
        audits.moderate(service, audit_id, 6, {"impact": 3}, {})
    assert "reason" in e.value.problems["impact"]
    assert service["moderations"].count == 0


def test_moderated_overall_must_reflect_moderated_sections(service):
    audit_id = submitted(service)
    with pytest.raises(AuditRuleError) as e:
        audits.moderate(service, audit_id, 6, {"impact": 4}, {"impact": "No impact"})
    assert "Requires Improvement" in e.value.problems["overall"]


def test_auditor1_cannot_moderate_and_a_draft_cannot_be_moderated(service):
    audit_id = submitted(service)
    with pytest.raises(AuditRuleError) as e:
        audits.moderate(service, audit_id, 5, {}, {})
    assert "moderator" in e.value.problems
    draft = audits.save_draft(service, complete())
    with pytest.raises(AuditRuleError):
        audits.moderate(service, draft, 6, {}, {})


def refused(db) -> type[Exception]:
    """The error each back end raises for a row its constraints refuse."""
    if store.is_postgres(db):
        import psycopg

        return psycopg.IntegrityError
    return sqlite3.IntegrityError


def test_store_refuses_moderation_without_reason_even_past_the_domain(service):
    audit_id = submitted(service)
    with pytest.raises(refused(service)):
        service.execute("INSERT INTO moderations (audit_id, key, moderator_id, moderated_on,"
                        " original_grade, moderated_grade) VALUES (?, 'impact', 6,"
                        " '2026-11-10', 2, 3)", [audit_id])


# -- outputs --------------------------------------------------------------------------------------
def test_case_note_gives_auditor_date_and_grading(service):
    audit_id = submitted(service, auditor2_id=6)
    note = audits.case_note(service, audit_id)
    assert "Ivo Kettlewade and Orla Fennimore" in note
    assert "Date audited: 02/11/2026" in note and "2026-11-02" not in note
    assert "Overall grading: Good" in note
    assert "7. IMPACT: Good" in note


def test_printable_record_shows_script_as_text(service, tmp_path):
    audit = complete(overall=3, actions=[{**ACTION, "by_whom": "<b>Wren</b>"}])
    audit["answers"]["7.1"] = {"comment": "Mum said <script>alert('x')</script> & left"}
    audit_id = audits.save_draft(service, audit)
    path = audits.print_record(service, audit_id, out_dir=tmp_path / "audits")
    assert path == tmp_path / "audits" / f"EHM1001-2026-11-02-audit-{audit_id}.html"
    html = path.read_text(encoding="utf-8")
    assert "<script>" not in html
    assert "Mum said &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; left" in html
    assert "&lt;b&gt;Wren&lt;/b&gt;" in html
    for text in ("Pip Dimbleford", "EHM1001", "Wren Applebridge", "Tam Quillthorpe",
                 "Contact to CAP", "Hold a review TAF meeting", "Ivo Kettlewade"):
        assert text in html


def test_printable_record_shows_dates_as_people_read_them(service, tmp_path):
    audit_id = audits.save_draft(service, complete(overall=3, actions=[ACTION]))
    html = audits.print_record(service, audit_id, out_dir=tmp_path / "audits").read_text(
        encoding="utf-8").split("<h2>Case note")[0]  # the case note is audits.case_note's
    assert "02/11/2026" in html and "2026-11-02" not in html
    due = dt.date.fromisoformat(ACTION["due_date"])
    assert f"{due:%d/%m/%Y}" in html and ACTION["due_date"] not in html


def moderated_then_resubmitted(service) -> int:
    """Moderated by Orla (impact and overall down to Requires Improvement), then reopened and
    submitted again with every grade Good: her moderation no longer counts."""
    audit_id = submitted(service)
    audits.moderate(service, audit_id, 6, {"impact": 3, "overall": 3},
                    {"impact": "Impact not evidenced", "overall": "Impact drags it down"},
                    on=dt.date(2026, 11, 10))
    audits.reopen(service, audit_id, "New evidence on the file")
    audits.submit(service, audit_id, today=TODAY)
    return audit_id


def moderation_part(html: str) -> str:
    return html.split("<h2>Case note")[0].split("<h2>9.")[-1]


def test_printed_record_after_a_reopen_shows_the_old_moderation_only_as_history(service,
                                                                                tmp_path):
    audit_id = moderated_then_resubmitted(service)
    html = audits.print_record(service, audit_id, out_dir=tmp_path).read_text(encoding="utf-8")
    part = moderation_part(html)
    assert "<h2>Moderation</h2>" not in part
    assert "<h2>Earlier moderation (history)</h2>" in part
    assert "no longer count" in part and "Impact not evidenced" in part
    # Moderated again, by Sol: that is the moderation; Orla's is history.
    audits.moderate(service, audit_id, 2, {}, {}, on=dt.date(2026, 11, 20))
    part = moderation_part(audits.print_record(service, audit_id, out_dir=tmp_path)
                           .read_text(encoding="utf-8"))
    now, before = part.split("<h2>Earlier moderation (history)</h2>")
    assert "<h2>Moderation</h2>" in now and "Sol Pebbleford" in now and "20/11/2026" in now
    assert "Orla Fennimore" not in now and "Impact not evidenced" not in now
    assert "Orla Fennimore" in before and "Sol Pebbleford" not in before


def test_printed_record_of_a_moderated_audit_has_no_history(service, tmp_path):
    audit_id = submitted(service)
    audits.moderate(service, audit_id, 6, {}, {}, on=dt.date(2026, 11, 10))
    part = moderation_part(audits.print_record(service, audit_id, out_dir=tmp_path)
                           .read_text(encoding="utf-8"))
    assert "<h2>Moderation</h2>" in part and "Orla Fennimore" in part
    assert "Earlier moderation" not in part


def test_the_form_does_not_offer_a_moderation_from_before_a_reopen(service, tmp_path):
    from ehkit.forms.audit import AuditForm

    audit_id = moderated_then_resubmitted(service)
    form = AuditForm(where(service))
    form.refresh()
    form.open(audit_id)
    mod = form.model.moderation
    assert mod.changed() == {} and mod.reasons_given()["impact"] == ""


def grades_that_count(db, audit_id) -> dict[str, int]:
    return dict(db.execute("SELECT key, grade FROM final_grades WHERE audit_id = ?",
                           [audit_id]).fetchall())


def test_case_note_gives_the_moderated_grades_and_the_auditors_where_changed(service):
    audit_id = submitted(service)
    audits.moderate(service, audit_id, 6, {"impact": 3, "overall": 3},
                    {"impact": "Impact not evidenced", "overall": "Impact drags it down"},
                    on=dt.date(2026, 11, 10))
    note = audits.case_note(service, audit_id)
    assert "Moderated by: Orla Fennimore on 10/11/2026." in note
    assert ("Overall grading: Requires Improvement (moderated; the auditor's grading: Good)."
            in note)
    assert "7. IMPACT: Requires Improvement (moderated; the auditor's grading: Good)" in note
    assert "  1. " in note and "moderated" not in note.split("  1. ")[1].split("\n")[0]
    # The note's grade is the one every figure counts.
    counted = grades_that_count(service, audit_id)
    assert counted["impact"] == counted["overall"] == 3


def test_case_note_after_a_reopen_gives_the_auditors_grades(service):
    audit_id = moderated_then_resubmitted(service)
    note = audits.case_note(service, audit_id)
    assert "moderat" not in note.lower()  # her moderation no longer counts
    assert "Overall grading: Good." in note and "7. IMPACT: Good" in note
    assert grades_that_count(service, audit_id)["impact"] == 2


def test_two_audits_of_one_case_on_one_day_print_to_two_files(service, tmp_path):
    first = submitted(service)
    second = submitted(service, auditor1_id=6)
    one = audits.print_record(service, first, out_dir=tmp_path)
    two = audits.print_record(service, second, out_dir=tmp_path)
    assert one != two and one.exists() and two.exists()
    assert f"Audit {first} " in one.read_text(encoding="utf-8")
    assert f"Audit {second} " in two.read_text(encoding="utf-8")


# -- the command line and the server configuration ------------------------------------------------
def test_audit_print_command_writes_the_record(service, tmp_path, capsys):
    from ehkit import cli

    audit_id = submitted(service)
    db_file = where(service)
    out = tmp_path / "records"
    assert cli.main(["audit", "print", str(audit_id), "--db", db_file, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (out / f"EHM1001-2026-11-02-audit-{audit_id}.html").exists()
    assert "Overall grading: Good" in printed


def test_serve_is_closed_by_default(service, tmp_path):
    from ehkit import serve

    db_file = where(service)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(serve.ServeError, match="already in use"):
            serve.configure(db_file, port=port)
    cfg = serve.configure(db_file, port=port)
    argv = cfg.argv()
    assert "--Voila.ip=127.0.0.1" in argv and "--show_tracebacks=False" in argv
    assert "--strip_sources=True" in argv and "--preheat_kernel=True" in argv
    assert len(cfg.token) >= 24 and f"--token={cfg.token}" in argv
    assert cfg.url == f"http://127.0.0.1:{port}/?token={cfg.token}"
    assert argv[0].endswith("notebooks/audit.ipynb")
    open_cfg = serve.configure(db_file, port=port, no_token=True, preheat=False)
    assert "--token=" in open_cfg.argv() and "--preheat_kernel=True" not in open_cfg.argv()
    with pytest.raises(serve.ServeError, match="no database"):
        serve.configure(tmp_path / "missing.db", port=port)
    with pytest.raises(serve.ServeError, match="no notebook 'nope'"):
        serve.configure(db_file, port=port, notebook="nope")


def test_ehm_numbers_suggest_open_cases_newest_first_then_those_closed_this_past_year(service):
    db = service
    today = dt.date.today()
    day = lambda n: (today - dt.timedelta(days=n)).isoformat()  # noqa: E731
    with store.transaction(db):
        db["episodes"].insert_all([
            {"id": 3, "ehm_number": "EHM1003", "start_date": day(400), "end_date": day(30),
             "status": "closed", "lead_agency_id": 1},                   # closed last month
            {"id": 4, "ehm_number": "EHM1004", "start_date": day(900), "end_date": day(500),
             "status": "closed", "lead_agency_id": 1},                   # closed long ago
            {"id": 5, "ehm_number": "EHM1001", "start_date": day(700), "end_date": day(600),
             "status": "closed", "lead_agency_id": 1}])                  # EHM1001's last spell
    # Open: EHM1002 began 2026-03-01, EHM1001 2026-01-10 (newest first); then closed since.
    assert episodes.ehm_numbers(db) == ["EHM1002", "EHM1001", "EHM1003"]
    assert episodes.ehm_numbers(db, limit=1) == ["EHM1002"]


# -- no lost update: a write acts only on the audit as the person saw it (issue 13, part 2) ----
def final_overall(db, audit_id) -> int:
    return db.execute("SELECT grade FROM final_overall WHERE audit_id = ?",
                      [audit_id]).fetchone()[0]


def log_size(db) -> int:
    return db.execute("SELECT count(*) FROM change_log").fetchone()[0]


def last_change_at(db, audit_id) -> str:
    """When the audit last changed, as the refusal says it: the UK clock, day first."""
    at = db.execute("SELECT max(at) FROM change_log WHERE audit_id = ?", [audit_id]).fetchone()[0]
    return dt.datetime.fromisoformat(at).astimezone(ZoneInfo("Europe/London")).strftime(
        "%d/%m/%Y %H:%M")


def auditor_regrades(db, audit_id, *, resubmit=True) -> None:
    """The auditor reopens the audit, makes the overall grade Requires Improvement, resubmits."""
    audits.reopen(db, audit_id, "New evidence on the file")
    if resubmit:
        audits.save_draft(db, complete(overall=3, actions=[ACTION]), audit_id=audit_id)
        audits.submit(db, audit_id, today=TODAY)


def test_moderation_of_grades_changed_since_the_moderator_opened_the_audit_is_refused(service):
    audit_id = submitted(service)
    seen = audits.load(service, audit_id)  # the moderator opens it: overall Good
    auditor_regrades(service, audit_id)  # meanwhile the auditor makes it Requires Improvement
    before = log_size(service)
    with pytest.raises(audits.StaleRecord) as e:
        audits.moderate(service, audit_id, 6, {}, {}, on=dt.date(2026, 11, 24),
                        expected_version=seen["version"])
    assert str(e.value) == (
        f"this audit (no. {audit_id}) was changed by Ivo Kettlewade (login {store.login_name()})"
        f" at {last_change_at(service, audit_id)} since you opened it, so nothing you asked was"
        " saved: reload it to see their change, then make yours again")
    assert log_size(service) == before and service["moderations"].count == 0
    assert audits.load(service, audit_id)["status"] == "submitted"
    assert final_overall(service, audit_id) == 3
    # Reloaded, the moderator agrees with what the audit now says.
    audits.moderate(service, audit_id, 6, {}, {}, expected_version=audits.load(
        service, audit_id)["version"])
    assert final_overall(service, audit_id) == 3


def test_moderating_an_audit_reopened_since_it_was_opened_is_refused_in_words(service):
    audit_id = submitted(service)
    seen = audits.load(service, audit_id)
    auditor_regrades(service, audit_id, resubmit=False)
    with pytest.raises(audits.StaleRecord, match="changed by Ivo Kettlewade"):
        audits.moderate(service, audit_id, 6, {}, {}, expected_version=seen["version"])
    with pytest.raises(AuditRuleError, match="Only a submitted audit can be moderated"):
        audits.moderate(service, audit_id, 6, {}, {})
    assert service["moderations"].count == 0
    assert audits.load(service, audit_id)["status"] == "draft"


@pytest.mark.parametrize("resubmit", [True, False], ids=["resubmitted", "reopened only"])
def test_moderation_is_read_checked_and_written_in_one_transaction(service, monkeypatch,
                                                                   tmp_path, resubmit):
    """The race injected where it used to fall: the auditor acts while moderate() is checking.

    Their write now waits for the moderation (here: gives up at once), so the moderation
    agrees with the grades the audit holds, never with grades it no longer holds.
    """
    audit_id = submitted(service)
    auditor = store.connect(where(service))
    auditor.conn.execute("SET lock_timeout = 100" if store.is_postgres(service)
                         else "PRAGMA busy_timeout = 100")
    waited = []
    checking = audits.conflict_of_interest

    def auditor_acts_meanwhile(*args):
        if not waited:  # once: the auditor's own submit checks this too
            waited.append("not kept waiting")
            try:
                auditor_regrades(auditor, audit_id, resubmit=resubmit)
            except store.StoreError as e:  # the database is busy with the moderation
                waited[0] = str(e)
        return checking(*args)

    monkeypatch.setattr(audits, "conflict_of_interest", auditor_acts_meanwhile)
    audits.moderate(service, audit_id, 6, {}, {})
    auditor.close()
    held = audits.load(service, audit_id)
    grades = {k: (held["answers"].get(k) or {}).get("grade") for k in held["answers"]}
    grades["overall"] = held["overall_grade"]
    assert {m["key"]: m["original_grade"] for m in held["moderations"]} == {
        k: g for k, g in grades.items() if g is not None}  # agreed with what it holds
    assert final_overall(service, audit_id) == held["overall_grade"] == 2
    assert held["status"] == "moderated"
    assert "busy" in waited[0]  # the auditor's write waited for the moderation


def test_reopening_an_audit_moderated_since_it_was_opened_is_refused(service):
    audit_id = submitted(service)
    seen = audits.load(service, audit_id)  # the auditor opens their submitted audit
    audits.moderate(service, audit_id, 6, {"impact": 3, "overall": 3},
                    {"impact": "Little change for the child", "overall": "Impact"})
    with pytest.raises(audits.StaleRecord, match="changed by Orla Fennimore"):
        audits.reopen(service, audit_id, "Add evidence", expected_version=seen["version"])
    assert audits.load(service, audit_id)["status"] == "moderated"


def test_submitting_a_draft_saved_by_someone_else_since_it_was_opened_is_refused(service):
    audit_id = audits.save_draft(service, complete())
    seen = audits.load(service, audit_id)
    audits.save_draft(service, {**seen, "overall_grade": 4}, audit_id=audit_id)
    with pytest.raises(audits.StaleRecord):
        audits.submit(service, audit_id, today=TODAY, expected_version=seen["version"])
    assert audits.load(service, audit_id)["status"] == "draft"


def test_an_action_completed_since_the_audit_was_opened_cannot_be_wiped_by_a_reopen(service):
    from ehkit import actions

    audit_id = submitted(service, actions=[ACTION])
    seen = audits.load(service, audit_id)  # the auditor's form holds the action, not done
    actions.complete(service, seen["actions"][0]["id"], "2026-11-20", "TAF review held",
                     actor="Sol Pebbleford", today=TODAY)
    with pytest.raises(audits.StaleRecord, match="changed by Sol Pebbleford"):
        audits.reopen(service, audit_id, "Add evidence", expected_version=seen["version"])
    with pytest.raises(audits.StaleRecord):
        audits.save_draft(service, seen, audit_id=audit_id)
    assert audits.load(service, audit_id)["actions"][0]["completed_date"] == "2026-11-20"


def test_save_and_load_gives_the_version_of_that_save(service):
    a = audits.save_and_load(service, complete())
    b = audits.save_and_load(service, {**a, "summary": "Second look"})
    assert b["version"] > a["version"] and b["summary"] == "Second look"
    assert b["version"] == audits.load(service, a["id"])["version"]
    with pytest.raises(audits.StaleRecord):
        audits.save_and_load(service, {**a, "summary": "From the old page"})


def test_the_audit_form_says_who_changed_the_audit_and_saves_nothing(service, tmp_path):
    from ehkit.forms.audit import AuditForm

    audit_id = submitted(service)
    form = AuditForm(where(service))
    form.refresh()
    form.open(audit_id)  # the moderator opens it on the form
    auditor_regrades(service, audit_id)
    form.moderator.value = 6
    moderate_button = form.moderation_box.children[-1]
    moderate_button.click()
    shown = form.messages.widget.value
    assert "changed by Ivo Kettlewade" in shown and "reload it" in shown
    assert "find it under Saved audits" in shown
    assert "Something went wrong" not in shown and "Traceback" not in shown
    assert service["moderations"].count == 0
    # Reloaded, then reopened elsewhere: the form's reopen is refused the same way.
    form.open(audit_id)
    audits.reopen(service, audit_id, "The auditor's own second look")
    form.reopen_reason.value = "Second look"
    form.reopen_box.children[1].click()
    assert "changed by Ivo Kettlewade" in form.messages.widget.value
    # And a draft saved elsewhere after the form opened it: the form's save is refused.
    form.open(audit_id)
    audits.save_draft(service, {**audits.load(service, audit_id), "summary": "Theirs"})
    form.summary.value = "Mine"
    form.save_btn.click()
    assert "changed by Ivo Kettlewade" in form.messages.widget.value
    assert audits.load(service, audit_id)["summary"] == "Theirs"
    assert form.summary.value == "Mine"  # still there to copy


def test_a_time_the_store_stamped_is_shown_on_the_uk_clock_day_first():
    from ehkit.dates import uk_time

    assert uk_time("2026-11-24T10:05:03.123456Z") == "24/11/2026 10:05"  # GMT
    assert uk_time("2026-07-01T23:30:00Z") == "02/07/2026 00:30"  # BST: the next day here


def test_find_counts_what_it_lists_on_both_back_ends(demo_both):
    """The count comes from the audits alone (a case joined only for an EHM number): it is
    what the whole list shows, whatever the terms."""
    db = store.connect(demo_both)
    try:
        ehm = db.execute("SELECT e.ehm_number FROM audits a JOIN episodes e"
                         " ON e.id = a.episode_id ORDER BY a.id LIMIT 1").fetchone()[0]
        for terms in ({}, {"ehm_number": ehm.lower()}, {"status": "submitted"},
                      {"auditor_id": 1}, {"audited_from": "2026-01-01"}):
            found = audits.find(db, limit=100_000, **terms)
            assert found.total == len(found.rows), terms
            assert found.total > 0 or terms == {"auditor_id": 1}, terms
    finally:
        db.close()
