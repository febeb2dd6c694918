"""The pieces of the reports: each block is a titled part of a report (figures, table,
chart), reading only through ``ehkit.metrics`` and showing through a ``Report``.

A notebook calls blocks in order; the same block (e.g. :func:`grades`) serves every report
that shows that figure, so a figure shown in two reports is computed and shown one way.
"""

from __future__ import annotations

from itertools import pairwise

from . import charts, metrics
from . import template as templates
from .dates import long_date
from .metrics import TOTAL
from .presentation import NO_AUDITS, Report


def _no_audits(report: Report, period=None) -> bool:
    """True (and says so) when there are no audits in the period."""
    if metrics.has_audits(report.db, period or report.period):
        return False
    report.note(NO_AUDITS)
    return True


def intro(report: Report, definitions: list[str]) -> None:
    report.header()
    report.definitions(definitions)


# -- shared ---------------------------------------------------------------------------------
def grades(report: Report, title: str = "Quality of practice") -> None:
    """Grades per section and overall for the audits in the period, with a chart."""
    report.section(title, "From case audits submitted or moderated in the period; the "
                          "moderator's grade where moderated.")
    if report.kind != "monthly":
        report.table(metrics.quality_figures(report.db, report.period, report.template.key))
    if _no_audits(report):
        return
    grid = metrics.grades_grid(report.db, report.period, report.template.key)
    report.grid(grid)
    tpl = report.template
    labels = dict(grid.rows)
    counts = {(labels[r], int(c)): grid.value(r, c) for r, _ in grid.rows for c, _ in grid.cols}
    overall = metrics.percent("x", "x", sum(grid.value(templates.OVERALL, str(g))
                                            for g in tpl.acceptable),
                              grid.value(templates.OVERALL, TOTAL)).value
    title = (f"{overall:.0f}% of audits were graded Outstanding or Good overall"
             if overall is not None else "How practice was graded in each section")
    report.chart(charts.stacked_grades(f"{title}: grades by section", list(labels.values()),
                                       [(g.value, g.label) for g in tpl.grades], counts),
                 "grade distribution by section", grid.figures())


# -- monthly (Head of Service) -----------------------------------------------------------------
MONTHLY_DEFINITIONS = ["selection", "acceptable_pct", "poor_audits", "actions_overdue",
                       "meetings_to_hold", "drift", "not_applicable"]


def selection(report: Report) -> None:
    report.section("The month's audits", "Audits selected for the month against those "
                   f"completed and overdue, as at {long_date(report.period.end)}.")
    figs = metrics.selection_figures(report.db, report.period)
    if not figs[0].value:
        report.note("No audit list was drawn for this month (ehkit sample).")
        report.table(figs)
        return
    report.table(figs)
    grid = metrics.selection_grid(report.db, report.period)
    report.grid(grid)
    done = {f.key: f.value for f in figs}
    report.chart(charts.bars(
        f"{done['selection_completed']} of {done['selected']} selected cases were audited; "
        f"{done['selection_overdue']} overdue",
        [c for _, c in grid.cols], [grid.value(TOTAL, c) for c, _ in grid.cols],
        xlabel="State of the audit at the month end", ylabel="Cases selected"),
        "selection states", grid.figures())


def poor_audits(report: Report) -> None:
    report.section("Audits graded Requires Improvement or Inadequate",
                   "Every such audit in the month, with its recommended actions and their "
                   f"state on {long_date(report.period.end)}.")
    audits = metrics.poor_audits(report.db, report.period, report.template.key)
    if not audits:
        if not _no_audits(report):
            report.note("No audit in this period was graded Requires Improvement or "
                        "Inadequate.")
        return
    if not report.audience.names:  # case-level detail is for the Head of Service
        report.records("Audits graded Requires Improvement or Inadequate", [], audits, "")
        return
    for a in audits:
        title = f"Audit {a['id']} ({a['audit_date']}): {a['grade_label']}"
        report.records(title, [
            ("ehm_number", "EHM number", "case"), ("lead_professional", "Lead professional",
                                                   "worker"),
            ("team", "Team", "worker"), ("lead_agency", "Lead agency", ""),
            ("overall_reasons", "Reasons for the grade", ""), ("learning", "Learning", "")],
            [a], "")
        report.records("Recommended actions", [
            ("number", "No", ""), ("action", "Action", ""), ("owner", "By whom", "worker"),
            ("due_date", "By when", ""), ("completed_date", "Completed", ""),
            ("state", "State", "")], a["actions"], "No recommended actions recorded.")


