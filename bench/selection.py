"""Benchmark 5: the month's selection, a big import, and the demo store itself.

Each is measured against a floor in the same run, floor and ehkit taking turns round by
round; the figure is the ratio of each side's least over the rounds (``common.steady``:
a busy machine only ever adds). The selection and the import run
in this process, floor and ehkit alike: their ratios are of CPU seconds, the ratio of times
printed beside (a busy machine stretches times, not CPU seconds: bench/RESULTS.md).

- Selection: ``ehkit.sampling.draw`` for a month among 1,000,000 episodes (on a scratch copy;
  months the demo has not drawn, then drawn again with a reason: a whole new draw each
  round). Floor: reading the month's open episodes' ids with one plain query and
  ``random.sample``-ing the quotas from them. Target: at most 3 times the floor's CPU time.
- Import: ``ehkit.cases.import_episodes`` of a 200,000-row CSV (one row per child, ehkit's
  own column names) into a store holding only the service's agencies and practitioners (a
  new one each round). Floor: ``csv.reader`` over the same file and ``executemany`` of its
  rows into a plain table with the standard library, no checks. Target: at most 4 times the
  floor's CPU time.
- Generation: ``ehkit.demo.generate`` of the 1,000,000-episode store, timed when the cached
  store is built (``--fresh`` builds it again). Floor: the same rows inserted plainly
  (``bench.common.plain_insert_seconds``), right after the build. Target: at most 3 times.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import sqlite3
from pathlib import Path

from . import common
from .common import UNTIL, Figure, Run, clocked, cpu_figure, in_turns, ratio_figure, say

MAX_SELECTION_RATIO = 3.0
MAX_IMPORT_RATIO = 4.0
MAX_GENERATE_RATIO = 3.0
IMPORT_ROWS = 200_000
SELECTION_ROUNDS = 7
IMPORT_ROUNDS = 9  # a round is ~6 s; 9, not 5, narrowed the least's spread 1.6- to 6-fold (RESULTS.md)
# Months the demo has not drawn (it draws its last six, 2026-05 to 2026-10): a real draw each.
MONTHS = ("2026-02", "2026-03", "2026-04")

HEADERS = ["EHM number", "Start date", "End date", "Lead agency", "Lead professional id",
           "Team manager id", "Referral reason", "Began as", "Ended as", "Cross authority",
           "Cross authority name", "Cross authority contact", "First review date",
           "Last review date", "Child name", "Child date of birth"]


def selection(run: Run, db_path: Path | str, rounds: int = SELECTION_ROUNDS,
              label: str = "") -> None:
    """``label``: the back end, when not SQLite (a PostgreSQL URL as ``db_path``)."""
    from ehkit import db as store
    from ehkit import sampling

    name = "draw a month's selection" + (f" on {label}" if label else "")
    db = store.connect(db_path)
    try:
        try:  # on PostgreSQL the queries' work is the server's: its CPU time counts too
            server = common.postmaster_of(db) if store.is_postgres(db) else None
        except common.ServerCPUUnreadable as e:
            run.add(Figure(name, None, "s", f"<= {MAX_SELECTION_RATIO:g}x floor (CPU)", False,
                           note=f"not measurable: {e}"))
            return
        n = db["episodes"].count
        months = [MONTHS[k % len(MONTHS)] for k in range(rounds)]
        drawn: list[str] = []
        scanned: list[str] = []

        def draw() -> common.Clock:
            month = months[len(drawn)]
            again = "benchmark: drawn again" if month in drawn else None
            t, made = clocked(lambda: sampling.draw(db, month, seed=7, on=UNTIL,
                                                    redraw_reason=again), server)
            if made.get("stored"):
                raise RuntimeError(f"{month} was drawn already: the benchmark needs a new draw")
            drawn.append(month)
            return t

        def plain() -> common.Clock:  # the same month's open episodes, scanned and sampled
            first, last = sampling.month_bounds(months[len(scanned)])
            scanned.append(months[len(scanned)])

            def scan_and_sample():
                ids = [r[0] for r in db.conn.execute(
                    "SELECT id FROM episodes WHERE start_date <= ? AND"
                    " (end_date IS NULL OR end_date >= ?)", (last.isoformat(), first.isoformat()))]
                return random.Random(7).sample(ids, min(20, len(ids)))
            return clocked(scan_and_sample, server)[0]

        try:
            floor, mine = in_turns(plain, draw, rounds)
        except common.ServerCPUUnreadable as e:
            run.add(Figure(name, None, "s", f"<= {MAX_SELECTION_RATIO:g}x floor (CPU)", False,
                           note=f"not measurable: {e}"))
            return
        run.add(cpu_figure(f"{name} among {n:,} episodes, CPU time (least of {rounds})", mine,
                           floor, MAX_SELECTION_RATIO))
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


def import_csv(run: Run, source: Path, rounds: int = IMPORT_ROUNDS) -> None:
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
    summaries = []

    def ehkit_import() -> common.Clock:
        db = store.connect(people_only(work / "import.db"))  # made before the clock starts
        try:
            t, summary = clocked(lambda: cases.import_episodes(
                db, path, rejects_dir=work / "rejects", today=dt.date(2026, 11, 1)))
        finally:
            db.close()
        summaries.append(summary)
        return t

    def plain() -> common.Clock:
        def load():
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
        return clocked(load)[0]

    floor, mine = in_turns(plain, ehkit_import, rounds)
    last = summaries[-1]
    run.add(cpu_figure(f"{name} ({rows:,} rows), CPU time (least of {rounds})", mine, floor,
                       MAX_IMPORT_RATIO, note=(f"{last.inserted:,} rows inserted, "
                                               f"{last.rejected:,} rejected")))


def generation(run: Run, meta: dict) -> None:
    when = "in this run" if meta.get("built_now") else f"when cached, {meta['built_on']}"
    cpu = f"{meta['cpu_seconds']:.0f} s CPU; " if meta.get("cpu_seconds") else ""
    floor = [meta["floor_seconds"]] if meta.get("floor_seconds") else []
    run.add(ratio_figure(f"generate the {meta['episodes']:,}-episode demo store",
                         [meta["seconds"]], floor, "s", MAX_GENERATE_RATIO,
                         note=(f"timed {when}; {cpu}{meta['change_log_rows']:,} change-log "
                               f"rows, {meta['bytes'] / 2**30:.1f} GiB"
                               + ("" if floor else "; built before floors: --fresh"))))


def run(run: Run, big_db: Path | None, big_meta: dict, source_for_csv: Path,
        quick: bool = False, parts: tuple[str, ...] = ("generation", "selection", "import")
        ) -> None:
    say("\n5. " + ", ".join(parts).capitalize())
    if "generation" in parts:
        generation(run, big_meta)
    for step, fn, args in (
            ("selection", selection, (run, big_db, 3 if quick else SELECTION_ROUNDS)),
            ("import", import_csv, (run, source_for_csv, 1 if quick else IMPORT_ROUNDS))):
        if step not in parts:
            continue
        try:
            fn(*args)
        except (ImportError, AttributeError) as e:
            run.add(Figure(step, None, "s", "", False, note=f"not measurable: {e}"))
