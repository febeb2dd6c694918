"""Closing the loop with people: workers, their managers, and the children and families.

After an audit (guidance 11, 13-16 and the framework's "Feedback and recommendations"):

- the worker is told their case is being audited (:func:`record_worker_notified`);
- a reflective discussion is held with the worker and their line manager
  (:func:`record_discussion`; :func:`discussions_to_hold` lists those still to hold);
- every assessment author gets a short feedback summary (:func:`feedback_summary`);
- where practice requires improvement or is inadequate, the Early Help Coordinator holds a
  1-1 meeting with the professional (:func:`record_one_to_one`);
- where it is inadequate, a letter to the author's manager is drafted from an editable
  template (:func:`draft_letter`); nothing is emailed;
- authors with repeated poor audits are flagged (:func:`repeat_poor_authors`).

The assessment author is the episode's lead professional; their manager is the lead
professional's line manager, else the team manager named on the episode. The grade that
counts is the final one (the moderator's where moderated: view ``final_grades``).

Service-user feedback (:func:`record_service_user_feedback`, :func:`import_service_user_feedback`)
comes from the child or young person or the parent or carer, with rated questions and
"concern raised" themes, both settings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import sqlite_utils

from . import cases, home, records, rules, spreadsheet
from . import db as store
from . import template as templates
from .actions import as_date
from .dates import uk
from .errors import EhkitError
from .settings import get as setting

COMPLETED = ("submitted", "moderated")  # audit statuses whose follow-up is due

RESPONDENTS = {"child_young_person": "Child or young person", "parent_carer": "Parent or carer"}
STAGES = {"end_of_assessment": "End of assessment", "taf_meeting": "Team Around the Family meeting",
          "closure": "Closure"}


# Service-user feedback's rules, for the form and the import. An import also uses the case
# import's codes for what every import checks: MISSING_VALUE, BAD_DATE, IMPOSSIBLE_DATE,
# DUPLICATE_ROW (ehkit.cases).
rules.register_all({
    "NOT_A_RECORD": "the feedback, or its ratings, is not given as a record of its fields",
    "NOT_TEXT": "the comments, the concern's theme or its detail is not text",
    "DATE_IN_FUTURE": "the date the feedback was given is in the future",
    "UNKNOWN_EPISODE": "no episode with this EHM number had begun by the date the feedback was "
                       "given (or began on the episode_start given)",
    "BEFORE_EPISODE": "the feedback is dated before the episode began",
    "UNKNOWN_CHOICE": "not one of the choices: the respondent, the stage, or yes or no for "
                      "whether a concern was raised",
    "UNKNOWN_QUESTION": "not a feedback question (setting service_user_questions)",
    "BAD_RATING": "a rating is not a whole number from 1 to 5",
    "MISSING_THEME": "a concern was raised but its theme is not given",
    "UNKNOWN_THEME": "the concern's theme is not one of the setting concern_themes",
    "THEME_WITHOUT_CONCERN": "a theme is given but no concern is marked as raised",
    "TOO_MANY_CELLS": "a row of the file has more cells than there are columns",
}, kind="feedback")


class FeedbackError(EhkitError):
    """Feedback cannot be recorded as asked; ``problems`` maps field to reason."""

    def __init__(self, message: str, problems: Mapping[str, str] | None = None):
        self.problems = dict(problems or {})
        super().__init__(message)


# -- the audit and the people around it -------------------------------------------------
_AUDIT = """
SELECT a.id, a.episode_id, a.template, a.status, a.audit_date, a.auditor1_id, a.auditor2_id,
       a.summary, a.overall_reasons, a.learning,
       (SELECT grade FROM final_overall f WHERE f.audit_id = a.id) AS grade,
       e.ehm_number, e.lead_professional_id AS author_id, w.name AS author, w.role AS author_role,
       w.team AS author_team, ag.name AS author_agency,
       coalesce(w.line_manager_id, e.team_manager_id) AS manager_id, m.name AS manager,
       m.role AS manager_role
FROM audits a
JOIN episodes e ON e.id = a.episode_id
LEFT JOIN practitioners w ON w.id = e.lead_professional_id
LEFT JOIN agencies ag ON ag.id = w.agency_id
LEFT JOIN practitioners m ON m.id = coalesce(w.line_manager_id, e.team_manager_id)
"""


def _number(value, what: str) -> int:
    return records.record_id(value, what, FeedbackError)


def _words(value, field: str, what: str) -> str | None:
    """Text a person typed, stripped (None when blank); FeedbackError when it is not text."""
    if not isinstance(value, str | None):
        raise FeedbackError(f"the {what} should be text, not {type(value).__name__}",
                            {field: "not text"})
    return (value or "").strip() or None


def audit_people(db: sqlite_utils.Database, audit_id: int) -> dict:
    """The audit with its final overall grade, author (lead professional) and their manager."""
    audit_id = _number(audit_id, "audit")
    rows = list(db.query(_AUDIT + " WHERE a.id = :id", {"id": audit_id}))
    if not rows:
        raise FeedbackError(f"there is no audit {audit_id}: check the audit number")
    return rows[0]


def _completed(db, audit_id: int) -> dict:
    a = audit_people(db, audit_id)
    if a["status"] not in COMPLETED:
        raise FeedbackError(f"audit {audit_id} is still a draft: submit it before recording "
                            "what followed it")
    return a


def is_poor(grade: int | None, template_key: str) -> bool:
    """Requires Improvement or Inadequate: a grade outside the template's acceptable ones."""
    return grade is not None and grade not in templates.load(template_key).acceptable


