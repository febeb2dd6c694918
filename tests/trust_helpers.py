"""Small hand-built stores for the data-safety tests (change log, check, backup, crash)."""

from __future__ import annotations

import sqlite3

from ehkit import db as store
from ehkit import template as templates

TEMPLATE = templates.load()


def base_rows(db) -> None:
    """One agency, two practitioners (an auditor and a lead), one open episode with a child."""
    with store.acting_as(actor="test setup"), store.transaction(db):
        db["agencies"].insert({"id": 1, "name": "Test Team", "kind": "council",
                               "sector": "Local Authority"})
        db["practitioners"].insert_all([
            {"id": 1, "name": "Ava Auditor", "agency_id": 1, "is_auditor": 1},
            {"id": 2, "name": "Leo Lead", "agency_id": 1, "is_auditor": 0},
        ])
        db["episodes"].insert({"id": 1, "ehm_number": "EHM1", "start_date": "2026-01-05",
                               "status": "open", "lead_agency_id": 1,
                               "lead_professional_id": 2})
        db["children"].insert({"id": 1, "episode_id": 1, "name": "Kit Testchild",
                               "date_of_birth": "2018-03-01"})


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


def save_rows(db, whole: dict) -> int:
    """Write a complete audit straight into the store in one transaction; its id."""
    with store.acting_as(actor="Ava Auditor"), store.transaction(db):
        audit_id = db["audits"].insert(whole["audit"]).last_pk
        db["answers"].insert_all([{**a, "audit_id": audit_id} for a in whole["answers"]])
        db["checklist_answers"].insert_all(
            [{**c, "audit_id": audit_id} for c in whole["checklist"]])
        db["actions"].insert_all([{**a, "audit_id": audit_id} for a in whole["actions"]])
    return audit_id


def raw(path) -> sqlite3.Connection:
    """A plain sqlite3 connection: a tool outside ehkit, as someone tampering would use."""
    return sqlite3.connect(str(path), isolation_level=None)
