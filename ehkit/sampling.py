"""The monthly audit selection, as the quality-assurance framework describes it.

Each month: ``council_cases`` cases led by council staff and ``partner_cases`` led by partner
agencies, drawn at random among episodes open during the month; ``closed_cases`` drawn at
random among episodes closed during the month; up to ``drift_cases`` drifting cases (open
longer than ``drift_open_months``, or no review within ``drift_review_months``, at the
month's end), the longest without a review first; and every case a lead professional asked
to have audited. Cases audited (or already selected) in
the last ``exclude_audited_months`` are not drawn again at random. All of these numbers are
settings (``[sampling]`` in settings.toml).

A draw is stored with its seed, quotas and pool sizes, so it can be explained and repeated;
asking for the same month again shows the stored list, unless it is redrawn with a reason.
Each selected case is offered an auditor without a conflict of interest (the rule lives in
``ehkit.audits.conflict_of_interest``), spreading the work evenly, and is due ``due_days``
after it was selected.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlite_utils

from . import access, episodes, spreadsheet
from . import db as store
from .audits import conflict_of_interest
from .dates import months_before, uk
from .errors import EhkitError
from .settings import get as setting

REASONS = {
    "random_council": "Random (council)",
    "random_partner": "Random (partner agency)",
    "closed": "Closed case (random)",
    "drift": "Drifting",
    "request": "Requested by lead professional",
}


class SamplingError(EhkitError):
    pass


# -- months and dates --------------------------------------------------------------------
def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """First and last day of a month written ``YYYY-MM``."""
    m = re.fullmatch(r"(\d{4})-(\d{2})", str(month).strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise SamplingError(f"{month!r} is not a month: write it like 2026-11")
    y, mo = int(m.group(1)), int(m.group(2))
    return dt.date(y, mo, 1), dt.date(y, mo, calendar.monthrange(y, mo)[1])


def month_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


# -- drift -------------------------------------------------------------------------------
# The latest review on or before the day (a later one had not happened yet), else the start.
LATEST_REVIEW = """(CASE WHEN e.last_review_date <= :on THEN e.last_review_date
    WHEN e.first_review_date <= :on THEN e.first_review_date ELSE e.start_date END)"""

# Open on the day: begun by then, not ended by then. Drifting: begun before the open-months
# cut-off, or its latest review by the day (else its start) before the review cut-off. A
# review exactly on the cut-off is within the months, so not drifting.
BEGUN_DRIFTING = f"""e.start_date <= :on
          AND (e.start_date < :open_cut OR {LATEST_REVIEW} < :review_cut)"""
DRIFTING = f"(e.end_date IS NULL OR e.end_date > :on) AND {BEGUN_DRIFTING}"


def _drift_sql(columns: str) -> str:
    return f"SELECT {columns} FROM episodes e WHERE {DRIFTING}"


def _drift_params(on_date: dt.date) -> dict:
    cfg = setting("sampling")
    return {"on": on_date.isoformat(),
            "open_cut": months_before(on_date, cfg["drift_open_months"]).isoformat(),
            "review_cut": months_before(on_date, cfg["drift_review_months"]).isoformat()}


def drifting(db: sqlite_utils.Database, on_date: dt.date,
             episodes: Iterable[int] | None = None) -> list[dict]:
    """Every episode drifting on ``on_date`` (or those of ``episodes`` that are), with why:
    open too long, review overdue, or both."""
    p = _drift_params(on_date)
    only = ""
    if episodes is not None:
        ids = sorted({int(e) for e in episodes})
        only = f" AND e.id IN ({','.join(map(str, ids)) or 'NULL'})"
    rows = db.query(_drift_sql(
        "e.id AS episode_id, e.ehm_number, e.start_date, e.first_review_date, "
        "e.last_review_date, e.lead_agency_id, e.lead_professional_id, "
        "e.start_date < :open_cut AS open_too_long, "
        f"{LATEST_REVIEW} < :review_cut AS review_overdue") + only + " ORDER BY e.id", p)
    return [{**r, "open_too_long": bool(r["open_too_long"]),
             "review_overdue": bool(r["review_overdue"])} for r in rows]


# -- auditors ----------------------------------------------------------------------------
def assign_auditors(
    selected: Sequence[tuple[int, int | None, int | None]],
    auditors: Sequence[int],
    line_manager_of: dict[int, int | None],
    rng: random.Random,
    load: dict[int, int] | None = None,
) -> dict[int, int | None]:
    """An auditor for each (episode, lead professional, team manager): never one with a
    conflict of interest, and the least-loaded eligible auditor each time.

    The cases with fewest eligible auditors are placed first so they are not left without
    one; ties between auditors go by a seeded shuffle, so a seed gives the same assignment.
    A case no auditor may audit gets None (the coordinator assigns it by hand).
    """
    order = list(auditors)
    rng.shuffle(order)
    rank = {a: i for i, a in enumerate(order)}
    load = {a: 0 for a in order} | dict(load or {})
    free: dict[tuple, list[int]] = {}  # by (lead, team manager): many cases share a team
    for _, lead, tm in selected:
        if (lead, tm) not in free:
            free[(lead, tm)] = [a for a in order
                                if conflict_of_interest(a, lead, tm, line_manager_of) is None]
    eligible = {ep: free[(lead, tm)] for ep, lead, tm in selected}
    out: dict[int, int | None] = {}
    for ep, _, _ in sorted(selected, key=lambda c: len(eligible[c[0]])):
        choice = min(eligible[ep], key=lambda a: (load.get(a, 0), rank[a]), default=None)
        out[ep] = choice
        if choice is not None:
            load[choice] = load.get(choice, 0) + 1
    return out


def _auditors(db) -> tuple[list[int], dict[int, int | None]]:
    people = db.conn.execute("SELECT id, line_manager_id, is_auditor FROM practitioners").fetchall()
    return [p for p, _, a in people if a], {p: m for p, m, _ in people}


# -- the draw ----------------------------------------------------------------------------
def current_draw(db: sqlite_utils.Database, month: str) -> dict | None:
    month_bounds(month)
    rows = list(db.query("SELECT * FROM selection_draws WHERE month = ? AND current = 1",
                         [month]))
    return rows[0] if rows else None


def draws(db: sqlite_utils.Database, month: str) -> list[dict]:
    """Every draw of a month, the current one last (earlier ones were redrawn, with reasons)."""
    month_bounds(month)
    return list(db.query("SELECT * FROM selection_draws WHERE month = ? ORDER BY current, id",
                         [month]))


def _ids(conn, sql: str, params=()) -> list[int]:
    return [r[0] for r in conn.execute(sql, params)]


def _joined(number: str, db) -> str:
    """SQL joining a column of integers into one text, commas between (:func:`_numbers`)."""
    return f"string_agg(({number})::text, ',')" if store.is_postgres(db) else (
        f"group_concat({number})")


def _numbers(text: str | None) -> np.ndarray:
    """The integers of SQL's ``group_concat`` (None when there were none)."""
    return np.fromstring(text or "", dtype=np.int64, sep=",")


