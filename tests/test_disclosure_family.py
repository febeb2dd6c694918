"""Disclosure across the reports an audience receives, and across the tables of one report.

A board reader holds every report of one audience for a period family: the LSCB's quarterly
for 2025Q4 (with its trend of the four quarters before), the LSCB's annual report for 2025
(grades, volumes and outcomes by quarter) and the LSCB quarterlies for 2025Q1 to Q3 still on
file. The test renders them all for real (``ehkit report all`` and ``ehkit report
quarterly``), reads the figures files, and attacks them as a reader would: it names each
figure by what it counts and when (its key in its own quarter's report; a row of the annual
report's by-quarter tables is read from its label), writes down the equations the service's
definitions give (every table's rows and columns add up to its totals; a year is its four
quarters; a percentage shown with its denominator gives its numerator; every audit grades
every section, so a sector's multi-agency total is its audits), and solves them. No
suppressed figure may be worked out, and no figure may be suppressed in one report and
shown in another. The Board's quarterly for 2025Q4 is attacked the same way.

The store is made up (no real people) so that small counts sit beside large ones in every
quarter.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import numpy as np
import pytest

from ehkit import db as store
from ehkit import periods, presentation
from ehkit.cli import main
from ehkit.settings import get as setting

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("disclosure_family")]

SECTIONS = ("pre_eha", "assessment", "planning", "review", "voice_of_child", "multi_agency",
            "impact", "management_oversight")
GRADES = {1: "Outstanding", 2: "Good", 3: "Requires Improvement", 4: "Inadequate"}
# overall grades of the audits in each quarter of 2025: small counts beside large ones
QUARTER_GRADES = {1: {1: 4, 2: 10, 3: 3, 4: 15}, 2: {1: 4, 2: 12, 3: 9, 4: 3},
                  3: {1: 2, 2: 20, 3: 10, 4: 6}, 4: {1: 8, 2: 11, 3: 7, 4: 9}}
SECTORS = setting("agencies", "sectors")


def build(path: Path | str) -> None:
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


def _ehkit(*args) -> int:
    """``ehkit ARGS`` in this process; its exit code."""
    return main([str(a) for a in args])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request, tmp_path_factory):
    """The 2025 service in a SQLite file and in a PostgreSQL database (issue 18)."""
    if request.param == "sqlite":
        where = tmp_path_factory.mktemp("family") / "ehkit.db"
    else:
        where = request.getfixturevalue("pg_server").new_database()
    build(where)
    return where


@pytest.fixture(scope="module")
def family(service, tmp_path_factory):
    """Every LSCB report of the 2025 family, rendered: {report period: figures file}."""
    out = tmp_path_factory.mktemp("reports")
    done = _ehkit("report", "all", "--db", service, "--period", "2025Q4", "--out", out,
                  "--jobs", "2")
    assert done == 0
    for q in ("2025Q1", "2025Q2", "2025Q3"):  # earlier quarterlies still on file
        done = _ehkit("report", "quarterly", "--db", service, "--period", q,
                      "--audience", "lscb", "--out", out)
        assert done == 0
    files = {"2025": out / "annual-2025-lscb.figures.csv"}
    files |= {q: out / f"quarterly-{q}-lscb.figures.csv" for q in
              ("2025Q1", "2025Q2", "2025Q3", "2025Q4")}
    return files, out


# -- what a figure counts: its key in the quarterly report of its own period -------------------
GRADE_KEYS = [str(g) for g in GRADES]
ENDED = dict(setting("episodes", "ended_as"))
# A row of the annual report's by-quarter tables ("2025Q1: Good") is the quarter's own figure,
# named here from its label (the same in every version of the report).
QUARTER_ROW = {**{label: f"grades.overall.{g}" for g, label in GRADES.items()},
               "Total": "grades.overall.total", "% acceptable": "acceptable_pct",
               "Begun": "began_in_period", "Closed": "closed_in_period",
               "% outcomes achieved": "successful_pct",
               **{label: f"referral.total.{e}" for e, label in ENDED.items()}}


def _meaning(key: str, label: str, period: str) -> tuple[str, str]:
    """(what is counted, the period it counts) for a row of a figures file."""
    if key.startswith("action_completion."):  # due in a quarter, done by the year's end
        return key, period
    row = re.fullmatch(r"(\d{4}Q\d): (.*)", label)
    if row and row[2] in QUARTER_ROW:
        return QUARTER_ROW[row[2]], row[1]
    if "@" in key:  # a trend column
        what, when = key.split("@")
        return what, when
    total = re.fullmatch(r"Total: (.*)", label)  # the year's closed by how they ended
    if total and total[1] in ENDED.values() and re.fullmatch(r"\d{4}", period):
        return QUARTER_ROW[total[1]], period
    return key, period


def _read(files: dict[str, Path]) -> dict[tuple[str, str], dict[str, str]]:
    """{(what, when): {report: value as shown}} over every report of the family."""
    shown: dict[tuple[str, str], dict[str, str]] = {}
    for period, path in files.items():
        with path.open(encoding="utf-8") as f:
            for r in csv.DictReader(f):
                seen = shown.setdefault(_meaning(r["key"], r["label"], period), {})
                assert path.name not in seen, f"two figures of {path.name} read as one: {r}"
                seen[path.name] = r["value"]
    return shown


def _equations(shown: dict) -> list[dict[tuple[str, str], float]]:
    """The definitions, as equations {figure: coefficient} = 0 (a constant is ("1", ""))."""
    quarters = ["2025Q1", "2025Q2", "2025Q3", "2025Q4"]
    keys = {k for k, _ in shown}
    eqs: list[dict] = []

    def adds_up(parts, whole, p):
        eqs.append({**{(x, p): 1 for x in parts}, (whole, p): -1})

    def share(pct, parts, den, p):
        """A share shown with its denominator gives its numerator."""
        values = {v for v in shown.get((pct, p), {}).values() if v not in ("c", "")}
        total = {v for v in shown.get((den, p), {}).values() if v not in ("c", "")}
        if values and total:
            d, value = int(total.pop()), float(values.pop())
            n = [k for k in range(d + 1) if round(100 * k / d, 1) == value]
            assert len(n) == 1
            eqs.append({**{(x, p): 1 for x in parts}, ("1", ""): -n[0]})

    named = {part: sorted({k.split(".")[1] for k in keys if re.fullmatch(pattern, k)})
             for part, pattern in (("sector", r"participation\.[a-z_]+\.audited"),
                                   ("reason", r"referral\.[a-z_]+\.began_in_period"),
                                   # closed episodes: small reasons grouped (Other reasons)
                                   ("closed_reason", r"referral\.[a-z_]+\.successful_pct"),
                                   ("section", r"grades\.[a-z_]+\.total"),
                                   ("theme", r"concerns\.[a-z_]+"))}
    sectors, reasons, sections = named["sector"], named["reason"], named["section"]
    for p in [*quarters, "2025"]:
        for sec in sections:  # grades by section: every audit grades every section
            adds_up([f"grades.{sec}.{g}" for g in GRADE_KEYS], f"grades.{sec}.total", p)
            eqs.append({(f"grades.{sec}.total", p): 1, ("audits_completed", p): -1})
            share(f"grades.{sec}.acceptable_pct", [f"grades.{sec}.{g}" for g in "12"],
                  f"grades.{sec}.total", p)
        share("acceptable_pct", ["grades.overall.1", "grades.overall.2"],
              "grades.overall.total", p)
        share("unacceptable_pct", ["grades.overall.3", "grades.overall.4"],
              "grades.overall.total", p)
        adds_up([f"referral.total.{e}" for e in ENDED], "closed_in_period", p)
        share("successful_pct", ["referral.total.outcomes_achieved"], "closed_in_period", p)
        share("stepped_up_pct", ["referral.total.stepped_up"], "closed_in_period", p)
        for col in ("open_at_end", "closed_in_period"):  # by lead agency sector
            adds_up([f"{col}.{s}" for s in sectors], col, p)
        for col in ("began_in_period", "open_at_end"):  # by referral reason
            adds_up([f"referral.{r}.{col}" for r in reasons if r != "total"], col, p)
        closed_reasons = [r for r in named["closed_reason"] if r != "total"]
        for r in closed_reasons:  # closed by referral reason and how they ended
            adds_up([f"referral.{r}.{e}" for e in ENDED], f"referral.{r}.total", p)
            share(f"referral.{r}.successful_pct", [f"referral.{r}.outcomes_achieved"],
                  f"referral.{r}.total", p)
        for e in [*ENDED, "total"]:
            adds_up([f"referral.{r}.{e}" for r in closed_reasons],
                    "closed_in_period" if e == "total" else f"referral.total.{e}", p)
        for s in sectors:  # multi-agency working by sector: its total is the sector's audits
            adds_up([f"multi_agency.{s}.{g}" for g in GRADE_KEYS], f"multi_agency.{s}.total", p)
            eqs.append({(f"multi_agency.{s}.total", p): 1, (f"participation.{s}.audited", p): -1})
            share(f"multi_agency.{s}.acceptable_pct", [f"multi_agency.{s}.{g}" for g in "12"],
                  f"multi_agency.{s}.total", p)
        for g in [*GRADE_KEYS, "total"]:
            adds_up([f"multi_agency.{s}.{g}" for s in sectors], f"grades.multi_agency.{g}", p)
        adds_up([f"participation.{s}.audited" for s in sectors], "audits_completed", p)
        adds_up([f"concerns.{t}" for t in named["theme"]], "concerns_raised", p)
    for what in [*(f"grades.overall.{g}" for g in [*GRADE_KEYS, "total"]), "began_in_period",
                 "closed_in_period", *(f"referral.total.{e}" for e in ENDED)]:
        eqs.append({**{(what, q): 1 for q in quarters}, (what, "2025"): -1})  # a year is its quarters
    return [eq for eq in eqs if len(eq) > 1]


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


def test_no_suppressed_cell_can_be_worked_out_from_the_board_quarterly(family):
    _, out = family
    shown = _read({"2025Q4": out / "quarterly-2025Q4-board.figures.csv"})
    assert sum("c" in seen.values() for seen in shown.values()) > 20
    assert not _worked_out(shown)


def test_the_attack_works_out_a_figure_left_unprotected():
    """The attack itself can fail: a grade suppressed alone in its row is worked out."""
    shown = {(f"grades.overall.{g}", "2025Q1"): {"r": v} for g, v in zip(
        [*GRADE_KEYS, "total"], ["c", "10", "8", "15", "36"], strict=True)}
    assert _worked_out(shown) == {("grades.overall.1", "2025Q1"): 3.0}


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
    pairs = [((f"multi_agency.{s}.total", quarter), (f"participation.{s}.audited", quarter))
             for s in ("health", "education", "voluntary", "local_authority", "police",
                       "housing", "other")]
    pairs += [((f"grades.{sec}.total", quarter), ("grades.overall.total", quarter))
              for sec in SECTIONS]
    checked = 0
    for a, b in pairs:
        if a in shown and b in shown:
            checked += 1
            assert ("c" in shown[a].values()) == ("c" in shown[b].values()), (a, b)
    assert checked
