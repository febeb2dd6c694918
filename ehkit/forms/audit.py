"""The auditor's app: the whole audit tool as one ipywidgets form, built from the template.

Thin by design: every rule is asked of :mod:`ehkit.audits` (``problems``, ``save_draft``,
``submit``, ``reopen``, ``moderate``) and every message it returns is shown next to the field
it names. A different template gives a different form: case fields, checklist, sections,
prompts, questions, grades and action columns all come from it.

Usage (what ``notebooks/audit.ipynb`` does)::

    from ehkit.forms import audit_app
    app = audit_app()          # database from $EHKIT_DB
    app                        # display it
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from pathlib import Path

import ipywidgets as w

from .. import audits
from .. import db as store
from .. import template as templates
from ..errors import EhkitError
from ..template import OVERALL, Template
from .common import (
    FULL,
    PLAIN,
    STYLE_CSS,
    TEXT_STYLE,
    TEXTAREA,
    TOGGLE_STYLE,
    Messages,
    button,
    css_name,
    date_picker,
    esc,
    field_note,
    friendly,
    html_widget,
    show_note,
    tag,
    to_date,
)

CASE_INPUTS = ("audit_date", "auditor1", "auditor2", "ehm_number")
NONE_LABEL = "(none)"
Q_LABEL = w.Layout(flex="1 1 55%")
Q_TOGGLE = w.Layout(flex="0 0 auto")
ROW = w.Layout(width="100%", align_items="center")
LABEL = w.Layout(width="32%", min_width="200px")
INPUT = w.Layout(width="60%")
CHECK_NOTE = w.Layout(flex="1 1 30%")
HIDDEN = "none"
ACTION_WIDTHS = {"number": "3em", "action": "22%", "by_whom": "13%"}


def _action_width(key: str) -> str:
    return ACTION_WIDTHS.get(key, "9.5em" if key.endswith("_date") else "10%")


def _reports_dir() -> Path:
    return Path(os.environ.get("EHKIT_REPORTS_DIR") or "reports") / "audits"


def _choose(dropdown: w.Dropdown, value) -> None:
    """Select ``value``; None selects the first option (whose value is None) so its label
    shows, where ``value = None`` would leave the box blank."""
    if value is None and dropdown.options and dropdown.options[0][1] is None:
        dropdown.index = 0
    else:
        dropdown.value = value


def _label(text: str) -> w.HTML:
    return html_widget(f"<b>{esc(text)}</b>", layout=LABEL)


def _grade_defs(tpl: Template) -> str:
    rows = "".join(f"<tr><td><b>{g.value} = {esc(g.label)}</b></td><td>{esc(g.definition)}</td></tr>"
                   for g in tpl.grades)
    return f'<table class="ehkit-grade-defs">{rows}</table>'


class ActionRow:
    """One row of the recommended-actions table; widgets follow the template's columns."""

    def __init__(self, form: AuditForm, columns, names: list[str]):
        self.form = form
        self.widgets: dict[str, w.Widget] = {}
        parts = []
        for c in columns:
            k = c.value
            if k == "number":
                wd = html_widget("", layout=w.Layout(width="3em"))
            elif k == "action":
                wd = w.Textarea(style=TEXT_STYLE, placeholder="Specific, measurable action",
                                layout=w.Layout(width=ACTION_WIDTHS[k], height="4em"))
            elif k == "by_whom":
                wd = w.Combobox(options=names, ensure_option=False, placeholder="Name",
                                layout=w.Layout(width=ACTION_WIDTHS[k]))
            elif k.endswith("_date"):
                wd = date_picker(key=f"action-{k}")
                wd.layout = w.Layout(width=_action_width(k))
            else:
                wd = w.Text(style=TEXT_STYLE, layout=w.Layout(width=_action_width(k)))
            tag(wd, f"action-{k}")
            self.widgets[k] = wd
            parts.append(wd)
        self.remove = tag(button(description="Remove", icon="trash",
                                 layout=w.Layout(width="7em")), "action-remove")
        self.remove.on_click(friendly(form.messages)(lambda _b: form.remove_action(self)))
        self.note = field_note("action")
        self.box = tag(w.VBox([w.HBox([*parts, self.remove],
                                      layout=w.Layout(flex_flow="row wrap", width="100%")),
                               self.note]), "action-row")
        self.id = None

    def set_number(self, n: int) -> None:
        if "number" in self.widgets:
            self.widgets["number"].value = f"<b>{n}</b>"

    def fill(self, a: dict) -> None:
        self.id = a.get("id")
        for k, wd in self.widgets.items():
            if k == "number":
                continue
            v = a.get(k)
            wd.value = to_date(v) if isinstance(wd, w.DatePicker) else (v or "")

    def value(self) -> dict:
        out = {"id": self.id}
        for k, wd in self.widgets.items():
            if k == "number":
                continue
            out[k] = wd.value.isoformat() if isinstance(wd.value, dt.date) else wd.value
        return out

    def inputs(self) -> list[w.Widget]:
        return [*(x for k, x in self.widgets.items() if k != "number"), self.remove]