def overdue_actions(report: Report) -> None:
    rows = metrics.overdue_actions(report.db, report.period)
    report.section("Actions overdue", f"{len(rows)} recommended action(s) from audits of any "
                   f"month were overdue on {long_date(report.period.end)}.")
    report.records("Overdue actions", [
        ("due_date", "Due", ""), ("days_overdue", "Days overdue", ""),
        ("audit_id", "Audit", ""), ("ehm_number", "EHM number", "case"),
        ("action", "Action", ""), ("owner", "Owner", "worker"), ("team", "Team", "worker"),
        ("agency", "Agency", "")], rows, "No action was overdue.",
        more=f"All of them: ehkit actions overdue --on {report.period.end}.")


def meetings(report: Report) -> None:
    rows = metrics.meetings_to_hold(report.db, report.period)
    report.section("Feedback meetings still to hold",
                   f"{len(rows)} meeting(s) still to hold on {long_date(report.period.end)}.")
    report.records("Meetings to hold", [
        ("meeting", "Meeting", ""), ("id", "Audit", ""), ("audit_date", "Audit date", ""),
        ("days_since_audit", "Days since the audit", ""), ("ehm_number", "EHM number", "case"),
        ("author", "Worker", "worker"), ("manager", "Line manager", "worker"),
        ("author_agency", "Agency", "")], rows, "No feedback meeting is waiting.",
        more="All of them: the 'After the audit' tab of the action tracker.")


def drift(report: Report) -> None:
    rows = metrics.drifting_selected(report.db, report.period)
    report.section("Drifting cases found by the selection",
                   f"{len(rows)} drifting case(s) were put on this month's audit list.")
    report.records("Drifting cases", [
        ("ehm_number", "EHM number", "case"), ("start_date", "Episode began", ""),
        ("last_review_date", "Last review", ""), ("drift_reasons", "Why drifting", ""),
        ("lead_agency", "Lead agency", ""), ("lead_professional", "Lead professional", "worker"),
        ("auditor", "Auditor", "worker"), ("due_date", "Audit due", ""), ("state", "Audit", "")],
        rows, "No drifting case was selected this month.")


# -- quarterly (Early Help Board, LSCB) -----------------------------------------------------------
QUARTERLY_DEFINITIONS = ["open_at_end", "closed_in_period", "successful_pct", "stepped_up_pct",
                         "stepped_down_pct", "acceptable_pct", "referral_reason",
                         "days_to_first_review", "closed_length_days", "audits_on_time_pct",
                         "concerns", "multi_agency", "participation", "moderation", "trend",
                         "not_applicable"]


def headline(report: Report) -> None:
    report.section("The quarter beside the four before it",
                   "The partnership's figures, timescales and concerns, quarter by quarter.")
    trend = metrics.trend(report.db, report.period, metrics.headline)
    series = report.trend_table("Headline figures", trend)
    labels = [p.label for p, _ in trend]
    for keys, what, unit, ylabel in (
            (("open_at_end", "closed_in_period"), "Open early help assessments", "",
             "Early help assessments"),
            # one subject per chart: how plans ended, then how audits judged them
            (("successful_pct", "stepped_up_pct"), "Plans with successful outcomes", "%",
             "% of plans closed"),
            (("acceptable_pct",), "Audits judging the plan acceptable in quality", "%",
             "% of audits"),
            (("days_to_first_review",), "Median days to the first review", "", "Days")):
        names = {f.key: f.label for f in trend[-1][1]}
        report.chart(charts.trend(charts.change_title(what, series[keys[0]], labels, unit), labels,
                                  {names[k]: series[k] for k in keys}, ylabel=ylabel),
                     what.lower())
    report.note("A gap in a line is a quarter whose figure is suppressed or not applicable.")
    why_audits_moved(report, [p for p, _ in trend], series["audits_completed"])


