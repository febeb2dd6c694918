"""The audit form's logic without a browser: build a panel's model and view, set traits or
widget values, and check both. (tests/test_audit_form_browser.py proves the wiring in
Chromium.) Only synthetic people."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ipywidgets as w
import pytest
from voila_harness import copy_db, rows

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
from ehkit.forms.common import esc, friendly
from ehkit.template import OVERALL

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
    actions, record = ActionsView(model, TPL, guard), RecordView(model, w.HTML(), TPL)

    def inputs():
        row = actions.rows[model.actions[0]]
        found = [case.audit_date, case.auditor1, case.auditor2, case.ehm, case.episode,
                 overall.reasons, actions.add, record.save, record.submit,
                 *(x for s in sections for x in [*s.responses.values(), *s.comments.values()]),
                 *(s.grade for s in sections if s.grade), overall.grade,
                 *(x for pair in checklist.checklist.values() for x in pair),
                 *row.widgets.values(), row.outsider, row.remove]
        return [x for x in found if not isinstance(x, w.HTML)]  # the action number

    model.add_action()
    record.build()  # what a submitted audit shows, made now to see it hidden on a draft
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
    record = RecordView(model, w.HTML(), TPL)
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
    assert [actions.rows[r].widgets["number"].value for r in model.actions] == [
        "<b>Action 1</b>", "<b>Action 2</b>"]
    actions.rows[second].widgets["due_date"].value = dt.date(2026, 12, 1)
    assert second.as_audit({})["due_date"] == "2026-12-01"
    gone = actions.rows[first]
    gone.remove.click()
    assert model.actions == [second] and len(actions.box.children) == 1
    assert gone.remove.comm is None  # closed: the browser drops its models
    model.status = "submitted"
    assert not gone.widgets["action"].disabled  # no longer bound to the form
    assert actions.rows[second].widgets["number"].value == "<b>Action 1</b>"
    model.show_staff(PEOPLE[:1])
    assert [label for label, _ in actions.rows[second].widgets["by_whom"].options] == [
        "Choose who will do it", "Ava Auditor (Senior practitioner, Early Help)",
        "Someone outside the service (type their name)"]
    gone_options = gone.widgets["by_whom"].options
    model.show_staff(PEOPLE)  # the removed row is no longer bound either
    assert gone.widgets["by_whom"].options == gone_options


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
    """The browser builds every model before the form opens (336 with the Saved audits finder;
    209 since issue 19's: a question its toggle's own label, a read-only field one widget,
    what only a submitted or printed audit shows built when first needed)."""
    from ehkit.forms.audit import AuditForm

    form = AuditForm(copy_db(demo_db_path, tmp_path / "ehkit.db"))
    form.refresh()
    assert len(_reachable(form.widget)) <= 220
    assert not form.record.later.children  # a draft: nothing of the submitted audit's yet


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
def test_someone_who_may_not_audit_the_case_is_told_at_once(demo_both):
    """On SQLite and on PostgreSQL (the form only reads: the shared demo store)."""
    from ehkit.forms.audit import AuditForm

    db = demo_both
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
    assert 'ehkit-case-lead_professional"></div>' not in form.case_view.readonly[  # filled
        "lead_professional"].value
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


def test_form_shows_a_saved_audit_and_collects_it_back_unchanged(demo_both):
    """On SQLite and on PostgreSQL (the form only reads: the shared demo store)."""
    from ehkit.forms.audit import AuditForm

    db = demo_both
    database = store.connect(db)
    audit_id = database.execute(
        "SELECT audit_id FROM actions GROUP BY audit_id ORDER BY audit_id LIMIT 1").fetchone()[0]
    saved = audits.load(database, audit_id)
    database.close()
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


def test_ehm_numbers_are_found_whatever_their_case(demo_db_path, tmp_path, capsys):
    """``ehm101385`` finds EHM101385 on the form and in the CLI: one lookup for both."""
    from ehkit.cli import main
    from ehkit.forms.audit import AuditForm

    db = copy_db(demo_db_path, tmp_path / "ehkit.db")
    database = store.connect(db)
    (eid, ehm), = database.execute(
        "SELECT id, ehm_number FROM episodes e WHERE (SELECT count(*) FROM episodes x"
        " WHERE x.ehm_number = e.ehm_number) = 1 ORDER BY id LIMIT 1").fetchall()
    database.close()
    assert ehm != ehm.lower()  # the demo's numbers are upper case: EHM100001
    form = AuditForm(db)
    form.refresh()
    form.case_view.ehm.value = f" {ehm.lower()} "
    assert form.model.case.episode_id == eid and "episode" not in form.model.notes
    assert main(["sample", "request", ehm.lower(), "--reason", "no progress", "--db",
                 str(db)]) == 0
    assert ehm in capsys.readouterr().out
    assert rows(db, "SELECT episode_id FROM audit_requests") == [(eid,)]


def test_an_ehm_number_in_any_case_finds_its_episode_on_both_back_ends(demo_both):
    """PostgreSQL has no NOCASE: the lookup that ignores case is written for both."""
    from ehkit.forms.audit import AuditForm

    database = store.connect(demo_both)
    (eid, ehm), = database.execute(
        "SELECT id, ehm_number FROM episodes e WHERE (SELECT count(*) FROM episodes x"
        " WHERE x.ehm_number = e.ehm_number) = 1 ORDER BY id DESC LIMIT 1").fetchall()
    database.close()
    form = AuditForm(demo_both)
    form.refresh()
    form.case_view.ehm.value = f" {ehm.lower()} "
    assert form.model.case.episode_id == eid and "episode" not in form.model.notes


# -- the guidance notes (issue 16) ------------------------------------------------------------
SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "early-help-audit-tool.txt"


def _html(widgets) -> list[str]:
    return [x.value for x in widgets if isinstance(x, w.HTML)]


def _squash(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.skipif(not SEED.exists(), reason="the council's document is not beside the repo")
def test_the_sixteen_guidance_notes_are_the_paper_tools_word_for_word():
    document = _squash(SEED.read_text(encoding="utf-8"))
    assert [n.number for n in TPL.guidance] == list(range(1, 17))
    for n in TPL.guidance:
        assert f"{n.number}. {_squash(n.text)}" in document, n.number
    assert "Judgement of Quality of Work" in document and TPL.grade_heading == (
        "Judgement of Quality of Work", "Definition")


def test_each_guidance_note_is_shown_beside_what_it_concerns(demo_db_path, tmp_path):
    from ehkit.forms.audit import AuditForm

    form = AuditForm(copy_db(demo_db_path, tmp_path / "ehkit.db"))
    text = {n.number: f"<b>Guidance {n.number}:</b> {esc(n.text)}" for n in TPL.guidance}
    # 1 (who may audit) and 11 (the worker told) head the case information.
    assert text[1] in form.case_view.parts[0].value and text[11] in form.case_view.parts[0].value
    for view in form.sections:  # 8 beside each prompt's questions, 12 beside each grade
        shown = "".join(_html(view.parts))
        assert shown.count(text[8]) == sum(1 for s in TPL.sections if s.key == view.key
                                           for i in s.items if i.questions)
        if view.grade is not None:
            after = view.parts[view.parts.index(view.grade) + 1].value
            assert text[12] in after
    after = form.overall.grade_parts()[1].value
    assert text[12] in after  # beside the overall grade too
    assert text[16] in form.actions_view.parts[0].value  # the action plan
    assert all(text[n] in form.record.parts[0].value for n in (2, 3, 13, 14, 15))
    shown = "".join(_html(_reachable(form.widget)))
    for n in TPL.guidance:  # each is shown somewhere beside the fields
        assert text[n.number] in shown, n.number


def test_all_guidance_notes_are_in_a_folded_panel_and_the_grades_defined_once(demo_db_path,
                                                                               tmp_path):
    from ehkit.forms.audit import AuditForm

    form = AuditForm(copy_db(demo_db_path, tmp_path / "ehkit.db"))
    header = form.widget.children[0].value
    panel = header[header.index('<details class="ehkit-guidance-notes">'):]
    for n in TPL.guidance:
        assert f'<li value="{n.number}">{esc(n.text)}' in panel
    assert "<th>Judgement of Quality of Work</th><th>Definition</th>" in panel
    # Unfolded, the grade definitions are nowhere; folded, once beside each grade.
    for value in _html(_reachable(form.widget)):
        for part in value.split('<table class="ehkit-grade-defs">')[:-1]:
            assert part.count("<details") > part.count("</details>")
    defs = [v for v in _html(_reachable(form.widget)) if "ehkit-grade-defs" in v]
    assert len(defs) == len(TPL.graded_sections) + 2  # each grade, the overall, the panel


def test_a_template_showing_guidance_where_the_form_has_no_place_is_refused(tmp_path):
    text = TPL.path.read_text(encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("grades = [12]", "gradez = [12]"), encoding="utf-8")
    with pytest.raises(templates.TemplateError, match="'gradez', which is not a place"):
        templates.load(bad)
    bad.write_text(text.replace("grades = [12]", "grades = [17]"), encoding="utf-8")
    with pytest.raises(templates.TemplateError, match=r"names note\(s\) \[17\].* 1 to 16"):
        templates.load(bad)


def test_the_printed_record_ends_with_every_guidance_note(demo_db_path):
    database = store.connect(demo_db_path)
    audit_id = database.execute("SELECT min(id) FROM audits").fetchone()[0]
    html = audits.render_record(database, audit_id)
    database.close()
    end = html[html.index("<h2>Guidance Notes</h2>"):]
    assert html.index("<h2>Case note") < html.index("<h2>Guidance Notes</h2>")
    for n in TPL.guidance:
        assert f'<li value="{n.number}">{esc(n.text)}' in end, n.number
    assert "<th>Judgement of Quality of Work</th>" in end and "Definition</th>" in end


# -- "By Whom": a practitioner (the action's owner), or someone outside named ----------------
def test_by_whom_is_a_practitioner_picked_or_someone_outside_the_service_named(model):
    from ehkit.forms.audit_model import OUTSIDE

    actions = ActionsView(model, TPL, guard)
    model.show_staff(PEOPLE)
    row = model.add_action()
    view = actions.rows[row]
    row.values["action"].value = "Hold a TAF review"
    assert view.outsider.layout.display == HIDDEN  # no free text unless someone outside
    view.widgets["by_whom"].value = 12
    assert (row.as_audit(model.staff_names)["owner_id"],
            row.as_audit(model.staff_names)["by_whom"]) == (12, "Bo Reviewer")
    view.widgets["by_whom"].value = OUTSIDE
    assert view.outsider.layout.display is None
    assert "outside the service" in view.outsider.description
    view.outsider.value = "Dr Kim, Northgate Surgery"
    assert (row.as_audit(model.staff_names)["owner_id"],
            row.as_audit(model.staff_names)["by_whom"]) == (None, "Dr Kim, Northgate Surgery")
    # Saved actions: owned; named only, by someone in the service (owned when saved again);
    # named only, by someone outside.
    model.update(saved_audit(actions=[
        {"id": 1, "action": "a", "owner_id": 11, "by_whom": "Ava Auditor"},
        {"id": 2, "action": "b", "owner_id": None, "by_whom": "Bo Reviewer"},
        {"id": 3, "action": "c", "owner_id": None, "by_whom": "Dr Kim"}]))
    assert [r.owner for r in model.actions] == [11, 12, OUTSIDE]
    assert [(a["owner_id"], a["by_whom"]) for a in model.as_audit()["actions"]] == [
        (11, "Ava Auditor"), (12, "Bo Reviewer"), (None, "Dr Kim")]


def test_an_action_by_a_picked_practitioner_is_under_that_owner_in_the_tracker(
        demo_db_path, tmp_path):
    from ehkit import actions as tracker
    from ehkit.forms.audit import AuditForm

    db = copy_db(demo_db_path, tmp_path / "ehkit.db")
    database = store.connect(db)
    (eid, lead, manager, line), = database.execute(
        "SELECT e.id, e.lead_professional_id, e.team_manager_id, lp.line_manager_id"
        " FROM episodes e JOIN practitioners lp ON lp.id = e.lead_professional_id"
        " WHERE e.status = 'open' AND e.start_date < '2026-09-01' ORDER BY e.id LIMIT 1"
    ).fetchall()
    auditor, owner = [r[0] for r in database.execute(
        "SELECT id FROM practitioners WHERE is_auditor = 1 AND id NOT IN (?, ?, ?)"
        " ORDER BY id LIMIT 2", [lead, manager, line or 0])]
    owner_name = database.execute("SELECT name FROM practitioners WHERE id = ?",
                                  [owner]).fetchone()[0]
    answers = {s.key: {"grade": 3} for s in TPL.graded_sections}
    answers.update({s.items[0].key: {"comment": "Evidence on file."}
                    for s in TPL.graded_sections})
    audit_id = audits.save_draft(database, {
        "episode_id": eid, "auditor1_id": auditor, "audit_date": "2026-10-20",
        "overall_grade": 3, "overall_reasons": "Gaps in planning.", "answers": answers})
    form = AuditForm(db)
    form.refresh()
    form.open(audit_id)
    form.actions_view.add.click()
    view = form.actions_view.rows[form.model.actions[0]]
    view.widgets["action"].value = "Review the plan with the family"
    view.widgets["by_whom"].value = owner
    view.widgets["due_date"].value = dt.date(2026, 11, 20)
    form.submit()
    assert "Submitted audit no." in form.messages.widget.value, form.messages.widget.value
    found = tracker.tracker(database, "2026-11-01", owner_id=owner)
    assert [(a["action"], a["owner"], a["by_whom"]) for a in found
            if a["audit_id"] == audit_id] == [
        ("Review the plan with the family", owner_name, owner_name)]
    assert owner in [pid for _, pid in tracker.owners(database)]
    database.close()


# -- what an auditor sees as they go ------------------------------------------------------
def test_the_overall_grade_rule_is_shown_as_soon_as_the_grades_change(model):
    overall = OverallView(model, TPL)
    held = next(s for s in TPL.sections if s.holds_overall)
    SectionView(model, TPL, held, overall)
    sections = [s.key for s in TPL.graded_sections]
    for key in sections:
        model.grades[key].value = 3  # Requires Improvement throughout
    model.grades[OVERALL].value = 2  # Good: better than the sections allow
    assert "can be no better than Requires Improvement" in model.notes[OVERALL][0]
    model.grades[OVERALL].value = 3
    assert OVERALL not in model.notes
    for key in sections:  # the sections change: said at once, no save needed
        model.grades[key].value = 4
    assert "no better than Inadequate" in model.notes[OVERALL][0]
    model.grades[OVERALL].value = 4
    assert OVERALL not in model.notes
    # A save's "still to do" beside the overall grade stays while the grades change.
    model.grades[OVERALL].value = None
    model.place({OVERALL: "Choose the overall grade."}, todo=True)
    model.grades[sections[0]].value = 3
    assert model.notes[OVERALL] == ("Choose the overall grade.", True)


def test_the_overall_grade_rule_shown_live_is_the_registered_rule(model):
    from ehkit import rules

    rule = rules.get("AUDIT-OVERALL-REFLECTS")
    for s in TPL.graded_sections:
        model.grades[s.key].value = 4
    model.grades[OVERALL].value = 1
    sections = {s.key: 4 for s in TPL.graded_sections}
    assert model.notes[OVERALL] == (rule.check(TPL, sections, 1), False)


def test_still_to_do_and_put_right_are_told_apart_in_words_not_only_colour(model):
    from ehkit.forms.common import show_note

    box = w.HTML()
    show_note(box, "Choose the overall grade.", todo=True)
    assert "Still to do:" in box.value and "&#9998;" in box.value and "ehkit-todo" in box.value
    show_note(box, "Auditor 2 must be a different person.")
    assert "Put right:" in box.value and "&#9888;" in box.value and "ehkit-note" in box.value


def test_the_learning_box_asks_for_learning_not_for_evidence(model):
    overall = OverallView(model, TPL)
    held = next(s for s in TPL.sections if s.holds_overall)
    box = SectionView(model, TPL, held, overall).comments[LEARNING.key]
    assert "evidence" not in box.placeholder and "Learning for professionals" in box.placeholder
    other = SectionView(model, TPL, GRADED, overall).comments[ITEM.key]
    assert "evidence for your judgement" in other.placeholder
