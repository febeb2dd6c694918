"""Benchmark 4: saving a complete audit into a store already holding 100,000+ audits.

ehkit: ``ehkit.audits.save_draft`` of a new, complete audit (the audit, every answer, the
checklist, an action; the change log written by the triggers), one transaction, committed
with the store's usual settings (WAL, synchronous FULL). Floor: the same rows written by plain
``executemany`` in one ``ehkit.db.transaction`` on the same connection (SQLite and the change
log, none of ehkit's Python). Target: at most 1.5 times the floor (the ratio of each side's
least time, ``common.steady``; save and floor take turns), and, as a person waits for it, a
median under 100 ms; the medians and the 95th percentile are printed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from .common import Figure, Run, in_turns, ratio_figure, say, timed

MAX_RATIO = 1.5
CEILING_MS = 100  # a person waits for the save: a sanity ceiling, not the target
MIN_AUDITS = 100_000


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def complete_audit(db, tpl) -> dict:
    """A complete audit, as the form hands it to ehkit.audits, for a case its auditor may audit."""
    from ehkit.audits import conflict_of_interest

    line_manager = dict(db.execute("SELECT id, line_manager_id FROM practitioners").fetchall())
    auditors = [r[0] for r in db.execute("SELECT id FROM practitioners WHERE is_auditor = 1")]
    episode_id, lead, manager, start = db.execute(
        "SELECT id, lead_professional_id, team_manager_id, start_date FROM episodes"
        " WHERE status = 'open' ORDER BY id LIMIT 1").fetchone()
    auditor = next(a for a in auditors
                   if conflict_of_interest(a, lead, manager, line_manager) is None)
    day = dt.date.fromisoformat(start) + dt.timedelta(days=10)
    text = "Evidence of good practice: the plan is reviewed and the child's views are recorded."
    answers: dict[str, dict] = {}
    for s in tpl.sections:
        if s.graded:
            answers[s.key] = {"grade": 2, "comment": None, "response": None}
        for item in s.items:
            answers[item.key] = {"grade": None, "comment": text, "response": None}
            for q in item.questions:
                answers[q.key] = {"grade": None, "comment": None, "response": "yes"}
    return {
        "template": tpl.key, "episode_id": episode_id, "auditor1_id": auditor,
        "audit_date": day.isoformat(), "summary": text, "overall_grade": 2,
        "overall_reasons": text, "learning": text, "answers": answers,
        "checklist": {c.value: {"status": "accurate", "note": None} for c in tpl.checklist},
        "actions": [{"action": "Review the plan with the family", "by_whom": "Lead",
                     "owner_id": lead, "due_date": (day + dt.timedelta(days=30)).isoformat()}],
    }


def _floor_save(db, audit: dict, next_id: int) -> None:
    from ehkit import db as store

    from .postgresql import _many
    row = {k: audit[k] for k in ("template", "episode_id", "auditor1_id", "audit_date", "summary",
                                 "overall_grade", "overall_reasons", "learning")}
    with store.acting_as(actor="bench floor"), store.transaction(db):
        db.conn.execute(f"INSERT INTO audits (id, {', '.join(row)}) VALUES "
                        f"(?, {', '.join('?' * len(row))})", [next_id, *row.values()])
        _many(db, "INSERT INTO answers VALUES (?, ?, ?, ?, ?)",
              [(next_id, k, a["grade"], a["comment"], a["response"])
               for k, a in audit["answers"].items()])
        _many(db, "INSERT INTO checklist_answers VALUES (?, ?, ?, ?)",
              [(next_id, k, c["status"], c["note"]) for k, c in audit["checklist"].items()])
        for n, a in enumerate(audit["actions"], 1):
            db.conn.execute("INSERT INTO actions (audit_id, number, action, by_whom, owner_id,"
                            " due_date) VALUES (?, ?, ?, ?, ?, ?)",
                            [next_id, n, a["action"], a["by_whom"], a["owner_id"],
                             a["due_date"]])


def run(run: Run, db_path: Path | str, saves: int = 60, label: str = "") -> None:
    """``label``: the back end, when not SQLite (a PostgreSQL URL as ``db_path``)."""
    from ehkit import audits
    from ehkit import db as store
    from ehkit import template as templates

    on = f" on {label}" if label else ""
    if not label:
        say("\n4. Saving a complete audit into a store holding 100,000+ audits")
    name = f"save a complete audit (save_draft){on}"
    db = store.connect(db_path)
    try:
        held = db["audits"].count
        if held < MIN_AUDITS:
            run.add(Figure(name, None, "ms", f"<= {MAX_RATIO:g}x floor", None,
                           note=f"store holds only {held:,} audits"))
            return
        audit = complete_audit(db, templates.load())
        submits: list[float] = []

        def save() -> float:
            t, audit_id = timed(lambda: audits.save_draft(db, audit))
            s, _ = timed(lambda: audits.submit(db, audit_id, today=dt.date(2026, 10, 31)))
            submits.append(s * 1000)
            return t * 1000

        def plain() -> float:
            next_id = db.execute("SELECT max(id) FROM audits").fetchone()[0] + 1
            return timed(lambda: _floor_save(db, audit, next_id))[0] * 1000

        floor, mine = in_turns(plain, save, saves + 3)
        # the first 3 rounds warm the caches, and are not counted
        floor, mine, submits = floor[3:], mine[3:], submits[3:]
        p95 = _percentile(mine, 0.95)
        rows = len(audit["answers"]) + len(audit["checklist"]) + len(audit["actions"]) + 1
        run.add(ratio_figure(f"save_draft{on} ({saves} saves, {held:,} audits held)", mine,
                             floor, "ms", MAX_RATIO, ceiling=CEILING_MS,
                             note=f"{rows} rows + {rows} change-log rows each"))
        run.add(Figure("  save_draft 95th percentile", p95, "ms", "(printed)", None,
                       floor=_percentile(floor, 0.95), ratio=p95 / _percentile(floor, 0.95)))
        run.add(Figure("  submit median (context)", _percentile(submits, 0.5), "ms", "(printed)",
                       None))
    finally:
        db.close()
