"""Figures for a period: pure functions of (database, period), computed in SQL.

Each figure is a :class:`Figure` with a stable ``key`` (used in figures files), a label in
the service's words, and, for percentages, the numerator and denominator (so disclosure
control can suppress a percentage whose counts are suppressed). A percentage with a zero
denominator has ``value`` None: "not applicable", never an error or 0%.

Definitions (also in the README and shown in the reports):
- open at period end: began on or before the end, and not ended on or before the end;
- closed in period: ended within the period (inclusive);
- % successful outcomes: closed in period with "outcomes achieved" / closed in period;
- % stepped up: closed in period "stepped up to children's social care" / closed in period;
- % stepped down: began in period as "step-down from children's social care" / began in period;
- audits in period: submitted or moderated audits whose audit date is in the period;
- % acceptable quality: those audits with overall grade Outstanding or Good / all of them;
  % unacceptable: Requires Improvement or Inadequate. The grade that counts is the
  moderator's where the audit was moderated (view ``final_grades``).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from . import template as templates
from .periods import Period
from .settings import get as setting

COMPLETED = "('submitted', 'moderated')"  # audit statuses that count in figures

DEFINITIONS = {
    "open_at_end": "Began on or before the last day of the period and had not ended by then.",
    "closed_in_period": "Ended on a day within the period (first and last days included).",
    "successful_pct": "Closed in the period with outcomes achieved, as a share of all closed "
                      "in the period.",
    "stepped_up_pct": "Closed in the period by stepping up to children's social care, as a share "
                      "of all closed in the period.",
    "stepped_down_pct": "Began in the period as a step-down from children's social care, as a "
                        "share of all that began in the period.",
    "acceptable_pct": "Audits submitted or moderated with an audit date in the period, graded "
                      "Outstanding or Good overall (the moderated grade where moderated), as a "
                      "share of all such audits; unacceptable: Requires Improvement or Inadequate.",
    "not_applicable": "n/a: a percentage of nothing (no cases in its denominator).",
}


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    value: float | int | None
    kind: str = "count"  # count | percent | days
    numerator: int | None = None
    denominator: int | None = None

    @property
    def display(self) -> str:
        if self.value is None:
            return "n/a"
        if self.kind == "percent":
            return f"{self.value:.1f}%"
        if self.kind == "days":
            return f"{self.value:,.0f}"
        return f"{self.value:,}"


def count(key: str, label: str, n: int) -> Figure:
    return Figure(key, label, int(n or 0))


def percent(key: str, label: str, numerator: int, denominator: int) -> Figure:
    numerator, denominator = int(numerator or 0), int(denominator or 0)
    value = round(100 * numerator / denominator, 1) if denominator else None
    return Figure(key, label, value, "percent", numerator, denominator)


def _one(db: sqlite_utils.Database, sql: str, params: dict) -> tuple:
    return db.execute(sql, params).fetchone()


def _params(period: Period) -> dict:
    return {"start": period.start.isoformat(), "end": period.end.isoformat()}


# -- episodes ---------------------------------------------------------------------------
def episode_figures(db: sqlite_utils.Database, period: Period) -> list[Figure]:
    """Open, closed, outcomes, step-up and step-down figures for the period."""
    p = _params(period)
    open_at_end, = _one(db, """
        SELECT count(*) FROM episodes
        WHERE start_date <= :end AND (end_date IS NULL OR end_date > :end)""", p)
    closed, successful, stepped_up = _one(db, """
        SELECT count(*), coalesce(sum(ended_as = 'outcomes_achieved'), 0),
               coalesce(sum(ended_as = 'stepped_up'), 0)
        FROM episodes WHERE end_date BETWEEN :start AND :end""", p)
    began, stepped_down = _one(db, """
        SELECT count(*), coalesce(sum(began_as = 'step_down'), 0)
        FROM episodes WHERE start_date BETWEEN :start AND :end""", p)
    return [
        count("open_at_end", "Open early help assessments at period end", open_at_end),
        count("closed_in_period", "Early help assessments closed in period", closed),
        count("began_in_period", "Early help assessments begun in period", began),
        percent("successful_pct", "% of plans with successful outcomes", successful, closed),
        percent("stepped_up_pct", "% of plans stepped up to children's social care",
                stepped_up, closed),
        percent("stepped_down_pct", "% of plans stepped down from children's social care",
                stepped_down, began),
    ]


def by_sector(db: sqlite_utils.Database, period: Period) -> list[Figure]:
    """Open at period end and closed in period, by the lead agency's sector (every sector)."""
    p = _params(period)
    rows = {r[0]: r[1:] for r in db.execute("""
        SELECT a.sector,
               coalesce(sum(e.start_date <= :end AND (e.end_date IS NULL OR e.end_date > :end)), 0),
               coalesce(sum(e.end_date BETWEEN :start AND :end), 0)
        FROM episodes e JOIN agencies a ON a.id = e.lead_agency_id
        WHERE e.start_date <= :end AND (e.end_date IS NULL OR e.end_date >= :start)
        GROUP BY a.sector""", p)}
    out = []
    for sector in setting("agencies", "sectors"):
        open_n, closed_n = rows.get(sector, (0, 0))
        slug = sector.lower().replace(" ", "_")
        out.append(count(f"open_at_end.{slug}", f"Open at period end: {sector}", open_n))
        out.append(count(f"closed_in_period.{slug}", f"Closed in period: {sector}", closed_n))
    return out


