"""The audit form's state as traitlets models, one per panel, holding no widgets.

The views (:mod:`ehkit.forms.audit_views`) bind their widgets to these traits with ``link``
(what a person types) and ``dlink`` (what follows from the state: locked inputs, option lists);
the form (:mod:`ehkit.forms.audit`) asks :mod:`ehkit.audits` and puts the answers here. So what
the form does can be tested by setting traits, without a browser.

A template gives the keys: one :class:`Value` per checklist item, comment, question and grade.
"""

from __future__ import annotations

import datetime as dt

from traitlets import Any, Bool, Dict, HasTraits, Instance, List, Unicode

from .. import audits
from ..rules.audit import overall_reflects_sections
from ..template import OVERALL, Template
from .common import to_date


def locks(status: str) -> bool:
    """Not a draft: nothing on the form changes until the audit is reopened."""
    return status != "draft"


class Value(HasTraits):
    """One answer on the form: a grade, a Yes / No, a checklist status, a comment or a note."""

    value = Any(None)


def _person(p: dict) -> str:
    """How a practitioner is offered: name (role, agency)."""
    return f"{p['name']} ({p['role'] or 'no role'}, {p['agency']})"


def _ids(options: list) -> set:
    return {v for _, v in options}


class CaseModel(HasTraits):
    """Case information: the date, the auditors and the episode (found by its EHM number)."""

    audit_date = Instance(dt.date, allow_none=True)
    auditor1_id = Any(None)
    auditor2_id = Any(None)
    ehm_number = Unicode("")
    ehm_numbers = List()  # every EHM number in the store, offered as the auditor types
    episodes = List()  # (label, id) of the episodes with that EHM number
    episode_id = Any(None)
    information = Dict()  # the episode as the store has it (``episodes.case_information``)

    def show_episodes(self, episodes: list[dict], chosen=None) -> None:
        """Offer ``episodes`` (from ``episodes.episodes_for``); keep ``chosen``, else the first."""
        self.episodes = [(f"episode from {e['start_date']} ({e['status']})", e["id"])
                         for e in episodes]
        ids = [e["id"] for e in episodes]
        self.episode_id = chosen if chosen in ids else (ids[0] if ids else None)


OUTSIDE = "outside"  # "By Whom": someone outside the service, named in free text


class ActionModel(HasTraits):
    """One recommended action; its values follow the template's action columns.

    Who will do it is ``owner``: a practitioner's id (the action's owner, whom the tracker
    files it under), or OUTSIDE with the name typed in ``values["by_whom"]``."""

    note = Any(None)  # (message, todo) shown under the row, or None
    owner = Any(None)

    def __init__(self, columns, action: dict | None = None, staff: dict[str, int] | None = None):
        """``staff``: practitioners' ids by name, to own an action saved with a name only."""
        super().__init__()
        a = action or {}
        self.id = a.get("id")
        named = (staff or {}).get(a.get("by_whom"))
        self.owner = a.get("owner_id") or named or (OUTSIDE if a.get("by_whom") else None)
        # Date columns hold dates (a date picker), the others text; "by whom" only an
        # outsider's name (a practitioner's is the store's).
        self.values = {c.value: Value(value=to_date(a.get(c.value)) if c.value.endswith("_date")
                                      else a.get(c.value) or "")
                       for c in columns if c.value != "number"}
        if "by_whom" in self.values and self.owner != OUTSIDE:
            self.values["by_whom"].value = ""

    def filled(self) -> bool:
        return self.owner is not None or any(v.value for v in self.values.values())

    def as_audit(self, names: dict[int, str]) -> dict:
        """The action for ``ehkit.audits``; ``names``: practitioners' names by id."""
        a = {k: v.value.isoformat() if isinstance(v.value, dt.date) else v.value
             for k, v in self.values.items()}
        if self.owner != OUTSIDE:
            a["by_whom"] = names.get(self.owner)
        return {"id": self.id, **a, "owner_id": None if self.owner == OUTSIDE else self.owner}


