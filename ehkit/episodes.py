"""Finding a case: an episode from its id or EHM number, and what the forms show about it.

The audit form, the feedback and self-assessment forms, the feedback import and an asked-for
audit (:func:`ehkit.sampling.request`) all find an episode with :func:`find_episode`.
"""

from __future__ import annotations

import datetime as dt

import sqlite_utils

from . import dates, records
from . import db as store
from .errors import EhkitError
from .settings import SettingsError, source
from .settings import get as setting


class CaseNotFound(EhkitError):
    """No episode of that id or EHM number (by that date)."""


def stored_ehm(db: sqlite_utils.Database, ehm_number) -> str:
    """The EHM number as the store spells it, matched whatever its case (``ehm101385`` finds
    EHM101385), else as typed. The exact spelling is tried first, on the index; only a number
    typed in another case is looked for letter-case-blind."""
    ehm = str(ehm_number or "").strip()
    blind = ("lower(ehm_number) = lower(?)" if store.is_postgres(db)  # its = minds case
             else "ehm_number = ? COLLATE NOCASE")
    for match in ("ehm_number = ?", blind):
        row = db.execute(f"SELECT ehm_number FROM episodes WHERE {match} LIMIT 1",
                         [ehm]).fetchone()
        if row:
            return row[0]
    return ehm


# How an episode began and ended: codes the store keeps (its CHECKs) and the figures count
# (step-downs, step-ups, outcomes achieved), so they are fixed; the settings
# ``episodes.began_as`` and ``episodes.ended_as`` give each its label.
BEGAN_AS = ("new_request", "step_down", "other")
ENDED_AS = ("outcomes_achieved", "stepped_up", "stepped_down_universal", "disengaged",
            "moved_away", "other")


def labels(key: str) -> dict[str, str]:
    """The settings' labels of how an episode began (``began_as``) or ended (``ended_as``); a
    settings key that is not one of the store's codes is the settings' mistake, said so."""
    found = setting("episodes", key)
    codes = {"began_as": BEGAN_AS, "ended_as": ENDED_AS}[key]
    unknown = [k for k in found if k not in codes]
    if unknown:
        raise SettingsError(
            f"settings [episodes] {key} (in {source('episodes', key)}) has "
            f"{', '.join(map(repr, unknown))}, which is not one of the codes the store keeps: "
            f"{', '.join(codes)}. The codes are fixed (the figures count them): change only "
            "their labels")
    return found


def find_episode(db: sqlite_utils.Database, episode: int | str, on=None,
                 episode_start=None) -> int | None:
    """The episode's id, or None when there is none. An id is looked up as it is; an EHM
    number (a child may have had several episodes) gives the one that began on
    ``episode_start`` if given, else the latest that began by ``on`` (any day when not
    given). EHM numbers match whatever their case (:func:`stored_ehm`)."""
    if isinstance(episode, int) and not isinstance(episode, bool):
        found = db.execute("SELECT id FROM episodes WHERE id = ?",
                           [records.record_id(episode, "episode", CaseNotFound)]).fetchone()
    elif episode_start:
        found = db.execute("SELECT id FROM episodes WHERE ehm_number = ? AND start_date = ?",
                           [stored_ehm(db, episode),
                            dates.as_date(episode_start, "episode start", CaseNotFound)
                            .isoformat()]).fetchone()
    else:
        last = "9999-12-31" if on is None else dates.as_date(on, "day", CaseNotFound).isoformat()
        found = db.execute("SELECT id FROM episodes WHERE ehm_number = ? AND start_date <= ? "
                           "ORDER BY start_date DESC LIMIT 1",
                           [stored_ehm(db, episode), last]).fetchone()
    return found[0] if found else None


