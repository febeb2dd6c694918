"""Feedback after audits (discussion, 1-1, letters, summaries, repeated poor audits),
service-user feedback and its CSV import, and the practitioner self-assessment."""

from __future__ import annotations

import csv
import datetime as dt

import pytest
from builders import where

from ehkit import after_audit, episodes, importing, rules, service_user_feedback
from ehkit import db as store
from ehkit import self_assessment as sa
from ehkit.cli import main as ehkit
from ehkit.errors import EhkitError, FeedbackError

TODAY = dt.date(2026, 11, 24)
SCRIPT = "<script>alert('x')</script>"


@pytest.fixture
def db(db_both):
    """Every test here runs on SQLite and on PostgreSQL."""
    return db_both


def build(db) -> None:
    """A manager (1) with two workers (2, 3); an auditor (4); the coordinator (5).

    Worker 2 leads episode 1 (EHM1) and a later episode 3 (also EHM1); worker 3 leads
    episode 2 (EHM2). Audits: 1 Inadequate, 2 Requires Improvement, 3 Good, 4 a draft
    graded Inadequate, 5 Inadequate exactly twelve months before audit 2.
    """
    with store.acting_as(actor="test setup"), store.transaction(db):
        db["agencies"].insert({"id": 1, "name": "Council Team", "kind": "council",
                               "sector": "Local Authority"})
        db["practitioners"].insert_all([
            {"id": 1, "name": "Mo Manager", "role": "Team Manager", "agency_id": 1,
             "team": "North", "line_manager_id": None, "is_auditor": 0},
            {"id": 2, "name": "Wyn Worker", "role": "Family Support Worker", "agency_id": 1,
             "team": "North", "line_manager_id": 1, "is_auditor": 0},
            {"id": 3, "name": "Cai Worker", "role": "Family Support Worker", "agency_id": 1,
             "team": "North", "line_manager_id": 1, "is_auditor": 0},
            {"id": 4, "name": "Ana Auditor", "role": "Advanced Practitioner", "agency_id": 1,
             "team": "QA", "line_manager_id": None, "is_auditor": 1},
            {"id": 5, "name": "Cleo Coordinator", "role": "Early Help Coordinator",
             "agency_id": 1, "team": "QA", "line_manager_id": None, "is_auditor": 1}])
        db["episodes"].insert_all([
            {"id": 1, "ehm_number": "EHM1", "start_date": "2025-01-05", "status": "open",
             "lead_agency_id": 1, "lead_professional_id": 2},
            {"id": 2, "ehm_number": "EHM2", "start_date": "2026-01-05", "status": "open",
             "lead_agency_id": 1, "lead_professional_id": 3},
            {"id": 3, "ehm_number": "EHM1", "start_date": "2026-09-01", "status": "open",
             "lead_agency_id": 1, "lead_professional_id": 2}])

        def audit(id, episode, day, grade, status="submitted", reasons="Reasons"):
            return {"id": id, "episode_id": episode, "template": "darlington",
                    "auditor1_id": 4, "audit_date": day, "status": status,
                    "overall_grade": grade, "overall_reasons": reasons,
                    "learning": "Hear the child" if id == 1 else None,
                    "submitted_at": None if status == "draft" else f"{day}T12:00:00Z"}
        db["audits"].insert_all([
            audit(1, 1, "2026-03-10", 4, reasons=f"Drift & no plan {SCRIPT}"),
            audit(2, 1, "2026-06-10", 3),
            audit(3, 2, "2026-04-01", 2),
            audit(4, 1, "2026-07-01", 4, status="draft"),
            audit(5, 1, "2025-06-10", 4)])
        db["answers"].insert_all([
            {"audit_id": 1, "key": "planning", "grade": 4, "comment": None},
            {"audit_id": 1, "key": "3.1", "grade": None, "comment": f"Plan <b>missing</b> {SCRIPT}"},
            {"audit_id": 1, "key": "impact", "grade": 2, "comment": None},
            {"audit_id": 3, "key": "planning", "grade": 2, "comment": None}])
        db["actions"].insert({"audit_id": 1, "number": 1, "action": f"Write a plan {SCRIPT}",
                              "by_whom": "Wyn Worker", "owner_id": 2, "due_date": "2026-04-10"})


