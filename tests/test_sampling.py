"""The monthly audit selection on hand-built pools: quotas, exclusions, drift, auditors."""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import re

import openpyxl
import pytest
from builders import COUNCIL, SCHOOL, add_rows, episode_row, where
from hypothesis import given, settings
from hypothesis import strategies as st
from voila_harness import (  # noqa: F401 (fixtures)
    VoilaServer,
    chromium_fixture,
    copy_db,
    pages_fixture,
    wait_for_text,
)

from ehkit import cli, sampling
from ehkit import db as store
from ehkit.audits import conflict_of_interest
from ehkit.settings import get as setting

MONTH = "2026-11"
DRAWN = dt.date(2026, 11, 2)
CFG = setting("sampling")

# People: a head of service (1), a team manager who audits (2), a worker in that team (3), a
# partner agency's worker (4), three auditors from quality assurance (5, 6, 7).
PEOPLE = [
    {"id": 1, "name": "Hana Head", "agency_id": 1, "line_manager_id": None, "is_auditor": 0},
    {"id": 2, "name": "Milo Manager", "agency_id": 1, "line_manager_id": 1, "is_auditor": 1},
    {"id": 3, "name": "Wren Worker", "agency_id": 1, "line_manager_id": 2, "is_auditor": 0},
    {"id": 4, "name": "Pip Partner", "agency_id": 2, "line_manager_id": None, "is_auditor": 0},
    {"id": 5, "name": "Ada Auditor", "agency_id": 1, "line_manager_id": 1, "is_auditor": 1},
    {"id": 6, "name": "Bea Auditor", "agency_id": 1, "line_manager_id": 1, "is_auditor": 1},
    {"id": 7, "name": "Cai Auditor", "agency_id": 1, "line_manager_id": 1, "is_auditor": 1},
]


@pytest.fixture
def db(db_both):
    """Each test's store on both back ends: the same pools draw the same lists."""
    return db_both


def episode(i, start, end=None, *, agency=1, review="2026-11-10"):
    council = agency == 1
    return episode_row(i, start, end, agency=agency, lead=3 if council else 4,
                       ehm_number=f"EHM{i:03d}", team_manager_id=2 if council else None,
                       last_review_date=review if review and review >= start else None)


def audit(episode_id, on, status="submitted", submitted=None):
    return {"episode_id": episode_id, "template": "darlington", "auditor1_id": 5,
            "audit_date": on, "status": status,
            "submitted_at": None if status == "draft" else f"{submitted or on}T12:00:00Z"}


def build(db, extra_council: int = 0):
    """The November pool, every case's fate worked out by hand (see each comment)."""
    eps = []
    eps += [episode(i, "2026-09-01") for i in range(1, 13)]  # 12 council: all drawn
    eps += [episode(i, "2026-09-01") for i in range(13, 16)]  # audited in June: left out
    eps += [episode(i, "2026-09-01", agency=2) for i in range(21, 25)]  # 21-23 partner drawn
    # 15 closed during November: all drawn as closed (and so not again as council cases)
    eps += [episode(i, "2026-08-01", f"2026-11-{i - 30:02d}") for i in range(31, 46)]
    eps.append(episode(46, "2026-08-01", "2026-10-31"))  # closed before November: no pool
    eps.append(episode(51, "2026-05-29"))  # open more than six months on 30/11: drift
    eps.append(episode(53, "2026-06-15", review="2026-08-29"))  # review overdue: drift
    eps.append(episode(54, "2026-05-01"))  # drifting and audited in June: still drift
    eps.append(episode(61, "2026-12-01"))  # begins after November: no pool
    eps += [episode(100 + i, "2026-09-01") for i in range(extra_council)]
    add_rows(db, agencies=[{"id": 1, "name": "Oakvale Council Early Help", **COUNCIL},
                           {"id": 2, "name": "Fernbridge Primary School", **SCHOOL}],
             practitioners=PEOPLE, episodes=eps, audits=[
                 audit(13, "2026-06-01"), audit(14, "2026-06-01"), audit(15, "2026-06-01"),
                 audit(22, "2025-11-30"),  # exactly twelve months before 30/11: not excluded
                 audit(24, "2025-12-01"),  # within twelve months: excluded
                 audit(54, "2026-06-01")])
    return db