def _int_array(values: Iterable[int]) -> np.ndarray:
    return np.fromiter(values, dtype=np.int64)


def draw(db: sqlite_utils.Database, month: str, *, seed: int | None = None,
         redraw_reason: str | None = None, on: dt.date | None = None,
         drawn_by: str | None = None) -> dict:
    """Draw the month's audit list, or return the stored draw (``stored`` is then True).

    ``redraw_reason`` draws again even when the month has a draw: the earlier one is kept
    (no longer current) and the reason is stored with the new one.
    """
    first, last = month_bounds(month)
    if redraw_reason is not None and not redraw_reason.strip():
        raise SamplingError("say why the month is drawn again: the reason is kept with the draw")
    on = on or dt.date.today()
    if first > on:
        raise SamplingError(f"{first:%B %Y} has not begun yet, so it has no cases to draw: "
                            "choose a month that has ended")
    cfg = dict(setting("sampling"))
    who = store.current_actor()
    with access.acting(db, "draw_lists", label=drawn_by or who.actor or "ehkit sample",
                       reason=redraw_reason or f"audit selection for {month}") as me, \
            store.transaction(db):
        existing = current_draw(db, month)
        if existing and redraw_reason is None:
            return {**existing, "stored": True}
        seed = secrets.randbelow(2**31) if seed is None else int(seed)
        if not me.one_person:  # the login's practitioner, whatever a caller names
            drawn_by = me.actor
        made = _draw(db, month, first, last, seed, cfg, on, drawn_by, redraw_reason, existing)
    return {**made, "stored": False}


