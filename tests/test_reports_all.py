"""Every report, end to end, from a store built to catch leaks: children and workers with
distinctive made-up names, dates of birth and EHM numbers, and `<script>`, `<img onerror>`,
`</script>` and a markdown `javascript:` link in every free-text field.

The notebook runs are shared per module (each costs seconds): `ehkit report all` for 2025Q4
(three monthly reports, the quarterly for the Board and the LSCB, the LSCB's annual report
as the quarter closes 2025), a batch for 2025Q1 with a broken quarterly notebook, and two
single runs of empty periods.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from ehkit import db as store
from ehkit import metrics, periods, reports, sampling

# one worker runs this module, so its notebook runs are shared, not repeated per worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reports_all")]

PAYLOAD = ("Note <script>alert(1)</script> <img src=x onerror=alert(2)> "
           "</script><script>alert(3)</script> [x](javascript:alert(4)) **bold**")
CHILDREN = [f"Childname Xylophorix{i}" for i in range(12)]
DOBS = [dt.date(2011, 3, 1) + dt.timedelta(days=37 * i) for i in range(12)]
EHMS = [f"QZEHM{i:04d}X" for i in range(40)]
WORKERS = ["Wkrname Zanzibarque", "Wkrname Quetzalwood", "Wkrname Jubilarian"]
SUBMITTED = "submitted"


def build(path: Path) -> None:
    """Episodes from 2024 to 2025; audits, actions, feedback only from July to December 2025."""
    database = store.connect(path)
    with store.acting_as(actor="test setup"), store.transaction(database):
        database["agencies"].insert_all([
            {"id": 1, "name": "Council Team", "kind": "council", "sector": "Local Authority"},
            {"id": 2, "name": "Fern School", "kind": "partner", "sector": "Education"},
            {"id": 3, "name": "Health Visitors " + PAYLOAD, "kind": "partner",
             "sector": "Health"}])
        database["practitioners"].insert_all([
            {"id": 1, "name": "Mgrname Ottoline", "agency_id": 1, "team": "North", "is_auditor": 0},
            {"id": 2, "name": WORKERS[0], "agency_id": 1, "team": "North", "line_manager_id": 1,
             "is_auditor": 0},
            {"id": 3, "name": WORKERS[1], "agency_id": 2, "team": "Fern " + PAYLOAD,
             "role": PAYLOAD, "is_auditor": 0},
            {"id": 4, "name": WORKERS[2] + " " + PAYLOAD, "agency_id": 3, "team": "HV",
             "is_auditor": 0},
            {"id": 5, "name": "Audname Pemberlyx", "agency_id": 1, "team": "QA", "is_auditor": 1},
            {"id": 6, "name": "Audname Rosquindle", "agency_id": 3, "team": "QA", "is_auditor": 1}])
        episodes, children = [], []
        for i, ehm in enumerate(EHMS):
            start = dt.date(2024, 1, 10) + dt.timedelta(days=17 * i)
            end = start + dt.timedelta(days=150 + 7 * (i % 5)) if i % 3 else None
            episodes.append({
                "id": i + 1, "ehm_number": ehm, "start_date": start.isoformat(),
                "end_date": end and end.isoformat(), "status": "closed" if end else "open",
                "ended_as": ("outcomes_achieved", "stepped_up", "disengaged")[i % 3]
                if end else None,
                "lead_agency_id": 1 + i % 3, "lead_professional_id": 2 + i % 3,
                "team_manager_id": 1, "began_as": "step_down" if i % 4 == 0 else "new_request",
                "referral_reason": PAYLOAD if i % 5 == 0 else "Parenting support",
                "cross_authority": 1 if i == 7 else 0,
                "cross_authority_name": PAYLOAD if i == 7 else None,
                "cross_authority_contact": PAYLOAD if i == 7 else None,
                "first_review_date": (start + dt.timedelta(days=40)).isoformat(),
                "last_review_date": (start + dt.timedelta(days=40)).isoformat()})
            if i < len(CHILDREN):
                children.append({"episode_id": i + 1, "name": CHILDREN[i],
                                 "date_of_birth": DOBS[i].isoformat()})
        database["episodes"].insert_all(episodes)
        database["children"].insert_all(children)
        audits, answers, checklist, actions, moderations = [], [], [], [], []
        n = 0
        for month in range(7, 13):
            for k in range(4):
                n += 1
                day = dt.date(2025, month, 3 + 6 * k)
                grade = (2, 3, 4, 2)[k]
                audits.append({
                    "id": n, "episode_id": 1 + (n * 7) % len(EHMS), "template": "darlington",
                    "auditor1_id": 5 + n % 2, "audit_date": day.isoformat(),
                    "status": "moderated" if k == 3 else SUBMITTED, "summary": PAYLOAD,
                    "overall_grade": grade, "overall_reasons": PAYLOAD, "learning": PAYLOAD,
                    "submitted_at": f"{day}T12:00:00Z"})
                for s in ("pre_eha", "assessment", "planning", "review", "voice_of_child",
                          "multi_agency", "impact", "management_oversight"):
                    answers.append({"audit_id": n, "key": s, "grade": grade, "comment": PAYLOAD})
                answers.append({"audit_id": n, "key": "1.1", "comment": PAYLOAD})
                checklist.append({"audit_id": n, "item": "consent", "status": "not_accurate",
                                  "note": PAYLOAD})
                if grade >= 3:
                    for number in (1, 2):
                        due = day + dt.timedelta(days=14 * number)
                        actions.append({
                            "audit_id": n, "number": number, "action": PAYLOAD,
                            "by_whom": PAYLOAD, "owner_id": 2 + n % 3, "due_date": due.isoformat(),
                            "agreed_by": PAYLOAD, "discussed_date": day.isoformat(),
                            "completed_date": due.isoformat() if number == 1 else None,
                            "completion_note": PAYLOAD if number == 1 else None})
                if k == 3:
                    moderations.append({"audit_id": n, "key": "overall", "moderator_id": 6 - n % 2,
                                        "moderated_on": day.isoformat(), "original_grade": 2,
                                        "moderated_grade": 3, "reason": PAYLOAD})
        database["audits"].insert_all(audits)
        database["answers"].insert_all(answers)
        database["checklist_answers"].insert_all(checklist)
        database["actions"].insert_all(actions)
        database["moderations"].insert_all(moderations)
        database["discussions"].insert_all([
            {"id": a, "audit_id": a, "held_on": f"2025-{7 + (a - 1) // 4:02d}-28",
             "learning": PAYLOAD, "notes": PAYLOAD} for a in range(1, 13)])
        database["discussion_attendees"].insert_all([
            {"discussion_id": a, "practitioner_id": 2 + a % 3, "role": "worker"}
            for a in range(1, 13)])
        database["one_to_one_meetings"].insert_all([
            {"audit_id": 2, "professional_id": 3, "held_on": "2025-07-20", "notes": PAYLOAD}])
        database["service_user_feedback"].insert_all([
            {"episode_id": e, "given_on": f"2025-{m:02d}-15", "respondent": "parent_carer",
             "stage": "closure", "comments": PAYLOAD, "concern_raised": 1,
             "concern_theme": PAYLOAD if e % 2 else "Training need", "concern_detail": PAYLOAD}
            for e, m in zip(range(20, 32), [10, 10, 11, 11, 11, 12, 12, 12, 12, 12, 12, 12],
                            strict=True)])
        database["audit_requests"].insert({
            "episode_id": 38, "month": "2025-11", "reason": PAYLOAD, "requested_by_id": 2,
            "requested_on": "2025-11-01", "recorded_by": "test"})
    for month in ("2025-10", "2025-11", "2025-12"):
        sampling.draw(database, month, seed=5, on=dt.date.fromisoformat(f"{month}-01"))
    database.close()


def _ehkit(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ehkit.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    path = tmp_path_factory.mktemp("service") / "ehkit.db"
    build(path)
    return path


@pytest.fixture(scope="module")
def batch(service, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports-2025Q4")
    return _ehkit("report", "all", "--db", service, "--period", "2025Q4", "--out", out), out


@pytest.fixture(scope="module")
def broken_batch(service, tmp_path_factory):
    """2025Q1 (no audits at all) with a monthly notebook that fails in its third cell for
    January only: the other two months and both quarterly reports still render (empty)."""
    books = tmp_path_factory.mktemp("notebooks")
    for nb in ("monthly", "quarterly", "annual"):
        shutil.copy(reports.NOTEBOOKS / f"{nb}_report.ipynb", books)
    broken = nbformat.read(books / "monthly_report.ipynb", as_version=4)
    broken.cells.insert(2, nbformat.v4.new_code_cell(
        "if period == '2025-01':\n    raise RuntimeError('broken on purpose')"))
    nbformat.write(broken, books / "monthly_report.ipynb")
    out = tmp_path_factory.mktemp("reports-2025Q1")
    return _ehkit("report", "all", "--db", service, "--period", "2025Q1", "--out", out,
                  "--notebooks", books), out


@pytest.fixture(scope="module")
def empty_runs(service, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports-empty")
    return [reports.run("annual", db=service, period="2024", audience="lscb", out_dir=out)]


@pytest.fixture(scope="module")
def monthly_for_board(service, tmp_path_factory):
    """The Head of Service's report run for the Board: lists become counts."""
    out = tmp_path_factory.mktemp("reports-monthly-board")
    return reports.run("monthly", db=service, period="2025-11", audience="board", out_dir=out)