def chosen(db, month=MONTH):
    out: dict[str, set] = {}
    for r in sampling.selection(db, month, as_of=DRAWN):
        out.setdefault(r["reason"], set()).add(r["episode_id"])
    return out


def test_quotas_are_met_defaults_match_the_framework():
    assert (CFG["council_cases"], CFG["partner_cases"], CFG["closed_cases"]) == (12, 3, 15)
    assert (CFG["drift_open_months"], CFG["drift_review_months"], CFG["due_days"]) == (6, 3, 14)


def test_month_list_takes_each_quota_from_its_own_pool(db):
    build(db)
    d = sampling.draw(db, MONTH, seed=1, on=DRAWN)
    assert d["stored"] is False
    got = chosen(db)
    assert got["random_council"] == set(range(1, 13))
    assert got["random_partner"] == {21, 22, 23}
    assert got["closed"] == set(range(31, 46))
    assert got["drift"] == {51, 53, 54}
    assert "request" not in got
    assert (d["council_pool"], d["partner_pool"], d["closed_pool"], d["drifting"]) == (
        12, 3, 15, 3)
    assert d["excluded_audited"] == 4  # 13, 14, 15 and 24 (54 is on the list for drift)
    assert (d["council_quota"], d["partner_quota"], d["closed_quota"]) == (12, 3, 15)
    assert d["seed"] == 1 and d["drawn_on"] == "2026-11-02"


def test_cases_audited_in_the_last_12_months_are_not_drawn_at_random(db):
    build(db)
    sampling.draw(db, MONTH, seed=2, on=DRAWN)
    listed = set().union(*chosen(db).values())
    assert not listed & {13, 14, 15, 24}
    assert 22 in listed  # audited exactly twelve months before the month's end


def test_cases_on_an_earlier_months_list_are_not_drawn_again(db):
    build(db, extra_council=3)  # 15 council cases for 12 places
    sampling.draw(db, "2026-10", seed=3, on=dt.date(2026, 10, 1))
    october = set().union(*chosen(db, "2026-10").values())
    sampling.draw(db, MONTH, seed=3, on=DRAWN)
    november = chosen(db)
    assert not (november["random_council"] | november["random_partner"]) & october
    # On 31/10, 51 and 54 were drifting (begun before 30/04; their 10/11 review was still to
    # come); on 30/11 53 joins them. The same spell of drift is not listed again.
    assert chosen(db, "2026-10")["drift"] == {51, 54}
    assert november["drift"] == {53}


@pytest.fixture
def drift_quota(tmp_path, monkeypatch):
    """A council that lists at most ``n`` drifting cases a month (settings override)."""
    def use(n: int) -> None:
        path = tmp_path / f"settings-{n}.toml"
        path.write_text(f"[sampling]\ndrift_cases = {n}\n", encoding="utf-8")
        monkeypatch.setenv("EHKIT_SETTINGS", str(path))
    return use


def test_drift_quota_lists_the_longest_without_a_review_first_and_the_rest_wait(db, drift_quota):
    build(db)
    drift_quota(2)
    d = sampling.draw(db, MONTH, seed=1, on=DRAWN)
    # Latest reviews on 30/11: 53 on 29/08; 51 and 54 on 10/11, 54 begun earlier.
    assert chosen(db)["drift"] == {53, 54}
    assert (d["drift_quota"], d["drift_pool"], d["drifting"]) == (2, 3, 2)
    assert "2 of 3 drifting listed" in sampling.describe(d)
    # 51 still drifts in December and comes up then; 53 and 54 are not listed again.
    sampling.draw(db, "2026-12", seed=1, on=dt.date(2026, 12, 1))
    assert chosen(db, "2026-12")["drift"] == {51}


def test_a_drift_quota_of_zero_lists_every_drifting_case(db, drift_quota):
    build(db)
    drift_quota(0)
    d = sampling.draw(db, MONTH, seed=1, on=DRAWN)
    assert chosen(db)["drift"] == {51, 53, 54}
    assert (d["drift_quota"], d["drift_pool"]) == (0, 3)
    assert "3 drifting;" in sampling.describe(d)


def test_the_same_seed_draws_the_same_list(tmp_path):
    lists = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        database = store.connect(tmp_path / f"{name}.db")
        build(database, extra_council=40)
        sampling.draw(database, MONTH, seed=seed, on=DRAWN)
        lists.append([(r["episode_id"], r["reason"], r["auditor_id"])
                      for r in sampling.selection(database, MONTH)])
        database.close()
    assert lists[0] == lists[1]
    council = [{e for e, r, _ in rows if r == "random_council"} for rows in lists]
    assert council[0] != council[2]  # 12 of 52: another seed draws another list


