"""The audit form's panels: each builds its widgets once and binds them to its model.

``link`` binds what a person types to a trait; ``dlink`` derives what follows from the state
(inputs locked once the audit is submitted, option lists, what is hidden). No view reads or
writes the store, and none holds a value the model does not: ``.parts`` is what it shows.

Widgets share style and layout models (a third fewer models for the browser to build); a
widget that is ever hidden has a layout of its own, as hiding a shared layout hides them all.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w
from traitlets import HasTraits, dlink, link

from ..template import OVERALL, Section, Template
from .audit_model import ActionModel, AuditModel, Value, locks
from .common import (
    FULL,
    PLAIN,
    TEXT_STYLE,
    TEXTAREA,
    TOGGLE_STYLE,
    button,
    date_picker,
    esc,
    field_note,
    html_widget,
    labelled,
    show_note,
    tag,
)

Q_LABEL = w.Layout(flex="1 1 55%")
Q_TOGGLE = w.Layout(flex="0 0 auto")
ROW = w.Layout(width="100%", align_items="center")
LABEL = w.Layout(width="32%", min_width="200px")
INPUT = w.Layout(width="60%")
CHECK_NOTE = w.Layout(flex="1 1 30%")
HIDDEN = "none"
NONE_LABEL = "(none)"
ACTION_WIDTHS = {"number": "3em", "action": "22%", "by_whom": "13%"}

Guard = Callable[[Callable], Callable]  # wraps a button's callback (``common.friendly``)


def action_width(key: str) -> str:
    return ACTION_WIDTHS.get(key, "9.5em" if key.endswith("_date") else "10%")


def label(text: str) -> w.HTML:
    return html_widget(f"<b>{esc(text)}</b>", layout=LABEL)


def grade_definitions(tpl: Template) -> str:
    rows = "".join(f"<tr><td><b>{g.value} = {esc(g.label)}</b></td><td>{esc(g.definition)}</td></tr>"
                   for g in tpl.grades)
    return f'<table class="ehkit-grade-defs">{rows}</table>'


def shown_when(flag: bool) -> str | None:
    return None if flag else HIDDEN


def lock(model: AuditModel, *widgets: w.Widget) -> list[dlink]:
    """Inputs are disabled while the audit is not a draft."""
    return [dlink((model, "status"), (wd, "disabled"), locks) for wd in widgets]


def bind(value: Value, widget: w.Widget) -> w.Widget:
    link((value, "value"), (widget, "value"))
    return widget


def offer(widget: w.Dropdown, source: tuple[HasTraits, str], options: Callable[[], list],
          chosen: tuple[HasTraits, str]) -> w.Dropdown:
    """Bind a dropdown's options (``options()``, again whenever ``source`` changes) and its
    value. New options make ipywidgets select the first, so the model's choice is put back
    when it is still offered."""
    model, name = chosen

    def show(_change=None) -> None:
        keep, opts = getattr(model, name), options()
        with widget.hold_sync():
            widget.options = opts
            if keep in {v for _, v in opts}:
                widget.value = keep

    show()
    source[0].observe(show, source[1])
    link(chosen, (widget, "value"))
    return widget


def people_choices(model: AuditModel) -> Callable[[], list]:
    """The auditors' (and moderator's) choices: nobody yet, or one of ``model.people``."""
    return lambda: [(NONE_LABEL, None), *model.people]


def note(model: AuditModel, key: str) -> w.HTML:
    """The place for the rule message about field ``key``, shown from ``model.notes``."""
    widget = field_note(key)
    model.note_keys.add(key)

    def show(change) -> None:
        message, todo = change.new.get(key) or (None, False)
        show_note(widget, message, todo=todo)

    model.observe(show, "notes")
    return widget


class OpenView:
    """Open a saved audit, start a new one, or refresh the lists."""

    def __init__(self, model: AuditModel):
        self.pick = tag(w.Dropdown(description="Saved audits:",
                                   style={"description_width": "initial"},
                                   layout=w.Layout(width="55%")), "open-list")
        offer(self.pick, (model, "saved_audits"),
              lambda: [("Choose a saved audit", None), *model.saved_audits], (model, "picked"))
        self.open = tag(button(description="Open", icon="folder-open"), "open")
        self.new = tag(button(description="New audit", icon="file"), "new")
        self.refresh = tag(button(description="Refresh list", icon="refresh"), "refresh")
        self.parts = [w.HBox([self.pick, self.open, self.new, self.refresh],
                             layout=w.Layout(flex_flow="row wrap"))]


def case_value(key: str, info: dict):
    """What a read-only case field shows (``info`` from ``episodes.case_information``)."""
    if key == "cross_authority_contact" and info:
        if not info["cross_authority"]:
            return "Not a cross-authority assessment"
        return f"{info['cross_authority_name'] or ''}: {info[key] or 'contact not recorded'}"
    return info.get(key)


class CaseView:
    """Case information: the inputs the template names, the rest read from the store."""

    def __init__(self, model: AuditModel, tpl: Template):
        c = model.case
        people = people_choices(model)
        self.audit_date = date_picker(key="audit_date")
        link((c, "audit_date"), (self.audit_date, "value"))
        self.auditor1 = offer(tag(w.Dropdown(layout=INPUT), "auditor1"), (model, "people"),
                              people, (c, "auditor1_id"))
        self.auditor2 = offer(tag(w.Dropdown(layout=INPUT), "auditor2"), (model, "people"),
                              people, (c, "auditor2_id"))
        self.ehm = tag(w.Combobox(ensure_option=False, placeholder="EHM number",
                                  layout=w.Layout(width="14em")), "ehm_number")
        link((c, "ehm_number"), (self.ehm, "value"))
        dlink((c, "ehm_numbers"), (self.ehm, "options"), tuple)
        # Shown only when the EHM number has more than one episode to choose from.
        self.episode = offer(tag(w.Dropdown(layout=w.Layout(width="20em")), "episode"),
                             (c, "episodes"), lambda: list(c.episodes), (c, "episode_id"))
        dlink((c, "episodes"), (self.episode.layout, "display"), lambda e: shown_when(len(e) > 1))
        lock(model, self.audit_date, self.auditor1, self.auditor2, self.ehm, self.episode)

        self.readonly: dict[str, w.HTML] = {}
        labelled(self.episode, "Episode")
        inputs = {"audit_date": (self.audit_date, self.audit_date, "audit_date"),
                  "auditor1": (self.auditor1, self.auditor1, "auditor1"),
                  "auditor2": (self.auditor2, self.auditor2, "auditor2"),
                  "ehm_number": (self.ehm, w.HBox([self.ehm, self.episode]), "episode")}
        self.parts: list[w.Widget] = [html_widget("<h2>Case information</h2>")]
        for f in tpl.case_fields:
            if f.value in inputs:
                named, field, key = inputs[f.value]
                labelled(named, f.label)
                self.parts += [w.HBox([label(f.label), field], layout=ROW), note(model, key)]
            else:
                box = tag(html_widget('<div class="ehkit-readonly"></div>', layout=INPUT),
                          f"case-{f.value}")
                dlink((c, "information"), (box, "value"), lambda info, k=f.value:
                      f'<div class="ehkit-readonly">{esc(case_value(k, info))}</div>')
                self.readonly[f.value] = box
                self.parts.append(w.HBox([label(f.label), box], layout=ROW))


class ChecklistView:
    """The basic-information checklist: a status and a note per item."""

    def __init__(self, model: AuditModel, tpl: Template):
        self.checklist: dict[str, tuple[w.ToggleButtons, w.Text]] = {}
        self.parts: list[w.Widget] = [html_widget(f"<h2>{esc(tpl.checklist_title)}</h2>")]
        choices = [(c.label, c.value) for c in tpl.checklist_choices]
        for c in tpl.checklist:
            status_value, note_value = model.checklist[c.value]
            status = bind(status_value, tag(w.ToggleButtons(
                style=TOGGLE_STYLE, options=choices, value=None, layout=Q_TOGGLE),
                "check", f"check-{c.value}"))
            text = bind(note_value, tag(w.Text(style=TEXT_STYLE, placeholder="Note",
                                               layout=CHECK_NOTE), f"check-note-{c.value}"))
            labelled(status, c.label)
            labelled(text, f"{c.label}: note")
            lock(model, status, text)
            self.checklist[c.value] = (status, text)
            self.parts.append(w.HBox([html_widget(esc(c.label), layout=w.Layout(width="22%")),
                                      status, text], layout=ROW))


def text_box(model: AuditModel, name: str, css: str, layout: w.Layout = TEXTAREA, *,
             label: str) -> w.Textarea:
    """A free-text box bound to ``model.<name>``, named ``label`` for screen readers."""
    box = labelled(tag(w.Textarea(style=TEXT_STYLE, layout=layout), css), label)
    link((model, name), (box, "value"))
    lock(model, box)
    return box


class OverallView:
    """The overall grade, its reasons, and where the grade is chosen."""

    def __init__(self, model: AuditModel, tpl: Template):
        self.model, self.tpl = model, tpl
        self.grade: w.ToggleButtons | None = None
        self.reasons = text_box(model, "overall_reasons", "overall_reasons",
                                label=tpl.overall_reasons_label)
        held = next((s for s in tpl.sections if s.holds_overall), None)
        where = f"section {held.number}" if held else "the last section"
        self.shown = tag(html_widget(""), "overall-shown")
        dlink((model.grades[OVERALL], "value"), (self.shown, "value"), lambda g: (
            f"Overall grade (chosen in {esc(where)} below): "
            f"<b>{esc(tpl.grade_label(g) if g else 'not chosen yet')}</b>"))
        # The paper tool's order: the overall reasons come before the sections; the grade
        # itself is chosen at the end, in the section that holds it (else here).
        self.parts: list[w.Widget] = [html_widget(f"<h2>{esc(tpl.overall_label)}</h2>")]
        self.parts += [self.shown] if held else self.grade_parts()
        self.parts += [html_widget(f"<b>{esc(tpl.overall_reasons_label)}</b>"), self.reasons,
                       note(model, "overall_reasons")]

    def grade_parts(self) -> list[w.Widget]:
        t = self.tpl
        self.grade = grade_choice(self.model, t, OVERALL, "Overall grade")
        return [html_widget(f"<b>{esc(t.overall_grading_label)}</b>"), self.grade,
                html_widget(grade_definitions(t)), note(self.model, OVERALL)]


def grade_choice(model: AuditModel, tpl: Template, key: str, name: str) -> w.ToggleButtons:
    """A section's (or the overall) grade, named ``name``: Inadequate first, as on paper."""
    grades = list(reversed(tpl.grades))
    g = bind(model.grades[key], tag(w.ToggleButtons(
        style=TOGGLE_STYLE, options=[(x.label, x.value) for x in grades], value=None,
        tooltips=[x.definition for x in grades], layout=PLAIN), "grade", f"grade-{key}"))
    lock(model, labelled(g, name))
    return g


