"""The audit form's logic without a browser: build a panel's model and view, set traits or
widget values, and check both. (tests/test_audit_form_browser.py proves the wiring in
Chromium.) Only synthetic people."""

from __future__ import annotations

import datetime as dt

import ipywidgets as w
import pytest
from voila_harness import copy_db

from ehkit import audits
from ehkit import db as store
from ehkit import template as templates
from ehkit.forms.audit_model import ActionModel, AuditModel
from ehkit.forms.audit_views import (
    HIDDEN,
    ActionsView,
    CaseView,
    ChecklistView,
    ModerationView,
    OverallView,
    RecordView,
    SectionView,
)
from ehkit.forms.common import friendly

TPL = templates.load()
GRADED = TPL.graded_sections[0]  # pre_eha
ITEM = GRADED.items[0]
QUESTION = ITEM.questions[0]
LEARNING = next(i for i in TPL.items if i.learning)
CHECK = TPL.checklist[0].value
PEOPLE = [{"id": 11, "name": "Ava Auditor", "role": "Senior practitioner", "agency": "Early Help"},
          {"id": 12, "name": "Bo Reviewer", "role": None, "agency": "School"}]


def guard(fn):
    """Buttons' callbacks as the form wraps them (errors shown, never raised)."""
    return friendly(w.HTML())(fn)


@pytest.fixture
def model():
    return AuditModel(TPL)


def saved_audit(**extra) -> dict:
    """An audit as ``audits.load`` gives it (the keys the form reads)."""
    return {"id": 7, "version": 41, "status": "draft", "audit_date": "2026-10-20",
            "auditor1_id": 11, "auditor2_id": 12, "episode_id": 5,
            "case": {"ehm_number": "EHM000123"}, "summary": "Referred for attendance.",
            "overall_grade": 2, "overall_reasons": "Mostly good.",
            "learning": "Use the child's own words.",
            "answers": {GRADED.key: {"grade": 3}, ITEM.key: {"comment": "Seen on file"},
                        QUESTION.key: {"response": "yes"}},
            "checklist": {CHECK: {"status": "accurate", "note": "On file"}},
            "actions": [{"id": 91, "number": 1, "action": "Hold a TAF review",
                         "by_whom": "Ava Auditor", "due_date": "2026-11-20"}],
            "moderations": [], **extra}


def test_an_audit_shown_on_the_model_is_collected_back_unchanged(model):
    model.show_people(PEOPLE)
    model.update(saved_audit())
    model.case.show_episodes([{"id": 5, "start_date": "2026-01-02", "status": "open"}], 5)
    back = model.as_audit()
    assert (back["id"], back["version"], back["episode_id"], back["auditor1_id"],
            back["auditor2_id"]) == (7, 41, 5, 11, 12)
    assert back["audit_date"] == dt.date(2026, 10, 20)
    assert back["answers"] == {GRADED.key: {"grade": 3}, ITEM.key: {"comment": "Seen on file"},
                               QUESTION.key: {"response": "yes"}}
    assert (back["summary"], back["overall_grade"], back["overall_reasons"],
            back["learning"]) == ("Referred for attendance.", 2, "Mostly good.",
                                  "Use the child's own words.")
    assert back["checklist"][CHECK] == {"status": "accurate", "note": "On file"}
    assert back["actions"][0]["id"] == 91 and back["actions"][0]["due_date"] == "2026-11-20"
    # A new audit clears every answer.
    model.update({})
    assert model.as_audit()["answers"] == {} and model.audit_id is None
    assert model.as_audit()["actions"] == [] and model.summary == ""


def test_an_auditor_not_offered_is_not_chosen(model):
    model.show_people(PEOPLE[:1])
    model.update(saved_audit())
    assert (model.case.auditor1_id, model.case.auditor2_id) == (11, None)


