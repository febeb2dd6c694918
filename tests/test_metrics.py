"""The partnership figures, checked on a small store whose right answers are worked out here."""

from __future__ import annotations

import collections
import statistics

import pytest
from builders import add_audit, add_episode, add_rows, add_service

from ehkit import db as store
from ehkit import metrics, periods

Q3 = periods.parse("2026Q3")  # 1 July to 30 September 2026


@pytest.fixture
def db(db_both):
    """Every figure here is worked out on SQLite and on PostgreSQL (issue 18)."""
    return db_both


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


# -- the further figures of issue 5 (worked out by hand on small stores) ------------------------
@pytest.fixture
def reasons(db):
    add_service(db)
    add_episode(db, 1, "2026-07-01", "2026-09-30", ended_as="outcomes_achieved",
                referral_reason="Housing", first_review_date="2026-07-21")   # 20 days; 91 long
    add_episode(db, 2, "2026-01-01", "2026-07-01", ended_as="stepped_up",
                referral_reason="Housing")                                      # 181 days long
    add_episode(db, 3, "2026-07-15", "2026-08-15", ended_as="outcomes_achieved",
                referral_reason="Behaviour", first_review_date="2026-08-14")  # 30 days; 31 long
    add_episode(db, 4, "2026-06-01", referral_reason="Behaviour",
                first_review_date="2026-06-20")                                 # review in Q2
    add_episode(db, 5, "2026-08-01")                                            # no reason
    return db


def test_closed_episodes_by_referral_reason_and_how_they_ended(reasons):
    g = metrics.referral_outcome_grid(reasons, Q3, group_below=0)  # every reason on its own
    assert g.value("housing", "outcomes_achieved") == 1 and g.value("housing", "stepped_up") == 1
    assert g.value("housing", metrics.TOTAL) == 2 and g.value("behaviour", metrics.TOTAL) == 1
    f = {x.key: x for x in g.figures()}
    assert f["referral.housing.successful_pct"].value == 50.0
    assert f["referral.behaviour.successful_pct"].value == 100.0
    assert f["closed_in_period"].value == 3  # the grand total is the headline figure
    v = {x.key: x.value for x in metrics.referral_volume_grid(reasons, Q3).figures()}
    assert v["referral.housing.began_in_period"] == 1
    assert v["referral.behaviour.open_at_end"] == 1
    assert v["referral.not_recorded.began_in_period"] == 1
    assert v["began_in_period"] == 3 and v["open_at_end"] == 2


def test_an_episode_closed_without_how_it_ended_counts_as_other_in_every_grid(reasons):
    add_episode(reasons, 6, "2026-02-01", "2026-08-01", referral_reason="Housing")
    g = metrics.referral_outcome_grid(reasons, Q3, group_below=0)
    assert g.value("housing", "other") == 1 and g.value("housing", metrics.TOTAL) == 3
    sector = metrics.sector_grid(reasons, Q3)
    assert sector.value(metrics.TOTAL, "closed_in_period") == 4 == g.value(metrics.TOTAL,
                                                                           metrics.TOTAL)


@pytest.mark.parametrize("cases", [[5], [3, 9], [1, 1, 2, 7], [4, 4, 4, 10, 30], [2, 8, 8, 8]])
def test_a_median_of_day_counts_is_the_median_of_the_cases_they_count(cases):
    counts = sorted(collections.Counter(cases).items())
    f = metrics.days("d", "Days", counts)
    assert (f.value, f.denominator) == (statistics.median(cases), len(cases))


def test_no_cases_no_median():
    assert metrics.days("d", "Days", []).value is None


def test_timescales_are_medians_over_the_cases_in_the_period(reasons):
    f = _by_key(metrics.timescale_figures(reasons, Q3))
    assert (f["days_to_first_review"].value, f["days_to_first_review"].denominator) == (25, 2)
    assert (f["closed_length_days"].value, f["closed_length_days"].denominator) == (91, 3)
    assert f["audits_on_time_pct"].value is None  # no audit list drawn: n/a, not 0%