def test_the_same_seed_draws_the_same_list_on_sqlite_and_postgresql(tmp_path, pg_server):
    """The same pools in a SQLite store and a PostgreSQL one: the same seed draws the same
    cases for the same reasons with the same auditors and due dates, counts the same pools,
    adds a request the same way and exports the same list."""
    seen = []
    for target in (tmp_path / "ehkit.db", pg_server.new_database()):
        database = store.connect(target)
        build(database, extra_council=40)
        d = sampling.draw(database, MONTH, seed=11, on=DRAWN)
        sampling.request(database, "EHM061", "no progress", month=MONTH, on=DRAWN)
        redrawn = sampling.draw(database, MONTH, seed=12, on=DRAWN, redraw_reason="a retest")
        out = tmp_path / f"{'pg' if store.is_postgres(database) else 'sqlite'}.csv"
        sampling.export(database, MONTH, out, as_of=DRAWN)
        pools = {k: (d[k], redrawn[k]) for k in (
            "council_pool", "partner_pool", "closed_pool", "drift_pool", "drifting",
            "excluded_audited")}
        rows = [{k: v for k, v in r.items() if k != "selection_id"}
                for r in sampling.selection(database, MONTH, as_of=DRAWN)]
        drifting = sampling.drifting(database, dt.date(2026, 11, 30))
        seen.append((pools, rows, drifting, out.read_bytes()))
        database.close()
    assert seen[0] == seen[1]
    pools, rows, drifting, _ = seen[0]
    assert pools["council_pool"] == (52, 52)
    assert [r["episode_id"] for r in drifting] == [51, 53, 54]  # as build() says
    assert {r["reason"] for r in rows} >= {"random_council", "closed", "drift", "request"}


def test_a_seed_draws_the_list_it_drew_before_the_draw_was_made_faster(db):
    # 12 of 52 council cases with seed 7, as drawn by the scratch-table draw (main, 3671334):
    # the same seed on the same data draws the same list from one version to the next.
    build(db, extra_council=40)
    d = sampling.draw(db, MONTH, seed=7, on=DRAWN)
    assert chosen(db)["random_council"] == {4, 11, 101, 116, 117, 120, 122, 126, 127, 134,
                                            136, 138}
    assert (d["council_pool"], d["partner_pool"], d["closed_pool"], d["drift_pool"],
            d["excluded_audited"]) == (52, 3, 15, 3, 4)


def test_a_case_audited_on_an_earlier_episode_is_not_drawn_again(db):
    build(db)
    # EHM071 was audited in January on its episode closed in June 2025; its new episode, open
    # in November, is the same case: left out, not drawn at random.
    add_rows(db, episodes=[
        episode_row(71, "2025-01-02", "2025-06-30", lead=3, ehm_number="EHM071"),
        episode_row(72, "2026-09-01", lead=3, ehm_number="EHM071", team_manager_id=2,
                    last_review_date="2026-11-10")], audits=[audit(71, "2026-01-15")])
    d = sampling.draw(db, MONTH, seed=1, on=DRAWN)
    assert 72 not in set().union(*chosen(db).values())
    assert (d["council_pool"], d["excluded_audited"]) == (12, 5)  # 13, 14, 15, 24 and 72


def test_the_draw_reads_episodes_along_indexes_holding_what_it_needs(db):
    """A month's draw among a million episodes stays near a plain scan of the month
    (bench/selection.py) only if no query reads the episodes' rows one by one: each reads an
    index holding the columns it needs, or looks an episode up by id. (A bound LIMIT, or one
    query over every end date at once, led SQLite to read the rows: 3 times slower.)"""
    if store.is_postgres(db):
        pytest.skip("SQLite's query plans: PostgreSQL plans its own")
    build(db)
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        sampling.draw(db, MONTH, seed=1, on=DRAWN)
    finally:
        db.conn.set_trace_callback(None)
    steps = [step for sql in statements if "episodes" in sql and "SELECT" in sql
             for *_, step in db.conn.execute("EXPLAIN QUERY PLAN " + sql)]
    reads = [s for s in steps if re.match(r"(SCAN|SEARCH) (e|c|episodes)\b", s)]
    assert reads and all("COVERING INDEX" in s or "PRIMARY KEY" in s for s in reads), reads