# -- worker notified, discussion ---------------------------------------------------------
def test_discussion_records_who_attended_in_their_roles(db):
    build(db)
    after_audit.record_worker_notified(db, 1, "2026-03-01", actor="Ana Auditor")
    did = after_audit.record_discussion(db, 1, "2026-03-12", [2, 1, 4, 5], "Use the child's words",
                                     today=TODAY)
    f = after_audit.followup(db, 1)
    assert f["worker_notified_date"] == "2026-03-01"
    [d] = f["discussions"]
    assert d["id"] == did and d["learning"] == "Use the child's words"
    assert {(a["id"], a["role"]) for a in d["attendees"]} == {
        (2, "worker"), (1, "line_manager"), (4, "auditor"), (5, "other")}


def test_discussions_still_to_hold(db):
    build(db)
    after_audit.record_discussion(db, 1, "2026-03-12", [2, 1], "Learning", today=TODAY)
    # Drafts (4) have nothing to discuss yet; audit 1 was discussed on 12 March.
    assert [r["id"] for r in after_audit.discussions_to_hold(db, "2026-06-30")] == [5, 3, 2]
    # The day before the discussion it was still to hold.
    assert [r["id"] for r in after_audit.discussions_to_hold(db, "2026-03-11")] == [5, 1]
    r = after_audit.discussions_to_hold(db, "2026-03-11")[1]
    assert (r["days_since_audit"], r["author"], r["manager"]) == (1, "Wyn Worker", "Mo Manager")
    s = after_audit.discussion_summary(db, "2026-01-01", "2026-06-30")
    assert s == {"audits": 3, "discussed": 1, "with_worker": 1, "with_line_manager": 1}


@pytest.mark.parametrize("audit, day, ids, learning, message", [
    (1, "2026-03-09", [2], "x", "before the audit"),
    (1, "2026-11-25", [2], "x", "in the future"),
    (4, "2026-07-02", [2], "x", "still a draft"),
    (1, "2026-03-12", [], "x", "who attended"),
    (1, "2026-03-12", [2, 99], "x", "no practitioner"),
    (1, "2026-03-12", [2], " ", "what was learned"),
])
def test_discussion_refused_when_incomplete(db, audit, day, ids, learning, message):
    build(db)
    with pytest.raises(FeedbackError, match=message):
        after_audit.record_discussion(db, audit, day, ids, learning, today=TODAY)
    assert db["discussions"].count == 0 and db["discussion_attendees"].count == 0


# -- 1-1 meetings ----------------------------------------------------------------------
def test_one_to_one_only_for_requires_improvement_or_inadequate(db):
    build(db)
    with pytest.raises(FeedbackError, match="graded Good"):
        after_audit.record_one_to_one(db, 3, "2026-04-05", "Talked", today=TODAY)
    mid = after_audit.record_one_to_one(db, 2, "2026-06-15", "Went through the plan", held_by_id=5,
                                     today=TODAY)
    row = db["one_to_one_meetings"].get(mid)
    assert (row["professional_id"], row["held_by_id"]) == (2, 5)  # the author by default
    assert [r["id"] for r in after_audit.one_to_ones_to_hold(db, "2026-06-30")] == [5, 1]


def test_a_one_to_one_is_checked_and_recorded_in_one_transaction(db, tmp_path, monkeypatch):
    """The race injected between the check and the write: the audit is reopened meanwhile.

    The reopen now waits for the record (here: gives up at once), so a 1-1 is never recorded
    against an audit that is back to a draft.
    """
    from ehkit import audits

    build(db)
    auditor = store.connect(where(db))
    auditor.conn.execute("SET lock_timeout = 100" if store.is_postgres(db)
                         else "PRAGMA busy_timeout = 100")
    waited = []
    checking = after_audit._day_between

    def reopened_meanwhile(*args, **kwargs):
        if not waited:
            waited.append("not kept waiting")
            try:
                audits.reopen(auditor, 2, "Grade to look at again")
            except store.StoreError as e:  # the database is busy with the 1-1
                waited[0] = str(e)
        return checking(*args, **kwargs)

    monkeypatch.setattr(after_audit, "_day_between", reopened_meanwhile)
    after_audit.record_one_to_one(db, 2, "2026-06-15", "Went through the plan", today=TODAY)
    auditor.close()
    status = db.execute("SELECT status FROM audits WHERE id = 2").fetchone()[0]
    assert (status, db["one_to_one_meetings"].count) == ("submitted", 1)
    assert "busy" in waited[0]


