"""After the audit: closing the loop with the worker and their manager.

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
counts is the final one (the moderator's where moderated: view ``final_grades``); the audits
whose follow-up is due are those of the view ``counted_audits``.

What the children and families say is :mod:`ehkit.service_user_feedback`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from pathlib import Path

import jinja2
import sqlite_utils

from . import access, dates, home, records
from . import db as store
from . import template as templates
from .dates import long_date, uk
from .errors import FeedbackError
from .settings import get as setting

# A wrong date given with feedback is a feedback error (not the tracker's).
_as_date = functools.partial(dates.as_date, error=FeedbackError)


# -- the audit and the people around it -------------------------------------------------
_AUDIT = """
SELECT a.id, a.episode_id, a.template, a.status, a.audit_date, a.auditor1_id, a.auditor2_id,
       a.id IN (SELECT id FROM counted_audits) AS counted,
       a.summary, a.overall_reasons, a.learning,
       (SELECT grade FROM final_overall f WHERE f.audit_id = a.id) AS grade,
       e.ehm_number, e.lead_professional_id AS author_id, w.name AS author, w.role AS author_role,
       w.team AS author_team, ag.name AS author_agency,
       coalesce(w.line_manager_id, e.team_manager_id) AS manager_id, m.name AS manager,
       m.role AS manager_role
FROM {audits} a
JOIN episodes e ON e.id = a.episode_id
LEFT JOIN practitioners w ON w.id = e.lead_professional_id
LEFT JOIN agencies ag ON ag.id = w.agency_id
LEFT JOIN practitioners m ON m.id = coalesce(w.line_manager_id, e.team_manager_id)
"""
_COUNTED = _AUDIT.format(audits="counted_audits")  # the audits whose follow-up is due


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
    rows = list(db.query(_AUDIT.format(audits="audits") + " WHERE a.id = :id", {"id": audit_id}))
    if not rows:
        raise FeedbackError(f"there is no audit {audit_id}: check the audit number")
    return rows[0]


def _completed(db, audit_id: int) -> dict:
    a = audit_people(db, audit_id)
    if not a["counted"]:
        raise FeedbackError(f"audit {audit_id} is still a draft: submit it before recording "
                            "what followed it")
    return a


def is_poor(grade: int | None, template_key: str) -> bool:
    """Requires Improvement or Inadequate: a grade outside the template's acceptable ones."""
    return grade is not None and grade not in templates.load(template_key).acceptable


def is_inadequate(grade: int | None, template_key: str) -> bool:
    return grade is not None and grade == templates.load(template_key).worst_grade


def _day_between(day, earliest: str, what: str, today=None) -> dt.date:
    d = _as_date(day, what)
    if d < _as_date(earliest):
        raise FeedbackError(f"the {what} {d} is before the audit ({earliest})", {what: "too early"})
    if d > _as_date(today or dt.date.today()):
        raise FeedbackError(f"the {what} {d} is in the future", {what: "in the future"})
    return d


# -- worker notified, feedback summary sent ---------------------------------------------
def record_worker_notified(db: sqlite_utils.Database, audit_id: int, on, *,
                           actor: str | None = None, today=None) -> None:
    """The day the worker was told their case is being audited (guidance 11); a draft audit
    may have it, as the worker is told when the case is chosen."""
    day = _as_date(on, "date the worker was notified")
    if day > _as_date(today or dt.date.today()):
        raise FeedbackError(f"the date the worker was notified ({day}) is in the future",
                            {"worker_notified_date": "in the future"})
    with access.acting(db, "letters", label=actor), store.transaction(db):
        audit_people(db, audit_id)
        db["audit_followups"].upsert({"audit_id": audit_id,
                                      "worker_notified_date": day.isoformat()}, pk="audit_id")


def record_feedback_sent(db: sqlite_utils.Database, audit_id: int, on, *,
                         actor: str | None = None, today=None) -> None:
    """The day the feedback summary was returned to the assessment author."""
    # Checked and written in one transaction: the audit cannot be reopened in between.
    with access.acting(db, "letters", label=actor), store.transaction(db):
        a = _completed(db, audit_id)
        day = _day_between(on, a["audit_date"], "date the feedback was sent", today)
        db["audit_followups"].upsert({"audit_id": audit_id,
                                      "feedback_sent_date": day.isoformat()}, pk="audit_id")


def reader(db: sqlite_utils.Database) -> access.Person:
    """The person reading what follows the audits, if they may: it names the cases and the
    workers and holds the auditors' free text, so it is the coordinator's and theirs who see
    every case (NotAllowed else). The lists the reports read do not ask: their audience
    decides what they show."""
    return access.require_any(db, "reading what follows the audits (letters and feedback "
                              "to workers)", "letters", "see_all_cases")