# Led by council staff (else by a partner agency).
COUNCIL = "e.lead_agency_id IN (SELECT id FROM agencies WHERE kind = 'council')"
# The episodes on an earlier month's list in the window (:earliest to the month).
ON_LISTS = """SELECT s.episode_id FROM selection_draws d JOIN selections s ON s.draw_id = d.id
           WHERE d.current = 1 AND d.month >= :earliest AND d.month < :month"""


@dataclass
class MonthPool:
    """The episodes open during a month, in parallel arrays: led by council staff, closed in
    the month, recent (their case audited, or the episode listed, in the window); and the
    month's drift list (ids, the longest without a review first) and how many drift."""

    ids: np.ndarray
    council: np.ndarray
    closed: np.ndarray
    recent: np.ndarray
    drift: list[int]
    drift_pool: int


def _month_pool(db, p: dict, drift_quota: int) -> MonthPool:
    """The month's pool, its drift list and what was audited or listed lately.

    The pool's ids come back in one text (a row each into Python costs more than the query),
    each ``id * 8 + 4 if recent + 2 if closed in the month + 1 if led by council staff``.
    Every part is read from an index holding every column it needs (the episodes by end
    date, the cases by EHM number), or looks an audited episode up by id: SQLite's indexes
    hold each row's id, and PostgreSQL's are made to (``INCLUDE (id)``, migrations 0130 and
    0131), so neither scans the table.
    """
    conn = db.conn
    # The quota is written into the query: with a bound LIMIT, SQLite's plan reads the
    # episodes' rows, 3 times slower. 0: every drifting case.
    quota = f" LIMIT {int(drift_quota)}" if drift_quota else ""
    not_listed = f"e.id NOT IN ({ON_LISTS} AND s.reason = 'drift')"
    new_drift = f"{DRIFTING} AND {not_listed}"
    flags = f"""CASE WHEN {COUNCIL} THEN 1 ELSE 0 END
               + CASE WHEN e.end_date <= :last THEN 2 ELSE 0 END"""
    # Every episode of a case audited in the window (by EHM number: the audited episodes
    # read in id order, then their cases' episodes), and the episodes on an earlier
    # month's list in it. PostgreSQL looks each up in its index as SQLite does only when
    # given them as arrays: its join scanned the episodes twice (among a million, 0.9 s of
    # server CPU against 0.2 s; the index of cases holds the ids, migration 0131).
    in_window = "SELECT episode_id FROM audits WHERE audit_date > :window_start"
    if store.is_postgres(db):
        cases = f"""episodes c WHERE c.ehm_number = ANY (ARRAY(SELECT e.ehm_number
                      FROM episodes e WHERE e.id = ANY (ARRAY({in_window}))))"""
    else:
        cases = f"""episodes e JOIN episodes c ON c.ehm_number = e.ehm_number
                     WHERE e.id IN ({in_window})"""
    (audited,) = conn.execute(f"SELECT {_joined('c.id', db)} FROM {cases}", p).fetchone()
    recent = np.concatenate([_numbers(audited), _int_array(_ids(conn, ON_LISTS, p))])
    # The drifting: still open, or closed after the day, each a range of the index of end
    # dates (an OR of the two reads the table's rows on PostgreSQL, 2.5 times the CPU).
    drift = _ids(conn, " UNION ALL ".join(
        f"""SELECT e.id, {LATEST_REVIEW} AS reviewed, e.start_date FROM episodes e
             WHERE {ends} AND {BEGUN_DRIFTING} AND {not_listed}"""
        for ends in ("e.end_date IS NULL", "e.end_date > :on"))
        + f" ORDER BY reviewed, start_date, id{quota}", p)
    # Three spans of the end date (still open, closed in the month, closed later), each
    # a range of the index of end dates, which holds every column needed (one query for
    # all three, an OR, is twice as slow); the drifting counted on the way.
    spans, drift_pool = [], 0
    for ends in ("e.end_date IS NULL", "e.end_date BETWEEN :first AND :last",
                 "e.end_date > :last"):
        span, drifting_here = conn.execute(
            f"""SELECT {_joined(f"e.id * 8 + {flags}", db)}, count(*) FILTER (WHERE {new_drift})
                  FROM episodes e WHERE {ends} AND e.start_date <= :last""", p).fetchone()
        spans.append(_numbers(span))
        drift_pool += drifting_here
    codes = np.concatenate(spans)
    codes |= np.isin(codes >> 3, recent) * 4
    return MonthPool(ids=codes >> 3, council=(codes & 1) == 1, closed=(codes & 2) == 2,
                     recent=(codes & 4) == 4, drift=drift, drift_pool=int(drift_pool))