def test_action_completion_by_quarter_due_as_at_the_year_end(db):
    add_service(db)
    add_episode(db, 1, "2025-12-01")
    add_audit(db, 1, 1, "2026-01-10", 3)
    with store.transaction(db):
        db["actions"].insert_all([
            {"audit_id": 1, "number": 1, "action": "a", "due_date": "2026-02-01",
             "completed_date": "2026-02-01"},                                # on time (on the day)
            {"audit_id": 1, "number": 2, "action": "b", "due_date": "2026-03-31",
             "completed_date": "2026-04-02"},                                # late, next quarter
            {"audit_id": 1, "number": 3, "action": "c", "due_date": "2026-08-01"},  # not done
            {"audit_id": 1, "number": 4, "action": "d", "due_date": "2027-01-05"}])  # next year
    g = metrics.action_completion_grid(db, periods.parse("2026"))
    assert [g.value("2026Q1", c) for c in ("on_time", "late", "not_completed")] == [1, 1, 0]
    assert g.value("2026Q3", "not_completed") == 1
    assert g.value(metrics.TOTAL, metrics.TOTAL) == 3
    f = {x.key: x.value for x in g.figures()}
    assert f["action_completion.2026Q1.on_time_pct"] == 50.0
    assert f["action_completion.total.completed_pct"] == pytest.approx(66.7)


def test_the_months_audit_list_by_state_at_the_month_end(db):
    add_service(db)
    for i in range(1, 5):
        add_episode(db, i, "2026-01-01")
    with store.transaction(db):
        db["selection_draws"].insert({
            "id": 1, "month": "2026-11", "seed": 1, "drawn_on": "2026-11-02", "drawn_by": "t",
            "council_quota": 12, "partner_quota": 3, "closed_quota": 15, "drift_open_months": 6,
            "drift_review_months": 3, "exclude_audited_months": 12, "due_days": 14,
            "council_pool": 4, "partner_pool": 0, "closed_pool": 0, "drifting": 1,
            "excluded_audited": 0})
        db["selections"].insert_all([
            {"draw_id": 1, "episode_id": i, "reason": r, "selected_on": "2026-11-02",
             "due_date": due} for i, r, due in [
                (1, "random_council", "2026-11-16"), (2, "random_council", "2026-11-16"),
                (3, "drift", "2026-11-16"), (4, "random_council", "2026-12-07")]])
    add_audit(db, 1, 1, "2026-11-10", 2)                  # submitted 10th: on time
    add_audit(db, 2, 2, "2026-11-20", 2)                  # submitted 20th: late
    g = metrics.selection_grid(db, periods.parse("2026-11"))
    assert g.value("random_council", "completed") == 1
    assert g.value("random_council", "completed_late") == 1
    assert g.value("drift", "overdue") == 1              # due the 16th, nothing by the 30th
    assert g.value("random_council", "not_yet_due") == 1  # due in December
    f = _by_key(metrics.selection_figures(db, periods.parse("2026-11")))
    assert [f[k].value for k in ("selected", "selection_completed", "selection_overdue")] == [4, 2, 1]


def test_most_common_learning_ignores_case_and_spacing(db):
    add_service(db)
    add_episode(db, 1, "2026-01-01")
    for i, text in enumerate(["Review  drift early", "review drift early", "Other", None], 1):
        add_audit(db, i, 1, "2026-02-01", 2)
        with store.transaction(db):
            db["audits"].update(i, {"learning": text})
    rows = metrics.most_common(db, periods.parse("2026"), "learning")
    assert rows == [{"text": "Review  drift early", "count": 2, "redacted": False},
                    {"text": "Other", "count": 1, "redacted": False}]


def test_a_common_theme_is_shown_in_the_words_of_its_earliest_audit(db):
    # the order a store happens to read rows in is its own (an index's, or PostgreSQL's
    # heap's), so it decides nothing: the words shown are those of the earliest audit
    add_service(db)
    add_episode(db, 1, "2026-01-01")
    add_audit(db, 1, 1, "2026-03-01", 2, status="moderated")  # saved first, dated later
    add_audit(db, 2, 1, "2026-02-01", 2)
    with store.transaction(db):
        db["audits"].update(1, {"learning": "Plan NOT smart"})
        db["audits"].update(2, {"learning": "plan not SMART"})
    add_rows(db, actions=[{"audit_id": 1, "number": 1, "action": "Visit WEEKLY"},
                          {"audit_id": 2, "number": 1, "action": "visit weekly"}])
    year = periods.parse("2026")
    assert metrics.most_common(db, year, "learning") == [
        {"text": "plan not SMART", "count": 2, "redacted": False}]
    assert metrics.most_common(db, year, "actions") == [
        {"text": "visit weekly", "count": 2, "redacted": False}]


