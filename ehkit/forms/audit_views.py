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

from ..template import OVERALL, Note, Section, Template
from .audit_model import OUTSIDE, ActionModel, AuditModel, Value, locks
from .common import (
    FULL,
    GRADE_STYLE,
    LABELLED,
    LABELLED_TEXT,
    PLAIN,
    TEXT_STYLE,
    TEXTAREA,
    TOGGLE_STYLE,
    button,
    css_name,
    date_picker,
    esc,
    field_note,
    hooks,
    html_widget,
    labelled,
    show_note,
    tag,
    untitled,
)

Q_TOGGLE = w.Layout(flex="0 0 auto")
ROW = w.Layout(width="100%", align_items="center")
LABEL = w.Layout(width="32%", min_width="200px")
INPUT = w.Layout(width="60%")
CHECK_NOTE = w.Layout(flex="1 1 30%")
HIDDEN = "none"
LEARNING_PLACEHOLDER = ("Learning for professionals from this case, to share with the worker "
                        "and their team manager (not graded)")
NONE_LABEL = "(none)"

Guard = Callable[[Callable], Callable]  # wraps a button's callback (``common.friendly``)


def label(text: str) -> w.HTML:
    return html_widget(f"<b>{esc(text)}</b>", layout=LABEL)


def grade_definitions(tpl: Template) -> str:
    """The paper's grading guidance: "Judgement of Quality of Work" and each grade's
    "Definition"."""
    head = "".join(f"<th>{esc(h)}</th>" for h in tpl.grade_heading)
    rows = "".join(f"<tr><td><b>{g.value} = {esc(g.label)}</b></td><td>{esc(g.definition)}</td></tr>"
                   for g in tpl.grades)
    return f'<table class="ehkit-grade-defs"><tr>{head}</tr>{rows}</table>'


def note_text(n: Note) -> str:
    return f"<b>Guidance {n.number}:</b> {esc(n.text)}"


def guidance(tpl: Template, place: str) -> str:
    """The guidance notes the template shows beside ``place`` ('' when none)."""
    return "".join(f'<div class="ehkit-guidance">{note_text(n)}</div>'
                   for n in tpl.guidance_at(place))


def grade_guidance(tpl: Template) -> str:
    """Beside each grade: its guidance, with the grade definitions folded under it (shown
    once when opened, not nine times over)."""
    notes = " ".join(note_text(n) for n in tpl.guidance_at("grades"))
    return (f'<details class="ehkit-guidance ehkit-grade-help"><summary>{notes} '
            '<span class="ehkit-more">Grade definitions</span>'
            f"</summary>{grade_definitions(tpl)}</details>")


def guidance_panel(tpl: Template) -> str:
    """Every guidance note, folded at the top of the form; the grade definitions follow the
    note about grades (at the end when none is)."""
    graded = {n.number for n in tpl.guidance_at("grades")}
    items = "".join(f'<li value="{n.number}">{esc(n.text)}'
                    + (grade_definitions(tpl) if n.number in graded else "") + "</li>"
                    for n in tpl.guidance)
    rest = "" if graded else grade_definitions(tpl)
    return (f'<details class="ehkit-guidance-notes"><summary>Guidance Notes ({len(tpl.guidance)}'
            f")</summary><ol>{items}</ol>{rest}</details>")


def shown_when(flag: bool) -> str | None:
    return None if flag else HIDDEN


def lock(model: AuditModel, *widgets: w.Widget) -> list[dlink]:
    """Inputs are disabled while the audit is not a draft."""
    return [dlink((model, "status"), (wd, "disabled"), locks) for wd in widgets]


def fixed_to_login(model: AuditModel, widget: w.Widget, *, lock: bool = True) -> None:
    """A person's choice that is the logged-in person when logins are in use (auditor 1,
    the moderator): shown, never picked; otherwise locked like the rest (``lock``)."""
    def show(_change=None) -> None:
        widget.disabled = model.logged_in or (lock and locks(model.status))

    model.observe(show, ["status", "logged_in"])
    show()


def bind(value: Value, widget: w.Widget) -> w.Widget:
    link((value, "value"), (widget, "value"))
    return widget