def _draw(db, month, first, last, seed, cfg, on, drawn_by, redraw_reason, existing) -> dict:
    conn = db.conn
    window_start = months_before(last, cfg["exclude_audited_months"])
    earliest_month = month_of(months_before(first, cfg["exclude_audited_months"] - 1))
    p = {"first": first.isoformat(), "last": last.isoformat(), "month": month,
         "window_start": window_start.isoformat(), "earliest": earliest_month,
         **_drift_params(last)}
    chosen: dict[int, tuple[str, int | None]] = {}  # episode -> (reason, request id)
    requests = conn.execute("SELECT id, episode_id FROM audit_requests WHERE month = ? "
                            "ORDER BY id", (month,)).fetchall()
    for rid, ep in requests:
        chosen.setdefault(ep, ("request", rid))
    found = _month_pool(db, p, cfg["drift_cases"])
    # Drift: drifting cases not already listed for drift in the window (the same spell of
    # drift is not listed again every month), the longest without a review first, up to the
    # quota; the rest stay drifting and come up in a later month.
    for ep in found.drift:
        chosen.setdefault(ep, ("drift", None))
    pooled, council, closed = found.ids, found.council, found.closed
    fresh = ~found.recent  # not audited or listed lately

    def pick(reason: str, among: np.ndarray, quota: int) -> int:
        """``quota`` of the eligible pool at random (positions in id order, from the seed)."""
        pool = pooled[among & fresh]
        eligible = np.sort(pool[~np.isin(pool, _int_array(chosen))])
        positions = random.Random(f"{seed}:{reason}").sample(range(len(eligible)),
                                                              min(quota, len(eligible)))
        for i in positions:
            chosen[int(eligible[i])] = (reason, None)
        return len(eligible)

    closed_pool = pick("closed", closed, cfg["closed_cases"])
    council_pool = pick("random_council", council, cfg["council_cases"])
    partner_pool = pick("random_partner", ~council, cfg["partner_cases"])
    # Left out of the pools as audited or listed lately (and not on the list otherwise).
    left_out = int(np.count_nonzero(~fresh & ~np.isin(pooled, _int_array(chosen))))

    if existing:
        conn.execute("UPDATE selection_draws SET current = 0 WHERE id = ?", (existing["id"],))
    made = {
        "month": month, "current": 1, "seed": seed, "drawn_on": on.isoformat(),
        "drawn_by": drawn_by or store.current_actor().user, "redraw_reason": redraw_reason,
        "council_quota": cfg["council_cases"], "partner_quota": cfg["partner_cases"],
        "closed_quota": cfg["closed_cases"], "drift_open_months": cfg["drift_open_months"],
        "drift_review_months": cfg["drift_review_months"],
        "exclude_audited_months": cfg["exclude_audited_months"], "due_days": cfg["due_days"],
        "council_pool": council_pool, "partner_pool": partner_pool, "closed_pool": closed_pool,
        "drifting": sum(1 for r, _ in chosen.values() if r == "drift"),
        "drift_quota": cfg["drift_cases"], "drift_pool": found.drift_pool,
        "excluded_audited": left_out,
    }
    # Plain SQL, not the table's insert: on PostgreSQL that reads the table's columns first.
    conn.execute(f"INSERT INTO selection_draws ({', '.join(made)}) VALUES "
                 f"({', '.join('?' * len(made))})", list(made.values()))
    (draw_id,) = conn.execute("SELECT id FROM selection_draws WHERE month = ? AND current = 1",
                              (month,)).fetchone()
    _store_selections(db, draw_id, chosen, on, cfg["due_days"], random.Random(f"{seed}:auditors"))
    return current_draw(db, month)