def test_moderated_grade_decides_whether_a_one_to_one_is_needed(db):
    build(db)
    with store.transaction(db):
        db["moderations"].insert({"audit_id": 3, "key": "overall", "moderator_id": 5,
                                  "moderated_on": "2026-04-08", "original_grade": 2,
                                  "moderated_grade": 3, "reason": "Plan not SMART"})
        db.execute("UPDATE audits SET status = 'moderated' WHERE id = 3")
    assert 3 in [r["id"] for r in after_audit.one_to_ones_to_hold(db, "2026-06-30")]


# -- repeated poor audits --------------------------------------------------------------
def test_repeat_poor_author_flagged_with_two_in_twelve_months(db):
    build(db)
    # 10 June 2026: the window is 11 June 2025 to 10 June 2026: audits 1 and 2 (5 is exactly
    # twelve months before, so outside).
    [flag] = after_audit.repeat_poor_authors(db, "2026-06-10")
    assert (flag["author"], flag["manager"], flag["poor_audits"], flag["audit_ids"]) == (
        "Wyn Worker", "Mo Manager", 2, [1, 2])
    assert flag["latest_grade_label"] == "Requires Improvement"
    assert after_audit.repeat_poor_authors(db, "2026-06-10", count=3) == []
    # 9 June 2026: audits 5 and 1 are in the window.
    assert after_audit.repeat_poor_authors(db, "2026-06-09")[0]["audit_ids"] == [5, 1]
    # 9 March 2026: only audit 5; one poor audit is not repeated.
    assert after_audit.repeat_poor_authors(db, "2026-03-09") == []
    # Drafts do not count: on 1 July audit 4 (a draft, Inadequate) is not among them.
    assert after_audit.repeat_poor_authors(db, "2026-07-01")[0]["audit_ids"] == [1, 2]


def test_repeat_poor_uses_the_moderated_grade(db):
    build(db)
    with store.transaction(db):
        db["moderations"].insert({"audit_id": 2, "key": "overall", "moderator_id": 5,
                                  "moderated_on": "2026-06-12", "original_grade": 3,
                                  "moderated_grade": 2, "reason": "Evidence of good practice"})
        db.execute("UPDATE audits SET status = 'moderated' WHERE id = 2")
    assert after_audit.repeat_poor_authors(db, "2026-06-30") == []


# -- letters and the feedback summary --------------------------------------------------
def test_letter_escapes_free_text_in_html_and_keeps_it_in_text(db, tmp_path):
    build(db)
    html_path, text_path = after_audit.draft_letter(db, 1, out_dir=tmp_path, on="2026-03-20")
    html, text = html_path.read_text(), text_path.read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "Plan &lt;b&gt;missing&lt;/b&gt;" in html and "Drift &amp; no plan" in html
    assert SCRIPT in text and "Drift & no plan" in text  # plain text shows it as written
    for doc in (html, text):
        assert "Mo Manager" in doc and "Wyn Worker" in doc and "EHM1" in doc
        assert "Inadequate" in doc and "Cleo Coordinator" in doc and "20 March 2026" in doc
        assert "Write a plan" in doc and "Hear the child" in doc
    row = db["letters"].get(1)
    assert (row["audit_id"], row["addressed_to_id"], row["drafted_on"]) == (1, 1, "2026-03-20")
    assert row["html_path"] == str(html_path)


def test_letter_shows_dates_as_people_read_them(db, tmp_path):
    build(db)
    html_path, text_path = after_audit.draft_letter(db, 1, out_dir=tmp_path, on="2026-03-20")
    (audited,), = db.execute("SELECT audit_date FROM audits WHERE id = 1").fetchall()
    dues = [r[0] for r in db.execute("SELECT due_date FROM actions WHERE audit_id = 1 AND "
                                     "due_date IS NOT NULL")]
    assert dues
    for doc in (html_path.read_text(), text_path.read_text()):
        for day in (audited, *dues):
            assert f"{dt.date.fromisoformat(day):%d/%m/%Y}" in doc and day not in doc