def is_inadequate(grade: int | None, template_key: str) -> bool:
    return grade is not None and grade == templates.load(template_key).worst_grade


def _day_between(day, earliest: str, what: str, today=None) -> dt.date:
    d = as_date(day, what)
    if d < as_date(earliest):
        raise FeedbackError(f"the {what} {d} is before the audit ({earliest})", {what: "too early"})
    if d > as_date(today or dt.date.today()):
        raise FeedbackError(f"the {what} {d} is in the future", {what: "in the future"})
    return d


# -- worker notified, feedback summary sent ---------------------------------------------
def record_worker_notified(db: sqlite_utils.Database, audit_id: int, on, *,
                           actor: str | None = None, today=None) -> None:
    """The day the worker was told their case is being audited (guidance 11); a draft audit
    may have it, as the worker is told when the case is chosen."""
    day = as_date(on, "date the worker was notified")
    if day > as_date(today or dt.date.today()):
        raise FeedbackError(f"the date the worker was notified ({day}) is in the future",
                            {"worker_notified_date": "in the future"})
    with store.acting_as(actor=actor), store.transaction(db):
        audit_people(db, audit_id)
        db["audit_followups"].upsert({"audit_id": audit_id,
                                      "worker_notified_date": day.isoformat()}, pk="audit_id")


def record_feedback_sent(db: sqlite_utils.Database, audit_id: int, on, *,
                         actor: str | None = None, today=None) -> None:
    """The day the feedback summary was returned to the assessment author."""
    # Checked and written in one transaction: the audit cannot be reopened in between.
    with store.acting_as(actor=actor), store.transaction(db):
        a = _completed(db, audit_id)
        day = _day_between(on, a["audit_date"], "date the feedback was sent", today)
        db["audit_followups"].upsert({"audit_id": audit_id,
                                      "feedback_sent_date": day.isoformat()}, pk="audit_id")


def followup(db: sqlite_utils.Database, audit_id: int) -> dict:
    """Everything recorded after one audit: dates, discussions, 1-1 meetings, letters."""
    a = audit_people(db, audit_id)
    f = db.execute("SELECT worker_notified_date, feedback_sent_date FROM audit_followups "
                   "WHERE audit_id = ?", [audit_id]).fetchone() or (None, None)
    return {
        "audit": a,
        "worker_notified_date": f[0],
        "feedback_sent_date": f[1],
        "discussions": discussions(db, audit_id),
        "one_to_ones": list(db.query("SELECT * FROM one_to_one_meetings WHERE audit_id = ? "
                                     "ORDER BY held_on, id", [audit_id])),
        "letters": list(db.query("SELECT * FROM letters WHERE audit_id = ? ORDER BY id",
                                 [audit_id])),
        "needs_one_to_one": is_poor(a["grade"], a["template"]),
        "needs_letter": is_inadequate(a["grade"], a["template"]),
    }


# -- the reflective discussion ----------------------------------------------------------
def attendee_role(audit: Mapping, practitioner_id: int) -> str:
    """worker (the lead professional), line_manager (theirs), auditor, or other."""
    if practitioner_id == audit["author_id"]:
        return "worker"
    if practitioner_id == audit["manager_id"]:
        return "line_manager"
    if practitioner_id in (audit["auditor1_id"], audit["auditor2_id"]):
        return "auditor"
    return "other"


def record_discussion(db: sqlite_utils.Database, audit_id: int, held_on,
                      attendee_ids: Iterable[int], learning: str, notes: str | None = None, *,
                      actor: str | None = None, today=None) -> int:
    """Record the discussion after an audit: when, who attended, what was learned."""
    if isinstance(attendee_ids, str | bytes | Mapping) or not isinstance(attendee_ids, Iterable):
        raise FeedbackError("name who attended as a list of practitioner numbers",
                            {"attendees": "not a list"})
    ids = list(dict.fromkeys(_number(i, "attendee") for i in attendee_ids))
    learning = _words(learning, "learning", "learning")
    notes = _words(notes, "notes", "notes")
    with store.acting_as(actor=actor), store.transaction(db):
        return _record_discussion(db, _completed(db, audit_id), held_on, ids, learning, notes,
                                  today)


def _record_discussion(db, a: Mapping, held_on, ids: list[int], learning: str | None,
                       notes: str | None, today) -> int:
    audit_id = a["id"]
    day = _day_between(held_on, a["audit_date"], "discussion date", today)
    problems = {}
    if not ids:
        problems["attendees"] = "name who attended: the worker and their line manager"
    marks = ",".join("?" * len(ids))
    known = {r[0] for r in db.execute(f"SELECT id FROM practitioners WHERE id IN ({marks})", ids)}
    if set(ids) - known:
        problems["attendees"] = f"no practitioner(s) {sorted(set(ids) - known)}"
    if learning is None:
        problems["learning"] = "say what was learned from the discussion"
    if problems:
        raise FeedbackError(f"audit {audit_id}: the discussion was not saved: "
                            + "; ".join(f"{k}: {v}" for k, v in problems.items()), problems)
    did = db["discussions"].insert({"audit_id": audit_id, "held_on": day.isoformat(),
                                    "learning": learning, "notes": notes}).last_pk
    db["discussion_attendees"].insert_all(
        {"discussion_id": did, "practitioner_id": i, "role": attendee_role(a, i)} for i in ids)
    return did