def _scans_of_episodes(plan: dict) -> list[dict]:
    found = [plan] if plan.get("Relation Name") == "episodes" else []
    for child in plan.get("Plans", []):
        found += _scans_of_episodes(child)
    return found


def test_the_draw_on_postgresql_reads_episodes_from_indexes_alone(db):
    """PostgreSQL's plans too (each statement's, as auto_explain gives them): the episodes
    are read along an index holding what is needed, or looked up by id; never scanned whole,
    nor their rows read over a range (among a million episodes a join by EHM number scanned
    them twice, and the drifting read as one OR of end dates read the rows: the draw 4.5
    times its floor). 5,000 episodes closed years before give the planner a table to plan
    for (on a few dozen rows every plan is as cheap), and whole scans are made dear."""
    if not store.is_postgres(db):
        pytest.skip("PostgreSQL's query plans (SQLite's: the test above)")
    build(db)
    raw, plans = db.conn.raw, []
    raw.execute("INSERT INTO episodes (id, ehm_number, start_date, end_date, status,"
                " lead_agency_id) SELECT 1000 + n, 'EHMOLD' || n, '2019-01-01', '2019-06-30',"
                " 'closed', 1 FROM generate_series(1, 5000) AS n")
    raw.execute("VACUUM ANALYZE episodes")
    raw.add_notice_handler(lambda n: plans.append(n.message_primary or ""))
    for setting_sql in ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
                        "SET auto_explain.log_level = 'notice'",
                        "SET auto_explain.log_format = 'json'", "SET enable_seqscan = off"):
        raw.execute(setting_sql)
    try:
        sampling.draw(db, MONTH, seed=1, on=DRAWN)
    finally:
        raw.execute("RESET ALL")
    scans = [scan for text in plans if "plan:" in text
             for scan in _scans_of_episodes(json.loads(text.split("plan:", 1)[1])["Plan"])]
    assert scans and all(
        "Index Cond" in s and (s["Node Type"] == "Index Only Scan" or (
            s["Node Type"] == "Index Scan" and s["Index Name"] == "episodes_pkey"))
        for s in scans), [(s["Node Type"], s.get("Index Name"), s.get("Index Cond"))
                          for s in scans]
    assert {s.get("Index Name") for s in scans} >= {"episodes_by_end",
                                                   "episodes_ehm_number_start_date_key"}
    assert chosen(db)["drift"] == {51, 53, 54}


def test_the_same_month_shows_the_stored_list_unless_redrawn_with_a_reason(db):
    build(db, extra_council=40)
    first = sampling.draw(db, MONTH, seed=11, on=DRAWN)
    before = chosen(db)
    again = sampling.draw(db, MONTH, seed=99, on=DRAWN + dt.timedelta(days=3))
    assert again["stored"] is True and again["seed"] == 11 and again["id"] == first["id"]
    assert chosen(db) == before
    with pytest.raises(sampling.SamplingError):
        sampling.draw(db, MONTH, redraw_reason="  ", on=DRAWN)
    redrawn = sampling.draw(db, MONTH, seed=12, redraw_reason="pool imported late", on=DRAWN)
    assert redrawn["stored"] is False and redrawn["redraw_reason"] == "pool imported late"
    history = sampling.draws(db, MONTH)
    assert [(h["seed"], h["current"]) for h in history] == [(11, 0), (12, 1)]
    assert chosen(db)["random_council"] != before["random_council"]


def test_each_case_is_due_two_weeks_after_the_draw(db):
    build(db)
    sampling.draw(db, MONTH, seed=1, on=DRAWN)
    rows = sampling.selection(db, MONTH, as_of=DRAWN)
    assert {r["due_date"] for r in rows} == {"2026-11-16"}
    assert {r["selected_on"] for r in rows} == {"2026-11-02"}


def test_auditors_never_have_a_conflict_and_share_the_work(db):
    build(db)
    sampling.draw(db, MONTH, seed=5, on=DRAWN)
    rows = sampling.selection(db, MONTH, as_of=DRAWN)
    team = [r for r in rows if r["lead_professional_id"] == 3]
    assert team and all(r["auditor_id"] in (5, 6, 7) for r in team)  # not their manager (2)
    loads = {a: sum(r["auditor_id"] == a for r in rows) for a in (2, 5, 6, 7)}
    # 30 cases of the worker's team shared by the three auditors without a conflict; the
    # manager takes the partner agency's 3 cases, which nobody else is short of.
    assert (loads[5], loads[6], loads[7]) == (10, 10, 10) and loads[2] == 3