def offer(widget: w.Dropdown, source: tuple[HasTraits, str], options: Callable[[], list],
          chosen: tuple[HasTraits, str], undo: list | None = None) -> w.Dropdown:
    """Bind a dropdown's options (``options()``, again whenever ``source`` changes) and its
    value. New options make ipywidgets select the first, so the model's choice is put back
    when it is still offered. ``undo`` collects what unbinds it, for a widget that goes."""
    model, name = chosen

    def show(_change=None) -> None:
        keep, opts = getattr(model, name), options()
        with widget.hold_sync():
            widget.options = opts
            if keep in {v for _, v in opts}:
                widget.value = keep

    show()
    source[0].observe(show, source[1])
    bound = link(chosen, (widget, "value"))
    if undo is not None:
        undo += [lambda: source[0].unobserve(show, source[1]), bound.unlink]
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


def case_value(key: str, info: dict):
    """What a read-only case field shows (``info`` from ``episodes.case_information``)."""
    if key == "cross_authority_contact" and info:
        if not info["cross_authority"]:
            return "Not a cross-authority assessment"
        return f"{info['cross_authority_name'] or ''}: {info[key] or 'contact not recorded'}"
    return info.get(key)


def case_row(key: str, name: str, value: str) -> str:
    """A read-only case field laid out as the inputs' rows are (label 32%, value 60%); the
    value's own element is ``.ehkit-case-<key>`` (tests wait for its text). ``value`` is
    HTML, escaped by the caller."""
    return (f'<div class="ehkit-case-row"><b class="ehkit-case-label">{esc(name)}</b>'
            f'<div class="ehkit-readonly ehkit-case-{css_name(key)}">{value}</div></div>')


class CaseView:
    """Case information: the inputs the template names, the rest read from the store."""

    def __init__(self, model: AuditModel, tpl: Template):
        c = model.case
        people = people_choices(model)
        # Each input is named for screen readers by its label on the template (shown beside).
        named = {f.value: f.label for f in tpl.case_fields}
        self.audit_date = date_picker(key="audit_date", sr_label=named.get("audit_date"))
        link((c, "audit_date"), (self.audit_date, "value"))
        self.auditor1 = offer(w.Dropdown(layout=INPUT, **hooks(
            "auditor1", sr_label=named.get("auditor1"))), (model, "people"), people,
            (c, "auditor1_id"))
        self.auditor2 = offer(w.Dropdown(layout=INPUT, **hooks(
            "auditor2", sr_label=named.get("auditor2"))), (model, "people"), people,
            (c, "auditor2_id"))
        self.ehm = w.Combobox(ensure_option=False, placeholder="EHM number",
                              layout=w.Layout(width="14em"),
                              **hooks("ehm_number", sr_label=named.get("ehm_number")))
        link((c, "ehm_number"), (self.ehm, "value"))
        dlink((c, "ehm_numbers"), (self.ehm, "options"), tuple)
        # Shown only when the EHM number has more than one episode to choose from.
        self.episode = offer(w.Dropdown(layout=w.Layout(width="20em"),
                                        **hooks("episode", sr_label="Episode")),
                             (c, "episodes"), lambda: list(c.episodes), (c, "episode_id"))
        dlink((c, "episodes"), (self.episode.layout, "display"), lambda e: shown_when(len(e) > 1))
        lock(model, self.audit_date, self.auditor2, self.ehm, self.episode)
        fixed_to_login(model, self.auditor1)

        self.readonly: dict[str, w.HTML] = {}
        inputs = {"audit_date": (self.audit_date, self.audit_date, "audit_date"),
                  "auditor1": (self.auditor1, self.auditor1, "auditor1"),
                  "auditor2": (self.auditor2, self.auditor2, "auditor2"),
                  "ehm_number": (self.ehm, w.HBox([self.ehm, self.episode], layout=PLAIN),
                                 "episode")}
        # The guidance on who audits and on the case heads the fields it concerns.
        self.parts: list[w.Widget] = [html_widget(
            "<h2>Case information</h2>" + guidance(tpl, "auditors") + guidance(tpl, "case"))]
        for f in tpl.case_fields:
            if f.value in inputs:
                _, field, key = inputs[f.value]
                self.parts += [w.HBox([label(f.label), field], layout=ROW), note(model, key)]
            else:  # label and value as one widget, not three: it is only read
                row = html_widget(case_row(f.value, f.label, ""), layout=FULL,
                                  **hooks("case-field"))
                dlink((c, "information"), (row, "value"), lambda info, k=f.value, name=f.label:
                      case_row(k, name, esc(case_value(k, info))))
                self.readonly[f.value] = row
                self.parts.append(row)


