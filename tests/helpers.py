"""Small builders for hand-made stores: the exact cases a rule's boundary needs."""

from __future__ import annotations

from ehkit import db as store


def add_service(database) -> dict:
    """Two agencies, a manager and two workers, and an auditor; returns their ids."""
    with store.transaction(database):
        database["agencies"].insert_all([
            {"id": 1, "name": "Council EH Team", "kind": "council", "sector": "Local Authority"},
            {"id": 2, "name": "Pebble School", "kind": "partner", "sector": "Education"},
        ])
        database["practitioners"].insert_all([
            {"id": 1, "name": "Manager Testperson", "agency_id": 1, "team": "North", "is_auditor": 0},
            {"id": 2, "name": "Worker Testperson", "agency_id": 1, "team": "North",
             "line_manager_id": 1, "is_auditor": 0},
            {"id": 3, "name": "Teacher Testperson", "agency_id": 2, "team": "Pebble", "is_auditor": 0},
            {"id": 4, "name": "Auditor Testperson", "agency_id": 1, "team": "QA",
             "is_auditor": 1},
        ])
    return {"manager": 1, "worker": 2, "teacher": 3, "auditor": 4}


def add_episode(database, id, start, end=None, *, ended_as=None, began_as="new_request",
                agency=1, lead=2, **extra) -> int:
    with store.transaction(database):
        database["episodes"].insert({
            "id": id, "ehm_number": f"EHM9{id:05d}", "start_date": start, "end_date": end,
            "status": "closed" if end else "open", "ended_as": ended_as if end else None,
            "began_as": began_as, "lead_agency_id": agency, "lead_professional_id": lead,
            **extra})
    return id


def add_audit(database, id, episode, date, overall, grades=None, status="submitted",
              auditor=4, template_key="darlington") -> int:
    with store.transaction(database):
        database["audits"].insert({
            "id": id, "episode_id": episode, "template": template_key, "auditor1_id": auditor,
            "audit_date": date, "status": status, "overall_grade": overall,
            "submitted_at": None if status == "draft" else f"{date}T12:00:00Z"})
        database["answers"].insert_all(
            {"audit_id": id, "key": k, "grade": g} for k, g in (grades or {}).items())
    return id
