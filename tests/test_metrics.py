"""The partnership figures, checked on a small store whose right answers are worked out here."""

from __future__ import annotations

import pytest
from helpers import add_audit, add_episode, add_service

from ehkit import db as store
from ehkit import metrics, periods

Q3 = periods.parse("2026Q3")  # 1 July to 30 September 2026


@pytest.fixture
def quarter(db):
    add_service(db)
    add_episode(db, 1, "2026-06-01")                                     # open at end
    add_episode(db, 2, "2026-07-01", "2026-09-30", ended_as="outcomes_achieved")  # both edges
    add_episode(db, 3, "2026-01-01", "2026-07-01", ended_as="stepped_up")  # closed first day
    add_episode(db, 4, "2026-01-01", "2026-06-30", ended_as="outcomes_achieved")  # before
    add_episode(db, 5, "2026-09-30", began_as="step_down")               # began last day
    add_episode(db, 6, "2026-10-01")                                     # after the quarter
    add_episode(db, 7, "2026-08-01", "2026-10-05", ended_as="other", agency=2, lead=3)
    add_episode(db, 8, "2026-07-15", "2026-08-15", ended_as="outcomes_achieved",
                began_as="step_down")
    add_audit(db, 1, 1, "2026-07-01", 2, {"planning": 2})
    add_audit(db, 2, 2, "2026-09-30", 3, {"planning": 3})
    add_audit(db, 3, 1, "2026-08-01", 2, {"planning": 1}, status="moderated")
    add_audit(db, 4, 1, "2026-08-02", 1, {"planning": 1}, status="draft")  # not counted
    add_audit(db, 5, 1, "2026-06-30", 1, {"planning": 1})                  # previous quarter
    with store.transaction(db):
        db["moderations"].insert_all([
            {"audit_id": 3, "key": "overall", "moderator_id": 1, "moderated_on": "2026-08-05",
             "original_grade": 2, "moderated_grade": 4, "reason": "No evidence of impact"},
            {"audit_id": 3, "key": "planning", "moderator_id": 1, "moderated_on": "2026-08-05",
             "original_grade": 1, "moderated_grade": 2, "reason": "Plan not SMART"},
        ])
    return db


def _by_key(figures):
    return {f.key: f for f in figures}


def test_open_closed_and_outcome_definitions_at_the_period_boundaries(quarter):
    f = _by_key(metrics.episode_figures(quarter, Q3))
    assert f["open_at_end"].value == 3          # episodes 1, 5, 7
    assert f["closed_in_period"].value == 3     # episodes 2, 3, 8
    assert f["began_in_period"].value == 4      # episodes 2, 5, 7, 8
    assert (f["successful_pct"].numerator, f["successful_pct"].denominator) == (2, 3)
    assert f["successful_pct"].value == pytest.approx(66.7)
    assert f["stepped_up_pct"].value == pytest.approx(33.3)
    assert (f["stepped_down_pct"].numerator, f["stepped_down_pct"].denominator) == (2, 4)
    assert f["stepped_down_pct"].value == 50.0


def test_by_lead_agency_sector_lists_every_sector(quarter):
    f = _by_key(metrics.by_sector(quarter, Q3))
    assert f["open_at_end.local_authority"].value == 2
    assert f["open_at_end.education"].value == 1
    assert f["closed_in_period.local_authority"].value == 3
    assert f["closed_in_period.education"].value == 0
    assert f["open_at_end.police"].value == 0


def test_quality_counts_submitted_and_moderated_audits_with_the_moderated_grade(quarter):
    f = _by_key(metrics.quality_figures(quarter, Q3))
    assert f["audits_completed"].value == 3     # audits 1, 2, 3 (4 is a draft, 5 is June)
    assert (f["acceptable_pct"].numerator, f["acceptable_pct"].denominator) == (1, 3)
    assert f["unacceptable_pct"].value == pytest.approx(66.7)


def test_grade_distribution_per_section_uses_moderated_grades(quarter):
    f = _by_key(metrics.grade_distribution(quarter, Q3))
    assert [f[f"grades.planning.{g}"].value for g in (1, 2, 3, 4)] == [0, 2, 1, 0]
    assert [f[f"grades.overall.{g}"].value for g in (1, 2, 3, 4)] == [0, 1, 1, 1]


def test_zero_denominator_is_not_applicable_not_zero(quarter):
    empty = periods.parse("2020Q1")
    f = _by_key(metrics.partnership(quarter, empty))
    for key in ("successful_pct", "stepped_up_pct", "stepped_down_pct", "acceptable_pct"):
        assert f[key].value is None
        assert f[key].display == "n/a"
    assert f["closed_in_period"].value == 0


def test_a_second_template_gets_its_own_grade_distribution(quarter, tmp_path):
    from test_template import MINIMAL

    path = tmp_path / "northshire.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    add_audit(quarter, 6, 2, "2026-09-01", 1, {"plan": 3, "child": 1},
              template_key="northshire")
    f = _by_key(metrics.grade_distribution(quarter, Q3, template=str(path)))
    assert {k for k in f} == {f"grades.{s}.{g}" for s in ("plan", "child", "overall")
                              for g in (1, 2, 3)}
    assert f["grades.plan.3"].value == 1 and f["grades.child.1"].value == 1
    assert f["grades.overall.1"].value == 1  # Darlington audits are not counted here