def followup(db: sqlite_utils.Database, audit_id: int) -> dict:
    """Everything recorded after one audit: dates, discussions, 1-1 meetings, letters (for a
    :func:`reader`)."""
    reader(db)
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
    with access.acting(db, "letters", label=actor), store.transaction(db):
        return _record_discussion(db, _completed(db, audit_id), held_on, ids, learning, notes,
                                  today)


def _record_discussion(db, a: Mapping, held_on, ids: list[int], learning: str | None,
                       notes: str | None, today) -> int:
    audit_id = a["id"]
    day = _day_between(held_on, a["audit_date"], "discussion date", today)
    problems = {}
    if not ids:
        problems["attendees"] = "name who attended: the worker and their line manager"
    marks = ",".join("?" * len(ids))  # none: no query (PostgreSQL reads no empty IN ())
    known = {r[0] for r in db.execute(f"SELECT id FROM practitioners WHERE id IN ({marks})",
                                      ids)} if ids else set()
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
    on = _as_date(on, "day").isoformat()
    rows = list(db.query(
        _COUNTED + """ WHERE a.audit_date <= :on
        AND NOT EXISTS (SELECT 1 FROM discussions d WHERE d.audit_id = a.id AND d.held_on <= :on)
        ORDER BY a.audit_date, a.id""", {"on": on}))
    for r in rows:
        r["days_since_audit"] = (_as_date(on) - _as_date(r["audit_date"])).days
    return rows


def discussion_summary(db: sqlite_utils.Database, start, end) -> dict:
    """Of the audits dated in the period: how many had a discussion (by ``end``), and how many
    of those were attended by the worker and by their line manager (guidance 13-15)."""
    p = {"start": _as_date(start).isoformat(), "end": _as_date(end).isoformat()}
    row = db.execute("""
        SELECT count(*),
          coalesce(sum(CASE WHEN EXISTS (SELECT 1 FROM discussions d WHERE d.audit_id = a.id
                                AND d.held_on <= :end) THEN 1 ELSE 0 END), 0),
          coalesce(sum(CASE WHEN EXISTS (SELECT 1 FROM discussions d JOIN discussion_attendees t
                                ON t.discussion_id = d.id WHERE d.audit_id = a.id
                                AND d.held_on <= :end AND t.role = 'worker') THEN 1 ELSE 0 END), 0),
          coalesce(sum(CASE WHEN EXISTS (SELECT 1 FROM discussions d JOIN discussion_attendees t
                                ON t.discussion_id = d.id WHERE d.audit_id = a.id
                                AND d.held_on <= :end AND t.role = 'line_manager')
                       THEN 1 ELSE 0 END), 0)
        FROM counted_audits a WHERE a.audit_date BETWEEN :start AND :end""", p).fetchone()
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
    with access.acting(db, "letters", label=actor), store.transaction(db):
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
    on = _as_date(on, "day").isoformat()
    rows = db.query(_COUNTED + """ WHERE a.audit_date <= :on
        AND NOT EXISTS (SELECT 1 FROM one_to_one_meetings o
            WHERE o.audit_id = a.id AND o.held_on <= :on)
        ORDER BY a.audit_date, a.id""", {"on": on})
    # Asked once per grade and template, not per audit: finding a template's file costs more
    # than reading the audit (at 100,000 episodes, 8,000 audits: seconds).
    poor = functools.cache(is_poor)
    return [r for r in rows if poor(r["grade"], r["template"])]


# -- repeated poor audits ---------------------------------------------------------------
def repeat_poor_authors(db: sqlite_utils.Database, on, *, count: int | None = None,
                        months: int | None = None) -> list[dict]:
    """Authors with at least ``count`` RI/Inadequate audits dated within the ``months``
    months up to ``on`` (after the same day ``months`` earlier, up to ``on`` inclusive).

    Defaults are the settings ``feedback.repeat_poor_count`` and ``repeat_poor_months``.
    Each row: the author, their manager (whom the Service Manager notifies), the poor
    audits, and the author's latest audit in the window with its grade.
    """
    on = _as_date(on, "day")
    count = count or setting("feedback", "repeat_poor_count")
    months = months or setting("feedback", "repeat_poor_months")
    since = dates.months_before(on, months)
    rows = db.query(_COUNTED + """ WHERE a.audit_date > :since AND a.audit_date <= :on
        AND e.lead_professional_id IS NOT NULL
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
    the templates escape it), for a :func:`reader`."""
    reader(db)
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
        "date": _as_date(on or dt.date.today()),
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
    on = _as_date(on, "day").isoformat()
    return list(db.query(_COUNTED + """ WHERE a.audit_date <= :on
        AND NOT EXISTS (SELECT 1 FROM audit_followups f
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
    env.filters["long_date"] = long_date  # the letter's own date: 2 December 2026
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
    with access.acting(db, "letters", label=actor), store.transaction(db):
        db["letters"].insert({"audit_id": audit_id, "addressed_to_id": a["manager_id"],
                              "drafted_on": c["date"].isoformat(), "html_path": str(html_path),
                              "text_path": str(text_path)})
    return html_path, text_path
