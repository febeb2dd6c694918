"""Logins in the real audit form (issue 17): the real Voila server, started as the hub's
spawner starts it (``EHKIT_LOGIN`` in its environment), driven in headless Chromium.

The page shows auditor 1 as the login's practitioner and does not let it be picked; a page
that claims another login (query string, headers) and forces the choice anyway (the
disabled list re-enabled and another name chosen, which sends the widget's new state over
the websocket) still saves the audit as the login's, and the change log names the login.
On SQLite and on PostgreSQL. Only invented people.
"""

from __future__ import annotations

import pytest
from builders import add_logins, add_moderator, base_rows
from voila_harness import (  # noqa: F401 (fixtures)
    VoilaServer,
    back_end_fixture,
    chromium_fixture,
    on_back_end,
    rows,
    select_by_text,
    wait_for_text,
)

from ehkit import access
from ehkit import db as store


@pytest.fixture(scope="module")
def server(tmp_path_factory, back_end, request):
    folder = tmp_path_factory.mktemp("roles")
    path = folder / "ehkit.db"
    database = store.connect(path)
    with pytest.MonkeyPatch.context() as mp:
        base_rows(database)
        add_moderator(database)
        add_logins(database, mp)
        database.close()
        served = on_back_end(path, back_end, request)  # copied by the admin (add_logins)
    with VoilaServer(served, notebook="audit", cwd=folder, env={"EHKIT_LOGIN": "ava"}) as s:
        yield s


@pytest.fixture
def page_claiming_bea(server, chromium):
    """A page that says, every way a browser can, that it is Bea: the query string and the
    headers a proxy's login would use."""
    context = chromium.new_context(extra_http_headers={
        "X-Forwarded-User": "bea", "Remote-User": "bea", "X-Ehkit-Login": "bea"})
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto(f"{server.base}?token={server.token}&EHKIT_LOGIN=bea&JUPYTERHUB_USER=bea")
    page.wait_for_selector(".ehkit-grade-pre_eha", state="visible")
    yield page
    context.close()


@pytest.mark.browser
def test_the_page_acts_as_the_login_whatever_it_sends(server, page_claiming_bea):
    page = page_claiming_bea
    auditor1 = page.locator(".ehkit-auditor1 select").first
    page.wait_for_function("document.querySelector('.ehkit-auditor1 select')"
                           "?.selectedOptions[0]?.text.replace(/\\s/g, ' ')"
                           ".startsWith('Ava Auditor')",
                           timeout=60_000)
    assert auditor1.is_disabled()
    page.locator(".ehkit-date-audit_date input").fill("2026-03-02")
    page.locator(".ehkit-ehm_number input").fill("EHM1")
    wait_for_text(page, ".ehkit-case-child_names", access.NOT_ON_LIST)  # not hers yet
    auditor1.evaluate("s => { s.disabled = false; }")  # a page that forces the choice
    select_by_text(page, ".ehkit-auditor1", "Bea Auditor")
    page.locator("button.ehkit-save").click()
    text = wait_for_text(page, ".ehkit-messages", "Saved draft no.", timeout_ms=60_000)
    audit_id = int(text.split("Saved draft no. ")[1].split(" ")[0])
    assert rows(server.db, "SELECT auditor1_id FROM audits WHERE id = ?", (audit_id,)) == [(1,)]
    logged = 'SELECT "user", actor FROM change_log WHERE table_name = ?'  # "user": PostgreSQL's
    assert set(rows(server.db, logged, ["audits"])) == {("ava", "Ava Auditor")}