def _leads(conn, episode_ids: Iterable[int]) -> list[tuple[int, int | None, int | None]]:
    ids = sorted(episode_ids)
    out = []
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        out += conn.execute(
            "SELECT id, lead_professional_id, team_manager_id FROM episodes WHERE id IN "
            f"({','.join('?' * len(chunk))}) ORDER BY id", chunk).fetchall()
    return out


def _store_selections(db, draw_id: int, chosen: dict, on: dt.date, due_days: int,
                      rng: random.Random, load: dict[int, int] | None = None) -> None:
    auditors, line_manager_of = _auditors(db)
    assigned = assign_auditors(_leads(db.conn, chosen), auditors, line_manager_of, rng, load)
    due = (on + dt.timedelta(days=due_days)).isoformat()
    order = list(REASONS)
    rows = [(draw_id, ep, reason, rid, assigned.get(ep), on.isoformat(), due)
            for ep, (reason, rid) in sorted(chosen.items(),
                                            key=lambda kv: (order.index(kv[1][0]), kv[0]))]
    # Many rows a statement (a month with many drifting cases is a bulk insert): on
    # PostgreSQL a statement a row costs twice the server's time. 100 rows keep within
    # SQLite's oldest limit of 999 values.
    for i in range(0, len(rows), 100):
        chunk = rows[i:i + 100]
        db.conn.execute(
            "INSERT INTO selections (draw_id, episode_id, reason, request_id, auditor_id, "
            "selected_on, due_date) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(chunk)),
            [v for row in chunk for v in row])


