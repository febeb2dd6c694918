"""Audits: checking, saving, submitting and moderating audits.

The guidance's rules are defined once, in :mod:`ehkit.rules.audit`; :func:`problems` asks
every one of them (and the council's own, :func:`ehkit.rules.council_problems`), and the form,
the sampler and the demo generator ask this module. The form only shows what
:func:`problems` says: the browser can send any widget value, so every save and submit
checks again here.

An audit travels as a plain dict (what :func:`load` returns and :func:`save_draft` takes)::

    {"episode_id": 12, "template": "darlington", "auditor1_id": 3, "auditor2_id": None,
     "audit_date": "2026-11-02", "summary": "...", "overall_grade": 2,
     "overall_reasons": "...", "learning": "...",
     "answers": {"pre_eha": {"grade": 2}, "1.1": {"comment": "..."},
                 "1.1.1": {"response": "yes"}},
     "checklist": {"consent": {"status": "accurate", "note": ""}},
     "actions": [{"action": "...", "by_whom": "...", "due_date": "2026-12-01", ...}],
     "version": 1042}

Lifecycle: draft (saved incomplete as often as wanted) -> submitted (every rule met) ->
moderated (auditor 2 or a moderator agrees or changes grades; both grades kept). A submitted
or moderated audit changes only after :func:`reopen` with a reason, which the change log keeps.

No lost update: :func:`load` gives the audit's ``version`` (:mod:`ehkit.records`), and
every write that acts on what a person saw (:func:`save_draft` of the loaded dict,
:func:`submit`, :func:`reopen`, :func:`moderate` with ``expected_version``) checks it and
writes in one ``BEGIN IMMEDIATE`` transaction: anyone's change since refuses it with
StaleRecord, naming who and when.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from . import access, home, records
from . import db as store
from . import template as templates
from .dates import uk
from .episodes import case_information, ehm_numbers
from .errors import AuditNotFound, EhkitError
from .records import StaleRecord  # noqa: F401 - raised here; callers catch it from here too
from .rules import audit as rule
from .rules import council_problems
from .rules.audit import best_overall_allowed, conflict_of_interest  # noqa: F401 - asked from here
from .template import OVERALL, Template

AUDIT_FIELDS = ("episode_id", "template", "auditor1_id", "auditor2_id", "audit_date",
                "summary", "overall_grade", "overall_reasons", "learning")
ACTION_FIELDS = ("action", "by_whom", "owner_id", "due_date", "discussed_date", "agreed_by",
                 "completed_date", "completion_note")
ACTION_DATES = ("due_date", "discussed_date", "completed_date")
STATUS_LABELS = {"draft": "Draft", "submitted": "Submitted", "moderated": "Moderated"}


class AuditRuleError(EhkitError):
    """An audit breaks one or more of the guidance's rules.

    ``problems`` maps a field key (a section key, 'overall', 'actions', 'auditor1', ...)
    to the plain-words message the auditor sees next to that field.
    """

    def __init__(self, problems: Mapping[str, str]):
        self.problems = dict(problems)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.problems.items()))


# -- small helpers -------------------------------------------------------------------------
def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _text(v: Any, field: str, errors: dict[str, str]) -> str | None:
    """Free text as typed (kept exactly), or None when blank; anything but text is refused
    (it would be stored as Python's spelling of it)."""
    if _blank(v):
        return None
    if not isinstance(v, str):
        errors[field] = f"this should be text, not {type(v).__name__}: type it in words."
        return None
    return v


def _iso_date(v: Any, field: str, errors: dict[str, str]) -> str | None:
    if _blank(v):
        return None
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    try:
        return dt.date.fromisoformat(str(v).strip()).isoformat()
    except ValueError:
        errors[field] = f"'{v}' is not a date: pick one from the calendar (like 2026-11-24)."
        return None


def _int(v: Any, field: str, errors: dict[str, str], what: str) -> int | None:
    """A number chosen from a list (the browser may send it as text: '3')."""
    if _blank(v):
        return None
    try:
        if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
            raise ValueError
        n = int(v)
        if abs(n) > records.LARGEST_ID:
            raise ValueError
        return n
    except (TypeError, ValueError, OverflowError):
        errors[field] = f"{str(v)[:40]!r} is not a {what}: choose one from the list."
        return None


def _audit_number(audit_id: Any) -> int:
    return records.record_id(audit_id, "audit", AuditNotFound)


def _mapping(v: Any, field: str, errors: dict[str, str], example: str) -> Mapping:
    """A part of the audit that maps keys to values (answers, checklist, ...), or {}."""
    if v is None or isinstance(v, Mapping):
        return v or {}
    errors[field] = f"{field} should map each key to its value, like {example}."
    return {}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def template_of(audit: Mapping) -> Template:
    if not isinstance(audit, Mapping):
        raise AuditRuleError({"audit": "an audit is given as a dict of its fields (what "
                                       "audits.load returns)."})
    key = audit.get("template") or templates.DEFAULT_TEMPLATE
    if not isinstance(key, str):
        raise AuditRuleError({"template": "the template is named by its key, like "
                                          f"'{templates.DEFAULT_TEMPLATE}'."})
    return templates.load(key)


def _names(db: sqlite_utils.Database, ids: Iterable[int | None]) -> dict[int, str]:
    """The practitioners among ``ids``, id -> name, in one query (a save names its auditors
    and every action's owner: on PostgreSQL each query is a round trip to the server)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return dict(db.execute(f"SELECT id, name FROM practitioners WHERE id IN "
                           f"({','.join('?' * len(wanted))})", wanted).fetchall())


def _name(db: sqlite_utils.Database, practitioner_id: int | None) -> str | None:
    if practitioner_id is None:
        return None
    row = db.execute("SELECT name FROM practitioners WHERE id = ?", [practitioner_id]).fetchone()
    return row[0] if row else None


# -- reading ---------------------------------------------------------------------------------
def practitioners(db: sqlite_utils.Database, *, auditors_only: bool = True) -> list[dict]:
    """People who can be chosen as auditors (all practitioners when none is flagged)."""
    sql = ("SELECT p.id, p.name, p.role, p.team, a.name AS agency FROM practitioners p"
           " JOIN agencies a ON a.id = p.agency_id {} ORDER BY p.name, p.id")
    rows = [dict(r) for r in db.query(sql.format("WHERE p.is_auditor = 1" if auditors_only else ""))]
    if auditors_only and not rows:
        rows = [dict(r) for r in db.query(sql.format(""))]
    return rows


def case_numbers(db: sqlite_utils.Database) -> list[str]:
    """The EHM numbers the form suggests as the person types: those of every open or recent
    case for those who see every case; else only their own cases' (:func:`ehkit.access.
    cases_seen`), so an auditor is not shown the service's every case number. Another number
    can still be typed; its case then shows no children's names."""
    me = access.person(db)
    if me.may("see_all_cases"):
        return ehm_numbers(db)
    seen, params = access.cases_seen(me)
    return [r[0] for r in db.execute(f"SELECT DISTINCT ehm_number FROM episodes WHERE id IN"
                                     f" ({seen}) ORDER BY ehm_number", params)]


def load(db: sqlite_utils.Database, audit_id: int) -> dict:
    """An audit with its answers, checklist, actions, moderations and case information,
    and its ``version`` (:mod:`ehkit.records`): pass that back to act on what was loaded.

    Only for those who may see it (:func:`ehkit.access.may_see_audit`; NotAllowed else)."""
    audit = whole(db, audit_id)
    access.require_audit(db, audit["id"], f"Audit no. {audit['id']}")
    return audit


def whole(db: sqlite_utils.Database, audit_id: int) -> dict:
    """The audit as :func:`load` gives it, to whoever asks: for ehkit's own checks, which
    show a person no more than a finding."""
    audit_id = _audit_number(audit_id)
    # The version first: a write landing while the rest is read then makes the version
    # older than what is shown, which refuses the next write, never loses one.
    version = records.version(db, "audit", audit_id)
    rows = list(db.query("SELECT * FROM audits WHERE id = ?", [audit_id]))
    if not rows:
        raise AuditNotFound(f"there is no audit number {audit_id}: check the number "
                            "(the drafts list shows the ones you can open)")
    audit = dict(rows[0])
    audit["version"] = version
    audit["answers"] = {
        r["key"]: {"grade": r["grade"], "comment": r["comment"], "response": r["response"]}
        for r in db.query("SELECT * FROM answers WHERE audit_id = ?", [audit_id])}
    audit["checklist"] = {
        r["item"]: {"status": r["status"], "note": r["note"]}
        for r in db.query("SELECT * FROM checklist_answers WHERE audit_id = ?", [audit_id])}
    audit["actions"] = [
        dict(r) for r in db.query("SELECT * FROM actions WHERE audit_id = ? ORDER BY number",
                                  [audit_id])]
    audit["moderations"] = [
        dict(r) for r in db.query(
            "SELECT m.*, p.name AS moderator FROM moderations m"
            " JOIN practitioners p ON p.id = m.moderator_id WHERE m.audit_id = ?"
            " ORDER BY m.moderated_on, m.id", [audit_id])]
    _mark_standing(audit)
    audit["case"] = case_information(db, audit["episode_id"])
    audit["auditor1"] = _name(db, audit["auditor1_id"])
    audit["auditor2"] = _name(db, audit["auditor2_id"])
    return audit


def _mark_standing(audit: dict) -> None:
    """Mark each moderation ``counts`` or not: while the audit stands moderated, the latest
    of each part counts (the rule of the final_grades view, migration 0070); once it is
    reopened, none does until it is moderated again. The rest are history."""
    latest = {m["key"]: m for m in audit["moderations"]}  # oldest first: the last one wins
    for m in audit["moderations"]:
        m["counts"] = audit["status"] == "moderated" and latest[m["key"]] is m


def standing_moderation(audit: Mapping) -> dict[str, dict]:
    """The moderation that counts for each part (key -> row) of a loaded audit."""
    return {m["key"]: m for m in audit["moderations"] if m["counts"]}


@dataclass(frozen=True)
class Found:
    """One page of the audits :func:`find` found: the person's own drafts first, then the
    most recently changed."""

    rows: list[dict]
    total: int  # found in all
    page: int  # this page, from 1
    pages: int  # pages in all (1 when nothing was found)
    seeing: str = "every saved audit"  # which audits the person may find, in words
    order: str = "the most recently changed first"  # in words


PAGE_SIZE = 20


def find(db: sqlite_utils.Database, *, number: Any = None, ehm_number: str | None = None,
         auditor_id: int | None = None, status: str | Iterable[str] | None = None,
         audited_from: Any = None, audited_to: Any = None, page: int = 1,
         limit: int = PAGE_SIZE) -> Found:
    """Find saved audits, any as old as the store: by number, EHM number (any case),
    auditor (1 or 2), status(es) and audit date (from/to, both days included), ``limit`` a
    page. A page past the last gives the last. AuditRuleError names each search term that
    cannot be searched for and what to put right.

    Only the audits the logged-in person may open are found (:func:`ehkit.access.audits_seen`;
    NotAllowed, naming the roles that may, for one who may open none). Their own drafts come
    first, so the form opens on the work they have in hand."""
    errors: dict[str, str] = {}
    where, params = _search_terms(errors, number, ehm_number, auditor_id, status,
                                  audited_from, audited_to)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
        errors["limit"] = "list from 1 to 100,000 audits at a time."
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        errors["page"] = "pages count from 1."
    if errors:
        raise AuditRuleError(errors)
    me = access.require_any(db, "finding and opening saved audits", *access.SEES_AUDITS)
    seeing, scope, mine = access.audits_seen(me)
    values = {**params, **mine, "drafter": me.practitioner_id}
    case = " JOIN episodes e ON e.id = a.episode_id"
    terms = f" WHERE {' AND '.join(where)} AND {scope}"
    joins = f" FROM audits a{case} JOIN practitioners p ON p.id = a.auditor1_id{terms}"
    # Every audit has its case and first auditor (NOT NULL, foreign keys): counted from the
    # audits alone, joined to the case only for an EHM number (a lookup per audit was 0.2 s
    # among a million episodes, as the form opened).
    total = db.execute(f"SELECT count(*) FROM audits a{case if 'ehm' in params else ''}{terms}",
                       values).fetchone()[0]
    pages = max(1, -(-total // limit))
    page = min(page, pages)
    # Without a practitioner (one person on their own machine) there are no "own" drafts, and
    # the plain order lets SQLite walk the updated_at index newest first.
    own_first = ("" if me.practitioner_id is None else
                 "(a.status = 'draft' AND (a.auditor1_id = :drafter OR"
                 " (a.auditor2_id IS NOT NULL AND a.auditor2_id = :drafter))) DESC, ")
    rows = [dict(r) for r in db.query(
        "SELECT a.id, a.status, a.audit_date, a.updated_at, a.auditor1_id, p.name AS auditor1,"
        f" e.ehm_number{joins} ORDER BY {own_first}a.updated_at DESC, a.id DESC"
        " LIMIT :limit OFFSET :offset",
        {**values, "limit": limit, "offset": (page - 1) * limit})]
    order = ("your own drafts first, then the most recently changed" if own_first
             else Found.order)
    return Found(rows, total, page, pages, seeing, order)


def _search_terms(errors: dict[str, str], number, ehm_number, auditor_id, status,
                  audited_from, audited_to) -> tuple[list[str], dict]:
    """:func:`find`'s terms as SQL conditions on ``audits a`` and ``episodes e`` with their
    named parameters; a term that cannot be searched for goes in ``errors``."""
    where, params = ["TRUE"], {}
    if not _blank(number):
        text = str(number).strip()
        if isinstance(number, bool) or not text.isdigit() or not records.is_id(int(text)):
            errors["number"] = (f"'{text[:40]}' is not an audit number: type the number "
                                "shown as 'no. 12', digits only.")
        else:
            where.append("a.id = :number")
            params["number"] = int(text)
    if not _blank(ehm_number):
        if isinstance(ehm_number, str):
            where.append("lower(e.ehm_number) = lower(:ehm)")  # EHM101 or ehm101: one case
            params["ehm"] = ehm_number.strip()
        else:
            errors["ehm_number"] = "Type the EHM number as it is written, like EHM101385."
    auditor_id = _int(auditor_id, "auditor", errors, "person")
    if auditor_id is not None:
        where.append("(a.auditor1_id = :auditor OR a.auditor2_id = :auditor)")
        params["auditor"] = auditor_id
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        if not statuses or not set(statuses) <= set(STATUS_LABELS):
            errors["status"] = f"choose statuses from {', '.join(STATUS_LABELS)}."
        else:
            # || '': with several statuses SQLite walks the updated_at index newest first.
            column = "a.status || ''" if len(statuses) > 1 else "a.status"
            named = {f"status{i}": v for i, v in enumerate(statuses)}
            where.append(f"{column} IN ({', '.join(':' + k for k in named)})")
            params.update(named)
    days = {}
    for key, value, sign in (("audited_from", audited_from, ">="),
                             ("audited_to", audited_to, "<=")):
        days[key] = _iso_date(value, key, errors)
        if days[key] is not None:
            where.append(f"a.audit_date {sign} :{key}")
            params[key] = days[key]
    if None not in days.values() and days["audited_from"] > days["audited_to"]:
        errors["audited_to"] = (f"The 'to' date ({uk(days['audited_to'])}) is before the "
                                f"'from' date ({uk(days['audited_from'])}): swap them.")
    return where, params


def drafts(db: sqlite_utils.Database, auditor_id: int | None = None) -> list[dict]:
    """Draft audits (an auditor's own when ``auditor_id`` is given), newest first."""
    return find(db, status="draft", auditor_id=auditor_id, limit=500).rows


# -- checking ---------------------------------------------------------------------------------
def _normalise(db: sqlite_utils.Database, audit: Mapping, tpl: Template
               ) -> tuple[dict, dict, dict, list[dict], dict[str, str], dict[int, str]]:
    """The audit as rows to store, plus the problems that stop even a draft being stored,
    plus the names of the people it names (id -> name: those in the store).

    Those are values the store cannot hold: unknown keys, grades off the scale, dates that
    are not dates, people or episodes that do not exist.
    """
    errors: dict[str, str] = {}
    row: dict[str, Any] = {"template": tpl.key}
    row["episode_id"] = _int(audit.get("episode_id"), "episode", errors, "case")
    row["auditor1_id"] = _int(audit.get("auditor1_id"), "auditor1", errors, "person")
    row["auditor2_id"] = _int(audit.get("auditor2_id"), "auditor2", errors, "person")
    row["audit_date"] = _iso_date(audit.get("audit_date"), "audit_date", errors)
    for f in ("summary", "overall_reasons", "learning"):
        row[f] = _text(audit.get(f), f, errors)
    row["overall_grade"] = _int(audit.get("overall_grade"), OVERALL, errors, "grade")
    if why := rule.grade_on_scale(tpl, row["overall_grade"]):
        errors[OVERALL] = why
        row["overall_grade"] = None
    if row["episode_id"] is not None and not db.execute(
            "SELECT 1 FROM episodes WHERE id = ?", [row["episode_id"]]).fetchone():
        errors["episode"] = "That case is not in the store: choose the EHM number again."
    given = audit.get("actions") or []
    listed = isinstance(given, Iterable) and not isinstance(given, str | bytes | Mapping)
    given = list(given) if listed else []  # read once: the owners' names are read up front
    owners = [_int(a.get("owner_id"), "", {}, "") for a in given if isinstance(a, Mapping)]
    names = _names(db, [row["auditor1_id"], row["auditor2_id"], *owners])
    for f, key in (("auditor1_id", "auditor1"), ("auditor2_id", "auditor2")):
        if row[f] is not None and row[f] not in names:
            errors[key] = "That person is not in the store: choose again from the list."
    if why := rule.second_auditor_differs(row["auditor1_id"], row["auditor2_id"]):
        errors["auditor2"] = why

    graded = {s.key for s in tpl.graded_sections}
    known = tpl.answer_keys()
    responses = {c.value for c in tpl.question_choices}
    answers: dict[str, dict] = {}
    for key, a in _mapping(audit.get("answers"), "answers", errors,
                           "{'impact': {'grade': 2}}").items():
        if key not in known:
            errors[str(key)] = f"'{key}' is not a question on the {tpl.title}."
            continue
        a = _mapping(a, str(key), errors, "{'grade': 2, 'comment': '...'}")
        g = _int(a.get("grade"), key, errors, "grade")
        if g is not None and key not in graded:
            errors[key] = f"{g} is not a grade that can be given here."
            g = None
        elif why := rule.grade_on_scale(tpl, g):
            errors[key] = why
            g = None
        resp = a.get("response")
        resp = None if _blank(resp) else resp
        if resp is not None and (not isinstance(resp, str) or resp not in responses):
            errors[key] = f"'{resp}' is not an answer: choose " + " / ".join(
                c.label for c in tpl.question_choices) + "."
            resp = None
        clean = {"grade": g, "comment": _text(a.get("comment"), key, errors), "response": resp}
        if any(v is not None for v in clean.values()):
            answers[key] = clean

    items = {c.value for c in tpl.checklist}
    statuses = {c.value for c in tpl.checklist_choices}
    checklist: dict[str, dict] = {}
    for item, c in _mapping(audit.get("checklist"), "checklist", errors,
                            "{'consent': {'status': 'accurate'}}").items():
        if item not in items:
            errors[f"checklist.{item}"] = f"'{item}' is not on the basic-information checklist."
            continue
        c = _mapping(c, f"checklist.{item}", errors, "{'status': 'accurate', 'note': '...'}")
        status = None if _blank(c.get("status")) else c.get("status")
        if status is not None and (not isinstance(status, str) or status not in statuses):
            errors[f"checklist.{item}"] = f"'{status}' is not a choice here."
            status = None
        clean = {"status": status, "note": _text(c.get("note"), f"checklist.{item}", errors)}
        if any(v is not None for v in clean.values()):
            checklist[item] = clean

    actions: list[dict] = []
    if not listed:
        errors["actions"] = "actions should be a list of actions, each a dict of its fields."
    for a in given:
        n = len(actions) + 1
        a = _mapping(a, f"actions.{n}.action", errors, "{'action': '...', 'due_date': ...}")
        clean: dict[str, Any] = {"id": _int(a.get("id"), f"actions.{n}.action", errors,
                                            "saved action")}
        for f in ("action", "by_whom", "agreed_by", "completion_note"):
            clean[f] = _text(a.get(f), f"actions.{n}.{f}", errors)
        clean["owner_id"] = _int(a.get("owner_id"), f"actions.{n}.by_whom", errors, "person")
        if clean["owner_id"] is not None and clean["owner_id"] not in names:
            errors[f"actions.{n}.by_whom"] = ("That person is not in the store: choose again "
                                              "from the list.")
        for f in ACTION_DATES:
            clean[f] = _iso_date(a.get(f), f"actions.{n}.{f}", errors)
        if all(clean[f] is None for f in ACTION_FIELDS):
            continue  # an empty row left on the form
        clean["number"] = n
        actions.append(clean)
    return row, answers, checklist, actions, errors, names


def _section_grades(tpl: Template, answers: Mapping[str, Mapping]) -> dict[str, int | None]:
    return {s.key: (answers.get(s.key) or {}).get("grade") for s in tpl.graded_sections}


def problems(db: sqlite_utils.Database, audit: Mapping, *, today: dt.date | None = None
             ) -> dict[str, str]:
    """Every rule the audit breaks, as {field key: plain-words message}. Empty = submittable.

    Field keys: 'episode', 'auditor1', 'auditor2', 'audit_date', a graded section's key,
    'overall', 'overall_reasons', 'actions', 'actions.N.<column>' (N counts from 1).
    """
    tpl = template_of(audit)
    row, answers, checklist, actions, found, _ = _normalise(db, audit, tpl)
    found = dict(found)
    today = today or dt.date.today()

    def need(key: str, message: str | None) -> None:
        if message:
            found.setdefault(key, message)

    need("episode", rule.case_chosen(row["episode_id"]))
    need("auditor1", rule.auditor_chosen(row["auditor1_id"]))
    need("audit_date", rule.audit_date_given(row["audit_date"]))
    case = case_information(db, row["episode_id"]) if "episode" not in found else None
    if case:
        line_manager_of = {case["lead_professional_id"]: case["lead_line_manager_id"]}
        for f, key in (("auditor1_id", "auditor1"), ("auditor2_id", "auditor2")):
            if row[f] is not None and key not in found:
                why = conflict_of_interest(row[f], case["lead_professional_id"],
                                           case["team_manager_id"], line_manager_of)
                need(key, why and why + " Choose another auditor.")
        need("audit_date", rule.audit_date_not_before_episode(row["audit_date"],
                                                              case["episode_start"]))
    need("audit_date", rule.audit_date_not_in_future(row["audit_date"], today))

    section_grades = _section_grades(tpl, answers)
    comments = {k: a["comment"] for k, a in answers.items()}
    for s in tpl.graded_sections:
        missing = [why for why in (rule.section_graded(section_grades[s.key]),
                                   rule.section_evidenced(tpl, s, comments)) if why]
        if missing:
            need(s.key, f"Section {s.number}: " + " and ".join(missing) + ".")

    need(OVERALL, rule.overall_graded(row["overall_grade"])
         or rule.overall_reflects_sections(tpl, section_grades, row["overall_grade"]))
    need("overall_reasons", rule.overall_reasons_given(row["overall_reasons"]))
    need("actions", rule.actions_where_needed(
        tpl, [*section_grades.values(), row["overall_grade"]], len(actions)))
    for a in actions:
        for f, why in _action_problems(a, row["audit_date"], today).items():
            need(f"actions.{a['number']}.{f}", f"Action {a['number']}: {why}.")
    for r, why in council_problems({**row, "answers": answers, "checklist": checklist,
                                    "actions": actions, "case": case}):
        need(r.fields[0], why)
    return found


def _action_problems(action: Mapping, audit_date: str | None, today: dt.date) -> dict[str, str]:
    """The action rules one action breaks, as {column: what to put right} (its dates are
    the rules the action tracker and ``ehkit check`` ask too)."""
    found = {
        "action": rule.action_described(action.get("action")),
        "by_whom": rule.action_owned(action.get("by_whom"), action.get("owner_id")),
        "due_date": (rule.action_due_date_given(action.get("due_date"))
                     or rule.action_due_after_audit(action.get("due_date"), audit_date)),
        "completed_date": (
            rule.action_completed_not_in_future(action.get("completed_date"), today)
            or rule.action_completed_after_audit(action.get("completed_date"), audit_date)),
    }
    return {f: why for f, why in found.items() if why}


# -- writing ----------------------------------------------------------------------------------
def _status(db: sqlite_utils.Database, audit_id: int, expected_version: int | None = None
            ) -> dict:
    """The audit's row now (its status, auditor 1...); inside a write, also refuse unless it
    is at the version the person loaded (StaleRecord)."""
    r = next(db.query("SELECT * FROM audits WHERE id = ?", [audit_id]), None)
    if r is None:
        raise AuditNotFound(f"there is no audit number {audit_id}: it may have been deleted; "
                            "start a new audit")
    records.expect(db, "audit", audit_id, expected_version)
    return dict(r)


def _own(db: sqlite_utils.Database, me: access.Person, audit_id: int, doing: str) -> int:
    """Refuse (NotAllowed) unless the logged-in person is auditor 1 or 2 of the audit;
    return its auditor 1."""
    r = db.execute("SELECT auditor1_id, auditor2_id FROM audits WHERE id = ?",
                   [audit_id]).fetchone()
    if r is None:
        raise AuditNotFound(f"there is no audit number {audit_id}: it may have been deleted; "
                            "start a new audit")
    access.refuse_unless_own(me, r, doing)
    return r[0]


def _locked_message(status: str) -> str:
    return (f"This audit is {STATUS_LABELS[status].lower()}: to change it, reopen it and "
            "give the reason.")


def save_draft(db: sqlite_utils.Database, audit: Mapping, *, audit_id: int | None = None) -> int:
    """Store the audit and all its answers, checklist and actions in one transaction.

    A draft may be incomplete; it needs only the case, auditor 1 and the audit date (the
    store keys an audit on them). Returns the audit's id. Raises AuditRuleError for values
    the store cannot hold and for a submitted or moderated audit (reopen it first), and
    StaleRecord when anyone changed the audit after ``audit['version']`` was loaded.
    """
    tpl = template_of(audit)
    audit_id = audit_id if audit_id is not None else audit.get("id")
    audit_id = None if audit_id is None else _audit_number(audit_id)
    me = access.require(db, "audit")
    if not me.one_person:  # auditor 1 is the login's practitioner, whatever the page sent
        audit = {**audit, "auditor1_id": _own(db, me, audit_id, "changing this audit")
                 if audit_id is not None else me.practitioner_id}
    row, answers, checklist, actions, errors, names = _normalise(db, audit, tpl)
    for f, key, msg in (("episode_id", "episode", "Choose the case before saving."),
                        ("auditor1_id", "auditor1", "Choose auditor 1 before saving."),
                        ("audit_date", "audit_date", "Enter the audit date before saving.")):
        if row[f] is None:
            errors.setdefault(key, msg)
    if errors:
        raise AuditRuleError(errors)
    actor = access.actor_name(me, names.get(row["auditor1_id"]))
    with store.acting_as(actor=actor), store.transaction(db):
        new = audit_id is None
        if new:
            audit_id = db["audits"].insert({**row, "status": "draft", "updated_at": _now()}).last_pk
        else:
            old = _status(db, audit_id, audit.get("version"))
            if old["status"] != "draft":
                raise AuditRuleError({"status": _locked_message(old["status"])})
            changed = {k: v for k, v in row.items() if old.get(k) != v}
            changed["updated_at"] = _now()
            db["audits"].update(audit_id, changed)
        _replace_children(db, audit_id, answers, checklist, actions, new=new)
    return audit_id


def save_and_load(db: sqlite_utils.Database, audit: Mapping, *,
                  audit_id: int | None = None) -> dict:
    """:func:`save_draft`, then the audit as this save left it (read in the same
    transaction, so its version is this save's and not a later one's)."""
    with store.transaction(db):
        return load(db, save_draft(db, audit, audit_id=audit_id))


def _replace_children(db, audit_id: int, answers: dict, checklist: dict, actions: list[dict],
                      *, new: bool = False):
    """Make the child rows equal to the given ones, touching only what changed. A ``new``
    audit has none yet (its id is new: a deleted audit's rows went with it), so nothing is
    read back and every row is a plain insert."""
    if new:
        _insert_children(db, audit_id, answers, checklist, actions)
        return
    old_answers = {r["key"]: {"grade": r["grade"], "comment": r["comment"],
                              "response": r["response"]}
                   for r in db.query("SELECT * FROM answers WHERE audit_id = ?", [audit_id])}
    gone = [k for k in old_answers if k not in answers]
    if gone:
        db.execute(f"DELETE FROM answers WHERE audit_id = ? AND key IN ({','.join('?' * len(gone))})",
                   [audit_id, *gone])
    new = [{"audit_id": audit_id, "key": k, **v} for k, v in answers.items()
           if old_answers.get(k) != v]
    if new:
        db["answers"].upsert_all(new, pk=("audit_id", "key"))

    old_check = {r["item"]: {"status": r["status"], "note": r["note"]}
                 for r in db.query("SELECT * FROM checklist_answers WHERE audit_id = ?",
                                   [audit_id])}
    gone = [k for k in old_check if k not in checklist]
    if gone:
        db.execute("DELETE FROM checklist_answers WHERE audit_id = ? AND item IN "
                   f"({','.join('?' * len(gone))})", [audit_id, *gone])
    new = [{"audit_id": audit_id, "item": k, **v} for k, v in checklist.items()
           if old_check.get(k) != v]
    if new:
        db["checklist_answers"].upsert_all(new, pk=("audit_id", "item"))

    # Actions keep their ids (the action tracker refers to them): match by id, else number.
    old_actions = {r["id"]: dict(r) for r in db.query(
        "SELECT * FROM actions WHERE audit_id = ?", [audit_id])}
    by_number = {r["number"]: i for i, r in old_actions.items()}
    keep: dict[int, dict] = {}
    inserts = []
    for a in actions:
        aid = a.get("id")
        aid = aid if aid in old_actions and aid not in keep else by_number.get(a["number"])
        if aid is not None and aid not in keep:
            keep[aid] = a
        else:
            inserts.append(a)
    gone = [i for i in old_actions if i not in keep]
    if gone:
        db.execute(f"DELETE FROM actions WHERE id IN ({','.join('?' * len(gone))})", gone)
    moved = [i for i, a in keep.items() if old_actions[i]["number"] != a["number"]]
    for i in moved:  # park renumbered rows first so UNIQUE(audit_id, number) never clashes
        db.execute("UPDATE actions SET number = ? WHERE id = ?", [1_000_000 + i, i])
    for i, a in keep.items():
        fields = {f: a[f] for f in (*ACTION_FIELDS, "number")}
        fields = {f: v for f, v in fields.items() if old_actions[i].get(f) != v or i in moved}
        if fields:
            db["actions"].update(i, fields)
    if inserts:
        _insert_actions(db, audit_id, inserts)


def _insert_children(db, audit_id: int, answers: dict, checklist: dict, actions: list[dict]):
    if answers:
        db["answers"].insert_all([{"audit_id": audit_id, "key": k, **v}
                                  for k, v in answers.items()])
    if checklist:
        db["checklist_answers"].insert_all([{"audit_id": audit_id, "item": k, **v}
                                            for k, v in checklist.items()])
    if actions:
        _insert_actions(db, audit_id, actions)


def _insert_actions(db, audit_id: int, actions: list[dict]):
    db["actions"].insert_all(
        [{"audit_id": audit_id, "number": a["number"], **{f: a[f] for f in ACTION_FIELDS},
          "action": a["action"] or ""} for a in actions])


def submit(db: sqlite_utils.Database, audit_id: int, *, today: dt.date | None = None,
           expected_version: int | None = None) -> None:
    """Submit a draft: every rule must be met, else AuditRuleError lists what to fix.

    ``expected_version`` is the version the person loaded (StaleRecord if it moved on).
    """
    audit_id = _audit_number(audit_id)
    me = access.require(db, "audit")
    with store.transaction(db):  # checked and written as one, so nothing slips in between
        _status(db, audit_id, expected_version)
        _own(db, me, audit_id, "submitting this audit")
        audit = load(db, audit_id)
        if audit["status"] != "draft":
            raise AuditRuleError({"status": f"This audit is already {audit['status']}."})
        found = problems(db, audit, today=today)
        if found:
            raise AuditRuleError(found)
        now = _now()
        with store.acting_as(actor=access.actor_name(me, audit["auditor1"])):
            db["audits"].update(audit_id, {"status": "submitted", "submitted_at": now[:19] + "Z",
                                           "updated_at": now})


def reopen(db: sqlite_utils.Database, audit_id: int, reason: str, *, by: str | None = None,
           expected_version: int | None = None) -> None:
    """Put a submitted or moderated audit back to draft; the reason goes in the change log.

    ``expected_version`` is the version the person loaded (StaleRecord if it moved on).
    """
    audit_id = _audit_number(audit_id)
    errors: dict[str, str] = {}
    reason = _text(reason, "reason", errors)
    if reason is None:
        errors.setdefault("reason", "Give the reason for reopening this audit; it is kept in "
                                    "the audit's history.")
    if by is not None and not isinstance(by, str):
        errors["by"] = "Name who is reopening the audit in words."
    if errors:
        raise AuditRuleError(errors)
    me = access.require(db, "audit")
    with store.transaction(db):
        now = _status(db, audit_id, expected_version)
        _own(db, me, audit_id, "reopening this audit")
        if now["status"] == "draft":
            raise AuditRuleError({"status": "This audit is already a draft: no need to reopen "
                                            "it."})
        actor = access.actor_name(me, by or _name(db, now["auditor1_id"]))
        with store.acting_as(actor=actor, reason=reason):
            db["audits"].update(audit_id, {"status": "draft", "submitted_at": None,
                                           "updated_at": _now()})


def moderate(db: sqlite_utils.Database, audit_id: int, moderator_id: int,
             grades: Mapping[str, int | None], reasons: Mapping[str, str | None], *,
             on: dt.date | None = None, expected_version: int | None = None) -> None:
    """Record moderation: the moderator's grade for each graded section and 'overall'.

    A key left out (or None) means the moderator agrees with the auditor's grade. Both
    grades are kept; a changed grade needs a reason; the moderated overall grade must
    reflect the moderated section grades as the template's rule says. The grades agreed
    with are the ones stored when the moderation is written, and ``expected_version`` (the
    version the moderator loaded) makes sure they are the ones the moderator saw.
    """
    audit_id = _audit_number(audit_id)
    found: dict[str, str] = {}
    grades = _mapping(grades, "grades", found, "{'impact': 3}")
    reasons = _mapping(reasons, "reasons", found, "{'impact': 'why it changed'}")
    if not isinstance(on, dt.date | None) or isinstance(on, dt.datetime):
        found["on"] = "The moderation date should be a date, like 2026-11-24."
    if found:
        raise AuditRuleError(found)
    me = access.require(db, "moderate")
    if not me.one_person:  # the moderator is the login's practitioner, whatever was sent
        moderator_id = me.practitioner_id
    with store.transaction(db):  # read, checked and written as one: nothing slips in between
        _status(db, audit_id, expected_version)
        audit = load(db, audit_id)
        if not me.one_person and moderator_id in (audit["auditor1_id"], audit["auditor2_id"]):
            raise access.NotAllowed(f"An audit is moderated by someone who did not write it; "
                                    f"your login '{me.login}' is one of its auditors")
        moderator, rows = _moderations(db, audit, moderator_id, grades, reasons,
                                       on or dt.date.today())
        with store.acting_as(actor=access.actor_name(me, moderator)):
            for r in rows:  # UNIQUE(audit_id, key, moderator_id): a second look replaces one
                db.execute("INSERT INTO moderations (audit_id, key, moderator_id, moderated_on,"
                           " original_grade, moderated_grade, reason) VALUES (?, ?, ?, ?, ?, ?,"
                           " ?) ON CONFLICT (audit_id, key, moderator_id) DO UPDATE SET"
                           " moderated_on = excluded.moderated_on,"
                           " original_grade = excluded.original_grade,"
                           " moderated_grade = excluded.moderated_grade, reason = excluded.reason",
                           [r["audit_id"], r["key"], r["moderator_id"], r["moderated_on"],
                            r["original_grade"], r["moderated_grade"], r["reason"]])
            db["audits"].update(audit_id, {"status": "moderated", "updated_at": _now()})


def _moderations(db: sqlite_utils.Database, audit: Mapping, moderator_id: Any,
                 grades: Mapping, reasons: Mapping, day: dt.date) -> tuple[str, list[dict]]:
    """The moderator's name and the moderation rows to store, or AuditRuleError saying
    what to put right."""
    tpl = template_of(audit)
    found: dict[str, str] = {}
    if audit["status"] == "draft":
        raise AuditRuleError({"status": "Only a submitted audit can be moderated: "
                                        "submit it first."})
    moderator_id = _int(moderator_id, "moderator", found, "person")
    moderator = _name(db, moderator_id)
    if moderator is None:
        found["moderator"] = "Choose the moderator from the list."
    elif why := rule.moderator_not_auditor(moderator_id, audit["auditor1_id"]):
        found["moderator"] = why
    else:
        case = audit["case"]
        why = conflict_of_interest(moderator_id, case["lead_professional_id"],
                                   case["team_manager_id"],
                                   {case["lead_professional_id"]: case["lead_line_manager_id"]})
        if why:
            found["moderator"] = why + " Choose another moderator."
    keys = [s.key for s in tpl.graded_sections] + [OVERALL]
    original = {k: (audit["answers"].get(k) or {}).get("grade") for k in keys[:-1]}
    original[OVERALL] = audit["overall_grade"]
    moderated: dict[str, int | None] = {}
    for k in grades:
        if k not in keys:
            found[str(k)] = f"'{k}' is not a graded part of this audit."
    why_changed = {k: _text(reasons.get(k), k, found) for k in keys}
    for k in keys:
        g = grades.get(k)
        if _blank(g):
            moderated[k] = original[k]
            continue
        g = _int(g, k, found, "grade")
        if why := rule.grade_on_scale(tpl, g):
            found[k] = why
        moderated[k] = g
        if why := rule.changed_grade_has_reason(original[k], g, why_changed[k]):
            found.setdefault(k, why)
    section_moderated = {k: moderated[k] for k in keys[:-1]}
    why = rule.overall_reflects_sections(tpl, section_moderated, moderated[OVERALL])
    if why:
        found.setdefault(OVERALL, why)
    if found:
        raise AuditRuleError(found)
    return moderator, [{"audit_id": audit["id"], "key": k, "moderator_id": moderator_id,
                        "moderated_on": day.isoformat(), "original_grade": original[k],
                        "moderated_grade": moderated[k], "reason": why_changed[k]}
                       for k in keys if moderated[k] is not None]


# -- outputs for the record -------------------------------------------------------------------
def case_note(db: sqlite_utils.Database, audit_id: int) -> str:
    """The case-note text guidance 2 asks for: auditor name, date audited and grading. Each
    grade is the one that counts; where a moderator changed it, the auditor's follows."""
    a = load(db, audit_id)
    tpl = template_of(a)
    who = a["auditor1"] + (f" and {a['auditor2']}" if a["auditor2"] else "")
    lines = [f"Case audit ({tpl.title}) of {a['case']['ehm_number']}.",
             f"Audited by: {who}.",
             f"Date audited: {uk(a['audit_date'])}."]
    standing = standing_moderation(a)
    moderators = dict.fromkeys(f"{m['moderator']} on {uk(m['moderated_on'])}"
                               for m in standing.values())
    if moderators:
        lines.append(f"Moderated by: {', '.join(moderators)}.")

    def grading(key: str, auditors: int | None) -> str:
        m = standing.get(key)
        if m is None or m["moderated_grade"] == auditors:
            return tpl.grade_label(auditors)
        return (f"{tpl.grade_label(m['moderated_grade'])} (moderated; the auditor's grading: "
                f"{tpl.grade_label(auditors)})")

    lines.append(f"Overall grading: {grading(OVERALL, a['overall_grade'])}.")
    for s in tpl.graded_sections:
        lines.append(f"  {s.number}. {s.title}: "
                     f"{grading(s.key, (a['answers'].get(s.key) or {}).get('grade'))}")
    lines.append(f"Status: {STATUS_LABELS[a['status']]}.")
    return "\n".join(lines)


def render_record(db: sqlite_utils.Database, audit_id: int) -> str:
    """The completed audit as an HTML page laid out like the paper tool (text escaped)."""
    import jinja2  # only the printable record needs it

    a = load(db, audit_id)
    me = access.person(db)
    if not me.may("print_any_record"):
        if not me.may("print_own_records"):
            raise access.NotAllowed(access.refusal(me, "print_own_records"))
        mine = {a["auditor1_id"], a["auditor2_id"], *(m["moderator_id"] for m in a["moderations"])}
        access.refuse_unless_own(me, mine, "printing this audit's record")
    a["case"] = access.case_details(db, a["case"], me)
    tpl = template_of(a)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(home.folders("templates")),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["uk_date"] = uk  # stored ISO, printed 16/09/2015
    return env.get_template("record.html.j2").render(
        a=a, tpl=tpl, case_values=_case_values(db, a), note=case_note(db, audit_id),
        moderation=[m for m in a["moderations"] if m["counts"]],
        earlier=[m for m in a["moderations"] if not m["counts"]],
        status=STATUS_LABELS[a["status"]],
        printed=dt.date.today().isoformat(),
        responses={c.value: c.label for c in tpl.question_choices},
        checklist_labels={c.value: c.label for c in tpl.checklist_choices})


def _case_values(db: sqlite_utils.Database, a: Mapping) -> dict[str, str | None]:
    """What each case-information field of the template shows on the record."""
    def who(pid):
        r = db.execute("SELECT name, role FROM practitioners WHERE id = ?", [pid]).fetchone()
        return None if r is None else (f"{r[0]} ({r[1]})" if r[1] else r[0])

    c = dict(a["case"] or {})
    if c.get("cross_authority"):
        c["cross_authority_contact"] = (f"{c.get('cross_authority_name') or ''}: "
                                        f"{c.get('cross_authority_contact') or 'not recorded'}")
    else:
        c["cross_authority_contact"] = "Not a cross-authority assessment"
    return {**{k: (None if v is None else str(v)) for k, v in c.items()},
            "audit_date": a["audit_date"], "auditor1": who(a["auditor1_id"]),
            "auditor2": who(a["auditor2_id"])}


def record_path(db: sqlite_utils.Database, audit_id: int,
                out_dir: str | Path = "reports/audits") -> Path:
    audit_id = _audit_number(audit_id)
    a = db.execute("SELECT e.ehm_number, a.audit_date FROM audits a JOIN episodes e"
                   " ON e.id = a.episode_id WHERE a.id = ?", [audit_id]).fetchone()
    if a is None:
        raise AuditNotFound(f"there is no audit number {audit_id}")
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in a[0])
    # The audit's number too: two audits of one case on one day are two records.
    return Path(out_dir) / f"{safe}-{a[1]}-audit-{audit_id}.html"


def print_record(db: sqlite_utils.Database, audit_id: int,
                 out_dir: str | Path = "reports/audits") -> Path:
    """Write the printable record to ``<out_dir>/<EHM>-<audit date>-audit-<number>.html``;
    return its path."""
    html = render_record(db, audit_id)
    path = record_path(db, audit_id, out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path