class SectionView:
    """One section: its prompts, a Yes / No per question, a comment per item, its grade."""

    def __init__(self, model: AuditModel, tpl: Template, s: Section, overall: OverallView):
        self.key = s.key
        self.responses: dict[str, w.ToggleButtons] = {}
        self.comments: dict[str, w.Textarea] = {}
        self.grade: w.ToggleButtons | None = None
        self.parts: list[w.Widget] = []
        static = [f"<h2>{s.number}. {esc(s.title)}</h2>"]  # text up to the next input

        def add(*widgets: w.Widget) -> None:  # the text so far as one widget, then these
            if static:
                self.parts.append(html_widget("".join(static), layout=FULL))
                static.clear()
            self.parts.extend(widgets)

        choices = [(c.label, c.value) for c in tpl.question_choices]
        for item in s.items:
            static.append(f'<div class="ehkit-prompt"><b>{esc(item.key)}</b> '
                          f"{esc(item.prompt)}</div>")
            if item.questions:
                static.append(f"<i>{esc(tpl.question_guidance)}</i>")
            for q in item.questions:
                toggle = bind(model.responses[q.key], tag(w.ToggleButtons(
                    style=TOGGLE_STYLE, options=choices, value=None, layout=Q_TOGGLE),
                    "response", f"response-{q.key}"))
                lock(model, labelled(toggle, q.text))
                self.responses[q.key] = toggle
                add(w.HBox([html_widget(esc(q.text), layout=Q_LABEL), toggle], layout=ROW))
            comment = bind(model.comments[item.key], tag(w.Textarea(
                style=TEXT_STYLE, placeholder="Comments: the evidence for your judgement",
                layout=TEXTAREA), "comment", f"comment-{item.key}"))
            lock(model, labelled(comment, f"{item.key} comments"))
            self.comments[item.key] = comment
            static.append("<b>Comments:</b>")
            add(comment)
        if s.graded:
            static.append(f"<b>{esc(s.grading_label)}</b>")
            self.grade = grade_choice(model, tpl, s.key, f"{s.number}. {s.title}: grade")
            add(self.grade, html_widget(grade_definitions(tpl)), note(model, s.key))
        add()
        if s.holds_overall:
            self.parts += overall.grade_parts()