class ChecklistView:
    """The basic-information checklist: a status and a note per item."""

    def __init__(self, model: AuditModel, tpl: Template):
        self.checklist: dict[str, tuple[w.ToggleButtons, w.Text]] = {}
        self.parts: list[w.Widget] = [html_widget(f"<h2>{esc(tpl.checklist_title)}</h2>")]
        choices = [(c.label, c.value) for c in tpl.checklist_choices]
        for c in tpl.checklist:
            status_value, note_value = model.checklist[c.value]
            # The item is its status's own label, shown (``.ehkit-check-status``, as wide as
            # a fifth of the row): no label widget beside it.
            status = bind(status_value, untitled(
                w.ToggleButtons, description=c.label, style=TOGGLE_STYLE, options=choices,
                value=None, layout=Q_TOGGLE, **hooks("check", f"check-{c.value}",
                                                     "check-status")))
            text = bind(note_value, w.Text(
                style=TEXT_STYLE, placeholder="Note", layout=CHECK_NOTE,
                **hooks(f"check-note-{c.value}", sr_label=f"{c.label}: note")))
            lock(model, status, text)
            self.checklist[c.value] = (status, text)
            self.parts.append(w.HBox([status, text], layout=ROW, **hooks("check-row")))


def text_box(model: AuditModel, name: str, css: str, layout: w.Layout = TEXTAREA, *,
             label: str) -> w.Textarea:
    """A free-text box bound to ``model.<name>``, named ``label`` for screen readers."""
    box = w.Textarea(style=TEXT_STYLE, layout=layout, **hooks(css, sr_label=label))
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
        self.shown = html_widget("", **hooks("overall-shown"))
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
        self.grade = grade_choice(self.model, t, OVERALL, t.overall_grading_label)
        return [self.grade, html_widget(grade_guidance(t)), note(self.model, OVERALL)]


def grade_choice(model: AuditModel, tpl: Template, key: str, heading: str) -> w.ToggleButtons:
    """A section's (or the overall) grade, headed as on the paper tool, Inadequate first."""
    grades = list(reversed(tpl.grades))
    g = bind(model.grades[key], untitled(
        w.ToggleButtons, description=heading, style=GRADE_STYLE,
        options=[(x.label, x.value) for x in grades], value=None,
        tooltips=[x.definition for x in grades], layout=PLAIN, **hooks("grade", f"grade-{key}")))
    lock(model, g)
    return g


class SectionView:
    """One section: its prompts, a Yes / No per question, a comment per item, its grade."""

    def __init__(self, model: AuditModel, tpl: Template, s: Section, overall: OverallView):
        self.key = s.key
        self.responses: dict[str, w.ToggleButtons] = {}
        self.comments: dict[str, w.Textarea] = {}
        self.grade: w.ToggleButtons | None = None
        self.parts: list[w.Widget] = []
        # The text up to the next input: the heading, and guidance about this section.
        static = [f"<h2>{s.number}. {esc(s.title)}</h2>", guidance(tpl, s.key)]

        def add(*widgets: w.Widget) -> None:  # the text so far as one widget, then these
            if static:
                self.parts.append(html_widget("".join(static), layout=FULL))
                static.clear()
            self.parts.extend(widgets)

        choices = [(c.label, c.value) for c in tpl.question_choices]
        for item in s.items:
            static.append(f'<div class="ehkit-prompt"><b>{esc(item.key)}</b> '
                          f"{esc(item.prompt)}</div>")
            if item.questions:  # a template without placed notes: its own words on them
                static.append(guidance(tpl, "prompts") or (
                    f"<i>{esc(tpl.question_guidance)}</i>" if tpl.question_guidance else ""))
            for q in item.questions:
                # The question is the toggle's own label, shown (``.ehkit-question``, laid out
                # as a row), not a label and a row beside it: two widgets fewer a question.
                toggle = bind(model.responses[q.key], untitled(
                    w.ToggleButtons, description=q.text, style=TOGGLE_STYLE, options=choices,
                    value=None, layout=ROW, **hooks("question", "response", f"response-{q.key}")))
                lock(model, toggle)
                self.responses[q.key] = toggle
                add(toggle)
            comment = bind(model.comments[item.key], w.Textarea(
                style=TEXT_STYLE, placeholder=LEARNING_PLACEHOLDER if item.learning
                else "Comments: the evidence for your judgement", layout=TEXTAREA,
                **hooks("comment", f"comment-{item.key}", sr_label=f"{item.key} comments")))
            lock(model, comment)
            self.comments[item.key] = comment
            static.append("<b>Comments:</b>")
            add(comment)
        if s.graded:
            self.grade = grade_choice(model, tpl, s.key, s.grading_label)
            add(self.grade, html_widget(grade_guidance(tpl)), note(model, s.key))
        add()
        if s.holds_overall:
            self.parts += overall.grade_parts()