@pytest.mark.parametrize("start, last_review, drifting", [
    ("2026-05-29", "2026-11-20", True),    # open 6 months and a day on 30/11
    ("2026-05-30", "2026-11-20", False),   # open exactly 6 months
    ("2026-07-01", "2026-08-29", True),    # last review 3 months and a day before
    ("2026-07-01", "2026-08-30", False),   # last review exactly 3 months before
    ("2026-08-29", None, True),            # never reviewed, begun 3 months and a day before
    ("2026-08-30", None, False),           # never reviewed, begun exactly 3 months before
    ("2026-07-01", "2026-12-05", True),    # a review after 30/11 had not happened by then
])
def test_drift_thresholds_at_their_boundaries(db, start, last_review, drifting):
    with store.transaction(db):
        db["agencies"].insert({"id": 1, "name": "Council", "kind": "council",
                               "sector": "Local Authority"})
        db["episodes"].insert({"id": 1, "ehm_number": "EHM1", "start_date": start,
                               "status": "open", "lead_agency_id": 1,
                               "last_review_date": last_review})
    found = sampling.drifting(db, dt.date(2026, 11, 30))
    assert [r["episode_id"] for r in found] == ([1] if drifting else [])


def test_drift_clock_at_a_short_months_end(db):
    # 31 May less three months is 28 February (there is no 31 February)
    assert sampling.months_before(dt.date(2026, 5, 31), 3) == dt.date(2026, 2, 28)
    with store.transaction(db):
        db["agencies"].insert({"id": 1, "name": "C", "kind": "council",
                               "sector": "Local Authority"})
        db["episodes"].insert_all([
            {"id": 1, "ehm_number": "A", "start_date": "2026-02-27", "status": "open",
             "lead_agency_id": 1},
            {"id": 2, "ehm_number": "B", "start_date": "2026-02-28", "status": "open",
             "lead_agency_id": 1},
            {"id": 3, "ehm_number": "C", "start_date": "2026-01-01", "status": "closed",
             "end_date": "2026-05-31", "lead_agency_id": 1}])  # closed on the day: not open
    assert [r["episode_id"] for r in sampling.drifting(db, dt.date(2026, 5, 31))] == [1]


def test_a_request_joins_the_next_draw_or_the_stored_list(db):
    build(db)
    r = sampling.request(db, "EHM061", "progress is not being made", month=MONTH, on=DRAWN)
    assert r["added_to_list"] is False
    sampling.draw(db, MONTH, seed=1, on=DRAWN)
    assert chosen(db)["request"] == {61}
    row = next(x for x in sampling.selection(db, MONTH) if x["episode_id"] == 61)
    assert row["request_reason"] == "progress is not being made"
    # after the draw: added at once, with an auditor and its own due date
    later = DRAWN + dt.timedelta(days=5)
    r2 = sampling.request(db, "EHM046", "family asked for a review", month=MONTH, on=later)
    assert r2["added_to_list"] is True
    row = next(x for x in sampling.selection(db, MONTH) if x["episode_id"] == 46)
    assert row["reason"] == "request" and row["due_date"] == "2026-11-21"
    assert row["auditor_id"] in (5, 6, 7)
    # a case already on the list keeps its reason; the request is noted on it
    r3 = sampling.request(db, "EHM051", "stuck", month=MONTH, on=later)
    assert r3["already_listed_as"] == "drift"
    with pytest.raises(sampling.SamplingError):
        sampling.request(db, "EHM051", "again", month=MONTH, on=later)