class ActionRowView:
    """One row of the recommended-actions table; widgets follow the template's columns."""

    def __init__(self, model: AuditModel, row: ActionModel, tpl: Template, guard: Guard):
        self.widgets: dict[str, w.Widget] = {}
        self._links: list[dlink] = []  # held by the form's model: undone when the row goes
        for c in tpl.action_columns:
            k = c.value
            if k == "number":
                wd = html_widget("", layout=w.Layout(width=ACTION_WIDTHS[k]))
            elif k == "action":
                wd = w.Textarea(style=TEXT_STYLE, placeholder="Specific, measurable action",
                                layout=w.Layout(width=ACTION_WIDTHS[k], height="4em"))
            elif k == "by_whom":
                wd = w.Combobox(ensure_option=False, placeholder="Name",
                                layout=w.Layout(width=ACTION_WIDTHS[k]))
                self._links.append(dlink((model, "names"), (wd, "options"), tuple))
            elif k.endswith("_date"):
                wd = date_picker(key=f"action-{k}")
                wd.layout = w.Layout(width=action_width(k))
            else:
                wd = w.Text(style=TEXT_STYLE, layout=w.Layout(width=action_width(k)))
            if k != "number":
                labelled(wd, c.label)
                bind(row.values[k], wd)
                self._links += lock(model, wd)
            self.widgets[k] = tag(wd, f"action-{k}")
        self.remove = tag(button(description="Remove", icon="trash",
                                 layout=w.Layout(width="7em")), "action-remove")
        self.remove.on_click(guard(lambda _b: model.remove_action(row)))
        self._links += lock(model, self.remove)
        self.note = field_note("action")

        def show(change) -> None:
            message, todo = change.new or (None, False)
            show_note(self.note, message, todo=todo)

        row.observe(show, "note")
        self.box = tag(w.VBox([w.HBox([*self.widgets.values(), self.remove],
                                      layout=w.Layout(flex_flow="row wrap", width="100%")),
                               self.note]), "action-row")

    def show_number(self, n: int) -> None:
        if "number" in self.widgets:
            self.widgets["number"].value = f"<b>{n}</b>"

    def close(self) -> None:
        """The row is gone (removed, or another audit shown): free its widgets."""
        for x in self._links:
            x.unlink()
        hbox = self.box.children[0]
        for wd in (*self.widgets.values(), self.remove, self.note, hbox, self.box):
            wd.close()


