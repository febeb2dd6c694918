"""The audit form served by ``ehkit serve`` on a PostgreSQL store (issue 18), end to end:
the real Voila server and its kernels reach the database server themselves, headless
Chromium saves a draft, reloads, finds and reopens it. What the browser did is checked in
the PostgreSQL store itself."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from test_audit_form_browser import fill_case, free_case, ready
from voila_harness import (  # noqa: F401 (fixtures)
    VoilaServer,
    chromium_fixture,
    click_choice,
    open_audit,
    pages_fixture,
    wait_for_text,
)

from ehkit import copying
from ehkit import db as store

pytestmark = pytest.mark.browser
FORM = ".ehkit-grade-pre_eha"


@pytest.fixture(scope="module")
def pg_store(demo_db_path, pg_server):
    """The demo store's `ehkit copy` in a new PostgreSQL database (the same ids)."""
    url = pg_server.new_database()
    copying.copy(demo_db_path, url)
    return url


@pytest.fixture(scope="module")
def server(pg_store, tmp_path_factory):
    with VoilaServer(pg_store, notebook="audit", cwd=tmp_path_factory.mktemp("pgform")) as s:
        yield s


def stored(url: str, sql: str, params=()) -> list[tuple]:
    database = store.connect(url, must_exist=True)
    try:
        return [tuple(r) for r in database.execute(sql, list(params)).fetchall()]
    finally:
        database.close()


def test_a_draft_saved_through_voila_on_postgresql_reopens_with_its_answers(
        server, pages, pg_store, demo_db_path):
    assert store.postgres_url(server.db) and "serving audit for postgresql://" in server.log()
    case = free_case(demo_db_path, 3)  # the copy holds the same cases under the same ids
    before = stored(pg_store, "SELECT count(*) FROM audits")[0][0]
    page = pages(server, wait_for=FORM)
    ready(page)
    fill_case(page, case)
    click_choice(page, ".ehkit-grade-impact", "Outstanding")
    page.locator(".ehkit-comment-7-1 textarea").fill("Child says home is calmer & safer")
    page.locator("button.ehkit-save").click()
    text = wait_for_text(page, ".ehkit-messages", "Saved draft no.")
    audit_id = int(text.split("Saved draft no. ")[1].split(" ")[0])
    assert stored(pg_store, "SELECT count(*) FROM audits")[0][0] == before + 1
    assert stored(pg_store, "SELECT status, episode_id, auditor1_id FROM audits WHERE id = ?",
                  [audit_id]) == [("draft", case["episode_id"], case["auditor"][0])]
    assert stored(pg_store, "SELECT comment FROM answers WHERE audit_id = ? AND key = '7.1'",
                  [audit_id]) == [("Child says home is calmer & safer",)]
    # The change log names the person the form acts as, as on SQLite.
    assert stored(pg_store, "SELECT count(*) FROM change_log WHERE table_name = 'audits' AND"
                  " row_key = ?", [str(audit_id)])[0][0] >= 1

    page.reload()
    ready(page)
    open_audit(page, audit_id)
    expect(page.locator(".ehkit-comment-7-1 textarea")).to_have_value(
        "Child says home is calmer & safer", timeout=30_000)
    assert page.locator(".ehkit-grade-impact button.mod-active").inner_text().strip() == (
        "Outstanding")
    assert case["ehm"] in page.locator(".ehkit-ehm_number input").input_value()