def test_what_is_typed_on_a_panel_is_on_the_model_and_the_model_is_shown(model):
    overall = OverallView(model, TPL)
    section = SectionView(model, TPL, GRADED, overall)
    checklist = ChecklistView(model, TPL)
    section.grade.value = 4
    section.comments[ITEM.key].value = "Evidence <seen>"
    section.responses[QUESTION.key].value = "no"
    status, note = checklist.checklist[CHECK]
    status.value, note.value = "not_accurate", "No consent form"
    audit = model.as_audit()
    assert audit["answers"][GRADED.key] == {"grade": 4}
    assert audit["answers"][ITEM.key] == {"comment": "Evidence <seen>"}
    assert audit["answers"][QUESTION.key] == {"response": "no"}
    assert audit["checklist"][CHECK] == {"status": "not_accurate", "note": "No consent form"}
    model.update(saved_audit())
    assert section.grade.value == 3 and section.comments[ITEM.key].value == "Seen on file"
    assert status.value == "accurate" and note.value == "On file"


def test_the_overall_grade_is_shown_where_it_is_chosen(model):
    overall = OverallView(model, TPL)
    held = next(s for s in TPL.sections if s.holds_overall)
    SectionView(model, TPL, held, overall)
    assert "not chosen yet" in overall.shown.value
    overall.grade.value = 3
    assert model.grades["overall"].value == 3
    assert f"chosen in section {held.number} below" in overall.shown.value
    assert f"<b>{TPL.grade_label(3)}</b>" in overall.shown.value


def test_a_submitted_audit_locks_every_input_until_it_is_reopened(model):
    overall = OverallView(model, TPL)
    sections = [SectionView(model, TPL, s, overall) for s in TPL.sections]
    case, checklist = CaseView(model, TPL), ChecklistView(model, TPL)
    actions, record = ActionsView(model, TPL, guard), RecordView(model, w.HTML())

    def inputs():
        row = actions.rows[model.actions[0]]
        found = [case.audit_date, case.auditor1, case.auditor2, case.ehm, case.episode,
                 overall.reasons, actions.add, record.save, record.submit,
                 *(x for s in sections for x in [*s.responses.values(), *s.comments.values()]),
                 *(s.grade for s in sections if s.grade), overall.grade,
                 *(x for pair in checklist.checklist.values() for x in pair),
                 *row.widgets.values(), row.remove]
        return [x for x in found if not isinstance(x, w.HTML)]  # the action number

    model.add_action()
    assert not any(x.disabled for x in inputs())
    assert record.reopen_box.layout.display == HIDDEN
    model.update(saved_audit(status="submitted"))
    assert all(x.disabled for x in inputs())
    assert record.reopen_box.layout.display is None
    assert record.moderation_box.layout.display is None
    assert not record.reopen_reason.disabled  # the one thing to type: why it is reopened
    model.status = "draft"
    assert not any(x.disabled for x in inputs())


def test_print_is_offered_once_the_audit_is_saved(model):
    record = RecordView(model, w.HTML())
    assert record.print.disabled
    model.saved({"id": 3, "version": 9, "status": "draft", "actions": []})
    assert not record.print.disabled and model.state_line() == ("Audit no. 3", " - Draft")


def test_rule_messages_go_beside_their_field_and_the_rest_are_said_above(model):
    overall = OverallView(model, TPL)
    section = SectionView(model, TPL, GRADED, overall)
    actions = ActionsView(model, TPL, guard)
    empty, filled = model.add_action(), model.add_action()
    filled.values["action"].value = "Hold a TAF review"
    loose = model.place({GRADED.key: "Choose a grade", "actions.1": "Say who will do it",
                         "actions.2": "No such row", "template": "Not on the form"},
                        todo=True)
    assert loose == ["Not on the form", "No such row"]
    note = section.parts[section.parts.index(section.grade) + 2]
    assert "Choose a grade" in note.value and "ehkit-todo" in note.value
    # "actions.1" is the first action with anything in it: the second row here.
    assert actions.rows[empty].note.value == ""
    assert "Say who will do it" in actions.rows[filled].note.value
    model.place({})
    assert note.value == "" and actions.rows[filled].note.value == ""


