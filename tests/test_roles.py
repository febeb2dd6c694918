"""Logins and roles (issue 17): who is acting comes from the login, never from what a caller
or a page sends, and each role may do only what the settings' [roles] table gives it.

The service: Ava (auditor, practitioner 1), Bea (auditor, 4), Mo (moderator, 3), Cy
(coordinator), Hal (Head of Service), Ann (analyst) and the council's IT admin. Leo Lead (2)
leads the one case, whose child is Kit Testchild. Only invented people.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from builders import add_logins, add_moderator, audit_form, base_rows, where

from ehkit import access, actions, audits, backup, check, reports, sampling
from ehkit import cases as case_import
from ehkit import db as store
from ehkit.cli import main
from ehkit.episodes import case_information


def as_login(monkeypatch, login: str) -> None:
    monkeypatch.setenv("EHKIT_LOGIN", login)  # as the hub's spawner sets it


@pytest.fixture
def db(db_both):
    """Every test here runs on SQLite and on PostgreSQL."""
    return db_both


@pytest.fixture
def team(db, monkeypatch):
    base_rows(db)
    add_moderator(db)
    add_logins(db, monkeypatch)
    return db


def log(db, table: str, since: int = 0) -> list[dict]:
    return [dict(r) for r in db.query("SELECT * FROM change_log WHERE table_name = ? AND"
                                      " id > ? ORDER BY id", [table, since])]


def last_log_id(db) -> int:
    return db.execute("SELECT coalesce(max(id), 0) FROM change_log").fetchone()[0]


def submitted_audit(db, monkeypatch, *, auditor2: int | None = None) -> int:
    as_login(monkeypatch, "ava")
    audit_id = audits.save_draft(db, {**audit_form(), "auditor2_id": auditor2})
    audits.submit(db, audit_id, today=dt.date(2026, 3, 10))
    return audit_id


# -- who is acting -------------------------------------------------------------------------
def test_the_login_is_the_servers_ehkit_login_never_jupyterhub_user(monkeypatch):
    import os
    import pwd

    monkeypatch.setenv("JUPYTERHUB_USER", "someone.else")  # any local user can set this
    monkeypatch.delenv("EHKIT_LOGIN", raising=False)
    assert access.login() == pwd.getpwuid(os.geteuid()).pw_name
    as_login(monkeypatch, "ava")
    assert access.login() == "ava"


def test_a_hub_kernel_awaiting_its_login_is_nobody_never_the_service_account(team, monkeypatch):
    from ehkit.forms import common

    monkeypatch.delenv("EHKIT_LOGIN", raising=False)
    monkeypatch.setenv(access.AWAITING, "1")  # a preheated kernel ehkit serve --hub started
    monkeypatch.setattr(common, "_when_handed_over", [])
    for act in (access.login, lambda: access.require(team, "audit"),
                lambda: audits.save_draft(team, audit_form())):
        with pytest.raises(access.NotAllowed, match="not been given to a login yet"):
            act()
    assert team.execute("SELECT count(*) FROM audits").fetchone()[0] == 0
    filled = []
    common.refresh_when_opened(lambda: filled.append(access.login()))
    assert filled == []  # the form is filled once it has its login, not before
    common.hand_over("ava")
    assert filled == ["ava"] and access.person(team).practitioner_id == 1


def test_a_form_a_login_may_not_fill_is_still_handed_over(monkeypatch):
    from ehkit.forms import common

    monkeypatch.delenv("EHKIT_LOGIN", raising=False)
    monkeypatch.setenv(access.AWAITING, "1")
    monkeypatch.setattr(common, "_when_handed_over", [])

    def refused():
        raise access.NotAllowed("Finding audits needs the auditor role")

    common.refresh_when_opened(refused)
    common.hand_over("it.admin")  # the page opens; its buttons say what is refused
    assert access.login() == "it.admin"


def test_a_hub_kernels_login_is_handed_over_once(monkeypatch):
    monkeypatch.delenv("EHKIT_LOGIN", raising=False)
    monkeypatch.setenv(access.AWAITING, "1")
    access.take_login("ava")
    with pytest.raises(access.NotAllowed, match="given once"):
        access.take_login("bea")
    assert access.login() == "ava"
    monkeypatch.delenv(access.AWAITING)  # ehkit serve on one's own machine: no hand-over
    with pytest.raises(access.NotAllowed, match="given once"):
        access.take_login("bea")


def test_with_no_users_the_person_on_their_own_machine_is_admin_and_may_do_everything(db):
    me = access.person(db)
    assert me.one_person and "admin" in me.roles
    assert all(me.may(p) for p in access.PERMISSIONS)


# -- users -----------------------------------------------------------------------------------
def test_the_first_user_must_be_an_admin_and_nothing_is_written_otherwise(db):
    base_rows(db)
    with pytest.raises(access.UsersError, match="first user must be an admin"):
        access.add_user(db, "ava", roles=["auditor"], practitioner_id=1)
    assert db["users"].count == 0


def test_only_an_admin_changes_users(team, monkeypatch):
    as_login(monkeypatch, "cy")
    with pytest.raises(access.NotAllowed, match="needs the admin role; your login 'cy' has "
                                                "coordinator"):
        access.add_user(team, "cy", roles=["admin"])
    with pytest.raises(access.NotAllowed, match="admin"):
        access.remove_user(team, "ava")
    assert team["users"].get("cy")["roles"] == "coordinator"


def test_every_change_to_users_is_in_the_change_log_with_the_admins_login(team, monkeypatch):
    since = last_log_id(team)
    access.add_user(team, "bea", roles=["auditor", "moderator"], practitioner_id=4)
    access.remove_user(team, "ann")
    rows = log(team, "users", since)
    assert [(r["row_key"], r["field"], r["new"]) for r in rows if r["field"] != "changed_at"] \
        == [("bea", "roles", "auditor moderator"), ("ann", "active", 0)]
    assert {r["user"] for r in rows} == {"it.admin"}


def test_a_removed_login_is_refused_and_its_history_kept(team, monkeypatch):
    access.remove_user(team, "bea")
    assert [u["active"] for u in access.list_users(team) if u["login"] == "bea"] == [0]
    as_login(monkeypatch, "bea")
    with pytest.raises(access.NotAllowed, match="'bea' is not an ehkit user"):
        audits.save_draft(team, audit_form())


def test_the_only_admin_cannot_be_removed_or_lose_the_role(team):
    with pytest.raises(access.UsersError, match="only admin"):
        access.remove_user(team, "it.admin")
    with pytest.raises(access.UsersError, match="would leave no admin"):
        access.add_user(team, "it.admin", roles=["analyst"])
    assert team["users"].get("it.admin")["active"] == 1
    assert team["users"].get("it.admin")["roles"] == "admin"


def test_an_auditor_or_moderator_needs_a_practitioner_and_a_known_role(team):
    with pytest.raises(access.UsersError) as e:
        access.add_user(team, "eve", roles=["auditor", "wizard"])
    assert "role wizard: choose from auditor" in str(e.value)
    assert "give --practitioner ID" in str(e.value)
    assert team["users"].count == 7


def test_users_import_checks_every_row_and_writes_none_when_one_is_wrong(team, tmp_path):
    bad = tmp_path / "users.csv"
    bad.write_text("login,practitioner,roles\ndee,2,auditor\neve,,wizard\nfay,99,moderator\n",
                   encoding="utf-8")
    with pytest.raises(access.UsersError) as e:
        access.import_users(team, bad)
    assert "users.csv row 3, role wizard" in str(e.value)
    assert "users.csv row 4, practitioner 99: there is no such practitioner" in str(e.value)
    assert team["users"].count == 7  # not even dee, whose row was right
    good = tmp_path / "good.csv"
    good.write_text("login,practitioner,roles\ndee,2,auditor moderator\n", encoding="utf-8")
    assert access.import_users(team, good) == 1
    assert team["users"].get("dee")["roles"] == "auditor moderator"


# -- the actor of every action is the login --------------------------------------------------
def test_auditor_1_of_a_new_audit_is_the_login_whatever_the_form_sends(team, monkeypatch):
    as_login(monkeypatch, "ava")
    since = last_log_id(team)
    audit_id = audits.save_draft(team, {**audit_form(), "auditor1_id": 4})  # Bea, sent
    assert team["audits"].get(audit_id)["auditor1_id"] == 1
    rows = log(team, "audits", since)
    assert rows and {(r["user"], r["actor"]) for r in rows} == {("ava", "Ava Auditor")}


def test_an_auditor_cannot_change_or_submit_another_auditors_audit(team, monkeypatch):
    as_login(monkeypatch, "ava")
    audit_id = audits.save_draft(team, audit_form())
    as_login(monkeypatch, "bea")
    with pytest.raises(access.NotAllowed, match="not auditor 1 or 2"):
        audits.save_draft(team, {**audit_form(text="Bea's words"), "auditor1_id": 4},
                          audit_id=audit_id)
    with pytest.raises(access.NotAllowed, match="not auditor 1 or 2"):
        audits.submit(team, audit_id)
    assert team["audits"].get(audit_id)["summary"] == "Evidence of good practice."


def test_the_moderator_is_the_login_whatever_is_sent(team, monkeypatch):
    audit_id = submitted_audit(team, monkeypatch)
    as_login(monkeypatch, "mo")
    since = last_log_id(team)
    audits.moderate(team, audit_id, 4, {}, {})  # Bea's id sent as the moderator
    assert [r["moderator_id"] for r in team["moderations"].rows] == [3] * len(
        list(team["moderations"].rows))
    rows = log(team, "moderations", since)
    assert rows and {(r["user"], r["actor"]) for r in rows} == {("mo", "Mo Moderator")}


@pytest.mark.parametrize("auditor", ["auditor 1", "auditor 2"])
def test_a_moderator_never_moderates_an_audit_they_wrote(team, monkeypatch, auditor):
    access.add_user(team, "bea", roles=["auditor", "moderator"], practitioner_id=4)
    if auditor == "auditor 2":
        audit_id = submitted_audit(team, monkeypatch, auditor2=4)
    else:
        as_login(monkeypatch, "bea")
        audit_id = audits.save_draft(team, audit_form())
        audits.submit(team, audit_id, today=dt.date(2026, 3, 10))
    as_login(monkeypatch, "bea")
    with pytest.raises(access.NotAllowed, match="one of its auditors"):
        audits.moderate(team, audit_id, 3, {}, {})  # Mo's id sent: still Bea acting
    assert team["moderations"].count == 0


def test_reopening_names_the_person_reopening_not_auditor_1(team, monkeypatch):
    audit_id = submitted_audit(team, monkeypatch, auditor2=4)
    as_login(monkeypatch, "bea")
    since = last_log_id(team)
    audits.reopen(team, audit_id, "A grade was wrong", by="Ava Auditor")
    (row,) = [r for r in log(team, "audits", since) if r["field"] == "status"]
    assert (row["user"], row["actor"], row["reason"]) == ("bea", "Bea Auditor",
                                                          "A grade was wrong")


def test_the_coordinator_drawing_a_list_is_the_login(team, monkeypatch):
    as_login(monkeypatch, "cy")
    d = sampling.draw(team, "2026-02", seed=1, on=dt.date(2026, 3, 1), drawn_by="Leo Lead")
    assert d["drawn_by"] == "cy"
    assert {r["user"] for r in log(team, "selection_draws")} == {"cy"}


# -- roles refuse what they should -------------------------------------------------------------
REFUSALS = [
    ("ann", "draw a list", lambda db, tmp: sampling.draw(db, "2026-02", on=dt.date(2026, 3, 1)),
     "coordinator"),
    ("ava", "import", lambda db, tmp: case_import.import_agencies(db, tmp / "none.csv"),
     "coordinator"),
    ("cy", "start an audit", lambda db, tmp: audits.save_draft(db, audit_form()), "auditor"),
    ("ava", "moderate", lambda db, tmp: audits.moderate(db, 1, 3, {}, {}), "moderator"),
    ("ava", "complete an action", lambda db, tmp: actions.complete(
        db, 1, dt.date(2026, 3, 5), "Done"), "coordinator"),
    ("ava", "back up", lambda db, tmp: backup.backup(db_file(db), tmp), "admin"),
    ("hal", "check", lambda db, tmp: check.check(db), "admin"),
    ("ann", "the monthly report with names",
     lambda db, tmp: reports.run("monthly", db=db_file(db), audience="head_of_service",
                                 out_dir=tmp), "head of service"),
    ("ava", "a board report", lambda db, tmp: reports.run("monthly", db=db_file(db),
                                                          out_dir=tmp), "analyst"),
]


def db_file(db) -> str:
    return where(db)


@pytest.mark.parametrize(("login", "doing", "act", "role"), REFUSALS,
                         ids=[f"{r[0]} may not {r[1]}" for r in REFUSALS])
def test_each_role_is_refused_what_it_may_not_do_and_told_which_role_may(
        team, monkeypatch, tmp_path, login, doing, act, role):
    as_login(monkeypatch, login)
    since = last_log_id(team)
    with pytest.raises(access.NotAllowed, match=f"needs the .*{role}.* role"):
        act(team, tmp_path)
    assert last_log_id(team) == since  # nothing written


def test_the_roles_table_is_a_setting_a_council_can_change(team, monkeypatch, tmp_path):
    mine = tmp_path / "council.toml"
    mine.write_text('[roles]\nanalyst = ["board_reports", "draw_lists"]\n', encoding="utf-8")
    monkeypatch.setenv("EHKIT_SETTINGS", str(mine))
    as_login(monkeypatch, "ann")
    assert sampling.draw(team, "2026-02", seed=1, on=dt.date(2026, 3, 1))["drawn_by"] == "ann"
    mine.write_text('[roles]\nanalyst = ["see_everything"]\n', encoding="utf-8")
    with pytest.raises(access.settings.SettingsError, match="see_everything"):
        access.person(team).may("draw_lists")


# -- case details --------------------------------------------------------------------------
def test_an_auditor_sees_the_childs_name_and_birth_date_only_on_their_own_cases(team,
                                                                                monkeypatch):
    as_login(monkeypatch, "bea")
    shown = access.case_details(team, case_information(team, 1))
    assert (shown["child_names"], shown["date_of_birth"]) == (access.NOT_ON_LIST,) * 2
    assert "Kit Testchild" not in json.dumps(shown)
    as_login(monkeypatch, "ava")
    audits.save_draft(team, audit_form())
    assert access.case_details(team, case_information(team, 1))["child_names"] == \
        "Kit Testchild"
    as_login(monkeypatch, "cy")
    assert access.may_see_case(team, 1)


def test_a_case_on_an_auditors_list_is_theirs_to_see(team, monkeypatch):
    as_login(monkeypatch, "cy")
    sampling.draw(team, "2026-02", seed=1, on=dt.date(2026, 3, 1))
    assert [r["episode_id"] for r in team["selections"].rows] == [1]
    team.execute("UPDATE selections SET auditor_id = 1")  # Ava's to audit
    as_login(monkeypatch, "bea")
    assert not access.may_see_case(team, 1)
    team.execute("UPDATE selections SET auditor_id = 4")  # the list's auditor: Bea
    assert access.may_see_case(team, 1)


def test_a_moderator_sees_a_submitted_audits_case_and_an_analyst_sees_none(team, monkeypatch):
    as_login(monkeypatch, "mo")
    assert not access.may_see_case(team, 1)
    submitted_audit(team, monkeypatch)
    as_login(monkeypatch, "mo")
    assert access.may_see_case(team, 1)
    as_login(monkeypatch, "ann")
    assert not access.may_see_case(team, 1)


def test_an_auditor_prints_only_their_own_records(team, monkeypatch, tmp_path):
    audit_id = submitted_audit(team, monkeypatch)
    assert "Kit Testchild" in audits.print_record(team, audit_id, tmp_path).read_text("utf-8")
    as_login(monkeypatch, "bea")  # another auditor may not even open it
    with pytest.raises(access.NotAllowed, match="Audit no. 1 is for its auditors"):
        audits.print_record(team, audit_id, tmp_path / "bea")
    as_login(monkeypatch, "mo")  # may open it to moderate; it is not yet theirs to print
    with pytest.raises(access.NotAllowed, match="Printing this audit's record is for"):
        audits.print_record(team, audit_id, tmp_path / "mo")
    assert not (tmp_path / "bea").exists() and not (tmp_path / "mo").exists()
    as_login(monkeypatch, "hal")  # the Head of Service reads everything
    assert "Kit Testchild" in audits.render_record(team, audit_id)


# -- the command ---------------------------------------------------------------------------
def test_users_commands_add_list_import_remove(store_at, monkeypatch, capsys, tmp_path):
    db = store.connect(store_at)  # a SQLite file, and a PostgreSQL database (issue 18)
    base_rows(db)
    db.close()
    path = str(store_at)
    as_login(monkeypatch, "it.admin")
    assert main(["users", "add", "it.admin", "--role", "admin", "--db", path]) == 0
    assert main(["users", "add", "ava", "--practitioner", "1", "--role", "auditor",
                 "--role", "moderator", "--db", path]) == 0
    f = tmp_path / "u.csv"
    f.write_text("login,practitioner,roles\nleo,2,auditor\n", encoding="utf-8")
    assert main(["users", "import", str(f), "--db", path]) == 0
    assert main(["users", "remove", "leo", "--db", path]) == 0
    capsys.readouterr()
    assert main(["users", "list", "--db", path]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["ava\tAva Auditor (no. 1)\tauditor moderator", "it.admin\t-\tadmin",
                   "leo\tLeo Lead (no. 2)\tauditor\tremoved"]


def test_a_refusal_is_one_plain_line_and_exit_2(team, monkeypatch, capsys):
    as_login(monkeypatch, "ava")
    assert main(["users", "add", "ava", "--role", "admin", "--db", db_file(team)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ehkit: error: Adding and removing users needs the admin role")
    assert "Traceback" not in err and err.count("\n") == 1


def test_the_person_completing_an_action_is_the_login(team, monkeypatch):
    submitted_audit(team, monkeypatch)
    (action_id,) = [r["id"] for r in team["actions"].rows]
    as_login(monkeypatch, "cy")
    since = last_log_id(team)
    actions.complete(team, action_id, dt.date(2026, 3, 20), "Plan reviewed", actor="Leo Lead")
    rows = log(team, "actions", since)
    assert rows and {(r["user"], r["actor"]) for r in rows} == {("cy", "cy")}


def test_letters_and_feedback_to_workers_are_the_coordinators(team, monkeypatch):
    from ehkit import after_audit

    audit_id = submitted_audit(team, monkeypatch)
    with pytest.raises(access.NotAllowed, match="needs the coordinator role"):
        after_audit.record_worker_notified(team, audit_id, dt.date(2026, 3, 3))
    as_login(monkeypatch, "cy")
    after_audit.record_worker_notified(team, audit_id, dt.date(2026, 3, 3))
    assert {r["user"] for r in log(team, "audit_followups")} == {"cy"}


def test_the_list_app_shows_a_refusal_as_a_plain_message(team, monkeypatch):
    from ehkit.forms.sampling import sampling_form

    as_login(monkeypatch, "ava")
    form = sampling_form(team, dt.date(2026, 3, 1))
    form.widgets["draw"].click()
    shown = form.widgets["messages"].value
    assert "Drawing or redrawing a month&#x27;s audit list needs the coordinator role" in shown
    assert "Traceback" not in shown and team["selection_draws"].count == 0


def test_an_audit_opens_only_for_its_auditors_its_moderators_and_those_who_see_all(
        team, monkeypatch):
    as_login(monkeypatch, "ava")
    draft = audits.save_draft(team, audit_form())
    for login in ("bea", "mo", "ann"):  # a draft is not yet a moderator's
        as_login(monkeypatch, login)
        with pytest.raises(access.NotAllowed, match=f"your login '{login}' is none of these"):
            audits.load(team, draft)
    for login in ("ava", "cy", "hal"):
        as_login(monkeypatch, login)
        assert audits.load(team, draft)["id"] == draft
    as_login(monkeypatch, "ava")
    audits.submit(team, draft, today=dt.date(2026, 3, 10))
    as_login(monkeypatch, "mo")
    assert audits.load(team, draft)["status"] == "submitted"


def test_self_assessments_are_recorded_by_the_coordinator(team, monkeypatch):
    from ehkit import self_assessment as sa

    met = {i.key: True for i in sa.load().items}
    as_login(monkeypatch, "ava")
    with pytest.raises(access.NotAllowed, match="Recording self-assessments needs the "
                                                "coordinator role"):
        sa.record(team, 1, 2, "2026-03-01", met, today=dt.date(2026, 3, 10))
    as_login(monkeypatch, "cy")
    sa.record(team, 1, 2, "2026-03-01", met, today=dt.date(2026, 3, 10))
    assert {r["user"] for r in log(team, "self_assessments")} == {"cy"}


# -- saved audits: each finds only what they may open ----------------------------------------
def found(db, **terms) -> list[int]:
    return [r["id"] for r in audits.find(db, **terms).rows]


def on_the_list_of(db, monkeypatch, practitioner_id: int) -> None:
    """Case 1 on February's list (drawn before it is audited), for ``practitioner_id``."""
    if not db["selections"].count:
        as_login(monkeypatch, "cy")
        sampling.draw(db, "2026-02", seed=1, on=dt.date(2026, 3, 1))
    db.execute("UPDATE selections SET auditor_id = ?", [practitioner_id])


