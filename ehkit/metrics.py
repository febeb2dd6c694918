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
  moderator's where the audit was moderated (views ``final_overall``,
  ``final_section_grades`` and the two together, ``final_grades``).
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import weakref
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

import sqlite_utils

from . import actions, after_audit, agreement, dates, periods, redact, sampling, service_user_feedback
from . import db as store
from . import template as templates
from .periods import Period
from .settings import get as setting

# Shares that add up to 100%: each gives the other away, so both are suppressed together.
COMPLEMENTARY = {"acceptable_pct", "unacceptable_pct", "grades.overall.acceptable_pct",
                 "grades.overall.unacceptable_pct"}

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
    # monthly
    "selection": "The month's audit list (ehkit sample), as at the last day of the month: "
                 "completed when an audit of the case dated in the month or after was submitted "
                 "by then; late when submitted after its due date (two weeks after selection); "
                 "overdue when not submitted and past its due date at the end of the month. "
                 "Audits submitted after the month end are counted apart, so the report reads "
                 "the same whenever it is run.",
    "poor_audits": "Audits submitted or moderated in the period graded Requires Improvement or "
                   "Inadequate overall, with each recommended action's state at the period end.",
    "actions_overdue": "Recommended actions of any month not completed and due before the "
                       "last day of the period.",
    "meetings_to_hold": "Audits dated on or before the period end with no feedback discussion "
                        "held with the worker by then; and, for Requires Improvement or "
                        "Inadequate audits, no 1-1 meeting with the Early Help Coordinator.",
    "drift": "Cases listed for audit because they were drifting at the month end: open longer "
             "than the drift setting, or no review within the review setting.",
    # quarterly
    "referral_reason": "Episodes by the referral reason recorded on them: begun in the period, "
                       "open at its end, and closed in it by how they ended.",
    "days_to_first_review": "Median days from the episode's start to its first review, for "
                            "first reviews held in the period.",
    "closed_length_days": "Median days from start to end of the episodes closed in the period.",
    "audits_on_time_pct": "Cases on the audit lists of the period's months whose audit was "
                          "submitted by its due date, as a share of all cases listed.",
    "concerns": "Concerns raised in service-user feedback given in the period, by theme.",
    "multi_agency": "The multi-agency working grade of audits in the period, by the sector of "
                    "the episode's lead agency.",
    "participation": "Audits in the period of cases led by each sector; audits with an auditor "
                     "from the sector; feedback discussions with an attendee from the sector.",
    "moderation": "Moderations dated in the 12 months to the period's end (a quarter has too "
                  "few to show): pairs of auditor's and moderator's grades "
                  "per section; exact agreement is the share of pairs with the same grade; "
                  "weighted kappa (linear weights) is agreement beyond chance (1 perfect, 0 "
                  "chance).",
    "trend": "Each headline figure beside the four quarters before it.",
    # annual
    "learning_themes": "Audit sections most often graded Requires Improvement or Inadequate "
                       "in the year; learning and recommended actions most often recorded "
                       "(the same words, ignoring case and spacing).",
    "action_completion": "Recommended actions due in each quarter and what had become of them "
                         "by the end of the year: completed on or before the due date, "
                         "completed after it, or not completed.",
}


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    value: float | int | None
    kind: str = "count"  # count | percent | days | ratio
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
        if self.kind == "ratio":
            return f"{self.value:.2f}"
        return f"{self.value:,}"


def count(key: str, label: str, n: int) -> Figure:
    return Figure(key, label, int(n or 0))


def percent(key: str, label: str, numerator: int, denominator: int) -> Figure:
    numerator, denominator = int(numerator or 0), int(denominator or 0)
    value = round(100 * numerator / denominator, 1) if denominator else None
    return Figure(key, label, value, "percent", numerator, denominator)