def test_letter_only_for_inadequate_audits(db, tmp_path):
    build(db)
    with pytest.raises(FeedbackError, match="only for Inadequate"):
        after_audit.draft_letter(db, 2, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists() and db["letters"].count == 0


def test_council_can_use_its_own_letter_template(db, tmp_path):
    build(db)
    own = tmp_path / "own"
    own.mkdir()
    (own / "letter.html.j2").write_text("<p>Oakvale letter on {{ audit.ehm_number }}: "
                                        "{{ audit.overall_reasons }}</p>")
    html_path, text_path = after_audit.draft_letter(db, 1, out_dir=tmp_path, template_dir=own,
                                                 on="2026-03-20")
    assert html_path.read_text().startswith("<p>Oakvale letter on EHM1: Drift &amp; no plan &lt;")
    assert "Dear Mo Manager" in text_path.read_text()  # the shipped text template


def test_letter_command_writes_html_and_text(db, tmp_path, capsys):
    build(db)
    path = where(db)
    out = tmp_path / "letters"
    assert ehkit(["letter", "1", "--db", path, "--out", str(out), "--on", "2026-03-20"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "letter-audit-1-2026-03-20.html", "letter-audit-1-2026-03-20.txt"]
    assert ehkit(["letter", "3", "--db", path, "--out", str(out)]) == 2
    assert "graded Good" in capsys.readouterr().err


def test_every_author_gets_a_feedback_summary(db):
    build(db)
    text = after_audit.feedback_summary(db, 3)
    assert "EHM2" in text and "Overall grade: Good." in text and "PLANNING (Good)" in text
    assert [r["id"] for r in after_audit.feedback_to_send(db, "2026-06-30")] == [5, 1, 3, 2]
    after_audit.record_feedback_sent(db, 3, "2026-04-02", today=TODAY)
    assert [r["id"] for r in after_audit.feedback_to_send(db, "2026-06-30")] == [5, 1, 2]


# -- service-user feedback -------------------------------------------------------------
def good_feedback(**kw) -> dict:
    fb = {"episode_id": 2, "given_on": "2026-05-01", "respondent": "parent_carer",
          "stage": "taf_meeting", "ratings": {"listened_to": 5, "involved": 2},
          "comments": "Kind staff", "concern_raised": True,
          "concern_theme": "Service does not exist", "concern_detail": "No parenting group"}
    fb.update(kw)
    return fb


def test_service_user_feedback_saved_and_counted_by_theme(db):
    build(db)
    service_user_feedback.record_service_user_feedback(db, good_feedback(), today=TODAY)
    service_user_feedback.record_service_user_feedback(db, good_feedback(stage="closure"), today=TODAY)
    service_user_feedback.record_service_user_feedback(db, good_feedback(
        respondent="child_young_person", concern_raised=False, concern_theme=None,
        ratings={"listened_to": 3}), today=TODAY)
    service_user_feedback.record_service_user_feedback(db, good_feedback(
        given_on="2026-07-01", concern_theme="Training need"), today=TODAY)
    got = {r["theme"]: r["concerns"] for r in service_user_feedback.concerns_by_theme(db, "2026-04-01",
                                                                        "2026-06-30")}
    assert got == {"Difficulty engaging a service": 0, "Service does not exist": 2,
                   "Training need": 0, "Other": 0}
    s = service_user_feedback.service_user_summary(db, "2026-04-01", "2026-06-30")
    assert (s["feedback"], s["concerns_raised"]) == (3, 2)
    assert s["by_respondent"] == {"parent_carer": 2, "child_young_person": 1}
    ratings = {r["key"]: (r["average"], r["answered"]) for r in s["ratings"]}
    assert ratings["listened_to"] == (pytest.approx(13 / 3, abs=0.01), 3)
    assert ratings["involved"] == (2.0, 2) and ratings["made_a_difference"] == (None, 0)


@pytest.mark.parametrize("change, field", [
    ({"concern_theme": "Weather"}, "concern_theme"),
    ({"concern_theme": None}, "concern_theme"),
    ({"concern_raised": False}, "concern_raised"),
    ({"ratings": {"listened_to": 6}}, "listened_to"),
    ({"ratings": {"colour": 3}}, "colour"),
    ({"respondent": "grandparent"}, "respondent"),
    ({"stage": "lunch"}, "stage"),
    ({"given_on": "2026-12-01"}, "given_on"),
    ({"given_on": "2025-12-31"}, "given_on"),  # before episode 2 began
])
def test_service_user_feedback_refused_with_the_field_named(db, change, field):
    build(db)
    with pytest.raises(FeedbackError) as e:
        service_user_feedback.record_service_user_feedback(db, good_feedback(**change), today=TODAY)
    assert field in e.value.problems
    assert db["service_user_feedback"].count == 0


def test_feedback_finds_the_episode_open_on_the_day(db):
    build(db)
    assert episodes.find_episode(db, "EHM1", "2026-05-01") == 1
    assert episodes.find_episode(db, "EHM1", "2026-09-10") == 3
    assert episodes.find_episode(db, "EHM1", "2024-12-31") is None
    assert episodes.find_episode(db, "EHM1", episode_start="2025-01-05") == 1


HEADER = ("ehm_number,given_on,respondent,stage,listened_to,understood_plan,involved,"
          "made_a_difference,comments,concern_raised,concern_theme,concern_detail,colour")
ROWS = [
    "EHM1,2026-05-01,parent_carer,taf_meeting,5,4,4,5,Good,no,,,red",               # 2 good
    'EHM2,15/05/2026,Child or young person,Closure,5,4,,3,"Liked <b>it</b>",yes,'
    "Training need,Worker unsure,",                                                 # 3 good
    "EHM1,2026-02-30,parent_carer,closure,,,,,,no,,,",                              # 4 date
    "EHM404,2026-05-01,parent_carer,closure,,,,,,no,,,",                            # 5 EHM
    "EHM1,2026-05-02,grandparent,closure,,,,,,no,,,",                               # 6 who
    "EHM2,2026-05-03,parent_carer,closure,7,,,,,no,,,",                             # 7 rating
    "EHM2,2026-05-04,parent_carer,closure,,,,,,yes,Weather,,",                      # 8 theme
    "EHM1,2026-05-01,parent_carer,taf_meeting,5,4,4,5,Good,no,,,",                  # 9 dup of 2
    "EHM2,2026-05-05,parent_carer,end_of_assessment,,,,,,maybe,,,",                 # 10 flag
    "EHM2,2030-01-01,parent_carer,closure,,,,,,no,,,",                              # 11 future
    "EHM1,2026-05-06,child,closure,x,,,,,no,,,",                                    # 12 two
    "EHM1,2026-05-07,parent_carer,closure,,,,,,no,,,,extra",                        # 13 cells
    "EHM1,2024-12-01,parent_carer,closure,,,,,,no,,,",                              # 14 early
]
EXPECTED_REJECTS = {(4, "given_on"), (5, "ehm_number"), (6, "respondent"), (7, "listened_to"),
                    (8, "concern_theme"), (9, "given_on"), (10, "concern_raised"),
                    (11, "given_on"), (12, "respondent"), (12, "listened_to"), (13, ""),
                    (14, "ehm_number")}


def write_csv(path, rows):
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_feedback_import_reports_bad_rows_and_adds_up(db_both, tmp_path):
    db = db_both  # the import frame on each back end: rows stamped with the import's number
    build(db)
    path = write_csv(tmp_path / "feedback.csv", ROWS)
    r = service_user_feedback.import_service_user_feedback(db, path, today=TODAY, rejects_dir=tmp_path)
    assert (r.read, r.inserted, r.updated, r.unchanged, r.rejected) == (13, 2, 0, 0, 11)
    assert r.read == r.inserted + r.updated + r.unchanged + r.rejected
    assert r.ignored_columns == ["colour"]
    assert r.rejects_file == tmp_path / "feedback-rejects.csv"
    with r.rejects_file.open(encoding="utf-8-sig") as f:
        rejects = list(csv.DictReader(f))
    assert {(int(x["row"]), x["field"]) for x in rejects} == EXPECTED_REJECTS
    assert len(rejects) == len(EXPECTED_REJECTS)
    by = {(int(x["row"]), x["field"]): x for x in rejects}
    assert by[(4, "given_on")]["value"] == "2026-02-30"
    assert by[(7, "listened_to")]["value"] == "7" and "1 to 5" in by[(7, "listened_to")]["reason"]
    assert "row 2" in by[(9, "given_on")]["reason"]
    assert by[(9, "given_on")]["code"] == "DUPLICATE_ROW"
    assert by[(6, "respondent")]["code"] == "UNKNOWN_CHOICE"
    assert {x["code"] for x in rejects} <= {r.code for r in rules.all_rules()}  # documented
    assert by[(4, "given_on")]["code"] == "IMPOSSIBLE_DATE"
    assert by[(8, "concern_theme")]["code"] == "UNKNOWN_THEME"
    assert by[(6, "respondent")]["value"] == "grandparent"
    assert by[(6, "respondent")]["respondent"] == "grandparent"  # the row's own cells follow
    assert by[(13, "")]["code"] == "TOO_MANY_CELLS" and by[(13, "")]["value"] == "extra"
    assert by[(13, "")]["reason"] == ("a row of the file has more cells than there are columns: "
                                      "13 headed columns")
    saved = list(db.query("SELECT episode_id, given_on, respondent, stage, ratings, comments, "
                          "concern_raised, concern_theme FROM service_user_feedback ORDER BY id"))
    assert saved == [
        {"episode_id": 1, "given_on": "2026-05-01", "respondent": "parent_carer",
         "stage": "taf_meeting", "ratings": '{"involved": 4, "listened_to": 5, '
         '"made_a_difference": 5, "understood_plan": 4}', "comments": "Good",
         "concern_raised": 0, "concern_theme": None},
        {"episode_id": 2, "given_on": "2026-05-15", "respondent": "child_young_person",
         "stage": "closure", "ratings": '{"listened_to": 5, "made_a_difference": 3, '
         '"understood_plan": 4}', "comments": "Liked <b>it</b>", "concern_raised": 1,
         "concern_theme": "Training need"}]
    imp = db["imports"].get(r.import_id)
    assert (imp["kind"], imp["rows_read"], imp["rejected"]) == ("service_user_feedback", 13, 11)
    assert len(imp["sha256"]) == 64


def test_feedback_import_again_is_unchanged_then_updated(db_both, tmp_path):
    db = db_both  # the import frame on each back end: rows stamped with the import's number
    build(db)
    path = write_csv(tmp_path / "feedback.csv", ROWS[:2])
    service_user_feedback.import_service_user_feedback(db, path, today=TODAY, rejects_dir=tmp_path)
    again = service_user_feedback.import_service_user_feedback(db, path, today=TODAY, rejects_dir=tmp_path)
    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 2, 0)
    assert again.rejects_file is None
    write_csv(path, [ROWS[0].replace(",Good,", ",Better,"), ROWS[1]])
    changed = service_user_feedback.import_service_user_feedback(db, path, today=TODAY, rejects_dir=tmp_path)
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 1)
    assert db["service_user_feedback"].count == 2
    assert db.execute("SELECT comments FROM service_user_feedback WHERE episode_id = 1"
                      ).fetchone()[0] == "Better"


