"""Bad input everywhere: random text through the audit API and the importer.

Very long strings, control characters, right-to-left marks, emoji, SQL and HTML fragments:
stored and read back exactly, kept exactly in the change log, escaped in the printable
record (no markup gets in), and nothing crashes. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import collections
import csv
import shutil
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from builders import audit_form, base_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehkit import audits, cases, check, history
from ehkit import db as store

FRAGMENTS = [
    "'; DROP TABLE audits; --", "Robert'); DELETE FROM answers WHERE '1'='1",
    "<script>alert('x')</script>", "<img src=x onerror=alert(1)>", "</td></tr></table><h1>",
    "{{ 7*7 }}{% raw %}", "&amp; &lt; &#x3C;", "\u202egnp.exe", "\u200f\u05e9\u05dc\u05d5\u05dd",
    "\u0627\u0644\u0637\u0641\u0644", "👩‍👩‍👧‍👦🏳️‍🌈", "\x00", "\x1b[31m", "\r\n\t", "\u2028\u2029",
    "\ufeff", "\x7f\x85", "C:\\Users\\x\\..\\..", '"quoted", with, commas',
]
# Any character but lone surrogates (which no UTF-8 text, and so no browser, can send).
chars = st.characters(blacklist_categories=("Cs",))
texts = st.one_of(
    st.text(chars, min_size=1, max_size=60),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(chars, max_size=8)),
             min_size=1, max_size=8).map("".join),
    st.tuples(st.text(chars, min_size=1, max_size=5), st.integers(2_000, 20_000)).map(
        lambda t: (t[0] * (t[1] // len(t[0]) + 1))[: t[1]]),  # very long
).filter(lambda s: s.strip())  # blank text is "not given" (stored as nothing) by design

FREE_TEXT = st.fixed_dictionaries({
    "summary": texts, "overall_reasons": texts, "learning": texts, "comment": texts,
    "note": texts, "action": texts, "by_whom": texts, "agreed_by": texts,
    "completion_note": texts,
})
SLOW = settings(max_examples=20, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.filter_too_much])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fresh(tmp_path_factory, request):
    """``fresh(folder)``: a store of base rows for one example, open: a copy of a SQLite
    file, or a PostgreSQL database made from the file's `ehkit copy`."""
    path = tmp_path_factory.mktemp("bad_input") / "base.db"
    database = store.connect(path)
    base_rows(database)
    database.close()
    if request.param == "sqlite":
        def copied(folder: str):
            shutil.copy(path, Path(folder) / "ehkit.db")
            return store.connect(Path(folder) / "ehkit.db")
        return copied
    from ehkit import copying

    server = request.getfixturevalue("pg_server")
    base = server.new_database()
    copying.copy(path, base)
    return lambda folder: store.connect(server.new_database(like=base))