# -- requests from lead professionals ----------------------------------------------------
def request(db: sqlite_utils.Database, episode: int | str, reason: str, *,
            requested_by: int | str | None = None, month: str | None = None,
            on: dt.date | None = None) -> dict:
    """A lead professional asks for a case to be audited (guidance: progress not being made).

    The request joins ``month``'s list (default: this month). When the month is already
    drawn, the case is added to the stored list at once, with an auditor and a due date.
    """
    if not reason or not reason.strip():
        raise SamplingError("say why the audit is asked for")
    on = on or dt.date.today()
    month = month or month_of(on)
    month_bounds(month)
    info = episodes.episode_info(db, episode)
    ep = info["id"]
    by = _practitioner(db, requested_by) if requested_by is not None else \
        info["lead_professional_id"]
    who = store.current_actor()
    with access.acting(db, "draw_lists", label=who.actor or "ehkit sample request",
                       reason=reason.strip()), \
            store.transaction(db):
        if db.conn.execute("SELECT 1 FROM audit_requests WHERE episode_id = ? AND month = ?",
                           (ep, month)).fetchone():
            raise SamplingError(f"{info['ehm_number']} has already been requested for {month}")
        rid = db["audit_requests"].insert({
            "episode_id": ep, "month": month, "reason": reason.strip(),
            "requested_by_id": by, "requested_on": on.isoformat(),
            "recorded_by": store.current_actor().user}).last_pk
        current = current_draw(db, month)
        added = already = None
        if current:
            row = db.conn.execute("SELECT id, reason FROM selections WHERE draw_id = ? AND "
                                  "episode_id = ?", (current["id"], ep)).fetchone()
            if row:
                already = row[1]
                db["selections"].update(row[0], {"request_id": rid})
            else:
                load = dict(db.conn.execute(
                    "SELECT auditor_id, count(*) FROM selections WHERE draw_id = ? AND "
                    "auditor_id IS NOT NULL GROUP BY auditor_id", (current["id"],)).fetchall())
                _store_selections(db, current["id"], {ep: ("request", rid)}, on,
                                  current["due_days"], random.Random(f"{current['seed']}:{rid}"),
                                  load)
                added = True
    return {"request_id": rid, "episode_id": ep, "ehm_number": info["ehm_number"],
            "month": month, "added_to_list": bool(added), "already_listed_as": already}


def _practitioner(db, who: int | str) -> int:
    if isinstance(who, int) or str(who).isdigit():
        row = db.conn.execute("SELECT id FROM practitioners WHERE id = ?", (int(who),)).fetchone()
    else:
        rows = db.conn.execute("SELECT id FROM practitioners WHERE lower(name) = lower(?)",
                               (str(who).strip(),)).fetchall()
        if len(rows) > 1:
            raise SamplingError(f"more than one practitioner is called {who!r}: give the id")
        row = rows[0] if rows else None
    if row is None:
        raise SamplingError(f"no practitioner {who!r}")
    return row[0]


# -- the list, for the form, the CLI and the monthly report ---------------------------------
def _submitted_on(db, first: str) -> str:
    """When the listed case's audit was first submitted: an audit of the case dated on or
    after ``first`` (SQL: the listed month's first day) counts. Audits are looked up by
    episode, not by date (``store.unindexed``)."""
    return f"""(SELECT min(substr(x.submitted_at, 1, 10)) FROM counted_audits x
                WHERE x.episode_id = s.episode_id AND {store.unindexed(db, 'x.audit_date')}
                  >= {first})"""


def state_at(due_date: str, submitted_on: str | None, today: str, started: bool) -> str:
    """How a listed case's audit stood on ``today`` (dates as ISO text): one submitted after
    it was not completed then (a report on a closed month reads the same whenever it is run)."""
    if submitted_on and submitted_on <= today:
        return "completed late" if submitted_on > due_date else "completed"
    if today > due_date:
        return "overdue"
    return "in progress" if started else "not started"