def test_feedback_import_refuses_a_file_without_the_columns(db, tmp_path):
    build(db)
    path = tmp_path / "bad.csv"
    path.write_text("ehm,date\nEHM1,2026-05-01\n", encoding="utf-8")
    with pytest.raises(importing.WrongColumns, match="missing columns.*respondent"):
        service_user_feedback.import_service_user_feedback(db, path, rejects_dir=tmp_path)
    path.write_bytes(b"\xff\xfe\x00\xd8")  # a UTF-16 mark, then half a character
    with pytest.raises(EhkitError, match="neither UTF-8"):
        service_user_feedback.import_service_user_feedback(db, path, rejects_dir=tmp_path)
    assert db["imports"].count == 0 and db["service_user_feedback"].count == 0


def test_feedback_import_reads_excel_with_date_cells(db, tmp_path):
    import openpyxl

    build(db)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["EHM number", "Given on", "Respondent", "Stage", "listened_to",
               "concern_raised", "concern_theme"])
    ws.append(["EHM2", dt.datetime(2026, 5, 1), "Parent or carer", "Closure", 4, "Yes",
               "Difficulty engaging a service"])
    ws.append([None] * 7)  # a blank row is not a row of feedback
    ws.append(["EHM2", "31-Feb-2026", "Parent or carer", "Closure", 4, "No", None])
    wb.save(tmp_path / "paper.xlsx")
    r = service_user_feedback.import_service_user_feedback(db, tmp_path / "paper.xlsx", today=TODAY,
                                              rejects_dir=tmp_path)
    assert (r.read, r.inserted, r.rejected) == (2, 1, 1)
    assert (r.problems[0].row, r.problems[0].code) == (4, "IMPOSSIBLE_DATE")
    got = service_user_feedback.concerns_by_theme(db, "2026-05-01", "2026-05-01")
    assert got[0] == {"theme": "Difficulty engaging a service", "concerns": 1}


