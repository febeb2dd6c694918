"""One registry of rules (ehkit.rules): each rule once, with a code; the form, the action
tracker, the imports and `ehkit check` ask the same definition; a council adds its own."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from builders import audit_form, base_rows, complete_audit, save_rows

from ehkit import actions, audits, check, cli, rules, service_user_feedback

TODAY = dt.date(2026, 6, 1)
README = Path(__file__).resolve().parents[1] / "README.md"


def findings(db) -> list[tuple[str, str]]:
    return [(f.code, f.where) for f in check.data_quality(db, today=TODAY)]


def form_problems(db, **changes) -> dict[str, str]:
    """What the form says of a complete audit (audit date 2026-03-02) with one action changed."""
    form = audit_form()
    form["actions"][0].update(changes)
    return audits.problems(db, form, today=TODAY)


# -- the registry ---------------------------------------------------------------------------
def test_a_second_declaration_of_a_rule_code_is_refused():
    with pytest.raises(rules.DuplicateRule, match="AUDIT-CASE is declared twice"):
        rules.register("AUDIT-CASE", "another rule under a code already taken", kind="audit")
    assert rules.get("AUDIT-CASE").message == "an audit names the case it audits (its EHM number)"


def test_rules_of_every_kind_are_in_the_registry():
    by_kind = {k: {r.code for r in rules.all_rules() if r.kind == k} for k in rules.KINDS}
    assert {"AUDIT-SECTION-EVIDENCE", "AUDIT-OVERALL-REFLECTS"} <= by_kind["audit"]
    assert {"ACTION-DUE-AFTER-AUDIT", "ACTION-COMPLETED-FUTURE"} <= by_kind["action"]
    assert {"MISSING_VALUE", "DOB_AFTER_START", "OWN_LINE_MANAGER", "TOO_MANY_CELLS",
            "UNKNOWN_SECTOR"} <= by_kind["import"]
    assert {"UNKNOWN_THEME", "BAD_RATING"} <= by_kind["feedback"]
    assert {"DB-INTEGRITY", "LOG-ALTERED", "DQ-DATE-ORDER", "FS-NETWORK"} <= by_kind["check"]
    # the rules the form and ehkit check once each wrote in their own words are gone
    assert {"DQ-REQUIRED", "DQ-GRADE-RANGE"} & {r.code for r in rules.all_rules()} == set()


def test_ehkit_rules_lists_every_code_once_with_its_message(capsys):
    assert cli.main(["rules"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = [line.split("\t")[0] for line in lines]
    assert len(listed) == len(set(listed)) == len(rules.all_rules()) > 60
    assert "MISSING_VALUE\timport\ta required value is blank" in lines
    assert all(len(line.split("\t")) == 3 and line.split("\t")[2] for line in lines)


def test_every_rule_code_is_documented_in_the_readme_with_its_message():
    readme = README.read_text(encoding="utf-8")
    missing = [r.code for r in rules.all_rules()
               if f"| `{r.code}` | {r.kind} | {r.message} |" not in readme]
    assert missing == [], "run `ehkit rules --markdown` and paste it into the README's Rules"
    block = readme.split("writes what follows -->\n")[1].split("\n<!-- end of rules -->")[0]
    assert block == rules.markdown(), "the README lists a rule ehkit no longer has"


def test_feedback_problems_carry_declared_codes(db):
    base_rows(db)
    found = service_user_feedback.feedback_problems(db, {"episode_id": 1, "given_on": "2026-05-01",
                                            "respondent": "Auntie", "stage": "closure"},
                                       today=TODAY)
    assert found["respondent"][0] == "UNKNOWN_CHOICE"
    assert rules.get("UNKNOWN_CHOICE").kind == "feedback"


# -- the diverged pair, made one ------------------------------------------------------------
def test_action_due_on_the_audit_day_is_refused_by_the_form_and_found_by_check(db):
    base_rows(db)
    assert "must be after the audit date (2026-03-02)" in form_problems(
        db, due_date="2026-03-02")["actions.1.due_date"]
    assert "actions.1.due_date" not in form_problems(db, due_date="2026-03-03")
    on_the_day = complete_audit()
    on_the_day["actions"][0]["due_date"] = on_the_day["audit"]["audit_date"]
    audit_id = save_rows(db, on_the_day)
    day_after = complete_audit()
    day_after["actions"][0]["due_date"] = "2026-03-03"
    save_rows(db, day_after)
    assert findings(db) == [("ACTION-DUE-AFTER-AUDIT", f"audit {audit_id} action 1")]


def test_action_completed_in_the_future_is_refused_by_the_form_the_tracker_and_check(db):
    base_rows(db)
    tomorrow = (TODAY + dt.timedelta(days=1)).isoformat()
    said = form_problems(db, completed_date=tomorrow, completion_note="Plan reviewed")
    assert "is in the future" in said["actions.1.completed_date"]
    assert "actions.1.completed_date" not in form_problems(
        db, completed_date=TODAY.isoformat(), completion_note="Plan reviewed")
    audit_id = save_rows(db, complete_audit())
    with pytest.raises(actions.ActionError, match="is in the future"):
        actions.complete(db, 1, tomorrow, "Plan reviewed", today=TODAY)
    with check.store.transaction(db):
        db["actions"].update(1, {"completed_date": tomorrow, "completion_note": "typed ahead"})
    assert findings(db) == [("ACTION-COMPLETED-FUTURE", f"audit {audit_id} action 1")]


def test_action_completed_before_the_audit_is_refused_by_the_form_as_by_the_tracker(db):
    base_rows(db)
    said = form_problems(db, completed_date="2026-03-01", completion_note="Plan reviewed")
    assert "before the audit (02/03/2026)" in said["actions.1.completed_date"]


def test_a_rule_the_form_and_check_share_says_the_same_words(db):
    base_rows(db)
    form = audit_form()
    form["audit_date"] = "2026-01-04"  # the episode began 2026-01-05
    said_by_form = audits.problems(db, form, today=TODAY)["audit_date"]
    whole = complete_audit()
    whole["audit"]["audit_date"] = "2026-01-04"
    whole["actions"][0]["due_date"] = "2026-01-31"
    save_rows(db, whole)
    found = check.data_quality(db, today=TODAY)
    assert [(f.code, f.message) for f in found] == [("AUDIT-DATE-BEFORE-EPISODE", said_by_form)]


# -- a council's own rules ------------------------------------------------------------------
COUNCIL_RULES = '''
from ehkit.rules import audit_rule


@audit_rule("OAK-SUMMARY", "the case summary is at least five words", fields=("summary",))
def summary_of_five_words(audit):
    if len((audit.get("summary") or "").split()) < 5:
        return "Write the brief summary of the case in at least five words."
'''


def _council(tmp_path, monkeypatch, code: str) -> None:
    module = tmp_path / "oakvale_rules.py"
    module.write_text(code, encoding="utf-8")
    settings = tmp_path / "settings.toml"
    settings.write_text(f"[rules]\nmodules = [{str(module)!r}]\n", encoding="utf-8")
    monkeypatch.setenv("EHKIT_SETTINGS", str(settings))


def test_a_council_rule_named_in_settings_is_asked_by_the_form_and_check(db, tmp_path,
                                                                        monkeypatch, capsys):
    base_rows(db)
    _council(tmp_path, monkeypatch, COUNCIL_RULES)
    assert audits.problems(db, audit_form(text="Too short."), today=TODAY) == {
        "summary": "Write the brief summary of the case in at least five words."}
    enough = "Evidence of good practice throughout."
    assert audits.problems(db, audit_form(text=enough), today=TODAY) == {}
    short = save_rows(db, complete_audit(text="Too short."))
    save_rows(db, complete_audit(text=enough))
    assert findings(db) == [("OAK-SUMMARY", f"audit {short}")]
    assert cli.main(["rules"]) == 0
    assert "OAK-SUMMARY\tcouncil\tthe case summary is at least five words" in (
        capsys.readouterr().out.splitlines())
    monkeypatch.delenv("EHKIT_SETTINGS")
    assert rules.council_rules() == []  # another council's settings: not its rules


def test_a_council_rule_under_a_code_ehkit_uses_is_refused(tmp_path, monkeypatch):
    first = COUNCIL_RULES.replace("OAK-SUMMARY", "OAK-FIRST").replace(
        "summary_of_five_words", "first_rule")
    _council(tmp_path, monkeypatch, first + COUNCIL_RULES.replace("OAK-SUMMARY", "AUDIT-CASE"))
    for _ in range(2):  # and again the same refusal: none of the module's rules stayed
        with pytest.raises(rules.DuplicateRule, match="AUDIT-CASE is declared twice"):
            rules.all_rules()


def test_a_council_rules_module_that_cannot_load_is_named_in_words(tmp_path, monkeypatch,
                                                                   capsys):
    _council(tmp_path, monkeypatch, "def broken(:\n")
    assert cli.main(["rules"]) == 2
    err = capsys.readouterr().err
    assert "oakvale_rules.py" in err and "could not be loaded" in err
    assert "Traceback" not in err


def test_a_council_rule_that_fails_is_named_in_words_not_a_traceback(db, tmp_path, monkeypatch):
    base_rows(db)
    failing = COUNCIL_RULES.replace('len((audit.get("summary") or "").split())',
                                    'audit["no such field"]')
    _council(tmp_path, monkeypatch, failing.replace("OAK-SUMMARY", "OAK-FAILING"))
    with pytest.raises(rules.CouncilRuleFailed, match=r"rule OAK-FAILING \(in .*oakvale_rules"):
        audits.problems(db, audit_form(), today=TODAY)