def selection(db: sqlite_utils.Database, month: str, *, as_of: dt.date | None = None) -> list[dict]:
    """The month's current list: reason, case, auditor, due date and how the audit stands.

    ``state`` is one of: completed, completed late, in progress, not started, overdue
    (not completed and past its due date on ``as_of``, default today). ``late`` is True for
    "completed late" and "overdue". An audit counts when dated in the month or after.
    """
    first, _ = month_bounds(month)
    as_of = as_of or dt.date.today()
    dated = store.unindexed(db, "x.audit_date")  # audits looked up by episode, not by date
    rows = list(db.query(
        f"""SELECT s.id AS selection_id, s.reason, s.selected_on, s.due_date,
                  s.auditor_id, au.name AS auditor, e.id AS episode_id, e.ehm_number,
                  e.start_date, e.end_date, e.status AS episode_status,
                  a.name AS lead_agency, a.kind AS lead_agency_kind,
                  e.lead_professional_id, lp.name AS lead_professional,
                  tm.name AS team_manager, r.reason AS request_reason,
                  (SELECT x.id FROM audits x WHERE x.episode_id = e.id
                      AND {dated} >= :first ORDER BY x.status = 'draft', x.id LIMIT 1)
                    AS audit_id,
                  {_submitted_on(db, ":first")} AS submitted_on
           FROM selection_draws d JOIN selections s ON s.draw_id = d.id
           JOIN episodes e ON e.id = s.episode_id
           JOIN agencies a ON a.id = e.lead_agency_id
           LEFT JOIN practitioners au ON au.id = s.auditor_id
           LEFT JOIN practitioners lp ON lp.id = e.lead_professional_id
           LEFT JOIN practitioners tm ON tm.id = e.team_manager_id
           LEFT JOIN audit_requests r ON r.id = s.request_id
           WHERE d.month = :month AND d.current = 1
           ORDER BY s.id""", {"month": month, "first": first.isoformat()}))
    today = as_of.isoformat()
    for r in rows:
        r["reason_label"] = REASONS[r["reason"]]
        submitted = r["submitted_on"]
        r["completed_on"] = submitted if submitted and submitted <= today else None
        r["completed_after"] = submitted if submitted and submitted > today else None
        r["state"] = state_at(r["due_date"], submitted, today, bool(r["audit_id"]))
        r["completed"] = bool(r["completed_on"])
        r["late"] = r["state"] in ("completed late", "overdue")
    return rows


def states_at(db: sqlite_utils.Database, first: str, last: str, as_of: dt.date) -> list[str]:
    """How each listed case of the months ``first`` to ``last`` (``YYYY-MM``) stood on
    ``as_of`` (:func:`state_at`; "in progress" is told as "not started"): the lists of a
    quarter in one query, for its timescales, where :func:`selection` reads a month's whole."""
    rows = db.execute(f"""
        SELECT s.due_date, {_submitted_on(db, "(d.month || '-01')")}
        FROM selection_draws d JOIN selections s ON s.draw_id = d.id
        WHERE d.month BETWEEN :first AND :last AND d.current = 1""",
        {"first": first, "last": last}).fetchall()
    today = as_of.isoformat()
    return [state_at(due, submitted, today, False) for due, submitted in rows]


def summary(db: sqlite_utils.Database, month: str, *, as_of: dt.date | None = None) -> dict:
    """Counts for the monthly report: selected, completed, late, overdue, and by reason."""
    rows = selection(db, month, as_of=as_of)
    by_reason = {k: sum(1 for r in rows if r["reason"] == k) for k in REASONS}
    return {"selected": len(rows), "completed": sum(r["completed"] for r in rows),
            "completed_late": sum(r["state"] == "completed late" for r in rows),
            "overdue": sum(r["state"] == "overdue" for r in rows),
            "completed_after": sum(bool(r["completed_after"]) for r in rows),
            "late": sum(r["late"] for r in rows), "by_reason": by_reason}


def outstanding(db: sqlite_utils.Database, auditor_id: int | None = None, *,
                as_of: dt.date | None = None) -> list[dict]:
    """Selected cases with no audit submitted yet (whatever ``as_of``, which dates their
    states), across months (optionally one auditor's): where an auditor's drafts start from."""
    months = [r[0] for r in db.conn.execute(
        "SELECT month FROM selection_draws WHERE current = 1 ORDER BY month")]
    out = []
    for m in months:
        out += [dict(r, month=m) for r in selection(db, m, as_of=as_of)
                if not r["submitted_on"] and (auditor_id is None or r["auditor_id"] == auditor_id)]
    return out


