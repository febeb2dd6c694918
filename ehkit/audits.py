"""Audits: the audit tool's rules, and saving, submitting and moderating audits.

The guidance's rules live here, once; the form, the importer, the sampler and the demo
generator all ask these functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from .errors import EhkitError
from .template import Template


class AuditRuleError(EhkitError):
    """An audit breaks one or more of the guidance's rules.

    ``problems`` maps a field key (a section key, 'overall', 'actions', 'auditor1', ...)
    to the plain-words message the auditor sees next to that field.
    """

    def __init__(self, problems: Mapping[str, str]):
        self.problems = dict(problems)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.problems.items()))


# -- Guidance 1: line managers should not audit their own team member's cases ------------
def conflict_of_interest(
    auditor_id: int,
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


# -- Guidance 9.1: the overall grading needs to reflect the dimensions above -------------
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
