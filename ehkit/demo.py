"""Synthetic demo data: a whole invented Early Help service, deterministic for a seed.

Every person here is invented; surnames come from a list of made-up words so no name can be
mistaken for a real family. The same seed, size and ``until`` date give the same data.

Fast at a region's size (a million episodes in about a minute, see bench/): the columns are
drawn with numpy a chunk at a time and written with ``executemany``. The change-log triggers
still fire for every row, exactly as for any other write.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
from collections.abc import Callable

import numpy as np
import sqlite_utils

from . import db as store
from . import template as templates
from .audits import best_overall_allowed, conflict_of_interest
from .settings import get as setting

FIRST = ("Ada Alfie Amara Arlo Bea Cai Cleo Dara Eli Ember Finn Freya Gus Hana Ivo Isla Jude Kit "
         "Lark Leo Lumi Mae Milo Nell Noor Orla Otto Pip Quin Remy Rosa Sol Tam Tilly Uma Vik "
         "Wren Xan Yara Zed").split()
# Made-up surnames: clearly not real families.
SURNAMES = ("Applebridge Bramblewick Cobbleworth Dimbleford Elderquay Fennimore Gorsethwaite "
            "Hollowmere Inkwhistle Juniperholt Kettlewade Larkspindle Mossfenwick Nettlecombe "
            "Oakmallow Pebbleford Quillthorpe Rushbarrow Saltmarrow Thistlewaite Umberdown "
            "Vetchley Willowick Yarrowby Zephyrdale").split()
AGENCY_SPECS = [
    # (name, kind, sector)
    ("Oakvale Council Early Help Team North", "council", "Local Authority"),
    ("Oakvale Council Early Help Team South", "council", "Local Authority"),
    ("Oakvale Council Early Help Team East", "council", "Local Authority"),
    ("Oakvale Council Family Hub West", "council", "Local Authority"),
    ("Oakvale Council Youth Service", "council", "Local Authority"),
    ("Oakvale Council Housing Options", "council", "Housing"),
    ("Oakvale Council Education Welfare", "council", "Education"),
    ("Fernbridge Primary School", "partner", "Education"),
    ("Kettlewade Academy", "partner", "Education"),
    ("Larkspindle Infant School", "partner", "Education"),
    ("Moss Lane Secondary School", "partner", "Education"),
    ("Pebbleford Nursery", "partner", "Education"),
    ("Oakvale Health Visiting Service", "partner", "Health"),
    ("Oakvale School Nursing Service", "partner", "Health"),
    ("Quillthorpe Medical Practice", "partner", "Health"),
    ("Oakvale Child and Adolescent Mental Health", "partner", "Health"),
    ("Oakvale Midwifery Team", "partner", "Health"),
    ("Rushbarrow Family Support Trust", "partner", "Voluntary"),
    ("Thistle Young Carers", "partner", "Voluntary"),
    ("Willowick Domestic Abuse Service", "partner", "Voluntary"),
    ("Yarrowby Youth Project", "partner", "Voluntary"),
    ("Oakvale Neighbourhood Policing", "partner", "Police"),
    ("Umberdown Housing Association", "partner", "Housing"),
    ("Oakvale Adult Substance Misuse Service", "partner", "Health"),
    ("Vetchley Community Church Family Project", "partner", "Voluntary"),
    ("Zephyrdale Early Years Centre", "partner", "Education"),
    ("Gorsethwaite Sports Foundation", "partner", "Other"),
    ("Oakvale Job Centre Family Support", "partner", "Other"),
]
BEGAN = (("new_request", 75), ("step_down", 18), ("other", 7))
ENDED = (("outcomes_achieved", 55), ("stepped_up", 10), ("stepped_down_universal", 15),
         ("disengaged", 10), ("moved_away", 5), ("other", 5))
GRADE_WEIGHTS = (8, 50, 30, 12)  # Outstanding, Good, RI, Inadequate
COMMENT_BANK = {
    1: ["Consistently strong practice with clear evidence of impact for the child.",
        "Excellent analysis; the child's lived experience has visibly improved."],
    2: ["Good practice evident; the plan is reviewed and the child's views are recorded.",
        "Practice is as expected, with regular reviews and clear multi-agency input."],
    3: ["Practice standards followed but gaps in planning; outcomes not measurable.",
        "Some evidence of the child's voice but direct work is not linked to the plan."],
    4: ["Practice standards not adhered to; no review held and the plan has drifted.",
        "No evidence of consent or management oversight on this episode."],
}
ACTION_BANK = [
    "Hold a review TAF meeting and update the plan with measurable outcomes",
    "Complete direct work with the child and record their views in the plan",
    "Team manager to record reflective supervision on the case",
    "Update the assessment to include parental capacity and protective factors",
    "Invite school and health to the next TAF meeting and share the plan",
    "Record consent on the case file",
]
LEARNING_BANK = [
    "Use of the child's own words brought the plan to life.",
    "Reviews need to be held every three months to avoid drift.",
    "Multi-agency challenge was effective when escalated early.",
    "Record management decisions clearly at step-down.",
]


# An answer row's (grade, comment, response) by code: nothing; a grade; one of the two
# comments for each grade; Yes, No or Not applicable.
ANSWER_CODES = {
    "grade": [None, 1, 2, 3, 4] + [None] * 11,
    "comment": [None] * 5 + [c for g in (1, 2, 3, 4) for c in COMMENT_BANK[g]] + [None] * 3,
    "response": [None] * 13 + ["yes", "no", "not_applicable"],
}

EPISODE_CHUNK = 100_000
AUDIT_CHUNK = 20_000


def _choice(rng: np.random.Generator, pairs, n: int) -> np.ndarray:
    values = np.array([p for p, _ in pairs], dtype=object)
    weights = np.array([w for _, w in pairs], dtype=float)
    return values[rng.choice(len(values), size=n, p=weights / weights.sum())]


def _insert(db: sqlite_utils.Database, table: str, columns: dict) -> None:
    """Bulk-insert whole columns, logged together (``ehkit.db.bulk_insert``)."""
    lists = [c.tolist() if isinstance(c, np.ndarray) else c for c in columns.values()]
    store.bulk_insert(db, table, list(columns), zip(*lists, strict=True))


def _insert_by_key(db: sqlite_utils.Database, table: str, parent: tuple[str, np.ndarray],
                   key: tuple[str, list[str]], values: dict[str, list], codes: np.ndarray) -> None:
    """A row for every (parent, key), e.g. every answer of every audit; logged together.

    Row (parent i, key j) takes the values ``values[column][codes[i, j]]``. Each parent's
    codes go to SQLite as one string (a character per key) and SQLite writes the rows from
    it: binding every value from Python costs three to four times as much, and these are
    most of a big store's rows.
    """
    (parent_col, ids), (key_col, keys) = parent, key
    columns = list(values)
    if store.is_postgres(db):  # the same rows, in the order SQLite's join writes them
        store.bulk_insert(db, table, [parent_col, key_col, *columns], (
            (p, k, *(values[c][code] for c in columns))
            for p, row in zip(ids.tolist(), codes.tolist(), strict=True)
            for k, code in zip(keys, row, strict=True)))
        return
    strings = (codes + 48).astype(np.uint32).view(f"<U{len(keys)}").ravel()
    conn, temp = db.conn, ("demo_keys", "demo_codes", "demo_rows")
    conn.execute("CREATE TEMP TABLE demo_keys (pos INTEGER PRIMARY KEY, key)")
    conn.execute(f"CREATE TEMP TABLE demo_codes (code INTEGER PRIMARY KEY, "
                 f"{', '.join(f'v{i}' for i in range(len(columns)))})")
    conn.execute("CREATE TEMP TABLE demo_rows (parent, codes TEXT)")
    try:
        conn.executemany("INSERT INTO demo_keys VALUES (?, ?)", enumerate(keys, start=1))
        conn.executemany(f"INSERT INTO demo_codes VALUES ({', '.join('?' * (len(columns) + 1))})",
                         ((i, *row) for i, row in enumerate(zip(*values.values(), strict=True))))
        conn.executemany("INSERT INTO demo_rows VALUES (?, ?)",
                         zip(ids.tolist(), strings.tolist(), strict=True))
        with store.logged_together(db, table):
            conn.execute(
                f"INSERT INTO {table} ({parent_col}, {key_col}, {', '.join(columns)}) "
                f"SELECT r.parent, k.key, {', '.join(f'c.v{i}' for i in range(len(columns)))} "
                "FROM demo_rows r CROSS JOIN demo_keys k JOIN demo_codes c "
                "ON c.code = unicode(substr(r.codes, k.pos, 1)) - 48")
    finally:
        for t in temp:
            conn.execute(f"DROP TABLE temp.{t}")


@contextlib.contextmanager
def _filling_a_new_file(db: sqlite_utils.Database):
    """While a brand-new demo file is filled, skip the write-ahead log, per-commit syncs and
    the per-row checks of CHECK constraints and foreign keys.

    Only an empty store is filled (``generate`` refuses any other), so an interrupted run
    leaves nothing worth keeping: run it again. The generator's values come from fixed
    banks and its own ids, and tests/test_demo.py proves a generated store keeps every
    constraint (``PRAGMA integrity_check`` and ``foreign_key_check``); checking each of
    millions of rows as it goes in costs a third of the time. A big page cache keeps the
    indexes in memory. The file is synced and the connection's settings restored at the end.
    """
    conn = db.conn
    if store.is_postgres(db):  # a database server's settings are its own; checks stay on
        yield
        from . import postgres

        postgres.gather_statistics(db)  # a bulk load: the reports that follow are planned by them
        return
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    bulk = mode == "wal" and conn.execute("PRAGMA journal_mode = MEMORY").fetchone()[0] == "memory"
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")  # KiB: about 1 GB at most, used as needed
    temp = conn.execute("PRAGMA temp_store").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA ignore_check_constraints = ON")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute(f"PRAGMA threads = {os.cpu_count() or 1}")  # sorting for the index builds
    try:
        yield
    finally:
        conn.execute("PRAGMA threads = 0")
        conn.execute(f"PRAGMA temp_store = {temp}")
        conn.execute("PRAGMA ignore_check_constraints = OFF")
        conn.execute(f"PRAGMA foreign_keys = {keys}")
        conn.execute(f"PRAGMA cache_size = {cache}")
        conn.execute(f"PRAGMA synchronous = {sync}")
        if bulk:
            conn.execute("PRAGMA journal_mode = WAL")
            path = conn.execute("PRAGMA database_list").fetchone()[2]
            if path:
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)


@contextlib.contextmanager
def _indexes_set_aside(db: sqlite_utils.Database):
    """Drop the indexes while millions of rows go in and build each once at the end (a sort,
    several times faster than growing it a row at a time); inside one transaction, so the
    store is never seen without them. (PostgreSQL's stay: its load is COPY.)"""
    conn = db.conn
    if store.is_postgres(db):
        yield
        return
    saved = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                         "sql IS NOT NULL").fetchall()  # UNIQUE and key indexes stay
    for name, _ in saved:
        conn.execute(f"DROP INDEX {store._q(name)}")
    yield
    for _, sql in saved:
        conn.execute(sql)