class ModerationModel(HasTraits):
    """Auditor 2 or a moderator agrees with each grade or changes it with a reason."""

    moderator_id = Any(None)
    mine = Dict()  # key -> the auditor's grade, as the audit was opened

    def __init__(self, tpl: Template):
        super().__init__()
        self.tpl = tpl
        self.labels = {**{s.key: f"{s.number}. {s.title}" for s in tpl.graded_sections},
                       OVERALL: tpl.overall_grading_label}
        self.grades = {k: Value() for k in self.labels}  # None: agrees with the auditor
        self.reasons = {k: Value(value="") for k in self.labels}

    def choices(self, key: str) -> list[tuple[str, int | None]]:
        """Agree with the auditor's grade (first), or one of the others, Inadequate first."""
        mine = self.mine.get(key)
        return [(f"Agree: {self.tpl.grade_label(mine)}", None)] + [
            (g.label, g.value) for g in reversed(self.tpl.grades) if g.value != mine]

    def update(self, a: dict) -> None:
        """Show the moderation of audit ``a`` (from ``audits.load``) that counts; one from
        before a reopen is history, not offered again."""
        self.mine = {k: a["overall_grade"] if k == OVERALL
                     else (a["answers"].get(k) or {}).get("grade") for k in self.labels}
        latest = audits.standing_moderation(a)
        for key in self.labels:
            m = latest.get(key) or {}
            changed = m.get("moderated_grade")
            self.grades[key].value = changed if changed != self.mine[key] else None
            self.reasons[key].value = m.get("reason") or ""

    def changed(self) -> dict[str, int]:
        return {k: v.value for k, v in self.grades.items() if v.value is not None}

    def reasons_given(self) -> dict[str, str]:
        return {k: v.value for k, v in self.reasons.items()}