def days(key: str, label: str, counts: Sequence[tuple[int, int]]) -> Figure:
    """The median of day counts given as (days, cases) pairs, fewest days first (SQLite groups
    them: a few hundred pairs, not a row per case); ``denominator`` is how many cases."""
    if not counts:
        return Figure(key, label, None, "days", None, 0)
    values, cases = zip(*counts, strict=True)
    upto = list(accumulate(cases))  # upto[j]: cases with values[j] days or fewer

    def at(i: int) -> int:  # the i-th case's days, counting from 0 in order
        return values[bisect_right(upto, i)]

    n = upto[-1]
    return Figure(key, label, round((at((n - 1) // 2) + at(n // 2)) / 2, 1), "days", None, n)


@functools.lru_cache(maxsize=4096)
def slug(text: str) -> str:
    """A key made from a name: the grids ask again for each row of their grouped counts,
    the same few sector and reason names thousands of times a report (so kept)."""
    return "".join(ch if ch.isalnum() else "_" for ch in text.lower()).strip("_")


@dataclass(frozen=True)
class PercentColumn:
    """A percentage column of a grid: the sum of ``numerator`` columns over ``denominator``
    (a column key, or ``TOTAL`` for the row's total)."""
    key: str
    label: str
    numerator: tuple[str, ...]
    denominator: str


TOTAL = "total"


@dataclass(frozen=True)
class Grid:
    """A table of counts: rows x columns, with the totals it shows.

    ``row_totals``: a Total column (each row's sum); ``col_totals``: a Total row. Cell keys
    follow ``key_format`` (``{grid}``, ``{row}``, ``{col}``); ``total_keys`` renames totals
    that are the same figure as one shown elsewhere (e.g. the Total row of open episodes by
    sector is ``open_at_end``), so disclosure control treats them as one.
    """
    key: str
    title: str
    rows: tuple[tuple[str, str], ...]
    cols: tuple[tuple[str, str], ...]
    counts: Mapping[tuple[str, str], int]
    row_totals: bool = True
    col_totals: bool = True
    corner: str = ""
    key_format: str = "{grid}.{row}.{col}"
    label_format: str = "{row}: {col}"
    total_keys: Mapping[tuple[str, str], str | tuple[str, str]] = field(default_factory=dict)
    percents: tuple[PercentColumn, ...] = ()
    percent_keys: Mapping[tuple[str, str], str | tuple[str, str]] = field(default_factory=dict)
    # cells that are the numerator of a headline percentage shown elsewhere (by its key)
    numerator_of: Mapping[tuple[str, str], str] = field(default_factory=dict)
    # cells equal by definition to a figure shown elsewhere (by its key) whenever their values
    # agree: every audit grades every section, so a section's total is the audits counted
    same_as: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def value(self, row: str, col: str) -> int:
        rows = [r for r, _ in self.rows] if row == TOTAL else [row]
        cols = [c for c, _ in self.cols] if col == TOTAL else [col]
        return sum(int(self.counts.get((r, c), 0) or 0) for r in rows for c in cols)

    def _label(self, key: str, pairs) -> str:
        return "Total" if key == TOTAL else dict(pairs)[key]

    def _named(self, names: Mapping, row: str, col: str, col_label: str) -> tuple[str, str]:
        """(key, label): as renamed (a key, or a (key, label) pair), else from the formats."""
        named = names.get((row, col))
        if isinstance(named, tuple):
            return named
        label = self.label_format.format(row=self._label(row, self.rows), col=col_label)
        return named or self.key_format.format(grid=self.key, row=row, col=col), label

    def figure(self, row: str, col: str) -> Figure:
        key, label = self._named(self.total_keys, row, col, self._label(col, self.cols))
        return count(key, label, self.value(row, col))

    def percent_figure(self, row: str, pc: PercentColumn) -> Figure:
        num = sum(self.value(row, c) for c in pc.numerator)
        key, label = self._named(self.percent_keys, row, pc.key, pc.label)
        return percent(key, label, num, self.value(row, pc.denominator))

    @property
    def row_keys(self) -> list[str]:
        return [r for r, _ in self.rows] + ([TOTAL] if self.col_totals else [])

    @property
    def col_keys(self) -> list[str]:
        return [c for c, _ in self.cols] + ([TOTAL] if self.row_totals else [])

    def cells(self) -> list[Figure]:
        """The inner cells (no totals, no percentages), row by row."""
        return [self.figure(r, c) for r, _ in self.rows for c, _ in self.cols]

    def figures(self) -> list[Figure]:
        """Everything the grid shows, row by row: cells, totals, percentages."""
        return [f for r in self.row_keys for f in
                [self.figure(r, c) for c in self.col_keys]
                + [self.percent_figure(r, p) for p in self.percents]]

    @property
    def empty(self) -> bool:
        return not any(self.counts.values())


# The labels of figures that also appear as a total or share inside a grid: one key, one label.
LABELS = {
    "open_at_end": "Open early help assessments at period end",
    "closed_in_period": "Early help assessments closed in period",
    "began_in_period": "Early help assessments begun in period",
    "successful_pct": "% of plans with successful outcomes",
    "audits_completed": "Audits completed in period",
    # what is counted is audits (one plan may be audited twice, most never)
    "acceptable_pct": "% of audits judging the plan acceptable in quality",
    "unacceptable_pct": "% of audits judging the plan unacceptable in quality",
    "stepped_up_pct": "% of plans stepped up to children's social care",
    "stepped_down_pct": "% of plans stepped down from children's social care",
    "days_to_first_review": "Median days from start to first review",
    "closed_length_days": "Median length of episodes closed in period (days)",
    "audits_on_time_pct": "% of selected cases audited within their two weeks",
    "selected": "Cases selected for audit",
    "concerns_raised": "Concerns raised in service-user feedback",
}


# What each definition defines, as the report names it: shown beside its definition.
TERMS = {
    **{k: LABELS[k] for k in ("open_at_end", "closed_in_period", "successful_pct",
                              "stepped_up_pct", "stepped_down_pct", "days_to_first_review",
                              "closed_length_days", "audits_on_time_pct")},
    "acceptable_pct": "% of audits judging the plan acceptable (or unacceptable) in quality",
    "not_applicable": "n/a",
    "selection": "The month's audits (selected, completed, late, overdue)",
    "poor_audits": "Audits graded Requires Improvement or Inadequate",
    "actions_overdue": "Actions overdue",
    "meetings_to_hold": "Feedback meetings still to hold",
    "drift": "Drifting cases found by the selection",
    "referral_reason": "Progress against referral reasons",
    "concerns": "Concerns raised in service-user feedback",
    "multi_agency": "Multi-agency working: grades by lead agency sector",
    "participation": "Audits of cases led by each sector; taking part",
    "moderation": "Moderation: % exact agreement and weighted kappa",
    "trend": "The quarter beside the four before it",
    "learning_themes": "Learning themes",
    "action_completion": "Action completion",
}


# The Total row of episodes closed by how they ended holds these headline shares' numerators.
HEADLINE_NUMERATORS = {("total", "outcomes_achieved"): "successful_pct",
                       ("total", "stepped_up"): "stepped_up_pct"}


def _same(key: str) -> tuple[str, str]:
    """A grid's total or share that is the headline figure ``key``."""
    return key, LABELS[key]


def _one(db: sqlite_utils.Database, sql: str, params: dict) -> tuple:
    return db.execute(sql, params).fetchone()


def _params(period: Period) -> dict:
    return {"start": period.start.isoformat(), "end": period.end.isoformat()}


_remembered: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def remembered(fn):
    """Keep a figure function's result for the same store, arguments and data: a report
    asks for some twice (the trend's latest quarter, then the quarter's own table), and at a
    region's size each costs a pass over the open episodes. Any write changes the data's
    fingerprint (the change log's head), so nothing stale is ever returned. The arguments
    are compared with their defaults filled in: ``f(db, q)`` is ``f(db, q, "darlington")``."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(db, *args, **kwargs):
        cache = _remembered.setdefault(db, {})
        given = signature.bind(db, *args, **kwargs)
        given.apply_defaults()
        key = (fn.__qualname__, store.data_fingerprint(db), given.args[1:],
               tuple(sorted(given.kwargs.items())))
        if key not in cache:
            if len(cache) > 64:
                cache.clear()
            cache[key] = fn(db, *args, **kwargs)
        found = cache[key]
        return list(found) if isinstance(found, list) else found  # a list is copied: the caller may add to it
    return wrapper


@remembered
def _counted(db, sql: str, params: tuple) -> list[tuple]:
    """A grid's grouped counts (``params``: the query's as sorted pairs), read once for the
    report's table and its suppression decided beforehand (``metrics.shown_for``)."""
    return db.execute(sql, dict(params)).fetchall()


def _counts(db, sql: str, params: dict) -> list[tuple]:
    return _counted(db, sql, tuple(sorted(params.items())))


# -- episodes ---------------------------------------------------------------------------
# The headline figures read the episodes' monthly counts (ehkit.episode_counts): a period is
# whole months, and open at its end is the changes in those open up to its last month.
def _months(period: Period) -> dict:
    """The period's first and last month, as the counts name them (YYYY-MM)."""
    return {"first": period.start.isoformat()[:7], "last": period.end.isoformat()[:7]}


IN_MONTHS = "month BETWEEN :first AND :last"
OPEN_BY_END = "counted = 'open_change' AND month <= :last"


# The tables by lead agency and referral reason read the quarter's episodes. Open at its end:
# begun by it and not ended, or ended after it. Two narrow ranges of the end-date index,
# counted apart; the second kept off the start-date index (which would read every episode
# begun before the end: ``store.unindexed``).
def open_at_end_where(db) -> tuple[str, str]:
    """The two conditions of open at the period's end, in the store's dialect."""
    return ("end_date IS NULL AND start_date <= :end",
            f"end_date > :end AND {store.unindexed(db, 'start_date')} <= :end")


@remembered
def episode_figures(db: sqlite_utils.Database, period: Period) -> list[Figure]:
    """Open, closed, outcomes, step-up and step-down figures for the period. Remembered: the
    quarterly report shows five quarters' in its trend and decides their suppression too."""
    p = _months(period)
    open_at_end, = _one(db, f"SELECT coalesce(sum(episodes), 0) FROM episode_counts WHERE "
                            f"{OPEN_BY_END}", p)
    closed, successful, stepped_up = _one(db, f"""
        SELECT coalesce(sum(episodes), 0),
               coalesce(sum(CASE WHEN how = 'outcomes_achieved' THEN episodes ELSE 0 END), 0),
               coalesce(sum(CASE WHEN how = 'stepped_up' THEN episodes ELSE 0 END), 0)
        FROM episode_counts WHERE counted = 'ended' AND {IN_MONTHS}""", p)
    began, stepped_down = _one(db, f"""
        SELECT coalesce(sum(episodes), 0),
               coalesce(sum(CASE WHEN how = 'step_down' THEN episodes ELSE 0 END), 0)
        FROM episode_counts WHERE counted = 'began' AND {IN_MONTHS}""", p)
    return [
        count("open_at_end", LABELS["open_at_end"], open_at_end),
        count("closed_in_period", LABELS["closed_in_period"], closed),
        count("began_in_period", LABELS["began_in_period"], began),
        percent("successful_pct", LABELS["successful_pct"], successful, closed),
        percent("stepped_up_pct", LABELS["stepped_up_pct"], stepped_up, closed),
        percent("stepped_down_pct", LABELS["stepped_down_pct"], stepped_down, began),
    ]


def sectors() -> list[tuple[str, str]]:
    return [(slug(x), x) for x in setting("agencies", "sectors")]


@remembered
def redactor(db: sqlite_utils.Database) -> redact.Redactor:
    """The store's redactor (its names and EHM numbers, read in one pass), built once for
    the same store and data."""
    return redact.from_store(db)


def as_shown(db: sqlite_utils.Database, texts: Iterable[str | None],
             known: Iterable[str]) -> dict:
    """Free text that names a grid's rows (a referral reason or concern theme found in the
    data), as a board may see it: identifiers taken out (ehkit.redact). The council's own
    words (``known``, from settings) stay as they are, and cost nothing."""
    known = set(known)
    return {t: t if not t or t in known else redactor(db)(t) for t in set(texts)}


@remembered
def _closed(db: sqlite_utils.Database, period: Period) -> list[tuple]:
    """(lead agency, referral reason, how it ended, episodes) closed in the period: one pass
    for the sector, reason-volume and reason-outcome grids. Reasons as shown (as_shown)."""
    rows = db.execute("""
        SELECT lead_agency_id, referral_reason, ended_as, count(*) FROM episodes
        WHERE end_date BETWEEN :start AND :end GROUP BY 1, 2, 3""", _params(period)).fetchall()
    shown = as_shown(db, (r for _, r, _, _ in rows), setting("episodes", "referral_reasons"))
    return [(agency, shown[r], ended, n) for agency, r, ended, n in rows]


@remembered
def _volumes(db: sqlite_utils.Database, period: Period) -> list[tuple]:
    """(lead agency, referral reason, began in period, open at its end, closed in it), for the
    sector and reason grids. Grouped counts, each a narrow range of a covering index (one pass
    with a sum per column evaluates three expressions for every row: a third slower).
    Reasons as shown (as_shown)."""
    p = _params(period)
    counts: dict[tuple, list[int]] = {}
    for col, where in ((0, "start_date BETWEEN :start AND :end"),
                       *((1, w) for w in open_at_end_where(db))):
        rows = db.execute(f"SELECT lead_agency_id, referral_reason, count(*) FROM episodes "
                          f"WHERE {where} GROUP BY 1, 2", p).fetchall()
        shown = as_shown(db, (r for _, r, _ in rows), setting("episodes", "referral_reasons"))
        for agency, reason, n in rows:
            counts.setdefault((agency, shown[reason]), [0, 0, 0])[col] += n
    for agency, reason, _ended, n in _closed(db, period):
        counts.setdefault((agency, reason), [0, 0, 0])[2] += n
    return [(*key, *n) for key, n in counts.items()]


def sector_grid(db: sqlite_utils.Database, period: Period) -> Grid:
    """Open at period end and closed in period, by the lead agency's sector (every sector)."""
    sector_of = dict(db.execute("SELECT id, sector FROM agencies").fetchall())
    counts: dict[tuple[str, str], int] = {}
    for agency, _reason, _began, open_n, closed_n in _volumes(db, period):
        for col, n in (("open_at_end", open_n), ("closed_in_period", closed_n)):
            key = (slug(sector_of[agency]), col)
            counts[key] = counts.get(key, 0) + n
    return Grid("by_sector", "Early help assessments by lead agency sector", tuple(sectors()),
                (("open_at_end", "Open at period end"), ("closed_in_period", "Closed in period")),
                counts, row_totals=False, col_totals=True, corner="Lead agency sector",
                key_format="{col}.{row}", label_format="{col}: {row}",
                total_keys={(TOTAL, "open_at_end"): _same("open_at_end"),
                            (TOTAL, "closed_in_period"): _same("closed_in_period")})


def by_sector(db: sqlite_utils.Database, period: Period) -> list[Figure]:
    """Open at period end and closed in period, by the lead agency's sector (every sector)."""
    return sector_grid(db, period).cells()


# -- audit quality ----------------------------------------------------------------------
# The grade views' own audit read by the period too (the same audit: its date is the view's
# ``audit_date``), so PostgreSQL joins the period's audits, not every audit (migration 0134).
IN_PERIOD = "f.audit_date BETWEEN :start AND :end"


@remembered
def quality_figures(db: sqlite_utils.Database, period: Period,
                    template: str = templates.DEFAULT_TEMPLATE) -> list[Figure]:
    """Audits in the period and the share judged acceptable / unacceptable in quality."""
    tpl = templates.load(template)
    acceptable = ",".join(str(g) for g in tpl.acceptable)
    total, good, graded = _one(db, f"""
        SELECT count(*), coalesce(sum(CASE WHEN f.grade IN ({acceptable}) THEN 1 ELSE 0 END), 0),
               count(f.grade)
        FROM counted_audits a JOIN final_overall f ON f.audit_id = a.id
        WHERE a.audit_date BETWEEN :start AND :end AND {IN_PERIOD}""",
        _params(period))
    return [
        count("audits_completed", LABELS["audits_completed"], total),
        percent("acceptable_pct", LABELS["acceptable_pct"], good, graded),
        percent("unacceptable_pct", LABELS["unacceptable_pct"],
                graded - good, graded),
    ]


def has_audits(db: sqlite_utils.Database, period: Period) -> bool:
    """Were any audits submitted or moderated in the period?"""
    return bool(_one(db, """SELECT EXISTS (SELECT 1 FROM counted_audits
                             WHERE audit_date BETWEEN :start AND :end)""", _params(period))[0])


def grades_grid(db: sqlite_utils.Database, period: Period,
                template: str = templates.DEFAULT_TEMPLATE) -> Grid:
    """How many audits in the period got each grade, for each graded section and overall
    (audits made with this template only: another tool's sections are not these), with each
    row's total and the % acceptable (Outstanding or Good) and unacceptable."""
    tpl = templates.load(template)
    audits = """FROM counted_audits a JOIN {view} f ON f.audit_id = a.id
        WHERE a.audit_date BETWEEN :start AND :end AND """ + IN_PERIOD + """
          AND a.template = :template"""
    # a section's rows are graded answers (the view's), so only the overall grade may be NULL
    rows = {(k, str(g)): n for k, g, n in _counts(db, f"""
        SELECT key, grade, count(*) FROM (
          SELECT f.key, f.grade {audits.format(view="final_section_grades")} UNION ALL
          SELECT '{templates.OVERALL}', f.grade {audits.format(view="final_overall")}
            AND f.grade IS NOT NULL) AS g
        GROUP BY 1, 2""", {**_params(period), "template": tpl.key})}
    sections = [(s.key, s.label) for s in tpl.graded_sections]
    good = tuple(str(g) for g in tpl.acceptable)
    poor = tuple(str(g.value) for g in tpl.grades if g.value not in tpl.acceptable)
    return Grid("grades", "Grades given, by audit section", tuple(
        [*sections, (templates.OVERALL, "Overall grading")]),
        tuple((str(g.value), g.label) for g in tpl.grades), rows,
        row_totals=True, col_totals=False, corner="Audit section",
        percents=(PercentColumn("acceptable_pct", "% acceptable", good, TOTAL),
                  PercentColumn("unacceptable_pct", "% unacceptable", poor, TOTAL)),
        # the overall row's percentages are the partnership's headline figures
        percent_keys={(templates.OVERALL, "acceptable_pct"): _same("acceptable_pct"),
                      (templates.OVERALL, "unacceptable_pct"): _same("unacceptable_pct")},
        same_as={**{(s, TOTAL): f"grades.{templates.OVERALL}.total" for s, _ in sections},
                 (templates.OVERALL, TOTAL): "audits_completed"})


def grade_distribution(db: sqlite_utils.Database, period: Period,
                       template: str = templates.DEFAULT_TEMPLATE) -> list[Figure]:
    """How many audits in the period got each grade, for each graded section and overall."""
    return grades_grid(db, period, template).cells()


def partnership(db: sqlite_utils.Database, period: Period) -> list[Figure]:
    """The safeguarding partnership's quarterly figures (framework: reports to the LSCB)."""
    return episode_figures(db, period) + quality_figures(db, period)


def lists_began(db: sqlite_utils.Database) -> Period | None:
    """The first month with an audit list (ehkit sample): from then on audits are drawn
    each month, so their number moves for that reason."""
    first, = _one(db, "SELECT min(month) FROM selection_draws WHERE current = 1", {})
    return periods.parse(first) if first else None


def data_span(db: sqlite_utils.Database) -> tuple[str | None, str | None]:
    """The first and the latest date in the data (episode starts and ends, audits)."""
    # One min() or max() per subquery, so each is one step down its index.
    return db.execute("""
        SELECT (SELECT min(d) FROM (SELECT (SELECT min(start_date) FROM episodes) AS d
                                    UNION ALL SELECT (SELECT min(audit_date) FROM audits)) AS f),
               (SELECT max(d) FROM (SELECT (SELECT max(start_date) FROM episodes) AS d
                                    UNION ALL SELECT (SELECT max(end_date) FROM episodes)
                                    UNION ALL SELECT (SELECT max(audit_date) FROM audits)) AS l)
        """).fetchone()


def trend(db: sqlite_utils.Database, period: Period, figures, count_: int = 5
          ) -> list[tuple[Period, list[Figure]]]:
    """``figures(db, period)`` for this period and the ``count_ - 1`` before it, oldest first."""
    return [(p, figures(db, p)) for p in period.trend(count_)]


# -- the monthly report (Head of Service) --------------------------------------------------
def selection_grid(db: sqlite_utils.Database, period: Period) -> Grid:
    """The month's audit list by reason and how each audit stands at the month's end
    (ehkit.sampling's rule): completed on time, completed late, overdue, not yet due."""
    rows = sampling.selection(db, period.label, as_of=period.end)
    states = (("completed", "Completed on time"), ("completed_late", "Completed late"),
              ("overdue", "Overdue"), ("not_yet_due", "Not yet due"))
    counts: dict[tuple[str, str], int] = {}
    for r in rows:
        state = slug(r["state"]) if slug(r["state"]) in dict(states) else "not_yet_due"
        counts[(r["reason"], state)] = counts.get((r["reason"], state), 0) + 1
    return Grid("selection", "The month's audit list: selected, completed and overdue",
                tuple(sampling.REASONS.items()), states, counts, corner="Why selected",
                total_keys={(TOTAL, TOTAL): _same("selected")})


def selection_figures(db: sqlite_utils.Database, period: Period) -> list[Figure]:
    s = sampling.summary(db, period.label, as_of=period.end)
    return [count("selected", LABELS["selected"], s["selected"]),
            count("selection_completed", "Audits completed", s["completed"]),
            count("selection_completed_late", "Of which completed late", s["completed_late"]),
            count("selection_overdue", "Overdue at the month end", s["overdue"]),
            percent("selection_completed_pct", "% of selected cases audited", s["completed"],
                    s["selected"]),
            # shown apart: the figures above are as at the month end, whenever it is run
            count("selection_completed_after", "Audits submitted after the month end (not "
                  "counted above)", s["completed_after"])]


def drifting_selected(db: sqlite_utils.Database, period: Period) -> list[dict]:
    """Cases on the month's list because they were drifting, with why (ehkit.sampling)."""
    listed = [r for r in sampling.selection(db, period.label, as_of=period.end)
              if r["reason"] == "drift"]
    why = {r["episode_id"]: r for r in sampling.drifting(
        db, period.end, episodes=[r["episode_id"] for r in listed])}
    out = []
    for r in listed:
        w = why.get(r["episode_id"], {})
        reasons = [t for t, flag in (("open too long", w.get("open_too_long")),
                                     ("review overdue", w.get("review_overdue"))) if flag]
        out.append({**r, "drift_reasons": ", ".join(reasons) or "drifting when selected",
                    "last_review_date": w.get("last_review_date")})
    return out


def poor_audits(db: sqlite_utils.Database, period: Period,
                template: str = templates.DEFAULT_TEMPLATE) -> list[dict]:
    """Audits in the period graded Requires Improvement or Inadequate overall (final grade),
    each with its recommended actions and their state at the period's end."""
    tpl = templates.load(template)
    acceptable = ",".join(str(g) for g in tpl.acceptable)
    audits = list(db.query(f"""
        SELECT a.id, a.audit_date, a.template, f.grade, a.overall_reasons, a.learning,
               e.ehm_number, lp.name AS lead_professional, lp.team AS team,
               ag.name AS lead_agency, ag.sector AS sector, au.name AS auditor
        FROM counted_audits a JOIN final_overall f ON f.audit_id = a.id
        JOIN episodes e ON e.id = a.episode_id
        JOIN agencies ag ON ag.id = e.lead_agency_id
        LEFT JOIN practitioners lp ON lp.id = e.lead_professional_id
        LEFT JOIN practitioners au ON au.id = a.auditor1_id
        WHERE a.audit_date BETWEEN :start AND :end AND {IN_PERIOD}
          AND f.grade IS NOT NULL AND f.grade NOT IN ({acceptable})
        ORDER BY f.grade DESC, a.audit_date, a.id""", _params(period)))
    if not audits:
        return []
    by_audit: dict[int, list[dict]] = {}
    for r in actions_as_at(db, period.end):
        by_audit.setdefault(r["audit_id"], []).append(dict(r))  # the remembered rows stay as read
    load = functools.cache(templates.load)  # once per template, not per audit
    for a in audits:
        a["grade_label"] = load(a["template"]).grade_label(a["grade"])
        a["actions"] = by_audit.get(a["id"], [])
    return audits


@remembered
def actions_as_at(db: sqlite_utils.Database, day) -> list[dict]:
    """Every action (ehkit.actions.tracker) with its state as it stood on ``day``: one
    completed later was not completed then (so a past month's report does not change when
    it is run again later). The state is ehkit.actions' rule, applied to what was known.
    Remembered: the monthly report asks twice for the same day (its poor audits' actions,
    then the overdue ones), and each is every action ever recorded. Callers copy a row
    before changing it."""
    out = []
    for r in actions.tracker(db, day):
        done = r["completed_date"] if (r["completed_date"] or "9999") <= str(day) else None
        out.append({**r, "completed_date": done,
                    "state": actions.state(r["due_date"], done, day)})
    return out


def overdue_actions(db: sqlite_utils.Database, period: Period) -> list[dict]:
    """Actions of any month overdue on the period's last day (ehkit.actions' rule), as they
    stood that day; oldest due first, each with ``days_overdue``."""
    return [{**r, "days_overdue": (period.end - dates.as_date(r["due_date"])).days}
            for r in actions_as_at(db, period.end) if r["state"] == "overdue"]


def meetings_to_hold(db: sqlite_utils.Database, period: Period) -> list[dict]:
    """Feedback discussions and 1-1 meetings still to hold at the period end (ehkit.after_audit)."""
    out = [{**r, "meeting": "Feedback discussion with the worker"}
           for r in after_audit.discussions_to_hold(db, period.end)]
    out += [{**r, "meeting": "1-1 with the Early Help Coordinator",
             "days_since_audit": (period.end - dates.as_date(r["audit_date"])).days}
            for r in after_audit.one_to_ones_to_hold(db, period.end)]
    out.sort(key=lambda r: (r["audit_date"], r["id"], r["meeting"]))
    return out


# -- the quarterly report: the partnership's further figures ---------------------------------
def referral_reasons(found: Iterable[str | None] = ()) -> list[tuple[str, str]]:
    """The council's referral reasons, then any other reason ``found`` in the data."""
    known = list(setting("episodes", "referral_reasons"))
    reasons = known + sorted({r for r in found if r} - set(known))
    return [(slug(r), r) for r in reasons] + [("not_recorded", "Not recorded")]


# A referral reason with fewer episodes closed in the period is counted in "Other reasons"
# (when two or more are): its own row would be small counts, all suppressed, telling nothing.
OTHER_BELOW = 10
OTHER_REASONS = ("other_reasons", f"Other reasons (each fewer than {OTHER_BELOW} closed)")


def referral_outcome_grid(db: sqlite_utils.Database, period: Period,
                          group_below: int = OTHER_BELOW) -> Grid:
    """Episodes closed in the period by referral reason and how they ended; the reasons
    with fewer than ``group_below`` closed grouped into Other reasons."""
    rows = _closed(db, period)
    counts: dict[tuple[str, str], int] = {}
    for _agency, r, ended, n in rows:
        key = (slug(r) if r else "not_recorded", ended or "other")
        counts[key] = counts.get(key, 0) + n
    ended = tuple(setting("episodes", "ended_as").items())
    reasons = referral_reasons(r for _, r, _, _ in rows)
    closed = {r: sum(n for (x, _), n in counts.items() if x == r) for r, _ in reasons}
    small = {r for r, _ in reasons if closed[r] < group_below}
    if len(small) > 1:
        reasons = [x for x in reasons if x[0] not in small] + [OTHER_REASONS]
        grouped: dict[tuple[str, str], int] = {}
        for (r, e), n in counts.items():
            key = (OTHER_REASONS[0] if r in small else r, e)
            grouped[key] = grouped.get(key, 0) + n
        counts = grouped
    return Grid("referral_outcomes", "Closed in the period: how episodes ended, by referral "
                "reason", tuple(reasons), ended, counts,
                corner="Referral reason",
                key_format="referral.{row}.{col}",
                total_keys={(TOTAL, TOTAL): _same("closed_in_period")},
                numerator_of=HEADLINE_NUMERATORS,
                percents=(PercentColumn("successful_pct", "% outcomes achieved",
                                        ("outcomes_achieved",), TOTAL),))


def referral_volume_grid(db: sqlite_utils.Database, period: Period) -> Grid:
    """Episodes begun in the period and open at its end, by referral reason."""
    counts: dict[tuple[str, str], int] = {}
    rows = _volumes(db, period)
    for _agency, r, began, open_n, _closed in rows:
        for col, n in (("began_in_period", began), ("open_at_end", open_n)):
            key = (slug(r) if r else "not_recorded", col)
            counts[key] = counts.get(key, 0) + n
    return Grid("referral_volumes", "Begun in the period and open at its end, by referral "
                "reason", tuple(referral_reasons(r for _, r, _, _, _ in rows)),
                (("began_in_period", "Begun in period"), ("open_at_end", "Open at period end")),
                counts, row_totals=False, col_totals=True, corner="Referral reason",
                key_format="referral.{row}.{col}",
                total_keys={(TOTAL, "began_in_period"): _same("began_in_period"),
                            (TOTAL, "open_at_end"): _same("open_at_end")})


@remembered
def timescale_figures(db: sqlite_utils.Database, period: Period) -> list[Figure]:
    """Days to first review, length of closed episodes, audits completed in their two weeks."""
    to_review, lengths = (db.execute(f"""
        SELECT days, sum(episodes) FROM episode_days WHERE counted = :counted AND {IN_MONTHS}
        GROUP BY 1 HAVING sum(episodes) > 0 ORDER BY 1""",
        {**_months(period), "counted": counted}).fetchall() for counted in ("to_first_review", "length"))
    months = period.months()
    listed = sampling.states_at(db, months[0].label, months[-1].label, period.end)
    on_time = listed.count("completed")
    return [
        days("days_to_first_review", LABELS["days_to_first_review"], to_review),
        days("closed_length_days", LABELS["closed_length_days"], lengths),
        percent("audits_on_time_pct", LABELS["audits_on_time_pct"], on_time, len(listed)),
    ]


def concerns_grid(db: sqlite_utils.Database, period: Period) -> Grid:
    """Concerns raised in service-user feedback in the period, by theme (ehkit.service_user_feedback)."""
    rows = service_user_feedback.concerns_by_theme(db, period.start, period.end)
    shown = as_shown(db, (r["theme"] for r in rows), service_user_feedback.concern_themes())
    counts: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (slug(shown[r["theme"]]), "concerns")
        counts[key] = counts.get(key, 0) + r["concerns"]
    return Grid("concerns", "Concerns raised in service-user feedback, by theme",
                tuple(dict.fromkeys((slug(shown[r["theme"]]), shown[r["theme"]])
                                    for r in rows)),
                (("concerns", "Concerns raised"),),
                counts,
                row_totals=False, col_totals=True, corner="Theme", key_format="concerns.{row}",
                label_format="Concerns raised: {row}",
                total_keys={(TOTAL, "concerns"): _same("concerns_raised")})


MULTI_AGENCY = "multi_agency"  # the section whose grades are shown by lead agency sector


@remembered
def _audits_by_sector(db: sqlite_utils.Database, period: Period, section: str) -> list[tuple]:
    """(lead agency sector, template, the audit's final grade of ``section`` or None,
    audits): the period's audits in one pass, each audit's episode read once, for the
    participation grid (all of them) and the multi-agency grid (the template's graded)."""
    return db.execute("""
        SELECT ag.sector, a.template, f.grade, count(*)
        FROM counted_audits a JOIN episodes e ON e.id = a.episode_id
        JOIN agencies ag ON ag.id = e.lead_agency_id
        LEFT JOIN final_section_grades f ON f.audit_id = a.id AND f.key = :section
          AND """ + IN_PERIOD + """
        WHERE a.audit_date BETWEEN :start AND :end
        GROUP BY 1, 2, 3""", {**_params(period), "section": section}).fetchall()


def multi_agency_grid(db: sqlite_utils.Database, period: Period,
                      template: str = templates.DEFAULT_TEMPLATE,
                      section: str = MULTI_AGENCY) -> Grid | None:
    """The multi-agency working grades of audits in the period, by lead agency sector (None
    when the template has no such section)."""
    tpl = templates.load(template)
    if section not in {s.key for s in tpl.graded_sections}:
        return None
    name = tpl.section(section).label
    counts = {(slug(sector), str(g)): n for sector, made_with, g, n in
              _audits_by_sector(db, period, section) if made_with == tpl.key and g is not None}
    grade_cols = tuple((str(g.value), g.label) for g in tpl.grades)
    good = tuple(str(g) for g in tpl.acceptable)
    return Grid("multi_agency", "Multi-agency working: grades by lead agency sector",
                tuple(sectors()), grade_cols, counts, corner="Lead agency sector",
                # the Total row is the section's row of the grades table
                total_keys={**{(TOTAL, c): (f"grades.{section}.{c}", f"{name}: {label}")
                               for c, label in grade_cols},
                            (TOTAL, TOTAL): (f"grades.{section}.total", f"{name}: Total")},
                percents=(PercentColumn("acceptable_pct", "% acceptable", good, TOTAL),),
                percent_keys={(TOTAL, "acceptable_pct"): (f"grades.{section}.acceptable_pct",
                                                          f"{name}: % acceptable")},
                same_as={(s, TOTAL): f"participation.{s}.audited" for s, _ in sectors()})


def participation_grid(db: sqlite_utils.Database, period: Period) -> Grid:
    """Audits in the period of cases led by each sector (adds up to all audits)."""
    counts: Counter[tuple[str, str]] = Counter()
    for sector, _template, _grade, n in _audits_by_sector(db, period, MULTI_AGENCY):
        counts[(slug(sector), "audited")] += n
    return Grid("participation", "Audits of cases led by each sector", tuple(sectors()),
                (("audited", "Cases audited"),), counts, row_totals=False, col_totals=True,
                corner="Lead agency sector", key_format="participation.{row}.{col}",
                total_keys={(TOTAL, "audited"): _same("audits_completed")})


def taking_part_grid(db: sqlite_utils.Database, period: Period) -> Grid:
    """Audits in the period with an auditor from each sector, and feedback discussions (held
    in the period) with an attendee from it. An audit or discussion may count for two
    sectors, so there are no totals."""
    p = _params(period)
    counts = {}
    for sector, n in _counts(db, """
        SELECT ag.sector, count(DISTINCT a.id) FROM counted_audits a
        JOIN practitioners pr ON pr.id IN (a.auditor1_id, a.auditor2_id)
        JOIN agencies ag ON ag.id = pr.agency_id
        WHERE a.audit_date BETWEEN :start AND :end
        GROUP BY 1""", p):
        counts[(slug(sector), "auditor")] = n
    for sector, n in _counts(db, """
        SELECT ag.sector, count(DISTINCT d.id) FROM discussions d
        JOIN discussion_attendees t ON t.discussion_id = d.id
        JOIN practitioners pr ON pr.id = t.practitioner_id
        JOIN agencies ag ON ag.id = pr.agency_id
        WHERE d.held_on BETWEEN :start AND :end GROUP BY 1""", p):
        counts[(slug(sector), "discussion")] = n
    return Grid("taking_part", "Taking part: auditors and feedback discussions, by sector",
                tuple(sectors()), (("auditor", "Audits with an auditor from the sector"),
                                   ("discussion", "Feedback discussions attended")),
                counts, row_totals=False, col_totals=False, corner="Sector",
                key_format="participation.{row}.{col}")


def moderation_window(period: Period) -> tuple[dt.date, dt.date]:
    """The 12 months to the period's end: a quarter moderates too few grades per section to
    say anything (every figure would be suppressed), so agreement is a rolling year."""
    end = period.end
    start = end + dt.timedelta(days=1)
    return start.replace(year=start.year - 1), end


@remembered
def moderation_rows(db: sqlite_utils.Database, period: Period) -> list[tuple[str, list[Figure]]]:
    """Agreement between auditors and moderators per section over the 12 months to the
    period's end (ehkit.agreement): for each section, pairs of grades, % exact agreement and
    weighted kappa. Remembered: a year's moderations, read for the table and for the
    suppression decided beforehand."""
    out = []
    short = {s.key: s.label for s in templates.load().graded_sections}
    short[templates.OVERALL] = "Overall grading"
    for r in agreement.by_section(db, *moderation_window(period), per_quarter=False):
        k = f"moderation_12m.{r['key']}"
        r["section"] = short.get(r["key"], r["section"])
        out.append((r["section"], [
            count(f"{k}.pairs", f"{r['section']}: grades moderated", r["pairs"]),
            percent(f"{k}.agreement_pct", f"{r['section']}: % exact agreement", r["agreed"],
                    r["pairs"]),
            Figure(f"{k}.kappa", f"{r['section']}: weighted kappa",
                   None if r["kappa"] is None else round(r["kappa"], 2), "ratio", None,
                   r["pairs"]),
        ]))
    return out


def headline(db: sqlite_utils.Database, period: Period) -> list[Figure]:
    """The quarter's headline figures, shown beside the four quarters before."""
    concerns = sum(r["concerns"] for r in
                   service_user_feedback.concerns_by_theme(db, period.start, period.end))
    return (partnership(db, period) + timescale_figures(db, period)
            + [count("concerns_raised", LABELS["concerns_raised"], concerns)])


def shown_for(db: sqlite_utils.Database, kind: str, period: Period,
              template: str = templates.DEFAULT_TEMPLATE) -> tuple[list[Grid], list[Figure]]:
    """Every grid and figure a report of ``kind`` shows about ``period`` itself (the blocks of
    ``ehkit.report_blocks``): what its disclosure control decides on together. Figures of
    other periods (the trend's quarters, the annual's by-quarter rows) are decided with their
    own period's."""
    if kind == "quarterly":
        grids = [sector_grid(db, period), referral_volume_grid(db, period),
                 referral_outcome_grid(db, period), concerns_grid(db, period),
                 multi_agency_grid(db, period, template), participation_grid(db, period),
                 taking_part_grid(db, period), grades_grid(db, period, template)]
        figures = headline(db, period) + [
            count(f"{f.key}.cases", "", f.denominator or 0)
            for f in timescale_figures(db, period)]
        figures += [f for _, row in moderation_rows(db, period) for f in row]
        return [g for g in grids if g is not None], figures
    if kind == "annual":
        return ([volume_grid(db, period), outcome_grid(db, period),
                 quality_by_quarter_grid(db, period, template),
                 poor_sections(db, period, template), action_completion_grid(db, period)],
                episode_figures(db, period) + quality_figures(db, period, template))
    return ([selection_grid(db, period), grades_grid(db, period, template)],
            selection_figures(db, period))


# -- the annual report (LSCB) ---------------------------------------------------------------------
def _quarter_rows(period: Period) -> tuple[tuple[str, str], ...]:
    return tuple((q.label, q.label) for q in period.quarters())


def volume_grid(db: sqlite_utils.Database, period: Period) -> Grid:
    """Episodes begun and closed in each quarter of the year."""
    counts = {}
    for q in period.quarters():
        f = {x.key: x.value for x in episode_figures(db, q)}
        counts[(q.label, "began_in_period")] = f["began_in_period"]
        counts[(q.label, "closed_in_period")] = f["closed_in_period"]
    return Grid("volumes", "Early help assessments begun and closed, by quarter",
                _quarter_rows(period), (("began_in_period", "Begun"), ("closed_in_period",
                                                                       "Closed")),
                counts, row_totals=False, col_totals=True, corner="Quarter",
                key_format="{col}@{row}",
                total_keys={(TOTAL, "began_in_period"): _same("began_in_period"),
                            (TOTAL, "closed_in_period"): _same("closed_in_period")})


def outcome_grid(db: sqlite_utils.Database, period: Period) -> Grid:
    """Episodes closed in each quarter of the year, by how they ended."""
    counts = {}
    for q in period.quarters():
        for e, n in db.execute(f"""SELECT CASE how WHEN '' THEN 'other' ELSE how END,
                                   sum(episodes) FROM episode_counts
                                   WHERE counted = 'ended' AND {IN_MONTHS}
                                   GROUP BY 1 HAVING sum(episodes) > 0""", _months(q)):
            counts[(q.label, e)] = n
    ended = tuple(setting("episodes", "ended_as").items())
    quarters = [q.label for q in period.quarters()]
    return Grid("outcomes", "How episodes ended, by quarter closed", _quarter_rows(period),
                ended, counts, corner="Quarter",
                # a quarter's cells are its quarterly report's closed-by-how-they-ended totals
                key_format="referral.total.{col}@{row}",
                total_keys={**{(q, TOTAL): (f"closed_in_period@{q}", f"{q}: Closed")
                               for q in quarters},
                            **{(TOTAL, c): (f"referral.total.{c}", f"Total: {label}")
                               for c, label in ended},
                            (TOTAL, TOTAL): _same("closed_in_period")},
                percents=(PercentColumn("successful_pct", "% outcomes achieved",
                                        ("outcomes_achieved",), TOTAL),),
                percent_keys={**{(q, "successful_pct"): (f"successful_pct@{q}",
                                                         f"{q}: % outcomes achieved")
                                 for q in quarters},
                              (TOTAL, "successful_pct"): _same("successful_pct")},
                numerator_of=HEADLINE_NUMERATORS)


def quality_by_quarter_grid(db: sqlite_utils.Database, period: Period,
                            template: str = templates.DEFAULT_TEMPLATE) -> Grid:
    """Overall grades of the audits in each quarter of the year."""
    tpl = templates.load(template)
    counts = {}
    for q in period.quarters():
        g = grades_grid(db, q, template)
        for c, _ in g.cols:
            counts[(q.label, c)] = g.value(templates.OVERALL, c)
    good = tuple(str(g) for g in tpl.acceptable)
    cols = tuple((str(g.value), g.label) for g in tpl.grades)
    quarters = [q.label for q in period.quarters()]
    return Grid("quality", "Overall grades of audits, by quarter", _quarter_rows(period), cols,
                counts, corner="Quarter",
                # a quarter's cells are its quarterly report's overall grades
                key_format="grades.overall.{col}@{row}",
                total_keys={**{(TOTAL, c): (f"grades.overall.{c}", f"Overall grading: {label}")
                               for c, label in cols},
                            (TOTAL, TOTAL): ("grades.overall.total", "Overall grading: Total")},
                percents=(PercentColumn("acceptable_pct", "% acceptable", good, TOTAL),),
                percent_keys={**{(q, "acceptable_pct"): (f"acceptable_pct@{q}",
                                                         f"{q}: % acceptable")
                                 for q in quarters},
                              (TOTAL, "acceptable_pct"): _same("acceptable_pct")})


def poor_sections(db: sqlite_utils.Database, period: Period,
                  template: str = templates.DEFAULT_TEMPLATE) -> Grid:
    """Learning themes: how often each section was graded RI or Inadequate in the period."""
    g = grades_grid(db, period, template)
    tpl = templates.load(template)
    poor = [str(x.value) for x in tpl.grades if x.value not in tpl.acceptable]
    rows = tuple(r for r in g.rows if r[0] != templates.OVERALL)
    counts = {}
    for r, _ in rows:
        counts[(r, "poor")] = sum(g.value(r, c) for c in poor)
        counts[(r, "graded")] = g.value(r, TOTAL)
    ordered = tuple(sorted(rows, key=lambda r: -counts[(r[0], "poor")]))
    return Grid("learning_sections", "Learning themes: sections most often graded Requires "
                "Improvement or Inadequate", ordered,
                (("poor", "Graded RI or Inadequate"), ("graded", "Audits graded")), counts,
                row_totals=False, col_totals=False, corner="Audit section",
                key_format="learning.{row}.{col}",
                percents=(PercentColumn("poor_pct", "% RI or Inadequate", ("poor",), "graded"),))


def _norm(text: str) -> str:
    return " ".join((text or "").split()).casefold()


def most_common(db: sqlite_utils.Database, period: Period, what: str, top: int = 8
                ) -> list[dict]:
    """The learning (``what="learning"``: audits' learning and feedback discussions') or the
    recommended actions (``what="actions"``) recorded most often in the period: the same words
    ignoring case and spacing once names, EHM numbers, dates, phone numbers, postcodes, email
    addresses and case numbers are taken out (:mod:`ehkit.redact`; a theme is never about
    one family, however often it was pasted). Each row: text (as first written: the
    earliest audit's or discussion's words, redacted), count, and whether anything was taken
    out of it. The order is written out: the order rows are read in is each store's own."""
    p = _params(period)
    if what == "learning":
        texts = [r[0] for r in db.execute("""
            SELECT learning, audit_date AS day, 0 AS discussion, id FROM counted_audits
              WHERE audit_date BETWEEN :start AND :end AND trim(coalesce(learning, '')) <> ''
            UNION ALL SELECT d.learning, d.held_on, 1, d.id FROM discussions d
            WHERE d.held_on BETWEEN :start AND :end ORDER BY 2, 3, 4""", p)]
    elif what == "actions":
        texts = [r[0] for r in db.execute("""
            SELECT ac.action FROM actions ac JOIN counted_audits a ON a.id = ac.audit_id
            WHERE a.audit_date BETWEEN :start AND :end
            ORDER BY a.audit_date, ac.audit_id, ac.number""", p)]
    else:
        raise ValueError(what)
    redacted = functools.cache(redactor(db))  # the same words are redacted once
    groups: dict[str, list[tuple[str, bool]]] = {}
    for t in texts:
        if _norm(t):
            r = redacted(t)
            groups.setdefault(_norm(r), []).append((r, r != t))
    rows = [{"text": v[0][0].strip(), "count": len(v), "redacted": any(x for _, x in v)}
            for v in groups.values()]
    rows.sort(key=lambda r: (-r["count"], _norm(r["text"])))
    return rows[:top]


def action_completion_grid(db: sqlite_utils.Database, period: Period) -> Grid:
    """Recommended actions due in each quarter and what had become of them by the period's
    end (the definitions of ehkit.actions.completion, as at the last day of the period)."""
    end = period.end.isoformat()
    counts: dict[tuple[str, str], int] = {}
    quarters = period.quarters()
    for r in actions.tracker(db, period.end):
        due = r["due_date"]
        if not due or not (period.start.isoformat() <= due <= end):
            continue
        q = next(q.label for q in quarters if q.start.isoformat() <= due <= q.end.isoformat())
        done = r["completed_date"]
        state = ("on_time" if done and done <= due else
                 "late" if done and done <= end else "not_completed")
        counts[(q, state)] = counts.get((q, state), 0) + 1
    return Grid("action_completion", "Recommended actions due, and whether they were done",
                _quarter_rows(period), (("on_time", "Completed by the due date"),
                                        ("late", "Completed late"),
                                        ("not_completed", "Not completed")),
                counts, corner="Quarter due",
                percents=(PercentColumn("on_time_pct", "% on time", ("on_time",), TOTAL),
                          PercentColumn("completed_pct", "% completed", ("on_time", "late"),
                                        TOTAL)))
