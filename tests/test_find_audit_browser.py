"""Finding a saved audit on the audit form, however old (issue 16): the real Voila server, a
store with more than 500 audits (the old drop-down listed the latest 500 only), headless
Chromium. On SQLite and on PostgreSQL (the same search, the same pages, the same order)."""

from __future__ import annotations

import datetime as dt

import pytest
from voila_harness import (  # noqa: F401 (fixtures)
    NBSP,
    VoilaServer,
    back_end_fixture,
    chromium_fixture,
    on_back_end,
    pages_fixture,
    rows,
    wait_for_text,
)

from ehkit import db as store
from ehkit import demo

pytestmark = pytest.mark.browser
FORM = ".ehkit-grade-pre_eha"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A synthetic service with more than 500 audits (made once for both back ends)."""
    folder = tmp_path_factory.mktemp("findaudit")
    database = store.connect(folder / "ehkit.db")
    demo.generate(database, episodes=400, seed=7, until=dt.date(2026, 10, 31),
                  audits_per_episode=1.5)
    database.close()
    return folder, folder / "ehkit.db"


@pytest.fixture(scope="module")
def work(built, back_end, request):
    """That service on each back end."""
    folder, path = built
    return folder, on_back_end(path, back_end, request)


@pytest.fixture(scope="module")
def server(work):
    folder, db = work
    with VoilaServer(db, notebook="audit", cwd=folder) as s:
        yield s


def test_the_oldest_of_more_than_500_audits_opens_from_saved_audits(server, pages, work):
    _, db = work
    (total,) = rows(db, "SELECT count(*) FROM audits")[0]
    assert total > 500
    pages_in_all = -(-total // 20)
    page = pages(server, wait_for=FORM)
    said = wait_for_text(page, ".ehkit-found-said", f"{total:,} audits found")
    assert f"page 1 of {pages_in_all}" in said
    assert page.locator(".ehkit-found button").count() == 20
    for css, shown in ((".ehkit-find-auditor", "Anyone"), (".ehkit-find-status", "Any status")):
        assert page.locator(f"{css} select").evaluate(
            "s => s.selectedIndex < 0 ? '' : s.options[s.selectedIndex].text").replace(NBSP, " ") == shown
    page.locator("button.ehkit-found-next").click()
    wait_for_text(page, ".ehkit-found-said", f"page 2 of {pages_in_all}")

    # Audit no. 1 is the oldest: found by its EHM number typed in small letters.
    (ehm, date), = rows(db, "SELECT e.ehm_number, a.audit_date FROM audits a JOIN episodes e"
                            " ON e.id = a.episode_id WHERE a.id = 1")
    page.locator(".ehkit-find-ehm input").fill(ehm.lower())
    page.locator("button.ehkit-find").click()
    wait_for_text(page, ".ehkit-found-said", "found")
    found = page.get_by_role("button", name="Open no. 1: ")
    assert ehm in found.inner_text()
    assert dt.date.fromisoformat(date).strftime("%d/%m/%Y") in found.inner_text()
    found.click()
    wait_for_text(page, ".ehkit-state", "Audit no. 1")
    wait_for_text(page, ".ehkit-messages", "Opened audit no. 1")
    assert ehm in page.locator(".ehkit-ehm_number input").input_value()


def test_a_search_it_cannot_do_is_said_in_words(server, pages):
    page = pages(server, wait_for=FORM)
    wait_for_text(page, ".ehkit-found-said", "audits found")
    page.locator(".ehkit-find-number input").fill("twelve")
    page.locator("button.ehkit-find").click()
    said = wait_for_text(page, ".ehkit-found-said", "Not searched")
    assert "'twelve' is not an audit number" in said and "Traceback" not in said


def test_a_search_that_finds_fewer_shows_only_what_it_found(server, pages, work):
    _, db = work
    page = pages(server, wait_for=FORM)
    wait_for_text(page, ".ehkit-found-said", "audits found")
    assert page.locator(".ehkit-found button").count() == 20
    # The newest audit alone: the first of the buttons shown before.
    (newest,) = rows(db, "SELECT id FROM audits ORDER BY updated_at DESC, id DESC LIMIT 1")[0]
    page.locator(".ehkit-find-number input").fill(str(newest))
    page.locator("button.ehkit-find").click()
    wait_for_text(page, ".ehkit-found-said", "1 audit found")
    page.wait_for_function("document.querySelectorAll('.ehkit-found button').length === 1",
                           timeout=30_000)
    page.locator(".ehkit-find-number input").fill("999999")
    page.locator("button.ehkit-find").click()
    wait_for_text(page, ".ehkit-found-said", "no saved audit matches")
    page.wait_for_function("document.querySelectorAll('.ehkit-found button').length === 0",
                           timeout=30_000)
