"""The auditor's app: the whole audit tool as one ipywidgets form, built from the template.

Thin by design: every rule is asked of :mod:`ehkit.audits` (``problems``, ``save_draft``,
``submit``, ``reopen``, ``moderate``) and every message it returns is shown next to the field
it names. A different template gives a different form: case fields, checklist, sections,
prompts, questions, grades and action columns all come from it.

Three layers, as mature ipywidgets apps do it: :mod:`.audit_model` holds what the form shows
(a traitlets model per panel, no widgets), :mod:`.audit_views` builds each panel's widgets and
binds them to the model with ``link``/``dlink``, and :class:`AuditForm` here answers the
buttons and the live checks by asking :mod:`ehkit.audits` and putting the answer in the model.

Usage (what ``notebooks/audit.ipynb`` does)::

    from ehkit.forms import audit_app
    app = audit_app()          # database from $EHKIT_DB
    app                        # display it
"""

from __future__ import annotations

import base64
import datetime as dt
from contextlib import contextmanager
from pathlib import Path

import ipywidgets as w

from .. import access, audits, episodes, home
from .. import db as store
from .. import template as templates
from ..dates import uk_time
from ..errors import EhkitError
from ..template import OVERALL
from .audit_finder import AuditFinder
from .audit_model import AuditModel
from .audit_views import (
    ActionsView,
    CaseView,
    ChecklistView,
    ModerationView,
    OverallView,
    RecordView,
    SectionView,
    guidance,
    guidance_panel,
    text_box,
)
from .common import FULL, STYLE_CSS, Messages, css_name, esc, friendly, hooks, html_widget


class FormBox(w.VBox):
    """The form's outer box, its text repr short: ipywidgets writes out the repr of the whole
    tree (700 calls) to keep 110 characters of it as the page's text/plain output, which no
    one reads on a Voila page."""

    def __repr__(self) -> str:
        return f"<ehkit audit form: {len(self.children)} parts>"


def _reports_dir() -> Path:
    return home.reports_dir("audits")