def test_feedback_import_command(db, tmp_path, capsys):
    build(db)
    path = write_csv(tmp_path / "feedback.csv", ROWS[:3])
    dbfile = where(db)
    assert ehkit(["feedback", "import", str(path), "--db", dbfile,
                  "--rejects-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "read 3 rows = 2 inserted + 0 updated + 0 unchanged + 1 rejected" in out
    assert f"rejected rows and why: {tmp_path / 'feedback-rejects.csv'} (IMPOSSIBLE_DATE 1)" in out


# -- practitioner self-assessment ------------------------------------------------------
def test_self_assessment_saved_per_episode_and_summarised(db):
    build(db)
    items = [i.key for i in sa.load().items]
    assert len(items) == len(set(items)) >= 10
    all_met = dict.fromkeys(items, True)
    sa.record(db, 2, 3, "2026-03-01", {**all_met, "smart_plan": False}, today=TODAY)
    sa.record(db, 1, 2, "2026-03-05", {**all_met, "smart_plan": False, "child_views": False},
              today=TODAY)
    sa.record(db, 1, 2, "2026-07-05", all_met, today=TODAY)  # outside the period
    s = sa.summary(db, "2026-01-01", "2026-06-30")
    assert s["completed"] == 2
    # Episode 2 began in the period and had one; audits 1, 2 (episode 1, after 5 March) and
    # 3 (episode 2, after 1 March) in the period: both audited episodes had one by then.
    assert (s["episodes_started"], s["started_with_self_assessment"]) == (1, 1)
    assert (s["audited"], s["audited_with_self_assessment"]) == (2, 2)
    top = s["items"][:2]
    assert [(t["key"], t["unmet"], t["answered"]) for t in top] == [
        ("smart_plan", 2, 2), ("child_views", 1, 2)]
    assert s["items"][2]["unmet"] == 0
    assert len(sa.for_episode(db, 1)) == 2


def test_self_assessment_items_follow_the_audit_tools_sections():
    from ehkit import template as templates

    sections = {s.key for s in templates.load().graded_sections}
    linked = {i.audit_section for i in sa.load().items if i.audit_section}
    assert linked <= sections and len(linked) >= 6


def test_worker_notified_date_cannot_be_in_the_future(db):
    build(db)
    with pytest.raises(FeedbackError, match="in the future"):
        after_audit.record_worker_notified(db, 4, "2026-11-25", today=TODAY)
    after_audit.record_worker_notified(db, 4, "2026-06-20", today=TODAY)  # a draft: allowed
    assert after_audit.followup(db, 4)["worker_notified_date"] == "2026-06-20"


def test_self_assessment_must_answer_every_item(db):
    build(db)
    with pytest.raises(sa.SelfAssessmentError, match="not answered: .*smart_plan"):
        sa.record(db, 1, 2, "2026-03-01", {"consent_recorded": True}, today=TODAY)
    with pytest.raises(sa.SelfAssessmentError, match="not on the checklist: sparkle"):
        sa.record(db, 1, 2, "2026-03-01", {i.key: True for i in sa.load().items} | {"sparkle": 1},
                  today=TODAY)
    assert db["self_assessments"].count == 0


def test_feedback_rejects_file_writes_formulas_as_text_and_negative_numbers_as_numbers(
        db, tmp_path):
    build(db)
    formula = '=HYPERLINK("http://evil.example/","Open")'
    rows = [f'EHM1,2026-05-01,parent_carer,closure,-3,,,,"{formula.replace(chr(34), 2 * chr(34))}"'
            ",no,,,",
            "EHM1,2026-05-02,+1+cmd|' /C calc'!A0,closure,,,,,-cmd,no,,,"]
    r = service_user_feedback.import_service_user_feedback(db, write_csv(tmp_path / "fb.csv", rows),
                                              today=TODAY, rejects_dir=tmp_path)
    assert r.rejected == 2
    with r.rejects_file.open(encoding="utf-8-sig") as f:
        by = {x["row"]: x for x in csv.DictReader(f)}
    assert by["2"]["value"] == by["2"]["listened_to"] == "-3"  # a number stays a number
    assert by["2"]["comments"] == "'" + formula
    assert by["3"]["value"] == by["3"]["respondent"] == "'+1+cmd|' /C calc'!A0"
    assert by["3"]["comments"] == "'-cmd"
