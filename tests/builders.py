"""The one builder of small hand-made services for tests: the exact cases a rule needs.

Every test that writes its own rows starts here. Two services, from the same steps:

- :func:`base_rows`: one team with an auditor (1, Ava Auditor) and a lead professional
  (2, Leo Lead), one open episode with a child; :func:`add_moderator` adds 3, Mo Moderator.
  A whole audit of it: :func:`complete_audit` as rows, :func:`audit_form` as the form sends
  it, :func:`save_rows` to write the rows straight in.
- :func:`add_service`: a council team and a school (figures by sector and team need both),
  with a manager, a worker, a teacher and an auditor; :func:`add_episode` and
  :func:`add_audit` add exactly the cases a figure's boundary needs.

Only invented people.
"""

from __future__ import annotations

import sqlite3

from ehkit import db as store
from ehkit import template as templates

TEMPLATE = templates.load()
COUNCIL = {"kind": "council", "sector": "Local Authority"}
SCHOOL = {"kind": "partner", "sector": "Education"}


def add_rows(database, **tables: list[dict]) -> None:
    """Rows into each named table, in one transaction logged as the test's setup."""
    with store.acting_as(actor="test setup"), store.transaction(database):
        for table, rows in tables.items():
            database[table].insert_all(rows)


def episode_row(id, start, end=None, *, ended_as=None, began_as="new_request", agency=1,
                lead=2, **extra) -> dict:
    """An episode led by ``lead`` of ``agency``: open, or closed on ``end`` as ``ended_as``."""
    return {"id": id, "ehm_number": f"EHM9{id:05d}", "start_date": start, "end_date": end,
            "status": "closed" if end else "open", "ended_as": ended_as if end else None,
            "began_as": began_as, "lead_agency_id": agency, "lead_professional_id": lead,
            **extra}


# -- one team, one case: what a whole audit needs ------------------------------------------------
def base_rows(database) -> None:
    """One agency, two practitioners (an auditor and a lead), one open episode with a child."""
    add_rows(database,
            agencies=[{"id": 1, "name": "Test Team", **COUNCIL}],
            practitioners=[{"id": 1, "name": "Ava Auditor", "agency_id": 1, "is_auditor": 1},
                           {"id": 2, "name": "Leo Lead", "agency_id": 1, "is_auditor": 0}],
            episodes=[episode_row(1, "2026-01-05", ehm_number="EHM1")],
            children=[{"id": 1, "episode_id": 1, "name": "Kit Testchild",
                       "date_of_birth": "2018-03-01"}])


def add_moderator(database, *, auditor: bool = True) -> int:
    """A third person in the team of :func:`base_rows` who moderates (id 3)."""
    add_rows(database, practitioners=[{"id": 3, "name": "Mo Moderator", "agency_id": 1,
                                      "is_auditor": int(auditor)}])
    return 3


def complete_audit(audit_id: int | None = None, *, episode_id: int = 1, grade: int = 2,
                   status: str = "submitted", text: str = "Evidence of good practice.") -> dict:
    """A whole audit as rows: the audit, every answer, the checklist and one action."""
    audit = {"episode_id": episode_id, "template": TEMPLATE.key, "auditor1_id": 1,
             "audit_date": "2026-03-02", "status": status, "summary": text,
             "overall_grade": grade, "overall_reasons": text, "learning": text,
             "submitted_at": None if status == "draft" else "2026-03-02T16:00:00Z"}
    if audit_id is not None:
        audit["id"] = audit_id
    answers = []
    for s in TEMPLATE.sections:
        if s.graded:
            answers.append({"key": s.key, "grade": grade, "comment": None, "response": None})
        for item in s.items:
            answers.append({"key": item.key, "grade": None, "comment": text, "response": None})
            for q in item.questions:
                answers.append({"key": q.key, "grade": None, "comment": None, "response": "yes"})
    checklist = [{"item": c.value, "status": "accurate", "note": None}
                 for c in TEMPLATE.checklist]
    actions = [{"number": 1, "action": "Review the plan", "by_whom": "Leo Lead", "owner_id": 2,
                "due_date": "2026-04-01"}]
    return {"audit": audit, "answers": answers, "checklist": checklist, "actions": actions}