class ActionRowView:
    """One recommended action, its fields labelled with the template's column names and
    wrapped to the width they need (the action and "Agreed by" get room for their text)."""

    def __init__(self, model: AuditModel, row: ActionModel, tpl: Template, guard: Guard):
        self.widgets: dict[str, w.Widget] = {}
        self.outsider: w.Text | None = None  # "By Whom": the name of someone outside
        self._undo: list[Callable[[], None]] = []  # the bindings to the form's model
        for c in tpl.action_columns:
            k = c.value
            named, text = ({"description": c.label, "style": style}
                           for style in (LABELLED, LABELLED_TEXT))
            if k == "number":
                wd = html_widget("", layout=w.Layout(width="5.5em"))
            elif k == "action":
                wd = w.Textarea(**text, placeholder="Specific, measurable action",
                                layout=w.Layout(flex="1 1 55%", height="4.5em"))
            elif k == "by_whom":
                wd = self._by_whom(model, row, named)
            elif k.endswith("_date"):
                wd = tag(untitled(w.DatePicker, **named, layout=w.Layout(width="auto")),
                         f"date-action-{k}")
            else:
                wd = w.Text(**text, layout=w.Layout(flex="1 1 40%"))
            if k not in ("number", "by_whom"):
                bind(row.values[k], wd)
                self._undo += [x.unlink for x in lock(model, wd)]
            self.widgets[k] = tag(wd, f"action-{k}")
        self.remove = tag(button(description="Remove", icon="trash",
                                 layout=w.Layout(width="7em")), "action-remove")
        self.remove.on_click(guard(lambda _b: model.remove_action(row)))
        self._undo += [x.unlink for x in lock(model, self.remove)]
        self.note = field_note("action")

        def show(change) -> None:
            message, todo = change.new or (None, False)
            show_note(self.note, message, todo=todo)

        row.observe(show, "note")
        shown = [x for k, wd in self.widgets.items()
                 for x in ((wd, self.outsider) if k == "by_whom" else (wd,))]
        self.box = tag(w.VBox([w.HBox([*shown, self.remove],
                                      layout=w.Layout(flex_flow="row wrap", width="100%",
                                                      align_items="center")),
                               self.note]), "action-row")

    def _by_whom(self, model: AuditModel, row: ActionModel, named: dict) -> w.Dropdown:
        """A practitioner picked (the action's owner), or someone outside the service, whose
        name is typed in the box shown for them (``.outsider``)."""
        pick = w.Dropdown(**named, layout=w.Layout(flex="1 1 35%"))
        offer(pick, (model, "staff"), lambda: [
            ("Choose who will do it", None), *model.staff,
            ("Someone outside the service (type their name)", OUTSIDE)], (row, "owner"),
            self._undo)
        self.outsider = name = tag(w.Text(
            description="Name (outside the service)", style=LABELLED_TEXT,
            placeholder="Name and organisation", layout=w.Layout(flex="1 1 40%")),
            "action-outsider")
        bind(row.values["by_whom"], name)
        shown = dlink((row, "owner"), (name.layout, "display"), lambda o: shown_when(o == OUTSIDE))
        self._undo += [shown.unlink, *(x.unlink for x in lock(model, pick, name))]
        return pick

    def show_number(self, n: int) -> None:
        if "number" in self.widgets:
            self.widgets["number"].value = f"<b>Action {n}</b>"

    def close(self) -> None:
        """The row is gone (removed, or another audit shown): free its widgets."""
        for undo in self._undo:
            undo()
        hbox = self.box.children[0]
        for wd in hbox.children:  # the fields, the outsider's name and Remove
            wd.close()
        for wd in (self.note, hbox, self.box):
            wd.close()