def test_a_childs_name_and_ehm_number_in_a_theme_are_taken_out_on_both_back_ends(db):
    # the redactor reads every name and EHM number in the store in one string, built by
    # the database itself (group_concat on SQLite, string_agg on PostgreSQL)
    add_service(db)
    add_episode(db, 1, "2026-01-01", ehm_number="QZ-41-EHM")
    add_rows(db, children=[{"episode_id": 1, "name": "Quorvexa Plantchild"}])
    for i in (1, 2):
        add_audit(db, i, 1, "2026-02-01", 2)
        with store.transaction(db):
            db["audits"].update(i, {"learning": "Hear Quorvexa first (QZ-41-EHM)"})
    assert metrics.most_common(db, periods.parse("2026"), "learning") == [
        {"text": "Hear [name] first ([EHM number])", "count": 2, "redacted": True}]


def test_a_past_months_overdue_actions_are_as_they_stood_at_its_end(db):
    add_service(db)
    add_episode(db, 1, "2026-01-01")
    add_audit(db, 1, 1, "2026-08-20", 3)
    with store.transaction(db):
        db["actions"].insert_all([
            {"audit_id": 1, "number": 1, "action": "a", "due_date": "2026-09-10",
             "completed_date": "2026-10-03"},   # overdue on 30 September, done later
            {"audit_id": 1, "number": 2, "action": "b", "due_date": "2026-09-10",
             "completed_date": "2026-09-09"},   # done in time
            {"audit_id": 1, "number": 3, "action": "c", "due_date": "2026-09-30"}])  # due that day
    rows = metrics.overdue_actions(db, periods.parse("2026-09"))
    assert [(r["number"], r["days_overdue"]) for r in rows] == [(1, 20)]
    assert rows[0]["completed_date"] is None


def test_a_reopened_and_resubmitted_audit_counts_its_auditors_grade_again(quarter):
    with store.transaction(quarter):
        quarter.execute("UPDATE audits SET status = 'submitted' WHERE id = 3")
    f = _by_key(metrics.grade_distribution(quarter, Q3))
    assert [f[f"grades.overall.{g}"].value for g in (1, 2, 3, 4)] == [0, 2, 1, 0]
    assert [f[f"grades.planning.{g}"].value for g in (1, 2, 3, 4)] == [1, 1, 1, 0]


def test_the_latest_moderation_counts_in_every_figure_that_reads_grades(quarter):
    # A second, later moderation of audit 3: overall back to Good, multi-agency to Inadequate.
    with store.transaction(quarter):
        quarter["answers"].insert({"audit_id": 3, "key": "multi_agency", "grade": 2})
        quarter["moderations"].insert_all([
            {"audit_id": 3, "key": "overall", "moderator_id": 4, "moderated_on": "2026-08-20",
             "original_grade": 2, "moderated_grade": 2, "reason": None},
            {"audit_id": 3, "key": "multi_agency", "moderator_id": 1, "moderated_on": "2026-08-05",
             "original_grade": 2, "moderated_grade": 3, "reason": "Agencies not invited"},
            {"audit_id": 3, "key": "multi_agency", "moderator_id": 4, "moderated_on": "2026-08-20",
             "original_grade": 2, "moderated_grade": 4, "reason": "No joint working"},
        ])
    q = _by_key(metrics.quality_figures(quarter, Q3))
    assert (q["acceptable_pct"].numerator, q["acceptable_pct"].denominator) == (2, 3)  # 1, 3
    g = _by_key(metrics.grade_distribution(quarter, Q3))
    assert [g[f"grades.overall.{x}"].value for x in (1, 2, 3, 4)] == [0, 2, 1, 0]
    assert [g[f"grades.multi_agency.{x}"].value for x in (1, 2, 3, 4)] == [0, 0, 0, 1]
    ma = metrics.multi_agency_grid(quarter, Q3)
    assert ma.value("local_authority", "4") == 1 and ma.value(metrics.TOTAL, metrics.TOTAL) == 1
    # The views agree with one another, audit by audit.
    views = quarter.execute("""SELECT key, grade FROM final_grades WHERE audit_id = 3
                               ORDER BY key""").fetchall()
    assert views == [("multi_agency", 4), ("overall", 2), ("planning", 2)]