def test_selection_shows_completed_late_and_overdue_audits(db):
    build(db)
    sampling.draw(db, MONTH, seed=1, on=DRAWN)  # due 16/11
    with store.transaction(db):
        db["audits"].insert_all([
            audit(1, "2026-11-10"),                             # completed in time
            audit(2, "2026-11-12", submitted="2026-11-20"),     # completed late
            audit(3, "2026-11-12", status="draft"),             # in progress
        ])
    rows = {r["episode_id"]: r for r in sampling.selection(db, MONTH,
                                                           as_of=dt.date(2026, 11, 18))}
    assert (rows[1]["state"], rows[1]["late"]) == ("completed", False)
    # as at 18/11 audit 2 was not yet submitted (20/11): overdue then, counted apart
    assert (rows[2]["state"], rows[2]["late"]) == ("overdue", True)
    assert rows[2]["completed_after"] == "2026-11-20"
    assert (rows[3]["state"], rows[3]["late"]) == ("overdue", True)
    assert rows[4]["state"] == "overdue"
    later = {r["episode_id"]: r for r in sampling.selection(db, MONTH,
                                                            as_of=dt.date(2026, 11, 20))}
    assert (later[2]["state"], later[2]["late"]) == ("completed late", True)
    early = {r["episode_id"]: r for r in sampling.selection(db, MONTH, as_of=DRAWN)}
    assert early[3]["state"] == "in progress" and early[4]["state"] == "not started"
    s = sampling.summary(db, MONTH, as_of=dt.date(2026, 11, 18))
    assert s["selected"] == 33 and s["completed"] == 1 and s["completed_after"] == 1
    s = sampling.summary(db, MONTH, as_of=dt.date(2026, 11, 20))
    assert s["completed"] == 2 and s["completed_late"] == 1 and s["completed_after"] == 0
    assert s["overdue"] == 31 and s["late"] == 32


def test_a_quarters_lists_read_in_one_query_stand_as_each_months_list(db):
    """The quarterly report's audits on time read a quarter's lists in one query
    (``sampling.states_at``): each case as it stands on its own month's list, where an audit
    counts only when dated in that month or after."""
    build(db)
    sampling.draw(db, MONTH, seed=1, on=DRAWN)
    sampling.draw(db, "2026-12", seed=1, on=dt.date(2026, 12, 1))
    december = [r["episode_id"] for r in sampling.selection(db, "2026-12", as_of=DRAWN)]
    with store.transaction(db):
        db["audits"].insert_all([
            audit(1, "2026-11-10"), audit(2, "2026-11-12", submitted="2026-11-20"),
            audit(3, "2026-11-12", status="draft"),
            audit(december[0], "2026-11-25"),  # before its month: not its list's audit
            audit(december[1], "2026-12-03")])
    for as_of in (DRAWN, dt.date(2026, 11, 18), dt.date(2026, 12, 31)):
        lists = [r["state"] for m in (MONTH, "2026-12")
                 for r in sampling.selection(db, m, as_of=as_of)]
        told = ["not started" if s == "in progress" else s for s in lists]
        assert sorted(sampling.states_at(db, "2026-10", "2026-12", as_of)) == sorted(told)
    states = sampling.states_at(db, "2026-12", "2026-12", dt.date(2026, 12, 31))
    assert states.count("completed") == 1 and len(states) == len(december)
    assert sampling.states_at(db, "2027-01", "2027-03", dt.date(2027, 3, 31)) == []


