"""Closing the loop in the browser: the action tracker (with what follows an audit) and the
service-user feedback form, each driven through one full path in headless Chromium against
the real Voila server. What the browser did is checked in the SQLite file itself."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from voila_harness import (  # noqa: F401 (fixtures)
    VoilaServer,
    chromium_fixture,
    click_choice,
    copy_db,
    pages_fixture,
    rows,
    select_by_text,
    wait_for_text,
)

pytestmark = pytest.mark.browser


def today() -> str:
    """The apps' "today" is the real one: read when asked, so a run crossing midnight holds."""
    return dt.date.today().isoformat()


@pytest.fixture(scope="module")
def work(demo_db_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("loop")
    return folder, copy_db(demo_db_path, folder / "ehkit.db")


def pick_overdue(page) -> tuple[str, int, int]:
    """Pick the first overdue action; its label, audit and number, once the kernel shows it
    (what a click then acts on)."""
    label = select_by_text(page, ".ehkit-pick", "overdue")
    audit, number = map(int, re.match(r"Audit (\d+) action (\d+)", label).groups())
    wait_for_text(page, ".ehkit-action-detail", f"Audit {audit} of")
    return label, audit, number


def test_action_tracker_complete_reassign_and_record_a_discussion(work, pages):
    folder, db = work
    with VoilaServer(db, notebook="actions", cwd=folder) as server:
        page = pages(server, wait_for=".ehkit-filter-state select")
        page.wait_for_function(
            "document.querySelectorAll('.ehkit-new-owner select option').length > 1")
        overdue_before = rows(db, "SELECT count(*) FROM actions a JOIN audits au ON "
                                  "au.id = a.audit_id WHERE au.status <> 'draft' AND "
                                  "a.completed_date IS NULL AND a.due_date < ?", [today()])[0][0]
        select_by_text(page, ".ehkit-filter-state", "Overdue")
        wait_for_text(page, ".ehkit-action-count", f"{overdue_before} action(s)")

        # Mark the first overdue action completed today, with a note.
        label, audit, number = pick_overdue(page)
        page.locator(".ehkit-completion-note textarea").fill("Review TAF held; plan updated")
        page.locator("button.ehkit-complete").click()
        wait_for_text(page, ".ehkit-tracker .ehkit-messages", "marked completed")
        assert rows(db, "SELECT completed_date, completion_note FROM actions WHERE audit_id = ?"
                        " AND number = ?", [audit, number]) == [
            (today(), "Review TAF held; plan updated")]
        wait_for_text(page, ".ehkit-action-count", f"{overdue_before - 1} action(s)")
        # The count comes before the list of actions to pick: wait for the list without the
        # completed one too, or the next pick may be from the old list (a busy machine).
        page.wait_for_function(
            "done => ![...document.querySelectorAll('.ehkit-pick select option')].some("
            "o => o.textContent.replaceAll('\\u00a0', ' ').split(/\\s+/).join(' ').trim()"
            " === done)", arg=label)

        # Reassign the next one, with a reason that lands in the change log.
        label, audit, number = pick_overdue(page)
        owner = select_by_text(page, ".ehkit-new-owner", "Quality Assurance")
        page.locator(".ehkit-reason input").fill("Worker on long-term leave")
        page.locator("button.ehkit-reassign").click()
        wait_for_text(page, ".ehkit-tracker .ehkit-messages", "reassigned to")
        (action_id, by_whom), = rows(db, "SELECT id, by_whom FROM actions WHERE audit_id = ? "
                                         "AND number = ?", [audit, number])
        assert owner.startswith(by_whom)
        assert rows(db, "SELECT reason FROM change_log WHERE table_name = 'actions' AND "
                        "row_key = ? AND field = 'owner_id'", [str(action_id)]) == [
            ("Worker on long-term leave",)]

        # After the audit: record the reflective discussion with the worker and manager.
        (audit_id, author, manager), = rows(
            db, "SELECT a.id, e.lead_professional_id, p.line_manager_id FROM audits a JOIN "
                "episodes e ON e.id = a.episode_id JOIN practitioners p ON p.id = "
                "e.lead_professional_id WHERE a.status = 'submitted' AND p.line_manager_id IS "
                "NOT NULL AND NOT EXISTS (SELECT 1 FROM discussions d WHERE d.audit_id = a.id)"
                " ORDER BY a.audit_date DESC LIMIT 1")
        page.get_by_role("tab", name="After the audit").click()
        page.locator(".ehkit-audit-id input").fill(str(audit_id))
        page.locator("button.ehkit-open").click()
        wait_for_text(page, ".ehkit-audit-summary", f"Audit {audit_id}")
        page.locator(".ehkit-learning textarea").fill("Use the <child's> own words in the plan")
        page.locator("button.ehkit-save-discussion").click()
        wait_for_text(page, ".ehkit-followup .ehkit-messages",
                      f"Saved the discussion of audit {audit_id}")
        assert rows(db, "SELECT held_on, learning FROM discussions WHERE audit_id = ?",
                    [audit_id]) == [(today(), "Use the <child's> own words in the plan")]
        assert sorted(rows(db, "SELECT t.practitioner_id, t.role FROM discussion_attendees t "
                               "JOIN discussions d ON d.id = t.discussion_id WHERE "
                               "d.audit_id = ?", [audit_id])) == sorted(
            [(author, "worker"), (manager, "line_manager")])
        # Shown escaped, as text.
        assert "<child's>" in wait_for_text(page, ".ehkit-audit-summary", "own words")


def test_service_user_feedback_form_saves_feedback(work, pages):
    folder, db = work
    (episode_id, ehm), = rows(db, "SELECT id, ehm_number FROM episodes e WHERE (SELECT count(*)"
                                  " FROM episodes x WHERE x.ehm_number = e.ehm_number) = 1 "
                                  "ORDER BY start_date DESC LIMIT 1")
    before = rows(db, "SELECT coalesce(max(id), 0), count(*) FROM service_user_feedback")[0]
    with VoilaServer(db, notebook="feedback", cwd=folder) as server:
        page = pages(server, wait_for="button.ehkit-save")
        page.locator(".ehkit-ehm input").fill(ehm)
        click_choice(page, ".ehkit-respondent", "Child or young person")
        select_by_text(page, ".ehkit-stage", "Closure")
        select_by_text(page, ".ehkit-rating-listened_to", "5 - Completely")
        select_by_text(page, ".ehkit-rating-made_a_difference", "2 - A little")
        page.locator(".ehkit-comments textarea").fill("<script>alert(1)</script> kind worker")
        page.locator(".ehkit-concern input").check()
        select_by_text(page, ".ehkit-theme", "Service does not exist")
        page.locator(".ehkit-concern-detail textarea").fill("No youth club nearby")
        page.locator("button.ehkit-save").click()
        text = wait_for_text(page, ".ehkit-messages", "Saved feedback number")
        assert ehm in text
        assert rows(db, "SELECT episode_id, given_on, respondent, stage, ratings, comments, "
                        "concern_raised, concern_theme, concern_detail FROM "
                        "service_user_feedback WHERE id > ?", [before[0]]) == [
            (episode_id, today(), "child_young_person", "closure",
             '{"listened_to": 5, "made_a_difference": 2}',
             "<script>alert(1)</script> kind worker", 1, "Service does not exist",
             "No youth club nearby")]
        # A concern without a theme is refused in plain words, nothing saved.
        page.locator(".ehkit-ehm input").fill(ehm)
        page.locator(".ehkit-concern input").check()
        page.locator("button.ehkit-save").click()
        assert "give its theme" in wait_for_text(page, ".ehkit-messages", "not saved")
        assert rows(db, "SELECT count(*) FROM service_user_feedback") == [(before[1] + 1,)]


def test_self_assessment_checklist_saved_from_the_browser(work, pages):
    folder, db = work
    (episode_id, ehm), = rows(db, "SELECT id, ehm_number FROM episodes e WHERE (SELECT count(*)"
                                  " FROM episodes x WHERE x.ehm_number = e.ehm_number) = 1 "
                                  "ORDER BY start_date DESC LIMIT 1 OFFSET 1")
    (worker,), = rows(db, "SELECT p.name FROM episodes e JOIN practitioners p "
                          "ON p.id = e.lead_professional_id WHERE e.id = ?", [episode_id])
    with VoilaServer(db, notebook="self_assessment", cwd=folder) as server:
        page = pages(server, wait_for="button.ehkit-save")
        page.wait_for_function(
            "document.querySelectorAll('.ehkit-practitioner select option').length > 1")
        page.locator(".ehkit-ehm input").fill(ehm)
        select_by_text(page, ".ehkit-practitioner", worker)
        page.locator(".ehkit-item-consent_recorded input").check()
        page.locator(".ehkit-item-smart_plan input").check()
        page.locator("button.ehkit-save").click()
        assert "(2 of 16 met)" in wait_for_text(page, ".ehkit-messages", "Saved self-assessment")
    (sid, practitioner, completed_on), = rows(
        db, "SELECT s.id, p.name, s.completed_on FROM self_assessments s JOIN practitioners p "
            "ON p.id = s.practitioner_id WHERE s.episode_id = ?", [episode_id])
    assert (completed_on, practitioner) == (today(), worker)
    met = dict(rows(db, "SELECT item, met FROM self_assessment_items WHERE "
                        "self_assessment_id = ?", [sid]))
    assert len(met) == 16 and {k for k, v in met.items() if v} == {"consent_recorded",
                                                                  "smart_plan"}