def _written(out: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(out.glob("*.*"))}


def _figures(path: Path) -> dict[str, dict]:
    with path.open(encoding="utf-8") as f:
        return {r["key"]: r for r in csv.DictReader(f)}


EXPECTED_2025Q4 = [f"{stem}.{ext}" for stem in (
    "monthly-2025-10-head_of_service", "monthly-2025-11-head_of_service",
    "monthly-2025-12-head_of_service", "quarterly-2025Q4-board", "quarterly-2025Q4-lscb",
    "annual-2025-lscb") for ext in ("html", "figures.csv")]


def test_report_all_writes_every_report_due_for_the_quarter_and_lists_them(batch):
    proc, out = batch
    assert proc.returncode == 0, proc.stderr
    assert sorted(_written(out)) == sorted(EXPECTED_2025Q4)
    for name in EXPECTED_2025Q4:
        assert str(out / name) in proc.stdout  # the table of files written
    assert "running over TCP without encryption" not in proc.stderr + proc.stdout
    assert not (out / "failed").exists()


def test_report_all_on_its_postgresql_copy_writes_the_same_files(batch, service, pg_server,
                                                                 tmp_path):
    """Issue 18: the same store copied to PostgreSQL gives the same six reports, free text,
    small counts and empty lists included (only the footer's time and papermill's id for the
    cell it injects differ between any two runs)."""
    from ehkit import copying

    url = pg_server.new_database()
    copying.copy(service, url)
    proc = _ehkit("report", "all", "--db", url, "--period", "2025Q4", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr

    def comparable(text: str) -> str:
        text = re.sub(r'id="cell-id=[0-9a-f-]+"', "", text)
        return re.sub(r"Generated by ehkit \S+ on [0-9-]+ [0-9:]+ UTC", "", text)

    on_sqlite, on_pg = _written(batch[1]), _written(tmp_path)
    assert sorted(on_pg) == sorted(on_sqlite) == sorted(EXPECTED_2025Q4)
    for name, text in on_sqlite.items():
        assert comparable(on_pg[name]) == comparable(text), name


def test_due_reports_follow_the_framework():
    assert [(j.kind, j.period, j.audience) for j in reports.due("2026Q3")] == [
        ("monthly", "2026-07", "head_of_service"), ("monthly", "2026-08", "head_of_service"),
        ("monthly", "2026-09", "head_of_service"), ("quarterly", "2026Q3", "board"),
        ("quarterly", "2026Q3", "lscb")]
    assert reports.due("2026Q4")[-1] == reports.Job("annual", "2026", "lscb")
    assert reports.due("2026-11") == [reports.Job("monthly", "2026-11", "head_of_service")]


def test_board_and_lscb_reports_never_name_a_child_or_show_a_dob_or_ehm_number(
        batch, monthly_for_board):
    _, out = batch
    secrets = (CHILDREN + [d.isoformat() for d in DOBS] + [f"{d:%d/%m/%Y}" for d in DOBS]
               + [f"{d:%-d %b %Y}" for d in DOBS] + EHMS + WORKERS
               + ["Mgrname", "Audname", "Xylophorix", "QZEHM"])
    external = {n: t for n, t in _written(out).items() if "-board." in n or "-lscb." in n}
    for path in (monthly_for_board.html, monthly_for_board.figures):
        external[path.name] = path.read_text(encoding="utf-8")
    assert len(external) == 8
    assert "listed in the Head of Service's report only" in external[
        monthly_for_board.html.name]
    for name, text in external.items():
        for s in secrets:
            assert s not in text, f"{s!r} appears in {name}"
    # the Head of Service may see workers and case references: the check above can fail
    internal = (out / "monthly-2025-11-head_of_service.html").read_text(encoding="utf-8")
    assert any(e in internal for e in EHMS) and WORKERS[0] in internal


def _executable(html: str) -> list[str]:
    found = re.findall(r"<script", html, re.I)
    found += re.findall(r"<[a-z][^>]*\son[a-z]+\s*=", html, re.I)
    found += re.findall(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", html, re.I)
    return found


def test_free_text_is_shown_as_text_never_run_in_any_report(batch, broken_batch, empty_runs,
                                                           monthly_for_board):
    _, out = batch
    pages = {n: t for n, t in _written(out).items() if n.endswith(".html")}
    pages[monthly_for_board.html.name] = monthly_for_board.html.read_text(encoding="utf-8")
    pages |= {n: t for n, t in _written(broken_batch[1]).items() if n.endswith(".html")}
    pages |= {r.html.name: r.html.read_text(encoding="utf-8") for r in empty_runs}
    for name, html in pages.items():
        assert _executable(html) == [], name
    # the free text is there, escaped, as text (markdown not turned into a link or bold)
    monthly = pages["monthly-2025-11-head_of_service.html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in monthly
    assert "[x](javascript:alert(4)) **bold**" in monthly
    # learning recorded more than 5 times is a theme, shown with the words of names taken
    # out: a worker's name here holds the payload, so its words are names
    annual = pages["annual-2025-lscb.html"]
    assert "&lt;[name]=x [name]=[name](2)&gt;" in annual


def test_monthly_figures_file_holds_exactly_what_ehkit_metrics_gives(batch, service):
    _, out = batch
    written = _figures(out / "monthly-2025-11-head_of_service.figures.csv")
    d = store.connect(service)
    nov = periods.parse("2025-11")
    expected = (metrics.selection_figures(d, nov) + metrics.selection_grid(d, nov).figures()
                + metrics.grades_grid(d, nov).figures())
    assert expected
    for f in expected:
        value = written[f.key]["value"]
        assert value == ("" if f.value is None else str(f.value)), f.key
    html = (out / "monthly-2025-11-head_of_service.html").read_text(encoding="utf-8")
    assert f"<td class=\"num\">{written['selected']['value']}</td>" in html


def test_lscb_annual_figures_match_metrics_wherever_they_are_not_suppressed(batch, service):
    _, out = batch
    written = _figures(out / "annual-2025-lscb.figures.csv")
    d = store.connect(service)
    year = periods.parse("2025")
    expected = (metrics.episode_figures(d, year) + metrics.volume_grid(d, year).figures()
                + metrics.quality_by_quarter_grid(d, year).figures()
                + metrics.action_completion_grid(d, year).figures())
    shown = 0
    for f in expected:
        value = written[f.key]["value"]
        if value == "c":
            continue
        shown += 1
        assert value == ("" if f.value is None else str(f.value)), f.key
        if f.kind == "count":
            assert not 0 < f.value <= 5, f"{f.key} = {f.value} should be suppressed"
    assert shown > 10


def test_a_failing_notebook_names_its_cell_and_keeps_its_copy_while_the_others_finish(
        broken_batch):
    proc, out = broken_batch
    assert proc.returncode == 1
    assert "1 of 5 report(s) failed" in proc.stderr
    assert "FAILED: monthly_report.ipynb failed in cell" in proc.stdout
    assert "[if period == '2025-01':] (RuntimeError: broken on purpose)" in proc.stdout
    kept = out / "failed" / "monthly-2025-01-head_of_service.ipynb"
    assert "broken on purpose" in json.dumps(nbformat.read(kept, as_version=4).cells)
    assert not (out / "monthly-2025-01-head_of_service.html").exists()
    for stem in ("monthly-2025-02-head_of_service", "monthly-2025-03-head_of_service",
                 "quarterly-2025Q1-board", "quarterly-2025Q1-lscb"):
        assert (out / f"{stem}.html").exists() and (out / f"{stem}.figures.csv").exists()
        assert not (out / "failed" / f"{stem}.ipynb").exists()


def test_every_kind_of_report_renders_an_empty_period(broken_batch, empty_runs):
    _, out = broken_batch
    pages = [out / "monthly-2025-02-head_of_service.html", out / "quarterly-2025Q1-board.html",
             *[r.html for r in empty_runs]]
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "No audits in this period." in html, page.name
        assert "Traceback (most recent call last)" not in html, page.name
        assert 'data-mime-type="application/vnd.jupyter.stderr"' not in html, page.name


def test_report_all_needs_a_period(service, capsys):
    from ehkit.cli import main

    assert main(["report", "all", "--db", str(service)]) == 2
    assert "report all needs --period" in capsys.readouterr().err