def test_a_note_set_for_one_field_leaves_the_others(model):
    model.note("auditor1", "May not audit")
    model.note("audit_date", "In the future")
    model.note("auditor1", None)
    assert model.notes == {"audit_date": ("In the future", False)}


def test_actions_are_numbered_in_order_and_removed_by_their_button(model):
    actions = ActionsView(model, TPL, guard)
    actions.add.click()
    actions.add.click()
    first, second = model.actions
    assert [actions.rows[r].widgets["number"].value for r in model.actions] == ["<b>1</b>",
                                                                                "<b>2</b>"]
    actions.rows[second].widgets["due_date"].value = dt.date(2026, 12, 1)
    assert second.as_audit()["due_date"] == "2026-12-01"
    gone = actions.rows[first]
    gone.remove.click()
    assert model.actions == [second] and len(actions.box.children) == 1
    assert gone.remove.comm is None  # closed: the browser drops its models
    model.status = "submitted"
    assert not gone.widgets["action"].disabled  # no longer bound to the form
    assert actions.rows[second].widgets["number"].value == "<b>1</b>"
    model.names = ["Ava Auditor"]
    assert actions.rows[second].widgets["by_whom"].options == ("Ava Auditor",)


def test_an_action_row_keeps_its_saved_id_so_the_next_save_updates_it(model):
    blank, row = ActionModel(TPL.action_columns), ActionModel(TPL.action_columns)
    row.values["action"].value = "Hold a TAF review"
    model.actions = [blank, row]
    model.saved({"id": 4, "version": 2, "status": "draft", "actions": [{"id": 77}]})
    assert (blank.id, row.id) == (None, 77)


def test_the_episode_choice_shows_only_when_the_case_has_several(model):
    case = CaseView(model, TPL)
    one = [{"id": 5, "start_date": "2026-01-02", "status": "open"}]
    two = [*one, {"id": 6, "start_date": "2025-03-04", "status": "closed"}]
    model.case.show_episodes(two, 6)
    assert case.episode.layout.display is None and case.episode.value == 6
    model.case.show_episodes(one)
    assert case.episode.layout.display == HIDDEN and model.case.episode_id == 5
    model.case.show_episodes([])
    assert model.case.episode_id is None


def test_people_offered_again_keep_the_chosen_auditor(model):
    case = CaseView(model, TPL)
    model.show_people(PEOPLE)
    case.auditor1.value = 12
    model.show_people(list(reversed(PEOPLE)))
    assert model.case.auditor1_id == 12 and case.auditor1.value == 12
    model.show_people(PEOPLE[:1])
    assert model.case.auditor1_id is None and case.auditor1.value is None
    assert [label for label, _ in case.auditor1.options] == [
        "(none)", "Ava Auditor (Senior practitioner, Early Help)"]


def test_case_information_is_shown_read_only_and_escaped(model):
    case = CaseView(model, TPL)
    model.case.information = {"lead_professional": "Wren <Applebridge>",
                              "cross_authority": 1, "cross_authority_name": "Northshire",
                              "cross_authority_contact": None}
    assert "Wren &lt;Applebridge&gt;" in case.readonly["lead_professional"].value
    assert "Northshire: contact not recorded" in case.readonly["cross_authority_contact"].value
    model.case.information = {"cross_authority": 0, "cross_authority_contact": None}
    assert "Not a cross-authority" in case.readonly["cross_authority_contact"].value


def test_moderation_offers_agreement_with_the_auditors_grade_and_shows_the_latest(model):
    view = ModerationView(model)
    a = saved_audit(status="moderated", moderations=[  # as audits.load marks what counts
        {"key": GRADED.key, "moderated_grade": 4, "reason": "Little evidence", "counts": True},
        {"key": "overall", "moderated_grade": 2, "reason": None, "counts": True}])
    model.moderation.update(a)
    options = view.grades[GRADED.key].options
    assert options[0] == (f"Agree: {TPL.grade_label(3)}", None)
    assert 3 not in [v for _, v in options[1:]]
    assert view.grades[GRADED.key].value == 4
    assert view.reasons[GRADED.key].value == "Little evidence"
    assert view.grades["overall"].value is None  # the moderator's grade is the auditor's
    view.grades["overall"].value = 1
    view.reasons["overall"].value = "Outstanding work"
    assert model.moderation.changed() == {GRADED.key: 4, "overall": 1}
    assert model.moderation.reasons_given()["overall"] == "Outstanding work"


