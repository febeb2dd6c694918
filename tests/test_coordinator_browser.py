"""The coordinator's apps as a coordinator meets them (issue 16), in headless Chromium against
the real Voila server: the tracker opens on what needs attention, sorted and paged; the
monthly list offers months that have ended; drop-downs read 'All', 'Not answered', 'Choose
...'; messages are in plain words; dates read 16/09/2015. Checked in the store too. The apps
that write (the tracker, feedback, after the audit) run on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from voila_harness import (  # noqa: F401 (fixtures)
    VoilaServer,
    back_end_fixture,
    chromium_fixture,
    click_choice,
    copy_db,
    pages_fixture,
    rows,
    select_by_text,
    wait_for_text,
    work_on,
)

from ehkit import sampling

pytestmark = pytest.mark.browser
TODAY = dt.date.today()  # the apps' "today" is the real one
UK_DATE = re.compile(r"^\d{2}/\d{2}/\d{4}$")


@pytest.fixture(scope="module")
def work(demo_db_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("coordinator")
    return folder, copy_db(demo_db_path, folder / "ehkit.db")


@pytest.fixture(scope="module")
def work_both(back_end, demo_db_path, tmp_path_factory, request):
    """The demo store's copy on each back end: on SQLite the module's own (work)."""
    return work_on(back_end, demo_db_path, tmp_path_factory, request, "coordinator")


def shown_choice(page, css: str) -> str:
    """What a drop-down shows (blank when nothing is selected)."""
    return page.locator(f"{css} select").first.evaluate(
        "s => s.selectedIndex < 0 ? '' : s.options[s.selectedIndex].text.replace(/\\u00a0/g, ' ')")


def cut_labels(page, css: str) -> list[str]:
    """The widget labels inside ``css`` whose text does not fit (the browser cuts it off)."""
    return page.locator(f"{css} .widget-label").evaluate_all(
        "els => els.filter(e => e.offsetParent && e.scrollWidth > e.clientWidth + 1)"
        ".map(e => e.textContent)")


def table_rows(page) -> list[list[str]]:
    return page.locator(".ehkit-tracker-row").evaluate_all(
        "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))")


def test_tracker_opens_on_what_needs_attention_sorted_paged_in_plain_words(work_both, pages):
    folder, db = work_both
    iso = TODAY.isoformat()
    week = (TODAY + dt.timedelta(days=7)).isoformat()
    attention = rows(db, "SELECT count(*) FROM actions a JOIN audits au ON au.id = a.audit_id "
                         "WHERE au.status <> 'draft' AND a.completed_date IS NULL AND "
                         "a.due_date < ?", [week])[0][0]
    everything = rows(db, "SELECT count(*) FROM actions a JOIN audits au ON au.id = a.audit_id"
                          " WHERE au.status <> 'draft'")[0][0]
    assert 25 < attention < everything
    with VoilaServer(db, notebook="actions", cwd=folder) as server:
        page = pages(server, wait_for=".ehkit-filter-state select")
        count = wait_for_text(page, ".ehkit-action-count", f"{attention} action(s)")
        assert "showing 1 to 25" in count
        # The filters read as words, never blank.
        assert shown_choice(page, ".ehkit-filter-state").startswith("Needs attention")
        for name in ("owner", "team", "agency", "month"):
            assert shown_choice(page, f".ehkit-filter-{name}") == "All", name
        assert shown_choice(page, ".ehkit-pick") == "Choose an action on this page"
        assert shown_choice(page, ".ehkit-new-owner") == "Choose the new owner"
        assert cut_labels(page, ".ehkit-tracker") == []
        # Overdue first, then due this week; dates as people read them.
        first = table_rows(page)
        states = [r[1] for r in first]
        assert len(first) == 25 and states[0] == "overdue"
        assert states == sorted(states, key=["overdue", "due this week"].index)
        assert all(UK_DATE.match(r[0]) for r in first)
        # Paged: the next page carries on where the first stopped.
        page.locator("button.ehkit-next-page").click()
        wait_for_text(page, ".ehkit-action-count", "showing 26 to")
        wait_for_text(page, ".ehkit-page-of", f"Page 2 of {-(-attention // 25)}")
        assert table_rows(page)[0] != first[0]
        # Sortable: by EHM number, descending.
        select_by_text(page, ".ehkit-filter-sort", "EHM number")
        page.locator(".ehkit-filter-order").get_by_role("button", name="Descending").click()
        wait_for_text(page, ".ehkit-page-of", "Page 1 of")
        highest = rows(db, "SELECT max(e.ehm_number) FROM actions a JOIN audits au ON au.id ="
                           " a.audit_id JOIN episodes e ON e.id = au.episode_id WHERE "
                           "au.status <> 'draft' AND a.completed_date IS NULL AND "
                           "a.due_date < ?", [week])[0][0]
        wait_for_text(page, ".ehkit-tracker-row", highest)  # the highest comes first
        ehms = [r[2] for r in table_rows(page)]
        assert ehms == sorted(ehms, reverse=True)

        # Completing one: the message names the audit and the action, not the store's id.
        label = select_by_text(page, ".ehkit-pick", "overdue")
        audit, number = map(int, re.match(r"Audit (\d+) action (\d+)", label).groups())
        (action_id,), = rows(db, "SELECT id FROM actions WHERE audit_id = ? AND number = ?",
                             [audit, number])
        assert "..." not in label and "…" not in label  # the whole action is shown
        page.locator(".ehkit-completion-note textarea").fill("Plan reviewed at the TAF")
        page.locator("button.ehkit-complete").click()
        said = wait_for_text(page, ".ehkit-tracker .ehkit-messages", "marked completed on")
        assert f"Action {number} of audit {audit}" in said
        assert f"on {TODAY:%d/%m/%Y}" in said
        assert f"action {action_id}" not in said.lower() or action_id == number
        assert rows(db, "SELECT completed_date FROM actions WHERE id = ?", [action_id]) == [
            (iso,)]
        # Reassigning without choosing a new owner: plain words, nothing saved.
        select_by_text(page, ".ehkit-pick", "overdue")
        page.locator(".ehkit-reason input").fill("Worker on leave")
        page.locator("button.ehkit-reassign").click()
        said = wait_for_text(page, ".ehkit-tracker .ehkit-messages", "choose the practitioner")
        assert "None" not in said


def test_monthly_list_offers_months_that_have_ended(work, pages):
    folder, db = work
    ended = sampling.months_before(TODAY.replace(day=1), 1)
    with VoilaServer(db, notebook="sampling", cwd=folder) as server:
        page = pages(server, wait_for=".ehkit-sampling")
        offered = [o.replace("\xa0", " ") for o in
                   page.locator(".ehkit-month select option").all_inner_texts()]
        assert offered[0] == f"{ended:%B %Y}"  # the month just ended comes first
        assert shown_choice(page, ".ehkit-month") == f"{ended:%B %Y}"
        assert offered[-1] == f"{TODAY:%B %Y} (not ended yet)"
        later = sampling.months_before(TODAY.replace(day=1), -1)
        assert f"{later:%B %Y}" not in " ".join(offered)
        assert page.locator(".ehkit-month-warning").count() == 0
        # This month only with a warning.
        select_by_text(page, ".ehkit-month", "not ended yet")
        wait_for_text(page, ".ehkit-month-warning", f"{TODAY:%B %Y} has not ended")
        # A request without a reason: plain words, no command syntax.
        page.locator(".ehkit-request-ehm input").fill("EHM100001")
        page.locator("button.ehkit-add-request").click()
        said = wait_for_text(page, ".ehkit-messages", "say why the audit is asked for")
        assert "--" not in said


def test_feedback_drop_downs_read_as_words_and_refusals_name_fields_plainly(work_both, pages):
    folder, db = work_both
    with VoilaServer(db, notebook="feedback", cwd=folder) as server:
        page = pages(server, wait_for="button.ehkit-save")
        ratings = page.locator(".ehkit-rating select")
        assert ratings.count() > 1
        for i in range(ratings.count()):
            assert ratings.nth(i).evaluate(
                "s => s.options[s.selectedIndex].text").replace("\xa0", " ") == "Not answered"
        assert shown_choice(page, ".ehkit-theme") == "Choose a theme"
        page.locator(".ehkit-ehm input").fill("EHM-NOT-A-CASE")
        page.locator(".ehkit-concern input").check()
        page.locator("button.ehkit-save").click()
        said = wait_for_text(page, ".ehkit-messages", "not saved")
        assert "EHM number:" in said and "theme of the concern:" in said
        assert "ehm_number" not in said and "concern_theme" not in said
        # Saved: the form is cleared back to the words, not to blank drop-downs.
        (ehm,), = rows(db, "SELECT ehm_number FROM episodes e WHERE (SELECT count(*) FROM "
                           "episodes x WHERE x.ehm_number = e.ehm_number) = 1 ORDER BY "
                           "start_date DESC LIMIT 1 OFFSET 2")
        page.locator(".ehkit-ehm input").fill(ehm)
        page.locator(".ehkit-concern input").uncheck()
        click_choice(page, ".ehkit-respondent", "Parent or carer")
        select_by_text(page, ".ehkit-rating-listened_to", "4 -")
        page.locator("button.ehkit-save").click()
        wait_for_text(page, ".ehkit-messages", "Saved feedback number")
        page.wait_for_function("document.querySelector('.ehkit-ehm input').value === ''")
        for i in range(ratings.count()):
            assert ratings.nth(i).evaluate(
                "s => s.selectedIndex < 0 ? '' : s.options[s.selectedIndex].text"
            ).replace("\xa0", " ") == "Not answered"
        assert shown_choice(page, ".ehkit-theme") == "Choose a theme"


def test_self_assessment_asks_for_the_practitioner_in_words(work, pages):
    folder, db = work
    (ehm,), = rows(db, "SELECT ehm_number FROM episodes ORDER BY start_date LIMIT 1")
    before = rows(db, "SELECT count(*) FROM self_assessments")
    with VoilaServer(db, notebook="self_assessment", cwd=folder) as server:
        page = pages(server, wait_for="button.ehkit-save")
        page.wait_for_function(
            "document.querySelectorAll('.ehkit-practitioner select option').length > 1")
        assert shown_choice(page, ".ehkit-practitioner") == "Choose the practitioner"
        page.locator(".ehkit-ehm input").fill(ehm)
        page.locator("button.ehkit-save").click()
        said = wait_for_text(page, ".ehkit-messages", "choose the practitioner")
        assert "None" not in said
    assert rows(db, "SELECT count(*) FROM self_assessments") == before


def test_after_the_audit_offers_no_discussion_for_a_draft_and_shows_uk_dates(work_both, pages):
    folder, db = work_both
    (draft,), = rows(db, "SELECT id FROM audits WHERE status = 'draft' ORDER BY id LIMIT 1")
    (done, done_on), = rows(db, "SELECT id, audit_date FROM audits WHERE status = 'submitted' "
                                "ORDER BY id LIMIT 1")
    with VoilaServer(db, notebook="actions", cwd=folder) as server:
        page = pages(server, wait_for=".ehkit-filter-state select")
        page.get_by_role("tab", name="After the audit").click()
        page.locator(".ehkit-audit-id input").fill(str(draft))
        page.locator("button.ehkit-open").click()
        wait_for_text(page, ".ehkit-followup .ehkit-draft", "still a draft")
        assert page.locator("button.ehkit-save-discussion").count() == 0
        page.locator(".ehkit-audit-id input").fill(str(done))
        page.locator("button.ehkit-open").click()
        summary = wait_for_text(page, ".ehkit-audit-summary", f"Audit {done} of")
        assert f"of {dt.date.fromisoformat(done_on):%d/%m/%Y}" in summary
        assert done_on not in summary
        # the audit's panel is redrawn after its summary: wait for its button, not a moment
        page.wait_for_selector("button.ehkit-save-discussion", state="visible", timeout=15_000)
        assert page.locator("button.ehkit-save-discussion").is_visible()
    assert rows(db, "SELECT count(*) FROM discussions WHERE audit_id = ?", [draft]) == [(0,)]
