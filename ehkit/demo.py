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


EPISODE_CHUNK = 100_000
AUDIT_CHUNK = 20_000


def _choice(rng: np.random.Generator, pairs, n: int) -> np.ndarray:
    values = np.array([p for p, _ in pairs], dtype=object)
    weights = np.array([w for _, w in pairs], dtype=float)
    return values[rng.choice(len(values), size=n, p=weights / weights.sum())]


def _insert(db: sqlite_utils.Database, table: str, columns: dict) -> None:
    """Bulk-insert whole columns: sqlite-utils' per-value conversion costs more than SQLite here."""
    names = list(columns)
    sql = (f"INSERT INTO {table} ({', '.join(names)}) "
           f"VALUES ({', '.join('?' * len(names))})")
    lists = [c.tolist() if isinstance(c, np.ndarray) else c for c in columns.values()]
    db.conn.executemany(sql, zip(*lists, strict=True))


@contextlib.contextmanager
def _filling_a_new_file(db: sqlite_utils.Database):
    """While a brand-new demo file is filled, skip the write-ahead log and per-commit syncs.

    Only an empty store is filled (``generate`` refuses any other), so an interrupted run
    leaves nothing worth keeping: run it again. A big page cache keeps the indexes in memory.
    The file is synced and the connection's usual settings restored at the end.
    """
    conn = db.conn
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    bulk = mode == "wal" and conn.execute("PRAGMA journal_mode = MEMORY").fetchone()[0] == "memory"
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")  # KiB: about 1 GB at most, used as needed
    try:
        yield
    finally:
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
    episodes over three years. ``progress`` is called with the number of episodes (and,
    for the audits, episode-equivalents) done since its last call.
    """
    if db["episodes"].count:
        raise store.StoreError(
            f"the database already holds {db['episodes'].count} episodes: demo data goes "
            "into a new database (choose another --db, or delete this one)"
        )
    tpl = templates.load(template)
    until = until or dt.date.today()
    with _filling_a_new_file(db):
        with store.acting_as(actor="ehkit demo"), store.transaction(db):
            counts = _Service(db, tpl, seed, until, years, progress).fill(
                episodes, audits_per_episode)
        counts.update(generate_selections(db, seed=seed, until=until))
        counts.update(generate_followups(db, seed=seed, until=until))
    counts["audits"], counts["actions"] = db["audits"].count, db["actions"].count
    return counts


class _Service:
    """The invented service being written: its people, then episodes, then audits."""

    def __init__(self, db, tpl, seed, until, years, progress):
        self.db, self.tpl, self.progress = db, tpl, progress or (lambda n: None)
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
        child_id = 0
        for lo in range(0, total, EPISODE_CHUNK):
            m = min(EPISODE_CHUNK, total - lo)
            ids = np.arange(lo + 1, lo + m + 1)
            start = self.begin + rng.integers(0, self.until - self.begin, m)
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
            self.ep_lead[lo:lo + m] = lead
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
            self.progress(m // 2 if total > 1 else m)
        self.counts["episodes"], self.counts["children"] = total, child_id

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
        reported = episodes_total // 2 if episodes_total > 1 else episodes_total
        for lo in range(0, total, AUDIT_CHUNK):
            m = min(AUDIT_CHUNK, total - lo)
            ids = np.arange(lo + 1, lo + m + 1)
            ep = rng.integers(0, episodes_total, m)
            start, latest, lead = self.ep_start[ep], self.ep_latest[ep], self.ep_lead[ep]
            date = start + (rng.random(m) * (np.maximum(0, latest - start) + 1)).astype(np.int64)
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

            # Answers: every key on the form, one row each.
            n_keys = len(layout)
            grade_col = np.full((m, n_keys), None, dtype=object)
            comment_col = np.full((m, n_keys), None, dtype=object)
            response_col = np.full((m, n_keys), None, dtype=object)
            for j, (_key, kind, gi) in enumerate(layout):
                g = grades[:, gi] if gi >= 0 else None
                if kind == "grade":
                    grade_col[:, j] = g
                elif kind == "comment" and g is not None:
                    comment_col[:, j] = comments[g - 1, rng.integers(0, 2, m)]
                elif kind == "response":
                    p_yes = np.array([0.95, 0.8, 0.5, 0.25])[(g if g is not None else 2) - 1]
                    no = np.array(["no", "no", "not_applicable"], dtype=object)[
                        rng.integers(0, 3, m)]
                    response_col[:, j] = np.where(rng.random(m) < p_yes, "yes", no)
            _insert(self.db, "answers", {
                "audit_id": np.repeat(ids, n_keys),
                "key": [key for key, _, _ in layout] * m,
                "grade": grade_col.ravel(), "comment": comment_col.ravel(),
                "response": response_col.ravel(),
            })
            statuses = np.array(["accurate", "not_accurate", "not_recorded"], dtype=object)
            _insert(self.db, "checklist_answers", {
                "audit_id": np.repeat(ids, len(checklist)),
                "item": checklist * m,
                "status": statuses[rng.choice(3, size=m * len(checklist), p=[0.88, 0.07, 0.05])],
                "note": [None] * (m * len(checklist)),
            })

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
            # The audits are about the other half of the work: report them as episodes.
            done_share = episodes_total - episodes_total // 2
            now = episodes_total // 2 + done_share * made // total if total else episodes_total
            self.progress(now - reported)
            reported = now
        if not total:
            self.progress(episodes_total - reported)
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


def generate_followups(db: sqlite_utils.Database, *, seed: int, until: dt.date) -> dict:
    """What happens after audits and around episodes: worker told, discussions, 1-1 meetings,
    service-user feedback and practitioner self-assessments. Deterministic for a seed."""
    from . import self_assessment

    rng = random.Random(seed * 7919 + 1)
    themes = setting("feedback", "concern_themes")
    questions = [q["key"] for q in setting("feedback", "service_user_questions")]
    items = [i.key for i in self_assessment.load().items]
    line_manager = dict(db.execute("SELECT id, line_manager_id FROM practitioners").fetchall())
    followups, discussions, attendees, meetings = [], [], [], []
    audits = db.execute("""
        SELECT a.id, a.audit_date, a.auditor1_id, a.overall_grade, e.lead_professional_id
        FROM audits a JOIN episodes e ON e.id = a.episode_id
        WHERE a.status <> 'draft' ORDER BY a.id""").fetchall()
    for audit_id, audit_date, auditor, overall, lead in audits:
        day = dt.date.fromisoformat(audit_date)
        sent = day + dt.timedelta(days=rng.randint(2, 10))
        followups.append({
            "audit_id": audit_id,
            "worker_notified_date": (day - dt.timedelta(days=rng.randint(3, 10))).isoformat(),
            "feedback_sent_date": sent.isoformat() if sent <= until and rng.random() < 0.85
            else None})
        held = day + dt.timedelta(days=rng.randint(5, 21))
        if held <= until and rng.random() < 0.85:
            did = len(discussions) + 1
            discussions.append({"id": did, "audit_id": audit_id, "held_on": held.isoformat(),
                                "learning": rng.choice(DISCUSSION_LEARNING), "notes": None})
            people = {lead: "worker", line_manager.get(lead): "line_manager", auditor: "auditor"}
            attendees += [{"discussion_id": did, "practitioner_id": p, "role": r}
                          for p, r in people.items() if p is not None]
        if overall and overall >= 3 and held <= until and rng.random() < 0.7:
            meetings.append({"audit_id": audit_id, "professional_id": lead, "held_by_id": auditor,
                             "held_on": held.isoformat(),
                             "notes": "Talked through the audit and agreed the action plan."})
    feedback, assessments, assessment_items = [], [], []
    episodes = db.execute("""SELECT id, start_date, end_date, lead_professional_id FROM episodes
                             ORDER BY id""").fetchall()
    for episode_id, start, end, lead in episodes:
        start_day = dt.date.fromisoformat(start)
        last = min(dt.date.fromisoformat(end) if end else until, until)
        if rng.random() < 0.25 and (last - start_day).days > 30:
            stage = "closure" if end and rng.random() < 0.5 else rng.choice(
                ("end_of_assessment", "taf_meeting"))
            given = last if stage == "closure" else start_day + dt.timedelta(
                days=rng.randint(21, (last - start_day).days))
            concern = rng.random() < 0.12
            feedback.append({
                "episode_id": episode_id, "given_on": given.isoformat(),
                "respondent": rng.choice(("child_young_person", "parent_carer", "parent_carer")),
                "stage": stage,
                "ratings": json.dumps({q: rng.choice((3, 4, 4, 5, 5, 2)) for q in sorted(questions)}),
                "comments": rng.choice(FEEDBACK_COMMENTS), "concern_raised": int(concern),
                "concern_theme": rng.choice(themes) if concern else None,
                "concern_detail": "Raised with the lead professional." if concern else None})
        done = start_day + dt.timedelta(days=rng.randint(14, 45))
        if rng.random() < 0.4 and done <= last:
            sid = len(assessments) + 1
            assessments.append({"id": sid, "episode_id": episode_id, "practitioner_id": lead,
                                "completed_on": done.isoformat(), "template": "self_assessment",
                                "notes": None})
            assessment_items += [{"self_assessment_id": sid, "item": k,
                                  "met": int(rng.random() < 0.8)} for k in items]
    with store.acting_as(actor="ehkit demo"), store.transaction(db):
        for table, rows in (("audit_followups", followups), ("discussions", discussions),
                            ("discussion_attendees", attendees),
                            ("one_to_one_meetings", meetings),
                            ("service_user_feedback", feedback),
                            ("self_assessments", assessments),
                            ("self_assessment_items", assessment_items)):
            if rows:
                _insert(db, table, {k: [r[k] for r in rows] for k in rows[0]})
    return {"discussions": len(discussions), "service-user feedback": len(feedback),
            "self-assessments": len(assessments)}


def generate_selections(db: sqlite_utils.Database, *, seed: int, until: dt.date,
                        months: int = 6) -> dict:
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
    for first in firsts:
        month = f"{first:%Y-%m}"
        # Drawn when the month closes (or today, for the month under way): the pool is the
        # episodes open during the month, so none can start after its draw.
        last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        sampling.draw(db, month, seed=seed * 100 + first.month, on=min(last, until),
                      drawn_by="ehkit demo")
        drawn += 1
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
                           overall_reasons, learning, ? || 'T09:00:00Z', ? || 'T16:00:00Z',
                           ? || 'T16:00:00Z'
                    FROM audits WHERE id = ?""", [new, episode, auditor, d, d, d, d, source])
                db.execute("""INSERT INTO answers (audit_id, key, grade, comment, response)
                              SELECT ?, key, grade, comment, response FROM answers
                              WHERE audit_id = ?""", [new, source])
                db.execute("""INSERT INTO checklist_answers (audit_id, item, status, note)
                              SELECT ?, item, status, note FROM checklist_answers
                              WHERE audit_id = ?""", [new, source])
                db.execute("""
                    INSERT INTO actions (audit_id, number, action, by_whom, owner_id, due_date,
                                         discussed_date, agreed_by)
                    SELECT ?, x.number, x.action, p.name, e.lead_professional_id,
                           date(?, '+' || (14 + 7 * x.number) || ' days'), date(?, '+3 days'),
                           'Auditor 2'
                    FROM actions x JOIN episodes e ON e.id = ?
                    JOIN practitioners p ON p.id = e.lead_professional_id
                    WHERE x.audit_id = ?""", [new, d, d, episode, source])
    return {"audit lists": drawn}