def test_no_hidden_widget_shares_its_layout(demo_db_path, tmp_path):
    """Hiding a shared layout would hide every widget that has it."""
    from ehkit.forms.audit import AuditForm

    form = AuditForm(copy_db(demo_db_path, tmp_path / "ehkit.db"))
    form.moderation  # noqa: B018 - built, as for a submitted audit
    users: dict[int, list] = {}
    for x in _reachable(form.widget):
        if isinstance(x, w.DOMWidget):
            users.setdefault(id(x.layout), []).append(x)
    hidden = [form.case_view.episode, form.record.reopen_box, form.record.moderation_box,
              form.record.case_note]
    for x in hidden:
        assert users[id(x.layout)] == [x]


def test_the_form_builds_no_more_widget_models_than_measured(demo_db_path, tmp_path):
    """The browser builds every model before the form opens (336 with the Saved audits finder)."""
    from ehkit.forms.audit import AuditForm

    form = AuditForm(copy_db(demo_db_path, tmp_path / "ehkit.db"))
    form.refresh()
    assert len(_reachable(form.widget)) <= 336


def _reachable(root: w.Widget) -> list[w.Widget]:
    """Every widget model the browser is sent for ``root`` (children, layouts, styles)."""
    seen: dict[int, w.Widget] = {}
    todo = [root]
    while todo:
        x = todo.pop()
        if id(x) in seen:
            continue
        seen[id(x)] = x
        for name in x.keys:
            v = getattr(x, name)
            todo += [c for c in (v if isinstance(v, (list, tuple)) else [v])
                     if isinstance(c, w.Widget)]
    return list(seen.values())


# -- the form itself, on a real store ---------------------------------------------------------
def test_someone_who_may_not_audit_the_case_is_told_at_once(demo_db_path, tmp_path):
    from ehkit.forms.audit import AuditForm

    db = copy_db(demo_db_path, tmp_path / "ehkit.db")
    database = store.connect(db)
    (ehm, manager), = database.execute(
        "SELECT e.ehm_number, e.team_manager_id FROM episodes e JOIN practitioners p ON"
        " p.id = e.team_manager_id AND p.is_auditor = 1 WHERE (SELECT count(*) FROM episodes x"
        " WHERE x.ehm_number = e.ehm_number) = 1 ORDER BY e.id LIMIT 1").fetchall()
    database.close()
    form = AuditForm(db)
    form.refresh()
    form.case_view.ehm.value = ehm
    assert form.model.case.episode_id is not None
    assert form.case_view.readonly["lead_professional"].value != '<div class="ehkit-readonly"></div>'
    form.case_view.auditor1.value = manager
    assert "may not audit" in form.model.notes["auditor1"][0]
    form.case_view.auditor1.value = None
    assert "auditor1" not in form.model.notes
    form.case_view.ehm.value = "EHM-NOBODY"
    assert "No case has the EHM number 'EHM-NOBODY'" in form.model.notes["episode"][0]
    assert form.state.value == "<b>New audit</b> - not saved yet."


# -- the whole form: built from the template, values round-trip ----------------------------
SMALL_TEMPLATE = """
key = "small"
title = "Small Council Audit"
[grades]
scale = [{ value = 1, label = "Fine", definition = "Practice is fine" },
         { value = 2, label = "Not fine", definition = "Practice is not fine" }]
acceptable = [1]
[rules]
overall_limit = "worst"
actions_required_from_grade = 2
[case_information]
fields = [{ key = "audit_date", label = "When" }, { key = "auditor1", label = "Who" },
          { key = "ehm_number", label = "Case" }, { key = "lead_professional", label = "Lead" }]
[checklist]
choices = [{ value = "accurate", label = "Right" }, { value = "not_accurate", label = "Wrong" }]
items = [{ key = "consent", label = "Consent" }]
[[sections]]
key = "practice"
number = 1
title = "PRACTICE"
graded = true
  [[sections.items]]
  key = "p1"
  prompt = "Is the practice any good?"
  questions = [{ key = "p1.a", text = "Was the child seen?" }]
[[sections]]
key = "wrap_up"
number = 2
title = "WRAP UP"
graded = false
holds_overall = true
  [[sections.items]]
  key = "w1"
  learning = true
  prompt = "What was learnt?"
"""


