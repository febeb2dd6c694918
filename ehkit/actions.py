"""The action tracker: every recommended action from every audit, and whether it is done.

An action's state on a day is one rule, :func:`state`, which the tracker form, the
``ehkit actions overdue`` command and the reports all ask:

- completed: it has a completed date;
- overdue: not completed and its due date is before the day (a due date is a date, so an
  action due on Friday is overdue from Saturday, weekends and month ends included);
- due this week: not completed and due within the seven days starting on the day;
- open: anything else (due later, or no due date yet).

Actions of draft audits are not listed: they become recommendations when the audit is
submitted. Team and agency are the owner's; without an owner, the episode's lead
professional's team and the episode's lead agency.

Actions are read first and their audit looked up (``CROSS JOIN``, SQLite's way to fix the
order): given the view ``counted_audits``, SQLite would otherwise start from every counted
audit by status and read all their actions, not the period's by due date.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Iterable

import sqlite_utils

from . import access, dates, records
from . import db as store
from .errors import EhkitError
from .records import StaleRecord  # noqa: F401 - raised here; callers catch it from here too
from .rules import audit as rule

STATES = ("open", "due this week", "overdue", "completed")
NEEDS_ATTENTION = ("overdue", "due this week")  # what the tracker opens on
DUE_SOON_DAYS = 7


class ActionError(EhkitError):
    """An action cannot be changed as asked; the message says why and what to do."""


# A wrong date given to the tracker is the tracker's error.
_as_date = functools.partial(dates.as_date, error=ActionError)


def state(due_date, completed_date, on) -> str:
    """The action's state on the day ``on`` (see the module docstring)."""
    if completed_date:
        return "completed"
    if not due_date:
        return "open"
    due, today = _as_date(due_date, "due date"), _as_date(on, "day")
    if due < today:
        return "overdue"
    if (due - today).days < DUE_SOON_DAYS:
        return "due this week"
    return "open"


# {audits}: counted_audits for the tracker (a draft's actions are not listed), audits to get
# one action by its number whatever its audit's state; filters follow the WHERE with AND.
# The CROSS JOIN's condition is in the WHERE: PostgreSQL reads it so (a CROSS JOIN has no ON
# there), and SQLite still reads actions first.
_SELECT = """
SELECT a.id, a.audit_id, a.number, a.action, a.by_whom, a.owner_id, o.name AS owner,
       coalesce(o.team, lp.team) AS team, ag.id AS agency_id, ag.name AS agency,
       a.due_date, a.discussed_date, a.agreed_by, a.completed_date, a.completion_note,
       e.id AS episode_id, e.ehm_number, au.audit_date
FROM actions a
CROSS JOIN {audits} au
JOIN episodes e ON e.id = au.episode_id
LEFT JOIN practitioners o ON o.id = a.owner_id
LEFT JOIN practitioners lp ON lp.id = e.lead_professional_id
LEFT JOIN agencies ag ON ag.id = coalesce(o.agency_id, e.lead_agency_id)
WHERE au.id = a.audit_id
"""


def tracker(
    db: sqlite_utils.Database,
    on,
    *,
    owner_id: int | None = None,
    team: str | None = None,
    agency_id: int | None = None,
    due_month: str | None = None,
    states: Iterable[str] | str | None = None,
) -> list[dict]:
    """The actions (as dicts with their ``state`` on ``on``), filtered; due date order.

    ``due_month`` is ``YYYY-MM``; ``states`` one or more of :data:`STATES`.
    """
    on = _as_date(on, "day")
    sql, params = _SELECT.format(audits="counted_audits"), {}
    owner_id = None if owner_id is None else _number(owner_id, "owner")
    agency_id = None if agency_id is None else _number(agency_id, "agency")
    if not isinstance(team, str | None) or not isinstance(due_month, str | None):
        raise ActionError("the team and the due month (YYYY-MM) are given as text")
    if owner_id is not None:
        sql += " AND a.owner_id = :owner"
        params["owner"] = owner_id
    if team:
        sql += " AND coalesce(o.team, lp.team) = :team"
        params["team"] = team
    if agency_id is not None:
        sql += " AND ag.id = :agency"
        params["agency"] = agency_id
    if due_month:
        sql += " AND substr(a.due_date, 1, 7) = :month"
        params["month"] = due_month
    sql += " ORDER BY a.due_date IS NULL, a.due_date, a.audit_id, a.number"
    try:
        wanted = {states} if isinstance(states, str) else set(states or ())
    except TypeError:
        raise ActionError(f"states should be one or more of {', '.join(STATES)}") from None
    unknown = wanted - set(STATES)
    if unknown:
        raise ActionError(f"unknown action state(s) {sorted(unknown)}: use {', '.join(STATES)}")
    out = []
    for row in db.query(sql, params):
        row["state"] = state(row["due_date"], row["completed_date"], on)
        if not wanted or row["state"] in wanted:
            out.append(row)
    return out