# -- audit quality ----------------------------------------------------------------------
def quality_figures(db: sqlite_utils.Database, period: Period,
                    template: str = templates.DEFAULT_TEMPLATE) -> list[Figure]:
    """Audits in the period and the share judged acceptable / unacceptable in quality."""
    tpl = templates.load(template)
    acceptable = ",".join(str(g) for g in tpl.acceptable)
    total, good, graded = _one(db, f"""
        SELECT count(*), coalesce(sum(f.grade IN ({acceptable})), 0),
               coalesce(sum(f.grade IS NOT NULL), 0)
        FROM audits a JOIN final_grades f ON f.audit_id = a.id AND f.key = 'overall'
        WHERE a.status IN {COMPLETED} AND a.audit_date BETWEEN :start AND :end""",
        _params(period))
    return [
        count("audits_completed", "Audits completed in period", total),
        percent("acceptable_pct", "% of plans judged acceptable in quality", good, graded),
        percent("unacceptable_pct", "% of plans judged unacceptable in quality",
                graded - good, graded),
    ]


def grade_distribution(db: sqlite_utils.Database, period: Period,
                       template: str = templates.DEFAULT_TEMPLATE) -> list[Figure]:
    """How many audits in the period got each grade, for each graded section and overall
    (audits made with this template only: another tool's sections are not these)."""
    tpl = templates.load(template)
    rows = {(k, g): n for k, g, n in db.execute(f"""
        SELECT f.key, f.grade, count(*)
        FROM audits a JOIN final_grades f ON f.audit_id = a.id
        WHERE a.status IN {COMPLETED} AND a.audit_date BETWEEN :start AND :end
          AND f.grade IS NOT NULL AND a.template = :template
        GROUP BY f.key, f.grade""", {**_params(period), "template": tpl.key})}
    out = []
    sections = [(s.key, s.label) for s in tpl.graded_sections]
    for key, title in [*sections, (templates.OVERALL, "Overall grading")]:
        for g in tpl.grades:
            out.append(count(f"grades.{key}.{g.value}", f"{title}: {g.label}", rows.get((key, g.value), 0)))
    return out


def partnership(db: sqlite_utils.Database, period: Period) -> list[Figure]:
    """The safeguarding partnership's quarterly figures (framework: reports to the LSCB)."""
    return episode_figures(db, period) + quality_figures(db, period)


def data_span(db: sqlite_utils.Database) -> tuple[str | None, str | None]:
    """The first and the latest date in the data (episode starts and ends, audits)."""
    return db.execute("""
        SELECT min(lo), max(hi) FROM (
            SELECT min(start_date) AS lo, max(max(start_date), coalesce(max(end_date), ''))
                   AS hi FROM episodes
            UNION ALL SELECT min(audit_date), max(audit_date) FROM audits)""").fetchone()