class Markup(HTMLParser):
    """The tags and the text a browser would see."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: collections.Counter = collections.Counter()
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags[(tag, tuple(sorted(a for a, _ in attrs)))] += 1

    def handle_data(self, data):
        self.text.append(data)


def with_text(form: dict, t: dict) -> dict:
    form = dict(form)
    for f in ("summary", "overall_reasons", "learning"):
        form[f] = t[f]
    item = next(k for k, v in form["answers"].items() if v.get("comment"))
    form["answers"] = {**form["answers"], item: {**form["answers"][item], "comment": t["comment"]}}
    first = next(iter(form["checklist"]))
    form["checklist"] = {**form["checklist"], first: {"status": "accurate", "note": t["note"]}}
    form["actions"] = [{**form["actions"][0], **{f: t[f] for f in
                                                 ("action", "by_whom", "agreed_by",
                                                  "completion_note")}}]
    return form


@pytest.mark.slow
@SLOW
@given(t=FREE_TEXT)
def test_free_text_in_an_audit_is_kept_exactly_and_escaped_in_the_record(fresh, t):
    with tempfile.TemporaryDirectory() as folder:
        db = fresh(folder)
        try:
            plain = audits.save_draft(db, with_text(audit_form(), dict.fromkeys(t, "plain")))
            if refused_on_postgresql(db, lambda: audits.save_draft(db, with_text(audit_form(), t)),
                                     t):
                return
            audit_id = audits.save_draft(db, with_text(audit_form(), t))
            back = audits.load(db, audit_id)
            assert {f: back[f] for f in ("summary", "overall_reasons", "learning")} == {
                f: t[f] for f in ("summary", "overall_reasons", "learning")}
            assert t["comment"] in [a["comment"] for a in back["answers"].values()]
            assert t["note"] in [c["note"] for c in back["checklist"].values()]
            assert {f: back["actions"][0][f] for f in
                    ("action", "by_whom", "agreed_by", "completion_note")} == {
                f: t[f] for f in ("action", "by_whom", "agreed_by", "completion_note")}
            # The change log holds it exactly too, and its chain still verifies.
            logged = history.state_at(db, audit_id)["audits"][str(audit_id)]
            assert logged["summary"] == t["summary"]
            assert check.chain_checks(db) == [] and check.replay_checks(db) == []
            # The printable record: exactly the markup of a plain record, the text all there.
            record = Markup(audits.render_record(db, audit_id))
            assert record.tags == Markup(audits.render_record(db, plain)).tags
            shown = "".join(record.text)
            for f in ("summary", "overall_reasons", "learning", "comment", "note", "action"):
                assert t[f].replace("\r\n", "\n").replace("\r", "\n") in shown.replace(
                    "\r\n", "\n").replace("\r", "\n")
            # A second save of the same text changes nothing (nothing mangled on the way).
            before = db.execute("SELECT count(*) FROM change_log").fetchone()[0]
            audits.save_draft(db, back, audit_id=audit_id)
            changed = db.execute("SELECT field FROM change_log WHERE id > ?", [before]).fetchall()
            assert {f for (f,) in changed} <= {"updated_at"}
        finally:
            db.close()


def refused_on_postgresql(db, save, t: dict) -> bool:
    """Text with a NUL character, which PostgreSQL cannot keep (SQLite keeps it exactly):
    refused in words, and nothing written. True if so."""
    if not (store.is_postgres(db) and any("\x00" in v for v in t.values())):
        return False
    before = db.execute("SELECT count(*) FROM change_log").fetchone()[0]
    with pytest.raises(store.StoreError, match="NUL character") as refused:
        save()
    assert "nothing was saved" in str(refused.value)
    assert db.execute("SELECT count(*) FROM change_log").fetchone()[0] == before
    return True


CASE_TEXT = st.fixed_dictionaries({
    "ehm": texts, "child": texts, "reason": texts, "ca_name": texts, "ca_contact": texts})


@pytest.mark.slow
@settings(SLOW, max_examples=15)
@given(t=CASE_TEXT)
def test_free_text_through_the_importer_is_kept_as_the_cell_showed_it(fresh, t):
    with tempfile.TemporaryDirectory() as folder:
        db = fresh(folder)
        try:
            export = Path(folder) / "episodes.csv"
            with export.open("w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["EHM number", "Start date", "Lead agency", "Child name",
                            "Referral reason", "Cross authority", "Cross authority name",
                            "Cross authority contact"])
                w.writerow(["PLAIN1", "2026-02-01", "Test Team", "Plain Child", "Plain",
                            "yes", "Plain Council", "Plain Person"])
                w.writerow([t["ehm"], "2026-02-01", "Test Team", t["child"], t["reason"],
                            "yes", t["ca_name"], t["ca_contact"]])
            rejects = Path(folder) / "rejects"
            if refused_on_postgresql(
                    db, lambda: cases.import_episodes(db, export, rejects_dir=rejects), t):
                return
            summary = cases.import_episodes(db, export, rejects_dir=rejects)
            assert summary.inserted + summary.rejected == 2 and summary.inserted >= 1
            if summary.rejected:  # refused with a reason is fine; dropped or crashed is not
                assert summary.problems and summary.rejects_file
                return
            plain_id, ep_id = [r[0] for r in db.execute(
                "SELECT id FROM episodes WHERE id <> 1 ORDER BY id")]
            ep = db.execute(
                "SELECT ehm_number, referral_reason, cross_authority_name,"
                " cross_authority_contact FROM episodes WHERE id = ?", [ep_id]).fetchone()
            # Cells are taken as the data officer saw them: surrounding spaces trimmed.
            assert ep == (t["ehm"].strip(), t["reason"].strip(), t["ca_name"].strip(),
                          t["ca_contact"].strip())
            names = [r[0] for r in db.execute("SELECT name FROM children WHERE episode_id = ?",
                                              [ep_id])]
            assert names == [t["child"].strip()]
            # And the case information shows up escaped on a printable record.
            audit_id = audits.save_draft(db, audit_form(episode_id=ep_id))
            plain = audits.save_draft(db, audit_form(episode_id=plain_id))
            record = Markup(audits.render_record(db, audit_id))
            assert record.tags == Markup(audits.render_record(db, plain)).tags
            assert t["child"].strip() in "".join(record.text)
            assert check.chain_checks(db) == [] and check.replay_checks(db) == []
        finally:
            db.close()