def test_export_writes_csv_and_excel(db, tmp_path):
    build(db)
    sampling.draw(db, MONTH, seed=1, on=DRAWN)
    c = sampling.export(db, MONTH, tmp_path / "list.csv", as_of=DRAWN)
    with open(c, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 33 and rows[0]["Reason"] == "Random (council)"
    assert {r["EHM number"] for r in rows if r["Reason"] == "Drifting"} == {
        "EHM051", "EHM053", "EHM054"}
    x = sampling.export(db, MONTH, tmp_path / "list.xlsx", as_of=DRAWN)
    ws = openpyxl.load_workbook(x).active
    assert ws.cell(1, 2).value == "EHM number" and ws.max_row == 34
    with pytest.raises(sampling.SamplingError):
        sampling.export(db, "2026-01", tmp_path / "none.csv")


def test_sample_commands(db, capsys, tmp_path):
    build(db)
    path = where(db)  # a file, or a PostgreSQL URL
    assert cli.main(["sample", "--db", path, "--month", MONTH, "--seed", "4",
                     "--export", str(tmp_path / "l.xlsx")]) == 0
    out = capsys.readouterr().out
    assert "new draw" in out and "seed 4" in out and "EHM051" in out
    assert (tmp_path / "l.xlsx").exists()
    assert cli.main(["sample", "--db", path, "--month", MONTH]) == 0
    assert "stored list" in capsys.readouterr().out
    assert cli.main(["sample", "--db", path, "--month", MONTH, "--redraw"]) == 2
    assert "--reason" in capsys.readouterr().err
    assert cli.main(["sample", "request", "EHM061", "--db", path, "--month", MONTH,
                     "--reason", "no progress"]) == 0
    assert "added to the 2026-11 list" in capsys.readouterr().out
    assert cli.main(["sample", "--db", path, "--month", "2026-13"]) == 2


# -- the conflict rule, whatever the organisation looks like ------------------------------
@st.composite
def organisations(draw):
    n = draw(st.integers(2, 14))
    # each person's line manager is someone earlier (or nobody): a real hierarchy
    managers = {1: None} | {p: draw(st.one_of(st.none(), st.integers(1, p - 1)))
                            for p in range(2, n + 1)}
    auditors = draw(st.lists(st.integers(1, n), min_size=1, max_size=n, unique=True))
    people = st.one_of(st.none(), st.integers(1, n))
    cases = draw(st.lists(st.tuples(people, people), min_size=0, max_size=30))
    return managers, auditors, [(i, lead, tm) for i, (lead, tm) in enumerate(cases, 1)]


@settings(max_examples=150, deadline=None)
@given(organisations(), st.integers(0, 2**31))
def test_auditor_assignment_never_breaks_the_conflict_rule(org, seed):
    managers, auditors, cases = org
    got = sampling.assign_auditors(cases, auditors, managers, random.Random(seed))
    assert set(got) == {c for c, _, _ in cases}
    for case, lead, tm in cases:
        free = [a for a in auditors if conflict_of_interest(a, lead, tm, managers) is None]
        if got[case] is None:
            assert free == []  # left for the coordinator only when nobody may audit it
        else:
            assert conflict_of_interest(got[case], lead, tm, managers) is None


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 8), st.integers(0, 40), st.integers(0, 2**31))
def test_auditor_assignment_is_even_when_nobody_is_conflicted(n_auditors, n_cases, seed):
    auditors = list(range(100, 100 + n_auditors))
    cases = [(i, 1, None) for i in range(n_cases)]  # led by someone who audits nobody's
    got = sampling.assign_auditors(cases, auditors, {1: None}, random.Random(seed))
    loads = [sum(a == x for x in got.values()) for a in auditors]
    assert max(loads) - min(loads) <= 1


# -- the coordinator's form, driven through its real widgets ------------------------------
def test_form_draws_adds_a_request_and_exports(db, tmp_path):
    from ehkit.forms.sampling import sampling_form

    build(db)
    with store.transaction(db):  # free text from the store is shown escaped
        db["agencies"].update(2, {"name": "<b>Fernbridge</b> & Co"})
    form = sampling_form(db, today=DRAWN, out_dir=tmp_path)
    ui = form.widgets
    assert ui["month"].value == "2026-10" and "Not drawn yet" in ui["about"].value
    ui["month"].value = MONTH  # not ended on DRAWN: drawn early, with a warning
    assert "November 2026 has not ended" in ui["about"].value
    ui["seed"].value = "21"
    ui["draw"].click()
    assert "Drawn for November 2026 (seed 21)" in ui["messages"].value
    assert ui["table"].value.count("ehkit-selection-row") == 33
    assert "&lt;b&gt;Fernbridge&lt;/b&gt; &amp; Co" in ui["table"].value
    assert "<b>Fernbridge" not in ui["table"].value
    assert ui["draw"].disabled and not ui["redraw"].disabled

    ui["ehm"].value, ui["why"].value = "EHM061", "no progress since the summer"
    ui["add"].click()
    assert "added to the 2026-11 list" in ui["messages"].value
    assert ui["table"].value.count("ehkit-selection-row") == 34

    ui["ehm"].value, ui["why"].value = "EHM999", "unknown case"
    ui["add"].click()
    assert "EHM999" in ui["messages"].value and "ehkit-msg-blocked" in ui["messages"].value

    ui["redraw"].click()  # no reason given: refused, in plain words
    assert "say why the month is drawn again" in ui["messages"].value
    ui["redraw_reason"].value = "agencies corrected"
    ui["redraw"].click()
    assert "Drawn again" in ui["messages"].value
    assert [d["redraw_reason"] for d in sampling.draws(db, MONTH)] == [None, "agencies corrected"]

    ui["xlsx"].click()
    assert (tmp_path / "selections" / "audit-list-2026-11.xlsx").exists()
    assert "download='audit-list-2026-11.xlsx'" in ui["link"].value
    ui["csv"].click()
    assert (tmp_path / "selections" / "audit-list-2026-11.csv").exists()

    ui["month"].value = "2026-10"
    assert "Not drawn yet" in ui["about"].value and ui["table"].value == ""


