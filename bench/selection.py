"""Benchmark 5: the month's selection, a big import, and the demo store itself.

- Selection: ``ehkit.sampling.draw`` for a month among 1,000,000 episodes (a fresh month each
  time, on a scratch copy). Floor: reading the month's open episodes' ids with one plain
  query and ``random.sample``-ing the quotas from them.
- Import: ``ehkit.cases.import_episodes`` of a 200,000-row CSV (one row per child, ehkit's own
  column names) into a store holding only the service's agencies and practitioners. Floor:
  ``csv.reader`` over the same file and ``executemany`` of its rows into a plain table.
- Generation: ``ehkit.demo.generate`` of the 1,000,000-episode store (timed when the cached
  store was built; ``--fresh`` builds it again). Floor: none (absolute target).
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import sqlite3
from pathlib import Path

from . import common
from .common import UNTIL, Figure, Run, median, say, timed

MAX_SELECTION_S = 1.0
MAX_IMPORT_S = 30.0
MAX_GENERATE_S = 60.0
IMPORT_ROWS = 200_000
# Months the demo has not drawn (it draws its last six, 2026-05 to 2026-10): a real draw each.
MONTHS = ("2026-02", "2026-03", "2026-04")

HEADERS = ["EHM number", "Start date", "End date", "Lead agency", "Lead professional id",
           "Team manager id", "Referral reason", "Began as", "Ended as", "Cross authority",
           "Cross authority name", "Cross authority contact", "First review date",
           "Last review date", "Child name", "Child date of birth"]


def selection(run: Run, db_path: Path) -> None:
    from ehkit import db as store
    from ehkit import sampling

    name = "draw a month's selection"
    db = store.connect(db_path)
    try:
        n = db["episodes"].count
        mine, floor = [], []
        for month in MONTHS:
            first, last = sampling.month_bounds(month)
            t, made = timed(lambda m=month: sampling.draw(db, m, seed=7, on=UNTIL))
            if made.get("stored"):
                raise RuntimeError(f"{month} was drawn already: the benchmark needs a new draw")
            mine.append(t)

            def plain(first=first, last=last):
                ids = [r[0] for r in db.conn.execute(
                    "SELECT id FROM episodes WHERE start_date <= ? AND"
                    " (end_date IS NULL OR end_date >= ?)", (last.isoformat(), first.isoformat()))]
                return random.Random(7).sample(ids, min(20, len(ids)))
            floor.append(timed(plain)[0])
        m, f = median(mine), median(floor)
        run.add(Figure(f"{name} among {n:,} episodes (median of {len(MONTHS)})", m, "s",
                       f"< {MAX_SELECTION_S:g} s", m < MAX_SELECTION_S, floor=f, ratio=m / f))
    finally:
        db.close()


def write_csv(source: Path, dest: Path, rows: int = IMPORT_ROWS) -> Path:
    """A case-system export of ``rows`` child rows, taken from a demo store."""
    con = sqlite3.connect(source)
    cur = con.execute(
        "SELECT e.ehm_number, e.start_date, e.end_date, a.name, e.lead_professional_id,"
        " e.team_manager_id, e.referral_reason, e.began_as, e.ended_as,"
        " CASE e.cross_authority WHEN 1 THEN 'Yes' ELSE 'No' END, e.cross_authority_name,"
        " e.cross_authority_contact, e.first_review_date, e.last_review_date, c.name,"
        " c.date_of_birth FROM children c JOIN episodes e ON e.id = c.episode_id"
        " JOIN agencies a ON a.id = e.lead_agency_id ORDER BY c.id LIMIT ?", (rows,))
    with dest.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADERS)
        w.writerows(cur)
    con.close()
    return dest


def people_only(dest: Path) -> Path:
    """A store with the demo service's agencies and practitioners and nothing else."""
    from ehkit import db as store
    from ehkit import demo

    for suffix in ("", "-wal", "-shm"):
        Path(str(dest) + suffix).unlink(missing_ok=True)
    db = store.connect(dest)
    demo.generate(db, episodes=0, seed=1, until=UNTIL)
    db.close()
    return dest


def import_csv(run: Run, source: Path) -> None:
    from ehkit import cases
    from ehkit import db as store

    name = f"import a {IMPORT_ROWS:,}-row CSV"
    work = common.CACHE / "work"
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"episodes-{IMPORT_ROWS}.csv"
    if not path.exists():
        write_csv(source, path, IMPORT_ROWS)
    with path.open(newline="", encoding="utf-8") as f:
        rows = sum(1 for _ in csv.reader(f)) - 1
    target = people_only(work / "import.db")
    db = store.connect(target)
    try:
        t, summary = timed(lambda: cases.import_episodes(
            db, path, rejects_dir=work / "rejects", today=dt.date(2026, 11, 1)))
    finally:
        db.close()

    def plain():
        con = sqlite3.connect(work / "import-floor.db", isolation_level=None)
        con.execute("DROP TABLE IF EXISTS rows")
        con.execute(f"CREATE TABLE rows ({', '.join(f'c{i}' for i in range(len(HEADERS)))})")
        with path.open(newline="", encoding="utf-8") as f:
            r = csv.reader(f)
            next(r)
            con.execute("BEGIN")
            con.executemany(f"INSERT INTO rows VALUES ({', '.join('?' * len(HEADERS))})", r)
            con.execute("COMMIT")
        con.close()
    f, _ = timed(plain)
    run.add(Figure(f"{name} ({rows:,} rows)", t, "s", f"< {MAX_IMPORT_S:g} s",
                   t < MAX_IMPORT_S, floor=f, ratio=t / f,
                   note=(f"{summary.inserted:,} episodes inserted, "
                         f"{summary.rejected:,} rows rejected")))


def generation(run: Run, meta: dict) -> None:
    when = "in this run" if meta.get("built_now") else f"when cached, {meta['built_on']}"
    cpu = f"{meta['cpu_seconds']:.0f} s CPU; " if meta.get("cpu_seconds") else ""
    run.add(Figure(f"generate the {meta['episodes']:,}-episode demo store", meta["seconds"], "s",
                   f"< {MAX_GENERATE_S:g} s", meta["seconds"] < MAX_GENERATE_S,
                   note=(f"timed {when}; {cpu}{meta['change_log_rows']:,} change-log rows, "
                         f"{meta['bytes'] / 2**30:.1f} GiB")))


def run(run: Run, big_db: Path, big_meta: dict, source_for_csv: Path) -> None:
    say("\n5. Selection, import and demo generation")
    generation(run, big_meta)
    for step, fn, args in (("selection", selection, (run, big_db)),
                           ("import", import_csv, (run, source_for_csv))):
        try:
            fn(*args)
        except (ImportError, AttributeError) as e:
            run.add(Figure(step, None, "s", "", None, note=f"not measurable yet: {e}"))