class ActionsView:
    """The recommended actions: a row per action, added and removed by the auditor."""

    def __init__(self, model: AuditModel, tpl: Template, guard: Guard):
        self.model, self.tpl, self.guard = model, tpl, guard
        self.rows: dict[ActionModel, ActionRowView] = {}
        self.box = w.VBox([])
        self.add = button(description="Add action", icon="plus", **hooks("add-action"))
        self.add.on_click(guard(lambda _b: model.add_action()))
        lock(model, self.add)
        model.observe(self.show, "actions")
        self.parts = [html_widget(f"<h2>{esc(tpl.actions_title)}</h2>{guidance(tpl, 'actions')}"),
                      self.box, self.add, note(model, "actions")]

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
    """Save, submit and print; then reopening a submitted audit, moderation, the printed
    record and the case note: those built when first needed (:meth:`build`: the audit
    locked, printed or given a case note), as most page loads are for drafts and show none
    of them. ``on_reopen`` answers the Reopen button."""

    def __init__(self, model: AuditModel, messages: w.Widget, tpl: Template,
                 on_reopen: Callable | None = None):
        self.model, self._on_reopen, self._built = model, on_reopen, False
        self.save = button(description="Save draft", icon="save", button_style="primary",
                           **hooks("save"))
        self.submit = button(description="Submit audit", icon="check", button_style="success",
                             **hooks("submit"))
        self.print = button(description="Print record", icon="print", **hooks("print"))
        lock(model, self.save, self.submit)
        dlink((model, "audit_id"), (self.print, "disabled"), lambda i: i is None)
        self.later = w.VBox([], layout=FULL)  # what build() makes, in the paper tool's order
        model.observe(self._when_needed, ["status", "record", "case_note"])
        self.parts = [html_widget("<hr>" + guidance(tpl, "record")),
                      w.HBox([self.save, self.submit, self.print], layout=PLAIN), messages,
                      self.later]

    def _when_needed(self, _change=None) -> None:
        m = self.model
        if not self._built and (locks(m.status) or m.record or m.case_note is not None):
            self.build()

    def build(self) -> None:
        if self._built:
            return
        self._built, model = True, self.model
        self.reopen_reason = w.Text(style=TEXT_STYLE, placeholder="Why it needs changing",
                                    description="Reason:", layout=w.Layout(width="50%"),
                                    **hooks("reopen-reason"))
        link((model, "reopen_reason"), (self.reopen_reason, "value"))
        self.reopen = button(description="Reopen to change", icon="unlock",
                             layout=w.Layout(width="auto"), **hooks("reopen"))
        if self._on_reopen is not None:
            self.reopen.on_click(self._on_reopen)
        self.reopen_box = w.HBox([self.reopen_reason, self.reopen, note(model, "reason")],
                                 layout=w.Layout(flex_flow="row wrap"))
        self.moderation_box = w.VBox([], layout=w.Layout(width="100%"))
        for box in (self.reopen_box, self.moderation_box):  # only for a submitted audit
            dlink((model, "status"), (box.layout, "display"), lambda s: shown_when(locks(s)))
        self.record = html_widget("", **hooks("record"))
        dlink((model, "record"), (self.record, "value"))
        self.case_note = w.Textarea(style=TEXT_STYLE, layout=w.Layout(width="100%", height="12em"),
                                    **hooks("case-note", sr_label="Case note"))
        dlink((model, "case_note"), (self.case_note, "value"), lambda t: t or "")
        dlink((model, "case_note"), (self.case_note.layout, "display"),
              lambda t: shown_when(t is not None))
        self.later.children = [self.reopen_box, self.moderation_box, self.record, self.case_note]


class ModerationView:
    """Agree with each grade or change it with a reason (built when first needed: most page
    loads are for drafts and never show it)."""

    def __init__(self, model: AuditModel):
        m = model.moderation
        self.moderator = offer(labelled(tag(w.Dropdown(layout=INPUT), "moderator"), "Moderator"),
                               (model, "people"), people_choices(model), (m, "moderator_id"))
        fixed_to_login(model, self.moderator, lock=False)
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
