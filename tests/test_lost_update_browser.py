"""No lost update, as a person sees it: the real Voila server, the real form, headless Chromium.

A moderator opens a submitted audit; meanwhile its auditor reopens it, changes the overall
grade and submits it again. The moderator's "Record moderation" is refused in plain words
(who changed it, when, reload it), and nothing is written. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

import pytest
from builders import add_moderator, audit_form, base_rows
from voila_harness import (  # noqa: F401 (fixtures)
    VoilaServer,
    back_end_fixture,
    chromium_fixture,
    on_back_end,
    open_audit,
    pages_fixture,
    rows,
    select_by_text,
    wait_for_text,
)

from ehkit import audits
from ehkit import db as store

pytestmark = pytest.mark.browser
TODAY = dt.date(2026, 11, 24)


@pytest.fixture(scope="module")
def work(tmp_path_factory, back_end, request):
    """A small store on each back end: one submitted audit (no. 1) by Ava Auditor, and a
    moderator."""
    folder = tmp_path_factory.mktemp("lostupdate")
    database = store.connect(folder / "ehkit.db")
    base_rows(database)
    add_moderator(database)
    audits.submit(database, audits.save_draft(database, audit_form()), today=TODAY)
    database.close()
    return folder, on_back_end(folder / "ehkit.db", back_end, request)


@pytest.fixture(scope="module")
def server(work):
    folder, db = work
    with VoilaServer(db, notebook="audit", cwd=folder) as s:
        yield s


def test_moderating_an_audit_changed_since_it_was_opened_is_refused_on_the_page(
        server, pages, work):
    _, db = work
    page = pages(server, wait_for=".ehkit-grade-pre_eha")
    open_audit(page, 1)
    wait_for_text(page, ".ehkit-state", "Submitted")
    page.wait_for_function(
        "document.querySelectorAll('.ehkit-moderator select option').length > 1")
    select_by_text(page, ".ehkit-moderator", "Mo Moderator")

    # Meanwhile the auditor reopens it, makes it Requires Improvement and submits it again.
    auditor = store.connect(db)
    audits.reopen(auditor, 1, "New evidence on the file")
    audits.save_draft(auditor, {**audits.load(auditor, 1), "overall_grade": 3})
    audits.submit(auditor, 1, today=TODAY)
    auditor.close()

    page.locator("button.ehkit-moderate").click()
    shown = wait_for_text(page, ".ehkit-messages", "was changed by")
    assert "was changed by Ava Auditor" in shown and "reload it" in shown
    assert "Traceback" not in shown and "Something went wrong" not in shown
    assert rows(db, "SELECT count(*) FROM moderations") == [(0,)]
    assert rows(db, "SELECT status, overall_grade FROM audits WHERE id = 1") == [("submitted", 3)]
    assert rows(db, "SELECT grade FROM final_overall WHERE audit_id = 1") == [(3,)]