def episode_info(db: sqlite_utils.Database, episode: int | str) -> dict:
    """An episode (id or EHM number: its latest episode) with its lead agency, lead
    professional, team manager and children; CaseNotFound says what to check."""
    eid = find_episode(db, episode)
    if eid is None:
        raise CaseNotFound(f"no episode with EHM number or id {episode!r}: check the number, or "
                           "import the case list first (`ehkit import episodes FILE`)")
    row = next(db.query(
        """SELECT e.*, a.name AS lead_agency, a.kind AS lead_agency_kind,
                  lp.name AS lead_professional, lp.role AS lead_professional_role,
                  tm.name AS team_manager
           FROM episodes e JOIN agencies a ON a.id = e.lead_agency_id
           LEFT JOIN practitioners lp ON lp.id = e.lead_professional_id
           LEFT JOIN practitioners tm ON tm.id = e.team_manager_id
           WHERE e.id = ?""", [eid]))
    row["children"] = list(db.query(
        "SELECT name, date_of_birth FROM children WHERE episode_id = ? ORDER BY date_of_birth, id",
        [eid]))
    return row


def ehm_numbers(db: sqlite_utils.Database, limit: int = 5_000) -> list[str]:
    """EHM numbers to suggest on the form: open episodes, then those closed this past year.

    Any other number can still be typed. Each half walks the end-date index newest first
    and stops at the limit, so this stays quick however many episodes the store holds.
    """
    since = (dt.date.today() - dt.timedelta(days=365)).isoformat()
    found: dict[str, None] = {}
    for sql, args in (
            ("WHERE end_date IS NULL ORDER BY start_date DESC", []),
            ("WHERE end_date >= ? ORDER BY end_date DESC", [since])):
        rows = db.execute(f"SELECT ehm_number FROM episodes {sql} LIMIT ?",
                          [*args, 2 * limit - len(found)])
        found.update(dict.fromkeys(r[0] for r in rows))
        if len(found) >= limit:
            break
    return list(found)[:limit]


def episodes_for(db: sqlite_utils.Database, ehm_number: str) -> list[dict]:
    """The episodes recorded under an EHM number (whatever its case), newest first."""
    return [dict(r) for r in db.query(
        "SELECT id, ehm_number, start_date, end_date, status FROM episodes"
        " WHERE ehm_number = ? ORDER BY start_date DESC", [stored_ehm(db, ehm_number)])]


def case_information(db: sqlite_utils.Database, episode_id: int | None) -> dict | None:
    """What the form fills in from the store, read-only: children, lead professional, ..."""
    if episode_id is None:
        return None
    episode_id = records.record_id(episode_id, "episode", CaseNotFound)
    row = db.execute(
        "SELECT e.id, e.ehm_number, e.start_date, e.end_date, e.status, e.lead_professional_id,"
        " lp.name, ag.name, e.team_manager_id, tm.name, e.cross_authority,"
        " e.cross_authority_name, e.cross_authority_contact, lp.line_manager_id"
        " FROM episodes e LEFT JOIN practitioners lp ON lp.id = e.lead_professional_id"
        " LEFT JOIN agencies ag ON ag.id = e.lead_agency_id"
        " LEFT JOIN practitioners tm ON tm.id = e.team_manager_id WHERE e.id = ?",
        [episode_id]).fetchone()
    if row is None:
        return None
    children = [dict(r) for r in db.query(
        "SELECT name, date_of_birth FROM children WHERE episode_id = ? ORDER BY date_of_birth, id",
        [episode_id])]
    return {
        "episode_id": row[0], "ehm_number": row[1], "episode_start": row[2], "end_date": row[3],
        "status": row[4], "lead_professional_id": row[5], "lead_professional": row[6],
        "lead_agency": row[7], "team_manager_id": row[8], "team_manager": row[9],
        "cross_authority": bool(row[10]), "cross_authority_name": row[11],
        "cross_authority_contact": row[12], "lead_line_manager_id": row[13],
        "children": children,
        "child_names": ", ".join(c["name"] for c in children),
        "date_of_birth": ", ".join(c["date_of_birth"] or "not recorded" for c in children),
    }
