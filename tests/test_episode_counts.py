"""The episodes' monthly counts (ehkit.episode_counts): kept as episodes change, on both back
ends, and every figure read from them equal to a count of the episodes themselves."""

from __future__ import annotations

import pytest
from builders import add_rows, episode_row, raw, where

from ehkit import check, cli, episode_counts, metrics, periods
from ehkit import db as store

QUARTERS = [periods.parse(q) for q in
            ("2023Q4", "2024Q1", "2024Q4", "2025Q2", "2025Q4", "2026Q1", "2026Q3")]


def counted_from_episodes(db, period) -> dict:
    """The figures of ``period`` counted from the episodes' rows, as the reports counted them
    before the monthly counts: the definitions the counts must keep."""
    p = {"start": period.start.isoformat(), "end": period.end.isoformat()}

    def one(sql):
        return db.execute(sql, p).fetchone()[0]

    def pairs(sql):
        return sorted((tuple(r) for r in db.execute(sql, p).fetchall()), key=repr)

    return {
        "open_at_end": one("SELECT count(*) FROM episodes WHERE start_date <= :end AND "
                           "(end_date IS NULL OR end_date > :end)"),
        "closed": pairs("SELECT ended_as, count(*) FROM episodes WHERE end_date BETWEEN "
                        ":start AND :end GROUP BY 1"),
        "began": pairs("SELECT began_as, count(*) FROM episodes WHERE start_date BETWEEN "
                       ":start AND :end GROUP BY 1"),
        "lengths": pairs("SELECT length_days, count(*) FROM episodes WHERE end_date BETWEEN "
                         ":start AND :end GROUP BY 1"),
        "to_review": pairs("SELECT days_to_first_review, count(*) FROM episodes WHERE "
                           "first_review_date BETWEEN :start AND :end GROUP BY 1"),
    }


def read_from_counts(db, period) -> dict:
    """The same figures as the reports now read them, from the counts."""
    m = metrics._months(period)

    def pairs(sql):
        return sorted((tuple(r) for r in db.execute(sql, m).fetchall()), key=repr)

    figures = {f.key: f for f in metrics.episode_figures(db, period)}
    how = ("SELECT nullif(how, ''), sum(episodes) FROM episode_counts WHERE counted = '{0}' "
           f"AND {metrics.IN_MONTHS} GROUP BY 1 HAVING sum(episodes) > 0")
    days = ("SELECT days, sum(episodes) FROM episode_days WHERE counted = '{0}' AND "
            f"{metrics.IN_MONTHS} GROUP BY 1 HAVING sum(episodes) > 0")
    return {
        "open_at_end": figures["open_at_end"].value,
        "closed": pairs(how.format("ended")),
        "began": pairs(how.format("began")),
        "lengths": pairs(days.format("length")),
        "to_review": pairs(days.format("to_first_review")),
    }


def same_as_episodes(db) -> None:
    assert episode_counts.differences(db) == []
    assert episode_counts.triggers_amiss(db) == []
    for q in QUARTERS:
        assert read_from_counts(db, q) == counted_from_episodes(db, q), q.label


def test_every_quarters_figures_from_the_counts_are_the_episodes_own(demo_both):
    db = store.connect(demo_both, read_only=True)
    try:
        assert counted_from_episodes(db, QUARTERS[-1])["closed"]  # the demo has episodes there
        same_as_episodes(db)
        months = periods.parse("2026").months()  # a month's, too
        assert read_from_counts(db, months[5]) == counted_from_episodes(db, months[5])
    finally:
        db.close()