def require_list_reader(db: sqlite_utils.Database):
    """The logged-in person, if they may read a month's audit list (its cases and workers):
    the coordinator who draws it, the Head of Service; others are told which role may."""
    return access.require_any(db, "reading the month's audit list", "draw_lists",
                              "see_all_cases")


EXPORT_COLUMNS = [
    ("reason_label", "Reason"), ("ehm_number", "EHM number"), ("start_date", "Episode start"),
    ("end_date", "Episode end"), ("lead_agency", "Lead agency"),
    ("lead_professional", "Lead professional"), ("team_manager", "Team manager"),
    ("auditor", "Auditor"), ("selected_on", "Selected on"), ("due_date", "Due date"),
    ("state", "State"), ("request_reason", "Request reason"),
]


def export(db: sqlite_utils.Database, month: str, path: str | Path, *,
           as_of: dt.date | None = None) -> Path:
    """Write the month's list as CSV (UTF-8 with BOM, opens in Excel) or .xlsx: for those
    who may read the list (it names cases and workers)."""
    require_list_reader(db)
    path = Path(path)
    rows = selection(db, month, as_of=as_of)
    if not rows:
        raise SamplingError(f"{month} has no audit list yet: draw it first (ehkit sample "
                            f"--month {month})")
    header = [label for _, label in EXPORT_COLUMNS]
    values = [[r[k] if r[k] is not None else "" for k, _ in EXPORT_COLUMNS] for r in rows]
    if path.suffix.lower() == ".xlsx":
        return spreadsheet.write_xlsx(path, header, values, sheet=f"Audit list {month}")
    if path.suffix.lower() == ".csv":
        return spreadsheet.write_csv(path, header, values)
    raise SamplingError(f"{path.name}: export to a .csv or .xlsx file")


# -- plain text for the command line -------------------------------------------------------
def describe(d: dict) -> str:
    """One paragraph about a draw: stored or new, seed, quotas, pools."""
    head = (f"{d['month']}: {'stored list' if d.get('stored') else 'new draw'}, drawn on "
            f"{uk(d['drawn_on'])} by {d['drawn_by']} with seed {d['seed']}")
    if d.get("redraw_reason"):
        head += f" (redrawn: {d['redraw_reason']})"
    return (head + f"\nquotas {d['council_quota']} council / {d['partner_quota']} partner / "
            f"{d['closed_quota']} closed from pools of {d['council_pool']} / "
            f"{d['partner_pool']} / {d['closed_pool']}; {_drift_text(d)}; "
            f"{d['excluded_audited']} left out as audited or listed in the last "
            f"{d['exclude_audited_months']} months; due {d['due_days']} days after selection")


def _drift_text(d: dict) -> str:
    if not d.get("drift_quota") or d["drift_pool"] <= d["drifting"]:
        return f"{d['drifting']} drifting"
    return (f"{d['drifting']} of {d['drift_pool']} drifting listed (at most "
            f"{d['drift_quota']} a month, the longest without a review first)")


def describe_request(r: dict) -> str:
    if r["already_listed_as"]:
        return (f"request recorded: {r['ehm_number']} is already on the {r['month']} list "
                f"({REASONS[r['already_listed_as']]})")
    if r["added_to_list"]:
        return f"request recorded and {r['ehm_number']} added to the {r['month']} list"
    return (f"request recorded: {r['ehm_number']} will be on the {r['month']} list when it "
            "is drawn")


def as_text(rows: list[dict]) -> str:
    """The list as an aligned table for a terminal."""
    cols = [("reason_label", "reason"), ("ehm_number", "EHM"), ("lead_agency", "lead agency"),
            ("lead_professional", "lead professional"), ("auditor", "auditor"),
            ("due_date", "due"), ("state", "state")]
    table = [[label for _, label in cols]] + [
        [uk(r[k]) if k == "due_date" else
         str(r[k] if r[k] is not None else "(none without a conflict)" if k == "auditor"
             else "") for k, _ in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
                     for row in table)