def reader(db: sqlite_utils.Database) -> access.Person:
    """The person reading the tracker, if they may: each action names its case and says in
    free text what is to be done, so it is the coordinator's and theirs who see every case
    (NotAllowed else). :func:`tracker` itself does not ask: the reports read it, and their
    audience decides what they show."""
    return access.require_any(db, "reading the action tracker", "actions", "see_all_cases")


def tracker_for(db: sqlite_utils.Database, on, **filters) -> list[dict]:
    """:func:`tracker` as a person reads it (the tracker form): only for a :func:`reader`."""
    reader(db)
    return tracker(db, on, **filters)


def overdue(db: sqlite_utils.Database, on) -> list[dict]:
    """Actions overdue on ``on``, each with ``days_overdue``, oldest due first (for a
    :func:`reader`)."""
    on = _as_date(on, "day")
    rows = tracker_for(db, on, states="overdue")
    for r in rows:
        r["days_overdue"] = (on - _as_date(r["due_date"])).days
    return rows


def completion(db: sqlite_utils.Database, start, end) -> dict:
    """Actions due from ``start`` to ``end`` (inclusive) and what became of them by ``end``.

    ``due``: actions due in the period; ``completed_on_time``: completed on or before their
    due date; ``completed_late``: completed after it but by ``end``; ``not_completed``: not
    completed by ``end``; ``completed_in_period``: any action completed in the period.
    """
    start, end = _as_date(start, "start"), _as_date(end, "end")
    p = {"start": start.isoformat(), "end": end.isoformat()}
    due, on_time, late = db.execute(
        """SELECT count(*),
                  coalesce(sum(CASE WHEN a.completed_date <= a.due_date THEN 1 ELSE 0 END), 0),
                  coalesce(sum(CASE WHEN a.completed_date > a.due_date
                                     AND a.completed_date <= :end THEN 1 ELSE 0 END), 0)
           FROM actions a CROSS JOIN counted_audits au
           WHERE au.id = a.audit_id AND a.due_date BETWEEN :start AND :end""", p).fetchone()
    done_in_period = db.execute(
        """SELECT count(*) FROM actions a CROSS JOIN counted_audits au
           WHERE au.id = a.audit_id AND a.completed_date BETWEEN :start AND :end""",
        p).fetchone()[0]
    return {
        "due": due,
        "completed_on_time": on_time,
        "completed_late": late,
        "not_completed": due - on_time - late,
        "on_time_pct": round(100 * on_time / due, 1) if due else None,
        "completed_in_period": done_in_period,
    }


def _number(value, what: str) -> int:
    return records.record_id(value, what, ActionError)


def _words(value, what: str, action_id: int) -> str:
    """Text a person typed, stripped; ActionError when it is blank or not text."""
    if not isinstance(value, str | None):
        raise ActionError(f"the {what} should be text, not {type(value).__name__}")
    if not (value or "").strip():
        raise ActionError(f"give the {what}")
    return value.strip()


def _get(db: sqlite_utils.Database, action_id: int) -> dict:
    action_id = _number(action_id, "action")
    rows = list(db.query(_SELECT.format(audits="audits") + " AND a.id = :id",
                         {"id": action_id}))
    if not rows:
        raise ActionError(f"there is no action {action_id}: check the number in the tracker")
    return rows[0]


def get(db: sqlite_utils.Database, action_id: int, on=None) -> dict:
    """One action with its state on ``on`` and its ``version`` (:mod:`ehkit.records`):
    pass that back to complete or reassign what was shown. Only for a :func:`reader`."""
    reader(db)
    version = records.version(db, "action", _number(action_id, "action"))  # first: see load
    row = _get(db, action_id)
    row["state"] = state(row["due_date"], row["completed_date"], on or dt.date.today())
    row["version"] = version
    return row


@contextlib.contextmanager
def _changing(db: sqlite_utils.Database, action_id: int, expected_version: int | None, *,
              actor: str | None = None, reason: str | None = None):
    """The write's transaction, refused (StaleRecord) if the action moved on from the
    version the person saw, and the action as it is now."""
    with access.acting(db, "actions", label=actor, reason=reason), store.transaction(db):
        row = _get(db, action_id)
        records.expect(db, "action", row["id"], expected_version)
        yield row