BIG_MOVE = 2  # a figure that doubles, or halves, from one quarter to the next is explained


def why_audits_moved(report: Report, quarters, shown: list) -> None:
    """Say why the number of audits moved a lot, where ehkit knows: the monthly audit lists
    began. ``shown``: each quarter's figure as shown (None where suppressed or n/a)."""
    began = metrics.lists_began(report.db)
    if began is None:
        return
    for (q0, v0), (q1, v1) in pairwise(zip(quarters, shown, strict=True)):
        if v0 and v1 and max(v0, v1) >= BIG_MOVE * min(v0, v1) \
                and q0.start <= began.start <= q1.end:
            report.note(f"{metrics.LABELS['audits_completed']} {'rose' if v1 > v0 else 'fell'} "
                        f"from {v0} in {q0.label} to {v1} in {q1.label}: the monthly audit "
                        f"lists (ehkit sample) began in {began.start:%B %Y}, and from then on "
                        "cases were drawn for audit every month.")


def sectors(report: Report) -> None:
    report.section("Assessments by agency sector",
                   "By the sector of the episode's lead agency (Health, Education, Voluntary...).")
    grid = metrics.sector_grid(report.db, report.period)
    report.grid(grid)
    rows = [(label, grid.figure(r, "open_at_end")) for r, label in grid.rows]
    top = max(rows, key=lambda x: x[1].value)
    report.chart(charts.bars(f"{top[0]} leads the most open assessments ({top[1].value})",
                             [label for label, _ in rows], [f.value for _, f in rows],
                             xlabel="Lead agency sector", ylabel="Open assessments at period end"),
                 "open assessments by sector", [f for _, f in rows])


def concerns(report: Report) -> None:
    report.section("Concerns raised in service-user feedback",
                   "Counts by theme; no names. From feedback given in the period.")
    report.grid(metrics.concerns_grid(report.db, report.period))


def referral_reasons(report: Report) -> None:
    report.section("Progress against referral reasons",
                   "Volumes and outcomes by the reason the family was referred.")
    volumes = metrics.referral_volume_grid(report.db, report.period)
    report.grid(volumes)
    grid = metrics.referral_outcome_grid(report.db, report.period)
    if grid.value(TOTAL, TOTAL) == 0:
        report.note("No episode closed in this period.")
        return
    report.grid(grid)
    if metrics.OTHER_REASONS in grid.rows:
        apart = dict(grid.rows)
        report.note(f"{metrics.OTHER_REASONS[1]}: "
                    + ", ".join(label for r, label in volumes.rows if r not in apart) + ".")


def timescales(report: Report) -> None:
    report.section("Timescales", "Days from the start of an episode to its first review, length "
                   "of closed episodes, and audits completed within their two weeks.")
    figs = metrics.timescale_figures(report.db, report.period)
    report.figure_rows("Timescales this quarter", ["Value", "Cases"], [
        (f.label, [f, metrics.count(f"{f.key}.cases", f"{f.label}: cases", f.denominator or 0)])
        for f in figs])


def cooperation(report: Report) -> None:
    report.section("Cooperation of agencies",
                   "Multi-agency working grades and how each sector takes part in audits.")
    if _no_audits(report):
        return
    grid = metrics.multi_agency_grid(report.db, report.period, report.template.key)
    if grid is not None:
        report.grid(grid)
    report.grid(metrics.participation_grid(report.db, report.period))
    report.grid(metrics.taking_part_grid(report.db, report.period))