def test_the_counts_follow_every_kind_of_change_to_episodes(demo_copy_both):
    db = store.connect(demo_copy_both)
    try:
        unaudited = [r[0] for r in db.execute(  # nothing else refers to them
            "SELECT id FROM episodes e WHERE " + " AND ".join(
                f"NOT EXISTS (SELECT 1 FROM {t} x WHERE x.episode_id = e.id)" for t in (
                    "audits", "audit_requests", "selections", "service_user_feedback",
                    "self_assessments")) + " ORDER BY id LIMIT 3")]
        top = db.execute("SELECT max(id) FROM episodes").fetchone()[0]
        with store.transaction(db):
            # closed ones reopened, open ones closed, moved between months, agencies, reasons
            db.execute("UPDATE episodes SET end_date = NULL, status = 'open', ended_as = NULL "
                       "WHERE id % 7 = 0 AND end_date IS NOT NULL")
            db.execute("UPDATE episodes SET end_date = CASE WHEN start_date > '2026-08-31' "
                       "THEN start_date ELSE '2026-08-31' END, status = 'closed', ended_as = "
                       "'stepped_up' WHERE id % 11 = 0 AND end_date IS NULL")
            db.execute("UPDATE episodes SET referral_reason = NULL, lead_agency_id = 1 "
                       "WHERE id % 5 = 0")
            db.execute("UPDATE episodes SET start_date = '2024-01-15', first_review_date = "
                       "'2024-02-01' WHERE id % 13 = 0 AND (end_date IS NULL OR end_date >= "
                       "'2024-02-01') AND (last_review_date IS NULL OR last_review_date >= "
                       "'2024-02-01')")
            db.execute("UPDATE episodes SET began_as = 'step_down' WHERE id % 3 = 0")
            db.execute("UPDATE episodes SET cross_authority_name = 'Elsewhere' WHERE id % 2 = 0")
            for i in unaudited:
                db.execute("DELETE FROM children WHERE episode_id = ?", [i])
                db.execute("DELETE FROM episodes WHERE id = ?", [i])
            db["episodes"].insert(episode_row(top + 1, "2026-07-02", "2026-09-30",
                                              ended_as="outcomes_achieved", agency=2,
                                              referral_reason="Housing"))
        assert unaudited  # three episodes really went
        same_as_episodes(db)
        with pytest.raises(RuntimeError), store.transaction(db):  # one rolled back: as it was
            db.execute("UPDATE episodes SET began_as = 'other' WHERE id % 4 = 0")
            raise RuntimeError("not saved")
        same_as_episodes(db)
    finally:
        db.close()


def test_a_bulk_insert_counts_its_episodes_together_and_puts_the_trigger_back(db_both):
    add_rows(db_both, agencies=[{"id": 1, "name": "Test Team", "kind": "council",
                                 "sector": "Early Help"}])
    rows = [episode_row(i, f"2025-{1 + i % 12:02d}-0{1 + i % 9}",
                        f"2026-0{1 + i % 9}-1{i % 10}" if i % 3 else None,
                        ended_as="disengaged" if i % 3 else None,
                        lead=None, referral_reason=None if i % 4 else "Housing")
            for i in range(1, 500)]
    names = list(rows[0])
    with store.transaction(db_both):
        store.bulk_insert(db_both, "episodes", names, [[r[c] for c in names] for r in rows])
    assert db_both.execute("SELECT sum(episodes) FROM episode_counts WHERE counted = 'began'"
                           ).fetchone()[0] == 499
    same_as_episodes(db_both)
    add_rows(db_both, episodes=[episode_row(600, "2026-03-03", lead=None)])  # by its trigger
    same_as_episodes(db_both)


def test_check_finds_counts_changed_outside_ehkit_and_recount_mends_them(demo_copy_both,
                                                                          capsys):
    db = store.connect(demo_copy_both)
    url = where(db)
    if store.is_postgres(db):
        with store.transaction(db):
            db.execute("UPDATE episode_counts SET episodes = episodes + 2 WHERE counted = "
                       "'began' AND month = '2026-07'")
            db.execute("ALTER TABLE episodes DISABLE TRIGGER count_episodes_update")
    else:
        con = raw(url)
        con.execute("UPDATE episode_counts SET episodes = episodes + 2 WHERE counted = 'began' "
                    "AND month = '2026-07'")
        con.execute("DROP TRIGGER count_episodes_update")
        con.close()
    try:
        found = check.counts_checks(db)
        assert [f.where for f in found if f.where.startswith("trigger")] == [
            "trigger count_episodes_update"]
        tampered = [f for f in found if f.where.startswith("episode_counts began / 2026-07")]
        assert tampered and all("2 episode(s) more" in f.message for f in tampered)
    finally:
        db.close()
    assert cli.main(["check", "--db", url, "--today", "2026-11-01"]) != 0
    assert "DB-COUNTS" in capsys.readouterr().out
    assert cli.main(["recount", "--db", url]) == 0
    assert "counted afresh" in capsys.readouterr().out
    db = store.connect(url)
    try:
        assert check.counts_checks(db) == []
        same_as_episodes(db)
    finally:
        db.close()


def test_a_store_upgraded_to_the_counts_has_them_counted(demo_db_path, tmp_path):
    path = tmp_path / "older.db"
    path.write_bytes(demo_db_path.read_bytes())
    con = raw(path)  # as the ehkit before the counts left it
    for op in ("insert", "update", "delete"):
        con.execute(f"DROP TRIGGER count_episodes_{op}")
    con.execute("DROP TABLE episode_counts")
    con.execute("DROP TABLE episode_days")
    con.execute("DELETE FROM schema_migrations WHERE number = 135")
    con.close()
    db = store.connect(path)  # migrates
    try:
        assert 135 in store.recorded_migrations(db.conn)
        same_as_episodes(db)
    finally:
        db.close()