def discussions(db: sqlite_utils.Database, audit_id: int) -> list[dict]:
    out = list(db.query("SELECT * FROM discussions WHERE audit_id = ? ORDER BY held_on, id",
                        [audit_id]))
    for d in out:
        d["attendees"] = list(db.query(
            "SELECT p.id, p.name, da.role FROM discussion_attendees da JOIN practitioners p"
            " ON p.id = da.practitioner_id WHERE da.discussion_id = ? ORDER BY da.role, p.name",
            [d["id"]]))
    return out


def discussions_to_hold(db: sqlite_utils.Database, on) -> list[dict]:
    """Submitted or moderated audits dated on or before ``on`` with no discussion held by then."""
    on = as_date(on, "day").isoformat()
    rows = list(db.query(
        _AUDIT + """ WHERE a.status IN ('submitted', 'moderated') AND a.audit_date <= :on
        AND NOT EXISTS (SELECT 1 FROM discussions d WHERE d.audit_id = a.id AND d.held_on <= :on)
        ORDER BY a.audit_date, a.id""", {"on": on}))
    for r in rows:
        r["days_since_audit"] = (as_date(on) - as_date(r["audit_date"])).days
    return rows


def discussion_summary(db: sqlite_utils.Database, start, end) -> dict:
    """Of the audits dated in the period: how many had a discussion (by ``end``), and how many
    of those were attended by the worker and by their line manager (guidance 13-15)."""
    p = {"start": as_date(start).isoformat(), "end": as_date(end).isoformat()}
    row = db.execute("""
        SELECT count(*),
          coalesce(sum(EXISTS (SELECT 1 FROM discussions d WHERE d.audit_id = a.id
                                AND d.held_on <= :end)), 0),
          coalesce(sum(EXISTS (SELECT 1 FROM discussions d JOIN discussion_attendees t
                                ON t.discussion_id = d.id WHERE d.audit_id = a.id
                                AND d.held_on <= :end AND t.role = 'worker')), 0),
          coalesce(sum(EXISTS (SELECT 1 FROM discussions d JOIN discussion_attendees t
                                ON t.discussion_id = d.id WHERE d.audit_id = a.id
                                AND d.held_on <= :end AND t.role = 'line_manager')), 0)
        FROM audits a WHERE a.status IN ('submitted', 'moderated')
          AND a.audit_date BETWEEN :start AND :end""", p).fetchone()
    return dict(zip(("audits", "discussed", "with_worker", "with_line_manager"), row, strict=True))


# -- 1-1 meetings -----------------------------------------------------------------------
def record_one_to_one(db: sqlite_utils.Database, audit_id: int, held_on, notes: str, *,
                      professional_id: int | None = None, held_by_id: int | None = None,
                      actor: str | None = None, today=None) -> int:
    """The Early Help Coordinator's 1-1 with the professional, for RI or Inadequate audits."""
    notes = _words(notes, "notes", "notes of the 1-1 meeting")
    professional_id, held_by_id = (None if i is None else _number(i, "practitioner")
                                   for i in (professional_id, held_by_id))
    # Checked and written in one transaction: the grade that needs the meeting cannot change
    # in between.
    with store.acting_as(actor=actor), store.transaction(db):
        a = _completed(db, audit_id)
        return _record_one_to_one(db, a, held_on, notes, professional_id, held_by_id, today)


def _record_one_to_one(db, a: Mapping, held_on, notes: str | None, professional_id: int | None,
                       held_by_id: int | None, today) -> int:
    audit_id = a["id"]
    if not is_poor(a["grade"], a["template"]):
        label = templates.load(a["template"]).grade_label(a["grade"])
        raise FeedbackError(f"audit {audit_id} is graded {label} overall: a 1-1 meeting is for "
                            "audits graded Requires Improvement or Inadequate")
    day = _day_between(held_on, a["audit_date"], "meeting date", today)
    if notes is None:
        raise FeedbackError(f"audit {audit_id}: write notes of the 1-1 meeting",
                            {"notes": "required"})
    professional = professional_id or a["author_id"]
    if professional is None:
        raise FeedbackError(f"audit {audit_id}: the episode has no lead professional; "
                            "name the professional met")
    for who in {professional, held_by_id} - {None}:
        if not db.execute("SELECT 1 FROM practitioners WHERE id = ?", [who]).fetchone():
            raise FeedbackError(f"audit {audit_id}: there is no practitioner {who}: choose "
                                "who met from the list", {"practitioner": "not in the store"})
    return db["one_to_one_meetings"].insert({
        "audit_id": audit_id, "professional_id": professional, "held_by_id": held_by_id,
        "held_on": day.isoformat(), "notes": notes}).last_pk


def one_to_ones_to_hold(db: sqlite_utils.Database, on) -> list[dict]:
    """RI or Inadequate audits dated on or before ``on`` with no 1-1 meeting held by then."""
    on = as_date(on, "day").isoformat()
    rows = db.query(_AUDIT + """ WHERE a.status IN ('submitted', 'moderated')
        AND a.audit_date <= :on AND NOT EXISTS (SELECT 1 FROM one_to_one_meetings o
            WHERE o.audit_id = a.id AND o.held_on <= :on)
        ORDER BY a.audit_date, a.id""", {"on": on})
    return [r for r in rows if is_poor(r["grade"], r["template"])]