def test_saved_audits_an_auditor_finds_their_own_and_their_lists_cases_only(team, monkeypatch):
    on_the_list_of(team, monkeypatch, 1)
    as_login(monkeypatch, "ava")
    avas = audits.save_draft(team, audit_form())
    as_login(monkeypatch, "bea")
    assert found(team) == [] and audits.find(team).seeing == "your audits and your list's cases"
    assert found(team, number=avas) == []  # not even by its number
    on_the_list_of(team, monkeypatch, 4)  # case 1 is now Bea's to audit
    as_login(monkeypatch, "bea")
    assert found(team) == [avas] and audits.load(team, avas)["id"] == avas
    for login in ("cy", "hal"):
        as_login(monkeypatch, login)
        assert found(team) == [avas] and audits.find(team).seeing == "every saved audit"


def test_saved_audits_a_moderator_finds_those_they_may_moderate_not_drafts(team, monkeypatch):
    as_login(monkeypatch, "ava")
    draft = audits.save_draft(team, audit_form())
    done = submitted_audit(team, monkeypatch)
    as_login(monkeypatch, "mo")
    assert found(team) == [done] and draft not in found(team, status="draft")
    assert audits.find(team).seeing == "your list's cases and audits you may moderate"


def test_saved_audits_are_refused_to_an_analyst_naming_the_roles_that_may(team, monkeypatch):
    as_login(monkeypatch, "ava")
    audits.save_draft(team, audit_form())
    as_login(monkeypatch, "ann")
    with pytest.raises(access.NotAllowed, match="Finding and opening saved audits needs the "
                       "auditor or moderator or coordinator or head of service role; your "
                       "login 'ann' has analyst"):
        audits.find(team)