@pytest.mark.browser
def test_coordinator_draws_and_adds_a_request_in_the_browser(demo_db_path, tmp_path, pages):
    db_file = copy_db(demo_db_path, tmp_path / "ehkit.db")
    month = sampling.month_of(sampling.months_before(dt.date.today(), 1))  # just ended
    with store.connect(db_file) as database:
        ehm = database.conn.execute("SELECT ehm_number FROM episodes ORDER BY id "
                                    "LIMIT 1").fetchone()[0]
    with VoilaServer(db_file, notebook="sampling", cwd=tmp_path) as server:
        page = pages(server, wait_for=".ehkit-sampling")
        wait_for_text(page, ".ehkit-draw-state", "Not drawn yet")
        page.locator("button.ehkit-draw").click()
        wait_for_text(page, ".ehkit-messages", "Drawn for")
        count = wait_for_text(page, ".ehkit-selection-count", "case(s)")
        page.locator(".ehkit-request-ehm input").fill(ehm)
        page.locator(".ehkit-request-reason textarea").fill("progress <not> being made")
        page.locator("button.ehkit-add-request").click()
        wait_for_text(page, ".ehkit-messages", "request recorded")
        page.locator("button.ehkit-export-xlsx").click()
        wait_for_text(page, ".ehkit-export-link", f"audit-list-{month}.xlsx")
    with store.connect(db_file) as database:
        listed = database.conn.execute(
            "SELECT count(*) FROM selections s JOIN selection_draws d ON d.id = s.draw_id "
            "WHERE d.month = ? AND d.current = 1", (month,)).fetchone()[0]
        asked = database.conn.execute("SELECT reason FROM audit_requests").fetchall()
    shown = int(count.split()[0])
    assert listed in (shown, shown + 1)  # + 1 when the request added a case
    assert asked == [("progress <not> being made",)]
    assert (tmp_path / "reports" / "selections" / f"audit-list-{month}.xlsx").exists()


def test_an_auditors_outstanding_cases_are_where_drafts_start(db):
    build(db)
    sampling.draw(db, MONTH, seed=1, on=DRAWN)
    mine = {r["episode_id"] for r in sampling.selection(db, MONTH) if r["auditor_id"] == 5}
    done = min(mine)
    with store.transaction(db):
        db["audits"].insert(audit(done, "2026-11-05"))
    left = sampling.outstanding(db, 5, as_of=DRAWN)
    assert {r["episode_id"] for r in left} == mine - {done}
    assert {r["month"] for r in left} == {MONTH}


def test_drifting_can_be_asked_about_given_cases_only(db):
    build(db)
    on = dt.date(2026, 11, 30)
    every = {r["episode_id"]: r for r in sampling.drifting(db, on)}
    assert set(every) == {51, 53, 54}
    asked = sampling.drifting(db, on, episodes=[53, 1, 999])  # 1 is not drifting; 999 no case
    assert [r["episode_id"] for r in asked] == [53] and asked[0] == every[53]
    assert sampling.drifting(db, on, episodes=[]) == []


def test_audit_list_export_writes_formulas_as_text_in_csv_and_excel(db, tmp_path):
    build(db)
    sampling.draw(db, MONTH, seed=1, on=DRAWN)
    formula = '=HYPERLINK("http://evil.example/","Open")'
    sampling.request(db, "EHM061", formula, month=MONTH, on=DRAWN)
    c = sampling.export(db, MONTH, tmp_path / "list.csv", as_of=DRAWN)
    with open(c, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["Request reason"] for r in rows if r["Request reason"]] == ["'" + formula]
    ws = openpyxl.load_workbook(sampling.export(db, MONTH, tmp_path / "list.xlsx",
                                                as_of=DRAWN)).active
    cells = [c for row in ws.iter_rows() for c in row]
    assert [c.value for c in cells if c.value and "HYPERLINK" in str(c.value)] == ["'" + formula]
    assert not any(c.data_type == "f" for c in cells)  # no formula anywhere