def test_data_span_runs_from_the_first_start_to_the_latest_date_of_any_kind(db):
    assert metrics.data_span(db) == (None, None)
    add_service(db)
    add_episode(db, 1, "2026-02-01")                       # episodes only, no audits yet
    assert metrics.data_span(db) == ("2026-02-01", "2026-02-01")
    add_episode(db, 2, "2026-03-01", "2026-06-30", ended_as="other")  # latest: an end date
    assert metrics.data_span(db) == ("2026-02-01", "2026-06-30")
    add_audit(db, 1, 1, "2026-07-15", 2)                   # latest: an audit
    assert metrics.data_span(db) == ("2026-02-01", "2026-07-15")


def test_figures_remembered_for_a_report_follow_every_change_to_the_data(quarter):
    before = _by_key(metrics.quality_figures(quarter, Q3))
    again = _by_key(metrics.quality_figures(quarter, Q3))
    assert again == before                              # asked twice: the same figures
    again["audits_completed"] = None                    # a caller's copy, not the memory
    add_audit(quarter, 6, 1, "2026-09-01", 1)           # one more Outstanding audit
    after = _by_key(metrics.quality_figures(quarter, Q3))
    assert after["audits_completed"].value == before["audits_completed"].value + 1
    assert after["acceptable_pct"].numerator == before["acceptable_pct"].numerator + 1
    by_sector = {f.key: f.value for f in metrics.by_sector(quarter, Q3)}
    add_episode(quarter, 9, "2026-08-01", agency=2, lead=3)   # open at the end, Education
    assert {f.key: f.value for f in metrics.by_sector(quarter, Q3)}[
        "open_at_end.education"] == by_sector["open_at_end.education"] + 1


def test_referral_reasons_with_few_closed_episodes_are_grouped_into_other_reasons(reasons):
    """Housing (2 closed), Behaviour (1) and the rest are each under the line: one row,
    Other reasons, holds them all, and the totals are unchanged."""
    for n in range(6, 16):  # ten more Housing episodes closed in Q3: Housing keeps its row
        add_episode(reasons, n, "2026-07-01", "2026-09-01", ended_as="outcomes_achieved",
                    referral_reason="Housing")
    g = metrics.referral_outcome_grid(reasons, Q3)
    assert [r for r, _ in g.rows] == ["housing", metrics.OTHER_REASONS[0]]
    assert g.value("housing", metrics.TOTAL) == 12
    assert g.value(metrics.OTHER_REASONS[0], "outcomes_achieved") == 1  # Behaviour's
    assert g.value(metrics.TOTAL, metrics.TOTAL) == 13


def test_a_quarterly_report_reads_each_figure_once(quarter):
    """The trend's five quarters, then the suppression decided for the report (the same
    quarters' figures and every grid again, the audit quality with its template named):
    the second time, the store is asked only whether its data changed."""
    from ehkit import presentation
    from ehkit import template as templates

    if store.is_postgres(quarter):
        pytest.skip("SQLite's trace callback sees every statement; the rule is the same Python")
    asked: list[str] = []
    quarter.conn.set_trace_callback(asked.append)
    try:
        metrics.trend(quarter, Q3, metrics.headline)
        metrics.shown_for(quarter, "quarterly", Q3, templates.DEFAULT_TEMPLATE)
        first = [s for s in asked if "change_log" not in s]
        asked.clear()
        for q in Q3.trend(5):
            metrics.headline(quarter, q)
        metrics.quality_figures(quarter, Q3, templates.DEFAULT_TEMPLATE)
        metrics.shown_for(quarter, "quarterly", Q3, templates.DEFAULT_TEMPLATE)
        presentation.decisions(quarter, "quarterly", Q3, templates.DEFAULT_TEMPLATE, 5)
    finally:
        quarter.conn.set_trace_callback(None)
    again = [s for s in asked if "change_log" not in s]
    assert any("FROM episode_counts" in s for s in first)
    # the audits on time: each quarter's audit lists in one query, not one a month
    assert sum("selection_draws" in s for s in first) == len(Q3.trend(5))
    # asked again: only the sectors' names and the feedback's concerns (a few rows each)
    assert [s for s in again if not ("FROM agencies" in s or "service_user_feedback" in s)] == []