class ActionsView:
    """The recommended actions: a row per action, added and removed by the auditor."""

    def __init__(self, model: AuditModel, tpl: Template, guard: Guard):
        self.model, self.tpl, self.guard = model, tpl, guard
        self.rows: dict[ActionModel, ActionRowView] = {}
        head = w.HBox([html_widget(f"<b>{esc(c.label)}</b>",
                                   layout=w.Layout(width=action_width(c.value)))
                       for c in tpl.action_columns],
                      layout=w.Layout(flex_flow="row wrap", width="100%"))
        self.box = w.VBox([])
        self.add = tag(button(description="Add action", icon="plus"), "add-action")
        self.add.on_click(guard(lambda _b: model.add_action()))
        lock(model, self.add)
        model.observe(self.show, "actions")
        self.parts = [html_widget(f"<h2>{esc(tpl.actions_title)}</h2>"), head, self.box,
                      self.add, note(model, "actions")]

    def show(self, _change=None) -> None:
        rows = self.model.actions
        for gone in set(self.rows) - set(rows):
            self.rows[gone].close()
        self.rows = {r: self.rows.get(r) or ActionRowView(self.model, r, self.tpl, self.guard)
                     for r in rows}
        for n, r in enumerate(rows, start=1):
            self.rows[r].show_number(n)
        self.box.children = [self.rows[r].box for r in rows]