# -- repeated poor audits ---------------------------------------------------------------
def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` months earlier (the month's last day where it is shorter)."""
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    m += 1
    last = (dt.date(y + m // 12, m % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(y, m, min(day.day, last))


def repeat_poor_authors(db: sqlite_utils.Database, on, *, count: int | None = None,
                        months: int | None = None) -> list[dict]:
    """Authors with at least ``count`` RI/Inadequate audits dated within the ``months``
    months up to ``on`` (after the same day ``months`` earlier, up to ``on`` inclusive).

    Defaults are the settings ``feedback.repeat_poor_count`` and ``repeat_poor_months``.
    Each row: the author, their manager (whom the Service Manager notifies), the poor
    audits, and the author's latest audit in the window with its grade.
    """
    on = as_date(on, "day")
    count = count or setting("feedback", "repeat_poor_count")
    months = months or setting("feedback", "repeat_poor_months")
    since = months_before(on, months)
    rows = db.query(_AUDIT + """ WHERE a.status IN ('submitted', 'moderated')
        AND a.audit_date > :since AND a.audit_date <= :on AND e.lead_professional_id IS NOT NULL
        ORDER BY a.audit_date, a.id""", {"since": since.isoformat(), "on": on.isoformat()})
    by_author: dict[int, dict] = {}
    for r in rows:
        a = by_author.setdefault(r["author_id"], {
            "author_id": r["author_id"], "author": r["author"], "team": r["author_team"],
            "agency": r["author_agency"], "manager_id": r["manager_id"], "manager": r["manager"],
            "poor_audits": 0, "audit_ids": [], "audits_in_window": 0})
        a["audits_in_window"] += 1
        a["latest_audit_date"], a["latest_grade"] = r["audit_date"], r["grade"]
        a["latest_grade_label"] = templates.load(r["template"]).grade_label(r["grade"])
        if is_poor(r["grade"], r["template"]):
            a["poor_audits"] += 1
            a["audit_ids"].append(r["id"])
    flagged = [a for a in by_author.values() if a["poor_audits"] >= count]
    return sorted(flagged, key=lambda a: (-a["poor_audits"], a["author"] or "", a["author_id"]))


# -- the feedback summary and the letter --------------------------------------------------
def letter_context(db: sqlite_utils.Database, audit_id: int, *, on=None,
                   signed_by_id: int | None = None) -> dict:
    """What the feedback summary and the letter say about one audit (free text unescaped:
    the templates escape it)."""
    a = _completed(db, audit_id)
    tpl = templates.load(a["template"])
    grades = {r[0]: r[1] for r in db.execute(
        "SELECT key, grade FROM final_grades WHERE audit_id = ?", [audit_id])}
    comments: dict[str, list[str]] = {}
    for key, comment in db.execute("SELECT key, comment FROM answers WHERE audit_id = ? AND "
                                   "comment IS NOT NULL AND trim(comment) <> ''", [audit_id]):
        comments.setdefault(key, []).append(comment)
    sections = []
    for s in tpl.graded_sections:
        g = grades.get(s.key)
        evidence = [c for k in (s.key, *(i.key for i in s.items)) for c in comments.get(k, [])]
        sections.append({"number": s.number, "title": s.title, "grade": g,
                         "grade_label": tpl.grade_label(g), "acceptable": g in tpl.acceptable,
                         "evidence": evidence})
    if signed_by_id is not None:
        signed_by_id = _number(signed_by_id, "practitioner signing")
    else:
        row = db.execute("SELECT id FROM practitioners WHERE role = 'Early Help Coordinator' "
                         "ORDER BY id LIMIT 1").fetchone()
        signed_by_id = row[0] if row else None
    signer = db.execute("SELECT name, role FROM practitioners WHERE id = ?",
                        [signed_by_id]).fetchone() if signed_by_id else None
    return {
        "date": as_date(on or dt.date.today()),
        "audit": a,
        "grade_label": tpl.grade_label(a["grade"]),
        "tool": tpl.title,
        "sections": sections,
        "to_improve": [s for s in sections if s["grade"] is not None and not s["acceptable"]],
        "strengths": [s for s in sections if s["acceptable"]],
        "actions": list(db.query("SELECT number, action, by_whom, due_date FROM actions "
                                 "WHERE audit_id = ? ORDER BY number", [audit_id])),
        "discussions": discussions(db, audit_id),
        "signed_by": signer[0] if signer else "Early Help Coordinator",
        "signed_by_role": (signer[1] if signer else None) or "Early Help Coordinator",
    }


def feedback_summary(db: sqlite_utils.Database, audit_id: int, *, on=None) -> str:
    """The short feedback returned to every assessment author, whatever the grade."""
    c = letter_context(db, audit_id, on=on)
    a = c["audit"]
    lines = [f"Feedback on your Early Help Assessment for {a['ehm_number']}",
             f"Audited on {uk(a['audit_date'])} with the {c['tool']}.",
             f"Overall grade: {c['grade_label']}."]
    if a["overall_reasons"]:
        lines.append(f"Why: {a['overall_reasons']}")
    if c["strengths"]:
        lines.append("Done well: " + "; ".join(
            f"{s['title']} ({s['grade_label']})" for s in c["strengths"]) + ".")
    if c["to_improve"]:
        lines.append("To improve: " + "; ".join(
            f"{s['title']} ({s['grade_label']})" for s in c["to_improve"]) + ".")
    if a["learning"]:
        lines.append(f"Learning: {a['learning']}")
    for act in c["actions"]:
        lines.append(f"Action {act['number']}: {act['action']}"
                     + (f" (by {uk(act['due_date'])})" if act["due_date"] else ""))
    return "\n".join(lines)


def feedback_to_send(db: sqlite_utils.Database, on) -> list[dict]:
    """Submitted or moderated audits dated on or before ``on`` whose summary is not yet sent."""
    on = as_date(on, "day").isoformat()
    return list(db.query(_AUDIT + """ WHERE a.status IN ('submitted', 'moderated')
        AND a.audit_date <= :on AND NOT EXISTS (SELECT 1 FROM audit_followups f
            WHERE f.audit_id = a.id AND f.feedback_sent_date <= :on)
        ORDER BY a.audit_date, a.id""", {"on": on}))


def _environment(template_dir: str | Path | None, html: bool) -> jinja2.Environment:
    # A folder given is searched first, then the working folder's and ehkit's templates.
    dirs = [Path(template_dir)] if template_dir else []
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([*dirs, *home.folders("templates")]),
        autoescape=html, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)
    env.filters["uk_date"] = uk  # {{ audit.audit_date | uk_date }}: 16/09/2015
    return env


def render_letter(context: Mapping, template_dir: str | Path | None = None) -> tuple[str, str]:
    """The letter as (HTML, plain text) from ``letter.html.j2`` and ``letter.txt.j2``."""
    html = _environment(template_dir, True).get_template("letter.html.j2").render(**context)
    text = _environment(template_dir, False).get_template("letter.txt.j2").render(**context)
    return html, text


def draft_letter(db: sqlite_utils.Database, audit_id: int, *,
                 out_dir: str | Path = "reports/letters", on=None,
                 signed_by_id: int | None = None, template_dir: str | Path | None = None,
                 actor: str | None = None) -> tuple[Path, Path]:
    """Write the letter to the author's manager for an audit graded Inadequate overall.

    Writes ``letter-audit-<ID>-<date>.html`` and ``.txt`` under ``out_dir`` and records the
    letter (nothing is emailed: the letter is ready for the coordinator to send).
    """
    c = letter_context(db, audit_id, on=on, signed_by_id=signed_by_id)
    a = c["audit"]
    if not is_inadequate(a["grade"], a["template"]):
        raise FeedbackError(f"audit {audit_id} is graded {c['grade_label']} overall: a letter to "
                            "the author's manager is drafted only for Inadequate audits")
    html, text = render_letter(c, template_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"letter-audit-{audit_id}-{c['date'].isoformat()}"
    html_path, text_path = stem.with_suffix(".html"), stem.with_suffix(".txt")
    html_path.write_text(html, encoding="utf-8")
    text_path.write_text(text, encoding="utf-8")
    with store.acting_as(actor=actor), store.transaction(db):
        db["letters"].insert({"audit_id": audit_id, "addressed_to_id": a["manager_id"],
                              "drafted_on": c["date"].isoformat(), "html_path": str(html_path),
                              "text_path": str(text_path)})
    return html_path, text_path


# -- service-user feedback ----------------------------------------------------------------
def questions() -> list[dict]:
    """The rated questions (setting ``feedback.service_user_questions``)."""
    return list(setting("feedback", "service_user_questions"))


def rating_labels() -> list[str]:
    return list(setting("feedback", "rating_labels"))


def concern_themes() -> list[str]:
    return list(setting("feedback", "concern_themes"))


def find_episode(db: sqlite_utils.Database, ehm_number: str, on=None,
                 episode_start=None) -> int | None:
    """The episode of an EHM number: the one that began on ``episode_start`` if given, else
    the one open on ``on`` (the latest that began by then)."""
    ehm = (ehm_number or "").strip()
    if episode_start:
        row = db.execute("SELECT id FROM episodes WHERE ehm_number = ? AND start_date = ?",
                         [ehm, as_date(episode_start).isoformat()]).fetchone()
        return row[0] if row else None
    day = as_date(on or dt.date.today()).isoformat()
    row = db.execute("SELECT id FROM episodes WHERE ehm_number = ? AND start_date <= ? "
                     "ORDER BY start_date DESC LIMIT 1", [ehm, day]).fetchone()
    return row[0] if row else None


def feedback_problems(db: sqlite_utils.Database, fb: Mapping, today=None) -> dict:
    """Problems with one piece of feedback as {field: (rule code, reason)}.

    The one rule the form and the CSV import both ask (the codes go in the rejects file).
    """
    if not isinstance(fb, Mapping):
        return _declared({"feedback": ("NOT_A_RECORD",
                                       "the feedback is given as a dict of its fields")})
    problems: dict[str, tuple[str, str]] = {
        f: ("NOT_TEXT", "should be text") for f in ("comments", "concern_theme", "concern_detail")
        if not isinstance(fb.get(f), str | None)}
    if not isinstance(fb.get("ratings"), Mapping | None):
        problems["ratings"] = ("NOT_A_RECORD", "the ratings map each question to its rating")
    given = fb.get("given_on")
    if given is None or given == "":
        problems["given_on"] = ("MISSING_VALUE", "missing: the date the feedback was given")
    else:
        try:
            given = as_date(given)
            if given > as_date(today or dt.date.today()):
                problems["given_on"] = ("DATE_IN_FUTURE", "the date is in the future")
        except EhkitError:
            problems["given_on"] = ("BAD_DATE", "not a date like 2026-11-24 or 24/11/2026")
    episode = fb.get("episode_id")
    if episode is not None and not records.is_id(episode):
        problems["ehm_number"] = ("UNKNOWN_EPISODE", f"{episode!r:.40} is not an episode number")
    elif episode is None:
        problems["ehm_number"] = ("UNKNOWN_EPISODE",
                                  "no episode with this EHM number had begun by that date")
    elif "given_on" not in problems:
        start = db.execute("SELECT start_date FROM episodes WHERE id = ?", [episode]).fetchone()
        if start is None:
            problems["ehm_number"] = ("UNKNOWN_EPISODE", f"no episode {episode}")
        elif given.isoformat() < start[0]:
            problems["given_on"] = ("BEFORE_EPISODE", f"before the episode began ({start[0]})")
    if not isinstance(fb.get("respondent"), str) or fb["respondent"] not in RESPONDENTS:
        problems["respondent"] = ("UNKNOWN_CHOICE",
                                  "should be one of: " + ", ".join(RESPONDENTS.values()))
    if not isinstance(fb.get("stage"), str) or fb["stage"] not in STAGES:
        problems["stage"] = ("UNKNOWN_CHOICE", "should be one of: " + ", ".join(STAGES.values()))
    keys = {q["key"] for q in questions()}
    ratings = fb.get("ratings") if isinstance(fb.get("ratings"), Mapping) else {}
    for k, v in ratings.items():
        if k not in keys:
            problems[k] = ("UNKNOWN_QUESTION",
                           f"not a feedback question (questions: {', '.join(sorted(keys))})")
        elif not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 5:
            problems[k] = ("BAD_RATING", "a rating should be a whole number from 1 to 5")
    theme = fb.get("concern_theme")
    theme = theme.strip() if isinstance(theme, str) else ""
    if fb.get("concern_raised"):
        if not theme:
            problems["concern_theme"] = ("MISSING_THEME", "a concern was raised: give its theme")
        elif theme not in concern_themes():
            problems["concern_theme"] = ("UNKNOWN_THEME",
                                         "should be one of: " + ", ".join(concern_themes()))
    elif theme:
        problems["concern_raised"] = ("THEME_WITHOUT_CONCERN",
                                      "a theme is given but no concern is marked as raised")
    return _declared(problems)


def _declared(problems: dict) -> dict:
    """The problems, each of a declared rule (ehkit rules lists them): else a bug here."""
    for code, *_ in problems.values():
        rules.get(code)
    return problems


def check_service_user_feedback(db: sqlite_utils.Database, fb: Mapping, today=None) -> dict:
    """Problems with one piece of feedback as {field: reason}; empty when it can be saved."""
    return {f: reason for f, (_, reason) in feedback_problems(db, fb, today).items()}


def _feedback_row(fb: Mapping) -> dict:
    theme = (fb.get("concern_theme") or "").strip()
    return {
        "episode_id": fb["episode_id"],
        "given_on": as_date(fb["given_on"]).isoformat(),
        "respondent": fb["respondent"],
        "stage": fb["stage"],
        "ratings": json.dumps(dict(sorted((fb.get("ratings") or {}).items()))),
        "comments": (fb.get("comments") or "").strip() or None,
        "concern_raised": int(bool(fb.get("concern_raised"))),
        "concern_theme": theme or None,
        "concern_detail": (fb.get("concern_detail") or "").strip() or None,
    }


FIELD_NAMES = {"ehm_number": "EHM number", "given_on": "date given",
               "concern_theme": "theme of the concern", "concern_detail": "about the concern"}


def field_name(key: str) -> str:
    """A feedback field (or rated question) as the form names it, for messages."""
    texts = {q["key"]: q["text"] for q in questions()}
    return FIELD_NAMES.get(key) or texts.get(key) or key.replace("_", " ")


def record_service_user_feedback(db: sqlite_utils.Database, fb: Mapping, *,
                                 actor: str | None = None, today=None) -> int:
    """Save one piece of feedback (keys as in :func:`check_service_user_feedback`)."""
    problems = check_service_user_feedback(db, fb, today)
    if problems:
        raise FeedbackError("the feedback was not saved: " + "; ".join(
            f"{field_name(k)}: {v}" for k, v in problems.items()), problems)
    row = _feedback_row(fb)
    clash = db.execute("SELECT id FROM service_user_feedback WHERE episode_id = ? AND given_on = ?"
                       " AND respondent = ? AND stage = ?",
                       [row["episode_id"], row["given_on"], row["respondent"], row["stage"]]
                       ).fetchone()
    if clash:
        raise FeedbackError(f"feedback from this {RESPONDENTS[row['respondent']].lower()} at this "
                            f"stage on {row['given_on']} is already recorded (number {clash[0]})",
                            {"given_on": "already recorded"})
    with store.acting_as(actor=actor), store.transaction(db):
        return db["service_user_feedback"].insert(row).last_pk


def concerns_by_theme(db: sqlite_utils.Database, start, end) -> list[dict]:
    """Concerns raised in service-user feedback given in the period, per theme.

    Every configured theme is listed (0 where none), then any other stored theme."""
    p = [as_date(start).isoformat(), as_date(end).isoformat()]
    counts = dict(db.execute("SELECT concern_theme, count(*) FROM service_user_feedback WHERE "
                             "concern_raised = 1 AND given_on BETWEEN ? AND ? "
                             "GROUP BY concern_theme", p).fetchall())
    themes = concern_themes() + sorted(set(counts) - set(concern_themes()))
    return [{"theme": t, "concerns": counts.get(t, 0)} for t in themes]


def service_user_summary(db: sqlite_utils.Database, start, end) -> dict:
    """Feedback given in the period: how many (by respondent and stage), concerns raised,
    and the average rating of each question (None where nobody answered it)."""
    p = [as_date(start).isoformat(), as_date(end).isoformat()]
    where = "FROM service_user_feedback WHERE given_on BETWEEN ? AND ?"
    total, concerns = db.execute(f"SELECT count(*), coalesce(sum(concern_raised), 0) {where}",
                                 p).fetchone()
    averages = {k: (round(avg, 2), n) for k, avg, n in db.execute(
        "SELECT j.key, avg(j.value), count(*) FROM service_user_feedback f, json_each(f.ratings) j"
        " WHERE f.given_on BETWEEN ? AND ? GROUP BY j.key", p)}
    return {
        "feedback": total,
        "concerns_raised": concerns,
        "by_respondent": {k: n for k, n in db.execute(
            f"SELECT respondent, count(*) {where} GROUP BY respondent", p)},
        "by_stage": {k: n for k, n in db.execute(f"SELECT stage, count(*) {where} GROUP BY stage",
                                                p)},
        "ratings": [{"key": q["key"], "question": q["text"],
                     "average": averages.get(q["key"], (None, 0))[0],
                     "answered": averages.get(q["key"], (None, 0))[1]} for q in questions()],
    }


# -- importing service-user feedback from CSV or Excel ---------------------------------------
# The episode importer's readers are reused (ehkit.cases): CSV in UTF-8 or Windows-1252 with
# any delimiter, or .xlsx; dates as 31/01/2026, 31-Jan-2026, 2026-01-31 or Excel dates.
REQUIRED_COLUMNS = ("ehm_number", "given_on", "respondent", "stage")
OPTIONAL_COLUMNS = ("episode_start", "comments", "concern_raised", "concern_theme",
                    "concern_detail")
YES = {"yes", "y", "true", "1", "x"}
NO = {"no", "n", "false", "0", ""}
REJECTS_DIR = Path("reports") / "imports"


class FeedbackImportError(EhkitError):
    """The file as a whole cannot be imported; nothing was imported."""


@dataclass
class ImportResult:
    file: Path
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects: list[dict] = field(default_factory=list)  # row, code, field, value, reason
    rejects_file: Path | None = None
    import_id: int | None = None
    ignored_columns: list[str] = field(default_factory=list)

    def summary(self) -> str:
        s = (f"{self.file.name}: {self.rows_read} rows read = {self.inserted} new + "
             f"{self.updated} updated + {self.unchanged} unchanged + {self.rejected} rejected")
        if self.ignored_columns:
            s += f"\ncolumns not used (ignored): {', '.join(self.ignored_columns)}"
        if self.rejects_file:
            s += f"\nrejected rows and why (row, code, field, value, reason): {self.rejects_file}"
        return s


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()[:10]
    return str(value).strip()


def _date_cell(value) -> tuple[dt.date | None, tuple[str, str] | None]:
    """(date, None) or (None, (code, reason)) using the episode importer's date reader."""
    try:
        return cases.parse_date(value), None
    except Exception as e:  # cases.parse_date raises its internal rule (code, detail)
        code = getattr(e, "code", "BAD_DATE")
        detail = getattr(e, "detail", "")
        return None, (code, rules.get(code).message + (f": {detail}" if detail else ""))


def _choice(text: str, options: Mapping[str, str]) -> str | None:
    t = " ".join(text.lower().replace("_", " ").split())
    for key, label in options.items():
        if t in (key.replace("_", " "), label.lower()):
            return key
    return None


def _read_row(db, raw: Mapping[str, object], qkeys: list[str], today) -> tuple[dict, dict]:
    """(feedback, problems as {field: (code, value, reason)}) for one row."""
    bad: dict[str, tuple[str, str, str]] = {}
    text = {k: _cell(v) for k, v in raw.items()}
    fb: dict = {"ratings": {}}
    fb["given_on"], problem = _date_cell(raw.get("given_on"))
    if problem:
        bad["given_on"] = (problem[0], text["given_on"], problem[1])
    start = None
    if text.get("episode_start"):
        start, problem = _date_cell(raw.get("episode_start"))
        if problem:
            bad["episode_start"] = (problem[0], text["episode_start"], problem[1])
    ehm = text.get("ehm_number", "")
    if not ehm:
        bad["ehm_number"] = ("MISSING_VALUE", "", "missing: the child's EHM number")
    elif "episode_start" not in bad:
        fb["episode_id"] = find_episode(db, ehm, fb["given_on"] or today, start)
    fb.setdefault("episode_id", None)
    for name, options in (("respondent", RESPONDENTS), ("stage", STAGES)):
        fb[name] = _choice(text.get(name, ""), options)
    for k in qkeys:
        v = text.get(k, "")
        if v:
            fb["ratings"][k] = int(v) if v.isdigit() else v
    flag = text.get("concern_raised", "").lower()
    if flag in YES or flag in NO:
        fb["concern_raised"] = flag in YES
    else:
        bad["concern_raised"] = ("UNKNOWN_CHOICE", text["concern_raised"], "should be yes or no")
    for k in ("comments", "concern_theme", "concern_detail"):
        fb[k] = text.get(k) or None
    for f, (code, reason) in feedback_problems(db, fb, today).items():
        if f not in bad and not (f == "ehm_number" and "episode_start" in bad):
            bad[f] = (code, text.get(f, ""), reason)
    return fb, bad


def import_service_user_feedback(db: sqlite_utils.Database, path: str | Path, *,
                                 rejects_dir: str | Path | None = None,
                                 actor: str | None = None, today=None) -> ImportResult:
    """Import feedback from a CSV or .xlsx file: one row per piece of feedback, the first
    row naming the columns (see the README).

    Good rows are saved in one transaction; each problem of a bad row goes to the rejects
    file ``<rejects_dir>/<file>-feedback-rejects.csv`` (default ``reports/imports``) as row,
    code, field, value, reason and the row's cells, as the episode importer writes them. Row
    numbers are the spreadsheet's (the header is row 1); blank rows are not counted. A row
    already imported (same episode, date, respondent and stage) is updated if it changed,
    else counted unchanged. The import is recorded with the file's sha256.
    """
    path = Path(path)
    if not path.exists():
        raise FeedbackImportError(f"{path}: no such file")
    data = path.read_bytes()
    rows = [(n, cells) for n, cells in cases.read_rows(path)
            if any(_cell(c) for c in cells) or n == 1]
    if not rows:
        raise FeedbackImportError(f"{path.name}: the file is empty; nothing was imported")
    header = [_cell(h).lower().replace(" ", "_") for h in rows[0][1]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise FeedbackImportError(
            f"{path.name}: missing column(s) {', '.join(missing)} (found: "
            f"{', '.join(h for h in header if h) or 'none'}); the first row must name the "
            f"columns {', '.join(REQUIRED_COLUMNS)}; nothing was imported")
    qkeys = [q["key"] for q in questions()]
    known = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, *qkeys)
    today = as_date(today or dt.date.today())
    result = ImportResult(path, ignored_columns=[h for h in header if h and h not in known])
    good: dict[tuple, tuple[int, dict]] = {}
    originals: dict[int, list[str]] = {}
    for n, cells in rows[1:]:
        result.rows_read += 1
        originals[n] = [_cell(c) for c in cells]
        extra = [_cell(c) for c in cells[len(header):] if _cell(c)]
        if extra:
            bad = {"": ("TOO_MANY_CELLS", ",".join(extra), "more cells than there are columns")}
        else:
            raw = {h: (cells[i] if i < len(cells) else None) for i, h in enumerate(header) if h}
            fb, bad = _read_row(db, raw, qkeys, today)
        if not bad:
            row = _feedback_row(fb)
            key = (row["episode_id"], row["given_on"], row["respondent"], row["stage"])
            if key in good:
                bad["given_on"] = ("DUPLICATE_ROW", _cell(raw.get("given_on")),
                                   f"the same feedback as row {good[key][0]}"
                                   " (same child, date, respondent and stage)")
            else:
                good[key] = (n, row)
        if _declared(bad):
            result.rejected += 1
            result.rejects.extend({"row": n, "code": c, "field": f, "value": v, "reason": r}
                                  for f, (c, v, r) in bad.items())
    existing = {(r["episode_id"], r["given_on"], r["respondent"], r["stage"]): r
                for r in db.query("SELECT * FROM service_user_feedback")}
    new, changed = [], []
    for key, (_, row) in good.items():
        old = existing.get(key)
        if old is None:
            new.append(row)
        elif any(old[k] != v for k, v in row.items()):
            changed.append({**row, "id": old["id"]})
        else:
            result.unchanged += 1
    result.inserted, result.updated = len(new), len(changed)
    assert result.rows_read == (result.inserted + result.updated + result.unchanged
                                + result.rejected)
    with store.acting_as(actor=actor or "ehkit feedback import",
                         reason=f"import of {path.name}"), store.transaction(db):
        result.import_id = db["imports"].insert({
            "kind": "service_user_feedback", "file_name": path.name,
            "sha256": hashlib.sha256(data).hexdigest(), "rows_read": result.rows_read,
            "inserted": result.inserted, "updated": result.updated,
            "unchanged": result.unchanged, "rejected": result.rejected,
            "imported_by": store.current_actor().user}).last_pk
        for r in (*new, *changed):
            r["import_id"] = result.import_id
        if new:
            db["service_user_feedback"].insert_all(new)
        if changed:
            db["service_user_feedback"].upsert_all(changed, pk="id")
    out = Path(rejects_dir or REJECTS_DIR) / f"{path.stem}-feedback-rejects.csv"
    if result.rejects:
        columns = [h or f"column {i + 1}" for i, h in enumerate(header)]
        result.rejects_file = spreadsheet.write_csv(
            out, [*cases.REJECT_COLUMNS, *columns],
            ([r["row"], r["code"], r["field"], r["value"], r["reason"], *originals[r["row"]]]
             for r in result.rejects))
    else:
        out.unlink(missing_ok=True)  # an old rejects file would describe another import
    return result