def test_saved_audits_open_on_the_persons_own_drafts_first(team, monkeypatch):
    on_the_list_of(team, monkeypatch, 1)
    as_login(monkeypatch, "ava")
    draft = audits.save_draft(team, audit_form())
    done = submitted_audit(team, monkeypatch)  # changed after the draft
    as_login(monkeypatch, "bea")
    beas = audits.save_draft(team, audit_form())  # on Ava's list: hers to see; the newest
    as_login(monkeypatch, "ava")
    result = audits.find(team)
    assert [r["id"] for r in result.rows] == [draft, beas, done]
    assert result.order == "your own drafts first, then the most recently changed"
    as_login(monkeypatch, "bea")
    assert found(team) == [beas]


# -- every other way to a child's case: each asks the domain, and a refusal names the role ----
def test_an_audits_history_is_only_for_those_who_may_open_it(team, monkeypatch, capsys):
    from ehkit import history

    as_login(monkeypatch, "ava")
    audit_id = audits.save_draft(team, audit_form(text="Kit's mother said <b>no</b>."))
    assert history.history(team, audit_id)  # her own
    as_login(monkeypatch, "bea")
    with pytest.raises(access.NotAllowed, match=f"The history of audit no. {audit_id} is for "
                       "its auditors and moderators.*your login 'bea' is none of these"):
        history.state_at(team, audit_id)
    as_login(monkeypatch, "ann")
    capsys.readouterr()
    assert main(["history", str(audit_id), "--db", db_file(team)]) == 2
    out, err = capsys.readouterr()
    assert "Kit" not in out + err and "coordinator or head of service role" in err
    as_login(monkeypatch, "hal")
    assert history.history(team, audit_id)


