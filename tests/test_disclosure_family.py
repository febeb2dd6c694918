"""Disclosure across the reports an audience receives, and across the tables of one report.

A board reader holds every report of one audience for a period family: the LSCB's quarterly
for 2025Q4 (with its trend of the four quarters before), the LSCB's annual report for 2025
(grades, volumes and outcomes by quarter) and the LSCB quarterlies for 2025Q1 to Q3 still on
file. The test renders them all for real (``ehkit report all`` and ``ehkit report
quarterly``), reads the figures files, and attacks them as a reader would: it names each
figure by what it counts and when (from its label), writes down the equations the service's
definitions give (a row of grades adds up to the audits graded; a year is its four
quarters; a percentage shown with its denominator gives its numerator; every audit grades
every section, so a sector's multi-agency total is its audits), and solves them. No
suppressed figure may be worked out, and no figure may be suppressed in one report and
shown in another.

The store is made up (no real people) so that small counts sit beside large ones in every
quarter.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ehkit import db as store
from ehkit import periods, presentation
from ehkit.settings import get as setting

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("disclosure_family")]

SECTIONS = ("pre_eha", "assessment", "planning", "review", "voice_of_child", "multi_agency",
            "impact", "management_oversight")
GRADES = {1: "Outstanding", 2: "Good", 3: "Requires Improvement", 4: "Inadequate"}
# overall grades of the audits in each quarter of 2025: small counts beside large ones
QUARTER_GRADES = {1: {1: 4, 2: 10, 3: 3, 4: 15}, 2: {1: 4, 2: 12, 3: 9, 4: 3},
                  3: {1: 2, 2: 20, 3: 10, 4: 6}, 4: {1: 8, 2: 11, 3: 7, 4: 9}}
SECTORS = setting("agencies", "sectors")


def build(path: Path) -> None:
    database = store.connect(path)
    with store.acting_as(actor="test setup"), store.transaction(database):
        database["agencies"].insert_all([
            {"id": i + 1, "name": f"Agency {s}", "kind": "partner", "sector": s}
            for i, s in enumerate(SECTORS)])
        database["practitioners"].insert_all([
            {"id": 1, "name": "Wkrname Testerly", "agency_id": 4, "team": "North",
             "is_auditor": 0},
            {"id": 2, "name": "Audname Checkwell", "agency_id": 1, "team": "QA", "is_auditor": 1}])
        ended = list(setting("episodes", "ended_as"))
        episodes = []
        for i in range(160):
            start = dt.date(2024, 1, 3) + dt.timedelta(days=4 * i)
            end = start + dt.timedelta(days=90 + 11 * (i % 7)) if i % 4 else None
            episodes.append({
                "id": i + 1, "ehm_number": f"TSTEHM{i:04d}", "start_date": start.isoformat(),
                "end_date": end and end.isoformat(), "status": "closed" if end else "open",
                "ended_as": ended[(i * 5) % 11 % len(ended)] if end else None,
                # Health leads every third case, the other sectors the rest in turn
                "lead_agency_id": 1 if i % 3 == 0 else 2 + i % (len(SECTORS) - 1),
                "lead_professional_id": 1, "began_as": "new_request",
                "referral_reason": "Parenting support",
                "first_review_date": (start + dt.timedelta(days=30)).isoformat()})
        database["episodes"].insert_all(episodes)
        audits, answers, n = [], [], 0
        for quarter, counts in QUARTER_GRADES.items():
            grades = [g for g, k in counts.items() for _ in range(k)]
            for j, grade in enumerate(grades):
                n += 1
                day = dt.date(2025, 3 * quarter - 2, 1) + dt.timedelta(days=(j * 2) % 88)
                audits.append({"id": n, "episode_id": 1 + (n * 7) % 160, "template": "darlington",
                               "auditor1_id": 2, "audit_date": day.isoformat(),
                               "status": "submitted", "overall_grade": grade,
                               "submitted_at": f"{day}T12:00:00Z"})
                for s in SECTIONS:  # every section graded; multi-agency working varies more
                    answers.append({"audit_id": n, "key": s,
                                    "grade": 1 + (n + j) % 4 if s == "multi_agency" else grade})
        database["audits"].insert_all(audits)
        database["answers"].insert_all(answers)
    database.close()


def _ehkit(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ehkit.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    path = tmp_path_factory.mktemp("family") / "ehkit.db"
    build(path)
    return path


@pytest.fixture(scope="module")
def family(service, tmp_path_factory):
    """Every LSCB report of the 2025 family, rendered: {report period: figures file}."""
    out = tmp_path_factory.mktemp("reports")
    done = _ehkit("report", "all", "--db", service, "--period", "2025Q4", "--out", out,
                  "--jobs", "2")
    assert done.returncode == 0, done.stderr
    for q in ("2025Q1", "2025Q2", "2025Q3"):  # earlier quarterlies still on file
        done = _ehkit("report", "quarterly", "--db", service, "--period", q,
                      "--audience", "lscb", "--out", out)
        assert done.returncode == 0, done.stderr
    files = {"2025": out / "annual-2025-lscb.figures.csv"}
    files |= {q: out / f"quarterly-{q}-lscb.figures.csv" for q in
              ("2025Q1", "2025Q2", "2025Q3", "2025Q4")}
    return files, out


# -- what a figure counts, named from its label ------------------------------------------------
OVERALL = [f"Overall grading: {g}" for g in GRADES.values()] + ["Overall grading: Total"]
ENDED = dict(setting("episodes", "ended_as"))
# a row of the annual report's by-quarter tables ("2025Q1: Good") is the quarter's own figure
QUARTER_ROW = {**{g: f"Overall grading: {g}" for g in GRADES.values()},
               "Total": "Overall grading: Total",
               "% acceptable": "% of plans judged acceptable in quality",
               "Begun": "Early help assessments begun in period",
               "Closed": "Early help assessments closed in period",
               "% outcomes achieved": "% of plans with successful outcomes",
               **{label: f"Total: {label}" for label in ENDED.values()}}
SHARES = [  # (percentage, the figures adding up to its numerator, its denominator)
    ("% of plans judged acceptable in quality", OVERALL[:2], "Overall grading: Total"),
    ("% of plans judged unacceptable in quality", OVERALL[2:4], "Overall grading: Total"),
    ("% of plans with successful outcomes", ["Total: Outcomes achieved"],
     "Early help assessments closed in period"),
    ("% of plans stepped up to children's social care",
     ["Total: Stepped up to children's social care"], "Early help assessments closed in period"),
]


def _meaning(key: str, label: str, period: str) -> tuple[str, str]:
    """(what is counted, the period it counts) for a row of a figures file."""
    if key.startswith("action_completion."):  # due in a quarter, done by the year's end
        return label, period
    trend = re.fullmatch(r"(.*) \((\d{4}Q\d)\)", label)
    if trend:
        return trend[1], trend[2]
    row = re.fullmatch(r"(\d{4}Q\d): (.*)", label)
    if row and row[2] in QUARTER_ROW:
        return QUARTER_ROW[row[2]], row[1]
    return label, period


def _read(files: dict[str, Path]) -> dict[tuple[str, str], dict[str, str]]:
    """{(what, when): {report: value as shown}} over every report of the family."""
    shown: dict[tuple[str, str], dict[str, str]] = {}
    for period, path in files.items():
        with path.open(encoding="utf-8") as f:
            for r in csv.DictReader(f):
                shown.setdefault(_meaning(r["key"], r["label"], period), {})[path.name] = r["value"]
    return shown


def _equations(shown: dict) -> list[dict[tuple[str, str], float]]:
    """The definitions, as equations {figure: coefficient} = 0 (constants as ("1", ""))."""
    quarters = ["2025Q1", "2025Q2", "2025Q3", "2025Q4"]
    eqs = []
    for p in [*quarters, "2025"]:
        eqs.append({**{(g, p): 1 for g in OVERALL[:4]}, (OVERALL[4], p): -1})
        eqs.append({(OVERALL[4], p): 1, ("Audits completed in period", p): -1})
        eqs.append({**{(f"Total: {e}", p): 1 for e in ENDED.values()},
                    ("Early help assessments closed in period", p): -1})
        for pct, parts, den in SHARES:
            values = {v for v in shown.get((pct, p), {}).values() if v not in ("c", "")}
            total = {v for v in shown.get((den, p), {}).values() if v not in ("c", "")}
            if values and total:  # a share shown with its denominator gives its numerator
                d, share = int(total.pop()), float(values.pop())
                n = [k for k in range(d + 1) if round(100 * k / d, 1) == share]
                assert len(n) == 1
                eqs.append({**{(x, p): 1 for x in parts}, ("1", ""): -n[0]})
        sectors = [s for s in SECTORS if (f"{s}: Total", p) in shown]
        for s in sectors:  # multi-agency grades by sector; every audit grades every section
            eqs.append({**{(f"{s}: {g}", p): 1 for g in GRADES.values()}, (f"{s}: Total", p): -1})
            eqs.append({(f"{s}: Total", p): 1, (f"{s}: Cases audited", p): -1})
        if sectors:
            for g in [*GRADES.values(), "Total"]:
                eqs.append({**{(f"{s}: {g}", p): 1 for s in sectors},
                            (f"Multi-agency working: {g}", p): -1})
            eqs.append({**{(f"{s}: Cases audited", p): 1 for s in sectors},
                        ("Audits completed in period", p): -1})
    for what in [*OVERALL, "Early help assessments begun in period",
                 "Early help assessments closed in period",
                 *(f"Total: {e}" for e in ENDED.values())]:
        eqs.append({**{(what, q): 1 for q in quarters}, (what, "2025"): -1})
    return eqs


def _worked_out(shown: dict) -> dict[tuple[str, str], float]:
    """Every suppressed figure the equations pin down, with the value they give it."""
    known = {k: float(v) for k, seen in shown.items() for v in seen.values()
             if v not in ("c", "")}
    known[("1", "")] = 1.0
    eqs = _equations(shown)
    unknown = sorted({k for eq in eqs for k in eq if k not in known})
    index = {k: i for i, k in enumerate(unknown)}
    a = np.zeros((len(eqs), len(unknown)))
    b = np.zeros(len(eqs))
    for row, eq in enumerate(eqs):
        for k, coef in eq.items():
            if k in index:
                a[row, index[k]] += coef
            else:
                b[row] -= coef * known[k]
    solution = np.linalg.lstsq(a, b, rcond=None)[0]
    free = np.linalg.svd(a)[2][np.linalg.matrix_rank(a):]  # directions the equations allow
    suppressed = {k for k, seen in shown.items() if "c" in seen.values()}
    return {k: round(solution[index[k]], 3) for k in suppressed & set(index)
            if np.allclose(free[:, index[k]], 0, atol=1e-9)}


def test_a_figure_is_suppressed_in_every_report_of_the_audience_or_in_none(family):
    shown = _read(family[0])
    both = {k: seen for k, seen in shown.items()
            if "c" in seen.values() and any(v != "c" for v in seen.values())}
    assert not both, f"suppressed in one report, shown in another: {both}"


def test_no_suppressed_cell_can_be_worked_out_from_the_reports_of_the_audience(family):
    shown = _read(family[0])
    assert sum("c" in seen.values() for seen in shown.values()) > 20  # the attack has work
    recovered = _worked_out(shown)
    assert not recovered, f"suppressed figures worked out: {recovered}"


def test_the_attack_works_out_a_figure_left_unprotected():
    """The attack itself can fail: a grade suppressed alone in its row is worked out."""
    shown = {(g, "2025Q1"): {"r": v} for g, v in zip(OVERALL, ["c", "10", "8", "15", "36"],
                                                     strict=True)}
    assert _worked_out(shown) == {("Overall grading: Outstanding", "2025Q1"): 3.0}


def test_a_quarter_is_decided_once_for_its_quarterly_the_next_trends_and_the_annual(service):
    database = store.connect(service)
    q2 = periods.parse("2025Q2")
    own = presentation.decisions(database, "quarterly", q2, "darlington", 5)
    later = presentation.decisions(database, "quarterly", periods.parse("2025Q4"), "darlington", 5)
    annual = presentation.decisions(database, "annual", periods.parse("2025"), "darlington", 5)
    assert any(own.values()) and not all(own.values())
    for key, hidden in own.items():
        for other in (later, annual):
            if f"{key}@2025Q2" in other:
                assert other[f"{key}@2025Q2"] == hidden, key
    assert presentation.decisions(database, "quarterly", q2, "darlington", 5) == own


@pytest.mark.parametrize("quarter", ["2025Q3", "2025Q4"])
def test_figures_equal_by_definition_share_one_suppression_decision(family, quarter):
    """A sector's multi-agency total is its audits (every audit grades every section); a
    section's total is the audits graded: each pair is suppressed together or shown together."""
    shown = _read(family[0])
    pairs = [((f"{s}: Total", quarter), (f"{s}: Cases audited", quarter)) for s in SECTORS]
    pairs += [((f"{label}: Total", quarter), ("Overall grading: Total", quarter)) for label in
              ("Multi-agency working",)]
    checked = 0
    for a, b in pairs:
        if a in shown and b in shown:
            checked += 1
            assert ("c" in shown[a].values()) == ("c" in shown[b].values()), (a, b)
    assert checked
