"""Synthetic demo data: a whole invented Early Help service, deterministic for a seed.

Every person here is invented; surnames come from a list of made-up words so no name can be
mistaken for a real family. The same seed, size and ``until`` date give the same data.
Rows are generated in batches and bulk-inserted, so a million episodes fit in memory-light
chunks.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable, Iterator

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


def _weighted(rng: random.Random, pairs) -> str:
    return rng.choices([p for p, _ in pairs], weights=[w for _, w in pairs])[0]


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


def _batches(rows: Iterator[dict], size: int) -> Iterator[list[dict]]:
    batch = []
    for r in rows:
        batch.append(r)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


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
    episodes over three years.
    """
    if db["episodes"].count:
        raise store.StoreError(
            f"the database already holds {db['episodes'].count} episodes: demo data goes "
            "into a new database (choose another --db, or delete this one)"
        )
    tpl = templates.load(template)
    rng = random.Random(seed)
    until = until or dt.date.today()
    begin = until - dt.timedelta(days=365 * years)
    reasons = setting("episodes", "referral_reasons")
    counts: dict[str, int] = {}
    batch = 5000

    with store.acting_as(actor="ehkit demo"), store.transaction(db):
        # Agencies and people -------------------------------------------------------------
        db["agencies"].insert_all(
            {"id": i + 1, "name": n, "kind": k, "sector": s}
            for i, (n, k, s) in enumerate(AGENCY_SPECS)
        )
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
        db["practitioners"].insert_all(people)
        counts["agencies"], counts["practitioners"] = len(AGENCY_SPECS), len(people)
        line_manager = {p["id"]: p["line_manager_id"] for p in people}
        council_agencies = [i for i, a in enumerate(AGENCY_SPECS, 1) if a[1] == "council"]
        partner_agencies = [i for i, a in enumerate(AGENCY_SPECS, 1) if a[1] == "partner"]
        auditors = [p["id"] for p in people if p["is_auditor"]]

        # Episodes and children -------------------------------------------------------
        span = (until - begin).days
        open_on: list[tuple[int, dt.date, dt.date | None, int, int | None]] = []

        def episode_rows() -> Iterator[dict]:
            for i in range(1, episodes + 1):
                start = begin + dt.timedelta(days=rng.randrange(span))
                length = int(rng.lognormvariate(5.2, 0.5))  # median ~6 months
                end = start + dt.timedelta(days=length)
                closed = end <= until
                agency = rng.choice(council_agencies if rng.random() < 0.7 else partner_agencies)
                lead = rng.choice(leads_by_agency[agency])
                first_review = start + dt.timedelta(days=rng.randint(28, 70))
                if first_review > min(end, until):
                    first_review = None
                last_review = first_review
                if first_review:
                    stop = min(end, until)
                    # Most reviews keep pace; about a fifth of open cases have drifted.
                    gap_to = stop - dt.timedelta(days=rng.randint(0, 80))
                    if not closed and rng.random() < 0.2:
                        gap_to = stop - dt.timedelta(days=rng.randint(95, 200))
                    last_review = max(first_review, min(gap_to, stop))
                cross = rng.random() < 0.03
                open_on.append((i, start, end if closed else None, lead, line_manager[lead]))
                if progress:
                    progress(1)
                yield {
                    "id": i,
                    "ehm_number": f"EHM{100000 + i}",
                    "start_date": start.isoformat(),
                    "end_date": _iso(end) if closed else None,
                    "status": "closed" if closed else "open",
                    "lead_professional_id": lead,
                    "lead_agency_id": agency,
                    "team_manager_id": line_manager[lead],
                    "referral_reason": rng.choice(reasons),
                    "began_as": _weighted(rng, BEGAN),
                    "cross_authority": int(cross),
                    "cross_authority_name": "Elderquay Borough Council" if cross else None,
                    "cross_authority_contact": (
                        f"{rng.choice(FIRST)} {rng.choice(SURNAMES)}" if cross else None),
                    "ended_as": _weighted(rng, ENDED) if closed else None,
                    "first_review_date": _iso(first_review),
                    "last_review_date": _iso(last_review),
                }

        for chunk in _batches(episode_rows(), batch):
            db["episodes"].insert_all(chunk, batch_size=batch)
            kids = []
            for e in chunk:
                start = dt.date.fromisoformat(e["start_date"])
                surname = rng.choice(SURNAMES)
                for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
                    age_days = rng.randrange(0, 18 * 365)
                    kids.append({"episode_id": e["id"],
                                 "name": f"{rng.choice(FIRST)} {surname}",
                                 "date_of_birth": (start - dt.timedelta(days=age_days)).isoformat()})
            db["children"].insert_all(kids, batch_size=batch)
        counts["episodes"] = episodes
        counts["children"] = db["children"].count

        # Audits ----------------------------------------------------------------------
        n_audits = round(episodes * audits_per_episode)
        graded = [s.key for s in tpl.graded_sections]
        answer_rows, checklist_rows, action_rows, moderation_rows, audit_rows = [], [], [], [], []
        made = 0
        for audit_id in range(1, n_audits + 1):
            ep_id, start, end, lead, manager = open_on[rng.randrange(len(open_on))]
            latest = min(end or until, until)
            audit_date = start + dt.timedelta(days=rng.randint(0, max(0, (latest - start).days)))
            pool = [a for a in auditors
                    if conflict_of_interest(a, lead, manager, line_manager) is None]
            a1 = rng.choice(pool)
            a2 = rng.choice([a for a in pool if a != a1]) if rng.random() < 0.3 else None
            base = rng.choices((1, 2, 3, 4), weights=GRADE_WEIGHTS)[0]
            grades = {k: min(4, max(1, base + rng.choice((-1, 0, 0, 0, 1)))) for k in graded}
            best = best_overall_allowed(tpl, grades.values())
            overall = min(4, best + (1 if rng.random() < 0.1 else 0))
            recent = (until - audit_date).days < 21
            status = "draft" if recent and rng.random() < 0.5 else (
                "moderated" if rng.random() < 0.12 else "submitted")
            audit_rows.append({
                "id": audit_id, "episode_id": ep_id, "template": tpl.key,
                "auditor1_id": a1, "auditor2_id": a2, "audit_date": audit_date.isoformat(),
                "status": status,
                "summary": "Family referred for support; synthetic demo case summary.",
                "overall_grade": overall,
                "overall_reasons": rng.choice(COMMENT_BANK[overall]),
                "learning": rng.choice(LEARNING_BANK),
                "submitted_at": None if status == "draft" else f"{audit_date.isoformat()}T16:00:00Z",
                "created_at": f"{audit_date.isoformat()}T09:00:00Z",
                "updated_at": f"{audit_date.isoformat()}T16:00:00Z",
            })
            for s in tpl.sections:
                g = grades.get(s.key)
                if s.graded:
                    answer_rows.append({"audit_id": audit_id, "key": s.key, "grade": g,
                                        "comment": None, "response": None})
                for item in s.items:
                    answer_rows.append({
                        "audit_id": audit_id, "key": item.key, "grade": None,
                        "comment": rng.choice(COMMENT_BANK[g]) if g else None, "response": None})
                    for q in item.questions:
                        yes = rng.random() < (0.95, 0.8, 0.5, 0.25)[(g or 2) - 1]
                        answer_rows.append({
                            "audit_id": audit_id, "key": q.key, "grade": None, "comment": None,
                            "response": "yes" if yes else rng.choice(("no", "no", "not_applicable"))})
            for c in tpl.checklist:
                checklist_rows.append({
                    "audit_id": audit_id, "item": c.value,
                    "status": rng.choices(("accurate", "not_accurate", "not_recorded"),
                                          weights=(88, 7, 5))[0], "note": None})
            worst = max(overall, *grades.values())
            if worst >= 3 or rng.random() < 0.2:
                for n in range(1, rng.randint(1, 3) + 1):
                    due = audit_date + dt.timedelta(days=rng.randint(14, 90))
                    done = due <= until and rng.random() < 0.75
                    completed = min(until, due + dt.timedelta(days=rng.randint(-10, 20)))
                    action_rows.append({
                        "audit_id": audit_id, "number": n, "action": rng.choice(ACTION_BANK),
                        "by_whom": next(p["name"] for p in people if p["id"] == lead),
                        "owner_id": lead, "due_date": due.isoformat(),
                        "discussed_date": (audit_date + dt.timedelta(days=rng.randint(1, 10))).isoformat(),
                        "agreed_by": "Auditor 2" if a2 else "Moderator",
                        "completed_date": max(audit_date, completed).isoformat() if done else None,
                        "completion_note": None})
            if status == "moderated":
                moderator = a2 or rng.choice([a for a in pool if a != a1])
                for k, g in [*grades.items(), ("overall", overall)]:
                    changed = rng.random() < 0.15
                    new = min(4, max(1, g + rng.choice((-1, 1)))) if changed else g
                    moderation_rows.append({
                        "audit_id": audit_id, "key": k, "moderator_id": moderator,
                        "moderated_on": min(until, audit_date + dt.timedelta(days=7)).isoformat(),
                        "original_grade": g, "moderated_grade": new,
                        "reason": "Evidence supports a different grade" if new != g else None})
            made += 1
            if len(answer_rows) >= batch * 4 or audit_id == n_audits:
                db["audits"].insert_all(audit_rows, batch_size=batch)
                db["answers"].insert_all(answer_rows, batch_size=batch)
                db["checklist_answers"].insert_all(checklist_rows, batch_size=batch)
                db["actions"].insert_all(action_rows, batch_size=batch)
                db["moderations"].insert_all(moderation_rows, batch_size=batch)
                for rows in (audit_rows, answer_rows, checklist_rows, action_rows, moderation_rows):
                    rows.clear()
        counts["audits"] = made
        counts["actions"] = db["actions"].count
    counts.update(generate_followups(db, seed=seed, until=until))
    return counts


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
            db[table].insert_all(rows, batch_size=5000)
    return {"discussions": len(discussions), "service-user feedback": len(feedback),
            "self-assessments": len(assessments)}
