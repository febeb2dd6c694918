"""The audit form with logins (issue 17), without a browser: who the form acts as comes
from the login, and a value the browser sends (a widget's state in a crafted comm message)
changes nothing about who saves, moderates or sees a case. Only invented people."""

from __future__ import annotations

import datetime as dt

import pytest
from builders import add_logins, add_moderator, audit_form, base_rows

from ehkit import access, audits
from ehkit import db as store
from ehkit.forms.audit import audit_app


@pytest.fixture
def team_path(store_at, monkeypatch):
    """The team's store, on SQLite and on PostgreSQL: a path or a URL."""
    path = store_at
    database = store.connect(path)
    base_rows(database)
    add_moderator(database)
    add_logins(database, monkeypatch)
    database.close()
    return path


def form_as(path, monkeypatch, login: str):
    monkeypatch.setenv("EHKIT_LOGIN", login)  # as the hub's spawner sets it for the kernel
    return audit_app(path)


def sent_from_the_browser(widget, **state) -> None:
    """A comm message as the page sends it when a widget changes (anyone may craft one)."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": state,
                                             "buffer_paths": []}}, "buffers": []})


def index_of(dropdown, practitioner_id: int) -> int:
    return [v for _, v in dropdown.options].index(practitioner_id)


def change_log(path, table: str) -> set[tuple]:
    database = store.connect(path)
    try:
        return {(r[0], r[1]) for r in database.execute(
            'SELECT "user", actor FROM change_log WHERE table_name = ?', [table])}
    finally:
        database.close()


def test_auditor_1_is_the_login_shown_and_not_picked(team_path, monkeypatch):
    form = form_as(team_path, monkeypatch, "ava")
    dropdown = form.case_view.auditor1
    assert form.model.case.auditor1_id == 1 and dropdown.disabled
    assert dropdown.label.startswith("Ava Auditor")
    form.new()
    assert form.model.case.auditor1_id == 1 and dropdown.disabled


def test_one_person_on_their_own_machine_still_picks_auditor_1(tmp_path):
    path = tmp_path / "ehkit.db"
    database = store.connect(path)
    base_rows(database)
    database.close()
    form = audit_app(path)
    assert not form.case_view.auditor1.disabled and form.model.case.auditor1_id is None


def test_an_auditor_1_sent_from_the_browser_does_not_change_who_saves(team_path,
                                                                      monkeypatch):
    form = form_as(team_path, monkeypatch, "ava")
    m = form.model
    sent_from_the_browser(form.case_view.auditor1, index=index_of(form.case_view.auditor1, 4))
    assert m.case.auditor1_id == 4  # the page did send Bea ...
    m.case.ehm_number, m.case.audit_date = "EHM1", dt.date(2026, 3, 2)
    form.save()
    database = store.connect(team_path)
    saved = audits.load(database, m.audit_id)
    database.close()
    assert saved["auditor1_id"] == 1  # ... and the audit is still Ava's
    assert change_log(team_path, "audits") == {("ava", "Ava Auditor")}


def test_a_moderator_sent_from_the_browser_does_not_change_who_moderates(team_path,
                                                                         monkeypatch):
    monkeypatch.setenv("EHKIT_LOGIN", "ava")
    database = store.connect(team_path)
    audit_id = audits.save_draft(database, audit_form())
    audits.submit(database, audit_id, today=dt.date(2026, 3, 10))
    database.close()
    form = form_as(team_path, monkeypatch, "mo")
    form.open(audit_id)
    moderator = form.moderator
    assert form.model.moderation.moderator_id == 3 and moderator.disabled
    sent_from_the_browser(moderator, index=index_of(moderator, 4))  # Bea, crafted
    assert form.model.moderation.moderator_id == 4
    form.moderate()
    database = store.connect(team_path)
    assert {r["moderator_id"] for r in database["moderations"].rows} == {3}
    database.close()
    assert change_log(team_path, "moderations") == {("mo", "Mo Moderator")}


def test_a_case_not_on_your_list_shows_no_childs_name_or_birth_date(team_path, monkeypatch):
    form = form_as(team_path, monkeypatch, "bea")
    form.model.case.ehm_number = "EHM1"
    shown = form.model.case.information
    assert shown["ehm_number"] == "EHM1"
    assert (shown["child_names"], shown["date_of_birth"]) == (access.NOT_ON_LIST,) * 2
    html = " ".join(getattr(v, "value", "") for v in form.case_view.readonly.values())
    assert access.NOT_ON_LIST in html and "Kit Testchild" not in html


def test_a_refusal_is_a_plain_message_on_the_form(team_path, monkeypatch):
    form = form_as(team_path, monkeypatch, "cy")  # a coordinator does not audit
    m = form.model
    m.case.ehm_number, m.case.audit_date = "EHM1", dt.date(2026, 3, 2)
    form.record.save.click()
    shown = form.messages.widget.value
    assert "needs the auditor role; your login &#x27;cy&#x27; has coordinator" in shown
    assert "Traceback" not in shown and m.audit_id is None



def test_saved_audits_say_which_audits_the_person_is_seeing(team_path, monkeypatch):
    database = store.connect(team_path)
    monkeypatch.setenv("EHKIT_LOGIN", "ava")
    draft = audits.save_draft(database, audit_form())
    database.close()
    bea = form_as(team_path, monkeypatch, "bea")
    assert bea.finder.results.options == ()
    assert ("Showing your audits and your list&#x27;s cases: no saved audit matches"
            in bea.finder.said.value)
    ava = form_as(team_path, monkeypatch, "ava")
    assert [v for _, v in ava.finder.results.options] == [draft]
    assert ("Showing your audits and your list&#x27;s cases: 1 audit found, your own drafts "
            "first" in ava.finder.said.value)
    hal = form_as(team_path, monkeypatch, "hal")
    assert "Showing every saved audit: 1 audit found" in hal.finder.said.value


def test_an_analyst_opening_the_audit_form_is_told_which_roles_it_is_for(team_path,
                                                                          monkeypatch):
    shown = form_as(team_path, monkeypatch, "ann")._repr_html_()
    assert ("cannot open: Finding and opening saved audits needs the auditor or moderator or "
            "coordinator or head of service role; your login &#x27;ann&#x27; has analyst"
            in shown)


def test_the_case_picker_suggests_only_the_persons_own_case_numbers(team_path, monkeypatch):
    database = store.connect(team_path)
    monkeypatch.setenv("EHKIT_LOGIN", "ava")
    audits.save_draft(database, audit_form())
    database.close()
    assert form_as(team_path, monkeypatch, "bea").model.case.ehm_numbers == []
    assert form_as(team_path, monkeypatch, "mo").model.case.ehm_numbers == []  # a draft
    for login in ("ava", "hal"):
        assert form_as(team_path, monkeypatch, login).model.case.ehm_numbers == ["EHM1"]
    bea = form_as(team_path, monkeypatch, "bea")
    bea.model.case.ehm_number = "EHM1"  # typed: found, with no child's name
    assert bea.model.case.episode_id == 1
    assert bea.model.case.information["child_names"] == access.NOT_ON_LIST