def generate(
    db: sqlite_utils.Database,
    *,
    episodes: int = 1500,
    seed: int = 1,
    until: dt.date | None = None,
    years: int = 3,
    audits_per_episode: float = 0.36,
    template: str = templates.DEFAULT_TEMPLATE,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Fill an empty store with a synthetic service. Returns counts of what was made.

    ``audits_per_episode`` 0.36 gives about 180 audits a year at the default 1,500
    episodes over three years. ``progress`` is called with how much more is done since its
    last call, in episodes: the whole build, every step included, counts as ``episodes``.
    """
    if db["episodes"].count:
        raise store.StoreError(
            f"the database already holds {db['episodes'].count} episodes: demo data goes "
            "into a new database (choose another --db, or delete this one)"
        )
    tpl = templates.load(template)
    until = until or dt.date.today()
    done = _Done(episodes, progress)
    with _filling_a_new_file(db):
        with store.acting_as(actor="ehkit demo"), store.transaction(db), _indexes_set_aside(db):
            service = _Service(db, tpl, seed, until, years, done)
            counts = service.fill(episodes, audits_per_episode)
            counts.update(service.feedback(seed))
            done.to(0.75)
        done.to(0.85)  # the indexes are built
        counts.update(generate_selections(db, seed=seed, until=until,
                                          advance=lambda share: done.to(0.85 + 0.1 * share)))
        counts.update(generate_followups(db, seed=seed, until=until))
        done.to(1)
    counts["audits"], counts["actions"] = db["audits"].count, db["actions"].count
    return counts


class _Done:
    """How far the build is, as a share of it, told to ``progress`` in episodes."""

    def __init__(self, episodes: int, progress: Callable[[int], None] | None):
        self.total, self.told, self.progress = episodes, 0, progress or (lambda n: None)

    def to(self, share: float) -> None:
        now = round(self.total * min(1.0, share))
        if now > self.told:
            self.progress(now - self.told)
            self.told = now


class _Service:
    """The invented service being written: its people, then episodes, then audits."""

    def __init__(self, db, tpl, seed, until, years, done: _Done):
        self.db, self.tpl, self.done = db, tpl, done
        self.py = random.Random(seed)  # the few people: plain random
        self.rng = np.random.default_rng(seed)  # the many rows: numpy, a column at a time
        begin = until - dt.timedelta(days=365 * years)
        # Dates are day numbers from `origin`; `iso` turns them back into text in one lookup.
        self.origin = begin - dt.timedelta(days=19 * 366)
        self.iso = np.array([(self.origin + dt.timedelta(days=d)).isoformat()
                             for d in range((until - self.origin).days + 400)], dtype=object)
        self.begin, self.until = (begin - self.origin).days, (until - self.origin).days
        self.counts: dict[str, int] = {}

    def fill(self, episodes: int, audits_per_episode: float) -> dict:
        self.people()
        self.episodes(episodes)
        self.audits(round(episodes * audits_per_episode))
        return self.counts

    # -- agencies and people ---------------------------------------------------------------
    def people(self) -> None:
        rng, db = self.py, self.db
        _insert(db, "agencies", {
            "id": list(range(1, len(AGENCY_SPECS) + 1)), "name": [a[0] for a in AGENCY_SPECS],
            "kind": [a[1] for a in AGENCY_SPECS], "sector": [a[2] for a in AGENCY_SPECS]})
        people: list[dict] = []

        def person(role, agency_id, team, manager, auditor=0):
            pid = len(people) + 1
            name = f"{rng.choice(FIRST)} {rng.choice(SURNAMES)}"
            people.append({"id": pid, "name": name, "role": role, "agency_id": agency_id,
                           "team": team, "line_manager_id": manager, "is_auditor": auditor})
            return pid

        head = person("Head of Service", 1, "Service Management", None, 0)
        service_mgr = person("Service Manager", 1, "Service Management", head, 1)
        person("Early Help Coordinator", 1, "Quality Assurance", service_mgr, 1)
        person("Advanced Practitioner", 1, "Quality Assurance", service_mgr, 1)
        person("Advanced Practitioner", 1, "Quality Assurance", service_mgr, 1)
        leads_by_agency: dict[int, list[int]] = {}
        for aid, (name, kind, _sector) in enumerate(AGENCY_SPECS, start=1):
            team = name.split(" ", 2)[-1] if kind == "council" else name
            if kind == "council":
                mgr = person("Team Manager", aid, team, service_mgr, 1)
                workers = [person("Family Support Worker", aid, team, mgr) for _ in range(7)]
            else:
                mgr = person("Designated Lead", aid, team, None)
                workers = [person("Practitioner", aid, team, mgr) for _ in range(2)]
            leads_by_agency[aid] = workers
        _insert(db, "practitioners", {k: [p[k] for p in people] for k in people[0]})
        self.counts["agencies"], self.counts["practitioners"] = len(AGENCY_SPECS), len(people)

        n = len(people) + 1
        self.line_manager = np.zeros(n, dtype=np.int64)  # 0: none
        for p in people:
            self.line_manager[p["id"]] = p["line_manager_id"] or 0
        self.names = np.array([None] + [p["name"] for p in people], dtype=object)
        self.council = np.array([i for i, a in enumerate(AGENCY_SPECS, 1) if a[1] == "council"])
        self.partner = np.array([i for i, a in enumerate(AGENCY_SPECS, 1) if a[1] == "partner"])
        width = max(len(w) for w in leads_by_agency.values())
        self.leads = np.zeros((len(AGENCY_SPECS) + 1, width), dtype=np.int64)
        self.n_leads = np.zeros(len(AGENCY_SPECS) + 1, dtype=np.int64)
        for aid, workers in leads_by_agency.items():
            self.leads[aid, :len(workers)] = workers
            self.n_leads[aid] = len(workers)
        # Who may audit a case led by each practitioner: the rule in ehkit.audits decides.
        auditors = [p["id"] for p in people if p["is_auditor"]]
        line_manager = {p["id"]: p["line_manager_id"] for p in people}
        self.pool = np.zeros((n, len(auditors)), dtype=np.int64)
        self.pool_size = np.zeros(n, dtype=np.int64)
        for lead in range(1, n):
            ok = [a for a in auditors
                  if conflict_of_interest(a, lead, line_manager[lead], line_manager) is None]
            self.pool[lead, :len(ok)] = ok
            self.pool_size[lead] = len(ok)

    # -- episodes and children -------------------------------------------------------------
    def episodes(self, total: int) -> None:
        rng, iso = self.rng, self.iso
        reasons = np.array(setting("episodes", "referral_reasons"), dtype=object)
        full_names = np.array([f"{f} {s}" for f in FIRST for s in SURNAMES], dtype=object)
        # Kept for the audits: when each episode ran and who led it.
        self.ep_start = np.zeros(total, dtype=np.int64)
        self.ep_latest = np.zeros(total, dtype=np.int64)
        self.ep_lead = np.zeros(total, dtype=np.int64)
        self.ep_closed = np.zeros(total, dtype=bool)
        # A case system numbers episodes as they begin: ids follow the start dates.
        starts = np.sort(self.begin + rng.integers(0, self.until - self.begin, total))
        child_id = 0
        for lo in range(0, total, EPISODE_CHUNK):
            m = min(EPISODE_CHUNK, total - lo)
            ids = np.arange(lo + 1, lo + m + 1)
            start = starts[lo:lo + m]
            end = start + rng.lognormal(5.2, 0.5, m).astype(np.int64)  # median ~6 months
            closed = end <= self.until
            in_council = rng.random(m) < 0.7
            agency = np.where(in_council, self.council[rng.integers(0, len(self.council), m)],
                              self.partner[rng.integers(0, len(self.partner), m)])
            lead = self.leads[agency, (rng.random(m) * self.n_leads[agency]).astype(np.int64)]
            stop = np.minimum(end, self.until)
            first = start + rng.integers(28, 71, m)
            reviewed = first <= stop
            # Most reviews keep pace; about a fifth of open cases have drifted.
            drifted = ~closed & (rng.random(m) < 0.2)
            gap_to = stop - np.where(drifted, rng.integers(95, 201, m), rng.integers(0, 81, m))
            last = np.maximum(first, np.minimum(gap_to, stop))
            cross = rng.random(m) < 0.03
            none = np.full(m, None, dtype=object)
            self.ep_start[lo:lo + m], self.ep_latest[lo:lo + m] = start, stop
            self.ep_lead[lo:lo + m], self.ep_closed[lo:lo + m] = lead, closed
            _insert(self.db, "episodes", {
                "id": ids,
                "ehm_number": [f"EHM{100000 + i}" for i in range(lo + 1, lo + m + 1)],
                "start_date": iso[start],
                "end_date": np.where(closed, iso[np.minimum(end, self.until)], none),
                "status": np.where(closed, "closed", "open").astype(object),
                "lead_professional_id": lead,
                "lead_agency_id": agency,
                "team_manager_id": np.where(self.line_manager[lead] > 0,
                                            self.line_manager[lead], none),
                "referral_reason": reasons[rng.integers(0, len(reasons), m)],
                "began_as": _choice(rng, BEGAN, m),
                "cross_authority": cross.astype(np.int64),
                "cross_authority_name": np.where(cross, "Elderquay Borough Council", none),
                "cross_authority_contact": np.where(
                    cross, full_names[rng.integers(0, len(full_names), m)], none),
                "ended_as": np.where(closed, _choice(rng, ENDED, m), none),
                "first_review_date": np.where(reviewed, iso[first], none),
                "last_review_date": np.where(reviewed, iso[last], none),
            })
            # Children: one to three a family, sharing the family's surname, under 18.
            kids = rng.choice(np.array([1, 1, 1, 2, 2, 3]), m)
            k = int(kids.sum())
            surname = np.repeat(rng.integers(0, len(SURNAMES), m), kids)
            born = np.repeat(start, kids) - rng.integers(0, 18 * 365, k)
            _insert(self.db, "children", {
                "id": np.arange(child_id + 1, child_id + k + 1),
                "episode_id": np.repeat(ids, kids),
                "name": full_names[rng.integers(0, len(FIRST), k) * len(SURNAMES) + surname],
                "date_of_birth": iso[born],
            })
            child_id += k
            self.done.to(0.35 * (lo + m) / total)
        self.counts["episodes"], self.counts["children"] = total, child_id

    # -- around the episodes -----------------------------------------------------------------
    def feedback(self, seed: int) -> dict:
        """Service-user feedback and practitioner self-assessments, from the episodes kept
        in memory (no second read of a million rows)."""
        from . import self_assessment

        rng, iso = np.random.default_rng(seed * 7919 + 2), self.iso
        themes = np.array(setting("feedback", "concern_themes"), dtype=object)
        questions = sorted(q["key"] for q in setting("feedback", "service_user_questions"))
        items = [i.key for i in self_assessment.load().items]
        m = len(self.ep_start)
        ep_id = np.arange(1, m + 1)
        start, last, ended = self.ep_start, self.ep_latest, self.ep_closed
        # Service-user feedback: a quarter of episodes that ran over a month.
        f = np.flatnonzero((rng.random(m) < 0.25) & (last - start > 30))
        k = len(f)
        closure = ended[f] & (rng.random(k) < 0.5)
        stage = np.where(closure, "closure", np.where(rng.random(k) < 0.5, "end_of_assessment",
                                                      "taf_meeting")).astype(object)
        span = np.maximum(last[f] - start[f] - 21, 0) + 1
        given = np.where(closure, last[f],
                         start[f] + 21 + (rng.random(k) * span).astype(np.int64))
        ratings = np.array([3, 4, 4, 5, 5, 2])[rng.integers(0, 6, (k, len(questions)))]
        as_json = "{" + ", ".join(f"{json.dumps(q)}: %d" for q in questions) + "}"  # as dumps
        concern = rng.random(k) < 0.12
        feedback = {
            "episode_id": ep_id[f], "given_on": iso[given],
            "respondent": np.array(["child_young_person", "parent_carer", "parent_carer"],
                                   dtype=object)[rng.integers(0, 3, k)],
            "stage": stage,
            "ratings": [as_json % r for r in map(tuple, ratings.tolist())],
            "comments": np.array(FEEDBACK_COMMENTS, dtype=object)[
                rng.integers(0, len(FEEDBACK_COMMENTS), k)],
            "concern_raised": concern.astype(np.int64),
            "concern_theme": np.where(concern, themes[rng.integers(0, len(themes), k)], None),
            "concern_detail": np.where(concern, "Raised with the lead professional.", None)}
        # Practitioner self-assessments: one episode in four, two to six weeks in.
        done = start + rng.integers(14, 46, m)
        a = np.flatnonzero((rng.random(m) < 0.25) & (done <= last))
        assessment_ids = np.arange(1, len(a) + 1)
        assessments = {
            "id": assessment_ids, "episode_id": ep_id[a], "practitioner_id": self.ep_lead[a],
            "completed_on": iso[done[a]], "template": ["self_assessment"] * len(a),
            "notes": [None] * len(a)}
        _insert_all(self.db, {"service_user_feedback": feedback, "self_assessments": assessments})
        if len(a):
            _insert_by_key(self.db, "self_assessment_items", ("self_assessment_id", assessment_ids),
                           ("item", items), {"met": [0, 1]},
                           (rng.random((len(a), len(items))) < 0.8).astype(np.int64))
        return {"service-user feedback": k, "self-assessments": len(a)}

    # -- audits and what hangs off them ----------------------------------------------------
    def audits(self, total: int) -> None:
        tpl, rng, iso = self.tpl, self.rng, self.iso
        graded = [s.key for s in tpl.graded_sections]
        comments = np.array([COMMENT_BANK[g] for g in (1, 2, 3, 4)], dtype=object)
        # The form's answer rows in template order: (key, kind, index of its graded section).
        layout = []
        for s in tpl.sections:
            gi = graded.index(s.key) if s.graded else -1
            if s.graded:
                layout.append((s.key, "grade", gi))
            for item in s.items:
                layout.append((item.key, "comment", gi))
                layout.extend((q.key, "response", gi) for q in item.questions)
        checklist = [c.value for c in tpl.checklist]
        best_for: dict[tuple, int] = {}
        made = actions_made = moderations_made = 0
        episodes_total = len(self.ep_start)
        # Which episode each audit is of, and when; numbered in date order, as made.
        all_ep = rng.integers(0, episodes_total, total) if episodes_total else np.zeros(0, int)
        first, last = self.ep_start[all_ep], self.ep_latest[all_ep]
        all_date = first + (rng.random(total) * (np.maximum(0, last - first) + 1)).astype(np.int64)
        order = np.argsort(all_date, kind="stable")
        all_ep, all_date = all_ep[order], all_date[order]
        for lo in range(0, total, AUDIT_CHUNK):
            m = min(AUDIT_CHUNK, total - lo)
            ids = np.arange(lo + 1, lo + m + 1)
            ep, date = all_ep[lo:lo + m], all_date[lo:lo + m]
            lead = self.ep_lead[ep]
            size = self.pool_size[lead]
            r1 = (rng.random(m) * size).astype(np.int64)
            a1 = self.pool[lead, r1]
            # A second auditor (and a moderator) from the same pool, never the first auditor.
            r2 = (rng.random(m) * (size - 1)).astype(np.int64)
            r2 += r2 >= r1
            two = rng.random(m) < 0.3
            a2 = np.where(two, self.pool[lead, r2], 0)
            base = rng.choice(4, size=m, p=np.array(GRADE_WEIGHTS) / sum(GRADE_WEIGHTS)) + 1
            delta = rng.choice(np.array([-1, 0, 0, 0, 1]), size=(m, len(graded)))
            grades = np.clip(base[:, None] + delta, 1, 4)
            for row in map(tuple, np.unique(grades, axis=0).tolist()):
                if row not in best_for:
                    best_for[row] = best_overall_allowed(tpl, row)
            best = np.array([best_for[row] for row in map(tuple, grades.tolist())])
            overall = np.minimum(4, best + (rng.random(m) < 0.1))
            recent = (self.until - date) < 21
            draft = recent & (rng.random(m) < 0.5)
            moderated = ~draft & (rng.random(m) < 0.12)
            status = np.where(draft, "draft", np.where(moderated, "moderated", "submitted"))
            none = np.full(m, None, dtype=object)
            _insert(self.db, "audits", {
                "id": ids, "episode_id": ep + 1, "template": [tpl.key] * m,
                "auditor1_id": a1, "auditor2_id": np.where(two, a2, none),
                "audit_date": iso[date], "status": status.astype(object),
                "summary": ["Family referred for support; synthetic demo case summary."] * m,
                "overall_grade": overall,
                "overall_reasons": comments[overall - 1, rng.integers(0, 2, m)],
                "learning": np.array(LEARNING_BANK, dtype=object)[
                    rng.integers(0, len(LEARNING_BANK), m)],
                "created_at": iso[date] + "T09:00:00Z",
                "updated_at": iso[date] + "T16:00:00Z",
                "submitted_at": np.where(draft, none, iso[date] + "T16:00:00Z"),
            })

            # Answers: every key on the form, one row each, as a code per cell (ANSWER_CODES).
            code = np.zeros((m, len(layout)), dtype=np.int64)
            for j, (_key, kind, gi) in enumerate(layout):
                g = grades[:, gi] if gi >= 0 else None
                if kind == "grade":
                    code[:, j] = g
                elif kind == "comment" and g is not None:
                    code[:, j] = 5 + 2 * (g - 1) + rng.integers(0, 2, m)
                elif kind == "response":
                    p_yes = np.array([0.95, 0.8, 0.5, 0.25])[(g if g is not None else 2) - 1]
                    no = np.array([14, 14, 15])[rng.integers(0, 3, m)]
                    code[:, j] = np.where(rng.random(m) < p_yes, 13, no)
            _insert_by_key(self.db, "answers", ("audit_id", ids),
                           ("key", [key for key, _, _ in layout]), ANSWER_CODES, code)
            _insert_by_key(self.db, "checklist_answers", ("audit_id", ids), ("item", checklist),
                           {"status": ["accurate", "not_accurate", "not_recorded"]},
                           rng.choice(3, size=(m, len(checklist)), p=[0.88, 0.07, 0.05]))

            # Actions: for audits graded Requires Improvement or worse, and some others.
            worst = np.maximum(overall, grades.max(axis=1))
            has = (worst >= 3) | (rng.random(m) < 0.2)
            n_act = np.where(has, rng.integers(1, 4, m), 0)
            k = int(n_act.sum())
            offsets = np.repeat(np.cumsum(n_act) - n_act, n_act)
            at = np.repeat(date, n_act)
            due = at + rng.integers(14, 91, k)
            done = (due <= self.until) & (rng.random(k) < 0.75)
            completed = np.maximum(at, np.minimum(self.until, due + rng.integers(-10, 21, k)))
            owner = np.repeat(lead, n_act)
            _insert(self.db, "actions", {
                "id": np.arange(actions_made + 1, actions_made + k + 1),
                "audit_id": np.repeat(ids, n_act), "number": np.arange(k) - offsets + 1,
                "action": np.array(ACTION_BANK, dtype=object)[rng.integers(0, len(ACTION_BANK), k)],
                "by_whom": self.names[owner], "owner_id": owner,
                "due_date": iso[due], "discussed_date": iso[at + rng.integers(1, 11, k)],
                "agreed_by": np.where(np.repeat(two, n_act), "Auditor 2", "Moderator").astype(object),
                "completed_date": np.where(done, iso[completed], np.full(k, None, dtype=object)),
                "completion_note": [None] * k,
            })
            actions_made += k

            # Moderation of each graded section and the overall grade.
            mod = np.flatnonzero(moderated)
            if len(mod):
                r3 = (rng.random(len(mod)) * (size[mod] - 1)).astype(np.int64)
                r3 += r3 >= r1[mod]
                moderator = np.where(two[mod], a2[mod], self.pool[lead[mod], r3])
                original = np.concatenate([grades[mod], overall[mod, None]], axis=1)
                changed = rng.random(original.shape) < 0.15
                step = rng.choice(np.array([-1, 1]), size=original.shape)
                new = np.where(changed, np.clip(original + step, 1, 4), original)
                keys = [*graded, "overall"]
                n_mod = len(mod) * len(keys)
                _insert(self.db, "moderations", {
                    "id": np.arange(moderations_made + 1, moderations_made + n_mod + 1),
                    "audit_id": np.repeat(ids[mod], len(keys)), "key": keys * len(mod),
                    "moderator_id": np.repeat(moderator, len(keys)),
                    "moderated_on": np.repeat(iso[np.minimum(self.until, date[mod] + 7)], len(keys)),
                    "original_grade": original.ravel(), "moderated_grade": new.ravel(),
                    "reason": np.where(new.ravel() != original.ravel(),
                                       "Evidence supports a different grade",
                                       np.full(n_mod, None, dtype=object)),
                })
                moderations_made += n_mod
            made += m
            self.done.to(0.35 + 0.35 * made / total)
        self.done.to(0.7)
        self.counts["audits"], self.counts["actions"] = made, actions_made


DISCUSSION_LEARNING = [
    "Worker reflected on how to bring the child's voice into reviews.",
    "Agreed to hold reviews on time and record them in the plan.",
    "Line manager will use supervision to track the plan's outcomes.",
    "Worker will share the plan with school and health after each TAF.",
]
FEEDBACK_COMMENTS = [
    "The worker listened and the plan helped.",
    "Meetings were at times that suited us.",
    "We waited a long time for the parenting course.",
    None,
]


def _days(texts) -> np.ndarray:
    """ISO dates (None: NaT) as day numbers, parsed by numpy in one go."""
    return np.array(texts, dtype="datetime64[D]").astype(np.int64)


def _iso(days: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(days.astype("datetime64[D]")).astype(object)


def generate_followups(db: sqlite_utils.Database, *, seed: int, until: dt.date) -> dict:
    """What happens after audits: worker told, feedback sent, discussions and 1-1 meetings.
    Deterministic for a seed; drawn with numpy a column at a time, like the episodes."""
    rng = np.random.default_rng(seed * 7919 + 1)
    end = _days([until.isoformat()])[0]
    audits = db.execute("""
        SELECT a.id, a.audit_date, a.auditor1_id, coalesce(a.overall_grade, 0),
               e.lead_professional_id, coalesce(p.line_manager_id, 0)
        FROM counted_audits a JOIN episodes e ON e.id = a.episode_id
        LEFT JOIN practitioners p ON p.id = e.lead_professional_id
        ORDER BY a.id""").fetchall()
    audit_id, day, auditor, overall, lead, manager = (
        np.array(c, dtype=object) for c in zip(*audits, strict=True)) if audits else [
        np.array([], dtype=object)] * 6
    day = _days(list(day))
    n = len(audits)
    sent = day + rng.integers(2, 11, n)
    held = day + rng.integers(5, 22, n)
    none = np.full(n, None, dtype=object)
    talked = (held <= end) & (rng.random(n) < 0.85)
    met = (overall.astype(np.int64) >= 3) & (held <= end) & (rng.random(n) < 0.7)
    d = np.flatnonzero(talked)
    discussion_ids = np.arange(1, len(d) + 1)
    # Who came: the worker, their line manager (where they have one) and the auditor.
    who = np.stack([lead[d], manager[d], auditor[d]], axis=1)
    came = who.astype(np.int64) > 0
    tables = {
        "audit_followups": {
            "audit_id": audit_id, "worker_notified_date": _iso(day - rng.integers(3, 11, n)),
            "feedback_sent_date": np.where((sent <= end) & (rng.random(n) < 0.85),
                                           _iso(sent), none)},
        "discussions": {
            "id": discussion_ids, "audit_id": audit_id[d], "held_on": _iso(held[d]),
            "learning": np.array(DISCUSSION_LEARNING, dtype=object)[
                rng.integers(0, len(DISCUSSION_LEARNING), len(d))],
            "notes": none[d]},
        "discussion_attendees": {
            "discussion_id": np.repeat(discussion_ids, 3)[came.ravel()],
            "practitioner_id": who.ravel()[came.ravel()],
            "role": np.tile(np.array(["worker", "line_manager", "auditor"], dtype=object),
                            len(d))[came.ravel()]},
        "one_to_one_meetings": {
            "audit_id": audit_id[met], "professional_id": lead[met],
            "held_by_id": auditor[met], "held_on": _iso(held[met]),
            "notes": ["Talked through the audit and agreed the action plan."] * int(met.sum())},
    }
    with store.acting_as(actor="ehkit demo"), store.transaction(db):
        _insert_all(db, tables)
    return {"discussions": len(d)}


def _insert_all(db: sqlite_utils.Database, tables: dict[str, dict]) -> None:
    for table, columns in tables.items():
        if len(next(iter(columns.values()))):
            _insert(db, table, columns)


def generate_selections(db: sqlite_utils.Database, *, seed: int, until: dt.date,
                        months: int = 6, advance: Callable[[float], None] = lambda share: None
                        ) -> dict:
    """The framework's monthly audit lists for the last ``months`` months, drawn by
    ``ehkit.sampling`` as each month closes, and the audits done from them: most within
    their two weeks, some late, some still outstanding. Each audit copies the grades,
    comments and checklist of an earlier demo audit (plausible content, made once)."""
    from . import sampling

    rng = random.Random(seed * 104729 + 3)
    sources = [r[0] for r in db.execute(
        "SELECT id FROM audits WHERE status = 'submitted' ORDER BY id").fetchall()]
    if not sources:
        return {"audit lists": 0}
    next_id = db.execute("SELECT max(id) FROM audits").fetchone()[0] + 1
    month_start = dt.date(until.year, until.month, 1)
    firsts = []
    for _ in range(months):
        firsts.insert(0, month_start)
        month_start = (month_start - dt.timedelta(days=1)).replace(day=1)
    drawn = 0

    def later(days: str) -> str:
        """SQL for the day (the first parameter) ``days`` (an SQL number) later, as ISO text."""
        if store.is_postgres(db):
            return f"to_char(CAST(? AS date) + CAST({days} AS integer), 'YYYY-MM-DD')"
        return f"date(?, '+' || ({days}) || ' days')"

    for first in firsts:
        month = f"{first:%Y-%m}"
        # Drawn when the month closes (or today, for the month under way): the pool is the
        # episodes open during the month, so none can start after its draw.
        last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        sampling.draw(db, month, seed=seed * 100 + first.month, on=min(last, until),
                      drawn_by="ehkit demo")
        drawn += 1
        advance(drawn / months)  # the share of the months drawn so far
        clones = []
        for s in sampling.selection(db, month, as_of=until):
            due = dt.date.fromisoformat(s["due_date"])
            luck = rng.random()
            done = (dt.date.fromisoformat(s["selected_on"]) + dt.timedelta(days=rng.randint(1, 13))
                    if luck < 0.82 else due + dt.timedelta(days=rng.randint(1, 12))
                    if luck < 0.92 else None)
            if done is None or done > until or s["auditor_id"] is None:
                continue
            clones.append((next_id, rng.choice(sources), s["episode_id"], s["auditor_id"], done))
            next_id += 1
        with store.acting_as(actor="ehkit demo"), store.transaction(db):
            for new, source, episode, auditor, day in clones:
                d = day.isoformat()
                db.execute("""
                    INSERT INTO audits (id, episode_id, template, auditor1_id, audit_date, status,
                        summary, overall_grade, overall_reasons, learning, created_at, updated_at,
                        submitted_at)
                    SELECT ?, ?, template, ?, ?, 'submitted', summary, overall_grade,
                           overall_reasons, learning, ?, ?, ?
                    FROM audits WHERE id = ?""", [new, episode, auditor, d, f"{d}T09:00:00Z",
                                                  f"{d}T16:00:00Z", f"{d}T16:00:00Z", source])
                db.execute("""INSERT INTO answers (audit_id, key, grade, comment, response)
                              SELECT ?, key, grade, comment, response FROM answers
                              WHERE audit_id = ?""", [new, source])
                db.execute("""INSERT INTO checklist_answers (audit_id, item, status, note)
                              SELECT ?, item, status, note FROM checklist_answers
                              WHERE audit_id = ?""", [new, source])
                db.execute(f"""
                    INSERT INTO actions (audit_id, number, action, by_whom, owner_id, due_date,
                                         discussed_date, agreed_by)
                    SELECT ?, x.number, x.action, p.name, e.lead_professional_id,
                           {later("14 + 7 * x.number")}, ?, 'Auditor 2'
                    FROM actions x JOIN episodes e ON e.id = ?
                    JOIN practitioners p ON p.id = e.lead_professional_id
                    WHERE x.audit_id = ? ORDER BY x.number""",
                           [new, d, (day + dt.timedelta(days=3)).isoformat(), episode, source])
    return {"audit lists": drawn}