def test_another_template_gives_another_form(demo_db_path, tmp_path):
    from ehkit.forms.audit import AuditForm

    path = tmp_path / "small.toml"
    path.write_text(SMALL_TEMPLATE, encoding="utf-8")
    form = AuditForm(demo_db_path, template=str(path))
    assert set(form.grades) == {"practice", "overall"}
    assert set(form.responses) == {"p1.a"} and set(form.comments) == {"p1", "w1"}
    assert set(form.checklist_view.checklist) == {"consent"}
    assert [label for label, _ in form.grades["practice"].options] == ["Not fine", "Fine"]
    assert set(form.case_view.readonly) == {"lead_professional"}
    # With no section holding the overall grade, it is chosen in the overall block instead.
    other = tmp_path / "small2.toml"
    other.write_text(SMALL_TEMPLATE.replace("holds_overall = true", "holds_overall = false"),
                     encoding="utf-8")
    form = AuditForm(demo_db_path, template=str(other))
    assert set(form.grades) == {"practice", "overall"}
    assert form.overall.shown not in form.widget.children


def test_form_shows_a_saved_audit_and_collects_it_back_unchanged(demo_db_path, tmp_path):
    from ehkit.forms.audit import AuditForm

    db = copy_db(demo_db_path, tmp_path / "ehkit.db")
    database = store.connect(db)
    audit_id = database.execute(
        "SELECT audit_id FROM actions GROUP BY audit_id ORDER BY audit_id LIMIT 1").fetchone()[0]
    saved = audits.load(database, audit_id)
    form = AuditForm(db)
    form.refresh()
    form.open(audit_id)
    back = form.model.as_audit()
    for key in ("episode_id", "auditor1_id", "auditor2_id", "overall_grade", "summary",
                "overall_reasons", "learning"):
        assert back[key] == saved[key], key
    assert back["audit_date"].isoformat() == saved["audit_date"]
    drop_none = {key: {k: v for k, v in a.items() if v is not None}
                 for key, a in saved["answers"].items()
                 if any(v is not None for v in a.values())}  # the demo keeps empty rows
    assert back["answers"] == drop_none
    assert [a["action"] for a in back["actions"]] == [a["action"] for a in saved["actions"]]
    assert [a["due_date"] for a in back["actions"]] == [a["due_date"] for a in saved["actions"]]
    # Not a draft: the inputs are locked until it is reopened.
    assert form.summary.disabled == (saved["status"] != "draft")


def test_form_without_a_database_says_so_plainly(tmp_path):
    from ehkit.forms.audit import Unavailable, audit_app

    app = audit_app(tmp_path / "missing.db")
    assert isinstance(app, Unavailable)
    assert "no database at" in app._repr_html_() and "Traceback" not in app._repr_html_()
    assert not (tmp_path / "missing.db").exists()


def test_a_failing_callback_shows_a_calm_message_not_a_traceback():
    from ehkit.errors import EhkitError
    from ehkit.forms.common import Messages, friendly

    messages = Messages()

    @friendly(messages)
    def broken(_button):
        raise KeyError("/srv/ehkit/secret.py line 3")

    @friendly(messages)
    def refused(_button):
        raise EhkitError("the case <b>is</b> closed")

    broken(None)
    shown = messages.widget.value
    assert "Something went wrong" in shown
    assert "secret.py" not in shown and "Traceback" not in shown and "KeyError" not in shown
    refused(None)
    assert "the case &lt;b&gt;is&lt;/b&gt; closed" in messages.widget.value
