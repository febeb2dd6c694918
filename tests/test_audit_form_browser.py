"""The auditor's app end to end: the real Voila server, the real form, headless Chromium.

One server for the module (on a copy of the demo store); each test opens its own page.
What the browser did is checked in the store itself. The store's core (complete and submit,
save and reopen a draft, the rules on submit, moderate, print and reopen) runs on SQLite and
on PostgreSQL (the demo store's ``ehkit copy``: the same cases under the same ids); the
layout checks on SQLite only.
"""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect
from voila_harness import (  # noqa: F401 (fixtures)
    VoilaServer,
    back_end_fixture,
    chromium_fixture,
    click_choice,
    copy_db,
    open_audit,
    pages_fixture,
    rows,
    select_by_text,
    wait_for_text,
    work_on,
)

from ehkit import audits
from ehkit import db as store
from ehkit import template as templates


def browser(test):
    """A test on the module's Voila server: marked browser, and kept on one xdist worker
    (``--dist loadgroup``) so the module starts one server, not one per worker."""
    return pytest.mark.browser(pytest.mark.xdist_group("audit_form_voila")(test))


FORM = ".ehkit-grade-pre_eha"
TPL = templates.load()


@pytest.fixture(scope="module")
def work(demo_db_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("auditform")
    return folder, copy_db(demo_db_path, folder / "ehkit.db")


@pytest.fixture(scope="module")
def server(work):
    folder, db = work
    with VoilaServer(db, notebook="audit", cwd=folder) as s:
        yield s


@pytest.fixture(scope="module")
def work_both(back_end, demo_db_path, tmp_path_factory, request):
    """The demo store's copy on each back end: on SQLite the module's own (work)."""
    return work_on(back_end, demo_db_path, tmp_path_factory, request, "auditform")


@pytest.fixture(scope="module")
def server_both(work_both, back_end, request):
    """The form served on each back end: on SQLite the module's own server."""
    if back_end == "sqlite":
        yield request.getfixturevalue("server")
        return
    folder, db = work_both
    with VoilaServer(db, notebook="audit", cwd=folder) as s:
        assert "serving audit for postgresql://" in s.log()
        yield s


def free_case(db, offset=0):
    """An open episode and two auditors with no conflict of interest (worked out here)."""
    eps = rows(db, "SELECT e.id, e.ehm_number, e.start_date, e.lead_professional_id,"
                   " e.team_manager_id, lp.line_manager_id, tm.name FROM episodes e"
                   " JOIN practitioners lp ON lp.id = e.lead_professional_id"
                   " JOIN practitioners tm ON tm.id = e.team_manager_id AND tm.is_auditor = 1"
                   " WHERE e.status = 'open'"
                   " AND e.start_date < '2026-09-01' AND (SELECT count(*) FROM episodes x"
                   " WHERE x.ehm_number = e.ehm_number) = 1 ORDER BY e.id")
    ep = eps[offset]
    blocked = {ep[3], ep[4], ep[5]}
    people = [r for r in rows(db, "SELECT id, name FROM practitioners WHERE is_auditor = 1"
                                  " ORDER BY name, id") if r[0] not in blocked]
    return {"episode_id": ep[0], "ehm": ep[1], "auditor": people[0], "other": people[1],
            "team_manager": ep[6]}


def ready(page):
    page.wait_for_selector(f"{FORM} button")
    # The lists are filled once the page is opened (preheated kernel): wait for them.
    page.wait_for_function(
        "document.querySelectorAll('.ehkit-auditor1 select option').length > 1")


def fill_case(page, case, date="2026-10-20"):
    page.locator(".ehkit-date-audit_date input").fill(date)
    select_by_text(page, ".ehkit-auditor1", case["auditor"][1])
    page.locator(".ehkit-ehm_number input").fill(case["ehm"])
    wait_for_text(page, ".ehkit-case-lead_professional", " ")  # filled from the store


def domain_audit(case, grades, overall, **extra):
    answers = {k: {"grade": g} for k, g in grades.items()}
    for s in TPL.graded_sections:
        answers[s.items[0].key] = {"comment": f"Evidence for {s.title}."}
    return {"episode_id": case["episode_id"], "auditor1_id": case["auditor"][0],
            "audit_date": "2026-10-20", "overall_grade": overall, "overall_reasons": "Reasons",
            "answers": answers, **extra}


@browser
def test_complete_and_submit_an_audit(server_both, pages, work_both):
    _, db = work_both
    case = free_case(db, 0)
    page = pages(server_both, wait_for=FORM)
    ready(page)
    fill_case(page, case)
    # The team manager may not audit their team's case: said at once, next to the field.
    select_by_text(page, ".ehkit-auditor1", case["team_manager"])
    assert "may not audit" in wait_for_text(page, ".ehkit-note-auditor1", "may not audit")
    select_by_text(page, ".ehkit-auditor1", case["auditor"][1])
    wait_for_text(page, ".ehkit-note-auditor1", "")
    page.wait_for_function("!document.querySelector('.ehkit-note-auditor1').innerText.trim()")
    click_choice(page, ".ehkit-check-consent", "Accurate")
    page.locator(".ehkit-check-note-consent input").fill("Signed consent on file")
    page.locator(".ehkit-summary textarea").fill("Family referred for school attendance.")
    click_choice(page, ".ehkit-response-1-1-1", "Yes")
    for s in TPL.graded_sections:
        grade = "Requires Improvement" if s.key == "review" else "Good"
        click_choice(page, f".ehkit-grade-{s.key}", grade)
        page.locator(f".ehkit-comment-{s.items[0].key.replace('.', '-')} textarea").fill(
            f"Evidence for {s.title}: <seen> on the file")
    page.locator(".ehkit-comment-9-1 textarea").fill("Reviews every three months.")
    click_choice(page, ".ehkit-grade-overall", "Good")
    page.locator(".ehkit-overall_reasons textarea").fill("Mostly good practice.")
    page.locator("button.ehkit-add-action").click()
    row = page.locator(".ehkit-action-row").first
    row.locator(".ehkit-action-action textarea").fill("Hold a review TAF meeting")
    # By Whom: a practitioner picked, so the action has an owner the tracker files it under.
    select_by_text(page, ".ehkit-action-row .ehkit-action-by_whom", case["other"][1])
    row.locator(".ehkit-action-due_date input").fill("2026-11-20")
    page.locator("button.ehkit-submit").click()
    text = wait_for_text(page, ".ehkit-messages", "Submitted audit no.")
    audit_id = int(text.split("Submitted audit no. ")[1].split(".")[0])

    (status, episode, auditor, overall, submitted_at), = rows(
        db, "SELECT status, episode_id, auditor1_id, overall_grade, submitted_at FROM audits"
            " WHERE id = ?", [audit_id])
    assert (status, episode, auditor, overall) == ("submitted", case["episode_id"],
                                                   case["auditor"][0], 2)
    assert submitted_at
    grades = dict(rows(db, "SELECT key, grade FROM answers WHERE audit_id = ? AND grade"
                           " IS NOT NULL", [audit_id]))
    assert grades == {s.key: (3 if s.key == "review" else 2) for s in TPL.graded_sections}
    assert rows(db, "SELECT comment FROM answers WHERE audit_id = ? AND key = '4.1'",
                [audit_id]) == [("Evidence for REVIEW EHA INITIATOR: <seen> on the file",)]
    assert rows(db, "SELECT response FROM answers WHERE audit_id = ? AND key = '1.1.1'",
                [audit_id]) == [("yes",)]
    assert rows(db, "SELECT status, note FROM checklist_answers WHERE audit_id = ?",
                [audit_id]) == [("accurate", "Signed consent on file")]
    assert rows(db, "SELECT number, action, by_whom, owner_id, due_date FROM actions"
                    " WHERE audit_id = ?", [audit_id]) == [
        (1, "Hold a review TAF meeting", case["other"][1], case["other"][0], "2026-11-20")]
    assert rows(db, "SELECT learning FROM audits WHERE id = ?", [audit_id]) == [
        ("Reviews every three months.",)]
    # The case note for the record is shown for copying.
    assert case["auditor"][1] in page.locator(".ehkit-case-note textarea").input_value()


@browser
def test_submit_with_a_missing_grade_shows_the_rule_next_to_it(server_both, pages, work_both):
    _, db = work_both
    case = free_case(db, 1)
    grades = {s.key: 2 for s in TPL.graded_sections}
    del grades["planning"]
    database = store.connect(db)
    audit_id = audits.save_draft(database, domain_audit(case, grades, 2))
    database.close()

    page = pages(server_both, wait_for=FORM)
    ready(page)
    # Submitting an empty form is blocked in plain words, with no traceback.
    page.locator("button.ehkit-submit").click()
    msg = wait_for_text(page, ".ehkit-messages", "Not done")
    assert "Traceback" not in msg and "Choose the case" in wait_for_text(
        page, ".ehkit-note-episode", "Choose the case")

    open_audit(page, audit_id)
    wait_for_text(page, ".ehkit-state", f"Audit no. {audit_id}")
    page.locator("button.ehkit-submit").click()
    wait_for_text(page, ".ehkit-messages", "but not submitted: 1 thing")
    assert "choose a grade" in wait_for_text(page, ".ehkit-note-planning", "Section 3")
    assert rows(db, "SELECT status FROM audits WHERE id = ?", [audit_id]) == [("draft",)]


@browser
def test_save_draft_reload_reopen_and_find_the_answers(server_both, pages, work_both):
    _, db = work_both
    case = free_case(db, 2)
    page = pages(server_both, wait_for=FORM)
    ready(page)
    fill_case(page, case)
    click_choice(page, ".ehkit-grade-impact", "Outstanding")
    page.locator(".ehkit-comment-7-1 textarea").fill("Child says home is calmer & safer")
    click_choice(page, ".ehkit-response-7-1-2", "Not applicable")
    page.locator("button.ehkit-save").click()
    text = wait_for_text(page, ".ehkit-messages", "Saved draft no.")
    audit_id = int(text.split("Saved draft no. ")[1].split(" ")[0])
    assert "still to do" in text
    assert rows(db, "SELECT comment FROM answers WHERE audit_id = ? AND key = '7.1'",
                [audit_id]) == [("Child says home is calmer & safer",)]
    assert rows(db, "SELECT status, episode_id, auditor1_id FROM audits WHERE id = ?",
                [audit_id]) == [("draft", case["episode_id"], case["auditor"][0])]
    # The change log has the new audit, on either back end (SQLite's triggers, PL/pgSQL's).
    assert rows(db, "SELECT count(*) FROM change_log WHERE table_name = 'audits' AND"
                    " row_key = ?", [str(audit_id)])[0][0] >= 1
    # What is still to do is said in words beside the field, not by its orange alone.
    assert "Still to do: Choose the overall grade." in wait_for_text(
        page, ".ehkit-note-overall", "Still to do:")

    page.reload()
    ready(page)
    open_audit(page, audit_id)
    wait_for_text(page, ".ehkit-state", f"Audit no. {audit_id}")
    # The fields are filled after the state line changes: wait for the value itself.
    expect(page.locator(".ehkit-comment-7-1 textarea")).to_have_value(
        "Child says home is calmer & safer", timeout=30_000)
    active = page.locator(".ehkit-grade-impact button.mod-active")
    assert active.inner_text().strip() == "Outstanding"
    assert page.locator(".ehkit-response-7-1-2 button.mod-active").inner_text().strip() == (
        "Not applicable")
    assert page.locator(".ehkit-date-audit_date input").input_value() == "2026-10-20"
    assert case["ehm"] in page.locator(".ehkit-ehm_number input").input_value()


def open_submitted(server, pages, db, n: int):
    """Submit an audit of the store's ``n``-th free case (all grades Good) and open it on a
    new page as a person would: (page, audit number, case)."""
    case = free_case(db, n)
    database = store.connect(db)
    audit_id = audits.save_draft(database, domain_audit(
        case, {s.key: 2 for s in TPL.graded_sections}, 2))
    audits.submit(database, audit_id)
    database.close()
    page = pages(server, wait_for=FORM)
    ready(page)
    open_audit(page, audit_id)
    wait_for_text(page, ".ehkit-state", "Submitted")
    return page, audit_id, case


@browser
def test_moderate_a_submitted_audit_and_print_it(server_both, pages, work_both):
    folder, db = work_both
    page, audit_id, case = open_submitted(server_both, pages, db, 3)
    page.wait_for_selector(".ehkit-moderator select")
    page.wait_for_function(
        "document.querySelectorAll('.ehkit-moderator select option').length > 1")
    select_by_text(page, ".ehkit-moderator", case["other"][1])
    select_by_text(page, ".ehkit-mod-grade-impact", "Requires Improvement")
    page.locator("button.ehkit-moderate").click()
    # A changed grade without a reason is refused next to it.
    wait_for_text(page, ".ehkit-note-mod-impact", "reason")
    page.locator(".ehkit-mod-reason-impact input").fill("Little evidence of change for the child")
    page.locator("button.ehkit-moderate").click()
    wait_for_text(page, ".ehkit-messages", "Moderation recorded")

    mods = {r[0]: r[1:] for r in rows(
        db, "SELECT key, moderator_id, original_grade, moderated_grade, reason FROM moderations"
            " WHERE audit_id = ?", [audit_id])}
    assert mods["impact"] == (case["other"][0], 2, 3, "Little evidence of change for the child")
    assert mods["overall"] == (case["other"][0], 2, 2, None)
    assert len(mods) == len(TPL.graded_sections) + 1
    assert rows(db, "SELECT status FROM audits WHERE id = ?", [audit_id]) == [("moderated",)]

    page.locator("button.ehkit-print").click()
    wait_for_text(page, ".ehkit-messages", "Printable record ready")
    record = folder / "reports" / "audits" / f"{case['ehm']}-2026-10-20-audit-{audit_id}.html"
    html = record.read_text(encoding="utf-8")
    assert "Little evidence of change for the child" in html and case["ehm"] in html
    assert f"printed {dt.date.today():%d/%m/%Y}" in html  # UK dates, as printed

    # Reopening needs a reason, and the reason is kept in the change log.
    page.locator(".ehkit-reopen-reason input").fill("Moderator asked for more evidence")
    page.locator("button.ehkit-reopen").click()
    wait_for_text(page, ".ehkit-messages", "Reopened audit no.")
    assert rows(db, "SELECT status FROM audits WHERE id = ?", [audit_id]) == [("draft",)]
    assert rows(db, "SELECT count(*) FROM change_log WHERE audit_id = ? AND field = 'status'"
                    " AND reason = 'Moderator asked for more evidence'", [audit_id]) == [(1,)]
    assert not page.locator(".ehkit-summary textarea").is_disabled()


@browser
def test_form_is_refused_without_the_token(server):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", "/")
    answer = conn.getresponse()
    assert answer.status == 302 and "/login" in answer.getheader("Location")
    conn.close()


# Measured on main before issue 16 (1280 px wide, as open_page opens it): 7,356 px.
FORM_HEIGHT_BEFORE = 7356
LOOK = """(css) => {
  const el = document.querySelector(css);
  const rgba = (s) => { const v = s.match(/[\\d.]+/g).map(Number); return v.length > 3 ? v
    : [...v, 1]; };
  const lum = (c) => { const f = (x) => { x /= 255; return x <= 0.03928 ? x / 12.92
    : ((x + 0.055) / 1.055) ** 2.4; }; return 0.2126 * f(c[0]) + 0.7152 * f(c[1])
    + 0.0722 * f(c[2]); };
  let bg = null, opacity = 1;
  for (let e = el; e; e = e.parentElement) {
    const cs = getComputedStyle(e);
    opacity *= parseFloat(cs.opacity);
    const c = rgba(cs.backgroundColor);
    if (!bg && c[3] > 0) bg = c;
  }
  bg = bg || [255, 255, 255, 1];
  const cs = getComputedStyle(el);
  const f = rgba(cs.webkitTextFillColor || cs.color);
  const fg = [0, 1, 2].map((i) => f[i] * f[3] + bg[i] * (1 - f[3]));  // text over its ground
  const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
  return {contrast: (hi + 0.05) / (lo + 0.05), opacity, weight: parseInt(cs.fontWeight),
          marker: getComputedStyle(el, "::before").content};
}"""


@browser
def test_the_form_shows_the_guidance_and_the_overall_rule_and_is_shorter(server, pages):
    page = pages(server, wait_for=FORM)
    ready(page)
    # The audit itself, guidance and all, a fifth shorter; "Saved audits" now lists a page of
    # audits found above it (a list the old drop-down folded away), so that list is not counted.
    height = page.evaluate("document.querySelector('.ehkit-form').getBoundingClientRect().height"
                           " - document.querySelector('.ehkit-found').getBoundingClientRect()"
                           ".height")
    assert height < 0.8 * FORM_HEIGHT_BEFORE, height
    # Every guidance note, folded until asked for, with the paper's grading guidance.
    panel = page.locator(".ehkit-guidance-notes")
    assert not panel.locator("li").first.is_visible()
    panel.locator("summary").click()
    assert panel.locator("li").count() == len(TPL.guidance)
    assert panel.locator("li").nth(11).is_visible()
    assert "Judgement of Quality of Work" in panel.inner_text()
    # Guidance 12 beside a grade, its definitions folded under it.
    beside = page.locator(".ehkit-grade-help").first
    assert "Guidance 12:" in beside.inner_text()
    assert not beside.locator("table").is_visible()
    # The overall grade rule is said as the grades are chosen, before any save.
    click_choice(page, ".ehkit-grade-pre_eha", "Inadequate")
    click_choice(page, ".ehkit-grade-overall", "Good")
    said = wait_for_text(page, ".ehkit-note-overall", "no better than Inadequate")
    assert said.startswith("\u26a0 Put right:")
    assert page.locator(".ehkit-messages").first.inner_text().strip() == ""  # nothing saved
    click_choice(page, ".ehkit-grade-overall", "Inadequate")
    page.wait_for_function(
        "!document.querySelector('.ehkit-note-overall').innerText.trim()")


@browser
def test_a_submitted_audit_reads_clearly(server, pages, work):
    page, _, _ = open_submitted(server, pages, work[1], 4)
    page.wait_for_function("document.querySelector('.ehkit-comment-1-1 textarea').disabled")
    comment = page.evaluate(LOOK, ".ehkit-comment-1-1 textarea")
    assert comment["opacity"] == 1 and comment["contrast"] >= 4.5, comment
    chosen = page.evaluate(LOOK, ".ehkit-grade-pre_eha button.mod-active")
    other = page.evaluate(LOOK, ".ehkit-grade-pre_eha button:not(.mod-active)")
    assert chosen["opacity"] == 1 and chosen["contrast"] >= 4.5, chosen
    assert other["opacity"] == 1 and other["contrast"] >= 4.5, other
    # The chosen grade is told by more than colour: bold, and a tick before it.
    assert chosen["weight"] >= 700 and "\u2713" in chosen["marker"], chosen
    assert other["weight"] < 700 and "\u2713" not in other["marker"], other
    active = page.locator(".ehkit-grade-pre_eha button.mod-active")
    assert active.inner_text().strip() == "Good"
    # The learning box asks for learning.
    assert "evidence" not in page.locator(".ehkit-comment-9-1 textarea").get_attribute(
        "placeholder")


@browser
def test_an_actions_boxes_are_wide_enough_for_their_text(server, pages):
    page = pages(server, wait_for=FORM)
    ready(page)
    page.locator("button.ehkit-add-action").click()
    row = page.locator(".ehkit-action-row").first
    row.locator(".ehkit-action-action textarea").wait_for()
    form = page.evaluate("document.querySelector('.ehkit-form').getBoundingClientRect().width")
    action = row.locator(".ehkit-action-action textarea").bounding_box()["width"]
    agreed = row.locator(".ehkit-action-agreed_by input").bounding_box()["width"]
    assert action >= 0.4 * form and agreed >= 0.2 * form, (action, agreed, form)
    # Each box is labelled with its column's name, for everyone and for screen readers.
    assert row.get_by_label("Action (SMART)").count() == 1
    assert row.get_by_label("Agreed by Moderator/ Auditor 2/ HOS").count() == 1
    # Free text for "By Whom" only for someone outside the service.
    outsider = row.locator(".ehkit-action-outsider")
    assert not outsider.is_visible()
    select_by_text(page, ".ehkit-action-row .ehkit-action-by_whom", "outside the service")
    outsider.locator("input").wait_for(state="visible")
    assert "outside the service" in outsider.inner_text()