class RecordView:
    """Save, submit and print; reopen a submitted audit; moderation; the printed record."""

    def __init__(self, model: AuditModel, messages: w.Widget):
        self.save = tag(button(description="Save draft", icon="save", button_style="primary"),
                        "save")
        self.submit = tag(button(description="Submit audit", icon="check",
                                 button_style="success"), "submit")
        self.print = tag(button(description="Print record", icon="print"), "print")
        lock(model, self.save, self.submit)
        dlink((model, "audit_id"), (self.print, "disabled"), lambda i: i is None)
        self.reopen_reason = tag(w.Text(style=TEXT_STYLE, placeholder="Why it needs changing",
                                        description="Reason:", layout=w.Layout(width="50%")),
                                 "reopen-reason")
        link((model, "reopen_reason"), (self.reopen_reason, "value"))
        self.reopen = tag(button(description="Reopen to change", icon="unlock",
                                 layout=w.Layout(width="auto")), "reopen")
        self.reopen_box = w.HBox([self.reopen_reason, self.reopen, note(model, "reason")],
                                 layout=w.Layout(flex_flow="row wrap"))
        self.moderation_box = w.VBox([], layout=w.Layout(width="100%"))
        for box in (self.reopen_box, self.moderation_box):  # only for a submitted audit
            dlink((model, "status"), (box.layout, "display"), lambda s: shown_when(locks(s)))
        self.record = tag(html_widget(""), "record")
        dlink((model, "record"), (self.record, "value"))
        self.case_note = tag(w.Textarea(style=TEXT_STYLE,
                                         layout=w.Layout(width="100%", height="12em")), "case-note")
        labelled(self.case_note, "Case note")
        dlink((model, "case_note"), (self.case_note, "value"), lambda t: t or "")
        dlink((model, "case_note"), (self.case_note.layout, "display"),
              lambda t: shown_when(t is not None))
        self.parts = [html_widget("<hr>"), w.HBox([self.save, self.submit, self.print]),
                      messages, self.reopen_box, self.moderation_box, self.record,
                      self.case_note]


class ModerationView:
    """Agree with each grade or change it with a reason (built when first needed: most page
    loads are for drafts and never show it)."""

    def __init__(self, model: AuditModel):
        m = model.moderation
        self.moderator = offer(labelled(tag(w.Dropdown(layout=INPUT), "moderator"), "Moderator"),
                               (model, "people"), people_choices(model), (m, "moderator_id"))
        self.grades: dict[str, w.Dropdown] = {}
        self.reasons: dict[str, w.Text] = {}
        self.parts: list[w.Widget] = [
            html_widget("<h2>Moderation</h2><p>Auditor 2 or a moderator records agreement, or "
                        "a changed grade with the reason. Both grades are kept.</p>"),
            w.HBox([label("Moderator:"), self.moderator], layout=ROW), note(model, "moderator")]
        for key, text in m.labels.items():
            g = offer(tag(w.Dropdown(layout=w.Layout(width="16em")), "mod-grade",
                          f"mod-grade-{key}"), (m, "mine"), lambda k=key: m.choices(k),
                      (m.grades[key], "value"))
            r = bind(m.reasons[key], tag(w.Text(
                style=TEXT_STYLE, placeholder="Reason (needed when the grade changes)",
                layout=w.Layout(flex="1 1 40%")), f"mod-reason-{key}"))
            labelled(g, f"{text}: moderated grade")
            labelled(r, f"{text}: reason for a changed grade")
            self.grades[key], self.reasons[key] = g, r
            self.parts += [w.HBox([html_widget(esc(text), layout=w.Layout(width="30%")), g, r],
                                  layout=ROW), note(model, f"mod-{key}")]
        self.button = tag(button(description="Record moderation", icon="balance-scale",
                                 button_style="warning", layout=w.Layout(width="auto")),
                          "moderate")
        self.parts.append(self.button)
