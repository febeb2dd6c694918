"""The audit tool's rules and its actions' rules, each defined once.

The audit form (:func:`ehkit.audits.problems`, checked again at every save and submit),
moderation, the action tracker (:mod:`ehkit.actions`) and ``ehkit check`` all call these
functions. Each returns None when the rule is kept, else what a person reads about this
breach of it; the caller adds where it is ("Section 3: ", "audit 12 action 1").

Dates are compared as ISO text (``2026-11-24``), as the store holds them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping

from ..dates import uk
from ..template import Section, Template
from . import rule_definition


def _blank(v) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


# -- who audits ---------------------------------------------------------------------------
@rule_definition("AUDIT-CASE", "an audit names the case it audits (its EHM number)",
                 kind="audit", fields=("episode",))
def case_chosen(episode_id: int | None) -> str | None:
    return "Choose the case: type or pick its EHM number." if episode_id is None else None


@rule_definition("AUDIT-AUDITOR1", "an audit names auditor 1", kind="audit",
                 fields=("auditor1",))
def auditor_chosen(auditor1_id: int | None) -> str | None:
    return "Choose auditor 1." if auditor1_id is None else None


@rule_definition("AUDIT-CONFLICT", "line managers do not audit their own team member's cases: "
                 "not the lead professional, their line manager nor the team manager named on "
                 "the episode (guidance 1)", kind="audit", fields=("auditor1", "auditor2"))
def conflict_of_interest(
    auditor_id: int | None,
    lead_professional_id: int | None,
    team_manager_id: int | None,
    line_manager_of: Mapping[int, int | None],
) -> str | None:
    """Why ``auditor_id`` may not audit this episode, or None when they may.

    The lead professional may not audit their own case; nor may the lead professional's
    line manager, nor the team manager named on the episode. A manager further up the line
    (two levels up) does not manage the worker's team directly and may audit.
    """
    if auditor_id is None:
        return None
    if lead_professional_id is not None and auditor_id == lead_professional_id:
        return "The lead professional may not audit their own case."
    if lead_professional_id is not None and line_manager_of.get(lead_professional_id) == auditor_id:
        return "A line manager may not audit a case of their own team member (guidance 1)."
    if team_manager_id is not None and auditor_id == team_manager_id:
        return "The team manager named on the episode may not audit it (guidance 1)."
    return None


@rule_definition("AUDIT-AUDITOR2", "auditor 2 is someone other than auditor 1", kind="audit",
                 fields=("auditor2",))
def second_auditor_differs(auditor1_id: int | None, auditor2_id: int | None) -> str | None:
    if auditor2_id is not None and auditor2_id == auditor1_id:
        return "Auditor 2 must be a different person from auditor 1."
    return None


@rule_definition("MODERATION-NOT-AUDITOR1", "the moderator is not auditor 1", kind="audit",
                 fields=("moderator",))
def moderator_not_auditor(moderator_id: int | None, auditor1_id: int | None) -> str | None:
    if moderator_id is not None and moderator_id == auditor1_id:
        return "Auditor 1 cannot moderate their own audit: choose someone else."
    return None


@rule_definition("MODERATION-REASON", "a moderator who changes a grade gives the reason",
                 kind="audit", fields=("section",))
def changed_grade_has_reason(original: int | None, moderated: int | None, reason: str | None
                             ) -> str | None:
    if moderated is not None and moderated != original and _blank(reason):
        return "Give the reason for changing this grade."
    return None


# -- the audit date -------------------------------------------------------------------------
@rule_definition("AUDIT-DATE", "an audit has the date it was done", kind="audit",
                 fields=("audit_date",))
def audit_date_given(audit_date: str | None) -> str | None:
    return "Enter the date of the audit." if audit_date is None else None


@rule_definition("AUDIT-DATE-BEFORE-EPISODE", "the audit date is not before the episode began",
                 kind="audit", fields=("audit_date",))
def audit_date_not_before_episode(audit_date: str | None, episode_start: str | None
                                  ) -> str | None:
    if audit_date and episode_start and audit_date < episode_start:
        return (f"The audit date ({audit_date}) is before this episode began ({episode_start}):"
                " check the date.")
    return None


@rule_definition("AUDIT-DATE-FUTURE", "the audit date is not in the future", kind="audit",
                 fields=("audit_date",))
def audit_date_not_in_future(audit_date: str | None, today: dt.date) -> str | None:
    if audit_date and audit_date > today.isoformat():
        return f"The audit date ({audit_date}) is in the future: enter the day of the audit."
    return None


# -- grades ---------------------------------------------------------------------------------
@rule_definition("AUDIT-GRADE-SCALE", "every grade (a section's, the overall grade, a "
                 "moderator's) is on the audit tool's scale", kind="audit",
                 fields=("overall",))
def grade_on_scale(template: Template, grade) -> str | None:
    if grade is None or grade in template.grade_values:
        return None
    scale = ", ".join(str(g) for g in template.grade_values)
    return f"{grade!r} is not a grade on this audit tool (its grades are {scale})."


@rule_definition("AUDIT-SECTION-GRADE", "every graded section has a grade", kind="audit",
                 fields=("section",))
def section_graded(grade: int | None) -> str | None:
    return "choose a grade" if grade is None else None


@rule_definition("AUDIT-SECTION-EVIDENCE", "every graded section has its evidence in a comment, "
                 "on the section or one of its questions (guidance 12: gradings are supported "
                 "by evidence)", kind="audit", fields=("section",))
def section_evidenced(template: Template, section: Section, comments: Mapping[str, str | None]
                      ) -> str | None:
    """``comments`` maps answer keys (the section's and its questions') to their comment."""
    if not template.rules.evidence_required:
        return None
    keys = [section.key, *(i.key for i in section.items)]
    if any(not _blank(comments.get(k)) for k in keys):
        return None
    return "write the evidence for it in the comments (guidance 12)"


@rule_definition("AUDIT-OVERALL-GRADE", "an audit has an overall grade", kind="audit",
                 fields=("overall",))
def overall_graded(grade: int | None) -> str | None:
    return "Choose the overall grade." if grade is None else None


@rule_definition("AUDIT-OVERALL-REASONS", "an audit has a brief summary of the reasons for its "
                 "overall grade", kind="audit", fields=("overall_reasons",))
def overall_reasons_given(reasons: str | None) -> str | None:
    if _blank(reasons):
        return "Write a brief summary of the reasons for the overall grade."
    return None


def best_overall_allowed(template: Template, section_grades: Iterable[int | None]) -> int | None:
    """The best (lowest) overall grade the template's rule allows for these section grades.

    None when no section is graded yet (nothing to reflect).
    """
    grades = sorted(g for g in section_grades if g is not None)
    if not grades:
        return None
    rules = template.rules
    best = min(template.grade_values)
    if rules.overall_limit == "median":
        mid = len(grades) / 2
        # median rounded towards worse (a higher number)
        median = grades[len(grades) // 2] if len(grades) % 2 else (
            grades[int(mid) - 1] + grades[int(mid)]) / 2
        best = math.ceil(median)
    elif rules.overall_limit == "worst":
        best = grades[-1]
    if rules.inadequate_section_grade is not None and rules.overall_cap_grade is not None:
        if rules.inadequate_section_grade in grades:
            best = max(best, rules.overall_cap_grade)
    return best


@rule_definition("AUDIT-OVERALL-REFLECTS", "the overall grade reflects the section grades: no "
                 "better than the template's rule allows (the median section grade rounded "
                 "towards worse, and no better than Requires Improvement when a section is "
                 "Inadequate; guidance 9.1)", kind="audit", fields=("overall",))
def overall_reflects_sections(template: Template, section_grades: Mapping[str, int | None],
                              overall: int | None) -> str | None:
    best = best_overall_allowed(template, section_grades.values())
    if overall is None or best is None or overall >= best:
        return None
    why = []
    graded = [g for g in section_grades.values() if g is not None]
    r = template.rules
    if r.overall_limit == "median":
        why.append("the middle (median) section grade, rounded towards the worse grade")
    elif r.overall_limit == "worst":
        why.append("the worst section grade")
    if r.inadequate_section_grade is not None and r.inadequate_section_grade in graded:
        why.append(f"a section graded {template.grade_label(r.inadequate_section_grade)}")
    return (f"The overall grade must reflect the section grades: with {' and '.join(why)}, "
            f"it can be no better than {template.grade_label(best)}.")


# -- actions --------------------------------------------------------------------------------
@rule_definition("AUDIT-ACTIONS-NEEDED", "where any grade is Requires Improvement or worse (the "
                 "template's rule), the audit has at least one SMART action saying how practice "
                 "can be lifted to good (guidance 16)", kind="audit", fields=("actions",))
def actions_where_needed(template: Template, grades: Iterable[int | None], actions: int
                         ) -> str | None:
    threshold = template.rules.actions_required_from_grade
    if threshold is None or actions or not any(g is not None and g >= threshold for g in grades):
        return None
    return (f"Where any grade is {template.grade_label(threshold)} or worse, add at least one "
            "SMART action saying how practice can be lifted to good (guidance 16).")


@rule_definition("ACTION-DESCRIBED", "an action says what is to be done", kind="action",
                 fields=("action",))
def action_described(text: str | None) -> str | None:
    return "describe the action" if _blank(text) else None


@rule_definition("ACTION-OWNER", "an action says who will do it", kind="action",
                 fields=("by_whom", "owner_id"))
def action_owned(by_whom: str | None, owner_id: int | None) -> str | None:
    return "say who will do it" if _blank(by_whom) and owner_id is None else None


@rule_definition("ACTION-DUE-DATE", "an action has the date it is due by", kind="action",
                 fields=("due_date",))
def action_due_date_given(due_date: str | None) -> str | None:
    return "give the date it is due by" if due_date is None else None


# The action plan is agreed with the worker after the audit (guidance 13; the tool's
# "Date discussed with case worker"), and a SMART action needs time to be done: an action
# due on the audit day itself could only be met before it was agreed.
@rule_definition("ACTION-DUE-AFTER-AUDIT", "an action is due after the audit date (not on "
                 "the audit day itself: the plan is agreed with the worker after the audit)",
                 kind="action", fields=("due_date",))
def action_due_after_audit(due_date: str | None, audit_date: str | None) -> str | None:
    if due_date and audit_date and due_date <= audit_date:
        return f"the due date ({due_date}) must be after the audit date ({audit_date})"
    return None


@rule_definition("ACTION-COMPLETED-FUTURE", "an action's completed date is not in the future: "
                 "record it on the day it is done", kind="action", fields=("completed_date",))
def action_completed_not_in_future(completed_date: str | None, today: dt.date) -> str | None:
    if completed_date and completed_date > today.isoformat():
        return (f"the completed date ({uk(completed_date)}) is in the future: record it on the "
                "day it is done")
    return None


@rule_definition("ACTION-COMPLETED-BEFORE-AUDIT", "an action is not completed before the audit "
                 "that recommended it", kind="action", fields=("completed_date",))
def action_completed_after_audit(completed_date: str | None, audit_date: str | None
                                 ) -> str | None:
    if completed_date and audit_date and completed_date < audit_date:
        return (f"the completed date ({uk(completed_date)}) is before the audit ({uk(audit_date)}) "
                "that recommended it")
    return None