def moderation(report: Report) -> None:
    """For the Early Help Board and the Head of Service (the reference group moderates the
    audit process); not part of the LSCB's report."""
    if report.audience.key == "lscb":
        return
    start, end = metrics.moderation_window(report.period)
    report.section("Moderation: do auditors and moderators agree?",
                   f"Per section, for moderations dated in the 12 months from "
                   f"{long_date(start)} to {long_date(end)}: a quarter has too few to show.")
    rows = metrics.moderation_rows(report.db, report.period)
    if not rows:
        report.note("No audits were moderated in these 12 months.")
        return
    report.figure_rows("Agreement between auditors and moderators",
                       ["Grades moderated", "% exact agreement", "Weighted kappa"], rows,
                       corner="Section")


# -- annual (LSCB) ---------------------------------------------------------------------------
ANNUAL_DEFINITIONS = ["open_at_end", "closed_in_period", "successful_pct", "stepped_up_pct",
                      "stepped_down_pct", "acceptable_pct", "learning_themes",
                      "action_completion", "not_applicable"]


def year_overview(report: Report) -> None:
    report.section("The year at a glance", f"{report.period.title}.")
    report.table(metrics.episode_figures(report.db, report.period), "Volumes and outcomes")
    report.grid(metrics.volume_grid(report.db, report.period))
    grid = metrics.outcome_grid(report.db, report.period)
    report.grid(grid)


def quality_by_quarter(report: Report) -> None:
    report.section("Quality of practice by quarter", "Overall grades of the audits submitted "
                   "or moderated in each quarter (the moderator's grade where moderated).")
    report.table(metrics.quality_figures(report.db, report.period, report.template.key))
    if _no_audits(report):
        return
    grid = metrics.quality_by_quarter_grid(report.db, report.period, report.template.key)
    report.grid(grid)
    pct = [grid.percent_figure(r, grid.percents[0]).value for r, _ in grid.rows]
    labels = [label for _, label in grid.rows]
    counts = {(label, int(c)): grid.value(r, c) for r, label in grid.rows for c, _ in grid.cols}
    report.chart(charts.stacked_counts(
        charts.change_title("Audits graded Outstanding or Good", pct, labels, "%"), labels,
        [(g.value, g.label) for g in report.template.grades], counts, ylabel="Quarter"),
        "overall grades by quarter", grid.figures())


def learning(report: Report) -> None:
    report.section("Learning themes and recommended actions",
                   "Where practice most often fell short, and the learning and actions "
                   "recorded most often.")
    if _no_audits(report):
        return
    report.grid(metrics.poor_sections(report.db, report.period, report.template.key))
    threshold = report.audience.threshold if report.audience.suppress else 0
    for what, title in (("learning", "Learning recorded most often"),
                        ("actions", "Recommended actions made most often")):
        rows = [r for r in metrics.most_common(report.db, report.period, what)
                if r["count"] > max(threshold, 1)]
        for r in rows:
            report.shown_value(metrics.count(f"{what}.common.{metrics.slug(r['text'])[:40]}",
                                             r["text"], r["count"]))
        report.records(title, [("text", "Recorded", ""), ("count", "Times", "")], rows,
                       "Nothing was recorded often enough to show as a theme"
                       + (f" (more than {threshold} times)." if threshold else "."),
                       public=True)
        if redacted := sum(r["redacted"] for r in rows):
            report.note(f"{redacted} of these had names, EHM numbers, dates, phone numbers, "
                        "postcodes, email addresses or case numbers in them: each is shown "
                        "as what it was, in square brackets, e.g. [name].")


def action_completion(report: Report) -> None:
    report.section("Action completion", "Recommended actions due in each quarter, and "
                   f"whether they had been done by {long_date(report.period.end)}.")
    grid = metrics.action_completion_grid(report.db, report.period)
    if grid.empty:
        report.note("No recommended action fell due in this period.")
        return
    report.grid(grid)