class AuditForm:
    """Build with :func:`audit_app`; ``.widget`` is what to display."""

    def __init__(self, db_path=None, template: str | None = None):
        self.db = store.connect(db_path, must_exist=True)
        self.tpl = templates.load(template or templates.DEFAULT_TEMPLATE)
        self.audit_id: int | None = None
        self.status = "draft"
        self.version: int | None = None  # of the audit as loaded: every write passes it back
        self.case: dict | None = None
        self._filling = False
        self.messages = Messages()
        self.notes: dict[str, w.HTML] = {}
        self.inputs: list[w.Widget] = []
        self.grades: dict[str, w.ToggleButtons] = {}
        self.comments: dict[str, w.Textarea] = {}
        self.responses: dict[str, w.ToggleButtons] = {}
        self.checklist: dict[str, tuple[w.ToggleButtons, w.Text]] = {}
        self.action_rows: list[ActionRow] = []
        self._names: list[str] = []
        self._moderation_built = False
        on = friendly(self.messages, self._show_rule_error)
        self._on = on

        t = self.tpl
        header = html_widget(STYLE_CSS + f"<h1>{esc(t.title)}</h1><p><i>{esc(t.subtitle)}</i></p>")
        self.state = tag(html_widget("", layout=FULL), "state")

        # -- open an audit ---------------------------------------------------------------
        self.pick = tag(w.Dropdown(options=[("Choose a saved audit", None)],
                                   description="Saved audits:",
                                   style={"description_width": "initial"},
                                   layout=w.Layout(width="55%")), "open-list")
        open_btn = tag(button(description="Open", icon="folder-open"), "open")
        new_btn = tag(button(description="New audit", icon="file"), "new")
        refresh_btn = tag(button(description="Refresh list", icon="refresh"), "refresh")
        open_btn.on_click(on(lambda _b: self.open(self.pick.value)))
        new_btn.on_click(on(lambda _b: self.new()))
        refresh_btn.on_click(on(lambda _b: self.refresh()))
        toolbar = w.HBox([self.pick, open_btn, new_btn, refresh_btn],
                         layout=w.Layout(flex_flow="row wrap"))

        parts: list[w.Widget] = [header, toolbar, self.state, self.messages.widget]
        parts += self._case_information()
        parts += self._checklist()
        self.summary = tag(w.Textarea(style=TEXT_STYLE,
                                      layout=w.Layout(width="100%", height="6em")), "summary")
        self.inputs.append(self.summary)
        parts += [html_widget(f"<h2>{esc(t.summary_label)}</h2>"), self.summary]
        # The paper tool's order: overall reasons and actions come before the sections; the
        # overall grade itself is chosen at the end, in the section that holds it.
        parts += self._overall_reasons()
        parts += self._actions()
        for s in t.sections:
            parts += self._section(s)
        parts += self._buttons()
        self.widget = tag(w.VBox(parts, layout=FULL), "form")
        self._show_overall()
        self._set_state()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- building --------------------------------------------------------------------------
    def _note(self, key: str) -> w.HTML:
        self.notes[key] = field_note(key)
        return self.notes[key]

    def _case_information(self) -> list[w.Widget]:
        self.audit_date = date_picker(key="audit_date")
        self.auditor1 = tag(w.Dropdown(options=[(NONE_LABEL, None)], layout=INPUT), "auditor1")
        self.auditor2 = tag(w.Dropdown(options=[(NONE_LABEL, None)], layout=INPUT), "auditor2")
        self.ehm = tag(w.Combobox(options=[], ensure_option=False, placeholder="EHM number",
                                  layout=w.Layout(width="14em")), "ehm_number")
        self.episode = tag(w.Dropdown(options=[], layout=w.Layout(width="20em", display=HIDDEN)),
                           "episode")
        self.inputs += [self.audit_date, self.auditor1, self.auditor2, self.ehm, self.episode]
        self.readonly: dict[str, w.HTML] = {}
        rows = [html_widget("<h2>Case information</h2>")]
        for f in self.tpl.case_fields:
            if f.value == "audit_date":
                field, note = self.audit_date, self._note("audit_date")
            elif f.value == "auditor1":
                field, note = self.auditor1, self._note("auditor1")
            elif f.value == "auditor2":
                field, note = self.auditor2, self._note("auditor2")
            elif f.value == "ehm_number":
                field, note = w.HBox([self.ehm, self.episode]), self._note("episode")
            else:
                field = tag(html_widget('<div class="ehkit-readonly"></div>', layout=INPUT),
                            f"case-{f.value}")
                self.readonly[f.value] = field
                note = None
            rows.append(w.HBox([_label(f.label), field], layout=ROW))
            if note is not None:
                rows.append(note)
        live = self._on(lambda _c: self._case_changed())
        for wd in (self.audit_date, self.auditor1, self.auditor2, self.episode):
            wd.observe(live, "value")
        self.ehm.observe(self._on(lambda _c: self._ehm_changed()), "value")
        self.auditor1.observe(self._on(lambda _c: None if self._filling else self._fill_pick()),
                              "value")
        return rows

    def _checklist(self) -> list[w.Widget]:
        t = self.tpl
        rows = [html_widget(f"<h2>{esc(t.checklist_title)}</h2>")]
        choices = [(c.label, c.value) for c in t.checklist_choices]
        for c in t.checklist:
            status = tag(w.ToggleButtons(style=TOGGLE_STYLE, options=choices, value=None,
                                         layout=Q_TOGGLE), "check", f"check-{c.value}")
            note = tag(w.Text(style=TEXT_STYLE, placeholder="Note", layout=CHECK_NOTE),
                       f"check-note-{c.value}")
            self.checklist[c.value] = (status, note)
            self.inputs += [status, note]
            rows.append(w.HBox([html_widget(esc(c.label), layout=w.Layout(width="22%")), status, note],
                               layout=ROW))
        return rows

    def _section(self, s) -> list[w.Widget]:
        t = self.tpl
        out: list[w.Widget] = []
        static = [f"<h2>{s.number}. {esc(s.title)}</h2>"]  # text up to the next input

        def add(*widgets: w.Widget) -> None:  # the text so far as one widget, then these
            if static:
                out.append(html_widget("".join(static), layout=FULL))
                static.clear()
            out.extend(widgets)

        choices = [(c.label, c.value) for c in t.question_choices]
        for item in s.items:
            static.append(f'<div class="ehkit-prompt"><b>{esc(item.key)}</b> '
                          f"{esc(item.prompt)}</div>")
            if item.questions:
                static.append(f"<i>{esc(t.question_guidance)}</i>")
            for q in item.questions:
                toggle = tag(w.ToggleButtons(style=TOGGLE_STYLE, options=choices, value=None,
                                             layout=Q_TOGGLE), "response", f"response-{q.key}")
                self.responses[q.key] = toggle
                self.inputs.append(toggle)
                add(w.HBox([html_widget(esc(q.text), layout=Q_LABEL), toggle], layout=ROW))
            comment = tag(w.Textarea(style=TEXT_STYLE,
                                     placeholder="Comments: the evidence for your judgement",
                                     layout=TEXTAREA), "comment", f"comment-{item.key}")
            self.comments[item.key] = comment
            self.inputs.append(comment)
            static.append("<b>Comments:</b>")
            add(comment)
        if s.graded:
            static.append(f"<b>{esc(s.grading_label)}</b>")
            add(self._grade_choice(s.key), html_widget(_grade_defs(t)), self._note(s.key))
        add()
        if s.holds_overall:
            out += self._overall_grade()
        return out

    def _overall_reasons(self) -> list[w.Widget]:
        t = self.tpl
        self.overall_reasons = tag(w.Textarea(style=TEXT_STYLE, layout=TEXTAREA), "overall_reasons")
        self.overall_shown = tag(html_widget(""), "overall-shown")
        self.inputs.append(self.overall_reasons)
        out = [html_widget(f"<h2>{esc(t.overall_label)}</h2>")]
        if any(s.holds_overall for s in t.sections):
            out.append(self.overall_shown)
        else:  # no section holds the overall grade: choose it here
            out += self._overall_grade()
        return out + [html_widget(f"<b>{esc(t.overall_reasons_label)}</b>"), self.overall_reasons,
                      self._note("overall_reasons")]

    def _grade_choice(self, key: str) -> w.ToggleButtons:
        """A section's (or the overall) grade: Inadequate first, as on the paper tool."""
        grades = list(reversed(self.tpl.grades))
        g = tag(w.ToggleButtons(style=TOGGLE_STYLE, options=[(x.label, x.value) for x in grades],
                                value=None, tooltips=[x.definition for x in grades],
                                layout=PLAIN), "grade", f"grade-{key}")
        self.grades[key] = g
        self.inputs.append(g)
        return g

    def _overall_grade(self) -> list[w.Widget]:
        t = self.tpl
        g = self._grade_choice(OVERALL)
        g.observe(self._on(lambda _c: self._show_overall()), "value")
        return [html_widget(f"<b>{esc(t.overall_grading_label)}</b>"), g, html_widget(_grade_defs(t)),
                self._note(OVERALL)]

    def _show_overall(self) -> None:
        g = self.grades.get(OVERALL)
        where = next((f"section {s.number}" for s in self.tpl.sections if s.holds_overall),
                     "the last section")
        chosen = self.tpl.grade_label(g.value) if g is not None and g.value else "not chosen yet"
        self.overall_shown.value = (f"Overall grade (chosen in {esc(where)} below): "
                                    f"<b>{esc(chosen)}</b>")

    def _actions(self) -> list[w.Widget]:
        cols = self.tpl.action_columns
        head = w.HBox([html_widget(f"<b>{esc(c.label)}</b>",
                              layout=w.Layout(width=_action_width(c.value))) for c in cols],
                      layout=w.Layout(flex_flow="row wrap", width="100%"))
        self.actions_box = w.VBox([])
        add = tag(button(description="Add action", icon="plus"), "add-action")
        add.on_click(self._on(lambda _b: self.add_action({})))
        self.inputs.append(add)
        return [html_widget(f"<h2>{esc(self.tpl.actions_title)}</h2>"), head, self.actions_box, add,
                self._note("actions")]

    def _buttons(self) -> list[w.Widget]:
        self.save_btn = tag(button(description="Save draft", icon="save",
                                   button_style="primary"), "save")
        self.submit_btn = tag(button(description="Submit audit", icon="check",
                                     button_style="success"), "submit")
        self.print_btn = tag(button(description="Print record", icon="print"), "print")
        self.save_btn.on_click(self._on(lambda _b: self.save()))
        self.submit_btn.on_click(self._on(lambda _b: self.submit()))
        self.print_btn.on_click(self._on(lambda _b: self.print()))
        self.reopen_reason = tag(w.Text(style=TEXT_STYLE, placeholder="Why it needs changing",
                                        description="Reason:", layout=w.Layout(width="50%")),
                                 "reopen-reason")
        reopen_btn = tag(button(description="Reopen to change", icon="unlock",
                                layout=w.Layout(width="auto")), "reopen")
        reopen_btn.on_click(self._on(lambda _b: self.reopen()))
        self.reopen_box = w.HBox([self.reopen_reason, reopen_btn, self._note("reason")],
                                 layout=w.Layout(display=HIDDEN, flex_flow="row wrap"))
        self.moderation_box = w.VBox([], layout=w.Layout(display=HIDDEN, width="100%"))
        self.record_out = tag(html_widget(""), "record")
        self.case_note = tag(w.Textarea(style=TEXT_STYLE, layout=w.Layout(width="100%", height="12em",
                                                        display=HIDDEN)), "case-note")
        bar = w.HBox([self.save_btn, self.submit_btn, self.print_btn])
        return [html_widget("<hr>"), bar, self.messages.widget, self.reopen_box, self.moderation_box,
                self.record_out, self.case_note]

    def _build_moderation(self) -> None:
        """Built on first need: most page loads are for drafts and never show it."""
        t = self.tpl
        self.moderator = tag(w.Dropdown(options=[(NONE_LABEL, None)], layout=INPUT), "moderator")
        self.mod_grades: dict[str, w.Dropdown] = {}
        self.mod_reasons: dict[str, w.Text] = {}
        rows = [html_widget("<h2>Moderation</h2><p>Auditor 2 or a moderator records agreement, or a "
                       "changed grade with the reason. Both grades are kept.</p>"),
                w.HBox([_label("Moderator:"), self.moderator], layout=ROW),
                self._note("moderator")]
        parts = [*((s.key, f"{s.number}. {s.title}") for s in t.graded_sections),
                 (OVERALL, t.overall_grading_label)]
        for key, label in parts:
            g = tag(w.Dropdown(options=[("Agree", None)], layout=w.Layout(width="16em")),
                    "mod-grade", f"mod-grade-{key}")
            r = tag(w.Text(style=TEXT_STYLE, placeholder="Reason (needed when the grade changes)",
                           layout=w.Layout(flex="1 1 40%")), f"mod-reason-{key}")
            self.mod_grades[key], self.mod_reasons[key] = g, r
            rows += [w.HBox([html_widget(esc(label), layout=w.Layout(width="30%")), g, r],
                            layout=ROW), self._note(f"mod-{key}")]
        btn = tag(button(description="Record moderation", icon="balance-scale",
                         button_style="warning", layout=w.Layout(width="auto")), "moderate")
        btn.on_click(self._on(lambda _b: self.moderate()))
        self.moderation_box.children = [*rows, btn]
        self._moderation_built = True
        self._fill_people()

    # -- lists from the store -------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the people, EHM numbers and saved audits (the page may be old)."""
        people = audits.practitioners(self.db)
        self._people = [(f"{p['name']} ({p['role'] or 'no role'}, {p['agency']})", p["id"])
                        for p in people]
        self._names = [p["name"] for p in audits.practitioners(self.db, auditors_only=False)]
        self._fill_people()
        self.ehm.options = audits.ehm_numbers(self.db)
        for row in self.action_rows:
            if "by_whom" in row.widgets:
                row.widgets["by_whom"].options = self._names
        self._fill_pick()

    def _fill_people(self) -> None:
        people = getattr(self, "_people", [])
        keep = self._filling
        self._filling = True
        try:
            targets = [self.auditor1, self.auditor2]
            if self._moderation_built:
                targets.append(self.moderator)
            for dd in targets:
                v = dd.value
                dd.options = [(NONE_LABEL, None), *people]
                _choose(dd, v if v in {p[1] for p in people} else None)
        finally:
            self._filling = keep

    def _fill_pick(self) -> None:
        rows = audits.listing(self.db, statuses=("draft", "submitted", "moderated"))
        me = self.auditor1.value
        order = {"draft": 0, "submitted": 1, "moderated": 2}
        # The chosen auditor's own drafts first, then everyone's drafts, then the rest.
        rows.sort(key=lambda r: (order[r["status"]], r["auditor1_id"] != me))
        opts = [("Choose a saved audit", None)] + [
            (("Your draft" if r["status"] == "draft" and me is not None
              and r["auditor1_id"] == me else audits.STATUS_LABELS[r["status"]])
             + f" - {r['ehm_number']} - audited {r['audit_date']} by {r['auditor1']}"
             f" (no. {r['id']})", r["id"]) for r in rows]
        keep = self.pick.value
        self.pick.options = opts
        _choose(self.pick, keep if keep in {v for _, v in opts} else None)

    # -- reading and writing the widgets ---------------------------------------------------
    def collect(self) -> dict:
        """The form's values as an audit dict for ehkit.audits."""
        answers: dict[str, dict] = {}
        learning = None
        for s in self.tpl.sections:
            for item in s.items:
                text = self.comments[item.key].value
                if item.learning:
                    learning = text
                elif text:
                    answers.setdefault(item.key, {})["comment"] = text
        for key, g in self.grades.items():
            if key != OVERALL and g.value is not None:
                answers.setdefault(key, {})["grade"] = g.value
        for key, r in self.responses.items():
            if r.value is not None:
                answers.setdefault(key, {})["response"] = r.value
        return {
            "id": self.audit_id,
            "template": self.tpl.key,
            "version": self.version,
            "episode_id": self.episode.value,
            "auditor1_id": self.auditor1.value,
            "auditor2_id": self.auditor2.value,
            "audit_date": self.audit_date.value,
            "summary": self.summary.value,
            "overall_grade": self.grades[OVERALL].value if OVERALL in self.grades else None,
            "overall_reasons": self.overall_reasons.value,
            "learning": learning,
            "answers": answers,
            "checklist": {k: {"status": s.value, "note": n.value}
                          for k, (s, n) in self.checklist.items()},
            "actions": [r.value() for r in self.action_rows],
        }

    def fill(self, a: dict) -> None:
        """Show an audit (a dict from ``audits.load``, or {} for a new one)."""
        self._filling = True
        try:
            self.audit_id = a.get("id")
            self.status = a.get("status") or "draft"
            self.version = a.get("version")
            self.audit_date.value = to_date(a.get("audit_date"))
            ids = {v for _, v in self.auditor1.options}
            _choose(self.auditor1, a.get("auditor1_id") if a.get("auditor1_id") in ids else None)
            _choose(self.auditor2, a.get("auditor2_id") if a.get("auditor2_id") in ids else None)
            case = a.get("case")
            self.ehm.value = case["ehm_number"] if case else ""
            self._episode_options(case["ehm_number"] if case else "", a.get("episode_id"))
            self.summary.value = a.get("summary") or ""
            answers = a.get("answers") or {}
            for s in self.tpl.sections:
                for item in s.items:
                    text = a.get("learning") if item.learning else (
                        answers.get(item.key) or {}).get("comment")
                    self.comments[item.key].value = text or ""
            for key, g in self.grades.items():
                g.value = a.get("overall_grade") if key == OVERALL else (
                    answers.get(key) or {}).get("grade")
            for key, r in self.responses.items():
                r.value = (answers.get(key) or {}).get("response")
            self.overall_reasons.value = a.get("overall_reasons") or ""
            self._show_overall()
            checklist = a.get("checklist") or {}
            for k, (s, n) in self.checklist.items():
                s.value = (checklist.get(k) or {}).get("status")
                n.value = (checklist.get(k) or {}).get("note") or ""
            self.action_rows = []
            for act in a.get("actions") or []:
                self.add_action(act)
            self._refresh_actions()
            self.show_problems({})
            self._show_case()
        finally:
            self._filling = False
        self._set_state()

    def _set_state(self) -> None:
        draft = self.status == "draft"
        for wd in self.inputs:
            wd.disabled = not draft
        for row in self.action_rows:
            for wd in row.inputs():
                wd.disabled = not draft
        self.save_btn.disabled = self.submit_btn.disabled = not draft
        self.print_btn.disabled = self.audit_id is None
        self.reopen_box.layout.display = None if not draft else HIDDEN
        if not draft and not self._moderation_built:
            self._build_moderation()
        self.moderation_box.layout.display = None if not draft else HIDDEN
        if self._moderation_built and not draft:
            self._fill_moderation()
        if self.audit_id is None:
            self.state.value = "<b>New audit</b> - not saved yet."
        else:
            self.state.value = (f"<b>Audit no. {self.audit_id}</b> - "
                                f"{esc(audits.STATUS_LABELS[self.status])}"
                                + ("" if draft else " (reopen it to make changes)"))

    def _fill_moderation(self) -> None:
        a = audits.load(self.db, self.audit_id)
        latest = {m["key"]: m for m in a["moderations"]}
        for key, dd in self.mod_grades.items():
            mine = a["overall_grade"] if key == OVERALL else (
                a["answers"].get(key) or {}).get("grade")
            dd.options = [(f"Agree: {self.tpl.grade_label(mine)}", None)] + [
                (g.label, g.value) for g in reversed(self.tpl.grades) if g.value != mine]
            m = latest.get(key)
            _choose(dd, m["moderated_grade"] if m and m["moderated_grade"] != mine else None)
            self.mod_reasons[key].value = (m or {}).get("reason") or ""

    # -- live checks ----------------------------------------------------------------------
    def _episode_options(self, ehm: str, chosen: int | None = None) -> None:
        eps = audits.episodes_for(self.db, ehm) if ehm else []
        self.episode.options = [(f"episode from {e['start_date']} ({e['status']})", e["id"])
                                for e in eps]
        self.episode.value = chosen if chosen in {e["id"] for e in eps} else (
            eps[0]["id"] if eps else None)
        self.episode.layout.display = None if len(eps) > 1 else HIDDEN
        if ehm and not eps:
            show_note(self.notes["episode"], f"No case has the EHM number '{ehm}': check it.")

    def _ehm_changed(self) -> None:
        if self._filling:
            return
        self._episode_options((self.ehm.value or "").strip())
        self._case_changed()

    def _case_changed(self) -> None:
        if self._filling:
            return
        self._show_case()
        # Say at once who may not audit this case, or a date that cannot be right; fields
        # not filled in yet are not nagged about until a save.
        found = audits.problems(self.db, self.collect())
        for key, wd in (("auditor1", self.auditor1), ("auditor2", self.auditor2),
                        ("audit_date", self.audit_date)):
            show_note(self.notes[key], found.get(key) if wd.value is not None else None)
        if self.episode.value is not None:
            show_note(self.notes["episode"], None)

    def _show_case(self) -> None:
        self.case = audits.case_information(self.db, self.episode.value)
        c = self.case or {}
        for key, box in self.readonly.items():
            v = c.get(key)
            if key == "cross_authority_contact" and c:
                v = (f"{c['cross_authority_name'] or ''}: {v or 'contact not recorded'}"
                     if c["cross_authority"] else "Not a cross-authority assessment")
            box.value = f'<div class="ehkit-readonly">{esc(v)}</div>'

    # -- actions table ----------------------------------------------------------------------
    def add_action(self, a: dict) -> None:
        row = ActionRow(self, self.tpl.action_columns, self._names)
        row.fill(a)
        self.action_rows.append(row)
        if not self._filling:
            self._refresh_actions()

    def remove_action(self, row: ActionRow) -> None:
        self.action_rows.remove(row)
        self._refresh_actions()

    def _refresh_actions(self) -> None:
        for n, row in enumerate(self.action_rows, start=1):
            row.set_number(n)
        self.actions_box.children = [r.box for r in self.action_rows]

    # -- rule messages ----------------------------------------------------------------------
    def show_problems(self, found: dict[str, str], *, todo: bool = False) -> list[str]:
        """Put each message next to its field; return the ones with no field on the form."""
        for note in self.notes.values():
            show_note(note, None)
        for row in self.action_rows:
            show_note(row.note, None)
        loose, by_row = [], {}
        for key, msg in found.items():
            if key in self.notes:
                show_note(self.notes[key], msg, todo=todo)
            elif key.startswith("actions.") and key.split(".")[1].isdigit():
                by_row.setdefault(int(key.split(".")[1]), []).append(msg)
            else:
                loose.append(msg)
        filled = [r for r in self.action_rows if any(v for k, v in r.value().items() if k != "id")]
        for n, msgs in by_row.items():
            if 0 < n <= len(filled):
                show_note(filled[n - 1].note, " ".join(msgs), todo=todo)
            else:
                loose += msgs
        return loose

    def _show_rule_error(self, e, saved: int | None = None) -> None:
        if isinstance(e, audits.AuditRuleError):
            loose = self.show_problems(e.problems)
            n = len(e.problems)
            first = (f"Saved as draft no. {saved} but not submitted" if saved is not None
                     else "Not done")
            self.messages.blocked(
                f"{first}: {n} thing{'s' if n != 1 else ''} to put right"
                + (", shown in red next to each field." if len(loose) < n else "."),
                list(e.problems.values()))
        elif isinstance(e, audits.StaleRecord):
            self.messages.blocked(f"{e}. To reload it, choose it under Saved audits and press "
                                  "Open; what you typed stays on the form until then, to copy.")
        else:
            self.messages.blocked(str(e))

    # -- the buttons ------------------------------------------------------------------------
    def new(self) -> None:
        self.fill({})
        _choose(self.pick, None)
        self.record_out.value = ""
        self.case_note.layout.display = HIDDEN
        self.messages.info("New audit: choose the case, the auditors and the date, then fill "
                           "in the rest. Save a draft as often as you like.")

    def open(self, audit_id: int | None) -> None:
        if audit_id is None:
            self.messages.info("Choose a saved audit from the list first.")
            return
        a = audits.load(self.db, audit_id)
        self.fill(a)
        self.record_out.value = ""
        self.case_note.layout.display = HIDDEN
        self.messages.info(f"Opened audit no. {audit_id} ({audits.STATUS_LABELS[a['status']]}"
                           f", last saved {a['updated_at'][:16].replace('T', ' ')} UTC).")

    def _save(self) -> int:
        a = audits.save_and_load(self.db, self.collect(), audit_id=self.audit_id)
        audit_id = a["id"]
        self.audit_id, self.version, self.status = audit_id, a["version"], a["status"]
        # Keep action ids so the next save updates rather than re-inserts.
        for row, saved in zip([r for r in self.action_rows
                               if any(v for k, v in r.value().items() if k != "id")],
                              a["actions"], strict=False):
            row.id = saved["id"]
        return audit_id

    def save(self) -> None:
        audit_id = self._save()
        todo = audits.problems(self.db, self.collect())
        self.show_problems(todo, todo=True)
        self._set_state()
        self._fill_pick()
        at = dt.datetime.now().strftime("%H:%M")
        if todo:
            self.messages.ok(f"Saved draft no. {audit_id} at {at}. Before it can be submitted, "
                             f"{len(todo)} thing{'s' if len(todo) != 1 else ''} still to do "
                             "(shown in orange next to each field).")
        else:
            self.messages.ok(f"Saved draft no. {audit_id} at {at}. It is complete and ready "
                             "to submit.")

    def submit(self) -> None:
        audit_id = self._save()
        self._set_state()
        self._fill_pick()
        try:
            audits.submit(self.db, audit_id, expected_version=self.version)
        except audits.AuditRuleError as e:
            self._show_rule_error(e, saved=audit_id)
            return
        self.fill(audits.load(self.db, audit_id))
        self._fill_pick()
        self._show_note_text()
        self.messages.ok(f"Submitted audit no. {audit_id}. Copy the case note below to the "
                         "case record, and print the record for the file.")

    def reopen(self) -> None:
        if self.audit_id is None:
            return
        who = dict(self._people).get(self.auditor1.value) if hasattr(self, "_people") else None
        audits.reopen(self.db, self.audit_id, self.reopen_reason.value,
                      by=who.split(" (")[0] if who else None, expected_version=self.version)
        self.reopen_reason.value = ""
        self.fill(audits.load(self.db, self.audit_id))
        self._fill_pick()
        self.messages.ok(f"Reopened audit no. {self.audit_id} as a draft; the reason is kept "
                         "in its history. Save and submit it again when done.")

    def moderate(self) -> None:
        grades = {k: dd.value for k, dd in self.mod_grades.items() if dd.value is not None}
        reasons = {k: t.value for k, t in self.mod_reasons.items()}
        try:
            audits.moderate(self.db, self.audit_id, self.moderator.value, grades, reasons,
                            expected_version=self.version)
        except audits.AuditRuleError as e:
            mapped = {(k if k == "moderator" else f"mod-{k}"): m for k, m in e.problems.items()}
            raise audits.AuditRuleError(mapped) from None
        self.fill(audits.load(self.db, self.audit_id))
        self._fill_pick()
        changed = len(grades)
        self.messages.ok(f"Moderation recorded for audit no. {self.audit_id}: "
                         + (f"{changed} grade{'s' if changed != 1 else ''} changed; both "
                            "grades are kept." if changed else "agreed with every grade."))

    def _show_note_text(self) -> None:
        self.case_note.value = audits.case_note(self.db, self.audit_id)
        self.case_note.layout.display = None

    def print(self) -> None:
        if self.audit_id is None:
            self.messages.info("Save the audit first, then print it.")
            return
        path = audits.print_record(self.db, self.audit_id, out_dir=_reports_dir())
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        self.record_out.value = (
            f'<p>Record written to <code>{esc(path.resolve())}</code>. '
            f'<a download="{esc(path.name)}" href="data:text/html;base64,{data}" '
            f'class="ehkit-download">Download {esc(path.name)}</a> to save it on the case '
            "record. Case note for the case record (guidance 2):</p>")
        self._show_note_text()
        self.messages.ok(f"Printable record ready: {path.name}.")


class Unavailable:
    """Shown instead of the form when it cannot start (no database, bad template)."""

    def __init__(self, message: str):
        self.message = message

    def refresh(self) -> None:
        pass

    def _repr_html_(self) -> str:
        return (STYLE_CSS + '<div class="ehkit-msg-blocked ehkit-unavailable">The audit form '
                f"cannot open: {esc(self.message)}</div>")


def audit_app(db_path=None, template: str | None = None, *,
              refresh: bool = True) -> AuditForm | Unavailable:
    """The auditor's app (database: the argument, else $EHKIT_DB); display it to show it."""
    try:
        form = AuditForm(db_path, template)
        if refresh:
            form.refresh()
    except EhkitError as e:
        return Unavailable(str(e))
    return form


def css_key(key: str) -> str:
    """The CSS class suffix a field key gets (tests build selectors with it)."""
    return css_name(key)