class AuditModel(HasTraits):
    """The whole audit as the form shows it; :meth:`as_audit` is what ``ehkit.audits`` takes."""

    audit_id = Any(None)
    status = Unicode("draft")
    version = Any(None)  # of the audit as loaded: every write passes it back
    summary = Unicode("")
    overall_reasons = Unicode("")
    actions = List()  # ActionModel, in the order shown
    people = List()  # (label, id) of those who may audit or moderate
    staff = List()  # (label, id) of every practitioner, offered for "By Whom"
    notes = Dict()  # field key -> (message, todo): the rule message shown beside the field
    reopen_reason = Unicode("")
    record = Unicode("")  # where the printable record went, with its download link
    case_note = Any(None)  # the case note to copy to the case record; None: not shown
    # Logins in use (ehkit.access): auditor 1 of a new audit and the moderator are the
    # logged-in person's practitioner, shown and not picked. Off on one person's machine.
    logged_in = Bool(False)
    acting_id = Any(None)

    def __init__(self, tpl: Template):
        super().__init__()
        self.tpl = tpl
        self.case = CaseModel()
        self.moderation = ModerationModel(tpl)
        self.checklist = {c.value: (Value(), Value(value="")) for c in tpl.checklist}
        self.comments = {i.key: Value(value="") for i in tpl.items}
        self.responses = {q.key: Value() for q in tpl.questions}
        self.grades = {**{s.key: Value() for s in tpl.graded_sections}, OVERALL: Value()}
        self.note_keys: set[str] = set()  # the fields with a place for a note (views add them)
        self.staff_names: dict[int, str] = {}
        self._overall_said: str | None = None  # what check_overall last said
        for g in self.grades.values():
            g.observe(lambda _c: self.check_overall(), "value")

    @property
    def locked(self) -> bool:
        return locks(self.status)

    # -- to and from ehkit.audits ---------------------------------------------------------
    def as_audit(self) -> dict:
        """The form's values as an audit dict for ``ehkit.audits``."""
        answers: dict[str, dict] = {}
        learning = None
        for item in self.tpl.items:
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
        c = self.case
        return {
            "id": self.audit_id, "template": self.tpl.key, "version": self.version,
            "episode_id": c.episode_id, "auditor1_id": c.auditor1_id,
            "auditor2_id": c.auditor2_id, "audit_date": c.audit_date,
            "summary": self.summary, "overall_grade": self.grades[OVERALL].value,
            "overall_reasons": self.overall_reasons, "learning": learning, "answers": answers,
            "checklist": {k: {"status": s.value, "note": n.value}
                          for k, (s, n) in self.checklist.items()},
            "actions": [r.as_audit(self.staff_names) for r in self.actions],
        }

    def update(self, a: dict) -> None:
        """Show audit ``a`` (from ``audits.load``, or {} for a new one). The episodes of its
        EHM number are the store's to give: :meth:`CaseModel.show_episodes`."""
        self.audit_id, self.version = a.get("id"), a.get("version")
        c, people = self.case, _ids(self.people)
        c.audit_date = to_date(a.get("audit_date"))
        c.auditor1_id = a.get("auditor1_id") if a.get("auditor1_id") in people else None
        if self.logged_in and not a.get("id"):
            c.auditor1_id = self.acting_id
        c.auditor2_id = a.get("auditor2_id") if a.get("auditor2_id") in people else None
        c.ehm_number = (a.get("case") or {}).get("ehm_number") or ""
        self.summary = a.get("summary") or ""
        answers = a.get("answers") or {}
        for item in self.tpl.items:
            text = a.get("learning") if item.learning else (
                answers.get(item.key) or {}).get("comment")
            self.comments[item.key].value = text or ""
        for key, g in self.grades.items():
            g.value = a.get("overall_grade") if key == OVERALL else (
                answers.get(key) or {}).get("grade")
        for key, r in self.responses.items():
            r.value = (answers.get(key) or {}).get("response")
        self.overall_reasons = a.get("overall_reasons") or ""
        checklist = a.get("checklist") or {}
        for k, (s, n) in self.checklist.items():
            s.value = (checklist.get(k) or {}).get("status")
            n.value = (checklist.get(k) or {}).get("note") or ""
        staff = {name: pid for pid, name in self.staff_names.items()}
        self.actions = [ActionModel(self.tpl.action_columns, x, staff)
                        for x in a.get("actions") or []]
        self.place({})
        self.check_overall()
        self.status = a.get("status") or "draft"

    def saved(self, a: dict) -> None:
        """After a save (``a`` from ``audits.save_and_load``): its number, version and status,
        and the filled actions' ids, so the next save updates them rather than adds them."""
        self.audit_id, self.version, self.status = a["id"], a["version"], a["status"]
        for row, stored in zip([r for r in self.actions if r.filled()], a["actions"],
                               strict=False):
            row.id = stored["id"]

    # -- actions ----------------------------------------------------------------------------
    def add_action(self) -> ActionModel:
        row = ActionModel(self.tpl.action_columns)
        self.actions = [*self.actions, row]
        return row

    def remove_action(self, row: ActionModel) -> None:
        self.actions = [r for r in self.actions if r is not row]

    # -- lists from the store ------------------------------------------------------------
    def show_people(self, people: list[dict]) -> None:
        """Offer ``people`` (``audits.practitioners``); someone no longer offered is unchosen."""
        self.people = [(_person(p), p["id"]) for p in people]
        ids = _ids(self.people)
        for model, name in ((self.case, "auditor1_id"), (self.case, "auditor2_id"),
                            (self.moderation, "moderator_id")):
            if getattr(model, name) not in ids:
                setattr(model, name, None)

    def show_staff(self, people: list[dict]) -> None:
        """Offer every practitioner (``audits.practitioners(auditors_only=False)``) for
        "By Whom"."""
        self.staff_names = {p["id"]: p["name"] for p in people}
        self.staff = [(_person(p), p["id"]) for p in people]

    def auditor_name(self) -> str | None:
        label = dict(self.people).get(self.case.auditor1_id)
        return label.split(" (")[0] if label else None

    # -- rule messages -------------------------------------------------------------------
    def note(self, key: str, message: str | None, *, todo: bool = False) -> None:
        """Show ``message`` beside field ``key`` (None clears it); other notes stay."""
        notes = {k: v for k, v in self.notes.items() if k != key}
        self.notes = {**notes, key: (message, todo)} if message else notes

    def place(self, found: dict[str, str], *, todo: bool = False) -> list[str]:
        """Put each rule message beside its field (an action's beside the nth filled row);
        return the messages with no field on the form, to show in the message line."""
        notes, loose, by_row = {}, [], {}
        for key, msg in found.items():
            if key in self.note_keys:
                notes[key] = (msg, todo)
            elif key.startswith("actions.") and key.split(".")[1].isdigit():
                by_row.setdefault(int(key.split(".")[1]), []).append(msg)
            else:
                loose.append(msg)
        filled = [r for r in self.actions if r.filled()]
        for r in self.actions:
            r.note = None
        for n, msgs in by_row.items():
            if 0 < n <= len(filled):
                filled[n - 1].note = (" ".join(msgs), todo)
            else:
                loose += msgs
        self.notes = notes
        return loose

    def check_overall(self) -> None:
        """As soon as a grade changes, say beside the overall grade whether the section grades
        allow it (rule AUDIT-OVERALL-REFLECTS, as a save and a submit check it); a note
        from a save about something else stays."""
        sections = {k: g.value for k, g in self.grades.items() if k != OVERALL}
        why = overall_reflects_sections(self.tpl, sections, self.grades[OVERALL].value)
        shown = (self.notes.get(OVERALL) or (None,))[0]
        if why or shown == self._overall_said:
            self.note(OVERALL, why)
        self._overall_said = why

    def state_line(self) -> tuple[str, str]:
        """What the top of the form says about the audit shown: (in bold, then plain)."""
        if self.audit_id is None:
            return "New audit", " - not saved yet."
        return (f"Audit no. {self.audit_id}", f" - {audits.STATUS_LABELS[self.status]}"
                + (" (reopen it to make changes)" if self.locked else ""))