def test_the_action_tracker_is_read_only_by_the_coordinator_and_head_of_service(
        team, monkeypatch, capsys):
    submitted_audit(team, monkeypatch)
    (action_id,) = [r["id"] for r in team["actions"].rows]
    for login in ("ava", "ann"):
        as_login(monkeypatch, login)
        with pytest.raises(access.NotAllowed, match="Reading the action tracker needs the "
                           "coordinator or head of service role"):
            actions.get(team, action_id)
        with pytest.raises(access.NotAllowed, match="coordinator or head of service"):
            actions.overdue(team, dt.date(2027, 1, 1))
    capsys.readouterr()
    assert main(["actions", "overdue", "--on", "2027-01-01", "--db", db_file(team)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("ehkit: error: Reading the action tracker needs")
    for login in ("cy", "hal"):
        as_login(monkeypatch, login)
        assert [r["id"] for r in actions.overdue(team, dt.date(2027, 1, 1))] == [action_id]


def test_what_follows_an_audit_is_read_only_by_the_coordinator_and_head_of_service(
        team, monkeypatch):
    from ehkit import after_audit

    audit_id = submitted_audit(team, monkeypatch)
    for read in (after_audit.followup, after_audit.letter_context,
                 after_audit.feedback_summary):
        with pytest.raises(access.NotAllowed, match="Reading what follows the audits .* "
                           "needs the coordinator or head of service role; your login 'ava'"):
            read(team, audit_id)
    for login in ("cy", "hal"):
        as_login(monkeypatch, login)
        assert after_audit.followup(team, audit_id)["audit"]["id"] == audit_id


def test_the_coordinators_apps_show_nothing_of_the_cases_to_an_analyst_but_the_refusal(
        team, monkeypatch):
    from ehkit.forms.actions import tracker_form
    from ehkit.forms.feedback import followup_form
    from ehkit.forms.sampling import sampling_form

    as_login(monkeypatch, "cy")
    sampling.draw(team, "2026-02", seed=1, on=dt.date(2026, 3, 1))
    assert "EHM1" in sampling_form(team, dt.date(2026, 3, 1)).widgets["table"].value
    submitted_audit(team, monkeypatch)
    as_login(monkeypatch, "ann")
    apps = {"month&#x27;s audit list": sampling_form(team, dt.date(2026, 3, 1)),
            "action tracker": tracker_form(team, dt.date(2027, 1, 1)),
            "what follows the audits": followup_form(team, dt.date(2027, 1, 1))}
    for what, app in apps.items():
        shown = shown_text(app)
        assert "EHM1" not in shown and "Kit" not in shown
        assert f"{what}" in shown and "needs the coordinator or head of service role" in shown


def shown_text(widget) -> str:
    """Every value a widget and those inside it show."""
    inside = "".join(shown_text(c) for c in getattr(widget, "children", ()))
    return str(getattr(widget, "value", "")) + str(getattr(widget, "options", "")) + inside


def test_a_report_notebook_run_by_hand_is_refused_as_ehkit_report_is(team, monkeypatch):
    from ehkit.presentation import Report

    as_login(monkeypatch, "ann")
    with pytest.raises(access.NotAllowed, match="The monthly report with names .* needs the "
                       "head of service role; your login 'ann' has analyst"):
        Report("monthly", db=db_file(team), period="2026-01", audience="head_of_service")
    as_login(monkeypatch, "ava")
    with pytest.raises(access.NotAllowed, match="Board and LSCB reports needs the head of "
                       "service or analyst role"):
        Report("monthly", db=db_file(team), period="2026-01", audience="board")
    as_login(monkeypatch, "ann")
    assert Report("monthly", db=db_file(team), period="2026-01",
                  audience="board").audience.key == "board"


def test_the_figures_before_disclosure_control_are_the_analysts_not_an_auditors(
        team, monkeypatch):
    from ehkit import explore

    as_login(monkeypatch, "ava")
    with pytest.raises(access.NotAllowed, match="The figures before disclosure control .* "
                       "needs the head of service or analyst role; your login 'ava' has auditor"):
        explore.load(db_file(team), "2026-01")
    as_login(monkeypatch, "ann")
    assert explore.load(db_file(team), "2026-01").period.label == "2026-01"


def test_a_login_that_is_not_a_user_asking_for_an_audit_is_told_to_ask_the_admin(
        team, monkeypatch):
    from ehkit import history

    as_login(monkeypatch, "ava")
    audit_id = audits.save_draft(team, audit_form())
    as_login(monkeypatch, "dan")
    for read in (audits.load, history.history):
        with pytest.raises(access.NotAllowed, match="your login 'dan' is not an ehkit user: "
                           "ask an ehkit admin to add you"):
            read(team, audit_id)


def test_the_months_list_exported_only_to_those_who_may_read_it(team, monkeypatch, tmp_path):
    as_login(monkeypatch, "cy")
    sampling.draw(team, "2026-02", seed=1, on=dt.date(2026, 3, 1))
    for login in ("ava", "ann"):
        as_login(monkeypatch, login)
        with pytest.raises(access.NotAllowed, match="Reading the month's audit list needs the "
                           "coordinator or head of service role"):
            sampling.export(team, "2026-02", tmp_path / f"{login}.csv")
        assert not (tmp_path / f"{login}.csv").exists()
    for login in ("cy", "hal"):
        as_login(monkeypatch, login)
        assert sampling.export(team, "2026-02", tmp_path / f"{login}.csv").exists()