def audit_form(episode_id: int = 1, text: str = "Evidence of good practice.") -> dict:
    """A complete audit as the form sends it to ehkit.audits."""
    whole = complete_audit(text=text)
    a = {k: v for k, v in whole["audit"].items() if k not in ("status", "submitted_at")}
    a["episode_id"] = episode_id
    a["answers"] = {r["key"]: {k: r[k] for k in ("grade", "comment", "response")}
                    for r in whole["answers"]}
    a["checklist"] = {r["item"]: {"status": r["status"], "note": r["note"]}
                      for r in whole["checklist"]}
    a["actions"] = [{k: v for k, v in r.items() if k != "number"} for r in whole["actions"]]
    return a


def save_rows(database, whole: dict) -> int:
    """Write a complete audit straight into the store in one transaction; its id."""
    with store.acting_as(actor="Ava Auditor"), store.transaction(database):
        audit_id = database["audits"].insert(whole["audit"]).last_pk
        database["answers"].insert_all([{**a, "audit_id": audit_id} for a in whole["answers"]])
        database["checklist_answers"].insert_all(
            [{**c, "audit_id": audit_id} for c in whole["checklist"]])
        database["actions"].insert_all([{**a, "audit_id": audit_id} for a in whole["actions"]])
    return audit_id


# -- a council team and a school: what figures by sector and team need ---------------------------
def add_service(database) -> dict:
    """A council team and a school: a manager (1) and a worker (2) in team North, a teacher
    (3) at the school, an auditor (4) in QA; returns their ids."""
    add_rows(database, agencies=[
        {"id": 1, "name": "Council Team", **COUNCIL},
        {"id": 2, "name": "Fern School", **SCHOOL}], practitioners=[
        {"id": 1, "name": "Mo Manager", "agency_id": 1, "team": "North", "is_auditor": 0},
        {"id": 2, "name": "Wyn Worker", "agency_id": 1, "team": "North", "is_auditor": 0,
         "line_manager_id": 1},
        {"id": 3, "name": "Tess Teacher", "agency_id": 2, "team": "Fern", "is_auditor": 0},
        {"id": 4, "name": "Ana Auditor", "agency_id": 1, "team": "QA", "is_auditor": 1}])
    return {"manager": 1, "worker": 2, "teacher": 3, "auditor": 4}


def add_episode(database, id, start, end=None, **given) -> int:
    """One episode (:func:`episode_row`) written in; its id."""
    add_rows(database, episodes=[episode_row(id, start, end, **given)])
    return id


def add_audit(database, id, episode, date, overall, grades=None, status="submitted",
              auditor=4, template_key="darlington") -> int:
    """A submitted (or ``status``) audit with only the section grades given; its id."""
    add_rows(database, audits=[{
        "id": id, "episode_id": episode, "template": template_key, "auditor1_id": auditor,
        "audit_date": date, "status": status, "overall_grade": overall,
        "submitted_at": None if status == "draft" else f"{date}T12:00:00Z"}],
        answers=[{"audit_id": id, "key": k, "grade": g} for k, g in (grades or {}).items()])
    return id


def raw(path) -> sqlite3.Connection:
    """A plain sqlite3 connection: a tool outside ehkit, as someone tampering would use."""
    return sqlite3.connect(str(path), isolation_level=None)


# -- logins: a team whose people act as themselves (issue 17) -------------------------------------
LOGINS = {"ava": (1, ["auditor"]), "bea": (4, ["auditor"]), "mo": (3, ["moderator"]),
          "cy": (None, ["coordinator"]), "hal": (None, ["head_of_service"]),
          "ann": (None, ["analyst"])}


def add_logins(database, monkeypatch) -> None:
    """On :func:`base_rows` with :func:`add_moderator`: Bea Auditor (4), then the logins above
    and the admin ``it.admin`` who added them (the process acts as it afterwards)."""
    from ehkit import access

    add_rows(database, practitioners=[{"id": 4, "name": "Bea Auditor", "agency_id": 1,
                                       "is_auditor": 1}])
    monkeypatch.setenv("EHKIT_LOGIN", "it.admin")
    access.add_user(database, "it.admin", roles=["admin"])
    for login, (pid, roles) in LOGINS.items():
        access.add_user(database, login, roles=roles, practitioner_id=pid)


def where(database) -> str:
    """Where an open store is, as ``--db`` takes it: its URL, or its file's path."""
    if store.is_postgres(database):
        return database.url
    return database.execute("PRAGMA database_list").fetchone()[2]


def widget(form, cls):
    """The widget with CSS class ``ehkit-<cls>`` inside the form."""
    todo = [form]
    while todo:
        w = todo.pop()
        if f"ehkit-{cls}" in getattr(w, "_dom_classes", ()):
            return w
        todo += list(getattr(w, "children", ()))
    raise LookupError(cls)