class AuditForm:
    """Build with :func:`audit_app`; ``.widget`` is what to display, ``.model`` what it holds.

    The panels (:mod:`ehkit.forms.audit_views`) show the model (:mod:`ehkit.forms.audit_model`);
    this class answers the buttons and the live checks by asking :mod:`ehkit.audits`."""

    def __init__(self, db_path=None, template: str | None = None):
        self.db = store.connect(db_path, must_exist=True)
        self.tpl = t = templates.load(template or templates.DEFAULT_TEMPLATE)
        self.model = m = AuditModel(t)
        self.messages = Messages()
        self._filling = False  # showing an audit or a list: not a person's change
        self._on = on = friendly(self.messages, self._show_rule_error)
        self._mod: ModerationView | None = None

        self.finder = AuditFinder(self.db, self.open, on)
        self.state = html_widget("", layout=FULL, **hooks("state"))
        self.case_view = CaseView(m, t)
        self.checklist_view = ChecklistView(m, t)
        self.summary = text_box(m, "summary", "summary", w.Layout(width="100%", height="6em"),
                                label=t.summary_label)
        self.overall = OverallView(m, t)
        self.actions_view = ActionsView(m, t, on)
        self.sections = [SectionView(m, t, s, self.overall) for s in t.sections]
        self.record = RecordView(m, self.messages.widget, t, on(lambda _b: self.reopen()))
        header = html_widget(STYLE_CSS + f"<h1>{esc(t.title)}</h1><p><i>{esc(t.subtitle)}</i></p>"
                             + guidance_panel(t))
        # The paper tool's order: overall reasons and actions come before the sections.
        self.widget = FormBox([
            header, *self.finder.parts, self.state, self.messages.widget, *self.case_view.parts,
            *self.checklist_view.parts,
            html_widget(f"<h2>{esc(t.summary_label)}</h2>{guidance(t, 'summary')}"),
            self.summary, *self.overall.parts, *self.actions_view.parts,
            *(p for s in self.sections for p in s.parts), *self.record.parts], layout=FULL,
            **hooks("form"))

        self.finder.new.on_click(on(lambda _b: self.new()))
        self.finder.refresh.on_click(on(lambda _b: self.refresh()))
        self.record.save.on_click(on(lambda _b: self.save()))
        self.record.submit.on_click(on(lambda _b: self.submit()))
        self.record.print.on_click(on(lambda _b: self.print()))
        m.observe(lambda _c: self._show_state(), ["audit_id", "status"])
        c = m.case
        c.observe(on(lambda _c: self._case_changed()),
                  ["audit_date", "auditor1_id", "auditor2_id", "episode_id"])
        c.observe(on(lambda _c: self._ehm_changed()), "ehm_number")
        self._show_state()
        self.save_btn = self.record.save  # the button tests of ehkit.audits press

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- the panels' widgets, by template key (tests find them here) -------------------------
    @property
    def grades(self) -> dict[str, w.ToggleButtons]:
        return {**{s.key: s.grade for s in self.sections if s.grade is not None},
                OVERALL: self.overall.grade}

    @property
    def responses(self) -> dict[str, w.ToggleButtons]:
        return {k: v for s in self.sections for k, v in s.responses.items()}

    @property
    def comments(self) -> dict[str, w.Textarea]:
        return {k: v for s in self.sections for k, v in s.comments.items()}

    def _built_record(self) -> RecordView:
        """The record's parts a submitted audit shows, built now if not yet (RecordView.build)."""
        self.record.build()
        return self.record

    # The boxes tests of ehkit.audits press and read.
    @property
    def reopen_box(self) -> w.HBox:
        return self._built_record().reopen_box

    @property
    def reopen_reason(self) -> w.Text:
        return self._built_record().reopen_reason

    @property
    def moderation_box(self) -> w.VBox:
        return self._built_record().moderation_box

    @property
    def moderation(self) -> ModerationView:
        """The moderation panel, built on first need: most page loads are for drafts."""
        if self._mod is None:
            self._mod = ModerationView(self.model)
            self._mod.button.on_click(self._on(lambda _b: self.moderate()))
            self._built_record().moderation_box.children = self._mod.parts
        return self._mod

    @property
    def moderator(self) -> w.Dropdown:
        return self.moderation.moderator

    @contextmanager
    def _quiet(self):
        """Changes made here are the form's own (an audit or a list shown), not a person's:
        no live checks for them."""
        keep, self._filling = self._filling, True
        try:
            yield
        finally:
            self._filling = keep

    # -- lists from the store -------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the people, EHM numbers and saved audits (the page may be old)."""
        m, me = self.model, access.person(self.db)
        with self._quiet():
            people, staff = (audits.practitioners(self.db),
                             audits.practitioners(self.db, auditors_only=False))
            if me.practitioner_id not in {None, *(p["id"] for p in people)}:  # not flagged
                people += [p for p in staff if p["id"] == me.practitioner_id]
            m.logged_in, m.acting_id = not me.one_person, me.practitioner_id
            m.show_people(people)
            if m.logged_in and m.audit_id is None:  # a new audit is the login's own
                m.case.auditor1_id = m.acting_id
            m.show_staff(staff)
            m.case.ehm_numbers = audits.case_numbers(self.db)
        self.finder.show_people(people)
        self._fill_pick()

    def _fill_pick(self) -> None:
        """Show the saved audits found again: a save may change what is found."""
        self.finder.search()

    # -- showing an audit -------------------------------------------------------------------
    def fill(self, a: dict) -> None:
        """Show an audit (a dict from ``audits.load``, or {} for a new one)."""
        m = self.model
        with self._quiet():
            m.update(a)
            self._show_episodes(m.case.ehm_number, a.get("episode_id"))
            self._show_case()
            if m.locked:
                self.moderation  # noqa: B018 - built now, to show the moderation below
                m.moderation.update(a)
                if m.logged_in:  # the moderator is the login, not a choice
                    m.moderation.moderator_id = m.acting_id

    def _show_state(self) -> None:
        bold, rest = self.model.state_line()
        self.state.value = f"<b>{esc(bold)}</b>{esc(rest)}"

    # -- live checks ------------------------------------------------------------------------
    def _show_episodes(self, ehm: str, chosen: int | None = None) -> None:
        eps = episodes.episodes_for(self.db, ehm) if ehm else []
        self.model.case.show_episodes(eps, chosen)
        if ehm and not eps:
            self.model.note("episode", f"No case has the EHM number '{ehm}': check it.")

    def _ehm_changed(self) -> None:
        if self._filling:
            return
        with self._quiet():
            self._show_episodes(self.model.case.ehm_number.strip())
        self._case_changed()

    def _case_changed(self) -> None:
        if self._filling:
            return
        self._show_case()
        # Say at once who may not audit this case, or a date that cannot be right; fields
        # not filled in yet are not nagged about until a save.
        c, m = self.model.case, self.model
        found = audits.problems(self.db, m.as_audit())
        for key, value in (("auditor1", c.auditor1_id), ("auditor2", c.auditor2_id),
                           ("audit_date", c.audit_date)):
            m.note(key, found.get(key) if value is not None else None)
        if c.episode_id is not None:
            m.note("episode", None)

    def _show_case(self) -> None:
        c = self.model.case
        info = episodes.case_information(self.db, c.episode_id)
        c.information = access.case_details(self.db, info) or {}  # not theirs: no names

    # -- rule messages ----------------------------------------------------------------------
    def _show_rule_error(self, e, saved: int | None = None) -> None:
        if isinstance(e, audits.AuditRuleError):
            loose = self.model.place(e.problems)
            n = len(e.problems)
            first = (f"Saved as draft no. {saved} but not submitted" if saved is not None
                     else "Not done")
            self.messages.blocked(
                f"{first}: {n} thing{'s' if n != 1 else ''} to put right"
                + (", each shown next to its field, marked \"Put right\"." if len(loose) < n else "."),
                list(e.problems.values()))
        elif isinstance(e, audits.StaleRecord):
            self.messages.blocked(f"{e}. To reload it, find it under Saved audits and press "
                                  "it; what you typed stays on the form until then, to copy.")
        else:
            self.messages.blocked(str(e))

    # -- the buttons ------------------------------------------------------------------------
    def new(self) -> None:
        self.fill({})
        self.model.record, self.model.case_note = "", None
        self.messages.info("New audit: choose the case, the auditors and the date, then fill "
                           "in the rest. Save a draft as often as you like.")

    def open(self, audit_id: int) -> None:
        a = audits.load(self.db, audit_id)
        self.fill(a)
        self.model.record, self.model.case_note = "", None
        self.messages.info(f"Opened audit no. {audit_id} ({audits.STATUS_LABELS[a['status']]}"
                           f", last saved {uk_time(a['updated_at'])}).")

    def _save(self) -> int:
        m = self.model
        m.saved(audits.save_and_load(self.db, m.as_audit(), audit_id=m.audit_id))
        return m.audit_id

    def save(self) -> None:
        audit_id = self._save()
        todo = audits.problems(self.db, self.model.as_audit())
        self.model.place(todo, todo=True)
        self._fill_pick()
        at = dt.datetime.now().strftime("%H:%M")
        if todo:
            self.messages.ok(f"Saved draft no. {audit_id} at {at}. Before it can be submitted, "
                             f"{len(todo)} thing{'s' if len(todo) != 1 else ''} still to do "
                             "(each marked \"Still to do\" next to its field).")
        else:
            self.messages.ok(f"Saved draft no. {audit_id} at {at}. It is complete and ready "
                             "to submit.")

    def submit(self) -> None:
        audit_id = self._save()
        self._fill_pick()
        try:
            audits.submit(self.db, audit_id, expected_version=self.model.version)
        except audits.AuditRuleError as e:
            self._show_rule_error(e, saved=audit_id)
            return
        self.fill(audits.load(self.db, audit_id))
        self._fill_pick()
        self.model.case_note = audits.case_note(self.db, audit_id)
        self.messages.ok(f"Submitted audit no. {audit_id}. Copy the case note below to the "
                         "case record, and print the record for the file.")

    def reopen(self) -> None:
        m = self.model
        if m.audit_id is None:
            return
        audits.reopen(self.db, m.audit_id, m.reopen_reason, by=m.auditor_name(),
                      expected_version=m.version)
        m.reopen_reason = ""
        self.fill(audits.load(self.db, m.audit_id))
        self._fill_pick()
        self.messages.ok(f"Reopened audit no. {m.audit_id} as a draft; the reason is kept "
                         "in its history. Save and submit it again when done.")

    def moderate(self) -> None:
        m, mod = self.model, self.model.moderation
        grades = mod.changed()
        try:
            audits.moderate(self.db, m.audit_id, mod.moderator_id, grades, mod.reasons_given(),
                            expected_version=m.version)
        except audits.AuditRuleError as e:
            mapped = {(k if k == "moderator" else f"mod-{k}"): v for k, v in e.problems.items()}
            raise audits.AuditRuleError(mapped) from None
        self.fill(audits.load(self.db, m.audit_id))
        self._fill_pick()
        changed = len(grades)
        self.messages.ok(f"Moderation recorded for audit no. {m.audit_id}: "
                         + (f"{changed} grade{'s' if changed != 1 else ''} changed; both "
                            "grades are kept." if changed else "agreed with every grade."))

    def print(self) -> None:
        m = self.model
        if m.audit_id is None:
            self.messages.info("Save the audit first, then print it.")
            return
        path = audits.print_record(self.db, m.audit_id, out_dir=_reports_dir())
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        m.record = (
            f'<p>Record written to <code>{esc(path.resolve())}</code>. '
            f'<a download="{esc(path.name)}" href="data:text/html;base64,{data}" '
            f'class="ehkit-download">Download {esc(path.name)}</a> to save it on the case '
            "record. Case note for the case record (guidance 2):</p>")
        m.case_note = audits.case_note(self.db, m.audit_id)
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