def complete(db: sqlite_utils.Database, action_id: int, completed_on, note: str,
             *, actor: str | None = None, today=None, expected_version: int | None = None
             ) -> None:
    """Mark an action completed on a date, with a note saying what was done.

    ``expected_version`` is the version :func:`get` gave (StaleRecord if it moved on).
    """
    action_id = _number(action_id, "action")
    day = _as_date(completed_on, "completed date").isoformat()
    if why := rule.action_completed_not_in_future(day, _as_date(today or dt.date.today(),
                                                                "today")):
        raise ActionError(why)
    note = _words(note, "completion note (what was done)", action_id)
    with _changing(db, action_id, expected_version, actor=actor) as row:
        if why := rule.action_completed_after_audit(day, _as_date(row["audit_date"]).isoformat()):
            raise ActionError(why)
        db["actions"].update(action_id, {"completed_date": day,
                                         "completion_note": note})


def reassign(db: sqlite_utils.Database, action_id: int, owner_id: int, reason: str,
             *, actor: str | None = None, expected_version: int | None = None) -> None:
    """Give an action to another practitioner; the reason is kept in the change log.

    ``expected_version`` is the version :func:`get` gave (StaleRecord if it moved on).
    """
    action_id = _number(action_id, "action")
    if owner_id is None:
        raise ActionError("choose the practitioner who will own the action")
    owner_id = _number(owner_id, "owner")
    reason = _words(reason, "reason for reassigning it", action_id)
    with _changing(db, action_id, expected_version, actor=actor, reason=reason) as row:
        owner = db.execute("SELECT name FROM practitioners WHERE id = ?", [owner_id]).fetchone()
        if owner is None:
            raise ActionError(f"there is no practitioner number {owner_id} to own the "
                              "action: choose one from the list")
        if row["owner_id"] == owner_id:
            raise ActionError(f"the action is already owned by {owner[0]}")
        db["actions"].update(action_id, {"owner_id": owner_id, "by_whom": owner[0]})


def owners(db: sqlite_utils.Database) -> list[tuple[str, int]]:
    """(name, id) of everyone who owns an action, for a filter's choices."""
    return [(f"{r[1]} ({r[2] or 'no team'})", r[0]) for r in db.execute(
        "SELECT DISTINCT p.id, p.name, p.team FROM actions a JOIN practitioners p"
        " ON p.id = a.owner_id ORDER BY p.name, p.id")]


def format_overdue(rows: list[dict], on) -> str:
    """The overdue list as plain text, for a terminal or a cron email."""
    on = _as_date(on, "day")
    if not rows:
        return f"No actions overdue on {dates.uk(on)}."
    lines = [f"{len(rows)} action(s) overdue on {dates.uk(on)}:"]
    for r in rows:
        lines.append(
            f"  {dates.uk(r['due_date'])} ({r['days_overdue']} days)  audit {r['audit_id']} action "
            f"{r['number']}  {r['ehm_number']}  {r['owner'] or r['by_whom'] or 'no owner'}"
            f" [{r['team'] or 'no team'}]: {r['action']}")
    return "\n".join(lines)


def filter_choices(db: sqlite_utils.Database) -> dict[str, list[tuple[str, object]]]:
    """The choices of the tracker's filters: owners, teams, agencies and due months."""
    listed = "FROM actions a CROSS JOIN counted_audits au"  # its condition: each WHERE
    team = "coalesce(o.team, lp.team)"  # PostgreSQL's WHERE knows no column alias
    return {
        "owners": owners(db),
        "teams": [(r[0], r[0]) for r in db.execute(
            f"SELECT DISTINCT {team} AS t {listed} JOIN episodes e"
            " ON e.id = au.episode_id LEFT JOIN practitioners o ON o.id = a.owner_id"
            " LEFT JOIN practitioners lp ON lp.id = e.lead_professional_id"
            f" WHERE au.id = a.audit_id AND {team} IS NOT NULL ORDER BY t")],
        "agencies": [(r[1], r[0]) for r in db.execute("SELECT id, name FROM agencies ORDER BY name")],
        "months": [(r[0], r[0]) for r in db.execute(
            f"SELECT DISTINCT substr(a.due_date, 1, 7) AS m {listed} WHERE au.id = a.audit_id"
            " AND a.due_date IS NOT NULL ORDER BY m DESC")],
    }


def practitioner_choices(db: sqlite_utils.Database) -> list[tuple[str, int]]:
    """(label, id) of every practitioner, for a form's dropdown."""
    return [(f"{r[1]} ({r[2] or r[3] or 'no team'})", r[0]) for r in db.execute(
        "SELECT p.id, p.name, p.team, ag.name FROM practitioners p JOIN agencies ag"
        " ON ag.id = p.agency_id ORDER BY p.name, p.id")]
